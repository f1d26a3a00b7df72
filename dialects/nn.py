"""The `nn` dialect: float (and later quantized) tensor-level neural-network ops.

Every op is `Pure`, keeps its hardware-independent attributes as properties, and
*infers* its result type from its operand types and properties: `verify_` recomputes
the type and rejects an op whose declared result type differs. Constructors compute
the result type the same way, so code that builds IR never states shapes by hand.

Textual form (all ops but `nn.constant`)::

    %y = nn.conv2d %x, %w, %b {strides = array<i64: 1, 1>, ...}
         : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<1x4x8x8xf32>

Conventions:
  * layout is NCHW for every 4-D op;
  * 2-D padding is ONNX-ordered `[top, left, bottom, right]`;
  * the discardable attribute `rkc.name` carries the source (ONNX) node name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from xdsl.dialects.builtin import (
    I64,
    BytesAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    Float32Type,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    Signedness,
    StringAttr,
    TensorType,
    f16,
    f32,
    f64,
    i1,
    i8,
    i16,
    i32,
    i64,
)
from xdsl.ir import Attribute, Dialect, Operation, SSAValue, TypeAttribute
from xdsl.irdl import (
    IRDLOperation,
    ParsePropInAttrDict,
    base,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import ConstantLike, Pure
from xdsl.utils.exceptions import VerifyException

from rkc.dialects.quant import UniformQuantizedType, quantized_element

AnyTensor = base(TensorType)
I64Array = DenseArrayBase.constr(i64)
F32Array = DenseArrayBase.constr(f32)
I64Int = IntegerAttr.constr(type=I64)
F32Float = FloatAttr.constr(type=Float32Type)
Bool = base(IntegerAttr)

NAME_ATTR = "rkc.name"
"""Discardable attribute holding the name of the source-model node an op came from."""


class ShapeError(ValueError):
    """Operand types and properties admit no result type; the message says why."""


# ---------------------------------------------------------------------------
# numpy <-> xDSL element types and weights
# ---------------------------------------------------------------------------
ui8 = IntegerType(8, Signedness.UNSIGNED)

NUMPY_TO_ELEMENT: dict[np.dtype, Attribute] = {
    np.dtype(np.float32): f32,
    np.dtype(np.float16): f16,
    np.dtype(np.float64): f64,
    np.dtype(np.int8): i8,
    np.dtype(np.uint8): ui8,
    np.dtype(np.int16): i16,
    np.dtype(np.int32): i32,
    np.dtype(np.int64): i64,
}
ELEMENT_TO_NUMPY: dict[Attribute, np.dtype] = {v: k for k, v in NUMPY_TO_ELEMENT.items()}
ELEMENT_TO_NUMPY[i1] = np.dtype(np.bool_)


def numpy_dtype(element_type: Attribute) -> np.dtype:
    """The numpy dtype that holds values of an `nn` element type (for a quantized type,
    its storage)."""
    if isinstance(element_type, UniformQuantizedType):
        return element_type.storage_dtype
    try:
        return ELEMENT_TO_NUMPY[element_type]
    except KeyError:
        raise ShapeError(f"element type {element_type} has no numpy equivalent") from None


def element_type(dtype: np.dtype | type) -> Attribute:
    """The xDSL element type of a numpy dtype."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return i1
    try:
        return NUMPY_TO_ELEMENT[dtype]
    except KeyError:
        raise ShapeError(f"numpy dtype {dtype} has no nn element type") from None


def tensor_type(dtype: np.dtype | type | Attribute, shape: Sequence[int]) -> TensorType:
    """`tensor<shape x dtype>` from a numpy dtype or an element type."""
    el = dtype if isinstance(dtype, Attribute) else element_type(dtype)
    return TensorType(el, [int(d) for d in shape])


def ndarray_to_dense(array: np.ndarray) -> DenseIntOrFPElementsAttr:
    """Wrap an array as a dense attribute by copying its bytes (no Python lists)."""
    array = np.asarray(array, order="C")
    if array.dtype == np.bool_:
        raise ShapeError("boolean constants are not supported; cast them to an integer type")
    el = element_type(array.dtype)
    data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    return DenseIntOrFPElementsAttr(TensorType(el, array.shape), BytesAttr(data))


def dense_to_ndarray(attr: DenseIntOrFPElementsAttr) -> np.ndarray:
    """A read-only numpy view of a dense attribute's bytes."""
    dtype = numpy_dtype(attr.get_element_type())
    shape = tuple(attr.get_shape())
    flat = np.frombuffer(attr.data.data, dtype=dtype.newbyteorder("<"))
    count = math.prod(shape)
    if flat.size == 1 and count != 1:  # a splat is stored as one element
        flat = np.broadcast_to(flat, (count,))
    return flat.reshape(shape).astype(dtype, copy=False)


# ---------------------------------------------------------------------------
# property constructors and readers
# ---------------------------------------------------------------------------
def i64_array(values: Sequence[int]) -> DenseArrayBase:
    return DenseArrayBase.from_list(i64, [int(v) for v in values])


def i64_attr(value: int) -> IntegerAttr:
    return IntegerAttr(int(value), i64)


def f32_attr(value: float) -> FloatAttr:
    return FloatAttr(float(np.float32(value)), f32)


def bool_attr(value: bool) -> IntegerAttr:
    return IntegerAttr.from_bool(bool(value))


def ints(props: Mapping[str, Attribute], key: str) -> tuple[int, ...]:
    attr = props[key]
    assert isinstance(attr, DenseArrayBase)
    return tuple(int(v) for v in attr.get_values())


def int_of(props: Mapping[str, Attribute], key: str) -> int:
    attr = props[key]
    assert isinstance(attr, IntegerAttr)
    return int(attr.value.data)


def float_of(props: Mapping[str, Attribute], key: str) -> float:
    attr = props[key]
    assert isinstance(attr, FloatAttr)
    return float(attr.value.data)


def str_of(props: Mapping[str, Attribute], key: str) -> str:
    attr = props[key]
    assert isinstance(attr, StringAttr)
    return attr.data


def _expressed(t: Attribute) -> Attribute:
    """A quantized tensor type as the float type it stands for; other types unchanged."""
    q = quantized_element(t)
    return TensorType(q.expressed, t.get_shape()) if q is not None else t


