"""The `.rknn` container: read vendor files and ours, write ours (file format 6).

Layout (rknn-format.md §4 of the project's shared notes; 16 rknn-toolkit2 files checked):

    0   "RKNN"  u32 0  u64 file format version  u64 L (FlatBuffer length)  40 zero bytes
    64  FlatBuffer of L bytes, file identifier "RKNN"
    64+L  u64 J, then J bytes of JSON (the legacy "nbg" description); the file ends there.

Invariants of `read_rknn`:
- every problem with the bytes is an `RknnFormatError`, one line with the byte offset and what
  is wrong; no other exception escapes for any input (bytes are checked before they are read,
  vectors against the bytes left, decoding is bounded by the file size: see backends/flatbuf);
- each FlatBuffer slot the reader knows is decoded into a named field; a slot it does not know
  but that holds an empty vector is kept in `empty_slots` (so that a round trip writes it
  again); any other unknown slot is listed in `undecoded_slots` and not kept; a field past
  slot 63 is an error (the tables seen have at most 22 slots);
- a node's attribute table (slot 8) holds the ONNX attributes of its op (opset 12 era), one
  slot per attribute in alphabetical order, int/float inline, ints/floats/strings as
  vectors; it is decoded for ops onnx knows (fused "Conv..." ops as Conv) and otherwise
  reported as undecoded slot 8.

Invariants of `write_rknn`: the output follows the vendor slot layout (root table slots 0-21,
buffers in slot 20 for format 6, slot 4 for format 4), the header and trailer above, and
`read_rknn(write_rknn(m)) == m` for every model `m` that `read_rknn` returns (the fields it
knows: `undecoded_slots` are not written; float fields holding NaN compare unequal, and a
signalling NaN comes back quiet).
"""

from __future__ import annotations

import json
import stat
import struct
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from rkc.backends.flatbuf import (
    Array,
    Bytes,
    FlatBufferError,
    FlatBufferReader,
    Scalar,
    String,
    Strings,
    Table,
    Tables,
    TableValue,
    build,
)
from rkc.errors import RkcError

MAGIC = b"RKNN"
ENCRYPTED_MAGIC = b"CYPTRKNN"
RKC_ENCRYPTED_MAGIC = b"RKCCRYPT"  # rkc.backends.encrypt's files
HEADER_SIZE = 64
FILE_IDENTIFIER = b"RKNN"
SUPPORTED_VERSIONS = range(2, 7)  # seen: 4 (toolkit 1.5) and 6 (toolkit 2.5)
BUFFER_ALIGN = 64                 # our writer's alignment for buffer data (regcmd, weights)

# Tensor codes (fmt §4). Tensors store the codes; these names are for people.
DTYPE_NAMES = {0: "none", 1: "float32", 3: "int8", 5: "int16", 6: "int32", 7: "int64",
               10: "float16", 13: "raw", 64: "int4"}
LAYOUT_NAMES = {0: "plain", 2: "plain", 64: "native", 65: "native weight"}
KIND_NAMES = {0: "none", 1: "input", 2: "output", 3: "feature", 4: "npu const",
              5: "cpu const", 9: "regcmd", 10: "task"}
# Not named: kind 6 (raw buffers named after an activation, "Sigmoid", in toolkit 1.x files)
# and kind 7 (unnamed raw per-op buffers of toolkit 1.x files, where 2.x has kind 9/10).
KIND_INPUT, KIND_OUTPUT, KIND_FEATURE, KIND_REGCMD, KIND_TASK = 1, 2, 3, 9, 10

TASK_RECORD = struct.Struct("<8IQ")  # the rknpu kernel driver's struct rknpu_task, 40 bytes
TASK_FIELDS = ("flags", "op_idx", "enable_mask", "int_mask", "int_clear", "int_status",
               "regcfg_amount", "regcfg_offset", "regcmd_addr")


class RknnFormatError(RkcError):
    """A `.rknn` file that cannot be read; the message names the byte offset and problem."""


