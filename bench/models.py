"""Deterministic random-weight benchmark models written as ONNX (opset 13, no downloads).

`write_model(name, path)` writes one of `MODELS`: the layer structure of the well-known
network with random weights from a fixed seed, so the same name always gives the same
bytes. Weights: He-normal convolutions (std sqrt(2 / fan_in)); batch norms with running
mean 0 and variance 1 and a random per-channel scale / shift, so per-channel quantization
has something to see; the last batch norm of every residual branch is scaled down
(`RESIDUAL_GAMMA`) so activations stay within a few units through deep residual stacks
instead of doubling their variance per block. Inputs are normalised images (`PREPROCESS`
gives the mean / std a deployment folds in; calibration images are raw 0..255).

Models (input 1x3xSxS, float32):
- `mobilenetv2` (224): torchvision's MobileNetV2 (width 1.0) as torch.onnx exports it in
  eval mode: batch norms folded into conv biases, ReLU6 as Clip(0, 6), global average
  pool, flatten, Gemm to 1000 classes.
- `resnet18`, `resnet50` (224): torchvision's ResNet v1.5 (stride on the 3x3 conv of a
  bottleneck) with BatchNormalization nodes kept (an export with constant folding off),
  max pool stem, global average pool, flatten, Gemm to 1000 classes.
- `yolov5s` (640): ultralytics YOLOv5s v6.0 (depth 0.33, width 0.5): 6x6 stem conv,
  Conv-BN-SiLU with BN folded and SiLU as Sigmoid * x, C3 blocks, SPPF, nearest 2x
  Resize + Concat neck (PAN), three Detect heads as 1x1 convs to 3 * (80 + 5) = 255
  channels. The decode tail (reshape / sigmoid / grid arithmetic) is omitted, as
  rknn_model_zoo's export does: the outputs are the three head convs, 1x255x80x80,
  1x255x40x40, 1x255x20x20.

Command line: `python bench/models.py NAME -o PATH [--calib N DIR]`; `--calib` writes N
deterministic raw 0..255 images (`calib_<i>.npy`, NCHW float32) and a `dataset.txt`
listing them (rknn-toolkit2's format, read by `rkc.quant.dataset.load_dataset`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
SEED = 2024
RESIDUAL_GAMMA = 0.3
"""Scale of the batch norm that ends a residual branch (keeps deep stacks in range)."""

IMAGENET = ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))
PREPROCESS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mobilenetv2": IMAGENET, "resnet18": IMAGENET, "resnet50": IMAGENET,
    "yolov5s": ((0.0, 0.0, 0.0), (255.0, 255.0, 255.0)),
}
"""name -> (mean, std) per channel that maps raw 0..255 pixels to the model's input."""

INPUT_SIZE = {"mobilenetv2": 224, "resnet18": 224, "resnet50": 224, "yolov5s": 640}
INPUT_NAME = "images"


