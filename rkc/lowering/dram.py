"""DRAM buffers of a lowered function: what each value occupies, and which values share.

`function_buffers` turns the entry function of a lowered module (after `nn-to-rknpu`,
usually `rknpu-layout` and `rknpu-tile`) into `rkc.lowering.memory_plan.Buffer`s and a
step order, the input of `plan_memory`:

* steps: every op of the function body but `nn.constant` and `func.return`, in order
  (an NPU task, a host op in `rknpu.cpu`, a layout conversion, a concat). A tiled conv is
  one step: its tiles run back to back between the steps around it;
* function arguments: kind "input"; values the function returns: kind "output" (an
  argument returned as it is stays one buffer, kind "output"); other op results: kind
  "feature", one buffer per result, whatever the op (unknown ops included);
* `nn.constant`s read by the steps: kind "weight" (read-only, never reused). A conv's
  weight is sized as the hardware packs it (`dram_weight_bytes`), its bias as the
  per-channel stream the DPU reads (`stream_bytes`; a conv without a bias still gets the
  stream, as a buffer of its own); a constant any other op reads takes its stored bytes
  (`storage_of`: a native constant's surfaces are aligned like any feature's); a
  constant read in several roles takes the largest size;
* `rknpu.concat` costs no task when its inputs are written straight into its buffer:
  input i becomes an alias of the concat's buffer at its channel offset, `(c_i / C2) *
  surface_bytes` for a native concat (`c_i * H * W * element_bytes` for an NCHW one),
  when it is legal: one image (N = 1), the input is an op result (not an argument or a
  constant) aliased nowhere else, stored like the concat (same layout and surfaces), and
  everything its producer writes stays inside its slot (a conv writes its padded output
  channels: a 16-channel int8 conv on RK3588 writes 32, i.e. two 16-channel surfaces,
  which do not fit a one-surface slot; the last slot may grow the concat's buffer
  instead). Any other input keeps its own buffer and the concat step copies it (a
  data move, listed in `FunctionBuffers.copies`); slots never overlap, so aliases of one
  concat cannot clobber each other;
* `rknpu.view` (no task) is an alias of its input at its channel offset (`offset / C2`
  surfaces, or `offset` channels of a dense tensor) when the window is contiguous: one
  image, or all channels of images stored alike; it is then written by its input's
  producer (the buffer's producer). Otherwise (a channel window of a batch, a view of a
  constant) it gets its own buffer and its step copies the data (`copies`);
* layout conversions (`rknpu.to_native`, `rknpu.from_native`) and host ops write their
  own buffers (they move or compute data).

Storage (`Storage`, the one rule codegen and the runtime's input / output conversion
must follow): an NCHW (or any non-native) value is dense, row-major, its type's bytes.
A native value `[N, C1, H, W, C2]` is N images of `surfaces` surfaces of
`surface_pixels * C2` elements, `surface_pixels` = H * W rounded up to the target's
`surface_pixel_align` (1 stays 1; a pool's result: also to whole units of the PPU's
DST_SURF_STRIDE, so an RK3568 fp16 1 x 1 result takes 2 pixels), `surfaces` = C1,
except for a conv result, whose DPU writes `padded_out_channels(K)` channels (the
vendor's buffer sizes, targets.py).
A `to_native` result with at most `argb_max_channels` channels that only non-depthwise
convs read is stored packed (one pixel = its C channels, no padding: the CNA's ARGB
input mode, as `rkc.lowering.tiling` assumes for such convs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation, SSAValue

from rkc.backends.weights import EXACT_STREAM_BYTES_PER_CHANNEL, split_requant, weight_layout
from rkc.dialects import nn, rknpu
from rkc.dialects.quant import quantized_element
from rkc.dialects.rknpu import as_nchw_shape
from rkc.errors import RkcError
from rkc.graph import main_function
from rkc.lowering.memory_plan import Buffer
from rkc.lowering.tiling import ConvGeometry, packed_input, packed_rows_ok
from rkc.passes.rknpu_tile import conv_dtype, conv_geometry, packable_value
from rkc.quant.requant import multipliers
from rkc.targets import Target

STREAM_BYTES_PER_CHANNEL = {"int8": 8, "int16": 8, "fp16": 4}
"""Bytes per padded output channel of a conv's DPU stream (BRDMA: bias and per-channel
output-converter data). logs/*_int8.log Const tables: every int8 bias takes 8 B per
padded channel (K=16 -> 0x100 B on RK3588, Kpad 32; depthwise 0x200 B, Kpad 64; RK3568
0x80 B, Kpad 16); logs/*_fp16.log: a float32 bias, 4 B per padded channel
[UNCERTAIN: the stream's layout is undocumented (hw §4.4); int16 assumed as int8]."""


# ----------------------------------------------------------------------------- storage

@dataclass(frozen=True)
class Storage:
    """How one value's bytes lie in DRAM (see the module docstring)."""

    layout: str                    # "dense", "native" or "packed"
    shape: tuple[int, ...]         # the IR type's shape
    dtype: np.dtype                # storage element type
    surfaces: int = 0              # native: surfaces written per image (>= C1)
    surface_pixels: int = 0        # native: pixels per surface (H * W rounded up)
    channels: int = 0              # packed: channels stored per pixel

    @property
    def element_bytes(self) -> int:
        return self.dtype.itemsize

    @property
    def surface_bytes(self) -> int:
        """Native: bytes from one surface to the next (the surface stride)."""
        return self.surface_pixels * self.shape[4] * self.element_bytes

    @property
    def image_bytes(self) -> int:
        if self.layout == "native":
            return self.surfaces * self.surface_bytes
        if self.layout == "packed":
            return self.shape[2] * self.shape[3] * self.channels * self.element_bytes
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.element_bytes

    @property
    def size(self) -> int:
        return self.shape[0] * self.image_bytes if self.shape else self.element_bytes

    def channel_offset(self, channels: int) -> int:
        """Bytes from the start of an image to channel `channels` (a multiple of C2 in
        native storage)."""
        if self.layout == "native":
            c2 = self.shape[4]
            assert channels % c2 == 0
            return channels // c2 * self.surface_bytes
        assert self.layout == "dense" and len(self.shape) >= 2
        return channels * int(np.prod(self.shape[2:], dtype=np.int64)) * self.element_bytes


def _dtype(value: SSAValue) -> np.dtype:
    assert isinstance(value.type, TensorType)
    return np.dtype(nn.numpy_dtype(value.type.get_element_type()))


def _shape(value: SSAValue) -> tuple[int, ...]:
    assert isinstance(value.type, TensorType)
    return tuple(value.type.get_shape())


def surface_pixels(height: int, width: int, target: Target) -> int:
    """Pixels per surface: H * W rounded up to the target's surface alignment (1 stays 1)."""
    pixels = height * width
    if pixels == 1:
        return 1
    return -(-pixels // target.surface_pixel_align) * target.surface_pixel_align


def _is_packed(value: SSAValue, target: Target) -> bool:
    """A to_native result few enough channels for the ARGB mode, read by direct convs only."""
    op = value.owner
    if not (packable_value(value) and isinstance(op, rknpu.ToNativeOp)):
        return False
    shape = as_nchw_shape(_shape(op.input))
    return shape[1] <= target.argb_max_channels and packed_rows_ok(
        shape[3], shape[1], _dtype(value).itemsize, target)


def storage_of(value: SSAValue, target: Target) -> Storage:
    """How `value` is stored in DRAM on `target`."""
    shape, dtype = _shape(value), _dtype(value)
    if len(shape) != rknpu.NATIVE_RANK:
        return Storage("dense", shape, dtype)
    n, c1, h, w, c2 = shape
    if _is_packed(value, target):
        owner = value.owner
        assert isinstance(owner, rknpu.ToNativeOp)
        return Storage("packed", shape, dtype, channels=_shape(owner.input)[1])
    surfaces = c1
    op = value.owner
    if isinstance(op, rknpu.ConvOp):
        k = _shape(op.weight)[0]
        kpad = target.padded_out_channels(k, conv_dtype(op), op.group.value.data > 1)
        surfaces = max(c1, -(-kpad // c2))
    pixels = surface_pixels(h, w, target)
    if isinstance(op, rknpu.PoolOp):  # whole DST_SURF_STRIDE units (a 1 x 1 result)
        unit = stride_unit(target, "PPU.DST_SURF_STRIDE", "DST_SURF_STRIDE")
        pixel_bytes = c2 * dtype.itemsize
        while pixels * pixel_bytes % unit:
            pixels += 1
    return Storage("native", shape, dtype, surfaces=surfaces, surface_pixels=pixels)


def stride_unit(target: Target, register: str, field: str) -> int:
    """Bytes a stride field counts in on `target` (its lowest bit, from
    `rkc.backends.registers`): e.g. PPU.DST_SURF_STRIDE [31:4], 16 B."""
    from rkc.backends.registers import register_table

    return 1 << register_table(target.name).register(register).field(field).lsb


# ----------------------------------------------------------------------------- weights

def dram_weight_bytes(geometry: ConvGeometry, target: Target) -> int:
    """Bytes of a conv's packed weights in DRAM: exactly what
    `rkc.backends.weights.pack_weights` writes (`weight_layout(...).total_bytes`, the one
    source of truth; the kernel padding lives only in the CBUF). Matches the vendor's
    Const tables (tests/test_rknpu_plan_memory.py: 16x16x3x3 int8 = 0x900 B, depthwise
    16x3x3 = 0x90 B, 3-channel 16x3x3x3 = 16 kernels x 9 taps x 16 B on RK3588); a
    depthwise conv stores its channels padded to 16 (8 channels 3x3: 144 B), since the
    CNA reads one atom of channels per tap."""
    g = geometry
    channels = 1 if g.depthwise else g.in_channels
    return weight_layout(target, g.out_channels, channels, g.kernel[0], g.kernel[1],
                         g.depthwise, packed_input(g, target), g.dtype).total_bytes


def uses_exact_stream(op: rknpu.ConvOp) -> bool:
    """True when codegen packs `op`'s DPU stream in the "exact" form (per-channel
    multiplier and shift, `rkc.backends.weights.pack_exact_stream`): every int8 conv
    except those whose requantization the vendor's split form computes exactly.

    The split form (`rkc.backends.weights.split_requant`, what rknn-toolkit2 emits) rounds
    twice: once with the per-channel multiplier, once with the layer's. It equals the
    single rounding of `rkc.quant.requant` (and so the rknpu interpreter) only when all
    channels share one multiplier and shift (per-tensor weights); with per-channel
    weights it is off by one step on some outputs. rkc chooses bit-exactness with the
    quantized model: per-channel convs use the exact form (2 bytes more stream per
    channel than the vendor's; docs/register-diff.md)."""
    if conv_dtype(op) != "int8":
        return False
    return bool(rknpu.read_post_ops(op)) or not _split_is_exact(op)


def _split_is_exact(op: rknpu.ConvOp) -> bool:
    """Whether the split form computes `op`'s requantization exactly: every output
    channel has the same multiplier and shift (s_x * s_w[o] / s_y) and the split form
    represents it."""
    xq = quantized_element(op.input.type)
    wq = quantized_element(op.weight.type)
    yq = quantized_element(op.output.type)
    if xq is None or wq is None or yq is None:
        return True
    k = _shape(op.weight)[0]
    scales = np.broadcast_to(np.asarray(wq.scales, np.float64), (k,))
    m, sh = multipliers(xq.scale * scales / yq.scale)
    if len(set(zip(np.asarray(m).tolist(), np.asarray(sh).tolist(), strict=True))) > 1:
        return False
    try:
        split_requant([int(v) for v in m], [int(v) for v in sh])
    except RkcError:
        return False
    return True


def stream_bytes(geometry: ConvGeometry, target: Target, exact: bool = False) -> int:
    """Bytes of a conv's per-channel DPU stream: `STREAM_BYTES_PER_CHANNEL` per padded
    output channel, `EXACT_STREAM_BYTES_PER_CHANNEL` in the exact form."""
    g = geometry
    kpad = target.padded_out_channels(g.out_channels, g.dtype, g.depthwise)
    unit = EXACT_STREAM_BYTES_PER_CHANNEL if exact else STREAM_BYTES_PER_CHANNEL[g.dtype]
    return kpad * unit


# ----------------------------------------------------------------------------- buffers

@dataclass(frozen=True)
class FunctionBuffers:
    """The buffers and steps of a lowered function, and what refers to them."""

    buffers: tuple[Buffer, ...]
    order: tuple[str, ...]                              # step names, in execution order
    steps: Mapping[str, Operation]                      # step name -> op
    values: Mapping[SSAValue, str]                      # argument / result / constant -> buffer
    storage: Mapping[str, Storage]                      # buffer -> layout of its value
    conv_buffers: Mapping[Operation, tuple[str, str]]   # conv -> (weight, stream) buffers
    copies: Mapping[Operation, tuple[int, ...]]         # concat / view -> inputs it copies

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {b.name: b for b in self.buffers})

    def buffer(self, name: str) -> Buffer:
        return self._by_name[name]


class _Builder:
    def __init__(self, fn: func.FuncOp, target: Target):
        self.fn, self.target = fn, target
        self.order: list[str] = []
        self.steps: dict[str, Operation] = {}
        self.step_of: dict[Operation, str] = {}
        self.values: dict[SSAValue, str] = {}
        self.storage: dict[str, Storage] = {}
        self.size: dict[str, int] = {}
        self.kind: dict[str, str] = {}
        self.producer: dict[str, str | None] = {}
        self.alias: dict[str, tuple[str, int]] = {}
        self.extra_consumers: dict[str, list[str]] = {}
        self.conv_buffers: dict[Operation, tuple[str, str]] = {}
        self.copies: dict[Operation, tuple[int, ...]] = {}
        self.index = {op: i for i, op in enumerate(fn.body.block.ops)}
        returned = fn.body.block.last_op
        self.returned = set(returned.operands) if isinstance(returned, func.ReturnOp) else set()

    def add_value(self, value: SSAValue, name: str, producer: str | None, kind: str) -> None:
        storage = storage_of(value, self.target)
        self.values[value] = name
        self.storage[name] = storage
        self.size[name] = storage.size
        self.kind[name] = "output" if value in self.returned else kind
        self.producer[name] = producer

    def add_constant(self, value: SSAValue, size: int) -> str:
        name = self.values.get(value)
        if name is None:
            name = f"c{self.index[value.owner]}"
            self.values[value] = name
            self.storage[name] = storage_of(value, self.target)
            self.size[name], self.producer[name] = 0, None
            self.kind[name] = "weight"
        self.size[name] = max(self.size[name], size)
        return name

    def build(self) -> FunctionBuffers:
        for i, arg in enumerate(self.fn.args):
            self.add_value(arg, f"arg{i}", None, "input")
        for index, op in enumerate(self.fn.body.block.ops):
            if isinstance(op, nn.ConstantOp | func.ReturnOp):
                continue
            step = f"s{len(self.order)}"
            self.order.append(step)
            self.steps[step], self.step_of[op] = op, step
            for j, result in enumerate(op.results):
                self.add_value(result, f"v{index}.{j}", step, "feature")
            for operand in op.operands:
                if isinstance(operand.owner, nn.ConstantOp):
                    self.add_constant(operand, storage_of(operand, self.target).size)
            if isinstance(op, rknpu.ConvOp):
                self.add_conv(op, index, step)
            if isinstance(op, rknpu.ConcatOp):
                self.add_concat(op)
            if isinstance(op, rknpu.ViewOp):
                self.add_view(op)
        for value in self.returned:  # a constant returned as it is
            if isinstance(value.owner, nn.ConstantOp):
                self.add_constant(value, storage_of(value, self.target).size)
        return self.finish()

    def add_conv(self, op: rknpu.ConvOp, index: int, step: str) -> None:
        geometry = conv_geometry(op)
        weight = self.values.get(op.weight)
        if isinstance(op.weight.owner, nn.ConstantOp):
            weight = self.add_constant(op.weight, dram_weight_bytes(geometry, self.target))
        size = stream_bytes(geometry, self.target, uses_exact_stream(op))
        if op.bias is not None and isinstance(op.bias.owner, nn.ConstantOp):
            stream = self.add_constant(op.bias, size)
        else:  # the stream still carries the per-channel output converter
            stream = f"s{index}.stream"
            self.storage[stream] = Storage("dense", (size,), np.dtype(np.uint8))
            self.size[stream] = size
            self.kind[stream], self.producer[stream] = "weight", None
            self.extra_consumers[stream] = [step]
        assert weight is not None
        self.conv_buffers[op] = (weight, stream)

    def add_view(self, op: rknpu.ViewOp) -> None:
        """A view is its input's bytes at a channel offset when that window is
        contiguous: one image, or all channels of images stored alike."""
        source, name = self.values.get(op.input), self.values[op.output]
        storage = self.storage[name]
        ok = source is not None and self.kind[source] != "weight"
        if ok:
            assert source is not None
            source_storage = self.storage[source]
            offset = nn.int_of(op.properties, "offset")
            ok = source_storage.layout == storage.layout and \
                source_storage.surface_pixels == storage.surface_pixels and (
                    storage.shape[0] == 1 or (offset == 0 and
                                              storage.image_bytes == source_storage.image_bytes))
        if not ok:
            self.copies[op] = (0,)
            return
        assert source is not None
        self.alias[name] = (source, source_storage.channel_offset(offset))
        self.producer[name] = self.producer[source]  # the source's producer writes it

    def add_concat(self, op: rknpu.ConcatOp) -> None:
        root = self.values[op.output]
        root_storage = self.storage[root]
        copied: list[int] = []
        offsets = np.cumsum([0, *nn.ints(op.properties, "channels")]).tolist()
        for i, value in enumerate(op.inputs):
            name = self.values.get(value)
            last = i == len(op.inputs) - 1
            ok = (name is not None and self.producer.get(name) is not None
                  and self.kind[name] != "weight" and name not in self.alias
                  and root_storage.shape[0] == 1
                  and root_storage.layout in ("native", "dense")
                  and _same_form(self.storage[name], root_storage))
            if ok:
                start = root_storage.channel_offset(offsets[i])
                end = self.size[root] if last else root_storage.channel_offset(offsets[i + 1])
                ok = start + self.size[name] <= end or last
            if not ok:
                copied.append(i)
                continue
            assert name is not None
            self.alias[name] = (root, start)
            self.size[root] = max(self.size[root], start + self.size[name])
        if copied:
            self.copies[op] = tuple(copied)

    def finish(self) -> FunctionBuffers:
        consumers: dict[str, list[str]] = {n: list(self.extra_consumers.get(n, ()))
                                           for n in self.size}
        for value, name in self.values.items():
            for use in value.uses:
                step = self.step_of.get(use.operation)
                if step is not None and step not in consumers[name]:
                    consumers[name].append(step)
        position = {step: i for i, step in enumerate(self.order)}
        buffers = []
        for name in self.size:
            parent, offset = self.alias.get(name, (None, 0))
            buffers.append(Buffer(name, self.size[name], self.producer[name],
                                  tuple(sorted(consumers[name], key=position.__getitem__)),
                                  self.kind[name], parent, offset))
        return FunctionBuffers(tuple(buffers), tuple(self.order), dict(self.steps),
                               dict(self.values), dict(self.storage),
                               dict(self.conv_buffers), dict(self.copies))


def _same_form(a: Storage, b: Storage) -> bool:
    """Whether a slot of `b` can hold `a` as it is: same layout, pixels and dtype."""
    if a.layout != b.layout or a.dtype != b.dtype:
        return False
    if a.layout == "native":
        return (a.shape[2:] == b.shape[2:]) and a.surface_pixels == b.surface_pixels
    return a.shape[2:] == b.shape[2:]


def function_buffers(module: ModuleOp, target: Target) -> FunctionBuffers:
    """The buffers and steps of `module`'s entry function on `target`."""
    return _Builder(main_function(module), target).build()


def step_label(op: Operation) -> str:
    """`op.name:rkc.name` (or the op name), for reports."""
    name = op.attributes.get(nn.NAME_ATTR)
    return f"{op.name}:{name.data}" if name is not None else op.name


# ----------------------------------------------------------------------------- bytes

def encode(array: np.ndarray, storage: Storage, fill: int = 0) -> np.ndarray:
    """`array` (the IR value, its type's shape) as the `storage.size` bytes it occupies
    in DRAM; bytes that hold no element of the value (surface rounding, padded output
    channels the producer writes) are `fill`."""
    array = np.asarray(array, storage.dtype)
    if storage.layout == "dense":
        return np.frombuffer(array.tobytes(), np.uint8).copy()
    out = np.full(storage.size, fill, np.uint8)
    if storage.layout == "packed":
        pixels = array[:, 0, :, :, :storage.channels]
        out[:] = np.frombuffer(np.ascontiguousarray(pixels).tobytes(), np.uint8)
        return out
    n, c1, h, w, c2 = storage.shape
    surface = out.reshape(n, storage.surfaces, storage.surface_bytes)
    data = np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint8)
    surface[:, :c1, :h * w * c2 * storage.element_bytes] = data.reshape(n, c1, -1)
    return out


def decode(raw: np.ndarray, storage: Storage) -> np.ndarray:
    """The IR value stored in the `storage.size` bytes `raw` (inverse of `encode`;
    packed values come back with zero padding channels)."""
    raw = np.ascontiguousarray(raw, np.uint8)
    if storage.layout == "dense":
        return raw.view(storage.dtype).reshape(storage.shape).copy()
    if storage.layout == "packed":
        n, c1, h, w, c2 = storage.shape
        out = np.zeros(storage.shape, storage.dtype)
        out[:, 0, :, :, :storage.channels] = raw.view(storage.dtype).reshape(
            n, h, w, storage.channels)
        return out
    n, c1, h, w, c2 = storage.shape
    surface = raw.reshape(n, storage.surfaces, storage.surface_bytes)
    data = surface[:, :c1, :h * w * c2 * storage.element_bytes].copy()
    return data.view(storage.dtype).reshape(storage.shape)