# -- model ---------------------------------------------------------------------------------

@dataclass
class RknnTensor:
    """One tensor of the graph (Tensor table). Slot numbers in comments."""

    name: str | None = None                  # 5
    dtype: int = 0                           # 0, DTYPE_NAMES
    layout: int = 0                          # 1, LAYOUT_NAMES
    kind: int = 0                            # 2, KIND_NAMES
    native_shape: list[int] | None = None    # 3, e.g. NC1HWC2 (1, 2, 32, 32, 8)
    shape: list[int] | None = None           # 4, original (ONNX) shape
    qmethod: str | None = None               # 6, "layer"
    qtype: str | None = None                 # 7, "int8"
    min: list[float] | None = None           # 8
    max: list[float] | None = None           # 9
    scale: list[float] | None = None         # 10
    zero_point: list[int] | None = None      # 11
    size: int = 0                            # 12, bytes
    memory_offset: int = 0                   # 13, start in the internal (feature) memory
    buffer: int = 0                          # 18, index into RknnModel.buffers; 0 = none
    slot20: int = 0                          # 20, inputs only: 16 int8/rk3588, 8 int8/rk3568
    #                                          and fp16/rk3588, 4 fp16/rk3568 (meaning unknown)
    empty_slots: list[int] = field(default_factory=list)
    undecoded_slots: list[int] = field(default_factory=list)

    @property
    def dtype_name(self) -> str:
        return DTYPE_NAMES.get(self.dtype, f"dtype{self.dtype}")

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind, f"kind{self.kind}")

    @property
    def layout_name(self) -> str:
        return LAYOUT_NAMES.get(self.layout, f"layout{self.layout}")


@dataclass
class RknnNode:
    """One op of the graph (Node table)."""

    type: str | None = None                  # 1, "ConvRelu"
    name: str | None = None                  # 2, "Conv:c1"
    slot3: int = 0                           # 3, u8: 2 on NPU ops, absent on CPU ops (seen)
    inputs: list[int] | None = None          # 4, tensor indices
    outputs: list[int] | None = None         # 5
    slot6: list[int] | None = None           # 6, [i32] (not decoded)
    slot7: int = 0                           # 7, u8: 1 conv, 3 MaxPool, 19 Concat ... (seen)
    attributes: dict[str, int | float | str | list] | None = None  # 8, ONNX attributes
    blob: bytes | None = None                # 9, BSON document of the original attributes
    slot10: list[int] | None = None          # 10, [i32] (not decoded)
    slot11: list[int] | None = None          # 11, [i32] (not decoded)
    slot12: list[int] | None = None          # 12, [i32] (not decoded)
    slot13: int = 0                          # 13, u8 (not decoded)
    empty_slots: list[int] = field(default_factory=list)
    undecoded_slots: list[int] = field(default_factory=list)


@dataclass
class RknnRegcmdRef:
    """Graph slot 7 entry: a tensor and the regcmd words that hold its address (partly
    decoded: probably relocation data)."""

    tensor: str | None = None     # 0
    words: list[int] | None = None  # 1
    flags: list[int] | None = None  # 2


@dataclass
class RknnGraph:
    tensors: list[RknnTensor] = field(default_factory=list)   # 0
    nodes: list[RknnNode] = field(default_factory=list)       # 1
    inputs: list[int] | None = None                            # 2, tensor indices
    outputs: list[int] | None = None                           # 3
    slot4: list[int] | None = None                             # 4, [i32], [16] in all seen
    regcmd_refs: list[RknnRegcmdRef] | None = None             # 7
    slot8: list[int] | None = None                             # 8, [i32] (input tensor id?)
    slot9: list[int] | None = None                             # 9
    slot10: list[int] | None = None                            # 10
    slot12: list[int] | None = None                            # 12
    empty_slots: list[int] = field(default_factory=list)
    undecoded_slots: list[int] = field(default_factory=list)


