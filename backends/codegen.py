"""From a lowered `rknpu` module to a `Program`: task descriptions, emission, linking.

`compile_program(lowered, chip)` takes a module `rkc.lowering.pipeline.lower` returned for
`chip` and walks its function in order:

* `rknpu.conv`: one `ConvTask` per image and tile (`rknpu.tiles`, else one), features
  from the DRAM plan (`rknpu.dram` offsets in the feature arena, NC1HWC2 strides of
  `rkc.lowering.dram.storage_of`, image i `Storage.image_bytes * i` further), packed
  weights and the DPU stream written into the weight arena at the conv's `rknpu.weights`
  offsets (`rkc.backends.weights`; the stream in the exact form when
  `rkc.lowering.dram.uses_exact_stream` says so, the plan's size), requantization
  `rkc.quant.requant.multipliers(s_x * s_w[o] / s_y)` and the clamp of
  `rkc.quant.integer_kernels.activation_range` (the interpreter's numbers), fused post
  ops as DPU stages (`post_op_stages`), CBUF banks from `rknpu.cbuf`;
* `rknpu.pool`: one `PoolTask` per image (max pooling of one quantization; fp16 max /
  average); int8 average pools arrive as depthwise convs (`nn-to-rknpu`);
* `rknpu.ew`: one `EwTask` per image (binary ops, requantize, clamps, lut, fp16
  leaky_relu / prelu; scales chosen as `rkc.quant.integer_kernels` computes them);
* views, concats, layout conversions, `rknpu.cpu` and the copies of `rknpu.copies`: no
  task, the host program runs them;
* `nn.constant`s other ops read are written into the weight arena at their offsets.

Every NPU op of the host IR gets `rknpu.task_range = array<i64: first, count>`.
Anything the task descriptions cannot express is an RkcError naming the op (`rkc.name`)
and the feature: the program is never silently wrong.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    BytesAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    TensorType,
    UnitAttr,
    f16,
    i64,
)
from xdsl.ir import Operation, SSAValue

from rkc.backends.emit import EmittedTask, link
from rkc.backends.emit_conv import STREAM_BYTES_PER_CHANNEL, conv_task
from rkc.backends.emit_dpu import ew_writes
from rkc.backends.emit_ppu import pool_task
from rkc.backends.program import (
    ARENA_FEATURES,
    ARENA_WEIGHTS,
    CHIPS,
    TASK_RANGE_ATTR,
    Program,
    TensorInfo,
)
from rkc.backends.tasks import (
    IDENTITY_SCALE,
    Address,
    BinaryStage,
    ClampStage,
    ConvTask,
    ConvTile,
    EwOperand,
    EwTask,
    Feature,
    LeakyReluStage,
    LutStage,
    PoolTask,
    PreluStage,
)
from rkc.backends.weights import (
    EXACT_STREAM_BYTES_PER_CHANNEL,
    pack_dpu_stream,
    pack_exact_stream,
    pack_fp16_stream,
    pack_weights,
    split_requant,
    stream_biases,
    weight_layout,
)
from rkc.dialects import nn, rknpu
from rkc.dialects.quant import quantized_element
from rkc.errors import RkcError
from rkc.graph import main_function
from rkc.lowering.dram import Storage, encode, storage_of, uses_exact_stream
from rkc.lowering.tiling import band_rows
from rkc.passes.rknpu_plan_memory import DRAM_ATTR, MEMORY_ATTR, WEIGHTS_ATTR
from rkc.passes.rknpu_tile import CBUF_ATTR
from rkc.progress import progress
from rkc.quant import integer_kernels as ik
from rkc.quant.requant import multiplier, multipliers
from rkc.targets import Target, get_target

TASK_OPS = ("rknpu.conv", "rknpu.pool", "rknpu.ew")
"""Ops that become hardware tasks; every other op of a lowered function runs on the host
or costs nothing (views, in-place concats)."""


class CodegenError(RkcError):
    """An op of the lowered module that the task emitters cannot express (yet).

    `all_errors`: one message per op that failed (`compile_program` tries every op and
    reports the first, with the count of the others)."""

    all_errors: list[str]

    def __init__(self, message: str):
        super().__init__(message)
        self.all_errors = [message]


def _label(op: Operation) -> str:
    name = nn.node_name(op)
    return f"{op.name} '{name}'" if name else op.name


def _fail(op: Operation, message: str) -> CodegenError:
    return CodegenError(f"{_label(op)}: {message}")


# ------------------------------------------------------------------------ DRAM plan

def _span(attr) -> tuple[int, int]:
    if not isinstance(attr, ArrayAttr) or len(attr.data) != 1:
        raise RkcError(f"expected one {DRAM_ATTR} span, got {attr}")
    offset, size = (int(v) for v in attr.data[0].get_values())
    return offset, size


def value_span(value: SSAValue) -> tuple[int, int]:
    """(offset, size) of `value` in its arena, from the DRAM plan."""
    if isinstance(value.owner, Operation):
        op = value.owner
        attr = op.attributes.get(DRAM_ATTR)
        if not isinstance(attr, ArrayAttr) or value.index >= len(attr.data):
            raise RkcError(f"{_label(op)}: result {value.index} has no {DRAM_ATTR} "
                           f"span (run rknpu-plan-memory)")
        offset, size = (int(v) for v in attr.data[value.index].get_values())
        return offset, size
    block = value.owner
    fn = block.parent_op()
    assert isinstance(fn, func.FuncOp)
    attrs = fn.arg_attrs.data[value.index].data if fn.arg_attrs else {}
    if DRAM_ATTR not in attrs:
        raise RkcError(f"function argument {value.index} has no {DRAM_ATTR} span")
    return _span(attrs[DRAM_ATTR])


def _quant(value_type) -> tuple[float, int] | None:
    q = quantized_element(value_type)
    if q is None or q.quantized_axis is not None:
        return None
    return float(q.scale), int(q.zero_point)


def _tq(op: Operation, element) -> ik.TensorQ:
    q = quantized_element(TensorType(element, [1]))
    if q is None or q.quantized_axis is not None:
        raise _fail(op, f"expected a per-tensor quantized int8 value, got {element}")
    return ik.TensorQ(q.scale, q.zero_point, q.qmin, q.qmax)


def _dtype(op: Operation, element) -> str:
    if element == f16:
        return "fp16"
    q = quantized_element(TensorType(element, [1]))
    if q is not None and q.bits == 8 and q.quantized_axis is None:
        return "int8"
    raise _fail(op, f"element type {element}: NPU tasks read int8 or fp16 features")


@dataclass
class CodegenContext:
    """What the per-op mapping shares: the chip, and the weight arena being filled
    (`feature_bytes` bounds the feature arena)."""

    chip: str
    target: Target
    weights: bytearray
    feature_bytes: int

    def feature(self, op: Operation, value: SSAValue, channels: int | None = None,
                image: int = 0) -> Feature:
        """The NC1HWC2 feature image `image` of `value` occupies in its arena (images lie
        `Storage.image_bytes` apart; a value of one image serves every image)."""
        t = value.type
        assert isinstance(t, TensorType)
        if not rknpu.is_native(t):
            raise _fail(op, f"operand {t} is not in the native NC1HWC2 layout")
        n, c1, h, w, c2 = t.get_shape()
        if n == 1:
            image = 0
        elif not 0 <= image < n:
            raise _fail(op, f"image {image} of an operand of batch {n}")
        offset, _ = value_span(value)
        storage = storage_of(value, self.target)
        offset += image * storage.image_bytes
        dtype = _dtype(op, t.element_type)
        arena = ARENA_WEIGHTS if isinstance(value.owner, nn.ConstantOp) else ARENA_FEATURES
        address = Address(arena, offset)
        if storage.layout == "packed":
            return Feature.packed_input(address, storage.channels, h, w, dtype)
        return Feature.native(address, channels or c1 * c2, h, w, c2,
                              storage.surface_pixels, dtype)

    def put_weights(self, op: Operation, offset: int, size: int, data: bytes,
                    what: str) -> None:
        if len(data) > size or offset + len(data) > len(self.weights):
            raise _fail(op, f"{what} of {len(data)} bytes does not fit its {size}-byte "
                        f"slot at {offset} of the {len(self.weights)}-byte weight arena")
        self.weights[offset:offset + len(data)] = data


# ------------------------------------------------------------------------ conv

def images(op: Operation) -> int:
    """The batch N of `op`'s result: one set of tasks per image."""
    return int(op.results[0].type.get_shape()[0])


