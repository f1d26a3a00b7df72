"""The nn dialect: inferred result types, verifier messages, weights as bytes."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import TensorType, f16, f32, i64
from xdsl.parser import Parser
from xdsl.utils.exceptions import VerifyException
from xdsl.utils.test_value import create_ssa_value

from rkc.dialects import nn
from rkc.registry import make_context


def value(*shape: int, element=f32):
    return create_ssa_value(TensorType(element, list(shape)))


def shape_of(op) -> tuple[int, ...]:
    return tuple(op.results[0].type.get_shape())


def test_conv_shapes():
    x, w = value(1, 8, 17, 17), value(16, 4, 3, 3)
    conv = nn.Conv2dOp(x, w, strides=(2, 2), pads=(1, 0, 1, 2), dilations=(1, 2), group=2)
    # H: (17 + 2 - 3) // 2 + 1 = 9; W: (17 + 2 - 5) // 2 + 1 = 8
    assert shape_of(conv) == (1, 16, 9, 8)
    with pytest.raises(nn.ShapeError, match="input has 8 channels but weight expects 4 x group 1"):
        nn.Conv2dOp(x, w)


def test_conv_transpose_shape():
    op = nn.ConvTranspose2dOp(value(1, 4, 5, 5), value(4, 3, 4, 4), strides=(2, 2),
                              pads=(1, 1, 1, 1), output_padding=(1, 0))
    assert shape_of(op) == (1, 3, 11, 10)


@pytest.mark.parametrize("size, kernel, stride, pads, ceil_mode, expected", [
    (5, 2, 2, (0, 0), False, 2),
    (5, 2, 2, (0, 0), True, 3),
    (4, 3, 2, (1, 1), True, 3),  # the ceil window would start in the right padding: dropped
    (32, 3, 2, (1, 1), False, 16),
])
def test_pool_output_size(size, kernel, stride, pads, ceil_mode, expected):
    op = nn.MaxPool2dOp(value(1, 1, size, size), (kernel, kernel), strides=(stride, stride),
                        pads=(pads[0], pads[0], pads[1], pads[1]), ceil_mode=ceil_mode)
    assert shape_of(op) == (1, 1, expected, expected)


def test_broadcast_and_matmul_shapes():
    assert shape_of(nn.AddOp(value(1, 8, 4, 4), value(8, 1, 1))) == (1, 8, 4, 4)
    assert shape_of(nn.MatmulOp(value(2, 1, 3, 5), value(4, 5, 6))) == (2, 4, 3, 6)
    assert shape_of(nn.MatmulOp(value(5), value(3, 5, 6))) == (3, 6)
    with pytest.raises(nn.ShapeError, match="do not broadcast"):
        nn.AddOp(value(1, 8, 4, 4), value(3, 1, 1))
    with pytest.raises(nn.ShapeError, match="element types f32 and f16 differ"):
        nn.MulOp(value(4), value(4, element=f16))


def test_data_movement_shapes():
    x = value(2, 6, 4)
    assert [tuple(r.type.get_shape()) for r in nn.SplitOp(x, -1, (1, 3)).results] == \
        [(2, 6, 1), (2, 6, 3)]
    assert shape_of(nn.SliceOp(x, (0, 5, 0), (2, -1, 4), (1, -2, 3))) == (2, 3, 2)
    assert shape_of(nn.TransposeOp(x, (2, 0, 1))) == (4, 2, 6)
    assert shape_of(nn.PadOp(x, (0, 1, 0, 0, -2, 3))) == (2, 5, 7)
    assert shape_of(nn.ReduceMeanOp(x, (-1, 0), keepdims=False)) == (6,)
    arg = nn.ArgMaxOp(x, axis=1, keepdims=False)
    assert arg.results[0].type == TensorType(i64, [2, 4])
    with pytest.raises(nn.ShapeError, match="cannot reshape"):
        nn.ReshapeOp(x, (5, 5))


def test_verifier_rejects_a_wrong_declared_type():
    text = """
    func.func @main(%x: tensor<1x4x8x8xf32>) -> tensor<1x4x4x4xf32> {
      %y = nn.max_pool2d %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>,
           pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false}
           : (tensor<1x4x8x8xf32>) -> tensor<1x4x3x3xf32>
      func.return %y : tensor<1x4x3x3xf32>
    }"""
    module = Parser(make_context(), text).parse_module()
    with pytest.raises(VerifyException, match="nn.max_pool2d: result type tensor<1x4x3x3xf32> "
                                              "does not match the inferred tensor<1x4x4x4xf32>"):
        module.verify()


def test_constant_weights_round_trip_as_bytes():
    rng = np.random.default_rng(0)
    for array in (rng.standard_normal((16, 3, 3, 3), dtype=np.float32),
                  rng.integers(-128, 128, (40, 5), dtype=np.int8),
                  np.full((4, 50), 7, np.int64), np.arange(3, dtype=np.float16)):
        op = nn.ConstantOp(array)
        op.verify()
        parsed = Parser(make_context(), str(op)).parse_op()
        assert isinstance(parsed, nn.ConstantOp)
        np.testing.assert_array_equal(parsed.to_numpy(), array)
        assert parsed.to_numpy().dtype == array.dtype
        assert str(parsed) == str(op)


def test_large_constant_prints_as_hex_and_splat_as_one_value():
    big = nn.ConstantOp(np.arange(1000, dtype=np.float32))
    assert 'dense<"0x' in str(big)
    splat = nn.ConstantOp(np.full((64, 64), 0.5, np.float32))
    assert str(splat).startswith("%0 = nn.constant dense<5.000000e-01> : tensor<64x64xf32>")


def test_node_name_is_kept():
    op = nn.ReluOp(value(4), name="Relu_12")
    assert op.attributes[nn.NAME_ATTR].data == "Relu_12"
    assert 'rkc.name = "Relu_12"' in str(op)


def test_cast_and_resize():
    cast = nn.CastOp(value(2, 3), i64)
    assert cast.results[0].type == TensorType(i64, [2, 3])
    resize = nn.ResizeOp(value(1, 3, 10, 10), (1, 3, 20, 15), (1, 1, 2, 1.5), mode="linear")
    assert shape_of(resize) == (1, 3, 20, 15)
    with pytest.raises(nn.ShapeError, match="mode must be one of nearest, linear"):
        nn.ResizeOp(value(1, 3, 10, 10), (1, 3, 20, 20), (1, 1, 2, 2), mode="cubic")
