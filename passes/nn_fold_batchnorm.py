"""`nn-fold-batchnorm`: fold a per-channel affine op (a batch normalisation, or a
multiplication / division / addition / subtraction by a per-channel constant) into the
convolution or gemm that produces its input.

    y = affine(p(x, W, b))   ->   y = p(x, W * s, b * s + t)
    (s, t per output channel: affine(v) = v * s + t)

with p one of

    nn.conv2d            W [O, C/group, KH, KW]: channel o of W scaled by s[o]
    nn.conv_transpose2d  W [C, O/group, KH, KW]: W[g*C/group + i, j] scaled by s[g*O/group + j]
    nn.gemm              B scaled along its N axis; the new C is beta * C * s + t with
                         beta = 1 afterwards (alpha and trans_a / trans_b are kept)

and affine one of

    nn.batch_norm(v) with constant parameters   s = scale / sqrt(var + epsilon),
                                                t = bias - mean * s
    v * c, c * v                                s = c,      t = 0
    v / c  (no element of c is 0)               s = 1 / c,  t = 0
    v + c, c + v                                s = 1,      t = c
    v - c                                       s = 1,      t = -c
    c - v                                       s = -1,     t = c

where the constant `c` (finite) is *per output channel*: it broadcasts against v without
changing v's type and has size 1 on every axis but the channel axis (axis 1 of a conv result, the
last axis of a gemm result). Det models written out by paddle2onnx have many of these
(conv -> mul by a learned scalar -> add a learned scalar; conv_transpose -> add bias ->
batch_norm); folded, they cost no op and no extra rounding in int8.

Postcondition: no affine op of the list above consumes the result of an `nn.conv2d` /
`nn.conv_transpose2d` / `nn.gemm` that (a) has no fused activation, (b) has a constant
weight (B) and a constant or absent bias (C), (c) has the affine op as its only use.
The surviving producer keeps its own `rkc.name` (the affine op's name disappears with
it); dead constants are erased. Anything else is left as it is.

Numerics: the new weights are computed in float64 and stored in the weight's dtype, so
the result differs from the unfolded graph by float rounding only (the folded graph
rounds once where the original rounded after the producer and again in the affine op).
Equivalence is checked with a relative tolerance of 1e-5 (tests/test_nn_fold_batchnorm.py,
tests/test_passes_equivalence.py).
"""

from __future__ import annotations

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
)

from rkc.dialects import nn

PRODUCERS = (nn.Conv2dOp, nn.ConvTranspose2dOp, nn.GemmOp)


def _shape(value: SSAValue) -> tuple[int, ...]:
    assert isinstance(value.type, TensorType)
    return tuple(value.type.get_shape())


def _channel_axis(producer: Operation) -> int:
    """The axis of the producer's result that holds its output channels."""
    return len(_shape(producer.results[0])) - 1 if isinstance(producer, nn.GemmOp) else 1


