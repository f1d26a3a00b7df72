"""Loading models and IR files into `nn` modules, whatever their format."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser
from xdsl.utils.exceptions import ParseError, VerifyException

from rkc.errors import RkcError
from rkc.registry import make_context

IR_SUFFIXES = (".mlir",)
ONNX_SUFFIXES = (".onnx",)


def parse_ir(text: str, source: str = "<string>") -> ModuleOp:
    """Parse and verify textual IR; errors become one-line RkcErrors with a location."""
    from rkc.opt import describe_error

    try:
        module = Parser(make_context(), text, source).parse_module()
        module.verify()
    except (ParseError, VerifyException) as e:
        raise RkcError(describe_error(e).removeprefix("error: ")) from None
    return module


def load_module(path: str | Path,
                input_shapes: Mapping[str, Sequence[int]] | None = None) -> ModuleOp:
    """An `nn` module from an ONNX model or a textual IR file."""
    path = Path(path)
    if not path.is_file():
        raise RkcError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in ONNX_SUFFIXES:
        from rkc.frontend.onnx import import_onnx

        return import_onnx(path, input_shapes)
    if suffix in IR_SUFFIXES:
        if input_shapes:
            raise RkcError("--input-shape applies to ONNX models, not to IR files")
        return parse_ir(path.read_text(), str(path))
    raise RkcError(f"{path}: unknown model format '{suffix}' (expected "
                   f"{', '.join(ONNX_SUFFIXES + IR_SUFFIXES)})")
