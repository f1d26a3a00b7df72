"""Calibration: activation ranges from a dataset, written into the IR.

`calibrate` runs the float interpreter over the samples and observes the entry
function's arguments and every op result (constants excluded). Each op with float
tensor results gets `rkc.range = array<f32: lo0, hi0, lo1, hi1, ...>` (two values per
result, in result order); each float argument gets `rkc.range` in its argument
attribute dictionary:

    func.func @main(%x: tensor<1x3x32x32xf32> {rkc.name = "x", rkc.range = array<f32: 0.0, 255.0>})
    %3 = nn.relu %2 {rkc.name = "Relu_2", rkc.range = array<f32: 0.0, 2.07>} : ...

The ranges are plain attributes: they survive print -> parse and may be edited by hand;
`read_ranges` / `value_range` read back whatever is written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    DictionaryAttr,
    Float32Type,
    Float64Type,
    ModuleOp,
    StringAttr,
    TensorType,
    f32,
)
from xdsl.interpreter import Interpreter, PythonValues
from xdsl.ir import Attribute, BlockArgument, Operation, OpResult, SSAValue
from xdsl.traits import ConstantLike

from rkc.dialects import nn
from rkc.errors import RkcError
from rkc.graph import input_names, main_function
from rkc.interpreter import make_interpreter, order_inputs
from rkc.progress import progress
from rkc.quant.dataset import arg_attr_dicts
from rkc.quant.observers import Observer, make_observer

RANGE_ATTR = "rkc.range"


def is_float_tensor(t: Attribute) -> bool:
    """Whether `t` is a tensor of a float element type (f16, f32, f64)."""
    if not isinstance(t, TensorType):
        return False
    try:
        return nn.numpy_dtype(t.get_element_type()).kind == "f"
    except nn.ShapeError:
        return False


def observed_ops(fn: func.FuncOp) -> list[Operation]:
    """The ops of `fn` that calibration gives ranges: non-constant, float results only."""
    return [op for op in fn.walk() if op is not fn and op.results
            and not op.has_trait(ConstantLike)
            and all(is_float_tensor(r.type) for r in op.results)]


class _Observe(Interpreter.Listener):
    """Feeds every interpreted op's results to that op's observers."""

    def __init__(self, table: Mapping[Operation, list[Observer]]):
        self.table = table

    def did_interpret_op(self, op: Operation, results: PythonValues) -> None:
        observers = self.table.get(op)
        if observers is not None:
            for observer, value in zip(observers, results, strict=True):
                observer.update(value)


def calibrate(module: ModuleOp, samples: Sequence[Mapping[str, np.ndarray]],
              algorithm: str = "minmax", show_progress: bool = True,
              listeners: Sequence[Interpreter.Listener] = ()) -> None:
    """Observe the entry function on every sample and write `rkc.range` attributes
    (replacing earlier ones). Histogram algorithms run the dataset twice; `listeners`
    also see the first run (each sample exactly once)."""
    make_observer(algorithm)  # an unknown name fails before any work
    samples = list(samples)  # read twice by the histogram algorithms
    if not samples:
        raise RkcError("calibration needs at least one sample")
    fn = main_function(module)
    arg_observers = [make_observer(algorithm) if is_float_tensor(a.type) else None
                     for a in fn.args]
    table = {op: [make_observer(algorithm) for _ in op.results] for op in observed_ops(fn)}
    everything = [o for o in arg_observers if o] + [o for obs in table.values() for o in obs]
    passes = 2 if any(o.needs_second_pass for o in everything) else 1
    for number in range(passes):
        interpreter = make_interpreter(module, [_Observe(table),
                                                *(listeners if number == 0 else ())])
        label = "calibrate" if passes == 1 else f"calibrate {number + 1}/{passes}"
        for index, sample in enumerate(progress(samples, len(samples), label,
                                                enabled=show_progress)):
            try:
                args = order_inputs(module, sample)
            except RkcError as e:
                raise RkcError(f"calibration sample {index}: {e}") from None
            for observer, arg in zip(arg_observers, args, strict=True):
                if observer is not None:
                    observer.update(arg)
            interpreter.call_op(fn.sym_name.data, tuple(args))
        if number == 0:
            for observer in everything:
                observer.start_second_pass()
    attrs = arg_attr_dicts(fn)
    for i, observer in enumerate(arg_observers):
        if observer is not None:
            attrs[i][RANGE_ATTR] = range_attr([observer.range()])
    fn.arg_attrs = ArrayAttr([DictionaryAttr(d) for d in attrs])
    for op, observers in table.items():
        op.attributes[RANGE_ATTR] = range_attr([o.range() for o in observers])


def range_attr(ranges: Sequence[tuple[float, float]]) -> DenseArrayBase:
    """`array<f32: lo0, hi0, lo1, hi1, ...>`."""
    return DenseArrayBase.from_list(f32, [float(v) for pair in ranges for v in pair])


def read_ranges(module: ModuleOp) -> dict[SSAValue, tuple[float, float]]:
    """Every range written in the entry function: arguments and op results."""
    fn = main_function(module)
    ranges: dict[SSAValue, tuple[float, float]] = {}
    values: list[SSAValue] = list(fn.args)
    values += [r for op in fn.walk() if op is not fn for r in op.results]
    for value in values:
        found = value_range(value)
        if found is not None:
            ranges[value] = found
    return ranges


def value_range(value: SSAValue) -> tuple[float, float] | None:
    """The calibrated range of a function argument or op result, None if it has none.
    A malformed attribute (wrong count, not floats, lo > hi) is an RkcError."""
    if isinstance(value, OpResult):
        op = value.op
        attr = op.attributes.get(RANGE_ATTR)
        if attr is None:
            return None
        return _decode(attr, len(op.results), _op_label(op))[value.index]
    if isinstance(value, BlockArgument):
        owner = value.block.parent_op()
        if not isinstance(owner, func.FuncOp) or owner.arg_attrs is None:
            return None
        entries = owner.arg_attrs.data
        entry = entries[value.index] if value.index < len(entries) else None
        if not isinstance(entry, DictionaryAttr) or RANGE_ATTR not in entry.data:
            return None
        name = input_names(owner)[value.index]
        return _decode(entry.data[RANGE_ATTR], 1, f"argument '{name}'")[0]
    return None


def _op_label(op: Operation) -> str:
    name = op.attributes.get(nn.NAME_ATTR)
    return f"{op.name} '{name.data}'" if isinstance(name, StringAttr) else op.name


def _decode(attr: Attribute, count: int, where: str) -> list[tuple[float, float]]:
    if not isinstance(attr, DenseArrayBase) or not isinstance(
            attr.elt_type, Float32Type | Float64Type):
        raise RkcError(f"{where}: {RANGE_ATTR} must be array<f32: lo, hi, ...>, got {attr}")
    values = [float(v) for v in attr.get_values()]
    if len(values) != 2 * count:
        raise RkcError(f"{where}: {RANGE_ATTR} needs {2 * count} values (lo, hi per result), "
                       f"got {len(values)}")
    pairs = list(zip(values[::2], values[1::2], strict=True))
    for lo, hi in pairs:
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise RkcError(f"{where}: {RANGE_ATTR} [{lo}, {hi}] is not a finite range "
                           f"with lo <= hi")
    return pairs
