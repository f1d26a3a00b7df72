"""rknpu-legalize: decide, per op and per chip, whether it runs on the NPU or the CPU.

Establishes: every op of the entry function but `nn.constant` and `func.return` carries
`rkc.placement = "npu"` or `"cpu"`; exactly the CPU ones carry `rkc.reason`, naming the
failed constraint with its values and the chip (`rkc.lowering.legality.npu_obstacle`).
Nothing else changes, so the module computes what it computed before. `nn-to-rknpu`
wraps the ops placed on the CPU in `rknpu.cpu` with that reason.

Option `target` (default rk3588): the chip whose limits apply (`rkc.targets`); an
unknown name is an RkcError.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import builtin
from xdsl.passes import ModulePass

from rkc.lowering.legality import place
from rkc.targets import get_target


@dataclass(frozen=True)
class RknpuLegalizePass(ModulePass):
    """Annotate each op of the entry function with `rkc.placement` (and `rkc.reason`)."""

    name = "rknpu-legalize"
    target: str = "rk3588"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        place(op, get_target(self.target))
