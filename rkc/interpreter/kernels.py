"""Float reference kernels of the `nn` dialect, as plain numpy functions.

Every kernel follows the ONNX semantics of the op it is named after and matches
onnxruntime's CPU provider (error <= 1e-6 of the output's magnitude on the test table).
Float inputs are float32 arrays and float results are float32; integer inputs keep their
dtype. Arithmetic is float32 except where float64 only makes the float32 result more
accurate: erf/gelu (Cody's rational approximations), layer_norm statistics and the sums of
reduce_mean, reduce_sum and global_avg_pool.

Conventions:
  * Tensors are NCHW for the 2-D kernels (conv, pooling).
  * 2-D pads are in ONNX order: (top, left, bottom, right), i.e.
    (x1_begin, x2_begin, x1_end, x2_end).
  * `axis` arguments may be negative (counted from the end) unless stated otherwise.
"""

import builtins
from collections.abc import Sequence

import numpy as np

from rkc.dialects.nn import conv_output_size, pool_output_size

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _is_float(x: np.ndarray) -> bool:
    return np.issubdtype(x.dtype, np.floating)


def _f32(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _norm_axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _tap(
    xp: np.ndarray, start_h: int, start_w: int, oh: int, ow: int, sh: int, sw: int
) -> np.ndarray:
    """The strided [.., oh, ow] view of xp's last two axes starting at (start_h, start_w)."""
    end_h = start_h + sh * (oh - 1) + 1
    end_w = start_w + sw * (ow - 1) + 1
    return xp[..., start_h:end_h:sh, start_w:end_w:sw]


# ---------------------------------------------------------------------------
# Convolution and matrix products
# ---------------------------------------------------------------------------


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    strides: tuple[int, int],
    pads: tuple[int, int, int, int],
    dilations: tuple[int, int],
    group: int,
) -> np.ndarray:
    """ONNX Conv (2-D, NCHW): x [N,C,H,W], w [O,C/group,KH,KW], b [O] or None."""
    x = _f32(x)
    w = _f32(w)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    sh, sw = strides
    dh, dw = dilations
    pt, pl, pb, pr = pads
    og = o // group
    oh = (h + pt + pb - ((kh - 1) * dh + 1)) // sh + 1
    ow = (wd + pl + pr - ((kw - 1) * dw + 1)) // sw + 1
    if cg == 1:
        # Depthwise (group == C, O = C * multiplier): one broadcast multiply per tap.
        xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr))) if any(pads) else x
        y = np.zeros((n, c, og, oh, ow), dtype=np.float32)
        wt = w.reshape(c, og, kh, kw)
        for i in range(kh):
            for j in range(kw):
                tap = _tap(xp, i * dh, j * dw, oh, ow, sh, sw)
                y += tap[:, :, None, :, :] * wt[None, :, :, i, j, None, None]
        y = y.reshape(n, o, oh, ow)
        if b is not None:
            y = y + _f32(b).reshape(1, o, 1, 1)
        return np.ascontiguousarray(y, dtype=np.float32)
    # im2col per group: [N, G, OH*OW, Cg*KH*KW] @ [G, Cg*KH*KW, Og]. The operands' values,
    # shapes and memory layouts are those of the straightforward numpy formulation (BLAS
    # results depend on them to the ulp); only how `cols` is filled and how the result
    # reaches NCHW are tuned for speed.
    cols = _im2col(x, group, (kh, kw), (oh, ow), strides, pads, dilations)
    wm = w.reshape(group, og, cg * kh * kw).transpose(0, 2, 1)
    y = np.matmul(cols, wm)  # [N, G, OH*OW, Og]
    nchw = y.transpose(0, 1, 3, 2).reshape(n, o, oh, ow)  # strided view or copy
    out = np.empty((n, o, oh, ow), dtype=np.float32)
    if b is not None:
        np.add(nchw, _f32(b).reshape(1, o, 1, 1), out=out)
    else:
        out[...] = nchw
    return out


IM2COL_BAND_BYTES = 512 << 10
"""Patch-matrix bytes `_im2col` fills per band of output rows (about an L2 cache)."""
IM2COL_MIN_CHANNELS = 8
"""Fewer channels per group: `_im2col` copies the window view directly (measured: the
tap-by-tap fill wins from 8 channels on, loses on the 3-channel stems)."""


