"""A bar chart of the estimated time per NPU layer with its roofline floor (matplotlib,
the optional `plot` extra)."""

from __future__ import annotations

import io

from rkc.errors import RkcError
from rkc.perf.model import PerfEstimate


def plot_perf(perf: PerfEstimate) -> bytes:
    """PNG bytes: one bar per NPU layer (estimated us, execution order), the layer's
    roofline floor as a black tick on its bar."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RkcError("--plot needs matplotlib: pip install 'rkc[plot]'") from None
    layers = perf.npu_layers
    x = list(range(len(layers)))
    fig, ax = plt.subplots(figsize=(max(8.0, len(layers) * 0.14), 4.5))
    ax.bar(x, [perf.microseconds(layer.cycles) for layer in layers], color="tab:blue",
           label="estimate")
    ax.scatter(x, [perf.microseconds(layer.roofline_cycles) for layer in layers],
               marker="_", color="black", s=60, zorder=3, label="roofline floor")
    if len(layers) <= 60:
        ax.set_xticks(x, [f"{layer.name} ({layer.op})" for layer in layers], rotation=60,
                      ha="right", fontsize=7)
    ax.set_xlabel("NPU layer (execution order)")
    ax.set_ylabel(f"time (us at {perf.target.npu_clock_mhz} MHz)")
    ax.set_title(f"Estimated time per layer on {perf.target.name}, {perf.cores} core(s): "
                 f"{perf.time_us:.0f} us, {perf.fps:.1f} FPS")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()
