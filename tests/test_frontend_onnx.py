"""The ONNX frontend: error messages, constant folding, GELU fusion, names, the attribute
normalisations (auto_pad, output_shape, slice clamping, ...) and three real models run
in our interpreter against onnxruntime."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from rkc.dialects import nn
from rkc.errors import RkcError
from rkc.frontend.onnx import import_onnx, parse_input_shapes
from rkc.graph import input_names, main_function, output_names
from rkc.interpreter import run_module

DATA = Path(__file__).parent / "data"
N = helper.make_node
RNG = np.random.default_rng(0)


def make_model(nodes, inputs: dict, outputs=("y",), opset: int = 13, inits: dict | None = None,
               input_type=TensorProto.FLOAT) -> onnx.ModelProto:
    """A model from nodes; inputs map name -> shape (entries may be dim names)."""
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, input_type, s) for n, s in inputs.items()],
        [helper.make_empty_tensor_value_info(o) for o in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 21 else 10
    return model


def op_names(module) -> list[str]:
    return [op.name for op in main_function(module).body.block.ops]


def ort_session(model: onnx.ModelProto) -> ort.InferenceSession:
    """onnxruntime on a copy of the model without empty constant Concat inputs (1.32
    rejects them: yolo_fastest_xl has some)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    empty = {n.output[0] for n in model.graph.node if n.op_type == "Constant"
             and n.attribute[0].name == "value"
             and numpy_helper.to_array(n.attribute[0].t).size == 0}
    for node in model.graph.node:
        if node.op_type == "Concat":
            kept = [i for i in node.input if i not in empty]
            del node.input[:]
            node.input.extend(kept)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def compare_with_ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray],
                     input_shapes=None, atol: float = 1e-5) -> None:
    expected = ort_session(model).run(None, feeds)
    module = import_onnx(model, input_shapes)
    module.verify()
    got = run_module(module, feeds)
    for out, want in zip(model.graph.output, expected, strict=True):
        assert got[out.name].shape == want.shape
        np.testing.assert_allclose(got[out.name], want, rtol=1e-5, atol=atol)


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------
def test_dynamic_dimension_message():
    with pytest.raises(RkcError) as e:
        import_onnx(DATA / "ppocr_v4_det.onnx")
    assert str(e.value) == ("input 'x' has a dynamic dimension at axis 2 (name "
                            "'p2o.DynamicDimension.1'); fix it with --input-shape x=1x3xHxW")


def test_dynamic_batch_defaults_to_one():
    module = import_onnx(make_model([N("Relu", ["x"], ["y"])], {"x": ["batch", 3]}))
    assert str(main_function(module).function_type) == "(tensor<1x3xf32>) -> tensor<1x3xf32>"


@pytest.mark.parametrize("shapes, message", [
    ({"y": (1, 3, 32, 32)}, "--input-shape names no model input: y (inputs: x)"),
    ({"x": (1, 3, 32)}, "--input-shape x: rank 3, but the model's input has rank 4"),
    ({"x": (1, 4, 32, 32)}, "--input-shape x: axis 1 is 4, but the model fixes it to 3"),
])
def test_bad_input_shapes(shapes, message):
    with pytest.raises(RkcError, match=f"^{re.escape(message)}$"):
        import_onnx(DATA / "ppocr_v4_det.onnx", shapes)


def test_parse_input_shapes():
    assert parse_input_shapes(["x=1x3x480x480", "in:0=2"]) == {"x": (1, 3, 480, 480),
                                                                  "in:0": (2,)}


@pytest.mark.parametrize("spec", [["x"], ["x=1x3xAx4"], ["=1x2"], ["x=1x0"], ["x="],
                                  ["x=-1x3"], ["x=1", "x=2"]])
def test_parse_input_shapes_rejects(spec):
    with pytest.raises(RkcError) as e:
        parse_input_shapes(spec)
    assert "\n" not in str(e.value)


