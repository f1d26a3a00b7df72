"""Float reference semantics of the `nn` dialect on xDSL's interpreter.

Each `@impl` unpacks the op's properties and calls a numpy kernel from `kernels`; the
kernels hold the arithmetic, this module only binds ops to them.
"""

from __future__ import annotations

import numpy as np
from xdsl.interpreter import Interpreter, InterpreterFunctions, PythonValues, impl, register_impls
from xdsl.ir import Operation

from rkc.dialects import nn
from rkc.interpreter import kernels as k


def apply_activation(y: np.ndarray, activation: str | None,
                     params: tuple[float, ...]) -> np.ndarray:
    """The fused activation of a conv2d / gemm, with the same kernels as the unfused ops."""
    match activation:
        case None:
            return y
        case "relu":
            return k.relu(y)
        case "clip":
            return k.clip(y, params[0], params[1])
        case "leaky_relu":
            return k.leaky_relu(y, params[0])
        case "sigmoid":
            return k.sigmoid(y)
        case "silu":
            return k.silu(y)
        case "hard_swish":
            return k.hard_swish(y)
        case "tanh":
            return k.tanh(y)
    raise ValueError(f"unknown fused activation {activation}")


def _activation(op: nn.Conv2dOp | nn.GemmOp) -> tuple[str | None, tuple[float, ...]]:
    if op.activation is None:
        return None, ()
    params = op.activation_params.get_values() if op.activation_params is not None else ()
    return op.activation.data, tuple(params)


