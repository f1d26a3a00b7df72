"""The `rkc` command: import models, run them, and (later) compile them for the NPU."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rkc.errors import RkcError


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

    module = _load(args)
    inputs = parse_input_files(args.input or [])
    trace = LayerTrace()
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rkc", description="rkc: an open compiler for Rockchip NPUs (RKNPU2).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def model_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("model", help="an ONNX model (.onnx) or rkc IR (.mlir)")
        p.add_argument("--input-shape", action="append", metavar="NAME=DxDx...",
                       help="fix the dynamic dimensions of an ONNX input, "
                            "e.g. x=1x3x480x480 (repeatable)")

    p = sub.add_parser("import", help="translate an ONNX model to nn IR",
                       description="Translate an ONNX model to textual nn IR, the starting "
                                   "point for rkc-opt experiments.")
    model_args(p)
    p.add_argument("-o", "--output", help="write the IR to this file instead of stdout")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("run", help="run a model in the reference interpreter",
                       description="Run a model or IR file in the reference interpreter "
                                   "and print each output's shape and statistics.")
    model_args(p)
    p.add_argument("--input", action="append", metavar="NAME=FILE.npy",
                   help="an input tensor (repeatable)")
    p.add_argument("--output", metavar="OUT.npz", help="save the outputs, keyed by name")
    p.add_argument("--layers", action="store_true",
                   help="print a per-layer summary: op, shapes, output statistics")
    p.set_defaults(func=cmd_run)
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
