"""Code generation for the Rockchip NPU (register command lists, `.rknn` files).

`registers`: the per-chip register database; `regcmd`: register command words, task
tails and records, disassembly."""
