"""Task emitters beyond the vendor diff: relocations and linking, tiles, the elementwise
skeleton, clamps, and the errors bad task descriptions give."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_regcmd import vendor_program

from rkc.backends.emit import ADDRESS_REGISTERS, EmittedTask, Relocation, link
from rkc.backends.emit_conv import conv_task, conv_values
from rkc.backends.emit_dpu import DPU_ORDER, FLYING_PREFIX, ew_writes, relux_bound
from rkc.backends.emit_ppu import pool_task
from rkc.backends.regcmd import (
    WORD_BYTES,
    decode_fields,
    split_tasks,
    unpack_task_records,
    unpack_word,
    words_from_bytes,
)
from rkc.backends.registers import register_table
from rkc.backends.tasks import Address, ConvTask, ConvTile, EwTask, Feature, PoolTask
from rkc.errors import RkcError
from rkc.lowering.tiling import ConvGeometry, plan_tiles
from rkc.quant.requant import round_shift
from rkc.targets import get_target

CHIPS = ("rk3588", "rk3568")


def _conv(chip: str, tile: ConvTile | None = None, **changes) -> ConvTask:
    """A 16 -> 32 3x3 conv on 16x16 (pads 1), one tile unless given."""
    t = get_target(chip)
    c2 = t.c2("int8")
    x = Feature.native(Address("x"), 16, 16, 16, c2, 256)
    y = Feature.native(Address("y", 64), 32, 16, 16, c2, 256)
    task = ConvTask(
        name="conv", input=x, output=y, weights=Address("w"), stream=Address("b"),
        kernel=(3, 3), out_channels=32, multipliers=(20000,) * 32, shifts=(20,) * 32,
        tile=tile or ConvTile((0, 16), (0, 16), 1, 1, (0, 32)), data_banks=1,
        weight_banks=7, pads=(1, 1, 1, 1), input_zero_point=-128, output_zero_point=-128,
        clamp_low=-128)
    return replace(task, **changes)


def _fields(chip: str, values, name: str) -> dict[str, int]:
    item = values._values[name]
    return decode_fields(register_table(chip).register(name), item.value)


@pytest.mark.parametrize("chip", CHIPS)
def test_link_keeps_a_relocation_table_and_patches(chip):
    conv = conv_task(_conv(chip), chip, op_idx=1)
    pool_in = Feature.native(Address("y"), 32, 16, 16, get_target(chip).c2("int8"), 256)
    pool_out = Feature.native(Address("z"), 32, 8, 8, pool_in.c2, 64)
    pool = pool_task(PoolTask("pool", "max", pool_in, pool_out, (2, 2), (2, 2)), chip, 2)
    regcmd, records, table = link(chip, [conv, pool])
    words = words_from_bytes(regcmd)
    tasks = split_tasks(words, unpack_task_records(records))
    assert [t.record.op_idx for t in tasks] == [1, 2]
    assert {e.register for e in table} == {
        "CNA.FEATURE_DATA_ADDR", "CNA.DCOMP_ADDR0", "DPU.DST_BASE_ADDR",
        "DPU_RDMA.RDMA_BS_BASE_ADDR", "PPU.DST_BASE_ADDR", "PPU_RDMA.RDMA_SRC_BASE_ADDR"}
    assert all(unpack_word(words[e.word])[1] == 0 for e in table)
    buffers = {"x": 0x10000, "y": 0x20000, "w": 0x30000, "b": 0x40000, "z": 0x50000}
    patched, _, same_table = link(chip, [conv, pool], buffers=buffers)
    assert same_table == table
    patched_words = words_from_bytes(patched)
    for e in table:
        assert unpack_word(patched_words[e.word])[1] == buffers[e.buffer] + e.offset
    # everything but the relocated words is identical
    moved = {e.word for e in table}
    assert all(a == b for i, (a, b) in enumerate(zip(words, patched_words, strict=True))
               if i not in moved)
    dst = next(e for e in table if e.register == "DPU.DST_BASE_ADDR")
    assert (dst.buffer, dst.offset) == ("y", 64)
    assert len(regcmd) % 64 == 0 and dst.word * WORD_BYTES < len(regcmd)


def test_relocation_errors():
    conv = conv_task(_conv("rk3588"), "rk3588")
    with pytest.raises(RkcError, match="CNA.FEATURE_DATA_ADDR: no address for buffer 'x'"):
        link("rk3588", [conv], buffers={})
    pool_in = Feature.native(Address("y"), 16, 4, 4, 16, 16)
    pool_out = Feature.native(Address("z", 8), 16, 2, 2, 16, 4)
    pool = pool_task(PoolTask("p", "max", pool_in, pool_out, (2, 2), (2, 2)), "rk3588")
    with pytest.raises(RkcError, match="PPU.DST_BASE_ADDR: address 0x1008 of z\\+8 is not "
                                       "16-byte aligned"):
        link("rk3588", [pool], buffers={"y": 0, "z": 0x1000})
    relocated = [i.register for i in conv.items if isinstance(i, Relocation)]
    assert relocated and set(relocated) <= ADDRESS_REGISTERS


@pytest.mark.parametrize("chip", CHIPS)
def test_height_bands_move_addresses_and_padding(chip):
    """Two bands from rkc's planner (cut for two RK3588 cores; the bands are geometry
    only): each reads its rows, at its row offset."""
    target = get_target(chip)
    plan = plan_tiles(ConvGeometry(16, 16, 16, 32, (3, 3), pads=(1, 1, 1, 1)),
                      get_target("rk3588"), 2)
    assert len(plan.tiles) == 2
    x_line = 16 * target.c2("int8")
    for tile in plan.tiles:
        t = ConvTile(tile.out_rows, tile.in_rows, tile.pad_top, tile.pad_bottom,
                     tile.out_channels, tile.core)
        values = conv_values(_conv(chip, t), chip)
        feature = values._values["CNA.FEATURE_DATA_ADDR"]
        assert feature.address == Address("x", tile.in_rows[0] * x_line)
        assert values._values["DPU.DST_BASE_ADDR"].address == \
            Address("y", 64 + tile.out_rows[0] * x_line)
        assert _fields(chip, values, "CNA.DATA_SIZE0")["DATAIN_HEIGHT"] == t.rows_in
        assert _fields(chip, values, "CNA.PAD_CON0")["PAD_TOP"] == tile.pad_top
        assert _fields(chip, values, "CORE.DATAOUT_SIZE_0")["DATAOUT_HEIGHT"] == \
            t.rows_out - 1
    first, second = plan.tiles
    assert (first.pad_top, second.pad_top) == (1, 0)


def test_channel_groups_move_weights_stream_and_output():
    # RK3568: 16-kernel groups; the second group starts 16 kernels into the weights
    tile = ConvTile((0, 16), (0, 16), 1, 1, (16, 32))
    values = conv_values(_conv("rk3568", tile), "rk3568")
    assert values._values["CNA.DCOMP_ADDR0"].address == Address("w", 16 * 9 * 16)
    assert values._values["DPU_RDMA.RDMA_BS_BASE_ADDR"].address == Address("b", 16 * 8)
    assert values._values["DPU.DST_BASE_ADDR"].address == Address("y", 64 + 2 * 256 * 8)
    assert _fields("rk3568", values, "CNA.WEIGHT_SIZE2")["WEIGHT_KERNELS"] == 16
    with pytest.raises(RkcError, match="does not start a weight group of 32 kernels"):
        conv_values(_conv("rk3588", tile), "rk3588")


@settings(max_examples=300, deadline=None)
@given(st.integers(1 << 14, (1 << 15) - 1), st.integers(1, 40), st.integers(0, 400))
def test_relux_bound_is_the_exact_clamp(scale, shift, levels):
    """The bound maps to exactly `levels` (so clamping before the converter equals
    clamping after it), or no value does and it is an RkcError."""
    half = 1 << (shift - 1)
    first = -(-((levels << shift) - half) // scale)   # the least v reaching `levels`
    hit = round_shift(first * scale, shift) == levels
    try:
        u = relux_bound(levels, scale, shift)
    except RkcError as e:
        assert "is no output of the converter" in str(e)
        assert not hit
        return
    assert round_shift(u * scale, shift) == levels
    assert round_shift((u + 1) * scale, shift) > levels


def test_clamps_and_refusals():
    relu = conv_values(_conv("rk3588"), "rk3588")
    assert _fields("rk3588", relu, "DPU.BN_CFG")["BN_RELU_BYPASS"] == 0
    clip = conv_values(_conv("rk3588", clamp_high=0), "rk3588")
    cfg = _fields("rk3588", clip, "DPU.BN_CFG")
    assert cfg["BN_RELUX_EN"] == 1
    bound = _fields("rk3588", clip, "DPU.BN_RELUX_CMP_VALUE")["BN_RELUX_CMP_DAT"]
    assert bound == relux_bound(128, 20000, 20)
    free = conv_values(_conv("rk3588", clamp_low=None), "rk3588")
    assert _fields("rk3588", free, "DPU.BN_CFG")["BN_BYPASS"] == 1
    with pytest.raises(RkcError, match="a clamp with lower bound -100 .* has no known DPU "
                                       "stage"):
        conv_values(_conv("rk3588", clamp_low=-100), "rk3588")
    with pytest.raises(RkcError, match="an fp16 conv clamps with a ReLU only"):
        _conv("rk3588", dtype="fp16", multipliers=(), shifts=(), input_zero_point=0,
              output_zero_point=0, clamp_low=0, clamp_high=5,
              input=Feature.native(Address("x"), 16, 16, 16, 8, 256, "fp16"),
              output=Feature.native(Address("y"), 32, 16, 16, 8, 256, "fp16"))
    with pytest.raises(RkcError, match="CNA.WEIGHT_SIZE2.WEIGHT_WIDTH = 32 does not fit 5 "
                                       "bits"):
        wide = Feature.native(Address("x"), 16, 1, 40, 16, 40)
        conv_values(replace(_conv("rk3588"), input=wide, kernel=(1, 32), pads=(0, 0, 0, 0),
                            tile=ConvTile((0, 1), (0, 1), 0, 0, (0, 32)),
                            output=Feature.native(Address("y"), 32, 1, 9, 16, 9)), "rk3588")


def test_task_descriptions_are_checked():
    with pytest.raises(RkcError, match="tile rows: 1 \\+ 16 \\+ 0 padded input rows do not "
                                       "make 16 output rows"):
        _conv("rk3588", ConvTile((0, 16), (0, 16), 1, 0, (0, 32)))
    with pytest.raises(RkcError, match="2 multipliers / 32 shifts for 32 output channels"):
        _conv("rk3588", multipliers=(1, 2))
    with pytest.raises(RkcError, match="int8 zero points must lie in \\[-128, 127\\], got "
                                       "\\(-128, 200\\)"):
        _conv("rk3588", output_zero_point=200)
    with pytest.raises(RkcError, match="only a packed \\(ARGB\\) input can be read as uint8"):
        _conv("rk3588", input_uint8=True)
    with pytest.raises(RkcError, match="line stride 8 B is shorter than a row of 16 pixels"):
        Feature(Address("x"), 16, 4, 16, 16, 8, 1024)
    with pytest.raises(RkcError, match="axis 0: 5 windows of 2 with stride 2 must lie inside"):
        f = Feature.native(Address("x"), 16, 8, 8, 16, 64)
        PoolTask("p", "max", f, Feature.native(Address("y"), 16, 5, 4, 16, 20), (2, 2),
                 (2, 2))


def test_pool_pad_value_range():
    f = Feature.native(Address("x"), 16, 4, 4, 16, 16)
    task = PoolTask("p", "max", f, Feature.native(Address("y"), 16, 2, 2, 16, 4), (2, 2),
                    (2, 2), pad_value=1 << 20)
    pool_task(task, "rk3588")                   # 35 bits on RK3588
    with pytest.raises(RkcError, match="pool task p: pad value 1048576 does not fit the "
                                       "19-bit PPU pad value of RK3568"):
        pool_task(task, "rk3568")


def test_uint8_input_converter():
    x = Feature.packed_input(Address("img"), 3, 16, 16)
    task = _conv("rk3568", input=x, input_uint8=True, input_zero_point=0)
    values = conv_values(task, "rk3568")
    assert values._values["CNA.CVT_CON0"].value == 0x000E38E1     # the vendor's RK3568 word
    assert values._values["CNA.CVT_CON1"].value == 0x4000FF80
    assert values._values["CNA.CVT_CON4"].value == 0x00010000


@pytest.mark.parametrize("chip", CHIPS)
@pytest.mark.parametrize("op", ["add", "max", "mul", "requantize"])
def test_elementwise_task_skeleton(chip, op):
    c2 = get_target(chip).c2("int8")
    f = Feature.native(Address("a"), 16, 8, 8, c2, 64)
    b = None if op == "requantize" else replace(f, address=Address("b"))
    task = EwTask("ew", op, f, replace(f, address=Address("o")), b, a_zero_point=-3,
                  b_zero_point=5, output_zero_point=-128, a_scale=(16384, 14),
                  b_scale=(12000, 14), out_multiplier=20000, out_shift=20, clamp_low=-128)
    emitted = ew_writes(task, chip)
    table = register_table(chip)
    names = []
    for item in emitted.items:
        if isinstance(item, Relocation):
            names.append(item.register)
        else:
            block = table.block_of_target(item.target)
            names.append(table.lookup(block.name, item.offset).qualified_name)
    npu = "RK3588" if chip == "rk3588" else "RK3568"
    assert names == [*FLYING_PREFIX, *DPU_ORDER[npu]]
    assert emitted.enable_mask == 0x18
    relocated = {i.register: i.address.buffer for i in emitted.items
                 if isinstance(i, Relocation)}
    expected = {"DPU.DST_BASE_ADDR": "o", "DPU_RDMA.RDMA_SRC_BASE_ADDR": "a"}
    if b is not None:
        expected["DPU_RDMA.RDMA_EW_BASE_ADDR"] = "b"
    assert relocated == expected


def test_rk3568_flying_task_has_the_vendors_register_sequence():
    """The RK3568 DPU-only tasks of the vendor's mobilenet write exactly our sequence."""
    words, records = vendor_program("mobilenet_rk3568_int8")
    vendor_task = split_tasks(words, records)[3]
    table = register_table("rk3568")
    names = [table.lookup(table.block_of_target(w.target).name, w.offset).qualified_name
             for w in vendor_task.body]
    assert names == [*FLYING_PREFIX, *DPU_ORDER["RK3568"]]
    assert vendor_task.enable_mask == EmittedTask((), 0x18).enable_mask


