"""DRAM memory planning: feature buffers share one arena by liveness, weights get their own.

Tasks run in the given order. A buffer is live from its producer's step (step 0 for graph
inputs and buffers without a producer) to its last consumer's step (the last step for
graph outputs); intervals are closed, so a task's inputs and outputs never share bytes.
An aliased buffer (`alias_of`, e.g. a concat input written straight into the concat's
output) sits at `parent offset + alias_offset` and extends its parent's lifetime; the
caller keeps aliases of one family from clobbering each other (the plan does not check).

Invariants of a `MemoryPlan` (tested): two buffers of different alias families whose
intervals overlap never share bytes; root offsets are multiples of `alignment`; every
alias sits exactly at its parent's offset plus `alias_offset`; the feature arena is at
least the largest sum of sizes live at one step and at most the sum of the roots' sizes
rounded up to `alignment`. Weights are placed one after the other (read-only, no reuse).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import networkx as nx

from rkc.table import format_table

KINDS = ("feature", "weight", "input", "output")

Interval = tuple[int, int]  # [first step, last step], both included


@dataclass(frozen=True)
class Buffer:
    """A DRAM buffer: `size` bytes written by `producer`, read by `consumers` (task names)."""

    name: str
    size: int
    producer: str | None
    consumers: tuple[str, ...]
    kind: str = "feature"
    alias_of: str | None = None
    alias_offset: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"buffer {self.name}: kind must be one of {KINDS}, not "
                             f"{self.kind!r}")
        if self.size < 0 or self.alias_offset < 0:
            raise ValueError(f"buffer {self.name}: negative size or alias offset")


@dataclass(frozen=True)
class MemoryPlan:
    """Offsets (bytes, in the buffer's arena) and arena sizes."""

    offsets: Mapping[str, int]
    intervals: Mapping[str, Interval]   # own live interval per buffer (weights: whole run)
    arenas: Mapping[str, str]           # buffer -> "feature" or "weight"
    feature_bytes: int                  # feature arena size = peak feature bytes
    live_peak_bytes: int                # max over steps of the live roots' sizes (a bound)
    weight_bytes: int                   # weight arena size
    alignment: int

    @property
    def peak_feature_bytes(self) -> int:
        return self.feature_bytes

    @property
    def total_bytes(self) -> int:
        return self.feature_bytes + self.weight_bytes

    def summary_rows(self) -> list[tuple[str, int]]:
        """("feature peak", bytes), ("weights", bytes), ("total", bytes)."""
        return [("feature peak", self.feature_bytes), ("weights", self.weight_bytes),
                ("total", self.total_bytes)]


def _align(n: int, to: int) -> int:
    return -(-n // to) * to


def _arena(buffer: Buffer) -> str:
    return "weight" if buffer.kind == "weight" else "feature"


def dataflow_graph(buffers: Sequence[Buffer], order: Sequence[str]) -> nx.DiGraph:
    """Tasks and buffers as a DAG: ("task", name) nodes with `order`, ("buffer", name)
    nodes with `buffer`; edges producer -> buffer -> consumers, alias -> parent buffer.

    Raises ValueError for unknown tasks or buffers, duplicates, alias cycles, and a reader
    of a buffer (or of a buffer containing it as an alias) that does not run after the
    buffer's writer.
    """
    if len(set(order)) != len(order):
        raise ValueError("task order names a task twice")
    graph = nx.DiGraph()
    for i, task in enumerate(order):
        graph.add_node(("task", task), order=i)
    by_name: dict[str, Buffer] = {}
    for b in buffers:
        if b.name in by_name:
            raise ValueError(f"buffer {b.name} defined twice")
        by_name[b.name] = b
        graph.add_node(("buffer", b.name), buffer=b)
    for b in buffers:
        for task in ((b.producer,) if b.producer is not None else ()) + b.consumers:
            if ("task", task) not in graph:
                raise ValueError(f"buffer {b.name}: task {task!r} is not in the order")
        if b.producer is not None:
            graph.add_edge(("task", b.producer), ("buffer", b.name))
        for task in b.consumers:
            graph.add_edge(("buffer", b.name), ("task", task))
        if b.alias_of is not None:
            parent = by_name.get(b.alias_of)
            if parent is None:
                raise ValueError(f"buffer {b.name} aliases unknown buffer {b.alias_of!r}")
            if _arena(parent) != _arena(b) or b.alias_offset + b.size > parent.size:
                raise ValueError(f"buffer {b.name} ({b.size} B at +{b.alias_offset}) does "
                                 f"not fit in {parent.kind} buffer {parent.name} "
                                 f"({parent.size} B)")
            graph.add_edge(("buffer", b.name), ("buffer", parent.name), alias=True)
    aliases = graph.edge_subgraph((u, v) for u, v, a in graph.edges(data="alias") if a)
    if not nx.is_directed_acyclic_graph(aliases):
        raise ValueError(f"buffers alias each other in a cycle: {nx.find_cycle(aliases)}")
    for b in buffers:
        if b.producer is None:
            continue
        step = graph.nodes["task", b.producer]["order"]
        owner: Buffer | None = b
        while owner is not None:  # readers of b and of every buffer b is an alias in
            late = [c for c in owner.consumers if graph.nodes["task", c]["order"] <= step]
            if late:
                raise ValueError(f"buffer {owner.name}: consumers {late} do not run after "
                                 f"{b.producer}, which writes {b.name}")
            owner = by_name[owner.alias_of] if owner.alias_of is not None else None
    return graph  # acyclic: every task -> buffer (-> alias parent)* -> task path runs forward


def _intervals(graph: nx.DiGraph, buffers: Sequence[Buffer], steps: int) -> dict[str, Interval]:
    last = max(steps - 1, 0)
    out = {}
    for b in buffers:
        if b.kind == "weight":
            out[b.name] = (0, last)
            continue
        start = 0 if b.kind == "input" or b.producer is None \
            else graph.nodes["task", b.producer]["order"]
        uses = [graph.nodes["task", c]["order"] for c in b.consumers]
        end = last if b.kind == "output" else max(uses, default=start)
        out[b.name] = (start, end)
    return out


def _roots(buffers: Sequence[Buffer]) -> dict[str, str]:
    parent = {b.name: b.alias_of for b in buffers}
    roots = {}
    for name in parent:
        root = name
        while parent[root] is not None:
            root = parent[root]
        roots[name] = root
    return roots


def _overlap(a: Interval, b: Interval) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _best_fit(size: int, busy: list[Interval], alignment: int) -> int:
    """Lowest-waste aligned offset for `size` bytes clear of the `busy` byte ranges."""
    best, best_gap, cursor = None, None, 0
    for start, end in sorted(busy):
        if start >= cursor + size:
            gap = start - cursor
            if best_gap is None or gap < best_gap:
                best, best_gap = cursor, gap
        cursor = max(cursor, _align(end, alignment))
    return cursor if best is None else best


def plan_memory(buffers: Sequence[Buffer], order: Sequence[str],
                alignment: int = 64) -> MemoryPlan:
    """Offsets for `buffers` used by the tasks `order`, run in that order.

    Feature-arena roots are placed greedily, largest first (then earliest), each in the
    smallest aligned gap left by already placed roots whose lifetime overlaps its own.
    """
    if alignment < 1:
        raise ValueError(f"alignment must be positive, got {alignment}")
    graph = dataflow_graph(buffers, order)
    own = _intervals(graph, buffers, len(order))
    roots = _roots(buffers)
    by_name = {b.name: b for b in buffers}
    hull: dict[str, Interval] = {}
    for name, root in roots.items():
        lo, hi = hull.get(root, own[name])
        hull[root] = (min(lo, own[name][0]), max(hi, own[name][1]))

    offsets: dict[str, int] = {}
    feature_roots = [by_name[r] for r in hull if _arena(by_name[r]) == "feature"]
    feature_roots.sort(key=lambda b: (-b.size, hull[b.name][0], b.name))
    placed: list[Buffer] = []
    for b in feature_roots:
        busy = [(offsets[p.name], offsets[p.name] + p.size) for p in placed
                if _overlap(hull[p.name], hull[b.name])]
        offsets[b.name] = _best_fit(b.size, busy, alignment)
        placed.append(b)
    feature_bytes = _align(max((offsets[b.name] + b.size for b in placed), default=0),
                           alignment)

    weight_cursor = 0
    for b in buffers:
        if b.kind == "weight" and b.alias_of is None:
            offsets[b.name] = weight_cursor
            weight_cursor = _align(weight_cursor + b.size, alignment)

    def place(name: str) -> int:
        if name not in offsets:
            b = by_name[name]
            offsets[name] = place(b.alias_of) + b.alias_offset
        return offsets[name]

    for b in buffers:
        place(b.name)
    live_peak = max((sum(b.size for b in placed if hull[b.name][0] <= s <= hull[b.name][1])
                     for s in range(max(len(order), 1))), default=0)
    return MemoryPlan(
        offsets=MappingProxyType({b.name: offsets[b.name] for b in buffers}),
        intervals=MappingProxyType(own),
        arenas=MappingProxyType({b.name: _arena(b) for b in buffers}),
        feature_bytes=feature_bytes, live_peak_bytes=live_peak,
        weight_bytes=weight_cursor, alignment=alignment)


def _size(n: int) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.2f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.2f} KiB"
    return f"{n} B"


def format_memory(plan: MemoryPlan, command_bytes: int | None = None) -> str:
    """A table like rknn-toolkit2's `eval_memory`: weight, internal tensor (feature peak),
    command memory (when given) and total, in KiB / MiB and bytes."""
    rows = [("Weight memory", plan.weight_bytes),
            ("Internal tensor memory (feature peak)", plan.feature_bytes)]
    if command_bytes is not None:
        rows.append(("Command memory", command_bytes))
    rows.append(("Total memory", sum(n for _, n in rows)))
    return format_table(["memory", "size", "bytes"],
                        [(label, _size(n), n) for label, n in rows],
                        align_right=[False, True, True])
