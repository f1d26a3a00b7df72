"""`nn-quantize`: give a calibrated float `nn` module the precision of
docs/quantization.md: int8 (with f16 / f32 islands) or fp16 throughout.

Every op of the entry function computes in one *domain*:

  * int8  - quantized operand and result types (activations i8 per tensor, weights i8
            symmetric, biases i32), the integer semantics of the specification;
  * fp16  - f16 operands and results (constants converted to f16);
  * float - f32, as before the pass.

Conversions are inserted lazily, once per (value, domain) pair and shared by all its
users, right after the value's definition: `quant.dequantize` (int8 -> float),
`quant.quantize` (float -> int8, parameters from the value's calibrated range),
`nn.cast` (float <-> fp16; int8 <-> fp16 goes through float). So conversions exist only
on edges where the domain changes: no quantize/dequantize pair sits between two float
ops, none between two int8 ops. The function keeps its f32 signature (inputs are
quantized / cast after the arguments, outputs dequantized / cast before `func.return`),
so the result is directly comparable with the float module.

dtype=int8 (option `method` = channel | layer chooses per-channel or per-tensor weights).
Postcondition, for the ops of the entry function:
  * an op is int8 when the specification gives it integer semantics and nothing prevents
    them: conv2d / conv_transpose2d with constant weight and bias, gemm with constant B
    and C (alpha and beta folded into them: alpha = beta = 1 afterwards), matmul,
    add / sub / mul / max / min, relu / clip, the table ops, avg and global-avg pools,
    concat, argmax, and the data-movement ops and max pools; all its tensors are f32
    before the pass. Data-movement ops (reshape, transpose, slice, split, pad, nearest
    resize), max pools and argmax *follow their input*: they take the domain of their
    (first) operand's producer, and in int8 their results have their input's parameters
    (a constant pad whose value those parameters cannot represent first requantizes its
    input to a range that holds the value);
  * an op carrying `rkc.precision = "fp16"` is fp16 (the specification's hybrid mode);
    `rkc.precision = "int8"` forces an op into int8 and is an RkcError on an op that has
    no integer semantics; any other value is an RkcError;
  * exception: an op of the first list without weights (elementwise, table, avg pools,
    concat) whose operands all come from float (function arguments, float ops,
    constants) and whose results all go to float (float ops, function results) stays
    float, unless forced: in int8 it would only add a quantize and a dequantize (two
    roundings) around it. Example: the input normalisation `(x - mean) / std` (the
    div has no integer semantics) stays float, and the normalised input is quantized
    once, as rknn-toolkit2 quantizes it;
  * every other op is float: its float operands are f32 again;
  * int8 results have parameters from their op's `rkc.range` (missing: RkcError
    "not calibrated: ..."), except data-movement / max-pool results (their input's),
    non-float results (argmax's i64, unchanged) and the inputs of concats (below);
  * every input of an int8 concat has the concat's result type, so that the concat is
    address offsets on the NPU (as rknn-toolkit2 quantizes concats): walking up from
    the input through single-use followers that keep their input's parameters (all but
    constant pads, splits and argmax), a single-use root computed in int8 by an op with
    its own parameters computes in the concat's (when they respect the op's
    fixed-point guard below), one quantized from float is quantized with them, and any
    other root is converted by a `quant.requantize` (once per value and type) where the
    chain reads it. Nested concats share one type (the outermost one's);
  * a conv / gemm in int8 keeps a fused relu
    or clip, any other fused activation is an RkcError (run
    `nn-fuse-activation{kinds=relu,clip}` before calibration instead);
  * weights are `nn.constant ... as !quant.uniform<i8...>` (per channel: conv2d axis 0,
    conv_transpose2d axis 1 when group is 1 (else per tensor), gemm B its N axis, a
    constant matmul B of rank >= 2 its last axis); biases i32 per axis at
    `s_in * s_w[o]`; other constant operands of int8 ops are i8 per tensor from their own
    min / max;
  * fixed-point guards (see `rkc.quant.qparams`): no int8 result scale is so small that
    the op's requantization multiplier exceeds 2**14; no weight scale so small that a
    conv / gemm / matmul multiplier falls below 2**-40 or its i32 bias exceeds 2**30;
    the two operands of an int8 add / sub differ in scale by at most 64x (the finer one
    is coarsened: a constant is re-quantized, an activation goes through
    `quant.requantize`). So every multiplier of the specification has a valid 15-bit
    mantissa and shift. These only change (near-)constant or (near-)zero tensors.

dtype=fp16: every op with an f32 tensor is fp16 (an `nn.cast` to f32 becomes a cast to
f16); ranges are not needed and `rkc.precision` is ignored.

Names: an op that corresponds to a float op keeps its `rkc.name` (and other attributes,
`rkc.range` included), so quantized and float ops can be matched by name. The
conversion ops the pass inserts (quant.quantize / quant.dequantize / quant.requantize and
the nn.cast ops) carry no `rkc.name`. Unused float constants are erased. Only the entry
function (`rkc.graph.main_function`) is rewritten.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import builtin, func
from xdsl.dialects.builtin import FloatAttr, StringAttr, TensorType, f16, f32
from xdsl.ir import Attribute, Block, Operation, OpResult, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from rkc.dialects import nn, quant
from rkc.dialects.quant import UniformQuantizedType, quantized_element
from rkc.errors import RkcError
from rkc.graph import input_names, main_function
from rkc.quant import qparams
from rkc.quant.calibrate import value_range

PRECISION_ATTR = "rkc.precision"
PRECISIONS = ("int8", "fp16")
DTYPES = ("int8", "fp16")
METHODS = ("channel", "layer")
INT8_ACTIVATIONS = ("relu", "clip")
MAX_ADD_SCALE_RATIO = qparams.MAX_REQUANT_RATIO / 256  # add/sub: s_a / s_acc <= 2**14


class Domain(enum.Enum):
    INT8 = "int8"
    FP16 = "fp16"
    FLOAT = "float"


# ---------------------------------------------------------------------------
# which ops have integer semantics
# ---------------------------------------------------------------------------
WEIGHTED = (nn.Conv2dOp, nn.ConvTranspose2dOp, nn.GemmOp)
ELEMENTWISE = (nn.AddOp, nn.SubOp, nn.MulOp, nn.MaxOp, nn.MinOp, nn.ReluOp, nn.ClipOp)
TABLE = (nn.SigmoidOp, nn.TanhOp, nn.ExpOp, nn.LogOp, nn.SqrtOp, nn.AbsOp, nn.NegOp,
         nn.ErfOp, nn.SiluOp, nn.HardSwishOp, nn.HardSigmoidOp, nn.GeluOp, nn.LeakyReluOp)
RESCALING = (nn.AvgPool2dOp, nn.GlobalAvgPoolOp, nn.ConcatOp, nn.MatmulOp)
FOLLOWERS = (nn.ReshapeOp, nn.TransposeOp, nn.SliceOp, nn.SplitOp, nn.PadOp, nn.ResizeOp,
             nn.MaxPool2dOp, nn.GlobalMaxPoolOp, nn.ArgMaxOp)
"""Ops whose int8 results have their input's parameters: they follow their input."""
DEMOTABLE = ELEMENTWISE + TABLE + (nn.AvgPool2dOp, nn.GlobalAvgPoolOp, nn.ConcatOp)
"""Int8 ops without weights: they stay float when isolated between float ops."""


