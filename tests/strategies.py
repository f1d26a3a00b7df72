"""Hypothesis strategies for random, valid `nn` modules and matching inputs.

`nn_graphs()` draws a `Graph`: a module with one `func.func @main` taking one or two
float32 tensors, built op by op by `GraphBuilder` from the ops the nn passes care
about (conv2d with groups / depthwise / strides / pads / dilations, batch_norm, pools,
activations and the two-op SiLU / hard-swish forms, broadcasting add / mul / sub
with constants that are sometimes all ones or zeros, concat, reshape, transpose,
gemm and matmul). Values get several uses and the function returns one or more of
them. Sizes stay small (<= 16 channels, <= 12x12) so that interpretation is fast.
Weights come from a numpy RNG seeded by a drawn integer, so hypothesis still
reproduces and shrinks examples.

`graph_inputs(graph)` draws a matching list of input arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from hypothesis import strategies as st
from xdsl.builder import ImplicitBuilder
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType, f32
from xdsl.ir import SSAValue

from rkc.dialects import nn

MAX_CHANNELS = 16
MAX_SIZE = 12


class Graph:
    """A generated module; prints as MLIR so hypothesis shows readable counterexamples.

    (Deliberately not a dataclass: hypothesis pretty-prints dataclasses field by field,
    which would walk the whole xDSL object graph.)
    """

    def __init__(self, module: ModuleOp, input_shapes: list[tuple[int, ...]]):
        self.module = module
        self.input_shapes = input_shapes

    def __repr__(self) -> str:
        return f"Graph(input_shapes={self.input_shapes}):\n{self.module}"

    def _repr_pretty_(self, p, cycle: bool) -> None:  # hypothesis / IPython pretty printer
        p.text(repr(self))


def _shape(v: SSAValue) -> tuple[int, ...]:
    assert isinstance(v.type, TensorType)
    return tuple(v.type.get_shape())


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


class GraphBuilder:
    """Appends random ops to the current block (an ImplicitBuilder must be active).

    Every `add_*` method either appends one or a few ops and returns True, or returns
    False when the graph has no value it applies to.
    """

    def __init__(self, draw: Callable, rng: np.random.Generator, inputs: Sequence[SSAValue]):
        self.draw = draw
        self.rng = rng
        self.values: list[SSAValue] = list(inputs)
        self.inputs = list(inputs)

    # ------------------------------------------------------------------ helpers
    def pick(self, ok: Callable[[SSAValue], bool] = lambda v: True) -> SSAValue | None:
        """A value satisfying `ok`, usually the most recent one (to build chains)."""
        candidates = [v for v in self.values if ok(v)]
        if not candidates:
            return None
        if self.draw(st.integers(0, 2)) > 0:
            return candidates[-1]
        return candidates[self.draw(st.integers(0, len(candidates) - 1))]

    def push(self, v: SSAValue) -> SSAValue:
        self.values.append(v)
        return v

    def random(self, shape: Sequence[int], scale: float = 1.0) -> np.ndarray:
        return np.asarray(self.rng.standard_normal(tuple(shape)) * scale, dtype=np.float32)

    def constant(self, shape: Sequence[int], fill: str = "random", scale: float = 1.0) -> SSAValue:
        """An nn.constant: random, all ones or all zeros; random ones are sometimes
        computed by a small constant subgraph (for constant folding)."""
        shape = tuple(shape)
        if fill == "ones":
            return nn.ConstantOp(np.ones(shape, np.float32)).output
        if fill == "zeros":
            return nn.ConstantOp(np.zeros(shape, np.float32)).output
        how = self.draw(st.sampled_from(["plain", "plain", "plain", "add", "reshape", "relu"]))
        if how == "add":
            a = nn.ConstantOp(self.random(shape, scale / 2)).output
            b = nn.ConstantOp(self.random(shape, scale / 2)).output
            return nn.AddOp(a, b).output
        if how == "reshape":
            flat = nn.ConstantOp(self.random((math.prod(shape),), scale)).output
            return nn.ReshapeOp(flat, shape).output
        if how == "relu":
            return nn.ReluOp(nn.ConstantOp(self.random(shape, scale)).output).output
        return nn.ConstantOp(self.random(shape, scale)).output

    # ------------------------------------------------------------------ ops
    def add_conv(self) -> bool:
        x = self.pick(lambda v: len(_shape(v)) == 4 and _shape(v)[1] <= MAX_CHANNELS)
        if x is None:
            return False
        n, c, h, w = _shape(x)
        draw = self.draw
        group = draw(st.sampled_from(_divisors(c)))
        if group == c and c > 1:  # depthwise, optionally with a channel multiplier
            out = c * draw(st.integers(1, max(1, MAX_CHANNELS // c)))
        else:
            out = group * draw(st.integers(1, max(1, MAX_CHANNELS // group)))
        kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        strides = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        dilations = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        pads = [draw(st.integers(0, k - 1)) for k in (kh, kw, kh, kw)]
        oh = nn.conv_output_size(h, kh, strides[0], pads[0], pads[2], dilations[0])
        ow = nn.conv_output_size(w, kw, strides[1], pads[1], pads[3], dilations[1])
        if oh < 1 or ow < 1:  # kernel does not fit: fall back to a 1x1 kernel
            kh = kw = 1
            dilations, pads = (1, 1), [0, 0, 0, 0]
        fan_in = (c // group) * kh * kw
        weight = nn.ConstantOp(self.random((out, c // group, kh, kw), 1 / math.sqrt(fan_in)))
        bias = (nn.ConstantOp(self.random((out,), 0.5)).output if draw(st.booleans()) else None)
        conv = nn.Conv2dOp(x, weight.output, bias, strides=strides, pads=pads,
                           dilations=dilations, group=group, name=f"conv{len(self.values)}")
        self.push(conv.output)
        self.follow_ups()
        return True

    def add_conv_transpose(self) -> bool:
        """A conv_transpose2d (stride 1 or 2, direct or depthwise) of a small 4-D value; not
        in KINDS: the builders whose passes handle it list it."""
        x = self.pick(lambda v: len(_shape(v)) == 4 and _shape(v)[1] <= MAX_CHANNELS
                      and max(_shape(v)[2:]) <= MAX_SIZE // 2)
        if x is None:
            return False
        c = _shape(x)[1]
        group = self.draw(st.sampled_from([g for g in (1, c) if c % g == 0]))
        out_per_group = self.draw(st.integers(1, max(1, MAX_CHANNELS // max(c, 1))))
        k = self.draw(st.integers(1, 3))
        stride = self.draw(st.integers(1, 2))
        w = nn.ConstantOp(self.random((c, out_per_group, k, k), 1 / math.sqrt(c * k * k)))
        b = (nn.ConstantOp(self.random((out_per_group * group,), 0.5)).output
             if self.draw(st.booleans()) else None)
        self.push(nn.ConvTranspose2dOp(x, w.output, b, strides=(stride, stride), group=group,
                                       name=f"deconv{len(self.values)}").output)
        return True

    def follow_ups(self) -> None:
        """After a conv / gemm: maybe a batch norm, then maybe an activation."""
        if self.draw(st.integers(0, 2)) == 0:
            self.add_batch_norm(self.values[-1])
        if self.draw(st.integers(0, 2)) > 0:
            self.add_activation(self.values[-1])

    def add_batch_norm(self, x: SSAValue | None = None) -> bool:
        x = x if x is not None else self.pick(lambda v: len(_shape(v)) in (2, 4))
        if x is None:
            return False
        c = _shape(x)[1]
        rng = self.rng
        params = [rng.uniform(0.5, 1.5, c), rng.standard_normal(c) * 0.5,
                  rng.standard_normal(c) * 0.5, rng.uniform(0.5, 2.0, c)]
        ops = [nn.ConstantOp(p.astype(np.float32)).output for p in params]
        eps = self.draw(st.sampled_from([1e-5, 1e-3]))
        self.push(nn.BatchNormOp(x, *ops, epsilon=eps, name=f"bn{len(self.values)}").output)
        return True

    def add_pool(self) -> bool:
        x = self.pick(lambda v: len(_shape(v)) == 4)
        if x is None:
            return False
        _, _, h, w = _shape(x)
        draw = self.draw
        kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        strides = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        pads = [draw(st.integers(0, k - 1)) for k in kernel + kernel]
        ceil_mode = draw(st.booleans())
        oh = nn.pool_output_size(h, kernel[0], strides[0], pads[0], pads[2], 1, ceil_mode)
        ow = nn.pool_output_size(w, kernel[1], strides[1], pads[1], pads[3], 1, ceil_mode)
        if oh < 1 or ow < 1:
            kernel, pads = (1, 1), [0, 0, 0, 0]
        if draw(st.booleans()):
            op = nn.MaxPool2dOp(x, kernel, strides=strides, pads=pads, ceil_mode=ceil_mode)
        else:
            op = nn.AvgPool2dOp(x, kernel, strides=strides, pads=pads, ceil_mode=ceil_mode,
                                count_include_pad=draw(st.booleans()))
        self.push(op.output)
        return True

    ACTIVATIONS = ("relu", "relu6", "clip", "leaky_relu", "sigmoid", "tanh", "silu_pattern",
                   "hard_swish_pattern", "silu", "hard_swish", "hard_sigmoid")

    def add_activation(self, x: SSAValue | None = None) -> bool:
        x = x if x is not None else self.pick()
        if x is None:
            return False
        kind = self.draw(st.sampled_from(self.ACTIVATIONS))
        if kind == "relu":
            y = nn.ReluOp(x).output
        elif kind == "relu6":
            y = nn.ClipOp(x, 0.0, 6.0).output
        elif kind == "clip":
            lo, hi = self.draw(st.sampled_from([(-0.5, 0.5), (-1.0, 2.0), (0.0, 1.0)]))
            y = nn.ClipOp(x, lo, hi).output
        elif kind == "leaky_relu":
            y = nn.LeakyReluOp(x, self.draw(st.sampled_from([0.01, 0.1, 0.2]))).output
        elif kind == "sigmoid":
            y = nn.SigmoidOp(x).output
        elif kind == "tanh":
            y = nn.TanhOp(x).output
        elif kind == "silu":
            y = nn.SiluOp(x).output
        elif kind == "hard_swish":
            y = nn.HardSwishOp(x).output
        elif kind == "hard_sigmoid":
            y = nn.HardSigmoidOp(x).output  # default alpha 0.2: not a hard-swish gate
        else:  # x * gate(x), in either operand order
            gate = (nn.SigmoidOp(x) if kind == "silu_pattern"
                    else nn.HardSigmoidOp(x, alpha=1 / 6, beta=0.5)).output
            y = (nn.MulOp(x, gate) if self.draw(st.booleans()) else nn.MulOp(gate, x)).output
        self.push(y)
        return True

    def add_binary(self) -> bool:
        x = self.pick()
        if x is None:
            return False
        shape = _shape(x)
        kind = self.draw(st.sampled_from(["add", "mul", "sub"]))
        cls = {"add": nn.AddOp, "mul": nn.MulOp, "sub": nn.SubOp}[kind]
        same = [v for v in self.values if _shape(v) == shape and v is not x]
        # two variable operands only for add / sub: repeated x*x would overflow float32
        if kind != "mul" and same and self.draw(st.booleans()):
            other = self.draw(st.sampled_from(same))
        else:
            other = self.constant(self.broadcast_shape(shape), self.draw(st.sampled_from(
                ["random", "random", "ones" if kind == "mul" else "zeros",
                 "zeros" if kind == "mul" else "ones"])))
        lhs, rhs = (x, other) if kind == "sub" or self.draw(st.booleans()) else (other, x)
        if kind == "sub" and self.draw(st.integers(0, 3)) == 0:
            lhs, rhs = rhs, lhs
        self.push(cls(lhs, rhs).output)
        return True

    def broadcast_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """A constant shape that broadcasts against `shape`; sometimes it widens a
        size-1 axis (then `x op const` has a bigger type than x)."""
        rank = len(shape)
        options = [shape, (1,), (), (shape[-1],)]
        if rank == 4:
            n, c, h, w = shape
            options += [(c, 1, 1), (1, c, 1, 1), (1, 1, h, w)]
            if (h == 1 or w == 1) and h * w < MAX_SIZE:
                options.append((1, 1, 2 if h == 1 else h, 2 if w == 1 else w))
        elif rank == 2:
            options += [(1, shape[1])]
        return self.draw(st.sampled_from(options))

    def add_concat(self) -> bool:
        x = self.pick(lambda v: len(_shape(v)) in (2, 4))
        if x is None:
            return False
        shape = _shape(x)
        axis = 1 if len(shape) == 4 else self.draw(st.integers(0, 1))
        partners = [v for v in self.values
                    if len(_shape(v)) == len(shape)
                    and all(a == b for i, (a, b) in enumerate(zip(_shape(v), shape, strict=True))
                            if i != axis)]
        inputs = [x] + [self.draw(st.sampled_from(partners))
                        for _ in range(self.draw(st.integers(0, 2)))]
        if len(shape) == 4 and sum(_shape(v)[1] for v in inputs) > MAX_CHANNELS:
            inputs = inputs[:1]
        self.push(nn.ConcatOp(inputs, axis).output)
        return True

    def add_reshape(self) -> bool:
        x = self.pick()
        if x is None:
            return False
        shape = _shape(x)
        options = [shape]
        if len(shape) == 4:
            n, c, h, w = shape
            options += [(n, c * h * w), (n, c, h * w, 1), (n, c, w, h)]
        elif len(shape) == 2 and shape[1] <= MAX_CHANNELS:
            options += [(shape[0], shape[1], 1, 1)]
        self.push(nn.ReshapeOp(x, self.draw(st.sampled_from(options))).output)
        return True

    def add_transpose(self) -> bool:
        x = self.pick(lambda v: len(_shape(v)) in (2, 4) and max(_shape(v)) <= MAX_CHANNELS)
        if x is None:
            return False
        rank = len(_shape(x))
        prev = x.owner
        choice = self.draw(st.integers(0, 3))
        if choice == 0:
            perm = list(range(rank))
        elif choice == 1 and isinstance(prev, nn.TransposeOp):  # undo the previous one
            perm = list(np.argsort(nn.ints(prev.properties, "perm")))
        else:
            perm = self.draw(st.permutations(range(rank)))
        self.push(nn.TransposeOp(x, perm).output)
        return True

    def flat(self) -> SSAValue | None:
        """A rank-2 value, flattening a rank-4 one if needed."""
        x = self.pick(lambda v: len(_shape(v)) in (2, 4))
        if x is not None and len(_shape(x)) == 4:
            n, c, h, w = _shape(x)
            x = self.push(nn.ReshapeOp(x, (n, c * h * w)).output)
        return x

    def add_gemm(self) -> bool:
        a = self.flat()
        if a is None:
            return False
        draw = self.draw
        trans_a, trans_b = draw(st.integers(0, 4)) == 0, draw(st.booleans())
        rows, inner = _shape(a)[::-1] if trans_a else _shape(a)
        m = draw(st.integers(1, MAX_CHANNELS))
        b = self.constant((m, inner) if trans_b else (inner, m), scale=1 / math.sqrt(inner))
        c_shape = draw(st.sampled_from([None, (m,), (1, m), (rows, m), (1,), (rows, 1), ()]))
        c = None if c_shape is None else self.constant(c_shape, scale=0.5)
        gemm = nn.GemmOp(a, b, c, alpha=draw(st.sampled_from([1.0, 1.0, 0.5, 2.0])),
                         beta=draw(st.sampled_from([1.0, 1.0, 0.5, 2.0])),
                         trans_a=trans_a, trans_b=trans_b, name=f"fc{len(self.values)}")
        self.push(gemm.output)
        self.follow_ups()
        return True

    def add_matmul(self) -> bool:
        a = self.pick(lambda v: len(_shape(v)) in (2, 4) and _shape(v)[-1] <= 64)
        if a is None:
            return False
        k = _shape(a)[-1]
        others = [v for v in self.values if len(_shape(v)) == 2 and _shape(v)[0] == k]
        if others and self.draw(st.booleans()):
            b = self.draw(st.sampled_from(others))
        else:
            b = self.constant((k, self.draw(st.integers(1, MAX_SIZE))), scale=1 / math.sqrt(k))
        self.push(nn.MatmulOp(a, b).output)
        return True

    KINDS = ("conv", "conv", "batch_norm", "pool", "activation", "binary", "binary", "concat",
             "reshape", "transpose", "gemm", "matmul")

    def add_random_op(self) -> bool:
        kind = self.draw(st.sampled_from(self.KINDS))
        return getattr(self, f"add_{kind}")()

    def results(self) -> list[SSAValue]:
        """The last value and sometimes a few earlier ones (never a function argument)."""
        produced = [v for v in self.values if v not in self.inputs]
        extra = self.draw(st.lists(st.sampled_from(produced), max_size=2, unique=True))
        return [produced[-1]] + [v for v in extra if v is not produced[-1]]


def _input_shape(draw) -> tuple[int, ...]:
    return (draw(st.integers(1, 2)), draw(st.integers(1, 8)),
            draw(st.integers(1, MAX_SIZE)), draw(st.integers(1, MAX_SIZE)))


def build_random_module(draw, shapes: list[tuple[int, ...]], builder_class: type,
                        max_ops: int) -> ModuleOp:
    """func.func @main over f32 inputs of `shapes` with 1..max_ops random ops added by a
    `builder_class(draw, rng, args)` (a GraphBuilder), returning some of its values."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_ops = draw(st.integers(1, max_ops))
    module = ModuleOp([])
    with ImplicitBuilder(module.body):
        fn = func.FuncOp("main", ([TensorType(f32, s) for s in shapes], []))
        with ImplicitBuilder(fn.body) as args:
            builder = builder_class(draw, rng, args)
            built = 0
            while built < n_ops:
                built += builder.add_random_op()
            func.ReturnOp(*builder.results())
    fn.update_function_type()
    return module


@st.composite
def nn_graphs(draw, max_ops: int = 8) -> Graph:
    """A random valid `nn` module: func.func @main with one or two f32 inputs."""
    first = _input_shape(draw)
    shapes = [first]
    if draw(st.booleans()):
        shapes.append(draw(st.sampled_from(
            [first, (first[0], draw(st.integers(1, 32))), _input_shape(draw)])))
    module = build_random_module(draw, shapes, GraphBuilder, max_ops)
    module.verify()
    return Graph(module, shapes)


def graph_inputs(graph: Graph) -> st.SearchStrategy[list[np.ndarray]]:
    """Random float32 inputs for `graph` (standard normal, from a drawn seed)."""

    def make(seed: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        return [rng.standard_normal(s).astype(np.float32) for s in graph.input_shapes]

    return st.integers(0, 2**32 - 1).map(make)


@st.composite
def graphs_with_inputs(draw, max_ops: int = 8) -> tuple[Graph, list[np.ndarray]]:
    """A graph and matching inputs."""
    graph = draw(nn_graphs(max_ops))
    return graph, draw(graph_inputs(graph))
