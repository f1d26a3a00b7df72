"""Register command ("regcmd") words, task tails, task records, and their disassembly.

A regcmd buffer is a little-endian array of 64-bit words, each `[63:48] target (block id) |
[47:16] 32-bit value | [15:0] register offset` (hw §2.1, fmt §4). The NPU's PC fetches one
task's words by DMA; every task ends with a four-word tail (hw §2.2):

    PC.BASE_ADDRESS = next task's address   (an all-zero word when there is no next task)
    PC.REGISTER_AMOUNTS = next task's fetch amount (0 when there is none)
    0x0041_0000_0000_0000                    (required before op-enable; meaning unknown)
    target 0x0081, offset 0x0008 = enable mask (GLOBAL_OPERATION_ENABLE bits)

and each task's words start on a 64-byte boundary (zero words pad the gap). The fetch
amount is `ceil((body + 4) / unit) - 1` with `unit` = 2 words on RK3588/RK3576, 1 on
RK3568 (hw §2.3), checked against every task of the vendor fixture programs. The task
records are 40-byte `struct rknpu_task` entries (hw §2.5, fmt §4).

Invariants: a field value that does not fit its bits is an RkcError naming register, field
and value, never truncated; decoding never raises on unknown data (unknown targets,
offsets or reserved bits are shown raw); a byte stream whose length is not a multiple of
the word or record size is a one-line RkcError.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rkc.backends.registers import Register, RegisterTable, register_table
from rkc.errors import RkcError

WORD_BYTES = 8
TASK_ALIGN_BYTES = 64                  # each task's words start on this boundary (mesa, vendor)
TAIL_WORDS = 4                         # PC chain address, fetch amount, 0x0041 word, op-enable
PC_TARGET = 0x0101
PRE_OP_EN_TARGET = 0x0041
OP_EN_TARGET = 0x0081
OP_EN_OFFSET = 0x0008
PC_BASE_ADDRESS = 0x0010
PC_REGISTER_AMOUNTS = 0x0014
PRE_OP_EN_WORD = PRE_OP_EN_TARGET << 48

# GLOBAL_OPERATION_ENABLE bits (hw §2.2), the value of the op-enable word.
ENABLE_BITS = {"CNA": 1 << 0, "CORE": 1 << 2, "DPU": 1 << 3, "DPU_RDMA": 1 << 4,
               "PPU": 1 << 5, "PPU_RDMA": 1 << 6}
# PC interrupt bits a task waits for: DPU_0|DPU_1, or PPU_0|PPU_1 when the PPU runs last.
DPU_DONE_INT = 0x300
PPU_DONE_INT = 0xC00
ALL_INTERRUPTS = 0x1FFFF


# ---------------------------------------------------------------------------- fields

def encode_fields(register: Register, **fields: int) -> int:
    """The 32-bit value with each named field set; unnamed fields are 0.

    RkcError when a name is not a field of `register` or a value does not fit its bits
    (signed fields take two's complement numbers in their signed range)."""
    value = 0
    for name, field_value in fields.items():
        f = register.field(name)
        if isinstance(field_value, bool) or not isinstance(field_value, int):
            raise RkcError(f"{register.qualified_name}.{name} = {field_value!r} is not an "
                           "integer")
        if not f.min_value <= field_value <= f.max_value:
            kind = "signed " if f.signed else ""
            raise RkcError(f"{register.qualified_name}.{name} = {field_value} does not fit "
                           f"{f.width} {kind}bits")
        value |= (field_value << f.lsb) & f.mask
    return value


def decode_fields(register: Register, value: int) -> dict[str, int]:
    """Every field of `register` read from `value` (signed fields as signed numbers)."""
    out = {}
    for f in register.fields:
        raw = (value & f.mask) >> f.lsb
        if f.signed and raw >> (f.width - 1):
            raw -= 1 << f.width
        out[f.name] = raw
    return out


def unexplained_bits(register: Register, value: int) -> int:
    """The bits of `value` that no field of `register` covers (reserved bits)."""
    return value & ~register.field_mask & 0xFFFFFFFF


# ----------------------------------------------------------------------------- words

def pack_word(target: int, value: int, offset: int) -> int:
    """One regcmd word; RkcError if a part does not fit (16 / 32 / 16 bits)."""
    for what, part, bits in (("target", target, 16), ("value", value, 32),
                             ("offset", offset, 16)):
        if not 0 <= part < 1 << bits:
            raise RkcError(f"regcmd {what} {part:#x} does not fit {bits} bits")
    return target << 48 | value << 16 | offset


def unpack_word(word: int) -> tuple[int, int, int]:
    """(target, value, offset) of a regcmd word."""
    if not 0 <= word < 1 << 64:
        raise RkcError(f"regcmd word {word:#x} does not fit 64 bits")
    return word >> 48, (word >> 16) & 0xFFFFFFFF, word & 0xFFFF


def words_from_bytes(data: bytes) -> list[int]:
    """The little-endian words of a regcmd buffer; RkcError unless whole words."""
    if len(data) % WORD_BYTES:
        raise RkcError(f"regcmd buffer of {len(data)} bytes is not a whole number of "
                       f"{WORD_BYTES}-byte words")
    return list(struct.unpack(f"<{len(data) // WORD_BYTES}Q", data))


def words_to_bytes(words: Sequence[int]) -> bytes:
    """The little-endian bytes of regcmd words."""
    for word in words:
        unpack_word(word)
    return struct.pack(f"<{len(words)}Q", *words)


@dataclass(frozen=True)
class RegWrite:
    """One register write: a regcmd word's target (block id), register offset and value."""

    target: int
    offset: int
    value: int

    @property
    def word(self) -> int:
        return pack_word(self.target, self.value, self.offset)

    @classmethod
    def from_word(cls, word: int) -> RegWrite:
        target, value, offset = unpack_word(word)
        return cls(target, offset, value)


def reg_write(table: RegisterTable, name: str, **fields: int) -> RegWrite:
    """The write of register `name` (e.g. "CNA.CONV_CON3") with `fields` encoded."""
    register = table.register(name)
    target = table.blocks[register.block].target
    return RegWrite(target, register.offset, encode_fields(register, **fields))


# ----------------------------------------------------------------------------- tails

def fetch_amount(body_words: int, chip: str) -> int:
    """PC_DATA_AMOUNT for a task of `body_words` words before its tail (hw §2.3)."""
    unit = register_table(chip).pc_amount_unit
    return -(-(body_words + TAIL_WORDS) // unit) - 1


def completion_interrupts(enable_mask: int) -> int:
    """The interrupt bits a task waits for: the PPU's when it runs, else the DPU's."""
    return PPU_DONE_INT if enable_mask & ENABLE_BITS["PPU"] else DPU_DONE_INT


def task_tail(chip: str, enable_mask: int, next_address: int | None = None,
              next_body_words: int = 0) -> list[int]:
    """The four tail words of a task; `next_address` None ends the chain.

    As in the vendor programs, the end of a chain is an all-zero word followed by
    PC.REGISTER_AMOUNTS = 0. `next_address` must be 16-byte aligned (PC_SOURCE_ADDR)."""
    table = register_table(chip)
    if next_address is None:
        chain = [0, reg_write(table, "PC.REGISTER_AMOUNTS").word]
    else:
        if next_address % 16:
            raise RkcError(f"next task address {next_address:#x} is not 16-byte aligned")
        chain = [reg_write(table, "PC.BASE_ADDRESS", PC_SOURCE_ADDR=next_address >> 4).word,
                 reg_write(table, "PC.REGISTER_AMOUNTS",
                           PC_DATA_AMOUNT=fetch_amount(next_body_words, chip)).word]
    enable = table.register("ALL.OPERATION_ENABLE")
    if unexplained_bits(enable, enable_mask) or enable_mask >> 32:
        raise RkcError(f"enable mask {enable_mask:#x} sets bits that name no block")
    return chain + [PRE_OP_EN_WORD, pack_word(OP_EN_TARGET, enable_mask, OP_EN_OFFSET)]


def pad_words(words: Sequence[int]) -> list[int]:
    """`words` followed by zero words up to the next 64-byte boundary."""
    per_block = TASK_ALIGN_BYTES // WORD_BYTES
    return list(words) + [0] * (-len(words) % per_block)


# ------------------------------------------------------------------------ task records

_TASK = struct.Struct("<8IQ")
TASK_RECORD_BYTES = _TASK.size  # 40


@dataclass(frozen=True)
class TaskRecord:
    """One `struct rknpu_task`: what the kernel needs to start and check a task.

    `regcmd_addr` is the address of the task's first word (a byte offset into the regcmd
    buffer in vendor files); `regcfg_amount` counts its words before the tail."""

    flags: int
    op_idx: int
    enable_mask: int
    int_mask: int
    int_clear: int
    int_status: int
    regcfg_amount: int
    regcfg_offset: int
    regcmd_addr: int

    def pack(self) -> bytes:
        try:
            return _TASK.pack(self.flags, self.op_idx, self.enable_mask, self.int_mask,
                              self.int_clear, self.int_status, self.regcfg_amount,
                              self.regcfg_offset, self.regcmd_addr)
        except struct.error as error:
            raise RkcError(f"task record {self} does not fit struct rknpu_task: "
                           f"{error}") from None

    @classmethod
    def unpack(cls, data: bytes) -> TaskRecord:
        return cls(*_TASK.unpack(data))


def pack_task_records(records: Iterable[TaskRecord]) -> bytes:
    return b"".join(r.pack() for r in records)


def unpack_task_records(data: bytes) -> list[TaskRecord]:
    """The task records of a task buffer; RkcError unless whole 40-byte records."""
    if len(data) % TASK_RECORD_BYTES:
        raise RkcError(f"task buffer of {len(data)} bytes is not a whole number of "
                       f"{TASK_RECORD_BYTES}-byte task records")
    return [TaskRecord.unpack(data[i:i + TASK_RECORD_BYTES])
            for i in range(0, len(data), TASK_RECORD_BYTES)]


# --------------------------------------------------------------------------- programs

@dataclass(frozen=True)
class TaskProgram:
    """One task to emit: its register writes (without tail) and the blocks it starts."""

    writes: tuple[RegWrite, ...]
    enable_mask: int
    op_idx: int = 0


def task_starts(tasks: Sequence[TaskProgram]) -> list[int]:
    """The byte offset of each task's first word in the buffer `assemble` builds."""
    starts, position = [], 0
    for task in tasks:
        starts.append(position)
        position += len(pad_words([0] * (len(task.writes) + TAIL_WORDS))) * WORD_BYTES
    return starts


def assemble(chip: str, tasks: Sequence[TaskProgram],
             base_address: int = 0) -> tuple[bytes, bytes]:
    """The regcmd buffer and task buffer of one chain of tasks, run in order.

    Each task's words start on a 64-byte boundary, end with a tail chaining to the next
    task (addresses are `base_address` + byte offset, as vendor files use offsets from
    0), and the last tail ends the chain."""
    if base_address % TASK_ALIGN_BYTES:
        raise RkcError(f"regcmd base address {base_address:#x} is not "
                       f"{TASK_ALIGN_BYTES}-byte aligned")
    starts = task_starts(tasks)
    words: list[int] = []
    records = []
    for i, task in enumerate(tasks):
        if i + 1 < len(tasks):
            tail = task_tail(chip, task.enable_mask, base_address + starts[i + 1],
                             len(tasks[i + 1].writes))
        else:
            tail = task_tail(chip, task.enable_mask)
        words += pad_words([w.word for w in task.writes] + tail)
        records.append(TaskRecord(0, task.op_idx, task.enable_mask,
                                  completion_interrupts(task.enable_mask), ALL_INTERRUPTS,
                                  0, len(task.writes), 0, base_address + starts[i]))
    return words_to_bytes(words), pack_task_records(records)


@dataclass(frozen=True)
class Task:
    """One task of a regcmd buffer: its record, body writes and four tail words."""

    index: int
    record: TaskRecord
    start: int                        # word index of the first body word
    body: tuple[RegWrite, ...]
    tail: tuple[int, ...]

    @property
    def next_address(self) -> int | None:
        """The chained task's address from the tail, None when the chain ends here."""
        target, value, offset = unpack_word(self.tail[0])
        return value if (target, offset) == (PC_TARGET, PC_BASE_ADDRESS) else None

    @property
    def next_amount(self) -> int:
        """PC.REGISTER_AMOUNTS[15:0] of the tail."""
        return unpack_word(self.tail[1])[1] & 0xFFFF

    @property
    def enable_mask(self) -> int:
        return unpack_word(self.tail[3])[1]

    def tail_problems(self) -> list[str]:
        """How the tail departs from the documented shape (empty when it matches)."""
        problems = []
        first = unpack_word(self.tail[0])
        if self.tail[0] != 0 and (first[0], first[2]) != (PC_TARGET, PC_BASE_ADDRESS):
            problems.append(f"word -4 {self.tail[0]:#018x} is neither zero nor "
                            "PC.BASE_ADDRESS")
        amount = unpack_word(self.tail[1])
        if (amount[0], amount[2]) != (PC_TARGET, PC_REGISTER_AMOUNTS):
            problems.append(f"word -3 {self.tail[1]:#018x} is not PC.REGISTER_AMOUNTS")
        if self.tail[0] == 0 and amount[1]:
            problems.append("chain ends but the fetch amount is not 0")
        if self.tail[2] != PRE_OP_EN_WORD:
            problems.append(f"word -2 {self.tail[2]:#018x} is not the 0x0041 word")
        enable = unpack_word(self.tail[3])
        if (enable[0], enable[2]) != (OP_EN_TARGET, OP_EN_OFFSET):
            problems.append(f"word -1 {self.tail[3]:#018x} is not the op-enable word")
        return problems


MAX_WORD_REUSE = 4
"""How many times the task records may list the regcmd buffer's words in all."""


def split_tasks(words: Sequence[int], records: Sequence[TaskRecord]) -> list[Task]:
    """The tasks the records point at: body words and tails, in record order.

    Records may share words (vendor multi-core programs reuse streams: at most 1.2x the
    buffer's words in the fixtures). RkcError when a record's address is not word aligned,
    its words run past the buffer, or the records list more than `MAX_WORD_REUSE` times
    the buffer's words (a hostile file would make the disassembly quadratic)."""
    listed = sum(r.regcfg_amount + TAIL_WORDS for r in records)
    if listed > MAX_WORD_REUSE * max(len(words), 1):
        raise RkcError(f"{len(records)} task records list {listed} regcmd words, more than "
                       f"{MAX_WORD_REUSE}x the {len(words)} words of the buffer")
    tasks = []
    for i, record in enumerate(records):
        start, misaligned = divmod(record.regcmd_addr, WORD_BYTES)
        end = start + record.regcfg_amount + TAIL_WORDS
        if misaligned or end > len(words):
            raise RkcError(f"task {i}: regcmd_addr {record.regcmd_addr:#x} with "
                           f"{record.regcfg_amount} words does not lie on whole words "
                           f"inside the {len(words) * WORD_BYTES}-byte regcmd buffer")
        body = tuple(RegWrite.from_word(w) for w in words[start:start + record.regcfg_amount])
        tasks.append(Task(i, record, start, body, tuple(words[end - TAIL_WORDS:end])))
    return tasks


# ------------------------------------------------------------------------ disassembly

def _show(value: int) -> str:
    return str(value) if -4096 < value < 4096 else hex(value)


def describe(table: RegisterTable, word: int) -> str:
    """One word as `BLOCK.REGISTER = 0xVALUE  FIELD=v ...` (non-zero fields only).

    Unknown offsets show as `BLOCK.0xOFFS`, unknown targets as `T0xTTTT.0xOFFS`, bits no
    field covers as `RESERVED=0x...`; a zero word is `ZERO`."""
    if word == 0:
        return "ZERO"
    target, value, offset = unpack_word(word)
    block = table.block_of_target(target)
    register = table.lookup(block.name, offset) if block else None
    if register is None:
        where = f"{block.name}.{offset:#06x}" if block else f"T{target:#06x}.{offset:#06x}"
        return f"{where} = {value:#010x}"
    fields = decode_fields(register, value)
    shown = [f"{f.name}={_show(fields[f.name])}"
             for f in sorted(register.fields, key=lambda f: f.lsb)
             if fields[f.name] and not register.unknown]
    reserved = unexplained_bits(register, value)
    if reserved:
        shown.append(f"RESERVED={reserved:#x}")
    text = f"{register.qualified_name} = {value:#010x}"
    return f"{text}  {' '.join(shown)}" if shown else text


def disassemble(words: Sequence[int] | bytes, chip: str) -> list[str]:
    """One line per word (see `describe`); bytes must be whole little-endian words."""
    if isinstance(words, bytes | bytearray):
        words = words_from_bytes(bytes(words))
    table = register_table(chip)
    return [describe(table, w) for w in words]


def disassemble_tasks(words: Sequence[int] | bytes, records: Sequence[TaskRecord] | bytes,
                      chip: str) -> list[str]:
    """A task-by-task listing: a header per record, then its body and tail words."""
    if isinstance(words, bytes | bytearray):
        words = words_from_bytes(bytes(words))
    if isinstance(records, bytes | bytearray):
        records = unpack_task_records(bytes(records))
    table = register_table(chip)
    lines = []
    for task in split_tasks(words, records):
        r = task.record
        nxt = task.next_address
        lines.append(f"task {task.index}: op {r.op_idx} at {r.regcmd_addr:#06x}, "
                     f"{r.regcfg_amount} writes, enable {r.enable_mask:#x}, int_mask "
                     f"{r.int_mask:#x}, next {'end' if nxt is None else hex(nxt)}")
        for k, word in enumerate(words[task.start:task.start + r.regcfg_amount + TAIL_WORDS]):
            lines.append(f"  {(task.start + k) * WORD_BYTES:#06x}  {describe(table, word)}")
    return lines
