"""Print and parse time of an `nn` module with about 10 MB of weights.

Builds a chain of 3x3 convolutions (random f32 weights), prints it to text, parses the
text back, and checks the round trip. Prints one row per step with the time and the
throughput; run it with `python bench/print_parse.py [--blocks N] [--channels C]`.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from xdsl.builder import ImplicitBuilder
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType, f32
from xdsl.parser import Parser

from rkc.dialects import nn
from rkc.registry import make_context
from rkc.table import format_table


def build(blocks: int, channels: int) -> ModuleOp:
    rng = np.random.default_rng(0)
    t = TensorType(f32, [1, channels, 8, 8])
    module = ModuleOp([])
    with ImplicitBuilder(module.body):
        fn = func.FuncOp("main", ((t,), (t,)))
        with ImplicitBuilder(fn.body) as (x,):
            value = x
            for i in range(blocks):
                w = rng.standard_normal((channels, channels, 3, 3), dtype=np.float32)
                b = rng.standard_normal(channels, dtype=np.float32)
                conv = nn.Conv2dOp(value, nn.ConstantOp(w).output, nn.ConstantOp(b).output,
                                   pads=(1, 1, 1, 1), name=f"conv{i}")
                value = nn.AddOp(nn.ReluOp(conv.output).output, value).output
            func.ReturnOp(value)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blocks", type=int, default=200)
    parser.add_argument("--channels", type=int, default=37)
    args = parser.parse_args()

    module = build(args.blocks, args.channels)
    weight_bytes = sum(len(op.value.data.data) for op in module.walk()
                       if isinstance(op, nn.ConstantOp))
    ops = sum(1 for _ in module.walk())
    ctx = make_context()

    t0 = time.perf_counter()
    text = str(module)
    t_print = time.perf_counter() - t0
    t0 = time.perf_counter()
    parsed = Parser(ctx, text).parse_module()
    t_parse = time.perf_counter() - t0
    t0 = time.perf_counter()
    parsed.verify()
    t_verify = time.perf_counter() - t0
    assert str(parsed) == text, "print -> parse -> print changed the text"

    mb = weight_bytes / 1e6
    print(f"module: {ops} ops, {mb:.1f} MB of weights, {len(text) / 1e6:.1f} MB of text")
    rows = [(step, round(seconds, 3), round(mb / seconds, 1))
            for step, seconds in (("print", t_print), ("parse", t_parse),
                                  ("verify", t_verify))]
    print(format_table(["step", "seconds", "weight MB/s"], rows))


if __name__ == "__main__":
    main()
