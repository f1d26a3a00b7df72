"""rknpu-fuse: a conv with its DPU post ops computes exactly what the unfused tasks (and
the quantized `nn` module) compute, on random conv chains in int8 and fp16, on every
target, whether it runs before or after rknpu-layout; the DPU stage order limits what
fuses; bad post ops are rejected by the verifier."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from strategies import Graph
from test_quantize_pass import prepare, quantized
from xdsl.builder import ImplicitBuilder
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, ModuleOp, TensorType, f16, f32
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.utils.exceptions import VerifyException

from rkc.dialects import nn, quant, rknpu
from rkc.dialects.quant import UniformQuantizedType, quantized_element
from rkc.graph import main_function
from rkc.interpreter import run_module
from rkc.passes.rknpu_fuse import STAGE_UNITS, UNITS, fuse_block, one_pass, stage_forms
from rkc.quant.pipeline import run_passes

FUSED = {  # rknpu-fuse after the layout (rk3588) and before it (rk3568)
    "rk3588": "rknpu-legalize{target=rk3588},nn-to-rknpu,rknpu-layout{target=rk3588},"
              "rknpu-fuse",
    "rk3568": "rknpu-legalize{target=rk3568},nn-to-rknpu,rknpu-fuse,"
              "rknpu-layout{target=rk3568}"}
UNARY = ("relu", "clip", "leaky_relu", "prelu", "sigmoid", "tanh", "hard_swish", "abs",
         "neg")
BINARY = {"add": nn.AddOp, "sub": nn.SubOp, "mul": nn.MulOp, "max": nn.MaxOp,
          "min": nn.MinOp}


@st.composite
def conv_chains(draw, dtype: str = "fp16") -> Graph:
    """x -> conv -> 1..4 elementwise ops, each a unary activation or a binary op with the
    second input r (per pixel), a per-channel or a scalar constant, in either order
    (and r - y, which no canonicalization folds into the conv);
    sometimes an intermediate value is also returned (a second use stops fusion). No
    prelu for int8 (nn-quantize keeps it float, which cuts the chain)."""
    unary = UNARY if dtype == "fp16" else tuple(k for k in UNARY if k != "prelu")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    c, o = draw(st.integers(1, 8)), draw(st.integers(1, 12))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    k = draw(st.sampled_from([1, 3]))
    shapes = [(1, c, h, w), (1, o, h, w)]
    module = ModuleOp([])
    with ImplicitBuilder(module.body):
        fn = func.FuncOp("main", ([TensorType(f32, s) for s in shapes], []))
        with ImplicitBuilder(fn.body) as (x, r):
            weight = nn.ConstantOp((rng.standard_normal((o, c, k, k)) / np.sqrt(c * k * k))
                                   .astype(np.float32)).output
            bias = (nn.ConstantOp(rng.standard_normal(o).astype(np.float32)).output
                    if draw(st.booleans()) else None)
            y = nn.Conv2dOp(x, weight, bias, pads=[k // 2] * 4, name="conv").output
            results = []
            for i in range(draw(st.integers(1, 4))):
                kind = draw(st.sampled_from(unary + tuple(BINARY) + ("rsub",)))
                if kind == "rsub":  # r - y: the second tensor on the left
                    y = nn.SubOp(r, y, name=f"rsub{i}").output
                elif kind in BINARY:
                    form = draw(st.sampled_from(["pixel", "channel", "scalar"]))
                    other = r if form == "pixel" else nn.ConstantOp(rng.uniform(
                        0.5, 1.5, (1, o, 1, 1) if form == "channel" else (1,))
                        .astype(np.float32)).output
                    lhs, rhs = (y, other) if draw(st.booleans()) else (other, y)
                    y = BINARY[kind](lhs, rhs, name=f"{kind}{i}").output
                elif kind == "prelu":
                    slope = nn.ConstantOp(rng.uniform(0, 0.5, (o, 1, 1)).astype(np.float32))
                    y = nn.PReluOp(y, slope.output, name=f"prelu{i}").output
                else:
                    y = {"relu": lambda v: nn.ReluOp(v), "clip": lambda v: nn.ClipOp(v, -1, 2),
                         "leaky_relu": lambda v: nn.LeakyReluOp(v, 0.1),
                         "sigmoid": nn.SigmoidOp, "tanh": nn.TanhOp,
                         "hard_swish": nn.HardSwishOp, "abs": nn.AbsOp,
                         "neg": nn.NegOp}[kind](y).output
                if draw(st.integers(0, 5)) == 0:
                    results.append(y)
            func.ReturnOp(*dict.fromkeys([*results, y]))
    fn.update_function_type()
    module.verify()
    return Graph(module, shapes)


def _requantize_somewhere(module: ModuleOp, rng: np.random.Generator) -> None:
    """Insert a quant.requantize (scale x 0.5..2, another zero point) after some int8
    elementwise results: the rescale stage the quantizer rarely needs."""
    for op in list(main_function(module).body.block.ops):
        if not isinstance(op, nn.NNOp) or isinstance(op, nn.ConstantOp) or rng.random() < 0.5:
            continue
        q = quantized_element(op.results[0].type)
        if q is None or q.quantized_axis is not None:
            continue
        target = TensorType(UniformQuantizedType.per_tensor(
            q.scale * float(rng.uniform(0.5, 2.0)), int(rng.integers(-20, 20))),
            op.results[0].type.get_shape())
        requant = quant.RequantizeOp(op.results[0], target)
        Rewriter.insert_op(requant, InsertPoint.after(op))
        for use in list(op.results[0].uses):
            if use.operation is not requant and not isinstance(use.operation, func.ReturnOp):
                use.operation.operands[use.index] = requant.output


def _post_kinds(module: ModuleOp) -> Counter:
    """Post ops by kind ("sub reversed" for a sub whose second tensor is on the left)."""
    return Counter(stage.kind + (" reversed" if stage.reversed and stage.kind == "sub" else "")
                   for op in main_function(module).body.block.ops
                   if isinstance(op, rknpu.ConvOp) for stage in rknpu.read_post_ops(op))


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name


def test_fused_chains_compute_exactly():
    seen: Counter = Counter()
    examples: list[int] = []

    @settings(max_examples=150, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.sampled_from(["int8", "fp16"]).flatmap(
        lambda d: st.tuples(st.just(d), conv_chains(d))), st.integers(0, 2**32 - 1))
    def exact(chain, seed):
        dtype, graph = chain
        prepared, samples = prepare(graph.module, seed, count=2)
        module = quantized(prepared, "nn-quantize" if dtype == "int8"
                           else "nn-quantize{dtype=fp16}")
        if dtype == "int8":
            _requantize_somewhere(module, np.random.default_rng(seed))
            module.verify()
        reference = run_module(module, samples[0])
        for target, spec in FUSED.items():
            fused = module.clone()
            run_passes(fused, spec)
            fused.verify()
            _same(reference, run_module(fused, samples[0]))
            again = fused.clone()  # a second run fuses nothing more
            run_passes(again, "rknpu-fuse")
            assert str(again) == str(fused)
            if target == "rk3588":
                absorbed = _post_kinds(fused)
            for op in main_function(fused).body.block.ops:
                if isinstance(op, rknpu.ConvOp):  # only what the DPU does in one pass
                    assert one_pass(stage_forms(op)), rknpu.read_post_ops(op)
        for kind, n in absorbed.items():
            seen[f"{kind} {dtype}"] += n
            event(f"post {kind} {dtype}")
        examples.append(sum(absorbed.values()))

    exact()
    print(f"\npost ops fused in {len(examples)} chains: {dict(sorted(seen.items()))}")
    # derandomized examples; the bounds are about half of what was measured
    assert sum(map(bool, examples)) >= 50, examples
    for kinds, dtype, at_least in MIN_FUSED:
        count = sum(seen[f"{k} {dtype}"] for k in kinds)
        assert count >= at_least, f"vacuous: {count} of {kinds} in {dtype}: {dict(seen)}"
    assert seen["sub reversed int8"] == seen["sub reversed fp16"] == 0


MIN_FUSED = [  # (post op kinds, data type, minimum count over the examples)
    (("add", "sub", "mul", "max", "min"), "int8", 7),
    (("add", "sub", "mul", "max", "min"), "fp16", 6),
    (("lut",), "int8", 3), (("requantize",), "int8", 15),
    (("relu", "clip", "leaky_relu", "prelu", "abs", "neg"), "fp16", 1),
]
"""A sub with the conv's result on the right ("sub reversed") is never fused: the DPU's
ALU minus computes value - operand (`one_pass`); nor are rescaling clamps after another
rescale (int8 relu / clip with their own quantization after a requantize or binary op)."""


def test_stage_units_are_dpu_units():
    assert UNITS[0] == "BS" and all(set(units) <= set(UNITS[1:]) and units
                                    for units in STAGE_UNITS.values())
    kinds = {key.split(":")[0] for key in STAGE_UNITS}
    assert kinds == set(rknpu.EW_KINDS)


def _conv_module(post_ops: list[rknpu.PostOp], operands: int) -> rknpu.ConvOp:
    q = UniformQuantizedType.per_tensor(0.1, 0)
    x = TensorType(q, (1, 2, 2, 2))
    module = ModuleOp([])
    with ImplicitBuilder(module.body):
        fn = func.FuncOp("main", ([x] * (1 + operands), []))
        with ImplicitBuilder(fn.body) as args:
            w = nn.ConstantOp(np.ones((2, 2, 1, 1), np.int8), result_type=TensorType(
                UniformQuantizedType.per_tensor(0.01, 0), (2, 2, 1, 1))).output
            props = {"strides": nn.i64_array((1, 1)), "pads": nn.i64_array((0, 0, 0, 0)),
                     "dilations": nn.i64_array((1, 1)), "group": nn.i64_attr(1),
                     "post_ops": ArrayAttr([p.to_attr() for p in post_ops])}
            conv = rknpu.ConvOp(args[0], w, None, props, x, post_operands=args[1:])
            func.ReturnOp(conv.output)
    return conv


def test_bad_post_ops_are_rejected():
    q = UniformQuantizedType.per_tensor(0.1, 0)
    good = _conv_module([rknpu.PostOp("add", q, 0), rknpu.PostOp("relu", q)], 1)
    good.verify()
    assert rknpu.read_post_ops(good)[0] == rknpu.PostOp("add", q, 0)
    for stages, operands, message in [
            ([rknpu.PostOp("bogus", q)], 0, "kind must be one of"),
            ([rknpu.PostOp("add", q)], 1, "post op add needs operand"),
            ([rknpu.PostOp("relu", q, 0)], 1, "post op relu takes no operand"),
            ([rknpu.PostOp("add", q, 3)], 1, "post op operand 3 out of range"),
            ([rknpu.PostOp("relu", q, reversed=True)], 0, "only a binary stage"),
            ([rknpu.PostOp("lut", q, table=(1, 2))], 0, "lut needs a table of 256"),
            ([rknpu.PostOp("leaky_relu", q, params=(0.1,))], 0,
             "post op 0: leaky_relu is fp16 only"),
            ([rknpu.PostOp("relu", q), rknpu.PostOp("lut", f16, table=(0,) * 256)], 0,
             "post op 1: lut is int8 only"),
            ([], 1, "post operands without post_ops")]:
        with pytest.raises(VerifyException, match=message):
            _conv_module(stages, operands).verify()


def test_fuse_block_reports_saved_round_trips():
    """The add's input (the conv's 1x2x2x2 int8 result) is neither written nor read."""
    q = UniformQuantizedType.per_tensor(0.1, 0)
    conv = _conv_module([], 1)
    block = conv.parent_block()
    other = block.args[1]
    add = rknpu.EwOp([conv.output, other], "add", conv.output.type)
    Rewriter.insert_op(add, InsertPoint.after(conv))
    block.last_op.operands = [add.output]
    (fused,) = fuse_block(block)
    assert fused.kinds == ["add"] and fused.saved_bytes == 2 * 8
    (new,) = [op for op in block.ops if isinstance(op, rknpu.ConvOp)]
    assert rknpu.read_post_ops(new) == [rknpu.PostOp("add", q, 0)]
    assert list(new.post_operands) == [other]
