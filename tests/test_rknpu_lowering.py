"""rknpu-legalize, nn-to-rknpu and rknpu-layout: lowered modules compute exactly what the
quantized `nn` module computes (random int8 and fp16 graphs, the vendor fixtures, PP-OCR
cls), on every target; every op rknpu-legalize places on the NPU becomes rknpu ops (none
is left on the CPU for lack of a lowering); a tiled conv equals the untiled one exactly;
lowered IR prints and parses back.

Random graphs: `quant_graphs`' ops (tests/test_quantize_pass.py) plus
`LoweringGraphBuilder`'s, which the lowering has forms for and the base strategy rarely
draws: channel slices and splits at offsets of 4 / 8 (multiples of some C2), reshapes and
transposes that keep N and C, prelu, and fully connected heads (global pool, flatten to
[N, C], gemm or matmul). One example in three is quantized to fp16 throughout (`dtype =
fp16`), the others to int8 with about one op in eight in fp16."""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from strategies import Graph, _shape
from test_quantize_fixtures import VENDOR, quantize
from test_quantize_pass import QuantGraphBuilder, prepare, quant_graphs, quantized
from xdsl.dialects.builtin import ModuleOp, StringAttr, TensorType, f16
from xdsl.ir import Block

from rkc.dialects import nn, rknpu
from rkc.dialects.quant import UniformQuantizedType
from rkc.frontend.onnx import import_onnx
from rkc.graph import main_function
from rkc.interpreter import run_module
from rkc.interpreter.rknpu_impls import _conv, to_native, to_nchw
from rkc.lowering.legality import data_type, npu_obstacle
from rkc.passes.nn_to_rknpu import obstacle
from rkc.quant.dataset import Preprocess, load_dataset
from rkc.quant.pipeline import quantize_model, run_passes
from rkc.quant.qparams import quantize_weight
from rkc.registry import make_context
from rkc.targets import RK3568, RK3588

DATA = Path(__file__).parent / "data"
TARGETS = ("rk3588", "rk3568")
FUSED = {  # rknpu-fuse after the layout (rk3588) and before it (rk3568)
    "rk3588": "rknpu-legalize{target=rk3588},nn-to-rknpu,rknpu-layout{target=rk3588},"
              "rknpu-fuse",
    "rk3568": "rknpu-legalize{target=rk3568},nn-to-rknpu,rknpu-fuse,"
              "rknpu-layout{target=rk3568}"}


