"""nn-to-rknpu: int8 and fp16 `nn` ops become `rknpu` tasks; the rest is wrapped in
`rknpu.cpu`.

Establishes: the entry function holds no `nn` / `quant` op outside `rknpu.cpu` regions
except `nn.constant`s; every int8 or fp16 op with a hardware form (and not placed on the
CPU by `rknpu-legalize`, whose `rkc.placement` / `rkc.reason` it honours) is replaced by
`rknpu` ops computing exactly what it computed (int8: the integer semantics of
`rkc.quant.integer_kernels`; fp16: the nn reference's float kernels, see
`rkc.dialects.rknpu`):

    nn.conv2d (group 1 or depthwise; fused relu / clip)   -> rknpu.conv
    nn.gemm / nn.matmul, constant weight, A [M, K]        -> rknpu.view A as [M, K, 1, 1],
        rknpu.conv 1x1 with weight op(B)^T as [N, K, 1, 1] and C as bias [N],
        rknpu.view [M, N, 1, 1] as [M, N]
    nn.add / sub / mul / max / min                         -> rknpu.ew (binary)
    nn.relu / clip, quant.requantize                       -> rknpu.ew (clamp, rescale)
    fp16 clip (also fused in a conv)                       -> rknpu.ew max / min with
        f16 constants (a relu, or the conv's relu, for a lower bound 0)
    sigmoid, tanh, silu, ..., and int8 leaky_relu, abs,
        neg (int8 tables of 256 entries)                   -> rknpu.ew kind lut
    fp16 leaky_relu / abs / neg / prelu                    -> rknpu.ew of that kind
    nn.max_pool2d / avg_pool2d / global pools              -> rknpu.pool
    int8 avg_pool2d / global_avg_pool, one divisor          -> rknpu.conv depthwise, weights 1
    nn.concat on channels with the output's parameters     -> rknpu.concat
    nn.reshape / transpose keeping N and C, nn.slice /
        split along channels                               -> rknpu.view (no task)

Matrix products. The M rows of A become the batch (N = M, C = K, H = W = 1), so A and Y
are views of NC1HWC2 tensors [M, ceil(K/C2), 1, 1, C2] (no data moves; [1, K, 1, M]
would need a transpose whenever M > 1). M > 1 is a batch: M one-pixel tasks, or one task
reading [1, 1, M, 1, C2] when K fits one C2 block (the same bytes). The conv's
accumulator `sum_k (a - z_a) * w` plus the bias, requantized per output channel with
`s_a * s_w[n] / s_y`, is exactly integer_kernels.gemm / matmul's per-column arithmetic
(per-axis weight scales move from B's N axis to the weight's axis 0). A matmul weight
must have zero point 0 (a symmetric B, what nn-quantize makes); a gemm's C must not vary
along the rows (a per-channel bias). fp16: the conv carries `fp16_sum = "sequential"`
(the gemm reference's half product, then C added in f16); alpha != 1 (fp16 only: int8
gemms have alpha = beta = 1) becomes an `rknpu.ew` mul by alpha after the conv, then add
C * beta, then the activation, as the reference orders them.

DPU activations. int8 leaky_relu, abs and neg are tables in the quantized semantics
(`T[q] = quantize(f(dequantize(q)))`, rkc.quant.integer_kernels.build_table), so they
lower to `lut` like sigmoid: exact. The DPU's own PReLU multiplier or EW abs / neg
followed by the output converter would round differently (a 15-bit multiplier on the
centred code instead of a float function rounded once). A `lut` must be programmed as one
entry per int8 input code into the DPU's LE / LO tables (hw §4.7: two 513-entry 16-bit
tables with an index select; the exact mapping is [UNCERTAIN] reverse engineering).
int8 prelu has no integer semantics (nn-quantize keeps it float); fp16 prelu, leaky_relu,
abs and neg are `rknpu.ew` kinds computed as the float kernels are.

Per-channel and scalar constant operands of elementwise ops are re-materialized as
[1, C, 1, 1] (or [1, C]) constants with the same values, so `rknpu-layout` can read them
in NC1HWC2. A view of a view is one view; a view that changes nothing is no op.

Anything else (float ops, quantize / dequantize / cast at the edges of the NPU's work,
data movement that changes the layout) goes into an `rknpu.cpu` op carrying the reason.
Run `rknpu-legalize{target=...}` first so that the chip's limits apply; without it only
the lowering's own coverage (`obstacle`) is checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import builtin, func
from xdsl.dialects.builtin import StringAttr, TensorType, f16
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from rkc.dialects import nn, quant, rknpu
from rkc.dialects.quant import UniformQuantizedType, quantized_element
from rkc.graph import main_function
from rkc.interpreter.quant_impls import TABLE_FUNCTIONS
from rkc.lowering.legality import pixel_runs
from rkc.quant import integer_kernels as ik
from rkc.quant import requant
from rkc.targets import TARGETS

PLACEMENT_ATTR = "rkc.placement"
REASON_ATTR = "rkc.reason"
BINARY = {nn.AddOp: "add", nn.SubOp: "sub", nn.MulOp: "mul", nn.MaxOp: "max",
          nn.MinOp: "min"}
FP16_UNARY = {nn.ReluOp: "relu", nn.ClipOp: "clip", nn.LeakyReluOp: "leaky_relu",
              nn.AbsOp: "abs", nn.NegOp: "neg"}
VIEWS = (nn.ReshapeOp, nn.TransposeOp, nn.SliceOp, nn.SplitOp)


# ---------------------------------------------------------------------------
# data types and shapes
# ---------------------------------------------------------------------------
def value_dtype(value: SSAValue) -> str | None:
    """"int8" (per-tensor i8), "fp16" (f16) or None for any other tensor."""
    if not isinstance(value.type, TensorType):
        return None
    q = quantized_element(value.type)
    if q is not None:
        return "int8" if q.bits == 8 and q.quantized_axis is None else None
    return "fp16" if value.type.element_type == f16 else None


def _activations(op: Operation) -> list[SSAValue]:
    return [v for v in op.operands if nn.constant_value(v) is None]


def op_dtype(op: Operation) -> str | None:
    """The one data type of the op's features and results, or None."""
    kinds = {value_dtype(v) for v in (*_activations(op), *op.results)}
    return kinds.pop() if len(kinds) == 1 else None


