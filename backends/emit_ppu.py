"""Register writes of one PPU pooling task in flying mode (input read by PPU_RDMA).

`pool_writes(task, chip)` lists the writes in the vendor's order (`POOL_ORDER`: RK3588
26 writes, RK3568 29, from the MaxPool task of the resblock fixture). Measured against
that one max-pool task per chip (tests/test_register_diff.py); average pooling's
reciprocals (`RECIP_KERNEL_* = round(2^16 / k)`, hw §3.5) and pooling with padding are
[UNVERIFIED]. Per chip:
- pad value: RK3588 splits a 35-bit value over PADDING_VALUE_1 ([31:0]) and _2 ([2:0])
  (TRM); RK3568 writes one 19-bit value into PADDING_VALUE_1/_2, 0x604C and 0x6050
  (vendor: -128 as 0x7FF80);
- PPU_RDMA.RDMA_DATA_FORMAT: the vendor writes IN_PRECISION = 1 for int8 on RK3588, 0
  for int8 and 2 for fp16 on RK3568 (codes not documented);
- fp16 (resblock RK3568): the pad value is an IEEE half bit pattern (max pooling: the
  lowest half, 0xFBFF), PROC_PRECISION 2;
- RK3568 writes 1 to PPU_RDMA 0x7018 (meaning unknown).
"""

from __future__ import annotations

from rkc.backends.emit import Emitted, EmittedTask, RegisterValues
from rkc.backends.emit_dpu import S_POINTER, npu_of
from rkc.backends.regcmd import ENABLE_BITS
from rkc.backends.tasks import PoolTask
from rkc.errors import RkcError

_HEAD = (
    "PPU.S_POINTER", "PPU_RDMA.RDMA_S_POINTER", "PPU.DATA_CUBE_IN_WIDTH",
    "PPU.DATA_CUBE_IN_HEIGHT", "PPU.DATA_CUBE_IN_CHANNEL", "PPU.DATA_CUBE_OUT_WIDTH",
    "PPU.DATA_CUBE_OUT_HEIGHT", "PPU.DATA_CUBE_OUT_CHANNEL", "PPU.OPERATION_MODE_CFG",
    "PPU.POOLING_KERNEL_CFG", "PPU.RECIP_KERNEL_WIDTH", "PPU.RECIP_KERNEL_HEIGHT",
    "PPU.POOLING_PADDING_CFG", "PPU.PADDING_VALUE_1_CFG", "PPU.PADDING_VALUE_2_CFG")
_OUT = ("PPU.DST_BASE_ADDR", "PPU.DST_SURF_STRIDE", "PPU.DATA_FORMAT", "PPU.MISC_CTRL",
        "PPU_RDMA.RDMA_CUBE_IN_WIDTH", "PPU_RDMA.RDMA_CUBE_IN_HEIGHT",
        "PPU_RDMA.RDMA_CUBE_IN_CHANNEL")
_SRC = ("PPU_RDMA.RDMA_SRC_BASE_ADDR", "PPU_RDMA.RDMA_SRC_LINE_STRIDE",
        "PPU_RDMA.RDMA_SRC_SURF_STRIDE", "PPU_RDMA.RDMA_DATA_FORMAT")
POOL_ORDER = {
    "RK3588": _HEAD + _OUT + _SRC,
    "RK3568": _HEAD + ("PPU.UNK_604C", "PPU.UNK_6050") + _OUT + ("PPU_RDMA.UNK_7018",) + _SRC,
}
POOL_METHOD = {"avg": 0, "max": 1}
# PPU_RDMA.RDMA_DATA_FORMAT.IN_PRECISION the vendor writes; RK3588 fp16 is not in the
# fixtures we keep and takes the DPU code 2 [UNVERIFIED]
RDMA_PRECISION = {("RK3588", "int8"): 1, ("RK3568", "int8"): 0, ("RK3588", "fp16"): 2,
                  ("RK3568", "fp16"): 2}
PPU_PRECISION = {"int8": 0, "fp16": 2}
PPU_BURST_LEN = 3
POOL_ENABLE = ENABLE_BITS["PPU"] | ENABLE_BITS["PPU_RDMA"]


