"""What every task emitter shares: register values by name, relocations, linking.

An emitter (`emit_conv`, `emit_dpu`, `emit_ppu`) computes one value per register of a task
into a `RegisterValues`, then lists them in the chip's write order (the vendor's, kept as
data next to each emitter). The result is a list of `RegWrite`s and `Relocation`s: a
relocation is an address register whose value is a DRAM address not known yet (a buffer
name and a byte offset). `link` assembles tasks into the regcmd and task buffers and keeps
the relocation table (regcmd word index, buffer, offset) so that a loader can rebase; with
`addresses` it also patches the words.

Invariants: every value goes through `rkc.backends.regcmd.encode_fields` (a value that
does not fit its field is an RkcError, never truncated); a byte quantity written to a field
that drops low bits (e.g. [31:4]) must be a multiple of that unit (RkcError otherwise);
`RegisterValues.ordered` lists exactly the registers that were set, each as often as the
order names it, and fails on a register set but not ordered (an emitter bug).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rkc.backends.regcmd import (
    WORD_BYTES,
    RegWrite,
    TaskProgram,
    assemble,
    encode_fields,
    reg_write,
    task_starts,
)
from rkc.backends.registers import Register, RegisterTable, register_table
from rkc.backends.tasks import Address
from rkc.errors import RkcError

# Registers that hold DRAM addresses (the vendor files leave them 0 and patch at load time).
ADDRESS_REGISTERS = frozenset({
    "CNA.FEATURE_DATA_ADDR", "CNA.DCOMP_ADDR0", "DPU.DST_BASE_ADDR",
    "DPU_RDMA.RDMA_SRC_BASE_ADDR", "DPU_RDMA.RDMA_BS_BASE_ADDR",
    "DPU_RDMA.RDMA_BN_BASE_ADDR", "DPU_RDMA.RDMA_EW_BASE_ADDR", "PPU.DST_BASE_ADDR",
    "PPU_RDMA.RDMA_SRC_BASE_ADDR",
})


def _address_field(register: Register):
    """The one field of an address register (a byte address, possibly [31:4])."""
    assert len(register.fields) == 1, register
    return register.fields[0]


@dataclass(frozen=True)
class Relocation:
    """An address register to patch: `register` = address of `address.buffer` +
    `address.offset` (the field keeps the address's high bits, e.g. [31:4])."""

    register: str
    target: int
    offset: int
    address: Address

    def placeholder(self) -> RegWrite:
        """The write before patching: value 0, as in the vendor files."""
        return RegWrite(self.target, self.offset, 0)

    def resolve(self, table: RegisterTable, buffers: Mapping[str, int]) -> RegWrite:
        """The patched write; RkcError for an unknown buffer or a misaligned address."""
        if self.address.buffer not in buffers:
            raise RkcError(f"{self.register}: no address for buffer "
                           f"'{self.address.buffer}'")
        value = buffers[self.address.buffer] + self.address.offset
        reg = table.register(self.register)
        f = _address_field(reg)
        if value % (1 << f.lsb):
            raise RkcError(f"{self.register}: address {value:#x} of "
                           f"{self.address.buffer}+{self.address.offset} is not "
                           f"{1 << f.lsb}-byte aligned")
        return RegWrite(self.target, self.offset, encode_fields(reg, **{f.name: value >> f.lsb}))


Emitted = RegWrite | Relocation


class RegisterValues:
    """The value of each register of one task, by qualified name ("CNA.CONV_CON3")."""

    def __init__(self, chip: str):
        self.chip = chip
        self.table = register_table(chip)
        self._values: dict[str, Emitted] = {}

    def set(self, name: str, **fields: int) -> None:
        """`name` = the named fields (others 0), range-checked."""
        if name in self._values:
            raise AssertionError(f"{name} set twice")
        self._values[name] = reg_write(self.table, name, **fields)

    def set_bytes(self, name: str, field: str, nbytes: int, **fields: int) -> None:
        """`name` with `field` holding a byte quantity: `nbytes >> lsb`, which must be
        exact (a stride of whole 16-byte units for a [31:4] field)."""
        f = self.table.register(name).field(field)
        if nbytes % (1 << f.lsb):
            raise RkcError(f"{name}.{field}: {nbytes} bytes is not a multiple of "
                           f"{1 << f.lsb} on {self.table.chip}")
        self.set(name, **{field: nbytes >> f.lsb}, **fields)

    def address(self, name: str, address: Address | None) -> None:
        """An address register: a relocation to `address`, or 0 when there is none."""
        if address is None:
            self.set(name)
            return
        reg = self.table.register(name)
        assert name in ADDRESS_REGISTERS, name
        self._values[name] = Relocation(name, self.table.blocks[reg.block].target,
                                        reg.offset, address)

    def ordered(self, order: Sequence[str]) -> list[Emitted]:
        """The writes in `order` (a name may repeat: the same value is written again)."""
        missing = [n for n in order if n not in self._values]
        unused = [n for n in self._values if n not in order]
        if missing or unused:
            raise AssertionError(f"{self.chip}: registers ordered but not set {missing}, "
                                 f"set but not ordered {unused}")
        return [self._values[n] for n in order]


@dataclass(frozen=True)
class EmittedTask:
    """One task's writes (with relocations) and the blocks it starts."""

    items: tuple[Emitted, ...]
    enable_mask: int
    op_idx: int = 0

    def program(self, table: RegisterTable,
                buffers: Mapping[str, int] | None = None) -> TaskProgram:
        """The task with relocations patched from `buffers`, or 0 placeholders."""
        writes = tuple(
            item if isinstance(item, RegWrite)
            else item.placeholder() if buffers is None else item.resolve(table, buffers)
            for item in self.items)
        return TaskProgram(writes, self.enable_mask, self.op_idx)

    @property
    def relocations(self) -> list[tuple[int, Relocation]]:
        """(index of the write in the task body, relocation)."""
        return [(i, item) for i, item in enumerate(self.items) if isinstance(item, Relocation)]


@dataclass(frozen=True)
class RelocationEntry:
    """One row of the relocation table: regcmd word `word` holds `register` =
    address of `buffer` + `offset`."""

    word: int
    register: str
    buffer: str
    offset: int


def link(chip: str, tasks: Sequence[EmittedTask], base_address: int = 0,
         buffers: Mapping[str, int] | None = None,
         ) -> tuple[bytes, bytes, list[RelocationEntry]]:
    """The regcmd buffer, the task buffer and the relocation table of one task chain.

    Address words are 0 unless `buffers` gives every buffer's address; the table is the
    same either way, so a loader can patch (or rebase) the words it lists."""
    table = register_table(chip)
    programs = [t.program(table, buffers) for t in tasks]
    regcmd, records = assemble(chip, programs, base_address)
    entries = []
    for start, task in zip(task_starts(programs), tasks, strict=True):
        for index, reloc in task.relocations:
            entries.append(RelocationEntry(start // WORD_BYTES + index, reloc.register,
                                           reloc.address.buffer, reloc.address.offset))
    return regcmd, records, entries
