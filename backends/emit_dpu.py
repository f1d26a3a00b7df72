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

from rkc.backends.emit import EmittedTask, RegisterValues
from rkc.backends.regcmd import ENABLE_BITS
from rkc.backends.tasks import Address, EwTask
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
    values.set("DPU.BN_ALU_CFG")
    values.set("DPU.BN_MUL_CFG")
    values.set("DPU.BN_RELUX_CMP_VALUE", BN_RELUX_CMP_DAT=d.bn_relux)
    values.set("DPU.EW_CFG", **d.ew)
    values.set("DPU.EW_CVT_OFFSET_VALUE", EW_OP_CVT_OFFSET=d.ew_cvt_offset)
    values.set("DPU.EW_CVT_SCALE_VALUE", **d.ew_cvt_scale)
    values.set("DPU.EW_RELUX_CMP_VALUE")
    values.set("DPU.OUT_CVT_OFFSET", OUT_CVT_OFFSET=d.out_offset)
    values.set("DPU.OUT_CVT_SCALE", OUT_CVT_SCALE=d.out_scale,
               FP32TOFP16_EN=int(d.out_fp32_to_fp16))
    values.set("DPU.OUT_CVT_SHIFT", OUT_CVT_SHIFT=d.out_shift)
    for i in range(8):
        values.set(f"DPU.EW_OP_VALUE_{i}")
    values.set_bytes("DPU.SURFACE_ADD", "SURF_ADD", d.dst_surface_stride * (d.size_e + 1))
    for name in ("DPU.UNK_40C4", "DPU.LUT_ACCESS_CFG", "DPU.LUT_ACCESS_DATA", "DPU.LUT_CFG",
                 "DPU.LUT_INFO", "DPU.LUT_LE_START", "DPU.LUT_LE_END", "DPU.LUT_LO_START",
                 "DPU.LUT_LO_END", "DPU.LUT_LE_SLOPE_SCALE", "DPU.LUT_LE_SLOPE_SHIFT",
                 "DPU.LUT_LO_SLOPE_SCALE", "DPU.LUT_LO_SLOPE_SHIFT"):
            values.set(name)
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
    converter's rounding, `rkc.quant.requant.round_shift`)."""
    if levels < 0:
        raise RkcError(f"clamp upper bound {levels} levels below the zero point")
    half = (1 << (shift - 1)) if shift else 0
    return (((levels + 1) << shift) - half - 1) // scale


def ew_writes(task: EwTask, chip: str) -> EmittedTask:
    """The register writes of a flying-mode elementwise task (see the module docstring:
    the arithmetic settings are unverified)."""
    npu = npu_of(chip)
    values = RegisterValues(chip)
    for name in FLYING_PREFIX:
        values.set(name, **S_POINTER)
    a, out = task.a, task.output
    if a.surface_stride != out.surface_stride or (task.b is not None
                                                   and task.b.surface_stride
                                                   != a.surface_stride):
        raise RkcError(f"ew task {task.name}: operands and output must share one surface "
                       "stride (the DPU walks them together)")
    bn, relux = clamp_stage("BN", task.output_zero_point, task.clamp_low, task.clamp_high,
                            task.out_multiplier, task.out_shift)
    mul_a, shift_a = task.a_scale
    setup = DpuSetup(
        width=a.width, height=a.height, channels=a.channels,
        padded_channels=a.surfaces * a.c2, dst=out.address,
        dst_surface_stride=out.surface_stride, size_e=1, flying=True,
        data_format={"BS_MUL_SHIFT_VALUE_NEG": shift_a},
        bs={"BS_ALU_ALGO": 2, "BS_RELU_BYPASS": 1},
        bs_alu=-task.a_zero_point,
        bs_mul={"BS_MUL_OPERAND": mul_a, "BS_MUL_SHIFT_VALUE": shift_a},
        ow={"OD_BYPASS": 1}, bn=bn, bn_relux=relux,
        out_offset=task.output_zero_point, out_scale=task.out_multiplier,
        out_shift=task.out_shift, src=a.address)
    if task.b is not None:
        mul_b, shift_b = task.b_scale
        ew = {"EW_OP_SRC": 1, "EW_DATA_MODE": 1, "EDATA_SIZE": 1, "EW_LUT_BYPASS": 1,
              "EW_RELU_BYPASS": 1, "EW_CVT_TYPE": 1}
        if task.op == "mul":
            ew["EW_OP_TYPE"] = 1
        else:
            ew["EW_ALU_ALGO"] = _EW_ALU[task.op]
        setup = replace(setup, ew=ew, ew_cvt_offset=-task.b_zero_point,
                         ew_cvt_scale={"EW_OP_CVT_SCALE": mul_b, "EW_OP_CVT_SHIFT": shift_b},
                         ew_src=task.b.address, ew_surface_stride=task.b.surface_stride,
                         erdma={"ERDMA_DATA_MODE": 1, "ERDMA_DATA_SIZE": 1})
    dpu_values(values, setup)
    order = FLYING_PREFIX + DPU_ORDER[npu]
    mask = ENABLE_BITS["DPU"] | ENABLE_BITS["DPU_RDMA"]
    return EmittedTask(tuple(values.ordered(order)), mask)
