"""rknn-toolkit2's own per-layer estimates beside rkc's, layer by layer.

rknn-toolkit2 prints, when it builds a model, a "Network Layer Information Table" with
Cycles(DDR/NPU/Total) and RW(KB) per layer. `read_vendor_csv` reads such rows saved as a
CSV (tests/data/vendor/perf_logs.csv: one row per vendor NPU layer, with the ONNX node
output the layer implements); `compare` puts them beside an `rkc.perf` estimate of the
same ONNX model, matched by that ONNX output (rkc names an unnamed ONNX node
`<OpType>_<index>`, `onnx_layer_outputs`). Several vendor rows may implement one ONNX
node (its global average pool becomes two convs); their cycles are summed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from rkc.errors import RkcError
from rkc.perf.model import PerfEstimate


@dataclass(frozen=True)
class VendorLayer:
    """One NPU row of a vendor build log's layer table."""

    model: str
    chip: str
    dtype: str
    op_type: str
    full_name: str
    onnx_output: str
    ddr_cycles: int
    npu_cycles: int
    total_cycles: int
    rw_kb: int


@dataclass(frozen=True)
class LayerComparison:
    """One ONNX node: the vendor's cycles and rkc's, summed over the layers that
    implement it on each side."""

    onnx_output: str
    vendor_ops: tuple[str, ...]
    rkc_ops: tuple[str, ...]
    vendor_ddr: int
    vendor_npu: int
    vendor_total: int
    rkc_ddr: int
    rkc_npu: int
    rkc_total: int


def read_vendor_csv(path: Path) -> list[VendorLayer]:
    """The rows of a vendor-estimate CSV ('#' lines are comments)."""
    try:
        lines = [line for line in Path(path).read_text().splitlines()
                 if line and not line.startswith("#")]
    except OSError as e:
        raise RkcError(f"cannot read {path}: {e}") from None
    rows = []
    for r in csv.DictReader(lines):
        rows.append(VendorLayer(r["model"], r["chip"], r["dtype"], r["op_type"],
                                r["full_name"], r["onnx_output"], int(r["ddr_cycles"]),
                                int(r["npu_cycles"]), int(r["total_cycles"]),
                                int(r["rw_kb"])))
    return rows


def onnx_layer_outputs(onnx_path: Path) -> dict[str, str]:
    """rkc layer name -> first output of the ONNX node it comes from."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    return {node.name or f"{node.op_type}_{i}": node.output[0]
            for i, node in enumerate(model.graph.node)}


def compare(perf: PerfEstimate, layer_outputs: dict[str, str],
            vendor: list[VendorLayer]) -> list[LayerComparison]:
    """One row per ONNX output either side runs on the NPU: rkc's in its order, then any
    only the vendor lists. A row with no vendor ops is a layer the vendor fused into
    another one (its cycles are in that layer's row)."""
    ours: dict[str, list] = {}
    for layer in perf.npu_layers:
        output = layer_outputs.get(layer.name)
        if output is not None:
            ours.setdefault(output, []).append(layer)
    order = list(dict.fromkeys([*ours, *(v.onnx_output for v in vendor)]))
    rows = []
    for output in order:
        theirs = [v for v in vendor if v.onnx_output == output]
        mine = ours.get(output, [])
        rows.append(LayerComparison(
            output, tuple(f"{v.op_type}:{v.full_name}" for v in theirs),
            tuple(f"{m.op}:{m.name}" for m in mine),
            sum(v.ddr_cycles for v in theirs), sum(v.npu_cycles for v in theirs),
            sum(v.total_cycles for v in theirs), sum(m.ddr_cycles for m in mine),
            sum(m.npu_cycles for m in mine), sum(m.cycles for m in mine)))
    return rows
