"""Automatic hybrid quantization: int8 layers whose own error is too large move to fp16.

Like rknn-toolkit2's auto_hybrid: every int8 layer's single-layer cosine similarity
(the quantized op on float inputs, against the float op; `rkc.quant.analysis`) is
measured on calibration samples; layers below the threshold get
`rkc.precision = "fp16"` in the float module and it is quantized again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Operation
from xdsl.rewriter import InsertPoint, Rewriter

from rkc.dialects import nn
from rkc.quant.analysis import layer_errors
from rkc.quant.pipeline import CLEANUP, QuantizedModel, run_passes

PRECISION_ATTR = "rkc.precision"
DEFAULT_THRESHOLD = 0.98


def weak_layers(result: QuantizedModel, samples: Sequence[Mapping[str, np.ndarray]],
                threshold: float) -> list[str]:
    """Names of int8 layers whose worst single-layer cosine over `samples` is below
    `threshold`."""
    worst: dict[str, float] = {}
    for sample in samples:
        for e in layer_errors(result.float_module, result.module, sample):
            if e.precision == "int8" and not math.isnan(e.cos_single):
                worst[e.name] = min(worst.get(e.name, 1.0), e.cos_single)
    return [name for name, cos in worst.items() if cos < threshold]


def auto_hybrid(result: QuantizedModel, samples: Sequence[Mapping[str, np.ndarray]],
                threshold: float = DEFAULT_THRESHOLD) -> tuple[QuantizedModel, list[str]]:
    """`result` re-quantized with its weak layers in fp16, and their names. With no weak
    layer, `result` itself is returned."""
    from rkc.passes.nn_quantize import precision_counts

    names = weak_layers(result, samples, threshold)
    if not names:
        return result, []
    wanted = set(names)
    float_module = result.float_module.clone()
    for op in float_module.walk():
        if nn.node_name(op) in wanted:
            op.attributes[PRECISION_ATTR] = StringAttr("fp16")
    calibrated = float_module
    if result.calibrated_module is not result.float_module:
        # keep the rounded int8 weights of the layers that stay int8; the fp16 ones get
        # the original weights back with the float module's own ops
        calibrated = result.calibrated_module.clone()
        originals = {nn.node_name(op): op for op in float_module.walk()}
        for op in list(calibrated.walk()):
            if nn.node_name(op) in wanted:
                _restore_operands(op, originals[nn.node_name(op)])
                op.attributes[PRECISION_ATTR] = StringAttr("fp16")
    quantized = calibrated.clone()
    run_passes(quantized, f"nn-quantize{{dtype=int8 method={result.method}}},{CLEANUP}")
    return QuantizedModel(quantized, float_module, calibrated, result.dtype, result.method,
                          result.algorithm, result.weight_rounding,
                          precision_counts(quantized), dict(result.seconds)), names


def _restore_operands(op: Operation, original: Operation) -> None:
    """Give `op` fresh copies of the constant operands of `original` (its counterpart in
    the unrounded float module)."""
    operands = list(op.operands)
    for index, source in enumerate(original.operands):
        value = nn.constant_value(source)
        if value is not None and not np.array_equal(value, nn.constant_value(operands[index])):
            copy = nn.ConstantOp(value, nn.node_name(source.owner))
            Rewriter.insert_op(copy, InsertPoint.before(op))
            operands[index] = copy.output  # the rounded constant is left to dce
    op.operands = operands
