"""The `.rknn` container: FlatBuffer reader/builder, vendor files, round trips, hostile files,
`rkc inspect`, and a third-party parser (rknncli) on files we write."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import struct
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import onnx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_cli import run_cli

from rkc.backends.flatbuf import (
    Array,
    Bytes,
    FlatBufferError,
    FlatBufferReader,
    Scalar,
    String,
    Strings,
    Tables,
    TableValue,
    build,
)
from rkc.backends.rknn_file import (
    KIND_TASK,
    RknnFormatError,
    RknnGraph,
    RknnModel,
    RknnNode,
    RknnTensor,
    read_rknn,
    write_rknn,
)
from rkc.cli import main as rkc_main
from rkc.errors import RkcError
from rkc.inspect_cli import inspect_json, inspect_text, regcmd_listing

VENDOR = Path(__file__).parent / "data" / "vendor"
RKNN = VENDOR / "rknn"

# What rknn-toolkit2 2.5.0 put in each file: target, NPU platform string, regcmd bytes, task
# records, tensors, nodes, buffers, weight and internal memory (bytes). The regcmd / task
# figures are those of the shared format notes (fmt §4), the memory figures those of the build
# logs ("Total Weight Memory Size: 5.5KB", "Total Internal Memory Size: 23KB" ...).
EXPECTED = {
    "conv_relu_rk3568_int8": ("rk3568", "RKNPU lite", 23104, 136, 10, 3, 7, 1280, 84992),
    "conv_relu_rk3588_fp16": ("rk3588", "RKNPU v2", 7488, 11, 9, 3, 7, 4416, 38912),
    "mobilenet_rk3568_int8": ("rk3568", "RKNPU lite", 13952, 46, 16, 5, 11, 2496, 56320),
    "mobilenet_rk3588_int8_singlecore": ("rk3588", "RKNPU v2", 3264, 3, 15, 5, 11, 6080,
                                         27648),
    "resblock_rk3568_fp16": ("rk3568", "RKNPU lite", 6080, 6, 22, 9, 14, 8384, 47104),
    "resblock_rk3568_int8": ("rk3568", "RKNPU lite", 6080, 6, 22, 9, 14, 5632, 23552),
    "resblock_rk3588_int8": ("rk3588", "RKNPU v2", 23616, 37, 25, 9, 16, 9728, 39936),
    "resblock_rk3588_int8_singlecore": ("rk3588", "RKNPU v2", 5696, 6, 25, 9, 16, 9728,
                                        39936),
}
FILES = sorted(EXPECTED)


def vendor_bytes(name: str) -> bytes:
    return (RKNN / f"{name}.rknn").read_bytes()


def onnx_io(model: str) -> tuple[list[tuple[str, list[int]]], list[tuple[str, list[int]]]]:
    graph = onnx.load(VENDOR / f"{model}.onnx").graph

    def dims(values):
        return [(v.name, [d.dim_value for d in v.type.tensor_type.shape.dim]) for v in values]

    return dims(graph.input), dims(graph.output)


# -- FlatBuffer reader and builder ---------------------------------------------------------

def test_builder_output_reads_back_with_the_flatbuffers_library():
    flatbuffers = pytest.importorskip("flatbuffers")
    from flatbuffers.table import Table as FbTable

    child = TableValue({0: String("child"), 2: Scalar("<q", -5)})
    root = TableValue({0: Scalar("<i", 6), 1: String("RKNPU v2"), 3: Array([1, -2, 3], "<i4"),
                       4: Tables([child, TableValue({})]), 5: Bytes(b"\x01\x02\x03", 64),
                       7: Scalar("<B", 2), 8: Array([0.5, -1.25], "<f4")})
    buf = bytearray(build(root, b"RKNN"))
    assert buf[4:8] == b"RKNN" and len(buf) % 8 == 0
    tab = FbTable(buf, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0))

    def field(slot: int) -> int:
        return tab.Offset(4 + 2 * slot)

    assert tab.Get(flatbuffers.number_types.Int32Flags, tab.Pos + field(0)) == 6
    assert tab.String(tab.Pos + field(1)) == b"RKNPU v2"
    assert field(2) == 0 and field(6) == 0
    start = tab.Vector(field(3))
    assert [tab.Get(flatbuffers.number_types.Int32Flags, start + 4 * i)
            for i in range(tab.VectorLen(field(3)))] == [1, -2, 3]
    assert tab.VectorLen(field(4)) == 2
    sub = FbTable(buf, tab.Indirect(tab.Vector(field(4))))
    assert sub.String(sub.Pos + sub.Offset(4)) == b"child"
    assert sub.Get(flatbuffers.number_types.Int64Flags, sub.Pos + sub.Offset(8)) == -5
    data_start = tab.Vector(field(5))
    assert bytes(buf[data_start:data_start + 3]) == b"\x01\x02\x03" and data_start % 64 == 0
    assert tab.Get(flatbuffers.number_types.Uint8Flags, tab.Pos + field(7)) == 2


scalar_fields = st.one_of(
    st.builds(lambda v: Scalar("<i", v), st.integers(-2**31, 2**31 - 1)),
    st.builds(lambda v: Scalar("<B", v), st.integers(0, 255)),
    st.builds(lambda v: Scalar("<Q", v), st.integers(0, 2**64 - 1)),
)
leaf_fields = st.one_of(
    scalar_fields,
    st.builds(String, st.text(max_size=20)),
    st.builds(lambda v: Array(v, "<i4"), st.lists(st.integers(-2**31, 2**31 - 1), max_size=9)),
    st.builds(Bytes, st.binary(max_size=40), st.sampled_from([1, 16, 64])),
    st.builds(Strings, st.lists(st.text(max_size=8), max_size=4)),
)
leaf_tables = st.builds(TableValue, st.dictionaries(st.integers(0, 12), leaf_fields, max_size=6))
tables = st.builds(TableValue, st.dictionaries(
    st.integers(0, 12), st.one_of(leaf_fields, leaf_tables,
                                  st.builds(Tables, st.lists(leaf_tables, max_size=4))),
    max_size=8))


def read_back(table, value):
    """The builder's value of the field of `table` read back with our reader."""
    reader_value = {}
    for slot, field in value.fields.items():
        if isinstance(field, Scalar):
            reader_value[slot] = table.scalar(slot, field.fmt)
        elif isinstance(field, String):
            reader_value[slot] = table.string(slot)
        elif isinstance(field, Array):
            reader_value[slot] = table.array(slot, field.dtype).tolist()
        elif isinstance(field, Bytes):
            reader_value[slot] = table.bytes(slot)
        elif isinstance(field, Strings):
            reader_value[slot] = table.strings(slot)
        elif isinstance(field, TableValue):
            reader_value[slot] = read_back(table.table(slot), field)
        else:
            reader_value[slot] = [read_back(t, f)
                                  for t, f in zip(table.tables(slot), field.values, strict=True)]
    return reader_value


