"""Quantization: calibration, quantized arithmetic, precision control."""
