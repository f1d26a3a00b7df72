"""The lowering pipeline from a quantized `nn` module to planned `rknpu` tasks, and its
counts.

`lower` runs, on a copy of the module (the pass spec is built here only, by
`lowering_spec`; `rkc report` and `rkc compile` use it):

    rknpu-legalize{target} -> nn-to-rknpu -> rknpu-layout{target} -> rknpu-fuse
        -> rknpu-tile{target cores} -> rknpu-plan-memory{target alignment}

`summarize` counts what the lowered module asks of the chip (`LoweringSummary`):

* NPU ops: `rknpu` ops other than `rknpu.cpu` and the layout conversions (a concat
  counts: it is placed on the NPU even though it costs no task);
* CPU ops: `rknpu.cpu` ops (one per host op; an op's constants are inside it);
* conversions: `rknpu.to_native` / `rknpu.from_native` (host-side layout changes at the
  boundary between host and NPU code);
* tasks: hardware tasks, per image: a conv is one task per `rknpu.tiles` entry (one
  when untiled), every other NPU op one, except the ops in `NO_TASK_OPS` (address
  offsets); each times the batch size N [UNCERTAIN: whether the DPU / PPU stream a
  batch in one task is not known; the fixtures all have N = 1];
* copies: concat inputs that cannot be written in place and views that are not a
  contiguous window (`rknpu.copies`): data moves, counted apart from the tasks;
* memory: the `rknpu.memory` figures of `rknpu-plan-memory` (feature arena = peak
  feature memory, live-size lower bound, the NC1HWC2 tensors' own peak, weight arena).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects.builtin import DenseArrayBase, DictionaryAttr, IntegerAttr, ModuleOp
from xdsl.ir import Operation

from rkc.dialects import rknpu
from rkc.errors import RkcError
from rkc.graph import main_function
from rkc.passes.rknpu_plan_memory import COPIES_ATTR, MEMORY_ATTR
from rkc.targets import get_target

NO_TASK_OPS = frozenset({"rknpu.concat", "rknpu.view"})
"""NPU ops that are address arithmetic (views), not hardware tasks."""
HOST_OPS = frozenset({"rknpu.cpu", "rknpu.yield"})
CONVERSION_OPS = frozenset({"rknpu.to_native", "rknpu.from_native"})


def lowering_spec(target: str, cores: int = 1, alignment: int = 64) -> str:
    """The pass pipeline of `lower`, in rkc-opt syntax."""
    return (f"rknpu-legalize{{target={target}}},nn-to-rknpu,rknpu-layout{{target={target}}},"
            f"rknpu-fuse,rknpu-tile{{target={target} cores={cores}}},"
            f"rknpu-plan-memory{{target={target} alignment={alignment}}}")


def lower(module: ModuleOp, target: str, cores: int = 1, alignment: int = 64) -> ModuleOp:
    """A lowered, tiled and memory-planned copy of the quantized `module` for the chip
    `target` (its name, e.g. "rk3588"), tasks spread over `cores` NPU cores."""
    from rkc.quant.pipeline import run_passes

    chip = get_target(target)  # an unknown name is an RkcError before any pass runs
    lowered = module.clone()
    run_passes(lowered, lowering_spec(chip.name.lower(), cores, alignment))
    return lowered


@dataclass(frozen=True)
class LoweringSummary:
    """What a lowered module asks of the chip (see the module docstring)."""

    npu_ops: int
    cpu_ops: int
    conversions: int
    tasks: int
    tiled_convs: int
    copies: int
    peak_feature_bytes: int
    live_peak_bytes: int
    npu_feature_bytes: int
    weight_bytes: int


def task_count(op: Operation) -> int:
    """Hardware tasks of one op of a lowered function (0 for host ops, conversions and
    views)."""
    if not op.name.startswith("rknpu.") or op.name in (HOST_OPS | CONVERSION_OPS
                                                         | NO_TASK_OPS):
        return 0
    images = op.results[0].type.get_shape()[0] if op.results else 1
    if isinstance(op, rknpu.ConvOp):
        return images * max(len(rknpu.read_tiles(op)), 1)
    return images


def _memory(module: ModuleOp) -> dict[str, int]:
    attr = module.attributes.get(MEMORY_ATTR)
    if not isinstance(attr, DictionaryAttr):
        raise RkcError(f"the module has no {MEMORY_ATTR} plan (run rknpu-plan-memory)")
    return {k: v.value.data for k, v in attr.data.items() if isinstance(v, IntegerAttr)}


def summarize(lowered: ModuleOp) -> LoweringSummary:
    """Counts and memory of a module `lower` returned."""
    ops = [op for op in main_function(lowered).body.block.ops
           if op.name.startswith("rknpu.")]
    copies = 0
    for op in ops:
        attr = op.attributes.get(COPIES_ATTR)
        if isinstance(attr, DenseArrayBase):
            copies += len(attr.get_values())
    memory = _memory(lowered)
    return LoweringSummary(
        npu_ops=sum(op.name not in HOST_OPS | CONVERSION_OPS for op in ops),
        cpu_ops=sum(isinstance(op, rknpu.CpuOp) for op in ops),
        conversions=sum(op.name in CONVERSION_OPS for op in ops),
        tasks=sum(task_count(op) for op in ops),
        tiled_convs=sum(isinstance(op, rknpu.ConvOp) and len(rknpu.read_tiles(op)) > 1
                        for op in ops),
        copies=copies,
        peak_feature_bytes=memory["feature_bytes"],
        live_peak_bytes=memory["live_peak_bytes"],
        npu_feature_bytes=memory["npu_feature_bytes"],
        weight_bytes=memory["weight_bytes"])
