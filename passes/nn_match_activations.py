"""`nn-match-activations`: recognise activations that exporters write out as several
elementwise ops, so that they become one op (one int8 lookup table on the NPU instead of
an add, a clip, a mul and a float division around quantize / dequantize).

Recognised forms (`f` is a constant multiplier: `v * f`, `f * v`, or `v / d` with
f = 1 / d; `b`, `c` and `f` are single-element constants; `clip(., 0, c)` is relu6 for
c = 6; the operands of every multiplication in either order):

    clip(x + b, 0, c) * f        (c * f = 1)  ->  hard_sigmoid(x){alpha = f, beta = b * f}
    (x * clip(x + b, 0, c)) * f  (c * f = 1)  ->  x * hard_sigmoid(x){alpha = f, beta = b * f}
    x * hard_sigmoid(x){alpha = 1/6, beta = 1/2}  ->  hard_swish(x)
    x * sigmoid(x)                                ->  silu(x)

so that `x * clip(x + 3, 0, 6) / 6`, `x * relu6(x + 3) * (1/6)` and
`x * (relu6(x + 3) / 6)` all become `nn.hard_swish(x)`. The two exact forms at the end
are `nn-fuse-activation`'s phase 1 (reused here), so the pass has the postcondition on
its own:

Postcondition: none of the forms above remains where every intermediate result (the
add, the clip, the inner multiplication, the sigmoid) has the matched op as its only use
and no constant broadcasts x to a larger type. The new op takes the `rkc.name` of the
outermost op it replaces (the division or the last multiplication), whose value
calibration observes. Other ops are left as they are.

Numerics: not bit-exact. `c * f = 1` is accepted within a relative 1e-6 (a multiplier
written as a float32 1/6 is 0.16666667). The interpreter computes hard_sigmoid as
clip(x * f + b * f, 0, 1) in float32, where the written-out form computes
clip(x + b, 0, c) * f: the two differ by a few float32 roundings (the float32 rounding of
f, b * f and of the intermediate sums), a relative error of a few 1e-7 of the
activation's magnitude. tests/test_nn_match_activations.py checks the module outputs
against the interpreter with a relative tolerance of 1e-5 of each output tensor's
magnitude (the tolerance the other re-rounding passes use).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import builtin
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
)

from rkc.dialects import nn
from rkc.passes.nn_fuse_activation import HARD_SWISH_ALPHA, HARD_SWISH_BETA, RecognizeSwish

GATE_PRODUCT_RTOL = 1e-6
"""How close c * f must be to 1 for clip(x + b, 0, c) * f to be a hard sigmoid."""


def _scalar(value: SSAValue) -> float | None:
    """The value of a single-element finite constant, else None."""
    array = nn.constant_value(value)
    if array is None or array.size != 1 or array.dtype.kind != "f":
        return None
    scalar = float(array.reshape(()))
    return scalar if np.isfinite(scalar) else None


def scaled(op: Operation) -> tuple[SSAValue, float] | None:
    """(v, f) when `op` is v * f, f * v or v / d (f = 1 / d) with a single-element
    constant that does not widen v's type."""
    if isinstance(op, nn.MulOp):
        candidates = [(op.lhs, op.rhs), (op.rhs, op.lhs)]
    elif isinstance(op, nn.DivOp):
        candidates = [(op.lhs, op.rhs)]
    else:
        return None
    for v, constant in candidates:
        f = _scalar(constant)
        if f is None or v.type != op.results[0].type:
            continue
        if isinstance(op, nn.DivOp):
            if f == 0:
                continue
            f = 1.0 / f
        return v, f
    return None


def clip_gate(value: SSAValue) -> tuple[SSAValue, float, float] | None:
    """(x, b, c) when `value` is clip(x + b, 0, c) (or clip(b + x, 0, c)) with c > 0,
    the add used only by the clip, the clip only once."""
    clip = value.owner
    if not isinstance(clip, nn.ClipOp) or not clip.output.has_one_use():
        return None
    lo, hi = nn.float_of(clip.properties, "min"), nn.float_of(clip.properties, "max")
    add = clip.input.owner
    if lo != 0.0 or not 0.0 < hi < np.inf or not isinstance(add, nn.AddOp):
        return None
    if not add.output.has_one_use():
        return None
    for x, constant in ((add.lhs, add.rhs), (add.rhs, add.lhs)):
        b = _scalar(constant)
        if b is not None and x.type == add.output.type:
            return x, b, hi
    return None


def _is_reciprocal(f: float, c: float) -> bool:
    return abs(f * c - 1.0) <= GATE_PRODUCT_RTOL


def _gate(x: SSAValue, f: float, b: float, name: str | None) -> list[Operation]:
    """The ops computing x * hard_sigmoid(x){alpha = f, beta = b * f} (one hard_swish
    when that is what they are), inserted before the matched op."""
    alpha, beta = np.float32(f), np.float32(b * f)
    if alpha == HARD_SWISH_ALPHA and beta == HARD_SWISH_BETA:
        return [nn.HardSwishOp(x, name=name)]
    sigmoid = nn.HardSigmoidOp(x, alpha=float(alpha), beta=float(beta))
    return [sigmoid, nn.MulOp(x, sigmoid.output, name=name)]


class MatchHardSigmoid(RewritePattern):
    """clip(x + b, 0, c) * f with c * f = 1 -> hard_sigmoid(x){f, b * f}."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        found = scaled(op)
        if found is None:
            return
        v, f = found
        gate = clip_gate(v)
        if gate is None or not v.has_one_use():
            return
        x, b, c = gate
        if not _is_reciprocal(f, c):
            return
        alpha, beta = np.float32(f), np.float32(b * f)
        rewriter.replace(op, nn.HardSigmoidOp(x, alpha=float(alpha), beta=float(beta),
                                                 name=nn.node_name(op)))


class MatchHardSwish(RewritePattern):
    """(x * clip(x + b, 0, c)) * f with c * f = 1 -> x * hard_sigmoid(x){f, b * f}
    (hard_swish(x) for f = 1/6, b = 3)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        found = scaled(op)
        if found is None:
            return
        v, f = found
        product = v.owner
        if not isinstance(product, nn.MulOp) or not v.has_one_use():
            return
        for x, g in ((product.lhs, product.rhs), (product.rhs, product.lhs)):
            gate = clip_gate(g)
            if gate is None or gate[0] != x or x.type != product.output.type:
                continue
            _, b, c = gate
            if not _is_reciprocal(f, c):
                continue
            rewriter.replace(op, _gate(x, f, b, nn.node_name(op)))
            return


def match_patterns() -> list[RewritePattern]:
    return [MatchHardSwish(), MatchHardSigmoid(), RecognizeSwish()]


@dataclass(frozen=True)
class NNMatchActivationsPass(ModulePass):
    """Rewrites written-out hard-sigmoid, hard-swish and SiLU forms into `nn.hard_sigmoid`,
    `nn.hard_swish` and `nn.silu` (see the module docstring for the forms). Not
    bit-exact: a few float32 roundings differ."""

    name = "nn-match-activations"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        PatternRewriteWalker(GreedyRewritePatternApplier(match_patterns()),
                             apply_recursively=True).rewrite_module(op)
