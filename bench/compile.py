"""Compile-time benchmark: wall time and peak memory per stage of the `rkc compile` job.

For every benchmark model (`bench_models()`: the vendor fixtures, the real models of
tests/data, random-weight resnet50 and yolov5s from bench/models.py with 8 calibration
images) a fresh Python process runs the `rkc compile` job (int8, min/max, per-channel,
nearest rounding, rk3588, one core) stage by stage, with the same functions the command
calls:

    python imports -> onnx import -> dataset -> prepare (one row per pass)
    -> calibrate (its first sample's values also feed lint) -> lint
    -> quantize (nn-quantize, cse, dce) -> lower (one row per pass)
    -> codegen (`compile_program`) -> container (`program_bytes`)

Times are wall-clock (`time.perf_counter`), one run each. Peak memory is the process's
resident-set high-water mark *within the stage*: the kernel's peak (VmHWM) is reset before
each stage through /proc/self/clear_refs and read after it; where that is not allowed the
column is the process's ru_maxrss so far (monotonic) and the header says so.

Besides the per-model table it measures the process start (`python -c "import rkc.cli"`,
best of 3) and the whole job end to end (`rkc compile ...` in a subprocess; its .rknn must
be byte-identical to the staged job's, or the table says it is not).

`--vs-rknn-toolkit2 PYTHON` also builds resnet50 (int8, 8 calibration images, rk3588)
with rknn-toolkit2 in that Python (its own virtual environment) and prints the ratio of
the end-to-end times. `--profile NAME` writes a cProfile of one model's staged job.

Usage: python bench/compile.py [--models a,b,...] [--detail] [--threads N]
       [--vs-rknn-toolkit2 PY] [--profile NAME]
Real models calibrate on JPEG images: they need Pillow (`rkc[images]`); without it they
are skipped with a note.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
VENDOR = DATA / "vendor"
CACHE = Path(tempfile.gettempdir()) / "rkc-bench-models"
TARGET = "rk3588"
CALIBRATION_IMAGES = 8

IMAGENET = ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))


@dataclass(frozen=True)
class BenchModel:
    """One model of the benchmark: where it is, its input shape, preprocessing, dataset.

    `make`: writes a generated model and its dataset into `CACHE` (None: `path` exists).
    """

    name: str
    path: Path
    input_shape: tuple[str, tuple[int, ...]] | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dataset: Path
    needs_pil: bool = False
    make: Callable[[], None] | None = field(default=None, compare=False)


def _bench_models_module():
    spec = importlib.util.spec_from_file_location("rkc_bench_models",
                                                  Path(__file__).with_name("models.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _generated(name: str) -> BenchModel:
    path, calib = CACHE / f"{name}.onnx", CACHE / f"{name}_calib"

    def make() -> None:
        models = _bench_models_module()
        if not path.is_file():
            models.write_model(name, path)
        if not (calib / "dataset.txt").is_file():
            models.write_calibration(name, CALIBRATION_IMAGES, calib)

    mean, std = _bench_models_module().PREPROCESS[name]
    return BenchModel(name, path, None, mean, std, calib / "dataset.txt", make=make)


def bench_models() -> dict[str, BenchModel]:
    """name -> model. Real models: input shapes / preprocessing as REAL in
    tests/test_quantize_fixtures.py; calibrated on tests/data/ppocr_calib."""
    norm = ((127.5,), (127.5,))
    models = [BenchModel(n, VENDOR / f"{n}.onnx", None, *norm, VENDOR / "dataset.txt")
              for n in ("conv_relu", "resblock", "mobilenet")]
    ppocr = DATA / "ppocr_calib" / "dataset.txt"
    models += [
        BenchModel("ppocr_mobile_v2_cls", DATA / "ppocr_mobile_v2_cls.onnx",
                   ("x", (1, 3, 48, 192)), *norm, ppocr, needs_pil=True),
        BenchModel("ppocr_v4_det", DATA / "ppocr_v4_det.onnx", ("x", (1, 3, 480, 480)),
                   *IMAGENET, ppocr, needs_pil=True),
        BenchModel("yolo_fastest_xl", DATA / "yolo_fastest_xl.onnx",
                   ("input", (1, 3, 320, 320)), (0.0,), (255.0,), ppocr, needs_pil=True),
    ]
    models += [_generated("resnet50"), _generated("yolov5s")]
    return {m.name: m for m in models}


# ---------------------------------------------------------------------------
# peak memory
# ---------------------------------------------------------------------------
def _can_reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_mb(resettable: bool) -> float:
    if resettable:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class StageClock:
    """Times stages and records each one's peak RSS; `rows` is [(stage, s, MB)]."""

    def __init__(self) -> None:
        self.resettable = _can_reset_peak()
        self.rows: list[tuple[str, float, float]] = []

    def run(self, stage: str, work: Callable[[], object]) -> object:
        """`work()`, timed; a stage that raises is recorded as "<stage> (failed)"."""
        if self.resettable:
            _can_reset_peak()
        start = time.perf_counter()
        try:
            result = work()
        except BaseException:
            self.rows.append((f"{stage} (failed)", time.perf_counter() - start,
                              _peak_mb(self.resettable)))
            raise
        self.rows.append((stage, time.perf_counter() - start, _peak_mb(self.resettable)))
        return result


