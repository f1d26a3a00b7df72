"""rknpu-tile: split every NPU convolution into the hardware tasks that fit the CBUF.

Establishes, for every `rknpu.conv` of the entry function:

* `rknpu.cbuf = array<i64: data_banks, weight_banks>`: the CBUF bank split its tasks use
  (`CNA.CBUF_CON0`), at most the target's banks in total;
* `rknpu.tiles` (`rkc.dialects.rknpu`) when the conv is more than one task: height bands
  with halo rows (each band reads the input rows its output rows need; the rows clipped
  at the input's edges become that band's top / bottom padding) and / or output-channel
  groups, the plan of `rkc.lowering.tiling.plan_tiles` (NONE / BY_Y / BY_K / BY_YK); a
  conv that is one task carries no `rknpu.tiles` (an old one is removed);
* `rknpu.tile_method = "NONE" | "BY_Y" | "BY_K" | "BY_YK"`, for reports and FileCheck.

With `cores` > 1 (RK3588: up to 3, RK3576: 2) a conv that would be one band is cut into
`cores` bands and the tiles go round-robin over the cores (the fifth number of each
`rknpu.tiles` entry). Tiles never change a value: the rknpu interpreter executes a tiled
conv tile by tile with the same band rule, and the tests check that tiled and untiled
modules compute exactly the same integers.

Geometry: per image (a batch of N images is N times the tiles, each task with its own
base addresses); channels, kernel and group from the weight, height and width from the
input in either layout (an [N, C] input, a gemm as a 1x1 conv, is 1 x 1). An NCHW conv
(before `rknpu-layout`, or one that stayed NCHW) is planned like a native one: the CBUF
figures describe the NC1HWC2 rows the CNA reads, whatever the IR layout. Data type:
int8 / int16 from the input's `!quant.uniform` storage, fp16 from f16.

Options: `target` (default rk3588), `cores` (default 1; more than the chip has is an
RkcError). Research options, for experiments and tests that want tiling on small graphs:
`cbuf-banks` and `cbuf-bank-bytes` replace the target's CBUF bank count / bank size when
non-zero (a shrunken CBUF does not describe a real chip).

Errors (one line, RkcError): a conv that no supported split fits (names the op by its
`rkc.name` and gives the rows, banks and kernel group that do not fit), a geometry the
band rule cannot express (e.g. top padding not smaller than the dilated kernel), an
unknown target, bad options.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import builtin
from xdsl.dialects.builtin import DenseArrayBase, StringAttr, TensorType, f16, i64
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass

from rkc.dialects import nn, rknpu
from rkc.dialects.quant import quantized_element
from rkc.errors import RkcError
from rkc.graph import main_function
from rkc.lowering.tiling import ConvGeometry, TilePlan, plan_tiles
from rkc.targets import Target, get_target

CBUF_ATTR = "rknpu.cbuf"
METHOD_ATTR = "rknpu.tile_method"


def op_label(op: rknpu.ConvOp) -> str:
    """How errors and reports name a conv: its `rkc.name`, else its position."""
    name = op.attributes.get(nn.NAME_ATTR)
    if isinstance(name, StringAttr):
        return f"'{name.data}'"
    block = op.parent_block()
    index = list(block.ops).index(op) if block is not None else -1
    return f"#{index} (unnamed)"


def conv_dtype(op: rknpu.ConvOp) -> str:
    """The data type the CNA reads the conv's input in: int8, int16 or fp16."""
    t = op.input.type
    q = quantized_element(t)
    if q is not None and q.bits in (8, 16):
        return f"int{q.bits}"
    if isinstance(t, TensorType) and t.element_type == f16:
        return "fp16"
    raise RkcError(f"rknpu-tile: conv {op_label(op)}: input type {t} has no CBUF layout "
                   f"(int8, int16 or fp16)")


def packable_input(op: rknpu.ConvOp) -> bool:
    """Whether `op`'s input may be stored packed (`packable_value`)."""
    return packable_value(op.input)