# ------------------------------------------------------------------ DPU stages (post ops)
from rkc.backends.tasks import (  # noqa: E402
    BinaryStage,
    ClampStage,
    EwOperand,
    LeakyReluStage,
    LutStage,
)
from rkc.backends.weights import LUT_ENTRIES  # noqa: E402


def _residual(chip: str, dtype: str = "int8") -> EwOperand:
    c2 = get_target(chip).c2(dtype)
    return EwOperand(Feature.native(Address("r"), 32, 16, 16, c2, 256, dtype), zero_point=5)


@pytest.mark.parametrize("chip", CHIPS)
def test_conv_with_residual_add_is_exact_requant_plus_ew_stage(chip):
    add = BinaryStage("add", _residual(chip), x_zero_point=-128, x_scale=(16384, 6),
                      operand_scale=(20000, 7), out_scale=(17000, 22),
                      output_zero_point=-3, clamp_low=-3, reversed=True)
    tile = ConvTile((8, 16), (7, 16), 0, 1, (0, 32))
    task = _conv(chip, tile, post_ops=(add,), clamp_low=None)
    assert task.uses_exact_requant
    values = conv_values(task, chip)
    assert _fields(chip, values, "DPU_RDMA.RDMA_BRDMA_CFG")["BRDMA_DATA_USE"] == 0b1111
    mul = _fields(chip, values, "DPU.BS_MUL_CFG")
    assert (mul["BS_MUL_SRC"], mul["BS_TRUNCATE_SRC"], mul["BS_MUL_SHIFT_VALUE"]) == (1, 1, 0)
    bn = _fields(chip, values, "DPU.BN_CFG")
    assert (bn["BN_ALU_ALGO"], bn["BN_RELU_BYPASS"], bn["BN_RELUX_EN"]) == (0, 1, 1)
    # the conv's int8 result minus its zero point lies in [-128 + 128, 127 + 128]
    assert _fields(chip, values, "DPU.BN_ALU_CFG")["BN_ALU_OPERAND"] == 0
    assert _fields(chip, values, "DPU.BN_MUL_CFG") == {
        "BN_MUL_SRC": 0, "BN_TRUNCATE_SRC": 0, "BN_MUL_SHIFT_VALUE": 6,
        "BN_MUL_OPERAND": 16384}
    assert _fields(chip, values, "DPU.BN_RELUX_CMP_VALUE")["BN_RELUX_CMP_DAT"] == 255 * 256
    ew = _fields(chip, values, "DPU.EW_CFG")
    assert (ew["EW_BYPASS"], ew["EW_OP_SRC"], ew["EW_DATA_MODE"], ew["EDATA_SIZE"],
            ew["EW_ALU_ALGO"], ew["EW_OP_TYPE"], ew["EW_RELU_BYPASS"]) == (0, 1, 1, 1, 2, 0, 0)
    assert _fields(chip, values, "DPU.EW_CVT_OFFSET_VALUE")["EW_OP_CVT_OFFSET"] == -5
    assert _fields(chip, values, "DPU.EW_CVT_SCALE_VALUE") == {
        "EW_OP_CVT_SCALE": 20000, "EW_OP_CVT_SHIFT": 7, "EW_TRUNCATE": 0}
    assert _fields(chip, values, "DPU.OUT_CVT_SCALE")["OUT_CVT_SCALE"] == 17000
    assert _fields(chip, values, "DPU.OUT_CVT_SHIFT")["OUT_CVT_SHIFT"] == 22
    assert _fields(chip, values, "DPU.OUT_CVT_OFFSET")["OUT_CVT_OFFSET"] == -3
    erdma = _fields(chip, values, "DPU_RDMA.RDMA_ERDMA_CFG")
    assert (erdma["ERDMA_DISABLE"], erdma["ERDMA_DATA_MODE"], erdma["ERDMA_DATA_SIZE"]) == \
        (0, 1, 1)
    line = 16 * get_target(chip).c2("int8")
    assert values._values["DPU_RDMA.RDMA_EW_BASE_ADDR"].address == Address("r", 8 * line)
    stream = values._values["DPU_RDMA.RDMA_BS_BASE_ADDR"].address
    assert stream == Address("b", 0)


