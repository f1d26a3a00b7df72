"""`nn-quantize`: the quantized interpreter stays close to the float one, on random
graphs and on hand-written cases; the structure the pass promises holds.

Random graphs come from `tests/strategies.py`, extended here (`QuantGraphBuilder`) with
ops the base strategy lacks (softmax, div, max / min, slice, pad, nearest resize, split,
conv_transpose2d, global pools, table ops) and with `rkc.precision = "fp16"` on random
ops. Each graph is prepared as `rkc quantize` prepares it (canonicalize, fold batch norm,
fuse relu / clip), calibrated (minmax) on 4 random inputs, quantized, and both modules
run on those same inputs.

Tolerances (per output tensor x (float) and y (quantized), on the calibration inputs):
  * int8, end to end: RMS(y - x) <= 0.1 * RMS(x) + 0.02 * R, where R is the widest range
    of any i8 activation in the quantized graph (255 * its scale). Why: rounding a
    tensor to 8 bits over a range r is an RMS error of r / 255 / sqrt(12) ~ 0.0011 r, and
    the error introduced anywhere reaches the output multiplied by the gain of the ops
    in between; the generated weights have gains of order 1 (1 / sqrt(fan-in) scaling),
    and a graph of <= 8 ops chains up to ~10 activation and weight quantizations, so
    ~10 * 0.0011 R = 0.011 R is the expected size, 0.02 R the bound with margin. The
    term is needed because an output can be much smaller than the values it is computed
    from (a bias that cancels a conv's sum, a sub of nearly equal tensors): such an
    output inherits its inputs' rounding, not a fraction of its own size. The relative
    term (a signal-to-noise ratio of 20 dB, cosine >= 0.995) covers the common case.
    Unlike a cosine, the check also catches a wrong overall scale.
  * int8, op by op: every int8 op's result, dequantized, is within one output step
    (plus half the bias rounding for conv / gemm, plus 2**-13 relative for the 15-bit
    multiplier) of the float op applied to its dequantized operands, clamped to the range
    the result type can represent: the types the pass chose give each op a faithful
    integer computation, whatever happens around it.
  Semantic mistakes (negated weights, a shifted padding, weights 1.5x too large) give
  errors of the order of the signal: see `test_checker_catches_a_wrong_quantization`.
  * fp16: |x - y| <= 1e-2 * max |x| + 1e-3 elementwise. One f16 rounding is a relative
    error of 2**-11 ~ 4.9e-4; <= 8 ops each round once more (and sums in convs of up to 144
    terms are rounded once), so errors stay within a few 1e-3 of the tensor's magnitude;
    1e-2 is that bound with margin, and the absolute 1e-3 covers outputs near 0.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from strategies import (
    MAX_SIZE,
    Graph,
    GraphBuilder,
    _input_shape,
    _shape,
    build_random_module,
)
from xdsl.dialects.builtin import ModuleOp, StringAttr, TensorType, f16, f32
from xdsl.interpreter import Interpreter, PythonValues
from xdsl.ir import Block, Operation, SSAValue

from rkc.dialects import nn, quant
from rkc.dialects.quant import expressed_type, quantized_element
from rkc.driver import parse_ir
from rkc.errors import RkcError
from rkc.graph import input_names, main_function
from rkc.interpreter import evaluate_op, run_module
from rkc.passes.nn_quantize import PRECISION_ATTR, precision_counts
from rkc.quant.calibrate import calibrate
from rkc.quant.pipeline import PREPARE, run_passes

INT8_RTOL = 0.1
INT8_SPAN = 0.02
OP_STEPS = 1.0
OP_RTOL = 2.0**-13
FP16_RTOL = 1e-2
FP16_ATOL = 1e-3

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------------------
# an extended graph strategy
# ---------------------------------------------------------------------------
class QuantGraphBuilder(GraphBuilder):
    """GraphBuilder plus the ops whose quantization the base strategy does not reach."""

    KINDS = GraphBuilder.KINDS + ("softmax", "div", "minmax", "slice", "pad", "resize",
                                  "split", "conv_transpose", "global_pool", "table")

    def add_softmax(self) -> bool:
        x = self.pick()
        if x is None:
            return False
        axis = self.draw(st.integers(0, len(_shape(x)) - 1))
        self.push(nn.SoftmaxOp(x, axis, name=f"softmax{len(self.values)}").output)
        return True

    def add_div(self) -> bool:
        x = self.pick()
        if x is None:
            return False
        c = nn.ConstantOp(self.rng.uniform(0.5, 2.0, self.broadcast_shape(_shape(x)))
                          .astype(np.float32)).output
        self.push(nn.DivOp(x, c, name=f"div{len(self.values)}").output)
        return True

    def add_minmax(self) -> bool:
        x = self.pick()
        if x is None:
            return False
        same = [v for v in self.values if _shape(v) == _shape(x) and v is not x]
        other = (self.draw(st.sampled_from(same)) if same and self.draw(st.booleans())
                 else self.constant(self.broadcast_shape(_shape(x))))
        cls = nn.MaxOp if self.draw(st.booleans()) else nn.MinOp
        self.push(cls(x, other).output)
        return True

    def add_slice(self) -> bool:
        x = self.pick(lambda v: len(_shape(v)) == 4)
        if x is None:
            return False
        starts, ends, steps = [], [], []
        for d in _shape(x):
            start = self.draw(st.integers(0, d - 1))
            starts.append(start)
            ends.append(self.draw(st.integers(start + 1, d)))
            steps.append(1)
        self.push(nn.SliceOp(x, starts, ends, steps).output)
        return True

    def add_pad(self) -> bool:
        x = self.pick(lambda v: len(_shape(v)) == 4)
        if x is None:
            return False
        _, _, h, w = _shape(x)
        mode = self.draw(st.sampled_from(["constant", "edge", "reflect"]))
        limit = (lambda d: min(1, d - 1)) if mode == "reflect" else (lambda d: 1)
        pads = [0, 0, self.draw(st.integers(0, limit(h))), self.draw(st.integers(0, limit(w))),
                0, 0, self.draw(st.integers(0, limit(h))), self.draw(st.integers(0, limit(w)))]
        value = self.draw(st.sampled_from([0.0, 0.5, -1.0]))
        self.push(nn.PadOp(x, pads, mode, value).output)
        return True

    def add_resize(self) -> bool:
        x = self.pick(lambda v: len(_shape(v)) == 4 and max(_shape(v)[2:]) <= MAX_SIZE // 2)
        if x is None:
            return False
        n, c, h, w = _shape(x)
        mode = self.draw(st.sampled_from(["nearest", "linear"]))
        self.push(nn.ResizeOp(x, [n, c, 2 * h, 2 * w], [1.0, 1.0, 2.0, 2.0], mode=mode,
                              coordinate_transformation_mode="asymmetric",
                              nearest_mode="floor").output)
        return True

    def add_split(self) -> bool:
        x = self.pick(lambda v: len(_shape(v)) == 4 and _shape(v)[1] >= 2)
        if x is None:
            return False
        c = _shape(x)[1]
        first = self.draw(st.integers(1, c - 1))
        op = nn.SplitOp(x, 1, [first, c - first])
        for r in op.results:
            self.push(r)
        return True

    def add_global_pool(self) -> bool:
        x = self.pick(lambda v: len(_shape(v)) == 4)
        if x is None:
            return False
        cls = nn.GlobalAvgPoolOp if self.draw(st.booleans()) else nn.GlobalMaxPoolOp
        self.push(cls(x).output)
        return True

    def add_table(self) -> bool:
        x = self.pick()
        if x is None:
            return False
        cls = self.draw(st.sampled_from([nn.TanhOp, nn.AbsOp, nn.NegOp, nn.ErfOp, nn.GeluOp,
                                         nn.HardSwishOp]))
        self.push(cls(x).output)
        return True


@st.composite
def quant_graphs(draw, max_ops: int = 8, builder: type = QuantGraphBuilder) -> Graph:
    """Like `strategies.nn_graphs`, with `builder`'s ops (default `QuantGraphBuilder`),
    one f32 input or two, and `rkc.precision = "fp16"` on about one op in eight."""
    first = _input_shape(draw)
    shapes = [first] if draw(st.booleans()) else [first, first]
    module = build_random_module(draw, shapes, builder, max_ops)
    for op in main_function(module).body.block.ops:
        if isinstance(op, nn.NNOp) and draw(st.integers(0, 7)) == 0:
            op.attributes[PRECISION_ATTR] = StringAttr("fp16")
    module.verify()
    return Graph(module, shapes)


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def prepare(module: ModuleOp, seed: int, count: int = 4,
            ) -> tuple[ModuleOp, list[dict[str, np.ndarray]]]:
    """A prepared, calibrated copy of `module` and its calibration inputs."""
    prepared = module.clone()
    run_passes(prepared, PREPARE)
    fn = main_function(prepared)
    rng = np.random.default_rng(seed)
    shapes = [tuple(t.get_shape()) for t in fn.function_type.inputs.data]
    samples = [{n: rng.standard_normal(s).astype(np.float32)
                for n, s in zip(input_names(fn), shapes, strict=True)} for _ in range(count)]
    calibrate(prepared, samples, "minmax", show_progress=False)
    return prepared, samples


def quantized(module: ModuleOp, spec: str = "nn-quantize") -> ModuleOp:
    result = module.clone()
    run_passes(result, spec)
    return result


def cosine(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x.astype(np.float64).ravel(), y.astype(np.float64).ravel()
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    if nx == 0 or ny == 0:
        return 1.0 if nx == ny else 0.0
    return float(x @ y / (nx * ny))


def rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(a.astype(np.float64))))) if a.size else 0.0


def largest_span(module: ModuleOp) -> float:
    """The widest range of any per-tensor i8 activation in `module` (255 * scale)."""
    widest = 0.0
    for op in module.walk():
        for v in op.results:
            q = quantized_element(v.type)
            if q is not None and q.quantized_axis is None and q.bits == 8:
                widest = max(widest, (q.qmax - q.qmin) * q.scale)
    return widest


def int8_problems(before: Mapping[str, np.ndarray], after: Mapping[str, np.ndarray],
                  span: float) -> list[str]:
    """Why `after` (quantized) is not within the end-to-end int8 tolerance of `before`
    (float): RMS(y - x) <= INT8_RTOL * RMS(x) + INT8_SPAN * span."""
    problems = []
    for name, x in before.items():
        y = after[name]
        if y.shape != x.shape or y.dtype != x.dtype:
            problems.append(f"{name}: {y.dtype}{list(y.shape)} instead of "
                            f"{x.dtype}{list(x.shape)}")
            continue
        if x.dtype.kind != "f" or not x.size:
            continue
        err = rms(y.astype(np.float64) - x)
        bound = INT8_RTOL * rms(x) + INT8_SPAN * span
        if err > bound:
            problems.append(f"{name}: RMS error {err:.4g} > {bound:.4g} (RMS {rms(x):.4g}, "
                            f"widest range {span:.4g}, cosine {cosine(x, y):.5f})")
    return problems


def compare_int8(prepared: ModuleOp, after: ModuleOp,
                 samples: list[dict[str, np.ndarray]]) -> list[str]:
    """End-to-end `int8_problems` and per-op `op_problems` on every sample."""
    span = largest_span(after)
    problems = []
    for i, sample in enumerate(samples):
        recorder = OpRecorder()
        quantized_outputs = run_module(after, sample, listeners=[recorder])
        problems += [f"sample {i}: {p}" for p in
                     int8_problems(run_module(prepared, sample), quantized_outputs, span)]
        problems += [f"sample {i}: {p}" for p in recorder.problems()]
    return problems


class OpRecorder(Interpreter.Listener):
    """Records the operands and results of every int8 nn op of a run."""

    def __init__(self) -> None:
        self.records: list[tuple[Operation, tuple, tuple]] = []
        self._args: tuple = ()

    def will_interpret_op(self, op: Operation, args: PythonValues) -> None:
        self._args = tuple(np.asarray(a) for a in args)

    def did_interpret_op(self, op: Operation, results: PythonValues) -> None:
        if isinstance(op, nn.NNOp) and any(quantized_element(v.type) is not None
                                           for v in (*op.operands, *op.results)):
            self.records.append((op, self._args, tuple(np.asarray(r) for r in results)))

    def problems(self) -> list[str]:
        return [p for op, args, results in self.records for p in op_problems(op, args, results)]


def dequantized(value: np.ndarray, t) -> np.ndarray:
    q = quantized_element(t)
    if q is None:
        return value
    scales, zps = q.broadcast_parameters(value.ndim)
    return ((value.astype(np.int64) - zps) * scales).astype(np.float32)


def op_problems(op: Operation, args: tuple, results: tuple) -> list[str]:
    """Each int8 op computes its float op on its (dequantized) operands up to the
    rounding of its result: |y - clamp(f(x))| <= OP_STEPS * s_y (+ half the bias
    rounding, s_x * max s_w / 2, for conv / gemm) + OP_RTOL * |f(x)| (the 15-bit
    multiplier), f(x) clamped to the range y can represent."""
    inputs = [dequantized(a, v.type) for a, v in zip(args, op.operands, strict=True)]
    float_operands = Block(arg_types=[expressed_type(v.type) for v in op.operands]).args
    float_op = type(op).create(operands=float_operands,
                               result_types=[expressed_type(r.type) for r in op.results],
                               properties=dict(op.properties))
    expected = evaluate_op(float_op, inputs)
    problems = []
    for i, (r, got, want) in enumerate(zip(op.results, results, expected, strict=True)):
        q = quantized_element(r.type)
        if q is None:
            if not np.array_equal(got, want):
                problems.append(f"{op.name} result {i}: differs from the float op")
            continue
        lo, hi = (q.qmin - q.zero_point) * q.scale, (q.qmax - q.zero_point) * q.scale
        want = np.clip(want.astype(np.float64), lo, hi)
        slack = OP_STEPS * q.scale
        if isinstance(op, nn.Conv2dOp | nn.ConvTranspose2dOp | nn.GemmOp) and len(args) == 3:
            slack += 0.5 * quantized_element(op.operands[0].type).scale * max(
                quantized_element(op.operands[1].type).scales)
        err = np.abs(dequantized(got, r.type).astype(np.float64) - want)
        if np.any(err > slack + OP_RTOL * np.abs(want)):
            problems.append(f"{op.name} '{nn.node_name(op)}' result {i}: max error "
                            f"{float(err.max()):.4g} > {slack:.4g} ({OP_STEPS} output step "
                            f"{q.scale:.4g})")
    return problems


def fp16_problems(before: Mapping[str, np.ndarray], after: Mapping[str, np.ndarray],
                  ) -> list[str]:
    problems = []
    for name, x in before.items():
        y = after[name]
        if x.dtype.kind != "f":
            continue
        bound = FP16_RTOL * float(np.max(np.abs(x), initial=0.0)) + FP16_ATOL
        err = np.abs(x.astype(np.float64) - y)
        if not np.all(err <= bound):
            problems.append(f"{name}: max |diff| {float(err.max()):.3g} > {bound:.3g}")
    return problems


def check_structure(module: ModuleOp) -> None:
    """What nn-quantize promises about conversions: the signature stays f32, no
    conversion undoes another, each value is converted at most once per precision,
    inserted conversions carry no rkc.name, int8 ops are quantized throughout, int8
    concats have inputs quantized like their result."""
    fn = main_function(module)
    for t in (*fn.function_type.inputs.data, *fn.function_type.outputs.data):
        assert not isinstance(t, TensorType) or quantized_element(t) is None
        assert not isinstance(t, TensorType) or t.element_type != f16
    seen: set[tuple[SSAValue, str]] = set()
    for op in fn.body.block.ops:
        if isinstance(op, quant.QuantizeOp | quant.DequantizeOp):
            assert nn.node_name(op) is None
            source = op.input.owner
            # no dequantize(quantize(x)) / quantize(dequantize(q)) round trips
            assert not isinstance(source, quant.QuantizeOp | quant.DequantizeOp), str(op)
            key = (op.input, op.name)
            assert key not in seen, f"{op.name} of the same value twice"
            seen.add(key)
        if isinstance(op, nn.NNOp) and not isinstance(op, nn.ConstantOp):
            types = [v.type for v in (*op.operands, *op.results)]
            if any(quantized_element(t) is not None for t in types):
                assert not any(isinstance(t, TensorType) and t.element_type in (f32, f16)
                               for t in types), f"mixed precision op {op.name}"
                if isinstance(op, nn.ConcatOp):  # inputs with the result's parameters
                    assert all(v.type.element_type == op.output.type.element_type
                               for v in op.operands), f"concat inputs differ: {op}"


# ---------------------------------------------------------------------------
# properties on random graphs
# ---------------------------------------------------------------------------
def test_int8_close_to_float_on_random_graphs():
    quantized_ops = []

    @SETTINGS
    @given(quant_graphs(), st.integers(0, 2**32 - 1))
    def close(graph: Graph, seed: int):
        prepared, samples = prepare(graph.module, seed)
        after = quantized(prepared)
        after.verify()
        check_structure(after)
        counts = precision_counts(after)
        if counts["int8"]:
            event("has int8 ops")
            quantized_ops.append(counts["int8"])
        if counts["fp16"]:
            event("has fp16 ops")
        problems = compare_int8(prepared, after, samples)
        assert not problems, "\n".join(problems) + f"\nquantized:\n{after}"

    close()
    assert sum(quantized_ops) > 100, "the property is vacuous: few ops were quantized"


def test_fp16_close_to_float_on_random_graphs():
    @SETTINGS
    @given(quant_graphs(), st.integers(0, 2**32 - 1))
    def close(graph: Graph, seed: int):
        prepared = graph.module.clone()
        run_passes(prepared, PREPARE)
        after = quantized(prepared, "nn-quantize{dtype=fp16}")
        after.verify()
        fn = main_function(after)
        inner = [r.type for op in fn.body.block.ops if isinstance(op, nn.NNOp)
                 and not isinstance(op, nn.CastOp) for r in op.results]
        assert not any(isinstance(t, TensorType) and t.element_type == f32 for t in inner)
        rng = np.random.default_rng(seed)
        inputs = [rng.standard_normal(s).astype(np.float32) for s in graph.input_shapes]
        problems = fp16_problems(run_module(prepared, inputs), run_module(after, inputs))
        assert not problems, "\n".join(problems) + f"\nfp16:\n{after}"

    close()


# ---------------------------------------------------------------------------
# hand-written cases
# ---------------------------------------------------------------------------
CONV = ('strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, '
        'dilations = array<i64: 1, 1>, group = 1 : i64')


def conv_module(activation: str = "", extra: str = "", after: str = "",
                result: str = "%c") -> str:
    return f"""