def pool_values(task: PoolTask, chip: str) -> RegisterValues:
    """Every register value of `task` on `chip`."""
    npu = npu_of(chip)
    values = RegisterValues(chip)
    x, y = task.input, task.output
    kh, kw = task.kernel
    sh, sw = task.strides
    top, left, bottom, right = task.pads
    values.set("PPU.S_POINTER", **S_POINTER)
    values.set("PPU_RDMA.RDMA_S_POINTER", **S_POINTER)
    values.set("PPU.DATA_CUBE_IN_WIDTH", CUBE_IN_WIDTH=x.width - 1)
    values.set("PPU.DATA_CUBE_IN_HEIGHT", CUBE_IN_HEIGHT=x.height - 1)
    values.set("PPU.DATA_CUBE_IN_CHANNEL", CUBE_IN_CHANNEL=x.channels - 1)
    values.set("PPU.DATA_CUBE_OUT_WIDTH", CUBE_OUT_WIDTH=y.width - 1)
    values.set("PPU.DATA_CUBE_OUT_HEIGHT", CUBE_OUT_HEIGHT=y.height - 1)
    values.set("PPU.DATA_CUBE_OUT_CHANNEL", CUBE_OUT_CHANNEL=y.channels - 1)
    values.set("PPU.OPERATION_MODE_CFG", POOLING_METHOD=POOL_METHOD[task.kind], FLYING_MODE=1)
    values.set("PPU.POOLING_KERNEL_CFG", KERNEL_WIDTH=kw - 1, KERNEL_HEIGHT=kh - 1,
               KERNEL_STRIDE_WIDTH=sw - 1, KERNEL_STRIDE_HEIGHT=sh - 1)
    recip = task.kind == "avg"
    values.set("PPU.RECIP_KERNEL_WIDTH",
               RECIP_KERNEL_WIDTH=round((1 << 16) / kw) if recip else 0)
    values.set("PPU.RECIP_KERNEL_HEIGHT",
               RECIP_KERNEL_HEIGHT=round((1 << 16) / kh) if recip else 0)
    values.set("PPU.POOLING_PADDING_CFG", PAD_LEFT=left, PAD_TOP=top, PAD_RIGHT=right,
               PAD_BOTTOM=bottom)
    pad = task.pad_value
    bits = 35 if npu == "RK3588" else 19
    if not -(1 << (bits - 1)) <= pad < 1 << (bits - 1):
        raise RkcError(f"pool task {task.name}: pad value {pad} does not fit the "
                       f"{bits}-bit PPU pad value of {npu}")
    if npu == "RK3588":
        wide = pad & ((1 << 35) - 1)           # 35-bit two's complement over two registers
        values.set("PPU.PADDING_VALUE_1_CFG", PAD_VALUE_0=wide & 0xFFFFFFFF)
        values.set("PPU.PADDING_VALUE_2_CFG", PAD_VALUE_1=wide >> 32)
    else:
        narrow = pad & ((1 << 19) - 1)         # 19-bit two's complement, written 4 times
        values.set("PPU.PADDING_VALUE_1_CFG", PAD_VALUE_0=narrow)
        values.set("PPU.PADDING_VALUE_2_CFG", PAD_VALUE_1=pad)
        values.set("PPU.UNK_604C", RAW=narrow)
        values.set("PPU.UNK_6050", RAW=narrow)
    values.address("PPU.DST_BASE_ADDR", y.address)
    values.set_bytes("PPU.DST_SURF_STRIDE", "DST_SURF_STRIDE", y.surface_stride)
    values.set_bytes("PPU.DATA_FORMAT", "INDEX_ADD", y.surface_stride,
                     PROC_PRECISION=PPU_PRECISION[x.dtype])
    values.set("PPU.MISC_CTRL", BURST_LEN=PPU_BURST_LEN)
    values.set("PPU_RDMA.RDMA_CUBE_IN_WIDTH", CUBE_IN_WIDTH=x.width - 1)
    values.set("PPU_RDMA.RDMA_CUBE_IN_HEIGHT", CUBE_IN_HEIGHT=x.height - 1)
    values.set("PPU_RDMA.RDMA_CUBE_IN_CHANNEL", CUBE_IN_CHANNEL=x.channels - 1)
    if npu == "RK3568":
        values.set("PPU_RDMA.UNK_7018", RAW=1)
    values.address("PPU_RDMA.RDMA_SRC_BASE_ADDR", x.address)
    values.set_bytes("PPU_RDMA.RDMA_SRC_LINE_STRIDE", "SRC_LINE_STRIDE", x.line_stride)
    values.set_bytes("PPU_RDMA.RDMA_SRC_SURF_STRIDE", "SRC_SURF_STRIDE", x.surface_stride)
    values.set("PPU_RDMA.RDMA_DATA_FORMAT", IN_PRECISION=RDMA_PRECISION[(npu, x.dtype)])
    return values


def pool_writes(task: PoolTask, chip: str) -> list[Emitted]:
    """The writes of `task` in the vendor's order for `chip` (no tail)."""
    return pool_values(task, chip).ordered(POOL_ORDER[npu_of(chip)])


def pool_task(task: PoolTask, chip: str, op_idx: int = 0) -> EmittedTask:
    return EmittedTask(tuple(pool_writes(task, chip)), POOL_ENABLE, op_idx)
