"""NPU legality ("placement"): which ops of a quantized `nn` module can run as NPU tasks.

One `Rule` per op kind; `npu_obstacle(op, target)` applies it and returns None (the op
can be an NPU task on that chip) or a short reason naming the failed constraint with its
values, e.g. "kernel 33x33 exceeds 31 (CNA.WEIGHT_SIZE2 WEIGHT_WIDTH/HEIGHT, 5 bits) on
RK3588". The same rules, read as data (`RULES`: limits per chip, conditions, data
types), generate docs/supported-ops.md (`supported_ops_table`).

Invariants:
  * only constraints that splitting cannot fix are checked: register field widths for
    kernel, stride, top/left padding, dilation, width and input channels. Height (split
    into bands) and output channels (split into kernel groups) are never rejected; whether
    a task fits the CBUF is `rkc.lowering.tiling`'s business;
  * data types: int8 (`!quant.uniform<i8>`, per tensor on features) and fp16 (f16) may go
    to the NPU; f32 never ("not quantized"). The DPU lookup table is built for int8 only;
  * float <-> int8 / fp16 conversions (`quant.quantize`, `quant.dequantize`, `nn.cast`)
    run on the CPU, at the graph edge or around a float island, as rknn-toolkit2's
    InputOperator does (logs/*: always CPU); `quant.requantize` is a DPU rescale (NPU);
  * views that cost no task (channel concat / split / slice on C2 boundaries, a reshape
    that keeps N and C) are placed on the NPU so that they do not cut an NPU chain;
  * `place` writes `rkc.placement` = "npu" | "cpu" on every op of the entry function but
    `nn.constant` and `func.return`, and `rkc.reason` on (only) the CPU ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, StringAttr, TensorType, f16, f32
from xdsl.ir import Operation, SSAValue

from rkc.dialects import nn
from rkc.dialects.quant import quantized_element
from rkc.graph import main_function
from rkc.targets import TARGETS, Target

PLACEMENT_ATTR = "rkc.placement"
REASON_ATTR = "rkc.reason"
NPU_DTYPES = ("int8", "fp16")
"""Data types rkc computes in on the NPU (the hardware has more, `Target.dtypes`)."""

# Figures not in rkc/targets.py (register field widths, RK3588 TRM, hw §3); the other
# chips are assumed to match, as targets.py assumes for the CNA fields.
CNA_MAX_OUT_WIDTH = 2047
"""reg CNA.DATA_SIZE2 DATAOUT_WIDTH[10:0]: 11 bits, no minus one (hw §3.1)."""
DPU_MAX_WIDTH = 8192
"""reg DPU.DATA_CUBE_WIDTH[12:0]: 13 bits, minus one (hw §3.3); DPU flying-mode tasks."""
PPU_MAX_KERNEL = 16
"""reg PPU.POOLING_KERNEL_CFG KERNEL_WIDTH[3:0] / KERNEL_HEIGHT[11:8]: 4 bits, minus one
(hw §3.5) [UNCERTAIN: PPU int8 pooling on RK3588 is unverified, hw §9.9]."""
PPU_MAX_STRIDE = 16
"""reg PPU.POOLING_KERNEL_CFG STRIDE_WIDTH[19:16] / STRIDE_HEIGHT[23:20]: 4 bits, minus
one (hw §3.5) [UNCERTAIN: as PPU_MAX_KERNEL]."""
PPU_MAX_PAD = 7
"""reg PPU.POOLING_PADDING_CFG top/left/bottom/right: 3 bits each (hw §3.5); every window
must lie inside input + padding, so ceil-mode overhang counts as padding (iav, hw §3.5)."""
PPU_MAX_WIDTH = 8192
"""reg PPU.DATA_CUBE_IN_WIDTH[12:0]: 13 bits, minus one (hw §3.5)."""


# ---------------------------------------------------------------------------
# limits and rules as data
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Limit:
    """An upper bound on one quantity of a task, per chip, with the register field."""

    what: str                        # "kernel", "stride", ...
    field: str                       # "CNA.WEIGHT_SIZE2 WEIGHT_WIDTH/HEIGHT, 5 bits"
    value: Callable[[Target], int]
    target_field: str | None = None  # the `Target` figure it reads, if any
    uncertain: bool = False          # a local figure marked [UNCERTAIN] above

    def is_uncertain(self, target: Target) -> bool:
        """Whether the figure is marked uncertain (here or in `target.sources`)."""
        return self.uncertain or self.target_field in target.uncertain_fields

    def check(self, shown: str, actual: int, target: Target) -> str | None:
        """None when `actual` fits, else "<shown> exceeds <limit> (<field>) on <chip>"."""
        limit = self.value(target)
        if actual <= limit:
            return None
        return f"{shown} exceeds {limit} ({self.field}) on {target.name}"


def _figure(what: str, fld: str, name: str) -> Limit:
    """A limit read from the `Target` figure `name`."""
    return Limit(what, fld, lambda t: getattr(t, name), target_field=name)


KERNEL = _figure("kernel", "CNA.WEIGHT_SIZE2 WEIGHT_WIDTH/HEIGHT, 5 bits", "max_kernel")
STRIDE = _figure("stride", "CNA.CONV_CON3 CONV_X/Y_STRIDE, 3 bits", "max_stride")
PAD_TOP = _figure("top pad", "CNA.PAD_CON0 PAD_TOP, 4 bits", "max_pad")
PAD_LEFT = _figure("left pad", "CNA.PAD_CON0 PAD_LEFT, 4 bits", "max_pad")
DILATION = _figure("dilation", "CNA.CONV_CON3 ATROUS_X/Y_DILATION, 5 bits", "max_dilation")
IN_WIDTH = _figure("input width", "CNA.DATA_SIZE0 DATAIN_WIDTH, 11 bits", "max_width")
IN_CHANNELS = _figure("input channels", "CNA.DATA_SIZE1 DATAIN_CHANNEL_REAL, 14 bits",
                      "max_input_channels")
OUT_WIDTH = Limit("output width", "CNA.DATA_SIZE2 DATAOUT_WIDTH, 11 bits",
                  lambda t: CNA_MAX_OUT_WIDTH)
DPU_WIDTH = Limit("width", "DPU.DATA_CUBE_WIDTH, 13 bits", lambda t: DPU_MAX_WIDTH)
POOL_KERNEL = Limit("pool kernel", "PPU.POOLING_KERNEL_CFG KERNEL_WIDTH/HEIGHT, 4 bits",
                    lambda t: PPU_MAX_KERNEL, uncertain=True)
POOL_STRIDE = Limit("pool stride", "PPU.POOLING_KERNEL_CFG STRIDE_WIDTH/HEIGHT, 4 bits",
                    lambda t: PPU_MAX_STRIDE, uncertain=True)
POOL_PAD = Limit("pool pad", "PPU.POOLING_PADDING_CFG, 3 bits per side", lambda t: PPU_MAX_PAD)
POOL_WIDTH = Limit("pool input width", "PPU.DATA_CUBE_IN_WIDTH, 13 bits", lambda t: PPU_MAX_WIDTH)

Check = Callable[[Operation, Target], "str | None"]
Condition = str | Callable[[Target], str]


@dataclass(frozen=True)
class Rule:
    """How one op kind maps to the NPU. `cpu_reason` set: never on the NPU. Otherwise the
    op is an NPU task (on `block`) when its data type is in `dtypes`, it satisfies
    `check` (which applies `limits` and `conditions`)."""

    block: str = ""                             # "CNA+CORE+DPU", "DPU", "PPU", ...
    dtypes: tuple[str, ...] = NPU_DTYPES
    dtype_note: str = ""                        # why a data type of NPU_DTYPES is refused
    limits: tuple[Limit, ...] = ()
    conditions: tuple[Condition, ...] = ()      # constraints without a number, for docs
    check: Check | None = None
    cpu_reason: str | None = None


# ---------------------------------------------------------------------------
# helpers on ops
# ---------------------------------------------------------------------------
def _shape(value: SSAValue) -> tuple[int, ...]:
    t = value.type
    return tuple(t.get_shape()) if isinstance(t, TensorType) else ()


def _is_constant(value: SSAValue | None) -> bool:
    return value is not None and isinstance(value.owner, nn.ConstantOp)


def _as4d(shape: Sequence[int]) -> tuple[int, ...] | None:
    """NCHW view of a feature: rank 4 as is, [N, C] as [N, C, 1, 1], else None."""
    if len(shape) == 4:
        return tuple(shape)
    if len(shape) == 2:
        return (shape[0], shape[1], 1, 1)
    return None


def element_kind(t: object) -> str:
    """"int8" / "int16" / "fp16" / "f32" / ... for a tensor type; per-axis int8 is
    "int8 per-axis"."""
    if not isinstance(t, TensorType):
        return str(t)
    q = quantized_element(t)
    if q is not None:
        kind = f"int{q.bits}"
        return kind if q.quantized_axis is None else f"{kind} per-axis"
    el = t.element_type
    return {f16: "fp16", f32: "f32"}.get(el, str(el))


def _features(op: Operation) -> list[SSAValue]:
    """The op's feature operands (not weights, biases, slopes or other constants)."""
    return [v for v in op.operands if not _is_constant(v)]


