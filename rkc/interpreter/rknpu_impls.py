"""Interpreter functions of the `rknpu` dialect: the hardware's integer arithmetic.

Every task computes with `rkc.quant.integer_kernels`, the module the quantized `nn`
interpreter uses (int8 x int8 -> int64 accumulation, the output converter's 15-bit
multiplier and shift, saturation), so a lowered graph computes exactly what the quantized
`nn` graph computes wherever the lowering keeps the arithmetic (docs/lowering.md).

Native (NC1HWC2) operands are unpacked to NCHW for the arithmetic and results packed
again with zero padding channels. A conv with `rknpu.tiles` is computed tile by tile, each
tile reading only its input rows (halo included) with its own top / bottom padding and
its own output-channel group, then assembled: this is what makes "tiling never changes
a value" checkable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.interpreter import (
    Interpreter,
    InterpreterFunctions,
    PythonValues,
    ReturnedValues,
    impl,
    impl_terminator,
    register_impls,
)
from xdsl.ir import Attribute, Operation, SSAValue

from rkc.dialects import nn, rknpu
from rkc.dialects.quant import quantized_element
from rkc.lowering.tiling import band_rows
from rkc.quant import integer_kernels as ik
from rkc.quant.integer_kernels import TensorQ


class RknpuSemanticsError(Exception):
    """An rknpu op whose types or attributes have no hardware meaning (an internal error
    of the lowering that produced it)."""


def _q(op: Operation, value: SSAValue) -> TensorQ:
    q = quantized_element(value.type)
    if q is None or q.quantized_axis is not None:
        raise RknpuSemanticsError(f"{op.name}: expected a per-tensor quantized value, got "
                                  f"{value.type}")
    return TensorQ(q.scale, q.zero_point, q.qmin, q.qmax)


def _storage(t: Attribute) -> np.dtype:
    return nn.numpy_dtype(t.get_element_type())


def to_nchw(x: np.ndarray, channels: int | None = None) -> np.ndarray:
    """[N, C1, H, W, C2] -> [N, C, H, W] (C defaults to C1 * C2)."""
    n, c1, h, w, c2 = x.shape
    full = x.transpose(0, 1, 4, 2, 3).reshape(n, c1 * c2, h, w)
    return full[:, :channels] if channels is not None else full


def to_native(x: np.ndarray, c2: int) -> np.ndarray:
    """[N, C, H, W] -> [N, ceil(C / C2), H, W, C2], padding channels 0."""
    n, c, h, w = x.shape
    c1 = -(-c // c2)
    padded = np.zeros((n, c1 * c2, h, w), x.dtype)
    padded[:, :c] = x
    return padded.reshape(n, c1, c2, h, w).transpose(0, 1, 3, 4, 2).copy()


def _unpack(value: SSAValue, array: np.ndarray, channels: int | None = None) -> np.ndarray:
    return to_nchw(np.asarray(array), channels) if rknpu.is_native(value.type) else array


def _pack(result: SSAValue, array: np.ndarray) -> np.ndarray:
    t = result.type
    if rknpu.is_native(t):
        array = to_native(array, t.get_shape()[4])
    return np.asarray(array).astype(_storage(t), copy=False)


def _ints(attr) -> tuple[int, ...]:
    return tuple(int(v) for v in attr.get_values())


def _floats(attr) -> tuple[float, ...]:
    return tuple(float(v) for v in attr.get_values()) if attr is not None else ()


def _conv(op: rknpu.ConvOp, args: Sequence[np.ndarray]) -> np.ndarray:
    w = np.asarray(args[1])
    group = op.group.value.data
    x = _unpack(op.input, args[0], w.shape[1] * group)
    bias = np.asarray(args[2]) if op.bias is not None else None
    xq, yq = _q(op, op.input), _q(op, op.output)
    wq = quantized_element(op.weight.type)
    if wq is None or any(wq.zero_points):
        raise RknpuSemanticsError(f"rknpu.conv: weight must be symmetric int8, got "
                                  f"{op.weight.type}")
    scales = np.broadcast_to(np.asarray(wq.scales, np.float64), (w.shape[0],))
    activation = op.activation.data if op.activation is not None else None
    params = _floats(op.activation_params)
    lo, hi = ik.activation_range(activation, params, yq)
    strides, pads, dilations = _ints(op.strides), _ints(op.pads), _ints(op.dilations)
    extent = dilations[0] * (w.shape[2] - 1) + 1
    oh, ow = op.output.type.get_shape()[2:4]
    tiles = rknpu.read_tiles(op) or [(0, oh, 0, w.shape[0], 0)]
    y = np.zeros((x.shape[0], w.shape[0], oh, ow), np.int64)
    for r0, r1, c0, c1, _core in tiles:
        i0, i1, top, bottom = band_rows((r0, r1), x.shape[2], extent, strides[0], pads[0])
        xs = x[:, c0:c1] if group > 1 else x
        band = ik.conv2d(xs[:, :, i0:i1], xq, w[c0:c1], scales[c0:c1],
                         None if bias is None else bias[c0:c1], yq, lo, hi, strides,
                         (top, pads[1], bottom, pads[3]), dilations,
                         c1 - c0 if group > 1 else 1)
        if band.shape[2] != r1 - r0:
            raise RknpuSemanticsError(f"rknpu.conv tile rows {r0}..{r1} produced "
                                      f"{band.shape[2]} rows")
        y[:, c0:c1, r0:r1] = band
    return y


def _ew(op: rknpu.EwOp, args: Sequence[np.ndarray]) -> np.ndarray:
    kind = op.kind.data
    xs = [np.asarray(a) for a in args]
    yq = _q(op, op.output)
    qs = [_q(op, v) for v in op.inputs]
    if kind in ("add", "sub"):
        return ik.add_sub(xs[0], qs[0], xs[1], qs[1], yq, subtract=kind == "sub")
    if kind == "mul":
        return ik.mul(xs[0], qs[0], xs[1], qs[1], yq)
    if kind in ("max", "min"):
        return ik.max_min(xs[0], qs[0], xs[1], qs[1], yq, take_max=kind == "max")
    if kind == "requantize":
        return ik.to_output(xs[0], qs[0], yq)
    if kind in ("relu", "clip"):
        lo, hi = ik.activation_range(kind, _floats(op.params), yq)
        return ik.to_output(xs[0], qs[0], yq, lo, hi)
    assert kind == "lut" and op.table is not None
    table = np.asarray(op.table.get_values(), np.int64)
    return table[np.asarray(xs[0], np.int64) - qs[0].qmin]


def _pool(op: rknpu.PoolOp, args: Sequence[np.ndarray]) -> np.ndarray:
    x = _unpack(op.input, args[0])
    xq, yq = _q(op, op.input), _q(op, op.output)
    kernel, strides, pads = _ints(op.kernel), _ints(op.strides), _ints(op.pads)
    ceil_mode = bool(op.ceil_mode.value.data)
    if op.kind.data == "max":
        return ik.max_pool2d(x, xq, yq, kernel, strides, pads, (1, 1), ceil_mode)
    return ik.avg_pool2d(x, xq, yq, kernel, strides, pads, ceil_mode,
                         bool(op.count_include_pad.value.data))


@register_impls
class RknpuFunctions(InterpreterFunctions):
    """The rknpu ops. `rknpu.cpu` runs its body with the interpreter's other functions."""

    @impl(rknpu.ConvOp)
    def run_conv(self, interp: Interpreter, op: rknpu.ConvOp, args: PythonValues):
        return (_pack(op.output, _conv(op, args)),)

    @impl(rknpu.EwOp)
    def run_ew(self, interp: Interpreter, op: rknpu.EwOp, args: PythonValues):
        # elementwise work is layout-blind: native operands are used as they are
        result = _ew(op, [np.asarray(a) for a in args])
        return (np.asarray(result).astype(_storage(op.output.type), copy=False),)

    @impl(rknpu.PoolOp)
    def run_pool(self, interp: Interpreter, op: rknpu.PoolOp, args: PythonValues):
        return (_pack(op.output, _pool(op, args)),)

    @impl(rknpu.ConcatOp)
    def run_concat(self, interp: Interpreter, op: rknpu.ConcatOp, args: PythonValues):
        channels = _ints(op.channels)
        parts = [_unpack(v, a, c) for v, a, c in zip(op.inputs, args, channels, strict=True)]
        return (_pack(op.output, np.concatenate(parts, axis=1)),)

    @impl(rknpu.ToNativeOp)
    def run_to_native(self, interp: Interpreter, op: rknpu.ToNativeOp, args: PythonValues):
        return (to_native(np.asarray(args[0]), op.c2.value.data),)

    @impl(rknpu.FromNativeOp)
    def run_from_native(self, interp: Interpreter, op: rknpu.FromNativeOp,
                        args: PythonValues):
        return (np.ascontiguousarray(to_nchw(np.asarray(args[0]), op.channels.value.data)),)

    @impl(rknpu.CpuOp)
    def run_cpu(self, interp: Interpreter, op: rknpu.CpuOp, args: PythonValues):
        return interp.run_ssacfg_region(op.body, args, "rknpu.cpu")

    @impl_terminator(rknpu.YieldOp)
    def run_yield(self, interp: Interpreter, op: rknpu.YieldOp, args: PythonValues):
        return ReturnedValues(args), ()