def _patch_view(xp: np.ndarray, group: int, kernel: tuple[int, int], out: tuple[int, int],
                strides: tuple[int, int], dilations: tuple[int, int]) -> np.ndarray:
    """The patches of the padded NCHW `xp` as a strided view [N, G, OH, OW, Cg, KH, KW]."""
    (kh, kw), (oh, ow), (sh, sw), (dh, dw) = kernel, out, strides, dilations
    n, c = xp.shape[:2]
    win = np.lib.stride_tricks.sliding_window_view(
        xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3)
    )[:, :, : sh * (oh - 1) + 1 : sh, : sw * (ow - 1) + 1 : sw, ::dh, ::dw]
    return win.reshape(n, group, c // group, oh, ow, kh, kw).transpose(0, 1, 3, 4, 2, 5, 6)


def conv_patches(x: np.ndarray, group: int, kernel: tuple[int, int],
                 strides: Sequence[int], pads: Sequence[int], dilations: Sequence[int]
                 ) -> np.ndarray:
    """The patches of NCHW `x` zero-padded by ONNX `pads` as a strided view
    [N, G, OH, OW, Cg, KH, KW] (the straightforward im2col, for kernels that need no
    special layout: the integer and fp16 references)."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    pt, pl, pb, pr = pads
    _, _, h, wd = x.shape
    out = (conv_output_size(h, kh, sh, pt, pb, dh), conv_output_size(wd, kw, sw, pl, pr, dw))
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    return _patch_view(xp, group, (kh, kw), out, (sh, sw), (dh, dw))


def _im2col(x: np.ndarray, group: int, kernel: tuple[int, int], out: tuple[int, int],
            strides: tuple[int, int], pads: tuple[int, int, int, int],
            dilations: tuple[int, int]) -> np.ndarray:
    """The [N, G, OH*OW, Cg*KH*KW] patch matrix of NCHW `x` zero-padded by `pads`
    (columns ordered channel, kernel row, kernel column), laid out exactly as numpy's
    reshape of the padded sliding-window view lays it out: a view of the padded input
    when one exists (maybe F-ordered: BLAS then reads it transposed, which can round
    differently than a copy), else C-contiguous. A copy is filled one kernel tap at a
    time from a padded channels-last copy of `x`, so each copy moves whole channel rows
    (a generic strided copy would have a 1..7-element inner loop), in bands of output
    rows that stay in cache across the taps."""
    (kh, kw), (oh, ow), (sh, sw), (dh, dw) = kernel, out, strides, dilations
    pt, pl, pb, pr = pads
    n, c, h, wd = x.shape
    cg = c // group
    shape = (n, group, oh * ow, cg * kh * kw)
    probe = np.empty((n, c, h + pt + pb, wd + pl + pr), dtype=x.dtype)  # layout only
    try:
        np.reshape(_patch_view(probe, group, kernel, out, strides, dilations), shape, copy=False)
    except ValueError:
        pass  # a copy: filled below
    else:
        # the layout of np.pad's copy (C-contiguous) even when there is nothing to pad
        xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr))) if any(pads) else \
            np.ascontiguousarray(x)
        return np.reshape(_patch_view(xp, group, kernel, out, strides, dilations), shape,
                          copy=False)
    if cg < IM2COL_MIN_CHANNELS:  # channel rows too short to pay for the channels-last copy
        xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
        return np.ascontiguousarray(_patch_view(xp, group, kernel, out, strides,
                                                dilations)).reshape(shape)
    padded = np.zeros((n, group, h + pt + pb, wd + pl + pr, cg), dtype=x.dtype)
    padded[:, :, pt : pt + h, pl : pl + wd, :] = x.reshape(n, group, cg, h, wd).transpose(
        0, 1, 3, 4, 2)
    cols = np.empty((n, group, oh, ow, cg, kh, kw), dtype=x.dtype)
    # bands of output rows small enough to stay in cache across the KH*KW tap copies
    band = max(1, IM2COL_BAND_BYTES // (n * group * ow * cg * kh * kw * x.itemsize))
    for top in range(0, oh, band):
        rows = min(band, oh - top)
        for i in range(kh):
            for j in range(kw):
                r, q = top * sh + i * dh, j * dw
                cols[:, :, top : top + rows, :, :, i, j] = padded[
                    :, :, r : r + sh * (rows - 1) + 1 : sh, q : q + sw * (ow - 1) + 1 : sw, :]
    return cols.reshape(shape)


def conv_transpose2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    strides: tuple[int, int],
    pads: tuple[int, int, int, int],
    dilations: tuple[int, int],
    group: int,
    output_padding: tuple[int, int],
) -> np.ndarray:
    """ONNX ConvTranspose (2-D, NCHW): x [N,C,H,W], w [C,O/group,KH,KW], b [O] or None.

    Output size per axis: stride*(in-1) + output_padding + ((k-1)*d+1) - pad_begin - pad_end;
    the output_padding rows/columns are appended at the end (before the end crop).
    """
    x = _f32(x)
    w = _f32(w)
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    cg = c // group
    o = og * group
    sh, sw = strides
    dh, dw = dilations
    pt, pl, pb, pr = pads
    full_h = sh * (h - 1) + output_padding[0] + (kh - 1) * dh + 1
    full_w = sw * (wd - 1) + output_padding[1] + (kw - 1) * dw + 1
    full = np.zeros((n, group, og, full_h, full_w), dtype=np.float32)
    xg = x.reshape(n, group, cg, h * wd)
    wg = w.reshape(group, cg, og, kh, kw)
    for i in range(kh):
        for j in range(kw):
            contrib = np.matmul(wg[:, :, :, i, j].transpose(0, 2, 1), xg)  # [N, G, Og, H*W]
            _tap(full, i * dh, j * dw, h, wd, sh, sw)[...] += contrib.reshape(n, group, og, h, wd)
    y = full[:, :, :, pt : full_h - pb, pl : full_w - pr].reshape(
        n, o, full_h - pt - pb, full_w - pl - pr
    )
    if b is not None:
        y = y + _f32(b).reshape(1, o, 1, 1)
    return np.ascontiguousarray(y, dtype=np.float32)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX MatMul: numpy matmul semantics (batch broadcasting, 1-D promotion)."""
    return np.matmul(a, b)


def gemm(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray | None,
    alpha: float,
    beta: float,
    trans_a: bool,
    trans_b: bool,
) -> np.ndarray:
    """ONNX Gemm: alpha * op(a) @ op(b) + beta * c, with c unidirectionally broadcast."""
    a = a.T if trans_a else a
    b = b.T if trans_b else b
    y = np.matmul(a, b)
    if alpha != 1.0:
        y = y * np.asarray(alpha, dtype=y.dtype)
    if c is not None:
        cc = c if beta == 1.0 else c * np.asarray(beta, dtype=c.dtype)
        y = y + cc
    return y


# ---------------------------------------------------------------------------
# Broadcasting binary ops
# ---------------------------------------------------------------------------


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX Add with numpy broadcasting."""
    return np.add(a, b)


def sub(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX Sub with numpy broadcasting."""
    return np.subtract(a, b)


def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX Mul with numpy broadcasting."""
    return np.multiply(a, b)


def div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX Div with numpy broadcasting; integer division truncates toward zero (as C++)."""
    if _is_float(a):
        return np.divide(a, b)
    q = np.floor_divide(a, b)
    inexact = (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
    return (q + inexact.astype(q.dtype)).astype(np.result_type(a, b))


def maximum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX Max of two inputs with numpy broadcasting."""
    return np.maximum(a, b)


def minimum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX Min of two inputs with numpy broadcasting."""
    return np.minimum(a, b)


def pow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX Pow: a ** b broadcast; the result has a's dtype (the exponent is cast to it)."""
    if _is_float(a):
        return np.power(a, b.astype(a.dtype))
    r = np.power(a.astype(np.float64), b.astype(np.float64))
    return np.trunc(r).astype(a.dtype)


# ---------------------------------------------------------------------------
# Unary activations
# ---------------------------------------------------------------------------


def relu(x: np.ndarray) -> np.ndarray:
    """ONNX Relu: max(x, 0)."""
    return np.maximum(x, np.zeros((), dtype=x.dtype))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """ONNX Sigmoid: 1 / (1 + exp(-x)), evaluated without overflow."""
    x = _f32(x)
    e = np.abs(x)
    np.negative(e, out=e)
    np.exp(e, out=e)  # exp(-|x|) in (0, 1]
    one = np.float32(1.0)
    numerator = np.where(x >= 0, one, e)  # 1 / (1 + e) for x >= 0, e / (1 + e) below
    np.divide(numerator, e + one, out=numerator)
    return numerator


def tanh(x: np.ndarray) -> np.ndarray:
    """ONNX Tanh."""
    return np.tanh(_f32(x))


def exp(x: np.ndarray) -> np.ndarray:
    """ONNX Exp."""
    return np.exp(_f32(x))


def log(x: np.ndarray) -> np.ndarray:
    """ONNX Log (natural logarithm; -inf at 0, nan below)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(_f32(x))


def sqrt(x: np.ndarray) -> np.ndarray:
    """ONNX Sqrt (nan for negative inputs)."""
    with np.errstate(invalid="ignore"):
        return np.sqrt(_f32(x))


def abs(x: np.ndarray) -> np.ndarray:
    """ONNX Abs."""
    return np.abs(x)


def neg(x: np.ndarray) -> np.ndarray:
    """ONNX Neg."""
    return np.negative(x)


# W. J. Cody, "Rational Chebyshev approximations for the error function",
# Math. Comp. 23 (1969); coefficients of Netlib SPECFUN CALERF (~1e-16 relative).
_ERF_A = (
    3.16112374387056560e00,
    1.13864154151050156e02,
    3.77485237685302021e02,
    3.20937758913846947e03,
    1.85777706184603153e-1,
)
_ERF_B = (
    2.36012909523441209e01,
    2.44024637934444173e02,
    1.28261652607737228e03,
    2.84423683343917062e03,
)
_ERF_C = (
    5.64188496988670089e-1,
    8.88314979438837594e00,
    6.61191906371416295e01,
    2.98635138197400131e02,
    8.81952221241769090e02,
    1.71204761263407058e03,
    2.05107837782607147e03,
    1.23033935479799725e03,
    2.15311535474403846e-8,
)
_ERF_D = (
    1.57449261107098347e01,
    1.17693950891312499e02,
    5.37181101862009858e02,
    1.62138957456669019e03,
    3.29079923573345963e03,
    4.36261909014324716e03,
    3.43936767414372164e03,
    1.23033935480374942e03,
)
_ERF_P = (
    3.05326634961232344e-1,
    3.60344899949804439e-1,
    1.25781726111229246e-1,
    1.60837851487422766e-2,
    6.58749161529837803e-4,
    1.63153871373020978e-2,
)
_ERF_Q = (
    2.56852019228982242e00,
    1.87295284992346047e00,
    5.27905102951428412e-1,
    6.05183413124413191e-2,
    2.33520497626869185e-3,
)
_SQRT_1_PI = 5.6418958354775628695e-1


def _erfc_tail(y: np.ndarray) -> np.ndarray:
    """erfc(y) for y > 0.46875 (float64), Cody's second and third intervals."""
    # 0.46875 < y <= 4
    num = _ERF_C[8] * y
    den = y.copy()
    for i in range(7):
        num = (num + _ERF_C[i]) * y
        den = (den + _ERF_D[i]) * y
    mid = (num + _ERF_C[7]) / (den + _ERF_D[7])
    # y > 4
    yt = np.maximum(y, 4.0)
    z = 1.0 / (yt * yt)
    num = _ERF_P[5] * z
    den = z
    for i in range(4):
        num = (num + _ERF_P[i]) * z
        den = (den + _ERF_Q[i]) * z
    far = z * (num + _ERF_P[4]) / (den + _ERF_Q[4])
    far = (_SQRT_1_PI - far) / yt
    r = np.where(y <= 4.0, mid, far)
    # exp(-y*y) computed as exp(-ysq*ysq) * exp(-del) to keep full precision.
    ysq = np.trunc(y * 16.0) / 16.0
    delta = (y - ysq) * (y + ysq)
    with np.errstate(under="ignore"):
        return np.exp(-ysq * ysq - delta) * r


def _erf_near(x: np.ndarray) -> np.ndarray:
    """erf(x) in float64 for |x| <= 0.46875 (Cody's first interval)."""
    ysq = x * x
    num = _ERF_A[4] * ysq
    den = ysq.copy()
    for i in range(3):
        num = (num + _ERF_A[i]) * ysq
        den = (den + _ERF_B[i]) * ysq
    return x * (num + _ERF_A[3]) / (den + _ERF_B[3])


def _erf64(x: np.ndarray) -> np.ndarray:
    """erf in float64, accurate to ~1e-16 relative (Cody's rational approximations)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.minimum(np.abs(x), 27.0)
    small = y <= 0.46875
    tail = np.copysign(1.0 - _erfc_tail(np.maximum(y, 0.46875)), x)
    return np.where(small, _erf_near(np.where(small, x, 0.0)), tail)


def _erfc64(x: np.ndarray) -> np.ndarray:
    """erfc = 1 - erf in float64 without cancellation for large positive x."""
    x = np.asarray(x, dtype=np.float64)
    y = np.minimum(np.abs(x), 27.0)
    small = y <= 0.46875
    tail = _erfc_tail(np.maximum(y, 0.46875))
    big = np.where(x > 0, tail, 2.0 - tail)
    return np.where(small, 1.0 - _erf_near(np.where(small, x, 0.0)), big)


def erf(x: np.ndarray) -> np.ndarray:
    """ONNX Erf, correctly rounded to float32 (float64 Cody approximation inside)."""
    return _erf64(x).astype(np.float32)


def silu(x: np.ndarray) -> np.ndarray:
    """SiLU / Swish: x * sigmoid(x)."""
    x = _f32(x)
    return x * sigmoid(x)


def hard_swish(x: np.ndarray) -> np.ndarray:
    """ONNX HardSwish: x * max(0, min(1, x/6 + 0.5))."""
    x = _f32(x)
    return x * hard_sigmoid(x, 1.0 / 6.0, 0.5)


def gelu(x: np.ndarray, approximate: str) -> np.ndarray:
    """ONNX Gelu-20: 0.5x(1+erf(x/sqrt2)), or 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))) for "tanh"."""
    xd = np.asarray(x, dtype=np.float64)
    if approximate == "none":
        y = 0.5 * xd * _erfc64(-xd / np.sqrt(2.0))  # = 1 + erf(x/sqrt2), no cancellation
    elif approximate == "tanh":
        z = np.sqrt(2.0 / np.pi) * (xd + 0.044715 * xd**3)
        with np.errstate(over="ignore"):
            y = xd / (1.0 + np.exp(-2.0 * z))  # = 0.5x(1 + tanh z), no cancellation
    else:
        raise ValueError(f"gelu: unknown approximate={approximate!r}")
    return y.astype(np.float32)


def leaky_relu(x: np.ndarray, alpha: float) -> np.ndarray:
    """ONNX LeakyRelu: x if x >= 0 else alpha * x."""
    x = _f32(x)
    return np.where(x >= 0, x, x * np.float32(alpha))


def prelu(x: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """ONNX PRelu: x if x >= 0 else slope * x; slope broadcasts (right-aligned) to x's shape."""
    x = _f32(x)
    return np.where(x < 0, x * _f32(slope), x).astype(np.float32)