class GraphBuilder:
    """Accumulates ONNX nodes and initializers; names are unique and deterministic."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}_{self.count}"

    def const(self, value: np.ndarray, kind: str) -> str:
        name = self.name(kind)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def he_weight(self, cout: int, cin_per_group: int, k: int) -> np.ndarray:
        std = np.sqrt(2.0 / (cin_per_group * k * k))
        return (self.rng.standard_normal((cout, cin_per_group, k, k)) * std).astype(np.float32)

    def bn_params(self, c: int, gamma_scale: float) -> tuple[np.ndarray, ...]:
        """(scale, shift, mean 0, var 1) of a random per-channel batch norm."""
        gamma = (self.rng.uniform(0.5, 1.5, c) * gamma_scale).astype(np.float32)
        beta = (self.rng.standard_normal(c) * 0.1).astype(np.float32)
        return gamma, beta, np.zeros(c, np.float32), np.ones(c, np.float32)

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
             pad: int | None = None, bn: str = "fold", gamma_scale: float = 1.0,
             bias: bool = False) -> str:
        """Conv (+ batch norm folded into it, or a BatchNormalization node, or none)."""
        pad = k // 2 if pad is None else pad
        w = self.he_weight(cout, cin // groups, k)
        b = (self.rng.standard_normal(cout) * 0.01).astype(np.float32) if bias else None
        if bn == "fold":
            gamma, beta, mean, var = self.bn_params(cout, gamma_scale)
            scale = gamma / np.sqrt(var + np.float32(1e-5))
            w = (w * scale[:, None, None, None]).astype(np.float32)
            b = (beta - mean * scale).astype(np.float32)
        inputs = [x, self.const(w, "weight")] + ([self.const(b, "bias")] if b is not None else [])
        y = self.node("Conv", inputs, kernel_shape=[k, k], strides=[stride, stride],
                      pads=[pad] * 4, group=groups, dilations=[1, 1])
        if bn == "node":
            params = [self.const(p, "bn") for p in self.bn_params(cout, gamma_scale)]
            y = self.node("BatchNormalization", [y, *params], epsilon=1e-5)
        return y

    def relu6(self, x: str) -> str:
        lo = self.const(np.array(0.0, np.float32), "min")
        hi = self.const(np.array(6.0, np.float32), "max")
        return self.node("Clip", [x, lo, hi])

    def silu(self, x: str) -> str:
        return self.node("Mul", [x, self.node("Sigmoid", [x])])

    def classifier(self, x: str, cin: int, classes: int = 1000) -> str:
        pooled = self.node("Flatten", [self.node("GlobalAveragePool", [x])], axis=1)
        w = (self.rng.standard_normal((classes, cin)) * np.sqrt(1.0 / cin)).astype(np.float32)
        b = np.zeros(classes, np.float32)
        return self.node("Gemm", [pooled, self.const(w, "fc_w"), self.const(b, "fc_b")],
                         alpha=1.0, beta=1.0, transB=1)

    def model(self, name: str, size: int, outputs: list[tuple[str, list[int]]]
              ) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, 3, size, size])],
            [helper.make_tensor_value_info(o, TensorProto.FLOAT, shape) for o, shape in outputs],
            self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="rkc-bench")
        model.ir_version = 8
        return model


# ---------------------------------------------------------------------------
# MobileNetV2
# ---------------------------------------------------------------------------
MOBILENETV2_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                        (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
"""(expansion t, output channels c, repeats n, first stride s), torchvision's table."""


def mobilenetv2() -> onnx.ModelProto:
    g = GraphBuilder(SEED)
    x = g.relu6(g.conv(INPUT_NAME, 3, 32, 3, 2))
    cin = 32
    for t, c, n, s in MOBILENETV2_SETTINGS:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            y = x
            if t != 1:
                y = g.relu6(g.conv(y, cin, hidden, 1))
            y = g.relu6(g.conv(y, hidden, hidden, 3, stride, groups=hidden))
            residual = stride == 1 and cin == c
            y = g.conv(y, hidden, c, 1, gamma_scale=RESIDUAL_GAMMA if residual else 1.0)
            x = g.node("Add", [x, y]) if residual else y
            cin = c
    x = g.relu6(g.conv(x, cin, 1280, 1))
    return g.model("mobilenetv2", 224, [(g.classifier(x, 1280), [1, 1000])])


# ---------------------------------------------------------------------------
# ResNet
# ---------------------------------------------------------------------------
def _basic_block(g: GraphBuilder, x: str, cin: int, planes: int, stride: int) -> tuple[str, int]:
    y = g.node("Relu", [g.conv(x, cin, planes, 3, stride, bn="node")])
    y = g.conv(y, planes, planes, 3, bn="node", gamma_scale=RESIDUAL_GAMMA)
    skip = x if stride == 1 and cin == planes else g.conv(x, cin, planes, 1, stride, bn="node")
    return g.node("Relu", [g.node("Add", [y, skip])]), planes


