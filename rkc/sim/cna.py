"""CNA + CORE at the register level: one int8 convolution task's accumulators.

Modelled (RkcError naming the task and register for anything else):
- input: DATA_SIZE0 width x height from FEATURE_DATA_ADDR, DATAIN_CHANNEL_REAL + 1 real
  channels rounded up to whole c2 atoms (RK3588 LINE_STRIDE in 4-byte units and
  SURF_STRIDE = surface pixels - LINE_STRIDE; RK3568 LINE_STRIDE in 8-byte units and
  SURF_STRIDE in pixels; `rkc.backends.emit_conv`'s rules), or the packed few-channel
  input (ARGB_IN 8..11: 1..4 channels per pixel, one surface); int8 only (IN_PRECISION
  0, DATA_SIGN 1) with an identity input converter;
- padding: PAD_TOP / PAD_LEFT rows / columns of the pad value (RK3588 PAD_CON1 -- an int8
  value, or its byte repeated in 16 bits as the vendor writes for depthwise; RK3568
  PAD_CON0.PAD_VALUE), bottom / right padding implied by the output size (CORE
  DATAOUT_SIZE_0), extra input rows or columns unused;
- weights: the packed layout of `rkc.backends.weights` for the chip, read from
  DCOMP_ADDR0 (WEIGHT_BYTES, WEIGHT_BYTES_PER_KERNEL and WEIGHT_KERNELS must match it);
- MAC: `acc[k] = sum x * (w[k] + ow[k])` over taps and the padded channels (pad values
  included), `ow` the CPEND weight offset (BS_OW_CFG: stream or BS_OW_OP), strides
  CONV_X/Y_STRIDE, dilations ATROUS + 1; depthwise (CONV_MODE 3, DW_EN) per channel.
- CORE: DATAOUT width / height / padded channels hand the cube to the DPU;
  CLIP_TRUNCATE must be 0.
"""

from __future__ import annotations

import numpy as np

from rkc.backends.emit_dpu import npu_of
from rkc.backends.weights import unpack_weights, weight_layout
from rkc.errors import RkcError
from rkc.quant.integer_kernels import conv2d_acc
from rkc.sim.dpu import INT8, conv_stream_and_offsets, dpu_geometry, read_feature, run_dpu
from rkc.sim.memory import Memory
from rkc.sim.registers import TaskRegisters
from rkc.targets import get_target

ARGB_ONE_CHANNEL = 8
DIRECT, DEPTHWISE = 0, 3


def _pad_value(regs: TaskRegisters, npu: str) -> int:
    if npu == "RK3568":
        v = regs.get("CNA.PAD_CON0", "PAD_VALUE")
    else:
        v = regs.get("CNA.PAD_CON1", "PAD_VALUE")
        low = v & 0xFFFF
        if not -128 <= v <= 127 and (low >> 8) == (low & 0xFF) and v == low - ((low & 0x8000) << 1):
            v = (low & 0xFF) - ((low & 0x80) << 1)
    if not -128 <= v <= 127:
        raise regs.error("CNA.PAD_CON", f"pad value {v} has no known int8 reading")
    return v


def _check_converter(regs: TaskRegisters) -> None:
    cvt = regs.fields("CNA.CVT_CON0")
    regs.require("CNA.CVT_CON0", "DATA_SIGN", (1,), "signed int8 input")
    lanes = [regs.fields(f"CNA.CVT_CON{i + 1}") for i in range(4)]
    if cvt["CVT_BYPASS"]:
        return
    if any(cvt[f"CVT_TRUNCATE_{i}"] or lanes[i][f"CVT_OFFSET{i}"]
           or lanes[i][f"CVT_SCALE{i}"] != 1 for i in range(4)):
        raise regs.error("CNA.CVT_CON0..4", "a non-identity input converter is not modelled")


def _input_strides(regs: TaskRegisters, npu: str, pixel_bytes: int, packed: bool
                   ) -> tuple[int, int]:
    line = regs.get("CNA.DMA_CON1", "LINE_STRIDE")
    surf = regs.get("CNA.DMA_CON2", "SURF_STRIDE")
    if npu == "RK3588":
        line_bytes = line * (pixel_bytes if packed else 4)
        return line_bytes, (surf + line) * pixel_bytes
    return line * 8, surf * pixel_bytes


