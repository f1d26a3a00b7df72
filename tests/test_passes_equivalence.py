"""The nn passes keep the reference interpreter's outputs, on random graphs and on
hand-written cases.

Tolerances:
  * nn-canonicalize and nn-fuse-activation are exact: `np.array_equal` (folded
    constants come from the interpreter's own kernels; a fused activation runs the
    same kernel as the separate op; the interpreter computes silu / hard_swish as
    x * sigmoid(x) / x * hard_sigmoid(x) with the same kernels).
  * nn-fold-batchnorm and nn-gemm-to-conv (and the pipeline containing them) change
    the float32 rounding: new weights are rounded once, and the 1x1 convolution sums
    in another order than the matrix product. They are compared with a relative
    tolerance of 1e-5, measured against the magnitude of the output tensor
    (|after - before| <= 1e-5 * (|before| + max|before|)) so that outputs that
    cancel to almost zero do not demand an impossible relative accuracy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from strategies import Graph, graph_inputs, graphs_with_inputs, nn_graphs
from xdsl.context import Context
from xdsl.dialects import builtin
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser
from xdsl.passes import ModulePass, PassPipeline
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from rkc.dialects import nn
from rkc.interpreter import run_module
from rkc.registry import all_universe, make_context

CTX = make_context()
PASSES = all_universe().all_passes

EXACT = None
REASSOCIATION_RTOL = 1e-5  # float32 re-rounding / summation order, see module docstring

PIPELINE = "nn-canonicalize,nn-fold-batchnorm,nn-fuse-activation,nn-gemm-to-conv,cse,dce"

# ~100 graphs per property keeps the whole file well under 60 s on 2 cores; building IR
# and interpreting it can exceed hypothesis's default 200 ms deadline.
SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def parse(text: str) -> ModuleOp:
    module = Parser(CTX, text).parse_module()
    module.verify()
    return module


def apply_pipeline(module: ModuleOp, spec: str) -> ModuleOp:
    """A verified copy of `module` after the pass pipeline `spec`; `module` is untouched."""
    result = module.clone()
    PassPipeline.parse_spec(PASSES, spec).apply(CTX, result)
    result.verify()
    return result


def apply_pass(module: ModuleOp, p: ModulePass) -> ModuleOp:
    result = module.clone()
    p.apply(CTX, result)
    result.verify()
    return result


def mismatches(before: Mapping[str, np.ndarray], after: Mapping[str, np.ndarray],
               rtol: float | None) -> list[str]:
    """Why `after` differs from `before` (empty when equivalent): bit-exact when `rtol`
    is None, else within `rtol` relative to the values and the tensor's magnitude."""
    problems = []
    if list(before) != list(after):
        return [f"outputs {list(after)} instead of {list(before)}"]
    for name, b in before.items():
        a = after[name]
        if a.shape != b.shape or a.dtype != b.dtype:
            problems.append(f"{name}: {a.dtype}{list(a.shape)} instead of {b.dtype}{list(b.shape)}")
        elif rtol is None:
            if not np.array_equal(a, b, equal_nan=True):
                diff = np.abs(a.astype(np.float64) - b)
                problems.append(f"{name}: not bit-identical, max |diff| {np.nanmax(diff):.3g}")
        else:
            scale = float(np.max(np.abs(b), initial=0.0))
            ok = np.isclose(a, b, rtol=rtol, atol=rtol * scale, equal_nan=True)
            if not ok.all():
                diff = np.abs(a.astype(np.float64) - b)
                problems.append(f"{name}: {np.count_nonzero(~ok)} values beyond rtol {rtol}, "
                                f"max |diff| {np.nanmax(diff):.3g}, max |value| {scale:.3g}")
    return problems


def assert_equivalent(module: ModuleOp, transformed: ModuleOp, inputs, rtol: float | None):
    problems = mismatches(run_module(module, inputs), run_module(transformed, inputs), rtol)
    assert not problems, "\n".join(problems) + f"\nafter:\n{transformed}"