def _per_channel(c: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray | None:
    """`c` as one float64 value per channel of a result of `shape` (channels on `axis`),
    or None when it varies along another axis or has a higher rank."""
    if c.ndim > len(shape):
        return None
    c = c.reshape((1,) * (len(shape) - c.ndim) + c.shape)
    if any(d != 1 for i, d in enumerate(c.shape) if i != axis):
        return None
    if c.shape[axis] not in (1, shape[axis]):
        return None
    return np.broadcast_to(c.reshape(-1).astype(np.float64), (shape[axis],))


def _bn_affine(bn: nn.BatchNormOp) -> tuple[np.ndarray, np.ndarray] | None:
    """(s, t) in float64 with batch_norm(y) = y * s + t per channel, if constant."""
    params = [nn.constant_value(v) for v in (bn.scale, bn.bias, bn.mean, bn.var)]
    if any(p is None for p in params):
        return None
    scale, bias, mean, var = (p.astype(np.float64) for p in params)
    eps = float(np.float32(nn.float_of(bn.properties, "epsilon")))
    s = scale / np.sqrt(var + eps)
    return s, bias - mean * s


def affine_of(op: Operation) -> tuple[SSAValue, np.ndarray, np.ndarray] | None:
    """(v, s, t) when `op` computes v * s + t with constant s, t per channel of the
    producer of v (a conv / conv_transpose / gemm), else None."""
    if isinstance(op, nn.BatchNormOp):
        if not isinstance(op.input.owner, PRODUCERS):
            return None
        affine = _bn_affine(op)
        return None if affine is None else (op.input, *affine)
    if not isinstance(op, nn.MulOp | nn.DivOp | nn.AddOp | nn.SubOp):
        return None
    lhs, rhs = op.lhs, op.rhs
    for v, c_value, c_is_rhs in ((lhs, rhs, True), (rhs, lhs, False)):
        if not isinstance(v.owner, PRODUCERS) or v.type != op.output.type:
            continue
        c = nn.constant_value(c_value)
        if c is None or not np.all(np.isfinite(c)):
            continue
        channels = _per_channel(c, _shape(v), _channel_axis(v.owner))
        if channels is None:
            continue
        ones, zeros = np.ones_like(channels), np.zeros_like(channels)
        if isinstance(op, nn.MulOp):
            return v, channels, zeros
        if isinstance(op, nn.AddOp):
            return v, ones, channels
        if isinstance(op, nn.SubOp):
            return (v, ones, -channels) if c_is_rhs else (v, -ones, channels)
        if c_is_rhs and np.all(channels != 0):  # v / c
            return v, 1.0 / channels, zeros
    return None


def _foldable(producer: Operation) -> bool:
    """No fused activation, constant weight (B) and bias (C), a single use."""
    if not isinstance(producer, PRODUCERS) or not producer.results[0].has_one_use():
        return False
    if getattr(producer, "activation", None) is not None:
        return False
    if isinstance(producer, nn.GemmOp):
        weight, bias = producer.b, producer.c
    else:
        weight, bias = producer.weight, producer.bias
    return nn.constant_value(weight) is not None and (
        bias is None or nn.constant_value(bias) is not None)


def _keep_hints(*pairs: tuple[SSAValue | None, SSAValue]) -> None:
    """Give the new values the SSA names of the values they replace (cosmetic); a
    bias that did not exist is called `bias`."""
    for old, new in pairs:
        new.name_hint = old.name_hint if old is not None else "bias"


def _folded_conv(conv: nn.Conv2dOp | nn.ConvTranspose2dOp, s: np.ndarray, t: np.ndarray,
                 ) -> list[Operation]:
    """[weight, bias, conv] computing conv(...) * s + t."""
    weight = nn.constant_value(conv.weight)
    assert weight is not None
    w = weight.astype(np.float64)
    if isinstance(conv, nn.Conv2dOp):
        new_w = w * s.reshape(-1, 1, 1, 1)
    else:
        group = nn.int_of(conv.properties, "group")
        ci, og = w.shape[:2]
        new_w = (w.reshape(group, ci // group, og, *w.shape[2:])
                 * s.reshape(group, 1, og, 1, 1)).reshape(w.shape)
    bias = nn.constant_value(conv.bias) if conv.bias is not None else None
    old_b = bias.astype(np.float64) if bias is not None else np.zeros_like(s)
    w_op = nn.ConstantOp(new_w.astype(weight.dtype))
    b_op = nn.ConstantOp((old_b * s + t).astype(weight.dtype))
    new = type(conv).create(operands=[conv.input, w_op.output, b_op.output],
                            result_types=[conv.output.type], properties=dict(conv.properties),
                            attributes=dict(conv.attributes))
    _keep_hints((conv.weight, w_op.output), (conv.bias, b_op.output),
                (conv.output, new.results[0]))
    return [w_op, b_op, new]


def _folded_gemm(gemm: nn.GemmOp, s: np.ndarray, t: np.ndarray) -> list[Operation]:
    """[B, C, gemm] computing gemm(...) * s + t (per output column)."""
    b = nn.constant_value(gemm.b)
    c = nn.constant_value(gemm.c) if gemm.c is not None else None
    assert b is not None
    props = gemm.properties
    trans_b = bool(nn.int_of(props, "trans_b"))
    beta = float(np.float32(nn.float_of(props, "beta")))
    # B is [K, N] (or [N, K] with trans_b); output column n is scaled by s[n]
    new_b = b.astype(np.float64) * (s.reshape(-1, 1) if trans_b else s.reshape(1, -1))
    # C broadcasts to [M, N]; the channel axis is the last one of the result
    new_c = t if c is None else beta * c.astype(np.float64) * s + t
    b_op = nn.ConstantOp(new_b.astype(b.dtype))
    c_op = nn.ConstantOp(np.asarray(new_c).astype(b.dtype))
    new = nn.GemmOp(gemm.a, b_op.output, c_op.output, alpha=nn.float_of(props, "alpha"),
                    beta=1.0, trans_a=bool(nn.int_of(props, "trans_a")), trans_b=trans_b,
                    name=nn.node_name(gemm))
    _keep_hints((gemm.b, b_op.output), (gemm.c, c_op.output), (gemm.output, new.output))
    return [b_op, c_op, new]


class FoldAffineIntoProducer(RewritePattern):
    """affine(p(x, W, b)) -> p(x, W * s, b * s + t) (see the module docstring)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        found = affine_of(op)
        if found is None:
            return
        value, s, t = found
        producer = value.owner
        if not _foldable(producer):
            return
        if isinstance(producer, nn.GemmOp):
            new_ops = _folded_gemm(producer, s, t)
        else:
            assert isinstance(producer, nn.Conv2dOp | nn.ConvTranspose2dOp)
            new_ops = _folded_conv(producer, s, t)
        rewriter.replace(op, new_ops)
        rewriter.erase(producer)


@dataclass(frozen=True)
class NNFoldBatchNormPass(ModulePass):
    """Folds `nn.batch_norm` with constant parameters, and mul / div / add / sub by a
    per-channel constant, into a preceding single-use `nn.conv2d` /
    `nn.conv_transpose2d` / `nn.gemm` with constant weights and no fused activation.
    Afterwards no such affine op remains; others are kept. Relative tolerance 1e-5 (see
    the module docstring)."""

    name = "nn-fold-batchnorm"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        # the greedy applier also erases the constants the folds leave unused
        PatternRewriteWalker(GreedyRewritePatternApplier([FoldAffineIntoProducer()]),
                             apply_recursively=True).rewrite_module(op)
