"""The ONNX frontend on pre-quantized models: QuantizeLinear / DequantizeLinear (per
tensor, per axis, int8 / uint8 / int16 / int32), QLinearConv, QLinearMatMul and the QDQ
and QOperator models onnxruntime's `quantize_static` writes. The imported types must
carry the ONNX scales and zero points exactly (uint8 shifted to int8 storage); outputs of
the quantized interpreter are compared with onnxruntime's."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_frontend_onnx import make_model

from rkc.dialects import nn, quant
from rkc.dialects.quant import UniformQuantizedType, quantized_element
from rkc.errors import RkcError
from rkc.frontend.onnx import import_onnx
from rkc.graph import main_function

DATA = Path(__file__).parent / "data"
N = helper.make_node
OFFSET = {np.dtype(np.int8): 0, np.dtype(np.uint8): 128, np.dtype(np.int16): 0,
          np.dtype(np.uint16): 1 << 15, np.dtype(np.int32): 0}



def ort_run(model: onnx.ModelProto, feeds: dict, optimize: bool = True) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def ops(module) -> list:
    return list(main_function(module).body.block.ops)


def named(module, name: str, op_name: str | None = None):
    found = [op for op in ops(module) if nn.node_name(op) == name
             and (op_name is None or op.name == op_name)]
    assert len(found) == 1, (name, [op.name for op in found])
    return found[0]


def qtype(value) -> UniformQuantizedType:
    q = quantized_element(value.type)
    assert q is not None, value.type
    return q


# ---------------------------------------------------------------------------
# checking imported types against the ONNX initializers
# ---------------------------------------------------------------------------
def onnx_params(inits: dict, node: onnx.NodeProto, i: int, data_dtype=np.uint8
                ) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """The (scales, zero points) inputs i and i + 1 of an ONNX node give, as rkc stores
    them (unsigned zero points shifted)."""
    scale = inits[node.input[i]]
    zp_name = node.input[i + 1] if len(node.input) > i + 1 else ""
    zp = inits[zp_name] if zp_name else np.zeros(scale.shape, data_dtype)
    return (tuple(float(s) for s in scale.reshape(-1)),
            tuple(int(z) - OFFSET[zp.dtype] for z in zp.reshape(-1)))


def params(q: UniformQuantizedType) -> tuple[tuple[float, ...], tuple[int, ...]]:
    return q.scales, q.zero_points


def check_types(model: onnx.ModelProto, module) -> int:
    """Every Q/DQ/QLinear node's IR types and every quantized constant match the ONNX
    initializers exactly; returns the number of checks."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    checks = 0
    for op in ops(module):
        if isinstance(op, nn.ConstantOp) and quantized_element(op.output.type) is not None \
                and nn.node_name(op) in inits:  # (not a folded QuantizeLinear of a constant)
            source = inits[nn.node_name(op)]
            expected = source.astype(np.int64) - OFFSET[source.dtype]
            np.testing.assert_array_equal(op.to_numpy().astype(np.int64), expected)
            checks += 1
    folded = set(inits)  # tensors the importer computes at import time
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" and all(i in folded for i in node.input if i):
            folded.update(node.output)
    for index, node in enumerate(model.graph.node):
        name = node.name or f"{node.op_type}_{index}"
        if node.output[0] in folded:
            continue
        if node.op_type == "QuantizeLinear":
            op = named(module, name, "quant.quantize")
            assert params(qtype(op.output)) == onnx_params(inits, node, 1)
        elif node.op_type == "DequantizeLinear":
            op = named(module, name, "quant.dequantize")
            data = inits.get(node.input[0])
            assert params(qtype(op.input)) == onnx_params(
                inits, node, 1, data.dtype if data is not None else np.uint8)
        elif node.op_type in ("QLinearConv", "QLinearMatMul"):
            op = named(module, name)
            assert params(qtype(op.operands[0])) == onnx_params(inits, node, 1)
            assert params(qtype(op.operands[1])) == onnx_params(inits, node, 4)
            assert params(qtype(op.results[0])) == onnx_params(inits, node, 6)
            if node.op_type == "QLinearConv" and len(op.operands) == 3:
                s_x, s_w = qtype(op.operands[0]).scale, qtype(op.operands[1]).scales
                s_w = s_w * (len(qtype(op.operands[2]).scales) // len(s_w))
                assert qtype(op.operands[2]).scales == tuple(s_x * s for s in s_w)
                assert qtype(op.operands[2]).quantized_axis == 0
        else:
            continue
        checks += 1
    return checks


# ---------------------------------------------------------------------------
# onnxruntime quantize_static on tiny float models
# ---------------------------------------------------------------------------
RNG = np.random.default_rng(0)
CONV_W1 = (RNG.normal(size=(4, 3, 3, 3)) * 0.3).astype(np.float32)
CONV_B1 = (RNG.normal(size=4) * 0.1).astype(np.float32)
CONV_W2 = (RNG.normal(size=(2, 4, 3, 3)) * 0.3).astype(np.float32)
CONV_B2 = (RNG.normal(size=2) * 0.1).astype(np.float32)
MATMUL_B = RNG.normal(size=(8, 5)).astype(np.float32)


def conv_relu_pool_conv() -> onnx.ModelProto:
    return make_model([N("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
                       N("Relu", ["c1"], ["r"], name="relu"),
                       N("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2],
                         name="pool"),
                       N("Conv", ["p", "w2", "b2"], ["y"], pads=[1, 0, 1, 0], name="conv2")],
                      {"x": (1, 3, 8, 8)},
                      inits={"w1": CONV_W1, "b1": CONV_B1, "w2": CONV_W2, "b2": CONV_B2})


def matmul_relu() -> onnx.ModelProto:
    return make_model([N("MatMul", ["x", "b"], ["m"], name="mm"), N("Relu", ["m"], ["y"])],
                      {"x": (2, 8)}, inits={"b": MATMUL_B})


def ppocr_cls() -> onnx.ModelProto:
    """A real model (PaddleOCR's direction classifier), input fixed to 1x3x48x192."""
    model = onnx.load(DATA / "ppocr_mobile_v2_cls.onnx")
    for dim, size in zip(model.graph.input[0].type.tensor_type.shape.dim, (1, 3, 48, 192),
                         strict=True):
        dim.dim_value = size
    return model


FLOAT_MODELS = {"conv": (conv_relu_pool_conv, (1, 3, 8, 8)), "matmul": (matmul_relu, (2, 8)),
                "ppocr_cls": (ppocr_cls, (1, 3, 48, 192))}


def calibration_inputs(shape: tuple[int, ...], count: int = 4, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.uniform(-2, 2, size=shape).astype(np.float32)} for _ in range(count)]


_QUANTIZED: dict[tuple, onnx.ModelProto] = {}


def quantized(tmp: Path, kind: str, fmt: str, per_channel: bool, activation: str = "int8",
              weight: str = "int8", reduce_range: bool = False) -> onnx.ModelProto:
    """`quantize_static` of a float model (memoized: calibration takes a while)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    key = (kind, fmt, per_channel, activation, weight, reduce_range)
    if key in _QUANTIZED:
        return _QUANTIZED[key]
    build, shape = FLOAT_MODELS[kind]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter(calibration_inputs(shape))

        def get_next(self):
            return next(self.feeds, None)

    types = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    src, dst = tmp / f"{kind}.onnx", tmp / ("_".join(map(str, key)) + ".onnx")
    onnx.save(build(), src)
    quantize_static(src, dst, Reader(), quant_format=getattr(QuantFormat, fmt),
                    per_channel=per_channel, reduce_range=reduce_range,
                    activation_type=types[activation], weight_type=types[weight])
    _QUANTIZED[key] = onnx.load(dst)
    return _QUANTIZED[key]


CASES = [(kind, fmt, per_channel, activation)
         for kind in ("conv", "matmul") for fmt in ("QDQ", "QOperator")
         for per_channel in (False, True) for activation in ("int8", "uint8")]


@pytest.mark.parametrize("kind, fmt, per_channel, activation", CASES)
def test_quantize_static_types(tmp_path_factory, kind, fmt, per_channel, activation):
    model = quantized(tmp_path_factory.getbasetemp(), kind, fmt, per_channel, activation)
    module = import_onnx(model)
    module.verify()
    assert check_types(model, module) >= 4
    names = {op.name for op in ops(module)}
    if fmt == "QOperator":  # integer ops all the way: no float conv/matmul left
        main = {"conv": "nn.conv2d", "matmul": "nn.matmul"}[kind]
        assert all(quantized_element(op.results[0].type) for op in ops(module)
                   if op.name == main)
        assert "quant.dequantize" in names and "quant.quantize" in names
    else:  # weights stay quantized constants read by quant.dequantize
        weight = next(op for op in ops(module) if isinstance(op, nn.ConstantOp)
                      and quantized_element(op.output.type) is not None
                      and quantized_element(op.output.type).bits == 8)
        axis = qtype(weight.output).quantized_axis
        expected_axis = {"conv": 0, "matmul": 1}[kind]
        assert axis == (expected_axis if per_channel else None)


def test_qoperator_conv_ir(tmp_path_factory):
    """QLinearConv: x uint8 (shifted), weights per channel, i32 bias at s_x * s_w[o]."""
    model = quantized(tmp_path_factory.getbasetemp(), "conv", "QOperator", True, "uint8")
    module = import_onnx(model)
    conv = named(module, "conv1_quant")
    x, w, b = (qtype(v) for v in conv.operands)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert x.zero_point == int(inits["x_zero_point"]) - 128
    assert w.quantized_axis == 0 and w.zero_points == (0,) * 4
    assert b.bits == 32 and b.scales == tuple(float(inits["x_scale"]) * float(s)
                                              for s in inits["w1_scale"])
    assert qtype(conv.output) == UniformQuantizedType.per_tensor(
        float(inits["c1_scale"]), int(inits["c1_zero_point"]) - 128)
    assert [p for p in conv.properties] == ["strides", "pads", "dilations", "group"]


@pytest.mark.parametrize("reduce_range, message", [
    (True, None),
    (False, r"^QLinearConv node 'conv1_quant': asymmetric weights \(zero point \d+\) are not "
            r"supported; weights must be symmetric \(zero point 0\)$"),
])
def test_qoperator_uint8_weights(tmp_path_factory, reduce_range, message):
    """uint8 asymmetric weights: 7-bit ones (reduce_range) fit int8 once centred and are
    re-expressed exactly with zero point 0; full-range ones are rejected."""
    model = quantized(tmp_path_factory.getbasetemp(), "conv", "QOperator", False, "uint8",
                      weight="uint8", reduce_range=reduce_range)
    if message:
        with pytest.raises(RkcError, match=message):
            import_onnx(model)
        return
    module = import_onnx(model)
    module.verify()
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    conv = named(module, "conv1_quant")
    w = conv.operands[1].owner
    assert qtype(w.output).zero_points == (0,)
    np.testing.assert_array_equal(w.to_numpy(), inits["w1_quantized"].astype(np.int64)
                                  - int(inits["w1_zero_point"]))


def test_unsupported_com_microsoft_op():
    model = make_model([N("QLinearAdd", ["a", "s", "z", "a", "s", "z", "s", "z"], ["y"],
                          domain="com.microsoft", name="add")], {"a": (2,)},
                       inits={"s": np.float32(0.1), "z": np.uint8(128)},
                       input_type=TensorProto.UINT8)
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(RkcError, match=r"^unsupported ONNX op 'com.microsoft.QLinearAdd' "
                                       r"\(node 'add', opset 13\)$"):
        import_onnx(model)


# ---------------------------------------------------------------------------
# hand-made QuantizeLinear / DequantizeLinear
# ---------------------------------------------------------------------------
def qdq(scale, zp, axis: int | None = None, opset: int = 13, shape=(1, 3, 2, 2)):
    attrs = {} if axis is None else {"axis": axis}
    inputs = ["s", "z"] if zp is not None else ["s"]
    inits = {"s": scale} if zp is None else {"s": scale, "z": zp}
    return make_model([N("QuantizeLinear", ["x", *inputs], ["q"], name="q", **attrs),
                       N("DequantizeLinear", ["q", *inputs], ["y"], name="dq", **attrs)],
                      {"x": shape}, inits=inits, opset=opset)


QDQ_CASES = {
    "uint8 per tensor, opset 10": qdq(np.float32(0.05), np.uint8(131), opset=10),
    "int8 per tensor": qdq(np.float32(0.02), np.int8(-3)),
    "1-element scale": qdq(np.array([0.02], np.float32), np.array([7], np.int8)),
    "default zero point (uint8 0)": qdq(np.float32(0.01), None),
    "uint8 per axis 1": qdq(np.array([0.1, 0.2, 0.05], np.float32),
                            np.array([0, 128, 255], np.uint8), axis=1),
    "int8 per axis -1": qdq(np.array([0.1, 0.3], np.float32), np.array([-5, 5], np.int8),
                            axis=-1),
    "int16 opset 21": qdq(np.float32(1e-3), np.int16(-300), opset=21),
    "uint16 opset 21": qdq(np.float32(1e-3), np.uint16(40000), opset=21),
}


@pytest.mark.parametrize("case", QDQ_CASES)
def test_quantize_dequantize_types(case):
    model = QDQ_CASES[case]
    module = import_onnx(model)
    module.verify()
    assert check_types(model, module) == 2
    assert [op.name for op in ops(module)] == ["quant.quantize", "quant.dequantize",
                                               "func.return"]


def test_uint8_shift_and_axis():
    module = import_onnx(QDQ_CASES["uint8 per axis 1"])
    q = qtype(named(module, "q").output)
    assert str(q) == "!quant.uniform<i8:f32:1, {0.10000000149011612:-128, " \
                     "0.20000000298023224:0, 0.05000000074505806:127}>"
    assert q.scales == tuple(float(np.float32(s)) for s in (0.1, 0.2, 0.05))


def test_quantized_graph_output():
    """A QuantizeLinear output as graph output keeps its quantized type (int8 codes)."""
    model = make_model([N("QuantizeLinear", ["x", "s", "z"], ["y"])], {"x": (4,)},
                       inits={"s": np.float32(0.5), "z": np.uint8(10)})
    fn = main_function(import_onnx(model))
    assert str(fn.function_type.outputs.data[0]) == "tensor<4x!quant.uniform<i8:f32, 0.5:-118>>"


@pytest.mark.parametrize("dtype, axis, zp", [
    (np.int8, 0, np.array([0, 0], np.int8)),
    (np.uint8, 1, np.array([1, 128, 255], np.uint8)),
    (np.int32, None, None),
])
def test_dequantize_constant_stays_quantized(dtype, axis, zp):
    """DequantizeLinear of an integer initializer is not folded: nn.constant as a
    quantized type, then quant.dequantize."""
    info = np.iinfo(dtype)
    w = RNG.integers(max(info.min, -1000), min(info.max, 1000), size=(2, 3), endpoint=True,
                     dtype=dtype)
    n = 1 if axis is None else w.shape[axis]
    inits = {"w": w, "s": np.linspace(0.01, 0.02, n, dtype=np.float32).reshape(
        () if axis is None else (n,))}
    inputs = ["w", "s"]
    if zp is not None:
        inits["z"] = zp
        inputs.append("z")
    model = make_model([N("DequantizeLinear", inputs, ["d"], name="dq",
                          **({} if axis is None else {"axis": axis})),
                        N("Add", ["x", "d"], ["y"])], {"x": (2, 3)}, inits=inits)
    module = import_onnx(model)
    module.verify()
    assert [op.name for op in ops(module)][:3] == ["nn.constant", "quant.dequantize", "nn.add"]
    assert check_types(model, module) == 2
    assert qtype(ops(module)[0].output).quantized_axis == axis


@pytest.mark.parametrize("opset", [10, 13, 19, 21])
def test_opsets(opset):
    model = qdq(np.array([0.1, 0.2, 0.05], np.float32) if opset >= 13 else np.float32(0.1),
                np.array([1, 2, 3], np.uint8) if opset >= 13 else np.uint8(3),
                axis=1 if opset >= 13 else None, opset=opset)
    module = import_onnx(model)
    module.verify()
    assert check_types(model, module) == 2


def test_dequantize_integer_input_is_float_arithmetic():
    """An integer model input no QuantizeLinear produced: (cast(x) - zp) * scale in f32,
    which is exactly onnxruntime's DequantizeLinear (runs in the float interpreter)."""
    from rkc.interpreter import run_module

    model = make_model([N("DequantizeLinear", ["x", "s", "z"], ["y"], axis=1)], {"x": (2, 3)},
                       inits={"s": np.array([0.1, 0.2, 0.3], np.float32),
                              "z": np.array([0, 128, 255], np.uint8)},
                       input_type=TensorProto.UINT8)
    module = import_onnx(model)
    module.verify()
    assert [op.name for op in ops(module)][:2] == ["nn.cast", "nn.constant"]
    x = RNG.integers(0, 255, size=(2, 3), endpoint=True, dtype=np.uint8)
    np.testing.assert_array_equal(run_module(module, {"x": x})["y"], ort_run(model, {"x": x})[0])


def test_quant_ops_carry_node_names():
    module = import_onnx(QDQ_CASES["int8 per tensor"])
    assert [nn.node_name(op) for op in ops(module)][:2] == ["q", "dq"]
    assert isinstance(ops(module)[0], quant.QuantizeOp)


# ---------------------------------------------------------------------------
# hand-made QLinearConv / QLinearMatMul
# ---------------------------------------------------------------------------
def qlinear_conv(w: np.ndarray, w_zp, bias: bool = True) -> onnx.ModelProto:
    inits = {"xs": np.float32(0.05), "xz": np.uint8(128), "w": w, "ws": np.float32(0.01),
             "wz": w_zp, "ys": np.float32(0.1), "yz": np.uint8(100)}
    inputs = ["q", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
    if bias:
        inits["b"] = np.arange(w.shape[0], dtype=np.int32) * 50 - 30
        inputs.append("b")
    return make_model([N("QuantizeLinear", ["x", "xs", "xz"], ["q"], name="q"),
                       N("QLinearConv", inputs, ["qy"], pads=[1, 1, 1, 1], name="conv"),
                       N("DequantizeLinear", ["qy", "ys", "yz"], ["y"], name="dq")],
                      {"x": (1, 2, 5, 5)}, inits=inits)


W_INT8 = RNG.integers(-127, 127, size=(3, 2, 3, 3), endpoint=True, dtype=np.int8)


@pytest.mark.parametrize("w, w_zp, centred", [
    (W_INT8, np.int8(0), W_INT8),
    ((W_INT8.astype(np.int16) + 128).astype(np.uint8), np.uint8(128), W_INT8),  # symmetric
    (W_INT8 // 2 + 5, np.int8(5), W_INT8 // 2),  # asymmetric, fits int8 once centred
])
def test_qlinear_conv_weights(w, w_zp, centred):
    model = qlinear_conv(w, w_zp)
    module = import_onnx(model)
    module.verify()
    conv = named(module, "conv")
    weight = conv.operands[1].owner
    assert qtype(weight.output).zero_points == (0,)
    np.testing.assert_array_equal(weight.to_numpy(), centred)
    assert str(conv.output.type) == "tensor<1x3x5x5x!quant.uniform<i8:f32, " \
                                    "0.10000000149011612:-28>>"


def test_qlinear_conv_asymmetric_weights_rejected():
    w = RNG.integers(0, 255, size=(3, 2, 3, 3), endpoint=True, dtype=np.uint8)
    with pytest.raises(RkcError, match=re.escape(
            "QLinearConv node 'conv': asymmetric weights (zero point 120) are not supported; "
            "weights must be symmetric (zero point 0)")):
        import_onnx(qlinear_conv(w, np.uint8(120)))


def test_qlinear_conv_reads_other_parameters_rejected():
    model = qlinear_conv(W_INT8, np.int8(0))
    model.graph.initializer.append(numpy_helper.from_array(np.float32(0.07), "xs2"))
    model.graph.node[1].input[1] = "xs2"
    with pytest.raises(RkcError, match=r"^QLinearConv node 'conv': input 'q' is quantized as "
                                       r".*reinterpreting integer codes is not supported$"):
        import_onnx(model)


def qlinear_matmul(b: np.ndarray, b_scale, b_zp) -> onnx.ModelProto:
    inits = {"as": np.float32(0.05), "az": np.uint8(131), "b": b, "bs": b_scale, "bz": b_zp,
             "ys": np.float32(0.2), "yz": np.uint8(121)}
    return make_model([N("QuantizeLinear", ["x", "as", "az"], ["q"], name="q"),
                       N("QLinearMatMul", ["q", "as", "az", "b", "bs", "bz", "ys", "yz"],
                         ["qy"], name="mm"),
                       N("DequantizeLinear", ["qy", "ys", "yz"], ["y"], name="dq")],
                      {"x": (2, 4)}, inits=inits)


@pytest.mark.parametrize("b_scale, b_zp", [
    (np.float32(0.02), np.uint8(140)),
    (np.array([0.01, 0.02, 0.03], np.float32), np.array([120, 128, 136], np.uint8)),
])
def test_qlinear_matmul(b_scale, b_zp):
    b = RNG.integers(0, 255, size=(4, 3), endpoint=True, dtype=np.uint8)
    model = qlinear_matmul(b, b_scale, b_zp)
    module = import_onnx(model)
    module.verify()
    assert check_types(model, module) == 4  # b, Q, QLinearMatMul, DQ
    mm = named(module, "mm")
    assert qtype(mm.operands[1]).quantized_axis == (None if b_scale.ndim == 0 else 1)


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------
ERRORS = {
    "blocked": (make_model([N("DequantizeLinear", ["w", "s"], ["y"], axis=1, block_size=2)],
                           {}, opset=21, inits={"w": np.zeros((2, 4), np.int8),
                                                "s": np.ones((2, 2), np.float32)}),
                "DequantizeLinear node 'DequantizeLinear_0': blocked quantization "
                "(block_size) is not supported"),
    "float16 scale": (make_model([N("QuantizeLinear", ["x", "s"], ["y"])], {"x": (2,)},
                                 opset=19, inits={"s": np.float16(0.1)},
                                 input_type=TensorProto.FLOAT16),
                      "QuantizeLinear node 'QuantizeLinear_0': input of type tensor<2xf16> "
                      "is not supported (f32 only)"),
    "computed scale": (make_model([N("QuantizeLinear", ["x", "x"], ["y"])], {"x": ()}),
                       "QuantizeLinear node 'QuantizeLinear_0': scale (input 1) must be a "
                       "constant"),
    "zero scale": (qdq(np.float32(0.0), np.int8(0)),
                   "QuantizeLinear node 'q': scales must be positive and finite, got 0.0"),
    "axis size": (qdq(np.array([0.1, 0.2], np.float32), np.array([0, 0], np.int8), axis=1),
                  "QuantizeLinear node 'q': scale of shape [2] does not fit axis 1 of shape "
                  "[1, 3, 2, 2]"),
    "other parameters": (make_model(
        [N("QuantizeLinear", ["x", "s", "z"], ["q"]),
         N("DequantizeLinear", ["q", "s2", "z"], ["y"], name="dq")], {"x": (2,)},
        inits={"s": np.float32(0.1), "s2": np.float32(0.2), "z": np.int8(0)}),
        "DequantizeLinear node 'dq': input 'q' is quantized as !quant.uniform<i8:f32, "
        "0.10000000149011612:0>, the node reads it as !quant.uniform<i8:f32, "
        "0.20000000298023224:0>; reinterpreting integer codes is not supported"),
    "int4": (make_model([N("DequantizeLinear", ["w", "s"], ["d"]), N("Add", ["x", "d"], ["y"])],
                        {"x": (2,)}, opset=21,
                        inits={"s": np.float32(1.0)}),
             "DequantizeLinear node 'DequantizeLinear_0': quantized type int4 is not "
             "supported (int8, uint8, int16, uint16, int32)"),
}
ERRORS["int4"][0].graph.initializer.append(
    helper.make_tensor("w", TensorProto.INT4, [2], [1, -2]))


@pytest.mark.parametrize("case", ERRORS)
def test_errors(case):
    model, message = ERRORS[case]
    with pytest.raises(RkcError) as e:
        import_onnx(model)
    assert str(e.value) == message


# ---------------------------------------------------------------------------
# numerics against onnxruntime (needs the quantized interpreter)
# ---------------------------------------------------------------------------
def output_step(model: onnx.ModelProto) -> float:
    """The scale of the DequantizeLinear that produces the graph output."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producers = {n.output[0]: n for n in model.graph.node}
    last = producers[model.graph.output[0].name]
    while last.op_type == "Identity":
        last = producers[last.input[0]]
    assert last.op_type == "DequantizeLinear"
    return float(inits[last.input[1]])


@pytest.mark.parametrize("kind, fmt, per_channel, activation", CASES)
def test_quantize_static_matches_onnxruntime(tmp_path_factory, kind, fmt, per_channel,
                                            activation):
    """Within one output step of onnxruntime (which fuses QDQ into integer kernels):
    onnxruntime requantizes with a float multiplier, the NPU with a 15-bit fixed-point
    one, and the QDQ import still computes conv / matmul in float."""
    from rkc.interpreter import run_module

    model = quantized(tmp_path_factory.getbasetemp(), kind, fmt, per_channel, activation)
    module = import_onnx(model)
    step = output_step(model)
    for feeds in calibration_inputs(FLOAT_MODELS[kind][1], count=3, seed=7):
        want = ort_run(model, feeds)[0]
        got = run_module(module, feeds)["y"]
        assert got.shape == want.shape
        assert np.abs(got.astype(np.float64) - want).max() <= step * (1 + 1e-6)


def test_real_model_qdq_matches_onnxruntime(tmp_path_factory):
    """PaddleOCR's classifier through quantize_static (QDQ, per channel): every float op
    between dequantize / quantize pairs; the softmax output within one step (1/255)."""
    from rkc.interpreter import run_module

    model = quantized(tmp_path_factory.getbasetemp(), "ppocr_cls", "QDQ", True)
    module = import_onnx(model)
    module.verify()
    assert check_types(model, module) > 100
    feeds = calibration_inputs(FLOAT_MODELS["ppocr_cls"][1], count=1, seed=7)[0]
    name = model.graph.output[0].name
    got, want = run_module(module, feeds)[name], ort_run(model, feeds)[0]
    assert np.abs(got - want).max() <= output_step(model) * (1 + 1e-6)


@pytest.mark.parametrize("case", QDQ_CASES)
def test_quantize_dequantize_matches_onnxruntime(case):
    """Quantize then dequantize: exactly onnxruntime's values."""
    from rkc.interpreter import run_module

    model = QDQ_CASES[case]
    x = (RNG.normal(size=(1, 3, 2, 2)) * 3).astype(np.float32)
    want = ort_run(model, {"x": x}, optimize=False)[0]
    np.testing.assert_array_equal(run_module(import_onnx(model), {"x": x})["y"], want)


def test_quantized_output_codes_match_onnxruntime():
    """uint8 codes come out as int8 codes 128 lower."""
    from rkc.interpreter import run_module

    model = make_model([N("QuantizeLinear", ["x", "s", "z"], ["y"])], {"x": (64,)},
                       inits={"s": np.float32(0.05), "z": np.uint8(100)})
    x = (RNG.normal(size=64) * 4).astype(np.float32)
    got = run_module(import_onnx(model), {"x": x})["y"]
    np.testing.assert_array_equal(got.astype(np.int64) + 128, ort_run(model, {"x": x})[0])


@pytest.mark.parametrize("w, w_zp", [
    (W_INT8, np.int8(0)),
    ((W_INT8.astype(np.int16) + 128).astype(np.uint8), np.uint8(128)),
    (W_INT8 // 2 + 5, np.int8(5)),
])
def test_qlinear_conv_matches_onnxruntime(w, w_zp):
    from rkc.interpreter import run_module

    model = qlinear_conv(w, w_zp)
    x = (RNG.normal(size=(1, 2, 5, 5)) * 2).astype(np.float32)
    want = ort_run(model, {"x": x})[0]
    got = run_module(import_onnx(model), {"x": x})["y"]
    assert np.abs(got - want).max() <= 0.1 * (1 + 1e-6)


@pytest.mark.parametrize("b_scale, b_zp", [
    (np.float32(0.02), np.uint8(140)),
    (np.array([0.01, 0.02, 0.03], np.float32), np.array([120, 128, 136], np.uint8)),
])
def test_qlinear_matmul_matches_onnxruntime(b_scale, b_zp):
    from rkc.interpreter import run_module

    b = RNG.integers(0, 255, size=(4, 3), endpoint=True, dtype=np.uint8)
    model = qlinear_matmul(b, b_scale, b_zp)
    x = (RNG.normal(size=(2, 4)) * 2).astype(np.float32)
    want = ort_run(model, {"x": x})[0]
    got = run_module(import_onnx(model), {"x": x})["y"]
    assert np.abs(got - want).max() <= 0.2 * (1 + 1e-6)


# ---------------------------------------------------------------------------
# ONNX's own node tests of the quantized ops
# ---------------------------------------------------------------------------
NODE_TEST_UNSUPPORTED = {
    r"blocked": "blocked quantization (block_size) is not supported",
    r"^test_quantizelinear_(e4m3fn|e5m2|u?int4)": "is not supported (int8, uint8, int16, uint16",
    r"dequantizelinear_(e4m3fn|e5m2|u?int4|uint16)": "unsupported element type",  # as input
    r"float16": "scale of type float16 is not supported (float32 only)",
    r"test_qlinearconv$": "asymmetric weights (zero point 255) are not supported",
}


def _node_test_cases() -> list:
    import warnings

    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    pattern = re.compile(r"test_(quantizelinear|dequantizelinear|qlinearconv|qlinearmatmul)")
    return sorted((c for c in cases if pattern.match(c.name) and "expanded" not in c.name),
                  key=lambda c: c.name)


NODE_TESTS = _node_test_cases()


@pytest.mark.parametrize("case", NODE_TESTS, ids=[c.name for c in NODE_TESTS])
def test_onnx_node_tests(case):
    """Scales, zero points (and QLinearConv's weight and bias) become initializers; the
    data inputs stay model inputs (plain integers for DequantizeLinear / QLinear*).
    Unsigned results come out 2**(bits-1) lower (signed storage)."""
    from rkc.interpreter import run_module

    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    if max(o.version for o in model.opset_import) > 21:
        try:
            model = onnx.version_converter.convert_version(model, 21)
        except Exception:  # no adapter (2-bit types and the like)
            pytest.skip("the model cannot be converted to opset 21")
    node = model.graph.node[0]
    data = {node.input[0]} | ({node.input[3]} if node.op_type == "QLinearMatMul" else set())
    inputs, expected = case.data_sets[0]
    feeds = {}
    for vi, value in zip(list(model.graph.input), inputs, strict=True):
        if vi.name in data:
            feeds[vi.name] = np.asarray(value)
        else:
            model.graph.initializer.append(
                value if isinstance(value, onnx.TensorProto) else
                numpy_helper.from_array(np.asarray(value), vi.name))
            model.graph.input.remove(vi)
    reason = next((m for p, m in NODE_TEST_UNSUPPORTED.items() if re.search(p, case.name)),
                  None)
    if reason is not None:
        with pytest.raises(RkcError, match=re.escape(reason)):
            import_onnx(model)
        return
    got = run_module(import_onnx(model), feeds)
    want = np.asarray(expected[0])
    out = next(iter(got.values())).astype(np.int64 if want.dtype.kind in "iu" else np.float32)
    if want.dtype.kind == "u":
        out += 1 << (8 * want.dtype.itemsize - 1)
    np.testing.assert_array_equal(out, want)
