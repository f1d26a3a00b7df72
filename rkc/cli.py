"""The `rkc` command: import models, run them, and (later) compile them for the NPU."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

# One BLAS thread unless the user says otherwise (before numpy loads OpenBLAS). OpenBLAS's
# worker threads busy-wait, and on a machine where another process keeps a core busy
# they made calibration's matrix products 5-7x slower than one thread (2-core machine,
# bench/compile.py: resnet50 calibration 7-9.5 s with 2 threads, 1.35 s with 1).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from rkc.compile_cli import add_compile_parser  # noqa: E402
from rkc.encrypt_cli import add_encrypt_parsers  # noqa: E402
from rkc.errors import RkcError  # noqa: E402
from rkc.inspect_cli import add_inspect_parser  # noqa: E402


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape) or "scalar"


def _write_atomically(path: Path, data: bytes) -> None:
    """Write `data` so that a failure never leaves a half-written file behind."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _load(args: argparse.Namespace):
    from rkc.driver import load_module

    shapes = None
    if args.input_shape:
        from rkc.frontend.onnx import parse_input_shapes

        shapes = parse_input_shapes(args.input_shape)
    return load_module(args.model, shapes)


def cmd_import(args: argparse.Namespace) -> None:
    module = _load(args)
    text = str(module) + "\n"
    if args.output:
        _write_atomically(Path(args.output), text.encode())
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def parse_input_files(specs: Sequence[str]) -> dict[str, np.ndarray]:
    """`NAME=FILE.npy` pairs into arrays; a bad spec or file is an RkcError."""
    inputs = {}
    for spec in specs:
        name, sep, file = spec.partition("=")
        if not sep or not name or not file:
            raise RkcError(f"--input '{spec}': expected NAME=FILE.npy")
        path = Path(file)
        if path.suffix.lower() != ".npy":
            raise RkcError(f"--input '{spec}': only .npy files are supported")
        try:
            inputs[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise RkcError(f"--input '{spec}': cannot read {file}: {e}") from None
    return inputs


def cmd_run(args: argparse.Namespace) -> None:
    from rkc.interpreter import run_module
    from rkc.interpreter.trace import LayerTrace
    from rkc.table import format_table

    inputs = parse_input_files(args.input or [])
    trace = LayerTrace()
    if str(args.model).lower().endswith(".rknn"):  # a compiled model: the NPU simulator
        from rkc.runtime import run_rknn

        if args.layers or args.input_shape:
            raise RkcError("--layers and --input-shape apply to ONNX / IR models, not "
                           ".rknn files")
        outputs = run_rknn(args.model, inputs)
    else:
        module = _load(args)
        outputs = run_module(module, inputs, listeners=[trace] if args.layers else [])
    if args.layers:
        rows = [(r.index, r.name, r.op.removeprefix("nn."),
                 " ".join(_shape(s) for s in r.input_shapes), _shape(r.output_shape),
                 r.minimum, r.maximum, r.mean, r.std) for r in trace.records]
        print(format_table(["#", "layer", "op", "inputs", "output", "min", "max", "mean", "std"],
                           rows))
        print()
    rows = []
    for name, value in outputs.items():
        v = value.astype(np.float64)
        rows.append((name, _shape(value.shape), str(value.dtype), float(v.min()),
                     float(v.max()), float(v.mean()), float(v.std())))
    print(format_table(["output", "shape", "dtype", "min", "max", "mean", "std"], rows))
    if args.output:
        import io

        buffer = io.BytesIO()
        np.savez(buffer, **outputs)
        _write_atomically(Path(args.output), buffer.getvalue())
        print(f"wrote {args.output}", file=sys.stderr)


def _preprocess(args: argparse.Namespace):
    from rkc.quant.dataset import Preprocess, parse_floats

    return Preprocess(mean=parse_floats(args.mean) if args.mean else None,
                      std=parse_floats(args.std) if args.std else None,
                      reverse_channels=args.reverse_channels)


def _samples(args: argparse.Namespace, module) -> list | None:
    """The calibration samples of --dataset (raw inputs), None without one."""
    from rkc.graph import input_names, main_function
    from rkc.quant.dataset import load_dataset

    if not args.dataset:
        return None
    fn = main_function(module)
    shapes = [tuple(t.get_shape()) for t in fn.function_type.inputs.data]
    return load_dataset(args.dataset, input_names(fn), shapes, _preprocess(args))


def _quantize(args: argparse.Namespace, module):
    """Lint, calibrate (int8) and quantize an imported module as the options say."""
    from rkc.quant.calibrate import read_ranges
    from rkc.quant.lint import MagnitudeRecorder, lint
    from rkc.quant.pipeline import prepare_float, quantize_model

    samples = _samples(args, module)
    if args.dtype == "int8" and not samples:
        raise RkcError("int8 quantization needs --dataset (calibration inputs)")
    preprocess = _preprocess(args)
    prepared, recorder = None, None
    if samples:
        prepared = prepare_float(module, preprocess)  # linted, then quantized
        if args.dtype == "int8" and not read_ranges(prepared):
            recorder = MagnitudeRecorder()  # lint's float run = calibration's first sample
        else:
            _print_lint(lint(prepared, samples[0]))
    result = quantize_model(module, samples, preprocess=preprocess, algorithm=args.algorithm,
                            dtype=args.dtype, method=args.method,
                            weight_rounding=args.weight_rounding,
                            show_progress=not args.quiet, prepared=prepared,
                            listeners=[recorder] if recorder else [])
    if recorder is not None:
        _print_lint(lint(prepared, magnitudes=recorder.magnitudes))
    return result


def _print_lint(warnings: list) -> None:
    for warning in warnings:
        print(f"rkc: warning: {warning}", file=sys.stderr)


def cmd_quantize(args: argparse.Namespace) -> None:
    from rkc.table import format_table

    module = _load(args)
    result = _quantize(args, module)
    if args.auto_hybrid is not None:
        from rkc.quant.hybrid import auto_hybrid

        result, moved = auto_hybrid(result, _samples(args, module)[:1], args.auto_hybrid)
        for name in moved:
            print(f"auto-hybrid: {name} -> fp16 (single-layer cosine below "
                  f"{args.auto_hybrid})", file=sys.stderr)
    if args.save_calibrated:
        _write_atomically(Path(args.save_calibrated),
                          (str(result.calibrated_module) + "\n").encode())
    _write_atomically(Path(args.output), (str(result.module) + "\n").encode())
    counts = result.counts
    rows = [(p, counts[p]) for p in ("int8", "fp16", "float")]
    print(format_table(["precision", "ops"], rows))
    what = f"{result.dtype}" + (f", {result.method} weights ({result.weight_rounding} "
                                f"rounding), {result.algorithm} calibration"
                                if result.dtype == "int8" else "")
    print(f"wrote {args.output} ({what}, {sum(result.seconds.values()):.1f}s)")


def cmd_analyze(args: argparse.Namespace) -> None:
    from rkc.quant.analysis import layer_errors
    from rkc.quant.analysis_report import format_errors, plot_errors, worst_layers, write_csv

    module = _load(args)
    inputs = parse_input_files(args.input or [])
    result = _quantize(args, module)
    errors = layer_errors(result.float_module, result.module, inputs)
    print(format_errors(errors))
    worst = worst_layers(errors, args.worst)
    if worst:
        print("\nworst layers (single-layer cosine): " +
              ", ".join(f"{e.name} {e.cos_single:.6f}" for e in worst))
    if args.csv:
        write_csv(errors, Path(args.csv))
        print(f"wrote {args.csv}", file=sys.stderr)
    if args.plot:
        plot_errors(errors, Path(args.plot), args.worst)
        print(f"wrote {args.plot}", file=sys.stderr)


def model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="an ONNX model (.onnx) or rkc IR (.mlir)")
    p.add_argument("--input-shape", action="append", metavar="NAME=DxDx...",
                   help="fix the dynamic dimensions of an ONNX input, "
                        "e.g. x=1x3x480x480 (repeatable)")


