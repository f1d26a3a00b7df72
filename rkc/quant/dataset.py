"""Calibration datasets and input normalisation.

A dataset is a list of samples, each a dict from model-input name to a numpy array of
exactly that input's shape. `load_dataset` reads one from rknn-toolkit2's `dataset.txt`
format, a directory, or Python data. Values stay raw (e.g. 0..255 pixels): `mean` / `std`
are not applied here but become part of the model (`add_normalization`), as rknn-toolkit2
folds `mean_values` / `std_values` into the first layer.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    DictionaryAttr,
    ModuleOp,
    TensorType,
    f32,
)
from xdsl.ir import Attribute
from xdsl.rewriter import InsertPoint, Rewriter

from rkc.dialects import nn
from rkc.errors import RkcError
from rkc.graph import input_names, main_function

NPY_SUFFIXES = (".npy",)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
MEAN_ATTR = "rkc.mean"
STD_ATTR = "rkc.std"

Sample = Mapping[str, np.ndarray] | Sequence[np.ndarray] | np.ndarray


@dataclass(frozen=True)
class Preprocess:
    """What the deployed model does to its raw input (rknn-toolkit2's config).

    `mean` / `std`: per channel (or one value for all), folded into the model by
    `add_normalization`. `reverse_channels`: decode image files as BGR instead of RGB
    (rknn-toolkit2's `quant_img_RGB2BGR`); it does not touch .npy files.
    """

    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    reverse_channels: bool = False


def parse_floats(text: str) -> tuple[float, ...]:
    """`"127.5,127.5,127.5"` (commas and/or spaces) -> floats; bad text is an RkcError."""
    parts = [p for p in re.split(r"[,\s]+", text.strip().strip("[]")) if p]
    if not parts:
        raise RkcError(f"expected comma-separated numbers, got '{text}'")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise RkcError(f"expected comma-separated numbers, got '{text}'") from None
    if not all(math.isfinite(v) for v in values):
        raise RkcError(f"expected finite numbers, got '{text}'")
    return values


# ---------------------------------------------------------------------------
# reading samples
# ---------------------------------------------------------------------------
def load_dataset(source: str | os.PathLike | Iterable[Sample], input_names: Sequence[str],
                 input_shapes: Sequence[tuple[int, ...]],
                 preprocess: Preprocess) -> list[dict[str, np.ndarray]]:
    """Samples from a dataset.txt file, a directory of .npy / image files, a single such
    file, or an iterable of samples (name map, list in input order, or one array)."""
    names, shapes = list(input_names), [tuple(int(d) for d in s) for s in input_shapes]
    if len(names) != len(shapes):
        raise ValueError("input_names and input_shapes differ in length")
    if isinstance(source, str | os.PathLike):
        samples = _from_path(Path(source), names, shapes, preprocess)
        where = str(source)
    else:
        samples = [_from_python(s, i, names, shapes) for i, s in enumerate(source)]
        where = "the dataset"
    if not samples:
        raise RkcError(f"{where}: no calibration samples")
    return samples


def _from_path(path: Path, names: list[str], shapes: list[tuple[int, ...]],
               preprocess: Preprocess) -> list[dict[str, np.ndarray]]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir()
                       if p.is_file() and p.suffix.lower() in NPY_SUFFIXES + IMAGE_SUFFIXES)
        if len(names) != 1 and files:
            raise RkcError(f"{path}: a directory dataset needs a single-input model, this one "
                           f"has {len(names)} inputs ({', '.join(names)}); use a dataset.txt "
                           f"with one path per input on each line")
        return [{names[0]: read_array(f, shapes[0], preprocess, str(f))} for f in files]
    if not path.is_file():
        raise RkcError(f"{path}: no such file or directory")
    if path.suffix.lower() in NPY_SUFFIXES + IMAGE_SUFFIXES:
        if len(names) != 1:
            raise RkcError(f"{path}: a single data file needs a single-input model")
        return [{names[0]: read_array(path, shapes[0], preprocess, str(path))}]
    return _from_list_file(path, names, shapes, preprocess)


_COMMENT = re.compile(r"(^|\s)#.*$")


def _from_list_file(path: Path, names: list[str], shapes: list[tuple[int, ...]],
                    preprocess: Preprocess) -> list[dict[str, np.ndarray]]:
    """rknn-toolkit2's dataset.txt: one sample per line, one path per input."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise RkcError(f"{path}: cannot read the dataset list ({e})") from None
    samples = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = _COMMENT.sub("", line).split()
        if not fields:
            continue
        where = f"{path}:{number}"
        if len(fields) != len(names):
            raise RkcError(f"{where}: {len(fields)} path(s) for {len(names)} model input(s) "
                           f"({', '.join(names)})")
        sample = {}
        for name, shape, field in zip(names, shapes, fields, strict=True):
            file = Path(field) if os.path.isabs(field) else path.parent / field
            sample[name] = read_array(file, shape, preprocess, f"{where}: {field}")
        samples.append(sample)
    return samples


def _from_python(sample: Sample, index: int, names: list[str],
                 shapes: list[tuple[int, ...]]) -> dict[str, np.ndarray]:
    where = f"sample {index}"
    if isinstance(sample, Mapping):
        unknown = sorted(set(sample) - set(names))
        missing = [n for n in names if n not in sample]
        if unknown or missing:
            problem = f"unknown input '{unknown[0]}'" if unknown else \
                f"missing input '{missing[0]}'"
            raise RkcError(f"{where}: {problem}; the model's inputs are {', '.join(names)}")
        values = [sample[n] for n in names]
    elif isinstance(sample, np.ndarray):
        values = [sample]
    else:
        values = list(sample)
    if len(values) != len(names):
        raise RkcError(f"{where}: {len(values)} array(s) for {len(names)} model input(s) "
                       f"({', '.join(names)})")
    return {n: fit_shape(np.asarray(v), s, f"{where}, input '{n}'")
            for n, v, s in zip(names, values, shapes, strict=True)}


def fit_shape(array: np.ndarray, shape: tuple[int, ...], where: str) -> np.ndarray:
    """`array` reshaped to `shape` when they differ only by leading size-1 dimensions
    (e.g. CHW for a 1xCxHxW input); anything else is an RkcError."""
    if array.shape == shape:
        return array
    if _strip_ones(array.shape) == _strip_ones(shape):
        return array.reshape(shape)
    raise RkcError(f"{where}: shape {list(array.shape)} does not match the model input "
                   f"{list(shape)} (arrays must be NCHW)")


def _strip_ones(shape: tuple[int, ...]) -> tuple[int, ...]:
    i = 0
    while i < len(shape) and shape[i] == 1:
        i += 1
    return shape[i:]


def read_array(file: Path, shape: tuple[int, ...], preprocess: Preprocess,
               where: str) -> np.ndarray:
    """One input tensor from a .npy file (raw values, NCHW) or an image file."""
    if not file.is_file():
        raise RkcError(f"{where}: no such file")
    if file.suffix.lower() in IMAGE_SUFFIXES:
        return read_image(file, shape, preprocess.reverse_channels, where)
    try:
        array = np.load(file, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise RkcError(f"{where}: not a readable .npy file ({_first_line(e)})") from None
    return fit_shape(array, shape, where)


def read_image(file: Path, shape: tuple[int, ...], reverse_channels: bool,
               where: str) -> np.ndarray:
    """Decode an image as float32 [1, C, H, W] with raw 0..255 values, resized
    (bilinear) to the input's H x W; C is 3 (RGB, or BGR with `reverse_channels`) or 1."""
    try:
        from PIL import Image
    except ImportError:
        raise RkcError("reading images needs Pillow: pip install 'rkc[images]'") from None
    if len(shape) != 4 or shape[0] != 1 or shape[1] not in (1, 3):
        raise RkcError(f"{where}: an image needs a 1x3xHxW or 1x1xHxW model input, this one "
                       f"is {list(shape)}")
    _, channels, height, width = shape
    try:
        with Image.open(file) as image:
            image = image.convert("RGB" if channels == 3 else "L")
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise RkcError(f"{where}: cannot decode the image ({_first_line(e)})") from None
    if channels == 1:
        return pixels[None, None]
    if reverse_channels:
        pixels = pixels[:, :, ::-1]
    return np.ascontiguousarray(pixels.transpose(2, 0, 1)[None])


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# ---------------------------------------------------------------------------
# normalisation inside the model
# ---------------------------------------------------------------------------
def add_normalization(module: ModuleOp, preprocess: Preprocess) -> None:
    """Make the entry function take raw input: every 4-D float argument `x` becomes
    `(x - mean) / std` (nn.sub then nn.div by [1, C, 1, 1] constants) at the start of
    the function, and the argument's attributes record `rkc.mean` / `rkc.std`.

    The ops compute what numpy computes for `(x - mean) / std` in float32, bit for bit.
    Inputs of other ranks are left alone. `mean` / `std` need one value or one per
    channel (axis 1). Without mean and std this does nothing."""
    if preprocess.mean is None and preprocess.std is None:
        return
    fn = main_function(module)
    names = input_names(fn)
    targets = [i for i, a in enumerate(fn.args) if _is_float_4d(a.type)]
    if not targets:
        raise RkcError("mean/std given, but the model has no 4-D float input")
    attrs = arg_attr_dicts(fn)
    for i in targets:
        if MEAN_ATTR in attrs[i] or STD_ATTR in attrs[i]:
            raise RkcError(f"input '{names[i]}' is already normalised inside the model")
    for i in targets:
        arg = fn.args[i]
        assert isinstance(arg.type, TensorType)
        channels = arg.type.get_shape()[1]
        mean = _per_channel(preprocess.mean, channels, "mean", names[i])
        std = _per_channel(preprocess.std, channels, "std", names[i])
        if std is not None and not np.all(std != 0):
            raise RkcError(f"std for input '{names[i]}' contains 0")
        _insert_normalization(fn, i, names[i], mean, std)
        if mean is not None:
            attrs[i][MEAN_ATTR] = DenseArrayBase.from_list(f32, [float(v) for v in mean])
        if std is not None:
            attrs[i][STD_ATTR] = DenseArrayBase.from_list(f32, [float(v) for v in std])
    fn.arg_attrs = ArrayAttr([DictionaryAttr(d) for d in attrs])


def _is_float_4d(t: Attribute) -> bool:
    if not isinstance(t, TensorType) or len(t.get_shape()) != 4:
        return False
    try:
        return nn.numpy_dtype(t.get_element_type()).kind == "f"
    except nn.ShapeError:
        return False


def arg_attr_dicts(fn: func.FuncOp) -> list[dict[str, Attribute]]:
    """The argument attribute dictionaries of `fn`, as mutable dicts (one per argument)."""
    old = fn.arg_attrs.data if fn.arg_attrs is not None else ()
    return [dict(old[i].data) if i < len(old) and isinstance(old[i], DictionaryAttr) else {}
            for i in range(len(fn.args))]


def _per_channel(values: tuple[float, ...] | None, channels: int, what: str,
                 name: str) -> np.ndarray | None:
    if values is None:
        return None
    if len(values) not in (1, channels):
        raise RkcError(f"{what} has {len(values)} values, input '{name}' has {channels} "
                       f"channels (give 1 or {channels})")
    return np.broadcast_to(np.asarray(values, dtype=np.float32), (channels,)).copy()


def _insert_normalization(fn: func.FuncOp, index: int, name: str, mean: np.ndarray | None,
                          std: np.ndarray | None) -> None:
    arg = fn.args[index]
    assert isinstance(arg.type, TensorType)
    dtype = nn.numpy_dtype(arg.type.get_element_type())
    ops = []
    value = arg
    if mean is not None:
        const = nn.ConstantOp(mean.astype(dtype).reshape(1, -1, 1, 1), f"{name}_mean")
        sub = nn.SubOp(value, const.output, f"{name}_normalize_sub")
        ops += [const, sub]
        value = sub.output
    if std is not None:
        const = nn.ConstantOp(std.astype(dtype).reshape(1, -1, 1, 1), f"{name}_std")
        div = nn.DivOp(value, const.output, f"{name}_normalize")
        ops += [const, div]
        value = div.output
    first_new = ops[1]
    arg.replace_uses_with_if(value, lambda use: use.operation is not first_new)
    Rewriter.insert_op(ops, InsertPoint.at_start(fn.body.block))
