"""Run an rkc-compiled `.rknn` on the register-level simulator (an RKNN-Toolkit-Lite2-style
API), and `rkc run MODEL.rknn`.

`ProgramRunner` loads a `rkc.backends.program.Program`: it places the regcmd, the weight
arena and the feature arena in a simulated memory (`rkc.sim.Memory`, at `REGCMD_BASE`,
`WEIGHTS_BASE`, `FEATURES_BASE`), patches the relocations and the PC chain for those
addresses, and walks the host program (`Program.host_ir`) op by op:

- an op with `rknpu.task_range` runs its tasks on the simulated NPU (`rkc.sim.Npu`,
  following the PC chain from its first task record); each of its results is then read
  from the feature arena at its `rknpu.dram` span (`rkc.lowering.dram.decode`);
- every other op (`rknpu.cpu` regions, layout conversions, views and concat copies,
  constants) runs on the host with the reference interpreter's functions, and each
  result with a DRAM span is written into the feature arena (`encode`, padding bytes 0)
  so that later NPU tasks read it;
- the function's arguments are written into the arena first; the returned values are
  the outputs.

Invariant: the NPU's results come only from the simulated registers and memory -- the
interpreter never computes an NPU op. Tasks of a multi-core program run one after
another on one simulated core (their outputs are disjoint).

`RKNNLite` mirrors rknn-toolkit-lite2 (`load_rknn`, `init_runtime(core_mask=...)`,
`inference(inputs, data_format=...)`, `release`); methods return 0 like the vendor's and
raise `RkcError` on failure instead of returning -1.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from xdsl.dialects import func
from xdsl.ir import SSAValue

from rkc.backends.codegen import value_span
from rkc.backends.program import (
    ARENA_FEATURES,
    ARENA_WEIGHTS,
    TASK_RANGE_ATTR,
    Program,
    load_program,
)
from rkc.backends.regcmd import unpack_task_records
from rkc.dialects import nn
from rkc.errors import RkcError
from rkc.graph import main_function, output_names
from rkc.lowering.dram import decode, encode, storage_of
from rkc.passes.rknpu_plan_memory import DRAM_ATTR
from rkc.sim import Memory, Npu
from rkc.targets import get_target

REGCMD_BASE = 0x0010_0000
WEIGHTS_BASE = 0x1000_0000
FEATURES_BASE = 0x8000_0000
CORE_MASKS = {"rk3588": 0b111, "rk3568": 0b1}


class ProgramRunner:
    """A loaded program ready to run (see the module docstring)."""

    def __init__(self, program: Program):
        from rkc.driver import parse_ir
        from rkc.interpreter import make_interpreter

        program.check()
        self.program = program
        self.chip = program.chip
        self.target = get_target(program.chip)
        self.module = parse_ir(program.host_ir)
        self.function = main_function(self.module)
        self.interpreter = make_interpreter(self.module)
        self.records = unpack_task_records(program.task_records)
        bases = {ARENA_WEIGHTS: WEIGHTS_BASE, ARENA_FEATURES: FEATURES_BASE}
        if len(program.weight_blob) > FEATURES_BASE - WEIGHTS_BASE:
            raise RkcError(f"weight arena of {len(program.weight_blob)} bytes does not fit "
                           "the simulator's address map")
        self.memory = Memory()
        self.memory.add("regcmd", REGCMD_BASE, program.patched_regcmd(bases, REGCMD_BASE))
        self.memory.add(ARENA_WEIGHTS, WEIGHTS_BASE, program.weight_blob or b"\0")
        self.features = self.memory.add(ARENA_FEATURES, FEATURES_BASE,
                                        max(program.feature_bytes, 1))
        self.npu = Npu(self.chip, self.memory)
        self.tasks_run = 0
        self.task_kinds: Counter = Counter()      # "conv" / "ew" / "pool" tasks run

    # ------------------------------------------------------------------ arena access
    def _store(self, value: SSAValue, array: np.ndarray) -> None:
        offset, _ = value_span(value)
        data = encode(np.asarray(array), storage_of(value, self.target))
        if offset + data.size > self.features.data.size:
            raise RkcError(f"value of {data.size} bytes at {offset} outside the "
                           f"{self.features.data.size}-byte feature arena")
        self.features.data[offset:offset + data.size] = data

    def _load(self, value: SSAValue) -> np.ndarray:
        offset, _ = value_span(value)
        storage = storage_of(value, self.target)
        return decode(self.features.data[offset:offset + storage.size], storage)

    def _has_span(self, value: SSAValue) -> bool:
        op = value.owner
        return hasattr(op, "attributes") and DRAM_ATTR in op.attributes

    # ------------------------------------------------------------------ running
    def run(self, inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray]
            ) -> dict[str, np.ndarray]:
        """The outputs (IR values, by output name) for `inputs` (the function's argument
        types, by name or position)."""
        from rkc.interpreter import order_inputs

        args = order_inputs(self.module, inputs)
        values: dict[SSAValue, np.ndarray] = {}
        for arg, array in zip(self.function.body.block.args, args, strict=True):
            values[arg] = array
            self._store(arg, array)
        for op in self.function.body.block.ops:
            if isinstance(op, func.ReturnOp):
                return dict(zip(output_names(self.function),
                                (np.asarray(values[v]) for v in op.arguments), strict=True))
            task_range = op.attributes.get(TASK_RANGE_ATTR)
            if task_range is not None:
                first, count = (int(v) for v in task_range.get_values())
                runs = self.npu.run_records(self.records, first, count, REGCMD_BASE)
                self.tasks_run += count
                self.task_kinds.update(run.kind for run in runs)
                for r in op.results:
                    values[r] = self._load(r)
                continue
            results = self.interpreter.run_op(op, tuple(values[o] for o in op.operands))
            for r, array in zip(op.results, results, strict=True):
                values[r] = np.asarray(array)
                if not isinstance(op, nn.ConstantOp) and self._has_span(r):
                    self._store(r, values[r])
        raise RkcError("host program: the function has no return")


def run_rknn(path: str | Path, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`rkc run MODEL.rknn`: the outputs of an rkc-compiled file on the simulator."""
    return ProgramRunner(load_program(Path(path))).run(inputs)


