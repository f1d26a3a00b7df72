"""Register-level NPU simulator: runs a regcmd program against a memory image.

`Memory` (rkc.sim.memory) holds byte regions at addresses; `Npu` (rkc.sim.npu) follows the
PC chain and executes each task's CNA / CORE / DPU / DPU_RDMA / PPU / PPU_RDMA register
values (rkc.sim.cna, rkc.sim.dpu, rkc.sim.ppu). See docs/simulator.md.
"""

from rkc.sim.memory import Memory
from rkc.sim.npu import Npu, TaskRun

__all__ = ["Memory", "Npu", "TaskRun"]
