"""`rkc report --placement`: which op runs where, as a plain-text table."""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import ModuleOp

from rkc.lowering.legality import Placement, place
from rkc.table import format_table
from rkc.targets import get_target


def format_placement(placements: Sequence[Placement]) -> str:
    """A table (name, op, shapes, unit, reason: the block for NPU ops, the failed
    constraint for CPU ops), then the NPU / CPU counts."""
    rows = [(p.name, p.op, p.shapes, p.unit.upper(), p.reason) for p in placements]
    table = format_table(("name", "op", "shapes", "unit", "reason"), rows)
    npu = sum(p.unit == "npu" for p in placements)
    return f"{table}\n\n{npu} ops on the NPU, {len(placements) - npu} on the CPU"


def placement_report(module: ModuleOp, target_name: str) -> str:
    """Place `module`'s entry function for the named chip (annotating it) and report.
    An unknown chip name is an RkcError."""
    target = get_target(target_name)
    return f"placement on {target.name}\n\n" + format_placement(place(module, target))