def expected_value(value):
    out = {}
    for slot, field in value.fields.items():
        if isinstance(field, Scalar):
            out[slot] = field.value
        elif isinstance(field, String):
            out[slot] = field.value
        elif isinstance(field, Array):
            out[slot] = list(field.values)
        elif isinstance(field, Bytes):
            out[slot] = field.data
        elif isinstance(field, Strings):
            out[slot] = list(field.values)
        elif isinstance(field, TableValue):
            out[slot] = expected_value(field)
        else:
            out[slot] = [expected_value(f) for f in field.values]
    return out


@given(tables)
@settings(max_examples=150, deadline=None)
def test_builder_and_reader_agree_on_random_tables(root):
    data = build(root, b"TEST")
    reader = FlatBufferReader(data)
    assert reader.identifier() == b"TEST"
    assert read_back(reader.root(), root) == expected_value(root)
    present = reader.root().present_slots()
    assert present == sorted(root.fields)


def test_reader_rejects_a_vector_longer_than_the_buffer():
    data = bytearray(build(TableValue({0: Array([1, 2, 3], "<i4")})))
    table = FlatBufferReader(bytes(data)).root()
    length_at = table.field_pos(0) + struct.unpack_from("<I", data, table.field_pos(0))[0]
    struct.pack_into("<I", data, length_at, 0x3FFFFFFF)
    with pytest.raises(FlatBufferError, match=r"byte \d+: .*vector of 1073741823 x 4 bytes"):
        FlatBufferReader(bytes(data), origin=0).root().array(0, "<i4")


