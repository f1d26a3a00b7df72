"""ONNX frontend, pre-quantized models: QuantizeLinear / DequantizeLinear (opsets 10 to
21, per tensor or per axis), QLinearConv and QLinearMatMul, so that a model quantized
elsewhere (onnxruntime's `quantize_static`, QDQ or QOperator format) keeps its scales and
zero points instead of being calibrated again. The IR is the one of docs/quantization.md:

  * QuantizeLinear -> `quant.quantize` to a `!quant.uniform` type;
  * DequantizeLinear -> `quant.dequantize`; of a constant integer tensor (a QDQ weight or
    bias) it is never folded: the integers become an `nn.constant ... as
    tensor<..x!quant.uniform<..>>` which the dequantize reads;
  * QLinearConv -> a quantized `nn.conv2d` (symmetric weights, i32 bias at s_x * s_w[o]),
    QLinearMatMul -> a quantized `nn.matmul`.

Storage is signed: an unsigned ONNX tensor (uint8, uint16) is stored with its values and
zero points lowered by 2**(bits - 1), which stands for the same reals. A tensor of integer
codes in the IR is therefore always typed by the quantization its producer gave it, and a
node that reads it with other parameters is rejected (nothing reinterprets codes).
Integers no QuantizeLinear produced (an integer model input) are read in float:
DequantizeLinear becomes `(cast(x) - zero_point) * scale`, and a QLinear op quantizes
that again (which gives back the same codes).

The converters register themselves in the float frontend's dispatch table on import.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from onnx import TensorProto, helper
from xdsl.dialects.builtin import StringAttr, TensorType, f32
from xdsl.ir import Operation, SSAValue

from rkc.dialects import nn, quant
from rkc.dialects.quant import UniformQuantizedType, quantized_element
from rkc.frontend.onnx import (
    CONVERTERS,
    UNFOLDED,
    Node,
    Value,
    _axis,
    _conv_window,
    _Importer,
    _pads,
    _shape_of,
    _spatial2d,
)

STORAGE: dict[np.dtype, tuple[int, int]] = {
    np.dtype(np.int8): (8, 0), np.dtype(np.uint8): (8, 1 << 7),
    np.dtype(np.int16): (16, 0), np.dtype(np.uint16): (16, 1 << 15),
    np.dtype(np.int32): (32, 0),
}
"""ONNX integer type -> (storage bits, offset subtracted from its values and zero points)."""


class Quant(NamedTuple):
    """A quantized tensor's IR element type and its ONNX integer type."""

    type: UniformQuantizedType
    dtype: np.dtype

    @property
    def offset(self) -> int:
        return STORAGE[self.dtype][1]


# ---------------------------------------------------------------------------
# quantization parameters
# ---------------------------------------------------------------------------
def _storage(node: Node, dtype: np.dtype) -> tuple[int, int]:
    try:
        return STORAGE[np.dtype(dtype)]
    except (KeyError, TypeError):
        raise node.error(f"quantized type {dtype} is not supported (int8, uint8, int16, "
                         "uint16, int32)") from None


def _params(im: _Importer, node: Node, scale_index: int, shape: tuple[int, ...] | None,
            dtype: np.dtype, axis: int | None = None) -> Quant:
    """The quantization the node's scale (input `scale_index`) and zero point (the next
    input, default 0) give a tensor of `shape` held in ONNX type `dtype`; per tensor when
    the scale has one element, else along `axis` (default: the node's attribute). A
    `shape` of None asks for per-tensor parameters."""
    if node.attr("block_size", 0):
        raise node.error("blocked quantization (block_size) is not supported")
    scale = im.const(node, scale_index, "scale")
    if scale is None:
        raise node.error(f"input {scale_index} (scale) is missing")
    if scale.dtype != np.float32:
        raise node.error(f"scale of type {scale.dtype} is not supported (float32 only)")
    zero_point = im.const(node, scale_index + 1, "zero point")
    if zero_point is None:
        zero_point = np.zeros(scale.shape, dtype)
    elif zero_point.dtype != dtype:
        raise node.error(f"zero point of type {zero_point.dtype} differs from the data's "
                         f"{np.dtype(dtype)}")
    if zero_point.size != scale.size:
        raise node.error(f"{zero_point.size} zero points for {scale.size} scales")
    bits, offset = _storage(node, dtype)
    scales = [float(s) for s in scale.reshape(-1)]
    zps = [int(z) - offset for z in zero_point.reshape(-1)]
    if not all(0 < s < np.inf for s in scales):
        raise node.error(f"scales must be positive and finite, got {min(scales)}")
    if scale.size == 1:
        return Quant(UniformQuantizedType.per_tensor(scales[0], zps[0], bits), np.dtype(dtype))
    if shape is None:
        raise node.error(f"input {scale_index} (scale) must be a scalar (per-tensor)")
    axis = _axis(node, node.attr("axis", 1) if axis is None else axis, len(shape))
    if scale.ndim != 1 or shape[axis] != scale.size:
        raise node.error(f"scale of shape {list(scale.shape)} does not fit axis {axis} of "
                         f"shape {list(shape)}")
    return Quant(UniformQuantizedType.per_axis(scales, zps, axis, bits), np.dtype(dtype))


