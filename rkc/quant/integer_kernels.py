"""Integer kernels: the semantics of docs/quantization.md on numpy arrays.

One function per rule of the specification; each docstring quotes the rule it implements.
The kernels know nothing of IR: they take stored integers (any integer dtype) and plain
quantization parameters, compute on int64 and return int64 values inside the requested
output range (the caller casts them to the storage dtype). Fixed-point rescaling is
`rkc.quant.requant`'s and only used from here, never re-derived.

Invariants:
  * every real multiplier is computed in float64 exactly as the specification writes it,
    left to right (`s_x * s_w[o] / s_y`, `s_x / (s_y * n)`, ...): the 15-bit mantissa of
    `requant.multiplier` depends on the last bit of that product;
  * matrix products run in float64 BLAS only when the bound max|a| * max|b| * K < 2**53
    makes every partial sum exact, otherwise in int64;
  * NaN quantizes to the zero point (it stands for 0.0), +-inf to qmax / qmin.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rkc.interpreter.kernels import conv_patches, pool_output_size
from rkc.quant import requant

Pads = tuple[int, int, int, int]
Pair = tuple[int, int]


@dataclass(frozen=True)
class TensorQ:
    """Per-tensor quantization of an activation: q stands for (q - zp) * scale;
    stored values lie in [qmin, qmax]."""

    scale: float
    zp: int
    qmin: int
    qmax: int


def _i64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, np.int64)


# ---------------------------------------------------------------------------
# precision changes
# ---------------------------------------------------------------------------
def quantize(x: np.ndarray, scale: np.ndarray | float, zp: np.ndarray | int, qmin: int,
             qmax: int) -> np.ndarray:
    """`q = clamp(round_half_even(x / s) + zp, qmin, qmax)`; NaN gives zp (NaN is read
    as 0.0, a choice the specification leaves open)."""
    x = np.asarray(x, np.float64)
    return requant.quantize(np.where(np.isnan(x), 0.0, x), scale, zp, qmin, qmax)


def dequantize(q: np.ndarray, scale: np.ndarray | float, zp: np.ndarray | int) -> np.ndarray:
    """`x = (q - zp) * s` (computed in float64, stored as f32)."""
    return requant.dequantize(q, scale, zp)


def rescale(acc: np.ndarray, real: np.ndarray | float) -> np.ndarray:
    """`rescale(acc, r)`: `(M, S) = multiplier(r)`, `round_shift(acc * M, S)` on int64 (no
    zero point, no clamp); `real` may be an array broadcasting against `acc`."""
    m, s = requant.multipliers(np.asarray(real, np.float64))
    return requant.round_shift(_i64(acc) * m, s)


def requantize(acc: np.ndarray, real: np.ndarray | float, zp: int, lo: int,
               hi: int) -> np.ndarray:
    """`requantize(acc, r, zp, lo, hi) = clamp(rescale(acc, r) + zp, lo, hi)`."""
    return requant.rescale(_i64(acc), np.asarray(real, np.float64), zp, lo, hi)


def requantize_to(q: np.ndarray, src: TensorQ, dst: TensorQ) -> np.ndarray:
    """quant.requantize: `q' = rescale(q - zp, s / s') + zp'`, clamped to q''s storage."""
    return requantize(_i64(q) - src.zp, src.scale / dst.scale, dst.zp, dst.qmin, dst.qmax)


def activation_range(activation: str | None, params: Sequence[float],
                     y: TensorQ) -> tuple[int, int]:
    """`lo, hi` = `qmin, qmax` narrowed by a fused activation: `relu` gives
    `lo = max(qmin, z_y)`; `clip(a, b)` gives `lo = max(qmin, z_y + round(a / s_y))`,
    `hi = min(qmax, z_y + round(b / s_y))` (round half to even; both bounds are then kept
    inside [qmin, qmax], so an infinite or out-of-range clip bound saturates)."""
    lo, hi = y.qmin, y.qmax
    if activation == "relu":
        lo = max(y.qmin, y.zp)
    elif activation == "clip":
        a, b = (y.zp + float(np.rint(v / y.scale)) for v in params)
        lo = int(min(max(y.qmin, a), y.qmax))
        hi = int(max(min(y.qmax, b), y.qmin))
    elif activation is not None:
        raise ValueError(f"no integer semantics for fused activation {activation}")
    return lo, hi


# ---------------------------------------------------------------------------
# convolution and matrix products
# ---------------------------------------------------------------------------
def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact int64 `np.matmul`, through float64 BLAS when every partial sum is < 2**53."""
    a, b = _i64(a), _i64(b)
    if a.size == 0 or b.size == 0:
        return np.matmul(a, b)
    bound = int(np.abs(a).max()) * int(np.abs(b).max()) * a.shape[-1]
    if bound < 2**53:
        return np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(np.int64)
    return np.matmul(a, b)