def shared_shape_file(n: int) -> bytes:
    """A graph of n tensors that all point at one tensor table with an n-element shape."""
    out = bytearray(struct.pack("<I", 0) + b"RKNN")
    # Laid out by hand in the order every uoffset points forward:
    # root vtable, root, graphs vector, graph vtable, graph, tensors vector, tensor vtable,
    # tensor, shape vector.
    root_vt = len(out)
    out += struct.pack("<HHHHHxx", 10, 8, 0, 0, 4)        # root: slot 2 at +4
    root = len(out)
    out += struct.pack("<iI", root - root_vt, 0)
    graphs_vec = len(out)
    out += struct.pack("<II", 1, 0)
    graph_vt = len(out)
    out += struct.pack("<HHHxx", 6, 8, 4)                  # graph: slot 0 at +4
    graph = len(out)
    out += struct.pack("<iI", graph - graph_vt, 0)
    tensors_vec = len(out)
    out += struct.pack("<I", n) + bytes(4 * n)
    tensor_vt = len(out)
    out += struct.pack("<HHHHHH", 12, 8, 0, 0, 0, 4)      # tensor: slot 3 at +4
    tensor = len(out)
    out += struct.pack("<iI", tensor - tensor_vt, 0)
    shape_vec = len(out)
    out += struct.pack("<I", n) + bytes(4 * n)
    struct.pack_into("<I", out, 0, root)
    struct.pack_into("<I", out, root + 4, graphs_vec - (root + 4))
    struct.pack_into("<I", out, graphs_vec + 4, graph - (graphs_vec + 4))
    struct.pack_into("<I", out, graph + 4, tensors_vec - (graph + 4))
    struct.pack_into("<I", out, tensor + 4, shape_vec - (tensor + 4))
    for i in range(n):
        at = tensors_vec + 4 + 4 * i
        struct.pack_into("<I", out, at, tensor - at)
    return wrap_flatbuffer(bytes(out))


def test_offsets_pointing_at_shared_data_stop_at_the_budget():
    """3000 tensors sharing one 3000-element shape would decode 9M integers from 24 KB: the
    reader stops once 8x the buffer size is decoded. The same layout with 10 tensors reads."""
    small = read_rknn(shared_shape_file(10))
    assert len(small.tensors) == 10 and small.tensors[9].native_shape == [0] * 10
    file = shared_shape_file(3000)
    start = time.perf_counter()
    with pytest.raises(RknnFormatError, match="exceeds 8x the buffer size"):
        read_rknn(file)
    assert time.perf_counter() - start < 2.0


def wrap_flatbuffer(flatbuffer: bytes, trailer: bytes = b"{}") -> bytes:
    header = b"RKNN" + bytes(4) + struct.pack("<QQ", 6, len(flatbuffer))
    return header + bytes(64 - len(header)) + flatbuffer + struct.pack("<Q", len(trailer)) \
        + trailer


# -- vendor files --------------------------------------------------------------------------