# ---------------------------------------------------------------------------
# the staged job (child process)
# ---------------------------------------------------------------------------
def split_spec(spec: str) -> list[str]:
    """A pass pipeline spec split into its passes (commas outside braces)."""
    passes, depth, current = [], 0, ""
    for ch in spec:
        depth += (ch == "{") - (ch == "}")
        if ch == "," and depth == 0:
            passes.append(current)
            current = ""
        else:
            current += ch
    return passes + [current] if current else passes


def _pass_name(spec: str) -> str:
    return spec.split("{")[0]


def staged_job(model: BenchModel, output: Path | None) -> dict:
    """Run the compile job of `model` stage by stage; the per-stage rows (and an error)."""
    clock = StageClock()

    def imports() -> None:
        import rkc.cli  # noqa: F401
        import rkc.driver  # noqa: F401
        import rkc.lowering.pipeline  # noqa: F401
        import rkc.quant.calibrate  # noqa: F401
        import rkc.quant.lint  # noqa: F401
        import rkc.quant.pipeline  # noqa: F401
        from rkc.registry import all_universe

        all_universe().all_passes  # noqa: B018  (the pass registry, loaded lazily)
        import rkc.backends.codegen  # noqa: F401

    clock.run("python imports", imports)
    from rkc.backends.codegen import compile_program
    from rkc.backends.program import program_bytes
    from rkc.driver import load_module
    from rkc.errors import RkcError
    from rkc.graph import input_names, main_function
    from rkc.lowering.pipeline import lowering_spec
    from rkc.quant.calibrate import calibrate
    from rkc.quant.dataset import Preprocess, add_normalization, load_dataset
    from rkc.quant.lint import MagnitudeRecorder, lint
    from rkc.quant.pipeline import CLEANUP, PREPARE, run_passes

    preprocess = Preprocess(model.mean, model.std)
    shapes = dict([model.input_shape]) if model.input_shape else None
    state: dict = {}
    try:
        module = clock.run("onnx import", lambda: load_module(model.path, shapes))

        def dataset() -> list:
            fn = main_function(module)
            in_shapes = [tuple(t.get_shape()) for t in fn.function_type.inputs.data]
            return load_dataset(model.dataset, input_names(fn), in_shapes, preprocess)

        samples = clock.run("dataset", dataset)
        # `rkc compile` prepares once (`prepare_float`), calibrates and lints that module
        state["m"] = module.clone()
        for spec in split_spec(PREPARE):
            clock.run(f"prepare: {_pass_name(spec)}", lambda s=spec: run_passes(state["m"], s))
        clock.run("prepare: add-normalization", lambda: add_normalization(state["m"], preprocess))
        prepared = state["m"]
        clock.run("prepare: verify", prepared.verify)
        recorder = MagnitudeRecorder()  # lint's float run is calibration's first sample
        clock.run("calibrate", lambda: calibrate(prepared, samples, "minmax", False,
                                                 [recorder]))
        clock.run("lint", lambda: lint(prepared, magnitudes=recorder.magnitudes))
        state["m"] = prepared.clone()
        for spec in split_spec(f"nn-quantize{{dtype=int8 method=channel}},{CLEANUP}"):
            clock.run(f"quantize: {_pass_name(spec)}", lambda s=spec: run_passes(state["m"], s))
        state["m"] = state["m"].clone()
        for spec in split_spec(lowering_spec(TARGET, 1)):
            clock.run(f"lower: {_pass_name(spec)}", lambda s=spec: run_passes(state["m"], s))
        program = clock.run("codegen", lambda: compile_program(state["m"], TARGET, 1))
        data = clock.run("container", lambda: program_bytes(program, "ONNX"))
        if output is not None:
            output.write_bytes(data)
    except RkcError as e:
        return {"rows": clock.rows, "error": str(e).splitlines()[0],
                "resettable": clock.resettable}
    return {"rows": clock.rows, "error": None, "resettable": clock.resettable}


