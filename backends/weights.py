"""Constant data a task reads from DRAM: packed weights, the DPU stream, LUT tables.

Weights (hw §4.3; checked byte for byte against the 18 vendor weight buffers of the
fixtures, tests/test_weights.py). A direct conv's weights `w[K, C, kh, kw]` are stored
kernel group by kernel group (`weight_kernel_group` kernels: 32 int8 / 16 fp16 on RK3588,
16 int8 on RK3568), inside a group input-channel slice by slice (`weight_cin_group` = 32
channels), inside a slice tap by tap (kh then kw), then kernel by kernel, then channel by
channel:

    [k // G][c // 32][y][x][k % G][c % 32]     (the last group / slice holds the rest)

Input channels are padded to `align(C, 16)` (int8; one atom of channels for fp16), or to
the packed-input row (`small_cin_weight_bytes`: 16 B on RK3588, 8 B on RK3568) for a
few-channel (ARGB) input; pad channels hold the kernel's weight zero point, so that they
add nothing (the vendor does the same). Kernels are not padded (a 10-kernel group is
stored as 10 kernels). A depthwise conv's weights `w[C, 1, kh, kw]` are stored in groups
of `dw_align` channels (64 on RK3588, 32 on RK3568): `[c // D][y][x][c % D]`, channels
padded to 16.

DPU stream (the BRDMA stream of a conv, read at `RDMA_BS_BASE_ADDR` with
`BRDMA_DATA_USE` = ALU | CPEND | MUL; an fp16 conv reads float32 biases only,
`pack_fp16_stream`). Decoded from the 18 vendor int8 streams: per group of
`STREAM_GROUP` output channels (8 on RK3588, 4 on RK3568), G int32 biases, then G int16
weight offsets (CPEND / OW, the negated weight zero point: the MAC adds it to every
weight), then G uint16 channel multipliers; the stream covers the padded output channels
(`padded_out_channels`), zero beyond the real ones. The DPU computes per channel
`((acc + bias) * mul) >> 14` (BS stage, `CHANNEL_MUL_SHIFT`), then one output converter
for the task `* OUT_CVT_SCALE >> OUT_CVT_SHIFT + zero point`. `split_requant` turns rkc's
per-channel (M, S) into that form: the channel with the largest multiplier keeps its
(M, S) as the output converter and mul = 2^14 (exact); every other channel gets mul =
round(2^14 * its multiplier / the largest) -- a second rounding, so those channels may
differ from rkc's single-step requantization by one unit [UNCERTAIN: the rounding of
the BS multiply is not measured on a board]. The vendor uses the same form (its
multipliers match round(2^14 s_c / s_max) exactly).

LUT (hw §4.7) [UNCERTAIN]: two tables (LE, LO) of 513 16-bit entries, loaded through
DPU.LUT_ACCESS_CFG / LUT_ACCESS_DATA; the index and interpolation parameters are not
known, so only the loading writes are given here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rkc.backends.regcmd import RegWrite, reg_write
from rkc.backends.registers import register_table
from rkc.errors import RkcError
from rkc.targets import Target, get_target

CHANNEL_MUL_SHIFT = 14              # BS_MUL_SHIFT_VALUE the vendor writes in every conv
STREAM_GROUP = {"RK3588": 8, "RK3568": 4}  # channels per stream group, by NPU
LUT_ENTRIES = 513                   # per table (hw §4.7: allbilly captures, vendor sigmoid)
DEPTHWISE_CHANNEL_ALIGN = 16        # depthwise weights: channels padded to 16 (vendor)


def _align(n: int, to: int) -> int:
    return -(-n // to) * to


def _npu(chip: str | Target) -> Target:
    return chip if isinstance(chip, Target) else get_target(chip)


# ----------------------------------------------------------------------------- weights

@dataclass(frozen=True)
class WeightLayout:
    """How one conv's weights are packed on a chip (see the module docstring)."""

    kernels: int
    channels: int          # real input channels (1 for depthwise)
    kh: int
    kw: int
    padded_channels: int   # channels per kernel row as stored
    kernel_group: int | None  # kernels per group (direct); None: not known for the chip
    channel_group: int     # channels per slice (direct) or per group (depthwise)
    depthwise: bool
    element_bytes: int

    @property
    def bytes_per_kernel(self) -> int:
        """CNA WEIGHT_BYTES_PER_KERNEL: one kernel's stored bytes (depthwise: all taps of
        the padded channels)."""
        return self.kh * self.kw * self.padded_channels * self.element_bytes

    @property
    def total_bytes(self) -> int:
        """CNA WEIGHT_BYTES."""
        return self.bytes_per_kernel * (1 if self.depthwise else self.kernels)