def _shape(value: SSAValue) -> tuple[int, ...]:
    assert isinstance(value.type, TensorType)
    return tuple(value.type.get_shape())


def _as4d(shape: Sequence[int]) -> tuple[int, ...] | None:
    return rknpu.as_nchw_shape(shape) if len(shape) in (2, 4) else None


def _keeps_n_and_c(src: Sequence[int], dst: Sequence[int]) -> bool:
    a, b = _as4d(src), _as4d(dst)
    return a is not None and b is not None and a[:2] == b[:2]


def _constant(value: SSAValue | None) -> bool:
    return value is not None and nn.constant_value(value) is not None


# ---------------------------------------------------------------------------
# coverage
# ---------------------------------------------------------------------------
def _matrix_obstacle(op: nn.GemmOp | nn.MatmulOp, dtype: str) -> str | None:
    if isinstance(op, nn.GemmOp):
        if nn.int_of(op.properties, "trans_a"):
            return "gemm with trans_a needs a transpose of A before the 1x1 conv"
        if not _constant(op.b) or (op.c is not None and not _constant(op.c)):
            return "B or C is not a constant (the CNA reads packed constant weights)"
        if op.activation is not None and op.activation.data not in ("relu", "clip"):
            return f"fused {op.activation.data} has no output-clamp form"
        if dtype == "int8" and (nn.float_of(op.properties, "alpha") != 1.0
                                or nn.float_of(op.properties, "beta") != 1.0):
            return "an int8 gemm needs alpha = beta = 1 (nn-quantize folds them into B and C)"
        a, rows = op.a, _shape(op.output)[0]
        if op.c is not None:
            c = _shape(op.c)
            if len(c) == 2 and c[0] != 1 and rows != 1:
                return f"C {list(c)} varies along the rows: not a per-channel bias"
    else:
        if not _constant(op.rhs):
            return "matmul of two activations: the CNA needs a constant weight"
        if len(_shape(op.rhs)) != 2:
            return f"matmul weight of rank {len(_shape(op.rhs))} is not a [K, N] matrix"
        q = quantized_element(op.rhs.type)
        if q is not None and any(q.zero_points):
            return "matmul weight with a zero point (the CNA weight offset is not modelled)"
        a = op.lhs
    if len(_shape(a)) != 2:
        return f"matmul input of rank {len(_shape(a))}: only [M, K] maps onto a 1x1 conv"
    return None