@pytest.mark.parametrize("name", FILES)
def test_vendor_file_decodes_to_the_documented_values(name):
    target, platform, regcmd, tasks, tensors, nodes, buffers, weights, internal = EXPECTED[name]
    m = read_rknn(RKNN / f"{name}.rknn")
    assert (m.file_version, m.model_version, m.compiler_version) == (6, 6, 20500)
    assert (m.target, m.platform, m.source, m.shape_mode) == (target, platform, "ONNX",
                                                              "static_shape")
    assert m.compiler.startswith("2.5.0(compiler version: 2.5.0")
    assert (len(m.tensors), len(m.nodes), len(m.buffers)) == (tensors, nodes, buffers)
    assert (m.weight_memory_size, m.internal_memory_size) == (weights, internal)
    assert len(m.regcmd()) == regcmd and len(m.tasks()) == tasks
    assert m.trailer_json()["target_platform"] == [target]
    # nothing the reader met was left undecoded
    assert not m.undecoded_slots and not m.graph.undecoded_slots
    assert all(not t.undecoded_slots for t in m.tensors)
    assert all(not n.undecoded_slots for n in m.nodes)

    # inputs and outputs are those of the ONNX model
    (model, *_rest) = name.split("_rk")
    inputs, outputs = onnx_io(model)
    assert [(m.tensors[i].name, m.tensors[i].shape) for i in m.graph.inputs] == inputs
    assert [(m.tensors[i].name, m.tensors[i].shape) for i in m.graph.outputs] == outputs
    assert [m.nodes[0].type, m.nodes[-1].type] == ["InputOperator", "OutputOperator"]

    # the input: 3 channels stay packed (C2 = 3), raw 0..255 mapped to [-1, 1] by mean/std
    x = m.tensors[m.graph.inputs[0]]
    assert x.native_shape == [1, 1, 32, 32, 3] and x.kind == 1 and x.layout == 64
    if "int8" in name:
        assert (x.dtype, x.qtype, x.qmethod) == (3, "int8", "layer")
        assert x.zero_point == [0] and x.min == [-1.0] and x.max == [1.0]
        assert math.isclose(x.scale[0], 2 / 255, rel_tol=1e-6)
        assert x.size == 3 * 32 * 32
    else:
        assert x.dtype == 10 and not x.scale


@pytest.mark.parametrize("name", FILES)
def test_vendor_task_records_point_into_the_regcmd_buffer(name):
    m = read_rknn(RKNN / f"{name}.rknn")
    regcmd, tasks = m.regcmd(), m.tasks()
    conv_mask = 0x1F if m.target == "rk3568" else 0x1D
    for t in tasks:
        assert t["regcmd_addr"] % 64 == 0
        assert t["regcmd_addr"] + 8 * (t["regcfg_amount"] + 4) <= len(regcmd)
        assert t["int_clear"] == 0x1FFFF
        # the last word of each task's tail is the op-enable write (block 0x0081, reg 0x0008)
        end = t["regcmd_addr"] + 8 * (t["regcfg_amount"] + 4)
        word = struct.unpack_from("<Q", regcmd, end - 8)[0]
        assert (word >> 48, word & 0xFFFF, (word >> 16) & 0xFFFFFFFF) == \
            (0x0081, 0x0008, t["enable_mask"])
    assert tasks[0]["enable_mask"] == conv_mask  # every model starts with a convolution


def test_resblock_rk3568_tensors_nodes_and_memory_plan():
    m = read_rknn(RKNN / "resblock_rk3568_int8.rknn")
    by_name = {t.name: t for t in m.tensors}
    # weights pre-packed in native layout: 16x3x3x3 int8, input channels padded to C2 = 8
    w1 = by_name["w1"]
    assert (w1.kind, w1.layout, w1.dtype, w1.shape, w1.native_shape) == \
        (4, 65, 3, [16, 3, 3, 3], [1, 1, 3, 3, 16, 8])
    assert w1.size == 1152 and len(m.buffers[w1.buffer]) == 1152
    # the feature memory plan of the build log: r1 at 0xc00, p1 at 0x4c00, r2 at 0
    assert [by_name[n].memory_offset for n in ("r1", "p1", "r2", "gap_2conv0")] == \
        [0xC00, 0x4C00, 0, 0x1000]
    r1 = by_name["r1"]
    assert r1.native_shape == [1, 2, 32, 32, 8] and r1.zero_point == [-128] and r1.min == [0.0]
    assert math.isclose(r1.scale[0], r1.max[0] / 255, rel_tol=1e-6)
    # node attributes (node slot 8) agree with the ONNX model's Conv and MaxPool
    nodes = {n.name: n for n in m.nodes}
    assert nodes["Conv:c1"].type == "ConvRelu"
    assert nodes["Conv:c1"].attributes == {"auto_pad": "NOTSET", "dilations": [1, 1],
                                           "kernel_shape": [3, 3], "pads": [1, 1, 1, 1],
                                           "strides": [1, 1]}
    assert nodes["MaxPool:p1"].attributes["kernel_shape"] == [2, 2]
    assert nodes["MaxPool:p1"].attributes["strides"] == [2, 2]
    assert nodes["Conv:gap_2conv0"].attributes["group"] == 16
    assert [m.tensors[i].name for i in nodes["Conv:c1"].inputs] == ["input", "w1", "b1"]
    assert m.tensor_buffer(KIND_TASK) is not None and len(m.tensor_buffer(KIND_TASK)) == 240