def weight_layout(chip: str | Target, kernels: int, channels: int, kh: int, kw: int,
                  depthwise: bool = False, packed_input: bool = False,
                  dtype: str = "int8") -> WeightLayout:
    """The packing of `kernels` x `channels` x kh x kw weights on `chip`."""
    t = _npu(chip)
    element = {"int8": 1, "fp16": 2}.get(dtype)
    if element is None:
        raise RkcError(f"weights of type {dtype!r} have no known packing")
    if depthwise:
        group = t.dw_align_int8 if dtype == "int8" else t.dw_align_fp16
        return WeightLayout(kernels, 1, kh, kw, _align(kernels, DEPTHWISE_CHANNEL_ALIGN),
                            0, group, True, element)
    kernel_group = t.weight_kernel_group_int8 if dtype == "int8" else \
        t.weight_kernel_group_fp16
    if packed_input:
        padded = t.small_cin_weight_bytes // element
        if channels > padded:
            raise RkcError(f"{t.name}: a packed input has at most {padded} {dtype} "
                           f"channels, got {channels}")
    else:
        padded = _align(channels, t.weight_cin_align_int8 if dtype == "int8"
                        else t.c2(dtype))
    return WeightLayout(kernels, channels, kh, kw, padded, kernel_group,
                        t.weight_cin_group, False, element)


def _blocks(layout: WeightLayout):
    """(kernel slice, channel slice) blocks in storage order; each stored [y][x][k][c]."""
    if layout.depthwise:
        for c0 in range(0, layout.padded_channels, layout.channel_group):
            yield None, slice(c0, min(c0 + layout.channel_group, layout.padded_channels))
        return
    if layout.kernel_group is None:
        raise RkcError("no weight kernel group is known for this chip and type (sizes "
                       "are, the byte order is not)")
    for k0 in range(0, layout.kernels, layout.kernel_group):
        ks = slice(k0, min(k0 + layout.kernel_group, layout.kernels))
        for c0 in range(0, layout.padded_channels, layout.channel_group):
            yield ks, slice(c0, min(c0 + layout.channel_group, layout.padded_channels))


def pack_weights(weights: np.ndarray, layout: WeightLayout,
                 zero_points: Sequence[int] | None = None) -> bytes:
    """The stored bytes of `weights` ([K, C, kh, kw]; depthwise [C, 1, kh, kw]), int8 or
    float16; pad channels take each kernel's weight zero point (0 when not given)."""
    w = np.asarray(weights)
    expected = (layout.kernels, layout.channels, layout.kh, layout.kw)
    if w.shape != expected:
        raise RkcError(f"weights of shape {list(w.shape)} do not match the layout "
                       f"{list(expected)}")
    dtype = np.int8 if layout.element_bytes == 1 else np.float16
    zp = np.zeros(layout.kernels, np.int64) if zero_points is None else \
        np.asarray(zero_points, np.int64)
    if layout.depthwise:
        full = np.zeros((layout.padded_channels, layout.kh, layout.kw), dtype)
        full[:layout.kernels] = w[:, 0]
        return b"".join(np.ascontiguousarray(full[cs].transpose(1, 2, 0)).tobytes()
                        for _, cs in _blocks(layout))
    full = np.empty((layout.kernels, layout.padded_channels, layout.kh, layout.kw), dtype)
    full[:] = zp.astype(dtype)[:, None, None, None]
    full[:, :layout.channels] = w
    return b"".join(np.ascontiguousarray(full[ks, cs].transpose(2, 3, 0, 1)).tobytes()
                    for ks, cs in _blocks(layout))