@dataclass
class RknnModel:
    """A whole `.rknn` file. Strings and vectors are None when their slot is absent."""

    file_version: int = 6                    # header
    model_version: int = 6                   # root 0 (6 in 2.5 files, 1 in 1.5 files)
    platform: str | None = None              # 1, "RKNPU v2" / "RKNPU lite" / "RKNPU f2"
    graphs: list[RknnGraph] = field(default_factory=list)     # 2
    generator: str | None = None             # 3, Python-dict text (attrs, quant_tab)
    compiler_version: int = 0                # 6, 20500 for 2.5.0
    compiler: str | None = None              # 7
    target: str | None = None                # 8, "rk3588"
    source: str | None = None                # 9, "ONNX"
    slot10: int = 0                          # 10, u8 (2 in all seen)
    input_json: str | None = None            # 12
    output_json: str | None = None           # 13
    slot14: str | None = None                # 14, "0" in all seen
    shape_mode: str | None = None            # 16, "static_shape"
    weight_memory_size: int | None = None    # 19.0, bytes
    internal_memory_size: int | None = None  # 19.1, bytes (feature memory)
    memory_slot2: int | None = None          # 19.2 (not decoded)
    buffers: list[bytes | None] = field(default_factory=list)  # 20 (format 6) or 4
    trailer: str | None = None               # JSON text after the FlatBuffer
    empty_slots: list[int] = field(default_factory=list)
    undecoded_slots: list[int] = field(default_factory=list)

    @property
    def graph(self) -> RknnGraph:
        if len(self.graphs) != 1:
            raise RknnFormatError(f"expected one graph, the model has {len(self.graphs)}")
        return self.graphs[0]

    @property
    def tensors(self) -> list[RknnTensor]:
        return self.graph.tensors

    @property
    def nodes(self) -> list[RknnNode]:
        return self.graph.nodes

    def tensor_buffer(self, kind: int) -> bytes | None:
        """The data of the first tensor of `kind` (KIND_REGCMD, KIND_TASK), None if absent."""
        for t in (t for g in self.graphs for t in g.tensors):
            if t.kind == kind:
                if not 0 < t.buffer < len(self.buffers) or self.buffers[t.buffer] is None:
                    raise RknnFormatError(f"tensor '{t.name}' names buffer {t.buffer}, but "
                                          f"the model has {len(self.buffers)} buffers")
                return self.buffers[t.buffer]
        return None

    def regcmd(self) -> bytes:
        """The register command buffer (u64 words), b"" when there is none."""
        return self.tensor_buffer(KIND_REGCMD) or b""

    def tasks(self) -> list[dict[str, int]]:
        """The task list: one dict per 40-byte `struct rknpu_task` record."""
        data = self.tensor_buffer(KIND_TASK) or b""
        if len(data) % TASK_RECORD.size:
            raise RknnFormatError(f"task buffer of {len(data)} bytes is not a whole number "
                                  f"of {TASK_RECORD.size}-byte records")
        return [dict(zip(TASK_FIELDS, TASK_RECORD.unpack_from(data, i), strict=True))
                for i in range(0, len(data), TASK_RECORD.size)]

    def trailer_json(self) -> object:
        return _parse_json(self.trailer or "null", "JSON trailer")


