"""Per-chip hardware parameters (rkc/targets.py): consistency, lookup, the table."""

from __future__ import annotations

import dataclasses

import pytest

from rkc.errors import RkcError
from rkc.targets import (
    ELEMENT_BITS,
    RK3566,
    RK3568,
    RK3576,
    RK3588,
    TARGETS,
    UNCERTAIN,
    Target,
    get_target,
    target_table,
)

ALL = list(TARGETS.values())
IDS = [t.name for t in ALL]
FIGURES = [f.name for f in dataclasses.fields(Target) if f.name not in ("name", "sources")]


def test_the_four_chips_keyed_by_lower_case_name():
    assert list(TARGETS) == ["rk3588", "rk3576", "rk3568", "rk3566"]
    for key, target in TARGETS.items():
        assert key == target.name.lower()


@pytest.mark.parametrize("t", ALL, ids=IDS)
def test_cbuf_banks_add_up(t: Target):
    assert t.cbuf_banks * t.cbuf_bank_bytes == t.cbuf_bytes
    assert t.cbuf_bytes_total == t.cores * t.cbuf_bytes


@pytest.mark.parametrize("t", ALL, ids=IDS)
def test_c2_times_element_size_is_the_atom(t: Target):
    assert t.c2_int8 * 1 == t.atom_bytes
    assert t.c2_fp16 * 2 == t.atom_bytes
    assert t.c2("int8") == t.c2_int8 and t.c2("fp16") == t.c2_fp16
    assert t.c2("int16") == t.c2("bf16") == t.c2_fp16
    assert t.c2("int4") == 2 * t.c2_int8
    assert t.c2("int32") == t.c2("fp32") == t.atom_bytes // 4
    assert t.argb_max_channels < t.c2_int8


@pytest.mark.parametrize("t", ALL, ids=IDS)
def test_paddings_are_whole_atoms_and_groups(t: Target):
    # Padded output channels fill whole surfaces and whole weight kernel groups.
    assert t.out_align_int8 % t.c2_int8 == 0
    assert t.out_align_fp16 % t.c2_fp16 == 0
    assert t.dw_align_int8 % t.out_align_int8 == 0
    assert t.dw_align_fp16 % t.out_align_fp16 == 0
    assert t.out_align_int8 % t.weight_kernel_group_int8 == 0
    if t.weight_kernel_group_fp16 is not None:
        assert t.out_align_fp16 % t.weight_kernel_group_fp16 == 0
    assert t.weight_cin_group % t.weight_cin_align_int8 == 0
    assert t.weight_cin_align_int8 % t.c2_int8 == 0
    assert t.small_cin_weight_bytes <= t.atom_bytes


@pytest.mark.parametrize("t", ALL, ids=IDS)
def test_mac_rate_matches_the_vendor_tops(t: Target):
    if t.int8_macs_per_cycle is None:
        assert "int8_macs_per_cycle" in t.uncertain_fields
        return
    implied = t.cores * t.int8_macs_per_cycle * 2 * t.npu_clock_mhz * 1e6
    assert implied == pytest.approx(t.peak_int8_tops * 1e12, rel=0.05)
    assert t.peak_int8_macs_per_second == pytest.approx(t.peak_int8_tops * 5e11)
    assert t.fp16_macs_per_cycle is None or t.fp16_macs_per_cycle <= t.int8_macs_per_cycle


@pytest.mark.parametrize("t", ALL, ids=IDS)
def test_limits_and_types_are_sane(t: Target):
    assert 1 <= t.max_stride <= t.max_kernel
    assert t.max_pad >= 0 and t.max_dilation >= 1
    assert t.max_width >= 1024 and t.max_height >= 1024
    assert {"int8", "int16", "fp16"} <= set(t.dtypes)
    assert set(t.dtypes) - {"tf32"} <= set(ELEMENT_BITS)
    assert t.dma_address_bits in (32, 40)
    assert t.max_tasks_per_submit >= 4095


@pytest.mark.parametrize("t", ALL, ids=IDS)
def test_every_figure_has_a_source(t: Target):
    assert sorted(t.sources) == sorted(FIGURES)
    for name, text in t.sources.items():
        assert text.strip(), name
    assert t.uncertain_fields <= set(FIGURES)
    # A figure nobody knows is None and says so.
    for name in FIGURES:
        if getattr(t, name) is None:
            assert "unknown" in t.sources[name], name


def test_a_target_refuses_missing_sources():
    with pytest.raises(ValueError, match="sources missing"):
        dataclasses.replace(RK3588, sources={"cores": "x"})
    with pytest.raises(ValueError, match="CBUF"):
        dataclasses.replace(RK3588, cbuf_banks=11)


def test_values_stated_in_the_issue():
    assert RK3588.cores == 3
    assert RK3588.cbuf_bytes == 384 * 1024
    assert (RK3588.cbuf_banks, RK3588.cbuf_bank_bytes) == (12, 32 * 1024)
    assert RK3588.int8_macs_per_cycle == 1024
    assert RK3588.atom_bytes == 16
    assert (RK3588.c2_int8, RK3588.c2_fp16) == (16, 8)
    assert (RK3576.c2_int8, RK3576.c2_fp16) == (16, 8)
    for t in (RK3568, RK3566):
        assert t.cores == 1
        assert t.cbuf_banks == 8
        assert t.c2_int8 == 8


