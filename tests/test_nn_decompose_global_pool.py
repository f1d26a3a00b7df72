"""`nn-decompose-global-pool`: global pools larger than the PPU window become cascades
that compute the same.

Tolerances: max pools are compared bit for bit; averages with a relative 1e-5 of each
output tensor's magnitude (`mismatches` of test_passes_equivalence): the cascade sums
in another order and rounds once more per stage (and a conv stage uses 1 / (kh * kw)
rounded to float32), errors of a few float32 steps of the mean.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_passes_equivalence import (
    REASSOCIATION_RTOL,
    apply_pipeline,
    count,
    is_op,
    mismatches,
    parse,
)

from rkc.dialects import nn
from rkc.interpreter import run_module
from rkc.passes.nn_decompose_global_pool import CONV_MAX_KERNEL, POOL_MAX_KERNEL, plan

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SIZES = [1, 3, 12, 16, 17, 18, 23, 30, 34, 37, 48, 60, 96, 120]
"""Axis lengths: within the PPU window, made of factors <= 16, with a prime factor in
17..31 (averages take it in a conv), and 37 (no decomposition)."""


def module_text(kind: str, shape: tuple[int, int, int, int]) -> str:
    t = "tensor<{}xf32>".format("x".join(map(str, shape)))
    out = "tensor<{}x{}x1x1xf32>".format(*shape[:2])
    return f"""
func.func @main(%x: {t}) -> {out} {{
  %r = nn.relu %x : ({t}) -> {t}
  %y = nn.global_{kind}_pool %r {{rkc.name = "gap"}} : ({t}) -> {out}
  func.return %y : {out}
}}"""


def check_stages(module, h: int, w: int) -> None:
    """Every stage fits its block: pools <= 16 with stride = kernel, a conv (averages,
    last) <= 31; the windows multiply to the plane."""
    kh = kw = 1
    for op in module.walk():
        if isinstance(op, nn.AvgPool2dOp | nn.MaxPool2dOp):
            kernel = nn.ints(op.properties, "kernel")
            assert max(kernel) <= POOL_MAX_KERNEL
            assert nn.ints(op.properties, "strides") == kernel
            kh, kw = kh * kernel[0], kw * kernel[1]
        elif isinstance(op, nn.GlobalAvgPoolOp | nn.GlobalMaxPoolOp):
            plane = op.operands[0].type.get_shape()[2:]
            assert max(plane) <= POOL_MAX_KERNEL
            kh, kw = kh * plane[0], kw * plane[1]
            assert nn.node_name(op) == "gap"
        elif isinstance(op, nn.Conv2dOp):
            kernel = op.weight.type.get_shape()[2:]
            assert max(kernel) <= CONV_MAX_KERNEL and op.output.type.get_shape()[2:] == (1, 1)
            kh, kw = kh * kernel[0], kw * kernel[1]
            assert nn.node_name(op) == "gap"
    assert (kh, kw) == (h, w)


def test_cascades_compute_the_same():
    decomposed = []

    @SETTINGS
    @given(st.sampled_from(["avg", "max"]), st.integers(1, 2), st.integers(1, 3),
           st.sampled_from(SIZES), st.sampled_from(SIZES), st.integers(0, 2**32 - 1))
    def same(kind, n, c, h, w, seed):
        before = parse(module_text(kind, (n, c, h, w)))
        after = apply_pipeline(before, "nn-decompose-global-pool")
        x = (np.random.default_rng(seed).standard_normal((n, c, h, w)) + 0.5).astype(np.float32)
        rtol = REASSOCIATION_RTOL if kind == "avg" else None
        problems = mismatches(run_module(before, [x]), run_module(after, [x]), rtol)
        assert not problems, "\n".join(problems) + f"\nafter:\n{after}"
        stages = plan(h, w, kind == "avg")
        if stages is None:  # fits already, or cannot be decomposed: left alone
            assert str(after) == str(before)
            return
        check_stages(after, h, w)
        assert count(after, is_op(nn.AvgPool2dOp | nn.MaxPool2dOp | nn.Conv2dOp)) >= 1
        event(f"decomposed {kind}")
        decomposed.append(kind)

    same()
    # derandomized: 28 average and 11 max pools are decomposed; half of that is the bound
    assert decomposed.count("avg") > 14 and decomposed.count("max") > 5


@pytest.mark.parametrize("h, w, stages", [
    (30, 30, [(15, 15), (2, 2)]), (60, 60, [(15, 15), (4, 4)]),
    (120, 120, [(15, 15), (8, 8)]),                        # PP-OCR v4 det
    (12, 96, [(1, 16), (12, 6)]), (1, 48, [(1, 16), (1, 3)]),  # PP-OCR cls
    (23, 23, [(23, 23)]), (46, 46, [(2, 2), (23, 23)]),    # a conv stage
    (16, 16, None), (37, 37, None), (17 * 19, 1, None),
])
def test_plans(h: int, w: int, stages):
    assert plan(h, w, True) == stages


def test_max_pools_take_no_conv_stage():
    assert plan(23, 23, False) is None and plan(46, 46, False) is None
    assert plan(30, 30, False) == [(15, 15), (2, 2)]
