"""The register-level simulator (rkc.sim) against rkc's integer arithmetic.

Tasks are described by hand (rkc.backends.tasks), packed (rkc.backends.weights), emitted
and linked with real buffer addresses (rkc.backends.emit_*), placed in a simulated memory
and run by following the PC chain; the result is compared with the quantized kernels the
rknpu interpreter uses (rkc.quant.integer_kernels)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rkc.backends.emit import link
from rkc.backends.emit_conv import conv_task
from rkc.backends.emit_ppu import pool_task
from rkc.backends.regcmd import RegWrite, unpack_task_records, words_from_bytes, words_to_bytes
from rkc.backends.tasks import Address, ConvTask, ConvTile, Feature, PoolTask
from rkc.backends.weights import (
    pack_dpu_stream,
    pack_exact_stream,
    pack_weights,
    split_requant,
    stream_biases,
    weight_layout,
)
from rkc.errors import RkcError
from rkc.interpreter.rknpu_impls import to_native, to_nchw
from rkc.lowering.dram import surface_pixels
from rkc.lowering.tiling import band_rows
from rkc.quant import integer_kernels as ik
from rkc.quant.requant import multipliers
from rkc.sim import Memory, Npu
from rkc.targets import get_target

CHIPS = ("rk3588", "rk3568")
REGCMD_BASE = 0x0010_0000
BASES = {"x": 0x1000_0000, "y": 0x2000_0000, "w": 0x3000_0000, "b": 0x3800_0000,
         "z": 0x4000_0000}


def _native_bytes(x: np.ndarray, c2: int, surface_pixels: int, surfaces: int) -> bytes:
    """NCHW int8 [1, C, H, W] -> `surfaces` surfaces of `surface_pixels` pixels."""
    nat = to_native(x, c2)[0]                      # [C1, H, W, C2]
    c1, h, w, _ = nat.shape
    out = np.zeros((surfaces, surface_pixels * c2), np.int8)
    out[:c1, :h * w * c2] = nat.reshape(c1, -1)
    return out.tobytes()


def _from_native(data: np.ndarray, c: int, h: int, w: int, c2: int, surface_pixels: int
                 ) -> np.ndarray:
    c1 = -(-c // c2)
    surf = data[:c1 * surface_pixels * c2].view(np.int8).reshape(c1, surface_pixels * c2)
    nat = surf[:, :h * w * c2].reshape(1, c1, h, w, c2)
    return to_nchw(nat, c).astype(np.int64)


@dataclass
class ConvCase:
    chip: str
    cin: int
    h: int
    w: int
    cout: int
    kernel: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilations: tuple[int, int]
    depthwise: bool
    bands: int
    groups: int
    per_channel: bool
    relu: str | None
    seed: int
    exact: bool = False          # ConvTask.requant "exact": per-channel shifts in the stream


def run_conv_case(case: ConvCase, corrupt=None) -> tuple[np.ndarray, np.ndarray, int]:
    """(simulated, reference, task count) for one conv layer split into tiles."""
    chip, t = case.chip, get_target(case.chip)
    rng = np.random.default_rng(case.seed)
    c2 = t.c2("int8")
    kh, kw = case.kernel
    (sy, sx), (dy, dx) = case.strides, case.dilations
    pt, pl, pb, pr = case.pads
    oh = (case.h + pt + pb - (kh - 1) * dy - 1) // sy + 1
    ow = (case.w + pl + pr - (kw - 1) * dx - 1) // sx + 1
    k = case.cin if case.depthwise else case.cout
    x = rng.integers(-128, 128, (1, case.cin, case.h, case.w)).astype(np.int8)
    wshape = (k, 1, kh, kw) if case.depthwise else (k, case.cin, kh, kw)
    w = rng.integers(-127, 128, wshape).astype(np.int8)
    bias = rng.integers(-3000, 3000, k)
    xq = ik.TensorQ(0.02, int(rng.integers(-20, 20)), -128, 127)
    yq = ik.TensorQ(0.05 * (case.cin * kh * kw) ** 0.5, int(rng.integers(-20, 20)), -128,
                    127)
    w_scales = (rng.uniform(0.002, 0.01, k) if case.per_channel else np.full(k, 0.005))
    m, s = multipliers(xq.scale * w_scales / yq.scale)
    lo, hi = ik.activation_range(case.relu, (0.0, 6.0) if case.relu == "clip" else (), yq)
    ref = ik.conv2d(x, xq, w, w_scales, bias, yq, lo, hi, case.strides, case.pads,
                    case.dilations, k if case.depthwise else 1)

    sp_in, sp_out = surface_pixels(case.h, case.w, t), surface_pixels(oh, ow, t)
    kpad = t.padded_out_channels(k, "int8", case.depthwise)
    out_surfaces = max(-(-k // c2), kpad // c2)
    xf = Feature.native(Address("x"), case.cin, case.h, case.w, c2, sp_in)
    yf = Feature.native(Address("y"), k, oh, ow, c2, sp_out)
    layout = weight_layout(t, k, 1 if case.depthwise else case.cin, kh, kw, case.depthwise)
    biases = stream_biases(bias, w, [], xq.zp).tolist()
    if case.exact:
        stream = pack_exact_stream(chip, biases, [0] * k, m.tolist(), s.tolist(), kpad)
    else:
        stream = pack_dpu_stream(chip, biases, [0] * k,
                                 list(split_requant(m.tolist(), s.tolist()).channel_mul), kpad)
    # tiles: height bands x channel groups
    row_cuts = np.linspace(0, oh, min(case.bands, oh) + 1).astype(int)
    group = layout.channel_group if case.depthwise else layout.kernel_group
    unit = np.lcm(group, np.lcm(c2, 8))
    n_groups = max(1, min(case.groups, -(-k // unit)))
    units = -(-k // unit)
    step = unit * -(-units // n_groups)
    ch_cuts = sorted({0, k, *[min(k, int(i * step)) for i in range(1, n_groups)]})
    bands = [band_rows((int(r0), int(r1)), case.h, (kh - 1) * dy + 1, sy, pt)
             for r0, r1 in zip(row_cuts[:-1], row_cuts[1:], strict=True)]
    if any(i1 <= i0 for i0, i1, _, _ in bands):   # a band of padding only: one band
        row_cuts = np.array([0, oh])
    tasks = []
    for r0, r1 in zip(row_cuts[:-1], row_cuts[1:], strict=True):
        i0, i1, top, bottom = band_rows((int(r0), int(r1)), case.h, (kh - 1) * dy + 1, sy, pt)
        for c0, c1 in zip(ch_cuts[:-1], ch_cuts[1:], strict=True):
            task = ConvTask(
                name="conv", input=xf, output=yf, weights=Address("w"), stream=Address("b"),
                kernel=case.kernel, out_channels=k, multipliers=tuple(m.tolist()),
                shifts=tuple(s.tolist()),
                tile=ConvTile((int(r0), int(r1)), (i0, i1), top, bottom, (c0, c1)),
                data_banks=1, weight_banks=1, strides=case.strides, pads=case.pads,
                dilations=case.dilations, depthwise=case.depthwise,
                input_zero_point=xq.zp, output_zero_point=yq.zp,
                clamp_low=lo if case.relu else None,
                clamp_high=hi if case.relu == "clip" else None,
                requant="exact" if case.exact else "split")
            tasks.append(conv_task(task, chip))
    regcmd, records, _ = link(chip, tasks, REGCMD_BASE, BASES)
    if corrupt is not None:
        regcmd = corrupt(regcmd)
    mem = Memory()
    mem.add("regcmd", REGCMD_BASE, regcmd)
    mem.add("x", BASES["x"], _native_bytes(x, c2, sp_in, -(-case.cin // c2)))
    y = mem.add("y", BASES["y"], out_surfaces * sp_out * c2)
    mem.add("w", BASES["w"], pack_weights(w, layout) + bytes(64))  # + slack
    mem.add("b", BASES["b"], stream)
    recs = unpack_task_records(records)
    Npu(chip, mem).run_records(recs, 0, len(recs))
    got = _from_native(y.data, k, oh, ow, c2, sp_out)
    return got, ref, len(recs)


conv_cases = st.builds(
    ConvCase, chip=st.sampled_from(CHIPS), cin=st.integers(1, 40), h=st.integers(1, 12),
    w=st.integers(1, 12), cout=st.integers(1, 70),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    strides=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    pads=st.tuples(*[st.integers(0, 1)] * 4), dilations=st.tuples(st.integers(1, 2),
                                                                   st.integers(1, 2)),
    depthwise=st.booleans(), bands=st.integers(1, 3), groups=st.integers(1, 3),
    per_channel=st.just(False), relu=st.sampled_from([None, "relu", "clip"]),
    seed=st.integers(0, 2**31))


def _valid(c: ConvCase) -> bool:
    kh, kw = c.kernel
    pt, pl, pb, pr = c.pads
    oh = (c.h + pt + pb - (kh - 1) * c.dilations[0] - 1) // c.strides[0] + 1
    if oh >= 1:
        i0, i1, _, _ = band_rows((0, oh), c.h, (kh - 1) * c.dilations[0] + 1,
                                 c.strides[0], pt)
        if i1 <= i0:
            return False
    return (c.h + c.pads[0] + c.pads[2] >= (kh - 1) * c.dilations[0] + 1
            and c.w + c.pads[1] + c.pads[3] >= (kw - 1) * c.dilations[1] + 1)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.filter_too_much])
@given(conv_cases.filter(_valid))
def test_conv_per_tensor_matches_the_integer_kernels_exactly(case):
    got, ref, _ = run_conv_case(case)
    np.testing.assert_array_equal(got, ref)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.filter_too_much])
@given(conv_cases.filter(_valid).map(lambda c: ConvCase(**{**c.__dict__,
                                                             "per_channel": True})))
def test_conv_per_channel_two_step_requant_within_one_step(case):
    """The split requantization (`split_requant`: channel multiplier >> 14, then one
    output converter) is what the registers say; it rounds twice, so it may differ from
    rkc's one-step requantization by one step, never more."""
    got, ref, _ = run_conv_case(case)
    assert np.abs(got - ref).max(initial=0) <= 1


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.filter_too_much])
@given(conv_cases.filter(_valid).map(lambda c: ConvCase(**{**c.__dict__, "per_channel": True,
                                                             "exact": True})))
