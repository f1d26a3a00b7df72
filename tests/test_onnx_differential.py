"""Every op, several attribute combinations: one-node ONNX models (tests/onnx_cases.py)
through our frontend and interpreter, against onnxruntime. Relative error <= 1e-5."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
from onnx_cases import onnx_node_cases

from rkc.frontend.onnx import import_onnx
from rkc.interpreter import run_module

CASES = onnx_node_cases()
RTOL = 1e-5


def _onnxruntime(case) -> list[np.ndarray]:
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(case.model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    return session.run(None, case.inputs)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_matches_onnxruntime(case) -> None:
    expected = _onnxruntime(case)
    outputs = list(run_module(import_onnx(case.model), case.inputs).values())
    assert len(outputs) == len(expected)
    for got, want in zip(outputs, expected, strict=True):
        assert got.shape == want.shape
        assert got.dtype == want.dtype
        if want.dtype.kind == "f":
            # relative error against the output's magnitude (values near 0 have no
            # meaningful relative error of their own)
            scale = max(float(np.max(np.abs(want))), 1e-6)
            assert float(np.max(np.abs(got - want))) <= RTOL * scale
        else:
            np.testing.assert_array_equal(got, want)


def test_every_claimed_op_has_cases() -> None:
    ops = {c.model.graph.node[0].op_type for c in CASES}
    claimed = {"Conv", "ConvTranspose", "MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "Max",
               "Min", "Pow", "Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid", "Tanh",
               "HardSigmoid", "HardSwish", "Exp", "Log", "Sqrt", "Softmax",
               "BatchNormalization", "LayerNormalization", "MaxPool", "AveragePool",
               "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax", "ReduceSum",
               "Concat", "Split", "Slice", "Reshape", "Transpose", "Flatten", "Squeeze",
               "Unsqueeze", "Pad", "Resize", "Upsample", "Cast", "ArgMax", "Gelu", "Erf"}
    assert claimed <= ops, sorted(claimed - ops)
