"""The PC: fetch task after task along the regcmd chain and run the enabled units.

As the hardware (hw §2): the first task's address and fetch amount come from the task
record (as the kernel driver programs PC_BASE_ADDRESS / REGISTER_AMOUNTS); each task's
fetched words are executed in order -- register writes go to the register file, the tail's
PC.BASE_ADDRESS / PC.REGISTER_AMOUNTS give the next task, the 0x0041 word is a barrier,
the op-enable word starts the units of its mask; zero words do nothing. Modelled masks:
CNA|CORE|DPU|DPU_RDMA (a conv; RK3568 programs also set reserved bit 1), DPU|DPU_RDMA (a
flying-mode elementwise task), PPU|PPU_RDMA (a pooling task). RkcError (naming the task)
for an unknown register, a mask that is not modelled, a chain that ends before the
submitted task count, or a chained task that is not the next task record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rkc.backends.regcmd import (
    ENABLE_BITS,
    OP_EN_OFFSET,
    OP_EN_TARGET,
    PC_BASE_ADDRESS,
    PC_REGISTER_AMOUNTS,
    PC_TARGET,
    PRE_OP_EN_WORD,
    WORD_BYTES,
    TaskRecord,
    fetch_amount,
    unpack_word,
)
from rkc.errors import RkcError
from rkc.sim.cna import run_conv
from rkc.sim.dpu import LUT_ENTRIES, LUT_TABLES, run_dpu
from rkc.sim.memory import Memory
from rkc.sim.ppu import run_pool
from rkc.sim.registers import RegisterState, TaskRegisters

CONV_MASK = ENABLE_BITS["CNA"] | ENABLE_BITS["CORE"] | ENABLE_BITS["DPU"] | \
    ENABLE_BITS["DPU_RDMA"]
EW_MASK = ENABLE_BITS["DPU"] | ENABLE_BITS["DPU_RDMA"]
POOL_MASK = ENABLE_BITS["PPU"] | ENABLE_BITS["PPU_RDMA"]
LUT_ACCESS = ("DPU.LUT_ACCESS_CFG", "DPU.LUT_ACCESS_DATA")
RESERVED_BIT = 1 << 1          # set by the RK3568 vendor programs, no known effect


@dataclass(frozen=True)
class TaskRun:
    """One executed task: its index, regcmd address, enable mask and unit kind."""

    index: int
    address: int
    enable_mask: int
    kind: str


class Npu:
    """One simulated NPU core over a `Memory`; registers persist across `run` calls."""

    def __init__(self, chip: str, memory: Memory):
        self.chip = chip
        self.memory = memory
        self.state = RegisterState(chip)
        self.unit = self.state.table.pc_amount_unit
        # the DPU's LUT tables (LE, LO), loaded by LUT_ACCESS_CFG / LUT_ACCESS_DATA writes
        self.lut = np.zeros((LUT_TABLES, LUT_ENTRIES), np.int64)
        self._lut_cursor: tuple[int, int, bool] = (0, 0, False)   # table, address, write

    def run_records(self, records: Sequence[TaskRecord], first: int, count: int,
                    regcmd_base: int = 0) -> list[TaskRun]:
        """Submit `count` tasks starting with record `first` (its regcmd_addr is an
        offset from `regcmd_base`) and follow the PC chain, checking each chained task
        against the next record."""
        if not 0 <= first and first + count <= len(records):
            raise RkcError(f"tasks {first}..{first + count} outside the {len(records)} "
                           "task records")
        runs = []
        record = records[first]
        address = regcmd_base + record.regcmd_addr
        amount = fetch_amount(record.regcfg_amount, self.chip)
        for i in range(first, first + count):
            if address != regcmd_base + records[i].regcmd_addr:
                raise RkcError(f"task {i}: the PC chain points at {address:#x}, its record "
                               f"at {regcmd_base + records[i].regcmd_addr:#x}")
            run, nxt = self.run_task(i, address, amount)
            if run.enable_mask & ~RESERVED_BIT != records[i].enable_mask & ~RESERVED_BIT:
                raise RkcError(f"task {i}: op-enable mask {run.enable_mask:#x} differs from "
                               f"its record's {records[i].enable_mask:#x}")
            runs.append(run)
            if i + 1 < first + count:
                if nxt is None:
                    raise RkcError(f"task {i}: the PC chain ends, {first + count - i - 1} "
                                   "submitted tasks remain")
                address, amount = nxt
        return runs

    def run_task(self, index: int, address: int, amount: int
                 ) -> tuple[TaskRun, tuple[int, int] | None]:
        """Fetch `(amount + 1) * unit` words at `address`, execute them; the task run and
        the next (address, amount), None at the end of the chain."""
        nwords = (amount + 1) * self.unit
        words = self.memory.view(address, (nwords,), (WORD_BYTES,), np.dtype("<u8"),
                                 f"task {index}: regcmd fetch").tolist()
        table = self.state.table
        written: dict[str, int] = {}
        next_address = None
        next_amount = 0
        enable = None
        for k, word in enumerate(words):
            if word == 0 or word == PRE_OP_EN_WORD:
                continue
            target, value, offset = unpack_word(word)
            where = f"task {index}: word {k} ({word:#018x})"
            if enable is not None:
                raise RkcError(f"{where} follows the op-enable word")
            if target == PC_TARGET and offset == PC_BASE_ADDRESS:
                if value & 1:
                    raise RkcError(f"{where}: PC slave mode (PC_SEL) is not modelled")
                next_address = value & ~0xF
            elif target == PC_TARGET and offset == PC_REGISTER_AMOUNTS:
                next_amount = value & 0xFFFF
            elif target == OP_EN_TARGET and offset == OP_EN_OFFSET:
                enable = value
            else:
                block = table.block_of_target(target)
                register = table.lookup(block.name, offset) if block else None
                if register is None or block.name == "PC":
                    raise RkcError(f"{where} writes an unknown register (target "
                                   f"{target:#06x}, offset {offset:#06x})")
                name = register.qualified_name
                self.state.values[name] = value
                written[name] = value
                if name in LUT_ACCESS:
                    self._lut_access(name, value, where)
        if enable is None:
            raise RkcError(f"task {index}: no op-enable word in the {nwords} fetched words")
        regs = TaskRegisters(self.state, index, written)
        regs.read.update(LUT_ACCESS)
        kind = self._execute(regs, enable)
        regs.check_consumed()
        nxt = (next_address, next_amount) if next_address is not None and next_amount \
            else None
        return TaskRun(index, address, enable, kind), nxt

    def _lut_access(self, name: str, value: int, where: str) -> None:
        """LUT_ACCESS_CFG sets table, address and direction; each LUT_ACCESS_DATA write
        stores a 16-bit entry (two's complement) and advances the address."""
        table, address, write = self._lut_cursor
        if name == "DPU.LUT_ACCESS_CFG":
            self._lut_cursor = ((value >> 16) & 1, value & 0x3FF, bool((value >> 17) & 1))
            return
        if not write:
            return
        if address >= LUT_ENTRIES:
            raise RkcError(f"{where}: LUT write past entry {LUT_ENTRIES - 1}")
        entry = value & 0xFFFF
        self.lut[table, address] = entry - (1 << 16) if entry >> 15 else entry
        self._lut_cursor = (table, address + 1, write)

    def _execute(self, regs: TaskRegisters, enable: int) -> str:
        mask = enable & ~RESERVED_BIT if self.chip == "rk3568" else enable
        if mask == CONV_MASK:
            run_conv(regs, self.memory, self.chip, self.lut)
            return "conv"
        if mask == EW_MASK:
            run_dpu(regs, self.memory, self.chip, None, None, self.lut)
            return "ew"
        if mask == POOL_MASK:
            run_pool(regs, self.memory, self.chip)
            return "pool"
        raise RkcError(f"task {regs.index}: op-enable mask {enable:#x} is not a modelled "
                       f"unit combination (conv {CONV_MASK:#x}, ew {EW_MASK:#x}, pool "
                       f"{POOL_MASK:#x})")
