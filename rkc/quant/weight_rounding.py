"""Data-aware rounding of int8 weights (GPTQ: Frantar et al., 2022, arXiv:2210.17323).

Rounding every weight to its nearest int8 step minimises the error of each weight, not
the error of the layer's output. GPTQ rounds the input columns of a weight matrix one by
one and spreads each column's rounding error over the columns not yet rounded, weighted
by the inverse of the Hessian `H = X^T X` of the layer's calibration inputs `X` (im2col
patches for a convolution), which minimises `||X W^T - X Q^T||` far better than rounding
to nearest.

`HessianCollector` observes the float module during calibration; its `round_weights`
then rewrites, in a copy of the calibrated module, the weight constant of every conv2d
and gemm that nn-quantize will compute in int8 with values that lie exactly on the int8
grid `q * s` of the scales nn-quantize computes (`qparams.weight_scales`, per output channel
or per tensor); nn-quantize then recovers `q` by rounding to nearest. The scales stay the
same: the element that sets each channel's scale (its largest magnitude, +-127 steps) is
pinned and never receives error feedback. Only the module given is changed: callers keep
the original float module for reference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.interpreter import Interpreter, PythonValues
from xdsl.ir import Operation
from xdsl.rewriter import InsertPoint, Rewriter

from rkc.dialects import nn
from rkc.graph import main_function
from rkc.quant import qparams

WEIGHT_ROUNDINGS = ("nearest", "gptq")
MAX_ROWS_PER_SAMPLE = 4096
"""Patches kept per calibration sample and layer (a deterministic random subset beyond)."""
MIN_ROWS_PER_INPUT = 16
"""A layer whose calibration data has fewer rows than this many per input column (a conv
after a global pool sees one row per sample) keeps nearest rounding: its Hessian is too
poorly sampled, and GPTQ would fit the calibration set instead of the layer."""
DAMPING = 0.01
"""Added to the Hessian's diagonal, as a fraction of its mean (GPTQ's default)."""


def conv_output_shape(x_shape: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
                      pads: Sequence[int], dilations: Sequence[int]) -> tuple[int, int]:
    """(OH, OW) of a conv2d over an input of shape [N, C, H, W]."""
    return tuple(nn.conv_output_size(x_shape[2 + a], kernel[a], strides[a], pads[a],
                                     pads[a + 2], dilations[a]) for a in range(2))


def conv_patches(x: np.ndarray, kernel: Sequence[int], strides: Sequence[int],
                 pads: Sequence[int], dilations: Sequence[int],
                 positions: np.ndarray | None = None) -> np.ndarray:
    """im2col: one row per output position (all N*OH*OW of them, or the flat indices
    `positions` into them), columns ordered (channel, kernel row, kernel column) like a
    flattened weight; pads are (top, left, bottom, right), padding is zero."""
    n, c = x.shape[:2]
    top, left, bottom, right = pads
    padded = np.pad(x.astype(np.float32), ((0, 0), (0, 0), (top, bottom), (left, right)))
    oh, ow = conv_output_shape(x.shape, kernel, strides, pads, dilations)
    if positions is None:
        positions = np.arange(n * oh * ow)
    b, rest = np.divmod(positions, oh * ow)
    y, x_ = np.divmod(rest, ow)
    rows = y[:, None] * strides[0] + np.arange(kernel[0]) * dilations[0]
    cols = x_[:, None] * strides[1] + np.arange(kernel[1]) * dilations[1]
    patches = padded[b[:, None, None, None], np.arange(c)[None, :, None, None],
                     rows[:, None, :, None], cols[:, None, None, :]]
    return patches.reshape(len(positions), -1)


def gptq(weight: np.ndarray, scales: np.ndarray, hessian: np.ndarray) -> np.ndarray:
    """Integer weights in [-127, 127] for `weight` [G, O, K] (G independent groups of O
    rows over K inputs), per-row `scales` [G, O] and per-group `hessian` [G, K, K].

    Columns are rounded in order; each row's largest-magnitude element is pinned (rounded
    without feedback) so that it stays at +-127 steps and the scale it defines holds."""
    groups, rows, k = weight.shape
    w = weight.astype(np.float64).copy()
    h = hessian.astype(np.float64).copy()
    diagonal = np.einsum("gkk->gk", h)
    dead = diagonal <= 0
    diagonal[dead] = 1.0  # inputs that were always zero: nothing to learn from them
    idx = np.arange(k)
    h[:, idx, idx] = diagonal + DAMPING * diagonal.mean(axis=1, keepdims=True)
    inverse = np.linalg.inv(h)
    upper = np.transpose(np.linalg.cholesky(inverse), (0, 2, 1))  # H^-1 = U^T U
    pinned = np.zeros_like(w, dtype=bool)
    np.put_along_axis(pinned, np.abs(w).argmax(axis=2)[..., None], True, axis=2)
    q = np.zeros(w.shape, np.int64)
    s = scales.astype(np.float64)
    for i in range(k):
        column = w[:, :, i]
        q[:, :, i] = np.clip(np.rint(column / s), -qparams.WEIGHT_QMAX, qparams.WEIGHT_QMAX)
        error = (column - q[:, :, i] * s) / upper[:, i, i][:, None]
        update = error[:, :, None] * upper[:, None, i, i + 1:]
        update[pinned[:, :, i + 1:]] = 0.0
        w[:, :, i + 1:] -= update
    return q


class _HessianAccumulator:
    """Sums `X^T X` per group over calibration samples for one conv2d or gemm."""

    def __init__(self, op: Operation):
        self.op = op
        self.hessian: np.ndarray | None = None
        self.rows = 0
        self.rng = np.random.default_rng(0)

    def groups(self) -> int:
        return nn.int_of(self.op.properties, "group") if isinstance(self.op, nn.Conv2dOp) else 1

    def positions(self, count: int) -> np.ndarray:
        """All of `count` rows, or a sorted random `MAX_ROWS_PER_SAMPLE` of them."""
        if count <= MAX_ROWS_PER_SAMPLE:
            return np.arange(count)
        return np.sort(self.rng.choice(count, MAX_ROWS_PER_SAMPLE, replace=False))

    def add(self, x: np.ndarray) -> None:
        op = self.op
        if isinstance(op, nn.Conv2dOp):
            kernel = tuple(op.weight.type.get_shape()[2:])
            geometry = (nn.ints(op.properties, "strides"), nn.ints(op.properties, "pads"),
                        nn.ints(op.properties, "dilations"))
            oh, ow = conv_output_shape(x.shape, kernel, *geometry)
            rows = conv_patches(x, kernel, *geometry, self.positions(x.shape[0] * oh * ow))
        else:
            rows = np.asarray(x, np.float32)
            if nn.int_of(op.properties, "trans_a"):
                rows = rows.T
            rows = rows[self.positions(len(rows))]
        g = self.groups()
        grouped = rows.astype(np.float64).reshape(len(rows), g, -1)
        by_group = grouped.transpose(1, 0, 2)  # [G, M, K]
        h = np.matmul(by_group.transpose(0, 2, 1), by_group)
        self.rows += len(rows)
        self.hessian = h if self.hessian is None else self.hessian + h


def _weight_matrix(op: Operation) -> tuple[np.ndarray, int]:
    """(weight as [O, K], output-channel axis of the stored constant)."""
    weight = nn.constant_value(op.weight if isinstance(op, nn.Conv2dOp) else op.b)
    assert weight is not None
    if isinstance(op, nn.Conv2dOp):
        return weight.reshape(weight.shape[0], -1), 0
    if nn.int_of(op.properties, "trans_b"):
        return weight, 0
    return weight.T, 1


def candidates(module: ModuleOp) -> list[Operation]:
    """The conv2d and gemm ops (B not scaled by alpha) nn-quantize will make int8, whose
    weight constant has no other user and that have a node name (how a copy of the
    module is matched); the others keep nearest rounding."""
    from rkc.passes.nn_quantize import int8_obstacle, precision_of

    found = []
    for op in main_function(module).walk():
        if not isinstance(op, nn.Conv2dOp | nn.GemmOp):
            continue
        if int8_obstacle(op) is not None or precision_of(op) not in (None, "int8"):
            continue
        if isinstance(op, nn.GemmOp) and nn.float_of(op.properties, "alpha") != 1.0:
            continue
        weight = op.weight if isinstance(op, nn.Conv2dOp) else op.b
        if sum(1 for _ in weight.uses) == 1 and nn.node_name(op) is not None:
            found.append(op)
    return found


class HessianCollector(Interpreter.Listener):
    """Sums the Hessians of every `candidates` op of a float module while the module is
    interpreted: attached to calibration's interpreter, it needs no run of its own."""

    def __init__(self, module: ModuleOp):
        self.accumulators = {op: _HessianAccumulator(op) for op in candidates(module)}

    def will_interpret_op(self, op: Operation, args: PythonValues) -> None:
        accumulator = self.accumulators.get(op)
        if accumulator is not None:
            accumulator.add(np.asarray(args[0]))

    def round_weights(self, module: ModuleOp, per_channel: bool) -> int:
        """Replace, in `module` (a copy of the observed module: ops are matched by node
        name), the weights of every candidate with enough calibration rows by
        GPTQ-rounded grid values (see the module docstring). Returns how many were
        rounded; the others keep their weights."""
        targets = {nn.node_name(op): op for op in candidates(module)}
        count = 0
        for observed, accumulator in self.accumulators.items():
            op = targets.get(nn.node_name(observed))
            if op is None or accumulator.hessian is None or (
                    accumulator.rows < MIN_ROWS_PER_INPUT * accumulator.hessian.shape[-1]):
                continue
            matrix, axis = _weight_matrix(op)
            scales = qparams.weight_scales(matrix, 0 if per_channel else None)
            scales = np.broadcast_to(scales, (matrix.shape[0],))
            g = accumulator.groups()
            q = gptq(matrix.reshape(g, matrix.shape[0] // g, -1),
                     scales.reshape(g, -1), accumulator.hessian)
            rounded = (q.reshape(matrix.shape) * scales[:, None]).astype(np.float32)
            _replace_weight(op, rounded if axis == 0 else rounded.T)
            count += 1
        return count


def _replace_weight(op: Operation, matrix: np.ndarray) -> None:
    old = op.weight if isinstance(op, nn.Conv2dOp) else op.b
    owner = old.owner
    assert isinstance(owner, nn.ConstantOp)
    new = nn.ConstantOp(matrix.reshape(old.type.get_shape()), nn.node_name(owner))
    Rewriter.insert_op(new, InsertPoint.before(owner))
    old.replace_all_uses_with(new.output)
    Rewriter.erase_op(owner)
