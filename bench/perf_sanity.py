"""Sanity of the rkc cost model (rkc.perf) against the public record.

1. Estimated FPS of benchmark models on RK3588 (one core) and RK3568 beside
   rknn_model_zoo's published FPS (`PUBLISHED_FPS`). Models: the deterministic
   random-weight ONNX models of bench/models.py (mobilenetv2, resnet50, yolov5s; written
   to a temporary directory, no downloads) and the real PP-OCRv4 det model in tests/data.
   Each is quantized to int8 with one deterministic calibration image (the weights'
   values do not change the estimate, only shapes and placement do).
2. rknn-toolkit2's own per-layer estimates for the vendor fixture models (their build
   logs, tests/data/vendor/perf_logs.csv) beside ours, layer by layer.

    python bench/perf_sanity.py [--models mobilenetv2,resnet50,yolov5s,ppocr_v4_det]
                                [--skip-zoo] [--skip-vendor]

Prints tables; nothing is asserted (tests/test_perf.py checks the structure). Quantizing
yolov5s at 640 takes a few minutes on a small machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from rkc.frontend.onnx import import_onnx  # noqa: E402
from rkc.graph import input_names, main_function  # noqa: E402
from rkc.lowering.pipeline import lower  # noqa: E402
from rkc.perf.compare import compare, onnx_layer_outputs, read_vendor_csv  # noqa: E402
from rkc.perf.model import PerfEstimate, estimate  # noqa: E402
from rkc.quant.dataset import Preprocess, load_dataset  # noqa: E402
from rkc.quant.pipeline import quantize_model  # noqa: E402
from rkc.table import format_table  # noqa: E402

PUBLISHED_FPS = {  # model: (input, RK3566/68 FPS, RK3588 one-core FPS)
    "mobilenetv2": ("1x3x224x224", 180.7, 450.7),
    "resnet50": ("1x3x224x224", 37.9, 110.1),
    "yolov5s": ("1x3x640x640", 19.3, 48.4),
    "ppocr_v4_det": ("1x3x480x480", 22.1, 50.7),
}
"""rknn_model_zoo v2.3.2 README (airockchip/rknn_model_zoo @ bad6c73), as collected in
/work/shared/docs/peers.md section 5.2: INT8, NPU at its top frequency, inference only.
(mobilenetv2-12 and resnet50-v2-7 are the ONNX model zoo's; yolov5s is Rockchip's
export with the decode tail removed; ppocrv4_det is PaddleOCR's.)"""

VENDOR_CSV = ROOT / "tests" / "data" / "vendor" / "perf_logs.csv"
VENDOR_MODELS = ROOT / "tests" / "data" / "vendor"
REAL_MODELS = {  # name: (path, input shape, preprocess)
    "ppocr_v4_det": (ROOT / "tests" / "data" / "ppocr_v4_det.onnx", (1, 3, 480, 480),
                     Preprocess((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))),
}


def _quantized(path: Path, dataset: Path, preprocess: Preprocess, shapes=None,
               dtype: str = "int8"):
    module = import_onnx(path, shapes)
    fn = main_function(module)
    samples = None
    if dtype == "int8":
        input_shapes = [tuple(t.get_shape()) for t in fn.function_type.inputs.data]
        samples = load_dataset(dataset, input_names(fn), input_shapes, preprocess)
    return quantize_model(module, samples, preprocess=preprocess, dtype=dtype,
                          show_progress=False).module


def _model(name: str, work: Path):
    """(quantized module, ONNX path) of a benchmark or real model."""
    if name in REAL_MODELS:
        path, shape, preprocess = REAL_MODELS[name]
        import numpy as np
        from models import calibration_image

        image = calibration_image(shape[2], 0)
        np.save(work / f"{name}_calib.npy", image)
        (work / f"{name}.txt").write_text(f"{name}_calib.npy\n")
        return _quantized(path, work / f"{name}.txt", preprocess, {"x": shape}), path
    from models import PREPROCESS, write_calibration, write_model

    path = write_model(name, work / f"{name}.onnx")
    dataset = write_calibration(name, 1, work / f"{name}_calib")
    mean, std = PREPROCESS[name]
    return _quantized(path, dataset, Preprocess(mean, std)), path


def zoo_table(names: list[str]) -> str:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            start = time.perf_counter()
            module, _ = _model(name, Path(tmp))
            results: dict[str, PerfEstimate] = {}
            for chip in ("rk3588", "rk3568"):
                results[chip] = estimate(lower(module, chip, 1), chip, 1)
            shape, fps_68, fps_88 = PUBLISHED_FPS[name]
            r88, r68 = results["rk3588"], results["rk3568"]
            rows.append((name, shape, f"{r88.fps:.1f}", f"{fps_88:.1f}",
                         f"{r88.fps / fps_88:.2f}",
                         f"{1e6 / r88.microseconds(r88.roofline_cycles):.0f}",
                         f"{r68.fps:.1f}", f"{fps_68:.1f}", f"{r68.fps / fps_68:.2f}",
                         f"{1e6 / r68.microseconds(r68.roofline_cycles):.0f}",
                         f"{r88.macs / 1e9:.2f}",
                         sum(layer.hardware_tasks for layer in r88.npu_layers),
                         sum(layer.target == "CPU" for layer in r88.layers)))
            print(f"  {name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return format_table(
        ["model", "input", "RK3588 1-core est FPS", "zoo FPS", "est/zoo", "roofline FPS",
         "RK3568 est FPS", "zoo FPS", "est/zoo", "roofline FPS", "GMACs", "tasks",
         "host ops"], rows)


def vendor_tables() -> str:
    vendor = read_vendor_csv(VENDOR_CSV)
    parts = []
    for model in dict.fromkeys(v.model for v in vendor):
        path = VENDOR_MODELS / f"{model}.onnx"
        outputs = onnx_layer_outputs(path)
        for dtype in ("int8", "fp16"):
            module = _quantized(path, VENDOR_MODELS / "dataset.txt",
                                Preprocess((127.5,), (127.5,)), dtype=dtype)
            for chip in ("rk3588", "rk3568"):
                theirs = [v for v in vendor if (v.model, v.chip, v.dtype)
                          == (model, chip, dtype)]
                perf = estimate(lower(module, chip, 1), chip, 1)
                rows = [(c.onnx_output, " + ".join(c.vendor_ops), " + ".join(c.rkc_ops),
                         f"{c.vendor_ddr}/{c.vendor_npu}/{c.vendor_total}",
                         f"{c.rkc_ddr}/{c.rkc_npu}/{c.rkc_total}")
                        for c in compare(perf, outputs, theirs)]
                parts.append(f"{model} {chip} {dtype}\n" + format_table(
                    ["onnx output", "rknn-toolkit2 layer(s)", "rkc layer(s)",
                     "vendor DDR/NPU/Total", "rkc DDR/NPU/Total"], rows))
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="mobilenetv2,resnet50,yolov5s,ppocr_v4_det")
    parser.add_argument("--skip-zoo", action="store_true")
    parser.add_argument("--skip-vendor", action="store_true")
    args = parser.parse_args(argv)
    if not args.skip_vendor:
        print("rknn-toolkit2 2.5.0 build-log estimates vs rkc (cycles; vendor Total = "
              "max(DDR, NPU), rkc Total adds CBUF fill and task overhead)\n")
        print(vendor_tables())
        print()
    if not args.skip_zoo:
        names = [n for n in args.models.split(",") if n]
        unknown = sorted(set(names) - set(PUBLISHED_FPS))
        if unknown:
            parser.error(f"no published FPS for {', '.join(unknown)}")
        print("estimated FPS vs rknn_model_zoo v2.3.2 (int8; RK3588 one core)\n")
        print(zoo_table(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