def count(module: ModuleOp, predicate: Callable[[object], bool]) -> int:
    return sum(1 for op in module.walk() if predicate(op))


def is_op(cls):
    return lambda op: isinstance(op, cls)


def n_ops(module: ModuleOp) -> int:
    return count(module, lambda op: True)


def n_fused(module: ModuleOp) -> int:
    return count(module, lambda op: isinstance(op, nn.Conv2dOp | nn.GemmOp)
                 and op.activation is not None)


def inputs_for(module: ModuleOp, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    fn = next(op for op in module.walk() if op.name == "func.func")
    return [rng.standard_normal(tuple(t.get_shape())).astype(np.float32)
            for t in fn.function_type.inputs.data]


def check(text: str, spec: str, rtol: float | None = EXACT) -> ModuleOp:
    """Parse, transform, check equivalence on random inputs, return the result."""
    module = parse(text)
    after = apply_pipeline(module, spec)
    for seed in range(3):
        assert_equivalent(module, after, inputs_for(module, seed), rtol)
    return after


# ---------------------------------------------------------------------------
# properties on random graphs
# ---------------------------------------------------------------------------
@SETTINGS
@given(nn_graphs())
def test_print_parse_print_is_identity(graph: Graph):
    text = str(graph.module)
    assert str(parse(text)) == text


# (pipeline spec, tolerance, "did it rewrite something?")
CASES = [
    ("nn-canonicalize", EXACT, lambda b, a: n_ops(a) < n_ops(b)),
    ("nn-fuse-activation", EXACT, lambda b, a: n_fused(a) > n_fused(b)
     or count(a, is_op(nn.MulOp)) < count(b, is_op(nn.MulOp))),
    ("nn-fold-batchnorm", REASSOCIATION_RTOL,
     lambda b, a: count(a, is_op(nn.BatchNormOp)) < count(b, is_op(nn.BatchNormOp))),
    ("nn-gemm-to-conv", REASSOCIATION_RTOL,
     lambda b, a: count(a, is_op(nn.GemmOp)) < count(b, is_op(nn.GemmOp))),
    (PIPELINE, REASSOCIATION_RTOL, lambda b, a: n_ops(a) < n_ops(b)),
]


@pytest.mark.parametrize("spec, rtol, rewrote", CASES, ids=[c[0].split(",")[0] if "," not in c[0]
                                                            else "pipeline" for c in CASES])
def test_pass_preserves_semantics(spec: str, rtol: float | None, rewrote):
    hits = []

    @SETTINGS
    @given(graphs_with_inputs())
    def preserves(graph_and_inputs):
        graph, inputs = graph_and_inputs
        after = apply_pipeline(graph.module, spec)
        assert_equivalent(graph.module, after, inputs, rtol)
        if rewrote(graph.module, after):
            event("rewrote")
            hits.append(1)

    preserves()
    # the property is vacuous if the pass never fires on generated graphs
    assert hits, f"{spec} did not rewrite any generated graph"


# ---------------------------------------------------------------------------
# the comparison can fail: a deliberately wrong pass is caught
# ---------------------------------------------------------------------------
class DropRelu(RewritePattern):
    """WRONG on purpose: relu(x) -> x."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.ReluOp, rewriter: PatternRewriter) -> None:
        rewriter.replace(op, [], [op.input])


class DropReluPass(ModulePass):
    name = "test-drop-relu"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        PatternRewriteWalker(DropRelu()).rewrite_module(op)


CONV_RELU = """
func.func @main(%x: tensor<1x3x6x6xf32>) -> tensor<1x4x6x6xf32> {
  %w = nn.constant dense<[[[[0.5]], [[-1.0]], [[0.25]]], [[[1.0]], [[1.0]], [[1.0]]],
                          [[[-0.5]], [[0.5]], [[2.0]]], [[[0.0]], [[-1.0]], [[1.0]]]]>
       : tensor<4x3x1x1xf32>
  %c = nn.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>,
                         dilations = array<i64: 1, 1>, group = 1 : i64}
       : (tensor<1x3x6x6xf32>, tensor<4x3x1x1xf32>) -> tensor<1x4x6x6xf32>
  %r = nn.relu %c : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
  func.return %r : tensor<1x4x6x6xf32>
}
"""


def test_wrong_pass_is_reported():
    module = parse(CONV_RELU)
    bad = apply_pass(module, DropReluPass())
    assert count(bad, is_op(nn.ReluOp)) == 0
    before, after = run_module(module, inputs_for(module)), run_module(bad, inputs_for(module))
    assert mismatches(before, after, EXACT)
    assert mismatches(before, after, REASSOCIATION_RTOL)
    with pytest.raises(AssertionError):
        assert_equivalent(module, bad, inputs_for(module), REASSOCIATION_RTOL)


def test_wrong_pass_is_found_by_the_property():
    @settings(max_examples=200, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(graphs_with_inputs())
    def preserves(graph_and_inputs):
        graph, inputs = graph_and_inputs
        assert_equivalent(graph.module, apply_pass(graph.module, DropReluPass()), inputs, EXACT)

    with pytest.raises(AssertionError, match="not bit-identical"):
        preserves()


def test_small_differences_pass_the_tolerance_but_not_exactness():
    b = {"y": np.array([1.0, -2.0, 1e-9], np.float32)}
    a = {"y": np.array([1.0 + 4e-6, -2.0, 2e-9], np.float32)}
    assert mismatches(b, a, EXACT)
    assert not mismatches(b, a, REASSOCIATION_RTOL)
    assert mismatches(b, {"y": np.array([1.001, -2.0, 0.0], np.float32)}, REASSOCIATION_RTOL)


# ---------------------------------------------------------------------------
# nn-canonicalize
# ---------------------------------------------------------------------------
T = "tensor<1x4x3x3xf32>"
CONV_ATTRS = ("strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, "
              "dilations = array<i64: 1, 1>, group = 1 : i64")
CONV_WEIGHTS = """%w = nn.constant dense<[[[[0.5, -1.0, 0.25], [1.0, 0.0, -0.5],
                             [0.75, 0.5, -0.25]],
                           [[1.0, 1.0, 1.0], [-1.0, 0.5, 0.0], [0.0, 0.25, -1.0]]]]>
       : tensor<1x2x3x3xf32>
  %w4 = nn.concat %w, %w, %w, %w {axis = 0 : i64}
       : (tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>)
       -> tensor<4x2x3x3xf32>"""
"""The [4, 2, 3, 3] conv weight %w4 the hand-written conv modules below share."""


def test_canonicalize_folds_constants():
    after = check("""
