"""Per-layer records of an interpreter run (for summaries and accuracy reports)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from xdsl.interpreter import Interpreter, PythonValues
from xdsl.ir import Operation

from rkc.dialects import nn


@dataclass
class LayerRecord:
    """One executed op: its node name, op name, operand shapes and output statistics."""

    index: int
    name: str
    op: str
    input_shapes: list[tuple[int, ...]]
    output_shape: tuple[int, ...]
    minimum: float
    maximum: float
    mean: float
    std: float


def layer_name(op: Operation, index: int) -> str:
    """The op's source node name, or `<op>#<index>` when it has none."""
    return nn.node_name(op) or f"{op.name}#{index}"


@dataclass
class LayerTrace(Interpreter.Listener):
    """Records every executed `nn` op except constants, in execution order."""

    records: list[LayerRecord] = field(default_factory=list)
    _inputs: list[tuple[int, ...]] = field(default_factory=list)

    def will_interpret_op(self, op: Operation, args: PythonValues) -> None:
        self._inputs = [tuple(np.shape(a)) for a in args]

    def did_interpret_op(self, op: Operation, results: PythonValues) -> None:
        if not op.name.startswith("nn.") or isinstance(op, nn.ConstantOp) or not results:
            return
        out = np.asarray(results[0])
        stats = out.astype(np.float64) if out.size else np.zeros(1)
        index = len(self.records)
        self.records.append(LayerRecord(
            index, layer_name(op, index), op.name, self._inputs, tuple(out.shape),
            float(stats.min()), float(stats.max()), float(stats.mean()), float(stats.std())))