def _declared(op: Operation, *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """The results in the dtypes the op declares: the kernels compute float16 ops in
    float32, and this rounds them back."""
    out = []
    for value, result in zip(values, op.results, strict=True):
        dtype = nn.numpy_dtype(result.type.get_element_type())
        out.append(value if value.dtype == dtype else value.astype(dtype))
    return tuple(out)


def _ints(attr) -> tuple[int, ...]:
    return tuple(int(v) for v in attr.get_values())


@register_impls
class NNFunctions(InterpreterFunctions):
    """numpy implementations of every `nn` op."""

    @impl(nn.ConstantOp)
    def run_constant(self, interp: Interpreter, op: nn.ConstantOp, args: PythonValues):
        return _declared(op, op.to_numpy())

    @impl(nn.Conv2dOp)
    def run_conv2d(self, interp: Interpreter, op: nn.Conv2dOp, args: PythonValues):
        x, w, *bias = args
        y = k.conv2d(x, w, bias[0] if bias else None, _ints(op.strides), _ints(op.pads),
                     _ints(op.dilations), op.group.value.data)
        return _declared(op, apply_activation(y, *_activation(op)))

    @impl(nn.ConvTranspose2dOp)
    def run_conv_transpose2d(self, interp: Interpreter, op: nn.ConvTranspose2dOp,
                             args: PythonValues):
        x, w, *bias = args
        return _declared(op, k.conv_transpose2d(x, w, bias[0] if bias else None, _ints(op.strides),
                                   _ints(op.pads), _ints(op.dilations), op.group.value.data,
                                   _ints(op.output_padding)))

    @impl(nn.MatmulOp)
    def run_matmul(self, interp: Interpreter, op: nn.MatmulOp, args: PythonValues):
        return _declared(op, k.matmul(*args))

    @impl(nn.GemmOp)
    def run_gemm(self, interp: Interpreter, op: nn.GemmOp, args: PythonValues):
        a, b, *c = args
        y = k.gemm(a, b, c[0] if c else None, op.alpha.value.data, op.beta.value.data,
                   bool(op.trans_a.value.data), bool(op.trans_b.value.data))
        return _declared(op, apply_activation(y, *_activation(op)))

    # binary elementwise
    @impl(nn.AddOp)
    def run_add(self, interp: Interpreter, op: nn.AddOp, args: PythonValues):
        return _declared(op, k.add(*args))

    @impl(nn.SubOp)
    def run_sub(self, interp: Interpreter, op: nn.SubOp, args: PythonValues):
        return _declared(op, k.sub(*args))

    @impl(nn.MulOp)
    def run_mul(self, interp: Interpreter, op: nn.MulOp, args: PythonValues):
        return _declared(op, k.mul(*args))

    @impl(nn.DivOp)
    def run_div(self, interp: Interpreter, op: nn.DivOp, args: PythonValues):
        return _declared(op, k.div(*args))

    @impl(nn.MaxOp)
    def run_max(self, interp: Interpreter, op: nn.MaxOp, args: PythonValues):
        return _declared(op, k.maximum(*args))

    @impl(nn.MinOp)
    def run_min(self, interp: Interpreter, op: nn.MinOp, args: PythonValues):
        return _declared(op, k.minimum(*args))

    @impl(nn.PowOp)
    def run_pow(self, interp: Interpreter, op: nn.PowOp, args: PythonValues):
        return _declared(op, k.pow(*args))

    # unary elementwise
    @impl(nn.ReluOp)
    def run_relu(self, interp: Interpreter, op: nn.ReluOp, args: PythonValues):
        return _declared(op, k.relu(args[0]))

    @impl(nn.SigmoidOp)
    def run_sigmoid(self, interp: Interpreter, op: nn.SigmoidOp, args: PythonValues):
        return _declared(op, k.sigmoid(args[0]))

    @impl(nn.TanhOp)
    def run_tanh(self, interp: Interpreter, op: nn.TanhOp, args: PythonValues):
        return _declared(op, k.tanh(args[0]))

    @impl(nn.ExpOp)
    def run_exp(self, interp: Interpreter, op: nn.ExpOp, args: PythonValues):
        return _declared(op, k.exp(args[0]))

    @impl(nn.LogOp)
    def run_log(self, interp: Interpreter, op: nn.LogOp, args: PythonValues):
        return _declared(op, k.log(args[0]))

    @impl(nn.SqrtOp)
    def run_sqrt(self, interp: Interpreter, op: nn.SqrtOp, args: PythonValues):
        return _declared(op, k.sqrt(args[0]))

    @impl(nn.AbsOp)
    def run_abs(self, interp: Interpreter, op: nn.AbsOp, args: PythonValues):
        return _declared(op, k.abs(args[0]))

    @impl(nn.NegOp)
    def run_neg(self, interp: Interpreter, op: nn.NegOp, args: PythonValues):
        return _declared(op, k.neg(args[0]))

    @impl(nn.ErfOp)
    def run_erf(self, interp: Interpreter, op: nn.ErfOp, args: PythonValues):
        return _declared(op, k.erf(args[0]))

    @impl(nn.SiluOp)
    def run_silu(self, interp: Interpreter, op: nn.SiluOp, args: PythonValues):
        return _declared(op, k.silu(args[0]))

    @impl(nn.HardSwishOp)
    def run_hard_swish(self, interp: Interpreter, op: nn.HardSwishOp, args: PythonValues):
        return _declared(op, k.hard_swish(args[0]))

    @impl(nn.GeluOp)
    def run_gelu(self, interp: Interpreter, op: nn.GeluOp, args: PythonValues):
        return _declared(op, k.gelu(args[0], op.approximate.data))

    @impl(nn.LeakyReluOp)
    def run_leaky_relu(self, interp: Interpreter, op: nn.LeakyReluOp, args: PythonValues):
        return _declared(op, k.leaky_relu(args[0], op.alpha.value.data))

    @impl(nn.HardSigmoidOp)
    def run_hard_sigmoid(self, interp: Interpreter, op: nn.HardSigmoidOp, args: PythonValues):
        return _declared(op, k.hard_sigmoid(args[0], op.alpha.value.data, op.beta.value.data))

    @impl(nn.ClipOp)
    def run_clip(self, interp: Interpreter, op: nn.ClipOp, args: PythonValues):
        return _declared(op, k.clip(args[0], op.min.value.data, op.max.value.data))

    @impl(nn.PReluOp)
    def run_prelu(self, interp: Interpreter, op: nn.PReluOp, args: PythonValues):
        return _declared(op, k.prelu(*args))

    # normalisation
    @impl(nn.SoftmaxOp)
    def run_softmax(self, interp: Interpreter, op: nn.SoftmaxOp, args: PythonValues):
        return _declared(op, k.softmax(args[0], op.axis.value.data))

    @impl(nn.BatchNormOp)
    def run_batch_norm(self, interp: Interpreter, op: nn.BatchNormOp, args: PythonValues):
        return _declared(op, k.batch_norm(*args, op.epsilon.value.data))

    @impl(nn.LayerNormOp)
    def run_layer_norm(self, interp: Interpreter, op: nn.LayerNormOp, args: PythonValues):
        x, scale, *bias = args
        return _declared(op, k.layer_norm(x, scale, bias[0] if bias else None, op.axis.value.data,
                             op.epsilon.value.data))

    # pooling and reductions
    @impl(nn.MaxPool2dOp)
    def run_max_pool2d(self, interp: Interpreter, op: nn.MaxPool2dOp, args: PythonValues):
        y = k.max_pool2d(args[0], _ints(op.kernel), _ints(op.strides), _ints(op.pads),
                         _ints(op.dilations), bool(op.ceil_mode.value.data))
        return _declared(op, y)

    @impl(nn.AvgPool2dOp)
    def run_avg_pool2d(self, interp: Interpreter, op: nn.AvgPool2dOp, args: PythonValues):
        y = k.avg_pool2d(args[0], _ints(op.kernel), _ints(op.strides), _ints(op.pads),
                         bool(op.ceil_mode.value.data), bool(op.count_include_pad.value.data))
        return _declared(op, y)

    @impl(nn.GlobalAvgPoolOp)
    def run_global_avg_pool(self, interp: Interpreter, op: nn.GlobalAvgPoolOp,
                            args: PythonValues):
        return _declared(op, k.global_avg_pool(args[0]))

    @impl(nn.GlobalMaxPoolOp)
    def run_global_max_pool(self, interp: Interpreter, op: nn.GlobalMaxPoolOp,
                            args: PythonValues):
        return _declared(op, k.global_max_pool(args[0]))

    @impl(nn.ReduceMeanOp)
    def run_reduce_mean(self, interp: Interpreter, op: nn.ReduceMeanOp, args: PythonValues):
        return _declared(op, k.reduce_mean(args[0], _ints(op.axes), bool(op.keepdims.value.data)))

    @impl(nn.ReduceMaxOp)
    def run_reduce_max(self, interp: Interpreter, op: nn.ReduceMaxOp, args: PythonValues):
        return _declared(op, k.reduce_max(args[0], _ints(op.axes), bool(op.keepdims.value.data)))

    @impl(nn.ReduceSumOp)
    def run_reduce_sum(self, interp: Interpreter, op: nn.ReduceSumOp, args: PythonValues):
        return _declared(op, k.reduce_sum(args[0], _ints(op.axes), bool(op.keepdims.value.data)))

    @impl(nn.ArgMaxOp)
    def run_argmax(self, interp: Interpreter, op: nn.ArgMaxOp, args: PythonValues):
        return _declared(op, k.argmax(args[0], op.axis.value.data, bool(op.keepdims.value.data),
                         bool(op.select_last_index.value.data)))

    # data movement
    @impl(nn.ConcatOp)
    def run_concat(self, interp: Interpreter, op: nn.ConcatOp, args: PythonValues):
        return _declared(op, k.concat(list(args), op.axis.value.data))

    @impl(nn.SplitOp)
    def run_split(self, interp: Interpreter, op: nn.SplitOp, args: PythonValues):
        return _declared(op, *k.split(args[0], op.axis.value.data, _ints(op.sizes)))

    @impl(nn.SliceOp)
    def run_slice(self, interp: Interpreter, op: nn.SliceOp, args: PythonValues):
        return _declared(op, k.slice(args[0], _ints(op.starts), _ints(op.ends), _ints(op.steps)))

    @impl(nn.ReshapeOp)
    def run_reshape(self, interp: Interpreter, op: nn.ReshapeOp, args: PythonValues):
        return _declared(op, k.reshape(args[0], _ints(op.shape)))

    @impl(nn.TransposeOp)
    def run_transpose(self, interp: Interpreter, op: nn.TransposeOp, args: PythonValues):
        return _declared(op, k.transpose(args[0], _ints(op.perm)))

    @impl(nn.PadOp)
    def run_pad(self, interp: Interpreter, op: nn.PadOp, args: PythonValues):
        return _declared(op, k.pad(args[0], _ints(op.pads), op.mode.data, op.value.value.data))

    @impl(nn.ResizeOp)
    def run_resize(self, interp: Interpreter, op: nn.ResizeOp, args: PythonValues):
        return _declared(op, k.resize(args[0], _ints(op.sizes), tuple(op.scales.get_values()),
                         op.mode.data, op.coordinate_transformation_mode.data,
                         op.nearest_mode.data))

    @impl(nn.CastOp)
    def run_cast(self, interp: Interpreter, op: nn.CastOp, args: PythonValues):
        return _declared(op, k.cast(args[0], nn.numpy_dtype(op.to)))