func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %a = nn.constant dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]> : tensor<6xf32>
  %r = nn.reshape %a {shape = array<i64: 2, 3>} : (tensor<6xf32>) -> tensor<2x3xf32>
  %b = nn.constant dense<0.5> : tensor<2x3xf32>
  %s = nn.sub %r, %b {rkc.name = "s"} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %e = nn.sigmoid %s : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %y = nn.mul %x, %e : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return %y : tensor<2x3xf32>
}""", "nn-canonicalize")
    assert [op.name for op in after.walk()][2:] == ["nn.constant", "nn.mul", "func.return"]


def test_canonicalize_respects_the_fold_size_limit():
    text = """
func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %a = nn.constant dense<1.0> : tensor<2x3xf32>
  %b = nn.relu %a : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %y = nn.add %x, %b : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return %y : tensor<2x3xf32>
}"""
    assert count(check(text, "nn-canonicalize{max-fold-elements=5}"), is_op(nn.ReluOp)) == 1
    assert count(check(text, "nn-canonicalize"), is_op(nn.ReluOp)) == 0


def test_canonicalize_removes_identities():
    after = check(f"""
func.func @main(%x: {T}) -> {T} {{
  %a = nn.reshape %x {{shape = array<i64: 1, 4, 3, 3>}} : ({T}) -> {T}
  %b = nn.transpose %a {{perm = array<i64: 0, 1, 2, 3>}} : ({T}) -> {T}
  %c = nn.slice %b {{starts = array<i64: 0, 0, 0, 0>, ends = array<i64: 1, 4, 3, 3>,
                     steps = array<i64: 1, 1, 1, 1>}} : ({T}) -> {T}
  %d = nn.pad %c {{pads = array<i64: 0, 0, 0, 0, 0, 0, 0, 0>, mode = "constant",
                   value = 0.0 : f32}} : ({T}) -> {T}
  %e = nn.cast %d {{to = f32}} : ({T}) -> {T}
  %f = nn.resize %e {{sizes = array<i64: 1, 4, 3, 3>, scales = array<f32: 1.0, 1.0, 1.0, 1.0>,
                      mode = "linear", coordinate_transformation_mode = "half_pixel",
                      nearest_mode = "floor"}} : ({T}) -> {T}
  %g = nn.concat %f {{axis = 1 : i64}} : ({T}) -> {T}
  %h = nn.split %g {{axis = 1 : i64, sizes = array<i64: 4>}} : ({T}) -> {T}
  func.return %h : {T}
}}""", "nn-canonicalize")
    assert [op.name for op in after.walk()][2:] == ["func.return"]


def test_canonicalize_keeps_a_resize_that_shifts_coordinates():
    after = check(f"""