def quantize_args(p: argparse.ArgumentParser) -> None:
    model_args(p)
    p.add_argument("--dataset", metavar="DATASET",
                   help="calibration inputs: a dataset.txt (one line per sample, one "
                        ".npy / image path per input), a directory or a single file; "
                        "required for int8")
    p.add_argument("--mean", metavar="M[,M...]",
                   help="per-channel mean subtracted from the raw input, e.g. "
                        "127.5,127.5,127.5")
    p.add_argument("--std", metavar="S[,S...]",
                   help="per-channel std the input is divided by, e.g. 127.5,127.5,127.5")
    p.add_argument("--reverse-channels", action="store_true",
                   help="decode dataset images as BGR instead of RGB")
    p.add_argument("--algorithm", default="minmax",
                   choices=("minmax", "percentile", "kl", "mse"),
                   help="calibration algorithm (default: minmax)")
    p.add_argument("--method", default="channel", choices=("channel", "layer"),
                   help="weight quantization per output channel or per layer "
                        "(default: channel)")
    p.add_argument("--weight-rounding", default="nearest", choices=("nearest", "gptq"),
                   help="int8 weight rounding: to nearest, or GPTQ (rounding errors "
                        "compensated against the calibration data; slower; default: "
                        "nearest)")
    p.add_argument("--dtype", default="int8", choices=("int8", "fp16"),
                   help="target precision (default: int8)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _report_module(args: argparse.Namespace):
    """The quantized module `rkc report` lowers: an IR file as it is, an ONNX model
    quantized with the `rkc quantize` options."""
    module = _load(args)
    if Path(args.model).suffix.lower() == ".onnx":
        return _quantize(args, module).module
    if args.dataset:
        raise RkcError("--dataset applies to ONNX models; an IR file is reported as it is "
                       "(quantize it with `rkc quantize` first)")
    return module


def _report_perf(args: argparse.Namespace, lowered, target: str, cores: int) -> str:
    """The --perf section; writes --csv / --plot (atomically) when asked."""
    from rkc.perf.model import estimate
    from rkc.perf.report import format_perf, perf_csv

    perf = estimate(lowered, target, cores)
    outputs = []
    if args.plot:  # render first: a missing matplotlib must not leave a CSV behind
        from rkc.perf.plot import plot_perf

        outputs.append((Path(args.plot), plot_perf(perf)))
    if args.csv:
        outputs.append((Path(args.csv), perf_csv(perf).encode()))
    for path, data in outputs:
        _write_atomically(path, data)
        print(f"wrote {path}", file=sys.stderr)
    return format_perf(perf)


def _report_rknn(args: argparse.Namespace) -> None:
    """`rkc report --perf MODEL.rknn`: the estimate of an rkc-compiled program."""
    from rkc.driver import parse_ir
    from rkc.targets import get_target

    chosen = [s for s in ("placement", "tiling", "memory") if getattr(args, s)]
    if chosen:
        raise RkcError(f"{args.model}: a .rknn file supports --perf only (--{chosen[0]} "
                       f"needs the ONNX model or quantized IR)")
    try:
        from rkc.backends.program import load_program
    except ImportError:
        raise RkcError("reading .rknn programs needs rkc.backends.program") from None
    program = load_program(args.model)
    chip = get_target(program.chip)
    if args.target is not None and get_target(args.target) != chip:
        raise RkcError(f"{args.model} was compiled for {chip.name}, not "
                       f"{get_target(args.target).name}")
    lowered = parse_ir(program.host_ir, args.model)
    print(f"{args.model} on {chip.name}\n")
    print(_report_perf(args, lowered, chip.name.lower(), program.cores))


def command_memory_line(lowered, chip: str) -> str:
    """Command memory of `lowered` as codegen builds it (register command words and task
    records), or why it is not known (a chip or op codegen does not cover)."""
    from rkc.backends.codegen import compile_program

    try:
        program = compile_program(lowered, chip)
    except RkcError as e:
        return f"Command memory: not known ({e})"
    regcmd, records = len(program.regcmd), len(program.task_records)
    return (f"Command memory: {regcmd + records} B ({(regcmd + records) / 1024:.2f} KiB: "
            f"register commands {regcmd} B + task records {records} B)")


def cmd_report(args: argparse.Namespace) -> None:
    from rkc.lowering.pipeline import lower
    from rkc.lowering.placement_report import placement_report
    from rkc.lowering.report import memory_report, summary_report, tiling_report
    from rkc.targets import get_target

    if args.csv or args.plot:
        args.perf = True
    if Path(args.model).suffix.lower() == ".rknn":
        _report_rknn(args)
        return
    target = get_target(args.target or "rk3588")
    if args.perf:  # fail on a chip without a cost model before quantizing
        target.macs_per_cycle("int8")
    chosen = [s for s in ("placement", "tiling", "memory", "perf") if getattr(args, s)]
    module = _report_module(args)
    sections = []
    if not chosen or chosen != ["placement"]:
        lowered = lower(module, target.name.lower(), args.cores)
        if not chosen:
            sections.append(summary_report(lowered))
    if not chosen or "placement" in chosen:
        sections.append(placement_report(module.clone(), target.name))
    if not chosen or "tiling" in chosen:
        sections.append(f"tiling on {target.name}, {args.cores} core(s)\n\n"
                        + tiling_report(lowered, target.name, args.cores))
    if not chosen or "memory" in chosen:
        sections.append(f"memory on {target.name}\n\n" + memory_report(
            lowered, target.name, command_memory_line(lowered, target.name.lower())))
    if "perf" in chosen:
        sections.append(_report_perf(args, lowered, target.name.lower(), args.cores))
    print(f"{args.model} on {target.name}\n")
    print("\n\n".join(sections))


def add_report_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="placement, tiling and memory of a model on a chip",
                       description="Lower a quantized model for a chip (rknpu-legalize, "
                                   "nn-to-rknpu, rknpu-layout, rknpu-fuse, rknpu-tile, "
                                   "rknpu-plan-memory) and report where each op runs, how "
                                   "convolutions are split into CBUF-sized tasks, and the "
                                   "DRAM it needs. MODEL is quantized IR (.mlir from `rkc "
                                   "quantize`) or an ONNX model, quantized first with the "
                                   "options below. Without a section flag, placement, "
                                   "tiling, memory and a summary are printed; --perf "
                                   "adds the performance estimate.")
    quantize_args(p)
    p.add_argument("--target", default=None,
                   help="the chip: rk3588, rk3576, rk3568 or rk3566 (default: rk3588; "
                        "a .rknn file: the chip it was compiled for)")
    p.add_argument("--cores", type=int, default=1,
                   help="NPU cores to spread the tasks of a layer over (default: 1)")
    p.add_argument("--placement", action="store_true",
                   help="which op runs on the NPU or the CPU, and why")
    p.add_argument("--tiling", action="store_true",
                   help="the CBUF tiles (tasks) of every convolution")
    p.add_argument("--memory", action="store_true",
                   help="peak feature memory and weight memory of the DRAM plan")
    p.add_argument("--perf", action="store_true",
                   help="estimated cycles, time, MAC usage and DRAM traffic per layer "
                        "(eval_perf's columns), the roofline and FPS (docs/performance.md); "
                        "MODEL may also be a .rknn file compiled by rkc")
    p.add_argument("--csv", metavar="OUT.csv", help="write the --perf table as CSV")
    p.add_argument("--plot", metavar="OUT.png",
                   help="bar chart of the estimated time per layer (needs matplotlib)")
    p.set_defaults(func=cmd_report)


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [add_report_command,
                                                                add_inspect_parser,
                                                                add_encrypt_parsers,
                                                                add_compile_parser]