def _zero_point_dtype(im: _Importer, node: Node, index: int) -> np.dtype:
    """The ONNX integer type of a QLinear* operand, given by its (required) zero point."""
    zero_point = im.const(node, index, "zero point")
    if zero_point is None:
        raise node.error(f"input {index} (zero point) is missing")
    return zero_point.dtype


def _operand_params(im: _Importer, node: Node, index: int, axis: int | None = None
                    ) -> Quant:
    """The quantization the two inputs after input `index` give it (QLinear* ops); per
    tensor unless `axis` is given."""
    shape = None if axis is None else _shape_of(im.get(node.input(index), node))
    return _params(im, node, index + 1, shape, _zero_point_dtype(im, node, index + 2), axis)


# ---------------------------------------------------------------------------
# quantized values
# ---------------------------------------------------------------------------
def _quantized_constant(node: Node, name: str, array: np.ndarray, q: Quant) -> SSAValue:
    """An integer initializer as an nn.constant of quantized type (unsigned shifted)."""
    if array.dtype != q.dtype:
        raise node.error(f"'{name}' has type {array.dtype}, its zero point {q.dtype}")
    stored = np.asarray(array.astype(np.int64) - q.offset).astype(q.type.storage_dtype)
    return _constant(stored, name, q.type)


def _constant(array: np.ndarray, name: str | None,
              element: UniformQuantizedType | None = None) -> SSAValue:
    """An nn.constant, of quantized `element` type if given."""
    array = np.asarray(array)
    value = nn.ndarray_to_dense(array)
    result = None if element is None else TensorType(element, array.shape)
    return nn.ConstantOp(value, name=name, result_type=result).output


def _quantized(im: _Importer, node: Node, index: int, q: Quant) -> SSAValue:
    """Input `index` as a value of quantized type `q`: a constant is converted; a computed
    value must already carry exactly that quantization. Plain integers (a model input)
    are dequantized in float and quantized again, which gives back the same codes."""
    name = node.input(index)
    value = im.get(name, node)
    if isinstance(value, np.ndarray):
        return _quantized_constant(node, name, value, q)
    found = quantized_element(value.type)
    if found is None:
        if nn.numpy_dtype(value.type.element_type) != q.dtype:
            raise node.error(f"input '{name}' has type {value.type}, its zero point {q.dtype}")
        real = _dequantize_integers(value, q, node).results[0]
        return quant.QuantizeOp(real, TensorType(q.type, _shape_of(value))).output
    if found != q.type:
        raise node.error(f"input '{name}' is quantized as {found}, the node reads it as "
                         f"{q.type}; reinterpreting integer codes is not supported")
    return value


def _named(op: Operation, node: Node) -> Operation:
    op.attributes[nn.NAME_ATTR] = StringAttr(node.name)
    return op


def _with_result_type(op: Operation, element: UniformQuantizedType) -> Operation:
    """`op` (just built, its result typed like its first operand) rebuilt with a result
    of quantized element type `element`."""
    result = op.results[0].type
    assert isinstance(result, TensorType)
    operands, props, attrs = list(op.operands), dict(op.properties), dict(op.attributes)
    op.detach()
    op.erase()
    return type(op).create(operands=operands, properties=props, attributes=attrs,
                           result_types=[TensorType(element, result.get_shape())])


# ---------------------------------------------------------------------------
# converters
# ---------------------------------------------------------------------------
def _quantize_linear(im: _Importer, node: Node) -> Operation:
    x = im.operand(node, 0)
    assert isinstance(x.type, TensorType)
    if x.type.element_type != f32:
        raise node.error(f"input of type {x.type} is not supported (f32 only)")
    zero_point = im.const(node, 2, "zero point")
    dtype = zero_point.dtype if zero_point is not None else np.dtype(
        helper.tensor_dtype_to_np_dtype(node.attr("output_dtype", 0) or TensorProto.UINT8))
    q = _params(im, node, 1, _shape_of(x), dtype)
    return _named(quant.QuantizeOp(x, TensorType(q.type, x.type.get_shape())), node)


def _data_dtype(im: _Importer, node: Node, x: Value) -> np.dtype:
    """The ONNX integer type of DequantizeLinear's input: its zero point's, the constant's,
    or (no zero point given) the reading that matches the producer's quantization."""
    zero_point = im.const(node, 2, "zero point")
    if zero_point is not None:
        return zero_point.dtype
    if isinstance(x, np.ndarray):
        return x.dtype
    found = quantized_element(x.type)
    if found is None:
        return nn.numpy_dtype(x.type.element_type)
    candidates = [d for d, (bits, _) in STORAGE.items() if bits == found.bits]
    for dtype in candidates:
        if _params(im, node, 1, _shape_of(x), dtype).type == found:
            return dtype
    return candidates[0]


