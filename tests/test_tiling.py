"""CBUF tiling of one conv (rkc.lowering.tiling): worked examples on RK3588 / RK3568, and
random geometries on real and shrunken CBUFs whose tiles partition the output, read exactly
the rows they need, fit their banks, and compute exactly the untiled convolution."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from rkc.errors import RkcError
from rkc.lowering.tiling import (
    ConvGeometry,
    TilingError,
    banks,
    channel_unit,
    describe,
    feature_row_bytes,
    plan_tiles,
    tile_data_bytes,
    tile_weight_bytes,
    weight_bytes,
)
from rkc.quant.integer_kernels import conv2d_acc
from rkc.targets import RK3568, RK3588, Target

# --------------------------------------------------------------------------- examples


def test_sizes_follow_the_mesa_rule():
    conv = ConvGeometry(64, 56, 56, 64, (3, 3), pads=(1, 1, 1, 1))
    assert feature_row_bytes(conv, RK3588) == 56 * 4 * 16          # C1 = 4 atoms of 16 B
    assert weight_bytes(conv, RK3588) == 9 * 64 * 64                 # Cin 64, Kpad 64
    assert weight_bytes(dataclasses.replace(conv, out_channels=10), RK3588) == 9 * 64 * 32
    assert feature_row_bytes(conv, RK3568) == 56 * 8 * 8             # C2 = 8 on RK3568
    fp16 = dataclasses.replace(conv, in_channels=20, out_channels=20, dtype="fp16")
    assert feature_row_bytes(fp16, RK3588) == 56 * 3 * 16            # C2 = 8 for fp16
    assert weight_bytes(fp16, RK3588) == 9 * 24 * 32 * 2             # Cin to 8, K to 16
    rgb = ConvGeometry(3, 224, 224, 64, (7, 7), (2, 2), (3, 3, 3, 3))
    assert weight_bytes(rgb, RK3588) == 49 * 64 * 16                 # packed: 16 B per tap
    assert weight_bytes(rgb, RK3568) == 49 * 64 * 8
    dw = ConvGeometry(16, 16, 16, 16, (3, 3), depthwise=True)
    assert weight_bytes(dw, RK3588) == 9 * 64                        # padded to 64 channels
    assert channel_unit(conv, RK3588) == 32
    assert channel_unit(fp16, RK3588) == 16
    assert channel_unit(dw, RK3588) == 64
    assert channel_unit(conv, RK3568) == 16


def test_small_conv_is_one_tile():
    conv = ConvGeometry(16, 32, 32, 16, (3, 3), pads=(1, 1, 1, 1))
    plan = plan_tiles(conv, RK3588)
    assert plan.method == "NONE"
    assert plan.cbuf == (1, 11)                                       # 32x32x16 B = 1 bank
    assert [t.as_tuple() for t in plan.tiles] == [(0, 32, 0, 16, 0)]
    assert (plan.tiles[0].pad_top, plan.tiles[0].pad_bottom) == (1, 1)


def test_resnet_stem_splits_by_height():
    # 224 rows x 3584 B = 24.5 banks; weights 49 x 64 x 16 B = 2 banks; 10 data banks would
    # hold 327680 // 3584 = 91 input rows, but the packed input's CBUF_CON1.DATA_ENTRIES
    # (W x rows, 14 bits) allows 16383 // 224 = 73 rows: 35 output rows (34 * 2 + 7 - 3 =
    # 72 input rows) per band.
    plan = plan_tiles(ConvGeometry(3, 224, 224, 64, (7, 7), (2, 2), (3, 3, 3, 3)), RK3588)
    assert (plan.method, plan.cbuf) == ("BY_Y", (10, 2))
    assert [(t.out_rows, t.in_rows, t.pad_top, t.pad_bottom) for t in plan.tiles] == [
        ((0, 35), (0, 72), 3, 0), ((35, 69), (67, 140), 0, 0), ((69, 103), (135, 208), 0, 0),
        ((103, 112), (203, 224), 0, 2)]


def test_large_weights_split_by_output_channels():
    # 9 x 512 x 512 B = 72 banks of weights; 64 kernels take 9 banks, 96 would take 14.
    conv = ConvGeometry(512, 7, 7, 512, (3, 3), pads=(1, 1, 1, 1))
    plan = plan_tiles(conv, RK3588)
    assert (plan.method, plan.cbuf) == ("BY_K", (1, 11))
    assert plan.channel_groups == tuple((c, c + 64) for c in range(0, 512, 64))
    three = plan_tiles(conv, RK3588, cores=3)
    assert three.method == "BY_YK"
    assert three.bands == ((0, 2), (2, 4), (4, 7))
    assert [t.core for t in three.tiles] == [i % 3 for i in range(24)]


def test_rk3568_resnet_block_splits_both_ways():
    # 8 banks; one output row reads 3 rows of 56 x 32 x 8 B = 14336 B. 96 kernels of
    # 9 x 256 B take 7 banks, leaving 1 data bank = 2 rows: too few. 80 kernels take 6
    # banks and leave 2 data banks = 65536 // 14336 = 4 input rows = 2 output rows (3 in
    # the first band, whose top row is padding).
    plan = plan_tiles(ConvGeometry(256, 56, 56, 256, (3, 3), pads=(1, 1, 1, 1)), RK3568)
    assert (plan.method, plan.cbuf) == ("BY_YK", (2, 6))
    assert plan.channel_groups == ((0, 80), (80, 160), (160, 240), (240, 256))
    assert plan.bands[:3] == ((0, 3), (3, 5), (5, 7))
    assert plan.bands[-1] == (53, 56)
    assert len(plan.bands) == 27 and len(plan.tiles) == 4 * 27


def test_cores_get_independent_bands():
    plan = plan_tiles(ConvGeometry(16, 10, 8, 32, (3, 3), pads=(1, 1, 1, 1)), RK3588, cores=3)
    assert [t.as_tuple() for t in plan.tiles] == [
        (0, 3, 0, 32, 0), (3, 6, 0, 32, 1), (6, 10, 0, 32, 2)]
    assert [(t.in_rows, t.pad_top, t.pad_bottom) for t in plan.tiles] == [
        ((0, 4), 1, 0), ((2, 7), 0, 0), ((5, 10), 0, 1)]
    two_rows = plan_tiles(ConvGeometry(16, 2, 8, 32, (1, 1)), RK3588, cores=3)
    assert [t.as_tuple() for t in two_rows.tiles] == [(0, 2, 0, 32, 0)]


def test_unfittable_conv_names_the_constraint():
    conv = ConvGeometry(2048, 8, 2047, 32, (3, 3), pads=(1, 1, 1, 1))
    with pytest.raises(TilingError, match=r"3 input rows x 4192256 B = 384 data banks") as e:
        plan_tiles(conv, RK3588)
    assert "RK3588 CBUF (12 banks of 32768 B)" in str(e.value)
    assert "32 kernels needs 18 weight banks" in str(e.value)


def test_bad_requests_are_rejected():
    conv = ConvGeometry(16, 8, 8, 16, (3, 3))
    with pytest.raises(TilingError, match="RK3568 has 1 NPU core"):
        plan_tiles(conv, RK3568, cores=2)
    with pytest.raises(RkcError, match="smaller than the dilated kernel height 3"):
        ConvGeometry(16, 8, 8, 16, (3, 3), pads=(3, 0, 0, 0))
    with pytest.raises(RkcError, match="depthwise"):
        ConvGeometry(16, 8, 8, 32, (3, 3), depthwise=True)
    with pytest.raises(RkcError, match="empty"):
        ConvGeometry(16, 2, 8, 16, (3, 3))
    with pytest.raises(RkcError, match="not 'int4'"):
        ConvGeometry(16, 8, 8, 16, (3, 3), dtype="int4")


def test_describe_prints_one_line_per_tile():
    plan = plan_tiles(ConvGeometry(3, 224, 224, 64, (7, 7), (2, 2), (3, 3, 3, 3)), RK3588)
    lines = describe(plan).splitlines()
    assert len(lines) == 4
    assert lines[0] == ("tile 0 (BY_Y, cbuf 10d+2w): core 0 out rows [0, 35) in rows [0, 72) "
                        "pad 3/0 out ch [0, 64)")


# --------------------------------------------------------------------------- properties


@st.composite
def geometries(draw) -> ConvGeometry:
    depthwise = draw(st.booleans())
    cin = draw(st.integers(1, 150 if depthwise else 40))
    cout = cin if depthwise else draw(st.integers(1, 150))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    pt, pb = draw(st.integers(0, eh - 1)), draw(st.integers(0, eh - 1))
    pl, pr = draw(st.integers(0, ew - 1)), draw(st.integers(0, ew - 1))
    h = draw(st.integers(max(1, eh - pt - pb), 24))
    w = draw(st.integers(max(1, ew - pl - pr), 10))
    return ConvGeometry(cin, h, w, cout, (kh, kw), (draw(st.integers(1, 3)),
                        draw(st.integers(1, 3))), (pt, pl, pb, pr), (dh, dw), depthwise,
                        draw(st.sampled_from(["int8", "fp16"])))


@st.composite
def targets(draw) -> Target:
    target = draw(st.sampled_from([RK3588, RK3568]))
    if draw(st.integers(0, 3)) == 0:
        return target
    n = draw(st.integers(2, 12))
    size = draw(st.sampled_from([64, 128, 256, 512, 1024, 2048, 4096, 8192]))
    return dataclasses.replace(target, cbuf_banks=n, cbuf_bank_bytes=size, cbuf_bytes=n * size)


def _single_row_inputs(g: ConvGeometry) -> int:
    """Most input rows one output row reads (independent of the module's band code)."""
    s, eh = g.strides[0], g.extent[0]
    return max(min(o * s - g.pads[0] + eh, g.in_height) - max(o * s - g.pads[0], 0)
               for o in range(g.out_height))


@settings(max_examples=200, deadline=None)
@given(geometries(), targets(), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_tiles_compute_the_untiled_conv(g: ConvGeometry, target: Target, cores: int,
                                        seed: int):
    cores = min(cores, target.cores)
    try:
        plan = plan_tiles(g, target, cores)
    except TilingError:
        event("TilingError")
        smallest = min(g.out_channels, channel_unit(g, target))
        rows = _single_row_inputs(g)
        need = banks(weight_bytes(g, target, smallest), target) + banks(
            rows * feature_row_bytes(g, target, smallest if g.depthwise else None), target)
        assert need > target.cbuf_banks
        return
    event(plan.method)
    assert 1 <= plan.data_banks and 1 <= plan.weight_banks
    assert plan.data_banks + plan.weight_banks <= target.cbuf_banks
    unit = channel_unit(g, target)
    s, pt, eh = g.strides[0], g.pads[0], g.extent[0]

    rng = np.random.default_rng(seed)
    x = rng.integers(-8, 8, (1, g.in_channels, g.in_height, g.in_width))
    w = rng.integers(-8, 8, (g.out_channels, 1 if g.depthwise else g.in_channels, *g.kernel))
    group = g.in_channels if g.depthwise else 1
    full = conv2d_acc(x, w, g.strides, g.pads, g.dilations, group)
    assert full.shape == (1, g.out_channels, g.out_height, g.out_width)
    tiled = np.zeros_like(full)
    covered = np.zeros(full.shape[1:3], np.int64)
    for i, tile in enumerate(plan.tiles):
        (r0, r1), (i0, i1), (c0, c1) = tile.out_rows, tile.in_rows, tile.out_channels
        # exactly the rows the output rows need, the clipped part as padding
        first, end = r0 * s - pt, (r1 - 1) * s - pt + eh
        assert (i0, tile.pad_top) == (max(first, 0), max(-first, 0))
        assert (i1, tile.pad_bottom) == (min(end, g.in_height), max(end - g.in_height, 0))
        assert tile.in_channels == ((c0, c1) if g.depthwise else (0, g.in_channels))
        assert c0 % unit == 0 and (c1 == g.out_channels or c1 % unit == 0)
        assert banks(tile_data_bytes(g, target, tile), target) <= plan.data_banks
        assert banks(tile_weight_bytes(g, target, tile), target) <= plan.weight_banks
        assert i1 - i0 <= target.max_height
        assert tile.core == i % cores
        xs = x[:, tile.in_channels[0]:tile.in_channels[1], i0:i1]
        part = conv2d_acc(xs, w[c0:c1], g.strides,
                          (tile.pad_top, g.pads[1], tile.pad_bottom, g.pads[3]),
                          g.dilations, c1 - c0 if g.depthwise else 1)
        assert part.shape[2] == r1 - r0
        tiled[:, c0:c1, r0:r1] = part
        covered[c0:c1, r0:r1] += 1
    assert (covered == 1).all()
    np.testing.assert_array_equal(tiled, full)
    if cores > 1 and g.out_height >= cores:
        assert len(plan.bands) > 1
    assert len(plan.tiles) == len(plan.bands) * len(plan.channel_groups)
    assert len(describe(plan).splitlines()) == len(plan.tiles)