@pytest.mark.parametrize("chip", CHIPS)
def test_conv_with_lut_loads_a_table_indexed_by_the_int8_value(chip):
    table = tuple(((i * 7) % 256) - 128 for i in range(256))
    task = _conv(chip, post_ops=(LutStage(table),), clamp_low=-20, output_zero_point=-30)
    writes = conv_task(task, chip).items
    tab = register_table(chip)
    cfg = tab.register("DPU.LUT_ACCESS_CFG")
    data = tab.register("DPU.LUT_ACCESS_DATA")
    assert [w.offset for w in writes[:1]] == [cfg.offset]
    assert writes[LUT_ENTRIES + 1].offset == cfg.offset
    assert decode_fields(cfg, writes[LUT_ENTRIES + 1].value)["LUT_TABLE_ID"] == 1
    le = [decode_fields(data, w.value)["LUT_ACCESS_DATA"] for w in writes[1:LUT_ENTRIES + 1]]
    le = [v - 65536 if v >= 32768 else v for v in le]
    # index i is the int8 value -20 + i (the conv's range [-20, 127] after its relu/clip)
    assert le[:148] == [table[-20 + i + 128] for i in range(148)]
    assert set(le[148:]) == {table[127 + 128]}
    values = conv_values(task, chip)
    assert _fields(chip, values, "DPU.BN_ALU_CFG")["BN_ALU_OPERAND"] == -(-20 + 30)
    assert _fields(chip, values, "DPU.BN_RELUX_CMP_VALUE")["BN_RELUX_CMP_DAT"] == 147
    assert _fields(chip, values, "DPU.EW_CFG")["EW_LUT_BYPASS"] == 0
    assert _fields(chip, values, "DPU.LUT_LE_END")["LUT_LE_END"] == LUT_ENTRIES - 1
    assert _fields(chip, values, "DPU.OUT_CVT_SCALE")["OUT_CVT_SCALE"] == 1


