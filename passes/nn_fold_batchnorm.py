"""`nn-fold-batchnorm`: fold an inference batch normalisation into the convolution or
gemm that produces its input.

    y = batch_norm(conv2d(x, W, b))   ->   y = conv2d(x, W * s, (b - mean) * s + bias)
    with s = scale / sqrt(var + epsilon) per output channel.

    y = batch_norm(gemm(A, B, C))     ->   y = gemm(A, B * s (on the N axis),
                                                    beta * C * s + (bias - mean * s))
    (alpha and trans_a / trans_b are kept; the new C has beta folded in, beta = 1.)

Postcondition: no `nn.batch_norm` whose input is the result of an `nn.conv2d` /
`nn.gemm` that (a) has no fused activation, (b) has a constant weight (B) and a
constant or absent bias (C), (c) has the batch norm as its only use, and (d) has all
four batch-norm parameters constant. The surviving conv / gemm keeps its own
`rkc.name`; dead constants are erased.

A batch norm after anything else (or one whose producer fails a condition) is left
as it is: rewriting it as `mul` + `add` by constants would not remove an op, and
the backend lowers a standalone batch norm directly.

Numerics: the new weights are computed in float64 and stored in the weight's dtype,
so the result differs from the unfolded graph by float rounding only (the folded graph
rounds once where the original rounded after the conv and again inside the batch
norm). Equivalence is checked with a relative tolerance of 1e-5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import builtin
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from rkc.dialects import nn


def _keep_hints(*pairs: tuple[SSAValue | None, SSAValue]) -> None:
    """Give the new values the SSA names of the values they replace (cosmetic); a
    bias that did not exist is called `bias`."""
    for old, new in pairs:
        new.name_hint = old.name_hint if old is not None else "bias"


def _bn_affine(bn: nn.BatchNormOp) -> tuple[np.ndarray, np.ndarray] | None:
    """(s, t) in float64 with batch_norm(y) = y * s + t per channel, if constant."""
    params = [nn.constant_value(v) for v in (bn.scale, bn.bias, bn.mean, bn.var)]
    if any(p is None for p in params):
        return None
    scale, bias, mean, var = (p.astype(np.float64) for p in params)
    eps = float(np.float32(nn.float_of(bn.properties, "epsilon")))
    s = scale / np.sqrt(var + eps)
    return s, bias - mean * s


class FoldBatchNormIntoConv(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, bn: nn.BatchNormOp, rewriter: PatternRewriter) -> None:
        conv = bn.input.owner
        if (not isinstance(conv, nn.Conv2dOp) or conv.activation is not None
                or not conv.output.has_one_use()):
            return
        weight = nn.constant_value(conv.weight)
        bias = nn.constant_value(conv.bias) if conv.bias is not None else None
        if weight is None or (conv.bias is not None and bias is None):
            return
        affine = _bn_affine(bn)
        if affine is None:
            return
        s, t = affine
        new_w = weight.astype(np.float64) * s.reshape(-1, 1, 1, 1)
        old_b = bias.astype(np.float64) if bias is not None else np.zeros_like(s)
        new_b = old_b * s + t
        w_op = nn.ConstantOp(new_w.astype(weight.dtype))
        b_op = nn.ConstantOp(new_b.astype(weight.dtype))
        props = conv.properties
        new_conv = nn.Conv2dOp(
            conv.input, w_op.output, b_op.output,
            strides=nn.ints(props, "strides"), pads=nn.ints(props, "pads"),
            dilations=nn.ints(props, "dilations"), group=nn.int_of(props, "group"),
            name=nn.node_name(conv))
        _keep_hints((conv.weight, w_op.output), (conv.bias, b_op.output),
                    (conv.output, new_conv.output))
        rewriter.replace(bn, [w_op, b_op, new_conv])
        rewriter.erase(conv)


class FoldBatchNormIntoGemm(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, bn: nn.BatchNormOp, rewriter: PatternRewriter) -> None:
        gemm = bn.input.owner
        if (not isinstance(gemm, nn.GemmOp) or gemm.activation is not None
                or not gemm.output.has_one_use()):
            return
        b = nn.constant_value(gemm.b)
        c = nn.constant_value(gemm.c) if gemm.c is not None else None
        if b is None or (gemm.c is not None and c is None):
            return
        affine = _bn_affine(bn)
        if affine is None:
            return
        s, t = affine
        props = gemm.properties
        trans_b = bool(nn.int_of(props, "trans_b"))
        beta = float(np.float32(nn.float_of(props, "beta")))
        # B is [K, N] (or [N, K] with trans_b); output column n is scaled by s[n]
        new_b = b.astype(np.float64) * (s.reshape(-1, 1) if trans_b else s.reshape(1, -1))
        # C broadcasts to [M, N]; the channel axis is the last one of the result
        new_c = t if c is None else beta * c.astype(np.float64) * s + t
        b_op = nn.ConstantOp(new_b.astype(b.dtype))
        c_op = nn.ConstantOp(np.asarray(new_c).astype(b.dtype))
        new_gemm = nn.GemmOp(
            gemm.a, b_op.output, c_op.output, alpha=nn.float_of(props, "alpha"), beta=1.0,
            trans_a=bool(nn.int_of(props, "trans_a")), trans_b=trans_b, name=nn.node_name(gemm))
        _keep_hints((gemm.b, b_op.output), (gemm.c, c_op.output),
                    (gemm.output, new_gemm.output))
        rewriter.replace(bn, [b_op, c_op, new_gemm])
        rewriter.erase(gemm)


@dataclass(frozen=True)
class NNFoldBatchNormPass(ModulePass):
    """Folds `nn.batch_norm` with constant parameters into a preceding single-use
    `nn.conv2d` / `nn.gemm` with constant weights and no fused activation. Afterwards
    no such batch norm remains; others are kept. Relative tolerance 1e-5 (see the
    module docstring)."""

    name = "nn-fold-batchnorm"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        PatternRewriteWalker(
            GreedyRewritePatternApplier([FoldBatchNormIntoConv(), FoldBatchNormIntoGemm()]),
            apply_recursively=True,
        ).rewrite_module(op)