# ---------------------------------------------------------------------------
# the parent: subprocesses and tables
# ---------------------------------------------------------------------------
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_threads: int | None = None
"""--threads: the BLAS / OpenMP thread count of every child process (None: inherited)."""


_ORIGINAL_ENVIRONMENT = dict(os.environ)
"""The environment before `rkc.cli` set its BLAS thread default: rknn-toolkit2 runs in it."""


def _env(original: bool = False) -> dict[str, str]:
    """The environment of a measured process: rkc's (with the BLAS thread default of
    `rkc.cli`) or, `original`, the one this script started with; --threads in both."""
    env = dict(_ORIGINAL_ENVIRONMENT if original else os.environ, PYTHONHASHSEED="0")
    if _threads is not None:
        env.update(dict.fromkeys(THREAD_VARIABLES, str(_threads)))
    return env


def compile_args(model: BenchModel, output: Path) -> list[str]:
    """The `rkc compile` command line of the staged job."""
    args = [str(model.path), "--dataset", str(model.dataset), "--mean",
            ",".join(map(str, model.mean)), "--std", ",".join(map(str, model.std)),
            "--target", TARGET, "-q", "-o", str(output)]
    if model.input_shape:
        name, shape = model.input_shape
        args[1:1] = ["--input-shape", f"{name}={'x'.join(map(str, shape))}"]
    return args


def _rkc_command() -> list[str]:
    return [sys.executable, "-c", "import sys; from rkc.cli import main; sys.exit(main())"]


