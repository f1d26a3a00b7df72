"""Simulation time of compiled models on the register-level NPU simulator, against the
reference interpreter on the same input.

Per model and chip: quantize (int8, per-tensor weights unless --per-channel; the fixture
calibration sets, or 4 deterministic images for the real and benchmark models), lower,
compile (`rkc.backends.codegen.compile_program`), then time one `rkc.runtime`
ProgramRunner run against one `rkc.interpreter.run_module` run of the lowered module on
the same random input, and check the outputs are equal. A model codegen cannot compile
yet shows the compiler's message instead.

    python bench/sim.py [--models conv_relu,resnet18,...] [--chips rk3588,rk3568]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
VENDOR = DATA / "vendor"
FIXTURES = ("conv_relu", "resblock", "mobilenet")
REAL = {  # input name, shape, mean, std (tests/test_quantize_fixtures.py REAL)
    "ppocr_mobile_v2_cls": ("x", (1, 3, 48, 192), (127.5,), (127.5,)),
    "ppocr_v4_det": ("x", (1, 3, 480, 480), (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),
    "yolo_fastest_xl": ("input", (1, 3, 320, 320), (0.0,), (255.0,)),
}
GENERATED = ("resnet18",)            # bench/models.py (helper E)


def _bench_models():
    spec = importlib.util.spec_from_file_location("rkc_bench_models", ROOT / "bench" /
                                                  "models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _quantized(name: str, method: str, workdir: Path):
    """(quantized module, (calibration) input shape) of one benchmark model."""
    from rkc.frontend.onnx import import_onnx
    from rkc.quant.dataset import Preprocess, load_dataset
    from rkc.quant.pipeline import quantize_model

    rng = np.random.default_rng(0)
    if name in FIXTURES:
        module = import_onnx(VENDOR / f"{name}.onnx")
        pre = Preprocess((127.5,), (127.5,))
        from rkc.graph import input_names, main_function
        fn = main_function(module)
        names = input_names(fn)
        shapes = [tuple(t.get_shape()) for t in fn.function_type.inputs.data]
        samples = load_dataset(VENDOR / "dataset.txt", names, shapes, pre)
    elif name in REAL:
        input_name, shape, mean, std = REAL[name]
        module = import_onnx(DATA / f"{name}.onnx", {input_name: shape})
        pre = Preprocess(mean, std)
        samples = [{input_name: rng.uniform(0, 255, shape).astype(np.float32)}
                   for _ in range(4)]
    else:
        models = _bench_models()
        path = models.write_model(name, workdir / f"{name}.onnx")
        module = import_onnx(path)
        mean, std = models.PREPROCESS[name]
        pre = Preprocess(tuple(mean), tuple(std))
        from rkc.graph import input_names, main_function
        fn = main_function(module)
        shape = tuple(fn.function_type.inputs.data[0].get_shape())
        samples = [{input_names(fn)[0]: models.calibration_image(shape[2], i)}
                   for i in range(4)]
    return quantize_model(module, samples, preprocess=pre, method=method,
                          show_progress=False).module


def _inputs(module) -> list[np.ndarray]:
    from rkc.dialects import nn
    from rkc.graph import main_function

    rng = np.random.default_rng(1)
    out = []
    for t in main_function(module).function_type.inputs.data:
        dtype = nn.numpy_dtype(t.get_element_type())
        shape = t.get_shape()
        out.append(rng.uniform(-1, 1, shape).astype(dtype) if dtype.kind == "f"
                   else rng.integers(-128, 128, shape).astype(dtype))
    return out


def bench(name: str, chip: str, method: str, workdir: Path, cache: dict) -> tuple:
    from rkc.backends.codegen import compile_program
    from rkc.errors import RkcError
    from rkc.interpreter import run_module
    from rkc.lowering.pipeline import lower
    from rkc.runtime import ProgramRunner

    if name not in cache:
        cache[name] = _quantized(name, method, workdir)
    low = lower(cache[name], chip)
    try:
        program = compile_program(low, chip)
    except RkcError as e:
        return (name, chip, "-", "-", "-", "-", "-", f"not compiled: {str(e)[:90]}")
    x = _inputs(low)
    start = time.perf_counter()
    ref = run_module(low, x)
    interp = time.perf_counter() - start
    runner = ProgramRunner(program)
    start = time.perf_counter()
    try:
        got = runner.run(x)
    except RkcError as e:
        return (name, chip, program.task_count, f"{interp:.3f}", "-", "-", "-",
                f"simulator: {str(e)[:90]}")
    sim = time.perf_counter() - start
    differing = sum(int((np.asarray(got[k]) != np.asarray(ref[k])).sum()) for k in ref)
    total = sum(np.asarray(ref[k]).size for k in ref)
    return (name, chip, runner.tasks_run, f"{interp:.3f}", f"{sim:.3f}",
            f"{sim / max(interp, 1e-9):.2f}", f"{differing}/{total}",
            "equal" if differing == 0 else "differs")


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    from rkc.table import format_table

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join((*FIXTURES, *REAL, *GENERATED)))
    parser.add_argument("--chips", default="rk3588,rk3568")
    parser.add_argument("--per-channel", action="store_true",
                        help="per-channel weights (default per tensor)")
    args = parser.parse_args(argv)
    method = "channel" if args.per_channel else "layer"
    rows, cache = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            for chip in args.chips.split(","):
                print(f"[sim] {name} {chip} ...", file=sys.stderr, flush=True)
                rows.append(bench(name, chip, method, Path(tmp), cache))
    print(format_table(["model", "chip", "tasks", "interpreter s", "simulator s",
                        "sim / interp", "values differing", "result"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