def _view_obstacle(op: Operation) -> str | None:
    src = _shape(op.operands[0])
    if len(src) not in (2, 4):
        return f"a rank-{len(src)} tensor has no NC1HWC2 form"
    if isinstance(op, nn.SplitOp):
        if nn.int_of(op.properties, "axis") % len(src) != 1:
            return "split is only a view along channels"
        return None
    if isinstance(op, nn.SliceOp):
        if any(s != 1 for s in nn.ints(op.properties, "steps")):
            return "strided slice changes the NC1HWC2 layout"
        cut = [i for i, (s, e, d) in enumerate(zip(nn.ints(op.properties, "starts"),
                                                   nn.ints(op.properties, "ends"), src,
                                                   strict=True)) if (s, e) != (0, d)]
        if any(i != 1 for i in cut):
            return "slice is only a view along channels"
        return None
    dst = _shape(op.results[0])
    if not _keeps_n_and_c(src, dst):
        return f"{op.name} changes the NC1HWC2 layout (a view keeps N and C)"
    if isinstance(op, nn.TransposeOp):
        moved = [a for a in nn.ints(op.properties, "perm") if src[a] != 1]
        if moved != sorted(moved):
            return "transpose moves axes of size > 1 (not a view)"
    return None


def obstacle(op: Operation) -> str | None:
    """Why this lowering has no rknpu form for `op` (None when it has one). This is the
    lowering's coverage, not the chip's limits: those are rknpu-legalize's
    (`rkc.lowering.legality`), whose CPU placements the pass honours first."""
    if isinstance(op, quant.QuantizeOp | quant.DequantizeOp):
        return "float <-> int8 conversion at the graph edge runs on the host"
    if isinstance(op, nn.CastOp):
        return "float <-> fp16 conversion runs on the host"
    dtype = op_dtype(op)
    if dtype is None:
        return "neither int8 nor fp16 (f32 ops run on the host)"
    if isinstance(op, nn.Conv2dOp):
        group = nn.int_of(op.properties, "group")
        shape = op.weight.type.get_shape()
        if group != 1 and not group == shape[0] == shape[1] * group:
            return f"grouped convolution (group {group}) is neither direct nor depthwise"
        if op.activation is not None and op.activation.data not in ("relu", "clip"):
            return f"fused {op.activation.data} has no output-clamp form"
        if not _constant(op.weight) or (op.bias is not None and not _constant(op.bias)):
            return "the weight or bias is not a constant"
        return None
    if isinstance(op, nn.GemmOp | nn.MatmulOp):
        return _matrix_obstacle(op, dtype)
    if isinstance(op, tuple(BINARY)):
        return None
    if isinstance(op, quant.RequantizeOp):
        return None if dtype == "int8" else "requantize is an int8 rescale"
    if isinstance(op, nn.PReluOp):
        if dtype != "fp16":
            return "int8 prelu has no integer semantics (nn-quantize keeps it float)"
        return None if _constant(op.slope) else "the prelu slope is not a constant"
    if dtype == "fp16" and type(op) in FP16_UNARY:
        return None
    if type(op) in TABLE_FUNCTIONS or isinstance(op, nn.ReluOp | nn.ClipOp):
        return None if dtype == "int8" else "the DPU lookup table is built for int8 only"
    if isinstance(op, nn.MaxPool2dOp):
        if nn.ints(op.properties, "dilations") != (1, 1):
            return "the PPU has no dilated pooling"
        return None
    if isinstance(op, nn.AvgPool2dOp | nn.GlobalAvgPoolOp | nn.GlobalMaxPoolOp):
        return None
    if isinstance(op, nn.ConcatOp):
        if nn.int_of(op.properties, "axis") % len(_shape(op.output)) != 1 or len(
                _shape(op.output)) not in (2, 4):
            return "concat is only free along the channels of an [N, C] or NCHW tensor"
        if any(v.type.get_element_type() != op.output.type.get_element_type()
               for v in op.operands):
            return "concat inputs need the output's quantization to be address offsets"
        return None
    if isinstance(op, VIEWS):
        return _view_obstacle(op)
    return f"{op.name} has no rknpu form"


