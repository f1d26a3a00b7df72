"""bench/models.py: the random-weight benchmark models import with rkc, agree with
onnxruntime on output shapes (and, for resnet18 / mobilenetv2, on values through our
float interpreter), are deterministic, and `--calib` writes a loadable dataset."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from rkc.frontend.onnx import import_onnx
from rkc.graph import main_function
from rkc.interpreter import run_module
from rkc.quant.analysis import cosine
from rkc.quant.dataset import Preprocess, load_dataset

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load_bench_models():
    spec = importlib.util.spec_from_file_location("rkc_bench_models", BENCH / "models.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


models = _load_bench_models()


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bench_models")
    return {name: models.write_model(name, root / f"{name}.onnx") for name in models.MODELS}


def _normalised(name: str) -> np.ndarray:
    mean, std = (np.array(v, np.float32)[None, :, None, None] for v in models.PREPROCESS[name])
    return ((models.calibration_image(models.INPUT_SIZE[name], 0) - mean) / std).astype(
        np.float32)


@pytest.mark.parametrize("name", list(models.MODELS))
def test_imports_with_onnxruntime_output_shapes(name: str, written):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(written[name]))
    reference = session.run(None, {models.INPUT_NAME: _normalised(name)})
    module = import_onnx(written[name])
    results = main_function(module).function_type.outputs.data
    assert [tuple(t.get_shape()) for t in results] == [r.shape for r in reference]
    for r in reference:  # activations stay sane (no blow-up, no collapse)
        assert 1e-3 < float(np.abs(r).max()) < 1e3


@pytest.mark.parametrize("name", ["mobilenetv2", "resnet18"])
def test_float_interpreter_matches_onnxruntime(name: str, written):
    ort = pytest.importorskip("onnxruntime")
    x = _normalised(name)
    (reference,) = ort.InferenceSession(str(written[name])).run(None, {models.INPUT_NAME: x})
    (ours,) = run_module(import_onnx(written[name]), {models.INPUT_NAME: x}).values()
    assert ours.shape == reference.shape == (1, 1000)
    assert cosine(ours, reference) > 0.99999
    assert np.abs(ours - reference).max() < 1e-3 * np.abs(reference).max()


def test_deterministic_bytes(tmp_path: Path, written):
    again = models.write_model("mobilenetv2", tmp_path / "again.onnx")
    assert again.read_bytes() == written["mobilenetv2"].read_bytes()


def test_cli_writes_model_and_calibration(tmp_path: Path):
    assert models.main(["resnet18", "-o", str(tmp_path / "r.onnx"),
                        "--calib", "3", str(tmp_path / "calib")]) == 0
    samples = load_dataset(tmp_path / "calib" / "dataset.txt", [models.INPUT_NAME],
                           [(1, 3, 224, 224)], Preprocess())
    assert len(samples) == 3
    first = samples[0][models.INPUT_NAME]
    assert first.dtype == np.float32 and 0.0 <= first.min() and first.max() <= 255.0
    assert not np.array_equal(first, samples[1][models.INPUT_NAME])
    assert np.array_equal(first, models.calibration_image(224, 0))
    with pytest.raises(ValueError, match="unknown benchmark model"):
        models.build_model("vgg16")
