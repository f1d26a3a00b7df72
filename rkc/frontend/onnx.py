"""ONNX frontend: an ONNX model (default domain, opsets 9 to 21) becomes a module with
one `func.func @main` made of `nn` ops.

The import is one walk over the graph in topological order. Every tensor name maps to
either an `np.ndarray` (a constant known at import time) or an SSA value. A node whose
inputs are all constants is evaluated with numpy (`FOLDERS`, with `onnx.reference` as the
fallback), as is `Shape` of any tensor (its shape is static); every other node goes
through its converter in `CONVERTERS`, which builds nn ops. A constant becomes an
`nn.constant` only when an IR op uses it, once per tensor name. The converters of
quantized ops (QuantizeLinear, DequantizeLinear, QLinearConv, QLinearMatMul) are in
`onnx_quant`.

A dynamic batch axis (axis 0) defaults to 1; any other dynamic input dimension must be
fixed with `input_shapes`.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper
from xdsl.builder import ImplicitBuilder
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation, SSAValue

from rkc.dialects import nn
from rkc.errors import RkcError
from rkc.graph import ENTRY, set_io_names

MIN_OPSET, MAX_OPSET = 9, 21

Value = SSAValue | np.ndarray


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------
def parse_input_shapes(specs: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Parse `--input-shape` texts such as `x=1x3x480x480` into {name: shape}."""
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in specs:
        name, eq, dims = spec.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.split("x"))
        except ValueError:
            shape = ()
        if not eq or not name or not shape or min(shape) < 1:
            raise RkcError(f"bad input shape '{spec}': expected NAME=D0xD1x... with positive "
                           "sizes, e.g. x=1x3x480x480")
        if name in shapes:
            raise RkcError(f"input shape of '{name}' given twice")
        shapes[name] = shape
    return shapes


def import_onnx(model: onnx.ModelProto | str | os.PathLike,
                input_shapes: Mapping[str, Sequence[int]] | None = None) -> ModuleOp:
    """Import an ONNX model as a module with one `func.func @main` of nn ops."""
    if not isinstance(model, onnx.ModelProto):
        model = _load(model)
    opset = _default_opset(model)
    _check_domains(model.graph, opset)
    try:
        inputs = _input_specs(model.graph, input_shapes or {})
        inferred = _inferred_shapes(model, {name: shape for name, _, shape in inputs})
        return _Importer(model.graph, opset, inferred).run(inputs)
    except (RkcError, AssertionError):
        raise
    except Exception as e:
        # the checker runs only now (it serializes the whole model: slow for big weights)
        problem = _checker_problem(model)
        if problem:  # a malformed model that broke the import: report why it is malformed
            raise RkcError(f"malformed ONNX model: {problem}") from e
        raise


# ---------------------------------------------------------------------------
# loading and checking the model
# ---------------------------------------------------------------------------
def _load(path: str | os.PathLike) -> onnx.ModelProto:
    try:
        return onnx.load(os.fspath(path))
    except FileNotFoundError:
        raise RkcError(f"cannot read ONNX model '{os.fspath(path)}': no such file") from None
    except Exception as e:  # a directory, unreadable, or not a protobuf (DecodeError)
        raise RkcError(f"cannot read ONNX model '{os.fspath(path)}': {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _default_opset(model: onnx.ModelProto) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise RkcError("ONNX model imports no opset of the default domain "
                       "(is this an ONNX model?)")
    opset = max(versions)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise RkcError(f"ONNX opset {opset} is not supported (supported: {MIN_OPSET} to "
                       f"{MAX_OPSET}); convert the model with onnx.version_converter")
    return opset


def _node_name(node: onnx.NodeProto, index: int) -> str:
    return node.name or f"{node.op_type}_{index}"


def _unsupported(op_type: str, name: str, opset: int) -> RkcError:
    return RkcError(f"unsupported ONNX op '{op_type}' (node '{name}', opset {opset})")


def _check_domains(graph: onnx.GraphProto, opset: int) -> None:
    """Reject nodes of other domains, and op types ONNX does not define."""
    for i, node in enumerate(graph.node):
        if node.domain not in ("", "ai.onnx"):
            raise _unsupported(f"{node.domain}.{node.op_type}", _node_name(node, i), opset)
        if not onnx.defs.has(node.op_type):
            raise _unsupported(node.op_type, _node_name(node, i), opset)


def _checker_problem(model: onnx.ModelProto) -> str | None:
    """The ONNX checker's complaint, if any. Exporters often produce models the checker
    dislikes for harmless reasons, so it only matters when the import then fails."""
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        return _first_line(e)
    return None


def _numpy_dtype(elem_type: int, what: str) -> np.dtype:
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
        nn.element_type(dtype)
    except (KeyError, ValueError, TypeError, nn.ShapeError):
        name = TensorProto.DataType.Name(elem_type) if elem_type in TensorProto.DataType.values() \
            else str(elem_type)
        raise RkcError(f"{what} has unsupported element type {name}") from None
    return dtype


def _input_specs(graph: onnx.GraphProto, given: Mapping[str, Sequence[int]]
                 ) -> list[tuple[str, np.dtype, tuple[int, ...]]]:
    """(name, dtype, static shape) of the graph inputs that are not initializers."""
    constants = {t.name for t in graph.initializer} | \
        {t.values.name for t in graph.sparse_initializer}
    inputs = [vi for vi in graph.input if vi.name not in constants]
    unknown = sorted(set(given) - {vi.name for vi in inputs})
    if unknown:
        raise RkcError(f"--input-shape names no model input: {', '.join(unknown)} "
                       f"(inputs: {', '.join(vi.name for vi in inputs)})")
    specs = []
    for vi in inputs:
        name = vi.name
        if not vi.type.HasField("tensor_type"):
            raise RkcError(f"input '{name}' is not a tensor")
        tt = vi.type.tensor_type
        dtype = _numpy_dtype(tt.elem_type, f"input '{name}'")
        dims = list(tt.shape.dim) if tt.HasField("shape") else None
        if name in given:
            shape = tuple(int(d) for d in given[name])
            _check_given_shape(name, dims, shape)
        elif dims is None:
            raise RkcError(f"input '{name}' has no shape; fix it with --input-shape "
                           f"{name}=D0xD1x...")
        else:
            shape = _static_shape(name, dims)
        specs.append((name, dtype, shape))
    return specs


def _is_static(dim: onnx.TensorShapeProto.Dimension) -> bool:
    return dim.HasField("dim_value") and dim.dim_value >= 0


def _check_given_shape(name: str, dims: list | None, shape: tuple[int, ...]) -> None:
    if dims is None:
        return
    if len(shape) != len(dims):
        raise RkcError(f"--input-shape {name}: rank {len(shape)}, but the model's input has "
                       f"rank {len(dims)}")
    for axis, (dim, size) in enumerate(zip(dims, shape, strict=True)):
        if _is_static(dim) and dim.dim_value != size:
            raise RkcError(f"--input-shape {name}: axis {axis} is {size}, but the model fixes "
                           f"it to {dim.dim_value}")


