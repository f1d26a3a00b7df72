"""The NPU register database: every block, register and bit field, per chip, as data.

This module is the one place that knows register offsets and field bit ranges. Register
command words (`rkc.backends.regcmd`) are encoded and decoded through it, and
docs/registers.md is generated from it (`tools/gen_registers_doc.py`).

Invariants (checked when the tables are built):
- every field lies inside bits 31..0 and no two fields of a register overlap;
- register offsets and names are unique inside a block; every offset of an ordinary block
  lies inside that block's 4 KiB window (address bits [15:12] select the block);
- a register whose fields are unknown has exactly one field, `RAW` [31:0], and is marked
  `unknown`; anything single-sourced or conflicting carries `uncertain`.

Per chip: RK3588 is the base table (RK3588 TRM chapter 36 bit fields, cross-checked with
Mesa's `rocket` register map; /work/shared/docs/rknpu-hw.md §2-§3). RK3568 (and RK3566,
the same NPU) is the RK3588 table plus the documented differences: registers only its
vendor programs write, the "CMAC" block at 0x2000, the CORE map shifted by one register,
and a few fields placed differently (sources: the iav RK3568 fork of Mesa, and what
rknn-toolkit2 2.5.0 writes in the RK3568 fixture programs, tests/data/vendor/regcmd/).
Where no difference is documented, RK3568 inherits RK3588's layout, which is marked
uncertain chip-wide. RK3576 is assumed to match RK3588: no RK3576 program or field map
was available (rknn-format.md §4 only says its programs add DPU registers at 0x41xx);
writes to registers missing here decode as raw values.

Sources named in `Register.source`: `TRM` = RK3588 TRM ch. 36 (via hw §3); `mesa` = Mesa
rocket `registers.xml` / `rkt_regcmd.c`; `iav` = the iav/mesa RK3568 fork (registers.xml,
rkt_regcmd.c); `vendor` = rknn-toolkit2 2.5.0 programs in tests/data/vendor/regcmd/
(fixture observation); `hw §N` / `fmt §N` = /work/shared/docs/rknpu-hw.md and
rknn-format.md sections.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from dataclasses import field as dc_field
from functools import cache
from types import MappingProxyType

from rkc.errors import RkcError
from rkc.targets import get_target


@dataclass(frozen=True)
class Field:
    """Bits [msb:lsb] of a 32-bit register. `signed` fields hold two's complement numbers."""

    name: str
    msb: int
    lsb: int
    meaning: str
    uncertain: bool = False
    signed: bool = False

    @property
    def width(self) -> int:
        return self.msb - self.lsb + 1

    @property
    def mask(self) -> int:
        """The field's bits in place inside the register."""
        return ((1 << self.width) - 1) << self.lsb

    @property
    def min_value(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_value(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def bits(self) -> str:
        return f"[{self.msb}]" if self.msb == self.lsb else f"[{self.msb}:{self.lsb}]"


@dataclass(frozen=True)
class Register:
    """One 32-bit register of a block, at a core-relative byte offset."""

    block: str
    offset: int
    name: str
    fields: tuple[Field, ...]
    meaning: str = ""
    source: str = "TRM, mesa"
    uncertain: bool = False
    unknown: bool = False          # fields unknown: one RAW field

    @property
    def qualified_name(self) -> str:
        return f"{self.block}.{self.name}"

    @property
    def field_mask(self) -> int:
        mask = 0
        for f in self.fields:
            mask |= f.mask
        return mask

    def field(self, name: str) -> Field:
        """The field called `name`; RkcError naming the register's fields otherwise."""
        for f in self.fields:
            if f.name == name:
                return f
        known = ", ".join(f.name for f in self.fields)
        raise RkcError(f"{self.qualified_name} has no field {name} (fields: {known})")


@dataclass(frozen=True)
class Block:
    """A unit of the NPU core; `target` is its 16-bit block id in register command words.

    `base` is the first offset of its 4 KiB register window; pseudo-blocks (the special
    words of the task tail) have no window (`window` False)."""

    name: str
    target: int
    base: int
    meaning: str
    window: bool = True


@dataclass(frozen=True)
class RegisterTable:
    """All registers of one chip's NPU, looked up by (block, offset), target or name."""

    chip: str                                   # NPU name, e.g. "RK3588"
    blocks: Mapping[str, Block]
    registers: tuple[Register, ...]
    pc_amount_unit: int                         # 64-bit words per PC fetch unit
    notes: tuple[str, ...] = ()                 # chip-wide caveats (docs)
    inherits_uncertain: bool = False            # layouts assumed from RK3588
    _by_offset: Mapping[tuple[str, int], Register] = dc_field(
        init=False, default_factory=dict, compare=False, repr=False)
    _by_name: Mapping[str, Register] = dc_field(
        init=False, default_factory=dict, compare=False, repr=False)
    _by_target: Mapping[int, Block] = dc_field(
        init=False, default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check(self.blocks, self.registers)
        object.__setattr__(self, "_by_offset", MappingProxyType(
            {(r.block, r.offset): r for r in self.registers}))
        object.__setattr__(self, "_by_name", MappingProxyType(
            {r.qualified_name: r for r in self.registers}))
        object.__setattr__(self, "_by_target", MappingProxyType(
            {b.target: b for b in self.blocks.values()}))

    def lookup(self, block: str, offset: int) -> Register | None:
        """The register of `block` at `offset`, or None when this chip's table has none."""
        return self._by_offset.get((block, offset))

    def block_of_target(self, target: int) -> Block | None:
        """The block a register command word with this 16-bit target writes to."""
        return self._by_target.get(target)

    def register(self, qualified_name: str) -> Register:
        """The register called e.g. "CNA.CONV_CON3"; RkcError if this chip has none."""
        reg = self._by_name.get(qualified_name)
        if reg is None:
            raise RkcError(f"{self.chip} has no register {qualified_name}")
        return reg

    def block_registers(self, block: str) -> list[Register]:
        """The registers of `block`, by offset."""
        return sorted((r for r in self.registers if r.block == block), key=lambda r: r.offset)


def _check(blocks: Mapping[str, Block], registers: Iterable[Register]) -> None:
    """Assert the table invariants of the module docstring (a failure is a bug here)."""
    seen_offsets: set[tuple[str, int]] = set()
    seen_names: set[tuple[str, str]] = set()
    for reg in registers:
        block = blocks[reg.block]
        assert (reg.block, reg.offset) not in seen_offsets, reg
        assert (reg.block, reg.name) not in seen_names, reg
        seen_offsets.add((reg.block, reg.offset))
        seen_names.add((reg.block, reg.name))
        assert reg.offset % 4 == 0 and 0 <= reg.offset <= 0xFFFF, reg
        if block.window:
            assert block.base <= reg.offset < block.base + 0x1000, reg
        assert reg.fields, reg
        assert not reg.unknown or [f.name for f in reg.fields] == ["RAW"], reg
        used = 0
        names: set[str] = set()
        for f in reg.fields:
            assert 0 <= f.lsb <= f.msb <= 31, (reg, f)
            assert not used & f.mask, (reg, f)
            assert f.name not in names, (reg, f)
            used |= f.mask
            names.add(f.name)


# ------------------------------------------------------------------------------- blocks

BLOCKS: Mapping[str, Block] = MappingProxyType({b.name: b for b in (
    Block("PC", 0x0101, 0x0000, "program counter / front end: fetches register commands "
          "from memory by DMA, counts tasks, raises interrupts"),
    Block("CNA", 0x0201, 0x1000, "convolution accelerator front: feature and weight DMA, "
          "CBUF, CSC sequencer, input converter"),
    Block("CORE", 0x0801, 0x3000, "MAC array and accumulator"),
    Block("DPU", 0x1001, 0x4000, "data processing unit: bias/scale (BS), batch-norm (BN) "
          "and element-wise (EW) stages, LUT, output converter, write DMA"),
    Block("DPU_RDMA", 0x2001, 0x5000, "read DMA for DPU operands (main input in flying "
          "mode, BS/BN per-channel streams, EW second operand)"),
    Block("PPU", 0x4001, 0x6000, "planar processing unit: average/max/min pooling"),
    Block("PPU_RDMA", 0x8001, 0x7000, "read DMA for the PPU in flying mode"),
    Block("PRE_OP_EN", 0x0041, 0x0000, "target bit 54: the TRM requires a 0x0041_xxxx word "
          "before the op-enable word; its meaning is unknown", window=False),
    Block("ALL", 0x0081, 0x0000, "target bit 55: sets the op_en of every block named in "
          "the value (GLOBAL_OPERATION_ENABLE bit layout)", window=False),
)})

BLOCK_ORDER = ("PC", "CNA", "CMAC", "CORE", "DPU", "DPU_RDMA", "PPU", "PPU_RDMA",
               "PRE_OP_EN", "ALL")

# Blocks some chips add (not in RK3588's table).
CMAC = Block("CMAC", 0x0401, 0x2000, "RK3568 only: a block at 0x2000 that RK3568 programs "
             "write (iav names it CMAC); not in the RK3588 TRM [UNCERTAIN]")


# ---------------------------------------------------------------------- RK3588 registers

F = Field
TRM = "TRM, mesa"
_raw = (F("RAW", 31, 0, "whole register; fields unknown"),)


def _regs(block: str, *specs: tuple) -> list[Register]:
    """Registers of `block` from (offset, name, meaning, fields[, source, uncertain])."""
    out = []
    for spec in specs:
        offset, name, meaning, fields = spec[:4]
        source = spec[4] if len(spec) > 4 else TRM
        uncertain = spec[5] if len(spec) > 5 else False
        unknown = tuple(fields) == _raw
        out.append(Register(block, offset, name, tuple(fields), meaning, source,
                            uncertain or unknown, unknown))
    return out


def _ping_pong(base: int, prefix: str = "") -> list[tuple]:
    """S_STATUS, S_POINTER and OPERATION_ENABLE, identical in every compute block."""
    return [
        (base + 0x0, f"{prefix}S_STATUS", "status of the two shadow register groups", (
            F("STATUS_0", 1, 0, "executer 0 status"),
            F("STATUS_1", 17, 16, "executer 1 status"))),
        (base + 0x4, f"{prefix}S_POINTER", "ping-pong pointer: which shadow register group "
         "is written and which executes; 0xE (POINTER_PP_EN | EXECUTER_PP_EN | "
         "POINTER_PP_MODE) everywhere", (
            F("POINTER", 0, 0, "group being written"),
            F("POINTER_PP_EN", 1, 1, "pointer ping-pong enable"),
            F("EXECUTER_PP_EN", 2, 2, "executer ping-pong enable"),
            F("POINTER_PP_MODE", 3, 3, "pointer ping-pong mode"),
            F("POINTER_PP_CLEAR", 4, 4, "clear the pointer"),
            F("EXECUTER_PP_CLEAR", 5, 5, "clear the executer"),
            F("EXECUTER", 16, 16, "group executing (read only)"),
            F("KERNEL_CORE_BITS", 31, 28, "the kernels write 0x10000000 x core index here "
              "(copied from the BSP); reserved in the TRM", uncertain=True))),
        (base + 0x8, f"{prefix}OPERATION_ENABLE", "start this block; registers from here "
         "on are shadowed", (F("OP_EN", 0, 0, "operation enable"),)),
    ]


_INTERRUPT_BITS = (
    F("CNA_FEATURE_0", 0, 0, "CNA feature group 0"),
    F("CNA_FEATURE_1", 1, 1, "CNA feature group 1"),
    F("CNA_WEIGHT_0", 2, 2, "CNA weight group 0"), F("CNA_WEIGHT_1", 3, 3, "CNA weight group 1"),
    F("CNA_CSC_0", 4, 4, "CNA CSC group 0"), F("CNA_CSC_1", 5, 5, "CNA CSC group 1"),
    F("CORE_0", 6, 6, "CORE group 0"), F("CORE_1", 7, 7, "CORE group 1"),
    F("DPU_0", 8, 8, "DPU group 0"), F("DPU_1", 9, 9, "DPU group 1"),
    F("PPU_0", 10, 10, "PPU group 0"), F("PPU_1", 11, 11, "PPU group 1"),
    F("DMA_READ_ERROR", 12, 12, "DMA read error"), F("DMA_WRITE_ERROR", 13, 13, "DMA write error"),
)

_PC = _regs(
    "PC",
    (0x0000, "VERSION", "hardware version", (F("VERSION", 31, 0, "version"),)),
    (0x0004, "VERSION_NUM", "version number; VERSION + VERSION_NUM[15:0] = 0x46495245 on "
     "RK3588", (F("VERSION_NUM", 31, 0, "version number"),)),
    (0x0008, "OPERATION_ENABLE", "start fetching and executing tasks",
     (F("OP_EN", 0, 0, "operation enable"),)),
    (0x0010, "BASE_ADDRESS", "address of the register commands to fetch; in a task tail "
     "the next task's commands (vendor files hold the byte offset inside the regcmd "
     "buffer)", (
        F("PC_SEL", 0, 0, "0 = PC mode (fetch by DMA), 1 = slave mode (CPU writes)"),
        F("PC_SOURCE_ADDR", 31, 4, "register command address / 16"))),
    (0x0014, "REGISTER_AMOUNTS", "how much the PC fetches (hw §2.3)", (
        F("PC_DATA_AMOUNT", 15, 0, "fetch units minus one: ceil((body + 4 tail words) / "
          "unit) - 1, unit = 2 words on RK3588/RK3576, 1 on RK3568"),
        F("UNK_17_16", 17, 16, "reserved in the TRM; rknn-toolkit2 writes 1 here in the "
          "tails of conv tasks of its 2-core programs and 2 in its 3-core programs "
          "(CNA.CONV_CON2[31:28] is then non-zero too); meaning unknown (vendor)",
          uncertain=True))),
    (0x0020, "INTERRUPT_MASK", "interrupts raised; in PC mode applies to the last task "
     "(reset 0x1FFFF)", _INTERRUPT_BITS),
    (0x0024, "INTERRUPT_CLEAR", "write 1 to clear", _INTERRUPT_BITS),
    (0x0028, "INTERRUPT_STATUS", "masked interrupt status", _INTERRUPT_BITS),
    (0x002C, "INTERRUPT_RAW_STATUS", "raw interrupt status", _INTERRUPT_BITS),
    (0x0030, "TASK_CON", "task control (written by the kernel, not by regcmds)", (
        F("TASK_NUMBER", 11, 0, "tasks in this run"),
        F("TASK_PP_EN", 12, 12, "fetch the next task's registers while the current runs"),
        F("TASK_COUNT_CLEAR", 13, 13, "clear the task counter (write 1)"),
        F("KERNEL_BIT14", 14, 14, "the BSP and rocket kernels set it; not in the TRM",
          uncertain=True))),
    (0x0034, "TASK_DMA_BASE_ADDR", "base added to feature/weight/DPU/PPU DMA addresses", (
        F("DMA_BASE_ADDR", 31, 4, "base address / 16"),)),
    (0x003C, "TASK_STATUS", "task progress", (
        F("TASK_COUNTER", 11, 0, "current task counter"),
        F("FIRST_TASK", 12, 12, "first task flag"),
        F("LAST_TASK", 13, 13, "last task flag"))),
)

_CNA = _regs(
    "CNA",
    *_ping_pong(0x1000),
    (0x100C, "CONV_CON1", "convolution mode and precision", (
        F("CONV_MODE", 3, 0, "0 direct, 3 depthwise"),
        F("IN_PRECISION", 6, 4, "0 int8, 1 int16, 2 fp16, 3 bf16, 6 int4, 7 tf32"),
        F("PROC_PRECISION", 9, 7, "processing precision (same codes)"),
        F("ARGB_IN", 15, 12, "8/9/10/11 = 1/2/3/4-channel packed input mode"),
        F("DECONV", 16, 16, "deconvolution"),
        F("GROUP_LINE_OFF", 29, 29, "1 disables the 4-line group fetch (efficiency only)"),
        F("NONALIGN_DMA", 30, 30, "non-aligned DMA; required for packed few-channel "
          "input"))),
    (0x1010, "CONV_CON2", "kernel grouping and feature grains", (
        F("CMD_FIFO_SRST", 0, 0, "command FIFO soft reset"),
        F("CSC_DO_EN", 1, 1, "CSC data output enable"),
        F("CSC_WO_EN", 2, 2, "1 disables CSC weight output"),
        F("FEATURE_GRAINS", 13, 4, "input rows buffered before compute starts (TRM: "
          "y_stride + kernel_h + 1; mesa and the vendor use other rules, hw §4.6)",
          uncertain=True),
        F("KERNEL_GROUP", 23, 16, "TRM: kernels / 32 - 1 (int8), / 16 - 1 (fp16); mesa "
          "and the vendor write 0", uncertain=True),
        F("UNK_31_28", 31, 28, "reserved in the TRM; rknn-toolkit2 writes 1 or 4 in the "
          "conv tasks of its 2-core programs and 2 in its 3-core ones, 0 in single-core "
          "ones (vendor)", uncertain=True))),
    (0x1014, "CONV_CON3", "strides, dilation, co-work mode", (
        F("CONV_X_STRIDE", 2, 0, "convolution stride in x (no -1)"),
        F("CONV_Y_STRIDE", 5, 3, "convolution stride in y (no -1)"),
        F("DECONV_X_STRIDE", 10, 8, "deconvolution stride in x"),
        F("DECONV_Y_STRIDE", 13, 11, "deconvolution stride in y"),
        F("ATROUS_X_DILATION", 20, 16, "pixels inserted between taps in x (>0 enables "
          "dilated convolution)"),
        F("ATROUS_Y_DILATION", 25, 21, "pixels inserted between taps in y"),
        F("NN_MODE", 30, 28, "MAC co-work mode: 0 = 32x32 int8 single core, 1 64x32, "
          "2 96x32, 4 32x64, 5 32x96"))),
    (0x1020, "DATA_SIZE0", "input size of this task", (
        F("DATAIN_HEIGHT", 10, 0, "input height (no -1)"),
        F("DATAIN_WIDTH", 26, 16, "input width (no -1)"))),
    (0x1024, "DATA_SIZE1", "input channels", (
        F("DATAIN_CHANNEL", 15, 0, "padded input channels"),
        F("DATAIN_CHANNEL_REAL", 29, 16, "real input channels - 1"))),
    (0x1028, "DATA_SIZE2", "output width", (F("DATAOUT_WIDTH", 10, 0, "output width (no "
                                              "-1)"),)),
    (0x102C, "DATA_SIZE3", "output atoms", (
        F("DATAOUT_ATOMICS", 21, 0, "output width x output height"),
        F("SURF_MODE", 23, 22, "0/1: one surface, 2: two, 3: four surfaces in series"))),
    (0x1030, "WEIGHT_SIZE0", "total weight bytes", (F("WEIGHT_BYTES", 31, 0, "weight bytes"),)),
    (0x1034, "WEIGHT_SIZE1", "weight bytes per kernel", (
        F("WEIGHT_BYTES_PER_KERNEL", 18, 0, "kw x kh x padded input channels (x element "
          "bytes)"),)),
    (0x1038, "WEIGHT_SIZE2", "kernel shape and count", (
        F("WEIGHT_KERNELS", 13, 0, "kernels (output channels, no -1)"),
        F("WEIGHT_HEIGHT", 20, 16, "kernel height (no -1)"),
        F("WEIGHT_WIDTH", 28, 24, "kernel width (no -1)"))),
    (0x1040, "CBUF_CON0", "convolution buffer split between data and weights", (
        F("DATA_BANK", 3, 0, "banks for feature data (a count on RK3588; the TRM text "
          "speaks of an index)", uncertain=True),
        F("WEIGHT_BANK", 7, 4, "banks for weights"),
        F("FC_DATA_BANK", 10, 8, "data banks in fully-connected zero-skip mode"),
        F("DATA_REUSE", 12, 12, "reuse the feature data already in CBUF"),
        F("WEIGHT_REUSE", 13, 13, "reuse the weights already in CBUF"))),
    (0x1044, "CBUF_CON1", "CBUF space for one input row", (
        F("DATA_ENTRIES", 13, 0, "CBUF entries per input row (TRM [12:0], mesa [13:0]; "
          "unit unclear, hw §1.4/§4.6)", uncertain=True),)),
    (0x104C, "CVT_CON0", "input converter control", (
        F("CVT_BYPASS", 0, 0, "bypass the input converter"),
        F("CVT_TYPE", 1, 1, "0 multiply then add, 1 add then multiply"),
        F("ROUND_TYPE", 2, 2, "rounding type"),
        F("DATA_SIGN", 3, 3, "1 = signed input"),
        F("CVT_TRUNCATE_0", 9, 4, "right shift of lane 0"),
        F("CVT_TRUNCATE_1", 15, 10, "right shift of lane 1"),
        F("CVT_TRUNCATE_2", 21, 16, "right shift of lane 2"),
        F("CVT_TRUNCATE_3", 27, 22, "right shift of lane 3"))),
    *[(0x1050 + 4 * n, f"CVT_CON{n + 1}", f"input converter lane {n}", (
        F(f"CVT_OFFSET{n}", 15, 0, f"offset of lane {n}", signed=True),
        F(f"CVT_SCALE{n}", 31, 16, f"scale of lane {n}"))) for n in range(4)],
    (0x1060, "FC_CON0", "zero skipping (skip weight fetch for features equal to a value)", (
        F("FC_SKIP_EN", 0, 0, "enable zero skipping"),
        F("FC_SKIP_DATA", 31, 16, "feature value to skip"))),
    (0x1064, "FC_CON1", "zero-skip data offset", (F("DATA_OFFSET", 16, 0, "data offset"),)),
    (0x1068, "PAD_CON0", "padding (right and bottom follow from the output size)", (
        F("PAD_TOP", 3, 0, "rows padded on top"),
        F("PAD_LEFT", 7, 4, "columns padded on the left"))),
    (0x1070, "FEATURE_DATA_ADDR", "input feature address (0 in vendor files: patched at "
     "load time)", (F("FEATURE_BASE_ADDR", 31, 0, "byte address"),)),
    (0x1074, "FC_CON2", "zero-skip weight offset", (F("WEIGHT_OFFSET", 16, 0, "weight "
                                                      "offset"),)),
    (0x1078, "DMA_CON0", "CNA DMA burst lengths", (
        F("DATA_BURST_LEN", 3, 0, "feature burst: 3/7/15 = 4/8/16 beats"),
        F("WEIGHT_BURST_LEN", 19, 16, "weight burst: 3/7/15 = 4/8/16 beats"),
        F("OV4K_BYPASS", 31, 31, "bypass the 4 KiB boundary split"))),
    (0x107C, "DMA_CON1", "input line stride", (
        F("LINE_STRIDE", 27, 0, "feature line stride (\"width with virtual box\"; units "
          "unconfirmed, hw §4.2)", uncertain=True),)),
    (0x1080, "DMA_CON2", "input surface stride", (
        F("SURF_STRIDE", 27, 0, "feature surface stride (semantics unconfirmed, hw §4.2); "
          "signed: rknn-toolkit2 writes 0xFFFFFFD (-3) for a 1x1 input on RK3588, its "
          "surface minus one line stride (docs/register-diff.md)", uncertain=True,
          signed=True),)),
    (0x1084, "FC_DATA_SIZE0", "size the feature DMA reads", (
        F("DMA_HEIGHT", 10, 0, "rows read"),
        F("DMA_WIDTH", 29, 16, "columns read"))),
    (0x1088, "FC_DATA_SIZE1", "channels the feature DMA reads", (
        F("DMA_CHANNEL", 15, 0, "channels read"),)),
    (0x1090, "CLK_GATE", "auto clock gating disables", (
        F("CNA_FEATURE_DISABLE_CLKGATE", 0, 0, "feature"),
        F("CNA_WEIGHT_DISABLE_CLKGATE", 1, 1, "weight"),
        F("CSC_DISABLE_CLKGATE", 2, 2, "CSC"),
        F("CBUF_CS_DISABLE_CLKGATE", 4, 4, "CBUF"))),
    (0x1100, "DCOMP_CTRL", "weight decompression control", (
        F("DECOMP_CONTROL", 2, 0, "decompression mode"),
        F("WT_DEC_BYPASS", 3, 3, "bypass weight decompression"))),
    (0x1104, "DCOMP_REGNUM", "weight decompression register count",
     (F("DCOMP_REGNUM", 31, 0, "count"),)),
    (0x1110, "DCOMP_ADDR0", "weight address (read from here even with decompression off; "
     "0 in vendor files: patched at load time)", (
        F("DECOMPRESS_ADDR0", 31, 0, "byte address"),)),
    *[(0x1140 + 4 * n, f"DCOMP_AMOUNT{n}", f"weight decompression amount {n}",
       (F(f"DCOMP_AMOUNT{n}", 31, 0, "amount"),)) for n in range(16)],
    (0x1180, "CVT_CON5", "per-lane input converter enable", (
        F("PER_CHANNEL_CVT_EN", 31, 0, "one bit per channel lane (16 lanes for int8)"),)),
    (0x1184, "PAD_CON1", "value of padded pixels", (
        F("PAD_VALUE", 31, 0, "pad value (mesa: input zero point - 0x80)", signed=True),)),
)

_CORE = _regs(
    "CORE",
    *_ping_pong(0x3000),
    (0x300C, "MAC_GATING", "soft clock gating of the MAC array (reset 0x7800800)", (
        F("SLCG_OP_EN", 26, 0, "gating enables"),)),
    (0x3010, "MISC_CFG", "MAC configuration", (
        F("QD_EN", 0, 0, "quantized feature data calculation enable (set for int8 and "
          "fp16 by mesa)"),
        F("DW_EN", 1, 1, "depthwise"),
        F("PROC_PRECISION", 10, 8, "processing precision (CNA codes)"),
        F("SOFT_GATING", 19, 14, "soft gating"))),
    (0x3014, "DATAOUT_SIZE_0", "output size", (
        F("DATAOUT_WIDTH", 15, 0, "output width - 1"),
        F("DATAOUT_HEIGHT", 31, 16, "output height - 1"))),
    (0x3018, "DATAOUT_SIZE_1", "output channels", (
        F("DATAOUT_CHANNEL", 15, 0, "padded output channels - 1"),)),
    (0x301C, "CLIP_TRUNCATE", "accumulator shift before the DPU", (
        F("CLIP_TRUNCATE", 4, 0, "right shift of the accumulator"),
        F("ROUND_TYPE", 6, 6, "rounding type"))),
    (0x3030, "UNK_3030", "undocumented; mesa, mtx512 and rknn-toolkit2 write 0 (hw §3.2)",
     _raw, "mesa, vendor"),
)

_LUT_SLOPE = {"SCALE": ((16, 31, "overflow slope scale"), (0, 15, "underflow slope scale")),
              "SHIFT": ((5, 9, "overflow slope shift"), (0, 4, "underflow slope shift"))}

_DPU = _regs(
    "DPU",
    *_ping_pong(0x4000),
    (0x400C, "FEATURE_MODE_CFG", "DPU input/output mode", (
        F("FLYING_MODE", 0, 0, "0: input from CORE, 1: from memory through DPU_RDMA"),
        F("OUTPUT_MODE", 2, 1, "bit 0: to the PPU, bit 1: to memory"),
        F("CONV_MODE", 4, 3, "0 normal, 3 depthwise"),
        F("BURST_LEN", 8, 5, "3/7/15 = 4/8/16 beats"),
        F("SURF_LEN", 24, 9, "8-byte units stored in non-align mode"),
        F("NONALIGN", 25, 25, "non-aligned output"),
        F("RGP_TYPE", 29, 26, "regroup type"),
        F("TP_EN", 30, 30, "transpose"),
        F("COMB_USE", 31, 31, "combine"))),
    (0x4010, "DATA_FORMAT", "DPU precisions (0 int8, 1 int16, 2 fp16, 3 bf16, 4 int32, "
     "5 fp32, 6 int4)", (
        F("PROC_PRECISION", 2, 0, "processing precision"),
        F("MC_SURF_OUT", 3, 3, "multi-core surface output"),
        F("BS_MUL_SHIFT_VALUE_NEG", 9, 4, "BS multiplier shift for negative data"),
        F("BN_MUL_SHIFT_VALUE_NEG", 15, 10, "BN multiplier shift for negative data"),
        F("EW_TRUNCATE_NEG", 25, 16, "EW truncate for negative data"),
        F("IN_PRECISION", 28, 26, "input precision"),
        F("OUT_PRECISION", 31, 29, "output precision"))),
    (0x4014, "OFFSET_PEND", "value written into padded output channels", (
        F("OFFSET_PEND", 15, 0, "pad channel value"),)),
    (0x4020, "DST_BASE_ADDR", "output address (0 in vendor files: patched at load time)", (
        F("DST_BASE_ADDR", 31, 0, "byte address"),)),
    (0x4024, "DST_SURF_STRIDE", "output surface stride", (
        F("DST_SURF_STRIDE", 31, 4, "stride / 16 (mesa: Wout x Hout)"),)),
    (0x4030, "DATA_CUBE_WIDTH", "cube width", (F("WIDTH", 12, 0, "width - 1"),)),
    (0x4034, "DATA_CUBE_HEIGHT", "cube height", (
        F("HEIGHT", 12, 0, "height - 1"),
        F("MINMAX_CTL", 24, 22, "min/max control"))),
    (0x4038, "DATA_CUBE_NOTCH_ADDR", "pixels from the end of the width to the end of the "
     "line", (F("NOTCH_ADDR_0", 12, 0, "notch 0"), F("NOTCH_ADDR_1", 28, 16, "notch 1"))),
    (0x403C, "DATA_CUBE_CHANNEL", "cube channels", (
        F("CHANNEL", 12, 0, "padded channels - 1"),
        F("ORIG_CHANNEL", 28, 16, "real channels - 1"))),
    (0x4040, "BS_CFG", "bias/scale stage", (
        F("BS_BYPASS", 0, 0, "bypass the stage"),
        F("BS_ALU_BYPASS", 1, 1, "bypass the ALU"),
        F("BS_MUL_BYPASS", 4, 4, "bypass the multiplier"),
        F("BS_MUL_PRELU", 5, 5, "multiplier as PReLU"),
        F("BS_RELU_BYPASS", 6, 6, "bypass ReLU"),
        F("BS_RELUX_EN", 7, 7, "ReLUX enable"),
        F("BS_ALU_SRC", 8, 8, "ALU operand: 0 register, 1 BRDMA stream"),
        F("BS_ALU_ALGO", 19, 16, "ALU operation: 2 add, 4 minus"))),
    (0x4044, "BS_ALU_CFG", "BS ALU operand (when BS_ALU_SRC = 0)",
     (F("BS_ALU_OPERAND", 31, 0, "operand (an int32 added to the data)", signed=True),)),
    (0x4048, "BS_MUL_CFG", "BS multiplier", (
        F("BS_MUL_SRC", 0, 0, "1: per-channel operand from the stream"),
        F("BS_TRUNCATE_SRC", 1, 1, "truncate source"),
        F("BS_MUL_SHIFT_VALUE", 13, 8, "shift for positive data"),
        F("BS_MUL_OPERAND", 31, 16, "multiplier"))),
    (0x404C, "BS_RELUX_CMP_VALUE", "BS ReLUX bound", (F("BS_RELUX_CMP_DAT", 31, 0,
                                                        "bound"),)),
    (0x4050, "BS_OW_CFG", "output-weight (\"CPEND\") configuration", (
        F("OW_SRC", 0, 0, "operand source"),
        F("OD_BYPASS", 1, 1, "bypass CPEND"),
        F("SIZE_E_0", 4, 2, "8-channel groups per row of the first output line - 1"),
        F("SIZE_E_1", 7, 5, "same for the middle lines"),
        F("SIZE_E_2", 10, 8, "same for the last line"),
        F("TP_ORG_EN", 27, 27, "transpose origin enable"),
        F("RGP_CNTER", 31, 28, "regroup counter"))),
    (0x4054, "BS_OW_OP", "CPEND operand: weight offset added inside the MAC path (mesa: "
     "0x80 - weight zero point)", (F("OW_OP", 15, 0, "operand", signed=True),)),
    (0x4058, "WDMA_SIZE_0", "write DMA channels", (
        F("CHANNEL_WDMA", 12, 0, "channels - 1"),
        F("SIZE_C_WDMA", 26, 16, "channel size"),
        F("TP_PRECISION", 27, 27, "transpose precision"))),
    (0x405C, "WDMA_SIZE_1", "write DMA size", (
        F("WIDTH_WDMA", 12, 0, "width - 1"),
        F("HEIGHT_WDMA", 28, 16, "height - 1"))),
    (0x4060, "BN_CFG", "batch-norm stage (BS layout without CPEND)", (
        F("BN_BYPASS", 0, 0, "bypass the stage"),
        F("BN_ALU_BYPASS", 1, 1, "bypass the ALU"),
        F("BN_MUL_BYPASS", 4, 4, "bypass the multiplier"),
        F("BN_MUL_PRELU", 5, 5, "multiplier as PReLU"),
        F("BN_RELU_BYPASS", 6, 6, "bypass ReLU"),
        F("BN_RELUX_EN", 7, 7, "ReLUX enable"),
        F("BN_ALU_SRC", 8, 8, "ALU operand: 0 register, 1 NRDMA stream"),
        F("BN_ALU_ALGO", 19, 16, "ALU operation"))),
    (0x4064, "BN_ALU_CFG", "BN ALU operand", (
        F("BN_ALU_OPERAND", 31, 0, "operand (an int32 added to the data)", signed=True),)),
    (0x4068, "BN_MUL_CFG", "BN multiplier", (
        F("BN_MUL_SRC", 0, 0, "1: per-channel operand from the stream"),
        F("BN_TRUNCATE_SRC", 1, 1, "truncate source"),
        F("BN_MUL_SHIFT_VALUE", 13, 8, "shift for positive data"),
        F("BN_MUL_OPERAND", 31, 16, "multiplier"))),
    (0x406C, "BN_RELUX_CMP_VALUE", "BN ReLUX bound (iav: the upper clamp in the "
     "accumulator domain)", (F("BN_RELUX_CMP_DAT", 31, 0, "bound"),)),
    (0x4070, "EW_CFG", "element-wise stage", (
        F("EW_BYPASS", 0, 0, "bypass the stage"),
        F("EW_OP_BYPASS", 1, 1, "bypass the operation"),
        F("EW_OP_TYPE", 2, 2, "0 ALU, 1 multiplier"),
        F("EW_MUL_PRELU", 5, 5, "multiplier as PReLU"),
        F("EW_OP_SRC", 6, 6, "1: operand from ERDMA"),
        F("EW_LUT_BYPASS", 7, 7, "bypass the LUT"),
        F("EW_OP_CVT_BYPASS", 8, 8, "bypass the operand converter"),
        F("EW_RELU_BYPASS", 9, 9, "bypass ReLU"),
        F("EW_RELUX_EN", 10, 10, "ReLUX enable"),
        F("EW_ALU_ALGO", 19, 16, "0 max, 1 min, 2 add, 3 div, 4 minus, 5 abs, 6 neg, "
          "7 floor, 8 ceil"),
        F("EW_BINARY_EN", 20, 20, "binary operation"),
        F("EW_EQUAL_EN", 21, 21, "equal comparison"),
        F("EDATA_SIZE", 23, 22, "operand size: 0 4b, 1 8b, 2 16b, 3 32b"),
        F("EW_DATA_MODE", 29, 28, "operand mode (1 = per pixel)"),
        F("EW_CVT_ROUND", 30, 30, "converter rounding"),
        F("EW_CVT_TYPE", 31, 31, "converter type"))),
    (0x4074, "EW_CVT_OFFSET_VALUE", "EW operand converter offset (mesa: 0x80 - second "
     "input zero point)", (F("EW_OP_CVT_OFFSET", 31, 0, "offset", signed=True),)),
    (0x4078, "EW_CVT_SCALE_VALUE", "EW operand converter scale", (
        F("EW_OP_CVT_SCALE", 15, 0, "scale"),
        F("EW_OP_CVT_SHIFT", 21, 16, "shift"),
        F("EW_TRUNCATE", 31, 22, "truncate"))),
    (0x407C, "EW_RELUX_CMP_VALUE", "EW ReLUX bound", (F("EW_RELUX_CMP_DAT", 31, 0,
                                                        "bound"),)),
    (0x4080, "OUT_CVT_OFFSET", "output converter offset (mesa: output zero point - 0x80)", (
        F("OUT_CVT_OFFSET", 31, 0, "offset", signed=True),)),
    (0x4084, "OUT_CVT_SCALE", "output converter scale", (
        F("OUT_CVT_SCALE", 15, 0, "multiplier M (hw §4.4)"),
        F("FP32TOFP16_EN", 16, 16, "convert fp32 to fp16"))),
    (0x4088, "OUT_CVT_SHIFT", "output converter shift", (
        F("OUT_CVT_SHIFT", 11, 0, "right shift S (hw §4.4)"),
        F("MINUS_EXP", 19, 12, "exponent adjustment"),
        F("CVT_ROUND", 30, 30, "rounding"),
        F("CVT_TYPE", 31, 31, "0 multiply first, 1 add first"))),
    *[(0x4090 + 4 * n, f"EW_OP_VALUE_{n}", f"EW operand {n} (register source)",
       (F(f"EW_OPERAND_{n}", 31, 0, "operand"),)) for n in range(8)],
    (0x40C0, "SURFACE_ADD", "surfaces per row", (
        F("SURF_ADD", 31, 4, "mesa: DST_SURF_STRIDE x (SIZE_E + 1)"),)),
    (0x40C4, "UNK_40C4", "undocumented; mesa and rknn-toolkit2 write 0 (hw §3.3)", _raw,
     "mesa, vendor"),
    (0x4100, "LUT_ACCESS_CFG", "LUT load address", (
        F("LUT_ADDR", 9, 0, "entry address"),
        F("LUT_TABLE_ID", 16, 16, "0 LE, 1 LO table"),
        F("LUT_ACCESS_TYPE", 17, 17, "1 write"))),
    (0x4104, "LUT_ACCESS_DATA", "LUT entry (address auto-increments)", (
        F("LUT_ACCESS_DATA", 15, 0, "entry"),)),
    (0x4108, "LUT_CFG", "LUT configuration", (
        F("LUT_ROAD_SEL", 0, 0, "road select"),
        F("LUT_EXPAND_EN", 1, 1, "use the two tables as one"),
        F("LUT_LO_LE_MUX", 3, 2, "LO/LE mux"),
        F("LUT_UFLOW_PRIORITY", 4, 4, "underflow priority (0 LE, 1 LO)"),
        F("LUT_OFLOW_PRIORITY", 5, 5, "overflow priority"),
        F("LUT_HYBRID_PRIORITY", 6, 6, "hybrid priority"),
        F("LUT_CAL_SEL", 7, 7, "calculation select"))),
    (0x410C, "LUT_INFO", "LUT index selection", (
        F("LUT_LE_INDEX_SELECT", 15, 8, "LE index bits"),
        F("LUT_LO_INDEX_SELECT", 23, 16, "LO index bits"))),
    (0x4110, "LUT_LE_START", "LE table range start", (F("LUT_LE_START", 31, 0, "start"),)),
    (0x4114, "LUT_LE_END", "LE table range end", (F("LUT_LE_END", 31, 0, "end"),)),
    (0x4118, "LUT_LO_START", "LO table range start", (F("LUT_LO_START", 31, 0, "start"),)),
    (0x411C, "LUT_LO_END", "LO table range end", (F("LUT_LO_END", 31, 0, "end"),)),
    *[(0x4120 + 8 * t + 4 * k, f"LUT_{tab}_SLOPE_{kind}", f"{tab} table slope {kind.lower()}",
       tuple(F(f"LUT_{tab}_SLOPE_{'OFLOW' if 'over' in m else 'UFLOW'}_{kind}", hi, lo, m)
             for lo, hi, m in _LUT_SLOPE[kind]))
      for t, tab in enumerate(("LE", "LO")) for k, kind in enumerate(("SCALE", "SHIFT"))],
)

_DPU_RDMA = _regs(
    "DPU_RDMA",
    *_ping_pong(0x5000, "RDMA_"),
    (0x500C, "RDMA_DATA_CUBE_WIDTH", "cube width", (F("WIDTH", 12, 0, "width - 1"),)),
    (0x5010, "RDMA_DATA_CUBE_HEIGHT", "cube height", (
        F("HEIGHT", 12, 0, "height - 1"),
        F("EW_LINE_NOTCH_ADDR", 28, 16, "EW line notch"))),
    (0x5014, "RDMA_DATA_CUBE_CHANNEL", "cube channels", (F("CHANNEL", 12, 0, "channels "
                                                           "- 1"),)),
    (0x5018, "RDMA_SRC_BASE_ADDR", "main (MRDMA) source in flying mode (0 in vendor files)",
     (F("SRC_BASE_ADDR", 31, 0, "byte address"),)),
    (0x501C, "RDMA_BRDMA_CFG", "BS operand stream use", (
        F("BRDMA_DATA_USE", 4, 1, "bit 1 ALU, bit 2 CPEND, bit 3 MUL, bit 4 truncate "
          "operand (register bits)"),)),
    (0x5020, "RDMA_BS_BASE_ADDR", "per-channel BS operand stream (bias ...)",
     (F("BS_BASE_ADDR", 31, 0, "byte address"),)),
    (0x5028, "RDMA_NRDMA_CFG", "BN operand stream use", (
        F("NRDMA_DATA_USE", 4, 1, "ALU, -, MUL, truncate operand"),)),
    (0x502C, "RDMA_BN_BASE_ADDR", "per-channel BN operand stream",
     (F("BN_BASE_ADDR", 31, 0, "byte address"),)),
    (0x5034, "RDMA_ERDMA_CFG", "EW operand read DMA", (
        F("ERDMA_DISABLE", 0, 0, "disable"),
        F("OV4K_BYPASS", 1, 1, "bypass the 4 KiB split"),
        F("ERDMA_DATA_SIZE", 3, 2, "0 4b, 1 8b, 2 16b, 3 32b"),
        F("ERDMA_NONALIGN", 28, 28, "non-aligned"),
        F("ERDMA_SURF_MODE", 29, 29, "surface mode"),
        F("ERDMA_DATA_MODE", 31, 30, "0 per channel, 1 per pixel, 2 per channel by "
          "pixel"))),
    (0x5038, "RDMA_EW_BASE_ADDR", "EW second operand (e.g. residual add)",
     (F("EW_BASE_ADDR", 31, 0, "byte address"),)),
    (0x5040, "RDMA_EW_SURF_STRIDE", "EW operand surface stride", (
        F("EW_SURF_STRIDE", 31, 4, "stride / 16; 1 when per channel"),)),
    (0x5044, "RDMA_FEATURE_MODE_CFG", "DPU_RDMA mode", (
        F("FLYING_MODE", 0, 0, "flying mode"),
        F("CONV_MODE", 2, 1, "0 normal, 3 depthwise"),
        F("MRDMA_FP16TOFP32_EN", 3, 3, "convert fp16 to fp32"),
        F("MRDMA_DISABLE", 4, 4, "disable the main read DMA"),
        F("PROC_PRECISION", 7, 5, "processing precision"),
        F("COMB_USE", 10, 8, "bit 0: MRDMA and ERDMA read the same data, bit 1: to MRDMA, "
          "bit 2: to ERDMA"),
        F("BURST_LEN", 14, 11, "burst length"),
        F("IN_PRECISION", 17, 15, "input precision"))),
    (0x5048, "RDMA_SRC_DMA_CFG", "source DMA and unpooling", (
        F("KERNEL_WIDTH", 2, 0, "unpool kernel width - 1"),
        F("KERNEL_HEIGHT", 5, 3, "unpool kernel height - 1"),
        F("KERNEL_STRIDE_WIDTH", 8, 6, "unpool stride width - 1"),
        F("KERNEL_STRIDE_HEIGHT", 11, 9, "unpool stride height - 1"),
        F("UNPOOLING_EN", 12, 12, "unpooling"),
        F("POOLING_METHOD", 13, 13, "pooling method"),
        F("LINE_NOTCH_ADDR", 31, 19, "line notch"))),
    (0x504C, "RDMA_SURF_NOTCH", "pixels from the end of this map to the end of the full "
     "map", (F("SURF_NOTCH_ADDR", 31, 4, "notch / 16"),)),
    (0x5064, "RDMA_PAD_CFG", "unpooling padding", (
        F("PAD_LEFT", 2, 0, "left"), F("PAD_TOP", 6, 4, "top"),
        F("PAD_VALUE", 31, 16, "pad value", signed=True))),
    (0x5068, "RDMA_WEIGHT", "read arbiter weights (mesa: 1 each)", (
        F("M_WEIGHT", 7, 0, "MRDMA"), F("B_WEIGHT", 15, 8, "BRDMA"),
        F("N_WEIGHT", 23, 16, "NRDMA"), F("E_WEIGHT", 31, 24, "ERDMA"))),
    (0x506C, "RDMA_EW_SURF_NOTCH", "EW operand surface notch",
     (F("EW_SURF_NOTCH", 31, 4, "notch / 16"),)),
)

_PPU = _regs(
    "PPU",
    *_ping_pong(0x6000),
    *[(0x600C + 4 * n, f"DATA_CUBE_{io}_{dim}", f"pooling {io.lower()}put {dim.lower()}",
       (F(f"CUBE_{io}_{dim}", 12, 0, f"{dim.lower()} - 1"),))
      for n, (io, dim) in enumerate((io, dim) for io in ("IN", "OUT")
                                    for dim in ("WIDTH", "HEIGHT", "CHANNEL"))],
    (0x6024, "OPERATION_MODE_CFG", "pooling mode", (
        F("POOLING_METHOD", 1, 0, "0 average, 1 max, 2 min"),
        F("FLYING_MODE", 4, 4, "0 from the DPU, 1 from memory via PPU_RDMA"),
        F("USE_CNT", 7, 5, "use count"),
        F("NOTCH_ADDR", 28, 16, "notch"),
        F("INDEX_EN", 30, 30, "emit argmax positions"))),
    (0x6034, "POOLING_KERNEL_CFG", "pooling kernel and stride", (
        F("KERNEL_WIDTH", 3, 0, "kernel width - 1"),
        F("KERNEL_HEIGHT", 11, 8, "kernel height - 1"),
        F("KERNEL_STRIDE_WIDTH", 19, 16, "stride width - 1"),
        F("KERNEL_STRIDE_HEIGHT", 23, 20, "stride height - 1"))),
    (0x6038, "RECIP_KERNEL_WIDTH", "2^16 / kernel width (average pooling)",
     (F("RECIP_KERNEL_WIDTH", 16, 0, "reciprocal"),)),
    (0x603C, "RECIP_KERNEL_HEIGHT", "2^16 / kernel height (average pooling)",
     (F("RECIP_KERNEL_HEIGHT", 16, 0, "reciprocal"),)),
    (0x6040, "POOLING_PADDING_CFG", "pooling padding (up to 7)", (
        F("PAD_LEFT", 2, 0, "left"), F("PAD_TOP", 6, 4, "top"),
        F("PAD_RIGHT", 10, 8, "right"), F("PAD_BOTTOM", 14, 12, "bottom"))),
    (0x6044, "PADDING_VALUE_1_CFG", "pad value bits [31:0]", (F("PAD_VALUE_0", 31, 0,
                                                                "low bits"),)),
    (0x6048, "PADDING_VALUE_2_CFG", "pad value bits [34:32]", (F("PAD_VALUE_1", 2, 0,
                                                                 "high bits"),)),
    (0x6070, "DST_BASE_ADDR", "output address (0 in vendor files)", (
        F("DST_BASE_ADDR", 31, 4, "address / 16"),)),
    (0x607C, "DST_SURF_STRIDE", "output surface stride", (
        F("DST_SURF_STRIDE", 31, 4, "stride / 16"),)),
    (0x6084, "DATA_FORMAT", "pooling data format", (
        F("PROC_PRECISION", 2, 0, "processing precision"),
        F("DPU_FLYIN", 3, 3, "input flies in from the DPU"),
        F("INDEX_ADD", 31, 4, "surface stride x surfaces with INDEX_EN, else surface "
          "stride"))),
    (0x60DC, "MISC_CTRL", "output burst and alignment", (
        F("BURST_LEN", 3, 0, "burst length"),
        F("NONALIGN", 7, 7, "non-aligned output"),
        F("MC_SURF_OUT", 8, 8, "multi-core surface output"),
        F("SURF_LEN", 31, 16, "surface length"))),
)

_PPU_RDMA = _regs(
    "PPU_RDMA",
    *_ping_pong(0x7000, "RDMA_"),
    *[(0x700C + 4 * n, f"RDMA_CUBE_IN_{dim}", f"input {dim.lower()}",
       (F(f"CUBE_IN_{dim}", 12, 0, f"{dim.lower()} - 1"),))
      for n, dim in enumerate(("WIDTH", "HEIGHT", "CHANNEL"))],
    (0x701C, "RDMA_SRC_BASE_ADDR", "input address (0 in vendor files)",
     (F("SRC_BASE_ADDR", 31, 0, "byte address"),)),
    (0x7024, "RDMA_SRC_LINE_STRIDE", "input line stride",
     (F("SRC_LINE_STRIDE", 31, 4, "stride / 16"),)),
    (0x7028, "RDMA_SRC_SURF_STRIDE", "input surface stride",
     (F("SRC_SURF_STRIDE", 31, 4, "stride / 16"),)),
    (0x7030, "RDMA_DATA_FORMAT", "input precision", (F("IN_PRECISION", 1, 0,
                                                       "input precision"),)),
)

_SPECIAL = _regs(
    "ALL",
    (0x0008, "OPERATION_ENABLE", "start the named blocks (last word of every task; same bits "
     "as GLOBAL_OPERATION_ENABLE at 0xF008)", (
        F("CNA_OP_EN", 0, 0, "CNA"),
        F("RESERVED_BIT1", 1, 1, "reserved in the TRM; rknn-toolkit2 sets it in RK3568 "
          "conv tasks (enable mask 0x1F)", uncertain=True),
        F("CORE_OP_EN", 2, 2, "CORE"),
        F("DPU_OP_EN", 3, 3, "DPU"),
        F("DPU_RDMA_OP_EN", 4, 4, "DPU_RDMA"),
        F("PPU_OP_EN", 5, 5, "PPU"),
        F("PPU_RDMA_OP_EN", 6, 6, "PPU_RDMA")), "TRM, mesa, vendor"),
) + _regs(
    "PRE_OP_EN",
    (0x0000, "WORD", "the 0x0041_0000_0000_0000 word before the op-enable word (TRM: "
     "\"before op_en, 64'h0041_xxxx must be set\"); always value 0, offset 0", _raw,
     "TRM, mesa, vendor"),
)

RK3588_REGISTERS: tuple[Register, ...] = tuple(
    _PC + _CNA + _CORE + _DPU + _DPU_RDMA + _PPU + _PPU_RDMA + _SPECIAL)


# ----------------------------------------------------------------- RK3568 differences

_IAV = "iav"
_VENDOR = "vendor (RK3568 fixture programs)"


def _unknown(block: str, offsets: Iterable[int], why: str) -> list[Register]:
    return [Register(block, off, f"UNK_{off:04X}", _raw, why, _VENDOR, True, True)
            for off in offsets]


def _rk3568_changes(base: tuple[Register, ...]) -> tuple[Register, ...]:
    """The RK3588 table with RK3568's documented differences applied."""
    regs = {(r.block, r.offset): r for r in base}

    def patch(block: str, offset: int, *fields: Field, source: str, meaning: str = "",
              drop: tuple[str, ...] = ()) -> None:
        """Replace fields of the same name, drop `drop`, add the others; mark uncertain."""
        old = regs[(block, offset)]
        new_names = {f.name for f in fields}
        kept = [f for f in old.fields if f.name not in new_names and f.name not in drop]
        merged = tuple(sorted(kept + list(fields), key=lambda f: f.lsb))
        regs[(block, offset)] = replace(old, fields=merged, source=f"{old.source}; {source}",
                                        meaning=meaning or old.meaning, uncertain=True)

    patch("CNA", 0x100C,
          F("PROC_PRECISION", 10, 8, "processing precision; RK3568 fp16 programs write "
            "0x220 where RK3588 ones write 0x120, i.e. the field sits one bit higher",
            uncertain=True), source=_VENDOR)
    patch("CNA", 0x1044,
          F("DATAIN_WIDTH", 31, 16, "iav: RK3568 programs put the input width here "
            "(vendor programs agree)", uncertain=True), source=_IAV)
    patch("CNA", 0x1068,
          F("PAD_VALUE", 31, 16, "pad value (PAD_CON1 is not written on RK3568)",
            uncertain=True, signed=True), source=_IAV)
    patch("CNA", 0x1078,
          F("FETCH_PIXEL_LEN", 15, 8, "iav: fetch pixel length", uncertain=True),
          F("UNK_BIT20", 20, 20, "reserved on RK3588; iav: must be set on RK3568 or the "
            "MAC sees no data (vendor writes 0x00171C07)", uncertain=True), source=_IAV)
    # Bits the RK3568 programs set that RK3588's layout leaves reserved (measured over
    # tests/data/vendor/regcmd, docs/register-diff.md).
    patch("DPU", 0x4024,
          F("DST_SURF_STRIDE", 31, 3, "stride / 8: RK3568 programs write 8 (bytes) for a "
            "1x1 output of one 8-byte atom, so the field starts at bit 3 (8-byte atoms)",
            uncertain=True), source=_VENDOR)
    patch("DPU", 0x4040,
          F("BS_ALU_ALGO", 3, 2, "RK3568 conv programs set bit 3 and leave [19:16] at 0 "
            "where RK3588 ones write BS_ALU_ALGO = 2 (add) at [19:16]: read as the same "
            "code at [3:2]", uncertain=True), source=_VENDOR)
    patch("DPU_RDMA", 0x501C,
          F("BRDMA_DISABLE", 0, 0, "RK3568 programs set it in DPU tasks without a BS "
            "stream (as ERDMA_DISABLE, bit 0 of RDMA_ERDMA_CFG)", uncertain=True),
          source=_VENDOR)
    patch("DPU_RDMA", 0x5028,
          F("NRDMA_DISABLE", 0, 0, "RK3568 programs set it in every task (no BN stream "
            "is read; as ERDMA_DISABLE)", uncertain=True), source=_VENDOR)
    patch("PPU", 0x6048,
          F("PAD_VALUE_1", 18, 0, "RK3568 pooling programs write the pad value as a "
            "19-bit number here and in PADDING_VALUE_1_CFG, 0x604C and 0x6050 (-128: "
            "0x7FF80)", uncertain=True, signed=True), source=_VENDOR)
    # iav's RK3568 DPU FEATURE_MODE_CFG layout (its registers.xml cites RK3568 TRM part 2).
    patch("DPU", 0x400C,
          F("OUTPUT_MODE", 3, 1, "output mode (RK3568 layout)", uncertain=True),
          F("CONV_MODE", 5, 4, "0 normal, 3 depthwise (RK3568 layout)", uncertain=True),
          F("BURST_LEN", 8, 7, "burst length (RK3568 layout)", uncertain=True),
          source=_IAV, drop=("OUTPUT_MODE", "CONV_MODE", "BURST_LEN"))
    # CORE: iav reads the RK3568 map as shifted by one register (hw §3.2); the RK3568
    # programs write 0x300C..0x3014 and 0x302C but never 0x3018, 0x301C or 0x3030.
    for off in (0x300C, 0x3010, 0x3014, 0x3018, 0x301C, 0x3030):
        del regs[("CORE", off)]
    shifted = _regs(
        "CORE",
        (0x300C, "MISC_CFG", "MAC configuration (RK3588's 0x3010, one register lower)", (
            F("QD_EN", 0, 0, "quantized data enable; RK3568 int8 programs leave it 0 here "
              "and set it in CMAC.MISC_CFG", uncertain=True),
            F("DW_EN", 1, 1, "depthwise", uncertain=True),
            F("PROC_PRECISION", 14, 12, "precision; RK3568 fp16 programs write 2 here "
              "(bit 13)", uncertain=True)), f"{_IAV}, {_VENDOR}", True),
        (0x3010, "DATAOUT_SIZE_0", "output size (RK3588's 0x3014)", (
            F("DATAOUT_WIDTH", 15, 0, "output width - 1", uncertain=True),
            F("DATAOUT_HEIGHT", 31, 16, "output height - 1", uncertain=True)),
         f"{_IAV}, {_VENDOR}", True),
        (0x3014, "DATAOUT_SIZE_1", "output channels (RK3588's 0x3018)", (
            F("DATAOUT_CHANNEL", 15, 0, "padded output channels - 1", uncertain=True),),
         f"{_IAV}, {_VENDOR}", True),
    )
    added = shifted + _regs(
        "CNA",
        (0x1018, "CONV_CON4", "iav: RGB_BYTELENGTH, required non-zero for packed RGB "
         "input (vendor: W x H x 9 = 0x2400 for 32x32)", (
            F("RGB_BYTELENGTH", 23, 0, "byte length of the packed input", uncertain=True),),
         _IAV, True),
    ) + _unknown("CNA", range(0x1114, 0x1140, 4), "written 0 by RK3568 programs after "
                 "DCOMP_ADDR0; not in the RK3588 map") + _unknown(
        "CNA", range(0x1210, 0x1234, 4), "written 0 by RK3568 programs; not in the RK3588 "
        "map") + _regs(
        "CMAC",
        *_ping_pong(0x2000)[1:2],
        (0x200C, "MISC_CFG", "iav: CMAC MISC_CFG carrying QD_EN/DW_EN (vendor: 1, 3, "
         "0x2001, 0x2003)", (
            F("QD_EN", 0, 0, "quantized data enable", uncertain=True),
            F("DW_EN", 1, 1, "depthwise", uncertain=True),
            F("PROC_PRECISION", 14, 12, "precision; 2 in fp16 programs", uncertain=True)),
         f"{_IAV}, {_VENDOR}", True),
    ) + _unknown("CORE", (0x302C,), "written 0 by RK3568 programs (RK3588's 0x3030 one "
                 "register lower?)") + _regs(
        "DPU_RDMA",
        (0x5024, "UNK_5024", "iav: RK3568 programs write C_out x 4 / 8 - 1 here "
         "(vendor: 0, 7, 0xF, 0x1F)", _raw, f"{_IAV}, {_VENDOR}"),
        (0x503C, "UNK_503C", "iav: RK3568 EW line stride (vendor: 0)", _raw,
         f"{_IAV}, {_VENDOR}"),
    ) + _unknown("DPU_RDMA", (0x5030,), "written 0 by RK3568 programs") + _unknown(
        "PPU", (0x604C, 0x6050), "RK3568 pooling tasks write the same values as "
        "PADDING_VALUE_1/2 (0xFBFF, 0x7FF80)") + _unknown(
        "PPU_RDMA", (0x7018,), "RK3568 pooling tasks write 1")
    for reg in added:
        assert (reg.block, reg.offset) not in regs, reg
        regs[(reg.block, reg.offset)] = reg
    return tuple(sorted(regs.values(), key=lambda r: (BLOCK_ORDER.index(r.block), r.offset)))


# ---------------------------------------------------------------------------- tables

@cache
def _tables() -> Mapping[str, RegisterTable]:
    rk3588 = RegisterTable("RK3588", BLOCKS, RK3588_REGISTERS, pc_amount_unit=2, notes=(
        "Base table: RK3588 TRM chapter 36 bit fields, cross-checked with Mesa rocket's "
        "register map (hw §3). The PC fetch unit is 128 bits (BSP pc_data_amount_scale "
        "2).",))
    rk3568 = RegisterTable(
        "RK3568", MappingProxyType({**BLOCKS, "CMAC": CMAC}),
        _rk3568_changes(RK3588_REGISTERS), pc_amount_unit=1, inherits_uncertain=True,
        notes=(
            "RK3588's table with the documented RK3568 differences; every other layout is "
            "assumed from RK3588 [UNCERTAIN]: no RK3568 NPU register manual was found "
            "(hw §9.11) and the vendor's values do not always decode cleanly with RK3588 "
            "fields.",
            "The PC fetch unit is one 64-bit word (BSP pc_data_amount_scale 1); the task "
            "tails of the RK3568 programs confirm it.",
            "RK3566 has the same NPU (same compatible string) and uses this table."))
    rk3576 = RegisterTable(
        "RK3576", BLOCKS, RK3588_REGISTERS, pc_amount_unit=2, inherits_uncertain=True,
        notes=(
            "Assumed equal to RK3588 [UNCERTAIN]: rknn-toolkit2's RK3576 programs also "
            "write DPU registers at 0x41xx (fmt §4) whose offsets and fields are not "
            "recorded here (no RK3576 program is among the fixtures); such writes "
            "disassemble as raw values.",
            "The PC fetch unit is 128 bits (BSP rk3576 pc_data_amount_scale 2)."))
    return MappingProxyType({t.chip: t for t in (rk3588, rk3568, rk3576)})


def register_table(chip: str) -> RegisterTable:
    """The register table of `chip` ("rk3588", "RK3566", ...); RkcError if unknown."""
    return _tables()[get_target(chip).npu_of]


def all_tables() -> list[RegisterTable]:
    """The distinct tables (RK3588, RK3568 also for RK3566, RK3576)."""
    return list(_tables().values())