def data_type(op: Operation) -> str:
    """The one data type of the op's features and results, or "mixed a/b"."""
    values = [*_features(op), *op.results]
    kinds = sorted({element_kind(v.type) for v in values if isinstance(v.type, TensorType)})
    if not kinds:
        return "none"
    return kinds[0] if len(kinds) == 1 else "mixed " + "/".join(kinds)


def _c2(op: Operation, target: Target) -> int:
    return target.c2("fp16" if data_type(op) == "fp16" else "int8")


# ---------------------------------------------------------------------------
# per-kind checks
# ---------------------------------------------------------------------------
def _first(*reasons: str | None) -> str | None:
    return next((r for r in reasons if r is not None), None)


def _fused(op: Operation) -> str | None:
    act = op.properties.get("activation")
    if isinstance(act, StringAttr) and act.data not in ("relu", "clip"):
        return (f"fused {act.data} has no DPU output-stage form (only relu / clip; run "
                f"nn-fuse-activation{{kinds=relu,clip}})")
    if isinstance(act, StringAttr) and act.data == "clip" and data_type(op) == "fp16":
        if not isinstance(op, nn.Conv2dOp):
            return "fused fp16 clip: an fp16 matrix product clamps with a ReLU only"
        return _fp16_bounds(tuple(op.activation_params.get_values()))
    return None