def test_conv_per_channel_exact_stream_matches_exactly(case):
    """With per-channel shifts in the stream (TRT operand) the DPU computes rkc's
    one-step requantization: exact."""
    got, ref, _ = run_conv_case(case)
    np.testing.assert_array_equal(got, ref)


def _set_register(chip: str, name: str, value_of):
    """A regcmd transformation: every write of `name` gets `value_of(old value)`."""
    from rkc.backends.registers import register_table

    table = register_table(chip)
    reg = table.register(name)
    target = table.blocks[reg.block].target

    def corrupt(regcmd: bytes) -> bytes:
        words = words_from_bytes(regcmd)
        hits = 0
        for i, word in enumerate(words):
            w = RegWrite.from_word(word)
            if (w.target, w.offset) == (target, reg.offset):
                words[i] = RegWrite(w.target, w.offset, value_of(w.value)).word
                hits += 1
        assert hits, name
        return words_to_bytes(words)
    return corrupt


CASE = ConvCase("rk3588", 20, 9, 7, 24, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), False, 2, 1,
                False, "relu", 7)


@pytest.mark.parametrize("chip", CHIPS)
def test_a_broken_register_is_caught(chip):
    case = ConvCase(**{**CASE.__dict__, "chip": chip})
    got, ref, tasks = run_conv_case(case)
    np.testing.assert_array_equal(got, ref)
    assert tasks == 2
    # a changed value the simulator models: the output no longer matches
    for name, change in (("DPU.OUT_CVT_OFFSET", lambda v: v + 1),
                         ("CNA.PAD_CON0", lambda v: v ^ 0x10),            # PAD_LEFT 1 -> 0
                         ("CNA.DCOMP_ADDR0", lambda v: v + 32)):         # weights moved
        bad, ref, _ = run_conv_case(case, _set_register(chip, name, change))
        assert not np.array_equal(bad, ref), name
    # a value the simulator does not model: an error naming the task and the register
    with pytest.raises(RkcError, match=r"task 0: CNA.FC_CON0.*zero skipping"):
        run_conv_case(case, _set_register(chip, "CNA.FC_CON0", lambda v: 1))
    with pytest.raises(RkcError, match=r"task 0: CNA.CONV_CON3.NN_MODE"):
        run_conv_case(case, _set_register(chip, "CNA.CONV_CON3", lambda v: v | 1 << 28))
    with pytest.raises(RkcError, match=r"task 0: DPU.EW_CFG.EW_BINARY_EN"):
        run_conv_case(case, _set_register(chip, "DPU.EW_CFG", lambda v: v & ~1 | 1 << 20))
    with pytest.raises(RkcError, match=r"task 0: CNA.FEATURE_DATA_ADDR|task 0: CNA input"):
        run_conv_case(case, _set_register(chip, "CNA.FEATURE_DATA_ADDR",
                                          lambda v: v + 0x0800_0000))