def _static_shape(name: str, dims: list) -> tuple[int, ...]:
    """The input's static shape; a dynamic axis 0 (batch) defaults to 1."""
    hint = [str(d.dim_value) if _is_static(d) else "1" if axis == 0 else f"D{axis}"
            for axis, d in enumerate(dims)]
    if len(dims) == 4:  # NCHW: name the spatial placeholders H and W
        hint[2:] = [h if h.isdigit() else p for h, p in zip(hint[2:], "HW", strict=True)]
    for axis, dim in enumerate(dims):
        if axis > 0 and not _is_static(dim):
            label = f" (name '{dim.dim_param}')" if dim.dim_param else ""
            raise RkcError(f"input '{name}' has a dynamic dimension at axis {axis}{label}; "
                           f"fix it with --input-shape {name}={'x'.join(hint)}")
    return tuple(d.dim_value if _is_static(d) else 1 for d in dims)


SHAPE_ONLY_INITIALIZER_ELEMENTS = 4096
"""Initializers at least this large are weights, not shape data: shape inference sees them
as graph inputs of the same type and shape (it serializes the model; 100 MB of weights
cost seconds)."""


def _without_large_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose initializers of `SHAPE_ONLY_INITIALIZER_ELEMENTS` or more
    elements are graph inputs with their element type and dims instead (no data)."""
    fixed = onnx.ModelProto()
    _copy_fields(model, fixed, skip="graph")
    graph = fixed.graph
    _copy_fields(model.graph, graph, skip="initializer")  # the weights are not copied
    inputs = {vi.name for vi in graph.input}
    for t in model.graph.initializer:
        if math.prod(t.dims) < SHAPE_ONLY_INITIALIZER_ELEMENTS:
            graph.initializer.append(t)
        elif t.name not in inputs:
            graph.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type,
                                                                  list(t.dims)))
    return fixed


def _copy_fields(source: Any, target: Any, skip: str) -> None:
    """Copy every set field of protobuf message `source` into `target` but `skip`."""
    for field, value in source.ListFields():
        if field.name == skip:
            continue
        repeated = field.is_repeated if hasattr(field, "is_repeated") else \
            field.label == field.LABEL_REPEATED  # protobuf < 5.28 has only `label`
        if repeated:
            getattr(target, field.name).extend(value)
        elif field.message_type is not None:
            getattr(target, field.name).CopyFrom(value)
        else:
            setattr(target, field.name, value)


def _inferred_shapes(model: onnx.ModelProto, inputs: Mapping[str, tuple[int, ...]]
                     ) -> dict[str, tuple[int, ...]]:
    """Static shapes ONNX shape inference finds once the inputs are fixed (best effort:
    only used to cross-check the shapes nn infers)."""
    fixed = _without_large_initializers(model)
    del fixed.graph.value_info[:]
    for vi in fixed.graph.input:
        if vi.name in inputs:
            shape = vi.type.tensor_type.shape
            shape.ClearField("dim")
            for size in inputs[vi.name]:
                shape.dim.add().dim_value = size
    for vi in fixed.graph.output:
        vi.type.tensor_type.ClearField("shape")
    try:
        fixed = onnx.shape_inference.infer_shapes(fixed, strict_mode=False, data_prop=True)
    except Exception:
        return {}
    shapes = {}
    for vi in (*fixed.graph.value_info, *fixed.graph.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape") and all(d.HasField("dim_value") for d in tt.shape.dim):
            shapes[vi.name] = tuple(d.dim_value for d in tt.shape.dim)
    return shapes


# ---------------------------------------------------------------------------
# nodes and the importer
# ---------------------------------------------------------------------------
@dataclass
class Node:
    """An ONNX node with decoded attributes and the name reports use."""

    proto: onnx.NodeProto
    name: str
    opset: int
    attrs: dict[str, Any]

    @classmethod
    def make(cls, proto: onnx.NodeProto, index: int, opset: int) -> Node:
        attrs = {}
        for a in proto.attribute:
            value = onnx.helper.get_attribute_value(a)
            attrs[a.name] = value.decode() if isinstance(value, bytes) else value
        return cls(proto, _node_name(proto, index), opset, attrs)

    @property
    def op_type(self) -> str:
        return self.proto.op_type

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def input(self, i: int) -> str:
        """Name of input i, or "" when it is absent."""
        return self.proto.input[i] if i < len(self.proto.input) else ""

    def error(self, message: str) -> RkcError:
        return RkcError(f"{self.op_type} node '{self.name}': {message}")


class _Importer:
    def __init__(self, graph: onnx.GraphProto, opset: int, inferred: dict[str, tuple[int, ...]]):
        self.graph = graph
        self.opset = opset
        self.inferred = inferred
        self.values: dict[str, Value] = {}
        self.constant_ops: dict[str, SSAValue] = {}
        self.used = {name for n in graph.node for name in n.input} | \
            {o.name for o in graph.output}
        for t in graph.initializer:
            self.values[t.name] = numpy_helper.to_array(t)
        for t in graph.sparse_initializer:
            self.values[t.values.name] = _sparse_to_array(t)

    # -- values ------------------------------------------------------------
    def get(self, name: str, node: Node | None = None) -> Value:
        try:
            return self.values[name]
        except KeyError:
            where = f"node '{node.name}'" if node else "graph output"
            raise RkcError(f"malformed ONNX model: {where} reads unknown tensor '{name}'") from None

    def operand(self, node: Node, i: int) -> SSAValue:
        """Input i of the node as an SSA value (a constant becomes an nn.constant once)."""
        name = node.input(i)
        if not name:
            raise node.error(f"input {i} is missing")
        return self.materialize(name, node)

    def materialize(self, name: str, node: Node | None = None) -> SSAValue:
        value = self.get(name, node)
        if isinstance(value, SSAValue):
            return value
        if name not in self.constant_ops:
            try:
                self.constant_ops[name] = nn.ConstantOp(value, name=name).output
            except nn.ShapeError as e:
                raise RkcError(f"constant '{name}': {e}") from None
        return self.constant_ops[name]

    def optional(self, node: Node, i: int) -> SSAValue | None:
        return self.operand(node, i) if node.input(i) else None

    def const(self, node: Node, i: int, what: str) -> np.ndarray | None:
        """Input i as an import-time constant; None when absent, RkcError when computed."""
        name = node.input(i)
        if not name:
            return None
        value = self.get(name, node)
        if not isinstance(value, np.ndarray):
            raise node.error(f"{what} (input {i}) must be a constant")
        return value

    # -- the walk ----------------------------------------------------------
    def run(self, inputs: list[tuple[str, np.dtype, tuple[int, ...]]]) -> ModuleOp:
        arg_types = [nn.tensor_type(dtype, shape) for _, dtype, shape in inputs]
        fn = func.FuncOp(ENTRY, (arg_types, []))
        with ImplicitBuilder(fn.body) as args:
            for (name, _, _), arg in zip(inputs, args, strict=True):
                arg.name_hint = name
                self.values[name] = arg
            for index, proto in enumerate(self.graph.node):
                self.convert(Node.make(proto, index, self.opset))
            func.ReturnOp(*[self.materialize(o.name) for o in self.graph.output])
        fn.update_function_type()
        set_io_names(fn, [name for name, _, _ in inputs], [o.name for o in self.graph.output])
        _erase_dead_ops(fn)
        return ModuleOp([fn])

    def convert(self, node: Node) -> None:
        op_type = node.op_type
        present = [name for name in node.proto.input if name]
        values = [self.get(name, node) for name in present]
        if op_type == "Constant":
            results: list[Value] = [_constant_value(node)]
        elif op_type in ("Identity", "Dropout"):
            results = [values[0]]
        elif op_type in ("Shape", "Size"):
            results = [_fold_shape(node, _shape_of(values[0]))]
        elif present and all(isinstance(v, np.ndarray) for v in values) and \
                op_type not in UNFOLDED:
            results = _fold(node, [self.values[n] if n else None for n in node.proto.input])
        elif op_type in CONVERTERS:
            try:
                out = CONVERTERS[op_type](self, node)
            except nn.ShapeError as e:
                raise node.error(str(e)) from None
            results = list(out.results) if isinstance(out, Operation) else \
                [out] if isinstance(out, SSAValue) else list(out)
        else:
            raise _unsupported(op_type, node.name, node.opset)
        for name, value in zip(node.proto.output, results, strict=False):
            if name:
                self.values[name] = value
                self._cross_check(node, name, value)

    def _cross_check(self, node: Node, name: str, value: Value) -> None:
        expected = self.inferred.get(name)
        if node.attr("ceil_mode"):  # ONNX shape inference lacks the rule that the last
            return                  # window starts inside the input (onnxruntime has it)
        if isinstance(value, SSAValue) and expected is not None:
            ours = _shape_of(value)
            assert ours == expected, (f"internal error: {node.op_type} node '{node.name}' "
                                      f"output '{name}': nn infers {list(ours)}, ONNX "
                                      f"{list(expected)}")


def _erase_dead_ops(fn: func.FuncOp) -> None:
    """Remove ops whose results are unused (left over by constant folding and fusion)."""
    for op in reversed(list(fn.body.block.ops)):
        if op.results and all(r.first_use is None for r in op.results):
            op.detach()
            op.erase()


def _shape_of(value: Value) -> tuple[int, ...]:
    if isinstance(value, np.ndarray):
        return value.shape
    assert isinstance(value.type, TensorType)
    return tuple(value.type.get_shape())


def _sparse_to_array(sparse: onnx.SparseTensorProto) -> np.ndarray:
    values = numpy_helper.to_array(sparse.values)
    indices = numpy_helper.to_array(sparse.indices)
    dense = np.zeros(tuple(sparse.dims), dtype=values.dtype)
    if indices.ndim == 1:  # linear indices
        dense.reshape(-1)[indices] = values
    else:
        dense[tuple(indices.T)] = values
    return dense


def _constant_value(node: Node) -> np.ndarray:
    """The value of a Constant node, whichever value_* attribute holds it."""
    attrs = node.attrs
    if "value" in attrs:
        return numpy_helper.to_array(attrs["value"])
    if "sparse_value" in attrs:
        return _sparse_to_array(attrs["sparse_value"])
    forms = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64,
             "value_ints": np.int64}
    for key, dtype in forms.items():
        if key in attrs:
            return np.array(attrs[key], dtype=dtype)
    if "value_string" in attrs or "value_strings" in attrs:
        raise node.error("string constants are not supported")
    raise node.error("has no value attribute")


# ---------------------------------------------------------------------------
# shape arithmetic shared by folding and conversion
# ---------------------------------------------------------------------------
def _axis(node: Node, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise node.error(f"axis {axis} is out of range for rank {rank}")
    return int(axis) % rank


def _ints(values: Any) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


def _reshape_shape(node: Node, src: tuple[int, ...], target: Sequence[int]) -> list[int]:
    """Resolve an ONNX Reshape target: 0 copies a dimension (unless allowzero), -1 is
    inferred."""
    out = [int(d) for d in target]
    allowzero = node.attr("allowzero", 0)
    for i, d in enumerate(out):
        if d == 0 and not allowzero:
            if i >= len(src):
                raise node.error(f"shape {list(target)} copies dimension {i} of {list(src)}")
            out[i] = src[i]
    if out.count(-1) > 1 or min(out, default=0) < -1:
        raise node.error(f"invalid shape {list(target)}")
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        if known == 0 or math.prod(src) % known:
            raise node.error(f"cannot reshape {list(src)} to {list(target)}")
        out[out.index(-1)] = math.prod(src) // known
    if math.prod(out) != math.prod(src):
        raise node.error(f"cannot reshape {list(src)} to {list(target)}")
    return out


def _flatten_shape(node: Node, src: tuple[int, ...]) -> list[int]:
    axis = node.attr("axis", 1)
    if not -len(src) <= axis <= len(src):
        raise node.error(f"axis {axis} is out of range for rank {len(src)}")
    axis += len(src) if axis < 0 else 0
    return [math.prod(src[:axis]), math.prod(src[axis:])]


def _axes_arg(node: Node, axes_input: np.ndarray | None) -> list[int] | None:
    """The `axes` of Squeeze/Unsqueeze/Reduce*: attribute (older opsets) or input 1."""
    if "axes" in node.attrs:
        return _ints(node.attr("axes"))
    return None if axes_input is None else _ints(axes_input)


def _squeeze_shape(node: Node, src: tuple[int, ...], axes: list[int] | None) -> list[int]:
    if axes is None:
        return [d for d in src if d != 1]
    axes = [_axis(node, a, len(src)) for a in axes]
    for a in axes:
        if src[a] != 1:
            raise node.error(f"cannot squeeze axis {a} of size {src[a]}")
    return [d for i, d in enumerate(src) if i not in axes]


def _unsqueeze_shape(node: Node, src: tuple[int, ...], axes: list[int] | None) -> list[int]:
    if axes is None:
        raise node.error("needs axes")
    rank = len(src) + len(axes)
    axes = sorted(_axis(node, a, rank) for a in axes)
    if len(set(axes)) != len(axes):
        raise node.error(f"repeated axes {axes}")
    out = list(src)
    for a in axes:
        out.insert(a, 1)
    return out


def _slice_params(node: Node, shape: tuple[int, ...], starts: Any, ends: Any, axes: Any,
                  steps: Any) -> tuple[list[int], list[int], list[int]]:
    """Normalise ONNX Slice arguments to one clamped (start, end, step) per axis, as
    nn.slice wants them: with a negative step, an end before index 0 is -1."""
    starts, ends = _ints(starts), _ints(ends)
    axes = list(range(len(starts))) if axes is None else _ints(axes)
    steps = [1] * len(starts) if steps is None else _ints(steps)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise node.error("starts, ends, axes and steps have different lengths")
    rank = len(shape)
    out_starts, out_ends, out_steps = [0] * rank, list(shape), [1] * rank
    seen = set()
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        axis = _axis(node, axis, rank)
        if axis in seen or step == 0:
            raise node.error("axes must be unique and steps non-zero")
        seen.add(axis)
        dim = shape[axis]
        start += dim if start < 0 else 0
        end += dim if end < 0 else 0
        if dim == 0:
            start = end = 0
        elif step > 0:
            start = min(max(start, 0), dim)
            end = max(min(max(end, 0), dim), start)
        else:
            start = min(max(start, 0), dim - 1)
            end = min(min(max(end, -1), dim - 1), start)
        out_starts[axis], out_ends[axis], out_steps[axis] = start, end, step
    return out_starts, out_ends, out_steps


def _split_sizes(node: Node, dim: int, split: Any) -> list[int]:
    """Piece sizes of a Split: given, or equal pieces (the last one smaller)."""
    if split is not None and np.size(split):
        sizes = _ints(split)
    else:
        count = node.attr("num_outputs") or len(node.proto.output)
        chunk = -(-dim // count)
        sizes = [max(0, min(chunk, dim - i * chunk)) for i in range(count)]
    if sum(sizes) != dim or min(sizes) < 0:
        raise node.error(f"split sizes {sizes} do not add up to dimension {dim}")
    return sizes


def _split_arg(im: _Importer, node: Node) -> Any:
    return node.attr("split") if "split" in node.attrs else im.const(node, 1, "split")


# ---------------------------------------------------------------------------
# constant folding (numpy)
# ---------------------------------------------------------------------------
def _fold_shape(node: Node, shape: tuple[int, ...]) -> np.ndarray:
    """Shape (with opset 15 start/end) and Size of a tensor of known static shape."""
    if node.op_type == "Size":
        return np.array(math.prod(shape), dtype=np.int64)
    start, end = node.attr("start", 0), node.attr("end", None)
    return np.array(shape[start:end], dtype=np.int64)


def _arg(args: list, i: int) -> np.ndarray | None:
    return args[i] if i < len(args) else None


def _fold(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    """Evaluate a node whose inputs are all constants."""
    try:
        folder = FOLDERS.get(node.op_type)
        if folder is not None:
            out = folder(node, args)
            results = out if isinstance(out, list) else [out]
        else:
            results = _fold_reference(node, args)
    except RkcError:
        raise
    except Exception as e:
        raise node.error(f"cannot evaluate the node on its constant inputs: {_first_line(e)}"
                         ) from None
    return [np.asarray(r) for r in results]


def _fold_reference(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    """Fallback: ONNX's reference implementation, for ops FOLDERS does not cover."""
    from onnx.reference import ReferenceEvaluator

    if any(a.type == onnx.AttributeProto.GRAPH for a in node.proto.attribute):
        raise _unsupported(node.op_type, node.name, node.opset)
    feeds = {name: value for name, value in zip(node.proto.input, args, strict=True) if name}
    return ReferenceEvaluator(node.proto, opsets={"": node.opset}).run(None, feeds)


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer division truncating toward zero, as ONNX (C) does."""
    q = np.floor_divide(a, b)
    return q + ((q < 0) & (q * b != a))


_FOLD_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Pow": np.power,
    "Div": lambda a, b: _int_div(a, b) if np.issubdtype(a.dtype, np.integer) else a / b,
    "Mod": lambda a, b: np.mod(a, b),
}
_FOLD_COMPARE: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "Equal": np.equal, "Less": np.less, "Greater": np.greater, "LessOrEqual": np.less_equal,
    "GreaterOrEqual": np.greater_equal, "And": np.logical_and, "Or": np.logical_or,
    "Xor": np.logical_xor,
}
_FOLD_UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Floor": np.floor, "Ceil": np.ceil, "Round": np.round, "Neg": np.negative, "Abs": np.abs,
    "Sqrt": np.sqrt, "Exp": np.exp, "Log": np.log, "Not": np.logical_not, "Sign": np.sign,
    "Relu": lambda x: np.maximum(x, 0).astype(x.dtype), "Reciprocal": lambda x: 1 / x,
    "Sigmoid": lambda x: 1 / (1 + np.exp(-x)), "Tanh": np.tanh,
}


def _fold_elementwise(node: Node, args: list) -> np.ndarray:
    op = node.op_type
    if op in _FOLD_UNARY:
        return _FOLD_UNARY[op](args[0]).astype(args[0].dtype, copy=False)
    if op in _FOLD_COMPARE:
        return _FOLD_COMPARE[op](args[0], args[1])
    if op == "Mod" and node.attr("fmod", 0):
        return np.fmod(args[0], args[1])
    return _FOLD_BINARY[op](args[0], args[1]).astype(args[0].dtype, copy=False)


def _fold_variadic(node: Node, args: list) -> np.ndarray:
    fn = {"Max": np.maximum, "Min": np.minimum, "Sum": np.add}[node.op_type]
    return functools.reduce(fn, args).astype(args[0].dtype, copy=False)


def _fold_cast(node: Node, args: list) -> np.ndarray:
    return args[0].astype(onnx.helper.tensor_dtype_to_np_dtype(node.attr("to")))


def _fold_constant_of_shape(node: Node, args: list) -> np.ndarray:
    value = node.attr("value")
    fill = numpy_helper.to_array(value).reshape(-1) if value is not None \
        else np.zeros(1, np.float32)
    return np.full(tuple(_ints(args[0])), fill[0], dtype=fill.dtype)


def _fold_range(node: Node, args: list) -> np.ndarray:
    start, limit, delta = args
    return np.arange(start, limit, delta).astype(start.dtype)


def _fold_gather(node: Node, args: list) -> np.ndarray:
    data, indices = args
    return np.take(data, indices, axis=_axis(node, node.attr("axis", 0), data.ndim))


def _fold_concat(node: Node, args: list) -> np.ndarray:
    kept = [a for a in args if a.size] or args[:1]  # empty inputs may have any rank
    return np.concatenate(kept, axis=_axis(node, node.attr("axis"), kept[0].ndim))


def _fold_reshape(node: Node, args: list) -> np.ndarray:
    return args[0].reshape(_reshape_shape(node, args[0].shape, _ints(args[1])))


def _fold_slice(node: Node, args: list) -> np.ndarray:
    x = args[0]
    if "starts" in node.attrs:  # opset < 10
        params = (node.attr("starts"), node.attr("ends"), node.attr("axes"), None)
    else:
        params = (_arg(args, 1), _arg(args, 2), _arg(args, 3), _arg(args, 4))
    starts, ends, steps = _slice_params(node, x.shape, *params)
    return x[tuple(slice(s, None if e < 0 else e, st)
                   for s, e, st in zip(starts, ends, steps, strict=True))]


def _fold_split(node: Node, args: list) -> list[np.ndarray]:
    x = args[0]
    axis = _axis(node, node.attr("axis", 0), x.ndim)
    split = node.attr("split") if "split" in node.attrs else _arg(args, 1)
    sizes = _split_sizes(node, x.shape[axis], split)
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


def _fold_squeeze(node: Node, args: list) -> np.ndarray:
    return args[0].reshape(_squeeze_shape(node, args[0].shape, _axes_arg(node, _arg(args, 1))))


def _fold_unsqueeze(node: Node, args: list) -> np.ndarray:
    return args[0].reshape(_unsqueeze_shape(node, args[0].shape, _axes_arg(node, _arg(args, 1))))


def _fold_flatten(node: Node, args: list) -> np.ndarray:
    return args[0].reshape(_flatten_shape(node, args[0].shape))


def _fold_transpose(node: Node, args: list) -> np.ndarray:
    return np.transpose(args[0], node.attr("perm"))


def _fold_expand(node: Node, args: list) -> np.ndarray:
    shape = np.broadcast_shapes(args[0].shape, tuple(_ints(args[1])))
    return np.broadcast_to(args[0], shape).copy()


FOLDERS: dict[str, Callable[[Node, list], np.ndarray | list[np.ndarray]]] = {
    **{op: _fold_elementwise for op in (*_FOLD_BINARY, *_FOLD_COMPARE, *_FOLD_UNARY)},
    "Max": _fold_variadic, "Min": _fold_variadic, "Sum": _fold_variadic,
    "Cast": _fold_cast, "ConstantOfShape": _fold_constant_of_shape, "Range": _fold_range,
    "Gather": _fold_gather, "Concat": _fold_concat, "Reshape": _fold_reshape,
    "Slice": _fold_slice, "Split": _fold_split, "Squeeze": _fold_squeeze,
    "Unsqueeze": _fold_unsqueeze, "Flatten": _fold_flatten, "Transpose": _fold_transpose,
    "Expand": _fold_expand,
    "Where": lambda node, args: np.where(*args),
    "Tile": lambda node, args: np.tile(args[0], _ints(args[1])),
}


# ---------------------------------------------------------------------------
# converters: ONNX node -> nn ops
# ---------------------------------------------------------------------------
def _pads(node: Node, sizes: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
          dilations: Sequence[int]) -> list[int]:
    """Explicit [top, left, bottom, right] pads of a Conv or pool, resolving auto_pad."""
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad == "NOTSET":
        pads = _ints(node.attr("pads", [0, 0, 0, 0]))
        if len(pads) != 4:
            raise node.error(f"pads {pads} need 4 values")
        return pads
    if auto_pad == "VALID":
        return [0, 0, 0, 0]
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise node.error(f"unknown auto_pad '{auto_pad}'")
    begins, ends = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dilations, strict=True):
        total = max(0, (-(-size // s) - 1) * s + (k - 1) * d + 1 - size)
        begin = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
        begins.append(begin)
        ends.append(total - begin)
    return begins + ends


def _spatial2d(node: Node, x: SSAValue) -> tuple[int, ...]:
    shape = _shape_of(x)
    if len(shape) != 4:
        raise node.error(f"only 2-D (4-D NCHW input) is supported, got input shape {list(shape)}")
    return shape


def _conv_window(node: Node, w: SSAValue) -> tuple[list[int], list[int], list[int]]:
    """Kernel (from the 4-D weight; kernel_shape must agree), strides and dilations."""
    shape = _shape_of(w)
    if len(shape) != 4:
        raise node.error(f"only 2-D (4-D weight) is supported, got weight shape {list(shape)}")
    kernel = list(shape[2:])
    if _ints(node.attr("kernel_shape", kernel)) != kernel:
        raise node.error(f"kernel_shape {node.attr('kernel_shape')} differs from the weight's "
                         f"{kernel}")
    return _window(node, kernel)


def _window(node: Node, kernel: Sequence[int]) -> tuple[list[int], list[int], list[int]]:
    kernel = _ints(kernel)
    strides = _ints(node.attr("strides", [1, 1]))
    dilations = _ints(node.attr("dilations", [1, 1]))
    if not len(kernel) == len(strides) == len(dilations) == 2:
        raise node.error("kernel_shape, strides and dilations need 2 values")
    return kernel, strides, dilations


def _conv(im: _Importer, node: Node) -> Operation:
    """Conv (2-D) -> nn.conv2d; auto_pad becomes explicit pads."""
    x, w, b = im.operand(node, 0), im.operand(node, 1), im.optional(node, 2)
    shape = _spatial2d(node, x)
    kernel, strides, dilations = _conv_window(node, w)
    pads = _pads(node, shape[2:], kernel, strides, dilations)
    return nn.Conv2dOp(x, w, b, strides=strides, pads=pads, dilations=dilations,
                       group=node.attr("group", 1), name=node.name)


def _conv_transpose(im: _Importer, node: Node) -> Operation:
    """ConvTranspose (2-D) -> nn.conv_transpose2d; output_shape and auto_pad become
    explicit pads and output_padding (onnxruntime's rules)."""
    x, w, b = im.operand(node, 0), im.operand(node, 1), im.optional(node, 2)
    shape = _spatial2d(node, x)
    kernel, strides, dilations = _conv_window(node, w)
    out_pad = _ints(node.attr("output_padding", [0, 0]))
    auto_pad = node.attr("auto_pad", "NOTSET")
    output_shape = node.attr("output_shape")
    if output_shape or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        targets = _ints(output_shape)[-2:] if output_shape else \
            [size * s for size, s in zip(shape[2:], strides, strict=True)]
        begins, ends = [], []
        for i in range(2):
            total = strides[i] * (shape[2 + i] - 1) + out_pad[i] + \
                (kernel[i] - 1) * dilations[i] + 1 - targets[i]
            if total < 0:  # a larger output than the natural one: extend at the end
                out_pad[i] -= total
                total = 0
            begin = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            begins.append(begin)
            ends.append(total - begin)
        pads = begins + ends
    elif auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    else:
        pads = _pads(node, shape[2:], kernel, strides, dilations)
    return nn.ConvTranspose2dOp(x, w, b, strides=strides, pads=pads, dilations=dilations,
                                group=node.attr("group", 1), output_padding=out_pad,
                                name=node.name)


def _matmul(im: _Importer, node: Node) -> Operation:
    return nn.MatmulOp(im.operand(node, 0), im.operand(node, 1), name=node.name)


def _gemm(im: _Importer, node: Node) -> Operation:
    return nn.GemmOp(im.operand(node, 0), im.operand(node, 1), im.optional(node, 2),
                     alpha=node.attr("alpha", 1.0), beta=node.attr("beta", 1.0),
                     trans_a=node.attr("transA", 0), trans_b=node.attr("transB", 0),
                     name=node.name)


BINARY_OPS: dict[str, type[nn.BinaryOp]] = {
    "Add": nn.AddOp, "Sub": nn.SubOp, "Mul": nn.MulOp, "Div": nn.DivOp, "Pow": nn.PowOp,
}
UNARY_OPS: dict[str, type[nn.UnaryOp]] = {
    "Relu": nn.ReluOp, "Sigmoid": nn.SigmoidOp, "Tanh": nn.TanhOp, "Exp": nn.ExpOp,
    "Log": nn.LogOp, "Sqrt": nn.SqrtOp, "Abs": nn.AbsOp, "Neg": nn.NegOp, "Erf": nn.ErfOp,
    "HardSwish": nn.HardSwishOp, "GlobalAveragePool": nn.GlobalAvgPoolOp,
    "GlobalMaxPool": nn.GlobalMaxPoolOp,
}


def _binary(im: _Importer, node: Node) -> Operation | SSAValue:
    """Add/Sub/Mul/Div/Pow; a Mul that closes an erf-GELU pattern becomes nn.gelu."""
    lhs = im.operand(node, 0)
    rhs = _operand_like(im, node, 1, lhs)
    if node.op_type == "Mul":
        x = _match_gelu(lhs, rhs)
        if x is not None:
            return nn.GeluOp(x, name=node.name)
    return BINARY_OPS[node.op_type](lhs, rhs, name=node.name)


def _operand_like(im: _Importer, node: Node, i: int, like: SSAValue) -> SSAValue:
    """Input i; a constant of another element type (Pow's exponent) is cast to `like`'s."""
    value = im.get(node.input(i), node)
    assert isinstance(like.type, TensorType)
    dtype = nn.numpy_dtype(like.type.element_type)
    if isinstance(value, np.ndarray) and value.dtype != dtype:
        return nn.ConstantOp(value.astype(dtype), name=node.input(i)).output
    return im.operand(node, i)


def _unary(im: _Importer, node: Node) -> Operation:
    return UNARY_OPS[node.op_type](im.operand(node, 0), name=node.name)


def _variadic(im: _Importer, node: Node) -> SSAValue:
    """Max/Min/Sum of any number of inputs, as a chain of binary ops."""
    cls = {"Max": nn.MaxOp, "Min": nn.MinOp, "Sum": nn.AddOp}[node.op_type]
    result = im.operand(node, 0)
    for i in range(1, len(node.proto.input)):
        result = cls(result, im.operand(node, i), name=node.name).output
    return result


def _leaky_relu(im: _Importer, node: Node) -> Operation:
    return nn.LeakyReluOp(im.operand(node, 0), alpha=node.attr("alpha", 0.01), name=node.name)


def _hard_sigmoid(im: _Importer, node: Node) -> Operation:
    return nn.HardSigmoidOp(im.operand(node, 0), alpha=node.attr("alpha", 0.2),
                            beta=node.attr("beta", 0.5), name=node.name)


def _prelu(im: _Importer, node: Node) -> Operation:
    return nn.PReluOp(im.operand(node, 0), im.operand(node, 1), name=node.name)


def _bound(im: _Importer, node: Node, i: int, what: str, default: float) -> float:
    value = im.const(node, i, what)
    if value is None or value.size == 0:
        return default
    return float(value.reshape(-1)[0])


def _clip(im: _Importer, node: Node) -> Operation:
    """Clip with attribute bounds (opset < 11) or constant min/max inputs."""
    lo = _bound(im, node, 1, "min", node.attr("min", -math.inf))
    hi = _bound(im, node, 2, "max", node.attr("max", math.inf))
    return nn.ClipOp(im.operand(node, 0), min(lo, hi), hi, name=node.name)  # min > max: max


def _gelu(im: _Importer, node: Node) -> Operation:
    return nn.GeluOp(im.operand(node, 0), approximate=node.attr("approximate", "none"),
                     name=node.name)


def _softmax(im: _Importer, node: Node) -> Operation:
    """Softmax; before opset 13 it normalises the input flattened to 2-D at `axis`."""
    x = im.operand(node, 0)
    shape = _shape_of(x)
    if node.opset >= 13:
        return nn.SoftmaxOp(x, axis=_axis(node, node.attr("axis", -1), len(shape)),
                            name=node.name)
    axis = _axis(node, node.attr("axis", 1), len(shape))
    if axis == len(shape) - 1:
        return nn.SoftmaxOp(x, axis=axis, name=node.name)
    flat = nn.ReshapeOp(x, [math.prod(shape[:axis]), math.prod(shape[axis:])], name=node.name)
    soft = nn.SoftmaxOp(flat.output, axis=1, name=node.name)
    return nn.ReshapeOp(soft.output, shape, name=node.name)


def _require_unused_outputs(im: _Importer, node: Node, first: int) -> None:
    for name in node.proto.output[first:]:
        if name and name in im.used:
            raise node.error(f"output '{name}' is used; only the first output is supported")


def _batch_norm(im: _Importer, node: Node) -> Operation:
    """BatchNormalization in inference mode (the running-statistics outputs unused)."""
    _require_unused_outputs(im, node, 1)
    if node.attr("training_mode", 0):
        raise node.error("training_mode is not supported")
    return nn.BatchNormOp(*(im.operand(node, i) for i in range(5)),
                          epsilon=node.attr("epsilon", 1e-5), name=node.name)


def _layer_norm(im: _Importer, node: Node) -> Operation:
    _require_unused_outputs(im, node, 1)
    return nn.LayerNormOp(im.operand(node, 0), im.operand(node, 1), im.optional(node, 2),
                          axis=node.attr("axis", -1), epsilon=node.attr("epsilon", 1e-5),
                          name=node.name)


def _max_pool(im: _Importer, node: Node) -> Operation:
    """MaxPool (2-D); the Indices output must be unused."""
    _require_unused_outputs(im, node, 1)
    x = im.operand(node, 0)
    shape = _spatial2d(node, x)
    kernel, strides, dilations = _window(node, node.attr("kernel_shape", []))
    return nn.MaxPool2dOp(x, kernel, strides=strides, dilations=dilations,
                          pads=_pads(node, shape[2:], kernel, strides, dilations),
                          ceil_mode=node.attr("ceil_mode", 0), name=node.name)


def _avg_pool(im: _Importer, node: Node) -> Operation:
    x = im.operand(node, 0)
    shape = _spatial2d(node, x)
    kernel, strides, dilations = _window(node, node.attr("kernel_shape", []))
    if dilations != [1, 1]:
        raise node.error(f"dilations {dilations} are not supported")
    return nn.AvgPool2dOp(x, kernel, strides=strides,
                          pads=_pads(node, shape[2:], kernel, strides, dilations),
                          ceil_mode=node.attr("ceil_mode", 0),
                          count_include_pad=node.attr("count_include_pad", 0), name=node.name)


REDUCE_OPS: dict[str, type[nn.ReduceOp]] = {
    "ReduceMean": nn.ReduceMeanOp, "ReduceMax": nn.ReduceMaxOp, "ReduceSum": nn.ReduceSumOp,
}


def _reduce(im: _Importer, node: Node) -> Operation | SSAValue:
    """ReduceMean/Max/Sum; axes from the attribute or a constant input."""
    x = im.operand(node, 0)
    axes = _axes_arg(node, im.const(node, 1, "axes"))
    if not axes:
        if node.attr("noop_with_empty_axes", 0):
            return x
        axes = list(range(len(_shape_of(x))))
    return REDUCE_OPS[node.op_type](x, axes, keepdims=bool(node.attr("keepdims", 1)),
                                    name=node.name)


def _argmax(im: _Importer, node: Node) -> Operation:
    return nn.ArgMaxOp(im.operand(node, 0), axis=node.attr("axis", 0),
                       keepdims=bool(node.attr("keepdims", 1)),
                       select_last_index=bool(node.attr("select_last_index", 0)), name=node.name)


def _concat(im: _Importer, node: Node) -> Operation | SSAValue:
    """Concat; empty inputs (exporters emit them, of any rank) are dropped, as
    onnxruntime does."""
    indices = range(len(node.proto.input))
    kept = [i for i in indices if math.prod(_shape_of(im.get(node.input(i), node)))] or [0]
    inputs = [im.operand(node, i) for i in kept]
    if len(inputs) == 1:
        return inputs[0]
    return nn.ConcatOp(inputs, _axis(node, node.attr("axis"), len(_shape_of(inputs[0]))),
                       name=node.name)


def _split(im: _Importer, node: Node) -> Operation:
    x = im.operand(node, 0)
    shape = _shape_of(x)
    axis = _axis(node, node.attr("axis", 0), len(shape))
    sizes = _split_sizes(node, shape[axis], _split_arg(im, node))
    return nn.SplitOp(x, axis, sizes, name=node.name)


def _slice(im: _Importer, node: Node) -> Operation:
    """Slice with constant starts/ends/axes/steps -> nn.slice (normalised per axis)."""
    x = im.operand(node, 0)
    if "starts" in node.attrs:  # opset < 10
        params = (node.attr("starts"), node.attr("ends"), node.attr("axes"), None)
    else:
        params = (im.const(node, 1, "starts"), im.const(node, 2, "ends"),
                  im.const(node, 3, "axes"), im.const(node, 4, "steps"))
    starts, ends, steps = _slice_params(node, _shape_of(x), *params)
    return nn.SliceOp(x, starts, ends, steps, name=node.name)


def _gather(im: _Importer, node: Node) -> Operation:
    """Gather with constant indices: one strided nn.slice when the indices are evenly
    spaced, else a concat of one-element slices; then a reshape to the gathered shape."""
    x = im.operand(node, 0)
    shape = _shape_of(x)
    axis = _axis(node, node.attr("axis", 0), len(shape))
    indices = im.const(node, 1, "indices")
    flat = [i + shape[axis] if i < 0 else i for i in _ints(indices)]
    if not flat or min(flat) < 0 or max(flat) >= shape[axis]:
        raise node.error(f"indices {_ints(indices)} out of range for dimension {shape[axis]}")

    def take(start: int, count: int, step: int) -> SSAValue:
        starts, ends, steps = [0] * len(shape), list(shape), [1] * len(shape)
        end = start + count * step
        starts[axis], ends[axis], steps[axis] = start, -1 if end < 0 else end, step
        return nn.SliceOp(x, starts, ends, steps, name=node.name).output

    step = flat[1] - flat[0] if len(flat) > 1 else 1
    if step != 0 and flat == [flat[0] + k * step for k in range(len(flat))]:
        picked = take(flat[0], len(flat), step)
    else:
        picked = nn.ConcatOp([take(i, 1, 1) for i in flat], axis, name=node.name).output
    out = shape[:axis] + indices.shape + shape[axis + 1:]
    return nn.ReshapeOp(picked, out, name=node.name)


def _reshape(im: _Importer, node: Node) -> Operation:
    x = im.operand(node, 0)
    target = im.const(node, 1, "shape")
    if target is None:
        raise node.error("needs a shape input")
    return nn.ReshapeOp(x, _reshape_shape(node, _shape_of(x), _ints(target)), name=node.name)


def _flatten(im: _Importer, node: Node) -> Operation:
    x = im.operand(node, 0)
    return nn.ReshapeOp(x, _flatten_shape(node, _shape_of(x)), name=node.name)


def _squeeze(im: _Importer, node: Node) -> Operation:
    x = im.operand(node, 0)
    axes = _axes_arg(node, im.const(node, 1, "axes"))
    return nn.ReshapeOp(x, _squeeze_shape(node, _shape_of(x), axes), name=node.name)


def _unsqueeze(im: _Importer, node: Node) -> Operation:
    x = im.operand(node, 0)
    axes = _axes_arg(node, im.const(node, 1, "axes"))
    return nn.ReshapeOp(x, _unsqueeze_shape(node, _shape_of(x), axes), name=node.name)


def _transpose(im: _Importer, node: Node) -> Operation:
    x = im.operand(node, 0)
    perm = node.attr("perm") or list(reversed(range(len(_shape_of(x)))))
    return nn.TransposeOp(x, perm, name=node.name)


def _pad(im: _Importer, node: Node) -> Operation:
    """Pad with constant pads/constant_value/axes inputs (or opset < 11 attributes)."""
    x = im.operand(node, 0)
    rank = len(_shape_of(x))
    mode = node.attr("mode", "constant")
    if mode not in nn.PAD_MODES:
        raise node.error(f"mode '{mode}' is not supported")
    if "pads" in node.attrs:
        pads, value = _ints(node.attr("pads")), node.attr("value", 0.0)
    else:
        pads = _ints(im.const(node, 1, "pads"))
        value = _bound(im, node, 2, "constant_value", 0.0)
    axes = im.const(node, 3, "axes")
    if axes is not None:  # opset 18: pads only for these axes
        full = [0] * (2 * rank)
        for k, axis in enumerate(_ints(axes)):
            axis = _axis(node, axis, rank)
            full[axis], full[rank + axis] = pads[k], pads[len(pads) // 2 + k]
        pads = full
    return nn.PadOp(x, pads, mode=mode, value=value, name=node.name)


def _resize_arg(im: _Importer, node: Node, i: int, what: str) -> np.ndarray | None:
    value = im.const(node, i, what)
    return value if value is not None and value.size else None


def _resize(im: _Importer, node: Node) -> Operation:
    """Resize (opset 11+) with constant scales or sizes -> nn.resize with both. Opset 10's
    Resize (X, scales) has Upsample's semantics."""
    if node.opset < 11:
        return _upsample(im, node)
    x = im.operand(node, 0)
    shape = _shape_of(x)
    mode = node.attr("mode", "nearest")
    ctm = node.attr("coordinate_transformation_mode", "half_pixel")
    if mode not in nn.RESIZE_MODES:
        raise node.error(f"mode '{mode}' is not supported")
    if ctm not in nn.COORDINATE_MODES:
        raise node.error(f"coordinate_transformation_mode '{ctm}' is not supported")
    if node.attr("antialias", 0):
        raise node.error("antialias is not supported")
    if node.attr("keep_aspect_ratio_policy", "stretch") != "stretch":
        raise node.error("keep_aspect_ratio_policy other than 'stretch' is not supported")
    axes = [_axis(node, a, len(shape)) for a in node.attr("axes", range(len(shape)))]
    scales = _resize_arg(im, node, 2, "scales")
    sizes_arg = _resize_arg(im, node, 3, "sizes")
    full_scales, sizes = [1.0] * len(shape), list(shape)
    if sizes_arg is not None:
        for axis, size in zip(axes, _ints(sizes_arg), strict=True):
            sizes[axis] = size
            full_scales[axis] = size / shape[axis]
    elif scales is not None:
        for axis, scale in zip(axes, scales.reshape(-1), strict=True):
            full_scales[axis] = float(scale)
            sizes[axis] = int(np.floor(np.float32(shape[axis]) * np.float32(scale)))
    else:
        raise node.error("needs constant scales or sizes")
    return nn.ResizeOp(x, sizes, full_scales, mode=mode, coordinate_transformation_mode=ctm,
                       nearest_mode=node.attr("nearest_mode", "round_prefer_floor"),
                       name=node.name)


def _upsample(im: _Importer, node: Node) -> Operation:
    """Upsample (opset 9 style): nn.resize with asymmetric coordinates, floor rounding."""
    x = im.operand(node, 0)
    shape = _shape_of(x)
    scales = node.attr("scales") if "scales" in node.attrs else im.const(node, 1, "scales")
    if scales is None:
        raise node.error("needs scales")
    scales = [float(s) for s in np.asarray(scales).reshape(-1)]
    mode = {"bilinear": "linear"}.get(node.attr("mode", "nearest"), node.attr("mode", "nearest"))
    if mode not in nn.RESIZE_MODES:
        raise node.error(f"mode '{mode}' is not supported")
    if len(scales) != len(shape):
        raise node.error(f"scales {scales} need {len(shape)} values")
    sizes = [int(np.floor(np.float32(d) * np.float32(s))) for d, s in zip(shape, scales,
                                                                           strict=True)]
    # onnxruntime's legacy nearest rounding: floor when enlarging, ceil when shrinking
    if min(scales) < 1 < max(scales) and mode == "nearest":
        raise node.error(f"nearest scales {scales} mix enlarging and shrinking axes")
    nearest_mode = "ceil" if min(scales) < 1 else "floor"
    return nn.ResizeOp(x, sizes, scales, mode=mode, coordinate_transformation_mode="asymmetric",
                       nearest_mode=nearest_mode, name=node.name)


CAST_TYPES = {TensorProto.FLOAT: np.float32, TensorProto.FLOAT16: np.float16,
              TensorProto.INT8: np.int8, TensorProto.UINT8: np.uint8,
              TensorProto.INT32: np.int32, TensorProto.INT64: np.int64}


def _cast(im: _Importer, node: Node) -> Operation | SSAValue:
    x = im.operand(node, 0)
    to = node.attr("to")
    if to not in CAST_TYPES:
        name = TensorProto.DataType.Name(to) if to in TensorProto.DataType.values() else to
        raise node.error(f"cast to {name} is not supported")
    element = nn.element_type(CAST_TYPES[to])
    assert isinstance(x.type, TensorType)
    if x.type.element_type == element:
        return x
    return nn.CastOp(x, element, name=node.name)


Converter = Callable[[_Importer, Node], Operation | SSAValue | Sequence[SSAValue]]

CONVERTERS: dict[str, Converter] = {
    "Conv": _conv, "ConvTranspose": _conv_transpose, "MatMul": _matmul, "Gemm": _gemm,
    **{op: _binary for op in BINARY_OPS},
    **{op: _unary for op in UNARY_OPS},
    "Max": _variadic, "Min": _variadic, "Sum": _variadic,
    "LeakyRelu": _leaky_relu, "HardSigmoid": _hard_sigmoid, "PRelu": _prelu, "Clip": _clip,
    "Gelu": _gelu, "Softmax": _softmax, "BatchNormalization": _batch_norm,
    "LayerNormalization": _layer_norm, "MaxPool": _max_pool, "AveragePool": _avg_pool,
    **{op: _reduce for op in REDUCE_OPS},
    "ArgMax": _argmax, "Concat": _concat, "Gather": _gather, "Split": _split, "Slice": _slice,
    "Reshape": _reshape, "Flatten": _flatten, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze,
    "Transpose": _transpose, "Pad": _pad, "Resize": _resize, "Upsample": _upsample,
    "Cast": _cast,
}
UNFOLDED: set[str] = set()
"""Op types converted even when all their inputs are constants (DequantizeLinear: a
quantized weight stays quantized)."""


# ---------------------------------------------------------------------------
# erf-GELU: x * 0.5 * (1 + erf(x / sqrt(2))) in the orders exporters emit
# ---------------------------------------------------------------------------
def _scalar_constant(value: SSAValue) -> float | None:
    """The value of an nn.constant whose elements are all equal, else None."""
    op = value.owner
    if not isinstance(op, nn.ConstantOp):
        return None
    array = op.to_numpy()
    if array.size == 0 or not np.issubdtype(array.dtype, np.floating) or \
            not np.all(array == array.reshape(-1)[0]):
        return None
    return float(array.reshape(-1)[0])


def _is_constant(value: SSAValue, expected: float) -> bool:
    found = _scalar_constant(value)
    return found is not None and math.isclose(found, expected, rel_tol=1e-4)


def _operands_of(value: SSAValue, op_type: type[Operation]) -> tuple[SSAValue, ...]:
    op = value.owner
    return tuple(op.operands) if isinstance(op, op_type) else ()


def _erf_term(value: SSAValue) -> SSAValue | None:
    """x when `value` is 1 + erf(x / sqrt(2)) (or erf(x * 1/sqrt(2))), else None."""
    add = _operands_of(value, nn.AddOp)
    for one, erf in (add, add[::-1]) if add else ():
        if not _is_constant(one, 1.0) or not _operands_of(erf, nn.ErfOp):
            continue
        arg = erf.owner.operands[0]
        div = _operands_of(arg, nn.DivOp)
        if div and _is_constant(div[1], math.sqrt(2)):
            return div[0]
        mul = _operands_of(arg, nn.MulOp)
        for x, c in (mul, mul[::-1]) if mul else ():
            if _is_constant(c, math.sqrt(0.5)):
                return x
    return None


def _match_gelu(lhs: SSAValue, rhs: SSAValue) -> SSAValue | None:
    """x when lhs * rhs computes erf-GELU(x) from already-built ops, else None."""
    for a, b in ((lhs, rhs), (rhs, lhs)):
        if _is_constant(a, 0.5):  # 0.5 * (x * A)
            inner = _operands_of(b, nn.MulOp)
            for p, q in (inner, inner[::-1]) if inner else ():
                if _erf_term(q) is p:
                    return p
        inner = _operands_of(a, nn.MulOp)
        for p, q in (inner, inner[::-1]) if inner else ():
            if _is_constant(q, 0.5):
                if _erf_term(b) is p:  # (x * 0.5) * A
                    return p
                if _erf_term(p) is b:  # (A * 0.5) * x
                    return b
    return None


# QuantizeLinear, DequantizeLinear, QLinearConv and QLinearMatMul: the module registers
# its converters in CONVERTERS and UNFOLDED
from rkc.frontend import onnx_quant  # noqa: E402, F401
