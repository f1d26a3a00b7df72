"""The `rknpu` dialect: one op per RKNPU2 hardware task, plus host ops and layout changes.

Ops here are at the level of the hardware's blocks, not yet of its registers:

* `rknpu.conv`  CNA + CORE + DPU: direct or depthwise convolution, int8 x int8 -> int32
  accumulation, per-channel bias, the output converter (15-bit multiplier and shift,
  `rkc.quant.requant`), and a fused relu / clip as the output clamp;
* `rknpu.ew`    DPU flying mode on one or two tensors: add, sub, mul, max, min,
  requantize (a rescale), relu / clip (clamp), and `lut` (a 256-entry int8 table);
* `rknpu.pool`  PPU max / average pooling (global pools have the feature's H x W kernel);
* `rknpu.concat` channel concatenation by output address offsets (no task of its own);
* `rknpu.cpu`   an op that stays on the host; its region holds the original `nn` op(s)
  and `reason` says which constraint failed on which chip;
* `rknpu.to_native` / `rknpu.from_native`: NCHW <-> NC1HWC2 conversions.

Tensors: quantized (`!quant.uniform`, int8 per tensor for features) or f16, either logical
NCHW (rank 4, before `rknpu-layout`) or native NC1HWC2 (rank 5: [N, ceil(C/C2), H, W, C2]).
The channels of a native tensor beyond its real count are padding: 0 where `to_native`, a
conv or a concat wrote them, unspecified after an elementwise op or a pool. No op reads
them (a conv reads the channels its weight has, an elementwise op or pool maps padding to
padding, `from_native` drops it).

Tiling is a discardable attribute of `rknpu.conv`: `rknpu.tiles`, an array of
`array<i64: out_row_begin, out_row_end, out_channel_begin, out_channel_end, core>`, one
per hardware task (rows and channel groups as `rkc.lowering.tiling` plans them); without
it the conv is one task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    StringAttr,
    TensorType,
    i8,
    i64,
)
from xdsl.ir import Attribute, Dialect, Region, SSAValue
from xdsl.irdl import (
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
from xdsl.traits import HasParent, IsTerminator, Pure
from xdsl.utils.exceptions import VerifyException

from rkc.dialects import nn

NATIVE_RANK = 5
TILES_ATTR = "rknpu.tiles"

EW_BINARY = ("add", "sub", "mul", "max", "min")
EW_UNARY = ("requantize", "relu", "clip", "lut")
EW_KINDS = EW_BINARY + EW_UNARY
POOL_KINDS = ("max", "avg")


def native_shape(shape: Sequence[int], c2: int) -> tuple[int, ...]:
    """[N, C, H, W] -> [N, ceil(C / C2), H, W, C2]."""
    n, c, h, w = shape
    return (n, -(-c // c2), h, w, c2)


def logical_shape(native: Sequence[int], channels: int) -> tuple[int, ...]:
    """[N, C1, H, W, C2] with `channels` real channels -> [N, C, H, W]."""
    n, c1, h, w, c2 = native
    if not (c1 - 1) * c2 < channels <= c1 * c2:
        raise nn.ShapeError(f"{channels} channels do not fill {c1} blocks of {c2}")
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
    """The logical NCHW type of a rank-4 or native tensor (native channels default to
    C1 * C2, i.e. padding included)."""
    assert isinstance(t, TensorType)
    shape = tuple(t.get_shape())
    if len(shape) == NATIVE_RANK:
        shape = (shape[0], channels if channels is not None else shape[1] * shape[4],
                 shape[2], shape[3])
    elif len(shape) != 4:
        raise nn.ShapeError(f"expected an NCHW or NC1HWC2 tensor, got {t}")
    return TensorType(t.element_type, shape)


def _like(operand: Attribute, nchw: TensorType) -> TensorType:
    """`nchw` in the layout of `operand` (native when `operand` is native)."""
    if is_native(operand):
        c2 = operand.get_shape()[4]
        return TensorType(nchw.element_type, native_shape(nchw.get_shape(), c2))
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


@irdl_op_definition
class ConvOp(RknpuOp):
    """CNA + CORE + DPU convolution task. Operands: input, i8 weight [O, C/group, KH, KW]
    (per-channel symmetric), optional i32 bias [O] at s_in * s_w. `group` is 1 (direct)
    or C == O (depthwise). The result's quantized type fixes the output converter; a
    relu / clip `activation` clamps in the output domain (as nn.conv2d's)."""

    name = "rknpu.conv"
    input = operand_def(nn.AnyTensor)
    weight = operand_def(nn.AnyTensor)
    bias = opt_operand_def(nn.AnyTensor)
    output = result_def(nn.AnyTensor)
    strides = prop_def(nn.I64Array)
    pads = prop_def(nn.I64Array)
    dilations = prop_def(nn.I64Array)
    group = prop_def(nn.I64Int)
    activation = opt_prop_def(StringAttr)
    activation_params = opt_prop_def(nn.F32Array)

    def __init__(self, input: SSAValue, weight: SSAValue, bias: SSAValue | None,
                 props: Mapping[str, Attribute], result_type: Attribute,
                 name: str | None = None):
        _build(self, [input, weight, [] if bias is None else [bias]], dict(props),
               result_type, name)

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
        nchw = _as_nchw(x, channels)
        (inferred,) = nn.Conv2dOp.infer_types(
            [nchw, *[_expressed(t) for t in operand_types[1:]]], props)
        return [_like(x, TensorType(_element(x), inferred.get_shape()))]

    def verify_(self) -> None:
        # the result's element type (quantized) differs from the input's: check shapes
        try:
            (expected,) = self.infer_types([o.type for o in self.operands], self.properties)
        except nn.ShapeError as e:
            raise VerifyException(f"{self.name}: {e}") from None
        if tuple(expected.get_shape()) != tuple(self.output.type.get_shape()):
            raise VerifyException(f"{self.name}: result shape {self.output.type} does not "
                                  f"match the inferred {list(expected.get_shape())}")


@irdl_op_definition
class EwOp(RknpuOp):
    """DPU elementwise task (flying mode) on tensors of any rank (the DPU streams them).
    Binary kinds (add, sub, mul, max, min) take two tensors of the same layout (numpy
    broadcasting); unary kinds:
    `requantize` (rescale to the result's parameters), `relu` / `clip` (`params` = [min,
    max]: clamp in the output domain), `lut` (`table`: 256 int8 results indexed by the
    input's stored value + 128; `function` names what it tabulates)."""

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
        if kind not in EW_KINDS:
            raise nn.ShapeError(f"kind must be one of {', '.join(EW_KINDS)}, got {kind}")
        arity = 2 if kind in EW_BINARY else 1
        if len(operand_types) != arity:
            raise nn.ShapeError(f"{kind} takes {arity} operand(s), got {len(operand_types)}")
        if kind == "lut":
            table = props.get("table")
            if not isinstance(table, DenseArrayBase) or len(table.get_values()) != 256:
                raise nn.ShapeError("lut needs a table of 256 entries")
        if kind == "clip":
            params = props.get("params")
            if not isinstance(params, DenseArrayBase) or len(params.get_values()) != 2:
                raise nn.ShapeError("clip needs params [min, max]")
        first = operand_types[0]
        if any(is_native(t) != is_native(first) for t in operand_types):
            raise nn.ShapeError("operands must have the same layout")
        if is_native(first):
            shape = nn.broadcast_shapes(*[t.get_shape() for t in operand_types])
            return [TensorType(_element(first), shape)]
        shape = nn.broadcast_shapes(*[t.get_shape() for t in operand_types])
        return [TensorType(_element(first), shape)]


@irdl_op_definition
class PoolOp(RknpuOp):
    """PPU pooling task: `kind` max or avg with nn's pool properties (avg divides by the
    window size with or without padding, `count_include_pad`)."""

    name = "rknpu.pool"
    input = operand_def(nn.AnyTensor)
    output = result_def(nn.AnyTensor)
    kind = prop_def(StringAttr)
    kernel = prop_def(nn.I64Array)
    strides = prop_def(nn.I64Array)
    pads = prop_def(nn.I64Array)
    ceil_mode = prop_def(nn.Bool)
    count_include_pad = prop_def(nn.Bool)

    def __init__(self, input: SSAValue, kind: str, props: Mapping[str, Attribute],
                 result_type: Attribute, name: str | None = None):
        _build(self, [input], {"kind": StringAttr(kind), **props}, result_type, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        if nn.str_of(props, "kind") not in POOL_KINDS:
            raise nn.ShapeError(f"kind must be one of {', '.join(POOL_KINDS)}")
        x = operand_types[0]
        (out,) = nn._pool_shape([_as_nchw(x)], props)
        return [_like(x, TensorType(_element(x), out.get_shape()))]


@irdl_op_definition
class ConcatOp(RknpuOp):
    """Channel concatenation (axis 1 of NCHW) of tensors with equal quantization: the
    producers write at channel offsets of one buffer, so it costs no task. In native
    layout every input but the last must fill whole C2 blocks."""

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
class ToNativeOp(RknpuOp):
    """NCHW -> NC1HWC2 with `c2` channels per block; padding channels hold 0."""

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
        if len(shape) != 4:
            raise nn.ShapeError(f"input must be NCHW, got {operand_types[0]}")
        return [TensorType(_element(operand_types[0]),
                           native_shape(shape, nn.int_of(props, "c2")))]


@irdl_op_definition
class FromNativeOp(RknpuOp):
    """NC1HWC2 -> NCHW keeping the first `channels` channels."""

    name = "rknpu.from_native"
    input = operand_def(nn.AnyTensor)
    output = result_def(nn.AnyTensor)
    channels = prop_def(nn.I64Int)

    def __init__(self, input: SSAValue, channels: int, name: str | None = None):
        props = {"channels": nn.i64_attr(channels)}
        (t,) = self.infer_types([input.type], props)
        _build(self, [input], props, t, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        if not is_native(operand_types[0]):
            raise nn.ShapeError(f"input must be NC1HWC2, got {operand_types[0]}")
        return [TensorType(_element(operand_types[0]),
                           logical_shape(operand_types[0].get_shape(),
                                         nn.int_of(props, "channels")))]


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


RKNPU = Dialect("rknpu", [ConvOp, EwOp, PoolOp, ConcatOp, ToNativeOp, FromNativeOp,
                          CpuOp, YieldOp], [])