def test_chain_and_word_errors():
    chip = "rk3588"
    # an unknown register offset inside a task
    with pytest.raises(RkcError, match=r"task 0: word \d+ .* unknown register"):
        run_conv_case(CASE, _set_register(chip, "CNA.FC_CON2", lambda v: v)  # no-op
                      and (lambda r: _unknown_offset(r)))
    # an unmodelled op-enable mask
    with pytest.raises(RkcError, match="op-enable mask 0x1f is not a modelled"):
        run_conv_case(CASE, lambda r: _replace_mask(r, 0x1D, 0x1F))


def _unknown_offset(regcmd: bytes) -> bytes:
    words = words_from_bytes(regcmd)
    w = RegWrite.from_word(words[3])
    words[3] = RegWrite(w.target, 0x0FFC, w.value).word
    return words_to_bytes(words)


def _replace_mask(regcmd: bytes, old: int, new: int) -> bytes:
    from rkc.backends.regcmd import OP_EN_OFFSET, OP_EN_TARGET

    words = words_from_bytes(regcmd)
    for i, word in enumerate(words):
        w = RegWrite.from_word(word)
        if (w.target, w.offset, w.value) == (OP_EN_TARGET, OP_EN_OFFSET, old):
            words[i] = RegWrite(w.target, w.offset, new).word
    return words_to_bytes(words)


