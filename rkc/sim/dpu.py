"""DPU + DPU_RDMA at the register level: BS, BN and EW stages, output converter, write.

The DPU gets a cube of `padded` channels x height x width: from the CORE (a conv's
accumulators, `run_dpu(..., cube)`) or, in flying mode, from DRAM through the main read
DMA (MRDMA). The arithmetic is the stage model `rkc.backends.emit_dpu` documents ("DPU
stage plans"), int8 only, per element on int64 with `round_shift` =
`rkc.quant.requant.round_shift` (half up):

- BS, then BN (each unless *_BYPASS): ALU (unless *_ALU_BYPASS) `v = algo(v, op)`, algo 0
  max, 1 min, 2 add, 4 minus, op = *_ALU_CFG or (BS_ALU_SRC) the BRDMA stream's int32
  bias; MUL (unless *_MUL_BYPASS) `v = round_shift(v * m, s)`, m = *_MUL_OPERAND or
  (BS_MUL_SRC) the stream's multiplier, s = *_MUL_SHIFT_VALUE or (BS_TRUNCATE_SRC) the
  stream's per-channel shift; ReLU (unless *_RELU_BYPASS) then ReLUX (*_RELUX_EN, min
  with *_RELUX_CMP_VALUE). DATA_FORMAT's *_MUL_SHIFT_VALUE_NEG are read and have no
  effect (the emitters' model; the TRM names them shifts for negative data). The CPEND
  weight offset (BS_OW_CFG with OD_BYPASS 0) acts inside the MAC (`rkc.sim.cna`).
- BRDMA streams: data use ALU|CPEND|MUL (`weights.pack_dpu_stream`, 8 B per channel) or
  ALU|CPEND|MUL|TRT (`pack_exact_stream`, 10 B), padded channels rounded up to whole
  stream groups; RK3568's UNK_5024 must give the same length.
- EW (unless EW_BYPASS): operand e = EW_OP_VALUE_0 (EW_OP_SRC 0) or the 8-bit ERDMA
  element (per pixel: walked like the output, surfaces RDMA_EW_SURF_STRIDE apart; per
  channel: a dense vector, channel c at byte c, RDMA_EW_SURF_STRIDE must read 16 B);
  converter (unless EW_OP_CVT_BYPASS, EW_CVT_TYPE 1)
  `e = round_shift((e + EW_CVT_OFFSET) * EW_OP_CVT_SCALE, EW_OP_CVT_SHIFT)`; op (unless
  EW_OP_BYPASS) EW_OP_TYPE 0 `algo(v, e)`, 1 `v * e` (EW_MUL_PRELU: only where v < 0);
  ReLU / ReLUX; LUT (unless EW_LUT_BYPASS) `v = LE[clamp(v - LUT_LE_START, 0,
  LUT_LE_END)]` with the LE table the LUT_ACCESS writes loaded (`rkc.sim.npu`).
- Output converter: OUT_CVT_SHIFT.CVT_TYPE 0 `round_shift(v * scale, shift) + offset`
  (the emitters' form), 1 `round_shift((v + offset) * scale, shift)`; int8 saturation.
  CVT_ROUND / EW_CVT_ROUND are 0 in every emitted task and rounding is half up anyway
  [UNCERTAIN: rkc.quant.requant assumes half up for CVT_ROUND set].
- Write: `padded` channels (ORIG_CHANNEL + 1 real ones, OFFSET_PEND in the others) in
  c2-channel surfaces DST_SURF_STRIDE apart from DST_BASE_ADDR, dense lines (width x c2
  elements; DATA_CUBE_NOTCH_ADDR must be 0).
- Flying-mode source: ORIG_CHANNEL + 1 channels from RDMA_SRC_BASE_ADDR, dense lines,
  surfaces DST_SURF_STRIDE apart (the emitter's rule: operands and output share one
  surface stride; RDMA_SURF_NOTCH must be 0).
Anything else (precisions other than int8, notches, transposes, NRDMA operands, LUT
interpolation, ...) is an RkcError naming the task and the register.
"""

from __future__ import annotations

import numpy as np