# -- round trips ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", FILES)
def test_round_trip_keeps_every_field(name):
    original = vendor_bytes(name)
    model = read_rknn(original)
    written = write_rknn(model)
    again = read_rknn(written)
    assert again == model
    assert write_rknn(again) == written  # the writer is deterministic
    assert again.regcmd() == model.regcmd() and again.tasks() == model.tasks()
    assert written[:4] == b"RKNN" and written[68:72] == b"RKNN"
    assert struct.unpack_from("<QQ", written, 8) == (6, len(written) - 72 - len(
        model.trailer.encode()))


def test_format_4_models_keep_buffers_in_slot_4():
    model = read_rknn(vendor_bytes("conv_relu_rk3588_fp16"))
    model.file_version = 4
    data = write_rknn(model)
    root = FlatBufferReader(data[64:64 + struct.unpack_from("<Q", data, 16)[0]]).root()
    assert root.field_pos(20) is None and len(root.tables(4)) == len(model.buffers)
    assert read_rknn(data) == model


F32_2_255 = struct.unpack("<f", struct.pack("<f", 2 / 255))[0]  # floats are stored as f32


def synthetic_model() -> RknnModel:
    """A small model made from scratch: input -> Conv -> output, with one weight buffer."""
    tensors = [
        RknnTensor(),
        RknnTensor(name="images", dtype=3, layout=64, kind=1, native_shape=[1, 1, 8, 8, 3],
                   shape=[1, 3, 8, 8], qmethod="layer", qtype="int8", min=[-1.0], max=[1.0],
                   scale=[F32_2_255], zero_point=[0], size=192),
        RknnTensor(name="w", dtype=3, layout=65, kind=4, native_shape=[1, 1, 3, 3, 4, 16],
                   shape=[4, 3, 3, 3], size=576, buffer=1),
        RknnTensor(name="logits", dtype=3, kind=2, shape=[1, 4], native_shape=[1, 4],
                   qmethod="layer", qtype="int8", min=[0.0], max=[4.0], scale=[2 * F32_2_255],
                   zero_point=[-128], size=4),
        RknnTensor(name="regcmd", dtype=13, kind=9, buffer=2),
    ]
    nodes = [RknnNode(type="InputOperator", name="InputOperator:images", inputs=[],
                      outputs=[1]),
             RknnNode(type="ConvRelu", name="Conv:c", slot3=2, inputs=[1, 2], outputs=[3],
                      slot7=1, attributes={"kernel_shape": [3, 3], "pads": [1, 1, 1, 1],
                                           "group": 1}),
             RknnNode(type="OutputOperator", name="OutputOperator:logits", inputs=[3],
                      outputs=[])]
    return RknnModel(platform="RKNPU v2", target="rk3588", source="ONNX", compiler="rkc",
                     compiler_version=1, shape_mode="static_shape",
                     graphs=[RknnGraph(tensors=tensors, nodes=nodes, inputs=[1], outputs=[3])],
                     buffers=[None, bytes(range(256)) * 2 + bytes(64), bytes(64)],
                     weight_memory_size=576, internal_memory_size=1024)