def _fp16_bounds(bounds: Sequence[float]) -> str | None:
    """fp16 clip bounds must be f16 numbers: the clip becomes max / min stages with f16
    constants (`nn-to-rknpu`), exact only then."""
    from rkc.passes.nn_to_rknpu import f16_exact

    if all(f16_exact(float(b)) for b in bounds):
        return None
    shown = ", ".join(f"{float(b):.6g}" for b in bounds)
    return (f"fp16 clip bounds ({shown}) are not f16 numbers (the DPU's fp16 max / min "
            f"stages compare with f16 constants)")


def _conv_limits(kernel: tuple[int, int], strides: Sequence[int], pads: Sequence[int],
                 dilations: Sequence[int], in_shape: Sequence[int], out_width: int,
                 target: Target) -> str | None:
    kh, kw = kernel
    return _first(
        KERNEL.check(f"kernel {kh}x{kw}", max(kh, kw), target),
        STRIDE.check(f"stride {strides[0]}x{strides[1]}", max(strides), target),
        PAD_TOP.check(f"top pad {pads[0]}", pads[0], target),
        PAD_LEFT.check(f"left pad {pads[1]}", pads[1], target),
        DILATION.check(f"dilation {dilations[0]}x{dilations[1]}", max(dilations), target),
        IN_WIDTH.check(f"input width {in_shape[3]}", in_shape[3], target),
        OUT_WIDTH.check(f"output width {out_width}", out_width, target),
        IN_CHANNELS.check(f"{in_shape[1]} input channels", in_shape[1], target))


def _check_conv(op: Operation, target: Target) -> str | None:
    assert isinstance(op, nn.Conv2dOp)
    if not _is_constant(op.weight) or (op.bias is not None and not _is_constant(op.bias)):
        return "its weight or bias is not a constant (the CNA reads packed constant weights)"
    group = nn.int_of(op.properties, "group")
    o, ci, kh, kw = _shape(op.weight)
    x = _shape(op.input)
    if group != 1 and not group == x[1] == o:
        return (f"grouped convolution (group {group}, {x[1]} -> {o} channels) is neither "
                f"direct nor depthwise")
    return _first(_fused(op), _conv_limits(
        (kh, kw), nn.ints(op.properties, "strides"), nn.ints(op.properties, "pads"),
        nn.ints(op.properties, "dilations"), x, _shape(op.output)[3], target))


def _check_gemm(op: Operation, target: Target) -> str | None:
    """gemm / matmul with a constant [K, N] weight: a 1x1 conv over M batches of K."""
    if isinstance(op, nn.GemmOp):
        if nn.int_of(op.properties, "trans_a"):
            return "gemm with trans_a needs a transpose of A before the 1x1 conv"
        if not _is_constant(op.b) or (op.c is not None and not _is_constant(op.c)):
            return "B or C is not a constant (the CNA reads packed constant weights)"
        a, fused = _shape(op.a), _fused(op)
        if data_type(op) == "int8" and (nn.float_of(op.properties, "alpha") != 1.0
                                        or nn.float_of(op.properties, "beta") != 1.0):
            return "an int8 gemm needs alpha = beta = 1 (nn-quantize folds them into B and C)"
        c = _shape(op.c) if op.c is not None else ()
        if len(c) == 2 and c[0] != 1 and _shape(op.output)[0] != 1:
            return (f"C {_dims(c)} varies along the rows: not a per-channel bias (the DPU "
                    f"adds one bias per output channel)")
    else:
        assert isinstance(op, nn.MatmulOp)
        if not _is_constant(op.rhs):
            return "matmul of two activations: the CNA needs a constant weight"
        if len(_shape(op.rhs)) != 2:
            return f"matmul weight of rank {len(_shape(op.rhs))} is not a [K, N] matrix"
        q = quantized_element(op.rhs.type)
        if q is not None and any(q.zero_points):
            return "matmul weight with a zero point (the CNA weight offset is not modelled)"
        a, fused = _shape(op.lhs), None
    if len(a) != 2:
        return f"matmul input of rank {len(a)}: only [M, K] maps onto a 1x1 conv"
    return _first(fused, IN_CHANNELS.check(f"{a[1]} input channels", a[1], target))


