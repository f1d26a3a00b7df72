"""nn-to-rknpu: quantized `nn` ops become `rknpu` tasks; the rest is wrapped in `rknpu.cpu`.

Establishes: the entry function holds no `nn` / `quant` op outside `rknpu.cpu` regions
except `nn.constant`s; every int8 op with a hardware form (and not placed on the CPU by
`rknpu-legalize`, whose `rkc.placement` / `rkc.reason` it honours) is an `rknpu` op with
the same operands, parameters and result type, so the module computes exactly what it
computed before (the rknpu interpreter uses the same integer arithmetic):

    nn.conv2d (group 1 or depthwise; fused relu / clip)   -> rknpu.conv
    nn.add / sub / mul / max / min                         -> rknpu.ew (binary)
    nn.relu / clip, quant.requantize                       -> rknpu.ew (clamp, rescale)
    sigmoid, tanh, silu, hard_swish, ... (int8 tables)     -> rknpu.ew kind lut (256 entries)
    nn.max_pool2d / avg_pool2d / global pools              -> rknpu.pool
    nn.concat on channels with the output's parameters     -> rknpu.concat

Anything else (float or fp16 ops, quantize / dequantize at the graph edges, data movement
that changes the layout) goes into an `rknpu.cpu` op carrying the reason. Run
`rknpu-legalize{target=...}` first so that the chip's limits apply; without it only the
lowering's own coverage is checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import builtin, func
from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from rkc.dialects import nn, quant, rknpu
from rkc.dialects.quant import quantized_element
from rkc.graph import main_function
from rkc.interpreter.quant_impls import TABLE_FUNCTIONS
from rkc.quant import integer_kernels as ik

PLACEMENT_ATTR = "rkc.placement"
REASON_ATTR = "rkc.reason"
BINARY = {nn.AddOp: "add", nn.SubOp: "sub", nn.MulOp: "mul", nn.MaxOp: "max",
          nn.MinOp: "min"}


def _int8(value: SSAValue) -> bool:
    q = quantized_element(value.type)
    return q is not None and q.bits == 8 and q.quantized_axis is None


def _tensor_q(value: SSAValue) -> ik.TensorQ:
    q = quantized_element(value.type)
    assert q is not None
    return ik.TensorQ(q.scale, q.zero_point, q.qmin, q.qmax)


def _activations(op: Operation) -> list[SSAValue]:
    return [v for v in op.operands if nn.constant_value(v) is None]


def obstacle(op: Operation) -> str | None:
    """Why this lowering has no rknpu form for `op` (None when it has one). This is the
    lowering's coverage, not the chip's limits: those are rknpu-legalize's
    (`rkc.lowering.legality`), whose CPU placements the pass honours first."""
    if isinstance(op, quant.QuantizeOp | quant.DequantizeOp):
        return "float <-> int8 conversion at the graph edge runs on the host"
    if not all(_int8(v) for v in (*_activations(op), *op.results)):
        return "not int8 (float and fp16 ops are not lowered yet)"
    if isinstance(op, nn.Conv2dOp):
        group = nn.int_of(op.properties, "group")
        shape = op.weight.type.get_shape()
        if group != 1 and not group == shape[0] == shape[1] * group:
            return f"grouped convolution (group {group}) is neither direct nor depthwise"
        if op.activation is not None and op.activation.data not in ("relu", "clip"):
            return f"fused {op.activation.data} has no output-clamp form"
        if nn.constant_value(op.weight) is None:
            return "the weight is not a constant"
        return None
    if isinstance(op, tuple(BINARY)):
        return None
    if isinstance(op, nn.ReluOp | nn.ClipOp | quant.RequantizeOp):
        return None
    if type(op) in TABLE_FUNCTIONS:
        return None
    if isinstance(op, nn.MaxPool2dOp):
        if nn.ints(op.properties, "dilations") != (1, 1):
            return "the PPU has no dilated pooling"
        return None
    if isinstance(op, nn.AvgPool2dOp | nn.GlobalAvgPoolOp | nn.GlobalMaxPoolOp):
        return None
    if isinstance(op, nn.ConcatOp):
        if nn.int_of(op.properties, "axis") != 1 or len(op.output.type.get_shape()) != 4:
            return "concat is only free along the channels of a 4-D tensor"
        if any(v.type.get_element_type() != op.output.type.get_element_type()
               for v in op.operands):
            return "concat inputs need the output's quantization to be address offsets"
        return None
    return f"{op.name} has no rknpu form"


def _pool_props(op: Operation) -> tuple[str, dict]:
    """(kind, properties) of the rknpu.pool equivalent to a pooling op."""
    if isinstance(op, nn.GlobalAvgPoolOp | nn.GlobalMaxPoolOp):
        h, w = op.operands[0].type.get_shape()[2:]
        kind = "avg" if isinstance(op, nn.GlobalAvgPoolOp) else "max"
        return kind, {"kernel": nn.i64_array((h, w)), "strides": nn.i64_array((1, 1)),
                      "pads": nn.i64_array((0, 0, 0, 0)), "ceil_mode": nn.bool_attr(False),
                      "count_include_pad": nn.bool_attr(False)}
    props = {k: op.properties[k] for k in ("kernel", "strides", "pads", "ceil_mode")}
    if isinstance(op, nn.AvgPool2dOp):
        props["count_include_pad"] = op.properties["count_include_pad"]
        return "avg", props
    props["count_include_pad"] = nn.bool_attr(False)
    return "max", props


def convert(op: Operation) -> Operation:
    """The rknpu op computing what `op` computes (`obstacle(op)` must be None)."""
    name = nn.node_name(op)
    result_type = op.results[0].type
    if isinstance(op, nn.Conv2dOp):
        props = {k: v for k, v in op.properties.items()}
        return rknpu.ConvOp(op.input, op.weight, op.bias, props, result_type, name)
    if isinstance(op, tuple(BINARY)):
        return rknpu.EwOp(list(op.operands), BINARY[type(op)], result_type, name=name)
    if isinstance(op, nn.ReluOp):
        return rknpu.EwOp([op.input], "relu", result_type, name=name)
    if isinstance(op, nn.ClipOp):
        return rknpu.EwOp([op.input], "clip", result_type,
                          params=(op.min.value.data, op.max.value.data), name=name)
    if isinstance(op, quant.RequantizeOp):
        return rknpu.EwOp([op.input], "requantize", result_type, name=name)
    if type(op) in TABLE_FUNCTIONS:
        x = op.operands[0]
        table = ik.build_table(TABLE_FUNCTIONS[type(op)](op), _tensor_q(x),
                               _tensor_q(op.results[0]))
        return rknpu.EwOp([x], "lut", result_type, table=np.asarray(table).tolist(),
                          function=op.name.removeprefix("nn."), name=name)
    if isinstance(op, nn.ConcatOp):
        channels = [v.type.get_shape()[1] for v in op.operands]
        return rknpu.ConcatOp(list(op.operands), channels, result_type, name)
    kind, props = _pool_props(op)
    return rknpu.PoolOp(op.operands[0], kind, props, result_type, name)


def wrap_on_cpu(op: Operation, reason: str) -> rknpu.CpuOp:
    """Move `op` into a new `rknpu.cpu` op (inserted where `op` was) whose block takes
    `op`'s non-constant operands; constants are cloned inside."""
    inputs = _activations(op)
    block = Block(arg_types=[v.type for v in inputs])
    mapping: dict[SSAValue, SSAValue] = dict(zip(inputs, block.args, strict=True))
    body_ops: list[Operation] = []
    for v in op.operands:
        if v not in mapping:  # a constant
            copy = v.owner.clone()
            body_ops.append(copy)
            mapping[v] = copy.results[0]
    wrapper = rknpu.CpuOp(inputs, [r.type for r in op.results], reason, Region(block),
                          nn.node_name(op))
    Rewriter.insert_op(wrapper, InsertPoint.before(op))
    for old, new in zip(op.results, wrapper.results, strict=True):
        old.replace_all_uses_with(new)
    op.detach()
    op.operands = [mapping[v] for v in op.operands]
    block.add_ops([*body_ops, op, rknpu.YieldOp(list(op.results))])
    return wrapper


@dataclass(frozen=True)
class NNToRknpuPass(ModulePass):
    """Lower the entry function's quantized nn ops to rknpu tasks, the rest to rknpu.cpu."""

    name = "nn-to-rknpu"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        fn = main_function(op)
        for inner in list(fn.body.block.ops):
            if isinstance(inner, nn.ConstantOp | func.ReturnOp) or inner.name.startswith(
                    "rknpu."):
                continue
            placed = inner.attributes.get(PLACEMENT_ATTR)
            reason = inner.attributes.get(REASON_ATTR)
            if isinstance(placed, StringAttr) and placed.data == "cpu":
                why = reason.data if isinstance(reason, StringAttr) else "placed on the CPU"
            else:
                why = obstacle(inner)
            if why is not None:
                wrap_on_cpu(inner, why)
                continue
            new = convert(inner)
            Rewriter.replace_op(inner, new)
        for inner in list(fn.body.block.ops):  # constants only the cpu copies used
            if isinstance(inner, nn.ConstantOp) and not inner.results[0].uses:
                Rewriter.erase_op(inner)
        fn.update_function_type()

