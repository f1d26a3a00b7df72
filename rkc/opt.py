"""`rkc-opt`: run rkc passes on textual IR, like `mlir-opt`.

Knows the `nn` dialect, rkc's passes, xDSL's cse/dce/canonicalize and every plugin's
dialects and passes. User errors (bad IR text, an op that does not verify, a bad pass
pipeline) print one line `rkc-opt: FILE:LINE:COL: error: ...` and exit with code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from xdsl.utils.exceptions import DiagnosticException, ParseError, VerifyException
from xdsl.xdsl_opt_main import xDSLOptMain

from rkc.errors import RkcError
from rkc.registry import all_universe


class RkcOptMain(xDSLOptMain):
    version_format = "rkc-opt (built on xdsl {xdsl_version})"

    def __init__(self, args: Sequence[str] | None = None):
        self._universe = all_universe()
        super().__init__(description="rkc modular optimizer driver", args=args)

    def register_all_dialects(self):
        for name, factory in self._universe.all_dialects.items():
            self.ctx.register_dialect(name, factory)

    def register_all_passes(self):
        for name, factory in self._universe.all_passes.items():
            self.register_pass(name, factory)

    def register_all_targets(self):
        super().register_all_targets()
        self.available_targets.update(self._universe.all_targets)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def describe_error(e: Exception) -> str:
    """A one-line message for a user error raised while parsing or verifying IR."""
    if isinstance(e, ParseError):
        loc = e.span.get_location()
        return f"{loc.file}:{loc.line}:{loc.col}: error: {_one_line(e.msg)}"
    if isinstance(e, VerifyException | DiagnosticException):
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return f"error: {_one_line(first)}"
    return f"error: {_one_line(str(e))}"


def main(args: Sequence[str] | None = None) -> None:
    try:
        tool = RkcOptMain(args=args)
        tool.run()
    except (ValueError, RkcError) as e:  # bad -p spec, unknown pass option, plugin errors
        print(f"rkc-opt: error: {_one_line(str(e))}", file=sys.stderr)
        sys.exit(2)
    except (ParseError, DiagnosticException) as e:
        print(f"rkc-opt: {describe_error(e)}", file=sys.stderr)
        sys.exit(2)
    except FileNotFoundError as e:
        print(f"rkc-opt: error: cannot open {e.filename}: {e.strerror}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