def _per_channel(shape: Sequence[int], out: Sequence[int]) -> bool:
    """`shape` broadcasts (numpy rules) to `out` [rank 2 or 4] the same, per channel, or
    as a scalar: what the DPU's second operand (ERDMA per pixel / per channel) reads."""
    if len(shape) > len(out):
        return False
    s = _as4d((1,) * (len(out) - len(shape)) + tuple(shape))
    o = _as4d(out)
    assert s is not None and o is not None
    return s == o or (s[0] in (1, o[0]) and s[1] in (1, o[1]) and s[2:] == (1, 1))


def _rank_obstacle(value: SSAValue) -> str | None:
    rank = len(_shape(value))
    if rank in (2, 4):
        return None
    return f"rank-{rank} tensors have no NC1HWC2 form (the DPU works on [N, C, H, W] features)"


def _dims(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape)) or "scalar"


def _check_binary(op: Operation, target: Target) -> str | None:
    out = _shape(op.results[0])
    rank = _rank_obstacle(op.results[0])
    if rank is not None:
        return rank
    for v in op.operands:
        if not _per_channel(_shape(v), out):
            return (f"operand {_dims(_shape(v))} broadcasts to {_dims(out)} other than per "
                    f"channel (the DPU reads a second operand per pixel or per channel)")
    full = [_as4d((1,) * (len(out) - len(_shape(v))) + _shape(v)) == _as4d(out)
            for v in op.operands]
    commutes = not isinstance(op, nn.SubOp)
    if not (full[0] or (commutes and any(full))):
        return (f"first operand {_dims(_shape(op.operands[0]))} broadcasts to {_dims(out)}: "
                f"the DPU's main input (MRDMA) reads a whole feature"
                + (" and sub does not commute" if isinstance(op, nn.SubOp) else ""))
    width = _as4d(out)[3]
    return DPU_WIDTH.check(f"width {width}", width, target)


def _check_unary(op: Operation, target: Target) -> str | None:
    out = _shape(op.results[0])
    if data_type(op) == "fp16" and isinstance(op, nn.AbsOp | nn.NegOp):
        return (f"fp16 {op.name.removeprefix('nn.')}: the fp16 DPU stages rkc emits have no "
                f"abs / neg (EW_ALU_ALGO codes unverified)")
    if data_type(op) == "fp16" and isinstance(op, nn.ClipOp):
        reason = _fp16_bounds((op.min.value.data, op.max.value.data))
        if reason is not None:
            return reason
    rank = _rank_obstacle(op.results[0])
    if rank is not None:
        return rank
    if isinstance(op, nn.PReluOp):
        if not _is_constant(op.slope):
            return "the prelu slope is not a constant"
        if not _per_channel(_shape(op.slope), out):
            return f"prelu slope {_dims(_shape(op.slope))} is not per channel"
    width = _as4d(out)[3]
    return DPU_WIDTH.check(f"width {width}", width, target)


def pixel_runs(shape: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
               pads: Sequence[int], ceil_mode: bool) -> int | None:
    """k when the pool's windows are the consecutive runs of k pixels of each channel's
    H x W map in row-major order (kernel = stride along W with one row per window, or
    along H of a one-column map; no padding): the map read as [N, C, H * W / k, k] then
    pools rows with kernel (1, k), stride 1 -- a stride the CNA takes. None otherwise."""
    h, w = shape[2], shape[3]
    if ceil_mode or any(pads):
        return None
    if kernel[0] == strides[0] == 1 and kernel[1] == strides[1] and w % kernel[1] == 0:
        return kernel[1]
    if w == 1 and kernel[1] == strides[1] == 1 and kernel[0] == strides[0] \
            and h % kernel[0] == 0:
        return kernel[0]
    return None


def int8_avg_pool_obstacle(shape: Sequence[int], kernel: Sequence[int],
                           strides: Sequence[int], pads: Sequence[int], ceil_mode: bool,
                           count_include_pad: bool, target: Target) -> str | None:
    """Why an int8 average pool cannot be the depthwise conv (weights 1) that
    `nn-to-rknpu` makes of it -- the PPU has no output converter for the pool's rescale
    s_x / (s_y * n), so that conv is its only NPU form: the conv's limits (for strides
    beyond the CNA's, of the conv over `pixel_runs` rows), and one divisor n = kh * kw
    for every window (no ceil-mode or excluded-padding borders)."""
    from rkc.quant.integer_kernels import avg_pool_divisors

    if ceil_mode:
        return ("int8 avg pool with ceil_mode: border windows divide by fewer elements "
                "(the depthwise conv it becomes divides every window by kh * kw)")
    n = avg_pool_divisors(shape, tuple(kernel), tuple(strides), tuple(pads), False,
                          count_include_pad)
    if (n != kernel[0] * kernel[1]).any():
        return ("int8 avg pool with padding excluded from the divisor: the depthwise conv "
                "it becomes divides every window by kh * kw")
    runs = pixel_runs(shape, kernel, strides, pads, ceil_mode)
    if runs is not None and max(strides) > target.max_stride:  # rows of a reshaped map
        kernel, strides, shape = (1, runs), (1, 1), (*shape[:2], shape[2] * shape[3] // runs,
                                                    runs)
    reason = _conv_limits((kernel[0], kernel[1]), strides, pads, (1, 1), shape, 1, target)
    if reason is not None:
        return (f"int8 avg pool as a depthwise conv (the PPU cannot rescale by "
                f"s_x / (s_y * n)): {reason}")
    return None