def unpack_weights(data: bytes, layout: WeightLayout) -> np.ndarray:
    """The inverse of `pack_weights`, pad channels included: [K, padded C, kh, kw]
    (depthwise: [padded C, 1, kh, kw]). RkcError unless `data` has the layout's size."""
    dtype = np.int8 if layout.element_bytes == 1 else np.float16
    if len(data) != layout.total_bytes:
        raise RkcError(f"{len(data)} weight bytes, the layout needs {layout.total_bytes}")
    flat = np.frombuffer(data, dtype)
    taps = layout.kh * layout.kw
    pos = 0
    if layout.depthwise:
        out = np.empty((layout.padded_channels, 1, layout.kh, layout.kw), dtype)
        for _, cs in _blocks(layout):
            n = cs.stop - cs.start
            out[cs, 0] = flat[pos:pos + taps * n].reshape(layout.kh, layout.kw, n) \
                .transpose(2, 0, 1)
            pos += taps * n
        return out
    out = np.empty((layout.kernels, layout.padded_channels, layout.kh, layout.kw), dtype)
    for ks, cs in _blocks(layout):
        nk, nc = ks.stop - ks.start, cs.stop - cs.start
        out[ks, cs] = flat[pos:pos + taps * nk * nc].reshape(layout.kh, layout.kw, nk, nc) \
            .transpose(2, 3, 0, 1)
        pos += taps * nk * nc
    return out


# ------------------------------------------------------------------- requantization

@dataclass(frozen=True)
class DpuRequant:
    """rkc's per-channel (M, S) in the DPU's form: per-channel `channel_mul` (BS stage,
    >> CHANNEL_MUL_SHIFT) and one output converter (`out_scale`, `out_shift`)."""

    channel_mul: tuple[int, ...]
    out_scale: int
    out_shift: int


def split_requant(multipliers: Sequence[int], shifts: Sequence[int]) -> DpuRequant:
    """The DPU form of per-channel multipliers M_c / 2^S_c (see the module docstring).

    RkcError when a channel's multiplier is below 2^-15 of the largest: its channel
    multiplier would round to 0."""
    if len(multipliers) != len(shifts) or not multipliers:
        raise RkcError("requantization needs one multiplier and one shift per channel")
    for m in multipliers:
        if not 0 < m < 1 << 16:
            raise RkcError(f"requantization multiplier {m} is not a positive 16-bit number")
    # the largest real multiplier M / 2^S, compared exactly: M_a 2^S_b vs M_b 2^S_a
    g = 0
    for c in range(1, len(multipliers)):
        if multipliers[c] << shifts[g] > multipliers[g] << shifts[c]:
            g = c
    mg, sg = multipliers[g], shifts[g]
    muls = []
    for c, (m, s) in enumerate(zip(multipliers, shifts, strict=True)):
        num = m << (CHANNEL_MUL_SHIFT + max(sg - s, 0))
        den = mg << max(s - sg, 0)
        mul = (2 * num + den) // (2 * den)        # round half up
        if mul == 0:
            raise RkcError(f"requantization: channel {c}'s multiplier {m}/2^{s} is less "
                           f"than 2^-15 of the largest ({mg}/2^{sg}); the DPU's channel "
                           "multiplier cannot represent it")
        muls.append(mul)
    return DpuRequant(tuple(muls), mg, sg)


# ------------------------------------------------------------------------- DPU stream

def stream_group(chip: str | Target) -> int:
    t = _npu(chip)
    group = STREAM_GROUP.get(t.npu_of)
    if group is None:
        raise RkcError(f"{t.name}: the DPU stream layout is not known")
    return group