def _parse_json(text: str, what: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise RknnFormatError(f"{what} is not valid JSON: {str(e)[:80]}") from None


# -- op attributes (node slot 8) -----------------------------------------------------------

_ATTR_KINDS = {"INT": "int", "FLOAT": "float", "STRING": "string", "INTS": "ints",
               "FLOATS": "floats", "STRINGS": "strings"}
# The toolkit's attribute tables follow ONNX operator sets of this era (Split still has its
# `split` attribute): one slot per attribute, in alphabetical order.
_ATTR_OPSET = 12


@cache
def attribute_schema(op_type: str) -> tuple[tuple[str, str], ...] | None:
    """(name, kind) per slot of the attribute table of `op_type`, None if unknown.

    Fused vendor ops ("ConvRelu", "ConvExSwish" ...) take the table of their first op."""
    import onnx.defs

    if not (op_type.isascii() and op_type.isidentifier()):
        return None  # not an op name (a damaged file); onnx would reject the string
    candidates = [op_type]
    for prefix in ("ConvTranspose", "Conv"):
        if op_type.startswith(prefix):
            candidates.append(prefix)
            break
    for name in candidates:
        try:
            schema = onnx.defs.get_schema(name, _ATTR_OPSET, "")
        except onnx.defs.SchemaError:
            continue
        kinds = []
        for attr_name, attr in sorted(schema.attributes.items()):
            kind = _ATTR_KINDS.get(str(attr.type).rsplit(".", 1)[-1])
            if kind is None:
                return None
            kinds.append((attr_name, kind))
        return tuple(kinds)
    return None


def _read_attributes(table: Table, op_type: str | None) -> dict | None:
    schema = attribute_schema(op_type) if op_type else None
    if schema is None:
        return None
    present = table.present_slots()
    if any(slot >= len(schema) for slot in present):
        return None
    values: dict = {}
    for slot in present:
        name, kind = schema[slot]
        if kind == "int":
            values[name] = int(table.scalar(slot, "<i"))
        elif kind == "float":
            values[name] = float(table.scalar(slot, "<f"))
        elif kind == "string":
            values[name] = table.string(slot)
        elif kind == "ints":
            values[name] = table.array(slot, "<i4").tolist()
        elif kind == "floats":
            values[name] = table.array(slot, "<f4").tolist()
        else:
            values[name] = table.strings(slot)
    return values


def _attribute_table(op_type: str | None, attributes: dict) -> TableValue:
    schema = attribute_schema(op_type) if op_type else None
    if schema is None:
        raise RknnFormatError(f"node type '{op_type}': no attribute table is known")
    slots = {name: (slot, kind) for slot, (name, kind) in enumerate(schema)}
    fields: dict = {}
    for name, value in attributes.items():
        if name not in slots:
            raise RknnFormatError(f"node type '{op_type}' has no attribute '{name}'")
        slot, kind = slots[name]
        fields[slot] = {"int": lambda v: Scalar("<i", v), "float": lambda v: Scalar("<f", v),
                        "string": String, "ints": lambda v: Array(v, "<i4"),
                        "floats": lambda v: Array(v, "<f4"), "strings": Strings}[kind](value)
    return TableValue(fields)


# -- reading -------------------------------------------------------------------------------

PY_SCALAR_BYTES = 32
"""What one Python int / float in a list costs (object + pointer), charged against the
reader's budget on top of the vector's own bytes."""


def _scalars(table: Table, slot: int, dtype: str) -> list | None:
    values = table.array(slot, dtype)
    if values is None:
        return None
    table.reader.charge(len(values) * PY_SCALAR_BYTES, 0)
    return values.tolist()


def _ints(table: Table, slot: int) -> list[int] | None:
    return _scalars(table, slot, "<i4")


def _floats(table: Table, slot: int) -> list[float] | None:
    return _scalars(table, slot, "<f4")


MAX_SLOTS = 64  # the tables seen have at most 22 slots; more means a damaged vtable


def _other_slots(table: Table, known: set[int]) -> tuple[list[int], list[int]]:
    """Unknown present slots: (those holding an empty vector, the rest)."""
    empty, undecoded = [], []
    present = table.present_slots()
    if present and present[-1] >= MAX_SLOTS:
        raise RknnFormatError(f"byte {table.reader.origin + table.vtable}: {table.what} has "
                              f"a field in slot {present[-1]}, past the {MAX_SLOTS} slots "
                              f"a table can have here (damaged vtable?)")
    for slot in present:
        if slot in known:
            continue
        if _is_empty_vector(table, slot):
            empty.append(slot)
        else:
            undecoded.append(slot)
    return empty, undecoded


def _is_empty_vector(table: Table, slot: int) -> bool:
    pos = table.field_pos(slot)
    r = table.reader
    if pos is None or pos + 4 > table.pos + table.table_size:
        return False
    target = pos + struct.unpack_from("<I", r.data, pos)[0]
    return target % 4 == 0 and target + 4 <= r.size and \
        struct.unpack_from("<I", r.data, target)[0] == 0


_TENSOR_SLOTS = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 18, 20}


