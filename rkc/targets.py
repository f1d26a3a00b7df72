"""Per-chip hardware parameters of the Rockchip NPUs rkc compiles for, as data.

One frozen `Target` per chip (RK3588, RK3576, RK3568, RK3566); passes, the cost model, the
layout code and `rkc report` read their numbers from here instead of hard-coding them.

Every figure carries its source in `Target.sources` (keyed by field name). A source that
contains "[UNCERTAIN" marks a figure that is reverse engineered from one source, derived,
assumed from a sibling chip, or in conflict between sources; `Target.uncertain_fields`
lists them. Short names used in the sources:

- `hw §N`: /work/shared/docs/rknpu-hw.md section N (itself citing the RK3588 TRM, Mesa
  `rocket`, mtx512, allbilly and the iav RK3568 fork).
- `fmt §N`: /work/shared/docs/rknn-format.md section N (rknn-toolkit2 2.5.0 builds).
- `peers §N`: /work/shared/docs/peers.md section N.
- `logs/X`: /work/shared/fixtures/vendor-rknn/logs/X (rknn-toolkit2 2.5.0 build logs; the
  NativeShape column gives (N, C1, H, W, C2); its C1 is not reliable for 16-bit types or
  rounded surfaces, so C2 is read from the last entry and checked against the Size column).
- `reg BLOCK.REG[hi:lo]`: the width of that register field (RK3588 TRM, hw §3), which
  bounds what one hardware task can express; larger layers must be split.
- `BSP rknpu_drv.c`: the vendor kernel driver's per-SoC `rknpu_config` (rknpu 0.9.8).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from rkc.errors import RkcError

UNCERTAIN = "[UNCERTAIN"

# Storage bits of each element type the feature atoms are described for (hw §1.5).
ELEMENT_BITS: Mapping[str, int] = MappingProxyType({
    "int4": 4, "int8": 8, "int16": 16, "fp16": 16, "bf16": 16, "int32": 32, "fp32": 32,
})


@dataclass(frozen=True)
class Target:
    """Hardware parameters of one chip's NPU. Sizes in bytes, counts per NPU core."""

    name: str                         # chip name, e.g. "RK3588"
    npu_of: str                       # chip whose NPU block this is (RK3566 -> "RK3568")
    cores: int                        # NPU cores
    cbuf_bytes: int                   # convolution buffer (CBUF) per core
    cbuf_banks: int                   # CBUF banks per core (split between data and weights)
    cbuf_bank_bytes: int              # bytes per CBUF bank
    int8_macs_per_cycle: int | None   # int8 multiply-accumulates per cycle per core
    fp16_macs_per_cycle: int | None   # fp16 multiply-accumulates per cycle per core
    peak_int8_tops: float             # vendor headline int8 TOPS, whole NPU
    npu_clock_mhz: int                # highest vendor NPU clock (OPP)
    dram_gbps: float                  # theoretical DRAM bandwidth of the usual memory setup
    atom_bytes: int                   # feature atom: bytes of channels stored per pixel
    c2_int8: int                      # NC1HWC2 channel block for int8 features
    c2_fp16: int                      # NC1HWC2 channel block for fp16 (and int16) features
    argb_max_channels: int            # inputs with C <= this are stored packed, C2 = C
    small_cin_weight_bytes: int       # weight bytes per kernel tap when the input is packed
    weight_kernel_group_int8: int     # kernels (output channels) per weight group, int8
    weight_kernel_group_fp16: int | None  # kernels per weight group, fp16
    weight_cin_group: int             # input channels per weight slice inside a group
    weight_cin_align_int8: int        # input channels padded to this in int8 weights
    out_align_int8: int               # conv output channels padded to this, int8
    out_align_fp16: int               # conv output channels padded to this, fp16
    dw_align_int8: int                # depthwise output channels padded to this, int8
    dw_align_fp16: int                # depthwise output channels padded to this, fp16
    surface_pixel_align: int          # H*W of a surface rounded up to this (H*W == 1 stays 1)
    max_kernel: int                   # largest kernel height/width in one task
    max_stride: int                   # largest conv stride
    max_pad: int                      # largest top/left padding
    max_dilation: int                 # largest dilation factor
    max_width: int                    # largest input width of one task
    max_height: int                   # largest input height of one task
    max_input_channels: int           # largest real input channel count of one task
    max_kernels: int                  # largest output channel (kernel) count of one task
    dtypes: tuple[str, ...]           # data types the MAC array computes in
    dma_address_bits: int             # NPU DMA address width (IOMMU side)
    max_tasks_per_submit: int         # tasks one submit can chain (BSP task counter width)
    mac_pixel_block: int              # output pixels a conv task's MAC passes are rounded to
    dpu_elements_per_cycle: int       # output elements (padded channels) the DPU writes / cycle
    ppu_atoms_per_cycle: int          # feature atoms the PPU reads per cycle (pooling)
    task_overhead_cycles: int         # fixed cycles per hardware task (fetch, fill, drain)
    sources: Mapping[str, str] = field(compare=False, repr=False)  # field -> where from

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))
        figures = {f.name for f in dataclasses.fields(self)} - {"name", "sources"}
        missing = sorted(figures - set(self.sources))
        extra = sorted(set(self.sources) - figures)
        if missing or extra:
            raise ValueError(f"{self.name}: sources missing for {missing}, unknown keys {extra}")
        if self.cbuf_banks * self.cbuf_bank_bytes != self.cbuf_bytes:
            raise ValueError(f"{self.name}: CBUF banks do not add up to the CBUF size")
        if self.c2("int8") != self.c2_int8 or self.c2("fp16") != self.c2_fp16:
            raise ValueError(f"{self.name}: C2 does not match the atom size")

    # ------------------------------------------------------------------ derived values

    @property
    def uncertain_fields(self) -> frozenset[str]:
        """Names of the figures whose source is marked [UNCERTAIN]."""
        return frozenset(k for k, v in self.sources.items() if UNCERTAIN in v)

    @property
    def cbuf_bytes_total(self) -> int:
        """CBUF over all cores."""
        return self.cbuf_bytes * self.cores

    @property
    def dram_bytes_per_cycle(self) -> float:
        """DRAM bytes per NPU clock cycle at the theoretical bandwidth and the top clock."""
        return self.dram_gbps * 1e9 / (self.npu_clock_mhz * 1e6)

    def macs_per_cycle(self, dtype: str) -> int:
        """MACs per cycle per core for `dtype` (int16 and bf16 at the fp16 rate); RkcError
        when the chip's rate is not known."""
        rate = self.int8_macs_per_cycle if dtype in ("int8", "int4") else self.fp16_macs_per_cycle
        if rate is None:
            raise RkcError(f"{self.name}: no {dtype} MAC rate is known (no public figure), "
                           f"so its performance cannot be estimated")
        return rate

    @property
    def peak_int8_macs_per_second(self) -> float:
        """Whole-NPU int8 MAC rate implied by the vendor TOPS figure (1 MAC = 2 ops)."""
        return self.peak_int8_tops * 1e12 / 2

    def c2(self, dtype: str) -> int:
        """Channels per feature atom (the C2 of NC1HWC2) for `dtype`."""
        bits = ELEMENT_BITS.get(dtype)
        if bits is None:
            raise RkcError(f"no feature layout for data type {dtype!r} "
                           f"(known: {', '.join(ELEMENT_BITS)})")
        return self.atom_bytes * 8 // bits

    def padded_out_channels(self, channels: int, dtype: str = "int8",
                            depthwise: bool = False) -> int:
        """Output channels after the hardware's padding (hw §4.5) for an int8/fp16 conv."""
        if dtype not in ("int8", "fp16", "int16"):
            raise RkcError(f"output channel padding is known for int8, int16 and fp16, "
                           f"not {dtype!r}")
        if depthwise:
            align = self.dw_align_int8 if dtype == "int8" else self.dw_align_fp16
        else:
            align = self.out_align_int8 if dtype == "int8" else self.out_align_fp16
        return -(-max(channels, 1) // align) * align


# ---------------------------------------------------------------------- shared sources

# Limits that come from register field widths. They are read from the RK3588 TRM; the
# other chips are assumed to match (see `_assumed`).
_REGISTER_LIMITS = {
    "max_kernel": "reg CNA.WEIGHT_SIZE2 WEIGHT_WIDTH[28:24] / WEIGHT_HEIGHT[20:16]: 5 bits, "
                  "value not minus one -> 1..31 (hw §3.1)",
    "max_stride": "reg CNA.CONV_CON3 CONV_X_STRIDE[2:0] / CONV_Y_STRIDE[5:3]: 3 bits -> 1..7 "
                  "(hw §3.1)",
    "max_pad": "reg CNA.PAD_CON0 PAD_LEFT[7:4] / PAD_TOP[3:0]: 4 bits -> 0..15; right/bottom "
               "padding follows from the output size (hw §3.1)",
    "max_dilation": "reg CNA.CONV_CON3 ATROUS_X/Y_DILATION[20:16]/[25:21]: 5 bits; the field "
                    "counts inserted pixels, i.e. dilation - 1 -> dilation 1..32 (hw §3.1) "
                    "[UNCERTAIN: field semantics from TRM prose only, Mesa supports no "
                    "dilation]",
    "max_width": "reg CNA.DATA_SIZE0 DATAIN_WIDTH[26:16]: 11 bits -> 2047 (hw §3.1)",
    "max_height": "reg CNA.DATA_SIZE0 DATAIN_HEIGHT[10:0]: 11 bits -> 2047 (hw §3.1)",
    "max_input_channels": "reg CNA.DATA_SIZE1 DATAIN_CHANNEL_REAL[29:16]: 14 bits, minus one "
                          "-> 16384 (hw §3.1)",
    "max_kernels": "reg CNA.WEIGHT_SIZE2 WEIGHT_KERNELS[13:0]: 14 bits -> 16383 (hw §3.1)",
}

_REGISTER_LIMIT_VALUES = {
    "max_kernel": 31, "max_stride": 7, "max_pad": 15, "max_dilation": 32,
    "max_width": 2047, "max_height": 2047, "max_input_channels": 16384, "max_kernels": 16383,
}


def _assumed(sources: Mapping[str, str], keys: Iterable[str], why: str) -> dict[str, str]:
    """Sources of values carried over from another chip, marked uncertain."""
    return {k: f"{why} {UNCERTAIN}: carried over]; there: {sources[k]}" for k in keys}


# Cost-model figures (rkc.perf) that are fitted or assumed alike for every chip.
_MAC_PIXEL_BLOCK_SOURCE = (
    "logs/resblock_{chip}_*.log: NPU cycles of the small-output convs are 16 pixels x taps: "
    "gap_2conv0 (7x7 depthwise, 3x3 = 9 px) 784 = 16 x 49, gap_2conv1 (3x3, 1 px) 144 = 16 "
    "x 9 [UNCERTAIN: the vendor estimator's rule; rounding up to 16 and max(px, 16) fit "
    "alike]")
_PPU_SOURCE = ("assumed: one feature atom per cycle per window tap (the PPU reads one "
               "NC1HWC2 atom per beat, hw §3.5) [UNCERTAIN: the vendor logs report 0 "
               "cycles for MaxPool, no public PPU rate]")
_TASK_OVERHEAD_SOURCE = (
    "derived: a conv task is ~120 register-command entries (hw §5.1 order, ~115 writes + "
    "the 4-entry tail, hw §2.2) at one register write per cycle; TASK_PP_EN prefetches the "
    "next task's registers (hw §2.4), so the figure stands for the un-hidden pipeline "
    "drain and refill between tasks [UNCERTAIN: order of magnitude, not measured]")

# ---------------------------------------------------------------------------- RK3588

_RK3588_SOURCES = {
    "npu_of": "RK3588's own NPU (hw §1)",
    "cores": "hw §1.1 [TRM] triple core; hw §8; BSP rknpu_drv.c core_mask 0x7",
    "cbuf_bytes": "hw §1.1/§1.4 [TRM]: 384 KB internal buffer per core",
    "cbuf_banks": "hw §1.4: Mesa and mtx512 give DATA_BANK + WEIGHT_BANK = 12 "
                  "(reg CNA.CBUF_CON0); the TRM field text speaks of 8 banks (hw §9.2)",
    "cbuf_bank_bytes": "hw §1.4: 12 x 32768 B (Mesa, mtx512)",
    "int8_macs_per_cycle": "hw §1.1 [TRM]: 1024 int8 MAC/cycle per core (32x32 array, "
                           "reg CNA.CONV_CON3 NN_MODE 0, hw §1.5)",
    "fp16_macs_per_cycle": "hw §1.1 [TRM]: 512 fp16 (and int16, bf16) MAC/cycle per core",
    "peak_int8_tops": "hw §1.1: 6 TOPS = 1024 MAC x 3 cores x 2 ops x 1 GHz (jas-hacks)",
    "npu_clock_mhz": "hw §1.1/§8: vendor OPPs reach ~1 GHz (the clock behind the 6 TOPS "
                     "figure); mainline probes at 200 MHz [UNCERTAIN: exact OPP table "
                     "not checked]",
    "dram_gbps": "64-bit bus of 4 x 16-bit LPDDR4/4X/5 channels (RK3588 DDR design notes) x "
                 "4224 MT/s (LPDDR4X at the rkbin DDR blob's 2112 MHz) = 33.8 GB/s; LPDDR5 "
                 "boards reach 2400-2736 MHz, 38.4-43.8 GB/s [UNCERTAIN: board-dependent "
                 "theoretical peak, sustained is lower]",
    "atom_bytes": "hw §1.5 [TRM note under CNA_CVT_CON5]: feature atom = 16 bytes",
    "c2_int8": "hw §4.1; logs/*_rk3588_int8.log NativeShape (...,16), e.g. conv_relu output "
               "(1,2,32,32,16); fmt §3",
    "c2_fp16": "hw §4.1/§1.5; logs/*_rk3588_fp16.log NativeShape (...,8); int16 the same "
               "(logs/resblock_rk3588_int8_w16a16.log); fmt §3",
    "argb_max_channels": "reg CNA.CONV_CON1 ARGB_IN[15:12] (8..11 = 1..4-channel input, hw "
                         "§3.1/§4.1); logs/*_rk3588_*.log: the 3-channel input stays C2 = 3, "
                         "NativeShape (1,1,32,32,3)",
    "small_cin_weight_bytes": "logs/conv_relu_rk3588_{int8,fp16}.log Const table: w1 "
                              "16x3x3x3 = 0x900 B = 16 kernels x 9 taps x 16 B (int8: 16 "
                              "channels, fp16: 8); fmt §3",
    "weight_kernel_group_int8": "hw §1.5 [TRM reg CNA.CONV_CON2 KERNEL_GROUP text] and hw "
                                "§4.3: Mesa rkt_fill_weights and mtx512 put oc/32 outermost",
    "weight_kernel_group_fp16": "hw §1.5 [TRM]: 16 kernels for int16/fp16; hw §4.3 mtx512 fp16 "
                                "matmul packs 16-kernel groups",
    "weight_cin_group": "hw §1.5/§4.3: weight channel atom 32 (Mesa WEIGHT_ATOMIC_SIZE; inner "
                        "order [tap][oc%32][ic%32]); mtx512 uses 32 for fp16 as well",
    "weight_cin_align_int8": "hw §4.3: Mesa pads C_in to align(max(C,16),16); a 16-channel "
                             "tail is not padded to 32",
    "out_align_int8": "hw §4.5 (Mesa Kpad = align(max(K,32),32)); logs/*_rk3588_int8.log: "
                      "K=16 output of conv_relu takes 0x8000 B = 32 ch x 32x32, K=16 and K=10 "
                      "biases take 0x100 B = 32 ch x 8 B",
    "out_align_fp16": "logs/*_rk3588_fp16.log: K=16 conv outputs take 16 ch (mobilenet r0 "
                      "0x2000 B = 16 x 16x16 x 2 B), K=10 takes 16 (resblock output_mm 0x20 "
                      "B); equals the 16-kernel fp16 group [UNCERTAIN: few samples]",
    "dw_align_int8": "hw §4.3 (Mesa depthwise pads output channels to 64); "
                     "logs/mobilenet_rk3588_int8.log: 16-ch depthwise output rdw takes 0x4000 "
                     "B = 64 x 16x16, its bias 0x200 B = 64 x 8 B",
    "dw_align_fp16": "logs/mobilenet_rk3588_fp16.log: 16-ch depthwise output rdw takes 0x4000 "
                     "B = 32 x 16x16 x 2 B [UNCERTAIN: one sample]",
    "surface_pixel_align": "logs/resblock_rk3588_{int8,fp16}.log: a 3x3 output (gap_2conv0) "
                           "takes 12 pixels per surface (int8 0x300 B = 64 ch x 12 px), a 1x1 "
                           "output 1; hw §4.1 reports this rounding for RK3568 only (iav) "
                           "[UNCERTAIN: inferred from two buffer sizes]",
    **_REGISTER_LIMITS,
    "dtypes": "hw §1.1 [TRM]: int4, int8, int16, fp16, bf16, tf32",
    "dma_address_bits": "hw §1.3/§8: BSP dma_mask 40 bits; address registers are 32 bits, so "
                        "every NPU buffer must sit below 4 GiB in IOVA space",
    "max_tasks_per_submit": "hw §8: BSP task_number bits 12 -> (1 << 12) - 1 (BSP "
                            "rknpu_drv.c max_submit_number)",
    **{k: v.format(chip="rk3588") for k, v in {
        "mac_pixel_block": _MAC_PIXEL_BLOCK_SOURCE,
        "dpu_elements_per_cycle": "logs/*_{chip}_*: NPU cycles of the 1x1 convs are the DPU's: "
                                  "mobilenet cpw (256 px, K=32) 1024 = 256 x 32 / 8 in int8 "
                                  "and fp16, resblock output#2 (1 px -> 16, Kpad 32 int8 / 16 "
                                  "fp16) 64 / 32 = 16 x Kpad / 8 [UNCERTAIN: the vendor "
                                  "estimator's rate, fitted; not a documented figure]",
    }.items()},
    "ppu_atoms_per_cycle": _PPU_SOURCE,
    "task_overhead_cycles": _TASK_OVERHEAD_SOURCE,
}

RK3588 = Target(
    name="RK3588", npu_of="RK3588", cores=3,
    cbuf_bytes=384 * 1024, cbuf_banks=12, cbuf_bank_bytes=32 * 1024,
    int8_macs_per_cycle=1024, fp16_macs_per_cycle=512, peak_int8_tops=6.0,
    npu_clock_mhz=1000, dram_gbps=33.8,
    atom_bytes=16, c2_int8=16, c2_fp16=8, argb_max_channels=4, small_cin_weight_bytes=16,
    weight_kernel_group_int8=32, weight_kernel_group_fp16=16, weight_cin_group=32,
    weight_cin_align_int8=16,
    out_align_int8=32, out_align_fp16=16, dw_align_int8=64, dw_align_fp16=32,
    surface_pixel_align=4,
    **_REGISTER_LIMIT_VALUES,
    dtypes=("int4", "int8", "int16", "fp16", "bf16", "tf32"),
    dma_address_bits=40, max_tasks_per_submit=4095,
    mac_pixel_block=16, dpu_elements_per_cycle=8, ppu_atoms_per_cycle=1,
    task_overhead_cycles=120,
    sources=_RK3588_SOURCES,
)

# ---------------------------------------------------------------------------- RK3568

_RK3568_SOURCES = {
    "npu_of": "RK3568's own NPU (hw §8)",
    "cores": "hw §1.3/§8: single core (DT); BSP rknpu_drv.c core_mask 0x1",
    "cbuf_bytes": "hw §1.4/§8: 256 KiB (iav, citing RK3568 TRM Part 2 §9.1, fitted against "
                  "vendor streams) [UNCERTAIN: RE only]",
    "cbuf_banks": "hw §1.4/§8: 8 banks (iav) [UNCERTAIN: RE only]",
    "cbuf_bank_bytes": "hw §1.4/§8: 32 KiB per bank (iav) [UNCERTAIN: RE only]",
    "int8_macs_per_cycle": "derived: 'up to 1 TOPS' / (2 ops x 1 GHz) = ~512, and a 32-channel "
                           "x 16-kernel array matches the weight slice and kernel group of hw "
                           "§4.3 [UNCERTAIN: derived, not documented]",
    "fp16_macs_per_cycle": "derived: half the int8 rate; the vendor cost model charges twice "
                           "the int8 NPU cycles for fp16 3x3 convs (logs/conv_relu_rk3568_*: "
                           "18432 vs 9216; resblock c2: 4608 vs 2304) [UNCERTAIN: derived]",
    "peak_int8_tops": "hw §8: 'up to 1 TOPS' (RK3568 datasheet); some vendors quote 0.8",
    "npu_clock_mhz": "hw §8: 600 MHz default, OPPs 200-1000 MHz (odroid / RFC DTs) "
                     "[UNCERTAIN: top OPP differs between BSP and board DTs]",
    "dram_gbps": "32-bit DDR bus x 3120 MT/s (DMC OPP 1560 MHz, ODROID-M1 BSP DTB) = 12.5 GB/s "
                 "[UNCERTAIN: bus width from the datasheet, not re-checked here; board-"
                 "dependent theoretical peak]",
    "atom_bytes": "hw §4.1/§8 (iav: 8-channel surfaces); logs/*_rk3568_int8.log C2 = 8 and "
                  "logs/*_rk3568_fp16.log C2 = 4 both give 8 bytes",
    "c2_int8": "logs/*_rk3568_int8.log NativeShape (...,8), e.g. conv_relu output "
               "(1,2,32,32,8) of 0x4000 B; fmt §3",
    "c2_fp16": "logs/*_rk3568_fp16.log NativeShape (...,4), e.g. conv_relu output of 16 ch "
               "takes 0x8000 B = 16 x 32x32 x 2 B",
    "argb_max_channels": "logs/*_rk3568_*.log: the 3-channel input stays C2 = 3 (1,1,32,32,3); "
                         "hw §4.1: iav sees ARGB_IN = 10 for RK3568 first layers; the 4-channel "
                         "limit is the RK3588 register field [UNCERTAIN: field width assumed]",
    "small_cin_weight_bytes": "logs/conv_relu_rk3568_{int8,fp16}.log Const table: w1 16x3x3x3 "
                              "= 0x480 B = 16 kernels x 9 taps x 8 B (int8: 8 ch, fp16: 4); "
                              "hw §4.3 (iav: C_in <= 3 uses 8-byte rows); fmt §3",
    "weight_kernel_group_int8": "hw §4.3/§8: kernel groups of 16 (iav, matched with marker "
                                "weights) [UNCERTAIN: RE only]",
    "weight_kernel_group_fp16": "unknown: no RK3568 fp16 weight layout is published",
    "weight_cin_group": "hw §4.3: [ic slice of 32][tap][oc%16][ic%32] (iav) [UNCERTAIN: RE "
                        "only]",
    "weight_cin_align_int8": "hw §4.3: a channel tail takes align(rem,16) bytes per kernel row "
                             "(iav) [UNCERTAIN: RE only]",
    "out_align_int8": "logs/*_rk3568_int8.log: K=16 conv output takes 16 ch (conv_relu 0x4000 "
                      "B = 16 x 32x32), K=10 takes 16 (bias 0x80 B = 16 x 8 B); equals the "
                      "16-kernel group [UNCERTAIN: 8 fits these samples as well]",
    "out_align_fp16": "logs/*_rk3568_fp16.log: K=16 takes 16 ch, K=10 takes 16 (resblock "
                      "output_mm 0x20 B) [UNCERTAIN: 8 fits these samples as well]",
    "dw_align_int8": "logs/mobilenet_rk3568_int8.log: 16-ch depthwise output rdw takes 0x2000 "
                     "B = 32 x 16x16, bias 0x100 B = 32 x 8 B; hw §4.3 (iav: depthwise runs "
                     "per 32-channel group)",
    "dw_align_fp16": "logs/mobilenet_rk3568_fp16.log: 16-ch depthwise output takes 0x2000 B = "
                     "16 x 16x16 x 2 B [UNCERTAIN: one sample]",
    "surface_pixel_align": "hw §4.1 (iav: 7x7 -> 52 pixels, 1x1 stays 1); "
                           "logs/resblock_rk3568_int8.log: 3x3 output gap_2conv0 takes 0x180 B "
                           "= 32 ch x 12 px",
    "dtypes": "RK3568 datasheet: 'INT8/INT16/FP16/BFP16' MAC operation (no int4, no tf32)",
    "dma_address_bits": "hw §1.3/§8: 32 bits (BSP dma_mask, IOMMU v1)",
    "max_tasks_per_submit": "hw §8: BSP task_number bits 12 -> (1 << 12) - 1",
    "mac_pixel_block": _MAC_PIXEL_BLOCK_SOURCE.format(chip="rk3568"),
    "dpu_elements_per_cycle": "logs/*_rk3568_*.log: mobilenet cpw (256 px, K=32) 2048 NPU "
                              "cycles = 256 x 32 / 4 in int8 and fp16, resblock output#2 (1 "
                              "px -> 16, Kpad 16) 64 = 16 x 16 / 4; half RK3588's 8, as its "
                              "8-byte atom is half the 16-byte one [UNCERTAIN: the vendor "
                              "estimator's rate, fitted]",
    "ppu_atoms_per_cycle": _PPU_SOURCE,
    "task_overhead_cycles": _TASK_OVERHEAD_SOURCE,
}
_RK3568_SOURCES.update(_assumed(
    _REGISTER_LIMITS, _REGISTER_LIMITS,
    "same register field widths as RK3588 (the RFC author says the layout matches; iav sees "
    "shifted CORE registers, hw §3.2/§9.7)"))

RK3568 = Target(
    name="RK3568", npu_of="RK3568", cores=1,
    cbuf_bytes=256 * 1024, cbuf_banks=8, cbuf_bank_bytes=32 * 1024,
    int8_macs_per_cycle=512, fp16_macs_per_cycle=256, peak_int8_tops=1.0,
    npu_clock_mhz=1000, dram_gbps=12.5,
    atom_bytes=8, c2_int8=8, c2_fp16=4, argb_max_channels=4, small_cin_weight_bytes=8,
    weight_kernel_group_int8=16, weight_kernel_group_fp16=None, weight_cin_group=32,
    weight_cin_align_int8=16,
    out_align_int8=16, out_align_fp16=16, dw_align_int8=32, dw_align_fp16=16,
    surface_pixel_align=4,
    **_REGISTER_LIMIT_VALUES,
    dtypes=("int8", "int16", "fp16", "bf16"),
    dma_address_bits=32, max_tasks_per_submit=4095,
    mac_pixel_block=16, dpu_elements_per_cycle=4, ppu_atoms_per_cycle=1,
    task_overhead_cycles=120,
    sources=_RK3568_SOURCES,
)

# RK3566 carries the RK3568's NPU (same compatible string and DT node, hw §1.3); vendor
# builds for the two differ only in the platform string (fmt §3).
RK3566 = dataclasses.replace(
    RK3568, name="RK3566",
    sources={**_RK3568_SOURCES,
             "npu_of": "same NPU as RK3568 (hw §1.3: same compatible and node; fmt §3: rk3566 "
                       "and rk3568 builds differ only in the platform string)"},
)

# ---------------------------------------------------------------------------- RK3576

_RK3576_OWN = {
    "npu_of": "RK3576's own NPU ('RKNPU f2' in .rknn files, fmt §4)",
    "cores": "BSP rknpu_drv.c rk3576_rknpu_config: core_mask 0x3, two IRQs; rknn-toolkit2 "
             "core_mask / single_core_mode cover RK3576 (peers §1)",
    "int8_macs_per_cycle": "unknown: 6 TOPS over 2 cores at 950 MHz implies ~1580 MAC/cycle "
                           "per core, not an array size; per-core FPS in peers §5.2 is close "
                           "to RK3588's (1024) [UNCERTAIN: no public figure]",
    "fp16_macs_per_cycle": "unknown [UNCERTAIN: no public figure]",
    "peak_int8_tops": "Rockchip RK3576 product data: 6 TOPS (peers §1, vendor pages)",
    "npu_clock_mhz": "BSP rk3576.dtsi npu-opp-table (radxa/kernel @5baf797a): top OPP 950 MHz "
                     "(RK3576S: 500 MHz)",
    "dram_gbps": "DMC OPP 2736 MHz = LPDDR5-5472 (BSP rk3576.dtsi dmc-opp-table, radxa/kernel "
                 "@5baf797a) x 32-bit bus = 21.9 GB/s [UNCERTAIN: bus width not checked; "
                 "board-dependent theoretical peak]",
    "atom_bytes": "fmt §3: int8 C2 = 16 on rk3576 -> 16-byte atom",
    "c2_int8": "fmt §3: native layout NC1HWC2 with int8 C2 = 16 on rk3576",
    "c2_fp16": "16-byte atom / 2 bytes [UNCERTAIN: no rk3576 fp16 build in the fixtures]",
    "small_cin_weight_bytes": "fmt §3: w1 16x3x3x3 int8 = 1152 B = 16 kernels x 9 taps x 8 B "
                              "on rk3576 (RK3588: 16 B), so RK3576 weight packing differs "
                              "from RK3588's",
    "dtypes": "RK3576 product data: INT4/INT8/INT16/FP16/BF16/TF32; fmt §2: rknn-toolkit2 "
              "accepts w4a16 for rk3576 only",
    "dma_address_bits": "BSP rknpu_drv.c rk3576_rknpu_config: dma_mask 40 bits",
    "max_tasks_per_submit": "BSP rknpu_drv.c rk3576_rknpu_config: pc_task_number_bits 16, "
                            "max_submit_number (1 << 16) - 1",
}
_RK3576_SOURCES = {
    **_RK3576_OWN,
    **_assumed(_RK3588_SOURCES,
               [k for k in _RK3588_SOURCES if k not in _RK3576_OWN],
               "assumed equal to RK3588 (16-byte atom and C2 = 16 like RK3588; no public "
               "RK3576 figure found)"),
}

RK3576 = Target(
    name="RK3576", npu_of="RK3576", cores=2,
    cbuf_bytes=384 * 1024, cbuf_banks=12, cbuf_bank_bytes=32 * 1024,
    int8_macs_per_cycle=None, fp16_macs_per_cycle=None, peak_int8_tops=6.0,
    npu_clock_mhz=950, dram_gbps=21.9,
    atom_bytes=16, c2_int8=16, c2_fp16=8, argb_max_channels=4, small_cin_weight_bytes=8,
    weight_kernel_group_int8=32, weight_kernel_group_fp16=16, weight_cin_group=32,
    weight_cin_align_int8=16,
    out_align_int8=32, out_align_fp16=16, dw_align_int8=64, dw_align_fp16=32,
    surface_pixel_align=4,
    **_REGISTER_LIMIT_VALUES,
    dtypes=("int4", "int8", "int16", "fp16", "bf16", "tf32"),
    dma_address_bits=40, max_tasks_per_submit=65535,
    mac_pixel_block=16, dpu_elements_per_cycle=8, ppu_atoms_per_cycle=1,
    task_overhead_cycles=120,
    sources=_RK3576_SOURCES,
)

# ---------------------------------------------------------------------------- lookup

TARGETS: dict[str, Target] = {t.name.lower(): t for t in (RK3588, RK3576, RK3568, RK3566)}


def get_target(name: str) -> Target:
    """The target called `name` (case-insensitive); RkcError naming the valid ones otherwise."""
    target = TARGETS.get(name.strip().lower())
    if target is None:
        raise RkcError(f"unknown target {name!r}; valid targets: {', '.join(sorted(TARGETS))}")
    return target


# ---------------------------------------------------------------------------- table

def _kib(n: int) -> str:
    return f"{n // 1024} KiB" if n % 1024 == 0 else f"{n} B"


def _plain(value: object) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


# (row label, [(field, formatter), ...]); several fields share a cell, joined by " / "
# (" x " for the CBUF bank row).
_ROWS: list[tuple[str, list[tuple[str, Callable[[object], str]]]]] = [
    ("NPU block", [("npu_of", _plain)]),
    ("NPU cores", [("cores", _plain)]),
    ("CBUF per core", [("cbuf_bytes", _kib)]),
    ("CBUF banks x bank size", [("cbuf_banks", _plain), ("cbuf_bank_bytes", _kib)]),
    ("MAC/cycle/core int8 / fp16", [("int8_macs_per_cycle", _plain),
                                    ("fp16_macs_per_cycle", _plain)]),
    ("Peak int8 TOPS (vendor)", [("peak_int8_tops", _plain)]),
    ("NPU clock, MHz", [("npu_clock_mhz", _plain)]),
    ("DRAM, GB/s (theoretical)", [("dram_gbps", _plain)]),
    ("Feature atom, bytes", [("atom_bytes", _plain)]),
    ("C2 int8 / fp16", [("c2_int8", _plain), ("c2_fp16", _plain)]),
    ("Packed input: C2 = C for C <=", [("argb_max_channels", _plain)]),
    ("Weight bytes per tap, packed input", [("small_cin_weight_bytes", _plain)]),
    ("Weight kernel group int8 / fp16", [("weight_kernel_group_int8", _plain),
                                         ("weight_kernel_group_fp16", _plain)]),
    ("Weight C_in slice / int8 C_in align", [("weight_cin_group", _plain),
                                             ("weight_cin_align_int8", _plain)]),
    ("Out-channel pad conv int8 / fp16", [("out_align_int8", _plain),
                                          ("out_align_fp16", _plain)]),
    ("Out-channel pad depthwise int8 / fp16", [("dw_align_int8", _plain),
                                               ("dw_align_fp16", _plain)]),
    ("Surface pixels rounded to", [("surface_pixel_align", _plain)]),
    ("Max kernel / stride / pad / dilation", [("max_kernel", _plain), ("max_stride", _plain),
                                              ("max_pad", _plain), ("max_dilation", _plain)]),
    ("Max task W / H / C_in / kernels", [("max_width", _plain), ("max_height", _plain),
                                         ("max_input_channels", _plain),
                                         ("max_kernels", _plain)]),
    ("Data types", [("dtypes", _plain)]),
    ("DMA address bits", [("dma_address_bits", _plain)]),
    ("Tasks per submit", [("max_tasks_per_submit", _plain)]),
    ("MAC pixel block / DPU elements per cycle", [("mac_pixel_block", _plain),
                                                  ("dpu_elements_per_cycle", _plain)]),
    ("PPU atoms per cycle / task overhead cycles", [("ppu_atoms_per_cycle", _plain),
                                                    ("task_overhead_cycles", _plain)]),
]


def target_table(targets: Iterable[Target] | None = None) -> str:
    """A markdown table of the targets' parameters; uncertain figures end in '?'.

    For docs and `rkc report`; all four chips unless `targets` names some.
    """
    chosen = list(TARGETS.values()) if targets is None else list(targets)
    lines = ["| | " + " | ".join(t.name for t in chosen) + " |",
             "|---|" + "---|" * len(chosen)]
    for label, parts in _ROWS:
        cells = []
        for t in chosen:
            shown = []
            for name, fmt in parts:
                value = getattr(t, name)
                mark = "?" if value is not None and name in t.uncertain_fields else ""
                shown.append(fmt(value) + mark)
            cells.append((" x " if label.startswith("CBUF banks") else " / ").join(shown))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("`?`: uncertain (reverse engineered, derived or assumed); sources per figure "
                 "in `rkc/targets.py`.")
    return "\n".join(lines)