def packable_value(value: SSAValue) -> bool:
    """Whether `value` may be stored packed (`rkc.lowering.dram.storage_of`): a
    `rknpu.to_native` result that only direct convs read as their input (the channel
    count, the target's, decides the rest)."""
    return isinstance(value.owner, rknpu.ToNativeOp) and bool(value.uses) and all(
        isinstance(u.operation, rknpu.ConvOp) and u.index == 0
        and u.operation.group.value.data == 1 for u in value.uses)


def conv_geometry(op: rknpu.ConvOp) -> ConvGeometry:
    """The per-image geometry of a conv task, native or NCHW."""
    shape = tuple(op.input.type.get_shape())
    # NCHW and NC1HWC2 both have H, W at 2, 3; an [N, C] input (a gemm) is 1 x 1
    height, width = (1, 1) if len(shape) == 2 else (shape[2], shape[3])
    out_channels, per_group, kh, kw = op.weight.type.get_shape()
    group = op.group.value.data
    try:
        return ConvGeometry(
            in_channels=per_group * group, in_height=height, in_width=width,
            out_channels=out_channels, kernel=(kh, kw),
            strides=tuple(nn.ints(op.properties, "strides")),
            pads=tuple(nn.ints(op.properties, "pads")),
            dilations=tuple(nn.ints(op.properties, "dilations")),
            depthwise=group > 1, dtype=conv_dtype(op), packable=packable_input(op))
    except RkcError as e:
        if str(e).startswith("rknpu-tile:"):
            raise
        raise RkcError(f"rknpu-tile: conv {op_label(op)}: {e}") from None


def tile_target(target: str, cbuf_banks: int = 0, cbuf_bank_bytes: int = 0) -> Target:
    """The chip `target`, its CBUF shrunk (or grown) by the research options when set."""
    chip = get_target(target)
    if cbuf_banks < 0 or cbuf_bank_bytes < 0:
        raise RkcError(f"rknpu-tile: cbuf-banks / cbuf-bank-bytes must be >= 0, got "
                       f"{cbuf_banks} / {cbuf_bank_bytes}")
    banks = cbuf_banks or chip.cbuf_banks
    size = cbuf_bank_bytes or chip.cbuf_bank_bytes
    if (banks, size) == (chip.cbuf_banks, chip.cbuf_bank_bytes):
        return chip
    return dataclasses.replace(chip, cbuf_banks=banks, cbuf_bank_bytes=size,
                               cbuf_bytes=banks * size)


def plan_conv(op: rknpu.ConvOp, target: Target, cores: int = 1) -> TilePlan:
    """The tile plan of one conv; a conv that does not fit is an RkcError naming it."""
    geometry = conv_geometry(op)
    try:
        return plan_tiles(geometry, target, cores)
    except RkcError as e:
        raise RkcError(f"rknpu-tile: conv {op_label(op)}: {e}") from None


def check_cores(target: Target, cores: int) -> None:
    if not 1 <= cores <= target.cores:
        raise RkcError(f"rknpu-tile: {target.name} has {target.cores} NPU core(s), cannot "
                       f"spread tasks over cores={cores}")


def annotate(op: rknpu.ConvOp, plan: TilePlan) -> None:
    """Write `plan` onto `op`: `rknpu.cbuf`, `rknpu.tile_method`, `rknpu.tiles` (> 1 task)."""
    op.attributes[CBUF_ATTR] = DenseArrayBase.from_list(i64, list(plan.cbuf))
    op.attributes[METHOD_ATTR] = StringAttr(plan.method)
    if len(plan.tiles) > 1:
        op.attributes[rknpu.TILES_ATTR] = rknpu.tiles_attr([t.as_tuple() for t in plan.tiles])
    else:
        op.attributes.pop(rknpu.TILES_ATTR, None)


@dataclass(frozen=True)
class RknpuTilePass(ModulePass):
    """Plan the CBUF tiles of every rknpu.conv and record them as attributes."""

    name = "rknpu-tile"
    target: str = "rk3588"
    cores: int = 1
    cbuf_banks: int = 0
    cbuf_bank_bytes: int = 0

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        target = tile_target(self.target, self.cbuf_banks, self.cbuf_bank_bytes)
        check_cores(target, self.cores)
        for conv in main_function(op).body.block.ops:
            if isinstance(conv, rknpu.ConvOp):
                annotate(conv, plan_conv(conv, target, self.cores))
