"""The register file the simulated NPU executes from, and how a task reads it.

Registers keep their values across tasks (the hardware's register groups do); a task
sees every register's latest value. `TaskRegisters` is one task's view: it records which
registers the unit models read, so that after the task `check_consumed` can refuse a
register the task wrote with a non-zero value that no model read and that is not listed
as having no effect on values (`NO_VALUE_EFFECT`: burst lengths, ping-pong pointers,
CBUF banking, ...). Every refusal is an RkcError naming the task and the register.
"""

from __future__ import annotations

from collections.abc import Iterable

from rkc.backends.regcmd import decode_fields
from rkc.backends.registers import RegisterTable, register_table
from rkc.errors import RkcError

# Registers whose values decide timing, buffering or bookkeeping, not the data the task
# computes: the simulator accepts any value. Per entry the reason.
NO_VALUE_EFFECT = {
    "CNA.S_POINTER": "ping-pong register group selection",
    "CMAC.S_POINTER": "ping-pong register group selection",
    "CORE.S_POINTER": "ping-pong register group selection",
    "DPU.S_POINTER": "ping-pong register group selection",
    "DPU_RDMA.RDMA_S_POINTER": "ping-pong register group selection",
    "PPU.S_POINTER": "ping-pong register group selection",
    "PPU_RDMA.RDMA_S_POINTER": "ping-pong register group selection",
    "CNA.CBUF_CON0": "CBUF banking and weight reuse (buffering only)",
    "CNA.CBUF_CON1": "CBUF entries per input row (buffering only)",
    "CNA.CONV_CON2": "feature grains: rows buffered before compute starts",
    "CNA.DMA_CON0": "DMA burst lengths",
    "CNA.CONV_CON4": "RK3568 RGB byte length of the packed input DMA",
    "CNA.CVT_CON5": "per-lane converter enable (read with CVT_CON0)",
        "DPU_RDMA.RDMA_WEIGHT": "DMA arbiter weights",
    "DPU_RDMA.UNK_5024": "RK3568 BS stream length in 8-byte words (checked when read)",
    "PPU.MISC_CTRL": "PPU burst length",
    "PPU_RDMA.UNK_7018": "RK3568 constant 1 (vendor), no known effect",
}


class RegisterState:
    """The latest value of every register written so far, by qualified name."""

    def __init__(self, chip: str):
        self.chip = chip
        self.table: RegisterTable = register_table(chip)
        self.values: dict[str, int] = {}


class TaskRegisters:
    """One task's view of the register file (see the module docstring)."""

    def __init__(self, state: RegisterState, index: int, written: dict[str, int]):
        self.state = state
        self.index = index
        self.written = written
        self.read: set[str] = set()

    def error(self, name: str, message: str) -> RkcError:
        return RkcError(f"task {self.index}: {name}: {message}")

    def fields(self, name: str) -> dict[str, int]:
        """Every field of register `name` (RkcError when no task wrote it)."""
        if name not in self.state.values:
            raise self.error(name, "read by the simulated unit but never written")
        self.read.add(name)
        return decode_fields(self.state.table.register(name), self.state.values[name])

    def value(self, name: str) -> int:
        if name not in self.state.values:
            raise self.error(name, "read by the simulated unit but never written")
        self.read.add(name)
        return self.state.values[name]

    def get(self, name: str, field: str) -> int:
        return self.fields(name)[field]

    def has(self, name: str) -> bool:
        """Whether the chip's register map has `name`."""
        return _has_register(self.state.table, name)

    def address(self, name: str) -> int:
        """A byte address or byte quantity register: its one field in place (a [31:4]
        field keeps its low bits 0)."""
        (f,) = self.state.table.register(name).fields
        return (self.value(name) & f.mask) >> f.lsb << f.lsb

    def signed(self, name: str) -> int:
        """A whole-register 32-bit value read as two's complement."""
        v = self.value(name)
        return v - (1 << 32) if v >> 31 else v

    def require(self, name: str, field: str, allowed: Iterable[int], meaning: str) -> int:
        """The field's value; RkcError unless it is one of `allowed` (what is modelled)."""
        value = self.get(name, field)
        allowed = tuple(allowed)
        if value not in allowed:
            raise self.error(f"{name}.{field}", f"value {value} is not modelled ({meaning}; "
                             f"modelled: {', '.join(map(str, allowed))})")
        return value

    def check_consumed(self) -> None:
        """RkcError for a register this task wrote non-zero that nothing modelled read."""
        for name, value in self.written.items():
            if value and name not in self.read and name not in NO_VALUE_EFFECT:
                raise self.error(name, f"written with {value:#x}, but the simulator does "
                                 "not model this register (no unit of the task reads it)")


def _has_register(table: RegisterTable, name: str) -> bool:
    try:
        table.register(name)
    except (RkcError, KeyError):
        return False
    return True
