"""rknpu-fuse: an `rknpu.conv` and the DPU work that follows it become one task.

Establishes: for every `rknpu.conv` of the entry function, the chain of `rknpu.ew` ops
that follows it, each reading the previous value as its only use (a relu / clip /
leaky_relu / prelu, a lut activation, a requantize, abs / neg, or a binary op with a
second tensor), is folded into the conv as far as the DPU's stages can hold it: the
conv's `post_ops` list the stages in order (kind, parameters, table, the element type
each reads), the second tensors become the conv's `post_operands`, and the conv yields
the last stage's result in its place. Layouts are kept: a second tensor must read
correctly in NC1HWC2 against the conv's result (same channels, the same H x W or 1 x 1),
so `rknpu-layout` (before or after this pass) keeps the fused conv native.

Values are unchanged: the interpreter runs a fused conv as the conv, then each stage as
the `rknpu.ew` it was, with the intermediate types of the unfused ops, so the fused
module computes exactly what the unfused one computed (test: tests/test_rknpu_fuse.py).

Hardware (hw §3.3, §4.4, §4.7). The DPU runs BS (bias, the conv's own per-channel
rescale and clamp), BN, EW (second operand from ERDMA, per pixel or per channel; ALU
max / min / add / sub / abs / neg, MUL, PReLU, ReLU), the EW LUT, then the output
converter (OUT_CVT: rescale, zero point, saturation), each at most once, in that order.
`STAGE_UNITS` says which of BN / EW / LUT / OUT can run each kind; a chain is fused while
its stages take units in increasing order (one second tensor per task: only EW reads
one). [UNCERTAIN: the unit assignment follows the TRM's register fields and NVDLA's SDP
order; which units mesa or the vendor use for each kind is not documented.]

Where real hardware differs, and what codegen must map (issue 5): the DPU keeps the
intermediate in its 32-bit integer (fp16: float32) datapath, while the interpreter (like
the unfused graph) rounds and saturates to each intermediate int8 (f16) type between
stages. Codegen must program each stage's scale / shift so that the chain approximates
those requantizations (mesa maps a residual add's second input into the accumulator
domain with `EW_CVT` scale `s_2 / (s_in * s_w)`, then OUT_CVT rescales once); results
then differ where an intermediate value sits on a rounding boundary (about one output
step) or saturates at an intermediate type (by what the saturation cut). A lut stage
must be programmed as a table over the intermediate int8 codes (hw §4.7: 513-entry LE /
LO tables, index mapping [UNCERTAIN]).

Each fused op saves one DRAM round trip: its input feature map is neither written by the
producing task nor read back by a task of its own (`FusedConv.saved_bytes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects import builtin
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Block, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from rkc.dialects import nn, rknpu
from rkc.graph import main_function

UNITS = ("BS", "BN", "EW", "LUT", "OUT")
"""DPU units in data-flow order (hw §3.3). BS holds the conv's own bias, rescale and
fused activation."""

STAGE_UNITS: dict[str, tuple[str, ...]] = {
    "relu": ("BN", "EW", "OUT"),         # BN/EW RELU(X); OUT_CVT saturation
    "clip": ("BN", "EW", "OUT"),
    "leaky_relu": ("BN", "EW"),          # BN_MUL_PRELU / EW_MUL_PRELU
    "prelu": ("BN", "EW"),
    "requantize": ("BN", "OUT"),         # BN MUL + shift / OUT_CVT
    "abs": ("EW",),                      # EW_ALU_ALGO 5
    "neg": ("EW",),                      # EW_ALU_ALGO 6
    "lut": ("LUT",),
    "add:channel": ("BN", "EW"),         # BN ALU per channel (NRDMA) / EW per channel
    "sub:channel": ("BN", "EW"),
    "mul:channel": ("BN", "EW"),         # BN MUL per channel / EW MUL
    "max:channel": ("EW",),
    "min:channel": ("EW",),
    "add:pixel": ("EW",),                # ERDMA per pixel
    "sub:pixel": ("EW",),
    "mul:pixel": ("EW",),
    "max:pixel": ("EW",),
    "min:pixel": ("EW",),
}
"""Which DPU units can run a post op (binary kinds by the form of their second tensor)."""


@dataclass
class FusedConv:
    """One conv after fusion: how many ops it absorbed and the DRAM bytes that saves
    (each absorbed op's input written once and read once less)."""

    name: str
    kinds: list[str] = field(default_factory=list)
    saved_bytes: int = 0


def _shape(v: SSAValue) -> tuple[int, ...]:
    assert isinstance(v.type, TensorType)
    return tuple(v.type.get_shape())


def _bytes(v: SSAValue) -> int:
    size = nn.numpy_dtype(v.type.get_element_type()).itemsize
    count = 1
    for d in _shape(v):
        count *= d
    return count * size


def operand_form(other: tuple[int, ...], out: tuple[int, ...]) -> str | None:
    """"channel" (one value per channel, or a scalar per channel block), "pixel" (the
    result's own shape) or None when the tensor does not read correctly in NC1HWC2
    against `out` (logical rank 2 / 4, or native rank 5)."""
    if len(other) != len(out) or other[1] != out[1] or other[0] not in (1, out[0]):
        return None
    if len(out) == rknpu.NATIVE_RANK:
        if other[4] != out[4]:
            return None
        spatial, full = other[2:4], out[2:4]
    else:
        spatial, full = other[2:], out[2:]
    if all(d == 1 for d in spatial):
        return "channel"
    return "pixel" if spatial == full else None


def _stage_key(kind: str, form: str | None) -> str:
    return f"{kind}:{form}" if kind in rknpu.EW_BINARY else kind


def _next_unit(key: str, after: int) -> int | None:
    """The first unit after position `after` that can run `key`, or None."""
    for i in range(after + 1, len(UNITS)):
        if UNITS[i] in STAGE_UNITS.get(key, ()):
            return i
    return None


def _replay(conv: rknpu.ConvOp) -> int | None:
    """The unit position after the conv's existing post ops (BS when it has none)."""
    position: int | None = 0
    out = _shape(conv.output)
    for stage in rknpu.read_post_ops(conv):
        form = None
        if stage.operand is not None and stage.kind in rknpu.EW_BINARY:
            form = operand_form(_shape(conv.post_operands[stage.operand]), out)
        position = None if position is None else _next_unit(
            _stage_key(stage.kind, form), position)
    return position


def fuse_conv(conv: rknpu.ConvOp) -> FusedConv | None:
    """Fold the ew chain after `conv` into it; None when nothing fuses."""
    position = _replay(conv)
    if position is None:
        return None
    stages = list(rknpu.read_post_ops(conv))
    operands = list(conv.post_operands)
    out = _shape(conv.output)
    fused = FusedConv(nn.node_name(conv) or "rknpu.conv")
    absorbed: list[rknpu.EwOp] = []
    value: SSAValue = conv.output
    while value.has_one_use():
        user = value.get_user_of_unique_use()
        if not isinstance(user, rknpu.EwOp) or _shape(user.output) != out:
            break
        kind = user.kind.data
        inputs = list(user.inputs)
        other: SSAValue | None = None
        reversed_ = False
        if rknpu.ew_arity(kind) == 2:
            if inputs.count(value) != 1 or (kind in rknpu.EW_SLOPE and inputs[0] != value):
                break
            reversed_ = inputs[1] == value
            other = inputs[0] if reversed_ else inputs[1]
        form = operand_form(_shape(other), out) if other is not None else None
        if other is not None and form is None:
            break
        unit = _next_unit(_stage_key(kind, form), position)
        if unit is None:
            break
        index = None
        if other is not None:
            if other not in operands:
                operands.append(other)
            index = operands.index(other)
        table = user.table.get_values() if user.table is not None else None
        params = tuple(user.params.get_values()) if user.params is not None else ()
        stages.append(rknpu.PostOp(
            kind, value.type.element_type, index, reversed_, params,
            None if table is None else tuple(int(t) for t in table),
            user.function.data if user.function is not None else None))
        fused.kinds.append(kind)
        fused.saved_bytes += 2 * _bytes(value)
        absorbed.append(user)
        position, value = unit, user.output
    if not absorbed:
        return None
    props = {k: v for k, v in conv.properties.items() if k != "operandSegmentSizes"}
    props["post_ops"] = rknpu.post_ops_attr(stages)
    new = rknpu.ConvOp(conv.input, conv.weight, conv.bias, props, value.type,
                       post_operands=operands)
    new.attributes |= conv.attributes
    last = absorbed[-1]
    Rewriter.insert_op(new, InsertPoint.before(last))
    last.output.replace_all_uses_with(new.output)
    for op in reversed(absorbed):
        Rewriter.erase_op(op)
    Rewriter.erase_op(conv)
    return fused


def fuse_block(block: Block) -> list[FusedConv]:
    """Fuse every conv of `block`; what each fused conv absorbed."""
    return [f for conv in [o for o in block.ops if isinstance(o, rknpu.ConvOp)]
            if (f := fuse_conv(conv)) is not None]


@dataclass(frozen=True)
class RknpuFusePass(ModulePass):
    """Fold single-use DPU work after each rknpu.conv into the conv's post_ops."""

    name = "rknpu-fuse"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        fuse_block(main_function(op).body.block)
