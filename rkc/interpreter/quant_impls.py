"""Integer semantics of quantized `nn` ops and the `quant` dialect on xDSL's interpreter.

Dispatch. xDSL binds one implementation per op class, so `NNQuantFunctions` subclasses
the float `NNFunctions` and overrides every nn op with the same router: an op none of
whose operands or results has a `!quant.uniform` element type runs the float
implementation unchanged; any other op goes to `NNQuantFunctions.run_integer`, the one
place that looks the op class up in `INTEGER_SEMANTICS` (filled by `@integer_semantics`
below, one entry per row of the table in docs/quantization.md). An op with quantized
types and no entry, or whose quantization parameters break a precondition of the
specification, raises `QuantSemanticsError` naming the op and the reason.

Values: quantized operands arrive as numpy arrays of their storage dtype (int8 / int16 /
int32); every quantized result is returned in its storage dtype. The arithmetic lives in
`rkc.quant.integer_kernels`; this module reads and checks the parameters only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
from xdsl.dialects.builtin import StringAttr, TensorType
from xdsl.interpreter import Interpreter, PythonValues, impl, register_impls
from xdsl.ir import Attribute, Operation, SSAValue

from rkc.dialects import nn, quant
from rkc.dialects.quant import UniformQuantizedType, quantized_element
from rkc.interpreter import kernels as k
from rkc.interpreter.nn_impls import NNFunctions
from rkc.quant import integer_kernels as ik
from rkc.quant.integer_kernels import TensorQ
from rkc.quant.requant import RequantRangeError

BIAS_SCALE_RTOL = 1e-6
"""A bias scale must equal s_x * s_w[o] within this relative tolerance."""


class QuantSemanticsError(Exception):
    """An op whose quantized types have no meaning under docs/quantization.md.

    This is an internal error of whatever produced the IR (the quantize pass), not a
    user error: it is deliberately not an `RkcError`.
    """

    def __init__(self, op: Operation, reason: str):
        name = op.attributes.get(nn.NAME_ATTR)
        where = f" '{name.data}'" if isinstance(name, StringAttr) else ""
        super().__init__(f"quantized {op.name}{where}: {reason}")
        self.op = op


def is_quantized(op: Operation) -> bool:
    """Whether any operand or result of `op` has a quantized element type."""
    return any(quantized_element(v.type) is not None
               for v in (*op.operands, *op.results))


Semantics = Callable[["NNQuantFunctions", Operation, tuple[np.ndarray, ...]],
                     Sequence[np.ndarray]]
INTEGER_SEMANTICS: dict[type[Operation], Semantics] = {}
"""nn op class -> its integer semantics (int64 or storage-dtype results, in order)."""


def integer_semantics(*op_types: type[Operation]) -> Callable[[Semantics], Semantics]:
    """Register the integer semantics of quantized `op_types`."""
    def register(fn: Semantics) -> Semantics:
        for t in op_types:
            INTEGER_SEMANTICS[t] = fn
        return fn
    return register


# ---------------------------------------------------------------------------
# reading and checking quantization parameters
# ---------------------------------------------------------------------------
def _qtype(op: Operation, t: Attribute, what: str) -> UniformQuantizedType:
    q = quantized_element(t)
    if q is None:
        raise QuantSemanticsError(op, f"{what} must be quantized, got {t}")
    return q


def _act(op: Operation, value: SSAValue, what: str) -> TensorQ:
    """The per-tensor parameters of an activation operand or result."""
    q = _qtype(op, value.type, what)
    if q.quantized_axis is not None:
        raise QuantSemanticsError(op, f"{what} must be quantized per tensor, got {q}")
    return TensorQ(q.scale, q.zero_point, q.qmin, q.qmax)


def _weight_scales(op: Operation, value: SSAValue, axis: int, count: int,
                   what: str) -> np.ndarray:
    """Scales [count] of a symmetric weight, per tensor or per-axis on `axis`."""
    q = _qtype(op, value.type, what)
    if any(q.zero_points):
        raise QuantSemanticsError(op, f"{what} must be symmetric (zero point 0), got {q}")
    if q.quantized_axis not in (None, axis):
        raise QuantSemanticsError(op, f"{what} must be quantized per tensor or per-axis on "
                                      f"axis {axis}, got axis {q.quantized_axis}")
    return np.broadcast_to(np.asarray(q.scales, np.float64), (count,))


def _check_bias(op: Operation, value: SSAValue, expected: np.ndarray, what: str) -> None:
    """An i32 bias, zero point 0, per tensor or per-axis on its last axis, whose scale for
    output channel o is `expected[o]` (within BIAS_SCALE_RTOL)."""
    q = _qtype(op, value.type, what)
    assert isinstance(value.type, TensorType)
    rank = len(value.type.get_shape())
    if q.bits != 32 or any(q.zero_points):
        raise QuantSemanticsError(op, f"{what} must be i32 with zero point 0, got {q}")
    if q.quantized_axis not in (None, rank - 1):
        raise QuantSemanticsError(op, f"{what} must be per-axis on its last axis "
                                      f"({rank - 1}), got axis {q.quantized_axis}")
    scales = np.broadcast_to(np.asarray(q.scales, np.float64), expected.shape)
    bad = np.abs(scales - expected) > BIAS_SCALE_RTOL * expected
    if bad.any():
        o = int(np.argmax(bad))
        raise QuantSemanticsError(op, f"{what} scale {scales[o]:.9g} at channel {o} must be "
                                      f"s_in * s_w[{o}] = {expected[o]:.9g}")


def _fused_range(op: nn.Conv2dOp | nn.GemmOp, y: TensorQ) -> tuple[int, int]:
    activation = op.activation.data if op.activation is not None else None
    params = tuple(op.activation_params.get_values()) if op.activation_params else ()
    if activation not in (None, "relu", "clip"):
        raise QuantSemanticsError(op, f"fused activation {activation} has no integer "
                                      f"semantics (only relu and clip)")
    return ik.activation_range(activation, params, y)


def _ints(attr) -> tuple[int, ...]:
    return tuple(int(v) for v in attr.get_values())


def _shape(value: SSAValue) -> tuple[int, ...]:
    assert isinstance(value.type, TensorType)
    return tuple(value.type.get_shape())


# ---------------------------------------------------------------------------
# convolution and matrix products
# ---------------------------------------------------------------------------
@integer_semantics(nn.Conv2dOp)
def _conv2d(fns: NNQuantFunctions, op: nn.Conv2dOp, args: tuple[np.ndarray, ...]):
    x, w, *b = args
    xq, yq = _act(op, op.input, "input"), _act(op, op.output, "result")
    w_scales = _weight_scales(op, op.weight, 0, w.shape[0], "weight")
    if op.bias is not None:
        _check_bias(op, op.bias, xq.scale * w_scales, "bias")
    lo, hi = _fused_range(op, yq)
    return (ik.conv2d(x, xq, w, w_scales, b[0] if b else None, yq, lo, hi, _ints(op.strides),
                      _ints(op.pads), _ints(op.dilations), op.group.value.data),)


@integer_semantics(nn.ConvTranspose2dOp)
def _conv_transpose2d(fns: NNQuantFunctions, op: nn.ConvTranspose2dOp,
                      args: tuple[np.ndarray, ...]):
    x, w, *b = args
    xq, yq = _act(op, op.input, "input"), _act(op, op.output, "result")
    group = op.group.value.data
    if group != 1 and _qtype(op, op.weight.type, "weight").quantized_axis is not None:
        raise QuantSemanticsError(op, f"a per-axis weight needs group 1, got group {group}")
    w_scales = _weight_scales(op, op.weight, 1, w.shape[1] * group, "weight")
    if op.bias is not None:
        _check_bias(op, op.bias, xq.scale * w_scales, "bias")
    return (ik.conv_transpose2d(x, xq, w, w_scales, b[0] if b else None, yq, yq.qmin, yq.qmax,
                                _ints(op.strides), _ints(op.pads), _ints(op.dilations), group,
                                _ints(op.output_padding)),)


@integer_semantics(nn.GemmOp)
def _gemm(fns: NNQuantFunctions, op: nn.GemmOp, args: tuple[np.ndarray, ...]):
    a, b, *c = args
    if op.alpha.value.data != 1.0 or op.beta.value.data != 1.0:
        raise QuantSemanticsError(op, f"needs alpha = beta = 1, got alpha = "
                                      f"{op.alpha.value.data}, beta = {op.beta.value.data}")
    aq, yq = _act(op, op.a, "A"), _act(op, op.output, "result")
    trans_a, trans_b = bool(op.trans_a.value.data), bool(op.trans_b.value.data)
    n = _shape(op.output)[1]
    b_scales = _weight_scales(op, op.b, 0 if trans_b else 1, n, "B")
    if op.c is not None:
        _check_bias(op, op.c, aq.scale * b_scales, "C")
    lo, hi = _fused_range(op, yq)
    return (ik.gemm(a, aq, b, b_scales, c[0] if c else None, yq, lo, hi, trans_a, trans_b),)


@integer_semantics(nn.MatmulOp)
def _matmul(fns: NNQuantFunctions, op: nn.MatmulOp, args: tuple[np.ndarray, ...]):
    a, b = args
    aq, yq = _act(op, op.lhs, "A"), _act(op, op.output, "result")
    bt = _qtype(op, op.rhs.type, "B")
    if bt.quantized_axis is None:
        b_scales, b_zps = bt.scale, bt.zero_point
    else:
        rank = len(_shape(op.rhs))
        if rank < 2 or bt.quantized_axis != rank - 1:
            raise QuantSemanticsError(op, f"a per-axis B must be quantized on its last axis "
                                          f"(rank >= 2), got axis {bt.quantized_axis}")
        if not isinstance(op.rhs.owner, nn.ConstantOp):
            raise QuantSemanticsError(op, "a per-axis B must be a constant")
        b_scales = np.asarray(bt.scales, np.float64)
        b_zps = np.asarray(bt.zero_points, np.int64)
    return (ik.matmul(a, aq, b, b_scales, b_zps, yq),)


# ---------------------------------------------------------------------------
# elementwise
# ---------------------------------------------------------------------------
def _binary(op: Operation) -> tuple[TensorQ, TensorQ, TensorQ]:
    return (_act(op, op.operands[0], "lhs"), _act(op, op.operands[1], "rhs"),
            _act(op, op.results[0], "result"))


@integer_semantics(nn.AddOp, nn.SubOp)
def _add_sub(fns: NNQuantFunctions, op: Operation, args: tuple[np.ndarray, ...]):
    return (ik.add_sub(args[0], (q := _binary(op))[0], args[1], q[1], q[2],
                       subtract=isinstance(op, nn.SubOp)),)


@integer_semantics(nn.MulOp)
def _mul(fns: NNQuantFunctions, op: Operation, args: tuple[np.ndarray, ...]):
    aq, bq, yq = _binary(op)
    return (ik.mul(args[0], aq, args[1], bq, yq),)


@integer_semantics(nn.MaxOp, nn.MinOp)
def _max_min(fns: NNQuantFunctions, op: Operation, args: tuple[np.ndarray, ...]):
    aq, bq, yq = _binary(op)
    return (ik.max_min(args[0], aq, args[1], bq, yq, take_max=isinstance(op, nn.MaxOp)),)


@integer_semantics(nn.ReluOp, nn.ClipOp)
def _relu_clip(fns: NNQuantFunctions, op: Operation, args: tuple[np.ndarray, ...]):
    xq, yq = _act(op, op.operands[0], "input"), _act(op, op.results[0], "result")
    if isinstance(op, nn.ClipOp):
        lo, hi = ik.activation_range("clip", (op.min.value.data, op.max.value.data), yq)
    else:
        lo, hi = ik.activation_range("relu", (), yq)
    return (ik.to_output(args[0], xq, yq, lo, hi),)


TABLE_FUNCTIONS: dict[type[Operation], Callable[[Operation],
                                                Callable[[np.ndarray], np.ndarray]]] = {
    nn.SigmoidOp: lambda op: k.sigmoid,
    nn.TanhOp: lambda op: k.tanh,
    nn.ExpOp: lambda op: k.exp,
    nn.LogOp: lambda op: k.log,
    nn.SqrtOp: lambda op: k.sqrt,
    nn.AbsOp: lambda op: k.abs,
    nn.NegOp: lambda op: k.neg,
    nn.ErfOp: lambda op: k.erf,
    nn.SiluOp: lambda op: k.silu,
    nn.HardSwishOp: lambda op: k.hard_swish,
    nn.HardSigmoidOp: lambda op: functools.partial(
        k.hard_sigmoid, alpha=op.alpha.value.data, beta=op.beta.value.data),
    nn.GeluOp: lambda op: functools.partial(k.gelu, approximate=op.approximate.data),
    nn.LeakyReluOp: lambda op: functools.partial(k.leaky_relu, alpha=op.alpha.value.data),
}
"""Table op class -> the float32 kernel `f` of that op (with its properties bound)."""


@integer_semantics(*TABLE_FUNCTIONS)
def _table(fns: NNQuantFunctions, op: Operation, args: tuple[np.ndarray, ...]):
    xq, yq = _act(op, op.operands[0], "input"), _act(op, op.results[0], "result")
    if xq.qmax - xq.qmin >= 1 << 16:
        raise QuantSemanticsError(op, "a lookup table needs an i8 or i16 input")
    table = fns.tables.get(op)
    if table is None:
        table = fns.tables[op] = ik.build_table(TABLE_FUNCTIONS[type(op)](op), xq, yq)
    return (ik.lookup(args[0], table, xq),)


# ---------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------
@integer_semantics(nn.MaxPool2dOp)
def _max_pool2d(fns: NNQuantFunctions, op: nn.MaxPool2dOp, args: tuple[np.ndarray, ...]):
    xq, yq = _act(op, op.input, "input"), _act(op, op.output, "result")
    return (ik.max_pool2d(args[0], xq, yq, _ints(op.kernel), _ints(op.strides), _ints(op.pads),
                          _ints(op.dilations), bool(op.ceil_mode.value.data)),)


@integer_semantics(nn.AvgPool2dOp)
def _avg_pool2d(fns: NNQuantFunctions, op: nn.AvgPool2dOp, args: tuple[np.ndarray, ...]):
    xq, yq = _act(op, op.input, "input"), _act(op, op.output, "result")
    return (ik.avg_pool2d(args[0], xq, yq, _ints(op.kernel), _ints(op.strides), _ints(op.pads),
                          bool(op.ceil_mode.value.data), bool(op.count_include_pad.value.data)),)


@integer_semantics(nn.GlobalMaxPoolOp, nn.GlobalAvgPoolOp)
def _global_pool(fns: NNQuantFunctions, op: Operation, args: tuple[np.ndarray, ...]):
    xq, yq = _act(op, op.operands[0], "input"), _act(op, op.results[0], "result")
    pool = ik.global_max_pool if isinstance(op, nn.GlobalMaxPoolOp) else ik.global_avg_pool
    return (pool(args[0], xq, yq),)


# ---------------------------------------------------------------------------
# data movement
# ---------------------------------------------------------------------------
@integer_semantics(nn.ConcatOp)
def _concat(fns: NNQuantFunctions, op: nn.ConcatOp, args: tuple[np.ndarray, ...]):
    xqs = [_act(op, v, f"input {i}") for i, v in enumerate(op.inputs)]
    return (ik.concat(args, xqs, _act(op, op.output, "result"), op.axis.value.data),)


@integer_semantics(nn.ReshapeOp, nn.TransposeOp, nn.SliceOp, nn.SplitOp, nn.ResizeOp,
                   nn.PadOp)
def _data_movement(fns: NNQuantFunctions, op: Operation, args: tuple[np.ndarray, ...]):
    """The float kernel on the stored integers; every result has the input's type
    parameters, and a constant pad value is `quantize(value)` with them."""
    xq = _act(op, op.operands[0], "input")
    x_type = quantized_element(op.operands[0].type)
    for i, r in enumerate(op.results):
        if quantized_element(r.type) != x_type:
            raise QuantSemanticsError(op, f"result {i} must keep the input's quantization "
                                          f"{x_type}, got {r.type}")
    if isinstance(op, nn.ResizeOp) and op.mode.data != "nearest":
        raise QuantSemanticsError(op, f"resize mode {op.mode.data} has no integer semantics "
                                      f"(only nearest)")
    if isinstance(op, nn.PadOp) and op.mode.data == "constant":
        value = ik.quantize(np.float64(op.value.value.data), xq.scale, xq.zp, xq.qmin, xq.qmax)
        return (k.pad(args[0], _ints(op.pads), "constant", int(value)),)
    return fns.run_float(op, args)


@integer_semantics(nn.ArgMaxOp)
def _argmax(fns: NNQuantFunctions, op: nn.ArgMaxOp, args: tuple[np.ndarray, ...]):
    """Index of the largest code (scale > 0 keeps the order)."""
    _act(op, op.input, "input")
    return fns.run_float(op, args)


@integer_semantics(nn.ConstantOp)
def _constant(fns: NNQuantFunctions, op: nn.ConstantOp, args: tuple[np.ndarray, ...]):
    """The stored integers."""
    return (op.to_numpy(),)


# ---------------------------------------------------------------------------
# the interpreter functions
# ---------------------------------------------------------------------------
def _store(op: Operation, values: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """The results in their declared dtypes (the storage dtype of a quantized type)."""
    return tuple(np.asarray(v).astype(nn.numpy_dtype(r.type.get_element_type()), copy=False)
                 for v, r in zip(values, op.results, strict=True))


class NNQuantFunctions(NNFunctions):
    """Every nn op (float, or routed to its integer semantics when quantized; the routers
    are added below) and the quant dialect ops."""

    def __init__(self) -> None:
        self.tables: dict[Operation, np.ndarray] = {}  # one lookup table per op per run

    def run_float(self, op: Operation, args: PythonValues) -> PythonValues:
        """The float implementation of `op` from NNFunctions."""
        return _FLOAT_IMPLS[type(op)](self, None, op, args).values

    def run_integer(self, op: Operation, args: PythonValues) -> tuple[np.ndarray, ...]:
        """The integer semantics of an nn op with quantized types: the one routing point."""
        semantics = INTEGER_SEMANTICS.get(type(op))
        if semantics is None:
            raise QuantSemanticsError(
                op, "docs/quantization.md gives this op no integer semantics; the quantize "
                    "pass must keep it in float between quant.dequantize and quant.quantize")
        try:
            return _store(op, semantics(self, op, tuple(np.asarray(a) for a in args)))
        except RequantRangeError as e:
            raise QuantSemanticsError(op, str(e)) from e

    @impl(quant.QuantizeOp)
    def run_quantize(self, interp: Interpreter, op: quant.QuantizeOp, args: PythonValues):
        q = _qtype(op, op.output.type, "result")
        scales, zps = q.broadcast_parameters(len(_shape(op.output)))
        return _store(op, [ik.quantize(args[0], scales, zps, q.qmin, q.qmax)])

    @impl(quant.DequantizeOp)
    def run_dequantize(self, interp: Interpreter, op: quant.DequantizeOp, args: PythonValues):
        q = _qtype(op, op.input.type, "input")
        scales, zps = q.broadcast_parameters(len(_shape(op.input)))
        return _store(op, [ik.dequantize(args[0], scales, zps)])

    @impl(quant.RequantizeOp)
    def run_requantize(self, interp: Interpreter, op: quant.RequantizeOp, args: PythonValues):
        src, dst = _act(op, op.input, "input"), _act(op, op.output, "result")
        try:
            return _store(op, [ik.requantize_to(args[0], src, dst)])
        except RequantRangeError as e:
            raise QuantSemanticsError(op, str(e)) from e


_FLOAT_IMPLS = dict(NNFunctions._impls())  # op class -> float implementation (xDSL's table)


def _router(op_type: type[Operation]):
    """The implementation of `op_type`: float unless the op has a quantized type."""
    float_impl = _FLOAT_IMPLS[op_type]

    @impl(op_type)
    def run(self: NNQuantFunctions, interp: Interpreter, op: Operation, args: PythonValues):
        if is_quantized(op):
            return self.run_integer(op, args)
        return float_impl(self, interp, op, args).values

    return run


for _op_type in _FLOAT_IMPLS:
    setattr(NNQuantFunctions, f"run_routed_{_op_type.__name__}", _router(_op_type))
register_impls(NNQuantFunctions)