"""Subcommands added after the built-in ones: one function per subcommand, taking the
parser's subparsers (a module with a subcommand of its own appends its function here)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rkc", description="rkc: an open compiler for Rockchip NPUs (RKNPU2).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("import", help="translate an ONNX model to nn IR",
                       description="Translate an ONNX model to textual nn IR, the starting "
                                   "point for rkc-opt experiments.")
    model_args(p)
    p.add_argument("-o", "--output", help="write the IR to this file instead of stdout")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("run", help="run a model in the reference interpreter, or a "
                                   "compiled .rknn on the NPU simulator",
                       description="Run a model or IR file in the reference interpreter, "
                                   "or an rkc-compiled .rknn on the register-level NPU "
                                   "simulator, and print each output's shape and "
                                   "statistics.")
    model_args(p)
    p.add_argument("--input", action="append", metavar="NAME=FILE.npy",
                   help="an input tensor (repeatable)")
    p.add_argument("--output", metavar="OUT.npz", help="save the outputs, keyed by name")
    p.add_argument("--layers", action="store_true",
                   help="print a per-layer summary: op, shapes, output statistics")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("quantize", help="quantize a model (int8 or fp16)",
                       description="Calibrate a float model on a dataset and quantize it "
                                   "to int8 (docs/quantization.md), or convert it to fp16. "
                                   "The quantized IR takes the raw input (mean / std are "
                                   "folded in) and can be run with `rkc run`. Known int8 "
                                   "accuracy traps are printed as warnings first.")
    quantize_args(p)
    p.add_argument("--auto-hybrid", type=float, metavar="COS", nargs="?", const=0.98,
                   help="move int8 layers whose single-layer cosine is below COS "
                        "(default 0.98) to fp16")
    p.add_argument("--save-calibrated", metavar="CALIBRATED.mlir",
                   help="also write the calibrated float IR (ranges in rkc.range "
                        "attributes, editable; quantize it with rkc-opt -p nn-quantize)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.mlir",
                   help="where to write the quantized IR")
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("analyze", help="per-layer accuracy of the quantized model",
                       description="Quantize the model as `rkc quantize` does and compare "
                                   "every layer with the float model on one input: cosine "
                                   "similarity and euclidean distance, accumulated "
                                   "('entire') and for the layer alone ('single').")
    quantize_args(p)
    p.add_argument("--input", action="append", metavar="NAME=FILE.npy", required=True,
                   help="the raw input to compare on (repeatable)")
    p.add_argument("--csv", metavar="OUT.csv", help="write the table as CSV")
    p.add_argument("--plot", metavar="OUT.png",
                   help="plot cosine per layer, worst layers marked (needs matplotlib)")
    p.add_argument("--worst", type=int, default=5, help="how many worst layers to name")
    p.set_defaults(func=cmd_analyze)
    for add_command in COMMANDS:
        add_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except RkcError as e:
        print(f"rkc: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
