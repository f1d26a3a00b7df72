"""Lowering from quantized nn to the rknpu dialect: legality, tiling, memory planning."""
