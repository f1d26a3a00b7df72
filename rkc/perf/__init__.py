"""Performance estimates for lowered `rknpu` modules: a per-task cost model
(`rkc.perf.model`), the eval_perf-like table, CSV and roofline (`rkc.perf.report`) and a
bar chart (`rkc.perf.plot`, needs matplotlib). docs/performance.md explains the model."""

from rkc.perf.model import LayerCost, PerfEstimate, TaskCost, estimate

__all__ = ["LayerCost", "PerfEstimate", "TaskCost", "estimate"]
