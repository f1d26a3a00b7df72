"""Register writes of one convolution task (CNA + CORE + DPU), per chip.

`conv_writes(task, chip)` lists the task's writes in the vendor's order for that chip
(`CONV_ORDER`: RK3588 126 writes, RK3568 133, read off every conv task of the fixture
programs), each value computed from the `ConvTask` and encoded through the register
table; address registers are `Relocation`s. The rules below were fitted to the 18 conv
tasks of conv_relu / resblock / mobilenet on RK3588 and RK3568 (all single-band,
single-core, one channel group); tests/test_register_diff.py compares every value and
docs/register-diff.md lists what still differs and why. Rules marked [FITTED] reproduce
those tasks but have no documented meaning; a tile that is not the whole layer (height
bands, channel groups) uses them unverified.

- FEATURE_GRAINS [FITTED]: RK3588 `rows_in + kh + pad_top` (the whole band plus one
  kernel; clamped to the 10-bit field); RK3568 iav's rule `sy + kh + sy * ((Wout < 28) +
  (Wout < 14))` capped at `rows_in`, `kh` for a one-column output, 1 for a 1x1 input.
- DATA_ENTRIES (one input row in CBUF entries): 64-byte entries on RK3588, 32-byte on
  RK3568 (which also writes the input width in CBUF_CON1[31:16]); the RK3588 packed
  (ARGB) input takes `W x rows` entries [FITTED: one sample].
- Input strides: RK3588 LINE_STRIDE = line bytes / 4 (a packed input: pixels), SURF_STRIDE
  = surface pixels - LINE_STRIDE (negative for a 1x1 input: the vendor writes -3);
  RK3568 LINE_STRIDE = line bytes / 8, SURF_STRIDE = surface pixels [FITTED].
- Pad value: the input zero point (RK3588 PAD_CON1; a depthwise conv repeats its byte in
  16 bits, 0xFFFF8080 for -128; RK3568 PAD_CON0[31:16]).
- Requantization: `rkc.backends.weights.split_requant` -- the output converter of the
  largest channel multiplier, per-channel multipliers in the stream; the clamp in the BN
  stage (`emit_dpu.clamp_stage`).
- fp16 (vendor: conv_relu RK3588, resblock RK3568): precision codes 2, no quantized-data
  flag on RK3588's CORE, a float32 bias stream (BS multiplier bypassed, OD_BYPASS), the
  output converter at scale 1 (RK3588 with FP32TOFP16_EN); RK3568's RDMA reads the fp16
  input with IN_PRECISION 5 [FITTED]; only a ReLU clamp.
- "exact" requantization (`ConvTask.uses_exact_requant`: int8 convs with post ops, or
  `requant="exact"`) [rkc's choice, UNVERIFIED on a board]: the stream of
  `weights.pack_exact_stream` (10 B per channel), BRDMA_DATA_USE = ALU | CPEND | MUL |
  truncate (0b1111), BS_MUL_CFG = BS_MUL_SRC | BS_TRUNCATE_SRC, shift 0: the BS stage
  gives round_shift((acc + bias) * M_c, S_c); the BN / EW stages and the output
  converter then follow `emit_dpu.plan_stages` (the conv's int8 clamp in BN, then the
  post ops). A post op's operand is read by ERDMA at the tile's rows and channel group.
- RK3568 only: RGB_BYTELENGTH = W x rows x 9 for the 3-channel packed input [FITTED: one
  channel count]; DMA_CON0 = 0x00171C07 and the other constant words the vendor writes.
"""

from __future__ import annotations

from dataclasses import replace

from rkc.backends.emit import Emitted, EmittedTask, RegisterValues
from rkc.backends.emit_dpu import (
    DPU_ORDER,
    FLYING_PREFIX,
    PRECISION,
    S_POINTER,
    DpuSetup,
    Source,
    clamp_stage,
    dpu_values,
    lut_writes,
    npu_of,
    plan_stages,
)
from rkc.backends.regcmd import ENABLE_BITS
from rkc.backends.tasks import Address, ConvTask, Feature
from rkc.backends.weights import (
    CHANNEL_MUL_SHIFT,
    EXACT_STREAM_BYTES_PER_CHANNEL,
    split_requant,
    stream_group,
    weight_layout,
)
from rkc.errors import RkcError
from rkc.targets import get_target

