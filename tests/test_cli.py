"""The `rkc` and `rkc-opt` command lines: outputs, one-line errors, exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rkc.cli import main as rkc_main
from rkc.opt import main as opt_main

DATA = Path(__file__).parent / "data"

IR = """
func.func @main(%x: tensor<1x3x8x8xf32>) -> tensor<1x4x8x8xf32> {
  %w = nn.constant dense<0.25> : tensor<4x3x3x3xf32>
  %c = nn.conv2d %x, %w {rkc.name = "conv1", strides = array<i64: 1, 1>,
       pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64}
       : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x8x8xf32>
  %r = nn.relu %c {rkc.name = "relu1"} : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  func.return %r : tensor<1x4x8x8xf32>
}
"""


def run_cli(main, args: list[str], capsys) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def ir_file(tmp_path: Path) -> Path:
    path = tmp_path / "m.mlir"
    path.write_text(IR)
    return path


@pytest.fixture
def input_file(tmp_path: Path) -> Path:
    path = tmp_path / "x.npy"
    np.save(path, np.linspace(-1, 1, 192, dtype=np.float32).reshape(1, 3, 8, 8))
    return path


def test_run_prints_layers_and_saves_outputs(ir_file, input_file, tmp_path, capsys):
    out_path = tmp_path / "out.npz"
    code, out, err = run_cli(rkc_main, ["run", str(ir_file), "--input", f"x={input_file}",
                                        "--layers", "--output", str(out_path)], capsys)
    assert code == 0, err
    assert "conv1" in out and "relu1" in out and "1x4x8x8" in out
    x = np.load(input_file)
    with np.load(out_path) as saved:
        (result,) = saved.values()
    # 3x3 conv of all-0.25 weights at the centre pixel: 0.25 * sum of the 3x3x3 window
    centre = 0.25 * x[0, :, 3:6, 3:6].sum()
    assert result.shape == (1, 4, 8, 8)
    np.testing.assert_allclose(result[0, 0, 4, 4], max(centre, 0), rtol=1e-6)


@pytest.mark.parametrize("args, message", [
    (["run", "{ir}", "--input", "y={x}"], "unknown input 'y'"),
    (["run", "{ir}"], "missing input 'x'"),
    (["run", "{ir}", "--input", "x"], "expected NAME=FILE.npy"),
    (["run", "{ir}", "--input", "x={bad_shape}"], "has shape [2, 2]"),
    (["run", "missing.onnx"], "no such file"),
    (["run", "{txt}"], "unknown model format"),
    (["run", "{broken}"], "error"),
])
def test_user_errors_are_one_line_exit_2(args, message, ir_file, input_file, tmp_path, capsys):
    bad_shape = tmp_path / "bad.npy"
    np.save(bad_shape, np.zeros((2, 2), np.float32))
    txt = tmp_path / "model.txt"
    txt.write_text("x")
    broken = tmp_path / "broken.mlir"
    broken.write_text(IR.replace("nn.relu %c", "nn.relu %zz"))
    args = [a.format(ir=ir_file, x=input_file, bad_shape=bad_shape, txt=txt, broken=broken)
            for a in args]
    code, out, err = run_cli(rkc_main, args, capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_failed_run_writes_no_output(ir_file, tmp_path, capsys):
    out_path = tmp_path / "out.npz"
    code, _, _ = run_cli(rkc_main, ["run", str(ir_file), "--output", str(out_path)], capsys)
    assert code == 2
    assert not out_path.exists()


def test_rkc_opt_verifier_error_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.mlir"
    bad.write_text(IR.replace("pads = array<i64: 1, 1, 1, 1>", "pads = array<i64: 0, 0, 0, 0>"))
    code, out, err = run_cli(opt_main, [str(bad)], capsys)
    assert code == 2
    assert err.strip() == ("rkc-opt: error: nn.conv2d: result type tensor<1x4x8x8xf32> does not "
                           "match the inferred tensor<1x4x6x6xf32>")


def test_rkc_opt_parse_error_names_location(tmp_path, capsys):
    bad = tmp_path / "bad.mlir"
    bad.write_text("func.func @main() {\n  %0 = nn.relu\n}\n")
    code, out, err = run_cli(opt_main, [str(bad)], capsys)
    assert code == 2
    assert err.startswith(f"rkc-opt: {bad}:3:1: error:")
    assert len(err.strip().splitlines()) == 1


def test_console_scripts_are_installed():
    for tool in ("rkc", "rkc-opt"):
        exe = Path(sys.executable).parent / tool
        out = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
        assert out.returncode == 0
        assert "usage" in out.stdout