# ---------------------------------------------------------------------------
# conversion
# ---------------------------------------------------------------------------
class Lowering:
    """The rknpu ops replacing one nn op: `ops` to insert before it, in order, and the
    values that replace its `results`."""

    def __init__(self, op: Operation):
        self.op = op
        self.name = nn.node_name(op)
        self.ops: list[Operation] = []
        self.results: list[SSAValue] = []

    def add(self, new: Operation) -> SSAValue:
        self.ops.append(new)
        return new.results[0]

    def view(self, x: SSAValue, shape: Sequence[int], offset: int = 0,
             name: str | None = None) -> SSAValue:
        """`x`'s channels from `offset` read as `shape`; a view of a (logical) view is
        one view of its source, and a view that changes nothing is `x` itself."""
        owner = x.owner
        if isinstance(owner, rknpu.ViewOp) and not rknpu.is_native(owner.input.type):
            offset += owner.offset.value.data
            x = owner.input
        if offset == 0 and tuple(shape) == _shape(x):
            return x
        return self.add(rknpu.ViewOp(x, shape, offset, name))

    def constant(self, data: np.ndarray, element: Attribute) -> SSAValue:
        data = np.ascontiguousarray(data)
        t = TensorType(element, data.shape) if quantized_element(
            TensorType(element, [1])) is not None else None
        return self.add(nn.ConstantOp(data, result_type=t))

    def channel_operand(self, value: SSAValue, out: Sequence[int]) -> SSAValue:
        """A per-channel or scalar constant operand as [n, C, 1, 1] (rank-2 output:
        [n, C]) with the same values; anything else unchanged."""
        data = nn.constant_value(value)
        if data is None or len(out) not in (2, 4) or data.ndim > len(out):
            return value
        padded = (1,) * (len(out) - data.ndim) + data.shape
        if any(d != 1 for d in padded[2:]) or padded[1] not in (1, out[1]):
            return value
        target = (padded[0], out[1], *padded[2:])
        if target == data.shape:
            return value
        element = value.type.element_type
        return self.constant(np.broadcast_to(data.reshape(padded), target), element)


def _element(value: SSAValue) -> Attribute:
    assert isinstance(value.type, TensorType)
    return value.type.element_type


def _matrix_weight(op: nn.GemmOp | nn.MatmulOp) -> tuple[np.ndarray, Attribute]:
    """op(B)^T as [N, K] and the weight's element type with per-axis scales on axis 0."""
    b_value = op.b if isinstance(op, nn.GemmOp) else op.rhs
    b = nn.constant_value(b_value)
    assert b is not None
    trans_b = isinstance(op, nn.GemmOp) and nn.int_of(op.properties, "trans_b")
    weight = b if trans_b else b.T
    q = quantized_element(b_value.type)
    if q is None:
        return weight, _element(b_value)
    if q.quantized_axis is None:
        return weight, q
    return weight, UniformQuantizedType.per_axis(q.scales, q.zero_points, 0, q.bits)


def _matrix_bias(op: nn.GemmOp, n: int) -> tuple[np.ndarray, Attribute] | None:
    """C (times beta, in f16 as the reference computes it) as a per-channel bias [N]."""
    if op.c is None:
        return None
    c = nn.constant_value(op.c)
    assert c is not None
    q = quantized_element(op.c.type)
    if q is None:
        beta = nn.float_of(op.properties, "beta")
        if beta != 1.0:
            c = c * np.asarray(beta, dtype=c.dtype)
        element: Attribute = _element(op.c)
    elif q.quantized_axis is None:
        element = q
    else:
        element = UniformQuantizedType.per_axis(
            np.broadcast_to(np.asarray(q.scales), (n,)).tolist(),
            np.broadcast_to(np.asarray(q.zero_points), (n,)).tolist(), 0, q.bits)
    rows = np.broadcast_to(c, (1, n)) if c.ndim < 2 else c
    return np.ascontiguousarray(np.broadcast_to(rows[:1], (1, n))[0]), element