_CNA_RK3588 = (
    "CNA.CBUF_CON0", "CNA.DCOMP_REGNUM", "CNA.DCOMP_CTRL", "CNA.CONV_CON1", *FLYING_PREFIX,
    "CNA.CONV_CON1", "CNA.CONV_CON2", "CNA.CONV_CON3", "CNA.DATA_SIZE0", "CNA.DATA_SIZE1",
    "CNA.DATA_SIZE2", "CNA.DATA_SIZE3", "CNA.WEIGHT_SIZE0", "CNA.WEIGHT_SIZE1",
    "CNA.WEIGHT_SIZE2", "CNA.CBUF_CON0", "CNA.CBUF_CON1", "CNA.CVT_CON0", "CNA.CVT_CON1",
    "CNA.CVT_CON2", "CNA.CVT_CON3", "CNA.CVT_CON4", "CNA.FC_CON0", "CNA.FC_CON1",
    "CNA.PAD_CON0", "CNA.FEATURE_DATA_ADDR", "CNA.FC_CON2", "CNA.DMA_CON0", "CNA.DMA_CON1",
    "CNA.DMA_CON2", "CNA.FC_DATA_SIZE0", "CNA.FC_DATA_SIZE1", "CNA.DCOMP_CTRL",
    "CNA.DCOMP_REGNUM", "CNA.DCOMP_ADDR0", *(f"CNA.DCOMP_AMOUNT{i}" for i in range(16)),
    "CNA.CVT_CON5", "CNA.PAD_CON1", "CORE.MISC_CFG", "CORE.DATAOUT_SIZE_0",
    "CORE.DATAOUT_SIZE_1", "CORE.CLIP_TRUNCATE", "CORE.UNK_3030")
_CNA_RK3568 = (
    "CNA.S_POINTER", "CMAC.S_POINTER", "CORE.S_POINTER", "CNA.CBUF_CON0", *FLYING_PREFIX,
    "CNA.CONV_CON1", "CNA.CONV_CON2", "CNA.CONV_CON3", "CNA.CONV_CON4", "CNA.DATA_SIZE0",
    "CNA.DATA_SIZE1", "CNA.DATA_SIZE2", "CNA.DATA_SIZE3", "CNA.WEIGHT_SIZE0",
    "CNA.WEIGHT_SIZE1", "CNA.WEIGHT_SIZE2", "CNA.CBUF_CON0", "CNA.CBUF_CON1",
    "CNA.CVT_CON0", "CNA.CVT_CON1", "CNA.CVT_CON2", "CNA.CVT_CON3", "CNA.CVT_CON4",
    "CNA.FC_CON0", "CNA.FC_CON1", "CNA.PAD_CON0", "CNA.FEATURE_DATA_ADDR", "CNA.FC_CON2",
    "CNA.DMA_CON0", "CNA.DMA_CON1", "CNA.DMA_CON2", "CNA.FC_DATA_SIZE0", "CNA.FC_DATA_SIZE1",
    "CNA.DCOMP_CTRL", "CNA.DCOMP_REGNUM", "CNA.DCOMP_ADDR0",
    *(f"CNA.UNK_{o:04X}" for o in range(0x1114, 0x1140, 4)),
    *(f"CNA.DCOMP_AMOUNT{i}" for i in range(4)),
    *(f"CNA.UNK_{o:04X}" for o in range(0x1210, 0x1234, 4)),
    "CMAC.MISC_CFG", "CORE.MISC_CFG", "CORE.DATAOUT_SIZE_0", "CORE.DATAOUT_SIZE_1",
    "CORE.UNK_302C")
