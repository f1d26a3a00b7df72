"""The NPU cost model: cycles, DRAM bytes and the roofline of every task of a lowered
module (`rkc.lowering.pipeline.lower`).

Per hardware task (every figure from `rkc.targets.Target`, whose `sources` say where each
comes from; docs/performance.md derives the rules and says where they are optimistic or
pessimistic):

* conv (one `rknpu.tiles` entry, or the whole conv when untiled), per image:
  - MAC cycles = P x taps x ceil(C / lanes) x ceil(K_t / kernels_per_cycle), with P the
    task's output pixels rounded up to `mac_pixel_block`, `lanes` = `weight_cin_group`
    input channels the array multiplies per cycle and `kernels_per_cycle` =
    `macs_per_cycle(dtype) / lanes` (RK3588 int8: 32 x 32 = 1024; this is the weight
    kernel group); depthwise: P x taps x ceil(K_t / lanes) (one kernel per channel, the
    kernel side of the array idles). The ceilings are the padding waste: channel atoms,
    kernel groups and output-channel groups.
  - DPU cycles = P x Kpad_t / `dpu_elements_per_cycle` (Kpad_t: the hardware's padded
    output channels, `Target.padded_out_channels`); fused post ops stream through the
    same DPU pass.
  - DRAM read: the task's input rows (halo rows of its height band included, padding
    rows excluded) of the channels it reads, in their DRAM storage (packed, NC1HWC2 or
    dense); its kernels' share of the packed weights when the core's CBUF does not hold
    them already (a refill: the previous task on that core used another output-channel
    group, or it is the layer's first task on that core); its DPU stream (bias and
    requantisation, `STREAM_BYTES_PER_CHANNEL` per padded channel); its share of every
    post-op operand. DRAM write: the task's output rows x Kpad_t channels.
  - CBUF fill (not overlapped with compute): the input rows of the first output row and,
    on a refill, the weights of the first kernel group, loaded before the MAC starts.
* `rknpu.ew` (DPU flying mode): the output's stored elements (padding surfaces included)
  / `dpu_elements_per_cycle`; reads every operand, writes the output.
* `rknpu.pool` (PPU): out pixels x window taps x C1 / `ppu_atoms_per_cycle`; reads the
  input, writes the output.
* concat / view: no task; the operands a step copies (`rknpu.copies`) cost their bytes
  read and written at DRAM bandwidth (no task overhead).
* host ops (`rknpu.cpu`, `rknpu.to_native`, `rknpu.from_native`) are listed with target
  CPU and no cycles: the model estimates the NPU only.

A task costs max(NPU cycles, DDR cycles) + CBUF fill + `task_overhead_cycles`, where NPU
cycles = max(MAC, DPU, PPU) and DDR cycles = (read + write) / `dram_bytes_per_cycle`. A
layer costs, over the cores its tasks use, the busiest core's sum, and never less than
its bytes over the (shared) DRAM bandwidth. The model runs layers one after another.

Roofline: a layer's floor is max(real MACs / peak MACs per cycle of the cores it uses,
compulsory bytes / DRAM bytes per cycle), compulsory bytes being the input, weights,
stream and post operands read once and the output written once. The model's floor is
max(sum of MACs / peak over the cores, sum of compulsory bytes / bandwidth).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.dialects.builtin import DenseArrayBase, ModuleOp, StringAttr, TensorType, f16
from xdsl.ir import Operation, SSAValue

from rkc.dialects import nn, rknpu
from rkc.dialects.quant import quantized_element
from rkc.errors import RkcError
from rkc.graph import main_function
from rkc.lowering.dram import STREAM_BYTES_PER_CHANNEL, Storage, dram_weight_bytes, storage_of
from rkc.lowering.tiling import ConvGeometry
from rkc.passes.rknpu_plan_memory import COPIES_ATTR
from rkc.passes.rknpu_tile import conv_dtype, conv_geometry
from rkc.targets import Target, get_target

HOST_OPS = ("rknpu.cpu", "rknpu.to_native", "rknpu.from_native")
VENDOR_DTYPES = {"int8": "INT8", "int16": "INT16", "fp16": "FLOAT16", "fp32": "FLOAT32"}
"""Data type names as rknn-toolkit2's tables print them."""


