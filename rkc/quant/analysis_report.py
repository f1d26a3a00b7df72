"""Accuracy-analysis output: a terminal table, a CSV file and a PNG plot."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

from rkc.errors import RkcError
from rkc.quant.analysis import LayerError
from rkc.table import format_table

COLUMNS = ["layer", "op", "precision", "entire cos", "entire euclid", "single cos",
           "single euclid"]


def _row(e: LayerError) -> list[object]:
    return [e.name, e.op, e.precision, round(e.cos_entire, 6), round(e.euclid_entire, 5),
            round(e.cos_single, 6), round(e.euclid_single, 5)]


def worst_layers(errors: Sequence[LayerError], count: int) -> list[LayerError]:
    """The `count` layers with the lowest single-layer cosine (each one's own error)."""
    ranked = [e for e in errors if not math.isnan(e.cos_single)]
    return sorted(ranked, key=lambda e: e.cos_single)[:count]


def format_errors(errors: Sequence[LayerError]) -> str:
    return format_table(COLUMNS, [_row(e) for e in errors])


def write_csv(errors: Sequence[LayerError], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(_row(e) for e in errors)


def plot_errors(errors: Sequence[LayerError], path: Path, worst: int = 5) -> None:
    """Cosine per layer (entire and single), worst single-layer ones marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RkcError("--plot needs matplotlib: pip install 'rkc[plot]'") from None
    x = list(range(len(errors)))
    fig, ax = plt.subplots(figsize=(max(8.0, len(errors) * 0.12), 4.5))
    ax.plot(x, [e.cos_entire for e in errors], label="entire (accumulated)", lw=1.2)
    ax.plot(x, [e.cos_single for e in errors], label="single layer", lw=1.0, ls="--")
    index = {id(e): i for i, e in enumerate(errors)}
    for e in worst_layers(errors, worst):
        i = index[id(e)]
        ax.scatter([i], [e.cos_single], color="red", zorder=3)
        ax.annotate(f"{e.name} ({e.op})", (i, e.cos_single), textcoords="offset points",
                    xytext=(4, -12), fontsize=7, color="red")
    ax.ticklabel_format(axis="y", useOffset=False)
    if len(errors) <= 60:
        ax.set_xticks(x, [e.name for e in errors], rotation=60, ha="right", fontsize=7)
    ax.set_xlabel("layer (execution order)")
    ax.set_ylabel("cosine similarity to float")
    ax.set_title("Quantization error per layer")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