def _dequantize_linear(im: _Importer, node: Node) -> Operation:
    x = im.get(node.input(0), node)
    shape = _shape_of(x)
    q = _params(im, node, 1, shape, _data_dtype(im, node, x))
    if isinstance(x, SSAValue) and quantized_element(x.type) is None:
        return _dequantize_integers(x, q, node)
    value = _quantized(im, node, 0, q)
    return _named(quant.DequantizeOp(value, TensorType(f32, shape)), node)


def _dequantize_integers(x: SSAValue, q: Quant, node: Node) -> Operation:
    """(cast(x) - zero_point) * scale in f32, for integers of no known quantization."""
    rank = len(_shape_of(x))
    scales, zps = q.type.broadcast_parameters(rank)
    real = nn.CastOp(x, f32, name=node.name).output
    zero_point = _constant(np.asarray(zps + q.offset, np.float32), node.input(2) or None)
    centred = nn.SubOp(real, zero_point, name=node.name).output
    return nn.MulOp(centred, _constant(scales.astype(np.float32), node.input(1)),
                    name=node.name)


def _symmetric_weight(node: Node, name: str, w: np.ndarray, q: Quant) -> SSAValue:
    """A QLinearConv weight as a symmetric quantized constant. Non-zero zero points are
    folded into the values when `w - zero_point` fits the storage, else rejected."""
    if not any(q.type.zero_points):
        return _quantized_constant(node, name, w, q)
    _, zps = q.type.broadcast_parameters(w.ndim)
    centred = np.asarray(w.astype(np.int64) - q.offset - zps)
    if centred.min() < q.type.qmin or centred.max() > q.type.qmax:
        onnx_zps = sorted({z + q.offset for z in q.type.zero_points})
        raise node.error(f"asymmetric weights (zero point {onnx_zps[0]}"
                         f"{', ...' if len(onnx_zps) > 1 else ''}) are not supported; "
                         "weights must be symmetric (zero point 0)")
    symmetric = UniformQuantizedType(q.type.storage, q.type.scales, [0] * len(zps.reshape(-1)),
                                     q.type.quantized_axis)
    return _constant(centred.astype(q.type.storage_dtype), name, symmetric)


def _qlinear_conv(im: _Importer, node: Node) -> Operation:
    """QLinearConv (2-D) -> quantized nn.conv2d."""
    x_q = _operand_params(im, node, 0)
    x = _quantized(im, node, 0, x_q)
    w_array = im.const(node, 3, "weight")
    if w_array is None:
        raise node.error("input 3 (weight) is missing")
    w_q = _operand_params(im, node, 3, axis=0)
    w = _symmetric_weight(node, node.input(3), w_array, w_q)
    y_q = _params(im, node, 6, None, _zero_point_dtype(im, node, 7))
    bias = None
    if node.input(8):
        b = im.const(node, 8, "bias")
        assert b is not None  # input 8 is named
        out_channels = w_array.shape[0]
        s_w = np.broadcast_to(np.asarray(w_q.type.scales), (out_channels,))
        s_b = [x_q.type.scale * s for s in s_w]  # exact in f64 (f32 products)
        b_q = Quant(UniformQuantizedType.per_axis(s_b, [0] * out_channels, 0, 32),
                    np.dtype(np.int32))
        if b.shape != (out_channels,):
            raise node.error(f"bias must have shape [{out_channels}], got {list(b.shape)}")
        bias = _quantized_constant(node, node.input(8), b, b_q)
    shape = _spatial2d(node, x)
    kernel, strides, dilations = _conv_window(node, w)
    conv = nn.Conv2dOp(x, w, bias, strides=strides, dilations=dilations,
                       pads=_pads(node, shape[2:], kernel, strides, dilations),
                       group=node.attr("group", 1), name=node.name)
    return _with_result_type(conv, y_q.type)


def _qlinear_matmul(im: _Importer, node: Node) -> Operation:
    """QLinearMatMul -> quantized nn.matmul (a per tensor; b per tensor, or per column
    when constant)."""
    a = _quantized(im, node, 0, _operand_params(im, node, 0))
    b_value = im.get(node.input(3), node)
    b_rank = len(_shape_of(b_value))
    b_q = _operand_params(im, node, 3, axis=b_rank - 1)
    if b_q.type.quantized_axis is not None and (b_rank < 2 or isinstance(b_value, SSAValue)):
        raise node.error("b may be quantized per column only when it is a constant matrix")
    b = _quantized(im, node, 3, b_q)
    y_q = _params(im, node, 6, None, _zero_point_dtype(im, node, 7))
    return _with_result_type(nn.MatmulOp(a, b, name=node.name), y_q.type)


CONVERTERS.update({
    "QuantizeLinear": _quantize_linear, "DequantizeLinear": _dequantize_linear,
    "QLinearConv": _qlinear_conv, "QLinearMatMul": _qlinear_matmul,
})
UNFOLDED.add("DequantizeLinear")