def conv2d_acc(xc: np.ndarray, w: np.ndarray, strides: Pair, pads: Pads, dilations: Pair,
               group: int) -> np.ndarray:
    """`acc[o] = sum (x - z_x) * w` for centred input `xc = x - z_x` (so padding, which
    contributes `x = z_x`, is 0): int64 [N, O, OH, OW]; NCHW / OIHW, ONNX pads."""
    xc, w = _i64(xc), _i64(w)
    o, cg, kh, kw = w.shape
    patches = conv_patches(xc, group, (kh, kw), strides, pads, dilations)
    n, _, oh, ow = patches.shape[:4]
    cols = patches.reshape(n, group, oh * ow, cg * kh * kw)
    wm = w.reshape(group, o // group, cg * kh * kw).transpose(0, 2, 1)
    acc = _matmul(cols, wm)  # [N, G, OH*OW, O/G]
    return acc.transpose(0, 1, 3, 2).reshape(n, o, oh, ow)


def conv_transpose2d_acc(xc: np.ndarray, w: np.ndarray, strides: Pair, pads: Pads,
                         dilations: Pair, group: int, output_padding: Pair) -> np.ndarray:
    """Transposed-convolution accumulator `sum (x - z_x) * w` for centred `xc`, weight
    [C, O/group, KH, KW], with ONNX ConvTranspose geometry: int64 [N, O, OH, OW]."""
    xc, w = _i64(xc), _i64(w)
    n, c, h, wd = xc.shape
    _, og, kh, kw = w.shape
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = strides, dilations, pads
    full_h = sh * (h - 1) + output_padding[0] + (kh - 1) * dh + 1
    full_w = sw * (wd - 1) + output_padding[1] + (kw - 1) * dw + 1
    full = np.zeros((n, group, og, full_h, full_w), np.int64)
    xg = xc.reshape(n, group, c // group, h * wd)
    wg = w.reshape(group, c // group, og, kh, kw)
    for i in range(kh):
        for j in range(kw):
            contrib = _matmul(wg[:, :, :, i, j].transpose(0, 2, 1), xg)  # [N, G, Og, H*W]
            full[..., i * dh: i * dh + sh * (h - 1) + 1: sh,
                 j * dw: j * dw + sw * (wd - 1) + 1: sw] += contrib.reshape(n, group, og, h, wd)
    y = full[:, :, :, pt: full_h - pb, pl: full_w - pr]
    return y.reshape(n, og * group, full_h - pt - pb, full_w - pl - pr)


def conv2d(x: np.ndarray, xq: TensorQ, w: np.ndarray, w_scales: np.ndarray,
           bias: np.ndarray | None, yq: TensorQ, lo: int, hi: int, strides: Pair, pads: Pads,
           dilations: Pair, group: int) -> np.ndarray:
    """conv2d: `acc[o] = sum (x - z_x) * w + b[o]` (padding contributes `x = z_x`);
    `y = requantize(acc, s_x * s_w[o] / s_y, z_y, lo, hi)` per output channel.
    `w_scales` has one scale per output channel (a per-tensor weight repeats its scale)."""
    acc = conv2d_acc(_i64(x) - xq.zp, w, strides, pads, dilations, group)
    return _conv_output(acc, xq, w_scales, bias, yq, lo, hi)


def conv_transpose2d(x: np.ndarray, xq: TensorQ, w: np.ndarray, w_scales: np.ndarray,
                     bias: np.ndarray | None, yq: TensorQ, lo: int, hi: int, strides: Pair,
                     pads: Pads, dilations: Pair, group: int,
                     output_padding: Pair) -> np.ndarray:
    """conv_transpose2d: "as conv2d" — `acc[o] = sum (x - z_x) * w + b[o]`,
    `y = requantize(acc, s_x * s_w[o] / s_y, z_y, lo, hi)` per output channel."""
    acc = conv_transpose2d_acc(_i64(x) - xq.zp, w, strides, pads, dilations, group,
                               output_padding)
    return _conv_output(acc, xq, w_scales, bias, yq, lo, hi)


def _conv_output(acc: np.ndarray, xq: TensorQ, w_scales: np.ndarray, bias: np.ndarray | None,
                 yq: TensorQ, lo: int, hi: int) -> np.ndarray:
    o = acc.shape[1]
    if bias is not None:
        acc = acc + _i64(bias).reshape(1, o, 1, 1)
    real = xq.scale * np.asarray(w_scales, np.float64) / yq.scale
    return requantize(acc, np.broadcast_to(real, (o,)).reshape(1, o, 1, 1), yq.zp, lo, hi)


def gemm(a: np.ndarray, aq: TensorQ, b: np.ndarray, b_scales: np.ndarray,
         c: np.ndarray | None, yq: TensorQ, lo: int, hi: int, trans_a: bool,
         trans_b: bool) -> np.ndarray:
    """gemm (alpha = beta = 1, B symmetric): `acc = (A - z_a) @ B + C`; requantize per
    column with `s_a * s_b[n] / s_y`. `b_scales` has one scale per column n."""
    ac = _i64(a) - aq.zp
    bm = _i64(b)
    acc = _matmul(ac.T if trans_a else ac, bm.T if trans_b else bm)
    if c is not None:
        acc = acc + _i64(c)
    real = aq.scale * np.asarray(b_scales, np.float64) / yq.scale
    return requantize(acc, np.broadcast_to(real, (acc.shape[-1],)), yq.zp, lo, hi)


def matmul(a: np.ndarray, aq: TensorQ, b: np.ndarray, b_scales: np.ndarray | float,
           b_zps: np.ndarray | int, yq: TensorQ) -> np.ndarray:
    """matmul: `acc = (A - z_a) @ (B - z_b)`; requantize per column with
    `s_a * s_b[n] / s_y`. `b_scales` / `b_zps` are scalars or one value per column
    (B's last axis); numpy matmul semantics (batch broadcasting, 1-D operands)."""
    acc = _matmul(_i64(a) - aq.zp, _i64(b) - np.asarray(b_zps, np.int64))
    real = aq.scale * np.asarray(b_scales, np.float64) / yq.scale
    return requantize(acc, real, yq.zp, yq.qmin, yq.qmax)


# ---------------------------------------------------------------------------
# elementwise
# ---------------------------------------------------------------------------
def add_sub(a: np.ndarray, aq: TensorQ, b: np.ndarray, bq: TensorQ, yq: TensorQ,
            subtract: bool) -> np.ndarray:
    """add / sub: common accumulator scale `s_acc = min(s_a, s_b) / 256`:
    `A = rescale(a - z_a, s_a / s_acc)`, `B = rescale(b - z_b, s_b / s_acc)`,
    `y = requantize(A +- B, s_acc / s_y, z_y)` (numpy broadcasting)."""
    s_acc = min(aq.scale, bq.scale) / 256
    ra = rescale(_i64(a) - aq.zp, aq.scale / s_acc)
    rb = rescale(_i64(b) - bq.zp, bq.scale / s_acc)
    acc = ra - rb if subtract else ra + rb
    return requantize(acc, s_acc / yq.scale, yq.zp, yq.qmin, yq.qmax)


def mul(a: np.ndarray, aq: TensorQ, b: np.ndarray, bq: TensorQ, yq: TensorQ) -> np.ndarray:
    """mul: `y = requantize((a - z_a) * (b - z_b), s_a * s_b / s_y, z_y)`."""
    acc = (_i64(a) - aq.zp) * (_i64(b) - bq.zp)
    return requantize(acc, aq.scale * bq.scale / yq.scale, yq.zp, yq.qmin, yq.qmax)


def to_output(x: np.ndarray, xq: TensorQ, yq: TensorQ, lo: int | None = None,
              hi: int | None = None) -> np.ndarray:
    """relu / clip, and each operand of max / min / concat: "requantized to y's
    parameters", `requantize(x - z_x, s_x / s_y, z_y, lo, hi)` (lo, hi default to y's
    storage range; the identity when y has x's parameters)."""
    lo = yq.qmin if lo is None else lo
    hi = yq.qmax if hi is None else hi
    return requantize(_i64(x) - xq.zp, xq.scale / yq.scale, yq.zp, lo, hi)


def max_min(a: np.ndarray, aq: TensorQ, b: np.ndarray, bq: TensorQ, yq: TensorQ,
            take_max: bool) -> np.ndarray:
    """max / min: both operands requantized to y's parameters, then max / min."""
    ra, rb = to_output(a, aq, yq), to_output(b, bq, yq)
    return np.maximum(ra, rb) if take_max else np.minimum(ra, rb)


def concat(xs: Sequence[np.ndarray], xqs: Sequence[TensorQ], yq: TensorQ,
           axis: int) -> np.ndarray:
    """concat: every input requantized to y's parameters, then concatenated."""
    return np.concatenate([to_output(x, q, yq) for x, q in zip(xs, xqs, strict=True)], axis)


def build_table(f: Callable[[np.ndarray], np.ndarray], xq: TensorQ,
                yq: TensorQ) -> np.ndarray:
    """Table ops: `T[q] = quantize(f(dequantize(q)))` over every input code q in
    [qmin, qmax] (entry q - qmin), `f` the float32 kernel of the op."""
    codes = np.arange(xq.qmin, xq.qmax + 1, dtype=np.int64)
    with np.errstate(all="ignore"):
        fx = f(dequantize(codes, xq.scale, xq.zp))
    return quantize(fx, yq.scale, yq.zp, yq.qmin, yq.qmax)


def lookup(x: np.ndarray, table: np.ndarray, xq: TensorQ) -> np.ndarray:
    """`y = T[x]` for a table built by `build_table`."""
    return table[_i64(x) - xq.qmin]


# ---------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------
def _windows(xp: np.ndarray, kernel: Pair, strides: Pair, dilations: Pair, out: Pair):
    """The (i, j) taps of every pooling window: views [N, C, OH, OW] of padded `xp`."""
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            h0, w0 = i * dilations[0], j * dilations[1]
            yield xp[:, :, h0: h0 + strides[0] * (out[0] - 1) + 1: strides[0],
                     w0: w0 + strides[1] * (out[1] - 1) + 1: strides[1]]


def _pool_geometry(shape: Sequence[int], kernel: Pair, strides: Pair, pads: Pads,
                   dilations: Pair, ceil_mode: bool) -> tuple[Pair, Pads]:
    """Output size and the padding (begin, begin, end, end) that holds every window."""
    h, w = shape[2], shape[3]
    oh = pool_output_size(h, kernel[0], strides[0], pads[0], pads[2], dilations[0], ceil_mode)
    ow = pool_output_size(w, kernel[1], strides[1], pads[1], pads[3], dilations[1], ceil_mode)
    end_h = max((oh - 1) * strides[0] + (kernel[0] - 1) * dilations[0] + 1 - pads[0] - h, 0)
    end_w = max((ow - 1) * strides[1] + (kernel[1] - 1) * dilations[1] + 1 - pads[1] - w, 0)
    return (oh, ow), (pads[0], pads[1], end_h, end_w)


def max_pool2d(x: np.ndarray, xq: TensorQ, yq: TensorQ, kernel: Pair, strides: Pair,
               pads: Pads, dilations: Pair, ceil_mode: bool) -> np.ndarray:
    """max_pool2d: integer max (padding never wins: it is qmin), then
    `requantize(m - z_x, s_x / s_y, z_y)`."""
    out, (pt, pl, pb, pr) = _pool_geometry(x.shape, kernel, strides, pads, dilations, ceil_mode)
    xp = np.pad(_i64(x), ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=xq.qmin)
    m = functools.reduce(np.maximum, _windows(xp, kernel, strides, dilations, out))
    return to_output(m, xq, yq)


def global_max_pool(x: np.ndarray, xq: TensorQ, yq: TensorQ) -> np.ndarray:
    """global_max_pool: integer max over the spatial axes, then
    `requantize(m - z_x, s_x / s_y, z_y)`."""
    m = np.max(_i64(x), axis=tuple(range(2, x.ndim)), keepdims=True)
    return to_output(m, xq, yq)


def avg_pool_divisors(shape: Sequence[int], kernel: Pair, strides: Pair, pads: Pads,
                      ceil_mode: bool, count_include_pad: bool) -> np.ndarray:
    """`n`, the float op's divisor at every output position [OH, OW] (onnxruntime rules:
    with count_include_pad the window clipped to [-pad_begin, in + pad_end), otherwise
    the number of input elements in it)."""
    (oh, ow), _ = _pool_geometry(shape, kernel, strides, pads, (1, 1), ceil_mode)
    counts = []
    for out, size, k, s, pb, pe in ((oh, shape[2], kernel[0], strides[0], pads[0], pads[2]),
                                    (ow, shape[3], kernel[1], strides[1], pads[1], pads[3])):
        start = np.arange(out) * s - pb
        if count_include_pad:
            counts.append(np.minimum(start + k, size + pe) - start)
        else:
            counts.append(np.minimum(start + k, size) - np.maximum(start, 0))
    return counts[0][:, None] * counts[1][None, :]


def avg_pool2d(x: np.ndarray, xq: TensorQ, yq: TensorQ, kernel: Pair, strides: Pair,
               pads: Pads, ceil_mode: bool, count_include_pad: bool) -> np.ndarray:
    """avg_pool2d: `acc = sum (x - z_x)` over the window (padding contributes 0), `n` the
    float op's divisor at that position; `y = requantize(acc, s_x / (s_y * n), z_y)`."""
    out, (pt, pl, pb, pr) = _pool_geometry(x.shape, kernel, strides, pads, (1, 1), ceil_mode)
    xp = np.pad(_i64(x) - xq.zp, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    acc = sum(_windows(xp, kernel, strides, (1, 1), out))
    n = avg_pool_divisors(x.shape, kernel, strides, pads, ceil_mode, count_include_pad)
    divisors, where = np.unique(n, return_inverse=True)  # few distinct n: one (M, S) each
    m, s = requant.multipliers(xq.scale / (yq.scale * divisors.astype(np.float64)))
    shape = n.shape
    return requant.requantize(acc, m[where].reshape(shape), s[where].reshape(shape), yq.zp,
                              yq.qmin, yq.qmax)


def global_avg_pool(x: np.ndarray, xq: TensorQ, yq: TensorQ) -> np.ndarray:
    """global_avg_pool: `acc = sum (x - z_x)` over the spatial axes, `n` their size;
    `y = requantize(acc, s_x / (s_y * n), z_y)`."""
    axes = tuple(range(2, x.ndim))
    acc = np.sum(_i64(x) - xq.zp, axis=axes, keepdims=True)
    n = math.prod(x.shape[2:])
    return requantize(acc, xq.scale / (yq.scale * n), yq.zp, yq.qmin, yq.qmax)