@dataclass(frozen=True)
class TaskCost:
    """One hardware task (or one copy step): its cycles by unit and its DRAM bytes."""

    core: int
    mac_cycles: int
    dpu_cycles: int
    ppu_cycles: int
    ddr_cycles: int           # (read + write) bytes over the DRAM bandwidth
    read_bytes: int
    write_bytes: int
    fill_cycles: int          # CBUF fill before the MAC starts (not overlapped)
    overhead_cycles: int      # fixed per-task overhead (0 for a copy)
    weight_refill: bool = False

    @property
    def npu_cycles(self) -> int:
        return max(self.mac_cycles, self.dpu_cycles, self.ppu_cycles)

    @property
    def cycles(self) -> int:
        """max(NPU, DDR) + CBUF fill + overhead."""
        return max(self.npu_cycles, self.ddr_cycles) + self.fill_cycles + self.overhead_cycles


@dataclass(frozen=True)
class LayerCost:
    """One op of the lowered function with its tasks; `cycles` is its estimated time.

    Invariants: `cycles` >= the busiest core's sum of task cycles and >= all its bytes
    over the DRAM bandwidth; host ops have no tasks and 0 cycles. `roofline_cycles` is
    the layer's physical floor; it exceeds `cycles` only when a strided conv's bands skip
    input rows that the floor counts as read."""

    index: int
    name: str
    op: str                   # op type in the vendor's style, e.g. ConvRelu, Add, MaxPool
    target: str               # "NPU" or "CPU"
    dtype: str                # INT8, INT16, FLOAT16, FLOAT32
    tasks: tuple[TaskCost, ...]
    macs: int                 # real multiply-accumulates (no padding)
    peak_macs_per_cycle: int  # of one core, for this layer's data type (0: no MACs)
    compulsory_bytes: int     # inputs, weights, streams read once + output written once
    cycles: int
    roofline_cycles: int
    note: str = ""

    @property
    def npu_cycles(self) -> int:
        return sum(t.npu_cycles for t in self.tasks)

    @property
    def ddr_cycles(self) -> int:
        return sum(t.ddr_cycles for t in self.tasks)

    @property
    def read_bytes(self) -> int:
        return sum(t.read_bytes for t in self.tasks)

    @property
    def write_bytes(self) -> int:
        return sum(t.write_bytes for t in self.tasks)

    @property
    def hardware_tasks(self) -> int:
        return sum(t.overhead_cycles > 0 for t in self.tasks)

    @property
    def cores_used(self) -> int:
        return len({t.core for t in self.tasks if t.overhead_cycles > 0}) or 1

    @property
    def mac_utilisation(self) -> float:
        """Real MACs over what the cores it used could do in its cycles (0..1)."""
        if not self.macs or not self.cycles:
            return 0.0
        return self.macs / (self.cycles * self.peak_macs_per_cycle * self.cores_used)


@dataclass(frozen=True)
class PerfEstimate:
    """The estimate of one lowered module on one chip; layers run one after another."""

    target: Target
    cores: int
    layers: tuple[LayerCost, ...]

    @property
    def total_cycles(self) -> int:
        return sum(layer.cycles for layer in self.layers)

    def microseconds(self, cycles: float) -> float:
        """`cycles` at the chip's top NPU clock."""
        return cycles / self.target.npu_clock_mhz

    @property
    def time_us(self) -> float:
        return self.microseconds(self.total_cycles)

    @property
    def fps(self) -> float:
        return 1e6 / self.time_us if self.total_cycles else math.inf

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def compute_floor_cycles(self) -> float:
        """All real MACs at the peak rate of `cores` cores (per layer's data type)."""
        return sum(layer.macs / layer.peak_macs_per_cycle for layer in self.layers
                   if layer.macs) / self.cores

    @property
    def memory_floor_cycles(self) -> float:
        """All compulsory bytes at the theoretical DRAM bandwidth."""
        return sum(layer.compulsory_bytes for layer in self.layers) \
            / self.target.dram_bytes_per_cycle

    @property
    def roofline_cycles(self) -> float:
        return max(self.compute_floor_cycles, self.memory_floor_cycles)

    @property
    def npu_layers(self) -> tuple[LayerCost, ...]:
        return tuple(layer for layer in self.layers if layer.target == "NPU")


# ----------------------------------------------------------------------------- helpers

def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _ddr(nbytes: int, target: Target) -> int:
    return math.ceil(nbytes / target.dram_bytes_per_cycle)