def test_synthetic_model_round_trips_with_a_generated_trailer():
    model = synthetic_model()
    data = write_rknn(model)
    back = read_rknn(data)
    trailer = back.trailer_json()
    assert trailer["target_platform"] == ["rk3588"]
    assert [t["url"] for t in trailer["norm_tensor"]] == ["images", "logits"]
    assert trailer["norm_tensor"][0]["size"] == [1, 3, 8, 8]
    back.trailer = None
    assert back == model
    assert back.nodes[1].attributes == {"group": 1, "kernel_shape": [3, 3],
                                        "pads": [1, 1, 1, 1]}


def test_unknown_attribute_is_an_error_when_writing():
    model = synthetic_model()
    model.nodes[1].attributes = {"kernel": [3, 3]}
    with pytest.raises(RknnFormatError, match="'ConvRelu' has no attribute 'kernel'"):
        write_rknn(model)


# -- bad and hostile files -----------------------------------------------------------------

@pytest.mark.parametrize("mutate, message", [
    (lambda d: d[:40], "truncated: 40 bytes"),
    (lambda d: d[:5000], "byte 16: FlatBuffer length 23296 runs past the end"),
    (lambda d: d[:-1], "JSON length 1023 does not end at the end"),
    (lambda d: d + b"\0", "JSON length 1023 does not end at the end"),
    (lambda d: b"RKNX" + d[4:], "byte 0: bad magic"),
    (lambda d: b"CYPTRKNN" + d[8:], "encrypted by rknn-toolkit2"),
    (lambda d: d[:8] + struct.pack("<Q", 7) + d[16:], "unsupported file format version 7"),
    (lambda d: d[:8] + struct.pack("<Q", 0x103) + d[16:], "VPMN"),
    (lambda d: d[:68] + b"XXXX" + d[72:], "byte 68: FlatBuffer identifier"),
    (lambda d: d[:64] + struct.pack("<I", 0xFFFFFF) + d[68:], "byte 64: offset to the model table"),
    (lambda d: d[:-1023] + b"\xff" + d[-1022:], "JSON trailer is not UTF-8"),
])
def test_bad_files_give_one_line_errors(mutate, message):
    data = mutate(vendor_bytes("resblock_rk3568_int8"))
    with pytest.raises(RknnFormatError) as info:
        read_rknn(data)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_field_past_the_schemas_slots_is_an_error():
    tensor = TableValue({100: Scalar("<B", 1)})
    flatbuffer = build(TableValue({2: Tables([TableValue({0: Tables([tensor])})])}), b"RKNN")
    with pytest.raises(RknnFormatError, match=r"model.graph\[0\].tensor\[0\] has a field "
                                              r"in slot 100, past the 64 slots"):
        read_rknn(wrap_flatbuffer(flatbuffer))


def test_undecodable_node_type_leaves_attributes_undecoded():
    """A damaged op name (found by fuzzing: onnx rejected the string) keeps the node, its
    attribute table is reported as not decoded and the model still writes."""
    data = vendor_bytes("resblock_rk3568_int8")
    at = data.index(b"ConvRelu\0")
    model = read_rknn(data[:at] + b"Conv\xffelu" + data[at + 8:])
    (index,) = [i for i, n in enumerate(model.nodes) if n.type == "Conv\udcffelu"]
    assert model.nodes[index].attributes is None and model.nodes[index].undecoded_slots == [8]
    assert read_rknn(write_rknn(model)).nodes[index].type == "Conv\udcffelu"


FUZZ_BASE = vendor_bytes("resblock_rk3568_int8")
FUZZ_TABLES_END = 10500  # the FlatBuffer's tables, strings and small vectors lie before this
INTERESTING = [0, 1, 2, 4, 0x7F, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFF0]