class RKNNLite:
    """The rknn-toolkit-lite2 API over the simulator (see the module docstring)."""

    NPU_CORE_AUTO = 0
    NPU_CORE_0 = 1
    NPU_CORE_1 = 2
    NPU_CORE_2 = 4
    NPU_CORE_0_1 = 3
    NPU_CORE_0_1_2 = 7
    NPU_CORE_ALL = 0xFFFF

    def __init__(self, verbose: bool = False):
        self.verbose = verbose
        self._program: Program | None = None
        self._runner: ProgramRunner | None = None

    def load_rknn(self, path: str | Path) -> int:
        self._program = load_program(Path(path))
        self._runner = None
        return 0

    def init_runtime(self, target: str | None = None, core_mask: int = NPU_CORE_AUTO) -> int:
        if self._program is None:
            raise RkcError("init_runtime: load_rknn first")
        if target is not None and target.lower() != self._program.chip:
            raise RkcError(f"init_runtime: the model is compiled for {self._program.chip}, "
                           f"not {target}")
        cores = CORE_MASKS[self._program.chip]
        if core_mask not in (self.NPU_CORE_AUTO, self.NPU_CORE_ALL) and (
                core_mask <= 0 or core_mask & ~cores):
            raise RkcError(f"init_runtime: core mask {core_mask:#x} names cores that "
                           f"{self._program.chip} does not have (mask {cores:#b})")
        self._runner = ProgramRunner(self._program)
        return 0

    def inference(self, inputs: Sequence[np.ndarray], data_format: str | None = "nchw"
                  ) -> list[np.ndarray]:
        """The outputs, in order, for `inputs` in order; `data_format` "nhwc" takes 4-D
        inputs as NHWC (transposed to the model's NCHW)."""
        if self._runner is None:
            raise RkcError("inference: init_runtime first")
        if data_format not in (None, "nchw", "nhwc"):
            raise RkcError(f"inference: data_format {data_format!r} is not nchw or nhwc")
        arrays = [np.asarray(x) for x in inputs]
        if data_format == "nhwc":
            arrays = [x.transpose(0, 3, 1, 2) if x.ndim == 4 else x for x in arrays]
        return list(self._runner.run(arrays).values())

    def release(self) -> None:
        self._program = None
        self._runner = None