def _read_tensor(t: Table) -> RknnTensor:
    empty, undecoded = _other_slots(t, _TENSOR_SLOTS)
    return RknnTensor(
        name=t.string(5), dtype=int(t.scalar(0, "<B")), layout=int(t.scalar(1, "<B")),
        kind=int(t.scalar(2, "<B")), native_shape=_ints(t, 3), shape=_ints(t, 4),
        qmethod=t.string(6), qtype=t.string(7), min=_floats(t, 8), max=_floats(t, 9),
        scale=_floats(t, 10), zero_point=_ints(t, 11), size=int(t.scalar(12, "<i")),
        memory_offset=int(t.scalar(13, "<i")), buffer=int(t.scalar(18, "<i")),
        slot20=int(t.scalar(20, "<i")), empty_slots=empty, undecoded_slots=undecoded)


_NODE_SLOTS = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}


def _read_node(n: Table) -> RknnNode:
    empty, undecoded = _other_slots(n, _NODE_SLOTS)
    op_type = n.string(1)
    attributes = None
    params = n.table(8, "attributes")
    if params is not None:
        try:
            attributes = _read_attributes(params, op_type)
        except FlatBufferError:
            if n.reader.budget < 0:
                raise
            attributes = None  # a table that does not follow the ONNX schema
        if attributes is None:
            undecoded.append(8)
    return RknnNode(
        type=op_type, name=n.string(2), slot3=int(n.scalar(3, "<B")), inputs=_ints(n, 4),
        outputs=_ints(n, 5), slot6=_ints(n, 6), slot7=int(n.scalar(7, "<B")),
        attributes=attributes, blob=n.bytes(9), slot10=_ints(n, 10), slot11=_ints(n, 11),
        slot12=_ints(n, 12), slot13=int(n.scalar(13, "<B")), empty_slots=empty,
        undecoded_slots=sorted(undecoded))


_GRAPH_SLOTS = {0, 1, 2, 3, 4, 7, 8, 9, 10, 12}


def _read_graph(g: Table) -> RknnGraph:
    empty, undecoded = _other_slots(g, _GRAPH_SLOTS)
    refs = g.tables(7, "regcmd_ref")
    return RknnGraph(
        tensors=[_read_tensor(t) for t in g.tables(0, "tensor") or []],
        nodes=[_read_node(n) for n in g.tables(1, "node") or []],
        inputs=_ints(g, 2), outputs=_ints(g, 3), slot4=_ints(g, 4),
        regcmd_refs=None if refs is None else
        [RknnRegcmdRef(r.string(0), _ints(r, 1), _ints(r, 2)) for r in refs],
        slot8=_ints(g, 8), slot9=_ints(g, 9), slot10=_ints(g, 10), slot12=_ints(g, 12),
        empty_slots=empty, undecoded_slots=undecoded)


_ROOT_SLOTS = {0, 1, 2, 3, 6, 7, 8, 9, 10, 12, 13, 14, 16, 19}


def _buffers_slot(file_version: int) -> int:
    return 20 if file_version >= 6 else 4


