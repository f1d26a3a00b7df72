"""`nn-gemm-to-conv`: express a fully connected layer as a 1x1 convolution, the form
the NPU's convolution unit runs.

    Y[N, M] = act(alpha * op(A) @ op(B) + beta * C)
 -> Y = reshape(conv2d(reshape(op(A), [N, K, 1, 1]), W[M, K, 1, 1], bias[M]){act}, [N, M])

with W = alpha * op(B)^T and bias = beta * C broadcast to [M]. `op(A)` is an
`nn.transpose` of A when trans_a is set. The fused activation and its parameters move
to the conv, which also takes the gemm's `rkc.name`.

Conditions: B is an `nn.constant`; C is absent or an `nn.constant` that does not vary
along the row axis (shape [M], [1, M], [1], [1, 1] or a scalar), so it is a per-output
channel bias; otherwise the gemm is left alone.

Postcondition: no `nn.gemm` meeting these conditions remains.

Numerics: alpha and beta are folded into the constants (one rounding in float32 where
the gemm rounded after the product) and the convolution may sum in another order than
the matrix product, so results match to float reassociation: relative tolerance 1e-5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import builtin
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from rkc.dialects import nn


def _channel_bias(c: np.ndarray, m: int) -> np.ndarray | None:
    """C as a [M] vector, when broadcasting it to [N, M] repeats it on every row."""
    if c.ndim > 2 or (c.ndim == 2 and c.shape[0] != 1):
        return None
    return np.broadcast_to(c.reshape(c.shape[-1:] if c.ndim else ()), (m,))


class GemmToConv(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, gemm: nn.GemmOp, rewriter: PatternRewriter) -> None:
        b = nn.constant_value(gemm.b)
        c = nn.constant_value(gemm.c) if gemm.c is not None else None
        if b is None or (gemm.c is not None and c is None):
            return
        out_type = gemm.output.type
        assert isinstance(out_type, TensorType)
        n, m = out_type.get_shape()
        bias = None
        props = gemm.properties
        if c is not None:
            bias = _channel_bias(c, m)
            if bias is None:
                return
        alpha = float(np.float32(nn.float_of(props, "alpha")))
        beta = float(np.float32(nn.float_of(props, "beta")))
        # B is [K, M], or [M, K] with trans_b; the conv weight is [M, K]
        weight = (b if nn.int_of(props, "trans_b") else b.T).astype(np.float64) * alpha
        k = weight.shape[1]

        new_ops: list[Operation] = []
        a = gemm.a
        if nn.int_of(props, "trans_a"):
            new_ops.append(nn.TransposeOp(a, [1, 0]))
            a = new_ops[-1].results[0]
        w_op = nn.ConstantOp(weight.reshape(m, k, 1, 1).astype(b.dtype))
        new_ops += [w_op, to4 := nn.ReshapeOp(a, [n, k, 1, 1])]
        b_op = None
        if bias is not None:
            b_op = nn.ConstantOp((bias.astype(np.float64) * beta).astype(b.dtype))
            new_ops.append(b_op)
        activation = gemm.activation.data if gemm.activation is not None else None
        params = (list(gemm.activation_params.get_values())
                  if gemm.activation_params is not None else [])
        conv = nn.Conv2dOp(to4.output, w_op.output, b_op.output if b_op else None,
                           activation=activation, activation_params=params,
                           name=nn.node_name(gemm))
        new_ops += [conv, nn.ReshapeOp(conv.output, [n, m])]
        w_op.output.name_hint = "weight"  # cosmetic: readable SSA names in dumps
        if b_op is not None:
            b_op.output.name_hint = "bias"
        rewriter.replace(gemm, new_ops)


@dataclass(frozen=True)
class NNGemmToConvPass(ModulePass):
    """Rewrites every `nn.gemm` with a constant B and a per-column (or absent) constant
    C into reshape -> 1x1 `nn.conv2d` (alpha / beta folded into the weights, activation
    kept) -> reshape. Relative tolerance 1e-5 (float reassociation)."""

    name = "nn-gemm-to-conv"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        PatternRewriteWalker(GreedyRewritePatternApplier([GemmToConv()])).rewrite_module(op)
