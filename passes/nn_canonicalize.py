"""`nn-canonicalize`: constant folding, identity elimination and small algebraic
simplifications on the `nn` dialect.

Postcondition (for every op in the module, after the pass):
  * no `nn` op other than `nn.constant` has only `nn.constant` operands, unless folding
    it would create a constant of more than `max_fold_elements` elements (default 16 M)
    or the reference interpreter cannot evaluate it;
  * there is no identity `nn.reshape` (same shape), `nn.transpose` (identity perm),
    `nn.slice` (start 0, end = dim, step 1 on every axis), `nn.pad` (all-zero pads),
    `nn.cast` (same element type), `nn.resize` (same size, every scale 1, and a
    coordinate transform that maps index i to i), one-input `nn.concat` or one-piece
    `nn.split`;
  * there is no `x * 1`, `1 * x`, `x + 0`, `0 + x`, `x - 0` or `x / 1` whose constant is
    all ones / all zeros and whose result type equals the type of `x` (when broadcasting
    against the constant changes the shape or the op is kept);
  * no `nn.reshape` consumes another `nn.reshape`, and no `nn.transpose` consumes another
    `nn.transpose` (the pair is one transpose with the composed permutation, or nothing);
  * no unused `nn` op remains (they are all `Pure`; the greedy driver's DCE erases them).

Semantics: the interpreter outputs are bit-identical before and after, with one
documented exception: `x + 0 -> x` keeps a `-0.0` that the addition would have turned
into `+0.0` (equal under `==` / `np.array_equal`; only the sign of zero differs).
Folded constants are computed by `rkc.interpreter.evaluate_op`, i.e. with the very
kernels the interpreter would run, and keep the folded op's `rkc.name`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import builtin
from xdsl.dialects.builtin import TensorType
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
from rkc.interpreter import evaluate_op

DEFAULT_MAX_FOLD_ELEMENTS = 16 * 1024 * 1024


def _shape(value: SSAValue) -> tuple[int, ...]:
    assert isinstance(value.type, TensorType)
    return tuple(value.type.get_shape())



# ---------------------------------------------------------------------------
# constant folding
# ---------------------------------------------------------------------------
@dataclass
class FoldConstantOp(RewritePattern):
    """op(constant, ...) -> constant, evaluated with the interpreter's own kernels."""

    max_elements: int = DEFAULT_MAX_FOLD_ELEMENTS

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, nn.NNOp) or not op.operands or not op.results:
            return
        owners = [v.owner for v in op.operands]
        if not all(isinstance(o, nn.ConstantOp) for o in owners):
            return
        result_types = [r.type for r in op.results]
        if not all(isinstance(t, TensorType) for t in result_types):
            return
        if sum(math.prod(t.get_shape()) for t in result_types) > self.max_elements:
            return
        try:
            values = evaluate_op(op, [o.to_numpy() for o in owners])
        except Exception:  # an op the interpreter cannot run stays as it is
            return
        constants = []
        for value, t in zip(values, result_types, strict=True):
            array = np.asarray(value)
            if array.shape != tuple(t.get_shape()):
                return
            try:
                dtype = nn.numpy_dtype(t.element_type)
            except nn.ShapeError:
                return
            if array.dtype != dtype or dtype == np.bool_:
                return  # folding must not change what downstream ops see
            constants.append(nn.ConstantOp(array, name=nn.node_name(op), result_type=t))
        rewriter.replace(op, constants, [c.output for c in constants])


# ---------------------------------------------------------------------------
# identities
# ---------------------------------------------------------------------------
def _forward(rewriter: PatternRewriter, op: Operation, value: SSAValue) -> None:
    """Replace the single result of `op` by `value` (same type) and erase `op`."""
    assert op.results[0].type == value.type
    rewriter.replace(op, [], [value])


class RemoveIdentityReshape(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.ReshapeOp, rewriter: PatternRewriter) -> None:
        if op.input.type == op.output.type:
            _forward(rewriter, op, op.input)


class RemoveIdentityTranspose(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.TransposeOp, rewriter: PatternRewriter) -> None:
        perm = nn.ints(op.properties, "perm")
        if list(perm) == list(range(len(perm))):
            _forward(rewriter, op, op.input)


class RemoveIdentitySlice(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.SliceOp, rewriter: PatternRewriter) -> None:
        props = op.properties
        starts, ends, steps = (nn.ints(props, k) for k in ("starts", "ends", "steps"))
        shape = _shape(op.input)
        if all(s == 0 and e == d and st == 1
               for s, e, st, d in zip(starts, ends, steps, shape, strict=True)):
            _forward(rewriter, op, op.input)


class RemoveIdentityPad(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.PadOp, rewriter: PatternRewriter) -> None:
        if not any(nn.ints(op.properties, "pads")):
            _forward(rewriter, op, op.input)


