"""The NPU cost model (rkc.perf) and `rkc report --perf`.

Hand-computed costs of small convs, the padding waste and monotonicity rules, tiling
re-reads, the CLI's table / CSV / plot and its errors, and rknn-toolkit2's own per-layer
estimates (tests/data/vendor/perf_logs.csv, from the vendor build logs) beside ours
(`pytest -s` prints the comparison).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_cli import run_cli
from test_quantize_fixtures import quantize

from rkc.cli import main as rkc_main
from rkc.errors import RkcError
from rkc.frontend.onnx import import_onnx
from rkc.lowering.pipeline import lower
from rkc.perf.compare import compare, onnx_layer_outputs, read_vendor_csv
from rkc.perf.model import estimate
from rkc.perf.report import CSV_COLUMNS, format_perf, perf_csv
from rkc.quant.dataset import Preprocess
from rkc.quant.pipeline import quantize_model
from rkc.table import format_table
from rkc.targets import RK3568, RK3588

DATA = Path(__file__).parent / "data"
VENDOR = DATA / "vendor"
QUANT_OPTIONS = ["--dataset", str(VENDOR / "dataset.txt"), "--mean", "127.5", "--std",
                 "127.5", "-q"]


def conv_model(c: int, k: int, hw: int, kernel: int = 1, stride: int = 1,
               pad: int = 0, depthwise: bool = False, seed: int = 0) -> onnx.ModelProto:
    """One Conv (no activation) on a 1 x c x hw x hw input."""
    rng = np.random.default_rng(seed)
    group = c if depthwise else 1
    w = rng.standard_normal((k, c // group, kernel, kernel)).astype(np.float32) * 0.1
    b = rng.standard_normal(k).astype(np.float32) * 0.1
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[kernel, kernel],
                            strides=[stride, stride], pads=[pad] * 4, group=group)
    out = (hw + 2 * pad - kernel) // stride + 1
    graph = helper.make_graph(
        [node], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, hw, hw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, k, out, out])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def conv_estimate(tmp_path: Path, target: str = "rk3588", cores: int = 1, dtype="int8",
                  **shape):
    """(the conv's LayerCost, the whole estimate) of `conv_model(**shape)`."""
    path = tmp_path / f"conv_{'_'.join(f'{k}{v}' for k, v in shape.items())}.onnx"
    onnx.save(conv_model(**shape), str(path))
    module = import_onnx(path)
    rng = np.random.default_rng(1)
    sample = {"x": rng.uniform(-1, 1, (1, shape["c"], shape["hw"], shape["hw"]))
              .astype(np.float32)}
    quantized = quantize_model(module, [sample] if dtype == "int8" else None, dtype=dtype,
                               preprocess=Preprocess(), show_progress=False).module
    perf = estimate(lower(quantized, target, cores), target, cores)
    (conv,) = [layer for layer in perf.npu_layers if layer.op.startswith(("Conv", "Depth"))]
    return conv, perf


# ----------------------------------------------------------------------------- model

def test_1x1_conv_32_to_32_on_16x16_exact_cycles(tmp_path):
    conv, perf = conv_estimate(tmp_path, c=32, k=32, hw=16)
    t = RK3588
    (task,) = conv.tasks
    # MAC: 256 px (a multiple of the 16-pixel block) x 1 tap x ceil(32/32) channel
    # slices x ceil(32/32) kernel groups; DPU: 256 px x 32 padded channels / 8 per cycle
    assert task.mac_cycles == 256 * 1 * 1 * 1 == 256
    assert task.dpu_cycles == 256 * 32 // t.dpu_elements_per_cycle == 1024
    assert task.npu_cycles == 1024
    # DRAM: input 16 rows x 16 px x 2 surfaces x 16 B, weights 32 x 32 B, stream 32 x 8 B;
    # output 256 px x 32 ch
    assert task.read_bytes == 16 * 16 * 2 * 16 + 32 * 32 + 32 * 8 == 9472
    assert task.write_bytes == 256 * 32 == 8192
    assert task.ddr_cycles == math.ceil(17664 / 33.8) == 523
    # CBUF fill: the first output row's input row (512 B) + the first kernel group (1024 B)
    assert task.fill_cycles == math.ceil((512 + 1024) / 33.8) == 46
    assert task.overhead_cycles == t.task_overhead_cycles == 120
    assert conv.cycles == task.cycles == 1024 + 46 + 120 == 1190
    assert conv.macs == 256 * 32 * 32
    assert conv.mac_utilisation == pytest.approx(256 * 32 * 32 / (1190 * 1024))
    assert conv.compulsory_bytes == 9472 + 8192
    assert conv.roofline_cycles == math.ceil(17664 / 33.8)
    assert perf.microseconds(conv.cycles) == pytest.approx(1.19)


def test_same_conv_on_rk3568_uses_its_own_figures(tmp_path):
    conv, _ = conv_estimate(tmp_path, "rk3568", c=32, k=32, hw=16)
    (task,) = conv.tasks
    # 512 MAC/cycle = 32 channels x 16 kernels: two kernel groups; DPU 4 elements/cycle
    assert task.mac_cycles == 256 * 2 == 512
    assert task.dpu_cycles == 256 * 32 // RK3568.dpu_elements_per_cycle == 2048
    # 8-byte atoms: 16 rows x 16 px x 4 surfaces x 8 B of input; 12.5 GB/s at 1 GHz
    assert task.read_bytes == 16 * 16 * 4 * 8 + 32 * 32 + 32 * 8
    assert task.ddr_cycles == math.ceil((task.read_bytes + task.write_bytes) / 12.5)


def test_padding_waste_three_channels_cost_as_much_as_sixteen(tmp_path):
    c3, _ = conv_estimate(tmp_path, c=3, k=16, hw=16, kernel=3, pad=1)
    c16, _ = conv_estimate(tmp_path, c=16, k=16, hw=16, kernel=3, pad=1)
    # one 32-channel slice and one 32-kernel group either way: 256 px x 9 taps
    assert c3.tasks[0].mac_cycles == c16.tasks[0].mac_cycles == 256 * 9
    assert c3.npu_cycles == c16.npu_cycles
    assert c3.macs * 16 == c16.macs * 3
    assert c3.mac_utilisation < c16.mac_utilisation
    # 33 channels take a second slice, 33 kernels a second group
    c33, _ = conv_estimate(tmp_path, c=33, k=16, hw=16, kernel=3, pad=1)
    k33, _ = conv_estimate(tmp_path, c=16, k=33, hw=16, kernel=3, pad=1)
    assert c33.tasks[0].mac_cycles == k33.tasks[0].mac_cycles == 2 * 256 * 9


def test_small_outputs_round_up_to_the_pixel_block(tmp_path):
    conv, _ = conv_estimate(tmp_path, c=16, k=16, hw=3, kernel=3)  # 1 x 1 output
    assert conv.tasks[0].mac_cycles == RK3588.mac_pixel_block * 9


def test_more_channels_are_never_cheaper(tmp_path):
    previous = None
    for c in (8, 16, 24, 32, 48, 64, 96):
        conv, _ = conv_estimate(tmp_path, c=c, k=c, hw=20, kernel=3, pad=1)
        key = (conv.npu_cycles, conv.ddr_cycles, conv.cycles, conv.read_bytes)
        if previous is not None:
            assert all(a <= b for a, b in zip(previous, key, strict=True)), (c, previous, key)
        previous = key


def test_a_tiled_conv_costs_at_least_its_compulsory_bytes(tmp_path):
    # 64 x 96 x 96 int8 = 576 KiB of input: more than the 384 KiB CBUF -> height bands
    conv, _ = conv_estimate(tmp_path, c=64, k=64, hw=96, kernel=3, pad=1)
    assert conv.hardware_tasks > 1
    moved = conv.read_bytes + conv.write_bytes
    assert moved > conv.compulsory_bytes  # halo rows are read twice
    assert conv.cycles >= math.ceil(conv.compulsory_bytes / RK3588.dram_bytes_per_cycle)
    assert conv.cycles >= conv.roofline_cycles
    # weights stay resident across the bands of one core: loaded by the first task only
    assert [t.weight_refill for t in conv.tasks] == [True] + [False] * (len(conv.tasks) - 1)


def test_three_cores_share_the_bands(tmp_path):
    one, _ = conv_estimate(tmp_path, c=32, k=32, hw=48, kernel=3, pad=1)
    three, _ = conv_estimate(tmp_path, cores=3, c=32, k=32, hw=48, kernel=3, pad=1)
    assert {t.core for t in three.tasks} == {0, 1, 2}
    assert three.cycles < one.cycles
    assert three.macs == one.macs and three.cores_used == 3
    assert three.cycles >= max(sum(t.cycles for t in three.tasks if t.core == c)
                               for c in range(3))


def test_fp16_costs_twice_the_int8_mac_cycles_when_kernel_groups_halve(tmp_path):
    int8, _ = conv_estimate(tmp_path, c=32, k=32, hw=16, kernel=3, pad=1)
    fp16, _ = conv_estimate(tmp_path, dtype="fp16", c=32, k=32, hw=16, kernel=3, pad=1)
    assert fp16.dtype == "FLOAT16" and int8.dtype == "INT8"
    assert fp16.tasks[0].mac_cycles == 2 * int8.tasks[0].mac_cycles  # 16-kernel groups
    assert fp16.read_bytes > int8.read_bytes


def test_unknown_or_unmodelled_targets_are_user_errors(tmp_path):
    module = quantize(VENDOR / "conv_relu.onnx").module
    with pytest.raises(RkcError, match="unknown target"):
        estimate(module, "rk9999")
    with pytest.raises(RkcError, match="no int8 MAC rate"):
        estimate(lower(module, "rk3576"), "rk3576")
    with pytest.raises(RkcError, match="cannot estimate for 4"):
        estimate(lower(module, "rk3588"), "rk3588", 4)
    with pytest.raises(RkcError, match="is not lowered"):
        estimate(module, "rk3588")


# ----------------------------------------------------------------------------- report / CLI

def test_report_perf_table_csv_and_plot(tmp_path, capsys):
    csv_path, png_path = tmp_path / "perf.csv", tmp_path / "perf.png"
    pytest.importorskip("matplotlib")
    code, out, err = run_cli(rkc_main, ["report", "--perf", str(VENDOR / "resblock.onnx"),
                                        *QUANT_OPTIONS, "--csv", str(csv_path),
                                        "--plot", str(png_path)], capsys)
    assert code == 0, err
    perf = estimate(lower(quantize(VENDOR / "resblock.onnx").module, "rk3588"), "rk3588")
    assert format_perf(perf) in out
    assert "Cycles(DDR/NPU/Total)" in out and "MacUsage(%)" in out and "FPS" in out
    assert f"{perf.fps:.1f} FPS estimated on 1 core(s)" in out
    assert "roofline: compute" in out
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["name"] for r in rows] == [layer.name for layer in perf.layers]
    assert sum(int(r["total_cycles"]) for r in rows) == perf.total_cycles
    assert {r["target"] for r in rows if r["op_type"] in ("Quantize", "Dequantize")} == {"CPU"}
    assert all(int(r["total_cycles"]) == 0 for r in rows if r["target"] == "CPU")
    assert csv_path.read_text() == perf_csv(perf)
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_perf_on_rk3568_and_three_cores(capsys):
    code, out, err = run_cli(rkc_main, ["report", "--perf", str(VENDOR / "mobilenet.onnx"),
                                        *QUANT_OPTIONS, "--target", "rk3568"], capsys)
    assert code == 0, err
    assert "on RK3568, 1 core(s)" in out and "DepthwiseConvClip" in out
    code, out, err = run_cli(rkc_main, ["report", "--perf", str(VENDOR / "mobilenet.onnx"),
                                        *QUANT_OPTIONS, "--cores", "3"], capsys)
    assert code == 0, err
    assert "estimated on 3 core(s)" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--target", "rk9999"], "unknown target 'rk9999'"),
    (["--target", "rk3576"], "RK3576: no int8 MAC rate is known"),
])
def test_report_perf_errors(args, message, tmp_path, capsys):
    csv_path = tmp_path / "perf.csv"
    code, out, err = run_cli(rkc_main, ["report", "--perf", str(VENDOR / "resblock.onnx"),
                                        *QUANT_OPTIONS, *args, "--csv", str(csv_path)],
                             capsys)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert err.count("\n") == 1
    assert not csv_path.exists()