def feature_dtype(value: SSAValue) -> str:
    """int8 / int16 / fp16 / fp32: how the NPU (or host) stores `value`'s elements."""
    t = value.type
    q = quantized_element(t)
    if q is not None:
        return f"int{q.bits}"
    if isinstance(t, TensorType) and t.element_type == f16:
        return "fp16"
    return "fp32"


def _name(op: Operation, index: int) -> str:
    attr = op.attributes.get(nn.NAME_ATTR)
    if isinstance(attr, StringAttr):
        return attr.data
    if op.results and op.results[0].name_hint:
        return op.results[0].name_hint
    return f"#{index}"


def _title(kind: str) -> str:
    return "".join(part.capitalize() for part in kind.replace(".", "_").split("_"))


def _row_bytes(storage: Storage, width: int, channels: int) -> int:
    """DRAM bytes of one row of `width` pixels and the first `channels` channels read."""
    e = storage.element_bytes
    if storage.layout == "native":
        c2 = storage.shape[4]
        return width * _ceil(channels, c2) * c2 * e
    if storage.layout == "packed":
        return width * storage.channels * e
    return width * channels * e


def _per_image(storage: Storage) -> int:
    """Bytes of one image as stored (a conv result's padding surfaces included)."""
    return storage.image_bytes if storage.shape else storage.size


def _read_per_image(storage: Storage) -> int:
    """Bytes of one image a DPU / PPU task reads: the type's C1 surfaces (not the padding
    surfaces a conv wrote beyond them)."""
    if storage.layout == "native":
        return storage.shape[1] * storage.surface_bytes
    return _per_image(storage)


# ----------------------------------------------------------------------------- conv

def conv_op_type(op: rknpu.ConvOp) -> str:
    """ConvRelu, DepthwiseConvClip, ConvAddRelu, ...: the conv and what is fused into it."""
    parts = ["DepthwiseConv" if op.group.value.data > 1 else "Conv"]
    if op.activation is not None:
        parts.append(_title(op.activation.data))
    for stage in rknpu.read_post_ops(op):
        parts.append(_title(stage.function or stage.kind))
    return "".join(parts)


def _conv_tiles(op: rknpu.ConvOp, g: ConvGeometry) -> list[tuple[int, int, int, int, int]]:
    return rknpu.read_tiles(op) or [(0, g.out_height, 0, g.out_channels, 0)]


def conv_costs(op: rknpu.ConvOp, target: Target) -> tuple[list[TaskCost], int, int, int]:
    """(tasks, real MACs, compulsory bytes, peak MACs per cycle) of one conv."""
    g = conv_geometry(op)
    dtype = conv_dtype(op)
    peak = target.macs_per_cycle(dtype)
    lanes = target.weight_cin_group
    kernels_per_cycle = peak // lanes
    taps = g.kernel[0] * g.kernel[1]
    images = op.input.type.get_shape()[0]
    in_store = storage_of(op.input, target)
    out_store = storage_of(op.output, target)
    out_elem = out_store.element_bytes
    weights = dram_weight_bytes(g, target)
    stream_per_channel = STREAM_BYTES_PER_CHANNEL[dtype]
    posts = [storage_of(v, target) for v in op.post_operands]
    out_c2 = out_store.shape[4] if out_store.layout == "native" else 1
    out_shape = tuple(op.output.type.get_shape())

    def post_bytes(rows: int, k: int) -> int:
        total = 0
        for st in posts:
            if tuple(st.shape) == out_shape and st.layout == "native":
                total += rows * _row_bytes(st, g.out_width, k)  # the task's window
            else:  # a broadcast operand (e.g. a per-channel slope) is read whole
                total += _per_image(st)
        return total

    tasks: list[TaskCost] = []
    for _ in range(images):
        resident: dict[int, tuple[int, int]] = {}
        for r0, r1, c0, c1, core in _conv_tiles(op, g):
            k = c1 - c0
            in_begin, in_end, _, _ = g.band_rows((r0, r1))
            in_channels = k if g.depthwise else g.in_channels
            row = _row_bytes(in_store, g.in_width, in_channels)
            pixels = _ceil((r1 - r0) * g.out_width, target.mac_pixel_block) \
                * target.mac_pixel_block
            slices = 1 if g.depthwise else _ceil(g.in_channels, lanes)
            groups = _ceil(k, lanes if g.depthwise else kernels_per_cycle)
            kpad = target.padded_out_channels(k, dtype, g.depthwise)
            refill = resident.get(core) != (c0, c1)
            resident[core] = (c0, c1)
            tile_weights = _ceil(weights * k, g.out_channels) if refill else 0
            first_group = _ceil(weights * min(k, kernels_per_cycle), g.out_channels) \
                if refill else 0
            first_begin, first_end, _, _ = g.band_rows((r0, r0 + 1))
            read = (in_end - in_begin) * row + tile_weights + kpad * stream_per_channel \
                + post_bytes(r1 - r0, k)
            write = (r1 - r0) * g.out_width * (_ceil(kpad, out_c2) * out_c2
                                               if out_store.layout == "native" else k) \
                * out_elem
            tasks.append(TaskCost(
                core=core,
                mac_cycles=pixels * taps * slices * groups,
                dpu_cycles=_ceil(pixels * kpad, target.dpu_elements_per_cycle),
                ppu_cycles=0,
                ddr_cycles=_ddr(read + write, target),
                read_bytes=read, write_bytes=write,
                fill_cycles=_ddr((first_end - first_begin) * row + first_group, target),
                overhead_cycles=target.task_overhead_cycles,
                weight_refill=refill))
    per_group = 1 if g.depthwise else g.in_channels
    macs = images * g.out_height * g.out_width * g.out_channels * per_group * taps
    kpad_all = target.padded_out_channels(g.out_channels, dtype, g.depthwise)
    compulsory = images * (g.in_height * _row_bytes(in_store, g.in_width, g.in_channels)
                           + g.out_height * g.out_width * kpad_all * out_elem
                           + post_bytes(g.out_height, g.out_channels)) \
        + weights + kpad_all * stream_per_channel
    return tasks, macs, compulsory, peak