func.func @main(%x: tensor<1x3x8x8xf32> {{rkc.name = "x"}}) -> tensor<1x4x8x8xf32> {{
  %w = nn.constant dense<[[[[0.5, -1.0, 0.25], [1.0, 0.0, -0.5], [0.75, 0.5, -0.25]]]]>
       : tensor<1x1x3x3xf32>
  %wc = nn.concat %w, %w, %w {{axis = 1 : i64}} : (tensor<1x1x3x3xf32>, tensor<1x1x3x3xf32>,
        tensor<1x1x3x3xf32>) -> tensor<1x3x3x3xf32>
  %w4 = nn.concat %wc, %wc, %wc, %wc {{axis = 0 : i64}} : (tensor<1x3x3x3xf32>,
        tensor<1x3x3x3xf32>, tensor<1x3x3x3xf32>, tensor<1x3x3x3xf32>) -> tensor<4x3x3x3xf32>
  %b = nn.constant dense<[0.1, -0.2, 0.3, 0.0]> : tensor<4xf32>
  %c = nn.conv2d %x, %w4, %b {{rkc.name = "conv", {CONV}{activation}{extra}}}
       : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
  {after}
  func.return {result} : tensor<1x4x8x8xf32>
}}"""


def calibrated(text: str, seed: int = 0) -> tuple[ModuleOp, list[dict[str, np.ndarray]]]:
    return prepare(parse_ir(text), seed)


def test_single_conv_within_its_worst_case_rounding_bound():
    """One conv + relu: |y - x| <= s_y/2 + sum|w| * s_x/2 + n * max|x| * s_w/2
    + n * s_x * s_w / 4 + s_x * s_w / 2 + |x| * 2**-14 per output channel (output,
    input, weight, product and bias rounding, and the 15-bit multiplier; relu is
    1-Lipschitz), n = 27 taps."""
    prepared, samples = calibrated(conv_module(', activation = "relu", '
                                               'activation_params = array<f32>'))
    after = quantized(prepared)
    (conv,) = [op for op in after.walk() if isinstance(op, nn.Conv2dOp)]
    assert conv.activation.data == "relu"
    s_x = quantized_element(conv.input.type).scale
    s_y = quantized_element(conv.output.type).scale
    s_w = np.asarray(quantized_element(conv.weight.type).scales)
    (w,) = [op.to_numpy() for op in prepared.walk() if isinstance(op, nn.ConstantOp)
            and op.output.type.get_shape() == (4, 3, 3, 3)]
    taps = 27
    for sample in samples:
        x, y = run_module(prepared, sample)["output0"], run_module(after, sample)["output0"]
        peak = float(np.abs(sample["x"]).max())
        bound = (s_y / 2 + np.abs(w).reshape(4, -1).sum(1) * s_x / 2 + taps * peak * s_w / 2
                 + taps * s_x * s_w / 4 + s_x * s_w / 2)
        err = np.abs(x.astype(np.float64) - y)
        assert np.all(err <= bound.reshape(1, 4, 1, 1) + np.abs(x) * 2.0**-14)
        assert cosine(x, y) > 0.999


@pytest.mark.parametrize("act", ["sigmoid", "silu", "hard_swish", "tanh", "leaky_relu"])
def test_other_fused_activations_are_rejected(act: str):
    params = "array<f32: 0.1>" if act == "leaky_relu" else "array<f32>"
    text = conv_module(f', activation = "{act}", activation_params = {params}')
    module = parse_ir(text)
    run_passes(module, "nn-canonicalize")
    rng = np.random.default_rng(0)
    calibrate(module, [{"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)}],
              show_progress=False)
    expected = r"conv.*'" + act + r"'.*nn-fuse-activation\{kinds=relu,clip\}"
    with pytest.raises(RkcError, match=expected):
        quantized(module)


def test_missing_range_is_reported():
    module = parse_ir(conv_module())
    run_passes(module, PREPARE)
    with pytest.raises(RkcError, match="not calibrated: function argument 'x'"):
        quantized(module)
    prepared, _ = calibrated(conv_module(after='%r = nn.tanh %c {rkc.name = "act"} : '
                                         '(tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>',
                                         result="%r"))
    for op in prepared.walk():
        if nn.node_name(op) == "act":
            del op.attributes["rkc.range"]
    with pytest.raises(RkcError, match="not calibrated: nn.tanh 'act'"):
        quantized(prepared)


def test_precision_attribute_errors():
    softmax = ('%s = nn.softmax %c {rkc.name = "sm", rkc.precision = "int8", axis = 1 : i64}'
               ' : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>')
    prepared, _ = calibrated(conv_module(after=softmax, result="%s"))
    with pytest.raises(RkcError, match="nn.softmax 'sm'.*int8.*keeps it in float"):
        quantized(prepared)
    prepared, _ = calibrated(conv_module(extra=', rkc.precision = "int4"'))
    with pytest.raises(RkcError, match="rkc.precision must be one of"):
        quantized(prepared)


def test_bad_options():
    prepared, _ = calibrated(conv_module())
    with pytest.raises(RkcError, match="dtype must be one of"):
        quantized(prepared, "nn-quantize{dtype=int4}")
    with pytest.raises(RkcError, match="method must be one of"):
        quantized(prepared, "nn-quantize{method=group}")


T4 = "tensor<1x4x8x8xf32>"
FLOAT_ISLAND = f"""
  %s = nn.softmax %c {{rkc.name = "sm", axis = 1 : i64}} : ({T4}) -> {T4}
  %e = nn.pow %c, %two {{rkc.name = "pow"}} : ({T4}, tensor<f32>) -> {T4}
  %a = nn.add %s, %e {{rkc.name = "add"}} : ({T4}, {T4}) -> {T4}
  %r = nn.relu %a {{rkc.name = "relu"}} : ({T4}) -> {T4}
