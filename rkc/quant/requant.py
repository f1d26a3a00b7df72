"""Fixed-point requantization, as the NPU's output converter does it.

This is the one place that defines how a real multiplier becomes integer arithmetic; the
quantized interpreter uses it now, lowering and codegen use it later.

A real multiplier `s > 0` (for a conv: s_in * s_w / s_out) is represented as
`s ~= M * 2**-S` with a 15-bit mantissa `M` in [2**14, 2**15) and a shift `S`
(registers OUT_CVT_SCALE / OUT_CVT_SHIFT, docs/rknpu-hw.md section 4.4). Then

    y = clamp(round_shift(acc * M, S) + zero_point, qmin, qmax)
    round_shift(v, S) = (v + 2**(S - 1)) >> S        (arithmetic shift: round half up)

Choices where the sources are uncertain (written down here and nowhere else):
  * Mantissa: `M = round(s * 2**S)` with `S = 14 - floor(log2 s)`, moving to the next
    exponent when rounding reaches 2**15. Mesa computes `M = 2**14 + (mantissa >> 9) + 1`
    from the float32 bits (truncate, then add one); both are within one unit of the
    15-bit mantissa. [UNCERTAIN: which the vendor compiler uses]
  * Rounding of the shift: half up (toward +infinity), the behaviour we assume for
    OUT_CVT_SHIFT's CVT_ROUND bit set. [UNCERTAIN: not measured on a board]
  * float -> int (quant.quantize, on the host): round half to even, then clamp.
Accumulators are int64 here; on the NPU they are int32 and the compiler keeps them in range.
"""

from __future__ import annotations

import math

import numpy as np

MANTISSA_BITS = 15
MAX_SHIFT = 62  # keeps acc * M inside int64 for |acc| < 2**31 and the rounding term positive


class RequantRangeError(ValueError):
    """A multiplier that 15-bit fixed point cannot represent with a shift in range."""


def multiplier(scale: float) -> tuple[int, int]:
    """(M, S) with scale ~= M / 2**S, 2**14 <= M < 2**15."""
    if not scale > 0 or not math.isfinite(scale):
        raise RequantRangeError(f"requantization multiplier {scale} must be positive and finite")
    exponent = math.floor(math.log2(scale))
    shift = (MANTISSA_BITS - 1) - exponent
    mantissa = round(scale * 2.0**shift)
    if mantissa >= 1 << MANTISSA_BITS:  # rounding carried into the next power of two
        mantissa >>= 1
        shift -= 1
    if not 0 <= shift <= MAX_SHIFT:
        raise RequantRangeError(f"requantization multiplier {scale:.6g} needs shift {shift}, "
                                f"outside [0, {MAX_SHIFT}]")
    return mantissa, shift


def multipliers(scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`multiplier` for every element: int64 arrays M and S of the same shape."""
    flat = [multiplier(float(s)) for s in np.ravel(scales)]
    m = np.array([f[0] for f in flat], np.int64).reshape(np.shape(scales))
    s = np.array([f[1] for f in flat], np.int64).reshape(np.shape(scales))
    return m, s


def round_shift(value: np.ndarray, shift: np.ndarray | int) -> np.ndarray:
    """(value + 2**(shift-1)) >> shift, elementwise on int64 (shift 0 is the identity)."""
    value = np.asarray(value, np.int64)
    shift = np.asarray(shift, np.int64)
    half = np.where(shift > 0, np.left_shift(np.int64(1), np.maximum(shift - 1, 0)), 0)
    return np.right_shift(value + half, shift)


def requantize(acc: np.ndarray, mantissa: np.ndarray | int, shift: np.ndarray | int,
               zero_point: np.ndarray | int, qmin: int, qmax: int) -> np.ndarray:
    """clamp(round_shift(acc * M, S) + zero_point, qmin, qmax) on int64 values."""
    scaled = round_shift(np.asarray(acc, np.int64) * np.asarray(mantissa, np.int64), shift)
    return np.clip(scaled + np.asarray(zero_point, np.int64), qmin, qmax)


def rescale(acc: np.ndarray, scale: float | np.ndarray, zero_point: np.ndarray | int,
            qmin: int, qmax: int) -> np.ndarray:
    """`requantize` with the (M, S) of a real multiplier (scalar or per element)."""
    m, s = multipliers(np.asarray(scale, np.float64))
    return requantize(acc, m, s, zero_point, qmin, qmax)


def quantize(x: np.ndarray, scale: np.ndarray | float, zero_point: np.ndarray | int,
             qmin: int, qmax: int) -> np.ndarray:
    """Float -> integer: clamp(round_half_even(x / scale) + zero_point), as int64."""
    q = np.rint(np.asarray(x, np.float64) / scale) + zero_point
    return np.clip(q, qmin, qmax).astype(np.int64)


def dequantize(q: np.ndarray, scale: np.ndarray | float,
               zero_point: np.ndarray | int) -> np.ndarray:
    """Integer -> float32: (q - zero_point) * scale."""
    return ((np.asarray(q, np.int64) - zero_point) * np.asarray(scale, np.float64)).astype(
        np.float32)
