"""Quantization parameters as docs/quantization.md chooses them (used by `nn-quantize`).

  * activations: i8 per tensor, asymmetric, from a calibrated range `[lo, hi]` (widened
    to contain 0): `scale = (hi - lo) / 255`, `zp = clamp(round(-128 - lo / scale))`;
  * weights: i8 symmetric (`zp = 0`), values in [-127, 127], `scale = max|w| / 127` per
    index of one axis (per channel) or for the whole tensor (per layer);
  * biases: i32 symmetric, `scale = s_in * s_w[o]` per output channel.

All rounding is half to even (`np.rint`), as `quant.quantize` rounds. Scales are computed
in float64 and stored as the f64 values of `!quant.uniform`.

One addition to the specification, needed for the fixed-point requantization of
`rkc.quant.requant` (a multiplier `r` needs a non-negative shift, i.e. `r < 2**15`):
`activation_type(lo, hi, min_scale)` never returns a scale below `min_scale`. The
quantize pass passes `numerator / MAX_REQUANT_RATIO` where `numerator` is the op's
multiplier numerator (`s_x * s_w` for a conv, `s_x` for relu, ...), so every multiplier
is at most `MAX_REQUANT_RATIO`. This only widens ranges far narrower than the op's input
resolution (all-zero tensors, whose calibrated range is [0, 1e-6]), where the wider range
represents the same values (0 stays exact). Symmetrically, a weight slice so small
that `s_x * s_w[o] / s_y` would fall below `MIN_REQUANT_RATIO` (pruned channels with
|w| ~ 1e-30 exist in real models) gets the scale `s_y * MIN_REQUANT_RATIO / s_x`: its
values quantize to 0, as they would at any representable scale.
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import TensorType

from rkc.dialects.quant import UniformQuantizedType

QMIN, QMAX = -128, 127
"""Storage range of i8 activations."""

WEIGHT_QMAX = 127
"""Symmetric weights use [-127, 127] (never -128, so that negation is exact)."""

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
BIAS_LIMIT = 2.0**30
"""Largest |bias| the pass stores in i32 (weight scales are raised to keep it there)."""

MAX_REQUANT_RATIO = 2.0**14
"""Largest real multiplier the pass lets an op need (`requant.multiplier` accepts < 2**15)."""

MIN_REQUANT_RATIO = 2.0**-40
"""Smallest multiplier the pass lets a conv / gemm / matmul channel need
(`requant.multiplier` accepts >= 2**-48)."""


def activation_params(lo: float, hi: float, min_scale: float = 0.0) -> tuple[float, int]:
    """(scale, zero point) of an i8 activation with range [lo, hi] (widened to hold 0),
    the scale at least `min_scale`."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = (hi - lo) / (QMAX - QMIN)
    scale = max(scale, float(min_scale))
    if not scale > 0 or not np.isfinite(scale):
        raise ValueError(f"range [{lo}, {hi}] gives no usable scale")
    zp = int(np.clip(np.rint(QMIN - lo / scale), QMIN, QMAX))
    return scale, zp


def activation_type(lo: float, hi: float, min_scale: float = 0.0) -> UniformQuantizedType:
    """`!quant.uniform<i8:f32, scale:zp>` for an activation with range [lo, hi]."""
    scale, zp = activation_params(lo, hi, min_scale)
    return UniformQuantizedType.per_tensor(scale, zp)


def quantize_values(x: np.ndarray, scale: np.ndarray | float, zp: np.ndarray | int,
                    qmin: int, qmax: int, dtype: type) -> np.ndarray:
    """clamp(round_half_even(x / scale) + zp, qmin, qmax) in `dtype` (float64 math)."""
    q = np.rint(np.asarray(x, np.float64) / scale) + zp
    return np.asarray(np.clip(q, qmin, qmax), dtype=dtype)  # an array even for rank 0


def quantize_constant(value: np.ndarray, min_scale: float = 0.0,
                      ) -> tuple[np.ndarray, TensorType]:
    """A constant used as an activation operand (e.g. of an add): i8 per tensor from its
    own min / max, like a calibrated activation."""
    lo = min(float(value.min()), 0.0) if value.size else 0.0
    hi = max(float(value.max()), 0.0) if value.size else 0.0
    if hi - lo <= 0.0:  # all zeros: any scale represents them exactly
        hi = 1.0
    q = activation_type(lo, hi, min_scale)
    data = quantize_values(value, q.scale, q.zero_point, QMIN, QMAX, np.int8)
    return data, TensorType(q, value.shape)


def weight_scales(weight: np.ndarray, axis: int | None) -> np.ndarray:
    """`max|w| / 127` per index of `axis` (float64, one per index), or a single scale
    for the whole tensor when `axis` is None. An all-zero slice gets scale 1/127."""
    w = np.abs(np.asarray(weight, np.float64))
    if axis is None:
        peak = np.array([w.max() if w.size else 0.0])
    else:
        others = tuple(i for i in range(w.ndim) if i != axis)
        peak = w.max(axis=others) if w.size else np.zeros(w.shape[axis])
    peak = np.where(peak > 0, peak, 1.0)
    return peak / WEIGHT_QMAX


def quantize_weight(weight: np.ndarray, axis: int | None, scales: np.ndarray | None = None,
                    ) -> tuple[np.ndarray, TensorType, np.ndarray]:
    """(i8 values, quantized tensor type, scales) of a symmetric weight, per index of
    `axis` or per tensor (axis None); `scales` default to `weight_scales`."""
    if scales is None:
        scales = weight_scales(weight, axis)
    scales = np.asarray(scales, np.float64)
    if axis is None:
        q = UniformQuantizedType.per_tensor(float(scales[0]), 0)
        broadcast = scales[0]
    else:
        q = UniformQuantizedType.per_axis([float(s) for s in scales], [0] * len(scales), axis)
        shape = [1] * weight.ndim
        shape[axis] = -1
        broadcast = scales.reshape(shape)
    data = quantize_values(weight, broadcast, 0, -WEIGHT_QMAX, WEIGHT_QMAX, np.int8)
    return data, TensorType(q, weight.shape), scales


def quantize_bias(bias: np.ndarray, scales: np.ndarray, axis: int,
                  ) -> tuple[np.ndarray, TensorType]:
    """(i32 values, type) of a bias at `scales` (one per index of `axis`, zero point 0).
    Values beyond the i32 range saturate."""
    scales = np.asarray(scales, np.float64)
    shape = [1] * bias.ndim
    shape[axis] = -1
    data = quantize_values(bias, scales.reshape(shape), 0, I32_MIN, I32_MAX, np.int32)
    q = UniformQuantizedType.per_axis([float(s) for s in scales], [0] * len(scales), axis,
                                      bits=32)
    return data, TensorType(q, bias.shape)