# ----------------------------------------------------------------------------- DPU / PPU

def ew_costs(op: rknpu.EwOp, target: Target) -> tuple[list[TaskCost], int]:
    """(tasks, compulsory bytes) of a DPU elementwise op: one task per image."""
    out = storage_of(op.output, target)
    images = out.shape[0] if out.shape else 1
    elements = _per_image(out) // out.element_bytes
    read = sum(_read_per_image(storage_of(v, target)) for v in op.inputs)
    write = _per_image(out)
    task = TaskCost(core=0, mac_cycles=0,
                    dpu_cycles=_ceil(elements, target.dpu_elements_per_cycle), ppu_cycles=0,
                    ddr_cycles=_ddr(read + write, target), read_bytes=read,
                    write_bytes=write, fill_cycles=0,
                    overhead_cycles=target.task_overhead_cycles)
    return [task] * images, images * (read + write)


def pool_costs(op: rknpu.PoolOp, target: Target) -> tuple[list[TaskCost], int]:
    """(tasks, compulsory bytes) of a PPU pooling op: one task per image."""
    src, out = storage_of(op.input, target), storage_of(op.output, target)
    shape = tuple(op.output.type.get_shape())
    if rknpu.is_native(op.output.type):
        n, c1, oh, ow = shape[:4]
    else:
        n, c, oh, ow = rknpu.as_nchw_shape(shape)
        c1 = _ceil(c, target.c2(feature_dtype(op.input)))
    kh, kw = nn.ints(op.properties, "kernel")
    read, write = _read_per_image(src), _per_image(out)
    task = TaskCost(core=0, mac_cycles=0, dpu_cycles=0,
                    ppu_cycles=_ceil(oh * ow * kh * kw * c1, target.ppu_atoms_per_cycle),
                    ddr_cycles=_ddr(read + write, target), read_bytes=read,
                    write_bytes=write, fill_cycles=0,
                    overhead_cycles=target.task_overhead_cycles)
    return [task] * n, n * (read + write)


def pool_op_type(op: rknpu.PoolOp) -> str:
    kernel = tuple(nn.ints(op.properties, "kernel"))
    shape = tuple(op.input.type.get_shape())
    hw = (shape[2], shape[3]) if len(shape) >= 4 else (1, 1)
    glob = "Global" if kernel == hw and kernel != (1, 1) else ""
    return f"{glob}{_title(op.kind.data)}Pool"


def copy_costs(op: Operation, target: Target) -> list[TaskCost]:
    """The data moves of a concat / view step (`rknpu.copies`): bytes read and written."""
    attr = op.attributes.get(COPIES_ATTR)
    if not isinstance(attr, DenseArrayBase):
        return []
    tasks = []
    for index in attr.get_values():
        nbytes = storage_of(op.operands[int(index)], target).size
        tasks.append(TaskCost(core=0, mac_cycles=0, dpu_cycles=0, ppu_cycles=0,
                              ddr_cycles=_ddr(2 * nbytes, target), read_bytes=nbytes,
                              write_bytes=nbytes, fill_cycles=0, overhead_cycles=0))
    return tasks