from rkc.backends.emit_dpu import _OUTPUT_TO_MEMORY, npu_of
from rkc.backends.weights import (
    EXACT_STREAM_BYTES_PER_CHANNEL,
    stream_group,
    unpack_dpu_stream,
    unpack_exact_stream,
)
from rkc.quant.requant import round_shift
from rkc.sim.memory import Memory
from rkc.sim.registers import TaskRegisters
from rkc.targets import get_target

INT8 = 0                                  # precision code of int8 (CNA / DPU / PPU)
# BRDMA_DATA_USE -> (bytes per channel, unpacker): ALU | CPEND | MUL, and + TRT
STREAMS = {0b111: (8, unpack_dpu_stream),
           0b1111: (EXACT_STREAM_BYTES_PER_CHANNEL, unpack_exact_stream)}
# ALU codes of BS / BN / EW_ALU_ALGO (hw §3.3; emit_dpu's stage model): v = algo(v, op)
ALU = {0: np.maximum, 1: np.minimum, 2: np.add, 4: np.subtract}
EW_PER_CHANNEL, EW_PER_PIXEL = 0, 1
LUT_TABLES, LUT_ENTRIES = 2, 513          # LE, LO (hw §4.7)


PER_CHANNEL_SURF_STRIDE = 16
"""RDMA_EW_SURF_STRIDE of a per-channel ERDMA operand: field value 1 of [31:4] (hw doc 3.4)."""


