"""Register diff against rknn-toolkit2: our task writes vs the vendor's, layer by layer.

For conv_relu, resblock and mobilenet on RK3588 and RK3568, every NPU layer of the vendor
graph (9 convs and 1 max pool per chip) is rebuilt as our `ConvTask` / `PoolTask`: shapes
and attributes from the model (tests/vendor_models.py: ONNX weights with the toolkit's
graph rewrites), input / output scales and zero points from the vendor's `.rknn` tensors,
weight scales from the toolkit's quantization rule, requantization through rkc's
`rkc.quant.requant.multipliers`, feature storage from rkc's rule
(`rkc.lowering.dram.surface_pixels`), CBUF banks and the tile from rkc's planner
(`rkc.lowering.tiling.plan_tiles`). We emit it and compare with the vendor task of the
same layer (its single-core chain, tests/data/vendor/regcmd) register by register:

- the sequence of registers written is the vendor's, exactly;
- address registers are ignored (the vendor leaves them 0 for the loader);
- every other difference, field by field, must be a row of the table in
  docs/register-diff.md (chip, layer, register.field, ours, vendor's, why), and every
  row must still be a difference: a regression or a new unexplained difference fails.
Run with `-s` to see the differences decoded field by field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from test_regcmd import vendor_program
from vendor_models import (
    CHIPS,
    FP16_BUILDS,
    MODELS,
    VendorLayer,
    clip_bounds,
    float_weights,
    layers,
    rknn,
    tensor,
    vendor_weight_quant,
)

from rkc.backends.emit import ADDRESS_REGISTERS, EmittedTask, Relocation
from rkc.backends.emit_conv import conv_task
from rkc.backends.emit_ppu import pool_task
from rkc.backends.regcmd import (
    RegWrite,
    Task,
    decode_fields,
    split_tasks,
    unpack_task_records,
    words_from_bytes,
)
from rkc.backends.registers import register_table
from rkc.backends.rknn_file import KIND_TASK
from rkc.backends.tasks import Address, ConvTask, ConvTile, Feature, PoolTask
from rkc.lowering.dram import surface_pixels
from rkc.lowering.tiling import ConvGeometry, plan_tiles
from rkc.quant.requant import multipliers
from rkc.targets import get_target

ROOT = Path(__file__).resolve().parent.parent
DIFF_DOC = ROOT / "docs" / "register-diff.md"
WHY = ("deliberate", "unknown", "quantization")
CASES = [(chip, layer) for model in MODELS for chip in CHIPS for layer in layers(model, chip)]
CASES += [(chip, layer) for model, chip in FP16_BUILDS
          for layer in layers(model, chip, "fp16")]
IDS = [f"{chip}-{layer.label}" for chip, layer in CASES]


# ------------------------------------------------------------------------ our tasks

def _feature(name: str, shape, target, dtype: str, packed: bool = False) -> Feature:
    _, c, h, w = shape
    if packed:
        return Feature.packed_input(Address(name), c, h, w, dtype)
    return Feature.native(Address(name), c, h, w, target.c2(dtype),
                          surface_pixels(h, w, target), dtype)


def _conv_task(layer: VendorLayer, chip: str) -> ConvTask:
    target = get_target(chip)
    model, dtype = layer.model, layer.dtype
    x = tensor(model, chip, layer.input, dtype)
    y = tensor(model, chip, layer.output, dtype)
    attrs = layer.attributes
    w, _ = float_weights(layer)
    _, scale, zero = vendor_weight_quant(w)
    k, cg, kh, kw = w.shape
    depthwise = attrs.get("group", 1) > 1
    _, c, h, wd = x.shape
    packed = not depthwise and c <= target.argb_max_channels and x.kind_name == "input"
    # the model's own pads (the toolkit trims mobilenet's unused bottom/right ones)
    pads = tuple(attrs["pads"])
    if layer.node == "Conv:c0":
        pads = (1, 1, 1, 1)
    geometry = ConvGeometry(c, h, wd, k, (kh, kw), tuple(attrs["strides"]), pads,
                            tuple(attrs["dilations"]), depthwise, dtype)
    plan = plan_tiles(geometry, target)
    assert len(plan.tiles) == 1, plan
    tile = plan.tiles[0]
    tile = ConvTile(tile.out_rows, tile.in_rows, tile.pad_top, tile.pad_bottom,
                    tile.out_channels, tile.core)
    common = dict(
        name=layer.label, input=_feature(layer.input, x.shape, target, dtype, packed),
        output=_feature(layer.output, y.shape, target, dtype),
        weights=Address(layer.weight), stream=Address(layer.stream), kernel=(kh, kw),
        out_channels=k, tile=tile, data_banks=plan.data_banks,
        weight_banks=plan.weight_banks, strides=tuple(attrs["strides"]), pads=pads,
        dilations=tuple(attrs["dilations"]), depthwise=depthwise, dtype=dtype)
    if dtype == "fp16":
        assert layer.activation in (None, "relu")
        return ConvTask(**common, multipliers=(), shifts=(),
                        clamp_low=0 if layer.activation == "relu" else None)
    s_in, s_out = x.scale[0], y.scale[0]
    zp_out = y.zero_point[0]
    m, s = multipliers(s_in * scale / s_out)
    low = high = None
    if layer.activation == "relu":
        low = zp_out
    elif layer.activation == "clip":
        lo, hi = clip_bounds(model)
        low = zp_out + int(np.rint(lo / s_out))
        high = zp_out + int(np.rint(hi / s_out))
    return ConvTask(
        **common, multipliers=tuple(int(v) for v in m), shifts=tuple(int(v) for v in s),
        input_zero_point=x.zero_point[0], output_zero_point=zp_out,
        weight_zero_points=tuple(int(v) for v in zero), clamp_low=low, clamp_high=high)


def _pool_task(layer: VendorLayer, chip: str) -> PoolTask:
    target = get_target(chip)
    x = tensor(layer.model, chip, layer.input, layer.dtype)
    y = tensor(layer.model, chip, layer.output, layer.dtype)
    a = layer.attributes
    lowest = -128 if layer.dtype == "int8" else 0xFBFF    # int8 minimum / lowest half
    return PoolTask(layer.label, "max", _feature(layer.input, x.shape, target, layer.dtype),
                    _feature(layer.output, y.shape, target, layer.dtype),
                    tuple(a["kernel_shape"]), tuple(a["strides"]), tuple(a["pads"]),
                    pad_value=lowest)


@cache
def ours(chip: str, layer: VendorLayer) -> EmittedTask:
    if layer.kind == "conv":
        return conv_task(_conv_task(layer, chip), chip, layer.op_idx)
    return pool_task(_pool_task(layer, chip), chip, layer.op_idx)


@cache
def vendor(chip: str, layer: VendorLayer) -> Task:
    """The vendor task of `layer` in the single-core chain (from task 0)."""
    if layer.dtype == "int8":
        tasks = split_tasks(*vendor_program(f"{layer.model}_{chip}_int8"))
    else:
        m = rknn(layer.model, chip, layer.dtype)
        tasks = split_tasks(words_from_bytes(m.regcmd()),
                            unpack_task_records(m.tensor_buffer(KIND_TASK)))
    by_address = {t.record.regcmd_addr: t for t in reversed(tasks)}
    task = tasks[0]
    while task.record.op_idx != layer.op_idx:
        assert task.next_address is not None, f"no task for {layer.label}"
        task = by_address[task.next_address]
    return task


# ------------------------------------------------------------------------ the diff

@dataclass(frozen=True)
class FieldDiff:
    chip: str
    layer: str
    field: str        # "REGISTER.FIELD" e.g. "CNA.CONV_CON2.FEATURE_GRAINS"
    ours: int
    vendor: int


def _name(table, write: RegWrite | Relocation) -> str:
    if isinstance(write, Relocation):
        return write.register
    block = table.block_of_target(write.target)
    return table.lookup(block.name, write.offset).qualified_name


def register_names(chip: str, layer: VendorLayer) -> tuple[list[str], list[str]]:
    table = register_table(chip)
    return ([_name(table, w) for w in ours(chip, layer).items],
            [_name(table, w) for w in vendor(chip, layer).body])


def differences(chip: str, layer: VendorLayer) -> tuple[list[FieldDiff], set[str]]:
    """Field differences and the set of differing registers (addresses ignored)."""
    table = register_table(chip)
    mine = ours(chip, layer).program(table).writes
    theirs = vendor(chip, layer).body
    diffs, registers = [], set()
    for a, b in zip(mine, theirs, strict=True):
        name = _name(table, b)
        if name in ADDRESS_REGISTERS or a.value == b.value:
            continue
        registers.add(name)
        reg = table.register(name)
        fa, fb = decode_fields(reg, a.value), decode_fields(reg, b.value)
        for f in reg.fields:
            if fa[f.name] != fb[f.name]:
                diffs.append(FieldDiff(chip, layer.label, f"{name}.{f.name}", fa[f.name],
                                       fb[f.name]))
    return diffs, registers


def documented() -> dict[tuple[str, str, str], tuple[int, int, str, str]]:
    """The difference table of docs/register-diff.md: (chip, layer, register.field) ->
    (ours, vendor's, why category, explanation)."""
    rows = {}
    for line in DIFF_DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 7 or not re.fullmatch(r"rk35\d\d", cells[0]):
            continue
        chip, layer, field, ours_v, vendor_v, why, text = cells
        key = (chip, layer, field.strip("`"))
        assert key not in rows, f"duplicate row {key}"
        rows[key] = (int(ours_v, 0), int(vendor_v, 0), why, text)
    return rows


# ------------------------------------------------------------------------ tests

def test_every_fixture_layer_is_compared():
    # int8: 9 convs and 1 pool per chip; fp16: conv_relu RK3588, resblock RK3568
    assert len(CASES) == 20 + 1 + 6
    assert sum(layer.kind == "pool" for _, layer in CASES) == 3


@pytest.mark.parametrize(("chip", "layer"), CASES, ids=IDS)
def test_registers_are_written_in_the_vendors_order(chip, layer):
    mine, theirs = register_names(chip, layer)
    assert mine == theirs
    assert ours(chip, layer).enable_mask == vendor(chip, layer).enable_mask


def test_differences_are_the_documented_ones():
    found: dict[tuple[str, str, str], FieldDiff] = {}
    lines = []
    for chip, layer in CASES:
        diffs, _ = differences(chip, layer)
        for d in diffs:
            found[(d.chip, d.layer, d.field)] = d
            lines.append(f"{d.chip} {d.layer:24} {d.field:44} ours {d.ours:#x} "
                         f"vendor {d.vendor:#x}")
    print("\n".join(["register differences (addresses ignored):", *lines]))
    doc = documented()
    new = sorted(k for k in found if k not in doc)
    gone = sorted(k for k in doc if k not in found)
    changed = sorted(k for k in found if k in doc and
                     (found[k].ours, found[k].vendor) != doc[k][:2])
    assert not new, f"undocumented differences: {new}"
    assert not gone, f"documented differences that no longer occur: {gone}"
    assert not changed, f"differences whose values changed: {changed}"
    assert all(why in WHY and text for _, _, why, text in doc.values())


def test_difference_counts():
    """Per fixture and chip: registers written (vendor, ours) and registers that differ,
    as docs/register-diff.md's count table states."""
    counts = {}
    for chip, layer in CASES:
        key = (layer.model if layer.dtype == "int8" else f"{layer.model}@{layer.dtype}", chip)
        written = counts.setdefault(key, [0, 0, 0])
        written[0] += len(vendor(chip, layer).body)
        written[1] += len(ours(chip, layer).items)
        written[2] += len(differences(chip, layer)[1])
    print("\nmodel chip: vendor writes, our writes, differing registers")
    for (model, chip), (v, o, d) in counts.items():
        print(f"{model} {chip}: {v} {o} {d}")
    stated = {}
    for line in DIFF_DOC.read_text().splitlines():
        m = re.fullmatch(r"\|\s*([\w@]+)\s*\|\s*(rk35\d\d)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|"
                         r"[^|]*\|\s*(\d+)\s*\|", line.strip())
        if m:
            stated[(m[1], m[2])] = [int(m[3]), int(m[4]), int(m[5])]
    assert stated == {k: v for k, v in counts.items()}


def test_vendor_quantization_params_agree_across_chips():
    """The RK3568 and RK3588 builds quantized alike (the diff uses each file's own)."""
    for model in MODELS:
        a, b = rknn(model, "rk3588"), rknn(model, "rk3568")
        sa = {t.name: (t.scale, t.zero_point) for t in a.tensors if t.scale}
        sb = {t.name: (t.scale, t.zero_point) for t in b.tensors if t.scale}
        shared = sa.keys() & sb.keys()
        assert {"input", "output"} <= shared and all(sa[n] == sb[n] for n in shared)
