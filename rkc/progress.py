"""A tiny progress bar on stderr, without dependencies.

`for x in progress(items, len(items), "calibrate"): ...` prints
`calibrate [########............] 3/8 0.4s`, redrawn in place when stderr is a terminal and
written once, when the loop ends, otherwise (logs stay one line per loop).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")

WIDTH = 20
_REDRAW_SECONDS = 0.05


def format_bar(label: str, done: int, total: int | None, seconds: float) -> str:
    """`label [####......] done/total 1.2s` (no bar when the total is unknown)."""
    if total:
        filled = min(WIDTH, WIDTH * done // total)
        bar = f"[{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{total}"
    else:
        bar = f"{done}"
    return f"{label} {bar} {seconds:.1f}s" if label else f"{bar} {seconds:.1f}s"


def progress(iterable: Iterable[T], total: int | None = None, label: str = "", *,
             enabled: bool = True, stream: TextIO | None = None) -> Iterator[T]:
    """Yield the items of `iterable` while showing a progress bar on `stream` (stderr)."""
    if not enabled:
        yield from iterable
        return
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    out = sys.stderr if stream is None else stream
    isatty = getattr(out, "isatty", None)
    tty = bool(isatty()) if callable(isatty) else False
    start = last = time.perf_counter()
    done = 0
    if tty:
        out.write("\r" + format_bar(label, 0, total, 0.0))
        out.flush()
    try:
        for item in iterable:
            yield item
            done += 1
            now = time.perf_counter()
            if tty and now - last >= _REDRAW_SECONDS:
                last = now
                out.write("\r" + format_bar(label, done, total, now - start))
                out.flush()
    finally:
        line = format_bar(label, done, total, time.perf_counter() - start)
        out.write(("\r" + line if tty else line) + "\n")
        out.flush()