# ---------------------------------------------------------------------------
# graphs with the ops the lowering has forms for
# ---------------------------------------------------------------------------
class LoweringGraphBuilder(QuantGraphBuilder):
    """QuantGraphBuilder plus channel views, N-and-C-keeping reshapes, prelu and fully
    connected heads."""

    KINDS = QuantGraphBuilder.KINDS + ("channel_slice", "channel_split", "view", "view",
                                       "prelu", "fc", "fc", "block_concat", "activation")

    def add_block_concat(self) -> bool:
        """A 1x1 conv to 16 channels (whole C2 blocks on every chip and data type)
        concatenated with its input along channels."""
        x = self.pick(lambda v: len(_shape(v)) == 4)
        if x is None:
            return False
        c = _shape(x)[1]
        w = nn.ConstantOp(self.random((16, c, 1, 1), 1 / np.sqrt(c))).output
        wide = nn.Conv2dOp(x, w, None, name=f"conv{len(self.values)}").output
        self.push(nn.ConcatOp([wide, x], 1).output)
        return True

    def add_channel_slice(self) -> bool:
        x = self.pick(lambda v: len(_shape(v)) == 4 and _shape(v)[1] >= 2)
        if x is None:
            return False
        n, c, h, w = _shape(x)
        start = self.draw(st.sampled_from([s for s in (0, 4, 8, 16) if s < c]))
        end = self.draw(st.integers(start + 1, c))
        self.push(nn.SliceOp(x, [0, start, 0, 0], [n, end, h, w], [1] * 4).output)
        return True

    def add_channel_split(self) -> bool:
        x = self.pick(lambda v: len(_shape(v)) == 4 and _shape(v)[1] >= 5)
        if x is None:
            return False
        c = _shape(x)[1]
        first = self.draw(st.sampled_from([s for s in (4, 8, 16) if s < c]))
        for r in nn.SplitOp(x, 1, [first, c - first]).results:
            self.push(r)
        return True

    def add_view(self) -> bool:
        x = self.pick(lambda v: len(_shape(v)) in (2, 4))
        if x is None:
            return False
        shape = _shape(x)
        if len(shape) == 2:
            self.push(nn.ReshapeOp(x, (*shape, 1, 1)).output)
            return True
        n, c, h, w = shape
        options = [(n, c, h * w, 1), (n, c, 1, h * w), (n, c, w, h)]
        if h * w == 1:
            options.append((n, c))
        if self.draw(st.booleans()) and 1 in (h, w):  # a transpose moving a size-1 axis
            self.push(nn.TransposeOp(x, (0, 1, 3, 2)).output)
        else:
            self.push(nn.ReshapeOp(x, self.draw(st.sampled_from(options))).output)
        return True

    def add_prelu(self) -> bool:
        x = self.pick(lambda v: len(_shape(v)) == 4)
        if x is None:
            return False
        c = _shape(x)[1]
        slope_shape = self.draw(st.sampled_from([(c, 1, 1), (1, c, 1, 1), (1,)]))
        slope = nn.ConstantOp(self.rng.uniform(0.0, 0.5, slope_shape).astype(np.float32))
        self.push(nn.PReluOp(x, slope.output).output)
        return True

    def add_fc(self) -> bool:
        x = self.pick(lambda v: len(_shape(v)) == 4)
        if x is None:
            return False
        n, c = _shape(x)[:2]
        flat = nn.ReshapeOp(nn.GlobalAvgPoolOp(x).output, (n, c)).output
        m = self.draw(st.integers(1, 12))
        if self.draw(st.booleans()):
            b = self.constant((c, m), scale=1 / np.sqrt(c))
            self.push(nn.MatmulOp(flat, b).output)
        else:
            trans_b = self.draw(st.booleans())
            b = self.constant((m, c) if trans_b else (c, m), scale=1 / np.sqrt(c))
            bias_shape = self.draw(st.sampled_from([None, (m,), (1, m)]))
            bias = None if bias_shape is None else self.constant(bias_shape, scale=0.5)
            self.push(nn.GemmOp(flat, b, bias, trans_b=trans_b,
                                alpha=self.draw(st.sampled_from([1.0, 1.0, 0.5])),
                                name=f"fc{len(self.values)}").output)
        self.follow_ups()
        return True


def lowering_graphs(max_ops: int = 8) -> st.SearchStrategy[Graph]:
    """`quant_graphs` with `LoweringGraphBuilder`'s ops."""
    return quant_graphs(max_ops, LoweringGraphBuilder)


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def lowered(module: ModuleOp, target: str | None) -> ModuleOp:
    """`module` lowered: placed for `target` by rknpu-legalize, then nn-to-rknpu and
    rknpu-layout; with no target, nn-to-rknpu alone (its own checks only)."""
    result = module.clone()
    spec = ("nn-to-rknpu" if target is None else
            f"rknpu-legalize{{target={target}}},nn-to-rknpu,rknpu-layout{{target={target}}}")
    run_passes(result, spec)
    return result


def op_counts(module: ModuleOp) -> Counter:
    return Counter(op.name for op in main_function(module).body.block.ops)