"""


def float_island_module() -> str:
    text = conv_module(after=FLOAT_ISLAND, result="%r")
    return text.replace("%b = nn.constant",
                        "%two = nn.constant dense<2.0> : tensor<f32>\n  %b = nn.constant")


def test_float_ops_share_one_dequantize_and_names_are_kept():
    prepared, samples = calibrated(float_island_module())
    after = quantized(prepared)
    check_structure(after)
    ops = list(main_function(after).body.block.ops)
    dequantizes = [op for op in ops if isinstance(op, quant.DequantizeOp)]
    # conv -> {softmax, pow} share one dequantize; relu's result is dequantized for return
    assert len(dequantizes) == 2
    users = {use.operation.name for use in dequantizes[0].output.uses}
    assert users == {"nn.softmax", "nn.pow"}
    names = {nn.node_name(op): op for op in ops if nn.node_name(op)}
    assert {"conv", "sm", "pow", "add", "relu"} <= set(names)
    assert quantized_element(names["add"].output.type) is not None
    assert names["sm"].output.type.element_type == f32
    assert precision_counts(after) == {"int8": 3, "fp16": 0, "float": 2}
    assert not compare_int8(prepared, after, samples)


def test_fp16_precision_override():
    text = float_island_module().replace('rkc.name = "add"',
                                         'rkc.name = "add", rkc.precision = "fp16"')
    prepared, samples = calibrated(text)
    after = quantized(prepared)
    names = {nn.node_name(op): op for op in after.walk() if nn.node_name(op)}
    add = names["add"]
    assert all(v.type.element_type == f16 for v in (*add.operands, add.output))
    # softmax (f32) and pow (f32) are cast to f16, the add's result is cast back; the
    # relu, now between float (f16) and the function result, stays float
    assert all(isinstance(v.owner, nn.CastOp) for v in add.operands)
    assert isinstance(names["relu"].input.owner, nn.CastOp)
    assert names["relu"].output.type.element_type == f32
    assert precision_counts(after) == {"int8": 1, "fp16": 1, "float": 3}
    # with an int8 consumer, the f16 result is cast and quantized
    text = text.replace("%r = nn.relu %a", "%r = nn.relu %a2").replace(
        '%r = nn.relu', f'%a2 = nn.add %a, %c : ({T4}, {T4}) -> {T4}\n  %r = nn.relu')
    prepared, samples = calibrated(text)
    after = quantized(prepared)
    (add2,) = [op for op in after.walk() if isinstance(op, nn.AddOp) and not nn.node_name(op)]
    converted = add2.lhs.owner
    assert isinstance(converted, quant.QuantizeOp) and isinstance(converted.input.owner,
                                                                  nn.CastOp)
    assert precision_counts(after) == {"int8": 3, "fp16": 1, "float": 2}
    assert not compare_int8(prepared, after, samples)


def test_isolated_elementwise_ops_stay_float():
    """The input normalisation (x - mean) / std: the sub would be an int8 op between
    a float argument and a float div, so it stays float and the normalised value is
    quantized once, for the conv."""
    X, C = "tensor<1x3x8x8xf32>", "tensor<1x3x1x1xf32>"
    text = conv_module().replace(
        "%c = nn.conv2d %x,", "%c = nn.conv2d %n,").replace(
        "%b = nn.constant", f"""%m = nn.constant dense<0.5> : {C}
  %sd = nn.constant dense<[[[[0.25]], [[0.5]], [[0.125]]]]> : {C}
  %xm = nn.sub %x, %m {{rkc.name = "sub"}} : ({X}, {C}) -> {X}
  %n = nn.div %xm, %sd {{rkc.name = "div"}} : ({X}, {C}) -> {X}
  %b = nn.constant""")
    prepared, _ = calibrated(text)
    after = quantized(prepared)
    ops = [op for op in main_function(after).body.block.ops if not isinstance(op, nn.ConstantOp)]
    assert [op.name for op in ops] == ["nn.sub", "nn.div", "quant.quantize", "nn.conv2d",
                                      "quant.dequantize", "func.return"]
    # forced with rkc.precision = "int8", it is quantized
    forced = quantized(parse_ir(str(prepared).replace('rkc.name = "sub"',
                                                      'rkc.name = "sub", rkc.precision = "int8"')))
    (sub,) = [op for op in forced.walk() if isinstance(op, nn.SubOp)]
    assert quantized_element(sub.output.type) is not None


def test_per_layer_weights_and_biases():
    prepared, samples = calibrated(conv_module())
    channel, layer = quantized(prepared), quantized(prepared, "nn-quantize{method=layer}")
    (c1,) = [op for op in channel.walk() if isinstance(op, nn.Conv2dOp)]
    (c2,) = [op for op in layer.walk() if isinstance(op, nn.Conv2dOp)]
    assert quantized_element(c1.weight.type).quantized_axis == 0
    assert quantized_element(c2.weight.type).quantized_axis is None
    sx = quantized_element(c2.input.type).scale
    sw = quantized_element(c2.weight.type).scale
    bias = quantized_element(c2.bias.type)
    assert bias.bits == 32 and bias.quantized_axis == 0
    assert np.allclose(bias.scales, sx * sw, rtol=1e-12)
    assert not compare_int8(prepared, layer, samples)


def test_gemm_alpha_beta_are_folded():
    prepared, samples = calibrated("""
