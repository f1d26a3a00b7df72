"""DRAM memory planning (rkc.lowering.memory_plan): worked examples, and random task graphs
whose plans never let two live buffers share bytes, keep offsets aligned, place aliases
inside their parents, and stay between the live-size lower bound and the sum of sizes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rkc.lowering.memory_plan import Buffer, dataflow_graph, format_memory, plan_memory

CHAIN = [
    Buffer("x", 100, None, ("t0",), "input"),
    Buffer("f0", 200, "t0", ("t1",)),
    Buffer("f1", 200, "t1", ("t2",)),
    Buffer("y", 100, "t2", (), "output"),
    Buffer("w0", 1000, None, ("t0",), "weight"),
    Buffer("w1", 30, None, ("t1",), "weight"),
]
ORDER = ["t0", "t1", "t2"]


def test_chain_reuses_dead_buffers():
    plan = plan_memory(CHAIN, ORDER)
    assert dict(plan.intervals) == {"x": (0, 0), "f0": (0, 1), "f1": (1, 2), "y": (2, 2),
                                    "w0": (0, 2), "w1": (0, 2)}
    # largest first: f0 at 0, f1 after it (both live at t1), x over f1 (dead at t0),
    # y in the gap f0 left (dead at t2)
    assert {k: plan.offsets[k] for k in ("f0", "f1", "x", "y")} == {
        "f0": 0, "f1": 256, "x": 256, "y": 0}
    assert plan.feature_bytes == 512
    assert plan.live_peak_bytes == 400          # f0 + f1 at t1
    assert (plan.offsets["w0"], plan.offsets["w1"], plan.weight_bytes) == (0, 1024, 1088)
    assert plan.summary_rows() == [("feature peak", 512), ("weights", 1088),
                                   ("total", 1600)]


def test_concat_inputs_alias_the_concat_output():
    buffers = [
        Buffer("x", 64, None, ("a", "b"), "input"),
        Buffer("cat", 256, "b", ("c",)),
        Buffer("ya", 128, "a", ("c",), alias_of="cat", alias_offset=0),
        Buffer("yb", 128, "b", ("c",), alias_of="cat", alias_offset=128),
        Buffer("out", 64, "c", (), "output"),
    ]
    plan = plan_memory(buffers, ["a", "b", "c"], alignment=16)
    assert plan.offsets["ya"] == plan.offsets["cat"]
    assert plan.offsets["yb"] == plan.offsets["cat"] + 128
    # cat lives from a (its alias ya is written there) to c, so x (live at a, b) and out
    # (live at c) must both stay clear of it
    assert plan.offsets["cat"] == 0 and plan.offsets["x"] == 256
    assert plan.offsets["out"] == 256
    assert plan.feature_bytes == 320 and plan.live_peak_bytes == 320


def test_dataflow_graph_has_tasks_and_buffers():
    graph = dataflow_graph(CHAIN, ORDER)
    assert graph.nodes["task", "t1"]["order"] == 1
    assert graph.nodes["buffer", "f0"]["buffer"] is CHAIN[1]
    assert set(graph.successors(("task", "t0"))) == {("buffer", "f0")}
    assert set(graph.predecessors(("task", "t0"))) == {("buffer", "x"), ("buffer", "w0")}


@pytest.mark.parametrize("buffers, order, message", [
    ([Buffer("a", 1, "t9", ())], ["t0"], "task 't9' is not in the order"),
    ([Buffer("a", 1, "t1", ("t0",))], ["t0", "t1"], r"consumers \['t0'\] do not run after t1"),
    ([Buffer("a", 8, None, ("t0",)), Buffer("b", 4, "t0", (), alias_of="a")], ["t0"],
     "buffer a: consumers .* do not run after t0, which writes b"),
    ([Buffer("a", 4, None, (), alias_of="b"), Buffer("b", 4, None, (), alias_of="a")],
     ["t0"], "alias each other in a cycle"),
    ([Buffer("a", 1, None, ()), Buffer("a", 1, None, ())], ["t0"], "defined twice"),
    ([Buffer("a", 8, None, ()), Buffer("b", 4, None, (), alias_of="a", alias_offset=6)],
     ["t0"], "does not fit in feature buffer a"),
    ([Buffer("a", 8, None, (), "weight"), Buffer("b", 4, None, (), alias_of="a")],
     ["t0"], "does not fit in weight buffer a"),
    ([Buffer("a", 8, None, (), alias_of="z")], ["t0"], "aliases unknown buffer 'z'"),
    ([], ["t0", "t0"], "names a task twice"),
])
def test_bad_inputs_are_rejected(buffers, order, message):
    with pytest.raises(ValueError, match=message):
        plan_memory(buffers, order)


def test_format_memory_reads_like_eval_memory():
    text = format_memory(plan_memory(CHAIN, ORDER), command_bytes=3 << 20)
    lines = text.splitlines()
    assert lines[0].split() == ["memory", "size", "bytes"]
    assert lines[2].split()[-3:] == ["1.06", "KiB", "1088"]
    assert lines[2].startswith("Weight memory")
    assert lines[3].startswith("Internal tensor memory (feature peak)")
    assert lines[3].split()[-3:] == ["512", "B", "512"]
    assert lines[4].split()[-3:] == ["3.00", "MiB", str(3 << 20)]
    assert lines[5].split()[-3:] == ["3.00", "MiB", str((3 << 20) + 1600)]
    assert "Command memory" not in format_memory(plan_memory(CHAIN, ORDER))


# --------------------------------------------------------------------------- properties


@st.composite
def programs(draw) -> tuple[list[Buffer], list[str], int]:
    n = draw(st.integers(1, 10))
    order = [f"t{i}" for i in range(n)]
    sizes = st.integers(0, 5000)
    buffers: list[Buffer] = []
    for j in range(draw(st.integers(0, 3))):
        users = draw(st.lists(st.sampled_from(order), min_size=1, max_size=3, unique=True))
        buffers.append(Buffer(f"in{j}", draw(sizes), None, tuple(users), "input"))
    for i, task in enumerate(order):
        later = order[i + 1:]
        for j in range(draw(st.integers(0, 2))):
            users = draw(st.lists(st.sampled_from(later), max_size=3, unique=True)) \
                if later else []
            kind = draw(st.sampled_from(["feature", "feature", "output"]))
            buffers.append(Buffer(f"f{i}_{j}", draw(sizes), task, tuple(users), kind))
        if draw(st.booleans()):
            buffers.append(Buffer(f"w{i}", draw(sizes), None, (task,), "weight"))
    for j in range(draw(st.integers(0, 4))):
        parents = [b for b in buffers if b.kind != "weight"]
        if not parents:
            break
        parent = draw(st.sampled_from(parents))
        first_read, owner = n, parent  # the writer runs before every reader of the family
        while owner is not None:
            first_read = min([first_read] + [order.index(c) for c in owner.consumers])
            owner = next((b for b in buffers if b.name == owner.alias_of), None)
        if first_read == 0:
            continue
        size = draw(st.integers(0, parent.size))
        offset = draw(st.integers(0, parent.size - size))
        i = draw(st.integers(0, first_read - 1))
        users = draw(st.lists(st.sampled_from(order[i + 1:]), max_size=2, unique=True)) \
            if i + 1 < n else []
        buffers.append(Buffer(f"a{j}", size, order[i], tuple(users), "feature",
                              parent.name, offset))
    return buffers, order, draw(st.sampled_from([1, 16, 64, 4096]))


def _interval(b: Buffer, order: list[str]) -> tuple[int, int]:
    start = 0 if b.kind in ("input", "weight") or b.producer is None \
        else order.index(b.producer)
    if b.kind in ("output", "weight"):
        return start, len(order) - 1
    return start, max((order.index(c) for c in b.consumers), default=start)


@settings(max_examples=200, deadline=None)
@given(programs())
def test_plans_are_safe_and_tight(program):
    buffers, order, alignment = program
    plan = plan_memory(buffers, order, alignment)
    by_name = {b.name: b for b in buffers}

    def root(b: Buffer) -> Buffer:
        return b if b.alias_of is None else root(by_name[b.alias_of])

    own = {b.name: _interval(b, order) for b in buffers}
    assert dict(plan.intervals) == own
    hull: dict[str, tuple[int, int]] = {}
    for b in buffers:
        r = root(b).name
        lo, hi = hull.get(r, own[b.name])
        hull[r] = (min(lo, own[b.name][0]), max(hi, own[b.name][1]))

    for b in buffers:
        off = plan.offsets[b.name]
        if b.alias_of is None:
            assert off % alignment == 0
        else:
            assert off == plan.offsets[b.alias_of] + b.alias_offset
        arena = plan.weight_bytes if b.kind == "weight" else plan.feature_bytes
        assert 0 <= off and off + b.size <= arena
    features = [b for b in buffers if b.kind != "weight"]
    for i, a in enumerate(features):
        for b in features[i + 1:]:
            if root(a) is root(b) or a.size == 0 or b.size == 0:
                continue
            ia, ib = own[a.name], own[b.name]
            if ia[0] <= ib[1] and ib[0] <= ia[1]:
                oa, ob = plan.offsets[a.name], plan.offsets[b.name]
                assert oa + a.size <= ob or ob + b.size <= oa, (a, b)
    weights = sorted((plan.offsets[b.name], b.size) for b in buffers if b.kind == "weight")
    for (o1, s1), (o2, _) in zip(weights, weights[1:], strict=False):
        assert o1 + s1 <= o2

    roots = [b for b in features if b.alias_of is None]
    live = max((sum(r.size for r in roots if hull[r.name][0] <= s <= hull[r.name][1])
                for s in range(len(order))), default=0)
    assert plan.live_peak_bytes == live
    assert live <= plan.feature_bytes
    assert plan.feature_bytes <= sum(-(-r.size // alignment) * alignment for r in roots)
    assert plan.weight_bytes == sum(-(-b.size // alignment) * alignment
                                    for b in buffers if b.kind == "weight")