def assert_same_outputs(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name


def npu_ops_left_on_cpu(module: ModuleOp) -> list[str]:
    """The ops inside `rknpu.cpu` that rknpu-legalize had placed on the NPU (with the
    lowering's reason): legality and the lowering disagree on them."""
    return [f"{inner.name}: {op.reason.data}"
            for op in main_function(module).body.block.ops if isinstance(op, rknpu.CpuOp)
            for inner in op.body.block.ops
            if isinstance(p := inner.attributes.get("rkc.placement"), StringAttr)
            and p.data == "npu"]


def npu_kinds(placed: ModuleOp) -> Counter:
    """The ops rknpu-legalize placed on the NPU, by op name and data type."""
    return Counter(f"{op.name} {data_type(op)}" for op in main_function(placed).body.block.ops
                   if isinstance(p := op.attributes.get("rkc.placement"), StringAttr)
                   and p.data == "npu")


def post_kinds(module: ModuleOp) -> Counter:
    """The post ops of the module's convs, by kind and data type."""
    return Counter(f"post {stage.kind} {'fp16' if stage.input == f16 else 'int8'}"
                   for op in main_function(module).body.block.ops
                   if isinstance(op, rknpu.ConvOp) for stage in rknpu.read_post_ops(op))


def check_lowered(low: ModuleOp, sample, reference) -> None:
    """What every lowered module must satisfy."""
    low.verify()
    counts = op_counts(low)
    assert not [n for n in counts if n.startswith(("nn.", "quant.")) and n != "nn.constant"]
    assert not npu_ops_left_on_cpu(low), npu_ops_left_on_cpu(low)
    assert_same_outputs(reference, run_module(low, sample))
    for op in main_function(low).body.block.ops:  # no value converted there and back
        if isinstance(op, rknpu.ToNativeOp):
            assert not isinstance(op.input.owner, rknpu.FromNativeOp)


def test_native_packing_round_trips():
    x = np.arange(2 * 19 * 3 * 5, dtype=np.int8).reshape(2, 19, 3, 5)
    packed = to_native(x, 16)
    assert packed.shape == (2, 2, 3, 5, 16)
    assert np.array_equal(packed[:, 1, :, :, 3:], np.zeros((2, 3, 5, 13), np.int8))
    assert packed[1, 1, 2, 4, 2] == x[1, 18, 2, 4]
    assert np.array_equal(to_nchw(packed, 19), x)
    flat = np.arange(2 * 5, dtype=np.int8).reshape(2, 5)  # [N, C] is [N, C, 1, 1]
    assert to_native(flat, 4).shape == (2, 2, 1, 1, 4)
    assert np.array_equal(to_nchw(to_native(flat, 4), 5).reshape(2, 5), flat)


def test_random_graphs_lower_exactly():
    seen: Counter = Counter()
    examples: list[int] = []

    @settings(max_examples=150, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(lowering_graphs(), st.integers(0, 2**32 - 1),
           st.sampled_from(["int8", "int8", "fp16"]))
    def exact(graph, seed, dtype):
        prepared, samples = prepare(graph.module, seed)
        module = quantized(prepared, "nn-quantize" if dtype == "int8"
                           else "nn-quantize{dtype=fp16}")
        reference = run_module(module, samples[0])
        kinds: Counter = Counter()
        for target in TARGETS:  # rknpu-legalize alone: every op placed, nothing changed
            placed = module.clone()
            run_passes(placed, f"rknpu-legalize{{target={target}}}")
            for op in main_function(placed).body.block.ops:
                if op.name not in ("nn.constant", "func.return"):
                    assert op.attributes["rkc.placement"].data in ("npu", "cpu"), op
                    assert ("rkc.reason" in op.attributes) == (
                        op.attributes["rkc.placement"].data == "cpu"), op
            assert_same_outputs(reference, run_module(placed, samples[0]))
            kinds.update(npu_kinds(placed))
        for target in (None, *TARGETS):
            low = lowered(module, target)
            check_lowered(low, samples[0], reference)
            if target is not None:
                fused = module.clone()
                run_passes(fused, FUSED[target])
                check_lowered(fused, samples[0], reference)
                kinds.update(post_kinds(fused))
        seen.update(kinds)
        examples.append(sum(kinds.values()))
        for kind in kinds:
            event(kind)

    exact()
    # derandomized: the same examples on every run of this code; the bounds are about
    # half of what was measured, so that they fail only if a kind stops being lowered
    print(f"\nops placed on the NPU (all lowered) and fused post ops in {len(examples)} "
          f"examples, both chips: {dict(sorted(seen.items()))}")
    assert len(examples) >= 120 and sum(map(bool, examples)) >= 60, examples
    for names, dtype, at_least in MIN_SEEN:
        count = sum(seen[f"{name} {dtype}"] for name in names)
        assert count >= at_least, f"vacuous: {count} of {names} in {dtype}: {dict(seen)}"


_VIEWS = ("nn.reshape", "nn.transpose", "nn.slice", "nn.split")
_EW = ("nn.add", "nn.sub", "nn.mul", "nn.max", "nn.min")
_POOLS = ("nn.max_pool2d", "nn.avg_pool2d", "nn.global_avg_pool", "nn.global_max_pool")
_POST = tuple(f"post {k}" for k in rknpu.EW_KINDS)
MIN_SEEN = [  # (op kinds, data type, minimum count over the examples and both chips)
    (("nn.conv2d",), "int8", 16), (("nn.conv2d",), "fp16", 24),
    (("nn.gemm", "nn.matmul"), "int8", 20), (("nn.gemm", "nn.matmul"), "fp16", 12),
    (_VIEWS, "int8", 20), (_VIEWS, "fp16", 20),
    (("nn.concat",), "int8", 7), (("nn.concat",), "fp16", 3),
    (_POOLS, "int8", 30), (_POOLS, "fp16", 12),
    (_EW, "int8", 18), (_EW, "fp16", 18),
    (("nn.sigmoid", "nn.tanh", "nn.hard_swish", "nn.hard_sigmoid", "nn.gelu", "nn.erf",
      "nn.leaky_relu", "nn.abs", "nn.neg", "nn.silu"), "int8", 30),
    (("nn.prelu", "nn.leaky_relu", "nn.abs", "nn.neg"), "fp16", 8),
    (("quant.requantize",), "int8", 9),
    (_POST, "int8", 1), (_POST, "fp16", 12),
]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_tiled_conv_equals_untiled(data):
    """Random height bands x output-channel groups on a lowered conv give the same
    integers as one task (each band reads only its rows, halo included)."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    depthwise = data.draw(st.booleans())
    c = data.draw(st.integers(1, 6))
    o = c if depthwise else data.draw(st.integers(1, 6))
    k = data.draw(st.integers(1, 4))
    stride, dilation = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 2))
    pads = tuple(data.draw(st.integers(0, k - 1)) for _ in range(4))
    h = data.draw(st.integers(dilation * (k - 1) + 1, 14))
    w_in = data.draw(st.integers(dilation * (k - 1) + 1, 8))
    xq = UniformQuantizedType.per_tensor(0.05, int(rng.integers(-20, 20)))
    yq = UniformQuantizedType.per_tensor(0.08, int(rng.integers(-20, 20)))
    weight = rng.standard_normal((o, 1 if depthwise else c, k, k)).astype(np.float32)
    wdata, wtype, _ = quantize_weight(weight, 0)
    x = nn.ConstantOp(rng.integers(-128, 128, (1, c, h, w_in)).astype(np.int8),
                      result_type=TensorType(xq, (1, c, h, w_in)))
    wc = nn.ConstantOp(wdata, result_type=wtype)
    props = {"strides": nn.i64_array((stride, stride)), "pads": nn.i64_array(pads),
             "dilations": nn.i64_array((dilation, dilation)),
             "group": nn.i64_attr(c if depthwise else 1)}
    oh = nn.conv_output_size(h, k, stride, pads[0], pads[2], dilation)
    ow = nn.conv_output_size(w_in, k, stride, pads[1], pads[3], dilation)
    conv = rknpu.ConvOp(x.output, wc.output, None, props, TensorType(yq, (1, o, oh, ow)))
    conv.verify()
    args = (x.to_numpy(), wdata)
    whole = _conv(conv, args)
    rows = sorted(set(data.draw(st.lists(st.integers(1, oh - 1), max_size=3))) if oh > 1
                  else [])
    groups = sorted(set(data.draw(st.lists(st.integers(1, o - 1), max_size=2))) if o > 1
                    else [])
    row_edges, group_edges = [0, *rows, oh], [0, *groups, o]
    bands = list(zip(row_edges, row_edges[1:], strict=False))
    channel_groups = list(zip(group_edges, group_edges[1:], strict=False))
    tiles = [(r0, r1, c0, c1, i % 3) for i, ((r0, r1), (c0, c1)) in enumerate(
        (r, g) for r in bands for g in channel_groups)]
    conv.attributes[rknpu.TILES_ATTR] = rknpu.tiles_attr(tiles)
    assert np.array_equal(_conv(conv, args), whole)


def _fixture(name: str):
    return quantize(VENDOR / f"{name}.onnx").module


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", ["conv_relu", "resblock", "mobilenet"])
def test_fixtures_lower_exactly(name: str, target: str):
    module = _fixture(name)
    raw = np.load(VENDOR / "test_input.npy").astype(np.float32)
    reference = run_module(module, [raw])
    low = lowered(module, target)
    counts = op_counts(low)
    print(f"\n{name} {target}: {dict(counts)}")
    check_lowered(low, [raw], reference)
    # resblock's gemm is a conv, between views of [1, 16] as [1, 16, 1, 1], and its int8
    # global average pool a depthwise conv with weights 1 (the PPU cannot rescale)
    assert counts["rknpu.conv"] == {"conv_relu": 1, "resblock": 4, "mobilenet": 3}[name]
    assert counts["rknpu.to_native"] == 1 and counts["rknpu.from_native"] == 1
    c2 = {"rk3588": 16, "rk3568": 8}[target]
    for op in main_function(low).body.block.ops:
        if isinstance(op, rknpu.ConvOp):
            assert op.output.type.get_shape()[4] == c2
    fused = module.clone()
    run_passes(fused, FUSED[target])
    check_lowered(fused, [raw], reference)


def test_lowered_ir_prints_and_parses():
    from xdsl.parser import Parser

    for spec in ("", ",rknpu-fuse"):
        low = lowered(_fixture("resblock"), "rk3588")
        run_passes(low, spec.lstrip(",") or "dce")
        text = str(low)
        again = Parser(make_context(), text).parse_module()
        again.verify()
        assert str(again) == text
    assert "post(" in text and "post_ops = [{" in text  # resblock's conv + add is fused


@functools.cache
def _ppocr_cls(dtype: str) -> ModuleOp:
    """PP-OCR cls quantized (callers clone it before changing it)."""
    shape = (1, 3, 48, 192)
    pre = Preprocess((127.5,), (127.5,))
    module = import_onnx(DATA / "ppocr_mobile_v2_cls.onnx", {"x": shape})
    samples = (load_dataset(DATA / "ppocr_calib" / "dataset.txt", ["x"], [shape], pre)
               if dtype == "int8" else None)
    return quantize_model(module, samples, preprocess=pre, dtype=dtype,
                          show_progress=False).module


@pytest.mark.parametrize("dtype", ["int8", "fp16"])
def test_ppocr_cls_lowers_exactly(dtype: str):
    """Every op rknpu-legalize places on the NPU is lowered (the matmul head and its
    reshape included), and the lowered and fused modules compute exactly what the
    quantized one does."""
    pytest.importorskip("PIL")
    from rkc.quant.dataset import read_image

    q = _ppocr_cls(dtype)
    x = read_image(DATA / "ppocr_cls_sample.png", (1, 3, 48, 192), False, "sample")
    reference = run_module(q, {"x": x})
    for target in TARGETS:
        placed = q.clone()
        run_passes(placed, f"rknpu-legalize{{target={target}}}")
        on_npu = npu_kinds(placed)
        low = lowered(q, target)
        counts = op_counts(low)
        print(f"\nppocr cls {dtype} {target}: {dict(counts)}")
        check_lowered(low, {"x": x}, reference)
        assert on_npu[f"nn.matmul {dtype}"] == 1 and on_npu[f"nn.reshape {dtype}"] == 1
        # int8 average pools (the SE blocks' global pools, decomposed into a (1, 16)
        # stride-16 pool -- a stride-1 conv over the rows of a view -- and the rest) are
        # depthwise convs
        pools_as_convs = on_npu["nn.global_avg_pool int8"] + on_npu["nn.avg_pool2d int8"]
        assert pools_as_convs == (20 if dtype == "int8" else 0)
        assert counts["rknpu.conv"] == on_npu[f"nn.conv2d {dtype}"] + 1 + pools_as_convs >= 50
        fused = q.clone()
        run_passes(fused, FUSED[target])
        check_lowered(fused, {"x": x}, reference)
        absorbed = sum(post_kinds(fused).values())
        assert absorbed >= 5 and op_counts(fused)["rknpu.ew"] == counts["rknpu.ew"] - absorbed


def _real_model(name: str, dtype: str) -> ModuleOp:
    if name == "cls":
        return _ppocr_cls(dtype)
    return quantize(DATA / "yolo_fastest_xl.onnx", Preprocess((0.0,), (255.0,)),
                    DATA / "ppocr_calib", dtype=dtype).module


@pytest.mark.parametrize("name, dtype", [
    ("cls", "int8"), ("cls", "fp16"), ("yolo", "fp16"),
    pytest.param("yolo", "int8", marks=pytest.mark.slow)])  # 8 s of calibration
def test_real_models_place_and_lower_alike(name: str, dtype: str):
    """rkc.lowering.legality and nn-to-rknpu agree on the real models: every op placed on
    the NPU becomes rknpu ops, on every chip (placement only, nothing is run). Yolo's
    channel slices (`Slice_229`, ...: channel 0 of 3) are views."""
    module = _real_model(name, dtype)
    for target in TARGETS:
        low = lowered(module, target)
        low.verify()
        assert not npu_ops_left_on_cpu(low), (target, npu_ops_left_on_cpu(low))
        placed = module.clone()
        run_passes(placed, f"rknpu-legalize{{target={target}}}")
        on_npu = npu_kinds(placed)
        assert on_npu[f"nn.conv2d {dtype}"] >= 50, on_npu
        if name == "yolo":  # views; rknpu-layout elides those whose native form is
            # their input's (channel 0 of a 3-channel tensor: one C2 block, the same bytes)
            run_passes(placed, "nn-to-rknpu")
            assert on_npu[f"nn.slice {dtype}"] == 8 and op_counts(placed)["rknpu.view"] == 8


def test_legality_rules_the_lowering_proved():
    """What nn-to-rknpu cannot lower, rknpu-legalize does not place on the NPU either:
    int8 prelu and an int8 gemm with alpha or beta != 1 (no integer semantics), a gemm
    bias that varies along the rows, a matmul weight with a zero point."""
    x8 = Block(arg_types=[TensorType(UniformQuantizedType.per_tensor(0.1, 0), (1, 4, 2, 2))])
    slope = nn.ConstantOp(np.ones((4, 1, 1), np.int8), result_type=TensorType(
        UniformQuantizedType.per_tensor(0.01, 0), (4, 1, 1)))
    prelu = nn.PReluOp(x8.args[0], slope.output)
    a = Block(arg_types=[TensorType(f16, (2, 8))]).args[0]
    b = nn.ConstantOp(np.ones((8, 3), np.float16)).output
    per_row = nn.GemmOp(a, b, nn.ConstantOp(np.ones((2, 3), np.float16)).output)
    per_col = nn.GemmOp(a, b, nn.ConstantOp(np.ones((1, 3), np.float16)).output)
    a8 = Block(arg_types=[TensorType(UniformQuantizedType.per_tensor(0.1, 0), (1, 8))])
    b8 = nn.ConstantOp(np.ones((8, 3), np.int8), result_type=TensorType(
        UniformQuantizedType.per_tensor(0.01, 5), (8, 3))).output
    matmul = nn.MatmulOp(a8.args[0], b8)
    scaled = nn.GemmOp(a8.args[0], b8, alpha=0.5)  # no integer semantics
    for target in (RK3588, RK3568):
        assert npu_obstacle(scaled, target) == (
            "an int8 gemm needs alpha = beta = 1 (nn-quantize folds them into B and C)")
        assert npu_obstacle(prelu, target) == (
            "data type int8: int8 prelu has no integer semantics (nn-quantize keeps it "
            "float)")
        assert npu_obstacle(per_row, target) == (
            "C 2x3 varies along the rows: not a per-channel bias (the DPU adds one bias "
            "per output channel)")
        assert npu_obstacle(per_col, target) is None
        assert npu_obstacle(matmul, target) == (
            "matmul weight with a zero point (the CNA weight offset is not modelled)")
    assert obstacle(prelu).startswith("int8 prelu has no integer semantics")
    assert obstacle(per_row).startswith("C [2, 3] varies along the rows")
    assert obstacle(per_col) is None
    assert obstacle(matmul).startswith("matmul weight with a zero point")
    assert obstacle(scaled) == npu_obstacle(scaled, RK3588)


# ---------------------------------------------------------------------------
# pools and fp16 clips the PPU / DPU cannot take as they are
# ---------------------------------------------------------------------------
def _pool_chain_model() -> ModuleOp:
    """conv + clip(0, 6), a padded avg pool (padding counted), a ceil-mode max pool and a
    global average pool (12 x 12: even rows, as RK3568's PPU needs)."""
    from onnx import helper
    from test_frontend_onnx import make_model

    rng = np.random.default_rng(5)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["c", "lo", "hi"], ["r"]),
        helper.make_node("AveragePool", ["r"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         count_include_pad=1),
        helper.make_node("MaxPool", ["a"], ["m"], kernel_shape=[3, 3], strides=[2, 2],
                         ceil_mode=1),
        helper.make_node("GlobalAveragePool", ["m"], ["y"])]
    inits = {"w": (rng.standard_normal((16, 8, 3, 3)) * 0.2).astype(np.float32),
             "lo": np.float32(0.0), "hi": np.float32(6.0)}
    model = make_model(nodes, {"x": [1, 8, 12, 12]}, inits=inits)
    return import_onnx(model)


@pytest.mark.parametrize("dtype", ["int8", "fp16"])
def test_pools_and_clips_lower_to_what_the_hardware_computes(dtype):
    """int8 average pools become depthwise convs with weights 1 (the PPU cannot rescale
    by s_x / (s_y * n)), a ceil-mode max pool an explicitly padded one, an fp16 clip the
    conv's relu and an fp16 min stage; fp16 average pooling with padding stays on the CPU.
    Every lowered module computes exactly what the quantized one does."""
    prepared, samples = prepare(_pool_chain_model(), 3, count=2)
    module = quantized(prepared, "nn-quantize" if dtype == "int8"
                       else "nn-quantize{dtype=fp16}")
    reference = run_module(module, samples[0])
    for target in TARGETS:
        low = lowered(module, target)
        check_lowered(low, samples[0], reference)
        ops = list(main_function(low).body.block.ops)
        pools = [op for op in ops if isinstance(op, rknpu.PoolOp)]
        assert [p.kind.data for p in pools] == (["max"] if dtype == "int8" else
                                                ["max", "avg"])
        assert all(not p.ceil_mode.value.data for p in pools)
        assert tuple(pools[0].pads.get_values()) == (0, 0, 1, 1)  # the ceil overhang
        convs = [op for op in ops if isinstance(op, rknpu.ConvOp)]
        assert len(convs) == (3 if dtype == "int8" else 1)
        for conv in convs[1:]:  # the average pools: weights 1, one per channel
            assert conv.group.value.data == 16
            assert np.all(nn.constant_value(conv.weight) == 1)
        cpu = [op.reason.data for op in ops if isinstance(op, rknpu.CpuOp)]
        assert any(r.startswith("fp16 avg pool with padding") for r in cpu) == (
            dtype == "fp16")
        if dtype == "fp16":
            ew = [(op.kind.data, float(nn.constant_value(op.inputs[1]).flat[0]))
                  for op in ops if isinstance(op, rknpu.EwOp)]
            assert ew == [("min", 6.0)] and convs[0].activation.data == "relu"
        fused = module.clone()
        run_passes(fused, FUSED[target])
        check_lowered(fused, samples[0], reference)
