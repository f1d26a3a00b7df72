"""A table of one-node ONNX models for the differential tests.

`onnx_node_cases()` returns `OnnxCase`s: each holds a model with a single node (graph
inputs are float32 with fixed shapes; constant operands such as weights, pads, scales,
shapes and slice bounds are initializers) and deterministic, seeded input values. Every
model passes `onnx.checker.check_model` (with full_check, except where onnx's shape inference
disagrees with onnxruntime) and runs in onnxruntime's CPU provider, and its declared output
shapes are the ones onnxruntime produces.
"""

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DEFAULT_OPSET = 17
IR_VERSION = 10
INT64_MAX = np.iinfo(np.int64).max


@dataclass
class OnnxCase:
    """One single-node ONNX model and the values of its graph inputs."""

    name: str
    model: onnx.ModelProto
    inputs: dict[str, np.ndarray]


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def _i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _f32(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def _scalar(value: float) -> np.ndarray:
    return np.array(value, dtype=np.float32)


def _case(
    name: str,
    op_type: str,
    inputs: dict[str, Sequence[int] | np.ndarray],
    consts: dict[str, np.ndarray] | None = None,
    attrs: dict[str, object] | None = None,
    node_inputs: Sequence[str] | None = None,
    n_outputs: int = 1,
    out_type: int = TensorProto.FLOAT,
    opset: int = DEFAULT_OPSET,
    positive: bool = False,
    out_shapes: Sequence[Sequence[int]] | None = None,
) -> OnnxCase:
    """Build a one-node case.

    `inputs` maps graph input names to a shape (filled with seeded standard-normal float32
    values, or |values| + 0.1 when `positive`) or to an explicit float32 array. `consts`
    become initializers. The node's inputs default to the graph inputs then the constants,
    in insertion order; pass `node_inputs` (with "" for an absent optional input) otherwise.
    Output shapes come from onnx shape inference unless `out_shapes` is given (needed where
    onnx's inference disagrees with onnxruntime).
    """
    rng = _rng(name)
    values: dict[str, np.ndarray] = {}
    for key, spec in inputs.items():
        if isinstance(spec, np.ndarray):
            values[key] = spec.astype(np.float32)
        else:
            v = rng.standard_normal(tuple(spec)).astype(np.float32)
            values[key] = (np.abs(v) + np.float32(0.1)) if positive else v
    consts = consts or {}
    if node_inputs is None:
        node_inputs = list(values) + list(consts)
    outputs = ["y"] if n_outputs == 1 else [f"y{i}" for i in range(n_outputs)]
    node = helper.make_node(op_type, list(node_inputs), outputs, **(attrs or {}))

    def build(shapes: Sequence[Sequence[int] | None]) -> onnx.ModelProto:
        graph = helper.make_graph(
            [node],
            name,
            [
                helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape)
                for k, v in values.items()
            ],
            [
                helper.make_tensor_value_info(o, out_type, s)
                for o, s in zip(outputs, shapes, strict=True)
            ],
            initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()],
        )
        return helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", opset)],
            ir_version=IR_VERSION,
            producer_name="rkc-tests",
        )

    inferred_shapes = out_shapes is None
    if out_shapes is None:
        inferred = onnx.shape_inference.infer_shapes(build([None] * n_outputs), strict_mode=True)
        out_shapes = []
        for out in inferred.graph.output:
            dims = out.type.tensor_type.shape.dim
            assert out.type.tensor_type.HasField("shape"), f"{name}: no inferred output shape"
            assert all(d.HasField("dim_value") for d in dims), f"{name}: symbolic output shape"
            out_shapes.append([d.dim_value for d in dims])
    model = build(out_shapes)
    onnx.checker.check_model(model, full_check=inferred_shapes)
    return OnnxCase(name, model, values)


def _w(name: str, *shape: int, scale: float = 0.5) -> np.ndarray:
    """Seeded float32 weights."""
    return (_rng("w:" + name).standard_normal(shape) * scale).astype(np.float32)


# ---------------------------------------------------------------------------
# Convolutions and matrix products
# ---------------------------------------------------------------------------