def _lower_matrix(low: Lowering, op: nn.GemmOp | nn.MatmulOp) -> list[SSAValue]:
    a = op.a if isinstance(op, nn.GemmOp) else op.lhs
    m, kdim = _shape(a)
    wdata, welement = _matrix_weight(op)
    n = wdata.shape[0]
    weight = low.constant(wdata.reshape(n, kdim, 1, 1), welement)
    fp16 = value_dtype(a) == "fp16"
    gemm = isinstance(op, nn.GemmOp)
    alpha = nn.float_of(op.properties, "alpha") if gemm else 1.0
    props: dict[str, Attribute] = {
        "strides": nn.i64_array((1, 1)), "pads": nn.i64_array((0, 0, 0, 0)),
        "dilations": nn.i64_array((1, 1)), "group": nn.i64_attr(1)}
    if fp16:
        props["fp16_sum"] = StringAttr("sequential")
    bias = _matrix_bias(op, n) if gemm else None
    post_alpha = fp16 and alpha != 1.0  # the reference scales the product, then adds C
    activation = [k for k in ("activation", "activation_params") if k in op.properties]
    if not post_alpha:
        props |= {k: op.properties[k] for k in activation}
    bias_value = None if bias is None or post_alpha else low.constant(*bias)
    out_element = _element(op.results[0])
    x = low.view(a, (m, kdim, 1, 1))
    y = low.add(rknpu.ConvOp(x, weight, bias_value, props,
                             TensorType(out_element, (m, n, 1, 1)), low.name))
    if post_alpha:
        scale = np.full((1, n, 1, 1), np.asarray(alpha, dtype=np.float16), np.float16)
        y = low.add(rknpu.EwOp([y, low.constant(scale, f16)], "mul", y.type))
        if bias is not None:
            y = low.add(rknpu.EwOp([y, low.constant(bias[0].reshape(1, n, 1, 1), f16)],
                                   "add", y.type))
        if activation:
            params = (op.activation_params.get_values() if op.activation_params is not None
                      else ())
            y = low.add(rknpu.EwOp([y], op.activation.data, y.type, params=params))
    return [low.view(y, (m, n))]


def _pool_props(op: Operation, dtype: str) -> tuple[str, dict]:
    """(kind, properties) of the rknpu.pool equivalent to a pooling op."""
    if isinstance(op, nn.GlobalAvgPoolOp | nn.GlobalMaxPoolOp):
        h, w = op.operands[0].type.get_shape()[2:]
        kind = "avg" if isinstance(op, nn.GlobalAvgPoolOp) else "max"
        props = {"kernel": nn.i64_array((h, w)), "strides": nn.i64_array((1, 1)),
                 "pads": nn.i64_array((0, 0, 0, 0)), "ceil_mode": nn.bool_attr(False),
                 "count_include_pad": nn.bool_attr(False)}
        if kind == "avg" and dtype == "fp16":
            props["fp16_sum"] = StringAttr("float64_mean")
        return kind, props
    props = {k: op.properties[k] for k in ("kernel", "strides", "pads", "ceil_mode")}
    if isinstance(op, nn.AvgPool2dOp):
        props["count_include_pad"] = op.properties["count_include_pad"]
        return "avg", props
    props["count_include_pad"] = nn.bool_attr(False)
    if nn.int_of(op.properties, "ceil_mode"):  # the overhang as bottom / right padding
        props |= _ceil_as_padding(op)
    return "max", props


def _ceil_as_padding(op: Operation) -> dict:
    """A ceil-mode max pool's properties as explicit bottom / right padding (padding
    never wins a max, so clipped border windows compute the same)."""
    x, out = _shape(op.operands[0]), _shape(op.results[0])
    kernel, strides = nn.ints(op.properties, "kernel"), nn.ints(op.properties, "strides")
    pads = list(nn.ints(op.properties, "pads"))
    for axis in (0, 1):
        over = (out[2 + axis] - 1) * strides[axis] + kernel[axis] - x[2 + axis] - pads[axis]
        pads[2 + axis] = max(pads[2 + axis], over)
    return {"pads": nn.i64_array(pads), "ceil_mode": nn.bool_attr(False)}


