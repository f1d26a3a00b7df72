"""The register database and the regcmd codec: field encoding, words, task tails, task
records, disassembly; checked against rknn-toolkit2's own programs (tests/data/vendor/regcmd,
extracted by tools/extract_vendor_regcmd.py) and the ONNX models they were built from."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rkc.backends.regcmd import (
    ALL_INTERRUPTS,
    PRE_OP_EN_WORD,
    TASK_ALIGN_BYTES,
    TASK_RECORD_BYTES,
    RegWrite,
    TaskProgram,
    TaskRecord,
    assemble,
    completion_interrupts,
    decode_fields,
    describe,
    disassemble,
    disassemble_tasks,
    encode_fields,
    fetch_amount,
    pack_word,
    reg_write,
    split_tasks,
    task_tail,
    unexplained_bits,
    unpack_task_records,
    unpack_word,
    words_from_bytes,
    words_to_bytes,
)
from rkc.backends.registers import Register, all_tables, register_table
from rkc.errors import RkcError

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "tests" / "data" / "vendor"
REGCMD = VENDOR / "regcmd"
CHIPS = ["rk3588", "rk3568", "rk3566", "rk3576"]
ALL_REGISTERS = [(t.chip, r) for t in all_tables() for r in t.registers]
SETTINGS = settings(max_examples=300, deadline=None)


def vendor_program(name: str) -> tuple[list[int], list[TaskRecord]]:
    words = words_from_bytes((REGCMD / f"{name}.regcmd.bin").read_bytes())
    return words, unpack_task_records((REGCMD / f"{name}.task.bin").read_bytes())


# ------------------------------------------------------------------------- the database

@pytest.mark.parametrize("chip", CHIPS)
def test_blocks_targets_follow_the_offset_rule(chip):
    """hw §2.1: target = (1 << (8 + (offset >> 12))) | 1 for every windowed block."""
    table = register_table(chip)
    for block in table.blocks.values():
        if block.window:
            assert block.target == (1 << (8 + (block.base >> 12))) | 1, block.name
    for reg in table.registers:
        assert table.lookup(reg.block, reg.offset) is reg
        assert table.register(reg.qualified_name) is reg


def test_chip_tables():
    assert register_table("RK3566") is register_table("rk3568")
    assert register_table("rk3576").registers == register_table("rk3588").registers
    assert register_table("rk3588").pc_amount_unit == 2
    assert register_table("rk3568").pc_amount_unit == 1
    rk3588, rk3568 = register_table("rk3588"), register_table("rk3568")
    # documented RK3568-only registers (fmt §4: 0x1004 is RK3588's S_POINTER, also there)
    for off in [0x1018, *range(0x1114, 0x1140, 4), *range(0x1210, 0x1234, 4)]:
        assert rk3568.lookup("CNA", off) and not rk3588.lookup("CNA", off), hex(off)
    assert rk3568.lookup("CNA", 0x1004).name == "S_POINTER"
    assert rk3568.lookup("CMAC", 0x200C).name == "MISC_CFG" and "CMAC" not in rk3588.blocks
    # the CORE map shifted by one register on RK3568 (iav)
    assert rk3568.lookup("CORE", 0x3010).name == "DATAOUT_SIZE_0"
    assert rk3588.lookup("CORE", 0x3014).name == "DATAOUT_SIZE_0"
    assert rk3568.lookup("CORE", 0x301C) is None
    assert rk3588.register("CORE.UNK_3030").unknown and rk3588.register("DPU.UNK_40C4").unknown
    with pytest.raises(RkcError, match="unknown target 'rk9999'"):
        register_table("rk9999")
    with pytest.raises(RkcError, match="RK3588 has no register CNA.NOPE"):
        rk3588.register("CNA.NOPE")


def test_register_counts_per_block():
    counts = {t.chip: {b: len(t.block_registers(b)) for b in t.blocks} for t in all_tables()}
    assert counts["RK3588"] == {"PC": 12, "CNA": 52, "CORE": 9, "DPU": 53, "DPU_RDMA": 20,
                                "PPU": 20, "PPU_RDMA": 10, "PRE_OP_EN": 1, "ALL": 1}
    assert counts["RK3568"] == {"PC": 12, "CNA": 73, "CMAC": 2, "CORE": 7, "DPU": 53,
                                "DPU_RDMA": 23, "PPU": 22, "PPU_RDMA": 11, "PRE_OP_EN": 1,
                                "ALL": 1}


# ----------------------------------------------------------------------- field encoding

@st.composite
def registers_and_values(draw):
    chip, reg = draw(st.sampled_from(ALL_REGISTERS))
    values = {f.name: draw(st.integers(f.min_value, f.max_value)) for f in reg.fields}
    return reg, values


@SETTINGS
@given(registers_and_values())
def test_in_range_fields_round_trip(case):
    reg, values = case
    value = encode_fields(reg, **values)
    assert 0 <= value < 1 << 32
    assert decode_fields(reg, value) == values
    assert unexplained_bits(reg, value) == 0


@SETTINGS
@given(st.sampled_from(ALL_REGISTERS), st.data())
def test_out_of_range_fields_are_errors(chip_reg, data):
    _, reg = chip_reg
    f = data.draw(st.sampled_from(reg.fields))
    value = data.draw(st.one_of(st.integers(f.max_value + 1, f.max_value + (1 << 40)),
                                st.integers(f.min_value - (1 << 40), f.min_value - 1)))
    kind = "signed " if f.signed else ""
    with pytest.raises(RkcError) as info:
        encode_fields(reg, **{f.name: value})
    assert str(info.value) == (f"{reg.qualified_name}.{f.name} = {value} does not fit "
                               f"{f.width} {kind}bits")


def test_field_errors_name_register_field_and_value():
    conv_con3 = register_table("rk3588").register("CNA.CONV_CON3")
    with pytest.raises(RkcError, match=r"^CNA.CONV_CON3.CONV_X_STRIDE = 9 does not fit 3 "
                                       r"bits$"):
        encode_fields(conv_con3, CONV_X_STRIDE=9)
    with pytest.raises(RkcError, match=r"CNA.CONV_CON3 has no field STRIDE \(fields: "
                                       r"CONV_X_STRIDE, CONV_Y_STRIDE"):
        encode_fields(conv_con3, STRIDE=1)
    assert encode_fields(conv_con3, CONV_X_STRIDE=1, CONV_Y_STRIDE=1) == 0x9
    out_cvt = register_table("rk3588").register("DPU.OUT_CVT_OFFSET")
    assert encode_fields(out_cvt, OUT_CVT_OFFSET=-128) == 0xFFFFFF80
    assert decode_fields(out_cvt, 0xFFFFFF80) == {"OUT_CVT_OFFSET": -128}


# --------------------------------------------------------------------------------- words

@SETTINGS
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFF))
def test_words_round_trip(target, value, offset):
    word = pack_word(target, value, offset)
    assert unpack_word(word) == (target, value, offset)
    assert RegWrite.from_word(word) == RegWrite(target, offset, value)
    assert RegWrite(target, offset, value).word == word
    assert words_from_bytes(words_to_bytes([word, 0])) == [word, 0]


def test_word_errors():
    with pytest.raises(RkcError, match="regcmd value 0x100000000 does not fit 32 bits"):
        pack_word(0x0201, 1 << 32, 0x1014)
    with pytest.raises(RkcError, match="^regcmd buffer of 12 bytes is not a whole number of "
                                       "8-byte words$"):
        words_from_bytes(bytes(12))
    with pytest.raises(RkcError, match="is not a whole number of 8-byte words"):
        disassemble(bytes(9), "rk3588")
    with pytest.raises(RkcError, match="^task buffer of 41 bytes is not a whole number of "
                                       "40-byte task records$"):
        unpack_task_records(bytes(41))


@SETTINGS
@given(st.builds(TaskRecord, *[st.integers(0, 0xFFFFFFFF)] * 8, st.integers(0, 2**64 - 1)))
def test_task_records_round_trip(record):
    data = record.pack()
    assert len(data) == TASK_RECORD_BYTES == 40
    assert unpack_task_records(data + data) == [record, record]


# -------------------------------------------------------------------------- disassembly

def test_disassembly_lines():
    table = register_table("rk3588")
    assert describe(table, pack_word(0x0201, 9, 0x1014)) == (
        "CNA.CONV_CON3 = 0x00000009  CONV_X_STRIDE=1 CONV_Y_STRIDE=1")
    assert describe(table, pack_word(0x0201, 0, 0x1014)) == "CNA.CONV_CON3 = 0x00000000"
    assert describe(table, pack_word(0x0201, 5, 0x1234)) == "CNA.0x1234 = 0x00000005"
    assert describe(table, pack_word(0x0401, 1, 0x200C)) == "T0x0401.0x200c = 0x00000001"
    assert describe(table, pack_word(0x1001, 0xFFFFFF80, 0x4080)) == (
        "DPU.OUT_CVT_OFFSET = 0xffffff80  OUT_CVT_OFFSET=-128")
    assert describe(table, pack_word(0x0201, 0x40, 0x1068)) == (
        "CNA.PAD_CON0 = 0x00000040  PAD_LEFT=4")
    assert describe(table, pack_word(0x0201, 0x100, 0x1068)) == (
        "CNA.PAD_CON0 = 0x00000100  RESERVED=0x100")
    assert describe(table, 0) == "ZERO"
    assert describe(table, PRE_OP_EN_WORD) == "PRE_OP_EN.WORD = 0x00000000"
    assert describe(table, pack_word(0x0081, 0x1D, 0x0008)) == (
        "ALL.OPERATION_ENABLE = 0x0000001d  CNA_OP_EN=1 CORE_OP_EN=1 DPU_OP_EN=1 "
        "DPU_RDMA_OP_EN=1")
    # the same word means different registers per chip
    assert describe(register_table("rk3568"), pack_word(0x0401, 1, 0x200C)) == (
        "CMAC.MISC_CFG = 0x00000001  QD_EN=1")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), max_size=40), st.sampled_from(CHIPS))
def test_disassembly_never_fails_on_any_words(words, chip):
    lines = disassemble(words_to_bytes(words), chip)
    assert len(lines) == len(words)


# ------------------------------------------------------------------- tails and programs

def test_fetch_amount_and_tail():
    # hw §2.3: ceil((body + 4) / unit) - 1
    assert fetch_amount(126, "rk3588") == 64 and fetch_amount(122, "rk3588") == 62
    assert fetch_amount(26, "rk3588") == 14 and fetch_amount(133, "rk3568") == 136
    tail = task_tail("rk3588", 0x1D, next_address=0x440, next_body_words=126)
    assert [unpack_word(w) for w in tail] == [
        (0x0101, 0x440, 0x0010), (0x0101, 64, 0x0014), (0x0041, 0, 0), (0x0081, 0x1D, 0x0008)]
    assert task_tail("rk3568", 0x60) == [0, 0x0101_0000_0000_0014, PRE_OP_EN_WORD,
                                         0x0081_0000_0060_0008]
    with pytest.raises(RkcError, match="next task address 0x444 is not 16-byte aligned"):
        task_tail("rk3588", 0x1D, next_address=0x444)
    with pytest.raises(RkcError, match="enable mask 0x80 sets bits that name no block"):
        task_tail("rk3588", 0x80)
    assert completion_interrupts(0x1D) == 0x300 and completion_interrupts(0x60) == 0xC00


@st.composite
def task_programs(draw, chip: str):
    table = register_table(chip)
    registers = [r for r in table.registers if table.blocks[r.block].window]

    def write(reg: Register) -> RegWrite:
        values = {f.name: draw(st.integers(f.min_value, f.max_value)) for f in reg.fields}
        return reg_write(table, reg.qualified_name, **values)

    tasks = []
    for _ in range(draw(st.integers(1, 5))):
        regs = draw(st.lists(st.sampled_from(registers), max_size=20))
        mask = draw(st.sampled_from([0x1D, 0x0D, 0x18, 0x60, 0x7D]))
        tasks.append(TaskProgram(tuple(write(r) for r in regs), mask, draw(st.integers(0, 9))))
    return tasks


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(CHIPS), st.data())
def test_assemble_then_split_recovers_the_tasks(chip, data):
    tasks = data.draw(task_programs(chip))
    base = data.draw(st.sampled_from([0, 0x10000, 0xFFF000]))
    regcmd, records_bytes = assemble(chip, tasks, base)
    words, records = words_from_bytes(regcmd), unpack_task_records(records_bytes)
    assert len(regcmd) % TASK_ALIGN_BYTES == 0
    # split_tasks reads buffer offsets; the records hold base + offset
    split = split_tasks(words, [replace(r, regcmd_addr=r.regcmd_addr - base) for r in records])
    assert [t.body for t in split] == [t.writes for t in tasks]
    for i, (task, record) in enumerate(zip(split, records, strict=True)):
        assert record.regcmd_addr % TASK_ALIGN_BYTES == 0
        assert (record.enable_mask, record.op_idx) == (tasks[i].enable_mask, tasks[i].op_idx)
        assert record.int_mask == completion_interrupts(tasks[i].enable_mask)
        assert record.int_clear == ALL_INTERRUPTS
        assert task.tail_problems() == [] and task.enable_mask == tasks[i].enable_mask
        if i + 1 < len(tasks):
            assert task.next_address == records[i + 1].regcmd_addr
            assert task.next_amount == fetch_amount(len(tasks[i + 1].writes), chip)
        else:
            assert task.next_address is None and task.tail[0] == 0


# ------------------------------------------------------------------ the vendor programs

# name: (tasks, distinct streams, words, body writes over all records)
VENDOR_PROGRAMS = {
    "conv_relu_rk3588_int8": (11, 11, 936, 866),
    "resblock_rk3588_int8": (37, 31, 2952, 3302),
    "mobilenet_rk3588_int8": (23, 23, 2488, 2338),
    "conv_relu_rk3568_int8": (136, 136, 2888, 1675),
    "resblock_rk3568_int8": (6, 6, 760, 694),
    "mobilenet_rk3568_int8": (46, 46, 1744, 1343),
}
def chip_of(name: str) -> str:
    return name.split("_")[-2]


@pytest.mark.parametrize("name", VENDOR_PROGRAMS)
def test_vendor_program_decodes_completely(name):
    chip = chip_of(name)
    table = register_table(chip)
    words, records = vendor_program(name)
    tasks = split_tasks(words, records)
    n_tasks, n_streams, n_words, n_writes = VENDOR_PROGRAMS[name]
    assert (len(tasks), len({t.start for t in tasks}), len(words),
            sum(len(t.body) for t in tasks)) == (n_tasks, n_streams, n_words, n_writes)
    covered = {i for t in tasks for i in range(t.start, t.start + len(t.body) + 4)}
    assert all(w == 0 for i, w in enumerate(words) if i not in covered), "words outside tasks"
    unknown, unexplained = [], {}
    for task in tasks:
        for write in task.body:
            block = table.block_of_target(write.target)
            reg = table.lookup(block.name, write.offset) if block else None
            if reg is None:
                unknown.append((write.target, write.offset))
            elif unexplained_bits(reg, write.value):
                bits = unexplained_bits(reg, write.value)
                unexplained[reg.qualified_name] = unexplained.get(reg.qualified_name, 0) | bits
    assert unknown == []
    # every bit set in these programs lies in a (possibly uncertain) field of the table
    assert unexplained == {}
    lines = disassemble(words, chip)
    assert not [line for line in lines if ".0x" in line.split(" = ")[0]]


@pytest.mark.parametrize("name", VENDOR_PROGRAMS)
def test_vendor_task_tails_and_records(name):
    chip = chip_of(name)
    words, records = vendor_program(name)
    tasks = split_tasks(words, records)
    by_address = {t.record.regcmd_addr: t for t in tasks}
    for task in tasks:
        r = task.record
        assert task.tail_problems() == []
        assert r.regcmd_addr % TASK_ALIGN_BYTES == 0
        assert (r.flags, r.int_clear, r.int_status, r.regcfg_offset) == (0, ALL_INTERRUPTS, 0, 0)
        assert r.enable_mask == task.enable_mask
        assert r.int_mask == completion_interrupts(r.enable_mask)
        nxt = task.next_address
        if nxt is None:
            expected = task_tail(chip, r.enable_mask)
        else:
            expected = task_tail(chip, r.enable_mask, nxt, by_address[nxt].record.regcfg_amount)
        # RK3588 multi-core programs set REGISTER_AMOUNTS[17:16] (an undocumented field)
        amount_upper = unpack_word(task.tail[1])[1] >> 16
        assert amount_upper == 0 or (chip == "rk3588" and amount_upper in (1, 2))
        target, value, offset = unpack_word(task.tail[1])
        got = [task.tail[0], pack_word(target, value & 0xFFFF, offset), *task.tail[2:]]
        assert got == expected, (task.index, [hex(w) for w in task.tail])


@pytest.mark.parametrize("name", [n for n in VENDOR_PROGRAMS if "rk3568" in n])
def test_single_chain_vendor_programs_reassemble_byte_for_byte(name):
    """RK3568 programs are one chain: our emitter rebuilds both buffers exactly."""
    chip = chip_of(name)
    words, records = vendor_program(name)
    programs = [TaskProgram(t.body, t.enable_mask, t.record.op_idx)
                for t in split_tasks(words, records)]
    regcmd, task_bytes = assemble(chip, programs)
    assert regcmd == (REGCMD / f"{name}.regcmd.bin").read_bytes()
    assert task_bytes == (REGCMD / f"{name}.task.bin").read_bytes()


def _onnx_nodes(model: str) -> list[tuple[str, dict, list]]:
    graph = onnx.load(VENDOR / f"{model}.onnx").graph
    shapes = {i.name: list(i.dims) for i in graph.initializer}
    return [(n.op_type, {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute},
             [shapes.get(x) for x in n.input]) for n in graph.node]


def _fields(chip: str, task, name: str) -> dict[str, int]:
    reg = register_table(chip).register(name)
    target = register_table(chip).blocks[reg.block].target
    values = [w.value for w in task.body if (w.target, w.offset) == (target, reg.offset)]
    assert values, f"task {task.index} writes no {name}"
    return decode_fields(reg, values[-1])


@pytest.mark.parametrize("chip", ["rk3588", "rk3568"])
def test_vendor_fields_match_the_onnx_models(chip):
    # conv_relu: Conv 3->16, 3x3, pad 1, stride 1, on 1x3x32x32 (task 0 is the conv)
    (_, attrs, (_, weight, _)), = [n for n in _onnx_nodes("conv_relu") if n[0] == "Conv"]
    conv = split_tasks(*vendor_program(f"conv_relu_{chip}_int8"))[0]
    kernels, cin, kh, kw = weight
    assert _fields(chip, conv, "CNA.WEIGHT_SIZE2") == {
        "WEIGHT_KERNELS": kernels, "WEIGHT_HEIGHT": kh, "WEIGHT_WIDTH": kw}
    strides = attrs.get("strides", [1, 1])
    assert _fields(chip, conv, "CNA.CONV_CON3")["CONV_X_STRIDE"] == strides[1]
    assert _fields(chip, conv, "CNA.CONV_CON3")["CONV_Y_STRIDE"] == strides[0]
    size = _fields(chip, conv, "CNA.DATA_SIZE0")
    assert (size["DATAIN_HEIGHT"], size["DATAIN_WIDTH"]) == (32, 32)
    assert _fields(chip, conv, "CNA.DATA_SIZE1")["DATAIN_CHANNEL_REAL"] == cin - 1
    pads = _fields(chip, conv, "CNA.PAD_CON0")
    assert (pads["PAD_TOP"], pads["PAD_LEFT"]) == tuple(attrs["pads"][:2])
    assert _fields(chip, conv, "DPU.DATA_CUBE_CHANNEL")["ORIG_CHANNEL"] == kernels - 1
    assert conv.enable_mask & 0x0D == 0x0D  # CNA, CORE, DPU

    # mobilenet: stride-2 conv, depthwise 3x3 (group 16), pointwise 1x1 to 32 channels
    convs = [n for n in _onnx_nodes("mobilenet") if n[0] == "Conv"]
    tasks = split_tasks(*vendor_program(f"mobilenet_{chip}_int8"))[:3]
    assert _fields(chip, tasks[0], "CNA.CONV_CON3")["CONV_X_STRIDE"] == convs[0][1]["strides"][1]
    assert convs[1][1]["group"] == 16
    assert _fields(chip, tasks[1], "CNA.CONV_CON1")["CONV_MODE"] == 3
    assert _fields(chip, tasks[1], "CNA.WEIGHT_SIZE2")["WEIGHT_KERNELS"] == 1
    pointwise = _fields(chip, tasks[2], "CNA.WEIGHT_SIZE2")
    assert (pointwise["WEIGHT_KERNELS"], pointwise["WEIGHT_WIDTH"]) == (convs[2][2][1][0], 1)
    assert _fields(chip, tasks[2], "DPU.DATA_CUBE_CHANNEL")["ORIG_CHANNEL"] == 31

    # resblock: MaxPool 2x2 stride 2 runs on the PPU (task 1); the Gemm to 10 is a 1x1 conv
    (_, pool, _), = [n for n in _onnx_nodes("resblock") if n[0] == "MaxPool"]
    tasks = split_tasks(*vendor_program(f"resblock_{chip}_int8"))[:6]
    assert tasks[1].enable_mask == 0x60
    assert _fields(chip, tasks[1], "PPU.OPERATION_MODE_CFG")["POOLING_METHOD"] == 1  # max
    assert _fields(chip, tasks[1], "PPU.POOLING_KERNEL_CFG") == {
        "KERNEL_WIDTH": pool["kernel_shape"][1] - 1, "KERNEL_HEIGHT": pool["kernel_shape"][0] - 1,
        "KERNEL_STRIDE_WIDTH": pool["strides"][1] - 1,
        "KERNEL_STRIDE_HEIGHT": pool["strides"][0] - 1}
    (_, _, (_, gemm_weight, _)), = [n for n in _onnx_nodes("resblock") if n[0] == "Gemm"]
    assert _fields(chip, tasks[5], "CNA.WEIGHT_SIZE2")["WEIGHT_KERNELS"] == gemm_weight[0]


def test_task_listing():
    words, records = vendor_program("conv_relu_rk3588_int8")
    lines = disassemble_tasks(words, records, "rk3588")
    assert lines[0] == ("task 0: op 1 at 0x0000, 126 writes, enable 0x1d, int_mask 0x300, "
                        "next end")
    assert "  0x0040  CNA.CONV_CON3 = 0x00000009  CONV_X_STRIDE=1 CONV_Y_STRIDE=1" in lines
    assert lines[1 + 130].startswith("task 1: op 1 at 0x0440, 122 writes")


def test_split_rejects_records_outside_the_buffer():
    words, records = vendor_program("resblock_rk3568_int8")
    bad = TaskRecord(0, 1, 0x1D, 0x300, ALL_INTERRUPTS, 0, 10, 0, len(words) * 8)
    with pytest.raises(RkcError, match="task 0: regcmd_addr 0x17c0 with 10 words does not "
                                       "lie on whole words inside the 6080-byte regcmd"):
        split_tasks(words, [bad])


# ----------------------------------------------------------------------------- the doc

def test_registers_doc_is_current():
    spec = importlib.util.spec_from_file_location("gen_registers_doc",
                                                  ROOT / "tools" / "gen_registers_doc.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert (ROOT / "docs" / "registers.md").read_text() == gen.render(), (
        "docs/registers.md is out of date: run python tools/gen_registers_doc.py")