def test_rk3566_is_the_rk3568_npu():
    assert RK3566.npu_of == "RK3568"
    assert dataclasses.replace(RK3566, name="RK3568", npu_of="RK3568") == RK3568
    assert RK3566 != RK3568


def test_uncertain_marks_follow_the_sources():
    assert "cbuf_bytes" in RK3568.uncertain_fields
    assert "cbuf_bytes" not in RK3588.uncertain_fields
    assert "int8_macs_per_cycle" not in RK3588.uncertain_fields
    assert "weight_kernel_group_int8" in RK3568.uncertain_fields
    for t in ALL:
        for name in t.uncertain_fields:
            assert UNCERTAIN in t.sources[name]


# Output buffer sizes in the vendor build logs (/work/shared/fixtures/vendor-rknn/logs,
# Feature Tensor tables): (chip, dtype, out channels, H, W, depthwise, bytes, tensor).
VENDOR_BUFFERS = [
    ("rk3588", "int8", 16, 32, 32, False, 0x8000, "conv_relu output"),
    ("rk3588", "int8", 16, 16, 16, False, 0x2000, "mobilenet r0"),
    ("rk3588", "int8", 16, 16, 16, True, 0x4000, "mobilenet rdw"),
    ("rk3588", "int8", 16, 3, 3, True, 0x300, "resblock gap_2conv0"),
    ("rk3588", "int8", 16, 1, 1, True, 0x40, "resblock gap"),
    ("rk3588", "int8", 10, 1, 1, False, 0x20, "resblock output_mm"),
    ("rk3588", "fp16", 16, 32, 32, False, 0x8000, "conv_relu output"),
    ("rk3588", "fp16", 16, 16, 16, False, 0x2000, "mobilenet r0"),
    ("rk3588", "fp16", 16, 16, 16, True, 0x4000, "mobilenet rdw"),
    ("rk3588", "fp16", 16, 3, 3, True, 0x300, "resblock gap_2conv0"),
    ("rk3588", "fp16", 10, 1, 1, False, 0x20, "resblock output_mm"),
    ("rk3568", "int8", 16, 32, 32, False, 0x4000, "conv_relu output"),
    ("rk3568", "int8", 16, 16, 16, True, 0x2000, "mobilenet rdw"),
    ("rk3568", "int8", 16, 3, 3, True, 0x180, "resblock gap_2conv0"),
    ("rk3568", "int8", 16, 1, 1, True, 0x20, "resblock gap"),
    ("rk3568", "int8", 10, 1, 1, False, 0x10, "resblock output_mm"),
    ("rk3568", "fp16", 16, 32, 32, False, 0x8000, "conv_relu output"),
    ("rk3568", "fp16", 16, 16, 16, True, 0x2000, "mobilenet rdw"),
    ("rk3568", "fp16", 16, 3, 3, True, 0x180, "resblock gap_2conv0"),
    ("rk3568", "fp16", 10, 1, 1, False, 0x20, "resblock output_mm"),
]


@pytest.mark.parametrize("chip,dtype,k,h,w,dw,size,tensor", VENDOR_BUFFERS,
                         ids=[f"{r[0]}-{r[1]}-{r[7]}" for r in VENDOR_BUFFERS])
def test_padding_reproduces_vendor_buffer_sizes(chip, dtype, k, h, w, dw, size, tensor):
    t = get_target(chip)
    pixels = h * w
    if pixels > 1:
        pixels = -(-pixels // t.surface_pixel_align) * t.surface_pixel_align
    element = ELEMENT_BITS[dtype] // 8
    assert t.padded_out_channels(k, dtype, depthwise=dw) * pixels * element == size


def test_padded_out_channels():
    assert RK3588.padded_out_channels(1) == 32
    assert RK3588.padded_out_channels(33) == 64
    assert RK3588.padded_out_channels(16, depthwise=True) == 64
    assert RK3588.padded_out_channels(16, "fp16") == 16
    assert RK3568.padded_out_channels(17) == 32
    with pytest.raises(RkcError):
        RK3588.padded_out_channels(16, "fp32")


def test_c2_of_an_unknown_dtype_is_a_user_error():
    with pytest.raises(RkcError, match="no feature layout"):
        RK3588.c2("float64")


def test_get_target():
    assert get_target("rk3588") is RK3588
    assert get_target("RK3566") is RK3566
    assert get_target(" Rk3568 ") is RK3568


@pytest.mark.parametrize("bad", ["rk3399", "", "rk35888", "npu"])
def test_get_target_unknown_name(bad):
    with pytest.raises(RkcError) as info:
        get_target(bad)
    message = str(info.value)
    assert "\n" not in message
    assert repr(bad) in message
    for name in TARGETS:
        assert name in message


def test_target_table():
    table = target_table()
    lines = table.splitlines()
    header = lines[0]
    for t in ALL:
        assert t.name in header
    rows = [line for line in lines if line.startswith("|")]
    assert all(row.count("|") == len(ALL) + 2 for row in rows)
    assert rows[1].startswith("|---|")
    assert any("CBUF per core | 384 KiB | 384 KiB? | 256 KiB? | 256 KiB?" in r for r in rows)
    assert any(r.startswith("| NPU cores | 3 | 2 | 1 | 1 |") for r in rows)
    assert "uncertain" in lines[-1]


def test_target_table_of_chosen_targets():
    table = target_table([RK3568])
    assert "RK3568" in table and "RK3588" not in table