def _conv_cases() -> list[OnnxCase]:
    specs: list[tuple[str, tuple[int, ...], tuple[int, ...], bool, dict[str, object]]] = [
        ("basic", (1, 3, 8, 8), (4, 3, 3, 3), True, {"pads": [1, 1, 1, 1]}),
        ("stride2_nobias", (2, 4, 9, 9), (6, 4, 3, 3), False, {"strides": [2, 2]}),
        ("asym_pads", (1, 3, 7, 6), (5, 3, 3, 3), True, {"pads": [0, 1, 2, 1]}),
        (
            "dilation2",
            (1, 4, 10, 10),
            (4, 4, 3, 3),
            True,
            {"pads": [2, 2, 2, 2], "dilations": [2, 2]},
        ),
        ("group2", (1, 4, 7, 7), (6, 2, 3, 3), True, {"group": 2, "pads": [1, 1, 1, 1]}),
        ("depthwise", (1, 8, 10, 10), (8, 1, 3, 3), True, {"group": 8, "pads": [1, 1, 1, 1]}),
        (
            "depthwise_mult2_stride2",
            (1, 8, 9, 9),
            (16, 1, 3, 3),
            True,
            {"group": 8, "strides": [2, 2], "pads": [1, 1, 1, 1]},
        ),
        (
            "depthwise_dilation2",
            (2, 6, 11, 11),
            (6, 1, 3, 3),
            False,
            {"group": 6, "dilations": [2, 2], "pads": [2, 2, 2, 2]},
        ),
        ("pointwise", (2, 8, 5, 5), (5, 8, 1, 1), True, {}),
        (
            "rect_kernel",
            (1, 3, 6, 12),
            (4, 3, 1, 5),
            True,
            {"strides": [1, 2], "pads": [0, 2, 0, 2]},
        ),
        (
            "same_upper",
            (1, 3, 8, 8),
            (4, 3, 3, 3),
            True,
            {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
        ),
        (
            "same_lower",
            (1, 3, 8, 8),
            (4, 3, 3, 3),
            True,
            {"auto_pad": "SAME_LOWER", "strides": [2, 2]},
        ),
        ("same_upper_s1_k4", (1, 2, 7, 7), (3, 2, 4, 4), False, {"auto_pad": "SAME_UPPER"}),
        ("valid", (1, 3, 8, 7), (4, 3, 3, 3), True, {"auto_pad": "VALID", "strides": [2, 2]}),
        ("k5_16ch", (1, 16, 12, 12), (16, 16, 5, 5), True, {"pads": [2, 2, 2, 2]}),
        (
            "k2_stride3",
            (1, 3, 11, 11),
            (4, 3, 2, 2),
            True,
            {"strides": [3, 3], "kernel_shape": [2, 2]},
        ),
        ("group4_asym", (1, 8, 9, 8), (8, 2, 3, 2), True, {"group": 4, "pads": [1, 0, 0, 1]}),
    ]
    cases = []
    for tag, xs, ws, bias, attrs in specs:
        name = f"conv_{tag}"
        consts = {"w": _w(name, *ws)}
        if bias:
            consts["b"] = _w(name + "b", ws[0])
        cases.append(_case(name, "Conv", {"x": xs}, consts, attrs))
    return cases


def _conv_transpose_cases() -> list[OnnxCase]:
    specs: list[tuple[str, tuple[int, ...], tuple[int, ...], bool, dict[str, object]]] = [
        (
            "s2_k3_p1_op1",
            (1, 4, 5, 5),
            (4, 3, 3, 3),
            True,
            {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]},
        ),
        ("s2_k2", (2, 3, 4, 4), (3, 5, 2, 2), True, {"strides": [2, 2]}),
        ("s1_k3_p1", (1, 4, 6, 6), (4, 4, 3, 3), False, {"pads": [1, 1, 1, 1]}),
        (
            "group2_s2_k4_p1",
            (1, 4, 5, 5),
            (4, 3, 4, 4),
            True,
            {"group": 2, "strides": [2, 2], "pads": [1, 1, 1, 1]},
        ),
        (
            "dilation2",
            (1, 3, 4, 4),
            (3, 2, 3, 3),
            True,
            {"dilations": [2, 2], "pads": [1, 1, 1, 1]},
        ),
        ("asym_pads", (1, 3, 5, 4), (3, 2, 3, 3), False, {"strides": [2, 2], "pads": [0, 1, 1, 0]}),
        (
            "s3_op21",
            (1, 2, 3, 4),
            (2, 3, 3, 3),
            True,
            {"strides": [3, 3], "output_padding": [2, 1]},
        ),
        (
            "depthwise_s2",
            (1, 6, 4, 4),
            (6, 1, 4, 4),
            True,
            {"group": 6, "strides": [2, 2], "pads": [1, 1, 1, 1]},
        ),
    ]
    cases = []
    for tag, xs, ws, bias, attrs in specs:
        name = f"convtranspose_{tag}"
        consts = {"w": _w(name, *ws)}
        if bias:
            group = attrs.get("group", 1)
            assert isinstance(group, int)
            consts["b"] = _w(name + "b", ws[1] * group)
        cases.append(_case(name, "ConvTranspose", {"x": xs}, consts, attrs))
    return cases