def clip(x: np.ndarray, min: float, max: float) -> np.ndarray:
    """ONNX Clip: min(max(x, min), max); pass -inf / inf for an absent bound."""
    if _is_float(x):
        return np.minimum(np.maximum(x, x.dtype.type(min)), x.dtype.type(max))
    y = x
    if np.isfinite(min):
        y = np.maximum(y, x.dtype.type(min))
    if np.isfinite(max):
        y = np.minimum(y, x.dtype.type(max))
    return y


def hard_sigmoid(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """ONNX HardSigmoid: max(0, min(1, alpha * x + beta))."""
    x = _f32(x)
    y = x * np.float32(alpha) + np.float32(beta)
    return np.clip(y, np.float32(0.0), np.float32(1.0))


# ---------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """ONNX Softmax (opset >= 13): exp(x - max) / sum(exp(x - max)) along one axis."""
    x = _f32(x)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def batch_norm(
    x: np.ndarray,
    scale: np.ndarray,
    bias: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    epsilon: float,
) -> np.ndarray:
    """ONNX BatchNormalization (inference): (x - mean) / sqrt(var + eps) * scale + bias, axis 1."""
    x = _f32(x)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    inv = _f32(scale) / np.sqrt(_f32(var) + np.float32(epsilon))
    return (x - _f32(mean).reshape(shape)) * inv.reshape(shape) + _f32(bias).reshape(shape)


def layer_norm(
    x: np.ndarray,
    scale: np.ndarray,
    bias: np.ndarray | None,
    axis: int,
    epsilon: float,
) -> np.ndarray:
    """ONNX LayerNormalization: normalise over axes [axis, rank), then * scale + bias."""
    x = _f32(x)
    axes = tuple(range(_norm_axis(axis, x.ndim), x.ndim))
    mu = np.mean(x, axis=axes, keepdims=True, dtype=np.float64)
    d = x.astype(np.float64) - mu
    var = np.mean(d * d, axis=axes, keepdims=True)
    y = (d / np.sqrt(var + epsilon)).astype(np.float32) * _f32(scale)
    if bias is not None:
        y = y + _f32(bias)
    return y.astype(np.float32)


# ---------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------


def _pool_pad(
    x: np.ndarray,
    ekh: int,
    ekw: int,
    oh: int,
    ow: int,
    strides: tuple[int, int],
    pads: tuple[int, int, int, int],
    fill: float | int,
) -> np.ndarray:
    """Pad x's spatial axes so every window of extent (ekh, ekw) lies inside."""
    h, w = x.shape[2], x.shape[3]
    pt, pl = pads[0], pads[1]
    end_h = builtins.max((oh - 1) * strides[0] + ekh - pt - h, 0)
    end_w = builtins.max((ow - 1) * strides[1] + ekw - pl - w, 0)
    return np.pad(x, ((0, 0), (0, 0), (pt, end_h), (pl, end_w)), constant_values=fill)


def max_pool2d(
    x: np.ndarray,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    pads: tuple[int, int, int, int],
    dilations: tuple[int, int],
    ceil_mode: bool,
) -> np.ndarray:
    """ONNX MaxPool (2-D, NCHW); padding never wins (it is -inf)."""
    kh, kw = kernel
    sh, sw = strides
    dh, dw = dilations
    h, w = x.shape[2], x.shape[3]
    oh = pool_output_size(h, kh, sh, pads[0], pads[2], dh, ceil_mode)
    ow = pool_output_size(w, kw, sw, pads[1], pads[3], dw, ceil_mode)
    fill = -np.inf if _is_float(x) else np.iinfo(x.dtype).min
    xp = _pool_pad(x, (kh - 1) * dh + 1, (kw - 1) * dw + 1, oh, ow, strides, pads, fill)
    y = None
    for i in range(kh):
        for j in range(kw):
            tap = _tap(xp, i * dh, j * dw, oh, ow, sh, sw)
            y = tap.copy() if y is None else np.maximum(y, tap)
    return y


def avg_pool2d(
    x: np.ndarray,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    pads: tuple[int, int, int, int],
    ceil_mode: bool,
    count_include_pad: bool,
) -> np.ndarray:
    """ONNX AveragePool (2-D, NCHW), onnxruntime divisor rules.

    count_include_pad=False divides by the number of input elements in the window.
    count_include_pad=True divides by the window clipped to [-pad_begin, in + pad_end), so a
    ceil_mode window that hangs past the end padding is not divided by the full kernel size.
    """
    x = _f32(x)
    kh, kw = kernel
    sh, sw = strides
    pt, pl, pb, pr = pads
    h, w = x.shape[2], x.shape[3]
    oh = pool_output_size(h, kh, sh, pt, pb, 1, ceil_mode)
    ow = pool_output_size(w, kw, sw, pl, pr, 1, ceil_mode)
    xp = _pool_pad(x, kh, kw, oh, ow, strides, pads, 0.0)
    acc = np.zeros(x.shape[:2] + (oh, ow), dtype=np.float32)
    for i in range(kh):
        for j in range(kw):
            acc += _tap(xp, i, j, oh, ow, sh, sw)
    start_h = np.arange(oh) * sh - pt
    start_w = np.arange(ow) * sw - pl
    if count_include_pad:
        cnt_h = np.minimum(start_h + kh, h + pb) - start_h
        cnt_w = np.minimum(start_w + kw, w + pr) - start_w
    else:
        cnt_h = np.minimum(start_h + kh, h) - np.maximum(start_h, 0)
        cnt_w = np.minimum(start_w + kw, w) - np.maximum(start_w, 0)
    div = (cnt_h[:, None] * cnt_w[None, :]).astype(np.float32)
    return acc / div


def global_avg_pool(x: np.ndarray) -> np.ndarray:
    """ONNX GlobalAveragePool: mean over all axes after N, C (kept as size 1)."""
    x = _f32(x)
    axes = tuple(range(2, x.ndim))
    return np.mean(x, axis=axes, keepdims=True, dtype=np.float64).astype(np.float32)


def global_max_pool(x: np.ndarray) -> np.ndarray:
    """ONNX GlobalMaxPool: max over all axes after N, C (kept as size 1)."""
    return np.max(x, axis=tuple(range(2, x.ndim)), keepdims=True)


# ---------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------


def reduce_mean(x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """ONNX ReduceMean over explicit axes (float64 accumulation); axes=() is the identity."""
    if not axes:
        return x.copy()
    acc = np.float64 if _is_float(x) else None
    return np.mean(x, axis=tuple(axes), keepdims=keepdims, dtype=acc).astype(x.dtype)


def reduce_max(x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """ONNX ReduceMax over explicit axes; axes=() is the identity."""
    if not axes:
        return x.copy()
    return np.max(x, axis=tuple(axes), keepdims=keepdims)


def reduce_sum(x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """ONNX ReduceSum over explicit axes (float64 accumulation); axes=() is the identity."""
    if not axes:
        return x.copy()
    acc = np.float64 if _is_float(x) else x.dtype
    return np.sum(x, axis=tuple(axes), keepdims=keepdims, dtype=acc).astype(x.dtype)


# ---------------------------------------------------------------------------
# Data movement
# ---------------------------------------------------------------------------


def concat(xs: Sequence[np.ndarray], axis: int) -> np.ndarray:
    """ONNX Concat along axis."""
    return np.concatenate(list(xs), axis=axis)


def split(x: np.ndarray, axis: int, sizes: tuple[int, ...]) -> list[np.ndarray]:
    """ONNX Split into consecutive pieces of the given sizes along axis (sum(sizes) == dim)."""
    bounds = np.cumsum(sizes)[:-1].tolist()
    return [np.ascontiguousarray(p) for p in np.split(x, bounds, axis=axis)]


def normalize_slice(dim: int, start: int, end: int, step: int) -> tuple[int, int, int]:
    """Clamp one ONNX Slice (start, end, step) on an axis of length dim, as the `nn` dialect
    stores it.

    Negative start/end count from the end. For step > 0 both are clamped to [0, dim]; for
    step < 0 start is clamped to [0, dim-1] and end to [-1, dim-1], where -1 means "through
    index 0". An empty slice is returned with end == start.
    """
    if step == 0:
        raise ValueError("slice step must be non-zero")
    if dim == 0:
        return 0, 0, step
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        start = builtins.min(builtins.max(start, 0), dim)
        end = builtins.min(builtins.max(end, 0), dim)
        return start, builtins.max(end, start), step
    start = builtins.min(builtins.max(start, 0), dim - 1)
    end = builtins.min(builtins.max(end, -1), dim - 1)
    return start, builtins.min(end, start), step


def slice(
    x: np.ndarray,
    starts: Sequence[int],
    ends: Sequence[int | None],
    steps: Sequence[int],
) -> np.ndarray:
    """ONNX Slice given one normalised (start, end, step) per axis (see normalize_slice).

    Selects `x[starts[i]:ends[i]:steps[i]]` on every axis i, except that with a negative step
    an end of -1 (or None) means "through index 0". Unsliced axes are passed as (0, dim, 1).
    """
    index = tuple(
        builtins.slice(s, None if st < 0 and (e is None or e < 0) else e, st)
        for s, e, st in zip(starts, ends, steps, strict=True)
    )
    return np.ascontiguousarray(x[index])


def reshape(x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Row-major reshape to an explicit shape (ONNX's 0 = "copy dim" is resolved by the caller)."""
    return np.reshape(x, tuple(int(d) for d in shape))


def transpose(x: np.ndarray, perm: Sequence[int]) -> np.ndarray:
    """ONNX Transpose with an explicit permutation."""
    return np.ascontiguousarray(np.transpose(x, tuple(perm)))


def pad(x: np.ndarray, pads: Sequence[int], mode: str, value: float) -> np.ndarray:
    """ONNX Pad: pads = all begins then all ends (2*rank); negative entries crop.

    mode "constant" fills with value, "reflect" mirrors without repeating the edge, "edge"
    repeats the edge element.
    """
    r = x.ndim
    begins, ends = list(pads[:r]), list(pads[r:])
    crop = tuple(
        builtins.slice(builtins.max(-b, 0), x.shape[i] - builtins.max(-e, 0))
        for i, (b, e) in enumerate(zip(begins, ends, strict=True))
    )
    x = x[crop]
    widths = [(builtins.max(b, 0), builtins.max(e, 0)) for b, e in zip(begins, ends, strict=True)]
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=x.dtype.type(value))
    if mode in ("reflect", "edge"):
        return np.pad(x, widths, mode=mode)
    raise ValueError(f"pad: unknown mode {mode!r}")


# ---------------------------------------------------------------------------
# Resize
# ---------------------------------------------------------------------------


def _resize_coords(out_len: int, in_len: int, scale: float, mode: str) -> np.ndarray:
    """Input coordinate of every output index along one axis, in float32 like onnxruntime."""
    xo = np.arange(out_len, dtype=np.float32)
    s = np.float32(scale)
    half = np.float32(0.5)
    if mode == "half_pixel":
        return (xo + half) / s - half
    if mode == "pytorch_half_pixel":
        return (xo + half) / s - half if out_len > 1 else np.zeros(out_len, np.float32)
    if mode == "align_corners":
        if out_len == 1:
            return np.zeros(out_len, np.float32)
        return xo * np.float32(in_len - 1) / np.float32(out_len - 1)
    if mode == "asymmetric":
        return xo / s
    if mode == "tf_half_pixel_for_nearest":
        return (xo + half) / s
    raise ValueError(f"resize: unknown coordinate_transformation_mode {mode!r}")


def _nearest_index(c: np.ndarray, in_len: int, nearest_mode: str) -> np.ndarray:
    """Round float32 coordinates to input indices and clamp them to [0, in_len-1]."""
    f = np.floor(c)
    frac = c - f
    if nearest_mode == "round_prefer_floor":
        idx = np.where(frac > 0.5, f + 1, f)
    elif nearest_mode == "round_prefer_ceil":
        idx = np.where(frac >= 0.5, f + 1, f)
    elif nearest_mode == "floor":
        idx = f
    elif nearest_mode == "ceil":
        idx = np.ceil(c)
    else:
        raise ValueError(f"resize: unknown nearest_mode {nearest_mode!r}")
    return np.clip(idx.astype(np.int64), 0, in_len - 1)


def resize(
    x: np.ndarray,
    out_shape: tuple[int, ...],
    scales: tuple[float, ...],
    mode: str,
    coordinate_transformation_mode: str,
    nearest_mode: str,
) -> np.ndarray:
    """ONNX Resize (opset 11-19, no roi/antialias/extrapolation), as onnxruntime computes it.

    scales[i] is the ONNX scale of axis i (out/in as float32 when the model gives sizes);
    axes whose size and scale are unchanged are left alone. Coordinates are computed in
    float32 with the chosen coordinate_transformation_mode and the integer output length (so
    "align_corners" downsampling by scales follows onnxruntime, not ONNX's reference
    evaluator, which divides by in * scale). "nearest" rounds them with nearest_mode and
    clamps to the input; "linear" clamps them to [0, in-1] and interpolates separably between
    floor(c) and min(floor(c)+1, in-1) on every resized axis.

    Legacy Upsample-9 is mode "nearest" with coordinate mode "asymmetric" and nearest_mode
    "floor" (its scales are >= 1), or mode "linear" with coordinate mode "asymmetric".
    Resize-10 is the same, except that onnxruntime rounds nearest coordinates with "ceil" on
    each axis whose scale is < 1 (resize such axes in a separate call).
    "tf_half_pixel_for_nearest" ((x + 0.5) / scale) follows the ONNX spec; onnxruntime 1.32
    rejects that mode, so it is not checked against it.
    """
    if mode not in ("nearest", "linear"):
        raise ValueError(f"resize: unknown mode {mode!r}")
    y = x
    for axis in range(x.ndim):
        in_len, out_len = x.shape[axis], int(out_shape[axis])
        if in_len == out_len and float(scales[axis]) == 1.0:
            continue
        c = _resize_coords(out_len, in_len, scales[axis], coordinate_transformation_mode)
        if mode == "nearest":
            y = np.take(y, _nearest_index(c, in_len, nearest_mode), axis=axis)
            continue
        c = np.clip(c, np.float32(0.0), np.float32(in_len - 1))
        i0 = np.minimum(c.astype(np.int64), in_len - 1)
        i1 = np.minimum(i0 + 1, in_len - 1)
        w1 = c - i0.astype(np.float32)
        w0 = np.float32(1.0) - w1
        same = i0 == i1
        w0 = np.where(same, np.float32(0.5), w0)
        w1 = np.where(same, np.float32(0.5), w1)
        bshape = [1] * x.ndim
        bshape[axis] = out_len
        lo = np.take(y, i0, axis=axis) * w0.reshape(bshape)
        y = lo + np.take(y, i1, axis=axis) * w1.reshape(bshape)
    return np.ascontiguousarray(y, dtype=x.dtype)


# ---------------------------------------------------------------------------
# Misc
# ---------------------------------------------------------------------------


def cast(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """ONNX Cast: float -> int truncates toward zero (C++ static_cast), -> bool is x != 0."""
    return np.asarray(x).astype(dtype)


def argmax(x: np.ndarray, axis: int, keepdims: bool, select_last_index: bool) -> np.ndarray:
    """ONNX ArgMax as int64; ties go to the first index, or the last with select_last_index."""
    ax = _norm_axis(axis, x.ndim)
    if select_last_index:
        idx = x.shape[ax] - 1 - np.argmax(np.flip(x, axis=ax), axis=ax)
    else:
        idx = np.argmax(x, axis=ax)
    if keepdims:
        idx = np.expand_dims(idx, ax)
    return np.asarray(idx, dtype=np.int64)
