"""`nn-fuse-activation`: fold an activation into the conv2d / gemm that produces its
input, after recognising the two-op forms of SiLU and hard-swish.

Phase 1 (recognition; either operand order):
    x * sigmoid(x)                                  ->  nn.silu(x)
    x * hard_sigmoid(x){alpha = 1/6, beta = 0.5}    ->  nn.hard_swish(x)
when the sigmoid / hard_sigmoid result is used only by that multiplication (the
multiplication keeps its `rkc.name` on the new op).

Phase 2 (fusion):
    act(conv2d(...))  ->  conv2d(...){activation = act}
    act(gemm(...))    ->  gemm(...){activation = act}
for act in relu, clip (params [min, max]; relu6 is clip 0..6), leaky_relu (params
[alpha]), sigmoid, silu, hard_swish, tanh, when the conv / gemm has no activation yet
and its result has the activation as its only use. The conv / gemm keeps its
`rkc.name`.

Option `kinds` restricts phase 2 to the listed activations (default: empty, meaning
all of them), e.g. `nn-fuse-activation{kinds=relu,clip}` fuses only what an int8 conv
can keep fused (the quantize pass rejects the others). Phase 1 always runs.

Postcondition: no `nn.mul` of the two recognisable forms above with a single-use
sigmoid / hard_sigmoid remains, and no activation op of the list above *whose kind is
in `kinds`* (all when empty) consumes the single-use result of an `nn.conv2d` /
`nn.gemm` without a fused activation. An unknown kind is an RkcError.

Numerics: bit-exact. The fusion is exact because the interpreter applies the same
activation kernel to the conv / gemm result as the separate op would. The recognition
is exact because the interpreter (rkc/interpreter/kernels.py) computes `nn.silu` as
`x * sigmoid(x)` and `nn.hard_swish` as `x * hard_sigmoid(x, 1/6, 0.5)` with the
same float32 kernels as the unfused `nn.mul` / `nn.sigmoid` / `nn.hard_sigmoid`; the
gate's alpha must therefore be float32(1/6) exactly (0.166666672 in the IR text).
`tests/test_passes_equivalence.py` checks this with `np.array_equal`.
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
    op_type_rewrite_pattern,
)

from rkc.dialects import nn
from rkc.errors import RkcError

HARD_SWISH_ALPHA = np.float32(1 / 6)
HARD_SWISH_BETA = np.float32(0.5)


def _name(op: Operation) -> str | None:
    attr = op.attributes.get(nn.NAME_ATTR)
    return attr.data if isinstance(attr, builtin.StringAttr) else None


# ---------------------------------------------------------------------------
# phase 1: x * sigmoid(x) and x * hard_sigmoid(x)
# ---------------------------------------------------------------------------
def _gate_of(value: SSAValue, gate: SSAValue) -> Operation | None:
    """The sigmoid-like op defining `gate` when it is applied to `value` and used once."""
    op = gate.owner
    if not isinstance(op, nn.SigmoidOp | nn.HardSigmoidOp):
        return None
    if op.input != value or not op.output.has_one_use():
        return None
    # compared as float32: that is what the kernels compute with (a parsed f32
    # attribute may hold a double that only rounds to the float32 value)
    if isinstance(op, nn.HardSigmoidOp) and (
            np.float32(nn.float_of(op.properties, "alpha")) != HARD_SWISH_ALPHA
            or np.float32(nn.float_of(op.properties, "beta")) != HARD_SWISH_BETA):
        return None
    return op


class RecognizeSwish(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.MulOp, rewriter: PatternRewriter) -> None:
        for x, g in ((op.lhs, op.rhs), (op.rhs, op.lhs)):
            gate = _gate_of(x, g)
            if gate is None or x.type != op.output.type:
                continue
            cls = nn.SiluOp if isinstance(gate, nn.SigmoidOp) else nn.HardSwishOp
            rewriter.replace(op, cls(x, name=_name(op)))
            rewriter.erase(gate)
            return


# ---------------------------------------------------------------------------
# phase 2: conv2d / gemm + activation
# ---------------------------------------------------------------------------
def _activation(op: Operation) -> tuple[str, list[float]] | None:
    """(activation name, params) that `op` computes, when it is fusable."""
    if isinstance(op, nn.ReluOp):
        return "relu", []
    if isinstance(op, nn.ClipOp):
        return "clip", [nn.float_of(op.properties, "min"), nn.float_of(op.properties, "max")]
    if isinstance(op, nn.LeakyReluOp):
        return "leaky_relu", [nn.float_of(op.properties, "alpha")]
    simple = {nn.SigmoidOp: "sigmoid", nn.SiluOp: "silu", nn.HardSwishOp: "hard_swish",
              nn.TanhOp: "tanh"}
    for cls, name in simple.items():
        if isinstance(op, cls):
            return name, []
    return None


@dataclass
class FuseActivation(RewritePattern):
    kinds: frozenset[str] = frozenset(nn.ACTIVATIONS)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        act = _activation(op)
        if act is None or act[0] not in self.kinds:
            return
        (source,) = op.operands
        producer = source.owner
        if not isinstance(producer, nn.Conv2dOp | nn.GemmOp):
            return
        if producer.activation is not None or not source.has_one_use():
            return
        producer.properties.update(nn.activation_props(*act))
        rewriter.notify_op_modified(producer)
        rewriter.replace(op, [], [source])


@dataclass(frozen=True)
class NNFuseActivationPass(ModulePass):
    """Recognises x*sigmoid(x) / x*hard_sigmoid(x) as silu / hard_swish, then fuses
    relu, clip, leaky_relu, sigmoid, silu, hard_swish and tanh (or only the `kinds`
    listed, e.g. `{kinds=relu,clip}`) into a single-use conv2d / gemm without an
    activation. Exact; see the module docstring for the postcondition."""

    name = "nn-fuse-activation"

    kinds: tuple[str, ...] = ()

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        unknown = sorted(set(self.kinds) - set(nn.ACTIVATIONS))
        if unknown:
            raise RkcError(f"nn-fuse-activation: unknown activation kind '{unknown[0]}' "
                           f"(known: {', '.join(nn.ACTIVATIONS)})")
        kinds = frozenset(self.kinds or nn.ACTIVATIONS)
        PatternRewriteWalker(GreedyRewritePatternApplier([RecognizeSwish()])).rewrite_module(op)
        PatternRewriteWalker(
            GreedyRewritePatternApplier([FuseActivation(kinds)])).rewrite_module(op)
