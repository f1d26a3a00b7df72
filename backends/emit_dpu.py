"""DPU and DPU_RDMA register values: a conv's output stage, or an elementwise task.

The DPU takes a cube (width x height x channels) either from the CORE (a conv) or from
memory through the main read DMA (flying mode), runs it through the BS, BN and EW stages
and the output converter, and writes it to DRAM. `DpuSetup` holds one task's choices;
`dpu_values` turns them into register values (DPU then DPU_RDMA, in the vendor's write
order, `DPU_ORDER`), `ew_writes` builds a whole flying-mode elementwise task.

What is measured and what is not:
- conv output stage (both chips): every value matches the vendor's conv tasks of the
  fixtures except those listed in docs/register-diff.md (tests/test_register_diff.py);
- flying-mode skeleton (register order, S_POINTER prefix, burst lengths, bypassed
  stages, RK3568's BRDMA/NRDMA disable bits): the vendor's RK3568 DPU-only tasks
  (layout conversions in conv_relu / mobilenet);
- the elementwise arithmetic of `ew_writes` (EW stage reading the second operand through
  ERDMA, per-pixel 8-bit operand, ALU add/max/min or MUL, operand converter, the BS
  stage scaling the first operand) follows Mesa's fused residual add (hw §4.4) and the
  TRM field descriptions [UNVERIFIED: no vendor fixture has a standalone elementwise
  layer, and none of it has run on a board].
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from rkc.backends.emit import EmittedTask, RegisterValues
from rkc.backends.regcmd import ENABLE_BITS
from rkc.backends.tasks import (
    Address,
    BinaryStage,
    ClampStage,
    DpuStage,
    EwOperand,
    EwTask,
    Feature,
    LeakyReluStage,
    LutStage,
    PreluStage,
    is_identity,
)
from rkc.backends.weights import LUT_ENTRIES, lut_load_writes
from rkc.errors import RkcError
from rkc.targets import get_target

# DPU then DPU_RDMA registers, in the vendor's order (tests/data/vendor/regcmd: every conv
# task on RK3588; conv and DPU-only tasks on RK3568).
_DPU_HEAD = (
    "DPU.FEATURE_MODE_CFG", "DPU.DATA_FORMAT", "DPU.OFFSET_PEND", "DPU.DST_BASE_ADDR",
    "DPU.DST_SURF_STRIDE", "DPU.DATA_CUBE_WIDTH", "DPU.DATA_CUBE_HEIGHT",
    "DPU.DATA_CUBE_NOTCH_ADDR", "DPU.DATA_CUBE_CHANNEL", "DPU.BS_CFG", "DPU.BS_ALU_CFG",
    "DPU.BS_MUL_CFG", "DPU.BS_RELUX_CMP_VALUE", "DPU.BS_OW_CFG", "DPU.BS_OW_OP")
_DPU_WDMA = ("DPU.WDMA_SIZE_0", "DPU.WDMA_SIZE_1")
_DPU_TAIL = (
    "DPU.BN_CFG", "DPU.BN_ALU_CFG", "DPU.BN_MUL_CFG", "DPU.BN_RELUX_CMP_VALUE", "DPU.EW_CFG",
    "DPU.EW_CVT_OFFSET_VALUE", "DPU.EW_CVT_SCALE_VALUE", "DPU.EW_RELUX_CMP_VALUE",
    "DPU.OUT_CVT_OFFSET", "DPU.OUT_CVT_SCALE", "DPU.OUT_CVT_SHIFT",
    *(f"DPU.EW_OP_VALUE_{i}" for i in range(8)), "DPU.SURFACE_ADD", "DPU.UNK_40C4",
    "DPU.LUT_ACCESS_CFG", "DPU.LUT_ACCESS_DATA", "DPU.LUT_CFG", "DPU.LUT_INFO",
    "DPU.LUT_LE_START", "DPU.LUT_LE_END", "DPU.LUT_LO_START", "DPU.LUT_LO_END",
    "DPU.LUT_LE_SLOPE_SCALE", "DPU.LUT_LE_SLOPE_SHIFT", "DPU.LUT_LO_SLOPE_SCALE",
    "DPU.LUT_LO_SLOPE_SHIFT")
_RDMA_RK3588 = (
    "DPU_RDMA.RDMA_DATA_CUBE_WIDTH", "DPU_RDMA.RDMA_DATA_CUBE_HEIGHT",
    "DPU_RDMA.RDMA_DATA_CUBE_CHANNEL", "DPU_RDMA.RDMA_SRC_BASE_ADDR",
    "DPU_RDMA.RDMA_BRDMA_CFG", "DPU_RDMA.RDMA_BS_BASE_ADDR", "DPU_RDMA.RDMA_NRDMA_CFG",
    "DPU_RDMA.RDMA_BN_BASE_ADDR", "DPU_RDMA.RDMA_ERDMA_CFG", "DPU_RDMA.RDMA_EW_BASE_ADDR",
    "DPU_RDMA.RDMA_EW_SURF_STRIDE", "DPU_RDMA.RDMA_FEATURE_MODE_CFG",
    "DPU_RDMA.RDMA_SRC_DMA_CFG", "DPU_RDMA.RDMA_SURF_NOTCH", "DPU_RDMA.RDMA_PAD_CFG",
    "DPU_RDMA.RDMA_WEIGHT", "DPU_RDMA.RDMA_EW_SURF_NOTCH")
_RDMA_RK3568 = (
    "DPU_RDMA.RDMA_DATA_CUBE_WIDTH", "DPU_RDMA.RDMA_DATA_CUBE_HEIGHT",
    "DPU_RDMA.RDMA_DATA_CUBE_CHANNEL", "DPU_RDMA.RDMA_SRC_BASE_ADDR",
    "DPU_RDMA.RDMA_BRDMA_CFG", "DPU_RDMA.RDMA_BS_BASE_ADDR", "DPU_RDMA.UNK_5024",
    "DPU_RDMA.RDMA_NRDMA_CFG", "DPU_RDMA.RDMA_BN_BASE_ADDR", "DPU_RDMA.UNK_5030",
    "DPU_RDMA.RDMA_ERDMA_CFG", "DPU_RDMA.RDMA_EW_BASE_ADDR", "DPU_RDMA.UNK_503C",
    "DPU_RDMA.RDMA_EW_SURF_STRIDE", "DPU_RDMA.RDMA_FEATURE_MODE_CFG",
    "DPU_RDMA.RDMA_SRC_DMA_CFG", "DPU_RDMA.RDMA_SURF_NOTCH", "DPU_RDMA.RDMA_PAD_CFG",
    "DPU_RDMA.RDMA_WEIGHT")
DPU_ORDER = {
    "RK3588": _DPU_HEAD + _DPU_WDMA + _DPU_TAIL + _RDMA_RK3588,
    "RK3568": _DPU_HEAD + _DPU_TAIL + _RDMA_RK3568,
}
FLYING_PREFIX = ("DPU.S_POINTER", "DPU_RDMA.RDMA_S_POINTER")
S_POINTER = {"POINTER_PP_EN": 1, "EXECUTER_PP_EN": 1, "POINTER_PP_MODE": 1}  # 0xE

# Burst lengths and mode words the vendor writes, per chip (fixture constants).
_OUTPUT_TO_MEMORY = {"RK3588": 2, "RK3568": 4}      # FEATURE_MODE_CFG.OUTPUT_MODE
_DPU_BURST = {"RK3588": 15, "RK3568": 2}            # FEATURE_MODE_CFG.BURST_LEN
_RDMA_BURST = {"RK3588": 15, "RK3568": 8}           # RDMA_FEATURE_MODE_CFG.BURST_LEN
PRECISION = {"int8": 0, "int16": 1, "fp16": 2}      # DPU precision codes (hw §3.3)


def npu_of(chip: str) -> str:
    """The NPU whose register layout `chip` has (RK3566 -> RK3568; RK3576 -> RK3588)."""
    npu = get_target(chip).npu_of
    return npu if npu in DPU_ORDER else "RK3588"


@dataclass(frozen=True)
class DpuSetup:
    """One task's DPU settings. Stage fields are dicts of register fields (unnamed = 0);
    the defaults bypass a stage."""

    width: int                          # cube the DPU writes
    height: int
    channels: int                       # real channels
    padded_channels: int                # channels the DPU processes (WDMA, cube)
    dst: Address
    dst_surface_stride: int             # bytes
    size_e: int                         # BS_OW_CFG SIZE_E_0..2 (8-channel groups - 1)
    flying: bool = False                # input from memory (MRDMA) instead of the CORE
    depthwise: bool = False
    data_format: dict = field(default_factory=dict)
    bs: dict = field(default_factory=lambda: {"BS_BYPASS": 1, "BS_ALU_BYPASS": 1,
                                              "BS_MUL_BYPASS": 1, "BS_RELU_BYPASS": 1})
    bs_alu: int = 0
    bs_mul: dict = field(default_factory=dict)
    ow: dict = field(default_factory=dict)          # BS_OW_CFG extra fields
    bn: dict = field(default_factory=lambda: {"BN_BYPASS": 1, "BN_ALU_BYPASS": 1,
                                              "BN_MUL_BYPASS": 1, "BN_RELU_BYPASS": 1})
    bn_relux: int = 0
    ew: dict = field(default_factory=lambda: {"EW_BYPASS": 1, "EW_OP_BYPASS": 1,
                                              "EW_LUT_BYPASS": 1, "EW_OP_CVT_BYPASS": 1,
                                              "EW_RELU_BYPASS": 1})
    ew_cvt_offset: int = 0
    ew_cvt_scale: dict = field(default_factory=lambda: {"EW_OP_CVT_SCALE": 1})
    out_offset: int = 0
    out_scale: int = 1
    out_shift: int = 0
    out_fp32_to_fp16: bool = False
    src: Address | None = None                      # MRDMA (flying)
    src_line_notch: int = 0
    stream: Address | None = None                   # BRDMA (BS operands per channel)
    brdma_use: int = 0
    ew_src: Address | None = None                   # ERDMA
    ew_surface_stride: int = 0
    erdma: dict = field(default_factory=lambda: {"ERDMA_DISABLE": 1})
    rdma_precision: int = 0
    rdma_in_precision: int = 0
    stream_bytes: int = 0                           # RK3568: UNK_5024 = bytes / 8 - 1
    bn_alu: int = 0                                 # BN_ALU_CFG operand
    bn_mul: dict = field(default_factory=dict)      # BN_MUL_CFG fields
    ew_relux: int = 0                               # EW_RELUX_CMP_VALUE
    ew_operands: tuple[int, ...] = ()               # EW_OP_VALUE_0.. (register operands)
    lut: tuple[int, ...] | None = None              # LE (= LO) table, LUT_ENTRIES entries


def dpu_values(values: RegisterValues, d: DpuSetup) -> None:
    """Set every DPU and DPU_RDMA register of `DPU_ORDER` from `d`."""
    npu = npu_of(values.chip)
    conv_mode = 3 if d.depthwise else 0
    values.set("DPU.FEATURE_MODE_CFG", FLYING_MODE=int(d.flying), CONV_MODE=conv_mode,
               OUTPUT_MODE=_OUTPUT_TO_MEMORY[npu], BURST_LEN=_DPU_BURST[npu])
    values.set("DPU.DATA_FORMAT", **d.data_format)
    values.set("DPU.OFFSET_PEND")
    values.address("DPU.DST_BASE_ADDR", d.dst)
    values.set_bytes("DPU.DST_SURF_STRIDE", "DST_SURF_STRIDE", d.dst_surface_stride)
    values.set("DPU.DATA_CUBE_WIDTH", WIDTH=d.width - 1)
    values.set("DPU.DATA_CUBE_HEIGHT", HEIGHT=d.height - 1)
    values.set("DPU.DATA_CUBE_NOTCH_ADDR")
    values.set("DPU.DATA_CUBE_CHANNEL", CHANNEL=d.padded_channels - 1,
               ORIG_CHANNEL=d.channels - 1)
    values.set("DPU.BS_CFG", **d.bs)
    values.set("DPU.BS_ALU_CFG", BS_ALU_OPERAND=d.bs_alu)
    values.set("DPU.BS_MUL_CFG", **d.bs_mul)
    values.set("DPU.BS_RELUX_CMP_VALUE")
    values.set("DPU.BS_OW_CFG", SIZE_E_0=d.size_e, SIZE_E_1=d.size_e, SIZE_E_2=d.size_e,
               **d.ow)
    values.set("DPU.BS_OW_OP")
    if npu == "RK3588":
        values.set("DPU.WDMA_SIZE_0", CHANNEL_WDMA=d.padded_channels - 1)
        values.set("DPU.WDMA_SIZE_1", WIDTH_WDMA=d.width - 1, HEIGHT_WDMA=d.height - 1)
    values.set("DPU.BN_CFG", **d.bn)
    values.set("DPU.BN_ALU_CFG", BN_ALU_OPERAND=d.bn_alu)
    values.set("DPU.BN_MUL_CFG", **d.bn_mul)
    values.set("DPU.BN_RELUX_CMP_VALUE", BN_RELUX_CMP_DAT=d.bn_relux)
    values.set("DPU.EW_CFG", **d.ew)
    values.set("DPU.EW_CVT_OFFSET_VALUE", EW_OP_CVT_OFFSET=d.ew_cvt_offset)
    values.set("DPU.EW_CVT_SCALE_VALUE", **d.ew_cvt_scale)
    values.set("DPU.EW_RELUX_CMP_VALUE", EW_RELUX_CMP_DAT=d.ew_relux)
    values.set("DPU.OUT_CVT_OFFSET", OUT_CVT_OFFSET=d.out_offset)
    values.set("DPU.OUT_CVT_SCALE", OUT_CVT_SCALE=d.out_scale,
               FP32TOFP16_EN=int(d.out_fp32_to_fp16))
    values.set("DPU.OUT_CVT_SHIFT", OUT_CVT_SHIFT=d.out_shift)
    for i in range(8):
        operand = d.ew_operands[i] if i < len(d.ew_operands) else 0
        values.set(f"DPU.EW_OP_VALUE_{i}", **{f"EW_OPERAND_{i}": operand})
    values.set_bytes("DPU.SURFACE_ADD", "SURF_ADD", d.dst_surface_stride * (d.size_e + 1))
    values.set("DPU.UNK_40C4")
    values.set("DPU.LUT_ACCESS_CFG")
    values.set("DPU.LUT_ACCESS_DATA")
    last = LUT_ENTRIES - 1 if d.lut is not None else 0
    values.set("DPU.LUT_CFG")          # LE table only: under/overflow take its end entries
    values.set("DPU.LUT_INFO")         # index select 0: index = value - start, no fraction
    values.set("DPU.LUT_LE_START")
    values.set("DPU.LUT_LE_END", LUT_LE_END=last)
    values.set("DPU.LUT_LO_START")
    values.set("DPU.LUT_LO_END", LUT_LO_END=last)
    for name in ("DPU.LUT_LE_SLOPE_SCALE", "DPU.LUT_LE_SLOPE_SHIFT",
                 "DPU.LUT_LO_SLOPE_SCALE", "DPU.LUT_LO_SLOPE_SHIFT"):
        values.set(name)               # slope 0: flat beyond the table
    _rdma_values(values, d, npu, conv_mode)


def _rdma_values(values: RegisterValues, d: DpuSetup, npu: str, conv_mode: int) -> None:
    values.set("DPU_RDMA.RDMA_DATA_CUBE_WIDTH", WIDTH=d.width - 1)
    values.set("DPU_RDMA.RDMA_DATA_CUBE_HEIGHT", HEIGHT=d.height - 1)
    values.set("DPU_RDMA.RDMA_DATA_CUBE_CHANNEL", CHANNEL=(d.padded_channels if not d.flying
                                                           else d.channels) - 1)
    values.address("DPU_RDMA.RDMA_SRC_BASE_ADDR", d.src)
    brdma_off = {"BRDMA_DISABLE": int(d.stream is None)} if npu == "RK3568" else {}
    values.set("DPU_RDMA.RDMA_BRDMA_CFG", BRDMA_DATA_USE=d.brdma_use, **brdma_off)
    values.address("DPU_RDMA.RDMA_BS_BASE_ADDR", d.stream)
    if npu == "RK3568":
        # vendor: the BS stream's 8-byte words - 1 (int8 8 B, fp16 4 B per padded
        # channel; iav: "C_out x 4 / 8 - 1"), 0 without a stream [FITTED]
        values.set("DPU_RDMA.UNK_5024", RAW=max(d.stream_bytes // 8 - 1, 0))
    nrdma_off = {"NRDMA_DISABLE": 1} if npu == "RK3568" else {}
    values.set("DPU_RDMA.RDMA_NRDMA_CFG", **nrdma_off)
    values.address("DPU_RDMA.RDMA_BN_BASE_ADDR", None)
    if npu == "RK3568":
        values.set("DPU_RDMA.UNK_5030")
    values.set("DPU_RDMA.RDMA_ERDMA_CFG", **d.erdma)
    values.address("DPU_RDMA.RDMA_EW_BASE_ADDR", d.ew_src)
    if npu == "RK3568":
        values.set("DPU_RDMA.UNK_503C")
    values.set_bytes("DPU_RDMA.RDMA_EW_SURF_STRIDE", "EW_SURF_STRIDE", d.ew_surface_stride)
    mode = {"FLYING_MODE": int(d.flying), "CONV_MODE": conv_mode,
            "BURST_LEN": _RDMA_BURST[npu], "IN_PRECISION": d.rdma_in_precision,
            "PROC_PRECISION": d.rdma_precision}
    if npu == "RK3588" and not d.flying:
        mode["MRDMA_DISABLE"] = 1
    values.set("DPU_RDMA.RDMA_FEATURE_MODE_CFG", **mode)
    values.set("DPU_RDMA.RDMA_SRC_DMA_CFG")
    values.set_bytes("DPU_RDMA.RDMA_SURF_NOTCH", "SURF_NOTCH_ADDR", d.src_line_notch)
    values.set("DPU_RDMA.RDMA_PAD_CFG")
    values.set("DPU_RDMA.RDMA_WEIGHT", M_WEIGHT=1, B_WEIGHT=1, N_WEIGHT=1, E_WEIGHT=1)
    if npu == "RK3588":
        values.set("DPU_RDMA.RDMA_EW_SURF_NOTCH")


# ------------------------------------------------------------------ elementwise tasks

_EW_ALU = {"max": 0, "min": 1, "add": 2, "sub": 4}   # EW_ALU_ALGO (hw §3.3)


def clamp_stage(prefix: str, zero_point: int, lo: int | None, hi: int | None,
                out_scale: int, out_shift: int) -> tuple[dict, int]:
    """BN-stage fields clamping [lo, hi] (output domain) before the output converter:
    ReLU at 0 when `lo` is the output zero point, ReLUX at the largest pre-converter
    value whose output is <= `hi` (exact for a monotone converter). RkcError for a lower
    bound other than the zero point."""
    if lo is None and hi is None:
        return ({f"{prefix}_BYPASS": 1, f"{prefix}_ALU_BYPASS": 1,
                 f"{prefix}_MUL_BYPASS": 1, f"{prefix}_RELU_BYPASS": 1}, 0)
    if lo != zero_point:
        raise RkcError(f"a clamp with lower bound {lo} (output zero point {zero_point}) "
                       "has no known DPU stage: only a ReLU at the zero point is programmed")
    fields = {f"{prefix}_ALU_BYPASS": 1, f"{prefix}_MUL_BYPASS": 1}
    if hi is None:
        return fields, 0
    return {**fields, f"{prefix}_RELUX_EN": 1}, relux_bound(hi - zero_point, out_scale,
                                                           out_shift)


def relux_bound(levels: int, scale: int, shift: int) -> int:
    """The largest v >= 0 with round_shift(v * scale, shift) <= levels (the output
    converter's rounding, `rkc.quant.requant.round_shift`). RkcError unless that v maps
    to exactly `levels`: otherwise clamping before the converter is not the same as
    clamping its output (a converter scaling up skips values)."""
    if levels < 0:
        raise RkcError(f"clamp upper bound {levels} levels below the zero point")
    half = (1 << (shift - 1)) if shift else 0
    bound = (((levels + 1) << shift) - half - 1) // scale
    if (bound * scale + half) >> shift != levels:
        raise RkcError(f"clamp upper bound {levels} levels is no output of the converter "
                       f"{scale} / 2^{shift}: the DPU cannot clamp it before converting")
    return bound


def _round_shift(v: int, scale: tuple[int, int]) -> int:
    m, s = scale
    return (v * m + ((1 << (s - 1)) if s else 0)) >> s


# ------------------------------------------------------------------ DPU stage plans
#
# The model of the DPU's element pipeline that rkc programs (hw §3.3 names the stages;
# where the TRM is silent, this is the meaning rkc gives the registers -- a simulator
# must model exactly this). Per element, int64 arithmetic, round_shift(v, s) =
# (v + 2^(s-1)) >> s:
#
#   source: the CORE's accumulator (a conv), or the MRDMA element (flying mode)
#   BS, BN (each unless *_BYPASS), in this order inside a stage:
#     ALU  (unless *_ALU_BYPASS): v = algo(v, op), ALGO 0 max, 1 min, 2 add, 4 minus
#          (v - op) -- the codes of EW_ALU_ALGO; op = *_ALU_CFG, or for BS with
#          BS_ALU_SRC = 1 the stream's int32 bias
#     MUL  (unless *_MUL_BYPASS): v = round_shift(v * m, s), m = *_MUL_OPERAND or the
#          stream's multiplier (BS_MUL_SRC = 1), s = *_MUL_SHIFT_VALUE or the stream's
#          truncate operand (BS_TRUNCATE_SRC = 1)
#     ReLU (unless *_RELU_BYPASS): v = max(v, 0); ReLUX (*_RELUX_EN): v = min(v, CMP)
#   EW (unless EW_BYPASS):
#     e = the ERDMA element (ERDMA_DATA_MODE 1: per pixel, walked like the output;
#         0: one value per channel, its C1 surfaces RDMA_EW_SURF_STRIDE apart), or with
#         EW_OP_SRC = 0 the register EW_OP_VALUE_0
#     converter (unless EW_OP_CVT_BYPASS): e = round_shift((e + EW_CVT_OFFSET) *
#         EW_OP_CVT_SCALE, EW_OP_CVT_SHIFT)
#     op (unless EW_OP_BYPASS): EW_OP_TYPE 0: v = algo(v, e) (EW_ALU_ALGO as above);
#         1: v = v * e, or with EW_MUL_PRELU v = (v < 0 ? v * e : v)
#     ReLU / ReLUX as above (EW_RELU_BYPASS, EW_RELUX_EN, EW_RELUX_CMP_VALUE)
#     LUT (unless EW_LUT_BYPASS): v = LE[v - LUT_LE_START] (LUT_INFO index select 0:
#         no fraction), index clamped to [0, LUT_LE_END] (slopes 0); the LE table as
#         loaded by `rkc.backends.weights.lut_load_writes`, entries signed 16-bit
#   OUT_CVT: y = saturate(round_shift(v * OUT_CVT_SCALE, OUT_CVT_SHIFT) + OUT_CVT_OFFSET)
#
# fp16 tasks (PROC_PRECISION 2): the same stages on float32 values (ALU add / minus /
# max / min, MUL a product; the stream bias and EW_OP_VALUE_0 are float32 bit
# patterns); an fp16 MRDMA / ERDMA element is widened to float32; the value entering the
# EW stage is rounded to f16 (the task's precision) and the EW result is rounded to f16
# by the output converter (scale 1, shift 0, FP32TOFP16_EN on RK3588).

_EW_ALU = {"max": 0, "min": 1, "add": 2, "sub": 4}   # EW_ALU_ALGO (hw §3.3)
_ALU_MAX = 0
_COMMUTING = ("add", "mul", "max", "min")
INT8_RANGE = (-128, 127)


@dataclass(frozen=True)
class Source:
    """What reaches the BN stage (after BS): for int8 the centred value u, whose int8
    value is `clamp(u + zero_point, low, high)` (the conv's result; for a flying-mode
    task the element minus its zero point, already in range)."""

    dtype: str
    zero_point: int = 0
    low: int = INT8_RANGE[0]
    high: int = INT8_RANGE[1]


PER_CHANNEL_EW_SURF_STRIDE = 16   # RDMA_EW_SURF_STRIDE in per-channel mode: field 1 (hw §3.4)


def _operand_setup(what: str, operand: EwOperand, src: Address) -> tuple[dict, int, int]:
    """ERDMA settings reading `operand` at `src`. Per pixel: walked like the output, its
    C1 surfaces RDMA_EW_SURF_STRIDE apart. Per channel: one vector of the channels'
    values, channel c at byte c x element size (a 1 x 1 NC1HWC2 tensor stored densely,
    surface stride = one pixel), RDMA_EW_SURF_STRIDE field 1 as hw §3.4 requires."""
    f = operand.feature
    mode = 0 if operand.per_channel else 1
    size = 1 if f.dtype == "int8" else 2
    stride = f.surface_stride
    if operand.per_channel:
        if f.surfaces > 1 and f.surface_stride != f.pixel_bytes:
            raise RkcError(f"{what}: a per-channel operand must store its channels "
                           f"contiguously (surface stride {f.surface_stride} B, pixel "
                           f"{f.pixel_bytes} B)")
        stride = PER_CHANNEL_EW_SURF_STRIDE
    return {"ew_src": src, "ew_surface_stride": stride,
            "erdma": {"ERDMA_DATA_MODE": mode, "ERDMA_DATA_SIZE": size}}, mode, size


def _output_clamp(what: str, low: int | None, high: int | None, zero_point: int,
                  scale: tuple[int, int], prefix: str) -> tuple[dict, int]:
    """ReLU / ReLUX fields of stage `prefix` clamping the converter's output to
    [low, high] (None or beyond int8: saturation does it)."""
    fields: dict = {f"{prefix}_RELU_BYPASS": 1}
    bound = 0
    if low is not None and low > INT8_RANGE[0]:
        if low != zero_point:
            raise RkcError(f"{what}: a lower clamp {low} other than the output zero point "
                           f"{zero_point} has no DPU stage")
        fields = {}
    if high is not None and high < INT8_RANGE[1]:
        fields[f"{prefix}_RELUX_EN"] = 1
        bound = relux_bound(high - zero_point, *scale)
    return fields, bound


def _fold_clamps(what: str, source: Source, stages: list[DpuStage]) -> Source:
    """Leading int8 clamps that only narrow the range (scale 1, same zero points) become
    the source's range."""
    while stages and isinstance(stages[0], ClampStage):
        c = stages[0]
        z = source.zero_point
        if not (is_identity(c.scale) and c.x_zero_point == z == c.output_zero_point):
            break
        low = max(source.low, c.clamp_low if c.clamp_low is not None else INT8_RANGE[0])
        high = min(source.high, c.clamp_high if c.clamp_high is not None else INT8_RANGE[1])
        if low > high:
            raise RkcError(f"{what}: clamps [{low}, {high}] leave no value")
        source = Source(source.dtype, z, low, high)
        stages.pop(0)
    return source


def _bn_clamp_scale(source: Source, scale: tuple[int, int]) -> dict:
    """BN fields giving round_shift(clamp(u, low - z, high - z) * scale): ALU max with
    the lower bound, MUL by `scale`, ReLUX at the scaled upper bound (all exact: the
    rescale is monotone)."""
    lo, hi = source.low - source.zero_point, source.high - source.zero_point
    if hi < 0:
        raise RkcError(f"int8 range [{source.low}, {source.high}] lies below the zero "
                       f"point {source.zero_point}: no ReLUX bound")
    bn = {"BN_ALU_ALGO": _ALU_MAX, "BN_RELU_BYPASS": 1, "BN_RELUX_EN": 1}
    mul: dict = {}
    if is_identity(scale):
        bn["BN_MUL_BYPASS"] = 1
    else:
        mul = {"BN_MUL_OPERAND": scale[0], "BN_MUL_SHIFT_VALUE": scale[1]}
    return {"bn": bn, "bn_alu": lo, "bn_mul": mul, "bn_relux": _round_shift(hi, scale)}


def plan_stages(what: str, source: Source, stages: tuple[DpuStage, ...],
                operand_address, setup: DpuSetup) -> DpuSetup:
    """`setup` with the BN, EW and output-converter settings that compute `stages` on
    `source` exactly (the model above). `operand_address(feature, per_channel)` gives the
    address the ERDMA reads for this task. RkcError for a sequence the DPU cannot
    compute exactly in one pass."""
    todo = list(stages)
    kinds = [type(st).__name__ for st in stages]
    if source.dtype == "fp16":
        return _plan_fp16(what, todo, kinds, operand_address, setup)
    source = _fold_clamps(what, source, todo)
    bypass_ew = {"ew": DpuSetup.__dataclass_fields__["ew"].default_factory()}
    if not todo:
        return replace(setup, **_bn_clamp_scale(source, (1, 0)), **bypass_ew,
                       out_offset=source.zero_point, out_scale=1, out_shift=0)
    first, rest = todo[0], todo[1:]
    if isinstance(first, LutStage) and not rest:
        lo, hi = source.low - source.zero_point, source.high - source.zero_point
        table = [first.table[min(i, hi - lo) + source.low + 128] for i in range(LUT_ENTRIES)]
        return replace(
            setup, bn={"BN_MUL_BYPASS": 1, "BN_RELUX_EN": 1, "BN_ALU_ALGO": _EW_ALU["add"]},
            bn_alu=-lo, bn_relux=hi - lo,
            ew={"EW_OP_BYPASS": 1, "EW_OP_CVT_BYPASS": 1, "EW_RELU_BYPASS": 1},
            lut=tuple(table), out_offset=0, out_scale=1, out_shift=0)
    if isinstance(first, ClampStage | BinaryStage):
        x_zp = first.x_zero_point
        if x_zp != source.zero_point:
            raise RkcError(f"{what}: stage input zero point {x_zp} is not the value's "
                           f"{source.zero_point}")
        out_zp = first.output_zero_point
        low, high = first.clamp_low, first.clamp_high
        for after in rest:   # identity clamps on the stage's output
            if isinstance(after, ClampStage) and not (
                    is_identity(after.scale)
                    and after.x_zero_point == out_zp == after.output_zero_point):
                raise RkcError(f"{what}: stages {kinds}: the clamp after the op requantizes "
                               f"(zero point {after.x_zero_point} -> "
                               f"{after.output_zero_point}, scale {after.scale}), which "
                               "needs a second output converter after the op's")
            if not isinstance(after, ClampStage):
                raise RkcError(f"{what}: stages {kinds} have no one-pass DPU form (only one "
                               "op, then clamps, after the conv)")
            low = max(x for x in (low, after.clamp_low) if x is not None) if (
                low is not None or after.clamp_low is not None) else None
            high = min(x for x in (high, after.clamp_high) if x is not None) if (
                high is not None or after.clamp_high is not None) else None
        if isinstance(first, ClampStage):
            relu, relux = _output_clamp(what, low, high, out_zp, (1, 0), "EW")
            return replace(setup, **_bn_clamp_scale(source, first.scale),
                           ew={"EW_OP_BYPASS": 1, "EW_OP_CVT_BYPASS": 1, "EW_LUT_BYPASS": 1,
                               **relu}, ew_relux=relux, out_offset=out_zp, out_scale=1,
                           out_shift=0)
        if first.reversed and first.op not in _COMMUTING:
            raise RkcError(f"{what}: {first.op} with the conv's result on the right has no "
                           "DPU form (EW_ALU_ALGO minus computes value - operand)")
        ops, mode, size = _operand_setup(what, first.operand,
                                         operand_address(first.operand.feature,
                                                         first.operand.per_channel))
        relu, relux = _output_clamp(what, low, high, out_zp, first.out_scale, "EW")
        ew = {"EW_OP_SRC": 1, "EW_DATA_MODE": mode, "EDATA_SIZE": size, "EW_LUT_BYPASS": 1,
              "EW_CVT_TYPE": 1, **relu}
        if first.op == "mul":
            ew["EW_OP_TYPE"] = 1
        else:
            ew["EW_ALU_ALGO"] = _EW_ALU[first.op]
        m, sh = first.operand_scale
        return replace(setup, **_bn_clamp_scale(source, first.x_scale), ew=ew, **ops,
                       ew_cvt_offset=-first.operand.zero_point,
                       ew_cvt_scale={"EW_OP_CVT_SCALE": m, "EW_OP_CVT_SHIFT": sh},
                       ew_relux=relux, out_offset=out_zp, out_scale=first.out_scale[0],
                       out_shift=first.out_scale[1])
    raise RkcError(f"{what}: int8 stages {kinds} have no one-pass DPU form")


def _plan_fp16(what: str, todo: list[DpuStage], kinds: list[str], operand_address,
               setup: DpuSetup) -> DpuSetup:
    """fp16 stages: one EW op (binary, leaky relu, prelu), then at most a ReLU."""
    def relu_only(c: DpuStage) -> bool:
        return (isinstance(c, ClampStage) and is_identity(c.scale) and c.clamp_low == 0
                and c.clamp_high is None and c.x_zero_point == c.output_zero_point == 0)

    if not todo:
        return setup
    first, rest = todo[0], todo[1:]
    if relu_only(first) and not rest:
        return replace(setup, ew={"EW_OP_BYPASS": 1, "EW_OP_CVT_BYPASS": 1,
                                  "EW_LUT_BYPASS": 1})
    if len(rest) > 1 or (rest and not relu_only(rest[0])):
        raise RkcError(f"{what}: fp16 stages {kinds} have no one-pass DPU form (one op, "
                       "then at most a relu)")
    relu = {} if rest else {"EW_RELU_BYPASS": 1}
    ew = {"EW_OP_CVT_BYPASS": 1, "EW_LUT_BYPASS": 1, **relu}
    if isinstance(first, LeakyReluStage):
        bits = int(np.float32(first.alpha).view(np.uint32))
        return replace(setup, ew={**ew, "EW_OP_TYPE": 1, "EW_MUL_PRELU": 1},
                       ew_operands=(bits,))
    if isinstance(first, PreluStage | BinaryStage):
        operand = first.slope if isinstance(first, PreluStage) else first.operand
        ops, mode, _ = _operand_setup(what, operand, operand_address(operand.feature,
                                                               operand.per_channel))
        ew.update(EW_OP_SRC=1, EW_DATA_MODE=mode, EDATA_SIZE=2)
        if isinstance(first, PreluStage):
            ew.update(EW_OP_TYPE=1, EW_MUL_PRELU=1)
        elif first.reversed and first.op not in _COMMUTING:
            raise RkcError(f"{what}: fp16 {first.op} with the conv's result on the right "
                           "has no DPU form")
        elif first.op == "mul":
            ew["EW_OP_TYPE"] = 1
        else:
            ew["EW_ALU_ALGO"] = _EW_ALU[first.op]
        return replace(setup, ew=ew, **ops)
    raise RkcError(f"{what}: fp16 stages {kinds} have no one-pass DPU form")


def lut_writes(chip: str, setup: DpuSetup) -> list:
    """The LUT load writes a task with a LUT stage starts with (LE and LO tables equal)."""
    if setup.lut is None:
        return []
    return lut_load_writes(chip, setup.lut, setup.lut)


def ew_writes(task: EwTask, chip: str, op_idx: int = 0) -> EmittedTask:
    """The register writes of a flying-mode elementwise task: the BS stage centres `a`
    (ALU add -a_zero_point; fp16: bypassed), `plan_stages` does the rest."""
    npu = npu_of(chip)
    values = RegisterValues(chip)
    for name in FLYING_PREFIX:
        values.set(name, **S_POINTER)
    a, out = task.a, task.output
    what = f"ew task {task.name}"
    same = [f for f in (task.b,) if f is not None and not task.b_per_channel]
    if any(f.surface_stride != a.surface_stride or f.line_stride != a.line_stride
           for f in (out, *same)):
        raise RkcError(f"{what}: operands and output must share line and surface strides "
                       "(the DPU walks them together)")
    fp16 = task.dtype == "fp16"
    setup = DpuSetup(
        width=a.width, height=a.height, channels=a.channels,
        padded_channels=a.surfaces * a.c2, dst=out.address,
        dst_surface_stride=out.surface_stride, size_e=1, flying=True, src=a.address,
        ow={"OD_BYPASS": 1})
    if fp16:
        p = PRECISION["fp16"]
        setup = replace(setup, data_format={"PROC_PRECISION": p, "IN_PRECISION": p,
                                            "OUT_PRECISION": p},
                        out_fp32_to_fp16=npu == "RK3588", rdma_precision=p,
                        rdma_in_precision=p)
        source = Source("fp16")
    else:
        setup = replace(setup, bs={"BS_ALU_ALGO": 2, "BS_MUL_BYPASS": 1,
                                   "BS_RELU_BYPASS": 1}, bs_alu=-task.a_zero_point)
        source = Source("int8", task.a_zero_point)

    def operand_address(feature: Feature, per_channel: bool) -> Address:
        return feature.address

    setup = plan_stages(what, source, task.stages(), operand_address, setup)
    dpu_values(values, setup)
    order = FLYING_PREFIX + DPU_ORDER[npu]
    mask = ENABLE_BITS["DPU"] | ENABLE_BITS["DPU_RDMA"]
    items = (*lut_writes(chip, setup), *values.ordered(order))
    return EmittedTask(tuple(items), mask, op_idx)
