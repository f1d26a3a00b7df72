"""The `quant` dialect: uniformly quantized element types and the ops that change them.

A quantized tensor stores integers `q` of a storage type and stands for the real values
`(q - zero_point) * scale`. The element type follows MLIR's `!quant.uniform`:

    !quant.uniform<i8:f32, 0.0235:-128>             per tensor: scale 0.0235, zero point -128
    !quant.uniform<i8:f32:0, {0.01:0, 0.02:0}>      per axis 0 (one scale/zero point each)

`nn` ops accept quantized operand and result types; their integer semantics are in
`rkc.interpreter.quant_impls`. The ops here convert between precisions:
`quant.quantize` (float -> quantized), `quant.dequantize` (quantized -> float) and
`quant.requantize` (quantized -> quantized with other parameters).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import (
    BytesAttr,
    DenseArrayBase,
    IntAttr,
    IntegerType,
    TensorType,
    f32,
    f64,
    i8,
    i16,
    i32,
    i64,
)
from xdsl.ir import Attribute, Dialect, ParametrizedAttribute, SSAValue, TypeAttribute
from xdsl.irdl import (
    IRDLOperation,
    base,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    result_def,
    traits_def,
)
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

STORAGE_TYPES = {8: i8, 16: i16, 32: i32}


@irdl_attr_definition
class UniformQuantizedType(ParametrizedAttribute, TypeAttribute):
    """Affine quantization: real = (q - zero_point) * scale, per tensor or per axis.

    Invariants: storage is a signless i8/i16/i32; the expressed type is f32; scales are
    positive; zero points lie in the storage range; per-tensor types have axis -1 and
    exactly one scale and zero point.
    """

    name = "quant.uniform"

    storage: IntegerType
    expressed: Attribute
    axis: IntAttr
    scale_values: DenseArrayBase
    zero_point_values: DenseArrayBase

    def __init__(self, storage: IntegerType, scales: Sequence[float],
                 zero_points: Sequence[int], axis: int | None = None,
                 expressed: Attribute = f32):
        super().__init__(storage, expressed, IntAttr(-1 if axis is None else axis),
                         DenseArrayBase.from_list(f64, [float(s) for s in scales]),
                         # packed directly: from_list normalises each value through
                         # xDSL attributes, 0.2 s per ResNet-50 (verify checks the range)
                         DenseArrayBase(i64, BytesAttr(i64.pack([int(z) for z in zero_points]))))

    @staticmethod
    def per_tensor(scale: float, zero_point: int, bits: int = 8) -> UniformQuantizedType:
        return UniformQuantizedType(STORAGE_TYPES[bits], [scale], [zero_point])

    @staticmethod
    def per_axis(scales: Sequence[float], zero_points: Sequence[int], axis: int,
                 bits: int = 8) -> UniformQuantizedType:
        return UniformQuantizedType(STORAGE_TYPES[bits], scales, zero_points, axis)

    # -- accessors -----------------------------------------------------------------
    @property
    def scales(self) -> tuple[float, ...]:
        return tuple(float(s) for s in self.scale_values.get_values())

    @property
    def zero_points(self) -> tuple[int, ...]:
        return tuple(int(z) for z in self.zero_point_values.get_values())

    @property
    def quantized_axis(self) -> int | None:
        return None if self.axis.data < 0 else self.axis.data

    @property
    def bits(self) -> int:
        return self.storage.width.data

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1

    @property
    def storage_dtype(self) -> np.dtype:
        return np.dtype({8: np.int8, 16: np.int16, 32: np.int32}[self.bits])

    @property
    def scale(self) -> float:
        """The scale of a per-tensor type."""
        assert self.quantized_axis is None, "per-axis type has no single scale"
        return self.scales[0]

    @property
    def zero_point(self) -> int:
        """The zero point of a per-tensor type."""
        assert self.quantized_axis is None, "per-axis type has no single zero point"
        return self.zero_points[0]

    def broadcast_parameters(self, rank: int) -> tuple[np.ndarray, np.ndarray]:
        """Scales (float64) and zero points (int64) shaped to broadcast over a tensor."""
        scales = np.asarray(self.scales, np.float64)
        zps = np.asarray(self.zero_points, np.int64)
        if self.quantized_axis is None:
            return scales.reshape(()), zps.reshape(())
        shape = [1] * rank
        shape[self.quantized_axis] = -1
        return scales.reshape(shape), zps.reshape(shape)

    # -- checks --------------------------------------------------------------------
    def verify(self) -> None:
        if self.storage.width.data not in STORAGE_TYPES:
            raise VerifyException(f"quant.uniform: storage must be i8, i16 or i32, "
                                  f"got {self.storage}")
        if self.expressed != f32:
            raise VerifyException(f"quant.uniform: expressed type must be f32, "
                                  f"got {self.expressed}")
        scales, zps = self.scales, self.zero_points
        if len(scales) != len(zps) or not scales:
            raise VerifyException("quant.uniform: needs as many zero points as scales (>= 1)")
        if self.axis.data < 0 and len(scales) != 1:
            raise VerifyException("quant.uniform: a per-tensor type has one scale")
        if not all(s > 0 and np.isfinite(s) for s in scales):
            raise VerifyException(f"quant.uniform: scales must be positive and finite, "
                                  f"got {min(scales)}")
        lo, hi = -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1
        if any(not lo <= z <= hi for z in zps):
            raise VerifyException(f"quant.uniform: zero points must lie in [{lo}, {hi}]")

    def verify_for_shape(self, shape: Sequence[int]) -> None:
        """A per-axis type needs one scale per element along its axis."""
        axis = self.quantized_axis
        if axis is None:
            return
        if axis >= len(shape) or shape[axis] != len(self.scale_values):
            raise VerifyException(
                f"quant.uniform: {len(self.scales)} scales along axis {axis} do not fit "
                f"a tensor of shape {list(shape)}")

    # -- syntax (MLIR's) -----------------------------------------------------------
    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            storage = parser.parse_type()
            parser.parse_punctuation(":")
            expressed = parser.parse_type()
            axis = -1
            if parser.parse_optional_punctuation(":") is not None:
                axis = parser.parse_integer(allow_negative=False)
            parser.parse_punctuation(",")

            def scale_zero_point() -> tuple[float, int]:
                scale = parser.parse_float()
                zero_point = 0
                if parser.parse_optional_punctuation(":") is not None:
                    zero_point = parser.parse_integer()
                return scale, zero_point

            if axis >= 0:
                pairs = parser.parse_comma_separated_list(parser.Delimiter.BRACES,
                                                          scale_zero_point)
            else:
                pairs = [scale_zero_point()]
        if not isinstance(storage, IntegerType):
            parser.raise_error(f"quant.uniform storage must be an integer type, got {storage}")
        return (storage, expressed, IntAttr(axis),
                DenseArrayBase.from_list(f64, [p[0] for p in pairs]),
                DenseArrayBase.from_list(i64, [p[1] for p in pairs]))

    def print_parameters(self, printer: Printer) -> None:
        pairs = [f"{_float_literal(s)}:{z}"
                 for s, z in zip(self.scales, self.zero_points, strict=True)]
        head = f"{self.storage}:{self.expressed}"
        if self.quantized_axis is None:
            printer.print_string(f"<{head}, {pairs[0]}>")
        else:
            printer.print_string(f"<{head}:{self.quantized_axis}, {{{', '.join(pairs)}}}>")


def _float_literal(value: float) -> str:
    """The shortest text that parses back to `value` and is an MLIR float literal."""
    text = repr(float(value))
    if "." not in text:
        mantissa, _, exponent = text.partition("e")
        text = f"{mantissa}.0" + (f"e{exponent}" if exponent else "")
    return text


def quantized_element(t: Attribute) -> UniformQuantizedType | None:
    """The quantized element type of a tensor type, or None."""
    if isinstance(t, TensorType) and isinstance(t.element_type, UniformQuantizedType):
        return t.element_type
    return None


def expressed_type(t: TensorType) -> TensorType:
    """The float tensor type a (possibly quantized) tensor type stands for."""
    q = quantized_element(t)
    return TensorType(q.expressed, t.get_shape()) if q is not None else t


# ---------------------------------------------------------------------------
# ops
# ---------------------------------------------------------------------------
class _ConversionOp(IRDLOperation):
    """Shape-preserving conversion; subclasses check the element types."""

    input = operand_def(base(TensorType))
    output = result_def(base(TensorType))
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input) `->` type($output)"

    def __init__(self, input: SSAValue, result_type: TensorType):
        super().__init__(operands=[input], result_types=[result_type])

    def verify_(self) -> None:
        src, dst = self.input.type, self.output.type
        assert isinstance(src, TensorType) and isinstance(dst, TensorType)
        if src.get_shape() != dst.get_shape():
            raise VerifyException(f"{self.name}: shapes {list(src.get_shape())} and "
                                  f"{list(dst.get_shape())} differ")
        for t in (src, dst):
            q = quantized_element(t)
            if q is not None:
                q.verify_for_shape(t.get_shape())
        self.check_elements(src.element_type, dst.element_type)

    def check_elements(self, src: Attribute, dst: Attribute) -> None:
        raise NotImplementedError


FLOAT_ELEMENTS = (f32,)


@irdl_op_definition
class QuantizeOp(_ConversionOp):
    """q = clamp(round_half_even(x / scale) + zero_point, qmin, qmax)."""

    name = "quant.quantize"

    def check_elements(self, src: Attribute, dst: Attribute) -> None:
        if src not in FLOAT_ELEMENTS or not isinstance(dst, UniformQuantizedType):
            raise VerifyException(f"quant.quantize: expects f32 -> quantized, got {src} -> {dst}")


@irdl_op_definition
class DequantizeOp(_ConversionOp):
    """x = (q - zero_point) * scale, in f32."""

    name = "quant.dequantize"

    def check_elements(self, src: Attribute, dst: Attribute) -> None:
        if not isinstance(src, UniformQuantizedType) or dst not in FLOAT_ELEMENTS:
            raise VerifyException(f"quant.dequantize: expects quantized -> f32, "
                                  f"got {src} -> {dst}")


@irdl_op_definition
class RequantizeOp(_ConversionOp):
    """Per-tensor quantized -> per-tensor quantized with the NPU's fixed-point rescale
    (`rkc.quant.requant`)."""

    name = "quant.requantize"

    def check_elements(self, src: Attribute, dst: Attribute) -> None:
        for t in (src, dst):
            if not isinstance(t, UniformQuantizedType) or t.quantized_axis is not None:
                raise VerifyException(f"quant.requantize: expects per-tensor quantized types, "
                                      f"got {src} -> {dst}")


QUANT = Dialect("quant", [QuantizeOp, DequantizeOp, RequantizeOp], [UniformQuantizedType])