func.func @main(%x: {T}) -> {T} {{
  %f = nn.resize %x {{sizes = array<i64: 1, 4, 3, 3>, scales = array<f32: 1.0, 1.0, 1.0, 1.0>,
                      mode = "nearest",
                      coordinate_transformation_mode = "tf_half_pixel_for_nearest",
                      nearest_mode = "round_prefer_ceil"}} : ({T}) -> {T}
  func.return %f : {T}
}}""", "nn-canonicalize")
    assert count(after, is_op(nn.ResizeOp)) == 1


def test_canonicalize_neutral_operands():
    after = check("""
func.func @main(%x: tensor<1x4x1x1xf32>) -> (tensor<1x4x1x1xf32>, tensor<1x4x2x2xf32>,
                                             tensor<1x4x1x1xf32>) {
  %one = nn.constant dense<1.0> : tensor<4x1x1xf32>
  %zero = nn.constant dense<0.0> : tensor<1xf32>
  %wide = nn.constant dense<1.0> : tensor<1x1x2x2xf32>
  %a = nn.mul %one, %x : (tensor<4x1x1xf32>, tensor<1x4x1x1xf32>) -> tensor<1x4x1x1xf32>
  %b = nn.add %a, %zero : (tensor<1x4x1x1xf32>, tensor<1xf32>) -> tensor<1x4x1x1xf32>
  %c = nn.sub %b, %zero : (tensor<1x4x1x1xf32>, tensor<1xf32>) -> tensor<1x4x1x1xf32>
  %d = nn.div %c, %one : (tensor<1x4x1x1xf32>, tensor<4x1x1xf32>) -> tensor<1x4x1x1xf32>
  %e = nn.mul %d, %wide : (tensor<1x4x1x1xf32>, tensor<1x1x2x2xf32>) -> tensor<1x4x2x2xf32>
  %f = nn.sub %zero, %d : (tensor<1xf32>, tensor<1x4x1x1xf32>) -> tensor<1x4x1x1xf32>
  func.return %d, %e, %f : tensor<1x4x1x1xf32>, tensor<1x4x2x2xf32>, tensor<1x4x1x1xf32>
}""", "nn-canonicalize")
    names = [op.name for op in after.walk()]
    assert names.count("nn.mul") == 1 and names.count("nn.sub") == 1  # broadcast, 0 - x
    assert "nn.add" not in names and "nn.div" not in names
    ret = list(after.walk())[-1]
    assert ret.operands[0] is after.body.block.ops.first.body.block.args[0]


def test_canonicalize_reshape_chain_and_transpose_pairs():
    after = check("""
