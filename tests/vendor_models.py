"""The vendor fixtures' layers as rknn-toolkit2 2.5.0 compiled them, for the codegen tests.

For conv_relu / resblock / mobilenet (tests/data/vendor/*.onnx) and RK3588 / RK3568:
the NPU layers of each `.rknn` graph (tests/data/vendor/rknn), their float weights taken
from the ONNX model with the graph rewrites the toolkit applied (batch norm folded into
the first resblock conv; the residual Add folded into the second resblock conv as an
identity kernel, its input being the add's other operand; GlobalAveragePool split into
two depthwise convs of constant weights 1/16 each (16 x 16 = 256 pixels), the Gemm as a
1x1 conv), and the toolkit's weight quantization, recovered here and checked byte for
byte by tests/test_weights.py: per output channel, asymmetric, `s = (max - min) / 255`
over the kernel's weights with 0 inside the range, zero point `z = round(-128 - min /
s)`, `q = clamp(round(w / s) + z, -128, 127)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from rkc.backends.rknn_file import RknnModel, read_rknn

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "tests" / "data" / "vendor"
MODELS = ("conv_relu", "resblock", "mobilenet")
CHIPS = ("rk3588", "rk3568")
# The file holding each build (the RK3588 mobilenet single-core build has the same
# weights, biases and tensor parameters as the default one: checked when copied).
RKNN_FILES = {
    ("conv_relu", "rk3588", "fp16"): "conv_relu_rk3588_fp16.rknn",
    ("resblock", "rk3568", "fp16"): "resblock_rk3568_fp16.rknn",
    ("conv_relu", "rk3588"): "conv_relu_rk3588_int8.rknn",
    ("conv_relu", "rk3568"): "conv_relu_rk3568_int8.rknn",
    ("resblock", "rk3588"): "resblock_rk3588_int8.rknn",
    ("resblock", "rk3568"): "resblock_rk3568_int8.rknn",
    ("mobilenet", "rk3588"): "mobilenet_rk3588_int8_singlecore.rknn",
    ("mobilenet", "rk3568"): "mobilenet_rk3568_int8.rknn",
}
GAP_WEIGHT = 1 / 16   # each of the two GlobalAveragePool convs averages 16 of 256 pixels


FP16_BUILDS = (("conv_relu", "rk3588"), ("resblock", "rk3568"))  # the fp16 files we keep


@cache
def rknn(model: str, chip: str, dtype: str = "int8") -> RknnModel:
    key = (model, chip) if dtype == "int8" else (model, chip, dtype)
    return read_rknn(VENDOR / "rknn" / RKNN_FILES[key])


@cache
def onnx_initializers(model: str) -> dict[str, np.ndarray]:
    graph = onnx.load(VENDOR / f"{model}.onnx").graph
    return {i.name: numpy_helper.to_array(i) for i in graph.initializer}


def vendor_weight_quant(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(q int64, scale float64, zero point int64) per output channel (module docstring)."""
    k = w.shape[0]
    flat = np.asarray(w, np.float32).reshape(k, -1)
    lo = np.minimum(flat.min(axis=1), 0).astype(np.float32)
    hi = np.maximum(flat.max(axis=1), 0).astype(np.float32)
    scale = (hi - lo) / np.float32(255)
    zero = np.round(np.float32(-128) - lo / scale)
    q = np.clip(np.round(flat / scale[:, None]) + zero[:, None], -128, 127)
    return (q.reshape(w.shape).astype(np.int64), scale.astype(np.float64),
            zero.astype(np.int64))


@dataclass(frozen=True)
class VendorLayer:
    """One NPU layer of a vendor graph: its node, tensors and float weights."""

    model: str
    dtype: str                  # "int8" or "fp16" (the build)
    op_idx: int                 # node index = the op_idx of its tasks
    node: str                   # e.g. "Conv:c1"
    kind: str                   # "conv" or "pool"
    activation: str | None      # "relu", "clip" or None
    input: str                  # tensor names in the .rknn graph
    output: str
    weight: str | None = None   # .rknn tensor names of the packed weights / bias stream
    stream: str | None = None
    attributes: dict = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        suffix = "" if self.dtype == "int8" else f"@{self.dtype}"
        return f"{self.model}/{self.node.split(':', 1)[1]}{suffix}"


def _float_weights(model: str, node: str) -> tuple[np.ndarray, np.ndarray]:
    w = onnx_initializers(model)
    name = node.split(":", 1)[1]
    if model == "resblock" and name == "c1":
        scale = w["bn_s"] / np.sqrt(w["bn_v"] + np.float32(1e-5))
        return (w["w1"] * scale[:, None, None, None],
                (w["b1"] - w["bn_m"]) * scale + w["bn_b"])
    if model == "resblock" and name == "c2":
        kernel = w["w2"].copy()
        for k in range(kernel.shape[0]):
            kernel[k, k, 1, 1] += 1          # + p1: the residual add as an identity tap
        return kernel, w["b2"]
    if model == "resblock" and name.startswith("gap_2conv"):
        size = 7 if name.endswith("0") else 3
        return (np.full((16, 1, size, size), GAP_WEIGHT, np.float32),
                np.zeros(16, np.float32))
    if model == "resblock" and name == "output#2":
        return w["fc_w"].reshape(10, 16, 1, 1), w["fc_b"]
    prefix = {"c1": "1", "c0": "0", "cdw": "dw", "cpw": "pw"}[name]
    return w[f"w{prefix}"], w[f"b{prefix}"]


def float_weights(layer: VendorLayer) -> tuple[np.ndarray, np.ndarray]:
    """The float weight [K, C/group, kh, kw] and bias [K] the toolkit quantized."""
    return _float_weights(layer.model, layer.node)


def layers(model: str, chip: str, dtype: str = "int8") -> list[VendorLayer]:
    """The NPU conv and pool layers of the vendor graph, in order."""
    m = rknn(model, chip, dtype)
    out = []
    for i, node in enumerate(m.nodes):
        names = [m.tensors[t].name for t in node.inputs or []]
        outputs = [m.tensors[t].name for t in node.outputs or []]
        if node.type in ("Conv", "ConvRelu", "ConvClip"):
            act = {"ConvRelu": "relu", "ConvClip": "clip"}.get(node.type)
            out.append(VendorLayer(model, dtype, i, node.name, "conv", act, names[0],
                                   outputs[0], names[1], names[2], node.attributes))
        elif node.type == "MaxPool":
            out.append(VendorLayer(model, dtype, i, node.name, "pool", None, names[0],
                                   outputs[0], attributes=node.attributes))
    return out


def tensor(model: str, chip: str, name: str, dtype: str = "int8"):
    return next(t for t in rknn(model, chip, dtype).tensors if t.name == name)


def buffer(model: str, chip: str, name: str, dtype: str = "int8") -> bytes:
    m = rknn(model, chip, dtype)
    return m.buffers[tensor(model, chip, name, dtype).buffer]


def clip_bounds(model: str) -> tuple[float, float]:
    """The Clip bounds of mobilenet (the `zero` and `six` initializers)."""
    w = onnx_initializers(model)
    return float(w["zero"]), float(w["six"])
