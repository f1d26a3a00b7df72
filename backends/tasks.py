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
BINARY_OPS = ("add", "sub", "mul", "max", "min")
EW_KINDS = (*BINARY_OPS, "requantize", "clamp", "lut", "leaky_relu", "prelu")
REQUANT_FORMS = ("split", "exact")
LUT_TABLE_SIZE = 256                  # an int8 table: one entry per int8 value
IDENTITY_SCALE = (1, 0)               # (multiplier, shift) of a rescale by 1.0


def is_identity(scale: tuple[int, int]) -> bool:
    """True when round_shift(v * M, S) == v for every v (M == 2^S)."""
    return scale[0] == 1 << scale[1]


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
class EwOperand:
    """A second tensor a DPU stage reads through ERDMA: per pixel (the stage's own shape),
    or `per_channel` (a [C, 1, 1] tensor broadcast over H x W: one value per channel,
    stored as a 1 x 1 NC1HWC2 feature)."""

    feature: Feature
    zero_point: int = 0
    per_channel: bool = False


@dataclass(frozen=True)
class BinaryStage:
    """`x op e` with `e` the operand (the value `x` comes from the stage before: the conv's
    result, or for an `EwTask` the first input). int8 (the arithmetic of
    `rkc.quant.integer_kernels`; every (M, S) pair is `rkc.quant.requant.multiplier`'s):

        X = round_shift((x - x_zero_point) * x_scale),   E = round_shift((e - e_zp) * e_scale)
        y = clamp(round_shift(op(X, E) * out_scale) + output_zero_point, low, high)

    add / sub: X and E in the common accumulator domain (`add_sub`); mul: scales (1, 0),
    `out_scale` = s_a s_b / s_y; max / min: X, E are the operands requantized to y
    (`to_output`), `out_scale` (1, 0). `reversed`: `e op x` (only add / mul / max / min,
    which commute, are expressible; sub on the left is an RkcError at emission).
    `clamp_low` / `clamp_high` (output domain, None = int8 saturation only): a fused
    relu / clip after the op. fp16: no scales or zero points, y = f16(op(x, e)) computed
    in float32."""

    op: str
    operand: EwOperand
    x_zero_point: int = 0
    x_scale: tuple[int, int] = IDENTITY_SCALE
    operand_scale: tuple[int, int] = IDENTITY_SCALE
    out_scale: tuple[int, int] = IDENTITY_SCALE
    output_zero_point: int = 0
    clamp_low: int | None = None
    clamp_high: int | None = None
    reversed: bool = False

    def __post_init__(self) -> None:
        what = f"{self.op} stage"
        _check(self.op in BINARY_OPS, what, f"op must be one of {BINARY_OPS}")
        for name, (m, s) in (("x", self.x_scale), ("operand", self.operand_scale),
                             ("out", self.out_scale)):
            _check(m >= 1 and s >= 0, what, f"{name} scale ({m}, {s}) must be a positive "
                   "multiplier and a non-negative shift")
        if self.clamp_low is not None and self.clamp_high is not None:
            _check(self.clamp_low <= self.clamp_high, what,
                   f"clamp [{self.clamp_low}, {self.clamp_high}] is empty")


@dataclass(frozen=True)
class ClampStage:
    """int8 relu / clip / requantize of the value before it (`to_output`):
    `y = clamp(round_shift((x - x_zero_point) * scale) + output_zero_point, low, high)`
    (None: int8 saturation). fp16: only `scale` (1, 0) and zero points 0; the bounds are
    then f16 bit patterns of nothing -- an fp16 relu is `clamp_low` 0, `clamp_high` None."""

    x_zero_point: int = 0
    scale: tuple[int, int] = IDENTITY_SCALE
    output_zero_point: int = 0
    clamp_low: int | None = None
    clamp_high: int | None = None


@dataclass(frozen=True)
class LutStage:
    """int8 table lookup: `y = table[x + 128]` for the int8 value x the stage before
    produced (the IR's `lut`, indexed by the stored value - qmin). 256 int8 entries."""

    table: tuple[int, ...]

    def __post_init__(self) -> None:
        _check(len(self.table) == LUT_TABLE_SIZE
               and all(-128 <= v <= 127 for v in self.table), "lut stage",
               f"needs {LUT_TABLE_SIZE} int8 entries")


@dataclass(frozen=True)
class LeakyReluStage:
    """fp16 leaky relu: `y = f16(x >= 0 ? x : x * alpha)` with x and alpha as float32."""

    alpha: float


@dataclass(frozen=True)
class PreluStage:
    """fp16 prelu: `y = f16(x < 0 ? x * slope[c] : x)`, slopes a per-channel fp16 operand."""

    slope: EwOperand

    def __post_init__(self) -> None:
        _check(self.slope.per_channel and self.slope.feature.dtype == "fp16", "prelu stage",
               "the slope is a per-channel fp16 operand")