def stream_biases(bias: Sequence[int], weights: np.ndarray, weight_zero_points: Sequence[int],
                  input_zero_point: int) -> np.ndarray:
    """The stream's int32 biases: rkc's `bias[o]` minus `input_zero_point * sum(w - z_w)`
    over kernel o's taps and input channels (the MAC multiplies the raw inputs; padding
    reads the input zero point, so it cancels the same way). RkcError outside int32."""
    w = np.asarray(weights, np.int64)
    k = w.shape[0]
    zp = np.asarray(weight_zero_points, np.int64) if len(weight_zero_points) else \
        np.zeros(k, np.int64)
    sums = (w.reshape(k, -1) - zp[:, None]).sum(axis=1)
    out = np.asarray(bias, np.int64) - input_zero_point * sums
    bad = np.flatnonzero((out < -(1 << 31)) | (out >= 1 << 31))
    if bad.size:
        raise RkcError(f"channel {int(bad[0])}: DPU bias {int(out[bad[0]])} does not fit "
                       "int32")
    return out


def pack_dpu_stream(chip: str | Target, biases: Sequence[int], weight_offsets: Sequence[int],
                    channel_mul: Sequence[int], padded_channels: int) -> bytes:
    """The BRDMA stream: per group of `stream_group` channels, int32 biases, int16 weight
    offsets (OW, = -weight zero point), uint16 channel multipliers; zeros up to
    `padded_channels`."""
    k = len(biases)
    if not len(weight_offsets) == len(channel_mul) == k <= padded_channels:
        raise RkcError(f"DPU stream: {k} biases, {len(weight_offsets)} offsets, "
                       f"{len(channel_mul)} multipliers for {padded_channels} channels")
    g = stream_group(chip)
    n = _align(padded_channels, g)
    b = np.zeros(n, np.int64)
    b[:k] = biases
    ow = np.zeros(n, np.int64)
    ow[:k] = weight_offsets
    mul = np.zeros(n, np.int64)
    mul[:k] = channel_mul
    for name, values, lo, hi in (("bias", b, -(1 << 31), 1 << 31),
                                 ("weight offset", ow, -(1 << 15), 1 << 15),
                                 ("channel multiplier", mul, 0, 1 << 16)):
        bad = np.flatnonzero((values < lo) | (values >= hi))
        if bad.size:
            raise RkcError(f"DPU stream: channel {int(bad[0])}'s {name} "
                           f"{int(values[bad[0]])} does not fit its field")
    parts = []
    for c0 in range(0, n, g):
        parts.append(b[c0:c0 + g].astype("<i4").tobytes())
        parts.append(ow[c0:c0 + g].astype("<i2").tobytes())
        parts.append(mul[c0:c0 + g].astype("<u2").tobytes())
    return b"".join(parts)


EXACT_STREAM_BYTES_PER_CHANNEL = 10  # int32 bias, int16 OW, uint16 multiplier, uint16 shift


def pack_exact_stream(chip: str | Target, biases: Sequence[int],
                      weight_offsets: Sequence[int], multipliers: Sequence[int],
                      shifts: Sequence[int], padded_channels: int) -> bytes:
    """The BRDMA stream of an "exact" requantization (`ConvTask.uses_exact_requant`):
    per group of `stream_group` channels, int32 biases, int16 weight offsets, uint16
    multipliers M_c and uint16 shifts S_c (the truncate operand, BRDMA_DATA_USE bit 4),
    zeros up to `padded_channels`. The BS stage then computes
    `round_shift((acc + bias) * M_c, S_c)`, rkc's requantization without the zero point.
    [UNCERTAIN: a layout of rkc's choosing; the vendor never writes the truncate operand]"""
    k = len(biases)
    if not len(weight_offsets) == len(multipliers) == len(shifts) == k <= padded_channels:
        raise RkcError(f"DPU stream: {k} biases, {len(weight_offsets)} offsets, "
                       f"{len(multipliers)} multipliers, {len(shifts)} shifts for "
                       f"{padded_channels} channels")
    g = stream_group(chip)
    n = _align(padded_channels, g)
    columns = []
    for name, values, lo, hi, dtype in (
            ("bias", biases, -(1 << 31), 1 << 31, "<i4"),
            ("weight offset", weight_offsets, -(1 << 15), 1 << 15, "<i2"),
            ("multiplier", multipliers, 0, 1 << 16, "<u2"),
            ("shift", shifts, 0, 64, "<u2")):
        full = np.zeros(n, np.int64)
        full[:k] = values
        bad = np.flatnonzero((full < lo) | (full >= hi))
        if bad.size:
            raise RkcError(f"DPU stream: channel {int(bad[0])}'s {name} "
                           f"{int(full[bad[0]])} does not fit its field")
        columns.append((full, dtype))
    return b"".join(col[c0:c0 + g].astype(dtype).tobytes()
                    for c0 in range(0, n, g) for col, dtype in columns)