def _image_name(name: str, image: int, count: int) -> str:
    return f"{name}@{image}" if count > 1 else name


def conv_tasks(ctx: CodegenContext, op: rknpu.ConvOp) -> list[ConvTask]:
    """One ConvTask per image and tile of `op`; packs its weights and stream (shared by
    the images) into the arena."""
    name = nn.node_name(op) or "conv"
    batch = images(op)
    w = nn.constant_value(op.weight)
    if w is None:
        raise _fail(op, "the weight is not a constant")
    bias = nn.constant_value(op.bias) if op.bias is not None else None
    if op.bias is not None and bias is None:
        raise _fail(op, "the bias is not a constant")
    group = op.group.value.data
    k, cg, kh, kw = w.shape
    depthwise = group > 1
    in_channels = cg * group
    x = ctx.feature(op, op.input, in_channels)
    post = rknpu.read_post_ops(op)
    element = post[0].input if post else op.output.type.element_type
    dtype = _dtype(op, op.input.type.element_type)
    if _dtype(op, element) != dtype:
        raise _fail(op, f"input {dtype} and output {element} types differ")
    weights_attr = op.attributes.get(WEIGHTS_ATTR)
    if not isinstance(weights_attr, DenseArrayBase):
        raise _fail(op, f"no {WEIGHTS_ATTR} offsets (run rknpu-plan-memory)")
    w_off, w_size, s_off, s_size = (int(v) for v in weights_attr.get_values())
    layout = weight_layout(ctx.target, k, 1 if depthwise else in_channels, kh, kw,
                           depthwise, x.packed, dtype)
    kpad = ctx.target.padded_out_channels(k, dtype, depthwise)
    strides = tuple(int(v) for v in op.strides.get_values())
    pads = tuple(int(v) for v in op.pads.get_values())
    dilations = tuple(int(v) for v in op.dilations.get_values())
    activation = op.activation.data if op.activation is not None else None
    params = tuple(float(v) for v in op.activation_params.get_values()) \
        if op.activation_params is not None else ()

    exact = uses_exact_stream(op)
    if activation not in (None, "relu", "clip"):
        raise _fail(op, f"fused {activation}: the DPU's output clamp is a relu / clip only")
    if dtype == "int8":
        xq, yq = _tq(op, op.input.type.element_type), _tq(op, element)
        wq = quantized_element(op.weight.type)
        if wq is None or any(wq.zero_points):
            raise _fail(op, f"weight must be symmetric int8, got {op.weight.type}")
        scales = np.broadcast_to(np.asarray(wq.scales, np.float64), (k,))
        m, s = multipliers(xq.scale * scales / yq.scale)
        mults, shifts = tuple(int(v) for v in m), tuple(int(v) for v in s)
        lo, hi = ik.activation_range(activation, params, yq)
        clamp_low = lo if lo > yq.qmin else None
        clamp_high = hi if hi < yq.qmax else None
        packed = pack_weights(np.asarray(w, np.int8), layout, [0] * k)
        b = np.zeros(k, np.int64) if bias is None else np.asarray(bias, np.int64)
        dw_w = np.asarray(w, np.int64)
        biases = stream_biases(b, dw_w, [0] * k, xq.zp)
        if exact:
            stream = pack_exact_stream(ctx.target, biases, [0] * k, mults, shifts, kpad)
        else:
            stream = pack_dpu_stream(ctx.target, biases, [0] * k,
                                     split_requant(mults, shifts).channel_mul, kpad)
        quant = dict(multipliers=mults, shifts=shifts, input_zero_point=xq.zp,
                     output_zero_point=yq.zp, weight_zero_points=(0,) * k,
                     clamp_low=clamp_low, clamp_high=clamp_high)
    else:
        if activation not in (None, "relu"):
            raise _fail(op, f"fp16 activation {activation}: an fp16 conv clamps with a "
                        "ReLU only")
        packed = pack_weights(np.asarray(w, np.float16), layout)
        stream = pack_fp16_stream([] if bias is None else
                                  [float(v) for v in np.asarray(bias, np.float32)], kpad)
        quant = dict(multipliers=(), shifts=(),
                     clamp_low=0 if activation == "relu" else None)
    ctx.put_weights(op, w_off, w_size, packed, "packed weights")
    unit = EXACT_STREAM_BYTES_PER_CHANNEL if exact else STREAM_BYTES_PER_CHANNEL[dtype]
    if len(stream) < kpad * unit:
        raise _fail(op, "DPU stream shorter than its padded channels")
    ctx.put_weights(op, s_off, s_size, stream, "DPU stream")

    cbuf = op.attributes.get(CBUF_ATTR)
    if not isinstance(cbuf, DenseArrayBase):
        raise _fail(op, f"no {CBUF_ATTR} bank split (run rknpu-tile)")
    data_banks, weight_banks = (int(v) for v in cbuf.get_values())
    oh = op.output.type.get_shape()[2]
    extent = dilations[0] * (kh - 1) + 1
    tiles = rknpu.read_tiles(op) or [(0, oh, 0, k, 0)]
    tasks = []
    for image, (i, (r0, r1, c0, c1, core)) in itertools.product(range(batch),
                                                                enumerate(tiles)):
        x = ctx.feature(op, op.input, in_channels, image)
        y = ctx.feature(op, op.output, k, image)
        stages = post_op_stages(ctx, op, image)
        i0, i1, top, bottom = band_rows((r0, r1), x.height, extent, strides[0], pads[0])
        tile = ConvTile((r0, r1), (i0, i1), top, bottom, (c0, c1), core)
        label = _image_name(name, image, batch)
        tasks.append(ConvTask(
            name=f"{label}#{i}" if len(tiles) > 1 else label, input=x, output=y,
            weights=Address(ARENA_WEIGHTS, w_off), stream=Address(ARENA_WEIGHTS, s_off),
            kernel=(kh, kw), out_channels=k, tile=tile, data_banks=data_banks,
            weight_banks=weight_banks, strides=strides, pads=pads, dilations=dilations,
            depthwise=depthwise, dtype=dtype, requant="exact" if exact else "split",
            **quant, **stages))
    return tasks


