"""`nn-match-activations`: written-out hard-sigmoid / hard-swish / SiLU become one op, and
the module computes what it computed before within float32 re-rounding.

Tolerance: relative 1e-5 of each output tensor's magnitude (`mismatches` of
test_passes_equivalence): the matched op rounds differently from the written-out ops
(x * f + b * f instead of (x + b) * f, see the pass's docstring), a few float32 roundings
of the activation, which the ops downstream (<= 8) may amplify by their gains (~1).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from strategies import Graph, GraphBuilder, _input_shape, build_random_module, graph_inputs
from test_passes_equivalence import (
    REASSOCIATION_RTOL,
    apply_pipeline,
    check,
    count,
    is_op,
    mismatches,
)

from rkc.dialects import nn
from rkc.interpreter import run_module

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

GATES = [(3.0, 6.0), (0.5, 1.0), (1.0, 2.0)]
"""(b, c) of clip(x + b, 0, c): hard-swish's, and two whose clip bounds standard-normal
values actually reach."""


class WrittenActivationBuilder(GraphBuilder):
    """GraphBuilder plus activations written out as add / clip / mul / div, the matched
    forms and near misses (c * f != 1, an intermediate with a second use)."""

    KINDS = GraphBuilder.KINDS + ("written",) * 4

    def scale(self, v, f_of_c: float, c: float):
        """v * f or v / (1 / f), f = f_of_c / c, constant on either side of a mul."""
        how = self.draw(st.sampled_from(["div", "mul", "mul_left"]))
        if how == "div":
            d = nn.ConstantOp(np.array(c / f_of_c, np.float32)).output
            return nn.DivOp(v, d).output
        f = nn.ConstantOp(np.array(f_of_c / c, np.float32)).output
        return (nn.MulOp(v, f) if how == "mul" else nn.MulOp(f, v)).output

    def add_written(self) -> bool:
        x = self.pick()
        if x is None:
            return False
        draw = self.draw
        b, c = draw(st.sampled_from(GATES))
        f_of_c = draw(st.sampled_from([1.0, 1.0, 1.0, 0.5]))  # 0.5: not a hard sigmoid
        bias = nn.ConstantOp(np.array(b, np.float32)).output
        shifted = (nn.AddOp(x, bias) if draw(st.booleans()) else nn.AddOp(bias, x)).output
        if draw(st.integers(0, 5)) == 0:  # a second use of the add: no match
            self.push(shifted)
        gate = nn.ClipOp(shifted, 0.0, c).output
        form = draw(st.sampled_from(["gate", "scaled_gate_times_x", "scaled_product"]))
        if form == "gate":
            y = self.scale(gate, f_of_c, c)
        elif form == "scaled_gate_times_x":
            g = self.scale(gate, f_of_c, c)
            y = (nn.MulOp(x, g) if draw(st.booleans()) else nn.MulOp(g, x)).output
        else:
            product = (nn.MulOp(x, gate) if draw(st.booleans()) else nn.MulOp(gate, x)).output
            y = self.scale(product, f_of_c, c)
        self.push(y)
        return True


@st.composite
def written_graphs(draw) -> tuple[Graph, list[np.ndarray]]:
    shapes = [_input_shape(draw)]
    module = build_random_module(draw, shapes, WrittenActivationBuilder, 8)
    module.verify()
    graph = Graph(module, shapes)
    return graph, draw(graph_inputs(graph))


def n_matched(module) -> int:
    return count(module, is_op(nn.HardSwishOp | nn.HardSigmoidOp | nn.SiluOp))


def test_matched_activations_compute_the_same():
    matched = []

    @SETTINGS
    @given(written_graphs())
    def same(graph_and_inputs):
        graph, inputs = graph_and_inputs
        after = apply_pipeline(graph.module, "nn-match-activations")
        problems = mismatches(run_module(graph.module, inputs), run_module(after, inputs),
                              REASSOCIATION_RTOL)
        assert not problems, "\n".join(problems) + f"\nafter:\n{after}"
        live = apply_pipeline(graph.module, "dce")  # the pass also erases dead ops
        gained = n_matched(after) - n_matched(live)
        assert gained >= 0
        if gained:
            event("matched")
            matched.append(gained)
        if count(after, is_op(nn.HardSwishOp)) > count(live, is_op(nn.HardSwishOp)):
            event("hard_swish")

    same()
    # derandomized: 91 activations are matched; half of that is the bound
    assert sum(matched) > 45, "the property is vacuous: few activations were matched"


# ---------------------------------------------------------------------------
# hand-written cases
# ---------------------------------------------------------------------------
T = "tensor<1x2x3x3xf32>"


def _module(body: str, result: str = "%y") -> str:
    return f"""