def node_name(op: Operation) -> str | None:
    """The op's source node name (`rkc.name`), if it has one."""
    attr = op.attributes.get(NAME_ATTR)
    return attr.data if isinstance(attr, StringAttr) else None


def constant_value(value: SSAValue | None) -> np.ndarray | None:
    """The array an `nn.constant` produces, or None for any other value."""
    owner = value.owner if value is not None else None
    return owner.to_numpy() if isinstance(owner, ConstantOp) else None


def _tensor(t: Attribute, what: str) -> TensorType:
    if not isinstance(t, TensorType):
        raise ShapeError(f"{what} must be a tensor, got {t}")
    return t


def _shape(t: Attribute, what: str = "operand") -> tuple[int, ...]:
    return tuple(_tensor(t, what).get_shape())


def _check_rank(t: Attribute, rank: int, what: str) -> tuple[int, ...]:
    shape = _shape(t, what)
    if len(shape) != rank:
        raise ShapeError(f"{what} must have rank {rank}, got {_tensor(t, what)}")
    return shape


def _axis(axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < rank:
        raise ShapeError(f"{what} {axis} out of range for rank {rank}")
    return axis % rank


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    """numpy / ONNX multidirectional broadcasting, with a readable error."""
    try:
        return tuple(np.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError:
        raise ShapeError(
            "shapes " + " and ".join(str(list(s)) for s in shapes) + " do not broadcast"
        ) from None


def conv_output_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
                     dilation: int) -> int:
    """Output length of a convolution along one axis."""
    return (size + pad_begin + pad_end - dilation * (kernel - 1) - 1) // stride + 1


def pool_output_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
                     dilation: int, ceil_mode: bool) -> int:
    """Output length of an ONNX pooling along one axis (the last window must start
    inside the input or the left padding when `ceil_mode` rounds up)."""
    span = size + pad_begin + pad_end - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def slice_length(start: int, end: int, step: int) -> int:
    """Elements selected by a normalised slice (`end == -1` with `step < 0` means
    "through index 0")."""
    if step > 0:
        return max(0, -(-(end - start) // step))
    return max(0, -(-(start - end) // -step))


# ---------------------------------------------------------------------------
# base classes
# ---------------------------------------------------------------------------
class NNOp(IRDLOperation):
    """Base of every `nn` op but `nn.constant`: result types are inferred."""

    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "operands attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_types(cls, operand_types: Sequence[Attribute],
                    props: Mapping[str, Attribute]) -> list[Attribute]:
        """Result types for these operand types and properties; raises ShapeError."""
        raise NotImplementedError(f"{cls.__name__} does not define infer_types")

    @classmethod
    def has_variadic_results(cls) -> bool:
        return False

    def verify_(self) -> None:
        """Quantized operands and results are checked as the float types they express;
        an op is either float or quantized throughout (integer results aside)."""
        operand_types = [o.type for o in self.operands]
        try:
            expected = self.infer_types([_expressed(t) for t in operand_types], self.properties)
        except ShapeError as e:
            raise VerifyException(f"{self.name}: {e}") from None
        actual = [r.type for r in self.results]
        quantized = [t for t in operand_types + actual if quantized_element(t) is not None]
        if quantized:
            for t in operand_types + actual:
                if isinstance(t, TensorType) and t.element_type == f32:
                    raise VerifyException(f"{self.name}: mixes quantized and f32 tensors; "
                                          f"convert with quant.quantize / quant.dequantize")
                q = quantized_element(t)
                if q is not None:
                    q.verify_for_shape(t.get_shape())
            actual = [_expressed(t) for t in actual]
        if list(expected) != actual:
            raise VerifyException(
                f"{self.name}: result type {', '.join(map(str, actual))} does not match "
                f"the inferred {', '.join(map(str, expected))}")


class UnaryOp(NNOp):
    """Elementwise op on one tensor; the result has the operand's type."""

    input = operand_def(AnyTensor)
    output = result_def(AnyTensor)

    def __init__(self, input: SSAValue, name: str | None = None):
        _init(self, [input], {}, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        return [_tensor(operand_types[0], "input")]


class BinaryOp(NNOp):
    """Elementwise op on two tensors with numpy broadcasting."""

    lhs = operand_def(AnyTensor)
    rhs = operand_def(AnyTensor)
    output = result_def(AnyTensor)

    def __init__(self, lhs: SSAValue, rhs: SSAValue, name: str | None = None):
        _init(self, [lhs, rhs], {}, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        a, b = (_tensor(t, "operand") for t in operand_types)
        if a.element_type != b.element_type:
            raise ShapeError(f"element types {a.element_type} and {b.element_type} differ")
        return [TensorType(a.element_type, broadcast_shapes(a.get_shape(), b.get_shape()))]


def _init(self: NNOp, operands: Sequence, props: Mapping[str, Attribute],
          name: str | None) -> None:
    """Shared body of the ops' `__init__`: infer the result types and build."""
    grouped = [[] if o is None else (list(o) if isinstance(o, Sequence) else [o])
               for o in operands]
    flat = [v for group in grouped for v in group]
    types = type(self).infer_types([v.type for v in flat], props)
    result_types = [types] if type(self).has_variadic_results() else list(types)
    IRDLOperation.__init__(self, operands=grouped, properties=dict(props),
                           result_types=result_types,
                           attributes={NAME_ATTR: StringAttr(name)} if name else {})


# ---------------------------------------------------------------------------
# constant
# ---------------------------------------------------------------------------
_HEX_THRESHOLD = 100


@irdl_op_definition
class ConstantOp(IRDLOperation):
    """A tensor literal. Weights are stored as raw bytes; large ones print as hex."""

    name = "nn.constant"
    value = prop_def(DenseIntOrFPElementsAttr)
    output = result_def(AnyTensor)
    traits = traits_def(Pure(), ConstantLike())

    def __init__(self, value: DenseIntOrFPElementsAttr | np.ndarray, name: str | None = None,
                 result_type: TensorType | None = None):
        """`result_type` may give the integer value a quantized element type."""
        if isinstance(value, np.ndarray):
            value = ndarray_to_dense(value)
        super().__init__(properties={"value": value},
                         result_types=[result_type if result_type is not None else value.type],
                         attributes={NAME_ATTR: StringAttr(name)} if name else {})

    def to_numpy(self) -> np.ndarray:
        return dense_to_ndarray(self.value)

    def verify_(self) -> None:
        value_type = self.value.type
        count = math.prod(value_type.get_shape())
        element_size = self.value.get_element_type().compile_time_size
        stored = len(self.value.data.data) // max(1, element_size)
        if stored not in (1, count):
            raise VerifyException(f"nn.constant: payload holds {stored} elements, "
                                  f"{value_type} needs {count}")
        result = self.output.type
        if result == value_type:
            return
        q = quantized_element(result)
        if (q is None or q.storage != value_type.get_element_type()
                or tuple(result.get_shape()) != tuple(value_type.get_shape())):
            raise VerifyException(f"nn.constant: result type {result} is neither the value's "
                                  f"type {value_type} nor a quantized type stored in it")
        q.verify_for_shape(result.get_shape())

    def print(self, printer: Printer) -> None:
        value = self.value
        data = value.data.data
        size = value.get_element_type().compile_time_size
        if len(data) > size and data == data[:size] * (len(data) // size):
            # a splat: print it as one element, as MLIR does
            value = DenseIntOrFPElementsAttr(value.type, BytesAttr(data[:size]))
        if math.prod(value.get_shape()) <= _HEX_THRESHOLD or len(value.data.data) == size:
            printer.print_string(" ")
            printer.print_attribute(value)
        else:  # fast path: bytes.hex() instead of xDSL's per-element unpacking
            printer.print_string(f' dense<"0x{data.hex().upper()}"> : ')
            printer.print_attribute(value.type)
        if self.output.type != value.type:
            printer.print_string(" as ")
            printer.print_attribute(self.output.type)
        printer.print_op_attributes(self.attributes)

    @classmethod
    def parse(cls, parser: Parser) -> ConstantOp:
        value = parser.parse_attribute()
        if not isinstance(value, DenseIntOrFPElementsAttr):
            parser.raise_error("nn.constant expects a dense<...> literal")
        result_type = None
        if parser.parse_optional_keyword("as") is not None:
            result_type = parser.parse_type()
            if not isinstance(result_type, TensorType):
                parser.raise_error("nn.constant: the type after 'as' must be a tensor type")
        attributes = parser.parse_optional_attr_dict()
        op = cls(value, result_type=result_type)
        op.attributes.update(attributes)
        return op


# ---------------------------------------------------------------------------
# convolution and matrix products
# ---------------------------------------------------------------------------
def _conv_props(strides: Sequence[int], pads: Sequence[int], dilations: Sequence[int],
                group: int) -> dict[str, Attribute]:
    return {"strides": i64_array(strides), "pads": i64_array(pads),
            "dilations": i64_array(dilations), "group": i64_attr(group)}


ACTIVATIONS = ("relu", "clip", "leaky_relu", "sigmoid", "silu", "hard_swish", "tanh")
"""Activations `nn-fuse-activation` can fold into conv2d / gemm. `activation_params`
holds [min, max] for clip and [alpha] for leaky_relu, nothing for the others."""

ACTIVATION_PARAM_COUNT = {"clip": 2, "leaky_relu": 1}


def activation_props(activation: str | None,
                     params: Sequence[float] = ()) -> dict[str, Attribute]:
    """Properties describing a fused activation (none when `activation` is None)."""
    if activation is None:
        return {}
    return {"activation": StringAttr(activation),
            "activation_params": DenseArrayBase.from_list(
                f32, [float(np.float32(p)) for p in params])}


def _check_activation(props: Mapping[str, Attribute]) -> None:
    if "activation" not in props:
        if "activation_params" in props:
            raise ShapeError("activation_params without activation")
        return
    act = str_of(props, "activation")
    if act not in ACTIVATIONS:
        raise ShapeError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {act}")
    params = props.get("activation_params")
    count = len(params.get_values()) if isinstance(params, DenseArrayBase) else 0
    if count != ACTIVATION_PARAM_COUNT.get(act, 0):
        raise ShapeError(f"activation {act} takes {ACTIVATION_PARAM_COUNT.get(act, 0)} "
                         f"parameters, got {count}")


def _check_conv_props(props: Mapping[str, Attribute]) -> tuple:
    strides, pads, dilations = ints(props, "strides"), ints(props, "pads"), ints(props, "dilations")
    group = int_of(props, "group")
    if len(strides) != 2 or len(dilations) != 2 or len(pads) != 4:
        raise ShapeError("strides and dilations need 2 values, pads 4")
    if min(strides) < 1 or min(dilations) < 1 or group < 1:
        raise ShapeError("strides, dilations and group must be >= 1")
    if min(pads) < 0:
        raise ShapeError(f"pads {list(pads)} must be >= 0")
    return strides, pads, dilations, group


@irdl_op_definition
class Conv2dOp(NNOp):
    """2-D convolution, NCHW input, OIHW weight ([O, C/group, KH, KW]), optional bias [O]."""

    name = "nn.conv2d"
    input = operand_def(AnyTensor)
    weight = operand_def(AnyTensor)
    bias = opt_operand_def(AnyTensor)
    output = result_def(AnyTensor)
    strides = prop_def(I64Array)
    pads = prop_def(I64Array)
    dilations = prop_def(I64Array)
    group = prop_def(I64Int)
    activation = opt_prop_def(StringAttr)
    activation_params = opt_prop_def(F32Array)

    def __init__(self, input: SSAValue, weight: SSAValue, bias: SSAValue | None = None, *,
                 strides: Sequence[int] = (1, 1), pads: Sequence[int] = (0, 0, 0, 0),
                 dilations: Sequence[int] = (1, 1), group: int = 1,
                 activation: str | None = None, activation_params: Sequence[float] = (),
                 name: str | None = None):
        props = _conv_props(strides, pads, dilations, group)
        props.update(activation_props(activation, activation_params))
        _init(self, [input, weight, bias], props, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        _check_activation(props)
        n, c, h, w = _check_rank(operand_types[0], 4, "input")
        o, ci, kh, kw = _check_rank(operand_types[1], 4, "weight")
        strides, pads, dilations, group = _check_conv_props(props)
        if c != ci * group:
            raise ShapeError(f"input has {c} channels but weight expects {ci} x group {group}")
        if o % group:
            raise ShapeError(f"{o} output channels are not divisible by group {group}")
        if len(operand_types) == 3 and _shape(operand_types[2], "bias") != (o,):
            raise ShapeError(f"bias must have shape [{o}], got {operand_types[2]}")
        oh = conv_output_size(h, kh, strides[0], pads[0], pads[2], dilations[0])
        ow = conv_output_size(w, kw, strides[1], pads[1], pads[3], dilations[1])
        if oh < 1 or ow < 1:
            raise ShapeError(f"kernel {kh}x{kw} does not fit the padded {h}x{w} input")
        return [TensorType(_tensor(operand_types[0], "input").element_type, [n, o, oh, ow])]


@irdl_op_definition
class ConvTranspose2dOp(NNOp):
    """2-D transposed convolution; weight [C, O/group, KH, KW], optional bias [O]."""

    name = "nn.conv_transpose2d"
    input = operand_def(AnyTensor)
    weight = operand_def(AnyTensor)
    bias = opt_operand_def(AnyTensor)
    output = result_def(AnyTensor)
    strides = prop_def(I64Array)
    pads = prop_def(I64Array)
    dilations = prop_def(I64Array)
    group = prop_def(I64Int)
    output_padding = prop_def(I64Array)

    def __init__(self, input: SSAValue, weight: SSAValue, bias: SSAValue | None = None, *,
                 strides: Sequence[int] = (1, 1), pads: Sequence[int] = (0, 0, 0, 0),
                 dilations: Sequence[int] = (1, 1), group: int = 1,
                 output_padding: Sequence[int] = (0, 0), name: str | None = None):
        props = _conv_props(strides, pads, dilations, group)
        props["output_padding"] = i64_array(output_padding)
        _init(self, [input, weight, bias], props, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        n, c, h, w = _check_rank(operand_types[0], 4, "input")
        ci, og, kh, kw = _check_rank(operand_types[1], 4, "weight")
        strides, pads, dilations, group = _check_conv_props(props)
        out_pad = ints(props, "output_padding")
        if c != ci:
            raise ShapeError(f"input has {c} channels but weight expects {ci}")
        if c % group:
            raise ShapeError(f"{c} input channels are not divisible by group {group}")
        o = og * group
        if len(operand_types) == 3 and _shape(operand_types[2], "bias") != (o,):
            raise ShapeError(f"bias must have shape [{o}], got {operand_types[2]}")
        oh = strides[0] * (h - 1) + out_pad[0] + dilations[0] * (kh - 1) + 1 - pads[0] - pads[2]
        ow = strides[1] * (w - 1) + out_pad[1] + dilations[1] * (kw - 1) + 1 - pads[1] - pads[3]
        if oh < 1 or ow < 1:
            raise ShapeError("pads remove the whole output")
        return [TensorType(_tensor(operand_types[0], "input").element_type, [n, o, oh, ow])]


@irdl_op_definition
class MatmulOp(NNOp):
    """Matrix product with numpy `matmul` semantics (batched, broadcast, 1-D operands)."""

    name = "nn.matmul"
    lhs = operand_def(AnyTensor)
    rhs = operand_def(AnyTensor)
    output = result_def(AnyTensor)

    def __init__(self, lhs: SSAValue, rhs: SSAValue, name: str | None = None):
        _init(self, [lhs, rhs], {}, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        a, b = _shape(operand_types[0]), _shape(operand_types[1])
        if not a or not b:
            raise ShapeError("matmul operands must have rank >= 1")
        a2 = (1,) + a if len(a) == 1 else a
        b2 = b + (1,) if len(b) == 1 else b
        if a2[-1] != b2[-2]:
            raise ShapeError(f"contracted dimensions differ: {list(a)} x {list(b)}")
        batch = broadcast_shapes(a2[:-2], b2[:-2])
        out = batch + (a2[-2], b2[-1])
        if len(a) == 1:
            out = out[:-2] + out[-1:]
        if len(b) == 1:
            out = out[:-1]
        return [TensorType(_tensor(operand_types[0], "lhs").element_type, out)]


@irdl_op_definition
class GemmOp(NNOp):
    """alpha * op(A) @ op(B) + beta * C, A and B 2-D, C broadcast to the result."""

    name = "nn.gemm"
    a = operand_def(AnyTensor)
    b = operand_def(AnyTensor)
    c = opt_operand_def(AnyTensor)
    output = result_def(AnyTensor)
    alpha = prop_def(F32Float)
    beta = prop_def(F32Float)
    trans_a = prop_def(Bool)
    trans_b = prop_def(Bool)
    activation = opt_prop_def(StringAttr)
    activation_params = opt_prop_def(F32Array)

    def __init__(self, a: SSAValue, b: SSAValue, c: SSAValue | None = None, *,
                 alpha: float = 1.0, beta: float = 1.0, trans_a: bool = False,
                 trans_b: bool = False, activation: str | None = None,
                 activation_params: Sequence[float] = (), name: str | None = None):
        props = {"alpha": f32_attr(alpha), "beta": f32_attr(beta),
                 "trans_a": bool_attr(trans_a), "trans_b": bool_attr(trans_b)}
        props.update(activation_props(activation, activation_params))
        _init(self, [a, b, c], props, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        _check_activation(props)
        a = _check_rank(operand_types[0], 2, "A")
        b = _check_rank(operand_types[1], 2, "B")
        m, k = a[::-1] if int_of(props, "trans_a") else a
        k2, n = b[::-1] if int_of(props, "trans_b") else b
        if k != k2:
            raise ShapeError(f"contracted dimensions differ: {k} and {k2}")
        if len(operand_types) == 3 and broadcast_shapes(_shape(operand_types[2]), (m, n)) != (m, n):
            raise ShapeError(f"C {operand_types[2]} does not broadcast to [{m}, {n}]")
        return [TensorType(_tensor(operand_types[0], "A").element_type, [m, n])]


# ---------------------------------------------------------------------------
# elementwise
# ---------------------------------------------------------------------------
@irdl_op_definition
class AddOp(BinaryOp):
    name = "nn.add"


@irdl_op_definition
class SubOp(BinaryOp):
    name = "nn.sub"


@irdl_op_definition
class MulOp(BinaryOp):
    name = "nn.mul"


@irdl_op_definition
class DivOp(BinaryOp):
    name = "nn.div"


@irdl_op_definition
class MaxOp(BinaryOp):
    name = "nn.max"


@irdl_op_definition
class MinOp(BinaryOp):
    name = "nn.min"


@irdl_op_definition
class PowOp(BinaryOp):
    name = "nn.pow"


@irdl_op_definition
class ReluOp(UnaryOp):
    name = "nn.relu"


@irdl_op_definition
class SigmoidOp(UnaryOp):
    name = "nn.sigmoid"


@irdl_op_definition
class TanhOp(UnaryOp):
    name = "nn.tanh"


@irdl_op_definition
class ExpOp(UnaryOp):
    name = "nn.exp"


@irdl_op_definition
class LogOp(UnaryOp):
    name = "nn.log"


@irdl_op_definition
class SqrtOp(UnaryOp):
    name = "nn.sqrt"


@irdl_op_definition
class AbsOp(UnaryOp):
    name = "nn.abs"


@irdl_op_definition
class NegOp(UnaryOp):
    name = "nn.neg"


@irdl_op_definition
class ErfOp(UnaryOp):
    name = "nn.erf"


@irdl_op_definition
class SiluOp(UnaryOp):
    """x * sigmoid(x)."""

    name = "nn.silu"


@irdl_op_definition
class HardSwishOp(UnaryOp):
    """x * clip(x / 6 + 0.5, 0, 1)."""

    name = "nn.hard_swish"


@irdl_op_definition
class GeluOp(UnaryOp):
    """GELU; `approximate` is "none" (erf) or "tanh"."""

    name = "nn.gelu"
    approximate = prop_def(StringAttr)

    def __init__(self, input: SSAValue, approximate: str = "none", name: str | None = None):
        _init(self, [input], {"approximate": StringAttr(approximate)}, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        if str_of(props, "approximate") not in ("none", "tanh"):
            raise ShapeError("approximate must be none or tanh, got "
                             f"{str_of(props, 'approximate')}")
        return super().infer_types(operand_types, props)


@irdl_op_definition
class LeakyReluOp(UnaryOp):
    """x if x >= 0 else alpha * x."""

    name = "nn.leaky_relu"
    alpha = prop_def(F32Float)

    def __init__(self, input: SSAValue, alpha: float = 0.01, name: str | None = None):
        _init(self, [input], {"alpha": f32_attr(alpha)}, name)


@irdl_op_definition
class HardSigmoidOp(UnaryOp):
    """max(0, min(1, alpha * x + beta))."""

    name = "nn.hard_sigmoid"
    alpha = prop_def(F32Float)
    beta = prop_def(F32Float)

    def __init__(self, input: SSAValue, alpha: float = 0.2, beta: float = 0.5,
                 name: str | None = None):
        _init(self, [input], {"alpha": f32_attr(alpha), "beta": f32_attr(beta)}, name)


@irdl_op_definition
class ClipOp(UnaryOp):
    """min(max(x, min), max); an absent bound is -inf / +inf."""

    name = "nn.clip"
    min = prop_def(F32Float)
    max = prop_def(F32Float)

    def __init__(self, input: SSAValue, min: float = -math.inf, max: float = math.inf,
                 name: str | None = None):
        _init(self, [input], {"min": f32_attr(min), "max": f32_attr(max)}, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        if float_of(props, "min") > float_of(props, "max"):
            raise ShapeError(f"min {float_of(props, 'min')} > max {float_of(props, 'max')}")
        return super().infer_types(operand_types, props)


@irdl_op_definition
class PReluOp(NNOp):
    """x if x >= 0 else slope * x; slope broadcasts to x (e.g. [C, 1, 1])."""

    name = "nn.prelu"
    input = operand_def(AnyTensor)
    slope = operand_def(AnyTensor)
    output = result_def(AnyTensor)

    def __init__(self, input: SSAValue, slope: SSAValue, name: str | None = None):
        _init(self, [input, slope], {}, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        x, s = _shape(operand_types[0]), _shape(operand_types[1])
        if broadcast_shapes(x, s) != x:
            raise ShapeError(f"slope {list(s)} does not broadcast to input {list(x)}")
        return [operand_types[0]]


# ---------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------
@irdl_op_definition
class SoftmaxOp(UnaryOp):
    """Softmax along `axis`."""

    name = "nn.softmax"
    axis = prop_def(I64Int)

    def __init__(self, input: SSAValue, axis: int = -1, name: str | None = None):
        _init(self, [input], {"axis": i64_attr(axis)}, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        _axis(int_of(props, "axis"), len(_shape(operand_types[0])))
        return super().infer_types(operand_types, props)


@irdl_op_definition
class BatchNormOp(NNOp):
    """Inference batch normalisation over channel axis 1; parameters have shape [C]."""

    name = "nn.batch_norm"
    input = operand_def(AnyTensor)
    scale = operand_def(AnyTensor)
    bias = operand_def(AnyTensor)
    mean = operand_def(AnyTensor)
    var = operand_def(AnyTensor)
    output = result_def(AnyTensor)
    epsilon = prop_def(F32Float)

    def __init__(self, input: SSAValue, scale: SSAValue, bias: SSAValue, mean: SSAValue,
                 var: SSAValue, epsilon: float = 1e-5, name: str | None = None):
        _init(self, [input, scale, bias, mean, var], {"epsilon": f32_attr(epsilon)}, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        x = _shape(operand_types[0], "input")
        if len(x) < 2:
            raise ShapeError("input must have rank >= 2")
        for t, what in zip(operand_types[1:], ("scale", "bias", "mean", "var"), strict=True):
            if _shape(t, what) != (x[1],):
                raise ShapeError(f"{what} must have shape [{x[1]}], got {t}")
        return [operand_types[0]]


@irdl_op_definition
class LayerNormOp(NNOp):
    """Normalise over axes [axis, rank), then scale (and shift) by broadcast parameters."""

    name = "nn.layer_norm"
    input = operand_def(AnyTensor)
    scale = operand_def(AnyTensor)
    bias = opt_operand_def(AnyTensor)
    output = result_def(AnyTensor)
    axis = prop_def(I64Int)
    epsilon = prop_def(F32Float)

    def __init__(self, input: SSAValue, scale: SSAValue, bias: SSAValue | None = None, *,
                 axis: int = -1, epsilon: float = 1e-5, name: str | None = None):
        _init(self, [input, scale, bias], {"axis": i64_attr(axis), "epsilon": f32_attr(epsilon)},
              name)

    @classmethod
    def infer_types(cls, operand_types, props):
        x = _shape(operand_types[0], "input")
        _axis(int_of(props, "axis"), len(x))
        for t in operand_types[1:]:
            if broadcast_shapes(x, _shape(t)) != x:
                raise ShapeError(f"{t} does not broadcast to the input {list(x)}")
        return [operand_types[0]]


# ---------------------------------------------------------------------------
# pooling and reductions
# ---------------------------------------------------------------------------
def _pool_shape(operand_types, props) -> list[Attribute]:
    n, c, h, w = _check_rank(operand_types[0], 4, "input")
    kernel, strides, pads = ints(props, "kernel"), ints(props, "strides"), ints(props, "pads")
    dilations = ints(props, "dilations") if "dilations" in props else (1, 1)
    ceil_mode = bool(int_of(props, "ceil_mode"))
    if len(kernel) != 2 or len(strides) != 2 or len(pads) != 4 or len(dilations) != 2:
        raise ShapeError("kernel, strides and dilations need 2 values, pads 4")
    if min(kernel + strides + dilations) < 1 or min(pads) < 0:
        raise ShapeError("kernel, strides and dilations must be >= 1 and pads >= 0")
    if pads[0] >= kernel[0] or pads[1] >= kernel[1] or pads[2] >= kernel[0] or pads[3] >= kernel[1]:
        raise ShapeError(f"pads {list(pads)} must be smaller than the kernel {list(kernel)}")
    oh = pool_output_size(h, kernel[0], strides[0], pads[0], pads[2], dilations[0], ceil_mode)
    ow = pool_output_size(w, kernel[1], strides[1], pads[1], pads[3], dilations[1], ceil_mode)
    if oh < 1 or ow < 1:
        raise ShapeError(f"kernel {list(kernel)} does not fit the padded {h}x{w} input")
    return [TensorType(_tensor(operand_types[0], "input").element_type, [n, c, oh, ow])]


@irdl_op_definition
class MaxPool2dOp(UnaryOp):
    """2-D max pooling (ONNX MaxPool); padding never wins the max."""

    name = "nn.max_pool2d"
    kernel = prop_def(I64Array)
    strides = prop_def(I64Array)
    pads = prop_def(I64Array)
    dilations = prop_def(I64Array)
    ceil_mode = prop_def(Bool)

    def __init__(self, input: SSAValue, kernel: Sequence[int], *, strides: Sequence[int] = (1, 1),
                 pads: Sequence[int] = (0, 0, 0, 0), dilations: Sequence[int] = (1, 1),
                 ceil_mode: bool = False, name: str | None = None):
        props = {"kernel": i64_array(kernel), "strides": i64_array(strides),
                 "pads": i64_array(pads), "dilations": i64_array(dilations),
                 "ceil_mode": bool_attr(ceil_mode)}
        _init(self, [input], props, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        return _pool_shape(operand_types, props)


@irdl_op_definition
class AvgPool2dOp(UnaryOp):
    """2-D average pooling (ONNX AveragePool); `count_include_pad` picks the divisor."""

    name = "nn.avg_pool2d"
    kernel = prop_def(I64Array)
    strides = prop_def(I64Array)
    pads = prop_def(I64Array)
    ceil_mode = prop_def(Bool)
    count_include_pad = prop_def(Bool)

    def __init__(self, input: SSAValue, kernel: Sequence[int], *, strides: Sequence[int] = (1, 1),
                 pads: Sequence[int] = (0, 0, 0, 0), ceil_mode: bool = False,
                 count_include_pad: bool = False, name: str | None = None):
        props = {"kernel": i64_array(kernel), "strides": i64_array(strides),
                 "pads": i64_array(pads), "ceil_mode": bool_attr(ceil_mode),
                 "count_include_pad": bool_attr(count_include_pad)}
        _init(self, [input], props, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        return _pool_shape(operand_types, props)


class GlobalPoolOp(UnaryOp):
    @classmethod
    def infer_types(cls, operand_types, props):
        shape = _shape(operand_types[0], "input")
        if len(shape) < 3:
            raise ShapeError("input must have rank >= 3")
        out = shape[:2] + (1,) * (len(shape) - 2)
        return [TensorType(_tensor(operand_types[0], "input").element_type, out)]


@irdl_op_definition
class GlobalAvgPoolOp(GlobalPoolOp):
    """Mean over all spatial axes, kept as size-1 axes."""

    name = "nn.global_avg_pool"


@irdl_op_definition
class GlobalMaxPoolOp(GlobalPoolOp):
    """Max over all spatial axes, kept as size-1 axes."""

    name = "nn.global_max_pool"


class ReduceOp(UnaryOp):
    """Reduction over `axes` (non-negative, sorted); `keepdims` keeps them as size 1."""

    axes = prop_def(I64Array)
    keepdims = prop_def(Bool)

    def __init__(self, input: SSAValue, axes: Sequence[int], keepdims: bool = True,
                 name: str | None = None):
        rank = len(_shape(input.type))
        norm = sorted({_axis(a, rank) for a in axes}) if rank else []
        _init(self, [input], {"axes": i64_array(norm), "keepdims": bool_attr(keepdims)}, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        shape = _shape(operand_types[0], "input")
        axes = ints(props, "axes")
        if list(axes) != sorted(set(axes)) or any(not 0 <= a < len(shape) for a in axes):
            raise ShapeError(f"axes {list(axes)} must be sorted, unique and in [0, {len(shape)})")
        if int_of(props, "keepdims"):
            out = tuple(1 if i in axes else d for i, d in enumerate(shape))
        else:
            out = tuple(d for i, d in enumerate(shape) if i not in axes)
        return [TensorType(_tensor(operand_types[0], "input").element_type, out)]


@irdl_op_definition
class ReduceMeanOp(ReduceOp):
    name = "nn.reduce_mean"


@irdl_op_definition
class ReduceMaxOp(ReduceOp):
    name = "nn.reduce_max"


@irdl_op_definition
class ReduceSumOp(ReduceOp):
    name = "nn.reduce_sum"


@irdl_op_definition
class ArgMaxOp(UnaryOp):
    """Index (i64) of the maximum along `axis`; ties resolve to the first index, or the
    last with `select_last_index`."""

    name = "nn.argmax"
    axis = prop_def(I64Int)
    keepdims = prop_def(Bool)
    select_last_index = prop_def(Bool)

    def __init__(self, input: SSAValue, axis: int = 0, keepdims: bool = True,
                 select_last_index: bool = False, name: str | None = None):
        rank = len(_shape(input.type))
        props = {"axis": i64_attr(_axis(axis, rank)), "keepdims": bool_attr(keepdims),
                 "select_last_index": bool_attr(select_last_index)}
        _init(self, [input], props, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        shape = _shape(operand_types[0], "input")
        axis = int_of(props, "axis")
        if not 0 <= axis < len(shape):
            raise ShapeError(f"axis {axis} must be in [0, {len(shape)})")
        if int_of(props, "keepdims"):
            out = shape[:axis] + (1,) + shape[axis + 1:]
        else:
            out = shape[:axis] + shape[axis + 1:]
        return [TensorType(i64, out)]


# ---------------------------------------------------------------------------
# data movement
# ---------------------------------------------------------------------------
@irdl_op_definition
class ConcatOp(NNOp):
    """Concatenation along `axis` (non-negative)."""

    name = "nn.concat"
    inputs = var_operand_def(AnyTensor)
    output = result_def(AnyTensor)
    axis = prop_def(I64Int)

    def __init__(self, inputs: Sequence[SSAValue], axis: int, name: str | None = None):
        rank = len(_shape(inputs[0].type)) if inputs else 1
        _init(self, [list(inputs)], {"axis": i64_attr(_axis(axis, rank))}, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        if not operand_types:
            raise ShapeError("needs at least one input")
        shapes = [_shape(t) for t in operand_types]
        first = _tensor(operand_types[0], "input")
        axis = int_of(props, "axis")
        if not 0 <= axis < len(shapes[0]):
            raise ShapeError(f"axis {axis} must be in [0, {len(shapes[0])})")
        for t, s in zip(operand_types, shapes, strict=True):
            if _tensor(t, "input").element_type != first.element_type:
                raise ShapeError("inputs have different element types")
            if len(s) != len(shapes[0]) or any(
                    a != b for i, (a, b) in enumerate(zip(s, shapes[0], strict=True)) if i != axis):
                raise ShapeError(f"input {list(s)} does not match {list(shapes[0])} "
                                 f"off axis {axis}")
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return [TensorType(first.element_type, out)]


@irdl_op_definition
class SplitOp(NNOp):
    """Split along `axis` into pieces of the given `sizes`."""

    name = "nn.split"
    input = operand_def(AnyTensor)
    outputs = var_result_def(AnyTensor)
    axis = prop_def(I64Int)
    sizes = prop_def(I64Array)

    def __init__(self, input: SSAValue, axis: int, sizes: Sequence[int], name: str | None = None):
        rank = len(_shape(input.type))
        _init(self, [input], {"axis": i64_attr(_axis(axis, rank)), "sizes": i64_array(sizes)}, name)

    @classmethod
    def has_variadic_results(cls) -> bool:
        return True

    @classmethod
    def infer_types(cls, operand_types, props):
        shape = _shape(operand_types[0], "input")
        axis, sizes = int_of(props, "axis"), ints(props, "sizes")
        if not 0 <= axis < len(shape):
            raise ShapeError(f"axis {axis} must be in [0, {len(shape)})")
        if sum(sizes) != shape[axis] or min(sizes, default=0) < 0:
            raise ShapeError(f"sizes {list(sizes)} do not add up to dimension {shape[axis]}")
        el = _tensor(operand_types[0], "input").element_type
        return [TensorType(el, shape[:axis] + (s,) + shape[axis + 1:]) for s in sizes]


@irdl_op_definition
class SliceOp(UnaryOp):
    """Strided slice with one (start, end, step) per axis, already clamped to the
    dimension; with a negative step, `end == -1` means "through index 0"."""

    name = "nn.slice"
    starts = prop_def(I64Array)
    ends = prop_def(I64Array)
    steps = prop_def(I64Array)

    def __init__(self, input: SSAValue, starts: Sequence[int], ends: Sequence[int],
                 steps: Sequence[int], name: str | None = None):
        props = {"starts": i64_array(starts), "ends": i64_array(ends), "steps": i64_array(steps)}
        _init(self, [input], props, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        shape = _shape(operand_types[0], "input")
        starts, ends, steps = ints(props, "starts"), ints(props, "ends"), ints(props, "steps")
        if not len(starts) == len(ends) == len(steps) == len(shape):
            raise ShapeError(f"starts, ends and steps need {len(shape)} values each")
        out = []
        for d, s, e, st in zip(shape, starts, ends, steps, strict=True):
            if st == 0:
                raise ShapeError("steps must be non-zero")
            if not (0 <= s <= d and -1 <= e <= d) or (st > 0 and s == d and e != d):
                raise ShapeError(f"slice {s}:{e}:{st} is not normalised for dimension {d}")
            out.append(slice_length(s, e, st))
        return [TensorType(_tensor(operand_types[0], "input").element_type, out)]


@irdl_op_definition
class ReshapeOp(UnaryOp):
    """Row-major reshape to `shape` (all dimensions explicit)."""

    name = "nn.reshape"
    shape = prop_def(I64Array)

    def __init__(self, input: SSAValue, shape: Sequence[int], name: str | None = None):
        _init(self, [input], {"shape": i64_array(shape)}, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        src = _shape(operand_types[0], "input")
        dst = ints(props, "shape")
        if min(dst, default=0) < 0 or math.prod(dst) != math.prod(src):
            raise ShapeError(f"cannot reshape {list(src)} to {list(dst)}")
        return [TensorType(_tensor(operand_types[0], "input").element_type, dst)]


@irdl_op_definition
class TransposeOp(UnaryOp):
    """Axis permutation: output axis i is input axis perm[i]."""

    name = "nn.transpose"
    perm = prop_def(I64Array)

    def __init__(self, input: SSAValue, perm: Sequence[int], name: str | None = None):
        _init(self, [input], {"perm": i64_array(perm)}, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        shape = _shape(operand_types[0], "input")
        perm = ints(props, "perm")
        if sorted(perm) != list(range(len(shape))):
            raise ShapeError(f"perm {list(perm)} is not a permutation of {len(shape)} axes")
        el = _tensor(operand_types[0], "input").element_type
        return [TensorType(el, [shape[p] for p in perm])]


PAD_MODES = ("constant", "reflect", "edge")


@irdl_op_definition
class PadOp(UnaryOp):
    """Pad (or crop, with negative amounts); pads are all begins, then all ends."""

    name = "nn.pad"
    pads = prop_def(I64Array)
    mode = prop_def(StringAttr)
    value = prop_def(F32Float)

    def __init__(self, input: SSAValue, pads: Sequence[int], mode: str = "constant",
                 value: float = 0.0, name: str | None = None):
        props = {"pads": i64_array(pads), "mode": StringAttr(mode), "value": f32_attr(value)}
        _init(self, [input], props, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        shape = _shape(operand_types[0], "input")
        pads, mode = ints(props, "pads"), str_of(props, "mode")
        if mode not in PAD_MODES:
            raise ShapeError(f"mode must be one of {', '.join(PAD_MODES)}, got {mode}")
        if len(pads) != 2 * len(shape):
            raise ShapeError(f"pads need {2 * len(shape)} values, got {len(pads)}")
        begins, ends = pads[:len(shape)], pads[len(shape):]
        out = [d + b + e for d, b, e in zip(shape, begins, ends, strict=True)]
        if min(out, default=1) < 0:
            raise ShapeError(f"pads {list(pads)} crop more than the input {list(shape)}")
        if mode == "reflect" and any(
                max(b, e) >= d for d, b, e in zip(shape, pads[:len(shape)], pads[len(shape):],
                                                  strict=True) if b or e):
            raise ShapeError("reflect padding must be smaller than the padded dimension")
        el = _tensor(operand_types[0], "input").element_type
        return [TensorType(el, out)]


RESIZE_MODES = ("nearest", "linear")
COORDINATE_MODES = ("half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel",
                    "tf_half_pixel_for_nearest")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


@irdl_op_definition
class ResizeOp(UnaryOp):
    """ONNX Resize to `sizes`; `scales` (output/input per axis, as the model gave them)
    drive the coordinate transform."""

    name = "nn.resize"
    sizes = prop_def(I64Array)
    scales = prop_def(F32Array)
    mode = prop_def(StringAttr)
    coordinate_transformation_mode = prop_def(StringAttr)
    nearest_mode = prop_def(StringAttr)

    def __init__(self, input: SSAValue, sizes: Sequence[int], scales: Sequence[float], *,
                 mode: str = "nearest", coordinate_transformation_mode: str = "half_pixel",
                 nearest_mode: str = "round_prefer_floor", name: str | None = None):
        props = {"sizes": i64_array(sizes),
                 "scales": DenseArrayBase.from_list(f32, [float(np.float32(s)) for s in scales]),
                 "mode": StringAttr(mode),
                 "coordinate_transformation_mode": StringAttr(coordinate_transformation_mode),
                 "nearest_mode": StringAttr(nearest_mode)}
        _init(self, [input], props, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        shape = _shape(operand_types[0], "input")
        sizes = ints(props, "sizes")
        scales_attr = props["scales"]
        assert isinstance(scales_attr, DenseArrayBase)
        scales = scales_attr.get_values()
        for key, allowed in (("mode", RESIZE_MODES),
                             ("coordinate_transformation_mode", COORDINATE_MODES),
                             ("nearest_mode", NEAREST_MODES)):
            if str_of(props, key) not in allowed:
                raise ShapeError(f"{key} must be one of {', '.join(allowed)}, "
                                 f"got {str_of(props, key)}")
        if len(sizes) != len(shape) or len(scales) != len(shape):
            raise ShapeError(f"sizes and scales need {len(shape)} values each")
        if min(sizes, default=1) < 1 or min(scales, default=1.0) <= 0:
            raise ShapeError("sizes and scales must be positive")
        return [TensorType(_tensor(operand_types[0], "input").element_type, sizes)]


@irdl_op_definition
class CastOp(UnaryOp):
    """Element type conversion to `to` (float to integer truncates toward zero)."""

    name = "nn.cast"
    to = prop_def(base(TypeAttribute))

    def __init__(self, input: SSAValue, to: Attribute, name: str | None = None):
        _init(self, [input], {"to": to}, name)

    @classmethod
    def infer_types(cls, operand_types, props):
        to = props["to"]
        if to not in ELEMENT_TO_NUMPY:
            raise ShapeError(f"cannot cast to {to}")
        return [TensorType(to, _shape(operand_types[0], "input"))]


NN = Dialect(
    "nn",
    [
        ConstantOp, Conv2dOp, ConvTranspose2dOp, MatmulOp, GemmOp,
        AddOp, SubOp, MulOp, DivOp, MaxOp, MinOp, PowOp,
        ReluOp, SigmoidOp, TanhOp, ExpOp, LogOp, SqrtOp, AbsOp, NegOp, ErfOp, SiluOp,
        HardSwishOp, GeluOp, LeakyReluOp, HardSigmoidOp, ClipOp, PReluOp,
        SoftmaxOp, BatchNormOp, LayerNormOp,
        MaxPool2dOp, AvgPool2dOp, GlobalAvgPoolOp, GlobalMaxPoolOp,
        ReduceMeanOp, ReduceMaxOp, ReduceSumOp, ArgMaxOp,
        ConcatOp, SplitOp, SliceOp, ReshapeOp, TransposeOp, PadOp, ResizeOp, CastOp,
    ],
    [],
)
