"""Calibration: datasets, normalisation inside the model, observers, ranges in the IR."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from xdsl.builder import ImplicitBuilder
from xdsl.dialects import func
from xdsl.dialects.builtin import DictionaryAttr, ModuleOp, StringAttr, TensorType, f32

from rkc.dialects import nn
from rkc.driver import load_module, parse_ir
from rkc.errors import RkcError
from rkc.graph import input_names, main_function, set_io_names
from rkc.interpreter import run_module
from rkc.progress import format_bar, progress
from rkc.quant.calibrate import RANGE_ATTR, calibrate, read_ranges, value_range
from rkc.quant.dataset import Preprocess, add_normalization, load_dataset, parse_floats
from rkc.quant.observers import (
    KLObserver,
    MinMaxObserver,
    MSEObserver,
    PercentileObserver,
    kl_divergences,
    make_observer,
)

DATA = Path(__file__).parent / "data"
VENDOR = DATA / "vendor"
RAW = Preprocess(None, None)
NORM = Preprocess((127.5,), (127.5,))


def toy_module(shapes: list[tuple[int, ...]], names: list[str], body) -> ModuleOp:
    """func @main over f32 inputs of `shapes`; `body(args)` returns the results."""
    fn = func.FuncOp("main", ([TensorType(f32, s) for s in shapes], []))
    with ImplicitBuilder(fn.body) as args:
        func.ReturnOp(*body(args))
    fn.update_function_type()
    set_io_names(fn, names, [f"out{i}" for i in range(len(fn.function_type.outputs))])
    module = ModuleOp([fn])
    module.verify()
    return module


def two_input_model() -> ModuleOp:
    return toy_module([(1, 3, 4, 4), (1, 3, 4, 4)], ["a", "b"],
                      lambda args: [nn.AddOp(args[0], args[1], "add").output])


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------
def test_dataset_txt_relative_paths_multiple_inputs_comments(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "npy").mkdir()
    arrays = []
    for i in range(3):
        a, b = (rng.uniform(0, 255, (1, 3, 4, 4)).astype(np.float32) for _ in range(2))
        np.save(tmp_path / "npy" / f"a{i}.npy", a)
        np.save(tmp_path / "npy" / f"b{i}.npy", b[0])  # CHW: the batch axis is added
        arrays.append((a, b))
    absolute = tmp_path / "npy" / "b2.npy"
    (tmp_path / "list.txt").write_text(
        "# calibration set\n"
        "npy/a0.npy npy/b0.npy\n"
        "\n"
        "   npy/a1.npy\tnpy/b1.npy   # second sample\n"
        f"npy/a2.npy {absolute}\n")
    samples = load_dataset(tmp_path / "list.txt", ["a", "b"], [(1, 3, 4, 4)] * 2, RAW)
    assert len(samples) == 3
    for sample, (a, b) in zip(samples, arrays, strict=True):
        assert set(sample) == {"a", "b"}
        np.testing.assert_array_equal(sample["a"], a)
        np.testing.assert_array_equal(sample["b"], b)
        assert sample["b"].shape == (1, 3, 4, 4)
    outputs = run_module(two_input_model(), samples[1])
    np.testing.assert_array_equal(outputs["out0"], arrays[1][0] + arrays[1][1])


def test_vendor_dataset_txt():
    samples = load_dataset(VENDOR / "dataset.txt", ["input"], [(1, 3, 32, 32)], NORM)
    assert len(samples) == 8
    np.testing.assert_array_equal(samples[3]["input"], np.load(VENDOR / "calib/calib_3.npy"))
    assert 0 <= samples[0]["input"].min() and samples[0]["input"].max() <= 255  # raw values


def test_directory_source(tmp_path):
    for name, value in [("b.npy", 2.0), ("a.npy", 1.0), ("c.npy", 3.0)]:
        np.save(tmp_path / name, np.full((1, 2, 3), value, np.float32))
    (tmp_path / "notes.txt").write_text("ignored")
    samples = load_dataset(tmp_path, ["x"], [(1, 2, 3)], RAW)
    assert [float(s["x"][0, 0, 0]) for s in samples] == [1.0, 2.0, 3.0]
    with pytest.raises(RkcError, match="single-input"):
        load_dataset(tmp_path, ["a", "b"], [(1, 2, 3)] * 2, RAW)


def test_iterable_source():
    a = np.zeros((1, 3, 4, 4), np.float32)
    b = np.ones((3, 4, 4), np.float32)
    samples = load_dataset([{"a": a, "b": b}, [b, a]], ["a", "b"], [(1, 3, 4, 4)] * 2, RAW)
    assert samples[0]["b"].shape == (1, 3, 4, 4) and samples[1]["a"][0, 0, 0, 0] == 1
    single = load_dataset(iter([a, b]), ["x"], [(1, 3, 4, 4)], RAW)
    assert len(single) == 2 and single[1]["x"].shape == (1, 3, 4, 4)
    with pytest.raises(RkcError, match="sample 1, input 'x'.*shape \\[4, 4, 3\\]"):
        load_dataset([a, np.zeros((4, 4, 3))], ["x"], [(1, 3, 4, 4)], RAW)
    with pytest.raises(RkcError, match="sample 0: missing input 'b'"):
        load_dataset([{"a": a}], ["a", "b"], [(1, 3, 4, 4)] * 2, RAW)
    with pytest.raises(RkcError, match="no calibration samples"):
        load_dataset([], ["x"], [(1, 3, 4, 4)], RAW)


def test_images_decode_resize_bgr(tmp_path):
    from PIL import Image

    pixels = np.zeros((6, 8, 3), np.uint8)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = 10, 20, 30  # R, G, B
    pixels[:3, :, 0] = 200
    Image.fromarray(pixels).save(tmp_path / "img.png")
    rgb = load_dataset(tmp_path / "img.png", ["x"], [(1, 3, 3, 4)], RAW)[0]["x"]
    assert rgb.shape == (1, 3, 3, 4) and rgb.dtype == np.float32
    expected = np.asarray(Image.fromarray(pixels).resize((4, 3), Image.Resampling.BILINEAR),
                          np.float32).transpose(2, 0, 1)[None]
    np.testing.assert_array_equal(rgb, expected)
    assert set(np.unique(rgb[0, 1])) == {20.0} and set(np.unique(rgb[0, 2])) == {30.0}
    bgr = load_dataset(tmp_path, ["x"], [(1, 3, 3, 4)], Preprocess(None, None, True))[0]["x"]
    np.testing.assert_array_equal(bgr, rgb[:, ::-1])


def test_ppocr_image_calibration_set():
    samples = load_dataset(DATA / "ppocr_calib" / "dataset.txt", ["x"], [(1, 3, 48, 192)], NORM)
    assert len(samples) == 8
    for s in samples:
        assert s["x"].shape == (1, 3, 48, 192) and s["x"].dtype == np.float32
        assert 0 <= s["x"].min() and s["x"].max() <= 255 and s["x"].std() > 1


def test_dataset_errors(tmp_path):
    np.save(tmp_path / "good.npy", np.zeros((1, 3, 4, 4), np.float32))
    np.save(tmp_path / "nhwc.npy", np.zeros((1, 4, 4, 3), np.float32))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "broken.npy").write_bytes(b"not an npy")
    cases = [
        ("good.npy\nmissing.npy\n", r"list.txt:2: missing.npy: no such file"),
        ("good.npy\n\nnhwc.npy\n", r"list.txt:3: nhwc.npy: shape \[1, 4, 4, 3\] does not "
                                   r"match the model input \[1, 3, 4, 4\]"),
        ("good.npy good.npy\n", r"list.txt:1: 2 path\(s\) for 1 model input"),
        ("# header\nbroken.jpg\n", r"list.txt:2: broken.jpg: cannot decode the image"),
        ("broken.npy\n", r"list.txt:1: broken.npy: not a readable .npy file"),
        ("# nothing\n", r"no calibration samples"),
    ]
    for text, expected in cases:
        (tmp_path / "list.txt").write_text(text)
        with pytest.raises(RkcError) as error:
            load_dataset(tmp_path / "list.txt", ["x"], [(1, 3, 4, 4)], RAW)
        assert re.search(expected, one_line(error)), (expected, str(error.value))
    with pytest.raises(RkcError, match="no such file or directory"):
        load_dataset(tmp_path / "nowhere.txt", ["x"], [(1, 3, 4, 4)], RAW)


def test_images_need_pillow(tmp_path, monkeypatch):
    (tmp_path / "a.png").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(RkcError, match=r"reading images needs Pillow: pip install 'rkc\[images\]'"):
        load_dataset(tmp_path, ["x"], [(1, 3, 4, 4)], RAW)


def test_parse_floats():
    assert parse_floats("127.5,127.5, 127.5") == (127.5, 127.5, 127.5)
    assert parse_floats("[0.5 1 2]") == (0.5, 1.0, 2.0)
    for bad in ["", "1,,x", "nan"]:
        with pytest.raises(RkcError):
            parse_floats(bad)


# ---------------------------------------------------------------------------
# normalisation inside the model
# ---------------------------------------------------------------------------
def test_add_normalization_matches_numpy_exactly():
    module = load_module(VENDOR / "resblock.onnx")
    raw = np.load(VENDOR / "test_input.npy").astype(np.float32)
    reference = run_module(module, {"input": (raw - 127.5) / 127.5})["output"]
    add_normalization(module, NORM)
    module.verify()
    # the same float32 ops in the same order: bit-identical
    np.testing.assert_array_equal(run_module(module, {"input": raw})["output"], reference)
    fn = main_function(module)
    first = list(fn.body.ops)[:4]
    assert [op.name for op in first] == ["nn.constant", "nn.sub", "nn.constant", "nn.div"]
    assert first[3].attributes["rkc.name"] == StringAttr("input_normalize")
    attrs = fn.arg_attrs.data[0]
    assert isinstance(attrs, DictionaryAttr)
    assert attrs.data["rkc.name"] == StringAttr("input")
    assert list(attrs.data["rkc.mean"].get_values()) == [127.5] * 3
    assert list(attrs.data["rkc.std"].get_values()) == [127.5] * 3
    reparsed = parse_ir(str(module))
    np.testing.assert_array_equal(run_module(reparsed, {"input": raw})["output"], reference)
    with pytest.raises(RkcError, match="already normalised"):
        add_normalization(module, NORM)


def test_add_normalization_per_channel_and_errors():
    module = load_module(VENDOR / "conv_relu.onnx")
    mean, std = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
    raw = np.random.default_rng(1).uniform(0, 255, (1, 3, 32, 32)).astype(np.float32)
    m32 = np.array(mean, np.float32).reshape(1, 3, 1, 1)
    s32 = np.array(std, np.float32).reshape(1, 3, 1, 1)
    name = input_names(main_function(module))[0]
    reference = run_module(module, {name: (raw - m32) / s32})
    add_normalization(module, Preprocess(mean, std))
    for key, value in run_module(module, {name: raw}).items():
        np.testing.assert_array_equal(value, reference[key])
    with pytest.raises(RkcError, match="mean has 2 values, input .* has 3 channels"):
        add_normalization(load_module(VENDOR / "conv_relu.onnx"), Preprocess((1.0, 2.0), None))
    untouched = load_module(VENDOR / "conv_relu.onnx")
    add_normalization(untouched, RAW)
    assert "nn.sub" not in str(untouched)


# ---------------------------------------------------------------------------
# observers
# ---------------------------------------------------------------------------
def observe(observer, batches):
    for batch in batches:
        observer.update(batch)
    if observer.needs_second_pass:
        observer.start_second_pass()
        for batch in batches:
            observer.update(batch)
    return observer.range()


def gaussian_with_outliers():
    rng = np.random.default_rng(42)
    data = rng.standard_normal(1_000_000).astype(np.float32)
    data[[10, 20_000]] = 40.0
    data[30_000] = -25.0
    return np.array_split(data, 8)


def test_minmax_exact():
    batches = [np.array([[0.5, -1.25]], np.float32), np.array([3.0, 2.0], np.float32)]
    assert observe(MinMaxObserver(), batches) == (-1.25, 3.0)
    assert observe(MinMaxObserver(), [np.array([2.0, 5.0])]) == (0.0, 5.0)  # holds 0
    assert observe(MinMaxObserver(), [np.array([-3.0, -1.0])]) == (-3.0, 0.0)
    assert observe(MinMaxObserver(), [np.array([1.0, np.inf, np.nan])]) == (0.0, 1.0)


def test_percentile_clips_outliers():
    batches = gaussian_with_outliers()
    lo, hi = observe(PercentileObserver(99.99), batches)
    assert -4.5 < lo < -3.0 and 3.0 < hi < 4.5
    data = np.concatenate(batches)
    np.testing.assert_allclose([lo, hi], np.percentile(data, [0.01, 99.99]), atol=0.05)


@pytest.mark.parametrize("observer", [KLObserver, MSEObserver])
def test_kl_mse_narrower_than_minmax(observer):
    batches = gaussian_with_outliers()
    full_lo, full_hi = observe(MinMaxObserver(), batches)
    lo, hi = observe(observer(), batches)
    assert full_lo <= lo <= 0 <= hi <= full_hi
    assert hi - lo < 0.5 * (full_hi - full_lo)
    assert hi > 2.5 and lo < -2.5  # the bulk of the distribution stays inside


@pytest.mark.parametrize("algorithm", ["minmax", "percentile", "kl", "mse"])
def test_observers_hold_zero_and_are_never_degenerate(algorithm):
    rng = np.random.default_rng(3)
    cases = [
        [np.full((4, 4), 2.5, np.float32)],  # constant
        [np.zeros((4, 4), np.float32)],  # all zeros
        [rng.uniform(3, 7, 10_000).astype(np.float32)],  # positive only
        [-rng.exponential(1.0, 10_000).astype(np.float32)],  # negative only
        [np.maximum(rng.standard_normal(50_000), 0).astype(np.float32)],  # relu-like
    ]
    for batches in cases:
        lo, hi = observe(make_observer(algorithm), batches)
        assert lo <= 0 <= hi and hi - lo > 0, (algorithm, lo, hi)
        assert lo >= min(0, min(b.min() for b in batches))
        assert hi <= max(0, max(b.max() for b in batches)) + 1e-6
    relu = np.maximum(rng.standard_normal(50_000), 0).astype(np.float32)
    assert observe(make_observer(algorithm), [relu])[0] == 0.0
    # data far from zero: [0, 7] holds an empty stretch that must not fool KL
    far = rng.uniform(3, 7, 100_000).astype(np.float32)
    assert observe(make_observer(algorithm), [far])[1] > 6.5


def test_make_observer_unknown():
    with pytest.raises(RkcError, match="unknown calibration algorithm 'fancy' .*minmax, "
                                       "percentile, kl, mse"):
        make_observer("fancy")
    assert isinstance(make_observer("kl_divergence"), KLObserver)  # rknn-toolkit2's names


def test_kl_divergences_match_direct_computation():
    rng = np.random.default_rng(5)
    hist = rng.integers(1, 100, 600).astype(np.float64)
    starts, stops, levels = np.array([0, 40, 100]), np.array([600, 400, 500]), 50
    fast = kl_divergences(hist, starts, stops, levels)
    for c, (i, j) in enumerate(zip(starts, stops, strict=True)):
        p = hist[i:j].copy()
        p[0] += hist[:i].sum()
        p[-1] += hist[j:].sum()
        groups = np.arange(j - i) * levels // (j - i)
        q = np.zeros_like(p)
        for g in range(levels):
            members = groups == g
            q[members] = hist[i:j][members].sum() / members.sum()
        p, q = p / p.sum(), q / q.sum()
        assert fast[c] == pytest.approx(np.sum(p * np.log(p / q)), rel=1e-9)


# ---------------------------------------------------------------------------
# calibration of a model
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def resblock_samples():
    return load_dataset(VENDOR / "dataset.txt", ["input"], [(1, 3, 32, 32)], NORM)


def op_named(module: ModuleOp, name: str):
    return next(op for op in main_function(module).walk()
                if op.attributes.get("rkc.name") == StringAttr(name))


@pytest.mark.parametrize("algorithm", ["minmax", "kl"])
def test_calibration_listeners_see_each_sample_once(resblock_samples, algorithm):
    """Extra listeners (GPTQ's Hessian collector) ride on the first run only, also when
    a histogram algorithm runs the dataset twice."""
    from xdsl.interpreter import Interpreter

    class CountConvs(Interpreter.Listener):
        count = 0

        def will_interpret_op(self, op, args):
            self.count += op.name == "nn.conv2d"

    module = load_module(VENDOR / "resblock.onnx")
    add_normalization(module, NORM)
    counter = CountConvs()
    calibrate(module, resblock_samples, algorithm, show_progress=False, listeners=[counter])
    convs = sum(op.name == "nn.conv2d" for op in main_function(module).walk())
    assert convs == 2 and counter.count == convs * len(resblock_samples) == 16


@pytest.mark.parametrize("algorithm", ["minmax", "kl"])
def test_calibrate_resblock(resblock_samples, algorithm):
    module = load_module(VENDOR / "resblock.onnx")
    add_normalization(module, NORM)
    calibrate(module, resblock_samples, algorithm, show_progress=False)
    fn = main_function(module)
    float_ops = [op for op in fn.walk() if op.name.startswith("nn.")
                 and op.name != "nn.constant"]
    assert len(float_ops) == 12
    for op in float_ops:
        lo, hi = value_range(op.results[0])
        assert lo <= 0 <= hi and lo < hi, op
    for op in fn.walk():
        if op.name == "nn.constant":
            assert RANGE_ATTR not in op.attributes
    ranges = read_ranges(module)
    assert ranges[fn.args[0]] == (0.0, 255.0)  # raw input, before the normalisation
    assert fn.arg_attrs.data[0].data["rkc.name"] == StringAttr("input")
    for relu in ("Relu_2", "Relu_6"):
        assert value_range(op_named(module, relu).results[0])[0] == 0.0
    normalized = value_range(op_named(module, "input_normalize").results[0])
    assert normalized == (-1.0, 1.0)
    if algorithm == "minmax":
        # rknn-toolkit2 2.5.0 reports max 2.0739 for this relu (docs/rknn-format.md)
        assert value_range(op_named(module, "Relu_2").results[0])[1] == pytest.approx(
            2.0739, abs=1e-4)
    reparsed = parse_ir(str(module))
    again = read_ranges(reparsed)
    assert len(again) == len(ranges) == 13
    by_name = {_label(v): r for v, r in again.items()}
    assert by_name == {_label(v): r for v, r in ranges.items()}


def _label(value) -> str:
    owner = value.owner
    name = owner.attributes.get("rkc.name") if hasattr(owner, "attributes") else None
    return name.data if name is not None else "<arg>"


def test_hand_edited_ranges_are_read_back(resblock_samples):
    module = load_module(VENDOR / "resblock.onnx")
    calibrate(module, resblock_samples[:2], show_progress=False)
    text = str(module)
    edited = re.sub(r'(rkc.name = "Relu_2", rkc.range = )array<f32: [^>]*>',
                    r"\1array<f32: 0.0, 1.5>", text)
    assert edited != text
    assert value_range(op_named(parse_ir(edited), "Relu_2").results[0]) == (0.0, 1.5)
    broken = parse_ir(edited.replace("array<f32: 0.0, 1.5>", "array<f32: 1.0>"))
    with pytest.raises(RkcError, match="Relu_2.*needs 2 values"):
        read_ranges(broken)
    swapped = parse_ir(edited.replace("array<f32: 0.0, 1.5>", "array<f32: 1.5, 0.0>"))
    with pytest.raises(RkcError, match="lo <= hi"):
        read_ranges(swapped)


def test_integer_results_get_no_range():
    module = toy_module([(1, 5)], ["x"], lambda args: [
        nn.ArgMaxOp(nn.ReluOp(args[0], "relu").output, axis=1, name="argmax").output])
    rng = np.random.default_rng(0)
    samples = [{"x": rng.standard_normal((1, 5)).astype(np.float32)} for _ in range(3)]
    calibrate(module, samples, "mse", show_progress=False)
    assert RANGE_ATTR not in op_named(module, "argmax").attributes
    assert value_range(op_named(module, "relu").results[0])[0] == 0.0
    with pytest.raises(RkcError, match="calibration sample 0: input 'x' has shape"):
        calibrate(module, [{"x": np.zeros((1, 4), np.float32)}], show_progress=False)


# ---------------------------------------------------------------------------
# progress bar
# ---------------------------------------------------------------------------
class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar():
    assert format_bar("calib", 3, 8, 0.41) == "calib [#######.............] 3/8 0.4s"
    log = io.StringIO()
    assert list(progress(range(8), 8, "calib", stream=log)) == list(range(8))
    assert re.fullmatch(r"calib \[#{20}\] 8/8 \d+\.\ds\n", log.getvalue())
    tty = FakeTTY()
    assert list(progress([1, 2], 2, "x", stream=tty)) == [1, 2]
    assert tty.getvalue().startswith("\rx [....................] 0/2")
    assert tty.getvalue().endswith("2/2 0.0s\n")
    quiet = io.StringIO()
    assert list(progress(range(3), 3, "x", enabled=False, stream=quiet)) == [0, 1, 2]
    assert quiet.getvalue() == ""