def _bottleneck(g: GraphBuilder, x: str, cin: int, planes: int, stride: int) -> tuple[str, int]:
    cout = planes * 4
    y = g.node("Relu", [g.conv(x, cin, planes, 1, bn="node")])
    y = g.node("Relu", [g.conv(y, planes, planes, 3, stride, bn="node")])
    y = g.conv(y, planes, cout, 1, bn="node", gamma_scale=RESIDUAL_GAMMA)
    skip = x if stride == 1 and cin == cout else g.conv(x, cin, cout, 1, stride, bn="node")
    return g.node("Relu", [g.node("Add", [y, skip])]), cout


def _resnet(name: str, block: Callable, layers: list[int]) -> onnx.ModelProto:
    g = GraphBuilder(SEED)
    x = g.node("Relu", [g.conv(INPUT_NAME, 3, 64, 7, 2, bn="node")])
    x = g.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for stage, repeats in enumerate(layers):
        planes = 64 * 2 ** stage
        for i in range(repeats):
            x, cin = block(g, x, cin, planes, 2 if i == 0 and stage > 0 else 1)
    return g.model(name, 224, [(g.classifier(x, cin), [1, 1000])])


def resnet18() -> onnx.ModelProto:
    return _resnet("resnet18", _basic_block, [2, 2, 2, 2])


def resnet50() -> onnx.ModelProto:
    return _resnet("resnet50", _bottleneck, [3, 4, 6, 3])


# ---------------------------------------------------------------------------
# YOLOv5s v6.0
# ---------------------------------------------------------------------------
def _cbs(g: GraphBuilder, x: str, cin: int, cout: int, k: int = 1, s: int = 1,
         pad: int | None = None, gamma_scale: float = 1.0) -> str:
    """ultralytics `Conv`: conv, batch norm (folded), SiLU."""
    return g.silu(g.conv(x, cin, cout, k, s, pad=pad, gamma_scale=gamma_scale))


def _c3(g: GraphBuilder, x: str, cin: int, cout: int, n: int, shortcut: bool = True) -> str:
    hidden = cout // 2
    y = _cbs(g, x, cin, hidden)
    for _ in range(n):
        z = _cbs(g, _cbs(g, y, hidden, hidden), hidden, hidden, 3,
                 gamma_scale=RESIDUAL_GAMMA if shortcut else 1.0)
        y = g.node("Add", [y, z]) if shortcut else z
    side = _cbs(g, x, cin, hidden)
    return _cbs(g, g.node("Concat", [y, side], axis=1), 2 * hidden, cout)


def _sppf(g: GraphBuilder, x: str, cin: int, cout: int) -> str:
    hidden = cin // 2
    y = [_cbs(g, x, cin, hidden)]
    for _ in range(3):
        y.append(g.node("MaxPool", [y[-1]], kernel_shape=[5, 5], strides=[1, 1],
                        pads=[2, 2, 2, 2]))
    return _cbs(g, g.node("Concat", y, axis=1), 4 * hidden, cout)


