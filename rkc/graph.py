"""Conventions for the modules rkc builds: one `func.func @main` whose arguments and
results carry the model's tensor names in the `rkc.name` argument/result attribute."""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, ModuleOp, StringAttr

from rkc.dialects.nn import NAME_ATTR
from rkc.errors import RkcError

ENTRY = "main"


def main_function(module: ModuleOp) -> func.FuncOp:
    """The module's entry function: `@main`, or its only function."""
    funcs = [op for op in module.ops if isinstance(op, func.FuncOp)]
    for f in funcs:
        if f.sym_name.data == ENTRY:
            return f
    if len(funcs) == 1:
        return funcs[0]
    raise RkcError(f"module has no func.func @{ENTRY} (found {len(funcs)} functions)")


def _names(attrs: ArrayAttr | None, fallbacks: list[str]) -> list[str]:
    names = []
    for i, fallback in enumerate(fallbacks):
        entry = attrs.data[i] if attrs is not None and i < len(attrs.data) else None
        name = entry.data.get(NAME_ATTR) if isinstance(entry, DictionaryAttr) else None
        names.append(name.data if isinstance(name, StringAttr) else fallback)
    return names


def input_names(fn: func.FuncOp) -> list[str]:
    """Names of the entry function's arguments: their `rkc.name`, else the SSA name
    (`%x` gives `x`), else `input0`, `input1`, ..."""
    fallbacks = [a.name_hint or f"input{i}" for i, a in enumerate(fn.args)]
    return _names(fn.arg_attrs, fallbacks)


def output_names(fn: func.FuncOp) -> list[str]:
    """Names of the entry function's results (`output0`, ... where unnamed)."""
    count = len(fn.function_type.outputs.data)
    return _names(fn.res_attrs, [f"output{i}" for i in range(count)])


def set_io_names(fn: func.FuncOp, inputs: Sequence[str], outputs: Sequence[str]) -> None:
    """Record model tensor names on the entry function's arguments and results."""
    fn.arg_attrs = ArrayAttr([DictionaryAttr({NAME_ATTR: StringAttr(n)}) for n in inputs])
    fn.res_attrs = ArrayAttr([DictionaryAttr({NAME_ATTR: StringAttr(n)}) for n in outputs])