func.func @main(%x: {T}) -> {T} {{
  %three = nn.constant dense<3.0> : tensor<f32>
  %six = nn.constant dense<6.0> : tensor<f32>
  %sixth = nn.constant dense<0.16666667> : tensor<1xf32>
  {body}
  func.return {result} : {T}
}}"""


HARD_SWISH_FORMS = {
    # paddle2onnx (PP-OCR det / cls): x * clip(x + 3, 0, 6) / 6
    "product_div": f"""
  %a = nn.add %x, %three : ({T}, tensor<f32>) -> {T}
  %c = nn.clip %a {{min = 0.0 : f32, max = 6.0 : f32}} : ({T}) -> {T}
  %m = nn.mul %x, %c : ({T}, {T}) -> {T}
  %y = nn.div %m, %six {{rkc.name = "hswish"}} : ({T}, tensor<f32>) -> {T}""",
    # x * relu6(x + 3) * (1/6)
    "product_mul": f"""
  %a = nn.add %three, %x : (tensor<f32>, {T}) -> {T}
  %c = nn.clip %a {{min = 0.0 : f32, max = 6.0 : f32}} : ({T}) -> {T}
  %m = nn.mul %c, %x : ({T}, {T}) -> {T}
  %y = nn.mul %sixth, %m {{rkc.name = "hswish"}} : (tensor<1xf32>, {T}) -> {T}""",
    # x * (relu6(x + 3) / 6)
    "gate_div": f"""
  %a = nn.add %x, %three : ({T}, tensor<f32>) -> {T}
  %c = nn.clip %a {{min = 0.0 : f32, max = 6.0 : f32}} : ({T}) -> {T}
  %g = nn.div %c, %six : ({T}, tensor<f32>) -> {T}
  %y = nn.mul %x, %g {{rkc.name = "hswish"}} : ({T}, {T}) -> {T}""",
}


@pytest.mark.parametrize("form", list(HARD_SWISH_FORMS))
def test_written_hard_swish_becomes_one_op(form: str):
    after = check(_module(HARD_SWISH_FORMS[form]), "nn-match-activations,dce",
                  REASSOCIATION_RTOL)
    ops = [op for op in after.walk() if isinstance(op, nn.NNOp)]
    assert [op.name for op in ops] == ["nn.hard_swish"]
    assert nn.node_name(ops[0]) == "hswish"


def test_written_hard_sigmoid_becomes_one_op():
    after = check(_module(f"""
  %a = nn.add %x, %three : ({T}, tensor<f32>) -> {T}
  %c = nn.clip %a {{min = 0.0 : f32, max = 6.0 : f32}} : ({T}) -> {T}
  %y = nn.div %c, %six {{rkc.name = "gate"}} : ({T}, tensor<f32>) -> {T}"""),
                  "nn-match-activations,dce", REASSOCIATION_RTOL)
    (op,) = [op for op in after.walk() if isinstance(op, nn.NNOp)]
    assert isinstance(op, nn.HardSigmoidOp) and nn.node_name(op) == "gate"
    assert np.float32(nn.float_of(op.properties, "alpha")) == np.float32(1 / 6)
    assert nn.float_of(op.properties, "beta") == 0.5


def test_interpreter_outputs_differ_by_float_rounding_only():
    """On values around the clip bounds (-3, 3) the matched op and the written-out form
    agree within a few float32 steps of the activation (4 ulp of max |y| here)."""
    module_text = _module(HARD_SWISH_FORMS["product_div"])
    from test_passes_equivalence import parse

    before = parse(module_text)
    after = apply_pipeline(before, "nn-match-activations")
    x = np.linspace(-4.0, 4.0, 18, dtype=np.float32).reshape(1, 2, 3, 3)
    y0 = run_module(before, [x])["output0"]
    y1 = run_module(after, [x])["output0"]
    assert np.max(np.abs(y0 - y1)) <= 4 * np.spacing(np.float32(np.abs(y0).max()))


@pytest.mark.parametrize("why, body", [
    ("the add has a second use", f"""
  %a = nn.add %x, %three : ({T}, tensor<f32>) -> {T}
  %c = nn.clip %a {{min = 0.0 : f32, max = 6.0 : f32}} : ({T}) -> {T}
  %m = nn.mul %x, %c : ({T}, {T}) -> {T}
  %d = nn.div %m, %six : ({T}, tensor<f32>) -> {T}
  %y = nn.add %d, %a : ({T}, {T}) -> {T}"""),
    ("the divisor is not the clip's upper bound", f"""
  %a = nn.add %x, %three : ({T}, tensor<f32>) -> {T}
  %c = nn.clip %a {{min = 0.0 : f32, max = 6.0 : f32}} : ({T}) -> {T}
  %m = nn.mul %x, %c : ({T}, {T}) -> {T}
  %y = nn.div %m, %three : ({T}, tensor<f32>) -> {T}"""),
    ("the clip's lower bound is not 0", f"""
  %a = nn.add %x, %three : ({T}, tensor<f32>) -> {T}
  %c = nn.clip %a {{min = -1.0 : f32, max = 6.0 : f32}} : ({T}) -> {T}
  %m = nn.mul %x, %c : ({T}, {T}) -> {T}
  %y = nn.div %m, %six : ({T}, tensor<f32>) -> {T}"""),
    ("the gate is applied to another value", f"""
  %n = nn.neg %x : ({T}) -> {T}
  %a = nn.add %n, %three : ({T}, tensor<f32>) -> {T}
  %c = nn.clip %a {{min = 0.0 : f32, max = 6.0 : f32}} : ({T}) -> {T}
  %m = nn.mul %x, %c : ({T}, {T}) -> {T}
  %y = nn.div %m, %six : ({T}, tensor<f32>) -> {T}"""),
])
def test_near_misses_are_left_alone(why: str, body: str):
    before = _module(body)
    after = check(before, "nn-match-activations", None)  # untouched: bit-identical
    assert n_matched(after) == 0, why