def _is_f32_tensor(t: Attribute) -> bool:
    return isinstance(t, TensorType) and t.element_type == f32


def _is_constant(value: SSAValue | None) -> bool:
    return value is not None and isinstance(value.owner, nn.ConstantOp)


def _shape(value: SSAValue) -> tuple[int, ...]:
    assert isinstance(value.type, TensorType)
    return tuple(value.type.get_shape())


def label(op: Operation) -> str:
    """`nn.conv2d 'conv1'`: how messages name an op."""
    name = nn.node_name(op)
    return f"{op.name} '{name}'" if name else op.name


def int8_obstacle(op: Operation) -> str | None:
    """Why `op` cannot compute in int8 (None when it can)."""
    if not isinstance(op, nn.NNOp):
        return "it is not an nn op"
    if not isinstance(op, WEIGHTED + ELEMENTWISE + TABLE + RESCALING + FOLLOWERS):
        return "the specification keeps it in float"
    results = [r.type for r in op.results]
    if isinstance(op, nn.ArgMaxOp):
        results = []
    if not all(_is_f32_tensor(t) for t in [o.type for o in op.operands] + results):
        return "not all its tensors are f32"
    if isinstance(op, nn.ResizeOp) and nn.str_of(op.properties, "mode") != "nearest":
        return "only nearest resize is data movement"
    if isinstance(op, nn.Conv2dOp | nn.ConvTranspose2dOp):
        if not _is_constant(op.weight) or (op.bias is not None and not _is_constant(op.bias)):
            return "its weight or bias is not a constant"
    if isinstance(op, nn.GemmOp):
        if not _is_constant(op.b) or (op.c is not None and not _is_constant(op.c)):
            return "its B or C is not a constant"
    return None