def _ppu_line_obstacle(shape: Sequence[int], target: Target) -> str | None:
    """The PPU reads its input rows `PPU_RDMA.RDMA_SRC_LINE_STRIDE` apart, a field in
    whole units (16 B, `rkc.backends.registers`): a row of W atoms must fill whole units
    (RK3568's 8-byte atoms: an even width)."""
    from rkc.backends.registers import register_table

    if len(shape) != 4:
        return None
    f = register_table(target.name).register("PPU_RDMA.RDMA_SRC_LINE_STRIDE").field(
        "SRC_LINE_STRIDE")
    unit, row = 1 << f.lsb, shape[3] * target.atom_bytes
    if row % unit:
        return (f"pool input rows of {shape[3]} x {target.atom_bytes} B are not whole "
                f"{unit}-byte units (PPU_RDMA.RDMA_SRC_LINE_STRIDE) on {target.name}")
    return None


def _check_pool(op: Operation, target: Target) -> str | None:
    x = _shape(op.operands[0])
    dtype = data_type(op)
    if dtype == "int8" and isinstance(op, nn.GlobalAvgPoolOp | nn.AvgPool2dOp) \
            and len(x) == 4:
        if isinstance(op, nn.GlobalAvgPoolOp):
            return int8_avg_pool_obstacle(x, x[2:], (1, 1), (0, 0, 0, 0), False, False,
                                          target)
        return int8_avg_pool_obstacle(
            x, nn.ints(op.properties, "kernel"), nn.ints(op.properties, "strides"),
            nn.ints(op.properties, "pads"), bool(nn.int_of(op.properties, "ceil_mode")),
            bool(nn.int_of(op.properties, "count_include_pad")), target)
    if isinstance(op, nn.GlobalAvgPoolOp | nn.GlobalMaxPoolOp):
        if len(x) != 4:
            return f"rank-{len(x)} global pool: the PPU pools [N, C, H, W] features"
        return _first(
            POOL_KERNEL.check(f"global pool {x[2]}x{x[3]}", max(x[2:]), target),
            POOL_WIDTH.check(f"input width {x[3]}", x[3], target),
            _ppu_line_obstacle(x, target))
    line = _ppu_line_obstacle(x, target)
    if line is not None:
        return line
    kernel, strides = nn.ints(op.properties, "kernel"), nn.ints(op.properties, "strides")
    pads = list(nn.ints(op.properties, "pads"))
    if "dilations" in op.properties and nn.ints(op.properties, "dilations") != (1, 1):
        return "the PPU has no dilated pooling"
    out = _shape(op.results[0])
    for axis in (0, 1):  # ceil-mode overhang is programmed as bottom / right padding
        over = (out[2 + axis] - 1) * strides[axis] + kernel[axis] - x[2 + axis] - pads[axis]
        pads[2 + axis] = max(pads[2 + axis], over)
    if isinstance(op, nn.AvgPool2dOp) and dtype == "fp16" and any(pads):
        return ("fp16 avg pool with padding or ceil_mode overhang: the PPU task is "
                "emitted without padded average windows")
    if (isinstance(op, nn.AvgPool2dOp) and any(pads)
            and not nn.int_of(op.properties, "count_include_pad")):
        # [UNCERTAIN] the PPU divides by one reciprocal per axis (RECIP_KERNEL_WIDTH /
        # HEIGHT), so border windows cannot leave the padding out of the divisor.
        return ("avg pool with padding excluded from the divisor: the PPU divides every "
                "window by the full kernel size (PPU.RECIP_KERNEL_WIDTH/HEIGHT)")
    return _first(
        POOL_KERNEL.check(f"pool kernel {kernel[0]}x{kernel[1]}", max(kernel), target),
        POOL_STRIDE.check(f"pool stride {strides[0]}x{strides[1]}", max(strides), target),
        POOL_PAD.check("pool pads " + "/".join(map(str, pads)), max(pads), target),
        POOL_WIDTH.check(f"input width {x[3]}", x[3], target))


def _channel_offsets(op: Operation, target: Target, what: str, axis: int, rank: int,
                     pieces: Sequence[int]) -> str | None:
    """Address-offset views along channels: every piece but the last fills whole C2."""
    if rank not in (2, 4) or axis != 1:
        return (f"{what} along axis {axis} of a rank-{rank} tensor changes the NC1HWC2 "
                f"layout (only channel offsets are free)")
    c2 = _c2(op, target)
    if any(c % c2 for c in pieces[:-1]):
        return (f"{what} at channel offsets of {list(pieces[:-1])} not multiples of C2 = {c2} "
                f"on {target.name} changes the NC1HWC2 layout")
    return None