func.func @main(%x: tensor<2x3x4xf32>) -> (tensor<24xf32>, tensor<2x3x4xf32>, tensor<3x4x2xf32>) {
  %a = nn.reshape %x {shape = array<i64: 6, 4>} : (tensor<2x3x4xf32>) -> tensor<6x4xf32>
  %b = nn.reshape %a {shape = array<i64: 24>, rkc.name = "flat"}
       : (tensor<6x4xf32>) -> tensor<24xf32>
  %t = nn.transpose %x {perm = array<i64: 1, 0, 2>} : (tensor<2x3x4xf32>) -> tensor<3x2x4xf32>
  %u = nn.transpose %t {perm = array<i64: 1, 0, 2>} : (tensor<3x2x4xf32>) -> tensor<2x3x4xf32>
  %v = nn.transpose %t {perm = array<i64: 0, 2, 1>} : (tensor<3x2x4xf32>) -> tensor<3x4x2xf32>
  func.return %b, %u, %v : tensor<24xf32>, tensor<2x3x4xf32>, tensor<3x4x2xf32>
}""", "nn-canonicalize")
    ops = [op for op in after.walk() if isinstance(op, nn.NNOp)]
    assert [op.name for op in ops] == ["nn.reshape", "nn.transpose"]
    assert ops[0].attributes[nn.NAME_ATTR].data == "flat"
    assert nn.ints(ops[1].properties, "perm") == (1, 2, 0)


# ---------------------------------------------------------------------------
# nn-fold-batchnorm
# ---------------------------------------------------------------------------
BN_PARAMS = """
  %s = nn.constant dense<[1.0, 2.0, 0.5, 1.5]> : tensor<4xf32>
  %t = nn.constant dense<[0.1, 0.2, 0.3, 0.4]> : tensor<4xf32>
  %m = nn.constant dense<[0.0, 1.0, -1.0, 0.5]> : tensor<4xf32>
  %v = nn.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
"""


def _conv_bn(extra_use: bool = False, activation: str = "", bias: bool = True) -> str:
    act = ', activation = "relu", activation_params = array<f32>' if activation else ""
    b = ", %b" if bias else ""
    bt = ", tensor<4xf32>" if bias else ""
    ret = "%y, %c" if extra_use else "%y"
    rt = f"{T}, {T}" if extra_use else T
    return f"""