def _passes_parameters(op: Operation) -> bool:
    """A single-result follower whose int8 result is its input's values with its input's
    parameters (a constant pad adds a value and a split has several results: no)."""
    if isinstance(op, nn.PadOp):
        return nn.str_of(op.properties, "mode") != "constant"
    return isinstance(op, FOLLOWERS) and not isinstance(op, nn.SplitOp | nn.ArgMaxOp)


def precision_of(op: Operation) -> str | None:
    """The op's `rkc.precision` request, validated."""
    attr = op.attributes.get(PRECISION_ATTR)
    if attr is None:
        return None
    if not isinstance(attr, StringAttr) or attr.data not in PRECISIONS:
        raise RkcError(f"{label(op)}: {PRECISION_ATTR} must be one of "
                       f"{', '.join(repr(p) for p in PRECISIONS)}, got {attr}")
    return attr.data


# ---------------------------------------------------------------------------
# the rewriter
# ---------------------------------------------------------------------------
class _Rewriter:
    """Rewrites one function op by op, in order (producers before consumers).

    Invariants while it runs: `home[v]` is the domain of every float value produced so
    far (function arguments: float); `converted[(v, d)]` is v's shared conversion to
    domain d; original f32 constants stay in place (home: none) and are materialised per
    domain on demand; `origin[c]` maps a conversion result back to the value whose
    calibrated range it carries.
    """

    def __init__(self, fn: func.FuncOp, dtype: str, method: str):
        self.fn = fn
        self.block: Block = fn.body.block
        self.dtype = dtype
        self.per_channel = method == "channel"
        self.home: dict[SSAValue, Domain] = {}
        self.converted: dict[tuple[SSAValue, Domain], SSAValue] = {}
        self.origin: dict[SSAValue, SSAValue] = {}
        self.constants: dict[tuple[SSAValue, Domain], SSAValue] = {}
        self.forced: dict[SSAValue, UniformQuantizedType] = {}
        self.read_as: dict[tuple[Operation, int], UniformQuantizedType] = {}
        self.retyped: dict[tuple[SSAValue, UniformQuantizedType], SSAValue] = {}

    # -- driver ------------------------------------------------------------------
    def run(self) -> None:
        plan = self.plan()
        if self.dtype == "int8":
            self.share_concat_parameters(plan)
        for arg in self.fn.args:
            if _is_f32_tensor(arg.type):
                self.home[arg] = Domain.FLOAT
        for op in list(self.block.ops):
            if isinstance(op, nn.ConstantOp):
                continue
            domain = plan.get(op, Domain.FLOAT)
            if domain is Domain.INT8:
                self.to_int8(op)
            elif domain is Domain.FP16:
                self.to_fp16(op)
            else:
                self.to_float(op)
        for op in reversed(list(self.block.ops)):
            if isinstance(op, nn.ConstantOp) and not any(r.uses for r in op.results):
                Rewriter.erase_op(op)

    def plan(self) -> dict[Operation, Domain]:
        """The domain of every op, decided on the float IR before anything changes."""
        plan: dict[Operation, Domain] = {}
        produced: dict[SSAValue, Domain] = {}
        for op in self.block.ops:
            if isinstance(op, nn.ConstantOp | func.ReturnOp):
                continue
            plan[op] = self.decide(op, produced)
            for r in op.results:
                produced[r] = plan[op]
        for op in reversed(list(plan)):
            if plan[op] is Domain.INT8 and self.isolated(op, produced, plan):
                plan[op] = Domain.FLOAT
        return plan

    @staticmethod
    def isolated(op: Operation, produced: dict[SSAValue, Domain],
                 plan: dict[Operation, Domain]) -> bool:
        """An int8 op without weights whose operands all come from float (arguments,
        float ops, constants) and whose results all go to float (float ops, the
        return): int8 would only add a quantize and a dequantize around it."""
        if not isinstance(op, DEMOTABLE) or precision_of(op) == "int8":
            return False
        if any(produced.get(v, Domain.FLOAT) is Domain.INT8 for v in op.operands):
            return False
        return all(plan.get(use.operation, Domain.FLOAT) is not Domain.INT8
                   for r in op.results for use in r.uses)

    def decide(self, op: Operation, produced: dict[SSAValue, Domain]) -> Domain:
        float_tensors = any(_is_f32_tensor(v.type) for v in (*op.operands, *op.results))
        if self.dtype == "fp16":
            return Domain.FP16 if isinstance(op, nn.NNOp) and float_tensors else Domain.FLOAT
        precision = precision_of(op)
        if precision == "fp16":
            return Domain.FP16 if isinstance(op, nn.NNOp) and float_tensors else Domain.FLOAT
        obstacle = int8_obstacle(op)
        if obstacle is not None:
            if precision == "int8":
                raise RkcError(f"{label(op)}: {PRECISION_ATTR} = \"int8\", but it cannot "
                               f"compute in int8: {obstacle}")
            return Domain.FLOAT
        if isinstance(op, FOLLOWERS) and precision != "int8":
            return produced.get(op.operands[0], Domain.FLOAT)
        return Domain.INT8

    def share_concat_parameters(self, plan: dict[Operation, Domain]) -> None:
        """Give the inputs of every int8 concat the concat's parameters where that costs
        nothing: the concat's result type is chosen first (from its range, or the one
        an enclosing concat forces on it), then for each input the chain of single-use
        followers above it (parameter-preserving data movement: reshape, transpose,
        slice, non-constant pad, nearest resize, max pools) is walked up to its root;
        a single-use root computed by an int8 op with its own result parameters gets
        the concat's type (`forced`), and the op reading the root in the chain
        requantizes it otherwise (`read_as`). A root without own int8 parameters (a
        function argument, a float or fp16 result) is quantized with the concat's
        parameters directly. Consumers first, so nested concats share one type."""
        ops = [op for op in plan if plan[op] is Domain.INT8]
        for concat in reversed(ops):
            if not isinstance(concat, nn.ConcatOp):
                continue
            t = self.forced.get(concat.output)
            if t is None:
                t = self.forced[concat.output] = self.activation_type(concat.output)
            for index, value in enumerate(concat.operands):
                reader: Operation = concat
                while (isinstance(value, OpResult) and _passes_parameters(value.op)
                       and plan.get(value.op) is Domain.INT8 and value.has_one_use()):
                    reader, index, value = value.op, 0, value.op.operands[0]
                self.read_as[(reader, index)] = t
                producer = value.owner
                follows = isinstance(producer, FOLLOWERS) and plan.get(producer) is Domain.INT8
                if (value.has_one_use() and not follows
                        and not isinstance(producer, nn.ConstantOp)
                        and len(getattr(producer, "results", ())) <= 1):
                    self.forced.setdefault(value, t)

    # -- values in a domain --------------------------------------------------------
    def get(self, value: SSAValue, domain: Domain) -> SSAValue:
        """`value` in `domain`, converting (once, shared) where needed. Non-float values
        are returned as they are."""
        if isinstance(value.owner, nn.ConstantOp) and _is_f32_tensor(value.type):
            return self.constant(value, domain)
        home = self.home.get(value)
        if home is None or home is domain:
            return value
        key = (value, domain)
        if key in self.converted:
            return self.converted[key]
        origin = self.origin.get(value, value)
        shape = _shape(value)
        if domain is Domain.FLOAT:
            if home is Domain.INT8:
                op: Operation = quant.DequantizeOp(value, TensorType(f32, shape))
            else:
                op = nn.CastOp(value, f32)
            self.insert_after(value, op)
            result = op.results[0]
        elif home is not Domain.FLOAT:  # int8 <-> fp16 goes through float
            return self.get(self.get(value, Domain.FLOAT), domain)
        elif domain is Domain.FP16:
            op = nn.CastOp(value, f16)
            self.insert_after(value, op)
            result = op.results[0]
        else:
            element = self.activation_type(origin)
            op = quant.QuantizeOp(value, TensorType(element, shape))
            self.insert_after(value, op)
            result = op.results[0]
        self.origin[result] = origin
        self.converted[key] = result
        self.home[result] = domain
        return result

    def constant(self, value: SSAValue, domain: Domain) -> SSAValue:
        """An f32 constant materialised in `domain` (int8: per tensor from its own range)."""
        if domain is Domain.FLOAT:
            return value
        key = (value, domain)
        if key not in self.constants:
            array = nn.constant_value(value)
            assert array is not None
            if domain is Domain.FP16:
                new = nn.ConstantOp(array.astype(np.float16), nn.node_name(value.owner))
            else:
                data, t = qparams.quantize_constant(array)
                new = nn.ConstantOp(data, nn.node_name(value.owner), result_type=t)
            self.insert_after(value, new)
            self.constants[key] = new.output
        return self.constants[key]

    def insert_after(self, value: SSAValue, op: Operation) -> None:
        if isinstance(value, OpResult):
            Rewriter.insert_op(op, InsertPoint.after(value.op))
        else:
            Rewriter.insert_op(op, InsertPoint.at_start(self.block))

    def activation_type(self, value: SSAValue, min_scale: float = 0.0) -> UniformQuantizedType:
        """i8 parameters of a float value: the type a concat forces on it when that is
        at least `min_scale`, else from its calibrated range."""
        forced = self.forced.get(value)
        if forced is not None and forced.scale >= min_scale:
            return forced
        found = value_range(value)
        if found is None:
            if isinstance(value, OpResult):
                where = label(value.op) + (f" result {value.index}"
                                           if len(value.op.results) > 1 else "")
            else:
                index = getattr(value, "index", 0)
                where = f"function argument '{input_names(self.fn)[index]}'"
            raise RkcError(f"not calibrated: {where} has no rkc.range (run calibration "
                           f"before nn-quantize)")
        return qparams.activation_type(*found, min_scale=min_scale)

    # -- float and fp16 ------------------------------------------------------------
    def to_float(self, op: Operation) -> None:
        for i, operand in enumerate(op.operands):
            new = self.get(operand, Domain.FLOAT)
            if new is not operand:
                op.operands[i] = new
        for r in op.results:
            if _is_f32_tensor(r.type):
                self.home[r] = Domain.FLOAT

    def to_fp16(self, op: Operation) -> None:
        operands = [self.get(v, Domain.FP16) for v in op.operands]
        types = [TensorType(f16, t.get_shape()) if _is_f32_tensor(t) else t
                 for t in (r.type for r in op.results)]
        props = dict(op.properties)
        if isinstance(op, nn.CastOp) and op.to == f32:
            props["to"] = f16
        new = self.replace(op, operands, types, props)
        for r in new.results:
            if isinstance(r.type, TensorType) and r.type.element_type == f16:
                self.home[r] = Domain.FP16

    # -- int8 ----------------------------------------------------------------------
    def to_int8(self, op: Operation) -> None:
        props = dict(op.properties)
        if isinstance(op, nn.Conv2dOp | nn.GemmOp):
            act = op.activation.data if op.activation is not None else None
            if act is not None and act not in INT8_ACTIVATIONS:
                raise RkcError(f"{label(op)}: fused activation '{act}' has no int8 "
                               f"semantics; run nn-fuse-activation{{kinds=relu,clip}} "
                               f"(before calibration) to keep it a separate op")
        if isinstance(op, FOLLOWERS):
            x = self.get(op.operands[0], Domain.INT8)
            if (op, 0) in self.read_as:
                x = self.retype(x, self.read_as[(op, 0)])
            if isinstance(op, nn.PadOp) and nn.str_of(op.properties, "mode") == "constant":
                x = self.hold_pad_value(x, nn.float_of(op.properties, "value"), op)
            element = quantized_element(x.type)
            assert element is not None
            types = [TensorType(element, r.type.get_shape()) if _is_f32_tensor(r.type)
                     else r.type for r in op.results]
            self.finish(op, [x], types, props)
            return
        if isinstance(op, nn.Conv2dOp | nn.ConvTranspose2dOp | nn.GemmOp) or (
                isinstance(op, nn.MatmulOp) and _is_constant(op.rhs)):
            operands, types = self.weighted(op, props)
            self.finish(op, operands, types, props)
            return
        if isinstance(op, nn.MatmulOp):
            operands = [self.get(v, Domain.INT8) for v in op.operands]
            numerator = _scale(operands[0]) * _scale(operands[1])
        else:
            operands = [self.get(v, Domain.INT8) for v in op.operands]
            scales = [_scale(v) for v in operands]
            if isinstance(op, nn.AddOp | nn.SubOp):
                operands = self.align_scales(operands, op)
                scales = [_scale(v) for v in operands]
                numerator = min(scales) / 256
            elif isinstance(op, nn.MulOp):
                numerator = scales[0] * scales[1]
            elif isinstance(op, TABLE):
                numerator = 0.0
            else:  # max / min / concat / relu / clip / pools: s_x / s_y
                numerator = max(scales)
        min_scale = numerator / qparams.MAX_REQUANT_RATIO
        types = [TensorType(self.activation_type(r, min_scale), r.type.get_shape())
                 for r in op.results]
        if isinstance(op, nn.ConcatOp):  # inputs with the result's parameters
            result = quantized_element(types[0])
            assert result is not None
            operands = [self.retype(v, result) for v in operands]
        self.finish(op, operands, types, props)

    def finish(self, op: Operation, operands: Sequence[SSAValue], types: Sequence[Attribute],
               props: dict[str, Attribute]) -> None:
        new = self.replace(op, operands, types, props)
        for r in new.results:
            if quantized_element(r.type) is not None:
                self.home[r] = Domain.INT8

    def weighted(self, op: Operation, props: dict[str, Attribute],
                 ) -> tuple[list[SSAValue], list[Attribute]]:
        """Operands and result type of an int8 conv2d / conv_transpose2d / gemm /
        matmul with a constant weight: the input, the i8 weight, the i32 bias.

        Order: weight scales (raised where |b| / (s_x * s_w) would not fit the i32
        bias, which only happens for (near-)zero inputs, whose products are 0 anyway),
        then the result type (its scale at least s_x * max s_w / MAX_REQUANT_RATIO),
        then scales of negligible weight slices raised to s_y * MIN_REQUANT_RATIO / s_x,
        then the constants."""
        bias_value: SSAValue | None = None
        bias: np.ndarray | None = None
        bias_axis = 0
        if isinstance(op, nn.Conv2dOp | nn.ConvTranspose2dOp):
            x, weight_value = self.get(op.input, Domain.INT8), op.weight
            weight = nn.constant_value(op.weight)
            group = nn.int_of(op.properties, "group")
            if isinstance(op, nn.Conv2dOp):
                axis: int | None = 0
                out_channels = _shape(op.weight)[0]
            else:
                axis = 1 if group == 1 else None
                out_channels = _shape(op.weight)[1] * group
            if op.bias is not None:
                bias_value, bias = op.bias, nn.constant_value(op.bias)
        elif isinstance(op, nn.GemmOp):  # alpha folded into B, beta into C
            alpha = float(np.float32(nn.float_of(op.properties, "alpha")))
            beta = float(np.float32(nn.float_of(op.properties, "beta")))
            props["alpha"], props["beta"] = FloatAttr(1.0, f32), FloatAttr(1.0, f32)
            x, weight_value = self.get(op.a, Domain.INT8), op.b
            b = nn.constant_value(op.b)
            assert b is not None
            weight = (b.astype(np.float64) * alpha).astype(np.float32)
            axis = 0 if nn.int_of(op.properties, "trans_b") else 1
            m, out_channels = _shape(op.output)
            if op.c is not None:
                c = nn.constant_value(op.c)
                assert c is not None
                full = np.broadcast_to(c.astype(np.float64) * beta, (m, out_channels))
                bias = np.ascontiguousarray(full[0] if np.all(full == full[:1]) else full)
                bias_value, bias_axis = op.c, bias.ndim - 1
        else:
            assert isinstance(op, nn.MatmulOp)
            x, weight_value = self.get(op.lhs, Domain.INT8), op.rhs
            weight = nn.constant_value(op.rhs)
            assert weight is not None
            axis = weight.ndim - 1 if weight.ndim >= 2 else None
            out_channels = weight.shape[-1] if weight.ndim >= 2 else 1
        assert weight is not None
        axis = axis if self.per_channel else None
        sx = _scale(x)
        scales = qparams.weight_scales(weight, axis)
        if bias is not None:  # the i32 bias must hold b / (s_x * s_w)
            peak = np.abs(bias.astype(np.float64)).reshape(-1, out_channels).max(axis=0)
            floor = peak / (sx * qparams.BIAS_LIMIT)
            scales = np.maximum(scales, floor if len(scales) == out_channels else floor.max())
        per_channel = np.broadcast_to(scales, (out_channels,))
        result = op.results[0]
        y = self.activation_type(result, sx * float(per_channel.max())
                                 / qparams.MAX_REQUANT_RATIO)
        scales = np.maximum(scales, y.scale * qparams.MIN_REQUANT_RATIO / sx)
        data, t, scales = qparams.quantize_weight(weight, axis, scales)
        w = nn.ConstantOp(data, nn.node_name(weight_value.owner), result_type=t)
        Rewriter.insert_op(w, InsertPoint.before(op))
        operands = [x, w.output]
        if bias is not None and bias_value is not None:
            bias_scales = sx * np.broadcast_to(scales, (out_channels,))
            data, t = qparams.quantize_bias(bias, bias_scales, bias_axis)
            b_op = nn.ConstantOp(data, nn.node_name(bias_value.owner), result_type=t)
            Rewriter.insert_op(b_op, InsertPoint.before(op))
            operands.append(b_op.output)
        return operands, [TensorType(y, result.type.get_shape())]

    def retype(self, value: SSAValue, t: UniformQuantizedType) -> SSAValue:
        """The int8 `value` with the per-tensor type `t` (once per pair, shared): itself
        when it has it; a constant quantized anew; any other value requantized (also one
        quantized from float: the float value is converted once)."""
        if quantized_element(value.type) == t:
            return value
        key = (value, t)
        if key in self.retyped:
            return self.retyped[key]
        shape = _shape(value)
        source = value.owner
        if isinstance(source, nn.ConstantOp):
            original = next(k[0] for k, c in self.constants.items() if c is value)
            array = nn.constant_value(original)
            assert array is not None
            data = qparams.quantize_values(array, t.scale, t.zero_point, t.qmin, t.qmax,
                                           np.int8)
            op: Operation = nn.ConstantOp(data, nn.node_name(original.owner),
                                          result_type=TensorType(t, shape))
        else:
            op = quant.RequantizeOp(value, TensorType(t, shape))
        self.insert_after(value, op)
        result = op.results[0]
        self.home[result] = Domain.INT8
        self.origin[result] = self.origin.get(value, value)
        self.retyped[key] = result
        return result

    def hold_pad_value(self, x: SSAValue, value: float, before: Operation) -> SSAValue:
        """`x`, requantized (before `before`) to a range that also holds the constant pad
        `value` when its own parameters cannot represent it (a constant pad keeps its
        input's parameters and pads with quantize(value))."""
        q = quantized_element(x.type)
        assert q is not None
        lo, hi = (q.qmin - q.zero_point) * q.scale, (q.qmax - q.zero_point) * q.scale
        if lo - q.scale / 2 <= value <= hi + q.scale / 2:
            return x
        t = TensorType(qparams.activation_type(min(lo, value), max(hi, value)), _shape(x))
        requantize = quant.RequantizeOp(x, t)
        Rewriter.insert_op(requantize, InsertPoint.before(before))
        return requantize.output

    def align_scales(self, operands: list[SSAValue], op: Operation) -> list[SSAValue]:
        """add / sub: coarsen the finer operand so the scales differ by <= 64x."""
        scales = [_scale(v) for v in operands]
        floor = max(scales) / MAX_ADD_SCALE_RATIO
        out = []
        for v, s in zip(operands, scales, strict=True):
            if s >= floor:
                out.append(v)
            elif isinstance(v.owner, nn.ConstantOp):
                source = next(k[0] for k, c in self.constants.items() if c is v)
                array = nn.constant_value(source)
                assert array is not None
                data, t = qparams.quantize_constant(array, floor)
                const = nn.ConstantOp(data, nn.node_name(source.owner), result_type=t)
                Rewriter.insert_op(const, InsertPoint.before(op))
                out.append(const.output)
            else:
                q = quantized_element(v.type)
                assert q is not None
                lo, hi = (q.qmin - q.zero_point) * s, (q.qmax - q.zero_point) * s
                t = TensorType(qparams.activation_type(lo, hi, floor), _shape(v))
                req = quant.RequantizeOp(v, t)
                Rewriter.insert_op(req, InsertPoint.before(op))
                out.append(req.output)
        return out

    # -- building --------------------------------------------------------------------
    def replace(self, op: Operation, operands: Sequence[SSAValue],
                types: Sequence[Attribute], props: dict[str, Attribute]) -> Operation:
        """A copy of `op` (same attributes) with new operands, result types and
        properties, in its place."""
        new = type(op).create(operands=operands, result_types=types, properties=props,
                              attributes=dict(op.attributes))
        Rewriter.insert_op(new, InsertPoint.before(op))
        for old, result in zip(op.results, new.results, strict=True):
            result.name_hint = old.name_hint
            old.replace_all_uses_with(result)
        Rewriter.erase_op(op)
        return new


