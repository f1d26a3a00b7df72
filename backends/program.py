"""`Program`: the executable content of one compiled model, and its place in a `.rknn` file.

A program is what a loader (the board runtime, or `rkc.sim` / `rkc.runtime`) needs to run a
model: two arenas, a register-command chain, a relocation table and a host program.

Memory model: the model uses two DRAM arenas, placed anywhere by the loader:
- `weights` (ARENA_WEIGHTS): read-only, its initial bytes are `weight_blob` (packed conv
  weights, DPU bias / requant streams, and every other constant the plan placed there);
- `features` (ARENA_FEATURES): `feature_bytes` of scratch (inputs, outputs and every
  intermediate value at the offsets of the DRAM plan, `rknpu.dram` attributes).
Every DRAM address in `regcmd` is 0 in the file; `relocations` lists each such word:
word `word` (index of a u64 regcmd word) holds register `register` = arena base of
`buffer` + `offset`. The loader patches them (`patched_regcmd`). The task chain itself
is position-relative as in the vendor files: the task records' `regcmd_addr` and every
PC.BASE_ADDRESS word of a task tail hold byte offsets into `regcmd` (base 0); a loader
that places `regcmd` at B adds B to both (`patched_regcmd(..., regcmd_base=B)` does the
words).

Host program (`host_ir`): the lowered `rknpu` module as rkc IR text (parseable by
`rkc.opt` / xDSL with rkc's dialects). Every op that runs on the NPU carries
`rknpu.task_range = array<i64: first, count>`: it runs the `count` tasks starting at task
record `first` (ops are listed in execution order, and the ranges of consecutive NPU ops
are consecutive). Every other op (`rknpu.cpu`, `to_native` / `from_native`, concat / view
copies listed in `rknpu.copies`, `nn.constant`) runs on the host, reading and writing the
feature arena at its `rknpu.dram` offsets. Constants read only as conv weights / biases
are marked `rknpu.packed` and hold a zero splat: their values are in the weight arena
(`rkc.backends.codegen.host_program_text`). `inputs` / `outputs` describe the function's
arguments and results as the host sees them.

Where each part lives in the `.rknn` file (`program_to_rknn`, format 6, readable by
`read_rknn`, rknncli and `rkc inspect`):
- regcmd: buffer of the tensor named "regcmd" (kind 9), as the vendor's files;
- task records: buffer of the tensor "task" (kind 10), 40-byte `struct rknpu_task` records
  whose `regcmd_addr` is a byte offset into the regcmd buffer;
- weight arena: buffer of the tensor "rkc.weights" (kind 4, npu const, raw);
- everything else: the JSON buffer of the tensor "rkc.program" (kind 5, cpu const, raw):
  format tag and version, chip, cores, feature_bytes, relocations, inputs, outputs; and
  the host IR text in the buffer of the tensor "rkc.host_ir" (kind 5, raw).
The graph's input / output tensors (kinds 1 / 2) carry name, shape, dtype and
quantization for third-party readers; the root's memory table holds the weight and
feature arena sizes.
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rkc.backends.emit import RelocationEntry
from rkc.backends.regcmd import (
    PC_BASE_ADDRESS,
    PC_TARGET,
    TASK_ALIGN_BYTES,
    WORD_BYTES,
    pack_word,
    unpack_word,
)
from rkc.backends.rknn_file import (
    KIND_INPUT,
    KIND_OUTPUT,
    KIND_REGCMD,
    KIND_TASK,
    TASK_RECORD,
    RknnFormatError,
    RknnGraph,
    RknnModel,
    RknnNode,
    RknnTensor,
    read_rknn,
    write_rknn,
)
from rkc.errors import RkcError

ARENA_WEIGHTS = "weights"
ARENA_FEATURES = "features"
ARENAS = (ARENA_WEIGHTS, ARENA_FEATURES)
CHIPS = ("rk3588", "rk3568")
PLATFORMS = {"rk3588": "RKNPU v2", "rk3568": "RKNPU lite"}
PROGRAM_FORMAT = "rkc-program"
PROGRAM_VERSION = 1
PROGRAM_TENSOR = "rkc.program"
HOST_IR_TENSOR = "rkc.host_ir"
WEIGHTS_TENSOR = "rkc.weights"
KIND_NPU_CONST, KIND_CPU_CONST = 4, 5
DTYPE_RAW = 13
DTYPE_CODES = {"float32": 1, "int8": 3, "int16": 5, "int32": 6, "int64": 7, "float16": 10}
TASK_RANGE_ATTR = "rknpu.task_range"


@dataclass(frozen=True)
class TensorInfo:
    """One input or output of the compiled function as the host sees it.

    `shape` is the IR type's shape, `dtype` the storage element type ("float32", "int8",
    "float16", ...), `layout` the storage ("dense" row-major; "native" NC1HWC2 with
    `surfaces` surfaces of `surface_pixels` pixels per image; "packed": pixels of exactly
    C channels), `scale` / `zero_point` the quantization of an int8 value (None for a
    float one); the value occupies `size` bytes at `offset` in the feature arena."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    layout: str
    offset: int
    size: int
    scale: float | None = None
    zero_point: int | None = None
    surfaces: int = 0
    surface_pixels: int = 0

    @staticmethod
    def from_json(d: dict) -> TensorInfo:
        return TensorInfo(**{**d, "shape": tuple(d["shape"])})