def _check_concat(op: Operation, target: Target) -> str | None:
    assert isinstance(op, nn.ConcatOp)
    out_el = op.output.type
    if any(isinstance(v.type, TensorType) and quantized_element(v.type) is not None
           and v.type.element_type != out_el.element_type for v in op.operands):
        return "inputs quantized unlike the output need a requantize: not address offsets"
    return _channel_offsets(op, target, "concat", nn.int_of(op.properties, "axis"),
                            len(_shape(op.output)), [_shape(v)[1] for v in op.operands])


def _check_split(op: Operation, target: Target) -> str | None:
    assert isinstance(op, nn.SplitOp)
    return _channel_offsets(op, target, "split", nn.int_of(op.properties, "axis"),
                            len(_shape(op.input)), nn.ints(op.properties, "sizes"))


def _check_slice(op: Operation, target: Target) -> str | None:
    assert isinstance(op, nn.SliceOp)
    shape = _shape(op.input)
    starts, ends = nn.ints(op.properties, "starts"), nn.ints(op.properties, "ends")
    steps = nn.ints(op.properties, "steps")
    cut = [i for i, (s, e, d) in enumerate(zip(starts, ends, shape, strict=True))
           if (s, e) != (0, d)]
    if any(st != 1 for st in steps):
        return "strided slice changes the NC1HWC2 layout"
    if len(cut) != 1:
        return "slice along several axes changes the NC1HWC2 layout"
    axis = cut[0]
    return _channel_offsets(op, target, "slice", axis, len(shape),
                            [starts[axis], ends[axis] - starts[axis]])


def _check_reshape(op: Operation, target: Target) -> str | None:
    src, dst = _as4d(_shape(op.operands[0])), _as4d(_shape(op.results[0]))
    if src is None or dst is None or src[:2] != dst[:2]:
        return "reshape changes the NC1HWC2 layout (it keeps N and C only as a view)"
    return None


def _check_transpose(op: Operation, target: Target) -> str | None:
    shape = _shape(op.operands[0])
    moved = [a for a in nn.ints(op.properties, "perm") if shape[a] != 1]
    if moved == sorted(moved) and _check_reshape(op, target) is None:
        return None  # only size-1 axes move and N, C stay: a view
    return "transpose changes the NC1HWC2 layout (the DPU transpose mode is undocumented)"


# ---------------------------------------------------------------------------
# the rules
# ---------------------------------------------------------------------------
_CONV_CONDITIONS = ("constant weight and bias", "group 1 or depthwise",
                    "fused activation relu / clip only (fp16 clip: f16 bounds)")
_LUT_NOTE = "the DPU lookup table is built for int8 only"
_LUT = Rule(block="DPU LUT", dtypes=("int8",), dtype_note=_LUT_NOTE, limits=(DPU_WIDTH,),
            conditions=("rank 2 or 4",), check=_check_unary)
_DPU_UNARY = Rule(block="DPU", limits=(DPU_WIDTH,), conditions=("rank 2 or 4",),
                  check=_check_unary)
_DPU_CLIP = Rule(block="DPU", limits=(DPU_WIDTH,),
                 conditions=("rank 2 or 4", "fp16: bounds f16 numbers (max / min stages)"),
                 check=_check_unary)
_DPU_ABS_NEG = Rule(block="DPU", limits=(DPU_WIDTH,),
                    conditions=("rank 2 or 4", "fp16: CPU (no abs / neg stage emitted)"),
                    check=_check_unary)
_DPU_BINARY = Rule(block="DPU", limits=(DPU_WIDTH,),
                   conditions=("rank 2 or 4", "same shape, or the other operand per channel "
                                              "or a scalar",
                               "one operand whole (the first, for sub)"),
                   check=_check_binary)
_POOL_LIMITS = (POOL_KERNEL, POOL_STRIDE, POOL_PAD, POOL_WIDTH)
_PPU_ROWS = "input rows whole 16-byte PPU_RDMA line-stride units (RK3568: an even width)"
_MAX_POOL = Rule(block="PPU", limits=_POOL_LIMITS, conditions=("no dilation", _PPU_ROWS),
                 check=_check_pool)
_INT8_AVG = ("int8: a depthwise conv with weights 1 (the PPU cannot rescale), so the "
             "conv's kernel / stride / pad limits, one divisor for every window (no "
             "ceil_mode)")
_AVG_POOL = Rule(block="PPU (int8: CNA+CORE+DPU)", limits=_POOL_LIMITS,
                 conditions=("padding counted in the divisor", "fp16: no padding",
                             _PPU_ROWS, _INT8_AVG), check=_check_pool)
_GLOBAL_POOL = Rule(block="PPU (int8: CNA+CORE+DPU)", limits=(POOL_KERNEL, POOL_WIDTH),
                    conditions=("H and W within the pool kernel limit (int8: the conv's)",
                                _PPU_ROWS), check=_check_pool)
