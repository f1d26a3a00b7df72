"""`nn-decompose-global-pool`: global pools larger than the NPU's pooling window become a
cascade of smaller pools (and, for averages, at most one depthwise convolution).

The PPU pools windows of at most `PPU_MAX_KERNEL` (16) per axis, so a global pool over
30x30 or 12x96 features runs on the CPU. An average over an H x W plane equals the
average of the averages of equal, non-overlapping blocks, and a maximum the maximum of
the blocks' maxima; so, with H = h1 * h2 * ... * hk and W = w1 * ... * wk,

    global_avg_pool(x)  =  global_avg_pool(avg_pool{kernel = stride = (h_{k-1}, w_{k-1})}(
                              ... avg_pool{kernel = stride = (h1, w1)}(x)))

(likewise with max pools). Each axis is factored into the fewest factors <= 16, largest
first (120 = 15 * 8, 96 = 16 * 6; an axis that needs fewer factors gets leading 1s). An
average whose axis has a factor between 17 and `CONV_MAX_KERNEL` (31, the CNA kernel
limit of every target) takes it in its last stage, a depthwise `nn.conv2d` with kernel
(h_k, w_k), every weight 1 / (h_k * w_k), no bias: the CNA's limit instead of the PPU's.

Postcondition: every `nn.global_avg_pool` / `nn.global_max_pool` on a rank-4 tensor has
H, W <= 16, unless no decomposition exists (a prime factor above 16 in a max pool; in an
average, one above 31 or two above 16 on one axis): those are left as they are (rknpu-legalize
then names the limit). The last stage keeps the original op's `rkc.name` (and its other
attributes); the earlier ones are named `<name>/pool<i>` so that calibration gives each
its own range and quantized and float stages can still be matched by name.

Numerics: max pools are exact (bit-identical); averages are exact in real arithmetic
and differ from the single float32 mean by float rounding only (sums in another order,
one more rounding per stage, and 1 / (h_k * w_k) rounded to float32 in a conv stage).
tests/test_nn_decompose_global_pool.py checks outputs against the interpreter with a
relative tolerance of 1e-5 of each output tensor's magnitude (exactly for max pools).
"""

from __future__ import annotations

import functools
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
from rkc.lowering.legality import PPU_MAX_KERNEL
from rkc.targets import TARGETS

POOL_MAX_KERNEL = PPU_MAX_KERNEL
CONV_MAX_KERNEL = min(t.max_kernel for t in TARGETS.values())


@functools.cache
def factors(n: int, limit: int) -> tuple[int, ...] | None:
    """The fewest factors <= `limit` whose product is n, largest first (() for 1),
    or None when n has a prime factor above `limit`."""
    if n == 1:
        return ()
    best: tuple[int, ...] | None = None
    for f in range(min(n, limit), 1, -1):  # the first of the fewest has the largest f
        rest = factors(n // f, limit) if n % f == 0 else None
        if rest is not None and (best is None or len(rest) + 1 < len(best)):
            best = tuple(sorted((f, *rest), reverse=True))
    return best


def axis_stages(n: int, average: bool) -> tuple[int, ...] | None:
    """Window sizes along one axis of length n, fewest first: all <= POOL_MAX_KERNEL
    when possible, else (averages only) all but the last, which is up to
    CONV_MAX_KERNEL; None when neither exists."""
    pools = factors(n, POOL_MAX_KERNEL)
    if pools is not None:
        return pools or (1,)
    if not average:
        return None
    options = []
    for last in range(POOL_MAX_KERNEL + 1, min(n, CONV_MAX_KERNEL) + 1):
        rest = factors(n // last, POOL_MAX_KERNEL) if n % last == 0 else None
        if rest is not None:
            options.append((*rest, last))
    return min(options, key=len) if options else None


def plan(h: int, w: int, average: bool) -> list[tuple[int, int]] | None:
    """Windows (kh, kw) per stage (their products are h and w), or None when the pool
    fits the PPU already or cannot be decomposed."""
    if max(h, w) <= POOL_MAX_KERNEL:
        return None
    hs, ws = axis_stages(h, average), axis_stages(w, average)
    if hs is None or ws is None:
        return None
    count = max(len(hs), len(ws))
    hs = (1,) * (count - len(hs)) + hs
    ws = (1,) * (count - len(ws)) + ws
    return list(zip(hs, ws, strict=True))


def _shape(value: SSAValue) -> tuple[int, ...]:
    assert isinstance(value.type, TensorType)
    return tuple(value.type.get_shape())


class DecomposeGlobalPool(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, nn.GlobalAvgPoolOp | nn.GlobalMaxPoolOp):
            return
        x = op.operands[0]
        shape = _shape(x)
        if len(shape) != 4:
            return
        average = isinstance(op, nn.GlobalAvgPoolOp)
        stages = plan(shape[2], shape[3], average)
        if stages is None:
            return
        name = nn.node_name(op)
        new_ops: list[Operation] = []
        pool_class = nn.AvgPool2dOp if average else nn.MaxPool2dOp
        for i, window in enumerate(stages[:-1]):
            stage = pool_class(x, window, strides=window,
                               name=f"{name}/pool{i}" if name else None)
            new_ops.append(stage)
            x = stage.output
            x.name_hint = "pool"
        kh, kw = stages[-1]
        if max(kh, kw) <= POOL_MAX_KERNEL:
            last = type(op).create(operands=[x], result_types=[op.results[0].type],
                                   properties=dict(op.properties),
                                   attributes=dict(op.attributes))
            new_ops.append(last)
        else:  # a depthwise conv averaging the remaining kh x kw plane
            channels = shape[1]
            dtype = nn.numpy_dtype(op.results[0].type.get_element_type())
            weight = nn.ConstantOp(np.full((channels, 1, kh, kw), 1.0 / (kh * kw), dtype))
            weight.output.name_hint = "mean_weight"
            conv = nn.Conv2dOp(x, weight.output, group=channels)
            conv.attributes.update(op.attributes)
            new_ops += [weight, conv]
        new_ops[-1].results[0].name_hint = op.results[0].name_hint
        rewriter.replace(op, new_ops)


@dataclass(frozen=True)
class NNDecomposeGlobalPoolPass(ModulePass):
    """Global avg / max pools over more than 16 x 16 become cascades of pools with
    windows <= 16 (averages: the last stage possibly a depthwise conv up to 31); see the
    module docstring."""

    name = "nn-decompose-global-pool"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        PatternRewriteWalker(GreedyRewritePatternApplier([DecomposeGlobalPool()]),
                             apply_recursively=True).rewrite_module(op)
