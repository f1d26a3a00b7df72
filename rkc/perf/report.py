"""`rkc report --perf`: the per-layer table in eval_perf's columns, totals, the roofline
and estimated FPS, as text and as CSV."""

from __future__ import annotations

import csv
import io

from rkc.perf.model import LayerCost, PerfEstimate
from rkc.table import format_table

COLUMNS = ("ID", "OpType", "Name", "DataType", "Target", "Tasks", "Cycles(DDR/NPU/Total)",
           "Time(us)", "MacUsage(%)", "Read(KB)", "Write(KB)", "Roofline(us)", "Gap(x)")
CSV_COLUMNS = ("id", "op_type", "name", "data_type", "target", "tasks", "ddr_cycles",
               "npu_cycles", "total_cycles", "time_us", "mac_usage_percent", "read_kb",
               "write_kb", "macs", "compulsory_kb", "roofline_us", "gap", "note")


def _kb(n: int) -> float:
    return round(n / 1024, 2)


def _gap(layer: LayerCost) -> str:
    if layer.target != "NPU" or not layer.roofline_cycles:
        return "-"
    return f"{layer.cycles / layer.roofline_cycles:.1f}"


def layer_rows(perf: PerfEstimate) -> list[tuple[object, ...]]:
    """One row per layer in `COLUMNS` order (host ops: CPU with no cycles)."""
    rows = []
    for layer in perf.layers:
        cpu = layer.target == "CPU"
        rows.append((
            layer.index, layer.op, layer.name, layer.dtype, layer.target,
            "-" if cpu else str(layer.hardware_tasks),
            "-" if cpu else f"{layer.ddr_cycles}/{layer.npu_cycles}/{layer.cycles}",
            "-" if cpu else f"{perf.microseconds(layer.cycles):.2f}",
            "-" if cpu or not layer.macs else f"{100 * layer.mac_utilisation:.1f}",
            "-" if cpu else f"{_kb(layer.read_bytes):.2f}",
            "-" if cpu else f"{_kb(layer.write_bytes):.2f}",
            "-" if cpu else f"{perf.microseconds(layer.roofline_cycles):.2f}",
            _gap(layer)))
    return rows


def summary_lines(perf: PerfEstimate) -> list[str]:
    """Totals, FPS and the model's roofline, one fact per line."""
    t = perf.target
    npu = perf.npu_layers
    cpu = len(perf.layers) - len(npu)
    reads = sum(layer.read_bytes for layer in npu)
    writes = sum(layer.write_bytes for layer in npu)
    roof_us = perf.microseconds(perf.roofline_cycles)
    gap = perf.total_cycles / perf.roofline_cycles if perf.roofline_cycles else 0.0
    utilisation = (perf.macs / (perf.total_cycles * _peak(perf) * perf.cores)
                   if perf.total_cycles and _peak(perf) else 0.0)
    return [
        f"total: {perf.total_cycles} cycles = {perf.time_us:.1f} us at {t.npu_clock_mhz} MHz "
        f"-> {perf.fps:.1f} FPS estimated on {perf.cores} core(s) "
        f"({sum(layer.hardware_tasks for layer in npu)} tasks, {len(npu)} NPU ops; "
        f"{cpu} host op(s) not estimated)",
        f"DRAM traffic: read {_kb(reads):.1f} KB, write {_kb(writes):.1f} KB at "
        f"{t.dram_gbps} GB/s = {t.dram_bytes_per_cycle:.1f} B/cycle",
        f"MACs: {perf.macs} ({perf.macs / 1e9:.3f} G), utilisation "
        f"{100 * utilisation:.1f} % of {perf.cores} x {_peak(perf)} MAC/cycle",
        f"roofline: compute {perf.compute_floor_cycles:.0f} cycles "
        f"({perf.microseconds(perf.compute_floor_cycles):.1f} us), memory "
        f"{perf.memory_floor_cycles:.0f} cycles "
        f"({perf.microseconds(perf.memory_floor_cycles):.1f} us) -> bound "
        f"{roof_us:.1f} us = {1e6 / roof_us if roof_us else float('inf'):.1f} FPS; the "
        f"estimate is {gap:.1f}x the bound",
    ]


def _peak(perf: PerfEstimate) -> int:
    """The int8 MAC rate of one core (the figure utilisation is quoted against)."""
    return perf.target.macs_per_cycle("int8")


def format_perf(perf: PerfEstimate) -> str:
    """The per-layer table, then the summary lines."""
    header = (f"performance estimate on {perf.target.name}, {perf.cores} core(s), "
              f"{perf.target.npu_clock_mhz} MHz (rkc cost model, docs/performance.md; "
              f"host ops are listed with no cycles)")
    table = format_table(COLUMNS, layer_rows(perf),
                         align_right=[True, False, False, False, False] + [True] * 8)
    return "\n".join([header, "", table, "", *summary_lines(perf)])


def perf_csv(perf: PerfEstimate) -> str:
    """The table as CSV (`CSV_COLUMNS`, plain numbers, one row per layer)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for layer in perf.layers:
        writer.writerow((
            layer.index, layer.op, layer.name, layer.dtype, layer.target,
            layer.hardware_tasks, layer.ddr_cycles, layer.npu_cycles, layer.cycles,
            f"{perf.microseconds(layer.cycles):.3f}", f"{100 * layer.mac_utilisation:.2f}",
            f"{layer.read_bytes / 1024:.3f}", f"{layer.write_bytes / 1024:.3f}", layer.macs,
            f"{layer.compulsory_bytes / 1024:.3f}",
            f"{perf.microseconds(layer.roofline_cycles):.3f}",
            "" if _gap(layer) == "-" else _gap(layer), layer.note))
    return out.getvalue()
