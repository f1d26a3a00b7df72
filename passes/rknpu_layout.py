"""rknpu-layout: NPU tasks exchange features in the chip's NC1HWC2 layout.

Establishes: every `rknpu.conv`, `rknpu.pool`, `rknpu.ew` and `rknpu.concat` of the entry
function whose operands allow it takes and yields native tensors `[N, C1, H, W, C2]`
with the target's C2 for its element type (RK3588: 16 for int8; RK3568: 8). Conversions
appear only where a value crosses between a task and something else (function arguments
and results, `rknpu.cpu` ops), once per value: `rknpu.to_native` before the first task
that reads an NCHW value, `rknpu.from_native` after a task whose result a non-task reads.
No value is converted there and back. Values are unchanged (the interpreter packs and
unpacks exactly), so the module computes what it computed before.

Stays NCHW: an elementwise op whose operands broadcast other than over whole feature maps
(a per-channel vector or a scalar tensor broadcasts correctly in NC1HWC2, a per-pixel one
does not), and a concat whose inputs (all but the last) do not fill whole C2 blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import builtin
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from rkc.dialects import nn, rknpu
from rkc.dialects.quant import quantized_element
from rkc.graph import main_function
from rkc.targets import Target, get_target

TASKS = (rknpu.ConvOp, rknpu.PoolOp, rknpu.EwOp, rknpu.ConcatOp)


def _dtype(t: TensorType) -> str | None:
    q = quantized_element(t)
    if q is not None:
        return "int8" if q.bits == 8 else None
    return "fp16" if nn.numpy_dtype(t.element_type).itemsize == 2 else None


def _shape(v: SSAValue) -> tuple[int, ...]:
    assert isinstance(v.type, TensorType)
    return tuple(v.type.get_shape())


def can_be_native(op: Operation, target: Target) -> int | None:
    """The C2 `op` would use in native layout, or None when it must stay NCHW."""
    out = op.results[0].type
    if not isinstance(out, TensorType) or len(out.get_shape()) != 4:
        return None
    dtype = _dtype(out)
    if dtype is None:
        return None
    c2 = target.c2(dtype)
    if isinstance(op, rknpu.EwOp):
        n, c, h, w = out.get_shape()
        for v in op.inputs:
            s = _shape(v)
            if len(s) != 4 or s[1] != c or (s[2:] != (h, w) and s[2:] != (1, 1)):
                return None
    if isinstance(op, rknpu.ConcatOp):
        if any(c % c2 for c in nn.ints(op.properties, "channels")[:-1]):
            return None
    return c2


def _activations(op: Operation) -> list[int]:
    """Indices of the operands that are features (not the conv's weight and bias)."""
    return [0] if isinstance(op, rknpu.ConvOp) else list(range(len(op.operands)))


@dataclass(frozen=True)
class RknpuLayoutPass(ModulePass):
    """Put NPU tasks in the target's NC1HWC2 layout with minimal conversions."""

    name = "rknpu-layout"
    target: str = "rk3588"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        target = get_target(self.target)
        block = main_function(op).body.block
        native: dict[SSAValue, SSAValue] = {}  # NCHW value -> its native twin

        def as_native(value: SSAValue, c2: int, before: Operation) -> SSAValue:
            if value in native and _shape(native[value])[4] == c2:
                return native[value]
            convert = rknpu.ToNativeOp(value, c2)
            Rewriter.insert_op(convert, InsertPoint.before(before))
            native[value] = convert.output
            return convert.output

        for task in [o for o in block.ops if isinstance(o, TASKS)]:
            c2 = can_be_native(task, target)
            if c2 is None:
                continue
            operands = list(task.operands)
            for i in _activations(task):
                operands[i] = as_native(operands[i], c2, task)
            result = task.results[0]
            result_type = TensorType(result.type.element_type,
                                     rknpu.native_shape(result.type.get_shape(), c2))
            new = type(task).create(operands=operands, result_types=[result_type],
                                    properties=dict(task.properties),
                                    attributes=dict(task.attributes))
            Rewriter.insert_op(new, InsertPoint.before(task))
            back = rknpu.FromNativeOp(new.results[0], _shape(result)[1])
            Rewriter.insert_op(back, InsertPoint.after(new))
            result.replace_all_uses_with(back.output)
            native[back.output] = new.results[0]
            Rewriter.erase_op(task)
        for conversion in [o for o in block.ops
                           if isinstance(o, rknpu.FromNativeOp | rknpu.ToNativeOp)]:
            if not conversion.results[0].uses:
                Rewriter.erase_op(conversion)