func.func @main(%a: tensor<3x5xf32>) -> tensor<3x4xf32> {
  %b = nn.constant dense<[[0.5, -1.0, 0.25, 2.0], [1.0, 0.0, -0.5, 0.5], [0.75, 0.5, -0.25, -1.0],
                          [0.1, 0.2, 0.3, 0.4], [1.0, 1.0, -1.0, 0.0]]> : tensor<5x4xf32>
  %c = nn.constant dense<[[1.0], [2.0], [-1.0]]> : tensor<3x1xf32>
  %g = nn.gemm %a, %b, %c {rkc.name = "fc", alpha = 0.5 : f32, beta = 2.0 : f32,
       trans_a = false, trans_b = false} : (tensor<3x5xf32>, tensor<5x4xf32>, tensor<3x1xf32>)
       -> tensor<3x4xf32>
  func.return %g : tensor<3x4xf32>
}""")
    after = quantized(prepared)
    (gemm,) = [op for op in after.walk() if isinstance(op, nn.GemmOp)]
    assert nn.float_of(gemm.properties, "alpha") == 1.0
    assert nn.float_of(gemm.properties, "beta") == 1.0
    assert quantized_element(gemm.b.type).quantized_axis == 1
    c = quantized_element(gemm.c.type)
    assert c.bits == 32 and c.quantized_axis == 1 and tuple(gemm.c.type.get_shape()) == (3, 4)
    for sample in samples:
        x, y = run_module(prepared, sample)["output0"], run_module(after, sample)["output0"]
        assert cosine(x, y) > 0.999


def test_dtype_fp16_converts_everything():
    prepared, samples = calibrated(float_island_module())
    after = quantized(prepared, "nn-quantize{dtype=fp16}")
    fn = main_function(after)
    ops = list(fn.body.block.ops)
    assert isinstance(ops[0], nn.CastOp) and ops[0].output.type.element_type == f16
    assert not any(isinstance(op, quant.QuantizeOp | quant.DequantizeOp) for op in ops)
    constants = [op for op in ops if isinstance(op, nn.ConstantOp)]
    assert constants and all(c.output.type.element_type == f16 for c in constants)
    assert precision_counts(after) == {"int8": 0, "fp16": 5, "float": 0}
    for sample in samples:
        assert not fp16_problems(run_module(prepared, sample), run_module(after, sample))


def test_zero_tensors_get_usable_scales():
    """relu of an all-negative tensor is all zeros: calibration gives [0, 1e-6], and
    the relu's requantization multiplier s_x / s_y must stay representable."""
    prepared, samples = calibrated(conv_module(after="""
  %neg = nn.constant dense<-100.0> : tensor<1x4x8x8xf32>
  %m = nn.min %c, %neg : (tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  %r = nn.relu %m {rkc.name = "relu"} : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  %y = nn.add %r, %c : (tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>""",
        result="%y"))
    after = quantized(prepared)
    assert not compare_int8(prepared, after, samples)


