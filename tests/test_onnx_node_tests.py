"""ONNX's own node tests (`onnx.backend.test`) through our frontend and interpreter.

Every test whose name matches `INCLUDE` (the ops rkc claims) is tried; tests matching
`EXCLUDE` are skipped with the reason given there (a type or feature rkc does not claim).
Models declaring an opset above 21 are converted down to 21 with ONNX's version
converter first; a test whose model cannot be converted is skipped. Inputs that our
frontend requires to be constant (shapes, axes, pads, scales, clip bounds...) are
turned into initializers holding the test's values.

`test_node_test_summary` prints passed / tried (run pytest with -s to see it).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import onnx
import pytest
from onnx import numpy_helper, version_converter

from rkc.frontend.onnx import import_onnx
from rkc.interpreter import run_module

MAX_OPSET = 21

INCLUDE = re.compile(
    r"test_(abs|add|argmax|averagepool_2d|basic_conv|batchnorm|cast_FLOAT_to_(INT32|INT64)"
    r"|clip|concat|conv_with|convtranspose|div|dropout|erf|exp($|_example)|flatten|gelu|gemm"
    r"|globalaveragepool|globalmaxpool|hardsigmoid|hardswish|identity|layer_normalization"
    r"|leakyrelu|log|matmul_|max|maxpool_2d|min|mul|neg|pow|prelu|reduce_max|reduce_mean"
    r"|reduce_sum_(?!square)|relu|reshape|resize|sigmoid|slice|softmax|split|sqrt|squeeze|sub|tanh"
    r"|transpose|unsqueeze|upsample)")

EXCLUDE = {
    r"_expanded": "function-expanded variants test other ops (Constant-of-shape graphs etc.)",
    r"int8|int16|int32|int64|uint|float16|double|bfloat16|float64|bool|string|8e|4e|2e":
        "non-float32 element types are not claimed (except Cast float -> int)",
    r"_training|training_mode|dropout_(default_mask|random)|_mask": "training-only outputs",
    r"logsoftmax|log_sum|logsum|min_one|max_one|maxunpool|maxpool_with_argmax|_uint8":
        "another op (LogSoftmax, ReduceLogSum, ...)",
    r"reduce_(max|min)_empty_set|reduce_sum_empty|empty_axes|_empty": "empty tensors",
    r"resize_.*(cubic|antialias|tf_crop|keep_aspect|_axes_|not_larger|not_smaller)":
        "Resize cubic / antialias / crop / aspect-policy / axes subsets are not claimed",
    r"_1d|_3d|1d_|3d_": "only 2-D spatial convolutions and pools are claimed",
    r"maxpool_2d_uint8|averagepool_2d_(dilations|precomputed_same_upper_pads)":
        "not claimed (dilated average pooling)",
    r"_sequence|identity_opt|_opt$": "sequence / optional types",
    r"half_pixel_symmetric": "Resize coordinate mode half_pixel_symmetric (opset 19+) not claimed",
    r"gelu.*_2": "double-precision Gelu test data",
}

# Expected data that disagrees with onnxruntime: these compare against onnxruntime instead.
ORT_ORACLE = {
    "test_averagepool_2d_ceil_last_window_starts_on_pad":
        "the stored expected output is rounded to 4 decimals",
    "test_resize_downsample_scales_linear_align_corners":
        "the ONNX reference computes the coordinate with the float scale, onnxruntime with "
        "(in - 1) / (out - 1)",
}

# Outputs beyond those rkc claims (training statistics) are removed from these models.
CLAIMED_OUTPUTS = {"test_layer_normalization": 1}

# Inputs the frontend needs as constants: op type -> input indices.
CONSTANT_INPUTS = {
    "Clip": (1, 2), "Reshape": (1,), "Resize": (1, 2, 3), "Upsample": (1,), "Pad": (1, 2, 3),
    "Slice": (1, 2, 3, 4), "Split": (1,), "Squeeze": (1,), "Unsqueeze": (1,),
    "ReduceMean": (1,), "ReduceMax": (1,), "ReduceSum": (1,), "Dropout": (1, 2),
}


def _cases() -> list:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    return sorted((c for c in cases if INCLUDE.match(c.name)), key=lambda c: c.name)


CASES = _cases()
RESULTS: dict[str, str] = {}


def _excluded(name: str) -> str | None:
    for pattern, reason in EXCLUDE.items():
        if re.search(pattern, name):
            return reason
    return None


def _freeze_constant_inputs(model: onnx.ModelProto, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Turn the inputs listed in CONSTANT_INPUTS into initializers; return the rest."""
    graph = model.graph
    names = [i.name for i in graph.input]
    frozen = set()
    for node in graph.node:
        for index in CONSTANT_INPUTS.get(node.op_type, ()):
            if index < len(node.input) and node.input[index] in names:
                frozen.add(node.input[index])
    keep = []
    for name, value in zip(names, inputs, strict=True):
        if name in frozen:
            graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        else:
            keep.append(value)
    remaining = [i for i in graph.input if i.name not in frozen]
    del graph.input[:]
    graph.input.extend(remaining)
    return keep


def _onnxruntime(model: onnx.ModelProto, inputs: list[np.ndarray]) -> list[np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, inputs, strict=True)))


def _opset(model: onnx.ModelProto) -> int:
    return max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_node(case) -> None:
    reason = _excluded(case.name)
    if reason:
        RESULTS[case.name] = "excluded"
        pytest.skip(reason)
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    if _opset(model) > MAX_OPSET:
        try:
            model = version_converter.convert_version(model, MAX_OPSET)
        except Exception as e:  # the converter has no adapter for this op
            RESULTS[case.name] = "unconvertible"
            pytest.skip(f"opset {_opset(case.model)} model cannot be converted to {MAX_OPSET}: "
                        f"{str(e).splitlines()[0][:100]}")
    outputs_kept = next((n for p, n in CLAIMED_OUTPUTS.items() if case.name.startswith(p)), None)
    if outputs_kept is not None:
        del model.graph.output[outputs_kept:]
    RESULTS[case.name] = "failed"
    for inputs, expected in case.data_sets:
        frozen = onnx.ModelProto()
        frozen.CopyFrom(model)
        inputs = _freeze_constant_inputs(frozen, list(inputs))
        if case.name in ORT_ORACLE:
            expected = _onnxruntime(frozen, inputs)
        expected = list(expected)[:len(frozen.graph.output)]
        module = import_onnx(frozen)
        outputs = list(run_module(module, inputs).values())
        assert len(outputs) == len(expected)
        for got, want in zip(outputs, expected, strict=True):
            want = np.asarray(want)
            assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
            if want.dtype.kind == "f":
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
            else:
                np.testing.assert_array_equal(got, want)
    RESULTS[case.name] = "passed"


def test_node_test_summary() -> None:
    """Runs last (pytest keeps file order); prints passed / tried."""
    tried = [n for n, r in RESULTS.items() if r in ("passed", "failed")]
    passed = [n for n in tried if RESULTS[n] == "passed"]
    excluded = [n for n, r in RESULTS.items() if r == "excluded"]
    unconvertible = [n for n, r in RESULTS.items() if r == "unconvertible"]
    print(f"\nONNX node tests: {len(passed)} passed / {len(tried)} tried; skipped: "
          f"{len(excluded)} not claimed, {len(unconvertible)} not convertible to opset "
          f"{MAX_OPSET}")
    if RESULTS:
        assert tried, "no node test was tried"