def _read_root(root: Table, file_version: int) -> RknnModel:
    buffers_slot = _buffers_slot(file_version)
    empty, undecoded = _other_slots(root, _ROOT_SLOTS | {buffers_slot})
    memory = root.table(19, "memory")
    model = RknnModel(
        file_version=file_version, model_version=int(root.scalar(0, "<i")),
        platform=root.string(1), graphs=[_read_graph(g) for g in root.tables(2, "graph") or []],
        generator=root.string(3), compiler_version=int(root.scalar(6, "<i")),
        compiler=root.string(7), target=root.string(8), source=root.string(9),
        slot10=int(root.scalar(10, "<B")), input_json=root.string(12),
        output_json=root.string(13), slot14=root.string(14), shape_mode=root.string(16),
        buffers=[b.bytes(0) for b in root.tables(buffers_slot, "buffer") or []],
        empty_slots=empty, undecoded_slots=undecoded)
    if memory is not None:
        model.weight_memory_size = _optional_u64(memory, 0)
        model.internal_memory_size = _optional_u64(memory, 1)
        model.memory_slot2 = _optional_u64(memory, 2)
    return model


def _optional_u64(table: Table, slot: int) -> int | None:
    return None if table.field_pos(slot) is None else int(table.scalar(slot, "<Q"))


MAX_FILE_BYTES = 1 << 31
"""Larger files are refused before they are read (the biggest model zoo files are ~100 MB)."""