def _lower_views(low: Lowering, op: Operation) -> list[SSAValue]:
    x = op.operands[0]
    if isinstance(op, nn.SplitOp):
        offsets = np.cumsum([0, *nn.ints(op.properties, "sizes")])
        return [low.view(x, _shape(r), int(offsets[i]),
                         f"{low.name}:{i}" if low.name else None)
                for i, r in enumerate(op.results)]
    offset = nn.ints(op.properties, "starts")[1] if isinstance(op, nn.SliceOp) else 0
    return [low.view(x, _shape(op.results[0]), offset, low.name)]


def convert(op: Operation) -> Lowering:
    """The rknpu ops computing what `op` computes (`obstacle(op)` must be None), with
    the values that replace its results (`Lowering.results`)."""
    low = Lowering(op)
    low.results = _convert(low, op)
    return low


def _convert(low: Lowering, op: Operation) -> list[SSAValue]:
    name, result_type = low.name, op.results[0].type
    dtype = op_dtype(op)
    if isinstance(op, nn.Conv2dOp):
        props = dict(op.properties)
        clip = dtype == "fp16" and op.activation is not None and op.activation.data == "clip"
        if not clip:
            return [low.add(rknpu.ConvOp(op.input, op.weight, op.bias, props, result_type,
                                         name))]
        lo, hi = (float(v) for v in op.activation_params.get_values())
        props.pop("activation_params")
        if lo == 0:
            props["activation"] = StringAttr("relu")
        else:
            props.pop("activation")
        y = low.add(rknpu.ConvOp(op.input, op.weight, op.bias, props, result_type, name))
        return [fp16_clip(low, y, None if lo == 0 else lo, hi)]
    if isinstance(op, nn.GemmOp | nn.MatmulOp):
        return _lower_matrix(low, op)
    if isinstance(op, VIEWS):
        return _lower_views(low, op)
    out = _shape(op.results[0])
    if isinstance(op, tuple(BINARY)):
        operands = [low.channel_operand(v, out) for v in op.operands]
        return [low.add(rknpu.EwOp(operands, BINARY[type(op)], result_type, name=name))]
    if isinstance(op, nn.PReluOp):
        slope = low.channel_operand(op.slope, out)
        return [low.add(rknpu.EwOp([op.input, slope], "prelu", result_type, name=name))]
    if isinstance(op, quant.RequantizeOp):
        return [low.add(rknpu.EwOp([op.input], "requantize", result_type, name=name))]
    if isinstance(op, nn.ClipOp):
        lo, hi = op.min.value.data, op.max.value.data
        if dtype == "fp16":
            if lo == 0:
                y = low.add(rknpu.EwOp([op.input], "relu", result_type, name=name))
                return [fp16_clip(low, y, None, hi)]
            return [fp16_clip(low, op.input, lo, hi)]
        return [low.add(rknpu.EwOp([op.input], "clip", result_type, name=name,
                                   params=(lo, hi)))]
    if isinstance(op, nn.ReluOp):
        return [low.add(rknpu.EwOp([op.input], "relu", result_type, name=name))]
    if dtype == "fp16" and type(op) in FP16_UNARY:
        params = (op.alpha.value.data,) if isinstance(op, nn.LeakyReluOp) else ()
        return [low.add(rknpu.EwOp([op.operands[0]], FP16_UNARY[type(op)], result_type,
                                   params=params, name=name))]
    if type(op) in TABLE_FUNCTIONS:
        x = op.operands[0]
        xq, yq = quantized_element(x.type), quantized_element(result_type)
        table = ik.build_table(TABLE_FUNCTIONS[type(op)](op),
                               ik.TensorQ(xq.scale, xq.zero_point, xq.qmin, xq.qmax),
                               ik.TensorQ(yq.scale, yq.zero_point, yq.qmin, yq.qmax))
        return [low.add(rknpu.EwOp([x], "lut", result_type, table=np.asarray(table).tolist(),
                                   function=op.name.removeprefix("nn."), name=name))]
    if isinstance(op, nn.ConcatOp):
        channels = [_shape(v)[1] for v in op.operands]
        return [low.add(rknpu.ConcatOp(list(op.operands), channels, result_type, name))]
    kind, props = _pool_props(op, dtype or "")
    if kind == "avg" and dtype == "int8":
        conv = _avg_pool_as_conv(low, op, props)
        if conv is not None:
            return [conv]
    return [low.add(rknpu.PoolOp(op.operands[0], kind, props, result_type, name))]