@dataclass
class Program:
    """One compiled model (see the module docstring for the memory model).

    Invariants (`check`): `chip` in CHIPS, `cores` >= 1; `regcmd` is whole u64 words and
    `task_records` whole 40-byte records whose regcmd ranges lie inside `regcmd`; every
    relocation names a word inside `regcmd` whose value is 0 and an arena of ARENAS, and
    its offset lies inside that arena (`weight_blob` / `feature_bytes`); inputs and
    outputs lie inside the feature arena."""

    chip: str
    cores: int
    weight_blob: bytes
    feature_bytes: int
    regcmd: bytes
    task_records: bytes
    relocations: list[RelocationEntry]
    host_ir: str
    inputs: list[TensorInfo] = field(default_factory=list)
    outputs: list[TensorInfo] = field(default_factory=list)

    @property
    def task_count(self) -> int:
        return len(self.task_records) // TASK_RECORD.size

    def arena_size(self, arena: str) -> int:
        return len(self.weight_blob) if arena == ARENA_WEIGHTS else self.feature_bytes

    def check(self) -> None:
        """Raise RkcError naming the first broken invariant."""
        if self.chip not in CHIPS:
            raise RkcError(f"program: chip {self.chip!r} is not one of {CHIPS}")
        if self.cores < 1:
            raise RkcError(f"program: {self.cores} cores")
        if len(self.regcmd) % WORD_BYTES or len(self.task_records) % TASK_RECORD.size:
            raise RkcError("program: regcmd is not whole words or tasks not whole records")
        for i in range(self.task_count):
            rec = TASK_RECORD.unpack_from(self.task_records, i * TASK_RECORD.size)
            amount, addr = rec[6], rec[8]
            if addr % WORD_BYTES or addr + amount * WORD_BYTES > len(self.regcmd):
                raise RkcError(f"program: task {i} reads regcmd bytes {addr}.."
                               f"{addr + amount * WORD_BYTES} of {len(self.regcmd)}")
        words = len(self.regcmd) // WORD_BYTES
        for r in self.relocations:
            if not 0 <= r.word < words:
                raise RkcError(f"program: relocation of {r.register} names word {r.word} "
                               f"of {words}")
            if r.buffer not in ARENAS:
                raise RkcError(f"program: relocation of {r.register} names buffer "
                               f"{r.buffer!r}, not an arena {ARENAS}")
            if not 0 <= r.offset < max(self.arena_size(r.buffer), 1):
                raise RkcError(f"program: relocation of {r.register} at word {r.word}: "
                               f"offset {r.offset} outside the {r.buffer} arena of "
                               f"{self.arena_size(r.buffer)} bytes")
            (word,) = struct.unpack_from("<Q", self.regcmd, r.word * WORD_BYTES)
            if unpack_word(word)[1] != 0:
                raise RkcError(f"program: relocated word {r.word} is not 0 in the file")
        for t in self.inputs + self.outputs:
            if t.offset < 0 or t.offset + t.size > self.feature_bytes:
                raise RkcError(f"program: {t.name} at {t.offset}+{t.size} outside the "
                               f"{self.feature_bytes}-byte feature arena")

    def patched_regcmd(self, bases: dict[str, int], regcmd_base: int = 0) -> bytes:
        """The regcmd with every relocated word holding its final address, the arenas
        at `bases` (ARENA_WEIGHTS / ARENA_FEATURES -> byte address), and the task chain's
        PC.BASE_ADDRESS words moved to a regcmd placed at `regcmd_base` (64-byte
        aligned). The field of an address register may drop low bits ([31:4]); the
        address must then be aligned (RkcError otherwise)."""
        from rkc.backends.registers import register_table

        table = register_table(self.chip)
        data = bytearray(self.regcmd)
        if regcmd_base % TASK_ALIGN_BYTES:
            raise RkcError(f"regcmd base {regcmd_base:#x} is not {TASK_ALIGN_BYTES}-byte "
                           f"aligned")
        if regcmd_base:
            for i in range(len(data) // WORD_BYTES):
                (word,) = struct.unpack_from("<Q", data, i * WORD_BYTES)
                target, value, offset = unpack_word(word)
                if (target, offset) == (PC_TARGET, PC_BASE_ADDRESS):
                    struct.pack_into("<Q", data, i * WORD_BYTES,
                                     pack_word(target, value + regcmd_base, offset))
        for r in self.relocations:
            reg = table.register(r.register)
            (fld,) = reg.fields
            address = bases[r.buffer] + r.offset
            if address % (1 << fld.lsb) or address >> 32:
                raise RkcError(f"{r.register}: address {address:#x} is not "
                               f"{1 << fld.lsb}-byte aligned or does not fit 32 bits")
            (word,) = struct.unpack_from("<Q", data, r.word * WORD_BYTES)
            target, _, offset = unpack_word(word)
            struct.pack_into("<Q", data, r.word * WORD_BYTES,
                             pack_word(target, (address >> fld.lsb) << fld.lsb, offset))
        return bytes(data)


def _metadata(program: Program) -> dict:
    return {"format": PROGRAM_FORMAT, "version": PROGRAM_VERSION, "chip": program.chip,
            "cores": program.cores, "feature_bytes": program.feature_bytes,
            "relocations": [[r.word, r.register, r.buffer, r.offset]
                            for r in program.relocations],
            "inputs": [asdict(t) for t in program.inputs],
            "outputs": [asdict(t) for t in program.outputs]}


def _io_tensor(t: TensorInfo, kind: int) -> RknnTensor:
    quantized = t.scale is not None
    return RknnTensor(
        name=t.name, dtype=DTYPE_CODES.get(t.dtype, DTYPE_RAW),
        layout=64 if t.layout == "native" else 2, kind=kind, shape=list(t.shape),
        qmethod="layer" if quantized else None, qtype=t.dtype if quantized else None,
        scale=[t.scale] if quantized else None,
        zero_point=[t.zero_point] if quantized else None, size=t.size,
        memory_offset=t.offset)


def program_to_rknn(program: Program, source: str = "ONNX",
                    compiler: str = "rkc") -> RknnModel:
    """The `.rknn` model holding `program` (layout: module docstring)."""
    program.check()
    buffers: list[bytes | None] = [None]

    def buffer(data: bytes) -> int:
        buffers.append(data)
        return len(buffers) - 1

    tensors = [RknnTensor()]
    inputs, outputs = [], []
    for t in program.inputs:
        inputs.append(len(tensors))
        tensors.append(_io_tensor(t, KIND_INPUT))
    for t in program.outputs:
        outputs.append(len(tensors))
        tensors.append(_io_tensor(t, KIND_OUTPUT))
    meta = json.dumps(_metadata(program), separators=(",", ":")).encode()
    for name, kind, data in ((WEIGHTS_TENSOR, KIND_NPU_CONST, program.weight_blob),
                             ("regcmd", KIND_REGCMD, program.regcmd),
                             ("task", KIND_TASK, program.task_records),
                             (PROGRAM_TENSOR, KIND_CPU_CONST, meta),
                             (HOST_IR_TENSOR, KIND_CPU_CONST, program.host_ir.encode())):
        tensors.append(RknnTensor(name=name, dtype=DTYPE_RAW, kind=kind, size=len(data),
                                  buffer=buffer(data)))
    nodes = [RknnNode(type="InputOperator", name=f"InputOperator:{t.name}", inputs=[],
                      outputs=[i]) for i, t in zip(inputs, program.inputs, strict=True)]
    nodes += [RknnNode(type="OutputOperator", name=f"OutputOperator:{t.name}", inputs=[i],
                       outputs=[]) for i, t in zip(outputs, program.outputs, strict=True)]
    return RknnModel(
        platform=PLATFORMS[program.chip], target=program.chip, source=source,
        compiler=compiler, compiler_version=PROGRAM_VERSION, shape_mode="static_shape",
        graphs=[RknnGraph(tensors=tensors, nodes=nodes, inputs=inputs, outputs=outputs)],
        buffers=buffers, weight_memory_size=len(program.weight_blob),
        internal_memory_size=program.feature_bytes)


def program_bytes(program: Program, source: str = "ONNX") -> bytes:
    """`program` as the bytes of a `.rknn` file."""
    return write_rknn(program_to_rknn(program, source))


def _named_buffer(model: RknnModel, name: str) -> bytes:
    for t in model.tensors:
        if t.name == name:
            if not 0 < t.buffer < len(model.buffers) or model.buffers[t.buffer] is None:
                raise RknnFormatError(f"tensor '{name}' names buffer {t.buffer}, but the "
                                      f"model has {len(model.buffers)} buffers")
            return model.buffers[t.buffer] or b""
    raise RknnFormatError(f"no tensor '{name}': not an rkc-compiled model")


def program_from_rknn(model: RknnModel) -> Program:
    """The program of a model `program_to_rknn` wrote; RknnFormatError otherwise."""
    try:
        meta = json.loads(_named_buffer(model, PROGRAM_TENSOR).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise RknnFormatError(f"tensor '{PROGRAM_TENSOR}' is not JSON: {str(e)[:80]}") \
            from None
    if not isinstance(meta, dict) or meta.get("format") != PROGRAM_FORMAT:
        raise RknnFormatError(f"tensor '{PROGRAM_TENSOR}' is not an {PROGRAM_FORMAT}")
    if meta.get("version") != PROGRAM_VERSION:
        raise RknnFormatError(f"{PROGRAM_FORMAT} version {meta.get('version')!r}: this "
                              f"reader knows {PROGRAM_VERSION}")
    try:
        host_ir = _named_buffer(model, HOST_IR_TENSOR).decode("utf-8")
        program = Program(
            chip=str(meta["chip"]), cores=int(meta["cores"]),
            weight_blob=_named_buffer(model, WEIGHTS_TENSOR),
            feature_bytes=int(meta["feature_bytes"]), regcmd=model.regcmd(),
            task_records=model.tensor_buffer(KIND_TASK) or b"",
            relocations=[RelocationEntry(int(w), str(r), str(b), int(o))
                         for w, r, b, o in meta["relocations"]],
            host_ir=host_ir,
            inputs=[TensorInfo.from_json(d) for d in meta["inputs"]],
            outputs=[TensorInfo.from_json(d) for d in meta["outputs"]])
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as e:
        raise RknnFormatError(f"tensor '{PROGRAM_TENSOR}': malformed program "
                              f"({type(e).__name__}: {str(e)[:80]})") from None
    try:
        program.check()
    except RknnFormatError:
        raise
    except RkcError as e:
        raise RknnFormatError(str(e)) from None
    return program


def load_program(source: bytes | bytearray | str | Path) -> Program:
    """The program of an rkc-compiled `.rknn` file (its path or bytes)."""
    return program_from_rknn(read_rknn(source))