def read_feature(mem: Memory, address: int, channels: int, height: int, width: int,
                 c2: int, surface_stride: int, line_stride: int, what: str) -> np.ndarray:
    """int8 NC1HWC2 data -> int64 [ceil(channels / c2) * c2, height, width]."""
    surfaces = -(-channels // c2)
    v = mem.view(address, (surfaces, height, width, c2), (surface_stride, line_stride, c2, 1),
                 np.int8, what)
    return v.transpose(0, 3, 1, 2).reshape(surfaces * c2, height, width).astype(np.int64)


def write_feature(mem: Memory, address: int, values: np.ndarray, c2: int,
                  surface_stride: int, what: str) -> None:
    """int8 [S * c2, H, W] -> NC1HWC2 at `address`, dense lines."""
    channels, height, width = values.shape
    surfaces = channels // c2
    v = mem.view(address, (surfaces, height, width, c2),
                 (surface_stride, width * c2, c2, 1), np.int8, what)
    v[...] = values.reshape(surfaces, c2, height, width).transpose(0, 2, 3, 1)


def _relu(regs: TaskRegisters, v: np.ndarray, prefix: str, cfg: dict, bound_reg: str
          ) -> np.ndarray:
    """ReLU unless *_RELU_BYPASS, then ReLUX (min with the bound) when *_RELUX_EN."""
    if not cfg[f"{prefix}_RELU_BYPASS"]:
        v = np.maximum(v, 0)
    if cfg[f"{prefix}_RELUX_EN"]:
        v = np.minimum(v, regs.signed(bound_reg))
    else:
        regs.value(bound_reg)         # no effect without ReLUX
    return v


def _alu(regs: TaskRegisters, reg: str, field: str, v: np.ndarray, operand) -> np.ndarray:
    algo = regs.require(reg, field, tuple(ALU), "ALU max / min / add / minus")
    return ALU[algo](v, operand)


def _bs_bn(regs: TaskRegisters, v: np.ndarray, prefix: str, stream: dict | None
           ) -> np.ndarray:
    """The BS or BN stage on int64 [C, H, W]: ALU, MUL, ReLU / ReLUX."""
    cfg = regs.fields(f"DPU.{prefix}_CFG")
    regs.value(f"DPU.{prefix}_ALU_CFG")
    regs.value(f"DPU.{prefix}_MUL_CFG")
    regs.value(f"DPU.{prefix}_RELUX_CMP_VALUE")
    # the *_NEG shifts of DATA_FORMAT: the emitters' model shifts every value by
    # *_MUL_SHIFT_VALUE (emit_dpu "DPU stage plans"); read, no effect
    regs.get("DPU.DATA_FORMAT", f"{prefix}_MUL_SHIFT_VALUE_NEG")
    if cfg[f"{prefix}_BYPASS"]:
        return v
    channels = v.shape[0]
    if not cfg[f"{prefix}_ALU_BYPASS"]:
        if cfg[f"{prefix}_ALU_SRC"]:
            if stream is None:
                raise regs.error(f"DPU.{prefix}_CFG.{prefix}_ALU_SRC",
                                 "operand from a stream the task does not read")
            operand = stream["bias"][:channels, None, None]
        else:
            operand = regs.get(f"DPU.{prefix}_ALU_CFG", f"{prefix}_ALU_OPERAND")
        v = _alu(regs, f"DPU.{prefix}_CFG", f"{prefix}_ALU_ALGO", v, operand)
    if not cfg[f"{prefix}_MUL_BYPASS"]:
        regs.require(f"DPU.{prefix}_CFG", f"{prefix}_MUL_PRELU", (0,), "PReLU multiply")
        mul = regs.fields(f"DPU.{prefix}_MUL_CFG")
        shift = mul[f"{prefix}_MUL_SHIFT_VALUE"]
        if mul[f"{prefix}_TRUNCATE_SRC"]:
            if stream is None or "shift" not in stream:
                raise regs.error(f"DPU.{prefix}_MUL_CFG.{prefix}_TRUNCATE_SRC",
                                 "truncate operand from a stream without shifts")
            shift = stream["shift"][:channels, None, None]
        if mul[f"{prefix}_MUL_SRC"]:
            if stream is None:
                raise regs.error(f"DPU.{prefix}_MUL_CFG.{prefix}_MUL_SRC",
                                 "operand from a stream the task does not read")
            operand = stream["mul"][:channels, None, None]
        else:
            operand = mul[f"{prefix}_MUL_OPERAND"]
        v = round_shift(v * operand, shift)
    return _relu(regs, v, prefix, cfg, f"DPU.{prefix}_RELUX_CMP_VALUE")


def _stream(regs: TaskRegisters, mem: Memory, chip: str, padded: int) -> dict | None:
    """The BRDMA per-channel operands: the int8 stream (`weights.pack_dpu_stream`, data
    use ALU | CPEND | MUL) or the exact stream (`pack_exact_stream`, + TRT: a shift per
    channel), `padded` channels rounded up to whole stream groups."""
    use = regs.get("DPU_RDMA.RDMA_BRDMA_CFG", "BRDMA_DATA_USE")
    disabled = regs.get("DPU_RDMA.RDMA_BRDMA_CFG", "BRDMA_DISABLE") if chip == "rk3568" \
        else 0
    if chip == "rk3568":
        words = regs.value("DPU_RDMA.UNK_5024")
    if use == 0:
        return None
    if use not in STREAMS or disabled:
        raise regs.error("DPU_RDMA.RDMA_BRDMA_CFG", f"data use {use:#b} (disable "
                         f"{disabled}) is not modelled (modelled: "
                         f"{', '.join(f'{u:#b}' for u in STREAMS)}: the int8 streams)")
    unit, unpack = STREAMS[use]
    g = stream_group(chip)
    nbytes = -(-padded // g) * g * unit
    if chip == "rk3568" and words != max(padded * unit // 8 - 1, 0):
        raise regs.error("DPU_RDMA.UNK_5024", f"stream length {words} (8-byte words - 1) "
                         f"does not match {padded} channels of {unit} B")
    data = mem.read_bytes(regs.address("DPU_RDMA.RDMA_BS_BASE_ADDR"), nbytes,
                          f"task {regs.index}: BRDMA stream")
    columns = unpack(chip, data)
    return dict(zip(("bias", "ow", "mul", "shift"), columns, strict=False))


def conv_stream_and_offsets(regs: TaskRegisters, mem: Memory, chip: str, padded: int
                            ) -> tuple[dict | None, np.ndarray | int]:
    """The BRDMA stream and the CPEND weight offset per kernel (0 when bypassed)."""
    stream = _stream(regs, mem, chip, padded)
    ow_cfg = regs.fields("DPU.BS_OW_CFG")
    if ow_cfg["OD_BYPASS"] or regs.get("DPU.BS_CFG", "BS_BYPASS"):
        return stream, 0
    if ow_cfg["OW_SRC"]:
        if stream is None:
            raise regs.error("DPU.BS_OW_CFG.OW_SRC", "CPEND operand from a stream the task "
                             "does not read")
        return stream, stream["ow"]
    op = regs.get("DPU.BS_OW_OP", "OW_OP") if "OW_OP" in regs.fields("DPU.BS_OW_OP") \
        else regs.value("DPU.BS_OW_OP")
    return stream, op - (1 << 16) if op >> 15 else op


def _ew_operand(regs: TaskRegisters, mem: Memory, shape: tuple[int, int, int], c2: int,
                cfg: dict) -> np.ndarray | int:
    if not cfg["EW_OP_SRC"]:
        return regs.signed("DPU.EW_OP_VALUE_0")
    regs.require("DPU.EW_CFG", "EDATA_SIZE", (1,), "8-bit operand")
    regs.require("DPU_RDMA.RDMA_ERDMA_CFG", "ERDMA_DISABLE", (0,), "ERDMA on")
    regs.require("DPU_RDMA.RDMA_ERDMA_CFG", "ERDMA_DATA_SIZE", (1,), "8-bit")
    for name in ("ERDMA_NONALIGN", "ERDMA_SURF_MODE"):
        regs.require("DPU_RDMA.RDMA_ERDMA_CFG", name, (0,), name)
    mode = regs.require("DPU.EW_CFG", "EW_DATA_MODE", (EW_PER_CHANNEL, EW_PER_PIXEL),
                        "per channel / per pixel")
    regs.require("DPU_RDMA.RDMA_ERDMA_CFG", "ERDMA_DATA_MODE", (mode,), "as EW_DATA_MODE")
    channels, height, width = shape
    address = regs.address("DPU_RDMA.RDMA_EW_BASE_ADDR")
    surf = regs.address("DPU_RDMA.RDMA_EW_SURF_STRIDE")
    what = f"task {regs.index}: ERDMA operand"
    if mode == EW_PER_CHANNEL:
        # a dense vector, channel c at byte c (hw doc 3.4: the stride field must be 1)
        if surf != PER_CHANNEL_SURF_STRIDE:
            raise regs.error("DPU_RDMA.RDMA_EW_SURF_STRIDE",
                             f"a per-channel operand is a dense vector: the stride must be "
                             f"{PER_CHANNEL_SURF_STRIDE} B (field value 1), got {surf} B")
        padded = -(-channels // c2) * c2
        vector = mem.view(address, (padded,), (1,), np.int8, what)
        return vector[:channels].astype(np.int64).reshape(channels, 1, 1)
    return read_feature(mem, address, channels, height, width, c2, surf, width * c2,
                        what)[:channels]


def _ew(regs: TaskRegisters, mem: Memory, v: np.ndarray, c2: int, lut: np.ndarray
        ) -> np.ndarray:
    """The EW stage: operand (converted), op, ReLU / ReLUX, LUT."""
    cfg = regs.fields("DPU.EW_CFG")
    erdma = regs.fields("DPU_RDMA.RDMA_ERDMA_CFG")
    for name in ("DPU.EW_CVT_OFFSET_VALUE", "DPU.EW_CVT_SCALE_VALUE",
                 "DPU.EW_RELUX_CMP_VALUE", *(f"DPU.EW_OP_VALUE_{i}" for i in range(8))):
        regs.value(name)              # read below when used; no effect otherwise
    if cfg["EW_BYPASS"]:
        if not erdma["ERDMA_DISABLE"]:
            raise regs.error("DPU_RDMA.RDMA_ERDMA_CFG", "ERDMA on with the EW stage bypassed")
        return v
    for name in ("EW_BINARY_EN", "EW_EQUAL_EN"):
        regs.require("DPU.EW_CFG", name, (0,), name)
    if any(regs.value(f"DPU.EW_OP_VALUE_{i}") for i in range(1, 8)):
        raise regs.error("DPU.EW_OP_VALUE_1..7", "only EW_OP_VALUE_0 is modelled")
    if not cfg["EW_OP_BYPASS"]:
        e = _ew_operand(regs, mem, v.shape, c2, cfg)
        if not cfg["EW_OP_CVT_BYPASS"]:
            offset = regs.signed("DPU.EW_CVT_OFFSET_VALUE")
            sc = regs.fields("DPU.EW_CVT_SCALE_VALUE")
            regs.require("DPU.EW_CFG", "EW_CVT_TYPE", (1,), "add the offset, then multiply")
            e = round_shift((np.asarray(e, np.int64) + offset) * sc["EW_OP_CVT_SCALE"],
                            sc["EW_OP_CVT_SHIFT"])
        regs.require("DPU.EW_CVT_SCALE_VALUE", "EW_TRUNCATE", (0,), "product truncation")
        regs.require("DPU.DATA_FORMAT", "EW_TRUNCATE_NEG", (0,), "product truncation")
        if cfg["EW_OP_TYPE"]:
            v = np.where(v < 0, v * e, v) if cfg["EW_MUL_PRELU"] else v * e
        else:
            regs.require("DPU.EW_CFG", "EW_MUL_PRELU", (0,), "PReLU needs EW_OP_TYPE 1")
            v = _alu(regs, "DPU.EW_CFG", "EW_ALU_ALGO", v, e)
    elif not erdma["ERDMA_DISABLE"]:
        raise regs.error("DPU_RDMA.RDMA_ERDMA_CFG", "ERDMA on without an EW operand")
    v = _relu(regs, v, "EW", cfg, "DPU.EW_RELUX_CMP_VALUE")
    return v if cfg["EW_LUT_BYPASS"] else _lut(regs, v, lut)


def _lut(regs: TaskRegisters, v: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """v = LE[clamp(v - LUT_LE_START, 0, LUT_LE_END)] (emit_dpu's LUT model: LE table
    only, index select 0, slopes 0)."""
    for name in ("DPU.LUT_CFG", "DPU.LUT_INFO", "DPU.LUT_LE_SLOPE_SCALE",
                 "DPU.LUT_LE_SLOPE_SHIFT", "DPU.LUT_LO_SLOPE_SCALE", "DPU.LUT_LO_SLOPE_SHIFT"):
        if regs.value(name):
            raise regs.error(name, "only the LE table with index select 0 and flat "
                             "under / overflow is modelled")
    regs.value("DPU.LUT_LO_START")
    regs.value("DPU.LUT_LO_END")
    start = regs.signed("DPU.LUT_LE_START")
    end = regs.value("DPU.LUT_LE_END")
    if end >= LUT_ENTRIES:
        raise regs.error("DPU.LUT_LE_END", f"{end} is beyond the {LUT_ENTRIES}-entry table")
    return lut[0][np.clip(v - start, 0, end)]


def _check_layout(regs: TaskRegisters, chip: str, flying: bool, conv_mode: int,
                  width: int, height: int, padded: int) -> None:
    """The DPU / DPU_RDMA fields that must hold the modelled (plain) values."""
    npu = npu_of(chip)
    fm = regs.fields("DPU.FEATURE_MODE_CFG")
    regs.require("DPU.FEATURE_MODE_CFG", "OUTPUT_MODE", (_OUTPUT_TO_MEMORY[npu],),
                 "output to memory only")
    regs.require("DPU.FEATURE_MODE_CFG", "CONV_MODE", (conv_mode,), "as the CNA")
    for name in ("NONALIGN", "RGP_TYPE", "TP_EN", "COMB_USE", "SURF_LEN"):
        regs.require("DPU.FEATURE_MODE_CFG", name, (0,), name)
    assert fm["FLYING_MODE"] == int(flying)
    for name in ("PROC_PRECISION", "IN_PRECISION", "OUT_PRECISION"):
        regs.require("DPU.DATA_FORMAT", name, (INT8,), "int8")
    regs.require("DPU.DATA_FORMAT", "MC_SURF_OUT", (0,), "MC_SURF_OUT")
    regs.require("DPU.DATA_CUBE_HEIGHT", "MINMAX_CTL", (0,), "min / max collection")
    if regs.value("DPU.DATA_CUBE_NOTCH_ADDR"):
        raise regs.error("DPU.DATA_CUBE_NOTCH_ADDR", "line notches are not modelled")
    ow = regs.fields("DPU.BS_OW_CFG")
    if not ow["SIZE_E_0"] == ow["SIZE_E_1"] == ow["SIZE_E_2"]:
        raise regs.error("DPU.BS_OW_CFG", "different SIZE_E per line is not modelled")
    for name in ("TP_ORG_EN", "RGP_CNTER"):
        regs.require("DPU.BS_OW_CFG", name, (0,), name)
    if flying and not ow["OD_BYPASS"]:
        raise regs.error("DPU.BS_OW_CFG.OD_BYPASS", "CPEND without a conv is not modelled")
    surf = regs.address("DPU.DST_SURF_STRIDE")
    if regs.address("DPU.SURFACE_ADD") != surf * (ow["SIZE_E_0"] + 1):
        raise regs.error("DPU.SURFACE_ADD", f"{regs.address('DPU.SURFACE_ADD')} B is not "
                         f"DST_SURF_STRIDE x (SIZE_E + 1) = {surf * (ow['SIZE_E_0'] + 1)}")
    if npu == "RK3588":
        wd = regs.fields("DPU.WDMA_SIZE_0"), regs.fields("DPU.WDMA_SIZE_1")
        if (wd[0]["CHANNEL_WDMA"] + 1, wd[1]["WIDTH_WDMA"] + 1, wd[1]["HEIGHT_WDMA"] + 1) \
                != (padded, width, height) or wd[0]["SIZE_C_WDMA"] or wd[0]["TP_PRECISION"]:
            raise regs.error("DPU.WDMA_SIZE_0/1", "WDMA cube differs from the DPU cube")
    rdma = regs.fields("DPU_RDMA.RDMA_FEATURE_MODE_CFG")
    if rdma["FLYING_MODE"] != int(flying) or rdma["CONV_MODE"] != conv_mode:
        raise regs.error("DPU_RDMA.RDMA_FEATURE_MODE_CFG", "flying / conv mode differ from "
                         "the DPU's")
    for name in ("COMB_USE", "MRDMA_FP16TOFP32_EN"):
        regs.require("DPU_RDMA.RDMA_FEATURE_MODE_CFG", name, (0,), name)
    for name in ("PROC_PRECISION", "IN_PRECISION"):
        regs.require("DPU_RDMA.RDMA_FEATURE_MODE_CFG", name, (INT8,), "int8")
    regs.require("DPU_RDMA.RDMA_FEATURE_MODE_CFG", "MRDMA_DISABLE",
                 (0,) if flying else ((1,) if npu == "RK3588" else (0, 1)),
                 "MRDMA reads the source in flying mode only")
    if regs.value("DPU_RDMA.RDMA_SRC_DMA_CFG") or regs.value("DPU_RDMA.RDMA_PAD_CFG"):
        raise regs.error("DPU_RDMA.RDMA_SRC_DMA_CFG", "unpooling is not modelled")
    if regs.address("DPU_RDMA.RDMA_SURF_NOTCH"):
        raise regs.error("DPU_RDMA.RDMA_SURF_NOTCH", "surface notches are not modelled")
    if regs.get("DPU_RDMA.RDMA_NRDMA_CFG", "NRDMA_DATA_USE"):
        raise regs.error("DPU_RDMA.RDMA_NRDMA_CFG", "BN operands from NRDMA are not modelled")
    regs.require("DPU_RDMA.RDMA_DATA_CUBE_HEIGHT", "EW_LINE_NOTCH_ADDR", (0,), "EW notch")
    cube = (regs.get("DPU_RDMA.RDMA_DATA_CUBE_WIDTH", "WIDTH") + 1,
            regs.get("DPU_RDMA.RDMA_DATA_CUBE_HEIGHT", "HEIGHT") + 1)
    if cube != (width, height):
        raise regs.error("DPU_RDMA.RDMA_DATA_CUBE_WIDTH/HEIGHT", f"RDMA cube {cube} differs "
                         f"from the DPU cube {(width, height)}")
    if npu == "RK3588" and regs.address("DPU_RDMA.RDMA_EW_SURF_NOTCH"):
        raise regs.error("DPU_RDMA.RDMA_EW_SURF_NOTCH", "EW surface notches are not "
                         "modelled")
    if npu == "RK3568":
        for name in ("DPU_RDMA.UNK_5030", "DPU_RDMA.UNK_503C"):
            if regs.value(name):
                raise regs.error(name, "non-zero value of an unknown register")


def dpu_geometry(regs: TaskRegisters) -> tuple[int, int, int, int]:
    """(width, height, padded channels, real channels) of the DPU cube."""
    ch = regs.fields("DPU.DATA_CUBE_CHANNEL")
    return (regs.get("DPU.DATA_CUBE_WIDTH", "WIDTH") + 1,
            regs.get("DPU.DATA_CUBE_HEIGHT", "HEIGHT") + 1, ch["CHANNEL"] + 1,
            ch["ORIG_CHANNEL"] + 1)


def run_dpu(regs: TaskRegisters, mem: Memory, chip: str, cube: np.ndarray | None,
            stream: dict | None, lut: np.ndarray, conv_mode: int = 0) -> None:
    """Run the DPU on `cube` (int64 [>= orig, H, W] from the CORE) or, when None, on
    the MRDMA source (flying mode), and write the result."""
    c2 = get_target(chip).c2("int8")
    width, height, padded, orig = dpu_geometry(regs)
    flying = cube is None
    if bool(regs.get("DPU.FEATURE_MODE_CFG", "FLYING_MODE")) != flying:
        raise regs.error("DPU.FEATURE_MODE_CFG.FLYING_MODE", "the DPU's input source "
                         "differs from the units the task enables")
    _check_layout(regs, chip, flying, conv_mode, width, height, padded)
    if padded % c2 or padded < orig:
        raise regs.error("DPU.DATA_CUBE_CHANNEL", f"{padded} padded channels for {orig} "
                         f"real ones are not whole {c2}-channel surfaces")
    surf = regs.address("DPU.DST_SURF_STRIDE")
    if flying:
        rdma_ch = regs.get("DPU_RDMA.RDMA_DATA_CUBE_CHANNEL", "CHANNEL") + 1
        if rdma_ch != orig:
            raise regs.error("DPU_RDMA.RDMA_DATA_CUBE_CHANNEL", f"{rdma_ch} channels, the "
                             f"DPU's are {orig}")
        v = read_feature(mem, regs.address("DPU_RDMA.RDMA_SRC_BASE_ADDR"), orig, height,
                         width, c2, surf, width * c2, f"task {regs.index}: MRDMA source")
        stream = _stream(regs, mem, chip, padded)
    else:
        rdma_ch = regs.get("DPU_RDMA.RDMA_DATA_CUBE_CHANNEL", "CHANNEL") + 1
        if rdma_ch != padded:
            raise regs.error("DPU_RDMA.RDMA_DATA_CUBE_CHANNEL", f"{rdma_ch} channels, the "
                             f"DPU's padded cube has {padded}")
        if cube.shape[1:] != (height, width) or cube.shape[0] < orig:
            raise regs.error("DPU.DATA_CUBE_WIDTH/HEIGHT/CHANNEL", f"cube {cube.shape} "
                             f"from the CORE, the DPU expects {(orig, height, width)}")
        v = cube
    v = v[:orig]
    v = _bs_bn(regs, v, "BS", stream)
    v = _bs_bn(regs, v, "BN", None)
    v = _ew(regs, mem, v, c2, lut)
    shift = regs.fields("DPU.OUT_CVT_SHIFT")
    regs.require("DPU.OUT_CVT_SHIFT", "MINUS_EXP", (0,), "float exponent")
    regs.require("DPU.OUT_CVT_SCALE", "FP32TOFP16_EN", (0,), "int8 output")
    scale = regs.get("DPU.OUT_CVT_SCALE", "OUT_CVT_SCALE")
    offset = regs.signed("DPU.OUT_CVT_OFFSET")
    if shift["CVT_TYPE"]:
        v = round_shift((v + offset) * scale, shift["OUT_CVT_SHIFT"])
    else:
        v = round_shift(v * scale, shift["OUT_CVT_SHIFT"]) + offset
    pend = regs.get("DPU.OFFSET_PEND", "OFFSET_PEND")
    pend = pend - (1 << 16) if pend >> 15 else pend
    if not -128 <= pend <= 127:
        raise regs.error("DPU.OFFSET_PEND", f"{pend} is not an int8 value")
    out = np.full((padded, height, width), pend, np.int64)
    out[:orig] = np.clip(v, -128, 127)
    write_feature(mem, regs.address("DPU.DST_BASE_ADDR"), out, c2, surf,
                  f"task {regs.index}: DPU output")