@pytest.mark.parametrize("chip", CHIPS)
def test_fp16_conv_with_leaky_relu_and_residual(chip):
    c2 = get_target(chip).c2("fp16")
    x = Feature.native(Address("x"), 16, 16, 16, c2, 256, "fp16")
    y = Feature.native(Address("y"), 32, 16, 16, c2, 256, "fp16")
    base = _conv(chip, input=x, output=y, dtype="fp16", multipliers=(), shifts=(),
                 input_zero_point=0, output_zero_point=0, clamp_low=None)
    leaky = conv_values(replace(base, post_ops=(LeakyReluStage(0.1),)), chip)
    ew = _fields(chip, leaky, "DPU.EW_CFG")
    assert (ew["EW_OP_SRC"], ew["EW_OP_TYPE"], ew["EW_MUL_PRELU"]) == (0, 1, 1)
    bits = _fields(chip, leaky, "DPU.EW_OP_VALUE_0")["EW_OPERAND_0"]
    assert bits == 0x3DCCCCCD   # float32 0.1
    add = BinaryStage("add", _residual(chip, "fp16"))
    relu = ClampStage(clamp_low=0)
    res = conv_values(replace(base, post_ops=(add, relu)), chip)
    ew = _fields(chip, res, "DPU.EW_CFG")
    assert (ew["EDATA_SIZE"], ew["EW_ALU_ALGO"], ew["EW_RELU_BYPASS"]) == (2, 2, 0)
    assert _fields(chip, res, "DPU_RDMA.RDMA_ERDMA_CFG")["ERDMA_DATA_SIZE"] == 2


