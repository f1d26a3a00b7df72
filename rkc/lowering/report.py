"""`rkc report` sections on a lowered module: summary, tiling and memory, as plain text.

(Placement is `rkc.lowering.placement_report`, on the quantized module.)
"""

from __future__ import annotations

from xdsl.dialects.builtin import ModuleOp

from rkc.dialects import rknpu
from rkc.graph import main_function
from rkc.lowering.memory_plan import format_memory
from rkc.lowering.pipeline import LoweringSummary, summarize
from rkc.lowering.tiling import describe
from rkc.passes.rknpu_plan_memory import npu_feature_bytes, plan_function
from rkc.passes.rknpu_tile import conv_geometry, op_label, plan_conv, tile_target
from rkc.table import format_table


def _kib(n: int) -> str:
    return f"{n / 1024:.2f} KiB"


def summary_rows(summary: LoweringSummary) -> list[tuple[str, object]]:
    s = summary
    return [("ops on the NPU", s.npu_ops), ("ops on the CPU", s.cpu_ops),
            ("layout conversions (host)", s.conversions), ("NPU tasks", s.tasks),
            ("tiled convs", s.tiled_convs), ("copies (concat / view)", s.copies),
            ("peak feature memory", f"{s.peak_feature_bytes} B ({_kib(s.peak_feature_bytes)})"),
            ("peak of the NC1HWC2 tensors alone",
             f"{s.npu_feature_bytes} B ({_kib(s.npu_feature_bytes)})"),
            ("weight memory", f"{s.weight_bytes} B ({_kib(s.weight_bytes)})")]


def summary_report(lowered: ModuleOp) -> str:
    """The `LoweringSummary` as a two-column table."""
    return format_table(["lowering", "value"], summary_rows(summarize(lowered)),
                        align_right=[False, True])


def tiling_report(lowered: ModuleOp, target: str, cores: int = 1) -> str:
    """Per conv: its geometry, split method and bank split, then one line per tile."""
    chip = tile_target(target)
    parts = []
    for op in main_function(lowered).body.block.ops:
        if not isinstance(op, rknpu.ConvOp):
            continue
        g = conv_geometry(op)
        plan = plan_conv(op, chip, cores)
        kind = "depthwise" if g.depthwise else "conv"
        parts.append(
            f"{kind} {op_label(op)} {g.in_channels}x{g.in_height}x{g.in_width} -> "
            f"{g.out_channels}x{g.out_height}x{g.out_width} ({g.kernel[0]}x{g.kernel[1]} "
            f"stride {g.strides[0]}, {g.dtype}): {plan.method}, {len(plan.tiles)} task(s)\n"
            + "\n".join("  " + line for line in describe(plan).splitlines()))
    if not parts:
        return "no convolutions on the NPU"
    return "\n".join(parts)


def memory_report(lowered: ModuleOp, target: str, command_memory: str,
                  alignment: int = 64) -> str:
    """The eval_memory-like table of the lowered module's plan, `command_memory` (a line
    on the register command streams, which codegen builds), the live bound and the
    NC1HWC2 tensors' own peak."""
    buffers, plan = plan_function(lowered, target, alignment)
    native = npu_feature_bytes(buffers, alignment)
    return (f"{format_memory(plan)}\n{command_memory}\n"
            f"largest sum of buffers live at one step: {plan.live_peak_bytes} B "
            f"(the feature arena cannot be smaller)\n"
            f"NC1HWC2 tensors planned alone: {native} B ({_kib(native)}; what rknn-toolkit2 "
            f"reports as internal memory, without the host's float / NCHW buffers)")