AVG_AS_CONV_MAX_STRIDE = min(t.max_stride for t in TARGETS.values())
"""An int8 average pool becomes a depthwise conv only with strides every chip's CNA
takes (`Target.max_stride`, CNA.CONV_CON3's stride fields)."""


POOL_SCALE_NEIGHBOURS = 4
"""Floats tried on each side of 1 / n for the weight scale of a pool-as-conv."""


def _pool_weight_scale(xq: UniformQuantizedType, yq: UniformQuantizedType,
                       n: int) -> float | None:
    """A weight scale s_w near 1 / n whose conv requantization `multiplier(s_x * s_w /
    s_y)` is the average pool's `multiplier(s_x / (s_y * n))` bit for bit (the two float
    expressions may round differently); None when no nearby float gives it."""
    want = requant.multiplier(xq.scale / (yq.scale * n))
    up = down = 1.0 / n
    candidates = [up]
    for _ in range(POOL_SCALE_NEIGHBOURS):
        up, down = float(np.nextafter(up, np.inf)), float(np.nextafter(down, 0.0))
        candidates += [up, down]
    for s_w in candidates:
        if requant.multiplier(xq.scale * s_w / yq.scale) == want:
            return s_w
    return None


def _avg_pool_as_conv(low: Lowering, op: Operation, props: dict) -> SSAValue | None:
    """An int8 average pool as a depthwise conv with weights 1 (scale ~1 / n): the conv's
    `requantize(sum (x - z_x), s_x * s_w / s_y)` is the pool's `requantize(sum (x - z_x),
    s_x / (s_y * n))` exactly (padding reads the zero point, contributing 0) when every
    window divides by the same n = kh * kw (no ceil-mode or excluded-pad partial
    windows). The PPU has no output converter for that rescale (hw §3.5). Windows with a
    stride beyond the CNA's that are runs of consecutive pixels
    (`rkc.lowering.legality.pixel_runs`) are the rows of a view, pooled with stride 1.
    None when the pool does not qualify (it stays an `rknpu.pool`)."""
    x = op.operands[0]
    shape = _shape(x)
    kernel = tuple(int(v) for v in props["kernel"].get_values())
    strides = tuple(int(v) for v in props["strides"].get_values())
    pads = tuple(int(v) for v in props["pads"].get_values())
    ceil_mode = bool(props["ceil_mode"].value.data)
    include_pad = bool(props["count_include_pad"].value.data)
    if len(shape) != 4 or ceil_mode:
        return None
    runs = pixel_runs(shape, kernel, strides, pads, ceil_mode)
    if max(strides) > AVG_AS_CONV_MAX_STRIDE and runs is None:
        return None
    divisors = ik.avg_pool_divisors(shape, kernel, strides, pads, ceil_mode, include_pad)
    n = kernel[0] * kernel[1]
    if np.any(divisors != n):
        return None
    xq, yq = quantized_element(x.type), quantized_element(op.results[0].type)
    if xq is None or yq is None or xq.quantized_axis is not None \
            or yq.quantized_axis is not None:
        return None
    s_w = _pool_weight_scale(xq, yq, n)
    if s_w is None:
        return None
    c = shape[1]
    out_type = op.results[0].type
    rows = runs is not None and max(strides) > AVG_AS_CONV_MAX_STRIDE
    if rows:  # each window a row of the map read as [N, C, H * W / k, k]
        assert runs is not None
        count = shape[2] * shape[3] // runs
        x = low.view(x, (shape[0], c, count, runs))
        kernel, strides = (1, runs), (1, 1)
        out_type = TensorType(out_type.element_type, (shape[0], c, count, 1))
    element = UniformQuantizedType.per_axis([s_w] * c, [0] * c, 0, 8)
    weight = low.constant(np.ones((c, 1, *kernel), np.int8), element)
    conv_props: dict[str, Attribute] = {
        "strides": nn.i64_array(strides), "pads": nn.i64_array(pads),
        "dilations": nn.i64_array((1, 1)), "group": nn.i64_attr(c)}
    y = low.add(rknpu.ConvOp(x, weight, None, conv_props, out_type, low.name))
    return low.view(y, _shape(op.results[0])) if rows else y


