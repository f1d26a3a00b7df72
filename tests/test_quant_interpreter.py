"""The quantized interpreter against docs/quantization.md.

Three kinds of checks:
  * hand-computed examples, one or more per rule of the specification, and the errors
    for quantized IR the specification does not cover;
  * a hypothesis property: random small quantized graphs (built directly as IR with nn
    ops and quantized `nn.constant`s) give EXACTLY the integers of the plain reference
    below, which shares no code with `rkc.quant.integer_kernels` (it uses Python ints
    and loops, and `rkc.quant.requant.multiplier`, which *defines* the 15-bit mantissa
    and shift); the modules also survive print -> parse unchanged;
  * a hypothesis property: each quantized op, dequantized, stays within a stated bound of
    the float op on the dequantized inputs (see `test_dequantized_result_within_bound`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xdsl.builder import ImplicitBuilder
from xdsl.dialects import func
from xdsl.dialects.builtin import DenseArrayBase, ModuleOp, StringAttr, TensorType, f32
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.parser import Parser

from rkc.dialects import nn, quant
from rkc.dialects.quant import UniformQuantizedType as U
from rkc.dialects.quant import expressed_type
from rkc.interpreter import evaluate_op, kernels, run_module
from rkc.interpreter.quant_impls import QuantSemanticsError
from rkc.quant.requant import multiplier
from rkc.registry import make_context

CTX = make_context()
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------------------
# the plain reference (Python ints; `multiplier` is the definition of (M, S))
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class P:
    """Per-tensor parameters of a quantized value."""

    scale: float
    zp: int
    bits: int = 8

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1

    @property
    def dtype(self) -> type:
        return {8: np.int8, 16: np.int16, 32: np.int32}[self.bits]

    def type(self) -> U:
        return U.per_tensor(self.scale, self.zp, self.bits)


def r_rescale(acc: int, real: float) -> int:
    m, s = multiplier(real)
    v = int(acc) * m
    return (v + (1 << (s - 1))) >> s if s > 0 else v


def r_requant(acc: int, real: float, zp: int, lo: int, hi: int) -> int:
    return min(max(r_rescale(acc, real) + zp, lo), hi)


def r_quantize(v: float, p: P) -> int:
    v = float(v)
    if math.isnan(v):
        return p.zp
    if math.isinf(v):
        return p.qmax if v > 0 else p.qmin
    return min(max(round(v / p.scale) + p.zp, p.qmin), p.qmax)


def r_dequantize(q: int, scale: float, zp: int) -> np.float32:
    return np.float32((int(q) - zp) * scale)


def r_range(activation: str | None, params: Sequence[float], y: P) -> tuple[int, int]:
    lo, hi = y.qmin, y.qmax
    if activation == "relu":
        lo = max(y.qmin, y.zp)
    if activation == "clip":
        lo = min(max(y.qmin, y.zp + round(params[0] / y.scale)), y.qmax)
        hi = max(min(y.qmax, y.zp + round(params[1] / y.scale)), y.qmin)
    return lo, hi


def r_map(fn: Callable[..., int], *arrays: np.ndarray) -> np.ndarray:
    """fn on Python ints of broadcast arrays, elementwise."""
    arrays = np.broadcast_arrays(*arrays)
    out = np.zeros(arrays[0].shape, np.int64)
    for idx in np.ndindex(out.shape):
        out[idx] = fn(*(int(a[idx]) for a in arrays))
    return out


def r_to(x: np.ndarray, xp: P, y: P, lo: int | None = None, hi: int | None = None):
    lo = y.qmin if lo is None else lo
    hi = y.qmax if hi is None else hi
    return r_map(lambda q: r_requant(q - xp.zp, xp.scale / y.scale, y.zp, lo, hi), x)


def r_conv_acc(x, xp: P, w, bias, strides, pads, dilations, group) -> np.ndarray:
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    oh = (h + pads[0] + pads[2] - (kh - 1) * dilations[0] - 1) // strides[0] + 1
    ow = (wd + pads[1] + pads[3] - (kw - 1) * dilations[1] - 1) // strides[1] + 1
    og = o // group
    acc = np.zeros((n, o, oh, ow), np.int64)
    for b, oc, i, j in np.ndindex(n, o, oh, ow):
        total = int(bias[oc]) if bias is not None else 0
        for ci, a, e in np.ndindex(cg, kh, kw):
            hi_ = i * strides[0] - pads[0] + a * dilations[0]
            wi = j * strides[1] - pads[1] + e * dilations[1]
            if 0 <= hi_ < h and 0 <= wi < wd:  # padding contributes x = z_x
                total += (int(x[b, (oc // og) * cg + ci, hi_, wi]) - xp.zp) * int(w[oc, ci, a, e])
        acc[b, oc, i, j] = total
    return acc


def r_conv_transpose_acc(x, xp: P, w, bias, strides, pads, dilations, group,
                        output_padding) -> np.ndarray:
    """Every input pixel scatters x * w into the (uncropped) output, then the pads crop."""
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    cg = c // group
    full_h = strides[0] * (h - 1) + output_padding[0] + (kh - 1) * dilations[0] + 1
    full_w = strides[1] * (wd - 1) + output_padding[1] + (kw - 1) * dilations[1] + 1
    full = np.zeros((n, og * group, full_h, full_w), np.int64)
    for b, ci, i, j, oc, a, e in np.ndindex(n, c, h, wd, og, kh, kw):
        full[b, (ci // cg) * og + oc, i * strides[0] + a * dilations[0],
             j * strides[1] + e * dilations[1]] += (int(x[b, ci, i, j]) - xp.zp) * int(
                 w[ci, oc, a, e])
    out = full[:, :, pads[0]: full_h - pads[2], pads[1]: full_w - pads[3]]
    return out + (0 if bias is None else bias.astype(np.int64)[None, :, None, None])


def r_matmul_acc(a, b) -> np.ndarray:
    """a [..., M, K] @ b [..., K, N] on Python ints (batch dims broadcast)."""
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:])
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    out = np.zeros(batch + (m, n), np.int64)
    for idx in np.ndindex(*batch, m, n):
        bi, i, j = idx[:-2], idx[-2], idx[-1]
        out[idx] = sum(int(a[bi + (i, t)]) * int(b[bi + (t, j)]) for t in range(k))
    return out


def r_pool_windows(shape, out_hw, kernel, strides, pads, dilations):
    """For every output (i, j): the list of in-bounds input positions, and the count of
    positions inside [-pad_begin, in + pad_end)."""
    h, w = shape[2], shape[3]
    for i, j in np.ndindex(*out_hw):
        inside, with_pad = [], 0
        for a, e in np.ndindex(*kernel):
            hh = i * strides[0] - pads[0] + a * dilations[0]
            ww = j * strides[1] - pads[1] + e * dilations[1]
            if 0 <= hh < h and 0 <= ww < w:
                inside.append((hh, ww))
            if -pads[0] <= hh < h + pads[2] and -pads[1] <= ww < w + pads[3]:
                with_pad += 1
        yield i, j, inside, with_pad


def r_table(f: Callable[[np.ndarray], np.ndarray], xp: P, y: P) -> dict[int, int]:
    """T[q] = quantize(f(dequantize(q))) for every input code."""
    codes = list(range(xp.qmin, xp.qmax + 1))
    deq = np.array([r_dequantize(q, xp.scale, xp.zp) for q in codes], np.float32)
    with np.errstate(all="ignore"):
        fx = f(deq)
    return {q: r_quantize(v, y) for q, v in zip(codes, fx, strict=True)}


# ---------------------------------------------------------------------------
# building quantized IR
# ---------------------------------------------------------------------------
def props_conv(strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group=1,
               activation=None, params=()) -> dict[str, Attribute]:
    props = {"strides": nn.i64_array(strides), "pads": nn.i64_array(pads),
             "dilations": nn.i64_array(dilations), "group": nn.i64_attr(group)}
    props.update(nn.activation_props(activation, params))
    return props


def props_gemm(trans_a=False, trans_b=False, alpha=1.0, beta=1.0, activation=None,
               params=()) -> dict[str, Attribute]:
    props = {"alpha": nn.f32_attr(alpha), "beta": nn.f32_attr(beta),
             "trans_a": nn.bool_attr(trans_a), "trans_b": nn.bool_attr(trans_b)}
    props.update(nn.activation_props(activation, params))
    return props


def qop(cls: type[Operation], operands: Sequence[SSAValue], out: P | U | None,
        props: dict[str, Attribute] | None = None, name: str | None = None) -> Operation:
    """`cls` on quantized operands with result element type `out` (None: as inferred)."""
    props = props or {}
    inferred = cls.infer_types([expressed_type(v.type) for v in operands], props)
    element = out.type() if isinstance(out, P) else out
    types = [t if element is None else TensorType(element, t.get_shape()) for t in inferred]
    return cls.create(operands=list(operands), result_types=types, properties=props,
                      attributes={nn.NAME_ATTR: StringAttr(name)} if name else {})


def qconst(values: np.ndarray, q: P | U) -> SSAValue:
    element = q.type() if isinstance(q, P) else q
    values = np.asarray(values)
    return nn.ConstantOp(values, result_type=TensorType(element, values.shape)).output


def module(input_types: Sequence[TensorType],
           body: Callable[..., Sequence[SSAValue]]) -> ModuleOp:
    block_fn = func.FuncOp("main", (list(input_types), []))
    with ImplicitBuilder(block_fn.body) as args:
        results = list(body(*args))
        func.ReturnOp(*results)
    block_fn.function_type = func.FunctionType.from_lists(list(input_types),
                                                         [r.type for r in results])
    m = ModuleOp([block_fn])
    m.verify()
    return m


def qtensor(shape: Sequence[int], q: P | U) -> TensorType:
    return TensorType(q.type() if isinstance(q, P) else q, list(shape))


def round_trip(m: ModuleOp) -> None:
    text = str(m)
    parsed = Parser(CTX, text).parse_module()
    parsed.verify()
    assert str(parsed) == text


def run1(m: ModuleOp, *inputs: np.ndarray) -> np.ndarray:
    return run_module(m, list(inputs))["output0"]


def single(cls, x_shape, xp: P, out: P | U | None, props=None, name=None) -> ModuleOp:
    return module([qtensor(x_shape, xp)], lambda x: qop(cls, [x], out, props, name).results)


# ---------------------------------------------------------------------------
# hand-computed examples
# ---------------------------------------------------------------------------
def test_quantize_dequantize():
    p = P(0.5, 3)
    m = module([TensorType(f32, [6])],
               lambda x: [quant.QuantizeOp(x, qtensor([6], p)).output])
    x = np.array([0.25, 0.75, -100.0, np.nan, np.inf, 1.25], np.float32)
    # 0.5 -> 0 and 1.5 -> 2 and 2.5 -> 2 (half to even); NaN reads as 0.0
    assert run1(m, x).tolist() == [3, 5, -128, 3, 127, 5]
    assert run1(m, x).dtype == np.int8
    m = module([qtensor([3], p)], lambda q: [quant.DequantizeOp(q, TensorType(f32, [3])).output])
    out = run1(m, np.array([3, 5, -128], np.int8))
    assert out.dtype == np.float32 and out.tolist() == [0.0, 1.0, -65.5]
    round_trip(m)


def test_per_axis_quantize_dequantize():
    q = U.per_axis([0.5, 0.25], [0, 10], 1)
    m = module([TensorType(f32, [2, 2])],
               lambda x: [quant.DequantizeOp(quant.QuantizeOp(x, qtensor([2, 2], q)).output,
                                             TensorType(f32, [2, 2])).output])
    out = run1(m, np.array([[1.0, 1.0], [-1.0, 0.3]], np.float32))
    # column 0: 1/0.5 = 2, -1/0.5 = -2; column 1: 1/0.25 + 10 = 14, 0.3/0.25 = 1.2 -> 1 + 10
    assert out.tolist() == [[1.0, 1.0], [-1.0, 0.25]]
    round_trip(m)


def test_requantize():
    # r = 0.5 / 0.3: M = 27307, S = 14. 8 * r = 13.33 -> 13; -9 * r = -15.0 -> -15
    m = module([qtensor([3], P(0.5, 2))],
               lambda q: [quant.RequantizeOp(q, qtensor([3], P(0.3, -1))).output])
    assert multiplier(0.5 / 0.3) == (27307, 14)
    assert run1(m, np.array([10, -7, 127], np.int8)).tolist() == [12, -16, 127]
    round_trip(m)


def conv_1x1(activation=None, params=()) -> ModuleOp:
    xp, yp = P(0.5, 3), P(0.25, -2)
    wq = U.per_axis([0.1, 0.2], [0, 0], 0)
    bq = U.per_axis([0.05, 0.1], [0, 0], 0, bits=32)

    def body(x):
        w = qconst(np.array([3, -4], np.int8).reshape(2, 1, 1, 1), wq)
        b = qconst(np.array([10, -20], np.int32), bq)
        return qop(nn.Conv2dOp, [x, w, b], yp, props_conv(activation=activation,
                                                           params=params)).results
    return module([qtensor([1, 1, 2, 2], xp)], body)


def test_conv2d_1x1_per_channel_bias():
    # x - z_x = [0, 2, 4, -131]
    # channel 0: acc = 3 * (x - 3) + 10 = [10, 16, 22, -383], r = 0.5 * 0.1 / 0.25 = 0.2
    #            -> [2, 3.2, 4.4, -76.6] -> [2, 3, 4, -77] - 2 = [0, 1, 2, -79]
    # channel 1: acc = -4 * (x - 3) - 20 = [-20, -28, -36, 504], r = 0.4
    #            -> [-8, -11.2, -14.4, 201.6] -> [-8, -11, -14, 202] - 2 -> saturates at 127
    x = np.array([3, 5, 7, -128], np.int8).reshape(1, 1, 2, 2)
    m = conv_1x1()
    out = run1(m, x)
    assert out.dtype == np.int8
    assert out.reshape(2, 4).tolist() == [[0, 1, 2, -79], [-10, -13, -16, 127]]
    round_trip(m)
    # relu: lo = max(qmin, z_y) = -2
    assert run1(conv_1x1("relu"), x).reshape(2, 4).tolist() == [[0, 1, 2, -2],
                                                                [-2, -2, -2, 127]]
    # clip(-1, 2): lo = -2 + round(-1 / 0.25) = -6, hi = -2 + round(2 / 0.25) = 6
    assert run1(conv_1x1("clip", (-1.0, 2.0)), x).reshape(2, 4).tolist() == [
        [0, 1, 2, -6], [-6, -6, -6, 6]]


def test_conv2d_padding_contributes_zero_point():
    # 3x3 all-ones weight on a 1x1 input padded by 1: only the centre tap sees x.
    xp, yp = P(1.0, 5), P(1.0, 0)
    m = module([qtensor([1, 1, 1, 1], xp)], lambda x: qop(
        nn.Conv2dOp, [x, qconst(np.ones((1, 1, 3, 3), np.int8), U.per_tensor(1.0, 0))], yp,
        props_conv(pads=(1, 1, 1, 1))).results)
    assert run1(m, np.array([[[[7]]]], np.int8)).item() == 2
    round_trip(m)


def test_conv_transpose2d():
    # stride 2, 1x1 kernel: output [x0, 0, x1] per channel (zero = z_x after centring)
    xp, yp = P(1.0, 1), P(0.5, 0)
    wq = U.per_tensor(0.25, 0)
    props = props_conv(strides=(2, 2))
    props["output_padding"] = nn.i64_array((0, 0))
    m = module([qtensor([1, 1, 1, 2], xp)], lambda x: qop(
        nn.ConvTranspose2dOp, [x, qconst(np.full((1, 1, 1, 1), 6, np.int8), wq)], yp,
        props).results)
    # (x - 1) * 6 * (1 * 0.25 / 0.5) = (x - 1) * 3
    assert run1(m, np.array([[[[3, -2]]]], np.int8)).tolist() == [[[[6, 0, -9]]]]
    round_trip(m)


def test_gemm_per_column():
    ap, yp = P(0.5, 1), P(1.0, 0)
    bq = U.per_axis([0.5, 1.0], [0, 0], 1)
    cq = U.per_axis([0.25, 0.5], [0, 0], 0, bits=32)

    def body(a):
        b = qconst(np.array([[1, 2], [3, -1]], np.int8), bq)
        c = qconst(np.array([4, -2], np.int32), cq)
        return qop(nn.GemmOp, [a, b, c], yp, props_gemm()).results
    m = module([qtensor([1, 2], ap)], body)
    # A - z_a = [2, 4]; acc = [2 + 12 + 4, 4 - 4 - 2] = [18, -2]
    # column 0: 18 * 0.5 * 0.5 = 4.5 -> 5 (half up); column 1: -2 * 0.5 = -1
    assert run1(m, np.array([[3, 5]], np.int8)).tolist() == [[5, -1]]
    round_trip(m)


def test_matmul_with_zero_points():
    ap, bp, yp = P(0.5, 1), P(0.25, -2), P(0.125, 3)

    def body(a, b):
        return qop(nn.MatmulOp, [a, b], yp).results
    m = module([qtensor([1, 2], ap), qtensor([2, 1], bp)], body)
    # (A - 1) @ (B + 2) = [2, -1] @ [[3], [2]] = 4; 4 * 0.5 * 0.25 / 0.125 = 4 -> 7
    out = run1(m, np.array([[3, 0]], np.int8), np.array([[1], [0]], np.int8))
    assert out.tolist() == [[7]]
    round_trip(m)


def test_add_sub_common_scale():
    ap, bp, yp = P(0.5, 0), P(0.25, 0), P(1.0, 0)

    def make(cls):
        return module([qtensor([3], ap), qtensor([3], bp)],
                      lambda a, b: qop(cls, [a, b], yp).results)
    a = np.array([3, 1, 1], np.int8)
    b = np.array([2, 1, -1], np.int8)
    # s_acc = 0.25 / 256: A = a * 512, B = b * 256, y = (A + B) / 1024 rounded half up
    # [1.5 + 0.5, 0.5 + 0.25, 0.5 - 0.25] = [2, 0.75 -> 1, 0.25 -> 0]
    assert run1(make(nn.AddOp), a, b).tolist() == [2, 1, 0]
    # [1.5 - 0.5, 0.5 - 0.25, 0.5 + 0.25] = [1, 0.25 -> 0, 0.75 -> 1]
    assert run1(make(nn.SubOp), a, b).tolist() == [1, 0, 1]
    # s_b = 0.3: s_acc = 0.3 / 256, A = rescale(-20, 426.67) = -8533, B = -15 * 256 = -3840,
    # y = -12373 * 0.3 / 256 = -14.4996 -> -14 (the real sum is -14.5; s_acc = min / 128
    # would give -15)
    m = module([qtensor([1], P(0.5, 0)), qtensor([1], P(0.3, 0))],
               lambda u, v: qop(nn.AddOp, [u, v], yp).results)
    assert run1(m, np.array([-20], np.int8), np.array([-15], np.int8)).item() == -14


def test_multiplier_is_computed_left_to_right():
    # s_a * s_b / s_y and s_a * (s_b / s_y) differ in their last bit here, which moves the
    # 15-bit mantissa: the specification's left-to-right order gives M = 20001
    sa, sb, sy = 0.1, 0.03, 0.01966030849228769
    assert multiplier(sa * sb / sy) == (20001, 17) and multiplier(sa * (sb / sy))[0] == 20000
    ap, bp, yp = P(sa, 0, 16), P(sb, 0, 16), P(sy, 0, 16)
    m = module([qtensor([1], ap), qtensor([1], bp)],
               lambda a, b: qop(nn.MulOp, [a, b], yp).results)
    out = run1(m, np.array([1000], np.int16), np.array([200], np.int16))
    assert out.tolist() == [(200000 * 20001 + 2**16) >> 17] == [30519]
    # the same for a convolution: s_x * s_w[o] / s_y; acc = 2 * 1000 * 100
    m = module([qtensor([1, 2, 1, 1], ap)], lambda x: qop(
        nn.Conv2dOp, [x, qconst(np.full((1, 2, 1, 1), 100, np.int8), U.per_axis([sb], [0], 0))],
        yp, props_conv()).results)
    assert run1(m, np.full((1, 2, 1, 1), 1000, np.int16)).item() == 30519


def test_large_accumulators_are_exact():
    # i16 activations and 600-term sums exceed float32's 24 bits (and the float64 shortcut
    # stays exact): compare with Python integers
    rng = np.random.default_rng(1)
    ap, yp = P(1.0, 0, 16), P(1.0, 0, 32)
    a = rng.integers(-32768, 32768, (2, 600))
    b = rng.integers(-127, 128, (600, 3))
    m = module([qtensor(a.shape, ap)], lambda v: qop(
        nn.GemmOp, [v, qconst(b.astype(np.int8), U.per_tensor(0.5, 0))], yp,
        props_gemm()).results)
    out = run1(m, a.astype(np.int16))
    expected = [[r_requant(sum(int(a[i, t]) * int(b[t, j]) for t in range(600)), 0.5, 0,
                           yp.qmin, yp.qmax) for j in range(3)] for i in range(2)]
    assert out.dtype == np.int32 and out.tolist() == expected


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["add", "sub", "mul", "max", "min"]), st.integers(0, 2**32 - 1),
       st.sampled_from([((4, 8), (4, 8)), ((4, 8), (8,)), ((4, 1), (1, 8)), ((1,), (4, 8))]))
def test_binary_ops_match_reference(name: str, seed: int, shapes):
    """Many elements per example: the rounding of each rescale is exercised."""
    rng = np.random.default_rng(seed)
    ap = P(float(rng.uniform(0.01, 0.2)), int(rng.integers(-128, 128)))
    bp = P(ap.scale * float(rng.uniform(1 / 100, 100)), int(rng.integers(-128, 128)))
    yp = P(max(ap.scale, bp.scale) * float(rng.uniform(0.3, 3)), int(rng.integers(-128, 128)))
    if name == "mul":
        yp = P(ap.scale * bp.scale * float(rng.uniform(50, 300)), yp.zp)
    a = rng.integers(-128, 128, shapes[0])
    b = rng.integers(-128, 128, shapes[1])
    cls = {"add": nn.AddOp, "sub": nn.SubOp, "mul": nn.MulOp, "max": nn.MaxOp,
           "min": nn.MinOp}[name]
    m = module([qtensor(a.shape, ap), qtensor(b.shape, bp)],
               lambda u, v: qop(cls, [u, v], yp).results)
    s_acc = min(ap.scale, bp.scale) / 256

    def ref(p: int, q: int) -> int:
        if name in ("add", "sub"):
            sign = 1 if name == "add" else -1
            acc = (r_rescale(p - ap.zp, ap.scale / s_acc)
                   + sign * r_rescale(q - bp.zp, bp.scale / s_acc))
            return r_requant(acc, s_acc / yp.scale, yp.zp, yp.qmin, yp.qmax)
        if name == "mul":
            return r_requant((p - ap.zp) * (q - bp.zp), ap.scale * bp.scale / yp.scale, yp.zp,
                             yp.qmin, yp.qmax)
        pick = max if name == "max" else min
        return pick(r_requant(p - ap.zp, ap.scale / yp.scale, yp.zp, yp.qmin, yp.qmax),
                    r_requant(q - bp.zp, bp.scale / yp.scale, yp.zp, yp.qmin, yp.qmax))
    assert np.array_equal(run1(m, a.astype(np.int8), b.astype(np.int8)), r_map(ref, a, b))


def test_broadcasting_mul_max_min():
    ap, bp, yp = P(0.5, 2), P(0.25, 0), P(0.25, 1)

    def make(cls):
        return module([qtensor([2, 2], ap), qtensor([2], bp)],
                      lambda a, b: qop(cls, [a, b], yp).results)
    a = np.array([[4, 0], [2, 3]], np.int8)   # reals [[1, -1], [0, 0.5]]
    b = np.array([4, -2], np.int8)            # reals [1, -0.5]
    # mul: reals [[1, 0.5], [0, -0.25]] -> /0.25 + 1
    assert run1(make(nn.MulOp), a, b).tolist() == [[5, 3], [1, 0]]
    # max: [[1, -0.5], [1, 0.5]] -> [[5, -1], [5, 3]]; min: [[1, -1], [0, -0.5]]
    assert run1(make(nn.MaxOp), a, b).tolist() == [[5, -1], [5, 3]]
    assert run1(make(nn.MinOp), a, b).tolist() == [[5, -3], [1, -1]]


def test_relu_clip():
    xp, yp = P(0.5, -3), P(0.25, 0)
    x = np.array([-128, -4, -3, 0, 7], np.int8)  # reals [-62.5, -0.5, 0, 1.5, 5]
    assert run1(single(nn.ReluOp, [5], xp, yp), x).tolist() == [0, 0, 0, 6, 20]
    clip = {"min": nn.f32_attr(-0.3), "max": nn.f32_attr(1.0)}
    # lo = 0 + round(-0.3 / 0.25) = -1, hi = round(1.0 / 0.25) = 4
    assert run1(single(nn.ClipOp, [5], xp, yp, clip), x).tolist() == [-1, -1, 0, 4, 4]
    # an infinite clip bound saturates at the storage range
    clip = {"min": nn.f32_attr(-math.inf), "max": nn.f32_attr(math.inf)}
    assert run1(single(nn.ClipOp, [5], xp, yp, clip), x).tolist() == [-128, -2, 0, 6, 20]


def test_table_sigmoid():
    xp, yp = P(0.1, 0), P(1 / 256, -128)
    m = single(nn.SigmoidOp, [3], xp, yp)
    # sigmoid(0) = 0.5 -> 128 - 128; sigmoid(12.7) * 256 = 255.9992 -> 256 -> saturates;
    # sigmoid(-12.8) * 256 = 0.0007 -> 0
    assert run1(m, np.array([0, 127, -128], np.int8)).tolist() == [0, 127, -128]
    round_trip(m)


def test_table_log_nan_reads_as_zero():
    # log of a negative real is NaN, which quantizes to the zero point
    xp, yp = P(0.5, 0), P(0.1, 7)
    m = single(nn.LogOp, [3], xp, yp)
    assert run1(m, np.array([-2, 0, 2], np.int8)).tolist() == [7, -128, 7]


def test_table_i16_input():
    xp, yp = P(0.001, 0, bits=16), P(1 / 256, -128)
    m = single(nn.TanhOp, [3], xp, yp)
    out = run1(m, np.array([0, 1000, -32768], np.int16))
    # tanh(0) = 0 -> -128; tanh(1) * 256 = 194.96 -> 195 - 128 = 67; tanh(-32.8) = -1
    assert out.dtype == np.int8 and out.tolist() == [-128, 67, -128]


def test_pools():
    xp = P(1.0, 0)
    x = np.array([1, 2, 3, 4], np.int8).reshape(1, 1, 2, 2)
    for include, expected in ((False, [4, 6, 8, 10]), (True, [1, 3, 4, 10])):
        props = {"kernel": nn.i64_array((2, 2)), "strides": nn.i64_array((1, 1)),
                 "pads": nn.i64_array((1, 1, 0, 0)), "ceil_mode": nn.bool_attr(False),
                 "count_include_pad": nn.bool_attr(include)}
        # sums [1, 3, 4, 10] over n = [1, 2, 2, 4] (or 4 everywhere), at y scale 0.25
        m = single(nn.AvgPool2dOp, [1, 1, 2, 2], xp, P(0.25, 0), props)
        assert run1(m, x).ravel().tolist() == expected
    props = {"kernel": nn.i64_array((2, 2)), "strides": nn.i64_array((1, 1)),
             "pads": nn.i64_array((1, 1, 0, 0)), "dilations": nn.i64_array((1, 1)),
             "ceil_mode": nn.bool_attr(False)}
    # padding never wins, even against the most negative code
    m = single(nn.MaxPool2dOp, [1, 1, 2, 2], P(1.0, 100), P(1.0, 100), props)
    assert run1(m, -x - 120).ravel().tolist() == [-121, -121, -121, -121]
    m = single(nn.GlobalAvgPoolOp, [1, 1, 2, 2], xp, P(1.0, 0))
    assert run1(m, x).item() == 3  # 10 / 4 = 2.5 -> 3 (half up)
    m = single(nn.GlobalMaxPoolOp, [1, 1, 2, 2], xp, P(2.0, 1))
    assert run1(m, x).item() == 3  # 4 / 2 + 1


def test_concat_requantizes_inputs():
    ap, bp, yp = P(1.0, 0), P(0.5, 4), P(0.5, 0)
    m = module([qtensor([2], ap), qtensor([1], bp)],
               lambda a, b: qop(nn.ConcatOp, [a, b], yp, {"axis": nn.i64_attr(0)}).results)
    assert run1(m, np.array([1, -3], np.int8), np.array([6], np.int8)).tolist() == [2, -6, 2]


def test_data_movement_and_pad_value():
    xp = P(0.5, 3)
    x = np.arange(6, dtype=np.int8).reshape(2, 3)
    props = {"pads": nn.i64_array((0, 1, 0, 1)), "mode": StringAttr("constant"),
             "value": nn.f32_attr(1.0)}
    # the pad value is quantize(1.0) = 1 / 0.5 + 3 = 5
    assert run1(single(nn.PadOp, [2, 3], xp, xp, props), x).tolist() == [
        [5, 0, 1, 2, 5], [5, 3, 4, 5, 5]]
    props["mode"] = StringAttr("edge")
    assert run1(single(nn.PadOp, [2, 3], xp, xp, props), x)[:, 0].tolist() == [0, 3]
    m = single(nn.TransposeOp, [2, 3], xp, xp, {"perm": nn.i64_array((1, 0))})
    assert run1(m, x).tolist() == x.T.tolist()
    m = single(nn.ArgMaxOp, [2, 3], xp, None,
               {"axis": nn.i64_attr(1), "keepdims": nn.bool_attr(False),
                "select_last_index": nn.bool_attr(False)})
    assert run1(m, x).tolist() == [2, 2]


def test_float_modules_unchanged():
    # the routed interpreter gives float ops their float kernels bit for bit
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    m = module([TensorType(f32, [1, 2, 5, 5])],
               lambda v: [nn.SigmoidOp(nn.Conv2dOp(v, nn.ConstantOp(w).output,
                                                   pads=(1, 1, 1, 1)).output).output])
    expected = kernels.sigmoid(kernels.conv2d(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1))
    assert np.array_equal(run1(m, x), expected)


def test_evaluate_op_on_quantized_op():
    xp, yp = P(0.5, 0), P(1.0, 0)
    m = single(nn.ReluOp, [2], xp, yp)
    op = next(o for o in m.walk() if isinstance(o, nn.ReluOp))
    [out] = evaluate_op(op, [np.array([-3, 5], np.int8)])
    assert out.dtype == np.int8 and out.tolist() == [0, 3]  # 2.5 -> 3 (half up)


# ---------------------------------------------------------------------------
# IR the specification does not cover
# ---------------------------------------------------------------------------
def error_cases() -> list[tuple[str, Callable[[], ModuleOp], str]]:
    xp, yp = P(0.5, 0), P(0.25, 0)
    x4 = [1, 1, 2, 2]

    def conv(wq: U, bq: U | None = None, activation=None, xq=xp):
        def body(x):
            w = qconst(np.ones((1, 1, 1, 1), np.int8), wq)
            ops = [x, w] + ([qconst(np.ones(1, bq.storage_dtype), bq)] if bq else [])
            return qop(nn.Conv2dOp, ops, yp, props_conv(activation=activation),
                       name="conv_7").results
        return module([qtensor(x4, xq)], body)

    w_ok = U.per_tensor(0.1, 0)
    return [
        ("softmax", lambda: single(nn.SoftmaxOp, [2, 3], xp, yp, {"axis": nn.i64_attr(1)},
                                   name="sm"),
         "nn.softmax 'sm'.*no integer semantics"),
        ("asymmetric weight", lambda: conv(U.per_tensor(0.1, 3)),
         "nn.conv2d 'conv_7'.*weight must be symmetric"),
        ("weight axis", lambda: conv(U.per_axis([0.1], [0], 1)), "per-axis on axis 0"),
        ("bias scale", lambda: conv(w_ok, U.per_axis([0.06], [0], 0, bits=32)),
         "bias scale .* must be s_in"),
        ("bias i8", lambda: conv(w_ok, U.per_axis([0.05], [0], 0)), "bias must be i32"),
        ("fused sigmoid", lambda: conv(w_ok, activation="sigmoid"), "fused activation sigmoid"),
        ("per-axis activation", lambda: conv(w_ok, xq=U.per_axis([0.5], [0], 1)),
         "input must be quantized per tensor"),
        ("gemm alpha", lambda: module([qtensor([1, 2], xp)], lambda a: qop(
            nn.GemmOp, [a, qconst(np.ones((2, 2), np.int8), w_ok)], yp,
            props_gemm(alpha=2.0)).results), "alpha = beta = 1"),
        ("matmul per-axis B not constant", lambda: module(
            [qtensor([2, 2], xp), qtensor([2, 2], U.per_axis([0.1, 0.2], [0, 0], 1))],
            lambda a, b: qop(nn.MatmulOp, [a, b], yp).results), "must be a constant"),
        ("reshape changes scale", lambda: single(nn.ReshapeOp, [2, 2], xp, yp,
                                                 {"shape": nn.i64_array((4,))}),
         "must keep the input's quantization"),
        ("resize linear", lambda: single(nn.ResizeOp, x4, xp, xp, {
            "sizes": nn.i64_array((1, 1, 4, 4)),
            "scales": DenseArrayBase.from_list(f32, [1.0, 1.0, 2.0, 2.0]),
            "mode": StringAttr("linear"),
            "coordinate_transformation_mode": StringAttr("half_pixel"),
            "nearest_mode": StringAttr("round_prefer_floor")}), "only nearest"),
        ("multiplier out of range", lambda: single(nn.ReluOp, [2], P(1000.0, 0),
                                                   P(0.001, 0)), "shift"),
    ]


@pytest.mark.parametrize("case", error_cases(), ids=lambda c: c[0])
def test_uncovered_quantized_ir_is_an_internal_error(case):
    _, build, message = case
    m = build()
    fn = next(o for o in m.ops if isinstance(o, func.FuncOp))
    inputs = [np.zeros(a.type.get_shape(), nn.numpy_dtype(a.type.element_type))
              for a in fn.args]
    with pytest.raises(QuantSemanticsError, match=message):
        run_module(m, inputs)


# ---------------------------------------------------------------------------
# random quantized graphs against the reference
# ---------------------------------------------------------------------------
TABLE_OPS: dict[str, tuple[type[Operation], Callable[[], dict], Callable]] = {
    "sigmoid": (nn.SigmoidOp, dict, lambda p: kernels.sigmoid),
    "tanh": (nn.TanhOp, dict, lambda p: kernels.tanh),
    "exp": (nn.ExpOp, dict, lambda p: kernels.exp),
    "log": (nn.LogOp, dict, lambda p: kernels.log),
    "sqrt": (nn.SqrtOp, dict, lambda p: kernels.sqrt),
    "abs": (nn.AbsOp, dict, lambda p: kernels.abs),
    "neg": (nn.NegOp, dict, lambda p: kernels.neg),
    "erf": (nn.ErfOp, dict, lambda p: kernels.erf),
    "silu": (nn.SiluOp, dict, lambda p: kernels.silu),
    "hard_swish": (nn.HardSwishOp, dict, lambda p: kernels.hard_swish),
    "hard_sigmoid": (nn.HardSigmoidOp,
                     lambda: {"alpha": nn.f32_attr(0.25), "beta": nn.f32_attr(0.4)},
                     lambda p: lambda x: kernels.hard_sigmoid(x, 0.25, 0.4)),
    "gelu": (nn.GeluOp, lambda: {"approximate": StringAttr("tanh")},
             lambda p: lambda x: kernels.gelu(x, "tanh")),
    "leaky_relu": (nn.LeakyReluOp, lambda: {"alpha": nn.f32_attr(0.125)},
                   lambda p: lambda x: kernels.leaky_relu(x, 0.125)),
}

MAX_C, MAX_HW = 6, 8


def calibrate(real: np.ndarray, rng: np.random.Generator, bits: int = 8,
              min_span: float = 1e-3) -> P:
    """Output parameters as calibration would choose them, within a random slack so that
    some results saturate; `min_span` keeps a constant result's scale reasonable."""
    lo, hi = min(float(np.min(real)), 0.0), max(float(np.max(real)), 0.0)
    span = max(hi - lo, min_span) * float(rng.uniform(0.6, 1.3))
    levels = (1 << bits) - 1
    scale = span / levels
    qmin = -(1 << (bits - 1))
    zp = min(max(round(qmin - lo / scale), qmin), -qmin - 1)
    return P(scale, zp, bits)