DpuStage = BinaryStage | ClampStage | LutStage | LeakyReluStage | PreluStage
"""One DPU stage after a conv (`ConvTask.post_ops`) or of an `EwTask`, in the order the
IR's `post_ops` apply them. Which sequences the DPU can compute exactly is the emitter's
(`rkc.backends.emit_dpu.plan_stages`): others are an RkcError naming the sequence."""


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
    CNA's input converter (the vendor's RK3568 first layers); otherwise inputs are int8.

    `post_ops`: DPU stages applied to the conv's result in order (the IR's `post_ops`;
    the conv's own result is the int8 value above, clamped, before the first stage).
    `requant`: "split" (the vendor's form: per-channel multipliers in the stream with a
    fixed shift 14, then one output converter -- may differ from rkc by one unit,
    `rkc.backends.weights.split_requant`) or "exact" (per-channel multiplier and shift in
    the stream: rkc's requantization bit for bit, `pack_exact_stream`). A conv with
    int8 post ops always uses "exact" (`uses_exact_requant`); the stream must be packed
    accordingly."""

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
    post_ops: tuple[DpuStage, ...] = ()
    requant: str = "split"

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
        _check(self.requant in REQUANT_FORMS, what,
               f"requant form {self.requant!r} is not one of {REQUANT_FORMS}")

    @property
    def uses_exact_requant(self) -> bool:
        """True when the stream holds per-channel shifts (`pack_exact_stream`)."""
        return self.dtype == "int8" and (self.requant == "exact" or bool(self.post_ops))

    @property
    def in_channels(self) -> int:
        return self.input.channels

    def weight_zero_point(self, channel: int) -> int:
        return self.weight_zero_points[channel] if self.weight_zero_points else 0


@dataclass(frozen=True)
class EwTask:
    """One DPU task in flying mode: `op` on the feature `a` (read by the main read DMA,
    MRDMA) and, for binary ops and prelu, the operand `b` (element-wise read DMA, ERDMA;
    `b_per_channel`: a [C, 1, 1] operand broadcast over H x W), then `post_ops`.

    int8 arithmetic (`rkc.quant.integer_kernels`), with X = round_shift((a - a_zero_point)
    * a_scale) and E = round_shift((b - b_zero_point) * b_scale):
    add / sub / mul / max / min: `y = clamp(round_shift(op(X, E) * out) + output_zero_point)`
    (`BinaryStage`); requantize / clamp: `y = clamp(round_shift((a - a_zp) * a_scale) +
    output_zero_point)` (out (1, 0)); lut: `y = table[a + 128]`. The clamp is
    `[clamp_low, clamp_high]` (None: int8 saturation). fp16: add / sub / mul / max / min
    / clamp (relu: clamp_low 0) / leaky_relu (`alpha`) / prelu (`b` the slopes) in float32,
    rounded to f16; no scales or zero points. How the numbers are chosen is the caller's
    (the mapping step's)."""

    name: str
    op: str
    a: Feature
    output: Feature
    b: Feature | None = None
    a_zero_point: int = 0
    b_zero_point: int = 0
    output_zero_point: int = 0
    a_scale: tuple[int, int] = IDENTITY_SCALE
    b_scale: tuple[int, int] = IDENTITY_SCALE
    out_multiplier: int = 1
    out_shift: int = 0
    clamp_low: int | None = None
    clamp_high: int | None = None
    b_per_channel: bool = False
    table: tuple[int, ...] | None = None
    alpha: float | None = None
    post_ops: tuple[DpuStage, ...] = ()

    def __post_init__(self) -> None:
        what = f"ew task {self.name}"
        _check(self.op in EW_KINDS, what, f"op {self.op!r} is not one of {EW_KINDS}")
        _check((self.b is None) == (self.op not in (*BINARY_OPS, "prelu")), what,
               "binary ops and prelu take two operands, the other ops one")
        dims = (self.a.channels, self.a.height, self.a.width)
        _check((self.output.channels, self.output.height, self.output.width) == dims, what,
               "the output must have the first operand's shape")
        if self.b is not None:
            want = (self.a.channels, 1, 1) if self.b_per_channel else dims
            shape = "[C, 1, 1]" if self.b_per_channel else "of a's shape"
            _check((self.b.channels, self.b.height, self.b.width) == want, what,
                   f"operand b must be {shape}, got "
                   f"{(self.b.channels, self.b.height, self.b.width)}")
        dtypes = {f.dtype for f in (self.a, self.b, self.output) if f is not None}
        _check(len(dtypes) == 1, what, "operands and output must have one dtype")
        if self.dtype == "int8":
            _check(self.op not in ("leaky_relu", "prelu"), what,
                   f"int8 {self.op} is a lut stage")
            _check(self.op != "lut" or self.table is not None, what, "lut needs a table")
        else:
            _check(self.op not in ("requantize", "lut"), what, f"{self.op} is int8 only")
            _check(self.op != "leaky_relu" or self.alpha is not None, what,
                   "leaky_relu needs alpha")

    @property
    def dtype(self) -> str:
        return self.a.dtype

    def stages(self) -> tuple[DpuStage, ...]:
        """The task as DPU stages on the value read from `a` (see `BinaryStage`)."""
        clamp = {"clamp_low": self.clamp_low, "clamp_high": self.clamp_high}
        out = (self.out_multiplier, self.out_shift)
        if self.op in BINARY_OPS:
            assert self.b is not None
            operand = EwOperand(self.b, self.b_zero_point, self.b_per_channel)
            first: DpuStage = BinaryStage(self.op, operand, self.a_zero_point, self.a_scale,
                                          self.b_scale, out, self.output_zero_point,
                                          **clamp)
        elif self.op in ("requantize", "clamp"):
            first = ClampStage(self.a_zero_point, self.a_scale, self.output_zero_point,
                               **clamp)
        elif self.op == "lut":
            assert self.table is not None
            first = LutStage(tuple(self.table))
        elif self.op == "leaky_relu":
            assert self.alpha is not None
            first = LeakyReluStage(self.alpha)
        else:
            assert self.b is not None
            first = PreluStage(EwOperand(self.b, 0, True))
        return (first, *self.post_ops)


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
