"""PPU + PPU_RDMA at the register level: one pooling task in flying mode.

Modelled: the input cube (PPU_RDMA RDMA_CUBE_IN_*, equal to the PPU's DATA_CUBE_IN_*)
read from RDMA_SRC_BASE_ADDR with RDMA_SRC_LINE_STRIDE / RDMA_SRC_SURF_STRIDE in whole
c2-channel surfaces (padding channels pooled like the others); the pad value (RK3588: 35
bits over PADDING_VALUE_1/_2; RK3568: 19 bits, written in PADDING_VALUE_1/_2, 0x604C and
0x6050, which must agree) on the POOLING_PADDING_CFG sides; windows of
POOLING_KERNEL_CFG kernel / stride (every window must lie in input + padding, the PPU
hangs otherwise); max, min, or average = `round_shift(sum * RECIP_KERNEL_WIDTH *
RECIP_KERNEL_HEIGHT, 32)` over the padded window [UNCERTAIN: the PPU's average
arithmetic is not measured; this reading of the 2^16 / k reciprocals is rkc's]; int8
saturation; output surfaces DST_SURF_STRIDE apart, lines dense.
"""

from __future__ import annotations

import numpy as np

from rkc.backends.emit_dpu import npu_of
from rkc.backends.emit_ppu import RDMA_PRECISION
from rkc.quant.requant import round_shift
from rkc.sim.dpu import INT8, read_feature, write_feature
from rkc.sim.memory import Memory
from rkc.sim.registers import TaskRegisters
from rkc.targets import get_target

AVG, MAX, MIN = 0, 1, 2
RECIP_SHIFT = 32          # two 2^16 reciprocals


def _pad_value(regs: TaskRegisters, npu: str) -> int:
    if npu == "RK3588":
        low = regs.get("PPU.PADDING_VALUE_1_CFG", "PAD_VALUE_0")
        high = regs.get("PPU.PADDING_VALUE_2_CFG", "PAD_VALUE_1")
        wide = high << 32 | low
        return wide - (1 << 35) if wide >> 34 else wide
    value = regs.get("PPU.PADDING_VALUE_2_CFG", "PAD_VALUE_1")
    narrow = value & ((1 << 19) - 1)
    for name in ("PPU.PADDING_VALUE_1_CFG", "PPU.UNK_604C", "PPU.UNK_6050"):
        if regs.value(name) != narrow:
            raise regs.error(name, f"{regs.value(name):#x} differs from the pad value "
                             f"{narrow:#x} in PADDING_VALUE_2_CFG")
    return value


def run_pool(regs: TaskRegisters, mem: Memory, chip: str) -> None:
    """Execute the PPU + PPU_RDMA task in `regs` against `mem`."""
    npu = npu_of(chip)
    c2 = get_target(chip).c2("int8")
    mode = regs.fields("PPU.OPERATION_MODE_CFG")
    regs.require("PPU.OPERATION_MODE_CFG", "FLYING_MODE", (1,), "input from memory")
    for name in ("INDEX_EN", "USE_CNT", "NOTCH_ADDR"):
        regs.require("PPU.OPERATION_MODE_CFG", name, (0,), name)
    method = regs.require("PPU.OPERATION_MODE_CFG", "POOLING_METHOD", (AVG, MAX, MIN),
                          "avg / max / min")
    del mode
    fmt = regs.fields("PPU.DATA_FORMAT")
    regs.require("PPU.DATA_FORMAT", "PROC_PRECISION", (INT8,), "int8")
    regs.require("PPU.DATA_FORMAT", "DPU_FLYIN", (0,), "input from the DPU")
    regs.require("PPU_RDMA.RDMA_DATA_FORMAT", "IN_PRECISION",
                 (RDMA_PRECISION[(npu, "int8")],), "the chip's int8 code")
    dims = {}
    for block, prefix in (("PPU", "DATA_CUBE_IN"), ("PPU", "DATA_CUBE_OUT"),
                          ("PPU_RDMA", "RDMA_CUBE_IN")):
        short = prefix.replace("DATA_", "").replace("RDMA_", "")
        dims[prefix] = tuple(regs.get(f"{block}.{prefix}_{axis}", f"{short}_{axis}") + 1
                             for axis in ("WIDTH", "HEIGHT", "CHANNEL"))
    if dims["RDMA_CUBE_IN"] != dims["DATA_CUBE_IN"]:
        raise regs.error("PPU_RDMA.RDMA_CUBE_IN_*", "differs from PPU.DATA_CUBE_IN_*")
    in_w, in_h, channels = dims["DATA_CUBE_IN"]
    out_w, out_h, out_c = dims["DATA_CUBE_OUT"]
    if out_c != channels:
        raise regs.error("PPU.DATA_CUBE_OUT_CHANNEL", "pooling keeps the channels")
    k = regs.fields("PPU.POOLING_KERNEL_CFG")
    kh, kw = k["KERNEL_HEIGHT"] + 1, k["KERNEL_WIDTH"] + 1
    sh, sw = k["KERNEL_STRIDE_HEIGHT"] + 1, k["KERNEL_STRIDE_WIDTH"] + 1
    p = regs.fields("PPU.POOLING_PADDING_CFG")
    top, left, bottom, right = p["PAD_TOP"], p["PAD_LEFT"], p["PAD_BOTTOM"], p["PAD_RIGHT"]
    for axis, out, size, kk, s, p0, p1 in (("height", out_h, in_h, kh, sh, top, bottom),
                                           ("width", out_w, in_w, kw, sw, left, right)):
        if (out - 1) * s + kk > size + p0 + p1:
            raise regs.error("PPU.POOLING_KERNEL_CFG", f"{axis}: window {out - 1} ends "
                             f"outside the padded input (the PPU would hang)")
    surf_out = regs.address("PPU.DST_SURF_STRIDE")
    if fmt["INDEX_ADD"] << 4 != surf_out:
        raise regs.error("PPU.DATA_FORMAT.INDEX_ADD", "differs from DST_SURF_STRIDE")
    x = read_feature(mem, regs.address("PPU_RDMA.RDMA_SRC_BASE_ADDR"), channels, in_h, in_w,
                     c2, regs.address("PPU_RDMA.RDMA_SRC_SURF_STRIDE"),
                     regs.address("PPU_RDMA.RDMA_SRC_LINE_STRIDE"),
                     f"task {regs.index}: PPU_RDMA input")
    pad = _pad_value(regs, npu)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right)), constant_values=pad)
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))
    win = win[:, :(out_h - 1) * sh + 1:sh, :(out_w - 1) * sw + 1:sw]
    if method == MAX:
        y = win.max(axis=(3, 4))
    elif method == MIN:
        y = win.min(axis=(3, 4))
    else:
        recip = (regs.get("PPU.RECIP_KERNEL_WIDTH", "RECIP_KERNEL_WIDTH")
                 * regs.get("PPU.RECIP_KERNEL_HEIGHT", "RECIP_KERNEL_HEIGHT"))
        y = round_shift(win.sum(axis=(3, 4)) * recip, RECIP_SHIFT)
    write_feature(mem, regs.address("PPU.DST_BASE_ADDR"), np.clip(y, -128, 127), c2,
                  surf_out, f"task {regs.index}: PPU output")