# ----------------------------------------------------------------------------- vendor

VENDOR_CASES = [(m, c, d) for m in ("conv_relu", "resblock", "mobilenet")
                for c in ("rk3588", "rk3568") for d in ("int8", "fp16")]


@pytest.mark.parametrize(("model", "chip", "dtype"), VENDOR_CASES)
def test_vendor_estimates_beside_ours(model, chip, dtype):
    """rknn-toolkit2 2.5.0's build-log estimates and ours list the same ONNX layers. The
    NPU cycles of every conv both compilers run as one layer agree: the MAC rule follows
    from the 32 x 32 (RK3588) / 32 x 16 (RK3568) array, but the DPU rate and the 16-pixel
    block were read off these same logs (rkc/targets.py), so this is a consistency check,
    not an independent validation. DDR cycles are printed, not compared (docs/
    performance.md: the vendor's DRAM model is slower than the theoretical bandwidth)."""
    vendor = [v for v in read_vendor_csv(VENDOR / "perf_logs.csv")
              if (v.model, v.chip, v.dtype) == (model, chip, dtype)]
    assert vendor
    perf = estimate(lower(quantize(VENDOR / f"{model}.onnx", dtype=dtype).module, chip),
                    chip)
    outputs = onnx_layer_outputs(VENDOR / f"{model}.onnx")
    rows = compare(perf, outputs, vendor)
    print(f"\n{model} {chip} {dtype}\n" + format_table(
        ["onnx output", "vendor", "rkc", "vendor DDR/NPU/Total", "rkc DDR/NPU/Total"],
        [(r.onnx_output, " + ".join(r.vendor_ops), " + ".join(r.rkc_ops),
          f"{r.vendor_ddr}/{r.vendor_npu}/{r.vendor_total}",
          f"{r.rkc_ddr}/{r.rkc_npu}/{r.rkc_total}") for r in rows]))
    # every vendor layer is one of ours, in the same order; ours may have more (a relu
    # after a rescaling residual add is its own task in rkc, fused by the vendor)
    ours = list(dict.fromkeys(outputs[layer.name] for layer in perf.npu_layers
                              if layer.name in outputs))
    assert [r.onnx_output for r in rows] == ours
    assert all(r.rkc_ops for r in rows)
    theirs = list(dict.fromkeys(v.onnx_output for v in vendor))
    assert [r.onnx_output for r in rows if r.vendor_ops] == theirs
    assert sum(not r.vendor_ops for r in rows) <= (1 if model == "resblock" else 0)
    for r in rows:
        single_conv = (len(r.vendor_ops) == 1 and r.vendor_ops[0].startswith("Conv")
                       and r.rkc_ops[0].split(":")[0].startswith(("Conv", "Depthwise")))
        if single_conv:
            assert r.rkc_npu == r.vendor_npu, r