_GLOBAL_MAX = Rule(block="PPU", limits=(POOL_KERNEL, POOL_WIDTH),
                   conditions=("H and W within the pool kernel limit", _PPU_ROWS),
                   check=_check_pool)


def _c2_condition(t: Target) -> str:
    return f"channel offsets multiples of C2 = {t.c2_int8} (int8) / {t.c2_fp16} (fp16)"


_REDUCTION = "has no NPU form (the DPU has no reduction across channels)"
_CONVERSION = "float <-> {} conversion runs on the host (f32 is not an NPU data type)"

RULES: dict[str, Rule] = {
    "nn.conv2d": Rule(block="CNA+CORE+DPU",
                      limits=(KERNEL, STRIDE, PAD_TOP, PAD_LEFT, DILATION, IN_WIDTH, OUT_WIDTH,
                              IN_CHANNELS),
                      conditions=_CONV_CONDITIONS, check=_check_conv),
    "nn.gemm": Rule(block="CNA+CORE+DPU (1x1 conv)", limits=(IN_CHANNELS,),
                    conditions=("constant B and C", "no trans_a", "A of rank 2",
                                "C constant along the rows"),
                    check=_check_gemm),
    "nn.matmul": Rule(block="CNA+CORE+DPU (1x1 conv)", limits=(IN_CHANNELS,),
                      conditions=("constant [K, N] weight, zero point 0", "input of rank 2"),
                      check=_check_gemm),
    **{f"nn.{k}": _DPU_BINARY for k in ("add", "sub", "mul", "max", "min")},
    **{f"nn.{k}": _DPU_UNARY for k in ("relu", "leaky_relu")},
    "nn.clip": _DPU_CLIP,
    **{f"nn.{k}": _DPU_ABS_NEG for k in ("abs", "neg")},
    "nn.prelu": Rule(block="DPU", dtypes=("fp16",),
                     dtype_note="int8 prelu has no integer semantics (nn-quantize keeps it "
                                "float)", limits=(DPU_WIDTH,),
                     conditions=("rank 2 or 4", "constant per-channel slope"),
                     check=_check_unary),
    **{f"nn.{k}": _LUT for k in ("sigmoid", "tanh", "silu", "hard_swish", "hard_sigmoid",
                                 "exp", "log", "sqrt", "erf", "gelu")},
    "quant.requantize": Rule(block="DPU (rescale)", dtypes=("int8",),
                             dtype_note="requantize is an int8 rescale",
                             limits=(DPU_WIDTH,), conditions=("rank 2 or 4",),
                             check=_check_unary),
    "nn.max_pool2d": _MAX_POOL,
    "nn.avg_pool2d": _AVG_POOL,
    "nn.global_avg_pool": _GLOBAL_POOL,
    "nn.global_max_pool": _GLOBAL_MAX,
    "nn.concat": Rule(block="address offsets (no task)",
                      conditions=("along channels", "inputs quantized like the output",
                                  _c2_condition), check=_check_concat),
    "nn.split": Rule(block="address offsets (no task)",
                     conditions=("along channels", _c2_condition), check=_check_split),
    "nn.slice": Rule(block="address offsets (no task)",
                     conditions=("one channel range, step 1", _c2_condition),
                     check=_check_slice),
    "nn.reshape": Rule(block="view (no task)", conditions=("keeps N and C (rank 2 or 4)",),
                       check=_check_reshape),
    "nn.transpose": Rule(block="view (no task)", conditions=("moves only size-1 axes",),
                         check=_check_transpose),
    "nn.div": Rule(cpu_reason="nn.div is not lowered (nn-quantize keeps it float)"),
    "nn.pow": Rule(cpu_reason="nn.pow has no NPU form"),
    "nn.softmax": Rule(cpu_reason=f"nn.softmax {_REDUCTION}"),
    "nn.layer_norm": Rule(cpu_reason=f"nn.layer_norm {_REDUCTION}"),
    "nn.reduce_mean": Rule(cpu_reason=f"nn.reduce_mean {_REDUCTION}"),
    "nn.reduce_max": Rule(cpu_reason=f"nn.reduce_max {_REDUCTION}"),
    "nn.reduce_sum": Rule(cpu_reason=f"nn.reduce_sum {_REDUCTION}"),
    "nn.argmax": Rule(cpu_reason=f"nn.argmax {_REDUCTION}"),
    "nn.batch_norm": Rule(cpu_reason="a batch norm not folded into a conv (nn-fold-batchnorm) "
                                     "is not lowered"),
    "nn.conv_transpose2d": Rule(cpu_reason="the CNA deconvolution mode (CONV_CON1 DECONV) is "
                                           "undocumented; not lowered"),
    "nn.pad": Rule(cpu_reason="pad copies the feature (not folded into a conv's padding yet)"),
    "nn.resize": Rule(cpu_reason="resize has no NPU form in rkc (DPU_RDMA unpooling is "
                                 "undocumented)"),
    "nn.cast": Rule(cpu_reason=_CONVERSION.format("fp16")),
    "quant.quantize": Rule(cpu_reason=_CONVERSION.format("int8")),
    "quant.dequantize": Rule(cpu_reason=_CONVERSION.format("int8")),
}
"""Op name -> its rule. An op kind not listed has no NPU form."""