def run_conv(regs: TaskRegisters, mem: Memory, chip: str, lut: np.ndarray) -> None:
    """Execute the CNA + CORE + DPU task in `regs` against `mem`."""
    npu = npu_of(chip)
    target = get_target(chip)
    con1 = regs.fields("CNA.CONV_CON1")
    mode = regs.require("CNA.CONV_CON1", "CONV_MODE", (DIRECT, DEPTHWISE),
                        "direct or depthwise")
    dw = mode == DEPTHWISE
    regs.require("CNA.CONV_CON1", "IN_PRECISION", (INT8,), "int8 input")
    regs.require("CNA.CONV_CON1", "PROC_PRECISION", (INT8,), "int8 compute")
    regs.require("CNA.CONV_CON1", "DECONV", (0,), "deconvolution")
    argb = con1["ARGB_IN"]
    packed = argb != 0
    if packed and not ARGB_ONE_CHANNEL <= argb < ARGB_ONE_CHANNEL + target.argb_max_channels:
        raise regs.error("CNA.CONV_CON1.ARGB_IN", f"value {argb} is not a packed input mode")
    con3 = regs.fields("CNA.CONV_CON3")
    for name in ("DECONV_X_STRIDE", "DECONV_Y_STRIDE", "NN_MODE"):
        regs.require("CNA.CONV_CON3", name, (0,), name)
    sy, sx = con3["CONV_Y_STRIDE"], con3["CONV_X_STRIDE"]
    dy, dx = con3["ATROUS_Y_DILATION"] + 1, con3["ATROUS_X_DILATION"] + 1
    if not sy or not sx:
        raise regs.error("CNA.CONV_CON3", "stride 0")
    size0, size1 = regs.fields("CNA.DATA_SIZE0"), regs.fields("CNA.DATA_SIZE1")
    in_w, in_h = size0["DATAIN_WIDTH"], size0["DATAIN_HEIGHT"]
    cpad, creal = size1["DATAIN_CHANNEL"], size1["DATAIN_CHANNEL_REAL"] + 1
    dma0, dma1 = regs.fields("CNA.FC_DATA_SIZE0"), regs.fields("CNA.FC_DATA_SIZE1")
    if (dma0["DMA_WIDTH"], dma0["DMA_HEIGHT"], dma1["DMA_CHANNEL"]) != (in_w, in_h, cpad):
        raise regs.error("CNA.FC_DATA_SIZE0/1", "DMA sizes differ from the data sizes "
                         "(not modelled)")
    core0, core1 = regs.fields("CORE.DATAOUT_SIZE_0"), regs.fields("CORE.DATAOUT_SIZE_1")
    out_w, out_h = core0["DATAOUT_WIDTH"] + 1, core0["DATAOUT_HEIGHT"] + 1
    kpad = core1["DATAOUT_CHANNEL"] + 1
    if regs.get("CNA.DATA_SIZE2", "DATAOUT_WIDTH") != out_w:
        raise regs.error("CNA.DATA_SIZE2", "CNA and CORE output widths differ")
    regs.require("CNA.DATA_SIZE3", "SURF_MODE", (0,), "one surface at a time")
    regs.require("CNA.DATA_SIZE3", "DATAOUT_ATOMICS", (out_w * out_h,), "output pixels")
    misc = regs.fields("CORE.MISC_CFG")
    regs.require("CORE.MISC_CFG", "DW_EN", (int(dw),), "as CONV_MODE")
    regs.require("CORE.MISC_CFG", "PROC_PRECISION", (INT8,), "int8")
    qd = regs.fields("CMAC.MISC_CFG") if npu == "RK3568" else misc
    if not qd["QD_EN"]:
        raise regs.error("MISC_CFG.QD_EN", "int8 without quantized-data mode is not modelled")
    if npu == "RK3568":
        regs.require("CMAC.MISC_CFG", "DW_EN", (int(dw),), "as CONV_MODE")
    else:
        regs.require("CORE.CLIP_TRUNCATE", "CLIP_TRUNCATE", (0,), "accumulator truncation")
        if regs.value("CORE.UNK_3030"):
            raise regs.error("CORE.UNK_3030", "non-zero value of an unknown register")
    if regs.value("CNA.FC_CON0") or regs.value("CNA.FC_CON1") or regs.value("CNA.FC_CON2"):
        raise regs.error("CNA.FC_CON0..2", "zero skipping is not modelled")
    if regs.value("CNA.DCOMP_CTRL"):
        raise regs.error("CNA.DCOMP_CTRL", "weight decompression is not modelled")
    _check_converter(regs)

    # geometry of the DPU cube the CORE feeds
    width, height, padded, orig = dpu_geometry(regs)
    if (width, height, padded) != (out_w, out_h, kpad):
        raise regs.error("DPU.DATA_CUBE_*", f"DPU cube {(width, height, padded)} differs "
                         f"from the CORE output {(out_w, out_h, kpad)}")

    # weights
    ws2 = regs.fields("CNA.WEIGHT_SIZE2")
    kh, kw, kernels = ws2["WEIGHT_HEIGHT"], ws2["WEIGHT_WIDTH"], ws2["WEIGHT_KERNELS"]
    if dw:
        if kernels != 1 or creal != orig:
            raise regs.error("CNA.WEIGHT_SIZE2", "a depthwise task has one weight kernel and "
                             "as many input as output channels")
        layout = weight_layout(target, creal, 1, kh, kw, True)
    else:
        if kernels != orig:
            raise regs.error("CNA.WEIGHT_SIZE2.WEIGHT_KERNELS", f"{kernels} kernels, the DPU "
                             f"writes {orig} channels")
        channels = argb - ARGB_ONE_CHANNEL + 1 if packed else cpad
        try:
            layout = weight_layout(target, kernels, channels, kh, kw, False, packed)
        except RkcError as e:
            raise regs.error("CNA.WEIGHT_SIZE2", str(e)) from None
    if layout.padded_channels != cpad:
        raise regs.error("CNA.DATA_SIZE1.DATAIN_CHANNEL", f"{cpad} channels, the weight "
                         f"layout stores {layout.padded_channels}")
    if (regs.get("CNA.WEIGHT_SIZE1", "WEIGHT_BYTES_PER_KERNEL") != layout.bytes_per_kernel
            or regs.get("CNA.WEIGHT_SIZE0", "WEIGHT_BYTES") != layout.total_bytes):
        raise regs.error("CNA.WEIGHT_SIZE0/1", f"weight sizes differ from the chip's packed "
                         f"layout ({layout.bytes_per_kernel} B per kernel, "
                         f"{layout.total_bytes} B)")
    wdata = mem.read_bytes(regs.address("CNA.DCOMP_ADDR0"), layout.total_bytes,
                           f"task {regs.index}: weights")
    w = unpack_weights(wdata, layout).astype(np.int64)
    stream, ow = conv_stream_and_offsets(regs, mem, chip, padded)
    ow = np.broadcast_to(np.asarray(ow, np.int64), (padded,))[:w.shape[0]]
    w = w + ow[:, None, None, None]

    # input
    c2 = creal if packed else target.c2("int8")
    if packed and creal != argb - ARGB_ONE_CHANNEL + 1:
        raise regs.error("CNA.DATA_SIZE1", "real channels differ from the ARGB mode")
    line_bytes, surf_bytes = _input_strides(regs, npu, c2, packed)
    x = read_feature(mem, regs.address("CNA.FEATURE_DATA_ADDR"), creal, in_h, in_w, c2,
                     surf_bytes, line_bytes, f"task {regs.index}: CNA input")
    xc = np.zeros((cpad, in_h, in_w), np.int64)
    n = min(cpad, x.shape[0])
    xc[:n] = x[:n]
    pad = regs.fields("CNA.PAD_CON0")
    pt, pl = pad["PAD_TOP"], pad["PAD_LEFT"]
    need_h = (out_h - 1) * sy + (kh - 1) * dy + 1
    need_w = (out_w - 1) * sx + (kw - 1) * dx + 1
    xp = np.full((1, cpad, max(need_h, pt + in_h), max(need_w, pl + in_w)),
                 _pad_value(regs, npu), np.int64)
    xp[0, :, pt:pt + in_h, pl:pl + in_w] = xc
    xp = xp[:, :, :need_h, :need_w]
    if dw:
        acc = conv2d_acc(xp, w, (sy, sx), (0, 0, 0, 0), (dy, dx), cpad)
    else:
        acc = conv2d_acc(xp, w, (sy, sx), (0, 0, 0, 0), (dy, dx), 1)
    run_dpu(regs, mem, chip, acc[0], stream, lut, mode)