def _per_channel_operand(shape: tuple[int, ...], out: tuple[int, ...]) -> bool | None:
    """How the DPU reads a second operand of `shape` against an output `out` (native,
    batch 1 or the output's): True per channel (a 1 x 1 operand: one value per channel,
    channels contiguous -- a per-pixel operand of a 1 x 1 output is that too), False per
    pixel (the output's shape), None when it reads neither way."""
    if len(shape) != len(out) or shape[1] != out[1] or shape[0] not in (1, out[0]):
        return None
    if len(shape) == rknpu.NATIVE_RANK and shape[2:4] == (1, 1):
        return True
    return False if shape[1:] == out[1:] else None


def _operand(ctx: CodegenContext, op: rknpu.ConvOp, value: SSAValue, image: int
             ) -> EwOperand:
    """A post operand: per pixel (the conv's output shape) or per channel (1 x 1; also
    a per-pixel operand of a 1 x 1 output, the same values)."""
    shape = tuple(value.type.get_shape())
    out = tuple(op.output.type.get_shape())
    per_channel = _per_channel_operand(shape, out)
    if per_channel is None:
        raise _fail(op, f"post operand of shape {list(shape)} broadcasts against "
                    f"{list(out)}: only per-pixel or per-channel operands are read")
    q = _quant(value.type)
    return EwOperand(ctx.feature(op, value, image=image), q[1] if q else 0, per_channel)


