"""`rkc inspect FILE.rknn`: what a `.rknn` file holds, ours or rknn-toolkit2's.

Prints the header (format and model versions, platform, target, compiler, source, memory
sizes), the tensors with their quantization parameters, the nodes with their attributes, the
buffers, the task records and, with `--regcmd`, the register command stream disassembled
task by task with register and field names (backends/regcmd.py). `--json` prints the same
as one JSON document for programs. A file that cannot be read is a one-line RkcError. An
rkc-encrypted file (`rkc encrypt`) is read with `--key KEYFILE`; sizes are the plain file's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rkc.backends.rknn_file import (
    KIND_NAMES,
    KIND_TASK,
    RknnModel,
    RknnNode,
    RknnTensor,
    read_rknn,
)
from rkc.table import format_table


def add_inspect_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect", help="show what a .rknn file holds",
        description="Print the header, tensors (with quantization parameters), nodes, "
                    "buffers and tasks of a .rknn file (ours or rknn-toolkit2's); "
                    "--regcmd adds the register commands disassembled per task.")
    p.add_argument("file", metavar="FILE.rknn", help="the .rknn file")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--regcmd", action="store_true",
                   help="disassemble the register command stream, task by task")
    p.add_argument("--key", metavar="KEYFILE",
                   help="the key of an encrypted file (`rkc encrypt`)")
    p.set_defaults(func=cmd_inspect)


def cmd_inspect(args: argparse.Namespace) -> None:
    from rkc.encrypt_cli import read_plain_rknn

    path = Path(args.file)
    data = read_plain_rknn(path, args.key)
    model = read_rknn(data)
    size = len(data)
    regcmd_lines = regcmd_listing(model) if args.regcmd else None
    if args.json:
        document = inspect_json(model, size)
        if regcmd_lines is not None:
            document["regcmd_listing"] = regcmd_lines
        json.dump(document, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(inspect_text(model, path.name, size, regcmd_lines))


def regcmd_listing(model: RknnModel) -> list[str]:
    """The regcmd buffer disassembled task by task (empty without one)."""
    from rkc.backends.regcmd import disassemble_tasks

    regcmd, tasks = model.regcmd(), model.tensor_buffer(KIND_TASK) or b""
    if not regcmd:
        return []
    return disassemble_tasks(regcmd, tasks, model.target or "")


def _dims(shape: list[int] | None) -> str:
    return "-" if shape is None else "x".join(map(str, shape)) or "[]"


def _printable(line: str) -> str:
    """`line` with characters a terminal should not get (control codes, undecodable bytes
    kept as surrogates) shown as escapes."""
    if line.isprintable():
        return line
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)


def _values(values: list | None, limit: int = 4) -> str:
    if not values:
        return ""
    shown = [f"{v:.6g}" if isinstance(v, float) else str(v) for v in values[:limit]]
    return ",".join(shown) + (f",...({len(values)})" if len(values) > limit else "")


def _quant(t: RknnTensor) -> str:
    if not (t.qtype or t.scale or t.zero_point):
        return ""
    parts = [f"{t.qmethod or '?'}/{t.qtype or '?'}"]
    if t.scale:
        parts.append(f"scale={_values(t.scale)}")
    if t.zero_point:
        parts.append(f"zp={_values(t.zero_point)}")
    if t.min or t.max:
        parts.append(f"range=[{_values(t.min)}, {_values(t.max)}]")
    return " ".join(parts)


def _tensor_ref(tensors: list[RknnTensor], index: int) -> str:
    if 0 <= index < len(tensors) and tensors[index].name:
        return f"{index}:{tensors[index].name}"
    return str(index)


def _attributes(n: RknnNode) -> str:
    if n.attributes:
        return " ".join(f"{k}={_values(v, 8) if isinstance(v, list) else v}"
                        for k, v in n.attributes.items())
    return "(not decoded)" if 8 in n.undecoded_slots else ""


def _header_lines(m: RknnModel, name: str, size: int) -> list[str]:
    lines = [f"{name}: {size} bytes, file format {m.file_version}, model version "
             f"{m.model_version}",
             f"platform: {m.platform}   target: {m.target}   source: {m.source}",
             f"compiler: {m.compiler} (version number {m.compiler_version})",
             f"shape mode: {m.shape_mode}   weight memory: {m.weight_memory_size} B   "
             f"internal memory: {m.internal_memory_size} B"]
    if m.memory_slot2 is not None:
        lines.append(f"memory slot 2: {m.memory_slot2}")
    lines += [f"input json: {m.input_json}", f"output json: {m.output_json}",
              f"generator: {len(m.generator or '')} characters (--json shows it), "
              f"JSON trailer: {len(m.trailer or '')} characters"]
    undecoded = _undecoded(m)
    if undecoded:
        lines.append("slots not decoded: " + ", ".join(undecoded))
    return lines


def _undecoded(m: RknnModel) -> list[str]:
    found = [f"root.{s}" for s in m.undecoded_slots]
    for gi, g in enumerate(m.graphs):
        found += [f"graph{gi}.{s}" for s in g.undecoded_slots]
        found += [f"tensor{ti}.{s}" for ti, t in enumerate(g.tensors)
                  for s in t.undecoded_slots]
        found += [f"node{ni}.{s}" for ni, n in enumerate(g.nodes) for s in n.undecoded_slots]
    return found


def inspect_text(m: RknnModel, name: str, size: int,
                 regcmd_lines: list[str] | None = None) -> str:
    out = _header_lines(m, name, size)
    for gi, g in enumerate(m.graphs):
        title = f"graph {gi}: " if len(m.graphs) > 1 else ""
        io = ", ".join(_tensor_ref(g.tensors, i) for i in g.inputs or [])
        oo = ", ".join(_tensor_ref(g.tensors, i) for i in g.outputs or [])
        out += ["", f"{title}inputs: {io}   outputs: {oo}", "",
                f"{title}tensors ({len(g.tensors)}):"]
        rows = [(i, t.name or "", t.kind_name, t.dtype_name, t.layout_name, _dims(t.shape),
                 _dims(t.native_shape), t.size, t.buffer or "", t.memory_offset or "",
                 _quant(t)) for i, t in enumerate(g.tensors)]
        out.append(format_table(["#", "name", "kind", "dtype", "layout", "shape", "native",
                                 "bytes", "buffer", "mem offset", "quantization"], rows))
        out += ["", f"{title}nodes ({len(g.nodes)}):"]
        rows = [(i, n.type or "", n.name or "",
                 " ".join(_tensor_ref(g.tensors, k) for k in n.inputs or []),
                 " ".join(_tensor_ref(g.tensors, k) for k in n.outputs or []),
                 _attributes(n)) for i, n in enumerate(g.nodes)]
        out.append(format_table(["#", "type", "name", "inputs", "outputs", "attributes"],
                                rows))
    users: dict[int, list[str]] = {}
    for t in (t for g in m.graphs for t in g.tensors):
        if t.buffer:
            users.setdefault(t.buffer, []).append(t.name or KIND_NAMES.get(t.kind, "?"))
    total = sum(len(b or b"") for b in m.buffers)
    out += ["", f"buffers ({len(m.buffers)}, {total} bytes):"]
    rows = [(i, "-" if b is None else len(b), ", ".join(users.get(i, [])))
            for i, b in enumerate(m.buffers)]
    out.append(format_table(["#", "bytes", "tensors"], rows))
    tasks = m.tasks()
    regcmd = m.regcmd()
    out += ["", f"tasks ({len(tasks)}), regcmd {len(regcmd)} bytes "
                f"({len(regcmd) // 8} words):"]
    if tasks:
        rows = [(i, t["op_idx"], f"{t['enable_mask']:#x}", f"{t['int_mask']:#x}",
                 f"{t['int_clear']:#x}", t["regcfg_amount"], f"{t['regcmd_addr']:#x}",
                 f"{t['flags']:#x}") for i, t in enumerate(tasks)]
        out.append(format_table(["#", "op", "enable", "int_mask", "int_clear", "writes",
                                 "regcmd offset", "flags"], rows))
    raw_per_op = sum(t.kind == 7 for g in m.graphs for t in g.tensors)
    if not regcmd and raw_per_op:
        out.append(f"no regcmd tensor; {raw_per_op} raw kind-7 buffers hold per-op data "
                   f"(toolkit 1.x layout, not decoded)")
    if regcmd_lines is not None:
        out += ["", "register commands:"] + (regcmd_lines or ["(none)"])
    return "\n".join(_printable(line) for text in out for line in text.split("\n")) + "\n"


def _tensor_json(t: RknnTensor) -> dict:
    return {"name": t.name, "kind": t.kind, "kind_name": t.kind_name, "dtype": t.dtype,
            "dtype_name": t.dtype_name, "layout": t.layout, "layout_name": t.layout_name,
            "shape": t.shape, "native_shape": t.native_shape, "size": t.size,
            "buffer": t.buffer, "memory_offset": t.memory_offset, "qmethod": t.qmethod,
            "qtype": t.qtype, "min": t.min, "max": t.max, "scale": t.scale,
            "zero_point": t.zero_point, "slot20": t.slot20}


def _node_json(n: RknnNode) -> dict:
    return {"type": n.type, "name": n.name, "inputs": n.inputs, "outputs": n.outputs,
            "attributes": n.attributes, "blob_bytes": None if n.blob is None else len(n.blob),
            "slot3": n.slot3, "slot6": n.slot6, "slot7": n.slot7, "slot10": n.slot10,
            "slot11": n.slot11, "slot12": n.slot12, "slot13": n.slot13}


def inspect_json(m: RknnModel, size: int) -> dict:
    """Everything `inspect_text` shows, as plain JSON values (buffers by size only)."""
    return {
        "file_bytes": size, "file_version": m.file_version, "model_version": m.model_version,
        "platform": m.platform, "target": m.target, "source": m.source,
        "compiler": m.compiler, "compiler_version": m.compiler_version,
        "shape_mode": m.shape_mode, "weight_memory_size": m.weight_memory_size,
        "internal_memory_size": m.internal_memory_size, "memory_slot2": m.memory_slot2,
        "input_json": m.input_json, "output_json": m.output_json,
        "generator": m.generator, "trailer": m.trailer,
        "graphs": [{"inputs": g.inputs, "outputs": g.outputs,
                    "tensors": [_tensor_json(t) for t in g.tensors],
                    "nodes": [_node_json(n) for n in g.nodes]} for g in m.graphs],
        "buffers": [None if b is None else len(b) for b in m.buffers],
        "tasks": m.tasks(), "regcmd_bytes": len(m.regcmd()),
        "undecoded_slots": _undecoded(m),
    }