@st.composite
def mutated_files(draw) -> bytes:
    data = bytearray(FUZZ_BASE)
    for _ in range(draw(st.integers(1, 8))):
        start, end = draw(st.sampled_from([(72, FUZZ_TABLES_END)] * 3 + [(0, len(data))]))
        pos = draw(st.integers(start, end - 4))
        choice = draw(st.integers(0, 2))
        if choice == 0:
            data[pos] = draw(st.integers(0, 255))
        elif choice == 1:
            struct.pack_into("<I", data, pos & ~3, draw(st.sampled_from(INTERESTING)))
        else:
            struct.pack_into("<H", data, pos & ~1, draw(st.integers(0, 0xFFFF)))
    if draw(st.integers(0, 4)) == 0:
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data)


def random_files():
    header = FUZZ_BASE[:72]
    return st.one_of(
        mutated_files(),
        st.binary(max_size=4096),
        st.builds(lambda body: header + body, st.binary(max_size=4096)),
    )


def check_hostile(data: bytes) -> None:
    """A file either parses (and then writes and re-reads) or raises RknnFormatError, within
    a time bound and a memory bound linear in its size."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        model = read_rknn(data)
        event("parsed")
    except RknnFormatError as e:
        assert "\n" not in str(e)
        event("RknnFormatError: " + re.sub(r"\d+", "N", str(e))[:48])
        model = None
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 200 * len(data) + (1 << 20)
    if model is not None:
        written = write_rknn(model)
        assert write_rknn(read_rknn(written)) == written


@given(random_files())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzzed_files_parse_or_raise_rknn_format_error(data):
    check_hostile(data)


# -- rkc inspect ---------------------------------------------------------------------------

@given(mutated_files())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_inspect_of_fuzzed_files_is_text_or_one_line_error(data):
    try:
        model = read_rknn(data)
        text = inspect_text(model, "fuzzed.rknn", len(data), regcmd_listing(model))
        json.dumps(inspect_json(model, len(data)))
    except RkcError as e:
        assert "\n" not in str(e)
        event("RkcError")
    else:
        assert text.isprintable() or all(line.isprintable() for line in text.splitlines())
        event("inspected")


def test_inspect_prints_header_tensors_nodes_and_tasks(capsys):
    code, out, err = run_cli(rkc_main, ["inspect", str(RKNN / "resblock_rk3568_int8.rknn")],
                             capsys)
    assert code == 0, err
    assert "target: rk3568" in out and "platform: RKNPU lite" in out
    assert "weight memory: 5632 B" in out and "internal memory: 23552 B" in out
    assert "tensors (22):" in out and "nodes (9):" in out and "tasks (6)" in out
    lines = out.splitlines()
    input_row = next(line for line in lines if line.split()[:2] == ["12", "input"])
    assert "1x3x32x32" in input_row and "1x1x32x32x3" in input_row
    assert "scale=0.00784314 zp=0" in input_row
    conv_row = next(line for line in lines if "Conv:c1" in line)
    assert "12:input 1:w1 2:b1" in conv_row and "kernel_shape=3,3" in conv_row
    assert "regcmd 6080 bytes (760 words)" in out


def test_inspect_regcmd_disassembles_tasks(capsys):
    code, out, err = run_cli(rkc_main, ["inspect", str(RKNN / "resblock_rk3568_int8.rknn"),
                                        "--regcmd"], capsys)
    assert code == 0, err
    listing = out.split("register commands:\n", 1)[1]
    assert listing.startswith("task 0: op 1 at 0x0000, 133 writes, enable 0x1f")
    assert "task 5:" in listing and "CNA." in listing and "DPU." in listing


def test_inspect_json_is_json(capsys):
    code, out, err = run_cli(rkc_main, ["inspect", str(RKNN / "resblock_rk3588_int8.rknn"),
                                        "--json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["target"] == "rk3588" and doc["file_version"] == 6
    assert len(doc["tasks"]) == 37 and doc["regcmd_bytes"] == 23616
    (graph,) = doc["graphs"]
    names = [t["name"] for t in graph["tensors"]]
    assert [names[i] for i in graph["inputs"]] == ["input"]
    assert [names[i] for i in graph["outputs"]] == ["output"]
    assert doc["buffers"][graph["tensors"][names.index("regcmd")]["buffer"]] == 23616


@pytest.mark.parametrize("how", ["truncated", "missing", "garbage"])
def test_inspect_bad_file_exits_2_with_one_line(how, tmp_path, capsys):
    path = tmp_path / "bad.rknn"
    if how == "truncated":
        path.write_bytes(vendor_bytes("resblock_rk3568_int8")[:3000])
    elif how == "garbage":
        path.write_bytes(b"RKNN" + bytes(100))
    code, out, err = run_cli(rkc_main, ["inspect", str(path)], capsys)
    assert code == 2 and out == ""
    assert err.startswith("rkc: error: ") and err.count("\n") == 1
    assert "Traceback" not in err


# -- a third-party parser on our files -----------------------------------------------------

def run_rknncli(path: Path) -> str:
    code = ("import sys; from rknncli.cli import main; sys.argv = ['rknncli', sys.argv[1]]; "
            "sys.exit(main())")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


needs_rknncli = pytest.mark.skipif(importlib.util.find_spec("rknncli") is None,
                                   reason="rknncli (test-only dependency) is not installed")


@needs_rknncli
def test_rknncli_reads_a_rewritten_vendor_model(tmp_path):
    model = read_rknn(vendor_bytes("resblock_rk3568_int8"))
    model.trailer = None  # our own nbg trailer, not the vendor's
    path = tmp_path / "resblock.rknn"
    path.write_bytes(write_rknn(model))
    out = run_rknncli(path)
    assert "Target Platform: rk3568" in out
    assert "Format: RKNPU lite" in out and "Source: ONNX" in out and "Runtime: rk3568" in out
    assert "Number of graphs: 1" in out
    assert 'ValueInfo "input": type INT8, shape [1, 3, 32, 32]' in out
    assert 'ValueInfo "output": type INT8, shape [1, 10]' in out


@needs_rknncli
def test_rknncli_reads_a_synthetic_model(tmp_path):
    path = tmp_path / "synthetic.rknn"
    path.write_bytes(write_rknn(synthetic_model()))
    out = run_rknncli(path)
    assert "Target Platform: rk3588" in out and "Runtime: rk3588" in out
    assert "Format: RKNPU v2" in out and "Compiler: rkc" in out
    assert 'ValueInfo "images": type INT8, shape [1, 3, 8, 8]' in out
    assert 'ValueInfo "logits": type INT8, shape [1, 4]' in out


def test_task_records_listing_the_regcmd_many_times_are_refused(capsys):
    """500 records each listing a whole 1000-word buffer would make the disassembly
    quadratic (minutes, GBs): `rkc inspect --regcmd` refuses them in one line."""
    from rkc.backends.regcmd import TAIL_WORDS
    from rkc.backends.rknn_file import KIND_REGCMD, TASK_RECORD

    m = read_rknn(VENDOR / "rknn" / "resblock_rk3588_int8_singlecore.rknn")
    words = m.tensor_buffer(KIND_REGCMD)
    regcmd = (words * (8000 // len(words) + 1))[:8000]
    records = b"".join(TASK_RECORD.pack(0, 0, 0x1d, 0x300, 0x1ffff, 0, 1000 - TAIL_WORDS, 0, 0)
                       for _ in range(500))
    for t in (t for g in m.graphs for t in g.tensors):
        if t.kind == KIND_REGCMD:
            m.buffers[t.buffer] = regcmd
        if t.kind == KIND_TASK:
            m.buffers[t.buffer] = records
    start = time.perf_counter()
    with pytest.raises(RkcError, match="more than 4x the 1000 words"):
        regcmd_listing(read_rknn(write_rknn(m)))
    assert time.perf_counter() - start < 2.0


def test_a_device_is_not_read(tmp_path):
    with pytest.raises(RknnFormatError, match="not a regular file"):
        read_rknn("/dev/zero")
    with pytest.raises(RknnFormatError, match="cannot read"):
        read_rknn(tmp_path / "missing.rknn")