def deq(x: np.ndarray, p: P) -> np.ndarray:
    return (x.astype(np.float64) - p.zp) * p.scale


class Gen:
    """Builds a random quantized graph op by op and evaluates the reference alongside.

    `values` holds (SSA value, reference integers, parameters) of every 4-D quantized
    value built so far; `cur` is the last one.
    """

    def __init__(self, draw, rng: np.random.Generator):
        self.draw, self.rng = draw, rng
        self.values: list[tuple[SSAValue, np.ndarray, P]] = []
        self.outputs: list[tuple[SSAValue, np.ndarray]] = []

    @property
    def cur(self) -> tuple[SSAValue, np.ndarray, P]:
        return self.values[-1]

    def calib(self, real: np.ndarray, bits: int = 8) -> P:
        """Output parameters for `real`, spanning at least 8 steps of the current input
        (keeps every real multiplier far inside the 15-bit fixed-point range)."""
        return calibrate(real, self.rng, bits, min_span=8 * self.cur[2].scale)

    def push(self, v: SSAValue, ref: np.ndarray, p: P) -> None:
        assert tuple(v.type.get_shape()) == ref.shape, (v.type, ref.shape)
        self.values.append((v, ref.astype(np.int64), p))

    # small choices come from the seeded rng: hypothesis draws the seed, the step list
    # and the shapes (fewer draws keep examples from overrunning hypothesis's buffer)
    def int_(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1))

    def flag(self) -> bool:
        return bool(self.rng.integers(0, 2))

    def pick(self, options: Sequence):
        return options[self.int_(0, len(options) - 1)]

    def clip_params(self) -> tuple[float, float]:
        a = float(np.float32(self.rng.uniform(-1.0, 0.0)))
        return a, float(np.float32(a + self.rng.uniform(0.0, 3.0)))

    def activation(self) -> tuple[str | None, tuple[float, ...]]:
        kind = self.pick([None, "relu", "clip"])
        return kind, (self.clip_params() if kind == "clip" else ())

    @staticmethod
    def apply_float_activation(real: np.ndarray, act, params) -> np.ndarray:
        if act == "relu":
            return np.maximum(real, 0)
        if act == "clip":
            return np.clip(real, *params)
        return real

    # ---------------------------------------------------------------- steps
    def conv(self) -> bool:
        v, x, xp = self.cur
        n, c, h, w = x.shape
        if self.flag():
            group, o = c, c * self.int_(1, 2)  # depthwise
        else:
            group = self.pick([d for d in range(1, c + 1) if c % d == 0])
            o = group * self.int_(1, max(1, 6 // group))
        if o > MAX_C:
            return False
        pads = tuple(self.int_(0, 1) for _ in range(4))
        dil = (self.int_(1, 2), self.int_(1, 2))
        kh = self.int_(1, min(3, (h + pads[0] + pads[2] - 1) // dil[0] + 1))
        kw = self.int_(1, min(3, (w + pads[1] + pads[3] - 1) // dil[1] + 1))
        strides = (self.int_(1, 2), self.int_(1, 2))
        wv = self.rng.integers(-127, 128, (o, c // group, kh, kw)).astype(np.int8)
        per_channel = self.flag()
        ws = (self.rng.uniform(0.005, 0.05, o) if per_channel
              else np.full(o, self.rng.uniform(0.005, 0.05)))
        wq = U.per_axis(list(ws), [0] * o, 0) if per_channel else U.per_tensor(ws[0], 0)
        bias = self.rng.integers(-3000, 3000, o).astype(np.int32) if self.flag() else None
        act, params = self.activation()
        acc = r_conv_acc(x, xp, wv, bias, strides, pads, dil, group)
        real_scale = np.array([xp.scale * s for s in ws])
        yp = self.calib(self.apply_float_activation(acc * real_scale[None, :, None, None],
                                                    act, params))
        lo, hi = r_range(act, params, yp)
        y = np.zeros_like(acc)
        for idx in np.ndindex(acc.shape):
            y[idx] = r_requant(int(acc[idx]), xp.scale * ws[idx[1]] / yp.scale, yp.zp, lo, hi)
        operands = [v, qconst(wv, wq)]
        if bias is not None:
            operands.append(qconst(bias, U.per_axis([xp.scale * s for s in ws], [0] * o, 0,
                                                     bits=32)))
        op = qop(nn.Conv2dOp, operands, yp, props_conv(strides, pads, dil, group, act, params))
        self.push(op.results[0], y, yp)
        return True

    def conv_transpose(self) -> bool:
        v, x, xp = self.cur
        n, c, h, w = x.shape
        group = self.pick([d for d in range(1, c + 1) if c % d == 0])
        og = self.int_(1, max(1, 4 // group))
        strides = (self.int_(1, 2), self.int_(1, 2))
        dil = (self.int_(1, 2), self.int_(1, 2))
        kh, kw = self.int_(1, 3), self.int_(1, 3)
        out_pad = (self.int_(0, strides[0] - 1), self.int_(0, strides[1] - 1))
        pads = tuple(self.int_(0, 1) for _ in range(4))
        props = props_conv(strides, pads, dil, group)
        props["output_padding"] = nn.i64_array(out_pad)
        wv = self.rng.integers(-127, 128, (c, og, kh, kw)).astype(np.int8)
        o = og * group
        if group == 1 and self.flag():
            ws = self.rng.uniform(0.005, 0.05, o)
            wq = U.per_axis(list(ws), [0] * o, 1)
        else:
            ws = np.full(o, self.rng.uniform(0.005, 0.05))
            wq = U.per_tensor(ws[0], 0)
        bias = self.rng.integers(-3000, 3000, o).astype(np.int32) if self.flag() else None
        operands = [v, qconst(wv, wq)]
        if bias is not None:
            operands.append(qconst(bias, U.per_axis([xp.scale * s for s in ws], [0] * o, 0,
                                                     bits=32)))
        try:
            [t] = nn.ConvTranspose2dOp.infer_types([expressed_type(o.type) for o in operands],
                                                   props)
        except nn.ShapeError:
            return False
        if max(t.get_shape()[2:]) > MAX_HW:
            return False
        acc = r_conv_transpose_acc(x, xp, wv, bias, strides, pads, dil, group, out_pad)
        yp = self.calib(acc * (xp.scale * ws)[None, :, None, None])
        y = np.zeros_like(acc)
        for idx in np.ndindex(acc.shape):
            y[idx] = r_requant(int(acc[idx]), xp.scale * ws[idx[1]] / yp.scale, yp.zp, yp.qmin,
                               yp.qmax)
        self.push(qop(nn.ConvTranspose2dOp, operands, yp, props).results[0], y, yp)
        return True

    def gemm(self) -> bool:
        v, x, xp = self.cur
        n, c, h, w = x.shape
        m_, k = n * c, h * w
        trans_a, trans_b = self.flag(), self.flag()
        a_shape = (k, m_) if trans_a else (m_, k)
        a = qop(nn.ReshapeOp, [v], xp, {"shape": nn.i64_array(a_shape)}).results[0]
        a_ref = x.reshape(a_shape)
        nn_ = self.int_(1, 4)
        bv = self.rng.integers(-127, 128, (k, nn_)).astype(np.int8)
        per_axis = self.flag()
        bs = (self.rng.uniform(0.005, 0.05, nn_) if per_axis
              else np.full(nn_, self.rng.uniform(0.005, 0.05)))
        axis = 0 if trans_b else 1
        bq = U.per_axis(list(bs), [0] * nn_, axis) if per_axis else U.per_tensor(bs[0], 0)
        cv = self.rng.integers(-3000, 3000, nn_).astype(np.int32) if self.flag() else None
        act, params = self.activation()
        am = a_ref.T if trans_a else a_ref
        acc = r_matmul_acc(am - xp.zp, bv.astype(np.int64))
        if cv is not None:
            acc = acc + cv[None, :]
        yp = self.calib(self.apply_float_activation(acc * (xp.scale * bs)[None, :], act,
                                                    params))
        lo, hi = r_range(act, params, yp)
        y = np.zeros_like(acc)
        for i, j in np.ndindex(acc.shape):
            y[i, j] = r_requant(int(acc[i, j]), xp.scale * bs[j] / yp.scale, yp.zp, lo, hi)
        operands = [a, qconst(bv.T.copy() if trans_b else bv, bq)]
        if cv is not None:
            operands.append(qconst(cv, U.per_axis([xp.scale * s for s in bs], [0] * nn_, 0,
                                                  bits=32)))
        g = qop(nn.GemmOp, operands, yp, props_gemm(trans_a, trans_b, activation=act,
                                                    params=params))
        out = qop(nn.ReshapeOp, [g.results[0]], yp, {"shape": nn.i64_array((1, m_, nn_, 1))})
        self.push(out.results[0], y.reshape(1, m_, nn_, 1), yp)
        return True

    def matmul(self) -> bool:
        v, x, xp = self.cur
        n, c, h, w = x.shape
        if self.flag():  # x @ transpose(x): a dynamic, per-tensor B with a zero point
            b = qop(nn.TransposeOp, [v], xp, {"perm": nn.i64_array((0, 1, 3, 2))}).results[0]
            b_ref, b_scales, b_zps = np.swapaxes(x, 2, 3), np.full(h, xp.scale), np.full(h, xp.zp)
        else:
            nn_ = self.int_(1, 4)
            b_ref = self.rng.integers(-128, 128, (w, nn_))
            if self.flag():
                b_scales = self.rng.uniform(0.005, 0.05, nn_)
                b_zps = self.rng.integers(-5, 6, nn_)
                bq = U.per_axis(list(b_scales), [int(z) for z in b_zps], 1)
            else:
                bq = U.per_tensor(self.rng.uniform(0.005, 0.05), int(self.rng.integers(-5, 6)))
                b_scales, b_zps = np.full(nn_, bq.scale), np.full(nn_, bq.zero_point)
            b = qconst(b_ref.astype(np.int8), bq)
        acc = r_matmul_acc(x - xp.zp, b_ref - b_zps)
        yp = self.calib(acc * (xp.scale * b_scales))
        y = np.zeros_like(acc)
        for idx in np.ndindex(acc.shape):
            y[idx] = r_requant(int(acc[idx]), xp.scale * b_scales[idx[-1]] / yp.scale, yp.zp,
                               yp.qmin, yp.qmax)
        self.push(qop(nn.MatmulOp, [v, b], yp).results[0], y, yp)
        return True

    def other_operand(self, x: np.ndarray, xp: P) -> tuple[SSAValue, np.ndarray, P]:
        """An earlier value of x's shape, or a constant whose shape broadcasts to x's."""
        earlier = [t for t in self.values[:-1]
                   if t[1].shape == x.shape and 1 / 32 < t[2].scale / xp.scale < 32]
        if earlier and self.flag():
            return earlier[self.int_(0, len(earlier) - 1)]
        n, c, h, w = x.shape
        shape = self.pick([(1, c, 1, 1), (1, 1, 1, w), x.shape, (w,)])
        bp = P(xp.scale * float(self.rng.uniform(0.125, 8)), int(self.rng.integers(-20, 21)))
        values = self.rng.integers(-128, 128, shape).astype(np.int8)
        return qconst(values, bp), values.astype(np.int64), bp

    def binary(self) -> bool:
        v, x, xp = self.cur
        b, b_ref, bp = self.other_operand(x, xp)
        (va, a, ap), (vb, bb, bpp) = (v, x, xp), (b, b_ref, bp)
        if self.flag():
            (va, a, ap), (vb, bb, bpp) = (vb, bb, bpp), (va, a, ap)
        name = self.pick(["add", "sub", "mul", "max", "min"])
        ra, rb = deq(a, ap), deq(bb, bpp)
        real = {"add": ra + rb, "sub": ra - rb, "mul": ra * rb,
                "max": np.maximum(ra, rb), "min": np.minimum(ra, rb)}[name]
        yp = self.calib(real)
        if name in ("add", "sub"):
            s_acc = min(ap.scale, bpp.scale) / 256
            sign = 1 if name == "add" else -1
            y = r_map(lambda p, q: r_requant(
                r_rescale(p - ap.zp, ap.scale / s_acc)
                + sign * r_rescale(q - bpp.zp, bpp.scale / s_acc),
                s_acc / yp.scale, yp.zp, yp.qmin, yp.qmax), a, bb)
        elif name == "mul":
            y = r_map(lambda p, q: r_requant((p - ap.zp) * (q - bpp.zp),
                                             ap.scale * bpp.scale / yp.scale, yp.zp, yp.qmin,
                                             yp.qmax), a, bb)
        else:
            pick = max if name == "max" else min
            y = r_map(lambda p, q: pick(r_requant(p - ap.zp, ap.scale / yp.scale, yp.zp, yp.qmin,
                                                  yp.qmax),
                                        r_requant(q - bpp.zp, bpp.scale / yp.scale, yp.zp,
                                                  yp.qmin, yp.qmax)), a, bb)
        cls = {"add": nn.AddOp, "sub": nn.SubOp, "mul": nn.MulOp, "max": nn.MaxOp,
               "min": nn.MinOp}[name]
        self.push(qop(cls, [va, vb], yp).results[0], y, yp)
        return True

    def relu_clip(self) -> bool:
        v, x, xp = self.cur
        act = self.pick(["relu", "clip"])
        params = self.clip_params() if act == "clip" else ()
        yp = self.calib(self.apply_float_activation(deq(x, xp), act, params))
        lo, hi = r_range(act, params, yp)
        y = r_to(x, xp, yp, lo, hi)
        if act == "relu":
            op = qop(nn.ReluOp, [v], yp)
        else:
            op = qop(nn.ClipOp, [v], yp, {"min": nn.f32_attr(params[0]),
                                          "max": nn.f32_attr(params[1])})
        self.push(op.results[0], y, yp)
        return True

    def table(self) -> bool:
        v, x, xp = self.cur
        if xp.bits != 8:
            return False
        name = self.pick(sorted(TABLE_OPS))
        cls, props, f = TABLE_OPS[name]
        fn = f(None)
        with np.errstate(all="ignore"):
            real = fn(np.float32(deq(x, xp)))
        real = real[np.isfinite(real)] if np.isfinite(real).any() else np.zeros(1)
        yp = self.calib(real)
        table = r_table(fn, xp, yp)
        y = r_map(lambda q: table[q], x)
        self.push(qop(cls, [v], yp, props()).results[0], y, yp)
        return True

    def pool(self) -> bool:
        v, x, xp = self.cur
        n, c, h, w = x.shape
        is_max = self.flag()
        kernel = (self.int_(1, min(3, h + 1)), self.int_(1, min(3, w + 1)))
        pads = tuple(self.int_(0, kernel[i % 2] - 1) for i in range(4))
        strides = (self.int_(1, 2), self.int_(1, 2))
        dil = (self.int_(1, 2), self.int_(1, 2)) if is_max else (1, 1)
        ceil = self.flag()
        props = {"kernel": nn.i64_array(kernel), "strides": nn.i64_array(strides),
                 "pads": nn.i64_array(pads), "ceil_mode": nn.bool_attr(ceil)}
        if is_max:
            props["dilations"] = nn.i64_array(dil)
            cls = nn.MaxPool2dOp
        else:
            include = self.flag()
            props["count_include_pad"] = nn.bool_attr(include)
            cls = nn.AvgPool2dOp
        try:
            [t] = cls.infer_types([expressed_type(v.type)], props)
        except nn.ShapeError:
            return False
        oh, ow = t.get_shape()[2:]
        acc = np.zeros((n, c, oh, ow), np.int64)
        count = np.ones((oh, ow), np.int64)
        for i, j, inside, with_pad in r_pool_windows(x.shape, (oh, ow), kernel, strides, pads,
                                                     dil):
            for b, ch in np.ndindex(n, c):
                if is_max:
                    acc[b, ch, i, j] = max((int(x[b, ch, p, q]) for p, q in inside),
                                           default=xp.qmin) - xp.zp
                else:
                    acc[b, ch, i, j] = sum(int(x[b, ch, p, q]) - xp.zp for p, q in inside)
            count[i, j] = 1 if is_max else (with_pad if include else len(inside))
        yp = xp if is_max and self.flag() else self.calib(acc * xp.scale / count)
        y = np.zeros_like(acc)
        for b, ch, i, j in np.ndindex(acc.shape):
            y[b, ch, i, j] = r_requant(int(acc[b, ch, i, j]),
                                       xp.scale / (yp.scale * int(count[i, j])),
                                       yp.zp, yp.qmin, yp.qmax)
        self.push(qop(cls, [v], yp, props).results[0], y, yp)
        return True

    def global_pool(self) -> bool:
        v, x, xp = self.cur
        n, c, h, w = x.shape
        if self.flag():
            acc = x.max(axis=(2, 3), keepdims=True) - xp.zp
            count, cls = 1, nn.GlobalMaxPoolOp
        else:
            acc = (x - xp.zp).sum(axis=(2, 3), keepdims=True)
            count, cls = h * w, nn.GlobalAvgPoolOp
        yp = self.calib(acc * xp.scale / count)
        y = r_map(lambda a: r_requant(a, xp.scale / (yp.scale * count), yp.zp, yp.qmin,
                                      yp.qmax), acc)
        self.push(qop(cls, [v], yp).results[0], y, yp)
        return True

    def concat(self) -> bool:
        v, x, xp = self.cur
        axis = self.pick([1, 3])
        if x.shape[axis] * 3 > (MAX_C if axis == 1 else MAX_HW) * 2:
            return False
        parts = [(v, x, xp)]
        for _ in range(self.int_(1, 2)):
            shape = list(x.shape)
            shape[axis] = self.int_(1, 2)
            earlier = [t for t in self.values[:-1] if t[1].shape == x.shape]
            if earlier and self.flag():
                parts.append(earlier[-1])
            else:
                bp = P(xp.scale * float(self.rng.uniform(0.25, 4)), int(self.rng.integers(-9, 9)))
                vals = self.rng.integers(-128, 128, shape).astype(np.int8)
                parts.append((qconst(vals, bp), vals.astype(np.int64), bp))
        yp = self.calib(np.concatenate([deq(r, p).ravel() for _, r, p in parts]))
        y = np.concatenate([r_to(r, p, yp) for _, r, p in parts], axis=axis)
        op = qop(nn.ConcatOp, [t[0] for t in parts], yp, {"axis": nn.i64_attr(axis)})
        self.push(op.results[0], y, yp)
        return True

    def movement(self) -> bool:
        v, x, xp = self.cur
        n, c, h, w = x.shape
        kind = self.pick(["transpose", "reshape", "slice", "pad", "split", "resize"])
        if kind == "transpose":
            perm = tuple(int(i) for i in self.rng.permutation(4))
            if max(x.shape[p] for p in perm[1:]) > MAX_HW or x.shape[perm[1]] > MAX_C:
                return False
            self.push(qop(nn.TransposeOp, [v], xp, {"perm": nn.i64_array(perm)}).results[0],
                      np.transpose(x, perm), xp)
        elif kind == "reshape":
            shape = self.pick([(n, c, h * w, 1), (n, 1, c * h, w), (n * c, 1, h, w),
                               (n, c, w, h)])
            if max(shape[2:]) > MAX_HW or shape[1] > MAX_C:
                return False
            self.push(qop(nn.ReshapeOp, [v], xp, {"shape": nn.i64_array(shape)}).results[0],
                      x.reshape(shape), xp)
        elif kind == "slice":
            starts, ends, steps, index = [], [], [], []
            for d in x.shape:
                step = self.pick([1, 2, -1])
                if step > 0:
                    s = self.int_(0, d - 1)
                    e = self.int_(s + 1, d)
                    index.append(slice(s, e, step))
                else:
                    s = self.int_(0, d - 1)
                    e = self.int_(-1, s - 1)
                    index.append(slice(s, None if e < 0 else e, step))
                starts.append(s)
                ends.append(e)
                steps.append(step)
            props = {"starts": nn.i64_array(starts), "ends": nn.i64_array(ends),
                     "steps": nn.i64_array(steps)}
            self.push(qop(nn.SliceOp, [v], xp, props).results[0], x[tuple(index)], xp)
        elif kind == "pad":
            mode = self.pick(["constant", "reflect", "edge"])
            pads = [0, 0, 0, 0, 0, 0, 0, 0]
            for i in (2, 3, 6, 7):
                limit = x.shape[i % 4] - 1 if mode == "reflect" else 2
                pads[i] = self.int_(-1 if mode == "constant" and x.shape[i % 4] > 2 else 0,
                                    min(limit, 2))
            value = float(np.float32(self.rng.uniform(-3, 3)))
            cropped = x[:, :, max(-pads[2], 0): h - max(-pads[6], 0),
                        max(-pads[3], 0): w - max(-pads[7], 0)]
            widths = [(max(pads[i], 0), max(pads[i + 4], 0)) for i in range(4)]
            if max(cropped.shape[2] + sum(widths[2]), cropped.shape[3] + sum(widths[3])) > MAX_HW:
                return False
            if mode == "constant":
                ref = np.pad(cropped, widths, constant_values=r_quantize(value, xp))
            else:
                ref = np.pad(cropped, widths, mode=mode)
            props = {"pads": nn.i64_array(pads), "mode": StringAttr(mode),
                     "value": nn.f32_attr(value)}
            self.push(qop(nn.PadOp, [v], xp, props).results[0], ref, xp)
        elif kind == "split":
            axis = self.pick([1, 3])
            if x.shape[axis] < 2:
                return False
            cut = self.int_(1, x.shape[axis] - 1)
            props = {"axis": nn.i64_attr(axis),
                     "sizes": nn.i64_array((cut, x.shape[axis] - cut))}
            op = qop(nn.SplitOp, [v], xp, props)
            first, second = np.split(x, [cut], axis=axis)
            self.outputs.append((op.results[1], second))
            self.push(op.results[0], first, xp)
        else:  # nearest resize by 2 on H and W (half_pixel, round_prefer_floor)
            if 2 * max(h, w) > MAX_HW:
                return False
            props = {"sizes": nn.i64_array((n, c, 2 * h, 2 * w)),
                     "scales": DenseArrayBase.from_list(f32, [1.0, 1.0, 2.0, 2.0]),
                     "mode": StringAttr("nearest"),
                     "coordinate_transformation_mode": StringAttr("half_pixel"),
                     "nearest_mode": StringAttr("round_prefer_floor")}
            self.push(qop(nn.ResizeOp, [v], xp, props).results[0],
                      np.repeat(np.repeat(x, 2, axis=2), 2, axis=3), xp)
        return True

    def precision(self) -> bool:
        v, x, xp = self.cur
        shape = list(x.shape)
        if self.flag():
            yp = self.calib(deq(x, xp), bits=self.pick([8, 8, 16]))
            y = r_to(x, xp, yp)
            self.push(quant.RequantizeOp(v, qtensor(shape, yp)).output, y, yp)
        else:
            f = quant.DequantizeOp(v, TensorType(f32, shape)).output
            fr = np.zeros(x.shape, np.float32)
            for idx in np.ndindex(x.shape):
                fr[idx] = r_dequantize(x[idx], xp.scale, xp.zp)
            if self.flag():
                self.outputs.append((f, fr))
            yp = self.calib(fr)
            y = np.zeros(x.shape, np.int64)
            for idx in np.ndindex(x.shape):
                y[idx] = r_quantize(fr[idx], yp)
            self.push(quant.QuantizeOp(f, qtensor(shape, yp)).output, y, yp)
        return True

    STEPS = ("conv", "conv_transpose", "gemm", "matmul", "binary", "relu_clip", "table",
             "pool", "global_pool", "concat", "movement", "precision")


class RandomCase:
    """A generated module with its inputs and the reference outputs (repr prints IR)."""

    def __init__(self, module: ModuleOp, inputs: list[np.ndarray],
                 expected: list[np.ndarray]):
        self.module, self.inputs, self.expected = module, inputs, expected

    def __repr__(self) -> str:
        return f"RandomCase:\n{self.module}"


@st.composite
def random_cases(draw) -> RandomCase:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = [1, draw(st.integers(1, 4)), draw(st.integers(1, 6)), draw(st.integers(1, 6))]
    xp = P(float(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128)))
    float_input = draw(st.booleans())
    steps = draw(st.lists(st.sampled_from(Gen.STEPS), min_size=1, max_size=4))
    gen = Gen(draw, rng)
    x_float = rng.uniform(-3, 3, shape).astype(np.float32)
    x_int = rng.integers(-128, 128, shape).astype(np.int8)
    second = draw(st.booleans())
    y_int = rng.integers(-128, 128, shape).astype(np.int8)
    yp = P(xp.scale * float(rng.uniform(0.5, 2)), int(rng.integers(-128, 128)))
    types = [TensorType(f32, shape) if float_input else qtensor(shape, xp)]
    if second:
        types.append(qtensor(shape, yp))

    def body(*args):
        if float_input:
            ref = np.zeros(shape, np.int64)
            for idx in np.ndindex(*shape):
                ref[idx] = r_quantize(x_float[idx], xp)
            gen.push(quant.QuantizeOp(args[0], qtensor(shape, xp)).output, ref, xp)
        else:
            gen.push(args[0], x_int, xp)
        if second:
            gen.values.insert(0, (args[1], y_int.astype(np.int64), yp))
        for step in steps:
            getattr(gen, step)()
        return [gen.cur[0]] + [o[0] for o in gen.outputs]

    m = module(types, body)
    inputs = [x_float if float_input else x_int] + ([y_int] if second else [])
    expected = [gen.cur[1].astype(gen.cur[2].dtype)] + [
        o[1].astype(nn.numpy_dtype(o[0].type.element_type)) for o in gen.outputs]
    return RandomCase(m, inputs, expected)


@SETTINGS
@given(random_cases())
def test_random_quantized_graphs_match_reference(case: RandomCase):
    outputs = list(run_module(case.module, case.inputs).values())
    assert len(outputs) == len(case.expected)
    for got, want in zip(outputs, case.expected, strict=True):
        assert got.dtype == want.dtype
        assert np.array_equal(got, want), (got, want)
    round_trip(case.module)


# ---------------------------------------------------------------------------
# dequantized results against the float ops
# ---------------------------------------------------------------------------
# Bound. An op whose specification is `requantize(acc, r, z_y, lo, hi)` computes
# v = round_shift(acc * M, S) with M / 2**S = r (1 + d), |d| <= 2**-15 (M is r * 2**S
# rounded to 15 bits, M >= 2**14) and |round_shift error| <= 1/2. With acc * r * s_y =
# f, the exact op on the dequantized inputs: |(v - z_y) * s_y - f| <= s_y / 2 + |f| 2**-15.
# Clamping to [lo, hi] is 1-Lipschitz and the clip bounds of the integer and real ranges
# differ by <= s_y / 2, so the bound holds against f clamped to y's real range.
# add / sub first rescale each operand to s_acc = min(s_a, s_b) / 256, adding
# s_acc / 2 + |operand| 2**-15 per operand. Table ops quantize f(dequantize(q)) once:
# s_y / 2. The float kernels compute f in float32 (<= 36 products summed), hence
# REL_F32 * (1 + max |f|) on top.
REL_M = 2.0**-15
REL_F32 = 1e-5


def _quantize_input(rng: np.random.Generator, shape, lo=-2.0, hi=2.0) -> tuple[np.ndarray, P]:
    x = rng.uniform(lo, hi, shape)
    p = calibrate(x, np.random.default_rng(0))
    return np.array([r_quantize(v, p) for v in x.ravel()], np.int64).reshape(shape), p


def _symmetric(rng, shape, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Weights quantized as the specification says: scale = max|w| / 127 per channel."""
    w = rng.uniform(-1, 1, shape)
    if axis is None:
        scales = np.array([np.abs(w).max() / 127])
        q = np.rint(w / scales[0])
    else:
        other = tuple(i for i in range(len(shape)) if i != axis)
        scales = np.abs(w).max(axis=other) / 127
        q = np.rint(w / np.expand_dims(scales, other))
    return q.astype(np.int8), scales


OPS_FOR_BOUND = ("conv2d", "gemm", "matmul", "add", "sub", "mul", "avg_pool", "global_avg",
                 "relu", "clip", "sigmoid", "max_pool", "max", "concat")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(OPS_FOR_BOUND), st.integers(0, 2**32 - 1), st.booleans())
def test_dequantized_result_within_bound(name: str, seed: int, per_channel: bool):
    rng = np.random.default_rng(seed)
    x, xp = _quantize_input(rng, (1, 3, 5, 5))
    xf = deq(x, xp).astype(np.float32)
    extra = 0.0  # bound terms beyond s_y / 2 + |f| 2**-15
    inputs = [x.astype(np.int8)]
    types = [qtensor(x.shape, xp)]
    if name == "conv2d":
        w, ws = _symmetric(rng, (4, 3, 3, 3), 0 if per_channel else None)
        ws = np.broadcast_to(ws, (4,))
        b = rng.integers(-500, 500, 4).astype(np.int32)
        bs = [xp.scale * s for s in ws]
        f = kernels.conv2d(xf, w * ws[:, None, None, None], b * np.array(bs), (1, 1),
                           (1, 1, 1, 1), (1, 1), 1)
        act = ("relu", ()) if per_channel else ("clip", (-0.5, 1.0))
        f = Gen.apply_float_activation(f, *act)
        wq = U.per_axis(list(ws), [0] * 4, 0) if per_channel else U.per_tensor(ws[0], 0)

        def build(v, yp):
            ops = [v, qconst(w, wq), qconst(b, U.per_axis(bs, [0] * 4, 0, bits=32))]
            return qop(nn.Conv2dOp, ops, yp, props_conv(pads=(1, 1, 1, 1), activation=act[0],
                                                        params=act[1]))
    elif name == "gemm":
        x, xp = _quantize_input(rng, (3, 8))
        xf, inputs, types = deq(x, xp).astype(np.float32), [x.astype(np.int8)], [
            qtensor((3, 8), xp)]
        w, ws = _symmetric(rng, (8, 5), 1 if per_channel else None)
        ws = np.broadcast_to(ws, (5,))
        f = kernels.gemm(xf, (w * ws[None, :]).astype(np.float32), None, 1.0, 1.0, False, False)
        wq = U.per_axis(list(ws), [0] * 5, 1) if per_channel else U.per_tensor(ws[0], 0)

        def build(v, yp):
            return qop(nn.GemmOp, [v, qconst(w, wq)], yp, props_gemm())
    elif name in ("matmul", "add", "sub", "mul", "max"):
        y, yq = _quantize_input(rng, (1, 3, 5, 5), -1.0, 3.0)
        yf = deq(y, yq).astype(np.float32)
        inputs.append(y.astype(np.int8))
        types.append(qtensor(y.shape, yq))
        f = {"matmul": kernels.matmul, "add": kernels.add, "sub": kernels.sub,
             "mul": kernels.mul, "max": kernels.maximum}[name](xf, yf)
        cls = {"matmul": nn.MatmulOp, "add": nn.AddOp, "sub": nn.SubOp, "mul": nn.MulOp,
               "max": nn.MaxOp}[name]
        if name in ("add", "sub"):
            extra = min(xp.scale, yq.scale) / 256 + REL_M * (np.abs(xf).max() + np.abs(yf).max())

        def build(v, yp, w=None):
            return qop(cls, [v, w], yp)
    elif name == "concat":
        y, yq = _quantize_input(rng, (1, 3, 5, 5), -1.0, 3.0)
        inputs.append(y.astype(np.int8))
        types.append(qtensor(y.shape, yq))
        f = np.concatenate([xf, deq(y, yq).astype(np.float32)], axis=1)

        def build(v, yp, w=None):
            return qop(nn.ConcatOp, [v, w], yp, {"axis": nn.i64_attr(1)})
    else:
        pool = {"kernel": nn.i64_array((3, 3)), "strides": nn.i64_array((2, 2)),
                "pads": nn.i64_array((1, 1, 1, 1)), "ceil_mode": nn.bool_attr(True)}
        unary: dict[str, tuple[type[Operation], dict, np.ndarray]] = {
            "avg_pool": (nn.AvgPool2dOp, {**pool, "count_include_pad": nn.bool_attr(per_channel)},
                         kernels.avg_pool2d(xf, (3, 3), (2, 2), (1, 1, 1, 1), True, per_channel)),
            "max_pool": (nn.MaxPool2dOp, {**pool, "dilations": nn.i64_array((1, 1))},
                         kernels.max_pool2d(xf, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), True)),
            "global_avg": (nn.GlobalAvgPoolOp, {}, kernels.global_avg_pool(xf)),
            "relu": (nn.ReluOp, {}, kernels.relu(xf)),
            "clip": (nn.ClipOp, {"min": nn.f32_attr(-0.7), "max": nn.f32_attr(0.9)},
                     kernels.clip(xf, np.float32(-0.7), np.float32(0.9))),
            "sigmoid": (nn.SigmoidOp, {}, kernels.sigmoid(xf)),
        }
        cls, props, f = unary[name]

        def build(v, yp):
            return qop(cls, [v], yp, props)
    yp = calibrate(f, rng)
    m = module(types, lambda *vs: build(*vs[:1], yp, *vs[1:]).results)
    got = deq(run1(m, *inputs), yp)
    lo_real, hi_real = (yp.qmin - yp.zp) * yp.scale, (yp.qmax - yp.zp) * yp.scale
    target = np.clip(f.astype(np.float64), lo_real, hi_real)
    bound = (yp.scale / 2 + REL_M * np.abs(f) + extra
             + REL_F32 * (1 + np.abs(f).max()))
    err = np.abs(got - target)
    assert (err <= bound).all(), (name, float(err.max()), float(yp.scale))