def test_constant_pad_value_outside_the_input_range():
    """A constant pad keeps its input's parameters; when they cannot represent the pad
    value (-1 after a relu), the input is first requantized to a range that holds it."""
    prepared, samples = calibrated("""
func.func @main(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x5xf32> {
  %r = nn.relu %x {rkc.name = "relu"} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %e = nn.exp %r {rkc.name = "exp"} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %p = nn.pad %e {rkc.name = "pad", pads = array<i64: 0, 0, 0, 1, 0, 0, 0, 0>,
       mode = "constant", value = -1.0 : f32} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x5xf32>
  func.return %p : tensor<1x2x4x5xf32>
}""")
    after = quantized(prepared)
    (pad,) = [op for op in after.walk() if isinstance(op, nn.PadOp)]
    assert isinstance(pad.input.owner, quant.RequantizeOp)
    q = quantized_element(pad.output.type)
    assert (q.qmin - q.zero_point) * q.scale <= -1.0 + q.scale / 2
    assert not compare_int8(prepared, after, samples)
    outputs = run_module(after, samples[0])["output0"]
    assert np.allclose(outputs[..., 0], -1.0, atol=q.scale / 2)  # the padded column


def test_checker_catches_a_wrong_quantization():
    """The comparison can fail: negated weights, a conv whose padding is shifted, and
    weights 1.5x too large are caught."""
    prepared, samples = calibrated(conv_module(', activation = "relu", '
                                               'activation_params = array<f32>'))
    after = quantized(prepared)
    text = str(after)
    assert not compare_int8(prepared, after, samples)
    (conv,) = [op for op in after.walk() if isinstance(op, nn.Conv2dOp)]
    weights = conv.weight.owner.to_numpy().astype(np.int64)

    def hex_of(a: np.ndarray) -> str:
        return np.clip(a, -127, 127).astype(np.int8).tobytes().hex().upper()

    scaled = text.replace(hex_of(weights), hex_of(np.rint(1.5 * weights).astype(np.int64)))
    wrong = [text.replace(hex_of(weights), hex_of(-weights)),
             text.replace("pads = array<i64: 1, 1, 1, 1>", "pads = array<i64: 2, 2, 0, 0>"),
             scaled]
    for case in wrong:
        assert case != text
        assert compare_int8(prepared, parse_ir(case), samples)