def f16_exact(value: float) -> bool:
    """Whether `value` is an f16 number (or infinite): a clip bound the fp16 max / min
    stages compare with unchanged."""
    return not np.isfinite(value) or float(np.float16(value)) == value


def fp16_clip(low: Lowering, y: SSAValue, lo: float | None, hi: float) -> SSAValue:
    """clip(y, lo, hi) on f16 values as an `rknpu.ew` max then min with per-channel f16
    constants (a bound that is None or infinite is left out): the fp16 DPU clamps with a
    ReLU only, and `np.minimum(np.maximum(y, lo), hi)` is exactly the clip (bounds
    `f16_exact`, so rounding a wider result to f16 commutes with them)."""
    out = _shape(y)
    shape = (1, out[1]) + (1,) * (len(out) - 2)
    for kind, bound in (("max", lo), ("min", hi)):
        if bound is None or not np.isfinite(bound):
            continue
        const = low.constant(np.full(shape, bound, np.float16), f16)
        y = low.add(rknpu.EwOp([y, const], kind, y.type,
                               name=f"{low.name}:{kind}" if low.name else None))
    return y


def wrap_on_cpu(op: Operation, reason: str) -> rknpu.CpuOp:
    """Move `op` into a new `rknpu.cpu` op (inserted where `op` was) whose block takes
    `op`'s non-constant operands; constants are cloned inside."""
    inputs = list(dict.fromkeys(_activations(op)))
    block = Block(arg_types=[v.type for v in inputs])
    mapping: dict[SSAValue, SSAValue] = dict(zip(inputs, block.args, strict=True))
    body_ops: list[Operation] = []
    for v in op.operands:
        if v not in mapping:  # a constant
            copy = v.owner.clone()
            body_ops.append(copy)
            mapping[v] = copy.results[0]
    wrapper = rknpu.CpuOp(inputs, [r.type for r in op.results], reason, Region(block),
                          nn.node_name(op))
    Rewriter.insert_op(wrapper, InsertPoint.before(op))
    for old, new in zip(op.results, wrapper.results, strict=True):
        old.replace_all_uses_with(new)
    op.detach()
    op.operands = [mapping[v] for v in op.operands]
    block.add_ops([*body_ops, op, rknpu.YieldOp(list(op.results))])
    return wrapper


@dataclass(frozen=True)
class NNToRknpuPass(ModulePass):
    """Lower the entry function's int8 / fp16 nn ops to rknpu ops, the rest to
    rknpu.cpu."""

    name = "nn-to-rknpu"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        fn = main_function(op)
        for inner in list(fn.body.block.ops):
            if isinstance(inner, nn.ConstantOp | func.ReturnOp) or inner.name.startswith(
                    "rknpu."):
                continue
            placed = inner.attributes.get(PLACEMENT_ATTR)
            reason = inner.attributes.get(REASON_ATTR)
            if isinstance(placed, StringAttr) and placed.data == "cpu":
                why = reason.data if isinstance(reason, StringAttr) else "placed on the CPU"
            else:
                why = obstacle(inner)
            if why is not None:
                wrap_on_cpu(inner, why)
                continue
            low = convert(inner)
            for new in low.ops:
                Rewriter.insert_op(new, InsertPoint.before(inner))
            for old, new in zip(inner.results, low.results, strict=True):
                old.replace_all_uses_with(new)
            Rewriter.erase_op(inner)
        for inner in reversed(list(fn.body.block.ops)):  # views and constants now unused
            if isinstance(inner, nn.ConstantOp | rknpu.ViewOp) and not inner.results[0].uses:
                Rewriter.erase_op(inner)
        fn.update_function_type()
