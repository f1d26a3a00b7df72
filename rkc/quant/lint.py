"""Known int8 accuracy traps, found before quantizing.

* A concat whose inputs' ranges differ by more than `CONCAT_RANGE_RATIO` (boxes next to
  scores in detection heads): one output scale must serve all inputs, and the small ones
  lose their resolution.
* An activation that cannot fuse into its producing conv / gemm because the producer's
  result has several consumers: the pre-activation tensor is then quantized on its own.

Ranges come from the `rkc.range` attributes when the module is calibrated, otherwise from
one float run on a sample: `lint` runs it, or a `MagnitudeRecorder` listening to
calibration's first sample records the same magnitudes without a run of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.interpreter import Interpreter, PythonValues
from xdsl.ir import Operation, SSAValue

from rkc.dialects import nn
from rkc.quant.analysis import record
from rkc.quant.calibrate import read_ranges

CONCAT_RANGE_RATIO = 16.0
FUSABLE_ACTIVATIONS = (nn.ReluOp, nn.ClipOp, nn.LeakyReluOp, nn.SigmoidOp, nn.SiluOp,
                       nn.HardSwishOp, nn.TanhOp)


@dataclass(frozen=True)
class LintWarning:
    op: str
    message: str

    def __str__(self) -> str:
        return f"{self.op}: {self.message}"


class MagnitudeRecorder(Interpreter.Listener):
    """max |first result| of every named non-constant `nn` op, the first time an op of
    that name runs (the ops and values `analysis.record` would see on that run)."""

    def __init__(self) -> None:
        self.magnitudes: dict[SSAValue, float] = {}
        self._names: set[str] = set()

    def did_interpret_op(self, op: Operation, results: PythonValues) -> None:
        name = nn.node_name(op)
        if name is None or not op.name.startswith("nn.") or isinstance(op, nn.ConstantOp):
            return
        if not results or name in self._names:
            return
        self._names.add(name)
        self.magnitudes[op.results[0]] = float(np.max(np.abs(np.asarray(results[0])),
                                                      initial=0.0))


def _magnitudes(module: ModuleOp,
                sample: Mapping[str, np.ndarray] | None) -> dict[SSAValue, float]:
    ranges = read_ranges(module)
    if ranges:
        return {v: max(abs(lo), abs(hi)) for v, (lo, hi) in ranges.items()}
    if sample is None:
        return {}
    values = record(module, sample)
    found = {}
    for name, op in values.ops.items():
        found[op.results[0]] = float(np.max(np.abs(values.results[name]), initial=0.0))
    return found


def lint(module: ModuleOp, sample: Mapping[str, np.ndarray] | None = None,
         magnitudes: Mapping[SSAValue, float] | None = None) -> list[LintWarning]:
    """The accuracy traps in a float module, with the op names. `magnitudes`: what a
    `MagnitudeRecorder` recorded on one run of this module (then nothing runs and
    `sample` and the module's ranges are not read)."""
    magnitude = _magnitudes(module, sample) if magnitudes is None else magnitudes
    warnings = []
    for op in module.walk():
        name = nn.node_name(op) or op.name
        if isinstance(op, nn.ConcatOp):
            sizes = [magnitude.get(v) for v in op.inputs]
            known = [s for s in sizes if s is not None and s > 0]
            if len(known) >= 2 and max(known) / min(known) > CONCAT_RANGE_RATIO:
                warnings.append(LintWarning(name, (
                    f"concat inputs span ranges from {min(known):.3g} to {max(known):.3g} "
                    f"(x{max(known) / min(known):.0f}); one int8 scale loses the small ones - "
                    f"consider rkc.precision = \"fp16\" on this op or splitting the outputs")))
        if isinstance(op, FUSABLE_ACTIVATIONS):
            producer = op.operands[0].owner
            uses = sum(1 for _ in op.operands[0].uses)
            if isinstance(producer, nn.Conv2dOp | nn.GemmOp) and uses > 1:
                warnings.append(LintWarning(name, (
                    f"{op.name.removeprefix('nn.')} cannot fuse into "
                    f"{nn.node_name(producer) or producer.name}: its input has {uses} "
                    f"consumers, so the pre-activation tensor is quantized on its own")))
    return warnings
