"""The compile-time shortcuts change no result: the float conv kernel's im2col fill and
the in-place sigmoid, ONNX shape inference without weight data, lint magnitudes recorded
during calibration, and a prepared module handed to quantize_model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rkc.frontend.onnx as frontend
from rkc.frontend.onnx import import_onnx
from rkc.graph import input_names, main_function
from rkc.interpreter import kernels
from rkc.quant.dataset import Preprocess, load_dataset
from rkc.quant.lint import MagnitudeRecorder, _magnitudes, lint
from rkc.quant.pipeline import prepare_float, quantize_model

VENDOR = Path(__file__).parent / "data" / "vendor"
NORM = Preprocess((127.5,), (127.5,))


def reference_conv2d(x, w, b, strides, pads, dilations, group):
    """The straightforward im2col formulation the kernel must reproduce bit for bit."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = strides, dilations, pads
    og = o // group
    oh = (h + pt + pb - ((kh - 1) * dh + 1)) // sh + 1
    ow = (wd + pl + pr - ((kw - 1) * dw + 1)) // sw + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    win = np.lib.stride_tricks.sliding_window_view(
        xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3)
    )[:, :, : sh * (oh - 1) + 1 : sh, : sw * (ow - 1) + 1 : sw, ::dh, ::dw]
    cols = win.reshape(n, group, cg, oh, ow, kh, kw).transpose(0, 1, 3, 4, 2, 5, 6)
    cols = cols.reshape(n, group, oh * ow, cg * kh * kw)
    y = np.matmul(cols, w.reshape(group, og, cg * kh * kw).transpose(0, 2, 1))
    y = y.transpose(0, 1, 3, 2).reshape(n, o, oh, ow)
    if b is not None:
        y = y + b.reshape(1, o, 1, 1)
    return np.ascontiguousarray(y, dtype=np.float32)


@settings(max_examples=150, deadline=None)
@given(n=st.sampled_from([1, 2]), group=st.sampled_from([1, 2, 3]),
       cg=st.sampled_from([2, 3, 8, 17, 64]), og=st.sampled_from([1, 3, 16, 40]),
       h=st.integers(1, 20), wd=st.integers(1, 20), kh=st.sampled_from([1, 2, 3, 5, 7]),
       kw=st.sampled_from([1, 3]), sh=st.integers(1, 3), sw=st.integers(1, 2),
       dh=st.integers(1, 2), dw=st.integers(1, 2),
       pads=st.tuples(*[st.integers(0, 3)] * 4), bias=st.booleans(),
       seed=st.integers(0, 2**16))
def test_conv2d_bit_identical_to_reference(n, group, cg, og, h, wd, kh, kw, sh, sw, dh, dw,
                                           pads, bias, seed):
    if h + pads[0] + pads[2] < (kh - 1) * dh + 1 or wd + pads[1] + pads[3] < (kw - 1) * dw + 1:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, cg * group, h, wd)).astype(np.float32)
    w = rng.standard_normal((og * group, cg, kh, kw)).astype(np.float32)
    b = rng.standard_normal(og * group).astype(np.float32) if bias else None
    args = (x, w, b, (sh, sw), pads, (dh, dw), group)
    got, want = kernels.conv2d(*args), reference_conv2d(*args)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    assert got.shape == want.shape and np.array_equal(got, want)


def test_sigmoid_bit_identical_to_reference():
    """Every 4099th float32 bit pattern (NaNs, infinities, subnormals included)."""
    x = np.arange(0, 2**32, 4099, dtype=np.uint64).astype(np.uint32).view(np.float32)
    with np.errstate(invalid="ignore"):
        e = np.exp(-np.abs(x))
        one = np.float32(1.0)
        want = np.where(x >= 0, one / (one + e), e / (one + e)).astype(np.float32)
        got = kernels.sigmoid(x)
    assert got.dtype == np.float32
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_shape_inference_without_weight_data_imports_the_same(monkeypatch):
    model, shapes = VENDOR.parent / "yolo_fastest_xl.onnx", {"input": (1, 3, 320, 320)}
    original = frontend._load(model)
    light = frontend._without_large_initializers(original)
    large = {t.name for t in original.graph.initializer
             if np.prod(t.dims) >= frontend.SHAPE_ONLY_INITIALIZER_ELEMENTS}
    assert large and not large & {t.name for t in light.graph.initializer}
    assert large <= {vi.name for vi in light.graph.input}
    fast, inferred = str(import_onnx(model, shapes)), frontend._inferred_shapes(original, shapes)
    monkeypatch.setattr(frontend, "SHAPE_ONLY_INITIALIZER_ELEMENTS", 1 << 62)
    assert str(import_onnx(model, shapes)) == fast
    assert frontend._inferred_shapes(original, shapes) == inferred and len(inferred) > 100


def _samples(module, count: int):
    fn = main_function(module)
    shapes = [tuple(t.get_shape()) for t in fn.function_type.inputs.data]
    return load_dataset(VENDOR / "dataset.txt", input_names(fn), shapes, NORM)[:count]


@pytest.mark.parametrize("name", ["resblock", "mobilenet"])
def test_recorded_magnitudes_and_prepared_module_change_nothing(name: str):
    module = import_onnx(VENDOR / f"{name}.onnx")
    samples = _samples(module, 3)
    plain = quantize_model(module, samples, preprocess=NORM, show_progress=False)
    prepared = prepare_float(module, NORM)
    expected = _magnitudes(prepared, samples[0])
    recorder = MagnitudeRecorder()
    reused = quantize_model(module, samples, preprocess=NORM, show_progress=False,
                            prepared=prepared, listeners=[recorder])
    assert reused.float_module is prepared
    assert str(reused.module) == str(plain.module)
    assert str(reused.float_module) == str(plain.float_module)
    assert recorder.magnitudes == expected and len(expected) > 3
    assert lint(prepared, magnitudes=recorder.magnitudes) == lint(
        prepare_float(module, NORM), samples[0])
