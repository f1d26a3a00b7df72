"""The `rknpu` dialect: one op per RKNPU2 hardware task, plus host ops and layout changes.

Ops here are at the level of the hardware's blocks, not yet of its registers:

* `rknpu.conv`  CNA + CORE + DPU: direct or depthwise convolution, int8 x int8 -> int32
  accumulation (fp16: float32), per-channel bias, the output converter (15-bit multiplier
  and shift, `rkc.quant.requant`), and a fused relu / clip as the output clamp; after
  `rknpu-fuse` also `post_ops`, DPU stages applied to its result (see `PostOp`);
* `rknpu.ew`    DPU flying mode on one or two tensors: add, sub, mul, max, min,
  requantize (a rescale), relu / clip (clamp), `lut` (a 256-entry int8 table), and for
  fp16 leaky_relu, abs, neg and prelu (a per-channel slope tensor);
* `rknpu.pool`  PPU max / average pooling (global pools have the feature's H x W kernel);
* `rknpu.concat` channel concatenation by output address offsets (no task of its own);
* `rknpu.view`  no task either: a window of whole channel blocks of a tensor read with
  another shape (reshape / flatten keeping N and C, channel slice and split);
* `rknpu.cpu`   an op that stays on the host; its region holds the original `nn` op(s)
  and `reason` says which constraint failed on which chip;
* `rknpu.to_native` / `rknpu.from_native`: NCHW <-> NC1HWC2 conversions.

Tensors: quantized (`!quant.uniform`, int8 per tensor for features) or f16, either logical
(NCHW of rank 4, or [N, C] of rank 2 read as [N, C, 1, 1]; before `rknpu-layout`) or
native NC1HWC2 (rank 5: [N, ceil(C/C2), H, W, C2]). The channels of a native tensor
beyond its real count are padding: 0 where `to_native`, a conv or a concat wrote them,
unspecified after an elementwise op or a pool, and the next channels of the source after a
channel `rknpu.view`. No op reads them (a conv reads the channels its weight has, an
elementwise op or pool maps padding to padding, `from_native` drops it).

fp16 arithmetic (interpreter): every fp16 task computes with the float kernels of the
`nn` reference (`rkc.interpreter.kernels`) and rounds its result to f16, so a lowered fp16
module computes exactly what the fp16 `nn` module computes. The hardware sums its float32
products in an order nobody has documented; where the `nn` references of two ops that
lower to the same task sum differently, the optional property `fp16_sum` says which one
the interpreter reproduces (`ConvOp`, `PoolOp`). Codegen ignores it.

Tiling is a discardable attribute of `rknpu.conv`: `rknpu.tiles`, an array of
`array<i64: out_row_begin, out_row_end, out_channel_begin, out_channel_end, core>`, one
per hardware task (rows and channel groups as `rkc.lowering.tiling` plans them); without
it the conv is one task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    DictionaryAttr,
    IntegerAttr,
    StringAttr,
    TensorType,
    i8,
    i64,
)
from xdsl.ir import Attribute, Dialect, Region, SSAValue
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    ParsePropInAttrDict,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import HasParent, IsTerminator, Pure
from xdsl.utils.exceptions import VerifyException

from rkc.dialects import nn
from rkc.dialects.quant import quantized_element

NATIVE_RANK = 5
TILES_ATTR = "rknpu.tiles"

EW_BINARY = ("add", "sub", "mul", "max", "min")
EW_UNARY = ("requantize", "relu", "clip", "lut", "leaky_relu", "abs", "neg")
EW_SLOPE = ("prelu",)
"""Unary in the data, with a second (per-channel constant) tensor operand: the slope."""
EW_KINDS = EW_BINARY + EW_UNARY + EW_SLOPE
EW_FP16_ONLY = ("leaky_relu", "abs", "neg", "prelu")
"""Kinds only fp16 tasks use: int8 computes these ops through a `lut` (the quantized
`nn` semantics of leaky_relu, abs and neg are 256-entry tables; int8 prelu has none)."""
EW_INT8_ONLY = ("requantize", "lut")
POOL_KINDS = ("max", "avg")
CONV_FP16_SUMS = ("sequential",)
POOL_FP16_SUMS = ("float64_mean",)


def ew_arity(kind: str) -> int:
    """Number of tensor operands of an elementwise kind (the stage's input included)."""
    return 2 if kind in EW_BINARY or kind in EW_SLOPE else 1


def as_nchw_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """[N, C, H, W] as is, [N, C] as [N, C, 1, 1]."""
    if len(shape) == 2:
        return (shape[0], shape[1], 1, 1)
    if len(shape) != 4:
        raise nn.ShapeError(f"expected an [N, C] or [N, C, H, W] shape, got {list(shape)}")
    return tuple(shape)


def native_shape(shape: Sequence[int], c2: int) -> tuple[int, ...]:
    """[N, C, H, W] (or [N, C]) -> [N, ceil(C / C2), H, W, C2]."""
    n, c, h, w = as_nchw_shape(shape)
    return (n, -(-c // c2), h, w, c2)


def logical_shape(native: Sequence[int], channels: int, rank: int = 4) -> tuple[int, ...]:
    """[N, C1, H, W, C2] with `channels` real channels -> [N, C, H, W] (rank 4) or
    [N, C] (rank 2, H = W = 1)."""
    n, c1, h, w, c2 = native
    if not (c1 - 1) * c2 < channels <= c1 * c2:
        raise nn.ShapeError(f"{channels} channels do not fill {c1} blocks of {c2}")
    if rank == 2:
        if (h, w) != (1, 1):
            raise nn.ShapeError(f"an [N, C] tensor has H = W = 1, got {h}x{w}")
        return (n, channels)
    if rank != 4:
        raise nn.ShapeError(f"rank must be 2 or 4, got {rank}")
    return (n, channels, h, w)


def is_native(t: Attribute) -> bool:
    return isinstance(t, TensorType) and len(t.get_shape()) == NATIVE_RANK


def _expressed(t: Attribute) -> Attribute:
    """A quantized tensor type as the float type it expresses; others unchanged."""
    return nn._expressed(t)


def _element(t: Attribute) -> Attribute:
    assert isinstance(t, TensorType)
    return t.element_type


def _as_nchw(t: Attribute, channels: int | None = None) -> TensorType:
    """The logical NCHW type of an [N, C], NCHW or native tensor (native channels default
    to C1 * C2, i.e. padding included)."""
    assert isinstance(t, TensorType)
    shape = tuple(t.get_shape())
    if len(shape) == NATIVE_RANK:
        shape = (shape[0], channels if channels is not None else shape[1] * shape[4],
                 shape[2], shape[3])
    elif len(shape) in (2, 4):
        shape = as_nchw_shape(shape)
    else:
        raise nn.ShapeError(f"expected an [N, C], NCHW or NC1HWC2 tensor, got {t}")
    return TensorType(t.element_type, shape)


def _like(operand: Attribute, nchw: TensorType) -> TensorType:
    """`nchw` in the layout of `operand` (native when `operand` is native, [N, C] when
    `operand` is [N, C] and `nchw` has H = W = 1)."""
    shape = tuple(nchw.get_shape())
    if is_native(operand):
        c2 = operand.get_shape()[4]
        return TensorType(nchw.element_type, native_shape(shape, c2))
    if len(operand.get_shape()) == 2 and shape[2:] == (1, 1):
        return TensorType(nchw.element_type, shape[:2])
    return nchw


class RknpuOp(IRDLOperation):
    """Base of the typed rknpu ops: `infer_types` works on the NCHW view of the operands
    (as the matching `nn` op) and the result takes the layout of the first operand."""

    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "operands attr-dict `:` functional-type(operands, results)"

    def verify_(self) -> None:
        try:
            expected = self.infer_types([o.type for o in self.operands], self.properties)
        except nn.ShapeError as e:
            raise VerifyException(f"{self.name}: {e}") from None
        actual = [r.type for r in self.results]
        if [_expressed(t) for t in expected] != [_expressed(t)
                                                           for t in actual]:
            raise VerifyException(
                f"{self.name}: result type {', '.join(map(str, actual))} does not match "
                f"the inferred {', '.join(map(str, expected))}")

    @classmethod
    def infer_types(cls, operand_types: Sequence[Attribute],
                    props: Mapping[str, Attribute]) -> list[Attribute]:
        raise NotImplementedError


def _build(op: IRDLOperation, operands: Sequence, props: dict[str, Attribute],
           result_type: Attribute, name: str | None) -> None:
    IRDLOperation.__init__(op, operands=operands, properties=props,
                           result_types=[result_type],
                           attributes={nn.NAME_ATTR: StringAttr(name)} if name else {})


def check_ew(kind: str, params: Sequence[float], table: Sequence[int] | None,
             element: Attribute | None = None) -> None:
    """Raise ShapeError unless `kind` with these parameters is an elementwise kind (for
    an input of element type `element`, when given)."""
    if kind not in EW_KINDS:
        raise nn.ShapeError(f"kind must be one of {', '.join(EW_KINDS)}, got {kind}")
    if element is not None:
        quantized = quantized_element(TensorType(element, [1])) is not None
        if quantized and kind in EW_FP16_ONLY:
            raise nn.ShapeError(f"{kind} is fp16 only (int8 computes it as a lut)")
        if not quantized and kind in EW_INT8_ONLY:
            raise nn.ShapeError(f"{kind} is int8 only")
    if kind == "lut" and (table is None or len(table) != 256):
        raise nn.ShapeError("lut needs a table of 256 entries")
    if kind == "clip" and len(params) != 2:
        raise nn.ShapeError("clip needs params [min, max]")
    if kind == "leaky_relu" and len(params) != 1:
        raise nn.ShapeError("leaky_relu needs params [alpha]")


@dataclass(frozen=True)
class PostOp:
    """One DPU stage fused into an `rknpu.conv` (`post_ops`), applied in order to the
    conv's result: the `rknpu.ew` of the same `kind`, `params`, `table` and `function`,
    reading a value of element type `input` (the conv's own result type for the first
    stage, the previous stage's result type after that; the last stage yields the conv's
    result type). Binary kinds and prelu read `post_operands[operand]` as their other
    operand, on the right, or on the left when `reversed` (binary kinds: e.g. a sub
    computing operand - x)."""

    kind: str
    input: Attribute
    operand: int | None = None
    reversed: bool = False
    params: tuple[float, ...] = ()
    table: tuple[int, ...] | None = None
    function: str | None = None

    def to_attr(self) -> DictionaryAttr:
        entries: dict[str, Attribute] = {"kind": StringAttr(self.kind), "input": self.input}
        if self.operand is not None:
            entries["operand"] = nn.i64_attr(self.operand)
        if self.reversed:
            entries["reversed"] = nn.bool_attr(True)
        if self.params:
            entries["params"] = DenseArrayBase.from_list(nn.f32, list(self.params))
        if self.table is not None:
            entries["table"] = DenseArrayBase.from_list(i8, list(self.table))
        if self.function is not None:
            entries["function"] = StringAttr(self.function)
        return DictionaryAttr(entries)

    @staticmethod
    def from_attr(attr: Attribute) -> PostOp:
        if not isinstance(attr, DictionaryAttr):
            raise nn.ShapeError(f"a post op is a dictionary, got {attr}")
        d = attr.data
        kind, element = d.get("kind"), d.get("input")
        if not isinstance(kind, StringAttr) or element is None:
            raise nn.ShapeError(f"a post op needs a kind and an input type, got {attr}")
        operand, rev = d.get("operand"), d.get("reversed")
        params, table, function = d.get("params"), d.get("table"), d.get("function")
        return PostOp(
            kind.data, element,
            operand.value.data if isinstance(operand, IntegerAttr) else None,
            bool(rev.value.data) if isinstance(rev, IntegerAttr) else False,
            tuple(float(v) for v in params.get_values())
            if isinstance(params, DenseArrayBase) else (),
            tuple(int(v) for v in table.get_values())
            if isinstance(table, DenseArrayBase) else None,
            function.data if isinstance(function, StringAttr) else None)


def read_post_ops(op: IRDLOperation) -> list[PostOp]:
    """The `post_ops` of a conv, in order ([] when it has none)."""
    attr = op.properties.get("post_ops")
    return [PostOp.from_attr(a) for a in attr.data] if isinstance(attr, ArrayAttr) else []


def post_ops_attr(stages: Sequence[PostOp]) -> ArrayAttr:
    return ArrayAttr([s.to_attr() for s in stages])


@irdl_op_definition
class ConvOp(RknpuOp):
    """CNA + CORE + DPU convolution task. Operands: input, weight [O, C/group, KH, KW]
    (int8 per-channel symmetric, or f16), optional bias [O] (i32 at s_in * s_w, or f16),
    then the `post_operands` of its `post_ops`. `group` is 1 (direct) or C == O
    (depthwise). The conv's own result type fixes the output converter (with post ops: the
    first stage's `input`); a relu / clip `activation` clamps in that output domain (as
    nn.conv2d's). `fp16_sum = "sequential"` (fp16 only, interpreter only): products are
    summed channel by channel, rounded to f16, then the bias is added in f16, as the
    nn.gemm / nn.matmul reference does (numpy's half matrix product); absent: as the
    nn.conv2d reference (float32 im2col product, bias added in float32)."""

    name = "rknpu.conv"
    input = operand_def(nn.AnyTensor)
    weight = operand_def(nn.AnyTensor)
    bias = opt_operand_def(nn.AnyTensor)
    post_operands = var_operand_def(nn.AnyTensor)
    output = result_def(nn.AnyTensor)
    strides = prop_def(nn.I64Array)
    pads = prop_def(nn.I64Array)
    dilations = prop_def(nn.I64Array)
    group = prop_def(nn.I64Int)
    activation = opt_prop_def(StringAttr)
    activation_params = opt_prop_def(nn.F32Array)
    post_ops = opt_prop_def(ArrayAttr)
    fp16_sum = opt_prop_def(StringAttr)
    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    assembly_format = None

    def __init__(self, input: SSAValue, weight: SSAValue, bias: SSAValue | None,
                 props: Mapping[str, Attribute], result_type: Attribute,
                 name: str | None = None, post_operands: Sequence[SSAValue] = ()):
        props = {k: v for k, v in props.items() if k != "operandSegmentSizes"}
        _build(self, [input, weight, [] if bias is None else [bias], list(post_operands)],
               props, result_type, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        x = operand_types[0]
        w_shape = tuple(operand_types[1].get_shape())
        group = nn.int_of(props, "group")
        channels = w_shape[1] * group
        if group != 1 and not (group == channels == w_shape[0]):
            raise nn.ShapeError(f"group {group}: the NPU convolves directly (group 1) or "
                                f"depthwise (group == channels == outputs)")
        act = props.get("activation")
        if act is not None and nn.str_of(props, "activation") not in ("relu", "clip"):
            raise nn.ShapeError(f"fused activation {nn.str_of(props, 'activation')}: the "
                                f"output clamp does relu and clip only")
        fp16_sum = props.get("fp16_sum")
        if fp16_sum is not None and nn.str_of(props, "fp16_sum") not in CONV_FP16_SUMS:
            raise nn.ShapeError(f"fp16_sum must be one of {', '.join(CONV_FP16_SUMS)}")
        nchw = _as_nchw(x, channels)
        segments = props.get("operandSegmentSizes")
        has_bias = (len(operand_types) > 2 if segments is None
                    else segments.get_values()[2] == 1)
        main = [nchw, *[_expressed(t) for t in operand_types[1:3 if has_bias else 2]]]
        (inferred,) = nn.Conv2dOp.infer_types(main, props)
        return [_like(x, TensorType(_element(x), inferred.get_shape()))]

    def verify_(self) -> None:
        # the result's element type (quantized) differs from the input's: check shapes
        try:
            (expected,) = self.infer_types([o.type for o in self.operands], self.properties)
            stages = read_post_ops(self)
            for i, stage in enumerate(stages):
                try:
                    check_ew(stage.kind, stage.params, stage.table, stage.input)
                except nn.ShapeError as e:
                    raise nn.ShapeError(f"post op {i}: {e}") from None
                needs = ew_arity(stage.kind) == 2
                if needs != (stage.operand is not None):
                    raise nn.ShapeError(f"post op {stage.kind} "
                                        f"{'needs' if needs else 'takes no'} operand")
                if stage.operand is not None and not 0 <= stage.operand < len(
                        self.post_operands):
                    raise nn.ShapeError(f"post op operand {stage.operand} out of range")
                if stage.reversed and stage.kind not in EW_BINARY:
                    raise nn.ShapeError("only a binary stage takes its operand on the left")
            if self.post_operands and not stages:
                raise nn.ShapeError("post operands without post_ops")
            for v in self.post_operands:
                nn.broadcast_shapes(v.type.get_shape(), expected.get_shape())
        except nn.ShapeError as e:
            raise VerifyException(f"{self.name}: {e}") from None
        if tuple(expected.get_shape()) != tuple(self.output.type.get_shape()):
            raise VerifyException(f"{self.name}: result shape {self.output.type} does not "
                                  f"match the inferred {list(expected.get_shape())}")

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        main = [self.input, self.weight, *([self.bias] if self.bias is not None else [])]
        printer.print_list(main, printer.print_operand)
        if self.post_operands:
            printer.print_string(" post(")
            printer.print_list(self.post_operands, printer.print_operand)
            printer.print_string(")")
        props = {k: v for k, v in self.properties.items() if k != "operandSegmentSizes"}
        printer.print_op_attributes(self.attributes | props)
        printer.print_string(" : ")
        printer.print_operation_type(self)

    @classmethod
    def parse(cls, parser: Parser) -> ConvOp:
        """`rknpu.conv %x, %w[, %b] [post(%o, ...)] {attrs} : (types) -> type`."""
        pos = parser.pos
        main = parser.parse_comma_separated_list(parser.Delimiter.NONE,
                                                 parser.parse_unresolved_operand)
        post = []
        if parser.parse_optional_keyword("post") is not None:
            post = parser.parse_comma_separated_list(parser.Delimiter.PAREN,
                                                     parser.parse_unresolved_operand)
        attrs = dict(parser.parse_optional_attr_dict())
        parser.parse_punctuation(":")
        fn_type = parser.parse_function_type()
        if len(main) not in (2, 3) or len(fn_type.outputs.data) != 1:
            parser.raise_error("rknpu.conv takes input, weight[, bias] and has one result",
                               pos, parser.pos)
        values = parser.resolve_operands([*main, *post], fn_type.inputs.data, pos)
        defined = cls.get_irdl_definition().properties
        props = {k: attrs.pop(k) for k in list(attrs) if k in defined}
        op = cls(values[0], values[1], values[2] if len(main) == 3 else None, props,
                 fn_type.outputs.data[0], post_operands=values[len(main):])
        op.attributes |= attrs
        return op


@irdl_op_definition
class EwOp(RknpuOp):
    """DPU elementwise task (flying mode) on tensors of any rank (the DPU streams them).
    Binary kinds (add, sub, mul, max, min) take two tensors of the same layout (numpy
    broadcasting); unary kinds:
    `requantize` (rescale to the result's parameters), `relu` / `clip` (`params` = [min,
    max]: clamp in the output domain), `lut` (`table`: 256 int8 results indexed by the
    input's stored value + 128; `function` names what it tabulates), and for fp16
    `leaky_relu` (`params` = [alpha]), `abs`, `neg`; `prelu` takes its slope as a second
    tensor (per channel, a constant)."""

    name = "rknpu.ew"
    inputs = var_operand_def(nn.AnyTensor)
    output = result_def(nn.AnyTensor)
    kind = prop_def(StringAttr)
    params = opt_prop_def(nn.F32Array)
    table = opt_prop_def(DenseArrayBase.constr(i8))
    function = opt_prop_def(StringAttr)

    def __init__(self, inputs: Sequence[SSAValue], kind: str, result_type: Attribute,
                 params: Sequence[float] = (), table: Sequence[int] | None = None,
                 function: str | None = None, name: str | None = None):
        props: dict[str, Attribute] = {"kind": StringAttr(kind)}
        if params:
            props["params"] = DenseArrayBase.from_list(nn.f32, list(params))
        if table is not None:
            props["table"] = DenseArrayBase.from_list(i8, [int(v) for v in table])
        if function is not None:
            props["function"] = StringAttr(function)
        _build(self, [list(inputs)], props, result_type, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        kind = nn.str_of(props, "kind")
        params, table = props.get("params"), props.get("table")
        check_ew(kind, params.get_values() if isinstance(params, DenseArrayBase) else (),
                 table.get_values() if isinstance(table, DenseArrayBase) else None,
                 _element(operand_types[0]) if operand_types else None)
        arity = ew_arity(kind)
        if len(operand_types) != arity:
            raise nn.ShapeError(f"{kind} takes {arity} operand(s), got {len(operand_types)}")
        first = operand_types[0]
        if any(is_native(t) != is_native(first) for t in operand_types):
            raise nn.ShapeError("operands must have the same layout")
        shape = nn.broadcast_shapes(*[t.get_shape() for t in operand_types])
        if kind in EW_SLOPE and tuple(shape) != tuple(first.get_shape()):
            raise nn.ShapeError(f"the {kind} slope must broadcast to the input's shape")
        return [TensorType(_element(first), shape)]


@irdl_op_definition
class PoolOp(RknpuOp):
    """PPU pooling task: `kind` max or avg with nn's pool properties (avg divides by the
    window size with or without padding, `count_include_pad`). `fp16_sum =
    "float64_mean"` (fp16 only, interpreter only): the window's mean is computed in
    float64, as the nn.global_avg_pool reference does; absent: float32 sums, as the
    nn.avg_pool2d reference."""

    name = "rknpu.pool"
    input = operand_def(nn.AnyTensor)
    output = result_def(nn.AnyTensor)
    kind = prop_def(StringAttr)
    kernel = prop_def(nn.I64Array)
    strides = prop_def(nn.I64Array)
    pads = prop_def(nn.I64Array)
    ceil_mode = prop_def(nn.Bool)
    count_include_pad = prop_def(nn.Bool)
    fp16_sum = opt_prop_def(StringAttr)

    def __init__(self, input: SSAValue, kind: str, props: Mapping[str, Attribute],
                 result_type: Attribute, name: str | None = None):
        _build(self, [input], {"kind": StringAttr(kind), **props}, result_type, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        if nn.str_of(props, "kind") not in POOL_KINDS:
            raise nn.ShapeError(f"kind must be one of {', '.join(POOL_KINDS)}")
        if props.get("fp16_sum") is not None and (
                nn.str_of(props, "fp16_sum") not in POOL_FP16_SUMS
                or nn.str_of(props, "kind") != "avg"):
            raise nn.ShapeError(f"fp16_sum must be one of {', '.join(POOL_FP16_SUMS)} "
                                f"(avg pools only)")
        x = operand_types[0]
        (out,) = nn._pool_shape([_as_nchw(x)], props)
        return [_like(x, TensorType(_element(x), out.get_shape()))]


@irdl_op_definition
class ConcatOp(RknpuOp):
    """Channel concatenation (axis 1 of NCHW or [N, C]) of tensors with equal
    quantization: the producers write at channel offsets of one buffer, so it costs no
    task. In native layout every input but the last must fill whole C2 blocks."""

    name = "rknpu.concat"
    inputs = var_operand_def(nn.AnyTensor)
    output = result_def(nn.AnyTensor)
    channels = prop_def(nn.I64Array)

    def __init__(self, inputs: Sequence[SSAValue], channels: Sequence[int],
                 result_type: Attribute, name: str | None = None):
        _build(self, [list(inputs)], {"channels": nn.i64_array(channels)}, result_type, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        channels = nn.ints(props, "channels")
        if len(channels) != len(operand_types) or not operand_types:
            raise nn.ShapeError("channels needs one count per input")
        first = operand_types[0]
        shapes = [_as_nchw(t, c).get_shape() for t, c in zip(operand_types, channels,
                                                              strict=True)]
        for s in shapes:
            if (s[0], *s[2:]) != (shapes[0][0], *shapes[0][2:]):
                raise nn.ShapeError(f"inputs {[list(s) for s in shapes]} differ outside the "
                                    f"channel axis")
        if is_native(first):
            c2 = first.get_shape()[4]
            if any(c % c2 for c in channels[:-1]):
                raise nn.ShapeError(f"native concat needs every input but the last to hold "
                                    f"whole blocks of {c2} channels, got {list(channels)}")
        total = (shapes[0][0], sum(channels), *shapes[0][2:])
        return [_like(first, TensorType(_element(first), total))]


@irdl_op_definition
class ViewOp(RknpuOp):
    """No task, no data moved: channels [offset, offset + C') of the input read with the
    logical shape `shape` = [N, C'] or [N, C', H', W'] (N kept, H' * W' = H * W). Covers
    reshape / flatten keeping N and C, transposes that move only size-1 axes, and channel
    slices and splits.

    Native layout: [N, C1, H, W, C2] -> [N, C1', H', W', C2] starting `offset / C2`
    surfaces in, so `offset` must be a multiple of C2. A surface is the H x W pixels of
    one channel block in row-major order, and H' * W' = H * W keeps it, so the result is
    the same bytes at a byte offset (hw §4.1). The result's padding channels are the
    source's next channels (no op reads them)."""

    name = "rknpu.view"
    input = operand_def(nn.AnyTensor)
    output = result_def(nn.AnyTensor)
    offset = prop_def(nn.I64Int)
    shape = prop_def(nn.I64Array)

    def __init__(self, input: SSAValue, shape: Sequence[int], offset: int = 0,
                 name: str | None = None):
        props = {"offset": nn.i64_attr(offset), "shape": nn.i64_array(shape)}
        (t,) = self.infer_types([input.type], props)
        _build(self, [input], props, t, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        x = operand_types[0]
        offset, shape = nn.int_of(props, "offset"), nn.ints(props, "shape")
        n, c, h, w = as_nchw_shape(shape)
        xn, xc, xh, xw = _as_nchw(x).get_shape()
        if n != xn or h * w != xh * xw:
            raise nn.ShapeError(f"view {list(shape)} of {x} must keep N and H * W")
        if offset < 0 or offset + c > xc:
            raise nn.ShapeError(f"channels {offset}..{offset + c} exceed the input's {xc}")
        if is_native(x):
            c2 = x.get_shape()[4]
            if offset % c2:
                raise nn.ShapeError(f"a native view starts at a multiple of C2 = {c2}, got "
                                    f"channel {offset}")
            return [TensorType(_element(x), native_shape(shape, c2))]
        return [TensorType(_element(x), shape)]


@irdl_op_definition
class ToNativeOp(RknpuOp):
    """NCHW (or [N, C]) -> NC1HWC2 with `c2` channels per block; padding channels hold 0."""

    name = "rknpu.to_native"
    input = operand_def(nn.AnyTensor)
    output = result_def(nn.AnyTensor)
    c2 = prop_def(nn.I64Int)

    def __init__(self, input: SSAValue, c2: int, name: str | None = None):
        props = {"c2": nn.i64_attr(c2)}
        (t,) = self.infer_types([input.type], props)
        _build(self, [input], props, t, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        shape = tuple(operand_types[0].get_shape())
        if len(shape) not in (2, 4):
            raise nn.ShapeError(f"input must be NCHW or [N, C], got {operand_types[0]}")
        return [TensorType(_element(operand_types[0]),
                           native_shape(shape, nn.int_of(props, "c2")))]


@irdl_op_definition
class FromNativeOp(RknpuOp):
    """NC1HWC2 -> NCHW keeping the first `channels` channels ([N, C] when `rank` = 2)."""

    name = "rknpu.from_native"
    input = operand_def(nn.AnyTensor)
    output = result_def(nn.AnyTensor)
    channels = prop_def(nn.I64Int)
    rank = opt_prop_def(nn.I64Int)

    def __init__(self, input: SSAValue, channels: int, name: str | None = None,
                 rank: int = 4):
        props = {"channels": nn.i64_attr(channels)}
        if rank != 4:
            props["rank"] = nn.i64_attr(rank)
        (t,) = self.infer_types([input.type], props)
        _build(self, [input], props, t, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        if not is_native(operand_types[0]):
            raise nn.ShapeError(f"input must be NC1HWC2, got {operand_types[0]}")
        rank = nn.int_of(props, "rank") if props.get("rank") is not None else 4
        return [TensorType(_element(operand_types[0]),
                           logical_shape(operand_types[0].get_shape(),
                                         nn.int_of(props, "channels"), rank))]


@irdl_op_definition
class CpuOp(IRDLOperation):
    """Ops that run on the host. The region's block takes the operands as arguments and
    ends with `rknpu.yield` of the results; `reason` says why they are not on the NPU."""

    name = "rknpu.cpu"
    inputs = var_operand_def(nn.AnyTensor)
    outputs = var_result_def(nn.AnyTensor)
    reason = prop_def(StringAttr)
    body = region_def("single_block")

    def __init__(self, inputs: Sequence[SSAValue], result_types: Sequence[Attribute],
                 reason: str, body: Region, name: str | None = None):
        IRDLOperation.__init__(self, operands=[list(inputs)], result_types=[list(result_types)],
                               properties={"reason": StringAttr(reason)}, regions=[body],
                               attributes={nn.NAME_ATTR: StringAttr(name)} if name else {})

    def verify_(self) -> None:
        block = self.body.block
        if [a.type for a in block.args] != [o.type for o in self.operands]:
            raise VerifyException("rknpu.cpu: block arguments must match the operands")
        last = block.last_op
        if not isinstance(last, YieldOp):
            raise VerifyException("rknpu.cpu: the body must end with rknpu.yield")
        if [o.type for o in last.operands] != [r.type for r in self.results]:
            raise VerifyException("rknpu.cpu: rknpu.yield operands must match the results")


@irdl_op_definition
class YieldOp(IRDLOperation):
    """Terminator of `rknpu.cpu`."""

    name = "rknpu.yield"
    values = var_operand_def(nn.AnyTensor)
    traits = traits_def(IsTerminator(), HasParent(CpuOp))
    assembly_format = "($values^ `:` type($values))? attr-dict"

    def __init__(self, values: Sequence[SSAValue]):
        IRDLOperation.__init__(self, operands=[list(values)])


def tiles_attr(tiles: Sequence[Sequence[int]]) -> ArrayAttr:
    """`rknpu.tiles` from (out_row_begin, out_row_end, oc_begin, oc_end, core) tuples."""
    return ArrayAttr([DenseArrayBase.from_list(i64, list(t)) for t in tiles])


def read_tiles(op: IRDLOperation) -> list[tuple[int, ...]]:
    """The op's `rknpu.tiles`, or [] when it is one untiled task."""
    attr = op.attributes.get(TILES_ATTR)
    if not isinstance(attr, ArrayAttr):
        return []
    return [tuple(int(v) for v in t.get_values()) for t in attr.data]


RKNPU = Dialect("rknpu", [ConvOp, EwOp, PoolOp, ConcatOp, ViewOp, ToNativeOp,
                          FromNativeOp, CpuOp, YieldOp], [])