def test_unsupported_op_message():
    model = make_model([N("Einsum", ["x", "x"], ["y"], equation="ij,ij->ij", name="mix")],
                       {"x": (2, 2)})
    with pytest.raises(RkcError, match=r"^unsupported ONNX op 'Einsum' \(node 'mix', opset 13\)$"):
        import_onnx(model)


@pytest.mark.parametrize("model, message", [
    (make_model([N("Foo", ["x"], ["y"])], {"x": (2,)}),
     "unsupported ONNX op 'Foo' (node 'Foo_0', opset 13)"),
    (make_model([N("Foo", ["x"], ["y"], domain="com.microsoft")], {"x": (2,)}),
     "unsupported ONNX op 'com.microsoft.Foo' (node 'Foo_0', opset 13)"),
    (make_model([N("Relu", ["x"], ["y"])], {"x": (2,)}, opset=8),
     "ONNX opset 8 is not supported (supported: 9 to 21)"),
    (make_model([N("Relu", ["x"], ["y"])], {"x": (2,)}, opset=22),
     "ONNX opset 22 is not supported (supported: 9 to 21)"),
    (make_model([N("Relu", ["zz"], ["y"])], {"x": (2,)}),
     "malformed ONNX model: node 'Relu_0' reads unknown tensor 'zz'"),
    (make_model([N("Clip", ["x", "x"], ["y"])], {"x": (2,)}),
     "Clip node 'Clip_0': min (input 1) must be a constant"),
    (make_model([N("Conv", ["x", "w"], ["y"], name="c1")], {"x": (1, 4, 8, 8)},
                inits={"w": np.ones((2, 3, 3, 3), np.float32)}),
     "Conv node 'c1': input has 4 channels but weight expects 3 x group 1"),
    (make_model([N("Resize", ["x", "", "s"], ["y"], mode="cubic")], {"x": (1, 1, 4, 4)},
                inits={"s": np.array([1, 1, 2, 2], np.float32)}),
     "Resize node 'Resize_0': mode 'cubic' is not supported"),
    (make_model([N("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 2])], {"x": (1, 1, 4, 4)},
                outputs=("y", "i")),
     "MaxPool node 'MaxPool_0': output 'i' is used; only the first output is supported"),
])
def test_one_line_errors(model, message):
    with pytest.raises(RkcError) as e:
        import_onnx(model)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_unreadable_files(tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\xff not a protobuf" * 8)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes((DATA / "yolo_fastest_xl.onnx").read_bytes()[:100_000])
    for path in (garbage, truncated, tmp_path / "missing.onnx", tmp_path):
        with pytest.raises(RkcError, match=r"^cannot read ONNX model '.*': [^\n]+$"):
            import_onnx(path)


# ---------------------------------------------------------------------------
# folding, fusion, names
# ---------------------------------------------------------------------------
def test_shape_subgraph_is_folded():
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape becomes one nn.reshape."""
    nodes = [
        N("Relu", ["x"], ["r"], name="relu"),
        N("Shape", ["r"], ["s"]),
        N("Constant", [], ["i0"], value=numpy_helper.from_array(np.array(0))),
        N("Gather", ["s", "i0"], ["n"], axis=0),
        N("Unsqueeze", ["n", "axes"], ["n1"]),
        N("Constant", [], ["minus1"], value_ints=[-1]),
        N("Concat", ["n1", "minus1"], ["shape"], axis=0),
        N("Cast", ["shape"], ["shape64"], to=TensorProto.INT64),
        N("Reshape", ["r", "shape64"], ["y"], name="flatten"),
    ]
    model = make_model(nodes, {"x": (2, 3, 4)}, inits={"axes": np.array([0])})
    module = import_onnx(model)
    assert op_names(module) == ["nn.relu", "nn.reshape", "func.return"]
    reshape = list(main_function(module).body.block.ops)[1]
    assert reshape.attributes[nn.NAME_ATTR].data == "flatten"
    assert nn.ints(reshape.properties, "shape") == (2, 12)


def test_identity_dropout_dropped_and_initializer_shared():
    nodes = [N("Identity", ["x"], ["a"]), N("Dropout", ["a"], ["b"]),
             N("Add", ["b", "w"], ["c"]), N("Mul", ["c", "w"], ["y"])]
    model = make_model(nodes, {"x": (2, 3)}, inits={"w": np.ones((2, 3), np.float32)})
    assert op_names(import_onnx(model)) == ["nn.constant", "nn.add", "nn.mul", "func.return"]


@pytest.mark.parametrize("attr, expected", [
    (dict(value_float=1.5), np.float32(1.5)),
    (dict(value_floats=[1.0, 2.0]), np.array([1, 2], np.float32)),
    (dict(value_int=3), np.int64(3)),
    (dict(value_ints=[1, 2]), np.array([1, 2], np.int64)),
    (dict(value=numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3))),
     np.arange(6, dtype=np.float32).reshape(2, 3)),
    (dict(sparse_value=helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([5.0], np.float32), "v"),
        numpy_helper.from_array(np.array([4]), "i"), [2, 3])),
     np.array([[0, 0, 0], [0, 5, 0]], np.float32)),
])
def test_constant_node_forms(attr, expected):
    model = make_model([N("Constant", [], ["y"], **attr)], {})
    module = import_onnx(model)
    (const,) = [op for op in main_function(module).body.block.ops
                if isinstance(op, nn.ConstantOp)]
    got = const.to_numpy()
    assert got.dtype == np.asarray(expected).dtype
    np.testing.assert_array_equal(got, expected)


GELU_CONSTANTS = {"sqrt2": np.array(1.4142135, np.float32),
                  "inv_sqrt2": np.array(0.70710677, np.float32),
                  "one": np.array(1.0, np.float32), "half": np.array(0.5, np.float32)}
GELU_VARIANTS = {
    "div, x*A, *0.5": [N("Div", ["x", "sqrt2"], ["d"]), N("Erf", ["d"], ["e"]),
                       N("Add", ["e", "one"], ["a"]), N("Mul", ["x", "a"], ["m"]),
                       N("Mul", ["m", "half"], ["y"], name="gelu_out")],
    "mul, (0.5*x)*A": [N("Mul", ["x", "inv_sqrt2"], ["d"]), N("Erf", ["d"], ["e"]),
                       N("Add", ["one", "e"], ["a"]), N("Mul", ["half", "x"], ["h"]),
                       N("Mul", ["h", "a"], ["y"], name="gelu_out")],
    "div, x*(A*0.5)": [N("Div", ["x", "sqrt2"], ["d"]), N("Erf", ["d"], ["e"]),
                       N("Add", ["e", "one"], ["a"]), N("Mul", ["a", "half"], ["h"]),
                       N("Mul", ["x", "h"], ["y"], name="gelu_out")],
    "div, 0.5*(A*x)": [N("Div", ["x", "sqrt2"], ["d"]), N("Erf", ["d"], ["e"]),
                       N("Add", ["e", "one"], ["a"]), N("Mul", ["a", "x"], ["m"]),
                       N("Mul", ["half", "m"], ["y"], name="gelu_out")],
}


@pytest.mark.parametrize("variant", GELU_VARIANTS)
def test_erf_gelu_is_fused(variant):
    nodes = GELU_VARIANTS[variant]
    used = {i for n in nodes for i in n.input}
    model = make_model(nodes, {"x": (2, 8)},
                       inits={k: v for k, v in GELU_CONSTANTS.items() if k in used})
    module = import_onnx(model)
    assert op_names(module) == ["nn.gelu", "func.return"]
    gelu = next(iter(main_function(module).body.block.ops))
    assert gelu.attributes[nn.NAME_ATTR].data == "gelu_out"
    compare_with_ort(model, {"x": RNG.standard_normal((2, 8)).astype(np.float32)})


def test_lone_erf_and_shared_intermediates_stay():
    nodes = GELU_VARIANTS["div, x*A, *0.5"] + [N("Relu", ["e"], ["z"])]
    model = make_model(nodes, {"x": (2, 8)}, outputs=("y", "z"), inits=GELU_CONSTANTS)
    names = op_names(import_onnx(model))
    assert "nn.gelu" in names and "nn.erf" in names and "nn.relu" in names
    lone = make_model([N("Erf", ["x"], ["y"])], {"x": (2, 8)})
    assert op_names(import_onnx(lone)) == ["nn.erf", "func.return"]


def test_names_kept():
    nodes = [N("Conv", ["x", "w"], ["c"], name="conv1", pads=[1, 1, 1, 1]),
             N("Relu", ["c"], ["y"])]
    model = make_model(nodes, {"x": (1, 2, 5, 5)},
                       inits={"w": np.ones((3, 2, 3, 3), np.float32)})
    module = import_onnx(model)
    fn = main_function(module)
    named = {op.name: op.attributes[nn.NAME_ATTR].data for op in fn.body.block.ops
             if nn.NAME_ATTR in op.attributes}
    assert named == {"nn.constant": "w", "nn.conv2d": "conv1", "nn.relu": "Relu_1"}
    assert input_names(fn) == ["x"] and output_names(fn) == ["y"]


# ---------------------------------------------------------------------------
# attribute normalisations, against onnxruntime
# ---------------------------------------------------------------------------
X4 = (1, 4, 9, 11)
W = RNG.standard_normal((6, 4, 3, 3)).astype(np.float32)
WT = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
EMPTY = np.zeros(0, np.float32)
OP_CASES = {
    "conv same_upper": ([N("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])],
                        {"w": W}, 13),
    "conv same_lower": ([N("Conv", ["x", "w"], ["y"], auto_pad="SAME_LOWER", strides=[2, 3])],
                        {"w": W}, 13),
    "conv valid dilated": ([N("Conv", ["x", "w"], ["y"], auto_pad="VALID", dilations=[2, 1])],
                           {"w": W}, 13),
    "conv_transpose output_shape": ([N("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2],
                                       output_shape=[18, 22])], {"w": WT}, 13),
    "conv_transpose output_shape larger": ([N("ConvTranspose", ["x", "w"], ["y"],
                                              strides=[2, 2], output_shape=[20, 24])],
                                           {"w": WT}, 13),
    "conv_transpose same_upper": ([N("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2],
                                     auto_pad="SAME_UPPER")], {"w": WT}, 13),
    "conv_transpose same_lower": ([N("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2],
                                     auto_pad="SAME_LOWER")], {"w": WT}, 13),
    "softmax opset 11 axis 1": ([N("Softmax", ["x"], ["y"], axis=1)], {}, 11),
    "softmax opset 11 last": ([N("Softmax", ["x"], ["y"], axis=-1)], {}, 11),
    "slice clamped": ([N("Slice", ["x", "s", "e", "a", "t"], ["y"])],
                      {"s": np.array([-3, 20]), "e": np.array([2**62, 30]),
                       "a": np.array([-1, 2]), "t": np.array([1, 1])}, 13),
    "slice negative steps": ([N("Slice", ["x", "s", "e", "a", "t"], ["y"])],
                             {"s": np.array([5, 0]), "e": np.array([-100, 3]),
                              "a": np.array([3, 1]), "t": np.array([-2, 2])}, 13),
    "reshape 0 -1": ([N("Reshape", ["x", "s"], ["y"])], {"s": np.array([0, -1, 11])}, 13),
    "squeeze unsqueeze opset 11": ([N("Unsqueeze", ["x"], ["u"], axes=[0, -1]),
                                    N("Squeeze", ["u"], ["y"], axes=[1])], {}, 11),
    "flatten negative axis": ([N("Flatten", ["x"], ["y"], axis=-1)], {}, 13),
    "split num_outputs": ([N("Split", ["x"], ["y", "z"], axis=-1, num_outputs=2)], {}, 18),
    "pad reflect axes": ([N("Pad", ["x", "p", "", "a"], ["y"], mode="reflect")],
                         {"p": np.array([1, 2, 2, 1]), "a": np.array([-1, 2])}, 18),
    "resize scales": ([N("Resize", ["x", "", "s"], ["y"], mode="linear")],
                      {"s": np.array([1, 1, 2, 1.5], np.float32)}, 13),
    "resize sizes nearest": ([N("Resize", ["x", "", "", "z"], ["y"],
                                coordinate_transformation_mode="asymmetric",
                                nearest_mode="floor")], {"z": np.array([1, 4, 5, 23])}, 13),
    "reduce_mean axes input": ([N("ReduceMean", ["x", "a"], ["y"], keepdims=0)],
                               {"a": np.array([1, -1])}, 18),
    "maxpool ceil": ([N("MaxPool", ["x"], ["y"], kernel_shape=[3, 2], pads=[1, 0, 2, 1],
                        strides=[2, 2], ceil_mode=1)], {}, 12),
    "avgpool same": ([N("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                        auto_pad="SAME_UPPER")], {}, 13),
    "gather": ([N("Gather", ["x", "i"], ["y"], axis=3)], {"i": np.array([[7, 5], [3, 1]])}, 13),
    "gather scattered": ([N("Gather", ["x", "i"], ["y"], axis=2)], {"i": np.array([0, 3, 3])},
                         13),
    "concat empty input": ([N("Constant", [], ["e"], value=numpy_helper.from_array(EMPTY)),
                            N("Concat", ["x", "e"], ["y"], axis=1)], {}, 11),
    "clip min > max": ([N("Clip", ["x", "lo", "hi"], ["y"])],
                       {"lo": np.array(1.0, np.float32), "hi": np.array(0.5, np.float32)}, 13),
}


@pytest.mark.parametrize("case", OP_CASES)
def test_op_against_onnxruntime(case):
    nodes, inits, opset = OP_CASES[case]
    outputs = tuple(nodes[-1].output)
    model = make_model(nodes, {"x": X4}, outputs=outputs, opset=opset, inits=inits)
    compare_with_ort(model, {"x": RNG.standard_normal(X4).astype(np.float32)})


# ---------------------------------------------------------------------------
# real models on real images
# ---------------------------------------------------------------------------
def load_image(name: str, width: int, height: int) -> np.ndarray:
    """RGB image resized (bilinear) to width x height, as float32 NCHW in 0..255."""
    from PIL import Image

    with Image.open(DATA / name) as image:
        rgb = image.convert("RGB").resize((width, height), Image.BILINEAR)
    return np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1)[None].copy()


def preprocess(model: str) -> tuple[np.ndarray, dict | None]:
    if model == "ppocr_v4_det":
        mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
        std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)
        x = (load_image("det_test.jpg", 480, 480) / 255 - mean) / std
        return x, {"x": (1, 3, 480, 480)}
    if model == "ppocr_mobile_v2_cls":
        return (load_image("ppocr_cls_sample.png", 192, 48) / 255 - 0.5) / 0.5, \
            {"x": (1, 3, 48, 192)}
    return load_image("dog.jpg", 320, 320) / 255, None


@pytest.mark.parametrize("name", ["ppocr_mobile_v2_cls", "yolo_fastest_xl", "ppocr_v4_det"])
def test_real_model_matches_onnxruntime(name):
    pytest.importorskip("PIL")
    model = onnx.load(DATA / f"{name}.onnx")
    x, shapes = preprocess(name)
    x = x.astype(np.float32)
    session = ort_session(model)
    feeds = {session.get_inputs()[0].name: x}
    expected = session.run(None, feeds)
    start = time.perf_counter()
    module = import_onnx(model, shapes)
    module.verify()
    imported = time.perf_counter()
    got = run_module(module, feeds)
    ran = time.perf_counter()
    for out, want in zip(session.get_outputs(), expected, strict=True):
        ours = got[out.name]
        assert ours.shape == want.shape
        a, b = ours.astype(np.float64).ravel(), want.astype(np.float64).ravel()
        cosine = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
        print(f"\n{name} {out.name} {list(want.shape)}: cosine {cosine:.10f}, max abs error "
              f"{np.abs(a - b).max():.3g} (import {imported - start:.2f} s, "
              f"interpreter {ran - imported:.2f} s)")
        assert cosine >= 0.99999