def _upsample2x(g: GraphBuilder, x: str) -> str:
    scales = g.const(np.array([1.0, 1.0, 2.0, 2.0], np.float32), "scales")
    roi = g.const(np.zeros(0, np.float32), "roi")
    return g.node("Resize", [x, roi, scales], mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor")


def yolov5s() -> onnx.ModelProto:
    g = GraphBuilder(SEED)
    x = _cbs(g, INPUT_NAME, 3, 32, 6, 2, pad=2)                       # 0 P1/2
    x = _cbs(g, x, 32, 64, 3, 2)                                      # 1 P2/4
    x = _c3(g, x, 64, 64, 1)                                          # 2
    x = _cbs(g, x, 64, 128, 3, 2)                                     # 3 P3/8
    p3 = _c3(g, x, 128, 128, 2)                                       # 4
    x = _cbs(g, p3, 128, 256, 3, 2)                                   # 5 P4/16
    p4 = _c3(g, x, 256, 256, 3)                                       # 6
    x = _cbs(g, p4, 256, 512, 3, 2)                                   # 7 P5/32
    x = _c3(g, x, 512, 512, 1)                                        # 8
    x = _sppf(g, x, 512, 512)                                         # 9
    h10 = _cbs(g, x, 512, 256)                                        # 10
    x = g.node("Concat", [_upsample2x(g, h10), p4], axis=1)           # 11, 12
    x = _c3(g, x, 512, 256, 1, shortcut=False)                        # 13
    h14 = _cbs(g, x, 256, 128)                                        # 14
    x = g.node("Concat", [_upsample2x(g, h14), p3], axis=1)           # 15, 16
    out3 = _c3(g, x, 256, 128, 1, shortcut=False)                     # 17 (P3/8)
    x = g.node("Concat", [_cbs(g, out3, 128, 128, 3, 2), h14], axis=1)  # 18, 19
    out4 = _c3(g, x, 256, 256, 1, shortcut=False)                     # 20 (P4/16)
    x = g.node("Concat", [_cbs(g, out4, 256, 256, 3, 2), h10], axis=1)  # 21, 22
    out5 = _c3(g, x, 512, 512, 1, shortcut=False)                     # 23 (P5/32)
    heads = [g.conv(feature, c, 255, 1, bn="none", bias=True)          # 24 Detect
             for feature, c in ((out3, 128), (out4, 256), (out5, 512))]
    shapes = [[1, 255, 640 // s, 640 // s] for s in (8, 16, 32)]
    return g.model("yolov5s", 640, list(zip(heads, shapes, strict=True)))


MODELS: dict[str, Callable[[], onnx.ModelProto]] = {
    "mobilenetv2": mobilenetv2, "resnet18": resnet18, "resnet50": resnet50,
    "yolov5s": yolov5s,
}


def build_model(name: str) -> onnx.ModelProto:
    """The ONNX model `name` (one of `MODELS`), checked by onnx.checker."""
    if name not in MODELS:
        raise ValueError(f"unknown benchmark model '{name}' (known: {', '.join(MODELS)})")
    model = MODELS[name]()
    onnx.checker.check_model(model)
    return model


def write_model(name: str, path: Path) -> Path:
    """Write the benchmark model `name` to `path` (deterministic bytes); returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(build_model(name), str(path))
    return path


def calibration_image(size: int, index: int) -> np.ndarray:
    """A deterministic image-like raw 0..255 float32 1x3xSxS array: smooth blobs + noise."""
    rng = np.random.default_rng(SEED + 1 + index)
    coarse = rng.uniform(0.0, 255.0, (3, 8, 8))
    cells = -(-size // 8)
    smooth = np.kron(coarse, np.ones((cells, cells)))[:, :size, :size]
    noisy = smooth + rng.standard_normal((3, size, size)) * 12.0
    return np.clip(noisy, 0.0, 255.0).astype(np.float32)[None]


def write_calibration(name: str, count: int, directory: Path) -> Path:
    """Write `count` calibration images for `name` and their dataset.txt; returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(count):
        np.save(directory / f"calib_{i}.npy", calibration_image(INPUT_SIZE[name], i))
        lines.append(f"calib_{i}.npy")
    dataset = directory / "dataset.txt"
    dataset.write_text("\n".join(lines) + "\n")
    return dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name", choices=sorted(MODELS))
    parser.add_argument("-o", "--output", type=Path, required=True, help="the .onnx to write")
    parser.add_argument("--calib", nargs=2, metavar=("N", "DIR"),
                        help="also write N calibration images and dataset.txt into DIR")
    args = parser.parse_args(argv)
    write_model(args.name, args.output)
    print(f"wrote {args.output}")
    if args.calib:
        dataset = write_calibration(args.name, int(args.calib[0]), Path(args.calib[1]))
        print(f"wrote {dataset}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
