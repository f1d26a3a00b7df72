"""Reference interpreter: runs `nn` modules on numpy arrays (xDSL's interpreter)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.interpreter import Interpreter
from xdsl.ir import Operation

from rkc.dialects import nn
from rkc.errors import RkcError
from rkc.graph import input_names, main_function, output_names
from rkc.interpreter.func_impls import FuncFunctions


def make_interpreter(module: ModuleOp,
                     listeners: Sequence[Interpreter.Listener] = ()) -> Interpreter:
    """An interpreter that knows func, every `nn` op (float, or with the integer semantics
    of docs/quantization.md when quantized) and the `quant` ops."""
    from rkc.interpreter.quant_impls import NNQuantFunctions
    from rkc.interpreter.rknpu_impls import RknpuFunctions

    interp = Interpreter(module, listeners=tuple(listeners))
    interp.register_implementations(FuncFunctions())
    interp.register_implementations(NNQuantFunctions())
    interp.register_implementations(RknpuFunctions())
    return interp


def _check_input(name: str, value: np.ndarray, expected: TensorType) -> np.ndarray:
    shape = tuple(expected.get_shape())
    dtype = nn.numpy_dtype(expected.get_element_type())
    value = np.asarray(value)
    if value.shape != shape:
        raise RkcError(f"input '{name}' has shape {list(value.shape)}, the model expects "
                       f"{list(shape)}")
    if value.dtype != dtype:
        if not np.can_cast(value.dtype, dtype, casting="same_kind"):
            raise RkcError(f"input '{name}' has dtype {value.dtype}, the model expects {dtype}")
        value = value.astype(dtype)
    return value


def order_inputs(module: ModuleOp,
                 inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray]) -> list[np.ndarray]:
    """The entry function's arguments, checked against its types, from a name map or a
    positional list."""
    fn = main_function(module)
    names = input_names(fn)
    types = fn.function_type.inputs.data
    if isinstance(inputs, Mapping):
        unknown = sorted(set(inputs) - set(names))
        if unknown:
            raise RkcError(f"unknown input '{unknown[0]}'; the model's inputs are "
                           f"{', '.join(names)}")
        missing = [n for n in names if n not in inputs]
        if missing:
            raise RkcError(f"missing input '{missing[0]}' (shape "
                           f"{list(types[names.index(missing[0])].get_shape())})")
        values = [inputs[n] for n in names]
    else:
        if len(inputs) != len(names):
            raise RkcError(f"the model takes {len(names)} inputs, got {len(inputs)}")
        values = list(inputs)
    return [_check_input(n, v, t) for n, v, t in zip(names, values, types, strict=True)]


def run_module(module: ModuleOp, inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray],
               listeners: Sequence[Interpreter.Listener] = ()) -> dict[str, np.ndarray]:
    """Interpret the module's entry function; outputs keyed by output name."""
    fn = main_function(module)
    args = order_inputs(module, inputs)
    results = make_interpreter(module, listeners).call_op(fn.sym_name.data, tuple(args))
    return dict(zip(output_names(fn), (np.asarray(r) for r in results), strict=True))


def evaluate_op(op: Operation, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run a single `nn` or `quant` op on numpy operand values (used by constant
    folding); quantized values are arrays of their storage dtype."""
    from rkc.interpreter.quant_impls import NNQuantFunctions

    interp = Interpreter(ModuleOp([]))
    interp.register_implementations(NNQuantFunctions())
    return [np.asarray(r) for r in interp.run_op(op, tuple(inputs))]