def process_start_seconds(runs: int = 3) -> float:
    """Best-of-`runs` wall time of `python -c "import rkc.cli"`."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import rkc.cli"], check=True, env=_env())
        best = min(best, time.perf_counter() - start)
    return best


def end_to_end(model: BenchModel, output: Path) -> tuple[float, str | None]:
    """Wall time of `rkc compile` in a subprocess and its error line (None: success)."""
    start = time.perf_counter()
    done = subprocess.run(_rkc_command() + ["compile"] + compile_args(model, output),
                          capture_output=True, text=True, env=_env())
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return seconds, lines[-1] if lines else f"exit code {done.returncode}"
    return seconds, None


def run_child(name: str, output: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", name, "--child-output",
                           str(output)], capture_output=True, text=True, env=_env())
    if done.returncode != 0:
        raise RuntimeError(f"{name}: the staged job crashed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


GROUPS = ("python imports", "onnx import", "dataset", "prepare", "calibrate", "lint",
          "quantize", "lower", "codegen", "container")


def group_of(stage: str) -> str:
    return stage.split(":")[0].removesuffix(" (failed)")


def summary_rows(results: dict[str, dict]) -> tuple[list[str], list[list]]:
    """Models x stage groups: seconds, plus total, staged peak MB and end to end."""
    headers = ["model"] + list(GROUPS) + ["total s", "peak MB", "rkc compile s", "same .rknn"]
    rows = []
    for name, r in results.items():
        seconds = dict.fromkeys(GROUPS, 0.0)
        for stage, s, _ in r["rows"]:
            seconds[group_of(stage)] += s
        done = {group_of(stage) for stage, _, _ in r["rows"]}
        cells = [f"{seconds[g]:.2f}" if g in done else "-" for g in GROUPS]
        peak = max(mb for _, _, mb in r["rows"])
        rows.append([name] + cells + [f"{sum(seconds.values()):.2f}", f"{peak:.0f}",
                                      f"{r['e2e']:.2f}", r["same"]])
    return headers, rows


def main(argv: list[str] | None = None) -> int:
    import rkc.cli  # noqa: F401  (first: its BLAS thread default applies before numpy loads)

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", help="comma-separated subset of: "
                        + ", ".join(bench_models()))
    parser.add_argument("--detail", action="store_true", help="also one row per pass")
    parser.add_argument("--vs-rknn-toolkit2", metavar="PYTHON",
                        help="a Python with rknn-toolkit2: build resnet50 with it too")
    parser.add_argument("--profile", metavar="NAME",
                        help="cProfile the staged job of NAME into /tmp/rkc-compile.prof")
    parser.add_argument("--threads", type=int,
                        help="BLAS / OpenMP threads of every measured process (rkc and "
                             "rknn-toolkit2; default: as the environment says). 1 gives "
                             "stable numbers on a loaded machine")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the .rknn files `rkc compile` wrote, in DIR")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    global _threads
    _threads = args.threads
    models = bench_models()
    if args.child:
        print(json.dumps(staged_job(models[args.child], args.child_output)))
        return 0
    if args.profile:
        return profile(models[args.profile])
    from rkc.table import format_table

    names = args.models.split(",") if args.models else list(models)
    unknown = [n for n in names if n not in models]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}")
    start_s = process_start_seconds()
    threads = f"{_threads} BLAS thread(s)" if _threads else \
        f"rkc with OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}"
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, {threads}; process "
          f"start (python -c 'import rkc.cli', best of 3): {start_s:.2f} s", flush=True)
    have_pil = importlib.util.find_spec("PIL") is not None
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            model = models[name]
            if model.needs_pil and not have_pil:
                print(f"{name}: skipped (its calibration images need Pillow)", flush=True)
                continue
            if model.make is not None:
                model.make()
            staged_out, e2e_out = Path(tmp) / f"{name}.staged.rknn", Path(tmp) / f"{name}.rknn"
            print(f"{name} ...", file=sys.stderr, flush=True)
            r = run_child(name, staged_out)
            r["e2e"], e2e_error = end_to_end(model, e2e_out)
            if args.keep and e2e_out.is_file():
                args.keep.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(e2e_out, args.keep / e2e_out.name)
            if r["error"] or e2e_error:
                r["same"] = f"failed: {r['error'] or e2e_error}"
            else:
                r["same"] = "yes" if staged_out.read_bytes() == e2e_out.read_bytes() else "NO"
            results[name] = r
            if args.detail:
                memory = "peak RSS MB" if r["resettable"] else "max RSS so far MB"
                rows = [(stage, f"{s:.3f}", f"{mb:.0f}") for stage, s, mb in r["rows"]]
                print(f"\n{name}\n" + format_table(["stage", "s", memory], rows,
                                                   [False, True, True]), flush=True)
    headers, rows = summary_rows(results)
    print("\n" + format_table(headers, rows, [False] + [True] * (len(headers) - 2) + [False]))
    if args.vs_rknn_toolkit2:
        compare_rknn_toolkit2(args.vs_rknn_toolkit2, models["resnet50"], results)
    return 0


def profile(model: BenchModel) -> int:
    import cProfile
    import pstats

    if model.make is not None:
        model.make()
    profiler = cProfile.Profile()
    profiler.enable()
    result = staged_job(model, None)
    profiler.disable()
    profiler.dump_stats("/tmp/rkc-compile.prof")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    print(result["error"] or "ok")
    return 0


RKNN_TOOLKIT2_JOB = """
import sys, time
start = time.perf_counter()
from rknn.api import RKNN
rknn = RKNN(verbose=False)
rknn.config(mean_values=[{mean}], std_values=[{std}], target_platform="rk3588")
assert rknn.load_onnx(model=sys.argv[1]) == 0
assert rknn.build(do_quantization=True, dataset=sys.argv[2]) == 0
assert rknn.export_rknn(sys.argv[3]) == 0
print(time.perf_counter() - start)
"""


def compare_rknn_toolkit2(python: str, model: BenchModel, results: dict[str, dict]) -> None:
    """Build `model` with rknn-toolkit2 in `python`; print both end-to-end times."""
    if model.make is not None:
        model.make()
    with tempfile.TemporaryDirectory() as tmp:
        ours = results[model.name]["e2e"] if model.name in results else \
            end_to_end(model, Path(tmp) / "ours.rknn")[0]
        script = RKNN_TOOLKIT2_JOB.format(mean=list(model.mean), std=list(model.std))
        start = time.perf_counter()
        done = subprocess.run([python, "-c", script, str(model.path), str(model.dataset),
                               str(Path(tmp) / "theirs.rknn")], capture_output=True, text=True,
                              env=_env(original=True))
        theirs = time.perf_counter() - start
    if done.returncode != 0:
        print(f"rknn-toolkit2 failed: {done.stderr.strip().splitlines()[-1:]}")
        return
    print(f"\n{model.name} int8, {CALIBRATION_IMAGES} calibration images, {TARGET}, process "
          f"start included: rkc {ours:.2f} s, rknn-toolkit2 {theirs:.2f} s, ratio rkc / "
          f"rknn-toolkit2 = {ours / theirs:.2f}")


if __name__ == "__main__":
    sys.exit(main())