def test_memory_rejects_overlap_and_out_of_region_access():
    mem = Memory()
    mem.add("a", 0x1000, 64)
    with pytest.raises(RkcError, match="overlaps a"):
        mem.add("b", 0x1020, 64)
    with pytest.raises(RkcError, match="outside every memory region"):
        mem.view(0x1030, (4, 8), (8, 1), np.int8, "probe")
    v = mem.view(0x1000, (2, 2), (16, 1), np.int8, "probe")
    v[...] = [[1, 2], [3, 4]]
    assert mem.read_bytes(0x1010, 2, "probe") == bytes([3, 4])


def test_pool_task_matches_the_integer_kernels():
    """A hand-built max pool with padding, both chips (ew tasks: tests/test_runtime.py)."""
    for chip in CHIPS:
        t = get_target(chip)
        c2 = t.c2("int8")
        rng = np.random.default_rng(5)
        c, h, w = 19, 7, 10
        x = rng.integers(-128, 128, (1, c, h, w)).astype(np.int8)
        sp = surface_pixels(h, w, get_target(chip))
        oh, ow = 4, 5
        sp_out = surface_pixels(oh, ow, get_target(chip))
        xf = Feature.native(Address("x"), c, h, w, c2, sp)
        yf = Feature.native(Address("y"), c, oh, ow, c2, sp_out)
        pool = pool_task(PoolTask("p", "max", xf, yf, (2, 2), (2, 2), (1, 1, 0, 0)), chip)
        regcmd, records, _ = link(chip, [pool], REGCMD_BASE, BASES)
        mem = Memory()
        mem.add("regcmd", REGCMD_BASE, regcmd)
        mem.add("x", BASES["x"], _native_bytes(x, c2, sp, -(-c // c2)))
        y = mem.add("y", BASES["y"], -(-c // c2) * sp_out * c2)
        Npu(chip, mem).run_records(unpack_task_records(records), 0, 1)
        q = ik.TensorQ(0.1, 0, -128, 127)
        ref = ik.max_pool2d(x, q, q, (2, 2), (2, 2), (1, 1, 0, 0), (1, 1), False)
        np.testing.assert_array_equal(_from_native(y.data, c, oh, ow, c2, sp_out), ref)