NOT_PLACED = ("nn.constant", "func.return")


# ---------------------------------------------------------------------------
# the predicate and placement
# ---------------------------------------------------------------------------
def npu_obstacle(op: Operation, target: Target) -> str | None:
    """None when `op` can run as an NPU task (or a free view) on `target`, else why not."""
    rule = RULES.get(op.name)
    if rule is None:
        return f"{op.name} has no NPU form"
    if rule.cpu_reason is not None:
        return rule.cpu_reason
    dtype = data_type(op)
    if dtype == "f32":
        return "data type f32 (not quantized): the NPU computes int8 and fp16 only"
    if dtype not in NPU_DTYPES:
        return f"data type {dtype}: the NPU computes per-tensor int8 and fp16 features only"
    if dtype not in rule.dtypes:
        return f"data type {dtype}: {rule.dtype_note}"
    if dtype not in target.dtypes:
        return f"data type {dtype} is not computed by the {target.name} NPU"
    return rule.check(op, target) if rule.check is not None else None


@dataclass(frozen=True)
class Placement:
    """Where one op of the entry function runs, and why (CPU) or on which block (NPU)."""

    name: str          # the op's rkc.name, or "op.name#index" (index in the function)
    op: str            # op name, e.g. "nn.conv2d"
    unit: str          # "npu" or "cpu"
    reason: str        # CPU: the failed constraint; NPU: the block that runs it
    shapes: str = field(default="")  # "1x3x32x32 -> 1x16x16x16" (feature operands)


def _shapes(op: Operation) -> str:
    def fmt(values: Iterable[SSAValue]) -> str:
        return ", ".join("x".join(map(str, _shape(v))) or "scalar" for v in values
                         if isinstance(v.type, TensorType))
    return f"{fmt(_features(op))} -> {fmt(op.results)}"


def place(module: ModuleOp, target: Target) -> list[Placement]:
    """Place every op of the entry function (but constants and the return) on the NPU or
    the CPU, writing `rkc.placement` (and `rkc.reason` for CPU ops) on it."""
    placements = []
    for index, op in enumerate(main_function(module).body.block.ops):
        if op.name in NOT_PLACED or isinstance(op, func.ReturnOp):
            continue
        reason = npu_obstacle(op, target)
        unit = "npu" if reason is None else "cpu"
        op.attributes[PLACEMENT_ATTR] = StringAttr(unit)
        if reason is None:
            op.attributes.pop(REASON_ATTR, None)
            rule = RULES[op.name]
            reason = rule.block
        else:
            op.attributes[REASON_ATTR] = StringAttr(reason)
        name = nn.node_name(op) or f"{op.name}#{index}"
        placements.append(Placement(name, op.name, unit, reason, _shapes(op)))
    return placements


# ---------------------------------------------------------------------------
# the supported-ops table
# ---------------------------------------------------------------------------
def _cell(rule: Rule, target: Target) -> str:
    """The per-chip part of a rule: data types, limits and chip-dependent conditions."""
    if rule.cpu_reason is not None:
        return "CPU"
    parts = [" / ".join(d for d in rule.dtypes if d in target.dtypes)]
    parts += [f"{lim.what} <= {lim.value(target)}{'?' if lim.is_uncertain(target) else ''}"
              for lim in rule.limits]
    parts += [c(target) for c in rule.conditions if callable(c)]
    return "NPU: " + "; ".join(parts)


def supported_ops_table(targets: Iterable[Target] | None = None) -> str:
    """Markdown table, one row per op kind of `RULES`: the block that runs it, the
    conditions common to all chips (or the CPU reason), then per chip "NPU: data types;
    limits" or "CPU". Generated from the data `npu_obstacle` checks."""
    chosen = list(TARGETS.values()) if targets is None else list(targets)
    lines = ["| op | runs on | conditions | " + " | ".join(t.name for t in chosen) + " |",
             "|---|---|---|" + "---|" * len(chosen)]
    for name in sorted(RULES):
        rule = RULES[name]
        common = rule.cpu_reason or "; ".join(c for c in rule.conditions
                                              if not callable(c)) or "-"
        cells = [_cell(rule, t) for t in chosen]
        row = [f"`{name}`", rule.block or "CPU", common, *cells]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines)


def limit_sources() -> list[tuple[str, str]]:
    """(limit, register field) for every limit used by a rule, in first-use order."""
    seen: dict[str, str] = {}
    for name in sorted(RULES):
        for lim in RULES[name].limits:
            seen.setdefault(lim.field, lim.what)
    return [(what, fld) for fld, what in seen.items()]
