"""Copy the regcmd and task buffers out of vendor .rknn files into tests/data/vendor/regcmd/.

Usage: python tools/extract_vendor_regcmd.py FILE.rknn... [--out DIR]
Writes DIR/<stem>.regcmd.bin and DIR/<stem>.task.bin for each file (DIR defaults to
tests/data/vendor/regcmd). This ran once on the rknn-toolkit2 2.5.0 fixtures
(/work/shared/fixtures/vendor-rknn/rknn/{conv_relu,resblock,mobilenet}_{rk3588,rk3568}_int8
.rknn); the tests read only the copies.

A minimal reader of the container (rknn-format.md §4), enough for these two buffers:
"RKNN" magic, u64 format version at 8, u64 FlatBuffer length L at 16, the FlatBuffer at
64. Its root table's slot 2 holds the graphs and slot 20 the buffers (tables whose slot 0
is a [ubyte] vector); graph slot 0 holds the tensors, whose slot 2 is the kind (9 regcmd,
10 task), slot 5 the name and slot 18 the buffer index. The full reader is
rkc.backends.rknn_file.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "vendor" / "regcmd"
KIND_REGCMD, KIND_TASK = 9, 10


class _Table:
    """A FlatBuffer table at `pos` of `buf`: scalar, string, vector and table slots."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos
        vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        size = struct.unpack_from("<H", buf, vtable)[0]
        self.slots = struct.unpack_from(f"<{(size - 4) // 2}H", buf, vtable + 4)

    def _at(self, slot: int) -> int | None:
        if slot >= len(self.slots) or not self.slots[slot]:
            return None
        return self.pos + self.slots[slot]

    def scalar(self, slot: int, fmt: str) -> int | None:
        at = self._at(slot)
        return None if at is None else struct.unpack_from(fmt, self.buf, at)[0]

    def _ref(self, slot: int) -> int | None:
        at = self._at(slot)
        return None if at is None else at + struct.unpack_from("<I", self.buf, at)[0]

    def vector(self, slot: int) -> tuple[int, int]:
        at = self._ref(slot)
        if at is None:
            return 0, 0
        return at + 4, struct.unpack_from("<I", self.buf, at)[0]

    def bytes(self, slot: int) -> bytes:
        start, n = self.vector(slot)
        return self.buf[start:start + n]

    def tables(self, slot: int) -> list[_Table]:
        start, n = self.vector(slot)
        return [_Table(self.buf, start + 4 * k + struct.unpack_from("<I", self.buf,
                                                                    start + 4 * k)[0])
                for k in range(n)]


def regcmd_and_tasks(path: Path) -> tuple[bytes, bytes]:
    """The regcmd and task buffers of one .rknn file (format 6 with a buffers slot)."""
    data = path.read_bytes()
    if data[:4] != b"RKNN":
        raise SystemExit(f"{path}: not an .rknn file")
    length = struct.unpack_from("<Q", data, 16)[0]
    flat = data[64:64 + length]
    model = _Table(flat, struct.unpack_from("<I", flat, 0)[0])
    buffers = model.tables(20)
    found: dict[int, bytes] = {}
    for tensor in model.tables(2)[0].tables(0):
        kind = tensor.scalar(2, "<B")
        if kind in (KIND_REGCMD, KIND_TASK):
            found[kind] = buffers[tensor.scalar(18, "<I")].bytes(0)
    if set(found) != {KIND_REGCMD, KIND_TASK}:
        raise SystemExit(f"{path}: no regcmd/task tensors in the buffers slot")
    return found[KIND_REGCMD], found[KIND_TASK]


def main(argv: list[str]) -> int:
    out = OUT
    if "--out" in argv:
        i = argv.index("--out")
        out = Path(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    out.mkdir(parents=True, exist_ok=True)
    for name in argv:
        path = Path(name)
        regcmd, tasks = regcmd_and_tasks(path)
        (out / f"{path.stem}.regcmd.bin").write_bytes(regcmd)
        (out / f"{path.stem}.task.bin").write_bytes(tasks)
        print(f"{path.stem}: {len(regcmd)} B regcmd ({len(regcmd) // 8} words), "
              f"{len(tasks)} B tasks ({len(tasks) // 40} records)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