def unpack_exact_stream(chip: str | Target, data: bytes) -> tuple[np.ndarray, ...]:
    """(biases, weight offsets, multipliers, shifts) of a `pack_exact_stream` stream."""
    g = stream_group(chip)
    row = EXACT_STREAM_BYTES_PER_CHANNEL * g
    if len(data) % row:
        raise RkcError(f"exact DPU stream of {len(data)} bytes is not whole groups of "
                       f"{row} B")
    out: list[list[np.ndarray]] = [[], [], [], []]
    for p in range(0, len(data), row):
        for i, (dtype, at) in enumerate((("<i4", 0), ("<i2", 4), ("<u2", 6), ("<u2", 8))):
            out[i].append(np.frombuffer(data, dtype, g, p + at * g))
    return tuple(np.concatenate(o).astype(np.int64) for o in out)


def pack_fp16_stream(biases: Sequence[float], padded_channels: int) -> bytes:
    """The BRDMA stream of an fp16 conv: one float32 bias per padded output channel
    (`BRDMA_DATA_USE` = ALU; vendor fixtures: conv_relu RK3588, resblock RK3568)."""
    if len(biases) > padded_channels:
        raise RkcError(f"{len(biases)} biases for {padded_channels} channels")
    out = np.zeros(padded_channels, "<f4")
    out[:len(biases)] = biases
    return out.tobytes()


def unpack_dpu_stream(chip: str | Target, data: bytes
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(biases, weight offsets, channel multipliers) of a stream, one per padded channel."""
    g = stream_group(chip)
    row = 8 * g
    if len(data) % row:
        raise RkcError(f"DPU stream of {len(data)} bytes is not whole groups of {row} B")
    b, ow, mul = [], [], []
    for p in range(0, len(data), row):
        b.append(np.frombuffer(data, "<i4", g, p))
        ow.append(np.frombuffer(data, "<i2", g, p + 4 * g))
        mul.append(np.frombuffer(data, "<u2", g, p + 6 * g))
    return (np.concatenate(b).astype(np.int64), np.concatenate(ow).astype(np.int64),
            np.concatenate(mul).astype(np.int64))


# -------------------------------------------------------------------------------- LUT

def lut_load_writes(chip: str, le: Sequence[int], lo: Sequence[int]) -> list[RegWrite]:
    """The writes that load the two LUT tables (hw §4.7): per table LUT_ACCESS_CFG =
    write | table id | address 0, then its 513 entries to LUT_ACCESS_DATA (the address
    increments by itself). Entries are 16-bit: int16 values are stored as two's
    complement. [UNCERTAIN: from captures, not run by rkc on a board]"""
    table = register_table(chip)
    writes = []
    for table_id, entries in ((0, le), (1, lo)):
        if len(entries) != LUT_ENTRIES:
            raise RkcError(f"a LUT table has {LUT_ENTRIES} entries, got {len(entries)}")
        writes.append(reg_write(table, "DPU.LUT_ACCESS_CFG", LUT_ACCESS_TYPE=1,
                                LUT_TABLE_ID=table_id, LUT_ADDR=0))
        for e in entries:
            if not -(1 << 15) <= e < 1 << 16:
                raise RkcError(f"LUT entry {e} does not fit 16 bits")
            writes.append(reg_write(table, "DPU.LUT_ACCESS_DATA", LUT_ACCESS_DATA=e & 0xFFFF))
    return writes
