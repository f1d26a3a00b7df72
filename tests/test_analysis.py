"""Per-layer accuracy analysis, the int8 lint and automatic hybrid quantization."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from rkc.frontend.onnx import import_onnx
from rkc.quant.analysis import cosine, layer_errors
from rkc.quant.analysis_report import format_errors, plot_errors, worst_layers, write_csv
from rkc.quant.dataset import Preprocess, load_dataset
from rkc.quant.hybrid import PRECISION_ATTR, auto_hybrid
from rkc.quant.lint import lint
from rkc.quant.pipeline import prepare_float, quantize_model

DATA = Path(__file__).parent / "data"
VENDOR = DATA / "vendor"
NORMALISE = Preprocess((127.5,) * 3, (127.5,) * 3)


@pytest.fixture(scope="module")
def resblock():
    module = import_onnx(VENDOR / "resblock.onnx")
    samples = load_dataset(VENDOR / "dataset.txt", ["input"], [(1, 3, 32, 32)], NORMALISE)
    result = quantize_model(module, samples, preprocess=NORMALISE, show_progress=False)
    test_input = {"input": np.load(VENDOR / "test_input.npy")}
    return result, samples, test_input


def test_layer_errors_match_the_outputs(resblock):
    result, _, test_input = resblock
    errors = layer_errors(result.float_module, result.module, test_input)
    names = [e.name for e in errors]
    assert {"Conv_0", "Conv_4", "Add_5", "Gemm_9"} <= set(names)
    by_name = {e.name: e for e in errors}
    # the float normalisation ops are identical in both modules
    assert by_name["input_normalize"].precision == "float"
    assert by_name["input_normalize"].cos_entire == 1.0
    # int8 layers: close but not exact, and a first layer's error is all its own
    conv0 = by_name["Conv_0"]
    assert conv0.precision == "int8"
    assert 0.999 < conv0.cos_entire < 1.0
    assert conv0.cos_single == pytest.approx(conv0.cos_entire, abs=1e-12)
    # the last layer's "entire" error is the model output's error
    from rkc.interpreter import run_module

    (want,) = run_module(result.float_module, test_input).values()
    (got,) = run_module(result.module, test_input).values()
    assert by_name["Gemm_9"].cos_entire == pytest.approx(cosine(got, want), abs=1e-9)
    # accumulated error is never better than the layer's own error by much
    for e in errors:
        if not math.isnan(e.cos_single):
            assert e.cos_entire <= e.cos_single + 1e-4


def test_report_table_csv_and_plot(resblock, tmp_path):
    pytest.importorskip("matplotlib")
    result, _, test_input = resblock
    errors = layer_errors(result.float_module, result.module, test_input)
    table = format_errors(errors)
    assert "entire cos" in table and "Conv_4" in table
    write_csv(errors, tmp_path / "e.csv")
    lines = (tmp_path / "e.csv").read_text().splitlines()
    assert lines[0].startswith("layer,op,precision")
    assert len(lines) == len(errors) + 1
    plot_errors(errors, tmp_path / "e.png")
    assert (tmp_path / "e.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    worst = worst_layers(errors, 3)
    assert worst == sorted(worst, key=lambda e: e.cos_single)


def test_auto_hybrid_moves_weak_layers_to_fp16(resblock):
    result, samples, test_input = resblock
    errors = layer_errors(result.float_module, result.module, samples[0])
    int8 = sorted(e.cos_single for e in errors if e.precision == "int8")
    # a threshold between the two weakest layers moves exactly the weakest one
    threshold = (int8[0] + int8[1]) / 2
    hybrid, names = auto_hybrid(result, samples[:1], threshold)
    assert len(names) == 1
    assert hybrid.counts["fp16"] >= 1
    marked = [op for op in hybrid.float_module.walk() if PRECISION_ATTR in op.attributes]
    assert [op.attributes[PRECISION_ATTR].data for op in marked] == ["fp16"]
    # nothing below the threshold of the weakest layer: unchanged
    same, none = auto_hybrid(result, samples[:1], int8[0] - 1e-9)
    assert none == [] and same is result


def _yolo_float():
    return prepare_float(import_onnx(DATA / "yolo_fastest_xl.onnx"), Preprocess(None, (255.0,)))


def test_lint_finds_boxes_next_to_scores():
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 320, 320)).astype(np.float32)
    warnings = lint(_yolo_float(), {"input": x})
    concat = [w for w in warnings if "concat inputs span ranges" in w.message]
    assert concat, warnings
    assert all(w.op.startswith("Concat_") for w in concat)


def test_lint_finds_an_activation_that_cannot_fuse():
    from xdsl.builder import ImplicitBuilder
    from xdsl.dialects import func
    from xdsl.dialects.builtin import ModuleOp, TensorType, f32

    from rkc.dialects import nn

    t = TensorType(f32, [1, 2, 4, 4])
    module = ModuleOp([])
    with ImplicitBuilder(module.body):
        fn = func.FuncOp("main", ((t,), (t,)))
        with ImplicitBuilder(fn.body) as (x,):
            w = nn.ConstantOp(np.ones((2, 2, 1, 1), np.float32)).output
            conv = nn.Conv2dOp(x, w, name="conv")
            relu = nn.ReluOp(conv.output, name="relu")
            func.ReturnOp(nn.AddOp(relu.output, conv.output).output)
    sample = {"input0": np.ones((1, 2, 4, 4), np.float32)}
    (warning,) = lint(module, sample)
    assert warning.op == "relu"
    assert "cannot fuse into conv" in warning.message and "2 consumers" in warning.message


def test_rkc_analyze_cli(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from rkc.cli import main

    csv_path, png_path = tmp_path / "layers.csv", tmp_path / "layers.png"
    main(["analyze", str(VENDOR / "resblock.onnx"), "--dataset", str(VENDOR / "dataset.txt"),
          "--mean", "127.5,127.5,127.5", "--std", "127.5,127.5,127.5", "-q",
          "--input", f"input={VENDOR / 'test_input.npy'}", "--csv", str(csv_path),
          "--plot", str(png_path)])
    out = capsys.readouterr().out
    assert "entire cos" in out and "Conv_4" in out and "worst layers" in out
    assert csv_path.read_text().count("\n") >= 9
    assert png_path.stat().st_size > 10_000