def _read_file(path: Path) -> bytes:
    """The bytes of a regular file of at most `MAX_FILE_BYTES`; RknnFormatError otherwise
    (a device or pipe would be read forever)."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise RknnFormatError(f"{path}: not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise RknnFormatError(f"{path}: {info.st_size} bytes, larger than the "
                                  f"{MAX_FILE_BYTES}-byte limit")
        return path.read_bytes()
    except OSError as e:
        raise RknnFormatError(f"cannot read {path}: {e.strerror or e}") from None


def read_rknn(source: bytes | bytearray | str | Path) -> RknnModel:
    """Decode a `.rknn` file (its bytes or its path). Raises RknnFormatError."""
    if isinstance(source, str | Path):
        data = _read_file(Path(source))
    else:
        data = bytes(source)
    if data[:8] == ENCRYPTED_MAGIC:
        raise RknnFormatError("encrypted by rknn-toolkit2 (only Rockchip's runtime decrypts "
                              "it)")
    if data[:8] == RKC_ENCRYPTED_MAGIC:
        raise RknnFormatError("encrypted model (rkc format): decrypt it with the key first "
                              "(rkc inspect --key KEYFILE, rkc encrypt --decrypt)")
    if len(data) < HEADER_SIZE:
        raise RknnFormatError(f"truncated: {len(data)} bytes, shorter than the "
                              f"{HEADER_SIZE}-byte header")
    if data[:4] != MAGIC:
        raise RknnFormatError(f"byte 0: bad magic {data[:4]!r}, expected {MAGIC!r}")
    version, length = struct.unpack_from("<QQ", data, 8)
    if version >> 8 == 1:
        raise RknnFormatError(f"byte 8: file format {version:#x} (RV1106/RV1103 'VPMN' "
                              f"models) is not supported")
    if version not in SUPPORTED_VERSIONS:
        raise RknnFormatError(f"byte 8: unsupported file format version {version} "
                              f"(this reader knows {SUPPORTED_VERSIONS.start}.."
                              f"{SUPPORTED_VERSIONS.stop - 1})")
    end = HEADER_SIZE + length
    if end + 8 > len(data):
        raise RknnFormatError(f"byte 16: FlatBuffer length {length} runs past the end of "
                              f"the {len(data)}-byte file (truncated?)")
    json_length = struct.unpack_from("<Q", data, end)[0]
    if end + 8 + json_length != len(data):
        raise RknnFormatError(f"byte {end}: JSON length {json_length} does not end at the "
                              f"end of the {len(data)}-byte file")
    try:
        trailer = data[end + 8:].decode("utf-8")
    except UnicodeDecodeError as e:
        raise RknnFormatError(f"byte {end + 8 + e.start}: JSON trailer is not UTF-8") from None
    reader = FlatBufferReader(data[HEADER_SIZE:end], origin=HEADER_SIZE)
    try:
        if reader.identifier() != FILE_IDENTIFIER:
            raise RknnFormatError(f"byte {HEADER_SIZE + 4}: FlatBuffer identifier "
                                  f"{reader.identifier()!r}, expected {FILE_IDENTIFIER!r}")
        model = _read_root(reader.root("model"), version)
    except FlatBufferError as e:
        raise RknnFormatError(str(e)) from None
    model.trailer = trailer
    return model


# -- writing -------------------------------------------------------------------------------

def _put(fields: dict, slot: int, value, make) -> None:
    if value is not None:
        fields[slot] = make(value)


def _put_scalar(fields: dict, slot: int, fmt: str, value: int | float, default=0) -> None:
    if value != default:
        fields[slot] = Scalar(fmt, value)


def _put_empty(fields: dict, slots: list[int]) -> None:
    for slot in slots:
        fields.setdefault(slot, Array([], "<i4"))


def _tensor_table(t: RknnTensor) -> TableValue:
    f: dict = {}
    _put_scalar(f, 0, "<B", t.dtype)
    _put_scalar(f, 1, "<B", t.layout)
    _put_scalar(f, 2, "<B", t.kind)
    _put(f, 3, t.native_shape, lambda v: Array(v, "<i4"))
    _put(f, 4, t.shape, lambda v: Array(v, "<i4"))
    _put(f, 5, t.name, String)
    _put(f, 6, t.qmethod, String)
    _put(f, 7, t.qtype, String)
    _put(f, 8, t.min, lambda v: Array(v, "<f4"))
    _put(f, 9, t.max, lambda v: Array(v, "<f4"))
    _put(f, 10, t.scale, lambda v: Array(v, "<f4"))
    _put(f, 11, t.zero_point, lambda v: Array(v, "<i4"))
    _put_scalar(f, 12, "<i", t.size)
    _put_scalar(f, 13, "<i", t.memory_offset)
    _put_scalar(f, 18, "<i", t.buffer)
    _put_scalar(f, 20, "<i", t.slot20)
    _put_empty(f, t.empty_slots)
    return TableValue(f)


def _node_table(n: RknnNode) -> TableValue:
    f: dict = {}
    _put(f, 1, n.type, String)
    _put(f, 2, n.name, String)
    _put_scalar(f, 3, "<B", n.slot3)
    for slot, values in ((4, n.inputs), (5, n.outputs), (6, n.slot6), (10, n.slot10),
                         (11, n.slot11), (12, n.slot12)):
        _put(f, slot, values, lambda v: Array(v, "<i4"))
    _put_scalar(f, 7, "<B", n.slot7)
    if n.attributes is not None:
        f[8] = _attribute_table(n.type, n.attributes)
    _put(f, 9, n.blob, Bytes)
    _put_scalar(f, 13, "<B", n.slot13)
    _put_empty(f, n.empty_slots)
    return TableValue(f)


def _graph_table(g: RknnGraph) -> TableValue:
    f: dict = {0: Tables([_tensor_table(t) for t in g.tensors]),
               1: Tables([_node_table(n) for n in g.nodes])}
    for slot, values in ((2, g.inputs), (3, g.outputs), (4, g.slot4), (8, g.slot8),
                         (9, g.slot9), (10, g.slot10), (12, g.slot12)):
        _put(f, slot, values, lambda v: Array(v, "<i4"))
    if g.regcmd_refs is not None:
        refs = []
        for r in g.regcmd_refs:
            rf: dict = {}
            _put(rf, 0, r.tensor, String)
            _put(rf, 1, r.words, lambda v: Array(v, "<i4"))
            _put(rf, 2, r.flags, lambda v: Array(v, "<i4"))
            refs.append(TableValue(rf))
        f[7] = Tables(refs)
    _put_empty(f, g.empty_slots)
    return TableValue(f)


def _root_table(m: RknnModel) -> TableValue:
    f: dict = {}
    _put_scalar(f, 0, "<i", m.model_version)
    _put(f, 1, m.platform, String)
    f[2] = Tables([_graph_table(g) for g in m.graphs])
    _put(f, 3, m.generator, String)
    _put_scalar(f, 6, "<i", m.compiler_version)
    _put(f, 7, m.compiler, String)
    _put(f, 8, m.target, String)
    _put(f, 9, m.source, String)
    _put_scalar(f, 10, "<B", m.slot10)
    _put(f, 12, m.input_json, String)
    _put(f, 13, m.output_json, String)
    _put(f, 14, m.slot14, String)
    _put(f, 16, m.shape_mode, String)
    memory: dict = {}
    for slot, value in enumerate((m.weight_memory_size, m.internal_memory_size,
                                  m.memory_slot2)):
        _put(memory, slot, value, lambda v: Scalar("<Q", v))
    if memory:
        f[19] = TableValue(memory)
    f[_buffers_slot(m.file_version)] = Tables(
        [TableValue({} if b is None else {0: Bytes(b, BUFFER_ALIGN)}) for b in m.buffers])
    _put_empty(f, m.empty_slots)
    return TableValue(f)


def nbg_trailer(model: RknnModel) -> str:
    """The legacy JSON description the toolkit appends, made from the graph's I/O tensors
    (rknncli and older tools read target and I/O from it)."""
    g = model.graph

    def norm_tensor(index: int, tensor_id: int) -> dict:
        t = g.tensors[index]
        qtype = t.qtype or t.dtype_name
        return {"dim_num": len(t.shape or []),
                "dtype": {"qnt_method": t.qmethod or "layer", "qnt_type": qtype,
                          "vx_type": qtype},
                "size": list(t.shape or []), "tensor_id": tensor_id, "url": t.name or ""}

    inputs, outputs = list(g.inputs or []), list(g.outputs or [])
    norm = [norm_tensor(i, k) for k, i in enumerate(inputs + outputs)]
    connection = [{"left": "input", "left_tensor_id": k, "node_id": 0,
                   "right_tensor": {"tensor_id": k, "type": "norm_tensor"}}
                  for k in range(len(inputs))]
    connection += [{"left": "output", "left_tensor_id": k, "node_id": 0,
                    "right_tensor": {"tensor_id": len(inputs) + k, "type": "norm_tensor"}}
                   for k in range(len(outputs))]
    graph = [{"left": "input", "left_tensor_id": k, "right": "norm_tensor",
              "right_tensor_id": k} for k in range(len(inputs))]
    graph += [{"left": "output", "left_tensor_id": k, "right": "norm_tensor",
               "right_tensor_id": len(inputs) + k} for k in range(len(outputs))]
    return json.dumps({
        "connection": connection, "const_tensor": [], "graph": graph,
        "input_num": len(inputs), "name": "rknn model",
        "network_platform": model.source or "", "node_num": 1,
        "nodes": [{"input_num": len(inputs), "lid": "npu_network_bin_graph", "name": "nnbg",
                   "nn": {"nbg": {"type": "RKNN_OP_NNBG"}}, "op": "RKNN_OP_NNBG",
                   "output_num": len(outputs), "uid": 0}],
        "norm_tensor": norm, "norm_tensor_num": len(norm),
        "ori_network_platform": model.source or "", "output_num": len(outputs),
        "target_platform": [model.target or ""], "version": "rkc",
        "virtual_tensor": []}, separators=(",", ":"), sort_keys=True)


def write_rknn(model: RknnModel) -> bytes:
    """Serialize `model` as a `.rknn` file; without a trailer, `nbg_trailer` makes one."""
    if model.file_version not in SUPPORTED_VERSIONS:
        raise RknnFormatError(f"cannot write file format version {model.file_version}")
    flatbuffer = build(_root_table(model), FILE_IDENTIFIER)
    trailer = (model.trailer if model.trailer is not None else nbg_trailer(model)).encode()
    header = MAGIC + bytes(4) + struct.pack("<QQ", model.file_version, len(flatbuffer))
    header += bytes(HEADER_SIZE - len(header))
    return header + flatbuffer + struct.pack("<Q", len(trailer)) + trailer
