"""The runtime (rkc.runtime): compiled programs run on the register-level simulator.

For the fixture models and hypothesis-generated graphs, on RK3588 and RK3568, the
simulated program's outputs must equal the rknpu interpreter's (`run_module` of the
lowered module) exactly when weights are quantized per tensor. With per-channel weights
the emitters split each channel's requantization into a 16-bit channel multiplier
(>> 14) and one output converter (`rkc.backends.weights.split_requant`), a second
rounding: the simulator then differs from the interpreter by at most one step on a few
values, which these tests bound and count (see docs/simulator.md)."""

from __future__ import annotations

import sys
from collections import Counter
from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_quantize_fixtures import VENDOR, quantize

from rkc.backends.codegen import CodegenError, compile_program
from rkc.backends.program import load_program, program_bytes
from rkc.cli import main
from rkc.dialects import nn
from rkc.errors import RkcError
from rkc.graph import main_function
from rkc.interpreter import run_module
from rkc.lowering.pipeline import lower
from rkc.runtime import ProgramRunner, RKNNLite

CHIPS = ("rk3588", "rk3568")
FIXTURES = ("conv_relu", "resblock", "mobilenet")   # the fixtures codegen compiles today


def _inputs(module, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for t in main_function(module).function_type.inputs.data:
        dtype = nn.numpy_dtype(t.get_element_type())
        shape = t.get_shape()
        out.append(rng.standard_normal(shape).astype(dtype) if dtype.kind == "f"
                   else rng.integers(-128, 128, shape).astype(dtype))
    return out


@cache
def _compiled(name: str, chip: str, method: str):
    low = lower(quantize(VENDOR / f"{name}.onnx", method=method).module, chip)
    return low, compile_program(low, chip)


@pytest.mark.parametrize("method", ["layer", "channel"])
@pytest.mark.parametrize("chip", CHIPS)
@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_runs_exactly(name, chip, method):
    """Per-tensor weights use the vendor's split requantization (exact for one multiplier),
    per-channel weights the exact stream (`rkc.lowering.dram.uses_exact_stream`): the
    simulated program equals the rknpu interpreter bit for bit either way."""
    low, program = _compiled(name, chip, method)
    x = _inputs(low)
    runner = ProgramRunner(load_program(program_bytes(program)))
    got = runner.run(x)
    ref = run_module(low, x)
    assert runner.tasks_run == program.task_count > 0
    for key in ref:
        np.testing.assert_array_equal(got[key], ref[key])


REAL_MODELS = ["ppocr_mobile_v2_cls", "ppocr_v4_det", "yolo_fastest_xl"]


@pytest.mark.slow
@pytest.mark.parametrize("chip", CHIPS)
@pytest.mark.parametrize("name", REAL_MODELS)
def test_real_models_run_exactly_on_their_images(name, chip):
    """The compiled real models (int8, per-channel, calibrated on the PP-OCR images) run in
    the simulator on their test images and equal the rknpu interpreter and the quantized
    nn interpreter bit for bit (cls 84 tasks, det 177 / 197, yolo 123 / 130)."""
    pytest.importorskip("PIL")
    from test_quantize_fixtures import DATA, REAL

    from rkc.frontend.onnx import import_onnx
    from rkc.quant.dataset import load_dataset, read_image
    from rkc.quant.pipeline import quantize_model

    input_name, shape, preprocess, image = REAL[name]
    module = import_onnx(DATA / f"{name}.onnx", {input_name: shape})
    samples = load_dataset(DATA / "ppocr_calib" / "dataset.txt", [input_name], [shape],
                           preprocess)
    q = quantize_model(module, samples, preprocess=preprocess, show_progress=False).module
    x = [read_image(DATA / image, shape, False, image)]
    low = lower(q, chip)
    program = load_program(program_bytes(compile_program(low, chip)))
    got = ProgramRunner(program).run(x)
    for want in (run_module(low, x), run_module(q, x)):
        assert set(got) == set(want)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


@st.composite
def npu_graphs(draw) -> tuple[bytes, tuple[int, ...]]:
    """A small ONNX model of the layers codegen maps to tasks: convs (direct, depthwise,
    strides, pads, dilations, kernel 1-3) with ReLU / Clip(0, 6), max pools, residual
    adds of two branches, and add / sub / mul / max / min of a value and its max pool.
    Returns the model bytes and its input shape."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    c = draw(st.integers(1, 24))
    h, w = draw(st.integers(3, 14)), draw(st.integers(3, 14))
    shape = (1, c, h, w)
    nodes, inits, counter = [], [], iter(range(1000))
    cur = "x"

    def conv(src, cin, hh, ww, cout, depthwise, k, stride, pad, dil, act):
        n = next(counter)
        group = cin if depthwise else 1
        cout = cin if depthwise else cout
        wt = rng.normal(0, (2.0 / (cin // group * k * k)) ** 0.5, (cout, cin // group, k, k))
        inits.append(helper.make_tensor(f"w{n}", TensorProto.FLOAT, wt.shape,
                                        wt.astype(np.float32).ravel()))
        inits.append(helper.make_tensor(f"b{n}", TensorProto.FLOAT, (cout,),
                                        rng.normal(0, 0.1, cout).astype(np.float32)))
        nodes.append(helper.make_node("Conv", [src, f"w{n}", f"b{n}"], [f"c{n}"],
                                      kernel_shape=[k, k], strides=[stride, stride],
                                      pads=[pad] * 4, dilations=[dil, dil], group=group))
        out = f"c{n}"
        if act == "relu":
            nodes.append(helper.make_node("Relu", [out], [f"r{n}"]))
            out = f"r{n}"
        elif act == "clip":
            inits.append(helper.make_tensor(f"lo{n}", TensorProto.FLOAT, (), [0.0]))
            inits.append(helper.make_tensor(f"hi{n}", TensorProto.FLOAT, (), [6.0]))
            nodes.append(helper.make_node("Clip", [out, f"lo{n}", f"hi{n}"], [f"r{n}"]))
            out = f"r{n}"
        ext = dil * (k - 1) + 1
        return out, cout, (hh + 2 * pad - ext) // stride + 1, (ww + 2 * pad - ext) // stride + 1

    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["conv", "conv", "dw", "pool", "residual", "ew"]))
        if kind == "ew":   # an elementwise op of a value and its 3x3 max pool
            n = next(counter)
            op = draw(st.sampled_from(["Add", "Sub", "Mul", "Max", "Min"]))
            nodes.append(helper.make_node("MaxPool", [cur], [f"q{n}"], kernel_shape=[3, 3],
                                          strides=[1, 1], pads=[1, 1, 1, 1]))
            nodes.append(helper.make_node(op, [f"q{n}", cur], [f"e{n}"]))
            cur = f"e{n}"
            continue
        if kind == "pool" and h >= 2 and w >= 2:
            n = next(counter)
            nodes.append(helper.make_node("MaxPool", [cur], [f"p{n}"], kernel_shape=[2, 2],
                                          strides=[2, 2]))
            cur, h, w = f"p{n}", h // 2, w // 2
            continue
        k = draw(st.integers(1, 3))
        stride = draw(st.integers(1, 2)) if kind != "residual" else 1
        dil = draw(st.integers(1, 2)) if k > 1 else 1
        pad = (dil * (k - 1)) // 2 if kind == "residual" or draw(st.booleans()) else 0
        if (h + 2 * pad - dil * (k - 1) - 1) < 0 or (w + 2 * pad - dil * (k - 1) - 1) < 0:
            continue
        act = draw(st.sampled_from([None, "relu", "clip"]))
        cout = draw(st.integers(1, 40))
        if kind == "residual" and k % 2:
            a, ca, ha, wa = conv(cur, c, h, w, c, False, k, 1, pad, dil, act)
            n = next(counter)
            nodes.append(helper.make_node("Add", [a, cur], [f"s{n}"]))
            cur = f"s{n}"
            continue
        cur, c, h, w = conv(cur, c, h, w, cout, kind == "dw", k, stride, pad, dil, act)
    graph = helper.make_graph(
        nodes or [helper.make_node("Relu", ["x"], ["y0"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(cur if nodes else "y0", TensorProto.FLOAT, None)],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return model.SerializeToString(), shape


def test_random_graphs_run_exactly(tmp_path_factory):
    """Hypothesis ONNX graphs, int8 with per-tensor or per-channel weights, both chips:
    compiled, simulated == interpreted, exactly."""
    from rkc.frontend.onnx import import_onnx
    from rkc.quant.dataset import Preprocess
    from rkc.quant.pipeline import quantize_model

    seen: Counter = Counter()
    folder = tmp_path_factory.mktemp("graphs")

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(npu_graphs(), st.integers(0, 2**32 - 1), st.sampled_from(["layer", "channel"]))
    def exact(case, seed, method):
        data, shape = case
        path = folder / "g.onnx"
        path.write_bytes(data)
        rng = np.random.default_rng(seed)
        samples = [{"x": rng.standard_normal(shape).astype(np.float32)} for _ in range(3)]
        module = quantize_model(import_onnx(path), samples, preprocess=Preprocess(),
                                method=method, show_progress=False).module
        for chip in CHIPS:
            low = lower(module, chip)
            try:
                program = compile_program(low, chip)
            except CodegenError as e:
                seen["not compiled: " + str(e).split(": ")[-1][:60]] += 1
                continue
            runner = ProgramRunner(program)
            got = runner.run(samples[0])
            ref = run_module(low, samples[0])
            for key in ref:
                np.testing.assert_array_equal(got[key], ref[key])
            seen["simulated"] += 1
            seen[f"simulated {method}"] += 1
            seen["simulated with NPU tasks"] += runner.tasks_run > 0
            seen["tasks"] += runner.tasks_run
            seen.update(f"{kind} tasks" for kind in runner.task_kinds.elements())

    exact()
    print(f"\nrandom graphs x chips: {dict(seen)}", file=sys.stderr)
    assert seen["simulated with NPU tasks"] >= 50 and seen["tasks"] >= 80, dict(seen)
    assert min(seen["conv tasks"], seen["pool tasks"], seen["ew tasks"]) >= 5, dict(seen)
    assert min(seen["simulated layer"], seen["simulated channel"]) >= 20, dict(seen)
    assert not [k for k in seen if k.startswith("not compiled")], dict(seen)


def test_rknnlite_api_and_cli(tmp_path, capsys):
    low, program = _compiled("conv_relu", "rk3588", "layer")
    path = tmp_path / "m.rknn"
    path.write_bytes(program_bytes(program))
    (x,) = _inputs(low, 3)
    ref = run_module(low, [x])
    lite = RKNNLite()
    assert lite.load_rknn(path) == 0
    with pytest.raises(RkcError, match="core mask"):
        lite.init_runtime(core_mask=8)
    assert lite.init_runtime(core_mask=RKNNLite.NPU_CORE_0_1_2) == 0
    (out,) = lite.inference([x])
    np.testing.assert_array_equal(out, next(iter(ref.values())))
    (nhwc,) = lite.inference([x.transpose(0, 2, 3, 1)], data_format="nhwc")
    np.testing.assert_array_equal(nhwc, out)
    lite.release()
    with pytest.raises(RkcError, match="init_runtime first"):
        lite.inference([x])
    name = program.inputs[0].name
    np.save(tmp_path / "x.npy", x)
    main(["run", str(path), "--input", f"{name}={tmp_path / 'x.npy'}", "--output",
          str(tmp_path / "out.npz")])
    saved = np.load(tmp_path / "out.npz")
    np.testing.assert_array_equal(saved[program.outputs[0].name], out)
    bad = tmp_path / "bad.rknn"
    bad.write_bytes(b"RKNN" + b"\0" * 60)
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(bad), "--input", f"{name}={tmp_path / 'x.npy'}"])
    assert exit_info.value.code == 2
    assert not (tmp_path / "bad.npz").exists()


def test_post_operand_of_a_conv_without_bias_is_in_memory():
    """Regression: PP-OCR cls with per-tensor weights, random inputs. Its last task
    (MatMul@0: a 1x1 conv without bias, the bias add fused as an EW stage reading a
    per-channel int8 constant) read zeros: codegen took the conv's third operand for its
    bias and left the constant to the conv's packer, so nothing wrote it to the weight
    arena. Simulated [-33, 52] against the interpreter's [-32, 50]; now equal."""
    from test_quantize_fixtures import DATA, REAL

    from rkc.frontend.onnx import import_onnx
    from rkc.quant.dataset import Preprocess
    from rkc.quant.pipeline import quantize_model

    input_name, shape, _, _ = REAL["ppocr_mobile_v2_cls"]
    module = import_onnx(DATA / "ppocr_mobile_v2_cls.onnx", {input_name: shape})
    rng = np.random.default_rng(0)
    samples = [{input_name: rng.uniform(0, 255, shape).astype(np.float32)} for _ in range(4)]
    q = quantize_model(module, samples, preprocess=Preprocess((127.5,), (127.5,)),
                       method="layer", show_progress=False).module
    low = lower(q, "rk3588")
    x = [np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)]
    got = ProgramRunner(compile_program(low, "rk3588")).run(x)
    want = run_module(low, x)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key])