@pytest.mark.parametrize("chip", CHIPS)
def test_ew_task_per_channel_mul_and_fp16_add(chip):
    c2 = get_target(chip).c2("int8")
    a = Feature.native(Address("a"), 32, 8, 8, c2, 64)
    b = Feature.native(Address("s"), 32, 1, 1, c2, 1)
    task = EwTask("se", "mul", a, replace(a, address=Address("o")), b, a_zero_point=3,
                  b_zero_point=-128, out_multiplier=20000, out_shift=25,
                  output_zero_point=-1, b_per_channel=True)
    values_items = ew_writes(task, chip).items
    assert len(values_items) == len(FLYING_PREFIX + DPU_ORDER[
        "RK3588" if chip == "rk3588" else "RK3568"])
    tab = register_table(chip)
    by_offset = {(i.target, i.offset): i for i in values_items}
    erdma = tab.register("DPU_RDMA.RDMA_ERDMA_CFG")
    target = tab.blocks[erdma.block].target
    assert decode_fields(erdma, by_offset[(target, erdma.offset)].value)[
        "ERDMA_DATA_MODE"] == 0
    stride = tab.register("DPU_RDMA.RDMA_EW_SURF_STRIDE")
    assert decode_fields(stride, by_offset[(target, stride.offset)].value) == \
        {"EW_SURF_STRIDE": 1}
    sparse = replace(task, b=Feature.native(Address("s"), 32, 1, 1, c2, 4))
    with pytest.raises(RkcError, match="ew task se: a per-channel operand must store its "
                                       "channels contiguously"):
        ew_writes(sparse, chip)
    with pytest.raises(RkcError, match="int8 leaky_relu is a lut stage"):
        EwTask("l", "leaky_relu", a, a, alpha=0.1)
    f = Feature.native(Address("a"), 32, 8, 8, get_target(chip).c2("fp16"), 64, "fp16")
    fp = ew_writes(EwTask("add", "add", f, replace(f, address=Address("o")),
                          replace(f, address=Address("b"))), chip)
    assert any(isinstance(i, Relocation) and i.register == "DPU_RDMA.RDMA_EW_BASE_ADDR"
               for i in fp.items)


def test_stage_refusals_and_field_ranges():
    sub = BinaryStage("sub", _residual("rk3588"), x_zero_point=-128, reversed=True)
    with pytest.raises(RkcError, match="conv task conv: sub with the conv's result on the "
                                       "right has no DPU form"):
        conv_values(_conv("rk3588", post_ops=(sub,)), "rk3588")
    two = (LutStage(tuple(range(-128, 128))), LutStage(tuple(range(-128, 128))))
    with pytest.raises(RkcError, match=r"stages \['LutStage', 'LutStage'\] have no one-pass"):
        conv_values(_conv("rk3588", post_ops=two), "rk3588")
    big = BinaryStage("add", _residual("rk3588"), x_zero_point=-128,
                      operand_scale=(1 << 16, 3))
    with pytest.raises(RkcError, match="EW_CVT_SCALE_VALUE.*EW_OP_CVT_SCALE"):
        conv_values(_conv("rk3588", post_ops=(big,)), "rk3588")
    wrong_zp = BinaryStage("add", _residual("rk3588"), x_zero_point=7)
    with pytest.raises(RkcError, match="stage input zero point 7 is not the value's -128"):
        conv_values(_conv("rk3588", post_ops=(wrong_zp,)), "rk3588")