def test_report_perf_of_an_rkc_compiled_rknn(tmp_path, capsys):
    """A .rknn written by `rkc compile` is estimated from its host program (the lowered
    IR it carries): the same figures as the ONNX model it came from."""
    pytest.importorskip("rkc.backends.program")
    pytest.importorskip("rkc.compile_cli")
    rknn = tmp_path / "mobilenet.rknn"
    code, _, err = run_cli(rkc_main, ["compile", str(VENDOR / "mobilenet.onnx"),
                                      *QUANT_OPTIONS, "-o", str(rknn)], capsys)
    assert code == 0, err
    code, from_rknn, err = run_cli(rkc_main, ["report", "--perf", str(rknn)], capsys)
    assert code == 0, err
    code, from_onnx, err = run_cli(rkc_main, ["report", "--perf",
                                              str(VENDOR / "mobilenet.onnx"),
                                              *QUANT_OPTIONS], capsys)
    assert code == 0, err
    table = from_onnx[from_onnx.index("performance estimate"):]
    assert table in from_rknn
    code, _, err = run_cli(rkc_main, ["report", "--perf", str(rknn), "--target", "rk3568"],
                           capsys)
    assert code == 2 and "compiled for RK3588, not RK3568" in err
    code, _, err = run_cli(rkc_main, ["report", "--memory", str(rknn)], capsys)
    assert code == 2 and "supports --perf only" in err