CONV_ORDER = {
    "RK3588": _CNA_RK3588 + DPU_ORDER["RK3588"],
    "RK3568": _CNA_RK3568 + DPU_ORDER["RK3568"],
}
# The op-enable mask of a conv task: CNA | CORE | DPU | DPU_RDMA; the RK3568 programs
# also set bit 1 (reserved in the TRM).
CONV_ENABLE = {"RK3588": 0x1D, "RK3568": 0x1F}
ENTRY_BYTES = {"RK3588": 64, "RK3568": 32}   # CBUF_CON1.DATA_ENTRIES unit
ARGB_IN_ONE_CHANNEL = 8                       # CONV_CON1.ARGB_IN: 8..11 = 1..4 channels
UINT8_CVT = {"scale": 1 << 14, "offset": -128, "truncate": 14}  # x - 128 (vendor RK3568)
STREAM_BYTES_PER_CHANNEL = {"int8": 8, "fp16": 4}  # bias + offset + multiplier / float32
FP16_RDMA_IN_PRECISION = {"RK3588": 2, "RK3568": 5}  # vendor fp16 convs [FITTED]


def _grains(task: ConvTask, npu: str, out_width: int) -> int:
    t = task.tile
    kh = task.kernel[0]
    if npu == "RK3588":
        return min(t.rows_in + kh + t.pad_top, (1 << 10) - 1)
    if task.input.width == 1 and t.rows_in == 1:
        return 1
    if out_width == 1:
        return kh
    sy = task.strides[0]
    return min(sy + kh + sy * ((out_width < 28) + (out_width < 14)), t.rows_in)


def conv_values(task: ConvTask, chip: str) -> RegisterValues:
    """Every register value of `task` on `chip` (see the module docstring)."""
    return _conv_values(task, chip)[0]


