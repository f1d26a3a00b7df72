"""NPU legality (rkc/lowering/legality.py): each predicate accepts and rejects with the
failed constraint's values on RK3588 and RK3568; placement of the real quantized vendor
fixtures; the rknpu-legalize pass; the placement report; docs/supported-ops.md is current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from test_quantize_fixtures import NORM, VENDOR, quantize
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr, TensorType, f16, f32
from xdsl.ir import Block, Operation, SSAValue

from rkc.dialects import nn, quant
from rkc.dialects.quant import UniformQuantizedType
from rkc.errors import RkcError
from rkc.graph import main_function
from rkc.lowering.legality import (
    PLACEMENT_ATTR,
    REASON_ATTR,
    RULES,
    Placement,
    npu_obstacle,
    place,
    supported_ops_table,
)
from rkc.lowering.placement_report import format_placement, placement_report
from rkc.registry import PASSES
from rkc.targets import RK3568, RK3588

ROOT = Path(__file__).resolve().parent.parent
Q = UniformQuantizedType.per_tensor(0.05, 0)
Q2 = UniformQuantizedType.per_tensor(0.1, 3)
W = UniformQuantizedType.per_tensor(0.01, 0)
BOTH = [RK3588, RK3568]


def feature(*shape: int, el=Q) -> SSAValue:
    """A block argument of type tensor<shape x el> (int8 by default)."""
    return Block(arg_types=[TensorType(el, shape)]).args[0]


def weight(*shape: int, el=W) -> SSAValue:
    data = np.ones(shape, np.int8 if el is W else np.float16)
    t = TensorType(el, shape) if el is W else None
    return nn.ConstantOp(data, result_type=t).output


def conv(x: SSAValue, k: tuple[int, int] = (3, 3), out: int = 8, group: int = 1,
         el=W, **kw) -> Operation:
    c = x.type.get_shape()[1]
    return nn.Conv2dOp(x, weight(out, c // group, *k, el=el), group=group, **kw)


# ---------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("target", BOTH, ids=lambda t: t.name)
def test_conv_accepted_int8_fp16_depthwise_tall(target):
    assert npu_obstacle(conv(feature(1, 3, 32, 32), pads=(1, 1, 1, 1)), target) is None
    assert npu_obstacle(conv(feature(1, 16, 8, 8, el=f16), el=f16), target) is None
    assert npu_obstacle(conv(feature(1, 16, 8, 8), out=16, group=16), target) is None
    # height is split into bands, output channels into kernel groups: never rejected
    assert npu_obstacle(conv(feature(1, 3, 4096, 8), k=(1, 1), out=20000), target) is None
    # the largest values the fields hold
    x = feature(1, 4, 64, 2047)
    assert npu_obstacle(conv(x, k=(31, 31), strides=(7, 7), pads=(15, 15, 0, 0),
                             dilations=(2, 2)), target) is None


@pytest.mark.parametrize("target", BOTH, ids=lambda t: t.name)
def test_conv_register_limits(target):
    chip = target.name
    x = feature(1, 4, 64, 64)
    assert npu_obstacle(conv(x, k=(33, 33)), target) == (
        f"kernel 33x33 exceeds 31 (CNA.WEIGHT_SIZE2 WEIGHT_WIDTH/HEIGHT, 5 bits) on {chip}")
    assert npu_obstacle(conv(x, k=(3, 32)), target).startswith("kernel 3x32 exceeds 31")
    assert npu_obstacle(conv(x, strides=(8, 1)), target) == (
        f"stride 8x1 exceeds 7 (CNA.CONV_CON3 CONV_X/Y_STRIDE, 3 bits) on {chip}")
    assert npu_obstacle(conv(x, pads=(16, 0, 0, 0)), target) == (
        f"top pad 16 exceeds 15 (CNA.PAD_CON0 PAD_TOP, 4 bits) on {chip}")
    assert npu_obstacle(conv(x, pads=(0, 20, 0, 0)), target) == (
        f"left pad 20 exceeds 15 (CNA.PAD_CON0 PAD_LEFT, 4 bits) on {chip}")
    # right / bottom padding follows from the output size: no field to overflow
    assert npu_obstacle(conv(x, pads=(0, 0, 20, 20)), target) is None
    assert npu_obstacle(conv(x, k=(2, 2), dilations=(33, 1)), target) == (
        f"dilation 33x1 exceeds 32 (CNA.CONV_CON3 ATROUS_X/Y_DILATION, 5 bits) on {chip}")
    assert npu_obstacle(conv(feature(1, 3, 8, 4096), k=(1, 1)), target) == (
        f"input width 4096 exceeds 2047 (CNA.DATA_SIZE0 DATAIN_WIDTH, 11 bits) on {chip}")
    assert npu_obstacle(conv(feature(1, 3, 8, 2047), k=(1, 1), pads=(0, 2, 0, 2)),
                        target) == (f"output width 2051 exceeds 2047 (CNA.DATA_SIZE2 "
                                    f"DATAOUT_WIDTH, 11 bits) on {chip}")
    assert npu_obstacle(conv(feature(1, 16385, 2, 2), k=(1, 1), out=1), target) == (
        f"16385 input channels exceeds 16384 (CNA.DATA_SIZE1 DATAIN_CHANNEL_REAL, 14 bits) "
        f"on {chip}")


def test_conv_structure_and_types():
    x = feature(1, 8, 8, 8)
    assert npu_obstacle(conv(x, group=2), RK3588) == (
        "grouped convolution (group 2, 8 -> 8 channels) is neither direct nor depthwise")
    assert "group 8, 8 -> 16" in npu_obstacle(conv(x, out=16, group=8), RK3568)
    act = conv(feature(1, 8, 8, 8, el=f16), el=f16, activation="sigmoid")
    assert npu_obstacle(act, RK3588).startswith("fused sigmoid has no DPU output-stage form")
    assert npu_obstacle(conv(x, activation="clip", activation_params=(0, 6)), RK3568) is None
    half = conv(feature(1, 8, 8, 8, el=f16), el=f16, activation="clip",
                activation_params=(0, 6))
    assert npu_obstacle(half, RK3588) is None  # conv, relu, then an fp16 min stage
    half = conv(feature(1, 8, 8, 8, el=f16), el=f16, activation="clip",
                activation_params=(0, 6.01))
    assert npu_obstacle(half, RK3588).startswith("fp16 clip bounds (0, 6.01)")
    dynamic = nn.Conv2dOp(x, feature(8, 8, 3, 3, el=W))
    assert npu_obstacle(dynamic, RK3588).startswith("its weight or bias is not a constant")
    fp32 = nn.Conv2dOp(feature(1, 3, 8, 8, el=f32), nn.ConstantOp(
        np.ones((4, 3, 1, 1), np.float32)).output)
    for target in BOTH:
        assert npu_obstacle(fp32, target) == (
            "data type f32 (not quantized): the NPU computes int8 and fp16 only")


# ---------------------------------------------------------------------------
# gemm / matmul
# ---------------------------------------------------------------------------
def test_gemm_and_matmul():
    a = feature(1, 16)
    b = weight(10, 16)
    assert npu_obstacle(nn.GemmOp(a, b, trans_b=True), RK3588) is None
    assert npu_obstacle(nn.GemmOp(feature(16, 1), b, trans_a=True, trans_b=True),
                        RK3568) == "gemm with trans_a needs a transpose of A before the 1x1 conv"
    assert npu_obstacle(nn.GemmOp(a, feature(16, 10)), RK3588) == (
        "B or C is not a constant (the CNA reads packed constant weights)")
    assert npu_obstacle(nn.MatmulOp(a, weight(16, 4)), RK3568) is None
    assert npu_obstacle(nn.MatmulOp(a, feature(16, 4)), RK3588) == (
        "matmul of two activations: the CNA needs a constant weight")
    assert npu_obstacle(nn.MatmulOp(feature(2, 5, 16), weight(16, 4)), RK3588) == (
        "matmul input of rank 3: only [M, K] maps onto a 1x1 conv")
    wide = nn.GemmOp(feature(1, 16385), weight(2, 16385), trans_b=True)
    assert npu_obstacle(wide, RK3568).startswith("16385 input channels exceeds 16384")


# ---------------------------------------------------------------------------
# DPU: elementwise, activations, lookup tables, requantize
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("target", BOTH, ids=lambda t: t.name)
def test_elementwise(target):
    x = feature(1, 16, 8, 8)
    for cls in (nn.AddOp, nn.SubOp, nn.MulOp, nn.MaxOp, nn.MinOp):
        assert npu_obstacle(cls(x, feature(1, 16, 8, 8)), target) is None
    assert npu_obstacle(nn.AddOp(x, feature(1, 16, 1, 1)), target) is None  # per channel
    assert npu_obstacle(nn.MulOp(x, feature(16, 1, 1)), target) is None
    assert npu_obstacle(nn.AddOp(x, feature(1, 1, 1, 1)), target) is None  # scalar
    assert npu_obstacle(nn.AddOp(x, feature(1, 1, 8, 8)), target) == (
        "operand 1x1x8x8 broadcasts to 1x16x8x8 other than per channel (the DPU reads a "
        "second operand per pixel or per channel)")
    assert npu_obstacle(nn.AddOp(x, feature(8)), target).startswith("operand 8 broadcasts")
    assert npu_obstacle(nn.AddOp(feature(1, 4, 5), feature(1, 4, 5)), target) == (
        "rank-3 tensors have no NC1HWC2 form (the DPU works on [N, C, H, W] features)")
    wide = feature(1, 16, 1, 9000)
    assert npu_obstacle(nn.AddOp(wide, wide), target) == (
        f"width 9000 exceeds 8192 (DPU.DATA_CUBE_WIDTH, 13 bits) on {target.name}")
    assert npu_obstacle(nn.AddOp(feature(1, 10, el=f16), feature(1, 10, el=f16)),
                        target) is None
    fp32 = feature(1, 3, 8, 8, el=f32)
    assert "data type f32 (not quantized)" in npu_obstacle(nn.SubOp(fp32, fp32), target)
    # the main input (MRDMA) is read whole: a broadcast first operand commutes or stays
    assert npu_obstacle(nn.AddOp(feature(1, 16, 1, 1), x), target) is None
    assert npu_obstacle(nn.SubOp(feature(1, 16, 1, 1), x), target) == (
        "first operand 1x16x1x1 broadcasts to 1x16x8x8: the DPU's main input (MRDMA) "
        "reads a whole feature and sub does not commute")
    both = nn.MulOp(feature(1, 16, 1, 8), feature(1, 1, 8, 1))
    assert npu_obstacle(both, target).startswith("operand 1x16x1x8 broadcasts")


def test_activations_and_tables():
    x, h = feature(1, 8, 4, 4), feature(1, 8, 4, 4, el=f16)
    for op in (nn.AbsOp(h), nn.NegOp(h)):
        assert npu_obstacle(op, RK3588).startswith(f"fp16 {op.name[3:]}: "), op.name
    assert npu_obstacle(nn.ClipOp(h, 0, 0.1), RK3568) == (
        "fp16 clip bounds (0, 0.1) are not f16 numbers (the DPU's fp16 max / min stages "
        "compare with f16 constants)")
    for op in (nn.ReluOp(x), nn.ClipOp(x, 0, 6), nn.ClipOp(h, -1, 6), nn.LeakyReluOp(h),
               nn.SigmoidOp(x),
               nn.TanhOp(x), nn.SiluOp(x), nn.HardSwishOp(x), nn.HardSigmoidOp(x),
               nn.ExpOp(x), nn.PReluOp(h, weight(8, 1, 1, el=f16))):
        assert npu_obstacle(op, RK3588) is None, op.name
        assert npu_obstacle(op, RK3568) is None, op.name
    assert npu_obstacle(nn.SigmoidOp(h), RK3568) == (
        "data type fp16: the DPU lookup table is built for int8 only")
    assert npu_obstacle(nn.PReluOp(h, weight(1, 4, 4, el=f16)), RK3588) == (
        "prelu slope 1x4x4 is not per channel")
    requant = quant.RequantizeOp(x, TensorType(Q2, (1, 8, 4, 4)))
    assert npu_obstacle(requant, RK3588) is None
    for op in (nn.SoftmaxOp(h, axis=1), nn.SoftmaxOp(x, axis=1)):
        assert npu_obstacle(op, RK3588) == (
            "nn.softmax has no NPU form (the DPU has no reduction across channels)")


def test_conversions_run_on_the_cpu():
    fq = quant.QuantizeOp(feature(1, 3, 8, 8, el=f32), TensorType(Q, (1, 3, 8, 8)))
    dq = quant.DequantizeOp(feature(1, 3, 8, 8), TensorType(f32, (1, 3, 8, 8)))
    for op in (fq, dq):
        assert npu_obstacle(op, RK3588) == (
            "float <-> int8 conversion runs on the host (f32 is not an NPU data type)")
    cast = nn.CastOp(feature(1, 3, 8, 8, el=f32), f16)
    assert npu_obstacle(cast, RK3568).startswith("float <-> fp16 conversion runs on the host")


# ---------------------------------------------------------------------------
# PPU pools
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("target", BOTH, ids=lambda t: t.name)
def test_pools(target):
    chip = target.name
    x = feature(1, 16, 32, 32)
    assert npu_obstacle(nn.MaxPool2dOp(x, (2, 2), strides=(2, 2)), target) is None
    assert npu_obstacle(nn.AvgPool2dOp(x, (16, 16), strides=(16, 16)), target).startswith(
        "int8 avg pool as a depthwise conv")
    # windows of consecutive pixels: a stride-1 conv over the rows of a [1, 16, 64, 16] view
    assert npu_obstacle(nn.AvgPool2dOp(x, (1, 16), strides=(1, 16)), target) is None
    assert npu_obstacle(nn.AvgPool2dOp(x, (1, 16), strides=(2, 16)), target).startswith(
        "int8 avg pool as a depthwise conv (the PPU cannot rescale by s_x / (s_y * n)): "
        "stride 2x16 exceeds 7")
    assert npu_obstacle(nn.AvgPool2dOp(feature(1, 16, 32, 1), (8, 1), strides=(8, 1)),
                        target) is None
    assert npu_obstacle(nn.MaxPool2dOp(x, (17, 17)), target) == (
        f"pool kernel 17x17 exceeds 16 (PPU.POOLING_KERNEL_CFG KERNEL_WIDTH/HEIGHT, 4 bits) "
        f"on {chip}")
    assert npu_obstacle(nn.MaxPool2dOp(x, (2, 2), strides=(17, 1)), target).startswith(
        "pool stride 17x1 exceeds 16")
    assert npu_obstacle(nn.MaxPool2dOp(x, (9, 9), pads=(8, 0, 0, 0)), target) == (
        f"pool pads 8/0/0/0 exceeds 7 (PPU.POOLING_PADDING_CFG, 3 bits per side) on {chip}")
    # ceil mode: the last window's overhang is programmed as bottom / right padding
    ceil = nn.MaxPool2dOp(feature(1, 4, 20, 20), (16, 16), strides=(16, 16), ceil_mode=True)
    assert npu_obstacle(ceil, target) == (
        f"pool pads 0/0/12/12 exceeds 7 (PPU.POOLING_PADDING_CFG, 3 bits per side) on {chip}")
    assert npu_obstacle(nn.MaxPool2dOp(x, (2, 2), dilations=(2, 2)), target) == (
        "the PPU has no dilated pooling")
    assert npu_obstacle(nn.AvgPool2dOp(x, (3, 3), pads=(1, 1, 1, 1)), target).startswith(
        "int8 avg pool with padding excluded from the divisor")
    assert npu_obstacle(nn.AvgPool2dOp(feature(1, 16, 32, 32, el=f16), (3, 3),
                                       pads=(1, 1, 1, 1)), target).startswith(
        "fp16 avg pool with padding")
    assert npu_obstacle(nn.AvgPool2dOp(x, (3, 3), pads=(1, 1, 1, 1),
                                       count_include_pad=True), target) is None
    assert npu_obstacle(nn.GlobalAvgPoolOp(feature(1, 16, 16, 16)), target) is None
    odd = nn.GlobalMaxPoolOp(feature(1, 16, 7, 7, el=f16))
    if chip == "RK3568":  # 8-byte atoms: rows of an odd width are not whole 16-byte units
        assert npu_obstacle(odd, target) == (
            "pool input rows of 7 x 8 B are not whole 16-byte units "
            "(PPU_RDMA.RDMA_SRC_LINE_STRIDE) on RK3568")
        assert npu_obstacle(nn.MaxPool2dOp(feature(1, 8, 9, 9), (3, 3)), target)
    else:
        assert npu_obstacle(odd, target) is None
    assert npu_obstacle(nn.GlobalMaxPoolOp(feature(1, 16, 8, 8, el=f16)), target) is None
    # int8 average pools are depthwise convs (kernel up to 31): the PPU cannot rescale
    assert npu_obstacle(nn.GlobalAvgPoolOp(feature(1, 16, 20, 16)), target) is None
    assert npu_obstacle(nn.GlobalAvgPoolOp(feature(1, 16, 40, 16)), target) == (
        "int8 avg pool as a depthwise conv (the PPU cannot rescale by s_x / (s_y * n)): "
        f"kernel 40x16 exceeds 31 (CNA.WEIGHT_SIZE2 WEIGHT_WIDTH/HEIGHT, 5 bits) on {chip}")
    assert npu_obstacle(nn.AvgPool2dOp(x, (2, 2), strides=(2, 2), ceil_mode=True),
                        target).startswith("int8 avg pool with ceil_mode")
    assert npu_obstacle(nn.GlobalAvgPoolOp(feature(1, 16, 20, 16, el=f16)), target) == (
        f"global pool 20x16 exceeds 16 (PPU.POOLING_KERNEL_CFG KERNEL_WIDTH/HEIGHT, 4 bits) "
        f"on {chip}")


# ---------------------------------------------------------------------------
# data movement
# ---------------------------------------------------------------------------
def test_concat_split_slice_depend_on_c2():
    # RK3588 int8 C2 = 16, RK3568 int8 C2 = 8
    eight = nn.ConcatOp([feature(1, 8, 4, 4), feature(1, 8, 4, 4)], axis=1)
    assert npu_obstacle(eight, RK3568) is None
    assert npu_obstacle(eight, RK3588) == (
        "concat at channel offsets of [8] not multiples of C2 = 16 on RK3588 changes the "
        "NC1HWC2 layout")
    assert npu_obstacle(nn.ConcatOp([feature(1, 16, 4, 4), feature(1, 3, 4, 4)], axis=1),
                        RK3588) is None
    # fp16: C2 = 8 on RK3588
    h = nn.ConcatOp([feature(1, 8, 4, 4, el=f16), feature(1, 8, 4, 4, el=f16)], axis=1)
    assert npu_obstacle(h, RK3588) is None
    assert npu_obstacle(nn.ConcatOp([feature(1, 8, 4, 4), feature(1, 8, 4, 4)], axis=2),
                        RK3568) == ("concat along axis 2 of a rank-4 tensor changes the "
                                    "NC1HWC2 layout (only channel offsets are free)")
    mixed = nn.ConcatOp.create(  # the constructor insists on one element type
        operands=[feature(1, 16, 4, 4), feature(1, 16, 4, 4, el=Q2)],
        result_types=[TensorType(Q, (1, 32, 4, 4))], properties={"axis": nn.i64_attr(1)})
    assert npu_obstacle(mixed, RK3588).startswith("inputs quantized unlike the output")
    split = nn.SplitOp(feature(1, 24, 4, 4), axis=1, sizes=(8, 16))
    assert npu_obstacle(split, RK3568) is None
    assert "[8] not multiples of C2 = 16" in npu_obstacle(split, RK3588)
    sl = nn.SliceOp(feature(1, 32, 4, 4), (0, 16, 0, 0), (1, 32, 4, 4), (1, 1, 1, 1))
    assert npu_obstacle(sl, RK3588) is None
    rows = nn.SliceOp(feature(1, 32, 4, 4), (0, 0, 1, 0), (1, 32, 4, 4), (1, 1, 1, 1))
    assert npu_obstacle(rows, RK3588).startswith("slice along axis 2 of a rank-4 tensor")
    strided = nn.SliceOp(feature(1, 32, 4, 4), (0, 0, 0, 0), (1, 32, 4, 4), (1, 2, 1, 1))
    assert npu_obstacle(strided, RK3568) == "strided slice changes the NC1HWC2 layout"


def test_views_and_layout_changes():
    assert npu_obstacle(nn.ReshapeOp(feature(1, 16, 1, 1), (1, 16)), RK3588) is None
    assert npu_obstacle(nn.ReshapeOp(feature(1, 16, 4, 4), (1, 16, 16, 1)), RK3568) is None
    flatten = nn.ReshapeOp(feature(1, 16, 4, 4), (1, 256))
    assert npu_obstacle(flatten, RK3588) == (
        "reshape changes the NC1HWC2 layout (it keeps N and C only as a view)")
    assert npu_obstacle(nn.TransposeOp(feature(1, 16, 4, 1), (0, 1, 3, 2)), RK3588) is None
    channels_to_h = nn.TransposeOp(feature(1, 16, 1, 1), (0, 2, 1, 3))
    assert npu_obstacle(channels_to_h, RK3588).startswith("transpose changes the NC1HWC2")
    nhwc = nn.TransposeOp(feature(1, 16, 4, 4), (0, 2, 3, 1))
    assert npu_obstacle(nhwc, RK3568).startswith("transpose changes the NC1HWC2 layout")
    for op in (nn.PadOp(feature(1, 8, 4, 4), (0, 0, 1, 1, 0, 0, 1, 1)),
               nn.ResizeOp(feature(1, 8, 4, 4), (1, 8, 8, 8), (1, 1, 2, 2))):
        assert npu_obstacle(op, RK3588) == RULES[op.name].cpu_reason


# ---------------------------------------------------------------------------
# placement on the real quantized fixtures
# ---------------------------------------------------------------------------
EXPECTED = {  # model -> (npu ops, cpu ops), the same on both chips
    "mobilenet": (["nn.conv2d"] * 3, 4),
    "resblock": (["nn.conv2d", "nn.max_pool2d", "nn.conv2d", "nn.add", "nn.relu",
                  "nn.global_avg_pool", "nn.reshape", "nn.gemm"], 4),
}


@pytest.fixture(scope="module")
def quantized() -> dict[str, ModuleOp]:
    return {name: quantize(VENDOR / f"{name}.onnx", NORM, VENDOR / "dataset.txt").module
            for name in EXPECTED}


@pytest.mark.parametrize("target", BOTH, ids=lambda t: t.name)
@pytest.mark.parametrize("name", list(EXPECTED))
def test_place_fixture(quantized, name, target):
    module = quantized[name].clone()
    placements = place(module, target)
    ops = [op for op in main_function(module).body.block.ops
           if op.name not in ("nn.constant", "func.return")]
    assert [p.op for p in placements] == [op.name for op in ops]
    npu_ops, cpu_count = EXPECTED[name]
    assert [p.op for p in placements if p.unit == "npu"] == npu_ops
    assert sum(p.unit == "cpu" for p in placements) == cpu_count
    cpu = {p.op: p.reason for p in placements if p.unit == "cpu"}
    assert cpu == {
        "nn.sub": "data type f32 (not quantized): the NPU computes int8 and fp16 only",
        "nn.div": "nn.div is not lowered (nn-quantize keeps it float)",
        "quant.quantize": "float <-> int8 conversion runs on the host (f32 is not an NPU "
                          "data type)",
        "quant.dequantize": "float <-> int8 conversion runs on the host (f32 is not an NPU "
                            "data type)"}
    for op, p in zip(ops, placements, strict=True):
        assert op.attributes[PLACEMENT_ATTR] == StringAttr(p.unit)
        if p.unit == "cpu":
            assert op.attributes[REASON_ATTR] == StringAttr(p.reason)
        else:
            assert REASON_ATTR not in op.attributes
    assert placements[0].name == "input_normalize_sub"
    assert placements[2].name.startswith("quant.quantize#")


def test_placement_report(quantized):
    module = quantized["resblock"].clone()
    text = placement_report(module, "RK3568")
    lines = text.splitlines()
    assert lines[0] == "placement on RK3568"
    assert lines[2].split() == ["name", "op", "shapes", "unit", "reason"]
    row = next(line for line in lines if line.startswith("Add_5"))
    assert row.split()[:6] == ["Add_5", "nn.add", "1x16x16x16,", "1x16x16x16", "->",
                               "1x16x16x16"]
    assert row.split()[6:] == ["NPU", "DPU"]
    assert lines[-1] == "8 ops on the NPU, 4 on the CPU"
    with pytest.raises(RkcError, match="unknown target 'rk1'"):
        placement_report(module, "rk1")
    assert format_placement([Placement("a", "nn.div", "cpu", "why", "1 -> 1")]).endswith(
        "0 ops on the NPU, 1 on the CPU")


def test_pass_registered_and_rejects_unknown_target(quantized):
    cls = PASSES["rknpu-legalize"]()
    assert cls.name == "rknpu-legalize"
    module = quantized["mobilenet"].clone()
    cls(target="rk3568").apply(Context(), module)
    placed = [op.attributes[PLACEMENT_ATTR].data for op in main_function(module).body.block.ops
              if PLACEMENT_ATTR in op.attributes]
    assert placed.count("npu") == 3 and placed.count("cpu") == 4
    with pytest.raises(RkcError, match="unknown target 'rk9999'; valid targets"):
        cls(target="rk9999").apply(Context(), module)


# ---------------------------------------------------------------------------
# the supported-ops table and its document
# ---------------------------------------------------------------------------
def test_supported_ops_table():
    table = supported_ops_table([RK3588, RK3568]).splitlines()
    assert table[0] == "| op | runs on | conditions | RK3588 | RK3568 |"
    conv = next(r for r in table if r.startswith("| `nn.conv2d`"))
    cells = [c.strip() for c in conv.strip("|").split("|")]
    assert cells[1] == "CNA+CORE+DPU"
    assert "kernel <= 31;" in cells[3] and "stride <= 7;" in cells[3]
    assert "kernel <= 31?;" in cells[4]  # carried over from RK3588: uncertain
    concat = next(r for r in table if r.startswith("| `nn.concat`"))
    assert "C2 = 16 (int8) / 8 (fp16)" in concat and "C2 = 8 (int8) / 4 (fp16)" in concat
    softmax = next(r for r in table if r.startswith("| `nn.softmax`"))
    assert softmax == ("| `nn.softmax` | CPU | nn.softmax has no NPU form (the DPU has no "
                       "reduction across channels) | CPU | CPU |")
    assert len(table) == 2 + len(RULES)


def test_supported_ops_doc_is_current():
    spec = importlib.util.spec_from_file_location("gen_supported_ops",
                                                  ROOT / "tools" / "gen_supported_ops.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert (ROOT / "docs" / "supported-ops.md").read_text() == gen.render(), (
        "docs/supported-ops.md is out of date: run python tools/gen_supported_ops.py")
