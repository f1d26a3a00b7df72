"""rknpu-plan-memory: give every DRAM buffer of the lowered function an address.

Buffers and steps come from `rkc.lowering.dram.function_buffers` (arguments, op results,
constants; concat inputs aliased into the concat's buffer where legal; storage sizes of
the NC1HWC2 layout with the hardware's padding), offsets from
`rkc.lowering.memory_plan.plan_memory`: feature buffers (arguments, results, host and
NPU values) share one arena by liveness, weights and other constants get their own,
never reused. Offsets are relative to the start of their arena; codegen adds the arena's
base address when it patches the address registers.

Establishes (attributes; values and types are unchanged):

* on every op of the entry function but constants and the return:
  `rknpu.dram = [array<i64: offset, size>, ...]`, one entry per result, in the feature
  arena. An aliased concat input's producer carries its absolute offset (the concat's
  offset + its slot), so a task's output address is always its own `rknpu.dram`;
* on every argument (in the function's `arg_attrs`): `rknpu.dram` likewise;
* on every `nn.constant` the function reads: `rknpu.dram = [array<i64: offset, size>]`
  in the weight arena (size: packed weights / DPU stream for conv operands);
* on every `rknpu.conv`: `rknpu.weights = array<i64: weight_offset, weight_size,
  stream_offset, stream_size>` (weight arena: the CNA's weight base, the DPU's
  bias / per-channel stream base; a conv without a bias gets a stream of its own);
* on an `rknpu.concat` that cannot alias every input, or an `rknpu.view` that is not a
  contiguous window of its input: `rknpu.copies = array<i64: operand indices>`, the
  operands its step copies (a data move);
* on the module: `rknpu.memory = {alignment, feature_bytes, live_peak_bytes,
  npu_feature_bytes, weight_bytes}` (i64): the arenas' sizes, the live-size lower bound,
  and the peak of the NC1HWC2 tensors alone (`npu_feature_bytes`: what the same planner
  needs for the buffers NPU tasks exchange, without the host's float / NCHW tensors; the
  figure to compare with rknn-toolkit2's "Total Internal Memory", whose runtime converts
  inputs and outputs in buffers of its own).

Options: `target` (default rk3588: padding rules and surface alignment) and `alignment`
(default 64 bytes, the vendor's Const table alignment; every buffer that is not an alias
starts on a multiple of it).

No two buffers whose lifetimes overlap share a byte (`plan_memory`'s invariant; the
tests also run the function in one flat byte arena at these offsets and get the
interpreter's outputs).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import builtin
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    DictionaryAttr,
    IntegerAttr,
    i64,
)
from xdsl.passes import ModulePass

from rkc.dialects import nn, rknpu
from rkc.errors import RkcError
from rkc.graph import main_function
from rkc.lowering.dram import FunctionBuffers, function_buffers
from rkc.lowering.memory_plan import MemoryPlan, plan_memory
from rkc.targets import get_target

DRAM_ATTR = "rknpu.dram"
WEIGHTS_ATTR = "rknpu.weights"
COPIES_ATTR = "rknpu.copies"
MEMORY_ATTR = "rknpu.memory"


def plan_function(module: builtin.ModuleOp, target: str, alignment: int = 64,
                  ) -> tuple[FunctionBuffers, MemoryPlan]:
    """The buffers of `module`'s entry function and their plan."""
    if alignment < 1:
        raise RkcError(f"rknpu-plan-memory: alignment must be positive, got {alignment}")
    buffers = function_buffers(module, get_target(target))
    return buffers, plan_memory(buffers.buffers, buffers.order, alignment)


def npu_feature_bytes(buffers: FunctionBuffers, alignment: int = 64) -> int:
    """Feature arena of the native (NC1HWC2 or packed) buffers planned on their own."""
    native = [b for b in buffers.buffers
              if b.kind != "weight" and buffers.storage[b.name].layout != "dense"]
    names = {b.name for b in native}
    # an alias of a native buffer is native; a native alias of a dense one cannot occur
    assert all(b.alias_of in names for b in native if b.alias_of is not None)
    return plan_memory(native, buffers.order, alignment).feature_bytes


def _span(plan: MemoryPlan, buffers: FunctionBuffers, name: str) -> DenseArrayBase:
    return DenseArrayBase.from_list(i64, [plan.offsets[name], buffers.buffer(name).size])


def annotate(module: builtin.ModuleOp, buffers: FunctionBuffers, plan: MemoryPlan) -> None:
    """Write the plan's offsets onto the module (see the module docstring)."""
    fn = main_function(module)
    for op in buffers.steps.values():
        op.attributes[DRAM_ATTR] = ArrayAttr(
            [_span(plan, buffers, buffers.values[r]) for r in op.results])
        if isinstance(op, rknpu.ConvOp):
            weight, stream = buffers.conv_buffers[op]
            op.attributes[WEIGHTS_ATTR] = DenseArrayBase.from_list(
                i64, [plan.offsets[weight], buffers.buffer(weight).size,
                      plan.offsets[stream], buffers.buffer(stream).size])
        if op in buffers.copies:
            op.attributes[COPIES_ATTR] = DenseArrayBase.from_list(i64, list(buffers.copies[op]))
        else:
            op.attributes.pop(COPIES_ATTR, None)
    for op in fn.body.block.ops:
        if isinstance(op, nn.ConstantOp) and op.output in buffers.values:
            op.attributes[DRAM_ATTR] = ArrayAttr(
                [_span(plan, buffers, buffers.values[op.output])])
    arg_attrs = fn.arg_attrs.data if fn.arg_attrs is not None else ()
    new_attrs = []
    for i, arg in enumerate(fn.args):
        old = dict(arg_attrs[i].data) if i < len(arg_attrs) else {}
        old[DRAM_ATTR] = ArrayAttr([_span(plan, buffers, buffers.values[arg])])
        new_attrs.append(DictionaryAttr(old))
    fn.arg_attrs = ArrayAttr(new_attrs)
    module.attributes[MEMORY_ATTR] = DictionaryAttr({
        "alignment": IntegerAttr(plan.alignment, i64),
        "feature_bytes": IntegerAttr(plan.feature_bytes, i64),
        "live_peak_bytes": IntegerAttr(plan.live_peak_bytes, i64),
        "npu_feature_bytes": IntegerAttr(npu_feature_bytes(buffers, plan.alignment), i64),
        "weight_bytes": IntegerAttr(plan.weight_bytes, i64)})


@dataclass(frozen=True)
class RknpuPlanMemoryPass(ModulePass):
    """Plan the DRAM buffers of the lowered entry function and record their offsets."""

    name = "rknpu-plan-memory"
    target: str = "rk3588"
    alignment: int = 64

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        buffers, plan = plan_function(op, self.target, self.alignment)
        annotate(op, buffers, plan)