# ----------------------------------------------------------------------------- layers

def _host_op_type(op: Operation) -> str:
    if isinstance(op, rknpu.CpuOp):
        inner = [o.name for o in op.body.block.ops
                 if o.name not in ("nn.constant", "rknpu.yield")]
        return "+".join(_title(n.split(".", 1)[1]) for n in inner) or "Cpu"
    return _title(op.name.split(".", 1)[1])


def _layer(index: int, op: Operation, target: Target) -> LayerCost | None:
    """The cost of one op of the lowered function (None for constants and the return)."""
    name = _name(op, index)
    if op.name in HOST_OPS:
        reason = op.reason.data if isinstance(op, rknpu.CpuOp) else "layout conversion"
        dtype = feature_dtype(op.results[0]) if op.results else "fp32"
        return LayerCost(index, name, _host_op_type(op), "CPU", VENDOR_DTYPES[dtype], (),
                         0, 0, 0, 0, 0, f"host op, not estimated: {reason}")
    if op.name in ("nn.constant", "func.return"):
        return None
    if not op.name.startswith("rknpu."):
        raise RkcError(f"performance model: op {op.name} ({name}) is not lowered; estimate "
                       f"the module rkc.lowering.pipeline.lower returns")
    macs, peak, note = 0, 0, ""
    if isinstance(op, rknpu.ConvOp):
        tasks, macs, compulsory, peak = conv_costs(op, target)
        kind, dtype = conv_op_type(op), conv_dtype(op)
    elif isinstance(op, rknpu.EwOp):
        tasks, compulsory = ew_costs(op, target)
        kind = _title(op.function.data if op.function is not None else op.kind.data)
        dtype = feature_dtype(op.inputs[0])
    elif isinstance(op, rknpu.PoolOp):
        tasks, compulsory = pool_costs(op, target)
        kind, dtype = pool_op_type(op), feature_dtype(op.input)
    elif isinstance(op, rknpu.ConcatOp | rknpu.ViewOp):
        tasks = copy_costs(op, target)
        compulsory = sum(t.read_bytes + t.write_bytes for t in tasks)
        kind, dtype = _title(op.name.split(".", 1)[1]), feature_dtype(op.results[0])
        note = f"copies {len(tasks)} operand(s)" if tasks else "no task (address offsets)"
    else:
        raise RkcError(f"performance model: op {op.name} ({name}) has no cost rule")
    per_core: dict[int, int] = defaultdict(int)
    for t in tasks:
        per_core[t.core] += t.cycles
    total_bytes = sum(t.read_bytes + t.write_bytes for t in tasks)
    cycles = max(max(per_core.values(), default=0), _ddr(total_bytes, target))
    cores = len({t.core for t in tasks if t.overhead_cycles > 0}) or 1
    floor = max(macs / (peak * cores) if macs else 0.0,
                compulsory / target.dram_bytes_per_cycle)
    return LayerCost(index, name, kind, "NPU", VENDOR_DTYPES[dtype], tuple(tasks), macs,
                     peak, compulsory, cycles, math.ceil(floor), note)


def estimate(lowered: ModuleOp, target: str | Target, cores: int = 1) -> PerfEstimate:
    """The cost of every op of a lowered module (`rkc.lowering.pipeline.lower` with the
    same `target` and `cores`) on that chip."""
    chip = get_target(target) if isinstance(target, str) else target
    chip.macs_per_cycle("int8")  # a chip without a known MAC rate fails before any op
    if not 1 <= cores <= chip.cores:
        raise RkcError(f"{chip.name} has {chip.cores} NPU core(s), cannot estimate for "
                       f"{cores}")
    layers = []
    for index, op in enumerate(main_function(lowered).body.block.ops):
        layer = _layer(index, op, chip)
        if layer is not None:
            layers.append(layer)
    return PerfEstimate(chip, cores, tuple(layers))


def layer_by_name(perf: PerfEstimate, names: Sequence[str]) -> dict[str, LayerCost]:
    """The layers called `names` (for comparisons); missing names are left out."""
    wanted = set(names)
    return {layer.name: layer for layer in perf.layers if layer.name in wanted}