def post_op_stages(ctx: CodegenContext, op: rknpu.ConvOp, image: int = 0) -> dict:
    """The conv's `post_ops` as `ConvTask.post_ops` DPU stages ({} when it has none) for
    image `image`, with the scales of `rkc.quant.integer_kernels` (see
    `tasks.BinaryStage`)."""
    post = rknpu.read_post_ops(op)
    if not post:
        return {}
    stages = []
    for i, stage in enumerate(post):
        result = post[i + 1].input if i + 1 < len(post) else op.output.type.element_type
        kind = stage.kind
        operand = (_operand(ctx, op, op.post_operands[stage.operand], image)
                   if stage.operand is not None else None)
        if result == f16:
            if kind in rknpu.EW_BINARY:
                stages.append(BinaryStage(kind, operand, reversed=stage.reversed))
            elif kind == "relu":
                stages.append(ClampStage(clamp_low=0))
            elif kind == "leaky_relu":
                stages.append(LeakyReluStage(stage.params[0]))
            elif kind == "prelu":
                stages.append(PreluStage(operand))
            else:
                raise _fail(op, f"fp16 post op {kind} has no DPU stage")
            continue
        xq, yq = _tq(op, stage.input), _tq(op, result)
        if kind in rknpu.EW_BINARY:
            eq = _tq(op, op.post_operands[stage.operand].type.element_type)
            x_scale, e_scale, out = _binary_scales(kind, xq.scale, eq.scale, yq.scale)
            stages.append(BinaryStage(kind, operand, xq.zp, x_scale, e_scale, out, yq.zp,
                                      reversed=stage.reversed))
        elif kind in ("relu", "clip", "requantize"):
            lo, hi = ik.activation_range(None if kind == "requantize" else kind,
                                         stage.params, yq)
            stages.append(ClampStage(xq.zp, _scale(xq.scale / yq.scale), yq.zp,
                                     lo if lo > yq.qmin else None,
                                     hi if hi < yq.qmax else None))
        elif kind == "lut":
            stages.append(LutStage(tuple(stage.table)))
        else:
            raise _fail(op, f"int8 post op {kind} has no DPU stage")
    return {"post_ops": tuple(stages)}


