"""`rkc compile`: an ONNX model (or quantized IR) to a `.rknn` file for one chip.

Stages: import (ONNX) -> quantize (every `rkc quantize` option, `rkc.cli._quantize`) ->
`rkc.lowering.pipeline.lower` -> `rkc.backends.codegen.compile_program` -> the `.rknn`
container (`rkc.backends.program.program_bytes`), optionally encrypted
(`rkc.backends.encrypt`). A quantized IR file (.mlir) skips import and quantization.

Invariants: every error is an RkcError (exit code 2, one line); the output is written to
a temporary file and renamed, so an error leaves nothing half-written; `--save-ir DIR`
writes each stage's IR (imported.mlir, quantized.mlir, lowered.mlir: the lowering's
output; program.mlir: the host program the file carries, with task ranges and the conv
weights elided) as soon as the stage is done.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rkc.errors import RkcError


def _save_ir(directory: str | None, name: str, text: str) -> None:
    if directory is None:
        return
    from rkc.cli import _write_atomically

    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        _write_atomically(path / name, (text + "\n").encode())
    except OSError as e:
        raise RkcError(f"--save-ir {directory}: {e.strerror or e}") from None


def _stage(label: str, quiet: bool) -> float:
    if not quiet:
        print(f"{label} ...", file=sys.stderr)
    return time.perf_counter()


def _quantized_module(args: argparse.Namespace):
    """The quantized module: an ONNX model imported and quantized, an IR file as it is."""
    from rkc.cli import _load, _quantize

    module = _load(args)
    if Path(args.model).suffix.lower() != ".onnx":
        if args.dataset:
            raise RkcError("--dataset applies to ONNX models; an IR file is compiled as it "
                           "is (quantize it with `rkc quantize` first)")
        return module
    if args.save_ir:  # printing a big module takes a second: only when asked
        _save_ir(args.save_ir, "imported.mlir", str(module))
    module = _quantize(args, module).module
    if args.save_ir:
        _save_ir(args.save_ir, "quantized.mlir", str(module))
    return module


def _size(n: int) -> str:
    return f"{n} B" if n < 10240 else f"{n / 1024:.1f} KB" if n < 10 << 20 else \
        f"{n / (1 << 20):.1f} MB"


def cmd_compile(args: argparse.Namespace) -> None:
    from rkc.backends.codegen import compile_program
    from rkc.backends.program import program_bytes
    from rkc.cli import _write_atomically
    from rkc.lowering.pipeline import lower, summarize
    from rkc.table import format_table
    from rkc.targets import get_target

    target = get_target(args.target)
    chip = target.name.lower()
    if args.cores < 1:
        raise RkcError(f"--cores {args.cores}: at least one core")
    output = Path(args.output)
    if not output.parent.is_dir():
        raise RkcError(f"-o {args.output}: directory {output.parent} does not exist")
    key = None
    if args.encrypt:
        from rkc.backends.encrypt import read_key

        key = read_key(args.encrypt)
    start = time.perf_counter()
    module = _quantized_module(args)
    _stage(f"lower for {target.name}", args.quiet)
    lowered = lower(module, chip, args.cores)
    summary = summarize(lowered)
    program = compile_program(lowered, chip, args.cores, show_progress=not args.quiet)
    if args.save_ir:  # the lowering's output (all weights) and the program's host IR
        _save_ir(args.save_ir, "lowered.mlir", str(lowered))
        _save_ir(args.save_ir, "program.mlir", program.host_ir)
    source = "ONNX" if Path(args.model).suffix.lower() == ".onnx" else "rkc IR"
    data = program_bytes(program, source)
    if key is not None:
        from rkc.backends.encrypt import encrypt_rknn

        data = encrypt_rknn(data, key)
    try:
        _write_atomically(output, data)
    except OSError as e:
        raise RkcError(f"-o {args.output}: {e.strerror or e}") from None
    rows = [("ops on NPU / CPU", f"{summary.npu_ops} / {summary.cpu_ops}"),
            ("tasks", program.task_count),
            ("feature memory", _size(program.feature_bytes)),
            ("weight memory", _size(len(program.weight_blob))),
            ("command memory", _size(len(program.regcmd) + len(program.task_records))),
            ("file", f"{args.output} ({_size(len(data))}"
                     f"{', encrypted' if key is not None else ''})"),
            ("time", f"{time.perf_counter() - start:.1f} s")]
    print(format_table([f"{target.name}, {args.cores} core(s)", ""], rows))


def add_compile_parser(sub: argparse._SubParsersAction) -> None:
    from rkc.cli import quantize_args

    p = sub.add_parser("compile", help="compile a model to a .rknn file for one chip",
                       description="Import and quantize a model (the `rkc quantize` "
                                   "options), lower it for the chip, emit the register "
                                   "commands of every NPU task and write a .rknn file "
                                   "(rknn-toolkit2 container, file format 6) holding the "
                                   "regcmd, the task list, the weights and rkc's host "
                                   "program. MODEL is ONNX or quantized IR (.mlir).")
    quantize_args(p)
    p.add_argument("--target", default="rk3588",
                   help="the chip: rk3588 or rk3568 (default: rk3588)")
    p.add_argument("--cores", type=int, default=1,
                   help="NPU cores to spread the tasks of a layer over (default: 1)")
    p.add_argument("--save-ir", metavar="DIR",
                   help="write every stage's IR into DIR (imported.mlir, quantized.mlir, "
                        "lowered.mlir, program.mlir) for rkc-opt")
    p.add_argument("--encrypt", metavar="KEYFILE",
                   help="encrypt the model with this key (32 raw bytes or a passphrase "
                        "file; needs rkc[crypto])")
    p.add_argument("-o", "--output", required=True, metavar="OUT.rknn",
                   help="where to write the model")
    p.set_defaults(func=cmd_compile)
