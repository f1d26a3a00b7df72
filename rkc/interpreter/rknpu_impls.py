"""Interpreter functions of the `rknpu` dialect: the hardware's integer arithmetic.

Every int8 task computes with `rkc.quant.integer_kernels`, the module the quantized `nn`
interpreter uses (int8 x int8 -> int64 accumulation, the output converter's 15-bit
multiplier and shift, saturation), so a lowered graph computes exactly what the quantized
`nn` graph computes wherever the lowering keeps the arithmetic (docs/lowering.md). Every
fp16 task computes with the float kernels of the `nn` reference
(`rkc.interpreter.kernels`, as `nn_impls` calls them) and rounds to f16 where the `nn` op
rounds, so fp16 is exact too; `fp16_sum` picks between the references whose sums differ
(`rkc.dialects.rknpu`).

Native (NC1HWC2) operands are unpacked to NCHW for convs, pools and concats and their
results packed again with zero padding channels; elementwise work and a conv's post ops
run on native arrays as they are (padding maps to padding); a view slices and reshapes
the stored array, as the hardware reads the same bytes. A conv with `rknpu.tiles` is
computed tile by tile, each tile reading only its input rows (halo included) with its
own top / bottom padding and its own output-channel group, then assembled: this is what
makes "tiling never changes a value" checkable (exactly for int8; for fp16, numpy's
float32 matrix product may sum a smaller tile in another order). A conv's `post_ops` run
after the conv, stage by stage, each as the `rknpu.ew` of its kind with the types of the
unfused ops, so a fused conv computes exactly what the unfused ops computed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import TensorType, f16
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
from rkc.interpreter import kernels as k
from rkc.interpreter.nn_impls import apply_activation
from rkc.lowering.tiling import band_rows
from rkc.quant import integer_kernels as ik
from rkc.quant.integer_kernels import TensorQ


class RknpuSemanticsError(Exception):
    """An rknpu op whose types or attributes have no hardware meaning (an internal error
    of the lowering that produced it)."""


def _element_q(op: Operation, element: Attribute) -> TensorQ:
    q = quantized_element(TensorType(element, [1]))
    if q is None or q.quantized_axis is not None:
        raise RknpuSemanticsError(f"{op.name}: expected a per-tensor quantized value, got "
                                  f"{element}")
    return TensorQ(q.scale, q.zero_point, q.qmin, q.qmax)


def _q(op: Operation, value: SSAValue) -> TensorQ:
    assert isinstance(value.type, TensorType)
    return _element_q(op, value.type.element_type)


def _storage(t: Attribute) -> np.dtype:
    return nn.numpy_dtype(t.get_element_type())


def _element_dtype(element: Attribute) -> np.dtype:
    return nn.numpy_dtype(TensorType(element, [1]).get_element_type())


def _is_f16(element: Attribute) -> bool:
    return element == f16


def to_nchw(x: np.ndarray, channels: int | None = None) -> np.ndarray:
    """[N, C1, H, W, C2] -> [N, C, H, W] (C defaults to C1 * C2)."""
    n, c1, h, w, c2 = x.shape
    full = x.transpose(0, 1, 4, 2, 3).reshape(n, c1 * c2, h, w)
    return full[:, :channels] if channels is not None else full


def to_native(x: np.ndarray, c2: int) -> np.ndarray:
    """[N, C, H, W] (or [N, C]) -> [N, ceil(C / C2), H, W, C2], padding channels 0."""
    if x.ndim == 2:
        x = x.reshape(*x.shape, 1, 1)
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


# ---------------------------------------------------------------------------
# elementwise stages (rknpu.ew, and a conv's post ops)
# ---------------------------------------------------------------------------
_F16_BINARY = {"add": k.add, "sub": k.sub, "mul": k.mul, "max": k.maximum,
               "min": k.minimum, "prelu": k.prelu}
_F16_UNARY = {"relu": k.relu, "abs": k.abs, "neg": k.neg}


def _f16_stage(op: Operation, kind: str, xs: Sequence[np.ndarray],
               params: Sequence[float]) -> np.ndarray:
    """An fp16 stage: the float kernel of the nn op, rounded to f16 (nn_impls' calls)."""
    if kind in _F16_BINARY:
        y = _F16_BINARY[kind](xs[0], xs[1])
    elif kind in _F16_UNARY:
        y = _F16_UNARY[kind](xs[0])
    elif kind == "clip":
        y = k.clip(xs[0], params[0], params[1])
    elif kind == "leaky_relu":
        y = k.leaky_relu(xs[0], params[0])
    else:
        raise RknpuSemanticsError(f"{op.name}: {kind} has no fp16 form (int8 only)")
    return np.asarray(y).astype(np.float16, copy=False)


def _int8_stage(op: Operation, kind: str, xs: Sequence[np.ndarray], qs: Sequence[TensorQ],
                yq: TensorQ, params: Sequence[float], table: Sequence[int] | None,
                ) -> np.ndarray:
    """An int8 stage: the integer semantics of the quantized nn op (integer_kernels)."""
    if kind in ("add", "sub"):
        return ik.add_sub(xs[0], qs[0], xs[1], qs[1], yq, subtract=kind == "sub")
    if kind == "mul":
        return ik.mul(xs[0], qs[0], xs[1], qs[1], yq)
    if kind in ("max", "min"):
        return ik.max_min(xs[0], qs[0], xs[1], qs[1], yq, take_max=kind == "max")
    if kind == "requantize":
        return ik.requantize_to(xs[0], qs[0], yq)
    if kind in ("relu", "clip"):
        lo, hi = ik.activation_range(kind, params, yq)
        return ik.to_output(xs[0], qs[0], yq, lo, hi)
    if kind == "lut":
        assert table is not None
        return np.asarray(table, np.int64)[np.asarray(xs[0], np.int64) - qs[0].qmin]
    raise RknpuSemanticsError(f"{op.name}: int8 {kind} has no integer semantics (int8 "
                              f"leaky_relu / abs / neg are lut stages)")


def ew_stage(op: Operation, kind: str, xs: Sequence[np.ndarray],
             elements: Sequence[Attribute], result: Attribute, params: Sequence[float] = (),
             table: Sequence[int] | None = None) -> np.ndarray:
    """One elementwise stage on stored values `xs` of element types `elements`, giving
    element type `result` (in its storage dtype)."""
    xs = [np.asarray(x) for x in xs]
    if _is_f16(result):
        if not all(_is_f16(e) for e in elements):
            raise RknpuSemanticsError(f"{op.name}: {kind} mixes f16 with {list(elements)}")
        return _f16_stage(op, kind, xs, params)
    yq = _element_q(op, result)
    qs = [_element_q(op, e) for e in elements]
    y = _int8_stage(op, kind, xs, qs, yq, params, table)
    return np.asarray(y).astype(_element_dtype(result), copy=False)


def _ew(op: rknpu.EwOp, args: Sequence[np.ndarray]) -> np.ndarray:
    table = op.table.get_values() if op.table is not None else None
    return ew_stage(op, op.kind.data, args, [v.type.element_type for v in op.inputs],
                    op.output.type.element_type, _floats(op.params), table)


# ---------------------------------------------------------------------------
# convolution
# ---------------------------------------------------------------------------
def conv_element(op: rknpu.ConvOp) -> Attribute:
    """The element type of the conv stage's own result (before any post op)."""
    stages = rknpu.read_post_ops(op)
    return stages[0].input if stages else op.output.type.element_type


def _half_matmul_conv(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None,
                      strides: Sequence[int], pads: Sequence[int],
                      dilations: Sequence[int]) -> np.ndarray:
    """fp16_sum = "sequential": numpy's half matrix product of the im2col matrix (float
    sums channel by channel, one rounding to f16), then the bias added in f16: what
    nn.gemm / nn.matmul's reference computes."""
    x, w = np.asarray(x, np.float16), np.asarray(w, np.float16)
    o, c, kh, kw = w.shape
    patches = k.conv_patches(x, 1, (kh, kw), strides, pads, dilations)
    n, _, oh, ow = patches.shape[:4]
    cols = patches.reshape(n, oh * ow, 1, c * kh * kw)
    y = np.matmul(cols, w.reshape(o, c * kh * kw).T)  # [N, OH*OW, 1, O]
    y = y.reshape(n, oh, ow, o).transpose(0, 3, 1, 2)
    if bias is not None:
        y = y + np.asarray(bias, np.float16).reshape(1, o, 1, 1)
    return y


def _conv_f16(op: rknpu.ConvOp, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None,
              pads: Sequence[int], group: int) -> np.ndarray:
    strides, dilations = _ints(op.strides), _ints(op.dilations)
    if op.fp16_sum is not None:
        if group != 1:
            raise RknpuSemanticsError("rknpu.conv: fp16_sum sequential needs group 1")
        y = _half_matmul_conv(x, w, bias, strides, pads, dilations)
    else:
        y = k.conv2d(x, w, bias, strides, pads, dilations, group)
    activation = op.activation.data if op.activation is not None else None
    y = apply_activation(y, activation, _floats(op.activation_params))
    return np.asarray(y).astype(np.float16, copy=False)


def _conv(op: rknpu.ConvOp, args: Sequence[np.ndarray]) -> np.ndarray:
    """The conv stage (before any post op), NCHW: int64 values of `conv_element(op)`
    for int8, f16 for fp16."""
    w = np.asarray(args[1])
    group = op.group.value.data
    x = _unpack(op.input, args[0], w.shape[1] * group)
    bias = np.asarray(args[2]) if op.bias is not None else None
    element = conv_element(op)
    fp16 = _is_f16(element)
    if fp16:
        if not (_is_f16(op.input.type.element_type) and w.dtype == np.float16):
            raise RknpuSemanticsError(f"rknpu.conv: an f16 result needs f16 input and "
                                      f"weight, got {op.input.type}, {op.weight.type}")
    else:
        xq, yq = _q(op, op.input), _element_q(op, element)
        wq = quantized_element(op.weight.type)
        if wq is None or any(wq.zero_points):
            raise RknpuSemanticsError(f"rknpu.conv: weight must be symmetric int8, got "
                                      f"{op.weight.type}")
        scales = np.broadcast_to(np.asarray(wq.scales, np.float64), (w.shape[0],))
        activation = op.activation.data if op.activation is not None else None
        lo, hi = ik.activation_range(activation, _floats(op.activation_params), yq)
    strides, pads, dilations = _ints(op.strides), _ints(op.pads), _ints(op.dilations)
    extent = dilations[0] * (w.shape[2] - 1) + 1
    oh, ow = op.output.type.get_shape()[2:4]
    tiles = rknpu.read_tiles(op) or [(0, oh, 0, w.shape[0], 0)]
    y = np.zeros((x.shape[0], w.shape[0], oh, ow), np.float16 if fp16 else np.int64)
    for r0, r1, c0, c1, _core in tiles:
        i0, i1, top, bottom = band_rows((r0, r1), x.shape[2], extent, strides[0], pads[0])
        xs = x[:, c0:c1] if group > 1 else x
        band_pads = (top, pads[1], bottom, pads[3])
        groups = c1 - c0 if group > 1 else 1
        part_bias = None if bias is None else bias[c0:c1]
        if fp16:
            band = _conv_f16(op, xs[:, :, i0:i1], w[c0:c1], part_bias, band_pads, groups)
        else:
            band = ik.conv2d(xs[:, :, i0:i1], xq, w[c0:c1], scales[c0:c1], part_bias, yq,
                             lo, hi, strides, band_pads, dilations, groups)
        if band.shape[2] != r1 - r0:
            raise RknpuSemanticsError(f"rknpu.conv tile rows {r0}..{r1} produced "
                                      f"{band.shape[2]} rows")
        y[:, c0:c1, r0:r1] = band
    return y


def _fused_conv(op: rknpu.ConvOp, args: Sequence[np.ndarray]) -> np.ndarray:
    """The conv stage, then each post op on the (native, if the result is) array."""
    element = conv_element(op)
    y = _conv(op, args).astype(_element_dtype(element), copy=False)
    if rknpu.is_native(op.output.type):
        y = to_native(y, op.output.type.get_shape()[4])
    stages = rknpu.read_post_ops(op)
    extra = args[3 if op.bias is not None else 2:]
    for i, stage in enumerate(stages):
        result = (stages[i + 1].input if i + 1 < len(stages)
                  else op.output.type.element_type)
        xs, elements = [y], [stage.input]
        if stage.operand is not None:
            other = op.post_operands[stage.operand]
            xs.append(np.asarray(extra[stage.operand]))
            elements.append(other.type.element_type)
            if stage.reversed:
                xs.reverse()
                elements.reverse()
        y = ew_stage(op, stage.kind, xs, elements, result, stage.params, stage.table)
        if y.shape != tuple(op.output.type.get_shape()):
            raise RknpuSemanticsError(f"rknpu.conv post op {stage.kind} gave shape "
                                      f"{list(y.shape)}")
    return np.asarray(y).astype(_storage(op.output.type), copy=False)


# ---------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------
def _pool(op: rknpu.PoolOp, args: Sequence[np.ndarray]) -> np.ndarray:
    x = _unpack(op.input, args[0])
    kernel, strides, pads = _ints(op.kernel), _ints(op.strides), _ints(op.pads)
    ceil_mode = bool(op.ceil_mode.value.data)
    if _is_f16(op.output.type.element_type):
        if op.kind.data == "max":
            return k.max_pool2d(x, kernel, strides, pads, (1, 1), ceil_mode)
        if op.fp16_sum is not None:
            if kernel != tuple(x.shape[2:]) or any(pads):
                raise RknpuSemanticsError("rknpu.pool: a float64 mean needs one window "
                                          "over the whole unpadded input")
            return k.global_avg_pool(x)
        return k.avg_pool2d(x, kernel, strides, pads, ceil_mode,
                            bool(op.count_include_pad.value.data))
    xq, yq = _q(op, op.input), _q(op, op.output)
    if op.kind.data == "max":
        return ik.max_pool2d(x, xq, yq, kernel, strides, pads, (1, 1), ceil_mode)
    return ik.avg_pool2d(x, xq, yq, kernel, strides, pads, ceil_mode,
                         bool(op.count_include_pad.value.data))


def _view(op: rknpu.ViewOp, x: np.ndarray) -> np.ndarray:
    """The same stored values: a channel window (whole blocks when native), reshaped."""
    offset = op.offset.value.data
    out = tuple(op.output.type.get_shape())
    if rknpu.is_native(op.input.type):
        c2 = op.input.type.get_shape()[4]
        return x[:, offset // c2: offset // c2 + out[1]].reshape(out)
    channels = rknpu.as_nchw_shape(out)[1]
    return x[:, offset: offset + channels].reshape(out)


@register_impls
class RknpuFunctions(InterpreterFunctions):
    """The rknpu ops. `rknpu.cpu` runs its body with the interpreter's other functions."""

    @impl(rknpu.ConvOp)
    def run_conv(self, interp: Interpreter, op: rknpu.ConvOp, args: PythonValues):
        if op.post_operands or rknpu.read_post_ops(op):
            return (_fused_conv(op, [np.asarray(a) for a in args]),)
        return (_pack(op.output, _conv(op, args)),)

    @impl(rknpu.EwOp)
    def run_ew(self, interp: Interpreter, op: rknpu.EwOp, args: PythonValues):
        # elementwise work is layout-blind: native operands are used as they are
        return (_ew(op, [np.asarray(a) for a in args]),)

    @impl(rknpu.PoolOp)
    def run_pool(self, interp: Interpreter, op: rknpu.PoolOp, args: PythonValues):
        return (_pack(op.output, _pool(op, args)),)

    @impl(rknpu.ConcatOp)
    def run_concat(self, interp: Interpreter, op: rknpu.ConcatOp, args: PythonValues):
        channels = _ints(op.channels)
        parts = [_unpack(v, a, c) for v, a, c in zip(op.inputs, args, channels, strict=True)]
        return (_pack(op.output, np.concatenate(parts, axis=1)),)

    @impl(rknpu.ViewOp)
    def run_view(self, interp: Interpreter, op: rknpu.ViewOp, args: PythonValues):
        return (np.ascontiguousarray(_view(op, np.asarray(args[0]))),)

    @impl(rknpu.ToNativeOp)
    def run_to_native(self, interp: Interpreter, op: rknpu.ToNativeOp, args: PythonValues):
        return (to_native(np.asarray(args[0]), op.c2.value.data),)

    @impl(rknpu.FromNativeOp)
    def run_from_native(self, interp: Interpreter, op: rknpu.FromNativeOp,
                        args: PythonValues):
        y = to_nchw(np.asarray(args[0]), op.channels.value.data)
        return (np.ascontiguousarray(y.reshape(op.output.type.get_shape())),)

    @impl(rknpu.CpuOp)
    def run_cpu(self, interp: Interpreter, op: rknpu.CpuOp, args: PythonValues):
        return interp.run_ssacfg_region(op.body, args, "rknpu.cpu")

    @impl_terminator(rknpu.YieldOp)
    def run_yield(self, interp: Interpreter, op: rknpu.YieldOp, args: PythonValues):
        return ReturnedValues(args), ()
