"""`rkc report`: placement, tiling and memory of a quantized model on a chip; the
lowering pipeline's summary counts; one-line errors with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import run_cli
from test_quantize_fixtures import samples_for

from rkc.backends.codegen import compile_program
from rkc.cli import main as rkc_main
from rkc.driver import load_module, parse_ir
from rkc.lowering.memory_plan import format_memory
from rkc.lowering.pipeline import lower, lowering_spec, summarize
from rkc.passes.rknpu_plan_memory import plan_function
from rkc.quant.dataset import Preprocess
from rkc.quant.pipeline import quantize_model

VENDOR = Path(__file__).parent / "data" / "vendor"
QUANT_OPTIONS = ["--dataset", str(VENDOR / "dataset.txt"), "--mean", "127.5", "--std",
                 "127.5", "-q"]


@pytest.fixture(scope="module")
def resblock_ir(tmp_path_factory) -> Path:
    """resblock quantized by `rkc quantize` (int8, the vendor fixture's settings)."""
    path = tmp_path_factory.mktemp("report") / "resblock.mlir"
    try:
        rkc_main(["quantize", str(VENDOR / "resblock.onnx"), *QUANT_OPTIONS, "-o", str(path)])
    except SystemExit as e:
        assert not e.code
    return path


def test_full_report_of_quantized_ir(resblock_ir, capsys):
    code, out, err = run_cli(rkc_main, ["report", str(resblock_ir), "--target", "rk3588"],
                             capsys)
    assert code == 0, err
    lowered = lower(load_module(resblock_ir), "rk3588")
    summary = summarize(lowered)
    _, plan = plan_function(lowered, "rk3588")
    assert out.startswith(f"{resblock_ir} on RK3588\n")
    for header in ("placement on RK3588", "tiling on RK3588, 1 core(s)", "memory on RK3588"):
        assert f"\n{header}\n" in out
    lines = out.splitlines()
    assert f"NPU tasks {summary.tasks}" in [" ".join(line.split()) for line in lines]
    assert (f"peak feature memory {plan.feature_bytes} B "
            f"({plan.feature_bytes / 1024:.2f} KiB)") in [" ".join(ln.split()) for ln in lines]
    assert format_memory(plan) in out
    program = compile_program(lowered, "rk3588")
    command = len(program.regcmd) + len(program.task_records)
    assert (f"Command memory: {command} B ({command / 1024:.2f} KiB: register commands "
            f"{len(program.regcmd)} B + task records {len(program.task_records)} B)") in out
    # the two 3x3 convs, one task each on RK3588, with their bank split
    assert "conv 'Conv_0' 3x32x32 -> 16x32x32 (3x3 stride 1, int8): NONE, 1 task(s)" in out
    assert "tile 0 (NONE, cbuf 1d+11w): core 0 out rows [0, 32) in rows [0, 32) pad 1/1" in out
    assert "Conv_4" in out and "Add_5" in out


def test_sections_and_cores(resblock_ir, capsys):
    code, out, err = run_cli(rkc_main, ["report", str(resblock_ir), "--target", "rk3588",
                                        "--cores", "3", "--tiling"], capsys)
    assert code == 0, err
    assert "placement on" not in out and "memory on" not in out and "NPU tasks" not in out
    assert "conv 'Conv_0' 3x32x32 -> 16x32x32 (3x3 stride 1, int8): BY_Y, 3 task(s)" in out
    assert "core 2 out rows [21, 32) in rows [20, 32) pad 0/1 out ch [0, 16)" in out
    code, out, err = run_cli(rkc_main, ["report", str(resblock_ir), "--target", "rk3568",
                                        "--placement", "--memory"], capsys)
    assert code == 0, err
    assert "placement on RK3568" in out and "memory on RK3568" in out
    assert "tiling on" not in out
    (conv_line,) = [ln.split() for ln in out.splitlines() if ln.startswith("Conv_0 ")]
    assert conv_line[1] == "nn.conv2d" and conv_line[-2:] == ["NPU", "CNA+CORE+DPU"]


def test_onnx_model_is_quantized_first(capsys):
    code, out, err = run_cli(rkc_main, ["report", str(VENDOR / "conv_relu.onnx"),
                                        *QUANT_OPTIONS, "--target", "rk3568", "--memory"],
                             capsys)
    assert code == 0, err
    module = load_module(VENDOR / "conv_relu.onnx")
    pre = Preprocess((127.5,), (127.5,))
    q = quantize_model(module, samples_for(module, VENDOR / "dataset.txt", pre),
                       preprocess=pre, show_progress=False).module
    _, plan = plan_function(lower(q, "rk3568"), "rk3568")
    assert format_memory(plan) in out


@pytest.mark.parametrize("args, message", [
    (["{onnx}"], "int8 quantization needs --dataset"),
    (["{ir}", "--target", "rk9999"], "unknown target 'rk9999'"),
    (["missing.mlir"], "no such file"),
    (["{txt}"], "unknown model format"),
    (["{ir}", "--cores", "4"], "RK3588 has 3 NPU core(s), cannot spread tasks over cores=4"),
    (["{ir}", "--target", "rk3568", "--cores", "2"], "RK3568 has 1 NPU core(s)"),
    (["{ir}", "--dataset", "{txt}"], "--dataset applies to ONNX models"),
])
def test_user_errors_are_one_line_exit_2(args, message, resblock_ir, tmp_path, capsys):
    txt = tmp_path / "model.txt"
    txt.write_text("x")
    args = [a.format(onnx=VENDOR / "conv_relu.onnx", ir=resblock_ir, txt=txt) for a in args]
    code, out, err = run_cli(rkc_main, ["report", *args], capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- pipeline

SUMMARY_IR = """
!x = tensor<1x32x12x8x!quant.uniform<i8:f32, 0.05:0>>
!w = tensor<32x32x3x3x!quant.uniform<i8:f32, 0.01:0>>
!c = tensor<1x64x12x8x!quant.uniform<i8:f32, 0.05:0>>
!v = tensor<1x64x96x1x!quant.uniform<i8:f32, 0.05:0>>
func.func @main(%x: !x) -> tensor<1x64x96x1xf32> {
  %w = nn.constant dense<1> : tensor<32x32x3x3xi8> as !w
  %a = nn.conv2d %x, %w {rkc.name = "a", PROPS} : (!x, !w) -> !x
  %r = nn.relu %a {rkc.name = "r"} : (!x) -> !x
  %c = nn.concat %a, %r {rkc.name = "cat", axis = 1 : i64} : (!x, !x) -> !c
  %v = nn.reshape %c {rkc.name = "flat", shape = array<i64: 1, 64, 96, 1>} : (!c) -> !v
  %f = quant.dequantize %v : !v -> tensor<1x64x96x1xf32>
  func.return %f : tensor<1x64x96x1xf32>
}
""".replace("PROPS", "strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, "
                     "dilations = array<i64: 1, 1>, group = 1 : i64")


def test_summary_counts_tasks_views_and_memory():
    module = parse_ir(SUMMARY_IR)
    assert lowering_spec("rk3588", 3) == (
        "rknpu-legalize{target=rk3588},nn-to-rknpu,rknpu-layout{target=rk3588},"
        "rknpu-fuse,rknpu-tile{target=rk3588 cores=3},"
        "rknpu-plan-memory{target=rk3588 alignment=64}")
    one = summarize(lower(module, "rk3588"))
    three = summarize(lower(module, "rk3588", cores=3))
    # conv, relu (ew), concat and view on the NPU; dequantize on the host; to_native /
    # from_native at the boundary. Tasks: the conv (1, or 3 bands on 3 cores) and the
    # relu; concat and view are address offsets.
    assert (one.npu_ops, one.cpu_ops, one.conversions) == (4, 1, 2)
    assert (one.tasks, one.tiled_convs, three.tasks, three.tiled_convs) == (2, 0, 4, 1)
    # both concat inputs fill whole 32-channel slots: written in place, no copy
    assert one.copies == 0
    # weights: 9 taps x 32 x 32 B; the DPU stream 32 channels x 8 B (64-byte aligned)
    assert one.weight_bytes == 9 * 32 * 32 + 32 * 8
    assert one.peak_feature_bytes == three.peak_feature_bytes >= one.live_peak_bytes
    # the f32 output (64 x 96 x 4 B) and the concat (4 surfaces of 96 pixels x 16 B) are
    # live together at the last step
    assert one.live_peak_bytes >= 64 * 96 * 4 + 4 * 96 * 16