def _matmul_gemm_cases() -> list[OnnxCase]:
    cases = [
        _case("matmul_2d", "MatMul", {"a": (4, 5), "b": (5, 6)}),
        _case("matmul_batched", "MatMul", {"a": (2, 3, 4, 5), "b": (2, 3, 5, 6)}),
        _case("matmul_broadcast_const", "MatMul", {"a": (2, 3, 4, 5)}, {"b": _w("mm", 5, 6)}),
        _case("matmul_batch_broadcast", "MatMul", {"a": (3, 4, 5), "b": (1, 5, 2)}),
        _case("matmul_vec_mat", "MatMul", {"a": (5,), "b": (5, 6)}),
        _case("gemm_basic", "Gemm", {"a": (4, 5)}, {"b": _w("g1", 5, 6), "c": _w("g1c", 6)}),
        _case(
            "gemm_trans_b",
            "Gemm",
            {"a": (4, 5)},
            {"b": _w("g2", 6, 5), "c": _w("g2c", 6)},
            {"transB": 1},
        ),
        _case("gemm_trans_a", "Gemm", {"a": (5, 4), "b": (5, 6)}, attrs={"transA": 1}),
        _case(
            "gemm_trans_ab_alpha_beta",
            "Gemm",
            {"a": (5, 3), "b": (6, 5), "c": (3, 6)},
            attrs={"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0},
        ),
        _case(
            "gemm_no_c", "Gemm", {"a": (4, 5)}, {"b": _w("g5", 6, 5)}, {"transB": 1, "alpha": 1.5}
        ),
        _case(
            "gemm_c_column", "Gemm", {"a": (4, 5), "b": (5, 6), "c": (4, 1)}, attrs={"beta": 0.25}
        ),
        _case(
            "gemm_c_scalar", "Gemm", {"a": (4, 5), "b": (5, 6)}, {"c": np.array(0.75, np.float32)}
        ),
    ]
    return cases


# ---------------------------------------------------------------------------
# Elementwise
# ---------------------------------------------------------------------------


def _binary_cases() -> list[OnnxCase]:
    cases = []
    shapes = [
        ("same", (2, 3, 4, 5), (2, 3, 4, 5)),
        ("bcast_last", (2, 3, 4, 5), (5,)),
        ("bcast_both", (2, 3, 1, 5), (1, 3, 4, 1)),
    ]
    for op in ("Add", "Sub", "Mul", "Max", "Min"):
        for tag, sa, sb in shapes:
            cases.append(_case(f"{op.lower()}_{tag}", op, {"a": sa, "b": sb}))
        cases.append(_case(f"{op.lower()}_const_scalar", op, {"a": (2, 3, 4)}, {"b": _scalar(0.3)}))
    rng = _rng("div")
    den = (rng.uniform(0.5, 2.0, (3, 1, 5)) * rng.choice([-1, 1], (3, 1, 5))).astype(np.float32)
    cases += [
        _case("div_same", "Div", {"a": (2, 3, 4), "b": np.abs(_w("div1", 2, 3, 4)) + 0.5}),
        _case("div_bcast", "Div", {"a": (2, 3, 4, 5), "b": den}),
        _case(
            "div_const_channel",
            "Div",
            {"a": (1, 3, 4, 4)},
            {"b": _f32(2.0, -4.0, 0.5).reshape(3, 1, 1)},
        ),
        _case("pow_random_exp", "Pow", {"a": (2, 3, 4), "b": (2, 3, 4)}, positive=True),
        _case("pow_square", "Pow", {"a": (2, 3, 4)}, {"b": _scalar(2.0)}),
        _case("pow_cube_negative_base", "Pow", {"a": (2, 3, 4)}, {"b": _f32(3.0)}),
        _case(
            "pow_sqrt_bcast",
            "Pow",
            {"a": (2, 3, 4)},
            {"b": _f32(0.5, 1.0, 1.5, 2.5)},
            positive=True,
        ),
    ]
    return cases


def _unary_cases() -> list[OnnxCase]:
    wide = (_rng("wide").standard_normal((2, 3, 8, 8)) * 8).astype(np.float32)
    cases = [
        _case("relu", "Relu", {"x": (2, 3, 4, 5)}),
        _case("relu_2d", "Relu", {"x": (7, 9)}),
        _case("leakyrelu_default", "LeakyRelu", {"x": (2, 3, 4, 5)}),
        _case("leakyrelu_alpha02", "LeakyRelu", {"x": (2, 3, 4, 5)}, attrs={"alpha": 0.2}),
        _case(
            "prelu_channel",
            "PRelu",
            {"x": (2, 3, 4, 5)},
            {"slope": _f32(0.1, -0.2, 0.3).reshape(3, 1, 1)},
        ),
        _case("prelu_scalar", "PRelu", {"x": (2, 3, 4, 5)}, {"slope": _f32(0.25)}),
        _case("prelu_full", "PRelu", {"x": (2, 3, 4, 5), "slope": (3, 4, 5)}),
        _case(
            "clip_min_max",
            "Clip",
            {"x": (2, 3, 4, 5)},
            {"lo": _scalar(-0.5), "hi": _scalar(0.7)},
            opset=11,
        ),
        _case("clip_relu6", "Clip", {"x": wide}, {"lo": _scalar(0), "hi": _scalar(6)}),
        _case(
            "clip_only_max",
            "Clip",
            {"x": (2, 3, 4, 5)},
            {"hi": _scalar(0.3)},
            node_inputs=["x", "", "hi"],
            opset=11,
        ),
        _case("clip_only_min", "Clip", {"x": (2, 3, 4, 5)}, {"lo": _scalar(-0.2)}, opset=13),
        _case("clip_no_bounds", "Clip", {"x": (2, 3, 4)}, opset=13),
        _case(
            "clip_opset10_attrs",
            "Clip",
            {"x": (2, 3, 4, 5)},
            attrs={"min": -1.0, "max": 0.5},
            opset=10,
        ),
        _case(
            "clip_opset10_only_min_attr", "Clip", {"x": (2, 3, 4, 5)}, attrs={"min": 0.0}, opset=10
        ),
        _case("sigmoid", "Sigmoid", {"x": (2, 3, 4, 5)}),
        _case("sigmoid_wide", "Sigmoid", {"x": wide}),
        _case("tanh", "Tanh", {"x": (2, 3, 4, 5)}),
        _case("tanh_wide", "Tanh", {"x": wide}),
        _case("hardsigmoid_default", "HardSigmoid", {"x": wide}),
        _case(
            "hardsigmoid_custom", "HardSigmoid", {"x": wide}, attrs={"alpha": 1.0 / 6, "beta": 0.5}
        ),
        _case("hardswish", "HardSwish", {"x": wide}, opset=14),
        _case("exp", "Exp", {"x": (2, 3, 4, 5)}),
        _case("log", "Log", {"x": (2, 3, 4, 5)}, positive=True),
        _case("sqrt", "Sqrt", {"x": (2, 3, 4, 5)}, positive=True),
        _case("erf", "Erf", {"x": (2, 3, 4, 5)}),
        _case("erf_wide", "Erf", {"x": wide}),
        _case("gelu_none", "Gelu", {"x": wide}, attrs={"approximate": "none"}, opset=20),
        _case("gelu_tanh", "Gelu", {"x": wide}, attrs={"approximate": "tanh"}, opset=20),
        _case("gelu_default", "Gelu", {"x": (2, 3, 4, 5)}, opset=20),
        _case("abs", "Abs", {"x": (2, 3, 4, 5)}),
        _case("neg", "Neg", {"x": (2, 3, 4, 5)}),
        _case("identity", "Identity", {"x": (2, 3, 4, 5)}),
        _case("dropout_inference", "Dropout", {"x": (2, 3, 4, 5)}, opset=13),
        _case("dropout_ratio", "Dropout", {"x": (2, 3, 4)}, {"ratio": _scalar(0.3)}, opset=13),
    ]
    return cases


# ---------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------


def _norm_cases() -> list[OnnxCase]:
    def bn_consts(name: str, c: int) -> dict[str, np.ndarray]:
        return {
            "scale": _w(name + "s", c) + 1.0,
            "bias": _w(name + "b", c),
            "mean": _w(name + "m", c),
            "var": np.abs(_w(name + "v", c)) + 0.5,
        }

    cases = [
        _case("softmax_last", "Softmax", {"x": (2, 3, 4, 5)}, opset=13),
        _case("softmax_axis1", "Softmax", {"x": (2, 3, 4, 5)}, attrs={"axis": 1}, opset=13),
        _case("softmax_axis0_2d", "Softmax", {"x": (6, 7)}, attrs={"axis": 0}, opset=13),
        _case(
            "softmax_wide",
            "Softmax",
            {"x": np.linspace(-30, 30, 40, dtype=np.float32).reshape(4, 10)},
        ),
        _case("softmax_op11_axis1_4d", "Softmax", {"x": (2, 3, 4, 5)}, attrs={"axis": 1}, opset=11),
        _case("softmax_op11_default_3d", "Softmax", {"x": (2, 3, 4)}, opset=11),
        _case("softmax_op11_last", "Softmax", {"x": (2, 3, 4)}, attrs={"axis": -1}, opset=11),
        _case(
            "batchnorm", "BatchNormalization", {"x": (2, 4, 5, 5)}, bn_consts("bn1", 4), opset=15
        ),
        _case(
            "batchnorm_eps",
            "BatchNormalization",
            {"x": (1, 6, 3, 7)},
            bn_consts("bn2", 6),
            {"epsilon": 1e-3},
            opset=9,
        ),
        _case("batchnorm_2d", "BatchNormalization", {"x": (5, 3)}, bn_consts("bn3", 3), opset=14),
        _case(
            "layernorm_last",
            "LayerNormalization",
            {"x": (2, 5, 16)},
            {"scale": _w("ln1s", 16) + 1.0, "bias": _w("ln1b", 16)},
        ),
        _case(
            "layernorm_axis1_nobias",
            "LayerNormalization",
            {"x": (2, 3, 4, 5)},
            {"scale": _w("ln2s", 3, 4, 5) + 1.0},
            {"axis": 1, "epsilon": 1e-3},
        ),
        _case(
            "layernorm_axis_neg2",
            "LayerNormalization",
            {"x": (3, 4, 6)},
            {"scale": _w("ln3s", 4, 6) + 1.0, "bias": _w("ln3b", 4, 6)},
            {"axis": -2},
        ),
    ]
    return cases


# ---------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------


def _pool_cases() -> list[OnnxCase]:
    maxpool: list[tuple[str, tuple[int, ...], dict[str, object]]] = [
        ("k2s2", (1, 3, 8, 8), {"kernel_shape": [2, 2], "strides": [2, 2]}),
        ("k3s2p1", (2, 4, 9, 9), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
        ("k3s1p1", (1, 3, 6, 7), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
        ("ceil", (1, 3, 8, 8), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
        ("dilation2", (1, 2, 9, 9), {"kernel_shape": [2, 2], "dilations": [2, 2]}),
        (
            "dilation2_ceil_pads",
            (1, 2, 10, 9),
            {
                "kernel_shape": [3, 3],
                "strides": [2, 2],
                "dilations": [2, 2],
                "pads": [1, 1, 1, 1],
                "ceil_mode": 1,
            },
        ),
        (
            "asym_pads",
            (1, 3, 7, 6),
            {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [0, 1, 2, 0]},
        ),
        (
            "same_upper",
            (1, 3, 7, 7),
            {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
        ),
        ("k5s1p2", (1, 4, 8, 8), {"kernel_shape": [5, 5], "pads": [2, 2, 2, 2]}),
    ]
    avgpool: list[tuple[str, tuple[int, ...], dict[str, object]]] = [
        ("k2s2", (1, 3, 8, 8), {"kernel_shape": [2, 2], "strides": [2, 2]}),
        (
            "k3s2p1_excl",
            (2, 4, 9, 9),
            {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
        ),
        (
            "k3s2p1_incl",
            (2, 4, 9, 9),
            {
                "kernel_shape": [3, 3],
                "strides": [2, 2],
                "pads": [1, 1, 1, 1],
                "count_include_pad": 1,
            },
        ),
        ("ceil_excl", (1, 3, 6, 6), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
        (
            "ceil_incl",
            (1, 3, 6, 6),
            {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1, "count_include_pad": 1},
        ),
        (
            "ceil_endpad_incl",
            (1, 2, 7, 7),
            {
                "kernel_shape": [3, 3],
                "strides": [2, 2],
                "pads": [0, 0, 1, 1],
                "ceil_mode": 1,
                "count_include_pad": 1,
            },
        ),
        (
            "ceil_pads_excl",
            (1, 2, 8, 7),
            {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1},
        ),
        (
            "asym_pads_incl",
            (1, 3, 7, 6),
            {
                "kernel_shape": [3, 2],
                "strides": [2, 1],
                "pads": [0, 1, 2, 0],
                "count_include_pad": 1,
            },
        ),
        ("k3s1p1_excl", (1, 3, 5, 5), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
    ]
    cases = [_case(f"maxpool_{t}", "MaxPool", {"x": s}, attrs=a) for t, s, a in maxpool]
    cases += [_case(f"averagepool_{t}", "AveragePool", {"x": s}, attrs=a) for t, s, a in avgpool]
    # ceil_mode windows that would start in the end padding are dropped: onnxruntime gives
    # 3x3 here while onnx's shape inference says 4x4, so the shape is declared explicitly.
    drop_last = {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}
    for op, extra in (("MaxPool", {}), ("AveragePool", {"count_include_pad": 1})):
        cases.append(
            _case(
                f"{op.lower()}_ceil_pads_drop_last",
                op,
                {"x": (1, 2, 5, 5)},
                attrs={**drop_last, **extra},
                out_shapes=[(1, 2, 3, 3)],
            )
        )
    cases += [
        _case("globalaveragepool", "GlobalAveragePool", {"x": (2, 4, 5, 6)}),
        _case("globalaveragepool_7x7", "GlobalAveragePool", {"x": (1, 16, 7, 7)}),
        _case("globalmaxpool", "GlobalMaxPool", {"x": (2, 4, 5, 6)}),
        _case("globalmaxpool_1x1", "GlobalMaxPool", {"x": (1, 8, 1, 1)}),
    ]
    return cases


def _reduce_cases() -> list[OnnxCase]:
    x = (2, 3, 4, 5)
    cases = []
    for op in ("ReduceMean", "ReduceMax", "ReduceSum"):
        low = op.lower()
        if op == "ReduceSum":
            cases += [
                _case(f"{low}_op13_axes_input", op, {"x": x}, {"axes": _i64(2, 3)}, opset=13),
                _case(
                    f"{low}_op13_axes_input_nokeep",
                    op,
                    {"x": x},
                    {"axes": _i64(1)},
                    {"keepdims": 0},
                    opset=13,
                ),
                _case(f"{low}_op11_attr", op, {"x": x}, attrs={"axes": [-1]}, opset=11),
            ]
        else:
            cases += [
                _case(f"{low}_op13_keep", op, {"x": x}, attrs={"axes": [2, 3]}, opset=13),
                _case(
                    f"{low}_op13_nokeep", op, {"x": x}, attrs={"axes": [1], "keepdims": 0}, opset=13
                ),
                _case(f"{low}_op13_negaxis", op, {"x": x}, attrs={"axes": [-1]}, opset=13),
            ]
        cases += [
            _case(f"{low}_op18_axes_input", op, {"x": x}, {"axes": _i64(1, 3)}, opset=18),
            _case(
                f"{low}_op18_axes_input_nokeep",
                op,
                {"x": x},
                {"axes": _i64(0, -1)},
                {"keepdims": 0},
                opset=18,
            ),
            _case(f"{low}_op18_all", op, {"x": x}, attrs={"keepdims": 0}, opset=18),
        ]
    return cases


# ---------------------------------------------------------------------------
# Data movement
# ---------------------------------------------------------------------------


def _shape_cases() -> list[OnnxCase]:
    cases = [
        _case("concat_axis1", "Concat", {"a": (2, 3, 4), "b": (2, 5, 4)}, attrs={"axis": 1}),
        _case(
            "concat_3_neg",
            "Concat",
            {"a": (2, 3, 1), "b": (2, 3, 4), "c": (2, 3, 2)},
            attrs={"axis": -1},
        ),
        _case("concat_const", "Concat", {"a": (2, 3)}, {"b": _w("cc", 1, 3)}, {"axis": 0}),
        _case(
            "split_equal_op13", "Split", {"x": (2, 6, 4)}, attrs={"axis": 1}, n_outputs=3, opset=13
        ),
        _case(
            "split_explicit_op13",
            "Split",
            {"x": (2, 6, 5)},
            {"split": _i64(1, 3, 1)},
            {"axis": -1},
            n_outputs=3,
            opset=13,
        ),
        _case(
            "split_num_outputs_op18",
            "Split",
            {"x": (4, 6)},
            attrs={"num_outputs": 2},
            n_outputs=2,
            opset=18,
        ),
        _case(
            "split_num_outputs_uneven_op18",
            "Split",
            {"x": (2, 7)},
            attrs={"axis": 1, "num_outputs": 3},
            n_outputs=3,
            opset=18,
        ),
        _case(
            "split_explicit_op18",
            "Split",
            {"x": (2, 3, 6)},
            {"split": _i64(2, 4)},
            {"axis": 2},
            n_outputs=2,
            opset=18,
        ),
        _case(
            "split_attr_op11",
            "Split",
            {"x": (5, 4)},
            attrs={"split": [2, 3]},
            n_outputs=2,
            opset=11,
        ),
    ]
    slices: list[tuple[str, tuple[int, ...], dict[str, np.ndarray]]] = [
        ("basic", (4, 6, 5), {"starts": _i64(1, 0), "ends": _i64(3, 4), "axes": _i64(0, 1)}),
        ("negative_idx", (4, 6, 5), {"starts": _i64(-3), "ends": _i64(-1), "axes": _i64(2)}),
        (
            "steps",
            (2, 8, 9),
            {"starts": _i64(0, 1), "ends": _i64(8, 9), "axes": _i64(1, 2), "steps": _i64(2, 3)},
        ),
        (
            "negative_step",
            (3, 7),
            {"starts": _i64(-1), "ends": _i64(-INT64_MAX), "axes": _i64(1), "steps": _i64(-1)},
        ),
        (
            "negative_step2",
            (3, 8),
            {"starts": _i64(6), "ends": _i64(1), "axes": _i64(-1), "steps": _i64(-2)},
        ),
        ("no_axes", (4, 5), {"starts": _i64(1, 2), "ends": _i64(INT64_MAX, 4)}),
        (
            "clamped_ends",
            (2, 3, 4, 5),
            {"starts": _i64(0, -100), "ends": _i64(100, 3), "axes": _i64(3, 2)},
        ),
    ]
    for tag, shape, consts in slices:
        names = ["x", "starts", "ends"] + [k for k in ("axes", "steps") if k in consts]
        if "steps" in consts and "axes" not in consts:
            names = ["x", "starts", "ends", "", "steps"]
        cases.append(_case(f"slice_{tag}", "Slice", {"x": shape}, consts, node_inputs=names))
    cases += [
        _case("reshape_zero_neg1", "Reshape", {"x": (2, 3, 4, 5)}, {"shape": _i64(0, -1, 5)}),
        _case("reshape_flatten", "Reshape", {"x": (2, 3, 4, 5)}, {"shape": _i64(2, -1)}),
        _case("reshape_explicit", "Reshape", {"x": (2, 12)}, {"shape": _i64(2, 3, 2, 2)}),
        _case("reshape_keep_dims", "Reshape", {"x": (2, 3, 4)}, {"shape": _i64(0, 0, 2, 2)}),
        _case("transpose_nhwc", "Transpose", {"x": (2, 3, 4, 5)}, attrs={"perm": [0, 2, 3, 1]}),
        _case("transpose_default", "Transpose", {"x": (2, 3, 4)}),
        _case("transpose_2d", "Transpose", {"x": (3, 7)}, attrs={"perm": [1, 0]}),
        _case("flatten_default", "Flatten", {"x": (2, 3, 4, 5)}),
        _case("flatten_axis0", "Flatten", {"x": (2, 3, 4)}, attrs={"axis": 0}),
        _case("flatten_axis2", "Flatten", {"x": (2, 3, 4, 5)}, attrs={"axis": 2}),
        _case("flatten_axis_neg1", "Flatten", {"x": (2, 3, 4, 5)}, attrs={"axis": -1}),
        _case("squeeze_op11_attr", "Squeeze", {"x": (2, 1, 4, 1)}, attrs={"axes": [1]}, opset=11),
        _case(
            "squeeze_op13_input", "Squeeze", {"x": (2, 1, 4, 1)}, {"axes": _i64(-1, 1)}, opset=13
        ),
        _case("squeeze_all", "Squeeze", {"x": (1, 3, 1, 5)}, opset=13),
        _case("unsqueeze_op11_attr", "Unsqueeze", {"x": (3, 4)}, attrs={"axes": [0, 3]}, opset=11),
        _case("unsqueeze_op13_input", "Unsqueeze", {"x": (3, 4)}, {"axes": _i64(1)}, opset=13),
        _case("unsqueeze_neg_axes", "Unsqueeze", {"x": (3, 4)}, {"axes": _i64(-1, 0)}, opset=13),
    ]
    pads = _i64(0, 0, 1, 2, 0, 0, 2, 1)
    cases += [
        _case(
            "pad_constant_value",
            "Pad",
            {"x": (1, 2, 4, 5)},
            {"pads": pads, "value": _scalar(1.5)},
            {"mode": "constant"},
        ),
        _case("pad_constant_default", "Pad", {"x": (1, 2, 4, 5)}, {"pads": pads}),
        _case("pad_reflect", "Pad", {"x": (1, 2, 4, 5)}, {"pads": pads}, {"mode": "reflect"}),
        _case("pad_edge", "Pad", {"x": (1, 2, 4, 5)}, {"pads": pads}, {"mode": "edge"}, opset=11),
        _case(
            "pad_negative_crop",
            "Pad",
            {"x": (1, 2, 6, 5)},
            {"pads": _i64(0, 0, -1, 2, 0, 0, 1, -2)},
        ),
        _case(
            "pad_axes_op18",
            "Pad",
            {"x": (1, 2, 4, 5)},
            {"pads": _i64(1, 1, 2, 0), "value": _scalar(-1.0), "axes": _i64(2, 3)},
            opset=18,
        ),
    ]
    return cases


# ---------------------------------------------------------------------------
# Resize / Upsample
# ---------------------------------------------------------------------------


def _resize_cases() -> list[OnnxCase]:
    x = (1, 2, 4, 5)
    s2 = _f32(1, 1, 2, 2)
    nearest: list[tuple[str, np.ndarray, str, str]] = [
        ("asymmetric_floor_x2", s2, "asymmetric", "floor"),
        ("half_pixel_rpf_x2", s2, "half_pixel", "round_prefer_floor"),
        ("half_pixel_rpc_x2", s2, "half_pixel", "round_prefer_ceil"),
        ("align_corners_rpf_x2", s2, "align_corners", "round_prefer_floor"),
        ("pytorch_half_pixel_ceil_x2", s2, "pytorch_half_pixel", "ceil"),
        ("asymmetric_rpc_x1_5", _f32(1, 1, 1.5, 1.5), "asymmetric", "round_prefer_ceil"),
        ("half_pixel_floor_x3_x2", _f32(1, 1, 3, 2), "half_pixel", "floor"),
        ("half_pixel_rpf_down", _f32(1, 1, 0.5, 0.6), "half_pixel", "round_prefer_floor"),
        ("asymmetric_ceil_x2_5", _f32(1, 1, 2.5, 2.5), "asymmetric", "ceil"),
    ]
    cases = []
    for tag, scales, ctm, nm in nearest:
        attrs = {"mode": "nearest", "coordinate_transformation_mode": ctm, "nearest_mode": nm}
        cases.append(
            _case(
                f"resize_nearest_{tag}",
                "Resize",
                {"x": x},
                {"scales": scales},
                attrs,
                ["x", "", "scales"],
                opset=13,
            )
        )
    sizes_nearest: list[tuple[str, np.ndarray, str, str]] = [
        ("half_pixel_rpf_sizes", _i64(1, 2, 7, 11), "half_pixel", "round_prefer_floor"),
        ("asymmetric_floor_sizes", _i64(1, 2, 8, 10), "asymmetric", "floor"),
        ("align_corners_rpc_sizes", _i64(1, 2, 9, 6), "align_corners", "round_prefer_ceil"),
        (
            "pytorch_half_pixel_rpf_sizes_to1",
            _i64(1, 2, 1, 7),
            "pytorch_half_pixel",
            "round_prefer_floor",
        ),
    ]
    for tag, sizes, ctm, nm in sizes_nearest:
        attrs = {"mode": "nearest", "coordinate_transformation_mode": ctm, "nearest_mode": nm}
        cases.append(
            _case(
                f"resize_nearest_{tag}",
                "Resize",
                {"x": x},
                {"sizes": sizes},
                attrs,
                ["x", "", "", "sizes"],
                opset=13,
            )
        )
    linear: list[tuple[str, str, np.ndarray, str]] = [
        ("half_pixel_x2", "scales", s2, "half_pixel"),
        ("asymmetric_x2", "scales", s2, "asymmetric"),
        ("align_corners_x2", "scales", s2, "align_corners"),
        ("pytorch_half_pixel_x2", "scales", s2, "pytorch_half_pixel"),
        ("half_pixel_x1_7", "scales", _f32(1, 1, 1.7, 1.3), "half_pixel"),
        ("half_pixel_down", "scales", _f32(1, 1, 0.5, 0.5), "half_pixel"),
        ("half_pixel_sizes", "sizes", _i64(1, 2, 7, 9), "half_pixel"),
        ("align_corners_sizes", "sizes", _i64(1, 2, 8, 11), "align_corners"),
        ("asymmetric_sizes", "sizes", _i64(1, 2, 6, 13), "asymmetric"),
        ("pytorch_half_pixel_sizes_to1", "sizes", _i64(1, 2, 1, 8), "pytorch_half_pixel"),
    ]
    for tag, kind, val, ctm in linear:
        attrs = {"mode": "linear", "coordinate_transformation_mode": ctm}
        ins = ["x", "", "scales"] if kind == "scales" else ["x", "", "", "sizes"]
        cases.append(
            _case(f"resize_linear_{tag}", "Resize", {"x": x}, {kind: val}, attrs, ins, opset=13)
        )
    roi = np.zeros((0,), np.float32)
    cases += [
        _case(
            "resize_op11_nearest_scales",
            "Resize",
            {"x": x},
            {"roi": roi, "scales": s2},
            {
                "mode": "nearest",
                "coordinate_transformation_mode": "asymmetric",
                "nearest_mode": "floor",
            },
            opset=11,
        ),
        _case(
            "resize_op11_linear_sizes",
            "Resize",
            {"x": x},
            {"roi": roi, "scales": np.zeros((0,), np.float32), "sizes": _i64(1, 2, 6, 8)},
            {"mode": "linear", "coordinate_transformation_mode": "align_corners"},
            opset=11,
        ),
        _case(
            "resize_op11_linear_half_pixel_default",
            "Resize",
            {"x": x},
            {"roi": roi, "scales": s2},
            {"mode": "linear"},
            opset=11,
        ),
        _case(
            "resize_op18_nearest_default",
            "Resize",
            {"x": x},
            {"scales": s2},
            node_inputs=["x", "", "scales"],
            opset=18,
        ),
        _case("upsample_nearest", "Upsample", {"x": x}, {"scales": s2}, opset=9),
        _case(
            "upsample_nearest_x3_x2", "Upsample", {"x": x}, {"scales": _f32(1, 1, 3, 2)}, opset=9
        ),
        _case("upsample_linear", "Upsample", {"x": x}, {"scales": s2}, {"mode": "linear"}, opset=9),
        _case(
            "upsample_linear_x2_x3",
            "Upsample",
            {"x": x},
            {"scales": _f32(1, 1, 2, 3)},
            {"mode": "linear"},
            opset=9,
        ),
        # opset 10 Resize (X, scales) behaves like Upsample, and also shrinks
        _case(
            "resize_op10_nearest_shrink",
            "Resize",
            {"x": x},
            {"scales": _f32(1, 1, 0.5, 0.75)},
            opset=10,
        ),
        _case(
            "resize_op10_linear_x3_x1_5",
            "Resize",
            {"x": x},
            {"scales": _f32(1, 1, 3, 1.5)},
            {"mode": "linear"},
            opset=10,
        ),
    ]
    return cases


# ---------------------------------------------------------------------------
# Cast / ArgMax
# ---------------------------------------------------------------------------


def _misc_cases() -> list[OnnxCase]:
    vals = (_rng("cast").standard_normal((3, 4, 5)) * 4).astype(np.float32)
    ties = np.round(_rng("ties").standard_normal((2, 4, 5))).astype(np.float32)
    return [
        _case(
            "cast_to_int64",
            "Cast",
            {"x": vals},
            attrs={"to": TensorProto.INT64},
            out_type=TensorProto.INT64,
        ),
        _case(
            "cast_to_int32",
            "Cast",
            {"x": vals},
            attrs={"to": TensorProto.INT32},
            out_type=TensorProto.INT32,
        ),
        _case("cast_to_float", "Cast", {"x": vals}, attrs={"to": TensorProto.FLOAT}),
        _case(
            "argmax_axis1_keep",
            "ArgMax",
            {"x": (2, 5, 4)},
            attrs={"axis": 1},
            out_type=TensorProto.INT64,
        ),
        _case(
            "argmax_last_nokeep",
            "ArgMax",
            {"x": (2, 5, 4)},
            attrs={"axis": -1, "keepdims": 0},
            out_type=TensorProto.INT64,
        ),
        _case(
            "argmax_ties_first",
            "ArgMax",
            {"x": ties},
            attrs={"axis": 1},
            out_type=TensorProto.INT64,
        ),
        _case(
            "argmax_ties_select_last",
            "ArgMax",
            {"x": ties},
            attrs={"axis": 1, "select_last_index": 1},
            out_type=TensorProto.INT64,
        ),
        _case(
            "argmax_axis0_select_last_nokeep",
            "ArgMax",
            {"x": ties},
            attrs={"axis": 0, "keepdims": 0, "select_last_index": 1},
            out_type=TensorProto.INT64,
        ),
    ]


_GROUPS: list[Callable[[], list[OnnxCase]]] = [
    _conv_cases,
    _conv_transpose_cases,
    _matmul_gemm_cases,
    _binary_cases,
    _unary_cases,
    _norm_cases,
    _pool_cases,
    _reduce_cases,
    _shape_cases,
    _resize_cases,
    _misc_cases,
]


def onnx_node_cases() -> list[OnnxCase]:
    """All one-node cases, in a fixed order with unique names."""
    cases = [case for group in _GROUPS for case in group()]
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    return cases