func.func @main(%x: tensor<1x2x5x5xf32>) -> ({rt}) {{
  {CONV_WEIGHTS}
  %b = nn.constant dense<[1.0, -1.0, 0.5, 0.0]> : tensor<4xf32>
  {BN_PARAMS}
  %c = nn.conv2d %x, %w4{b} {{rkc.name = "conv", {CONV_ATTRS}{act}}}
       : (tensor<1x2x5x5xf32>, tensor<4x2x3x3xf32>{bt}) -> {T}
  %y = nn.batch_norm %c, %s, %t, %m, %v {{epsilon = 1.0e-05 : f32, rkc.name = "bn"}}
       : ({T}, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> {T}
  func.return {ret} : {rt}
}}"""


@pytest.mark.parametrize("bias", [True, False])
def test_fold_batchnorm_into_conv(bias: bool):
    after = check(_conv_bn(bias=bias), "nn-canonicalize,nn-fold-batchnorm", REASSOCIATION_RTOL)
    assert count(after, is_op(nn.BatchNormOp)) == 0
    (conv,) = [op for op in after.walk() if isinstance(op, nn.Conv2dOp)]
    assert conv.bias is not None and conv.attributes[nn.NAME_ATTR].data == "conv"
    assert count(after, is_op(nn.ConstantOp)) == 2  # old weights are gone


@pytest.mark.parametrize("kwargs", [{"extra_use": True}, {"activation": "relu"}])
def test_fold_batchnorm_needs_a_single_use_conv_without_activation(kwargs):
    after = check(_conv_bn(**kwargs), "nn-fold-batchnorm", REASSOCIATION_RTOL)
    assert count(after, is_op(nn.BatchNormOp)) == 1


def test_fold_batchnorm_needs_constant_weights_and_leaves_other_batch_norms():
    after = check(f"""
func.func @main(%x: tensor<1x2x5x5xf32>, %w: tensor<4x2x3x3xf32>) -> ({T}, {T}) {{
  {BN_PARAMS}
  %c = nn.conv2d %x, %w {{{CONV_ATTRS}}} : (tensor<1x2x5x5xf32>, tensor<4x2x3x3xf32>) -> {T}
  %y = nn.batch_norm %c, %s, %t, %m, %v {{epsilon = 1.0e-05 : f32}}
       : ({T}, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> {T}
  %r = nn.relu %y : ({T}) -> {T}
  %z = nn.batch_norm %r, %s, %t, %m, %v {{epsilon = 1.0e-05 : f32}}
       : ({T}, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> {T}
  func.return %y, %z : {T}, {T}
}}""", "nn-fold-batchnorm", REASSOCIATION_RTOL)
    assert count(after, is_op(nn.BatchNormOp)) == 2


@pytest.mark.parametrize("trans_b, c", [(False, ""), (True, "[[1.0], [-2.0], [0.5]]:3x1"),
                                        (False, "[1.0, 2.0, 3.0, 4.0]:4"), (True, "2.0:")])
def test_fold_batchnorm_into_gemm(trans_b: bool, c: str):
    b_type = "tensor<4x5xf32>" if trans_b else "tensor<5x4xf32>"
    c_def = c_use = c_type = ""
    if c:
        value, shape = c.split(":")
        c_type = f", tensor<{shape + 'x' if shape else ''}f32>"
        c_def = f"%cc = nn.constant dense<{value}> : {c_type[2:]}"
        c_use = ", %cc"
    after = check(f"""
func.func @main(%a: tensor<3x5xf32>) -> tensor<3x4xf32> {{
  %b = nn.constant dense<[[0.5, -1.0, 0.25, 2.0, 1.0], [1.0, 0.0, -0.5, 0.5, 0.25],
                          [0.75, 0.5, -0.25, -1.0, 0.0], [0.1, 0.2, 0.3, 0.4, 0.5]]>
       : tensor<4x5xf32>
  %bt = nn.transpose %b {{perm = array<i64: {'0, 1' if trans_b else '1, 0'}>}}
        : (tensor<4x5xf32>) -> {b_type}
  {c_def}
  {BN_PARAMS}
  %g = nn.gemm %a, %bt{c_use} {{alpha = 2.0 : f32, beta = 0.5 : f32, trans_a = false,
                               trans_b = {str(trans_b).lower()}, rkc.name = "fc"}}
       : (tensor<3x5xf32>, {b_type}{c_type}) -> tensor<3x4xf32>
  %y = nn.batch_norm %g, %s, %t, %m, %v {{epsilon = 1.0e-03 : f32}}
       : (tensor<3x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
       -> tensor<3x4xf32>
  func.return %y : tensor<3x4xf32>
}}""", "nn-canonicalize,nn-fold-batchnorm", REASSOCIATION_RTOL)
    assert count(after, is_op(nn.BatchNormOp)) == 0
    (gemm,) = [op for op in after.walk() if isinstance(op, nn.GemmOp)]
    assert gemm.c is not None and gemm.attributes[nn.NAME_ATTR].data == "fc"


# ---------------------------------------------------------------------------
# nn-fuse-activation
# ---------------------------------------------------------------------------
def _conv_then(body: str, results: str = "%y", types: str = T) -> str:
    return f"""
func.func @main(%x: tensor<1x2x5x5xf32>) -> ({types}) {{
  {CONV_WEIGHTS}
  %c = nn.conv2d %x, %w4 {{rkc.name = "conv", {CONV_ATTRS}}}
       : (tensor<1x2x5x5xf32>, tensor<4x2x3x3xf32>) -> {T}
  {body}
  func.return {results} : {types}
}}"""


@pytest.mark.parametrize("act, expected, params", [
    ("nn.relu %c", "relu", ()),
    ("nn.clip %c {min = 0.0 : f32, max = 6.0 : f32}", "clip", (0.0, 6.0)),
    ("nn.leaky_relu %c {alpha = 0.125 : f32}", "leaky_relu", (0.125,)),
    ("nn.sigmoid %c", "sigmoid", ()),
    ("nn.tanh %c", "tanh", ()),
    ("nn.silu %c", "silu", ()),
    ("nn.hard_swish %c", "hard_swish", ()),
])
def test_fuse_activation_into_conv(act: str, expected: str, params):
    after = check(_conv_then(f"%y = {act} : ({T}) -> {T}"), "nn-fuse-activation")
    ops = [op for op in after.walk() if isinstance(op, nn.NNOp)]
    assert [op.name for op in ops] == ["nn.concat", "nn.conv2d"]
    conv = ops[1]
    assert conv.activation.data == expected
    assert tuple(conv.activation_params.get_values()) == params
    assert conv.attributes[nn.NAME_ATTR].data == "conv"


@pytest.mark.parametrize("body", [
    f"%y = nn.mul %c, %g : ({T}, {T}) -> {T}",
    f"%y = nn.mul %g, %c : ({T}, {T}) -> {T}",
])
@pytest.mark.parametrize("gate, fused", [
    (f"nn.sigmoid %c : ({T}) -> {T}", "silu"),
    (f"nn.hard_sigmoid %c {{alpha = 0.166666672 : f32, beta = 0.5 : f32}} : ({T}) -> {T}",
     "hard_swish"),
])
def test_fuse_activation_recognises_swish(body: str, gate: str, fused: str):
    after = check(_conv_then(f"%g = {gate}\n  {body}"), "nn-fuse-activation")
    (conv,) = [op for op in after.walk() if isinstance(op, nn.Conv2dOp)]
    assert conv.activation.data == fused
    assert count(after, is_op(nn.MulOp)) == 0


def test_fuse_activation_leaves_other_gates_and_shared_values():
    after = check(_conv_then(f"""
  %g = nn.hard_sigmoid %c {{alpha = 0.2 : f32, beta = 0.5 : f32}} : ({T}) -> {T}
  %h = nn.mul %c, %g : ({T}, {T}) -> {T}
  %s = nn.sigmoid %h : ({T}) -> {T}
  %y = nn.mul %h, %s : ({T}, {T}) -> {T}
  %r = nn.relu %h : ({T}) -> {T}""", "%y, %s, %r", f"{T}, {T}, {T}"), "nn-fuse-activation")
    # hard_sigmoid with alpha 0.2 is no hard-swish gate; the sigmoid has two uses; the conv
    # feeds two ops: nothing to do
    assert n_fused(after) == 0 and count(after, is_op(nn.MulOp)) == 2


def test_fuse_activation_needs_a_single_use_and_no_activation_yet():
    after = check(_conv_then(f"""
  %r = nn.relu %c : ({T}) -> {T}
  %w2 = nn.constant dense<0.5> : tensor<4x4x1x1xf32>
  %d = nn.conv2d %r, %w2 {{{CONV_ATTRS}, activation = "relu", activation_params = array<f32>}}
       : ({T}, tensor<4x4x1x1xf32>) -> {T}
  %y = nn.sigmoid %d : ({T}) -> {T}""", "%y, %c", f"{T}, {T}"), "nn-fuse-activation")
    assert count(after, is_op(nn.ReluOp)) == 1 and count(after, is_op(nn.SigmoidOp)) == 1


def test_fuse_activation_into_gemm():
    after = check("""
func.func @main(%a: tensor<3x5xf32>) -> tensor<3x4xf32> {
  %b = nn.constant dense<0.25> : tensor<5x4xf32>
  %g = nn.gemm %a, %b {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = false, trans_b = false}
       : (tensor<3x5xf32>, tensor<5x4xf32>) -> tensor<3x4xf32>
  %y = nn.leaky_relu %g {alpha = 0.1 : f32} : (tensor<3x4xf32>) -> tensor<3x4xf32>
  func.return %y : tensor<3x4xf32>
}""", "nn-fuse-activation")
    (gemm,) = [op for op in after.walk() if isinstance(op, nn.GemmOp)]
    assert gemm.activation.data == "leaky_relu"
    assert count(after, is_op(nn.LeakyReluOp)) == 0


# ---------------------------------------------------------------------------
# nn-gemm-to-conv
# ---------------------------------------------------------------------------
def _gemm(c: str = "", c_type: str = "", trans_a: bool = False, b: str = "const",
          extra: str = "") -> str:
    a_type = "tensor<5x3xf32>" if trans_a else "tensor<3x5xf32>"
    b_arg = ", %bv: tensor<5x4xf32>" if b == "arg" else ""
    b_def = ("" if b == "arg" else
             "%bv = nn.constant dense<[[0.5, -1.0, 0.25, 2.0], [1.0, 0.0, -0.5, 0.5], "
             "[0.75, 0.5, -0.25, -1.0], [0.1, 0.2, 0.3, 0.4], [1.0, 1.0, -1.0, 0.0]]> "
             ": tensor<5x4xf32>")
    c_def = f"%cc = nn.constant {c} : {c_type}" if c else ""
    return f"""
func.func @main(%a: {a_type}{b_arg}) -> tensor<3x4xf32> {{
  {b_def}
  {c_def}
  %g = nn.gemm %a, %bv{', %cc' if c else ''} {{alpha = 0.5 : f32, beta = 2.0 : f32,
       trans_a = {str(trans_a).lower()}, trans_b = false, rkc.name = "fc"{extra}}}
       : ({a_type}, tensor<5x4xf32>{', ' + c_type if c else ''}) -> tensor<3x4xf32>
  func.return %g : tensor<3x4xf32>
}}"""


@pytest.mark.parametrize("c, c_type", [
    ("", ""), ("dense<[1.0, 2.0, 3.0, 4.0]>", "tensor<4xf32>"),
    ("dense<[[1.0, 2.0, 3.0, 4.0]]>", "tensor<1x4xf32>"), ("dense<1.5>", "tensor<f32>"),
    ("dense<[[1.5]]>", "tensor<1x1xf32>"),
])
@pytest.mark.parametrize("trans_a", [False, True])
def test_gemm_to_conv(c: str, c_type: str, trans_a: bool):
    after = check(_gemm(c, c_type, trans_a, extra=', activation = "clip", '
                        'activation_params = array<f32: -1.0, 1.0>'),
                  "nn-gemm-to-conv", REASSOCIATION_RTOL)
    assert count(after, is_op(nn.GemmOp)) == 0
    (conv,) = [op for op in after.walk() if isinstance(op, nn.Conv2dOp)]
    assert conv.activation.data == "clip"
    assert tuple(conv.activation_params.get_values()) == (-1.0, 1.0)
    assert conv.attributes[nn.NAME_ATTR].data == "fc"
    assert (conv.bias is not None) == bool(c)
    assert count(after, is_op(nn.TransposeOp)) == int(trans_a)


@pytest.mark.parametrize("c, c_type, b", [
    ("dense<[[1.0], [2.0], [3.0]]>", "tensor<3x1xf32>", "const"),   # varies along rows
    ("dense<0.5>", "tensor<3x4xf32>", "const"),
    ("", "", "arg"),                                                # B is not constant
])
def test_gemm_to_conv_skips(c: str, c_type: str, b: str):
    after = check(_gemm(c, c_type, b=b), "nn-gemm-to-conv", EXACT)
    assert count(after, is_op(nn.GemmOp)) == 1


def test_graph_inputs_match_the_graph():
    @SETTINGS
    @given(nn_graphs().flatmap(lambda g: graph_inputs(g).map(lambda xs: (g, xs))))
    def matching(graph_and_inputs):
        graph, inputs = graph_and_inputs
        assert [x.shape for x in inputs] == [tuple(s) for s in graph.input_shapes]
        assert all(x.dtype == np.float32 for x in inputs)

    matching()
