"""rknpu-layout: NPU tasks exchange features in the chip's NC1HWC2 layout.

Establishes: every `rknpu.conv`, `rknpu.pool`, `rknpu.ew` and `rknpu.concat` of the entry
function whose operands allow it takes and yields native tensors `[N, C1, H, W, C2]`
with the target's C2 for its element type (int8: RK3588 16, RK3568 8; fp16: 8 and 4);
an [N, C] value is native as [N, C1, 1, 1, C2]. An `rknpu.view` whose input is already
native stays a view of the native tensor (same bytes, `offset` a multiple of C2).
A constant operand of a task (an elementwise or post operand) becomes a native
`nn.constant`, packed at compile time. Conversions appear only where a value crosses
between a task and something else (function arguments and results, `rknpu.cpu` ops, a
view that stays logical), once per value: `rknpu.to_native` before the first task that
reads a logical value, `rknpu.from_native` after a task whose result a non-task reads.
No value is converted there and back. A conv, pool or elementwise op that stays logical
(below) is moved into an `rknpu.cpu` with the reason: every NPU task codegen sees reads
and writes native features. Values are unchanged (the interpreter packs and
unpacks exactly), so the module computes what it computed before.

Stays logical (NCHW / [N, C]): an elementwise op between host ops (no native operand,
no task reading it) whose operands are the result's shape or one repeated value (it runs
on the flat buffers: native, it would only add a conversion in and out); an elementwise
op (or a conv's post operand) whose operands broadcast other than over whole feature
maps (a per-channel vector [n, C, 1, 1] or [n, C] broadcasts correctly in NC1HWC2, a
per-pixel or per-column one does not); a concat whose inputs (all but the last) do not
fill whole C2 blocks; and a view whose input is logical, whose channel offset is not a
multiple of C2, or that no task reads while the host reads its input through another op
or view too (then one conversion of the input serves them all).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import builtin
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from rkc.dialects import nn, rknpu
from rkc.dialects.quant import quantized_element
from rkc.graph import main_function
from rkc.interpreter.rknpu_impls import to_native
from rkc.passes.nn_to_rknpu import wrap_on_cpu
from rkc.targets import Target, get_target

TASKS = (rknpu.ConvOp, rknpu.PoolOp, rknpu.EwOp, rknpu.ConcatOp, rknpu.ViewOp)


def _dtype(t: TensorType) -> str | None:
    q = quantized_element(t)
    if q is not None:
        return "int8" if q.bits == 8 else None
    return "fp16" if nn.numpy_dtype(t.element_type).itemsize == 2 else None


def _shape(v: SSAValue) -> tuple[int, ...]:
    assert isinstance(v.type, TensorType)
    return tuple(v.type.get_shape())


def _per_channel(shape: tuple[int, ...], out: tuple[int, ...]) -> bool:
    """Whether an operand of `shape` reads correctly in NC1HWC2 against `out`: the same
    rank and channels, and the same H x W or 1 x 1."""
    return (len(shape) == len(out) and shape[1] == out[1]
            and (shape[2:] == out[2:] or all(d == 1 for d in shape[2:])))


def _features(op: Operation) -> list[int]:
    """Indices of the operands that are features (not a conv's weight and bias)."""
    if isinstance(op, rknpu.ConvOp):
        first = 3 if op.bias is not None else 2
        return [0, *range(first, len(op.operands))]
    return list(range(len(op.operands)))


def _host_only(view: rknpu.ViewOp) -> bool:
    """Whether no task reads the view."""
    return not any(isinstance(u.operation, TASKS) for u in view.output.uses)


def _flat_between_host_ops(op: rknpu.EwOp, native: dict[SSAValue, SSAValue]) -> bool:
    """An elementwise op that reads no native feature, that no task reads, and whose
    operands are the result's shape or one repeated value: in NC1HWC2 it would cost a
    conversion in and out; it runs on the flat buffers as they are."""
    out = _shape(op.output)
    for v in op.inputs:
        data = nn.constant_value(v)
        if data is None and (v in native or _shape(v) != out):
            return False
        if data is not None and _shape(v) != out and not np.all(data == data.flat[0]):
            return False
    return not any(isinstance(u.operation, TASKS) for u in op.output.uses)


def can_be_native(op: Operation, target: Target, native: dict[SSAValue, SSAValue],
                  ) -> int | None:
    """The C2 `op` would use in native layout, or None when it stays logical."""
    out = op.results[0].type
    if not isinstance(out, TensorType) or len(out.get_shape()) not in (2, 4):
        return None
    dtype = _dtype(out)
    if dtype is None:
        return None
    c2 = target.c2(dtype)
    shape = tuple(out.get_shape())
    if isinstance(op, rknpu.EwOp) and _flat_between_host_ops(op, native):
        return None
    if isinstance(op, rknpu.EwOp | rknpu.ConvOp):
        features = _features(op)[1:] if isinstance(op, rknpu.ConvOp) else _features(op)
        if not all(_per_channel(_shape(op.operands[i]), shape) for i in features):
            return None
    if isinstance(op, rknpu.ConcatOp):
        if any(c % c2 for c in nn.ints(op.properties, "channels")[:-1]):
            return None
    if isinstance(op, rknpu.ViewOp):
        if op.offset.value.data % c2 or op.input not in native:
            return None
        if _host_only(op) and len([u for u in op.input.uses if not isinstance(
                u.operation, TASKS) or (isinstance(u.operation, rknpu.ViewOp)
                                        and _host_only(u.operation))]) >= 2:
            return None  # one conversion of the input serves this and other host reads
    return c2


COMPUTE_TASKS = (rknpu.ConvOp, rknpu.PoolOp, rknpu.EwOp)
"""Tasks that compute (views and concats cost no task and may stay logical)."""


def _logical_reason(op: Operation) -> str:
    """Why `op` stayed logical, for the `rknpu.cpu` it then runs in: the hardware reads
    and writes NC1HWC2 features only."""
    if isinstance(op, rknpu.EwOp) and not any(isinstance(u.operation, TASKS)
                                              for u in op.output.uses):
        why = "an elementwise op between host ops runs on their flat buffers"
    else:
        why = ("its operands broadcast other than per channel, or its result is not a "
               "[N, C] / [N, C, H, W] feature")
    return f"{op.name} stays in NCHW ({why}); NPU tasks read NC1HWC2 features only"


def native_constant(constant: nn.ConstantOp, c2: int) -> nn.ConstantOp:
    """`constant` packed in NC1HWC2 at compile time (padding channels 0)."""
    t = constant.output.type
    assert isinstance(t, TensorType)
    packed = to_native(constant.to_numpy(), c2)
    result_type = (TensorType(t.element_type, packed.shape)
                   if quantized_element(t) is not None else None)
    return nn.ConstantOp(packed, result_type=result_type)


@dataclass(frozen=True)
class RknpuLayoutPass(ModulePass):
    """Put NPU tasks in the target's NC1HWC2 layout with minimal conversions."""

    name = "rknpu-layout"
    target: str = "rk3588"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        target = get_target(self.target)
        block = main_function(op).body.block
        native: dict[SSAValue, SSAValue] = {}  # logical value -> its native twin

        def as_native(value: SSAValue, c2: int, before: Operation) -> SSAValue:
            if value in native and _shape(native[value])[4] == c2:
                return native[value]
            owner = value.owner
            convert = (native_constant(owner, c2) if isinstance(owner, nn.ConstantOp)
                       else rknpu.ToNativeOp(value, c2))
            Rewriter.insert_op(convert, InsertPoint.before(before))
            native[value] = convert.results[0]
            return convert.results[0]

        for task in [o for o in block.ops if isinstance(o, TASKS)]:
            c2 = can_be_native(task, target, native)
            if c2 is None:
                continue
            operands = list(task.operands)
            for i in _features(task):
                operands[i] = as_native(operands[i], c2, task)
            result = task.results[0]
            result_type = TensorType(result.type.element_type,
                                     rknpu.native_shape(result.type.get_shape(), c2))
            logical = _shape(result)
            if isinstance(task, rknpu.ViewOp) and operands[0].type == result_type:
                # a view keeping the native shape ([N, C] <-> [N, C, 1, 1]) is its input
                twin, after = operands[0], task
            else:
                new = type(task).create(operands=operands, result_types=[result_type],
                                        properties=dict(task.properties),
                                        attributes=dict(task.attributes))
                Rewriter.insert_op(new, InsertPoint.before(task))
                twin, after = new.results[0], new
            back = rknpu.FromNativeOp(twin, logical[1], rank=len(logical))
            Rewriter.insert_op(back, InsertPoint.after(after))
            result.replace_all_uses_with(back.output)
            native[back.output] = twin
            Rewriter.erase_op(task)
        for task in [o for o in block.ops if isinstance(o, COMPUTE_TASKS)]:
            if not rknpu.is_native(task.results[0].type):
                wrap_on_cpu(task, _logical_reason(task))
        for conversion in reversed([o for o in block.ops if isinstance(
                o, rknpu.FromNativeOp | rknpu.ToNativeOp | nn.ConstantOp)]):
            if not conversion.results[0].uses:  # and constants only NCHW tasks read
                Rewriter.erase_op(conversion)