class RemoveIdentityCast(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.CastOp, rewriter: PatternRewriter) -> None:
        if op.input.type == op.output.type:
            _forward(rewriter, op, op.input)


# With scale 1 and the same size, these transforms map output index i to input
# coordinate i exactly. `tf_half_pixel_for_nearest` maps i to i + 0.5, which is not
# the identity (it rounds up with round_prefer_ceil, and interpolates with linear).
_IDENTITY_COORDINATE_MODES = ("half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel")


class RemoveIdentityResize(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.ResizeOp, rewriter: PatternRewriter) -> None:
        scales = op.scales.get_values()
        mode = nn.str_of(op.properties, "coordinate_transformation_mode")
        if (op.input.type == op.output.type and all(s == 1.0 for s in scales)
                and mode in _IDENTITY_COORDINATE_MODES):
            _forward(rewriter, op, op.input)


class RemoveSingleConcat(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.ConcatOp, rewriter: PatternRewriter) -> None:
        if len(op.inputs) == 1:
            _forward(rewriter, op, op.inputs[0])


class RemoveSingleSplit(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.SplitOp, rewriter: PatternRewriter) -> None:
        if len(op.outputs) == 1:
            _forward(rewriter, op, op.input)


# ---------------------------------------------------------------------------
# algebraic identities
# ---------------------------------------------------------------------------
def _is_all(value: SSAValue, fill: float) -> bool:
    array = nn.constant_value(value)
    return array is not None and array.size > 0 and bool(np.all(array == fill))


class RemoveNeutralOperand(RewritePattern):
    """x * 1, 1 * x, x + 0, 0 + x, x - 0, x / 1 -> x when the result has x's type."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if isinstance(op, nn.MulOp):
            candidates = [(op.lhs, op.rhs, 1.0), (op.rhs, op.lhs, 1.0)]
        elif isinstance(op, nn.AddOp):
            candidates = [(op.lhs, op.rhs, 0.0), (op.rhs, op.lhs, 0.0)]
        elif isinstance(op, nn.SubOp):
            candidates = [(op.lhs, op.rhs, 0.0)]
        elif isinstance(op, nn.DivOp):
            candidates = [(op.lhs, op.rhs, 1.0)]
        else:
            return
        for x, neutral, fill in candidates:
            if x.type == op.output.type and _is_all(neutral, fill):
                _forward(rewriter, op, x)
                return


# ---------------------------------------------------------------------------
# chains
# ---------------------------------------------------------------------------
class FoldReshapeChain(RewritePattern):
    """reshape(reshape(x)) -> reshape(x) (row-major reshapes compose)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.ReshapeOp, rewriter: PatternRewriter) -> None:
        inner = op.input.owner
        if not isinstance(inner, nn.ReshapeOp):
            return
        source = inner.input
        if source.type == op.output.type:
            _forward(rewriter, op, source)
        else:
            rewriter.replace(op, nn.ReshapeOp(source, _shape(op.output), name=nn.node_name(op)))


class FoldTransposePair(RewritePattern):
    """transpose(transpose(x, p1), p2) -> transpose(x, p1[p2]), or x if that is identity."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.TransposeOp, rewriter: PatternRewriter) -> None:
        inner = op.input.owner
        if not isinstance(inner, nn.TransposeOp):
            return
        p1, p2 = nn.ints(inner.properties, "perm"), nn.ints(op.properties, "perm")
        perm = [p1[p] for p in p2]
        if perm == list(range(len(perm))):
            _forward(rewriter, op, inner.input)
        else:
            rewriter.replace(op, nn.TransposeOp(inner.input, perm, name=nn.node_name(op)))


# ---------------------------------------------------------------------------
# pass
# ---------------------------------------------------------------------------
def canonicalization_patterns(max_fold_elements: int = DEFAULT_MAX_FOLD_ELEMENTS,
                              ) -> list[RewritePattern]:
    return [
        FoldConstantOp(max_fold_elements),
        RemoveIdentityReshape(), RemoveIdentityTranspose(), RemoveIdentitySlice(),
        RemoveIdentityPad(), RemoveIdentityCast(), RemoveIdentityResize(),
        RemoveSingleConcat(), RemoveSingleSplit(),
        RemoveNeutralOperand(),
        FoldReshapeChain(), FoldTransposePair(),
    ]


@dataclass(frozen=True)
class NNCanonicalizePass(ModulePass):
    """Constant folding, identity elimination, x*1 / x+0 style identities, reshape
    chains and transpose pairs, then removal of dead `nn` ops; see the module
    docstring for the exact postcondition. Option: `max-fold-elements` (default 16 M)."""

    name = "nn-canonicalize"

    max_fold_elements: int = DEFAULT_MAX_FOLD_ELEMENTS

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        PatternRewriteWalker(
            GreedyRewritePatternApplier(canonicalization_patterns(self.max_fold_elements)),
            apply_recursively=True,
        ).rewrite_module(op)
