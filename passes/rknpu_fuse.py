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
one) and `one_pass` accepts it: the sequences codegen's DPU programming
(`rkc.backends.emit_dpu.plan_stages`) computes exactly as the interpreter does, each
int8 stage rounding on its own (so a relu that rescales after an add or requantize is
not fused; neither is a sub with the conv's result on the right, which the ALU's minus
cannot compute). [UNCERTAIN: the unit assignment follows the TRM's register fields and
NVDLA's SDP order; which units mesa or the vendor use for each kind is not documented.]

Hardware mapping: the interpreter rounds and saturates to each intermediate int8 (f16)
type between stages, as the unfused graph does. `one_pass` admits only chains with at
most one rescale after the conv's own (and clamps that keep their type), so each
rounding happens in exactly one DPU stage: the conv's result in BS (exact per-channel
multiplier and shift in the stream, `rkc.lowering.dram.uses_exact_stream`), the stage's
rescale in BN / EW / OUT_CVT, a lut as one table entry per int8 code (see
`rkc.backends.emit_dpu`'s model of the DPU, which the simulator follows).

Each fused op saves one DRAM round trip: its input feature map is neither written by the
producing task nor read back by a task of its own (`FusedConv.saved_bytes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects import builtin
from xdsl.dialects.builtin import TensorType, f16
from xdsl.ir import Attribute, Block, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from rkc.dialects import nn, rknpu
from rkc.dialects.quant import quantized_element
from rkc.graph import main_function
from rkc.quant.integer_kernels import TensorQ, activation_range

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


@dataclass(frozen=True)
class StageForm:
    """What decides whether a post op fits the DPU's one pass: its kind, its operand's
    form ("pixel" / "channel" / None), whether the operand is on the left, and the
    element types it reads and yields."""

    kind: str
    form: str | None
    reversed: bool
    params: tuple[float, ...]
    input: Attribute
    output: Attribute


CLAMP_KINDS = ("relu", "clip")
COMMUTING = ("add", "mul", "max", "min")


def _quant(element: Attribute) -> TensorQ | None:
    q = quantized_element(TensorType(element, [1]))
    if q is None or q.quantized_axis is not None:
        return None
    return TensorQ(q.scale, q.zero_point, q.qmin, q.qmax)


def _clamp_low_ok(stage: StageForm, yq: TensorQ) -> bool:
    """The DPU's ReLU clamps at the output zero point: a lower bound elsewhere (a clip
    from a positive value) has no stage (`plan_stages`' `_output_clamp`)."""
    if stage.kind not in CLAMP_KINDS:
        return True
    lo, _ = activation_range(stage.kind, stage.params, yq)
    return lo <= yq.qmin or lo == yq.zp


def _identity_clamp(stage: StageForm) -> bool:
    """A relu / clip that only narrows the range: same type in and out."""
    return stage.kind in CLAMP_KINDS and stage.input == stage.output


def one_pass(stages: list[StageForm]) -> bool:
    """Whether the DPU computes `stages` after a conv in one pass, exactly as the
    interpreter does (the grammar `rkc.backends.emit_dpu.plan_stages` accepts; each int8
    stage's rounding is its own, so two rescales cannot share the output converter):

    int8: identity clamps*, then nothing, a lone lut, or one relu / clip / requantize /
    binary op (add / sub / mul / max / min, a sub with the conv's result on the left
    excluded) followed by identity clamps whose lower bound is the zero point;
    fp16: a lone relu, or one binary op / leaky_relu / prelu, then at most a relu."""
    if not stages:
        return True
    if stages[0].input == f16:
        relu = [st.kind == "relu" for st in stages]
        if relu == [True]:
            return True
        first = stages[0]
        if first.kind not in (*rknpu.EW_BINARY, "leaky_relu", "prelu") or len(stages) > 2 \
                or (len(stages) == 2 and not relu[1]):
            return False
        return not (first.reversed and first.kind not in COMMUTING)
    rest = list(stages)
    while rest and _identity_clamp(rest[0]):
        rest.pop(0)
    if not rest:
        return True
    first, after = rest[0], rest[1:]
    if first.kind == "lut":
        return not after
    if first.kind not in (*CLAMP_KINDS, "requantize", *rknpu.EW_BINARY):
        return False
    if first.reversed and first.kind not in COMMUTING:
        return False
    for st in (first, *after):
        yq = _quant(st.output)
        if yq is None or not _clamp_low_ok(st, yq):
            return False
    return all(_identity_clamp(st) for st in after)


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


def stage_forms(conv: rknpu.ConvOp) -> list[StageForm]:
    """The `StageForm`s of the conv's existing post ops."""
    post = rknpu.read_post_ops(conv)
    out = _shape(conv.output)
    forms = []
    for i, stage in enumerate(post):
        form = None
        if stage.operand is not None and stage.kind in rknpu.EW_BINARY:
            form = operand_form(_shape(conv.post_operands[stage.operand]), out)
        result = post[i + 1].input if i + 1 < len(post) else conv.output.type.element_type
        forms.append(StageForm(stage.kind, form, stage.reversed, tuple(stage.params),
                               stage.input, result))
    return forms


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
    chain = stage_forms(conv)
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
        params = tuple(user.params.get_values()) if user.params is not None else ()
        chain.append(StageForm(kind, form, reversed_, params, value.type.element_type,
                               user.output.type.element_type))
        if unit is None or not one_pass(chain):
            break
        index = None
        if other is not None:
            if other not in operands:
                operands.append(other)
            index = operands.index(other)
        table = user.table.get_values() if user.table is not None else None
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
