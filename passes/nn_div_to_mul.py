"""`nn-div-to-mul`: division by a constant scalar becomes multiplication by its reciprocal.

    x / c  ->  x * (1 / c)      c: an `nn.constant` whose elements are all equal and
                                non-zero, with 1 / c a finite normal float

The reciprocal is computed in float64 and stored in c's dtype, in a constant of c's
shape (so broadcasting, and the result type, are unchanged); the multiplication keeps
the division's `rkc.name` and attributes.

Why: `nn.div` has no integer semantics (nn-quantize keeps it in float, an island with
a dequantize before and a quantize after it on the CPU), while a multiplication by a
constant is an int8 op (one DPU rescale; a single-element constant quantizes exactly),
or folds into the convolution before it (`nn-fold-batchnorm`, which also folds
per-channel divisors directly).

Postcondition: no `nn.div` in the module has a constant divisor of that kind. Other
divisions are left as they are.

Numerics: x * fl(1/c) differs from the correctly rounded x / c by at most about one
float32 rounding (fl(1/c) has a relative error <= 2**-24, the product another 2**-24):
a relative error <= 2**-23 per element. tests/test_nn_div_to_mul.py checks module outputs
against the interpreter with a relative tolerance of 1e-5 of each output tensor's
magnitude (errors grow through the ops downstream).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import builtin
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from rkc.dialects import nn


def reciprocal(c: np.ndarray) -> np.ndarray | None:
    """1 / c in c's dtype and shape when every element of c is the same non-zero value
    whose reciprocal is a finite normal number of that dtype, else None."""
    if c.size == 0 or c.dtype.kind != "f":
        return None
    first = c.reshape(-1)[0]
    if not np.all(c == first) or first == 0 or not np.isfinite(first):
        return None
    r = np.asarray(1.0 / np.float64(first)).astype(c.dtype)
    if not np.isfinite(r) or abs(r) < np.finfo(c.dtype).tiny:
        return None
    return np.full(c.shape, r, dtype=c.dtype)


class DivByConstantToMul(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.DivOp, rewriter: PatternRewriter) -> None:
        c = nn.constant_value(op.rhs)
        r = reciprocal(c) if c is not None else None
        if r is None:
            return
        constant = nn.ConstantOp(r, nn.node_name(op.rhs.owner))
        mul = nn.MulOp.create(operands=[op.lhs, constant.output],
                              result_types=[op.output.type],
                              properties=dict(op.properties),
                              attributes=dict(op.attributes))
        constant.output.name_hint = op.rhs.name_hint
        rewriter.replace(op, [constant, mul])


@dataclass(frozen=True)
class NNDivToMulPass(ModulePass):
    """x / c -> x * (1 / c) for a constant scalar (or splat) c; see the module docstring."""

    name = "nn-div-to-mul"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        PatternRewriteWalker(GreedyRewritePatternApplier([DivByConstantToMul()]),
                             apply_recursively=True).rewrite_module(op)
