"""A small FlatBuffer reader and builder (tables, vtables, vectors, strings, scalars).

The reader is for untrusted input. Invariants:
- every offset is checked against the buffer before it is followed; a bad one raises
  `FlatBufferError` naming the byte offset (relative to `origin`, e.g. the position of the
  FlatBuffer inside a file) and what is wrong, never IndexError or struct.error;
- a vector's length is checked against the bytes left in the buffer before anything is
  allocated, so nothing read is larger than the buffer;
- every string, vector and table read is charged to a budget proportional to the buffer size,
  so offsets that point many times at the same data (a hostile file's way to make a small
  file decode into a huge object) stop with an error instead of exhausting memory;
- the reader follows a schema given by its caller (no generic recursion), so it cannot loop.

The builder lays a buffer out front to back: the root offset (and file identifier), then each
table preceded by its vtable, then the table's strings, vectors and sub-tables after it, so
that every uoffset points forward as the format requires. Scalars are aligned to their size,
vectors to their element size (byte vectors to `Bytes.align`), relative to the buffer start;
a buffer placed at an 8-aligned file offset keeps these alignments. Identical vtables are
shared.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rkc.errors import RkcError

# Python objects made per table or vector element cost more than their bytes: charge each
# table this many bytes against the budget.
TABLE_CHARGE = 32


class FlatBufferError(RkcError):
    """A FlatBuffer that cannot be read: the message names the byte offset and the problem."""


class FlatBufferReader:
    """Bounds-checked access to one FlatBuffer held in `data`.

    `origin` is added to every byte offset in error messages (the buffer's position in its
    file). `budget` bounds the bytes of strings, vectors and tables handed out (default: 8x
    the buffer size plus 64 KiB)."""

    def __init__(self, data: bytes | bytearray | memoryview, origin: int = 0,
                 budget: int | None = None) -> None:
        self.data = bytes(data)
        self.size = len(self.data)
        self.origin = origin
        self.budget = 8 * self.size + 65536 if budget is None else budget

    # -- low level ------------------------------------------------------------------------

    def fail(self, pos: int, message: str) -> FlatBufferError:
        return FlatBufferError(f"byte {self.origin + pos}: {message}")

    def need(self, pos: int, n: int, what: str) -> None:
        """Raise unless bytes [pos, pos + n) lie inside the buffer."""
        if pos < 0 or n < 0 or pos + n > self.size:
            raise self.fail(pos, f"{what} ({n} bytes) runs past the end of the "
                                 f"{self.size}-byte buffer")

    def charge(self, n: int, pos: int) -> None:
        self.budget -= n
        if self.budget < 0:
            raise self.fail(pos, "decoded data exceeds 8x the buffer size "
                                 "(offsets pointing at the same data many times?)")

    def unpack(self, fmt: str, pos: int, what: str):
        size = struct.calcsize(fmt)
        self.need(pos, size, what)
        return struct.unpack_from(fmt, self.data, pos)[0]

    def uoffset_target(self, pos: int, what: str) -> int:
        """The position a uoffset stored at `pos` points at (checked to lie in the buffer)."""
        target = pos + self.unpack("<I", pos, f"offset to {what}")
        if target >= self.size:
            raise self.fail(pos, f"offset to {what} points at byte {self.origin + target}, "
                                 f"past the end of the buffer")
        return target

    # -- entry points ---------------------------------------------------------------------

    def identifier(self) -> bytes:
        self.need(0, 8, "root offset and file identifier")
        return self.data[4:8]

    def root(self, name: str = "root") -> Table:
        return self.table_at(self.uoffset_target(0, f"the {name} table"), name)

    def table_at(self, pos: int, what: str) -> Table:
        soffset = self.unpack("<i", pos, f"{what}'s vtable offset")
        vtable = pos - soffset
        vtable_size = self.unpack("<H", vtable, f"{what}'s vtable") if 0 <= vtable else -1
        if vtable < 0 or vtable_size < 4 or vtable_size % 2:
            raise self.fail(pos, f"{what} has a bad vtable (at byte {self.origin + vtable}, "
                                 f"size {vtable_size})")
        self.need(vtable, vtable_size, f"{what}'s vtable")
        table_size = struct.unpack_from("<H", self.data, vtable + 2)[0]
        if table_size < 4:
            raise self.fail(vtable, f"{what}'s vtable gives a table size of {table_size}")
        self.need(pos, table_size, what)
        self.charge(TABLE_CHARGE + vtable_size, pos)
        return Table(self, pos, vtable, vtable_size, table_size, what)


@dataclass(frozen=True)
class Table:
    """One table of a FlatBuffer; slots are numbered from 0 as in the schema."""

    reader: FlatBufferReader
    pos: int
    vtable: int
    vtable_size: int
    table_size: int
    what: str

    def slot_count(self) -> int:
        return (self.vtable_size - 4) // 2

    def present_slots(self) -> list[int]:
        """The slots whose fields are stored (offsets checked as in `field_pos`)."""
        offsets = struct.unpack_from(f"<{self.slot_count()}H", self.reader.data,
                                     self.vtable + 4)
        present = [slot for slot, offset in enumerate(offsets) if offset]
        for slot in present:
            self.field_pos(slot)
        return present

    def field_pos(self, slot: int) -> int | None:
        """Where the field of `slot` is stored, None when absent (default value)."""
        if slot >= self.slot_count():
            return None
        offset = struct.unpack_from("<H", self.reader.data, self.vtable + 4 + 2 * slot)[0]
        if offset == 0:
            return None
        if offset < 4 or offset >= self.table_size:
            raise self.reader.fail(self.vtable + 4 + 2 * slot,
                                   f"{self.what} slot {slot}: field offset {offset} lies "
                                   f"outside the {self.table_size}-byte table")
        return self.pos + offset

    def _name(self, slot: int) -> str:
        return f"{self.what} slot {slot}"

    def scalar(self, slot: int, fmt: str, default: int | float = 0) -> int | float:
        """A scalar field (struct format, e.g. "<i", "<B", "<f"); `default` when absent."""
        pos = self.field_pos(slot)
        if pos is None:
            return default
        size = struct.calcsize(fmt)
        if pos + size > self.pos + self.table_size:
            raise self.reader.fail(pos, f"{self._name(slot)}: a {size}-byte scalar runs past "
                                        f"the table end")
        return self.reader.unpack(fmt, pos, self._name(slot))

    def _target(self, slot: int) -> int | None:
        pos = self.field_pos(slot)
        if pos is None:
            return None
        if pos + 4 > self.pos + self.table_size:
            raise self.reader.fail(pos, f"{self._name(slot)}: offset field runs past the "
                                        f"table end")
        return self.reader.uoffset_target(pos, self._name(slot))

    def _vector(self, slot: int, element_size: int) -> tuple[int, int] | None:
        """(start of the elements, count) of a vector field, length checked."""
        start = self._target(slot)
        if start is None:
            return None
        r = self.reader
        count = r.unpack("<I", start, f"{self._name(slot)} vector length")
        left = r.size - start - 4
        if count * element_size > left:
            raise r.fail(start, f"{self._name(slot)}: vector of {count} x {element_size} "
                                f"bytes is longer than the {left} bytes left in the buffer")
        r.charge(count * max(element_size, 8), start)
        return start + 4, count

    def bytes(self, slot: int) -> bytes | None:
        """A `[ubyte]` vector (or a string's raw bytes)."""
        vec = self._vector(slot, 1)
        if vec is None:
            return None
        start, count = vec
        return self.reader.data[start:start + count]

    def string(self, slot: int) -> str | None:
        """A string field (UTF-8; undecodable bytes kept as surrogate escapes)."""
        raw = self.bytes(slot)
        return None if raw is None else raw.decode("utf-8", "surrogateescape")

    def array(self, slot: int, dtype: str) -> np.ndarray | None:
        """A vector of scalars as a numpy array of `dtype` (e.g. "<i4", "<f4")."""
        dt = np.dtype(dtype)
        vec = self._vector(slot, dt.itemsize)
        if vec is None:
            return None
        start, count = vec
        return np.frombuffer(self.reader.data, dt, count, start).copy()

    def table(self, slot: int, name: str | None = None) -> Table | None:
        """The sub-table of `slot`; `name` names it in error messages."""
        target = self._target(slot)
        what = f"{self.what}.{name}" if name else self._name(slot)
        return None if target is None else self.reader.table_at(target, what)

    def tables(self, slot: int, name: str | None = None) -> list[Table] | None:
        """The tables of a vector of tables; `name` names each (name[i]) in errors."""
        vec = self._vector(slot, 4)
        if vec is None:
            return None
        start, count = vec
        r = self.reader
        out = []
        for i in range(count):
            what = f"{self.what}.{name}[{i}]" if name else f"{self._name(slot)}[{i}]"
            out.append(r.table_at(r.uoffset_target(start + 4 * i, what), what))
        return out

    def strings(self, slot: int) -> list[str] | None:
        vec = self._vector(slot, 4)
        if vec is None:
            return None
        start, count = vec
        r = self.reader
        out = []
        for i in range(count):
            what = f"{self._name(slot)}[{i}]"
            pos = r.uoffset_target(start + 4 * i, what)
            n = r.unpack("<I", pos, f"{what} length")
            r.need(pos + 4, n, what)
            r.charge(n + TABLE_CHARGE, pos)
            out.append(r.data[pos + 4:pos + 4 + n].decode("utf-8", "surrogateescape"))
        return out


# -- builder ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scalar:
    """An inline scalar: struct format ("<i", "<B", "<q", "<f" ...) and value."""

    fmt: str
    value: int | float


@dataclass(frozen=True)
class Bytes:
    """A `[ubyte]` vector whose data starts at a multiple of `align` bytes."""

    data: bytes
    align: int = 1


@dataclass(frozen=True)
class String:
    value: str


@dataclass(frozen=True)
class Array:
    """A vector of scalars of numpy `dtype` ("<i4", "<f4", "<i8" ...)."""

    values: Sequence[int | float] | np.ndarray
    dtype: str


@dataclass(frozen=True)
class Strings:
    values: Sequence[str]


@dataclass
class TableValue:
    """A table to build: slot number -> field value."""

    fields: dict[int, Field] = field(default_factory=dict)


@dataclass(frozen=True)
class Tables:
    values: Sequence[TableValue]


Field = Scalar | Bytes | String | Array | Strings | TableValue | Tables


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray()
        self.vtables: dict[bytes, int] = {}
        # (position of a uoffset placeholder, object to place and point it at)
        self.pending: list[tuple[int, object]] = []

    def pad_to(self, alignment: int) -> None:
        self.out.extend(bytes(_align(len(self.out), alignment) - len(self.out)))

    def reserve_offset(self, pos: int, obj: object) -> None:
        self.pending.append((pos, obj))

    def patch(self, pos: int, target: int) -> None:
        struct.pack_into("<I", self.out, pos, target - pos)

    def place(self, obj: object) -> int:
        """Append `obj` (a string, vector or table) and return its position."""
        if isinstance(obj, TableValue):
            return self.place_table(obj)
        if isinstance(obj, String | Bytes):
            data = obj.value.encode("utf-8", "surrogateescape") if isinstance(obj, String) \
                else obj.data
            align = obj.align if isinstance(obj, Bytes) else 1
            self.out.extend(bytes((-len(self.out) - 4) % max(align, 4)))
            pos = len(self.out)
            self.out += struct.pack("<I", len(data)) + data
            if isinstance(obj, String):
                self.out.append(0)
            return pos
        if isinstance(obj, Array):
            data = np.asarray(obj.values, dtype=np.dtype(obj.dtype))
            self.out.extend(bytes((-len(self.out) - 4) % max(data.itemsize, 4)))
            pos = len(self.out)
            self.out += struct.pack("<I", data.size) + data.tobytes()
            return pos
        if isinstance(obj, Strings | Tables):
            self.pad_to(4)
            pos = len(self.out)
            self.out += struct.pack("<I", len(obj.values)) + bytes(4 * len(obj.values))
            for i, item in enumerate(obj.values):
                self.reserve_offset(pos + 4 + 4 * i, String(item) if isinstance(obj, Strings)
                                    else item)
            return pos
        raise TypeError(f"cannot place {type(obj).__name__}")

    def place_table(self, table: TableValue) -> int:
        # Inline layout: the soffset, then the fields by decreasing size (little padding).
        inline = []
        for slot, value in table.fields.items():
            size = struct.calcsize(value.fmt) if isinstance(value, Scalar) else 4
            inline.append((size, slot, value))
        inline.sort(key=lambda item: (-item[0], item[1]))
        largest = max([4] + [size for size, _, _ in inline])
        offsets: dict[int, int] = {}
        cursor = 4
        for size, slot, _ in inline:
            cursor = _align(cursor, size)
            offsets[slot] = cursor
            cursor += size
        table_size = _align(cursor, largest) if inline else 4
        slots = max(offsets, default=-1) + 1
        vtable = struct.pack(f"<HH{slots}H", 4 + 2 * slots, table_size,
                             *[offsets.get(s, 0) for s in range(slots)])
        vtable_pos = self.vtables.get(vtable)
        if vtable_pos is None:
            self.pad_to(2)
            # Leave room so that the table after the vtable starts aligned.
            gap = (-(len(self.out) + len(vtable))) % largest
            self.out.extend(bytes(gap))
            vtable_pos = len(self.out)
            self.out += vtable
            self.vtables[vtable] = vtable_pos
        else:
            self.pad_to(largest)
        pos = len(self.out)
        body = bytearray(table_size)
        struct.pack_into("<i", body, 0, pos - vtable_pos)
        for _, slot, value in inline:
            if isinstance(value, Scalar):
                struct.pack_into(value.fmt, body, offsets[slot], value.value)
        self.out += body
        for _, slot, value in sorted(inline, key=lambda item: item[1]):
            if not isinstance(value, Scalar):
                self.reserve_offset(pos + offsets[slot], value)
        return pos


def build(root: TableValue, identifier: bytes | None = None) -> bytes:
    """Serialize `root` (and everything it holds) into one FlatBuffer.

    Children are placed after their parent in breadth-first order, so every uoffset is
    positive. The buffer length is a multiple of 8."""
    if identifier is not None and len(identifier) != 4:
        raise ValueError("a file identifier has 4 bytes")
    w = _Writer()
    w.out += bytes(8 if identifier is not None else 4)
    if identifier is not None:
        w.out[4:8] = identifier
    w.reserve_offset(0, root)
    done = 0
    while done < len(w.pending):
        pos, obj = w.pending[done]
        done += 1
        w.patch(pos, w.place(obj))
    w.pad_to(8)
    return bytes(w.out)