def _scale(value: SSAValue) -> float:
    q = quantized_element(value.type)
    assert q is not None and q.quantized_axis is None, f"expected per-tensor i8: {value.type}"
    return q.scale


# ---------------------------------------------------------------------------
# the pass
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class NNQuantizePass(ModulePass):
    """Quantizes a calibrated float module: `dtype=int8` (default) puts every op with
    integer semantics in int8 (weights per `method`: channel (default) or layer), ops
    marked `rkc.precision = "fp16"` in f16 and the rest in f32, converting only where
    the precision changes; `dtype=fp16` computes everything in f16. The function keeps
    its f32 signature and ops keep their `rkc.name`. See the module docstring for the
    exact postcondition."""

    name = "nn-quantize"

    dtype: str = "int8"
    method: str = "channel"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        if self.dtype not in DTYPES:
            raise RkcError(f"nn-quantize: dtype must be one of {', '.join(DTYPES)}, "
                           f"got '{self.dtype}'")
        if self.method not in METHODS:
            raise RkcError(f"nn-quantize: method must be one of {', '.join(METHODS)}, "
                           f"got '{self.method}'")
        _Rewriter(main_function(op), self.dtype, self.method).run()


def precision_counts(module: builtin.ModuleOp) -> dict[str, int]:
    """How many ops of the entry function compute in int8, fp16 and float (f32): every
    `nn` op but constants and the unnamed casts `nn-quantize` inserts; an op with a
    quantized tensor counts as int8, else with an f16 tensor as fp16."""
    counts = {"int8": 0, "fp16": 0, "float": 0}
    for op in main_function(module).body.block.ops:
        if not isinstance(op, nn.NNOp):
            continue
        if isinstance(op, nn.CastOp) and nn.node_name(op) is None:
            continue
        types = [v.type for v in (*op.operands, *op.results)]
        if any(quantized_element(t) is not None for t in types):
            counts["int8"] += 1
        elif any(isinstance(t, TensorType) and t.element_type == f16 for t in types):
            counts["fp16"] += 1
        else:
            counts["float"] += 1
    return counts