def _conv_values(task: ConvTask, chip: str) -> tuple[RegisterValues, DpuSetup]:
    npu = npu_of(chip)
    int8 = task.dtype == "int8"
    target = get_target(chip)
    values = RegisterValues(chip)
    x, y, t = task.input, task.output, task.tile
    kh, kw = task.kernel
    c0, c1 = t.out_channels
    kernels = t.kernels
    dw = task.depthwise
    in_channels = kernels if dw else x.channels
    layout = weight_layout(target, kernels, 1 if dw else in_channels, kh, kw, dw, x.packed,
                           task.dtype)
    cpad = layout.padded_channels
    kpad = target.padded_out_channels(kernels, task.dtype, dw)
    out_w, out_h = y.width, t.rows_out
    in_w, in_h = x.width, t.rows_in

    # addresses of this tile: rows, channel groups
    if c0 % y.c2 or (dw and c0 % x.c2):
        raise RkcError(f"conv task {task.name}: channel group starting at {c0} is not a "
                       f"whole number of atoms")
    group = layout.channel_group if dw else layout.kernel_group
    if c0 and (group is None or c0 % group or (int8 and c0 % stream_group(target))):
        raise RkcError(f"conv task {task.name}: channel group starting at {c0} does not "
                       f"start a weight group of {group} kernels")
    in_address = x.address.plus(t.in_rows[0] * x.line_stride
                                + (c0 // x.c2 * x.surface_stride if dw else 0))
    out_address = y.address.plus(t.out_rows[0] * y.line_stride + c0 // y.c2 * y.surface_stride)
    weights = task.weights.plus(c0 * (kh * kw if dw else layout.bytes_per_kernel))
    stream_unit = (EXACT_STREAM_BYTES_PER_CHANNEL if task.uses_exact_requant
                   else STREAM_BYTES_PER_CHANNEL[task.dtype])
    stream = task.stream.plus(c0 * stream_unit)

    if npu == "RK3568":
        for name in ("CNA.S_POINTER", "CMAC.S_POINTER", "CORE.S_POINTER"):
            values.set(name, **S_POINTER)
    for name in FLYING_PREFIX:
        values.set(name, **S_POINTER)
    values.set("CNA.CBUF_CON0", DATA_BANK=task.data_banks, WEIGHT_BANK=task.weight_banks,
               WEIGHT_REUSE=int(task.weight_reuse))
    con1 = {"CONV_MODE": 3 if dw else 0, "IN_PRECISION": PRECISION[task.dtype],
            "PROC_PRECISION": PRECISION[task.dtype]}
    if x.packed:
        con1["ARGB_IN"] = ARGB_IN_ONE_CHANNEL + x.channels - 1
        if npu == "RK3588":
            con1.update(GROUP_LINE_OFF=1, NONALIGN_DMA=1)
    values.set("CNA.CONV_CON1", **con1)
    values.set("CNA.CONV_CON2", FEATURE_GRAINS=_grains(task, npu, out_w))
    values.set("CNA.CONV_CON3", CONV_X_STRIDE=task.strides[1], CONV_Y_STRIDE=task.strides[0],
               ATROUS_X_DILATION=task.dilations[1] - 1,
               ATROUS_Y_DILATION=task.dilations[0] - 1)
    if npu == "RK3568":
        values.set("CNA.CONV_CON4", RGB_BYTELENGTH=in_w * in_h * 9 if x.packed else 0)
    values.set("CNA.DATA_SIZE0", DATAIN_WIDTH=in_w, DATAIN_HEIGHT=in_h)
    values.set("CNA.DATA_SIZE1", DATAIN_CHANNEL=cpad, DATAIN_CHANNEL_REAL=in_channels - 1)
    values.set("CNA.DATA_SIZE2", DATAOUT_WIDTH=out_w)
    values.set("CNA.DATA_SIZE3", DATAOUT_ATOMICS=out_w * out_h)
    values.set("CNA.WEIGHT_SIZE0", WEIGHT_BYTES=layout.total_bytes)
    values.set("CNA.WEIGHT_SIZE1", WEIGHT_BYTES_PER_KERNEL=layout.bytes_per_kernel)
    values.set("CNA.WEIGHT_SIZE2", WEIGHT_KERNELS=1 if dw else kernels, WEIGHT_HEIGHT=kh,
               WEIGHT_WIDTH=kw)
    row_bytes = in_w * cpad * layout.element_bytes
    if npu == "RK3588":
        entries = in_w * in_h if x.packed else -(-row_bytes // ENTRY_BYTES[npu])
        values.set("CNA.CBUF_CON1", DATA_ENTRIES=entries)
    else:
        values.set("CNA.CBUF_CON1", DATA_ENTRIES=-(-row_bytes // ENTRY_BYTES[npu]),
                   DATAIN_WIDTH=in_w)
    _input_converter(values, task, npu)
    values.set("CNA.FC_CON0")
    values.set("CNA.FC_CON1")
    zp = task.input_zero_point
    if npu == "RK3588":
        values.set("CNA.PAD_CON0", PAD_TOP=t.pad_top, PAD_LEFT=task.pads[1])
    else:
        values.set("CNA.PAD_CON0", PAD_TOP=t.pad_top, PAD_LEFT=task.pads[1], PAD_VALUE=zp)
    values.address("CNA.FEATURE_DATA_ADDR", in_address)
    values.set("CNA.FC_CON2")
    if npu == "RK3588":
        values.set("CNA.DMA_CON0", DATA_BURST_LEN=15, WEIGHT_BURST_LEN=15)
        line = x.line_stride // x.pixel_bytes if x.packed else x.line_stride // 4
        surface = x.surface_stride // x.pixel_bytes - line
    else:
        values.set("CNA.DMA_CON0", DATA_BURST_LEN=7, FETCH_PIXEL_LEN=28, WEIGHT_BURST_LEN=7,
                   UNK_BIT20=1)
        line = x.line_stride // 8
        surface = x.surface_stride // x.pixel_bytes
    if x.line_stride % (x.pixel_bytes if x.packed and npu == "RK3588" else
                        (4 if npu == "RK3588" else 8)):
        raise RkcError(f"conv task {task.name}: input line stride {x.line_stride} B is not "
                       "a whole number of stride units")
    values.set("CNA.DMA_CON1", LINE_STRIDE=line)
    values.set("CNA.DMA_CON2", SURF_STRIDE=surface)
    values.set("CNA.FC_DATA_SIZE0", DMA_WIDTH=in_w, DMA_HEIGHT=in_h)
    values.set("CNA.FC_DATA_SIZE1", DMA_CHANNEL=cpad)
    values.set("CNA.DCOMP_CTRL")
    values.set("CNA.DCOMP_REGNUM")
    values.address("CNA.DCOMP_ADDR0", weights)
    if npu == "RK3588":
        for i in range(16):
            values.set(f"CNA.DCOMP_AMOUNT{i}")
        values.set("CNA.CVT_CON5")
        pad = zp
        if dw:  # the vendor repeats the byte in 16 bits for depthwise convs
            pad = (zp & 0xFF) * 0x0101
            pad -= (pad & 0x8000) << 1
        values.set("CNA.PAD_CON1", PAD_VALUE=pad)
        values.set("CORE.MISC_CFG", QD_EN=int(int8), DW_EN=int(dw),
                   PROC_PRECISION=PRECISION[task.dtype])
        values.set("CORE.DATAOUT_SIZE_0", DATAOUT_WIDTH=out_w - 1, DATAOUT_HEIGHT=out_h - 1)
        values.set("CORE.DATAOUT_SIZE_1", DATAOUT_CHANNEL=kpad - 1)
        values.set("CORE.CLIP_TRUNCATE")
        values.set("CORE.UNK_3030")
    else:
        for o in (*range(0x1114, 0x1140, 4), *range(0x1210, 0x1234, 4)):
            values.set(f"CNA.UNK_{o:04X}")
        for i in range(4):
            values.set(f"CNA.DCOMP_AMOUNT{i}")
        values.set("CMAC.MISC_CFG", QD_EN=1, DW_EN=int(dw),
                   PROC_PRECISION=PRECISION[task.dtype])
        values.set("CORE.MISC_CFG", DW_EN=int(dw), PROC_PRECISION=PRECISION[task.dtype])
        values.set("CORE.DATAOUT_SIZE_0", DATAOUT_WIDTH=out_w - 1, DATAOUT_HEIGHT=out_h - 1)
        values.set("CORE.DATAOUT_SIZE_1", DATAOUT_CHANNEL=kpad - 1)
        values.set("CORE.UNK_302C")

    setup = DpuSetup(
        width=out_w, height=out_h, channels=kernels, padded_channels=kpad, dst=out_address,
        dst_surface_stride=y.surface_stride, size_e=3 if dw else 1, depthwise=dw,
        stream=stream, stream_bytes=kpad * stream_unit)
    if task.uses_exact_requant:
        setup = replace(
            setup, bs={"BS_ALU_ALGO": 2, "BS_ALU_SRC": 1, "BS_RELU_BYPASS": 1},
            bs_mul={"BS_MUL_SRC": 1, "BS_TRUNCATE_SRC": 1}, ow={"OW_SRC": 1},
            brdma_use=0b1111)
        low = max(task.clamp_low, -128) if task.clamp_low is not None else -128
        high = min(task.clamp_high, 127) if task.clamp_high is not None else 127
        source = Source("int8", task.output_zero_point, low, high)
        setup = plan_stages(f"conv task {task.name}", source, task.post_ops,
                            _operand_address(task, y), setup)
    elif int8:
        requant = split_requant(task.multipliers, task.shifts)
        bn, relux = clamp_stage("BN", task.output_zero_point, task.clamp_low,
                                task.clamp_high, requant.out_scale, requant.out_shift)
        setup = replace(
            setup, data_format={"BS_MUL_SHIFT_VALUE_NEG": CHANNEL_MUL_SHIFT},
            bs={"BS_ALU_ALGO": 2, "BS_ALU_SRC": 1, "BS_RELU_BYPASS": 1},
            bs_mul={"BS_MUL_SRC": 1, "BS_MUL_SHIFT_VALUE": CHANNEL_MUL_SHIFT},
            ow={"OW_SRC": 1}, bn=bn, bn_relux=relux, out_offset=task.output_zero_point,
            out_scale=requant.out_scale, out_shift=requant.out_shift, brdma_use=0b111)
    else:
        fp16 = PRECISION["fp16"]
        bn, _ = clamp_stage("BN", 0, task.clamp_low, None, 1, 0)
        setup = replace(
            setup, data_format={"PROC_PRECISION": fp16, "IN_PRECISION": fp16,
                                "OUT_PRECISION": fp16},
            bs={"BS_ALU_ALGO": 2, "BS_ALU_SRC": 1, "BS_MUL_BYPASS": 1, "BS_RELU_BYPASS": 1},
            ow={"OD_BYPASS": 1}, bn=bn, out_fp32_to_fp16=npu == "RK3588", brdma_use=0b1,
            rdma_precision=fp16, rdma_in_precision=FP16_RDMA_IN_PRECISION[npu])
        setup = plan_stages(f"conv task {task.name}", Source("fp16"), task.post_ops,
                            _operand_address(task, y), setup)
    dpu_values(values, setup)
    return values, setup


def _operand_address(task: ConvTask, output: Feature):
    """The ERDMA address of a post op's operand for this task's tile: the tile's rows
    and channel group (per-channel operands: its channel group only)."""
    t = task.tile

    def address(feature: Feature, per_channel: bool) -> Address:
        c0 = t.out_channels[0]
        if c0 % feature.c2:
            raise RkcError(f"conv task {task.name}: channel group {c0} is not a whole "
                           f"number of the operand's {feature.c2}-channel atoms")
        offset = c0 // feature.c2 * feature.surface_stride
        if not per_channel:
            if (feature.line_stride, feature.surface_stride, feature.height) != (
                    output.line_stride, output.surface_stride, output.height):
                raise RkcError(f"conv task {task.name}: a post op operand must have the "
                               "output's line and surface strides (the ERDMA walks it "
                               "with the output)")
            offset += t.out_rows[0] * feature.line_stride
        return feature.address.plus(offset)

    return address


def _input_converter(values: RegisterValues, task: ConvTask, npu: str) -> None:
    """CVT_CON0..4: identity for int8 inputs; x - 128 on the channel lanes for uint8."""
    if task.input_uint8:
        lanes = task.input.channels
        truncate = {f"CVT_TRUNCATE_{i}": UINT8_CVT["truncate"] for i in range(min(lanes, 4))}
        values.set("CNA.CVT_CON0", CVT_BYPASS=1, **truncate)
        for i in range(4):
            if i < lanes:
                values.set(f"CNA.CVT_CON{i + 1}", **{f"CVT_SCALE{i}": UINT8_CVT["scale"],
                                                     f"CVT_OFFSET{i}": UINT8_CVT["offset"]})
            else:
                values.set(f"CNA.CVT_CON{i + 1}", **{f"CVT_SCALE{i}": 1})
        return
    bypass = {"CVT_BYPASS": 1} if npu == "RK3588" else {}
    values.set("CNA.CVT_CON0", CVT_TYPE=1, DATA_SIGN=1, **bypass)
    for i in range(4):
        values.set(f"CNA.CVT_CON{i + 1}", **{f"CVT_SCALE{i}": 1})


def conv_writes(task: ConvTask, chip: str) -> list[Emitted]:
    """The writes of `task` in the vendor's order for `chip` (no tail), preceded by the
    LUT load writes when a post op is a table (`emit_dpu.lut_writes`)."""
    values, setup = _conv_values(task, chip)
    return [*lut_writes(chip, setup), *values.ordered(CONV_ORDER[npu_of(chip)])]


def conv_task(task: ConvTask, chip: str, op_idx: int = 0) -> EmittedTask:
    """`conv_writes` with the task's op-enable mask."""
    mask = CONV_ENABLE[npu_of(chip)]
    assert mask & 0x1D == ENABLE_BITS["CNA"] | ENABLE_BITS["CORE"] | ENABLE_BITS["DPU"] | \
        ENABLE_BITS["DPU_RDMA"]
    return EmittedTask(tuple(conv_writes(task, chip)), mask, op_idx)