def test_concat_inputs_share_the_concat_parameters():
    """The single-use conv "a" (through the single-use int8 resize after it) and the
    inner concat compute in the outer concat's parameters; the float resize of the
    argument is quantized in them; the conv "b", also returned, is requantized once;
    the constant input is quantized in the concat's parameters. No concat rescales, and
    the result stays within tolerance."""
    X4, X8 = "tensor<1x2x4x4xf32>", "tensor<1x2x8x8xf32>"
    resize = ('sizes = array<i64: 1, 2, 8, 8>, scales = array<f32: 1.0, 1.0, 2.0, 2.0>, '
              'mode = "nearest", coordinate_transformation_mode = "asymmetric", '
              'nearest_mode = "floor"')
    conv = ('strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, '
            'dilations = array<i64: 1, 1>, group = 1 : i64')
    prepared, samples = calibrated(f"""
func.func @main(%x: {X4} {{rkc.name = "x"}}) -> (tensor<1x8x8x8xf32>, {X4}) {{
  %w = nn.constant dense<[[[[0.5]], [[-1.0]]], [[[0.25]], [[2.0]]]]> : tensor<2x2x1x1xf32>
  %k = nn.constant dense<0.75> : {X8}
  %a = nn.conv2d %x, %w {{rkc.name = "a", {conv}}} : ({X4}, tensor<2x2x1x1xf32>) -> {X4}
  %ra = nn.resize %a {{rkc.name = "ra", {resize}}} : ({X4}) -> {X8}
  %rx = nn.resize %x {{rkc.name = "rx", {resize}}} : ({X4}) -> {X8}
  %v = nn.constant dense<[[[[0.25]], [[0.1]]], [[[-0.2]], [[0.05]]]]> : tensor<2x2x1x1xf32>
  %b = nn.conv2d %x, %v {{rkc.name = "b", {conv}}} : ({X4}, tensor<2x2x1x1xf32>) -> {X4}
  %rb = nn.resize %b {{rkc.name = "rb", {resize}}} : ({X4}) -> {X8}
  %i = nn.concat %ra, %rx, %rb {{rkc.name = "inner", axis = 1 : i64}}
       : ({X8}, {X8}, {X8}) -> tensor<1x6x8x8xf32>
  %o = nn.concat %i, %k {{rkc.name = "outer", axis = 1 : i64}}
       : (tensor<1x6x8x8xf32>, {X8}) -> tensor<1x8x8x8xf32>
  func.return %o, %b : tensor<1x8x8x8xf32>, {X4}
}}""")
    after = quantized(prepared)
    check_structure(after)
    names = {nn.node_name(op): op for op in after.walk() if nn.node_name(op)}
    t = names["outer"].output.type.element_type
    for name in ("a", "ra", "rb", "inner"):
        assert names[name].results[0].type.element_type == t, name
    assert names["rx"].output.type.element_type == f32  # it follows the float argument
    inner = names["inner"]
    assert isinstance(inner.operands[1].owner, quant.QuantizeOp)
    assert inner.operands[1].type.element_type == t
    assert names["b"].output.type.element_type != t
    (requantize,) = [op for op in after.walk() if isinstance(op, quant.RequantizeOp)]
    assert requantize.input is names["b"].output and names["rb"].input is requantize.output
    assert names["outer"].operands[1].type.element_type == t  # the constant
    assert not compare_int8(prepared, after, samples)
