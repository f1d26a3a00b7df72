"""Per-layer accuracy of a quantized module against its float original.

Layers are matched by their source node name (`rkc.name`): the quantize pass keeps the
name of every float op on the op that replaces it. For every matched layer:

* "entire": the quantized module's value (dequantized), computed from quantized inputs
  all the way from the model input, against the float value - the accumulated error;
* "single": the quantized op alone, fed with the float module's operand values
  (quantized with the op's own operand types), against the float value - the error that
  layer adds by itself.

Both are given as cosine similarity and euclidean distance, like rknn-toolkit2's
accuracy_analysis.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.interpreter import Interpreter, PythonValues
from xdsl.ir import Attribute, Operation

from rkc.dialects import nn
from rkc.dialects.quant import quantized_element
from rkc.interpreter import evaluate_op, run_module
from rkc.quant import requant


def to_float(value: np.ndarray, t: Attribute) -> np.ndarray:
    """A value of type `t` as float64: dequantized if `t` is quantized."""
    q = quantized_element(t)
    if q is None:
        return np.asarray(value, np.float64)
    scales, zps = q.broadcast_parameters(np.ndim(value))
    return (np.asarray(value, np.int64) - zps) * scales


def from_float(value: np.ndarray, t: Attribute) -> np.ndarray:
    """A float value converted to type `t` (quantized, or a float dtype)."""
    q = quantized_element(t)
    if q is None:
        assert isinstance(t, TensorType)
        return np.asarray(value).astype(nn.numpy_dtype(t.element_type))
    scales, zps = q.broadcast_parameters(np.ndim(value))
    return requant.quantize(value, scales, zps, q.qmin, q.qmax).astype(q.storage_dtype)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two tensors (1.0 when both are all zero)."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 1.0 if na == nb else 0.0
    return float(np.dot(a, b) / (na * nb))


def euclidean(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.ravel(a).astype(np.float64) - np.ravel(b).astype(np.float64)))


@dataclass
class NamedValues(Interpreter.Listener):
    """Operands and first result of every named `nn` op, keyed by name."""

    operands: dict[str, list[np.ndarray]] = field(default_factory=dict)
    results: dict[str, np.ndarray] = field(default_factory=dict)
    ops: dict[str, Operation] = field(default_factory=dict)
    _args: PythonValues = ()

    def will_interpret_op(self, op: Operation, args: PythonValues) -> None:
        self._args = args

    def did_interpret_op(self, op: Operation, results: PythonValues) -> None:
        name = nn.node_name(op)
        if name is None or not op.name.startswith("nn.") or isinstance(op, nn.ConstantOp):
            return
        if not results or name in self.results:
            return
        self.operands[name] = [np.asarray(a) for a in self._args]
        self.results[name] = np.asarray(results[0])
        self.ops[name] = op


def record(module: ModuleOp, inputs: Mapping[str, np.ndarray]) -> NamedValues:
    values = NamedValues()
    run_module(module, inputs, listeners=[values])
    return values


def precision_of(op: Operation) -> str:
    """"int8", "int16", "fp16" or "float" from the op's result type."""
    t = op.results[0].type
    q = quantized_element(t)
    if q is not None:
        return f"int{q.bits}"
    if isinstance(t, TensorType) and nn.numpy_dtype(t.element_type) == np.float16:
        return "fp16"
    return "float"


@dataclass
class LayerError:
    name: str
    op: str
    precision: str
    cos_entire: float
    euclid_entire: float
    cos_single: float
    euclid_single: float


def single_layer_output(op: Operation, float_operands: list[np.ndarray]) -> np.ndarray | None:
    """The op run alone on the float module's operand values, as float64; None when the
    operand lists do not correspond."""
    if len(op.operands) != len(float_operands):
        return None
    inputs = []
    for operand, value in zip(op.operands, float_operands, strict=True):
        constant = nn.constant_value(operand)
        if constant is not None:
            inputs.append(constant)  # the op's own (quantized) weights
        elif tuple(operand.type.get_shape()) != np.shape(value):
            return None
        else:
            inputs.append(from_float(value, operand.type))
    (result, *_) = evaluate_op(op, inputs)
    return to_float(result, op.results[0].type)


def layer_errors(float_module: ModuleOp, quant_module: ModuleOp,
                 inputs: Mapping[str, np.ndarray]) -> list[LayerError]:
    """Entire and single-layer errors of every layer the two modules share, in the
    quantized module's execution order."""
    reference = record(float_module, inputs)
    quantized = record(quant_module, inputs)
    errors = []
    for name, op in quantized.ops.items():
        if name not in reference.results:
            continue
        want = reference.results[name].astype(np.float64)
        got = to_float(quantized.results[name], op.results[0].type)
        if got.shape != want.shape:
            continue
        single = single_layer_output(op, reference.operands[name])
        errors.append(LayerError(
            name, op.name.removeprefix("nn."), precision_of(op), cosine(got, want),
            euclidean(got, want),
            cosine(single, want) if single is not None else float("nan"),
            euclidean(single, want) if single is not None else float("nan")))
    return errors