def _scale(real: float) -> tuple[int, int]:
    m, s = multiplier(real)
    return int(m), int(s)


def _binary_scales(kind: str, sx: float, se: float, sy: float
                   ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(x, operand, out) (M, S) of an int8 binary stage, as integer_kernels computes."""
    one = IDENTITY_SCALE
    if kind in ("add", "sub"):
        acc = min(sx, se) / 256
        return _scale(sx / acc), _scale(se / acc), _scale(acc / sy)
    if kind == "mul":
        return one, one, _scale(sx * se / sy)
    return _scale(sx / sy), _scale(se / sy), one


# ------------------------------------------------------------------------ pool, ew

def _pool_task(ctx: CodegenContext, op: rknpu.PoolOp, image: int = 0) -> PoolTask:
    """The PoolTask of image `image` of `op`."""
    name = _image_name(nn.node_name(op) or "pool", image, images(op))
    kind = op.kind.data
    x, y = ctx.feature(op, op.input, image=image), ctx.feature(op, op.output, image=image)
    kernel = tuple(int(v) for v in op.kernel.get_values())
    strides = tuple(int(v) for v in op.strides.get_values())
    pads = tuple(int(v) for v in op.pads.get_values())
    if op.ceil_mode.value.data:
        raise _fail(op, "ceil_mode pooling is not expressible by PoolTask")
    if x.dtype == "int8":
        xq = _tq(op, op.input.type.element_type)
        yq = _tq(op, op.output.type.element_type)
        if kind == "avg":
            raise _fail(op, "int8 average pooling requantizes by s_x / (s_y * n); "
                        "PoolTask has no output converter for it")
        if (xq.scale, xq.zp) != (yq.scale, yq.zp):
            raise _fail(op, "max pooling with different input and output quantization "
                        "needs a rescale PoolTask cannot express")
        pad_value = xq.qmin
    else:
        if kind == "avg" and any(pads):
            raise _fail(op, "fp16 average pooling with padding is not expressible")
        pad_value = 0xFBFF if kind == "max" else 0
    return PoolTask(name, kind, x, y, kernel, strides, pads, pad_value=pad_value)


def _ew_task(ctx: CodegenContext, op: rknpu.EwOp, image: int = 0) -> EwTask:
    """The EwTask of image `image` of `op`: scales as `rkc.quant.integer_kernels`
    computes them."""
    name = _image_name(nn.node_name(op) or "ew", image, images(op))
    kind = op.kind.data
    operands = list(op.inputs)
    out_shape = tuple(op.output.type.get_shape())
    if kind in ("abs", "neg"):
        raise _fail(op, f"elementwise kind {kind} is not expressible by EwTask")
    def whole(v: SSAValue) -> bool:  # an image of the output's shape (batch 1 or N)
        return tuple(v.type.get_shape())[1:] == out_shape[1:]

    if kind in ("add", "mul", "max", "min") and len(operands) == 2 and \
            not whole(operands[0]):
        operands.reverse()  # commutative: the whole tensor through MRDMA, the other ERDMA
    if not whole(operands[0]):
        raise _fail(op, f"first operand {list(operands[0].type.get_shape())} broadcasts to "
                    f"{list(out_shape)}: EwTask reads it whole")
    a, y = ctx.feature(op, operands[0], image=image), ctx.feature(op, op.output, image=image)
    b, per_channel = None, False
    if len(operands) > 1:
        shape = tuple(operands[1].type.get_shape())
        read = _per_channel_operand(shape, out_shape)
        per_channel = bool(read)
        if read is None:
            raise _fail(op, f"operand {list(shape)} broadcasts against {list(out_shape)}: "
                        "EwTask reads per-pixel or per-channel ([C, 1, 1]) operands only")
        b = ctx.feature(op, operands[1], a.channels if per_channel else None, image)
    params = tuple(float(v) for v in op.params.get_values()) if op.params else ()
    task_op = "clamp" if kind in ("relu", "clip") else kind
    common = dict(b=b, b_per_channel=per_channel)
    if y.dtype == "fp16":
        if kind == "clip":
            raise _fail(op, "fp16 clip is not expressible by EwTask (relu only)")
        extra = {"clamp_low": 0} if kind == "relu" else \
            {"alpha": params[0]} if kind == "leaky_relu" else {}
        return EwTask(name, task_op, a, y, **common, **extra)
    aq, yq = _tq(op, operands[0].type.element_type), _tq(op, op.output.type.element_type)
    if kind in rknpu.EW_BINARY:
        bq = _tq(op, operands[1].type.element_type)
        a_scale, b_scale, out = _binary_scales(kind, aq.scale, bq.scale, yq.scale)
        return EwTask(name, kind, a, y, a_zero_point=aq.zp, b_zero_point=bq.zp,
                      output_zero_point=yq.zp, a_scale=a_scale, b_scale=b_scale,
                      out_multiplier=out[0], out_shift=out[1], **common)
    if kind == "lut":
        return EwTask(name, "lut", a, y, table=tuple(int(v) for v in op.table.get_values()),
                      **common)
    lo, hi = ik.activation_range(None if kind == "requantize" else kind, params, yq)
    return EwTask(name, task_op, a, y, a_zero_point=aq.zp, output_zero_point=yq.zp,
                  a_scale=_scale(aq.scale / yq.scale),
                  clamp_low=lo if lo > yq.qmin else None,
                  clamp_high=hi if hi < yq.qmax else None, **common)


# ------------------------------------------------------------------------ constants

def _conv_parameter_roles(value: SSAValue) -> list[bool]:
    """Per use of `value`: whether it is a conv's weight or bias (which `conv_tasks`
    packs at the conv's `rknpu.weights` offsets) rather than an operand read as stored."""
    return [isinstance(u.operation, rknpu.ConvOp)
            and value in (u.operation.weight, u.operation.bias) for u in value.uses]


def place_constant(ctx: CodegenContext, op: nn.ConstantOp) -> None:
    """A constant some non-conv op reads: its stored bytes at its planned offset."""
    if op.attributes.get(DRAM_ATTR) is None:
        return
    roles = _conv_parameter_roles(op.results[0])
    if roles and all(roles):
        return  # packed by conv_tasks at the conv's rknpu.weights offsets
    if any(roles):
        raise _fail(op, "a constant read as a conv's weight or bias and by other ops "
                    "needs two storage forms")
    offset, size = value_span(op.results[0])
    storage: Storage = storage_of(op.results[0], ctx.target)
    data = encode(op.to_numpy(), storage).tobytes()
    ctx.put_weights(op, offset, size, data, "constant")


# ------------------------------------------------------------------------ program

PACKED_ATTR = "rknpu.packed"
"""Marks a constant of the host IR whose values live only in the weight arena."""


def host_program_text(host: ModuleOp) -> str:
    """The host IR a Program carries: `host` (lowered, with task ranges; changed in place)
    where every constant read only as conv weights / biases keeps its type but holds a
    zero splat and is marked `rknpu.packed`: its values are in the weight arena, packed
    for the CNA, and no host op reads them, so the file does not carry the weights a
    second time (as IR text, twice their size)."""
    for op in main_function(host).body.block.ops:
        if not isinstance(op, nn.ConstantOp):
            continue
        roles = _conv_parameter_roles(op.results[0])
        if roles and all(roles):
            value_type = op.value.type
            element = op.value.get_element_type()
            zero = bytes(element.compile_time_size)
            op.properties["value"] = DenseIntOrFPElementsAttr(value_type, BytesAttr(zero))
            op.attributes[PACKED_ATTR] = UnitAttr()
    return str(host)


def _info(value: SSAValue, name: str, target: Target) -> TensorInfo:
    offset, size = value_span(value)
    storage = storage_of(value, target)
    q = _quant(value.type)
    return TensorInfo(name=name, shape=tuple(int(d) for d in value.type.get_shape()),
                      dtype=str(storage.dtype.name), layout=storage.layout, offset=offset,
                      size=storage.size, scale=q[0] if q else None,
                      zero_point=q[1] if q else None, surfaces=storage.surfaces,
                      surface_pixels=storage.surface_pixels)


def _io(fn: func.FuncOp, target: Target) -> tuple[list[TensorInfo], list[TensorInfo]]:
    inputs = []
    for i, arg in enumerate(fn.body.block.args):
        attrs = fn.arg_attrs.data[i].data if fn.arg_attrs else {}
        name = attrs.get(nn.NAME_ATTR)
        inputs.append(_info(arg, name.data if isinstance(name, StringAttr) else f"input{i}",
                            target))
    ret = fn.body.block.last_op
    assert isinstance(ret, func.ReturnOp)
    outputs = []
    for i, value in enumerate(ret.arguments):
        attrs = fn.res_attrs.data[i].data if fn.res_attrs else {}
        name = attrs.get(nn.NAME_ATTR)
        outputs.append(_info(value, name.data if isinstance(name, StringAttr)
                             else f"output{i}", target))
    return inputs, outputs


def _memory(module: ModuleOp) -> dict[str, int]:
    attr = module.attributes.get(MEMORY_ATTR)
    if not isinstance(attr, DictionaryAttr):
        raise RkcError(f"the module has no {MEMORY_ATTR} plan (run rknpu-plan-memory)")
    return {k: v.value.data for k, v in attr.data.items() if isinstance(v, IntegerAttr)}


def op_tasks(chip: str, ctx: CodegenContext, op: Operation) -> list[EmittedTask]:
    """The emitted tasks of one NPU op (empty for any other op)."""
    if isinstance(op, rknpu.ConvOp):
        return [conv_task(t, chip) for t in conv_tasks(ctx, op)]
    if isinstance(op, rknpu.PoolOp):
        return [pool_task(_pool_task(ctx, op, i), chip) for i in range(images(op))]
    if isinstance(op, rknpu.EwOp):
        return [ew_writes(_ew_task(ctx, op, i), chip) for i in range(images(op))]
    return []


def compile_program(lowered: ModuleOp, chip: str, cores: int = 1,
                    show_progress: bool = False) -> Program:
    """The program of `lowered` (a module `lower(..., chip, cores)` returned).

    `show_progress`: a progress bar over the function's ops on stderr. RkcError
    (CodegenError) for an op the emitters cannot express, naming the op and the
    feature."""
    target = get_target(chip)
    chip = target.name.lower()
    if chip not in CHIPS:
        raise RkcError(f"code generation supports {', '.join(CHIPS)}, not {chip}")
    module = lowered.clone()
    fn = main_function(module)
    memory = _memory(module)
    ctx = CodegenContext(chip, target, bytearray(memory["weight_bytes"]), memory["feature_bytes"])
    ops = list(fn.body.block.ops)
    emitted: list[EmittedTask] = []
    errors: list[CodegenError] = []
    for op in progress(ops, len(ops), "codegen", enabled=show_progress):
        try:
            if isinstance(op, nn.ConstantOp):
                place_constant(ctx, op)
            elif op.name in TASK_OPS:
                tasks = op_tasks(chip, ctx, op)
                op.attributes[TASK_RANGE_ATTR] = DenseArrayBase.from_list(
                    i64, [len(emitted), len(tasks)])
                emitted += [EmittedTask(t.items, t.enable_mask, len(emitted) + j)
                            for j, t in enumerate(tasks)]
            elif not op.name.startswith("rknpu.") and op.name != "func.return":
                raise _fail(op, "op of a lowered function that is neither an rknpu op "
                            "nor a constant")
        except CodegenError as e:
            errors.append(e)
        except RkcError as e:
            errors.append(CodegenError(f"{_label(op)}: {e}"))
    if errors:
        more = f" (and {len(errors) - 1} more op(s) the emitters cannot express)" \
            if len(errors) > 1 else ""
        error = CodegenError(f"{errors[0]}{more}")
        error.all_errors = [str(e) for e in errors]
        raise error
    regcmd, records, relocations = link(chip, emitted)
    inputs, outputs = _io(fn, target)
    program = Program(chip=chip, cores=cores, weight_blob=bytes(ctx.weights),
                      feature_bytes=ctx.feature_bytes, regcmd=regcmd, task_records=records,
                      relocations=relocations, host_ir=host_program_text(module), inputs=inputs,
                      outputs=outputs)
    program.check()
    return program


def npu_ops(module: ModuleOp) -> Sequence[Operation]:
    """The task ops of a compiled host IR, in order."""
    return [op for op in main_function(module).body.block.ops if op.name in TASK_OPS]
