"""`rkc compile`: exit codes, messages, the summary, --save-ir, --encrypt, no half-written
files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from test_cli import run_cli

from rkc.backends.program import load_program
from rkc.backends.rknn_file import read_rknn
from rkc.cli import main

VENDOR = Path(__file__).parent / "data" / "vendor"
NORM = ["--mean", "127.5,127.5,127.5", "--std", "127.5,127.5,127.5"]
CALIB = ["--dataset", str(VENDOR / "dataset.txt"), *NORM, "-q"]


def compile_cli(capsys, model: str, out: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli(main, ["compile", str(VENDOR / model), *CALIB, *extra, "-o", str(out)],
                   capsys)


@pytest.mark.parametrize("model, tasks", [("mobilenet", 3), ("resblock", 6)])
@pytest.mark.parametrize("chip", ["rk3588", "rk3568"])
def test_compile_writes_a_program_and_a_summary(chip, model, tasks, tmp_path, capsys):
    """mobilenet: three convs; resblock: two convs (the residual add fused into the
    second), its max pool, the relu that rescales after the add, the global average
    pool as a depthwise conv and the gemm as a 1 x 1 conv."""
    out = tmp_path / "m.rknn"
    code, stdout, err = compile_cli(capsys, f"{model}.onnx", out, "--target", chip)
    assert code == 0, err
    program = load_program(out)
    assert program.chip == chip and program.task_count == tasks
    assert read_rknn(out).target == chip
    assert "ops on NPU / CPU" in stdout and f"{chip.upper()}, 1 core(s)" in stdout
    assert f"tasks              {program.task_count}" in stdout
    assert str(out) in stdout
    assert [p.name for p in tmp_path.iterdir()] == ["m.rknn"]


def test_save_ir_writes_every_stage_and_ir_input_compiles(tmp_path, capsys):
    out, ir = tmp_path / "m.rknn", tmp_path / "ir"
    code, _, err = compile_cli(capsys, "conv_relu.onnx", out, "--save-ir", str(ir))
    assert code == 0, err
    assert sorted(p.name for p in ir.iterdir()) == ["imported.mlir", "lowered.mlir",
                                                     "program.mlir", "quantized.mlir"]
    program = (ir / "program.mlir").read_text()
    assert "rknpu.task_range = array<i64: 0, 1>" in program and "rknpu.packed" in program
    assert "rknpu.packed" not in (ir / "lowered.mlir").read_text()
    # the quantized IR compiles to the same program
    again = tmp_path / "again.rknn"
    code, _, err = run_cli(main, ["compile", str(ir / "quantized.mlir"), "-q", "-o",
                                  str(again)], capsys)
    assert code == 0, err
    a, b = load_program(out), load_program(again)
    assert (a.regcmd, a.weight_blob, a.relocations) == (b.regcmd, b.weight_blob,
                                                        b.relocations)


@pytest.mark.parametrize("args, message", [
    (["--target", "rk3576"], "code generation supports rk3588, rk3568, not rk3576"),
    (["--target", "rk9999"], "rk9999"),
    (["--cores", "0"], "--cores 0"),
])
def test_errors_exit_2_with_one_line_and_write_nothing(args, message, tmp_path, capsys):
    out = tmp_path / "m.rknn"
    code, _, err = compile_cli(capsys, "conv_relu.onnx", out, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("rkc: error: ") and message in lines[-1]
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_int8_without_dataset_and_missing_directory(tmp_path, capsys):
    code, _, err = run_cli(main, ["compile", str(VENDOR / "conv_relu.onnx"), "-o",
                                  str(tmp_path / "m.rknn")], capsys)
    assert code == 2 and "int8 quantization needs --dataset" in err
    code, _, err = compile_cli(capsys, "conv_relu.onnx", tmp_path / "no" / "m.rknn")
    assert code == 2 and "does not exist" in err


def test_unsupported_op_names_the_op_and_writes_nothing(tmp_path, capsys, monkeypatch):
    """An op the emitters cannot express (here every pool, by a patched mapping: every op
    of the fixtures is expressible today) is a one-line error naming it, nothing
    written."""
    from rkc.backends import codegen

    def no_pool(ctx, op, image=0):
        raise codegen._fail(op, "no pool task (patched)")

    monkeypatch.setattr(codegen, "_pool_task", no_pool)
    out = tmp_path / "m.rknn"
    code, _, err = compile_cli(capsys, "resblock.onnx", out)
    lines = err.strip().splitlines()
    assert code == 2 and lines[-1] == ("rkc: error: rknpu.pool 'MaxPool_3': no pool task "
                                       "(patched)"), err
    assert "Traceback" not in err and not out.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(importlib.util.find_spec("cryptography") is None,
                    reason="cryptography (rkc[crypto]) is not installed")
def test_encrypt_writes_an_encrypted_model(tmp_path, capsys):
    from rkc.backends.encrypt import decrypt_rknn, is_encrypted, read_key

    key_file = tmp_path / "key"
    key_file.write_bytes(bytes(range(32)))
    out = tmp_path / "m.rknn"
    code, stdout, err = compile_cli(capsys, "conv_relu.onnx", out, "--encrypt",
                                    str(key_file))
    assert code == 0, err
    data = out.read_bytes()
    assert is_encrypted(data) and "encrypted" in stdout
    assert load_program(decrypt_rknn(data, read_key(key_file))).task_count == 1
