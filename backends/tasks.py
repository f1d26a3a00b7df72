"""Hardware tasks at the level of their register values' inputs, independent of the IR.

A task description holds everything `rkc.backends.emit_conv` / `emit_dpu` / `emit_ppu` need
to compute one task's register writes: feature geometry in NC1HWC2 with byte strides,
kernel geometry, zero points, the requantization numbers of `rkc.quant.requant` (15-bit
multiplier and shift per output channel), the clamp, the CBUF split and the tile. Memory
is never an address here: every DRAM operand is an `Address`, a buffer name and a byte
offset, which the emitters turn into relocations that a later step patches from the memory
plan (and a loader can rebase).

Invariants (checked in `__post_init__`, an RkcError names the task and the broken rule):
- sizes are positive, pads and offsets non-negative, strides in bytes are whole atoms;
- a feature's surfaces hold its channels: `surfaces * c2 >= channels`;
- per-channel arrays (multipliers, shifts, weight zero points) have one entry per output
  channel of the whole layer; a task's channel range lies inside the layer;
- the tile's input rows, padding and output rows agree with the kernel geometry:
  `pad_top + rows_in + pad_bottom = (rows_out - 1) * stride + (kh - 1) * dilation + 1`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rkc.errors import RkcError

DTYPES = ("int8", "fp16")
ELEMENT_BYTES = {"int8": 1, "fp16": 2}
POOL_KINDS = ("max", "avg")
EW_KINDS = ("add", "sub", "mul", "max", "min", "requantize")


def _check(ok: bool, what: str, message: str) -> None:
    if not ok:
        raise RkcError(f"{what}: {message}")


@dataclass(frozen=True)
class Address:
    """A DRAM location named symbolically: `offset` bytes into buffer `buffer`."""

    buffer: str
    offset: int = 0

    def __post_init__(self) -> None:
        _check(bool(self.buffer) and self.offset >= 0, f"address {self.buffer}+{self.offset}",
               "needs a buffer name and a non-negative offset")

    def plus(self, nbytes: int) -> Address:
        return Address(self.buffer, self.offset + nbytes)


@dataclass(frozen=True)
class Feature:
    """A whole feature map in DRAM: [C1][H][line_stride][C2] (NC1HWC2), batch 1.

    `c2` channels of `dtype` form one pixel (one atom); `packed` means the few-channel
    input mode (CNA ARGB_IN): a pixel holds exactly `channels` values and `c2 ==
    channels`. `line_stride` is the bytes from one row to the next, `surface_stride` the
    bytes from one C1 surface to the next (the vendor rounds a surface to a multiple of 4
    pixels, `rkc.lowering.dram`)."""

    address: Address
    channels: int
    height: int
    width: int
    c2: int
    line_stride: int
    surface_stride: int
    dtype: str = "int8"
    packed: bool = False

    def __post_init__(self) -> None:
        what = f"feature at {self.address.buffer}"
        _check(self.dtype in DTYPES, what, f"dtype {self.dtype!r} is not one of {DTYPES}")
        _check(min(self.channels, self.height, self.width, self.c2) >= 1, what,
               "channels, height, width and c2 must be positive")
        _check(not self.packed or self.c2 == self.channels, what,
               "a packed feature stores exactly its channels per pixel (c2 == channels)")
        _check(self.line_stride >= self.width * self.pixel_bytes, what,
               f"line stride {self.line_stride} B is shorter than a row of {self.width} "
               f"pixels of {self.pixel_bytes} B")
        _check(self.surface_stride >= self.height * self.line_stride or self.surfaces == 1,
               what, f"surface stride {self.surface_stride} B is shorter than "
               f"{self.height} rows of {self.line_stride} B")
        _check(self.line_stride % self.pixel_bytes == 0
               and self.surface_stride % self.pixel_bytes == 0, what,
               "strides must be whole pixels")

    @property
    def element_bytes(self) -> int:
        return ELEMENT_BYTES[self.dtype]

    @property
    def pixel_bytes(self) -> int:
        return self.c2 * self.element_bytes

    @property
    def surfaces(self) -> int:
        return -(-self.channels // self.c2)

    @classmethod
    def native(cls, address: Address, channels: int, height: int, width: int, c2: int,
               surface_pixels: int, dtype: str = "int8") -> Feature:
        """A dense NC1HWC2 tensor whose surfaces are `surface_pixels` pixels apart."""
        pixel = c2 * ELEMENT_BYTES[dtype]
        return cls(address, channels, height, width, c2, width * pixel,
                   surface_pixels * pixel, dtype)

    @classmethod
    def packed_input(cls, address: Address, channels: int, height: int, width: int,
                     dtype: str = "int8") -> Feature:
        """A few-channel input stored pixel by pixel (ARGB mode), one surface."""
        pixel = channels * ELEMENT_BYTES[dtype]
        return cls(address, channels, height, width, channels, width * pixel,
                   height * width * pixel, dtype, packed=True)


@dataclass(frozen=True)
class ConvTile:
    """The part of a conv one task computes: output rows and channels, the input rows they
    read (halo included, clipped to the input) and the padding rows the CNA generates."""

    out_rows: tuple[int, int]
    in_rows: tuple[int, int]
    pad_top: int
    pad_bottom: int
    out_channels: tuple[int, int]
    core: int = 0

    @property
    def rows_out(self) -> int:
        return self.out_rows[1] - self.out_rows[0]

    @property
    def rows_in(self) -> int:
        return self.in_rows[1] - self.in_rows[0]

    @property
    def kernels(self) -> int:
        return self.out_channels[1] - self.out_channels[0]


@dataclass(frozen=True)
class ConvTask:
    """One CNA + CORE + DPU convolution task (direct or depthwise).

    Arithmetic (int8; rkc's semantics, `rkc.quant.integer_kernels.conv2d`; an fp16 conv
    has no requantization numbers, zero points 0 and at most a ReLU, `clamp_low` 0):
    `acc[o] = sum (x - input_zero_point) * (w - weight_zero_points[o]) + bias[o]`,
    `y = clamp(round_shift(acc * multipliers[o], shifts[o]) + output_zero_point)` with the
    clamp `[clamp_low, clamp_high]` (None: only the int8 saturation). The bias lives in the
    DPU stream at `stream` (`rkc.backends.weights.pack_dpu_stream`), the packed weights at
    `weights` (`pack_weights`); neither is a register value. `pads` are the layer's
    (top, left, bottom, right); the tile's own top / bottom padding is in `tile`.
    `input_uint8`: a packed input holding uint8 pixels, turned into int8 (x - 128) by the
    CNA's input converter (the vendor's RK3568 first layers); otherwise inputs are int8."""

    name: str
    input: Feature
    output: Feature
    weights: Address
    stream: Address
    kernel: tuple[int, int]
    out_channels: int
    multipliers: tuple[int, ...]
    shifts: tuple[int, ...]
    tile: ConvTile
    data_banks: int
    weight_banks: int
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilations: tuple[int, int] = (1, 1)
    depthwise: bool = False
    input_zero_point: int = 0
    output_zero_point: int = 0
    weight_zero_points: tuple[int, ...] = ()
    clamp_low: int | None = None
    clamp_high: int | None = None
    weight_reuse: bool = False
    input_uint8: bool = False
    dtype: str = field(default="int8")

    def __post_init__(self) -> None:
        what = f"conv task {self.name}"
        kh, kw = self.kernel
        t = self.tile
        _check(min(kh, kw, *self.strides, *self.dilations, self.out_channels) >= 1, what,
               "kernel, strides, dilations and output channels must be positive")
        _check(min(self.pads) >= 0 and t.pad_top >= 0 and t.pad_bottom >= 0, what,
               "pads must be non-negative")
        _check(self.dtype in DTYPES and self.input.dtype == self.output.dtype == self.dtype,
               what, f"input, output and task dtypes must agree ({self.dtype})")
        if self.dtype == "int8":
            _check(len(self.multipliers) == len(self.shifts) == self.out_channels, what,
                   f"{len(self.multipliers)} multipliers / {len(self.shifts)} shifts for "
                   f"{self.out_channels} output channels")
            zero_points = (self.input_zero_point, self.output_zero_point,
                           *self.weight_zero_points)
            _check(all(-128 <= z <= 127 for z in zero_points), what,
                   f"int8 zero points must lie in [-128, 127], got {zero_points}")
        else:
            _check(not self.multipliers and not self.shifts and not self.weight_zero_points
                   and self.input_zero_point == self.output_zero_point == 0, what,
                   "an fp16 conv has no requantization numbers or zero points")
            _check(self.clamp_low in (None, 0) and self.clamp_high is None, what,
                   "an fp16 conv clamps with a ReLU only (clamp_low 0)")
        _check(not self.weight_zero_points
               or len(self.weight_zero_points) == self.out_channels, what,
               "weight zero points need one entry per output channel")
        _check(0 <= t.out_channels[0] < t.out_channels[1] <= self.out_channels, what,
               f"tile channels {t.out_channels} outside [0, {self.out_channels})")
        _check(0 <= t.in_rows[0] < t.in_rows[1] <= self.input.height, what,
               f"tile input rows {t.in_rows} outside [0, {self.input.height})")
        _check(0 <= t.out_rows[0] < t.out_rows[1] <= self.output.height, what,
               f"tile output rows {t.out_rows} outside [0, {self.output.height})")
        extent_h = (kh - 1) * self.dilations[0] + 1
        _check(t.pad_top + t.rows_in + t.pad_bottom
               == (t.rows_out - 1) * self.strides[0] + extent_h, what,
               f"tile rows: {t.pad_top} + {t.rows_in} + {t.pad_bottom} padded input rows do "
               f"not make {t.rows_out} output rows with kernel {kh}, stride "
               f"{self.strides[0]}")
        extent_w = (kw - 1) * self.dilations[1] + 1
        width = (self.input.width + self.pads[1] + self.pads[3] - extent_w) // self.strides[1]
        _check(width + 1 == self.output.width, what,
               f"output width {self.output.width} does not follow from input width "
               f"{self.input.width}, pads {self.pads[1]}/{self.pads[3]}, kernel {kw}")
        _check(not self.depthwise or self.input.channels == self.out_channels, what,
               "a depthwise conv has as many output as input channels")
        _check(self.output.channels == self.out_channels, what,
               f"output feature has {self.output.channels} channels, the conv "
               f"{self.out_channels}")
        _check(not self.input_uint8 or self.input.packed, what,
               "only a packed (ARGB) input can be read as uint8")
        _check(min(self.data_banks, self.weight_banks) >= 1, what,
               "CBUF needs at least one data and one weight bank")
        if self.clamp_low is not None and self.clamp_high is not None:
            _check(self.clamp_low <= self.clamp_high, what,
                   f"clamp [{self.clamp_low}, {self.clamp_high}] is empty")

    @property
    def in_channels(self) -> int:
        return self.input.channels

    def weight_zero_point(self, channel: int) -> int:
        return self.weight_zero_points[channel] if self.weight_zero_points else 0


@dataclass(frozen=True)
class EwTask:
    """One DPU task in flying mode: `op` on one or two int8 features of equal shape.

    `a` is read by the main read DMA (MRDMA) and goes through the BS stage, `b` by the
    element-wise read DMA (ERDMA) into the EW stage. Both are first centred (minus their
    zero point) and scaled into a common intermediate domain: `a` by `a_scale` =
    (multiplier, shift) in the BS multiplier, `b` by `b_scale` in the EW operand
    converter; the output converter then applies `out_multiplier` / `out_shift` and the
    output zero point, and `[clamp_low, clamp_high]` clamps. `requantize` has no `b`.
    How these numbers are chosen is the caller's (the mapping step's) decision."""

    name: str
    op: str
    a: Feature
    output: Feature
    b: Feature | None = None
    a_zero_point: int = 0
    b_zero_point: int = 0
    output_zero_point: int = 0
    a_scale: tuple[int, int] = (1, 0)
    b_scale: tuple[int, int] = (1, 0)
    out_multiplier: int = 1
    out_shift: int = 0
    clamp_low: int | None = None
    clamp_high: int | None = None

    def __post_init__(self) -> None:
        what = f"ew task {self.name}"
        _check(self.op in EW_KINDS, what, f"op {self.op!r} is not one of {EW_KINDS}")
        _check((self.b is None) == (self.op == "requantize"), what,
               "requantize takes one operand, the other ops two")
        for f in (self.b, self.output):
            if f is not None:
                _check((f.channels, f.height, f.width) ==
                       (self.a.channels, self.a.height, self.a.width), what,
                       "operands and output must have the same shape")
        _check(self.a.dtype == "int8" and self.output.dtype == "int8", what,
               "only int8 elementwise tasks are described")


@dataclass(frozen=True)
class PoolTask:
    """One PPU pooling task in flying mode (input read by PPU_RDMA): max or average over
    `kernel` windows with `strides` and (top, left, bottom, right) `pads`; channels are
    pooled independently, so the input and output have the same channels. `pad_value`
    fills padding: an int8 number, or for fp16 the IEEE half bit pattern (0xFBFF, the
    lowest half, for max pooling)."""

    name: str
    kind: str
    input: Feature
    output: Feature
    kernel: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    pad_value: int = -128

    def __post_init__(self) -> None:
        what = f"pool task {self.name}"
        _check(self.kind in POOL_KINDS, what, f"kind {self.kind!r} is not one of "
               f"{POOL_KINDS}")
        _check(self.input.channels == self.output.channels
               and self.input.dtype == self.output.dtype, what,
               "pooling keeps the channels and the type")
        for axis, (size, out, k, s, p0, p1) in enumerate((
                (self.input.height, self.output.height, self.kernel[0], self.strides[0],
                 self.pads[0], self.pads[2]),
                (self.input.width, self.output.width, self.kernel[1], self.strides[1],
                 self.pads[1], self.pads[3]))):
            _check(min(k, s) >= 1 and min(p0, p1) >= 0, what,
                   "kernel and strides positive, pads non-negative")
            # every window must lie inside input + padding (iav: the PPU hangs otherwise)
            _check(out >= 1 and (out - 1) * s + k <= size + p0 + p1, what,
                   f"axis {axis}: {out} windows of {k} with stride {s} must lie inside "
                   f"{size} + {p0} + {p1} padded elements")
