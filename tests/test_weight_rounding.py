"""GPTQ weight rounding (rkc.quant.weight_rounding): patches, the rounding itself, and
the pipeline contract (weights on the int8 grid, scales unchanged, reproducible with
rkc-opt, the reference float module untouched)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_quantize_fixtures import NORM, VENDOR, quantize, samples_for

from rkc.dialects import nn
from rkc.frontend.onnx import import_onnx
from rkc.interpreter import kernels
from rkc.quant import qparams
from rkc.quant.hybrid import auto_hybrid
from rkc.quant.pipeline import CLEANUP, run_passes
from rkc.quant.weight_rounding import conv_output_shape, conv_patches, gptq


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_patches_times_weight_is_the_convolution(data):
    c = data.draw(st.integers(1, 4))
    o = data.draw(st.integers(1, 3))
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    strides = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    dilations = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    pads = tuple(data.draw(st.integers(0, 2)) for _ in range(4))
    h = data.draw(st.integers(dilations[0] * (kh - 1) + 1, 9))
    w = data.draw(st.integers(dilations[1] * (kw - 1) + 1, 9))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    x = rng.standard_normal((2, c, h, w)).astype(np.float32)
    weight = rng.standard_normal((o, c, kh, kw)).astype(np.float32)
    expected = kernels.conv2d(x, weight, None, strides, pads, dilations, 1)
    oh, ow = conv_output_shape(x.shape, (kh, kw), strides, pads, dilations)
    assert expected.shape == (2, o, oh, ow)
    rows = conv_patches(x, (kh, kw), strides, pads, dilations)
    got = (rows.astype(np.float64) @ weight.reshape(o, -1).T.astype(np.float64))
    got = got.reshape(2, oh, ow, o).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    positions = np.sort(rng.choice(len(rows), min(5, len(rows)), replace=False))
    assert np.array_equal(conv_patches(x, (kh, kw), strides, pads, dilations, positions),
                          rows[positions])


def _layer_error(weight, q, scales, hessian):
    d = weight - q * scales[..., None]
    return float(np.einsum("gok,gkl,gol->", d, hessian, d))


def test_gptq_lowers_the_layer_error_and_keeps_the_scales():
    rng = np.random.default_rng(7)
    k, rows = 48, 4000
    mixing = rng.standard_normal((k, k)) * 0.3 + np.eye(k)  # correlated inputs
    x = rng.standard_normal((rows, k)) @ mixing
    hessian = (x.T @ x)[None]
    weight = rng.standard_normal((1, 16, k))
    scales = np.abs(weight).max(axis=2) / 127
    q = gptq(weight, scales, hessian)
    nearest = np.clip(np.rint(weight / scales[..., None]), -127, 127)
    assert q.dtype == np.int64 and np.abs(q).max() <= 127
    # each row's largest element still sits at +-127 steps: the scale it defines holds
    peak = np.abs(weight).argmax(axis=2)
    assert np.array_equal(np.take_along_axis(np.abs(q), peak[..., None], 2)[..., 0],
                          np.full((1, 16), 127))
    assert np.array_equal(np.abs(q).max(axis=2), np.full((1, 16), 127))
    ours, plain = (_layer_error(weight, q, scales, hessian),
                   _layer_error(weight, nearest, scales, hessian))
    print(f"\nlayer error: gptq {ours:.4g}, nearest {plain:.4g} ({ours / plain:.2f}x)")
    assert ours < 0.6 * plain
    assert np.count_nonzero(q != nearest) > 0


def test_gptq_groups_are_independent():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 500, 9))
    hessian = np.einsum("gmk,gml->gkl", x, x)
    weight = rng.standard_normal((2, 1, 9))
    scales = np.abs(weight).max(axis=2) / 127
    both = gptq(weight, scales, hessian)
    for g in range(2):
        assert np.array_equal(both[g], gptq(weight[g:g + 1], scales[g:g + 1],
                                            hessian[g:g + 1])[0])


def _mobilenet(weight_rounding: str, method: str = "channel"):
    return quantize(VENDOR / "mobilenet.onnx", weight_rounding=weight_rounding, method=method)


def _weights(module) -> dict[str, tuple[np.ndarray, object]]:
    """node name -> (weight array, weight type) of every conv2d."""
    return {nn.node_name(op): (nn.constant_value(op.weight), op.weight.type)
            for op in module.walk() if isinstance(op, nn.Conv2dOp)}


@pytest.mark.parametrize("method", ["channel", "layer"])
def test_pipeline_contract(method: str):
    rounded = _mobilenet("gptq", method)
    plain = _mobilenet("nearest", method)
    assert rounded.weight_rounding == "gptq" and plain.calibrated_module is plain.float_module
    # the reference keeps the original weights
    for name, (w, _) in _weights(rounded.float_module).items():
        assert np.array_equal(w, _weights(plain.float_module)[name][0])
    quantized_rounded, quantized_plain = _weights(rounded.module), _weights(plain.module)
    changed = 0
    for name, (w, _) in _weights(rounded.calibrated_module).items():
        q, qt = quantized_rounded[name]
        assert qt == quantized_plain[name][1]  # same scales (types carry them)
        scales = np.asarray(qparams.weight_scales(w, 0 if method == "channel" else None))
        grid = w.astype(np.float64) / scales.reshape((-1, 1, 1, 1) if method == "channel"
                                                     else ())
        assert np.abs(grid - np.rint(grid)).max() < 1e-3  # on the grid
        assert np.array_equal(np.rint(grid).astype(np.int8), q)
        changed += int(np.count_nonzero(q != quantized_plain[name][0]))
    assert changed > 0
    again = rounded.calibrated_module.clone()
    run_passes(again, f"nn-quantize{{dtype=int8 method={method}}},{CLEANUP}")
    assert str(again) == str(rounded.module)


def test_auto_hybrid_restores_original_weights_for_fp16_layers():
    rounded = _mobilenet("gptq")
    samples = samples_for(import_onnx(VENDOR / "mobilenet.onnx"), VENDOR / "dataset.txt", NORM)
    hybrid, moved = auto_hybrid(rounded, samples[:1], threshold=1.0)  # every layer moves
    assert moved and hybrid.counts["int8"] == 0
    original = _weights(rounded.float_module)
    for name, (w, _) in _weights(hybrid.calibrated_module).items():
        assert np.array_equal(w, original[name][0])
