"""Gantt chart of a run: one row per device (uplink chunks) and per core (layers)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI

import matplotlib.pyplot as plt
from matplotlib.patches import Patch

from owin_cosim.results.records import RunResult

__all__ = ["plot_gantt"]


def plot_gantt(result: RunResult, path: str | Path, *, title: str | None = None) -> None:
    """Draw the uplink and core timelines of ``result`` into a PNG at ``path``."""
    devices = list(result.devices)
    rows = [f"uplink {d}" for d in devices] + [f"core {c}" for c in range(result.num_cores)]
    colours = plt.get_cmap("tab10")
    group_colour: dict[str, tuple[float, float, float, float]] = {}
    for i, d in enumerate(devices):
        group_colour[f"encoder:{d}"] = colours(i % 10)
    fig, ax = plt.subplots(figsize=(11, 0.45 * len(rows) + 1.6), dpi=110)
    for ch in result.chunks:
        y = devices.index(ch.device)
        ax.barh(
            y,
            ch.last_byte_s - ch.first_byte_s,
            left=ch.first_byte_s,
            height=0.6,
            color=group_colour[f"encoder:{ch.device}"],
            edgecolor="black",
            linewidth=0.3,
        )
    for rec in result.layers:
        y = len(devices) + rec.core
        colour = group_colour.get(
            rec.group, (0.55, 0.55, 0.55, 1.0) if rec.group == "fusion" else (0.2, 0.2, 0.2, 1.0)
        )
        ax.barh(y, rec.end_s - rec.start_s, left=rec.start_s, height=0.6, color=colour, linewidth=0)
    lb = result.lower_bound.value
    ax.axvline(result.makespan_s, color="red", linestyle="--", linewidth=1)
    ax.axvline(lb, color="green", linestyle=":", linewidth=1)
    ax.set_yticks(range(len(rows)), rows)
    ax.invert_yaxis()
    ax.set_xlabel("time (s)")
    ax.set_title(
        title
        or f"{result.scenario} - {result.policy}: makespan "
        f"{result.makespan_s * 1e3:.2f} ms (lower bound {lb * 1e3:.2f} ms)"
    )
    handles = [Patch(color=group_colour[f"encoder:{d}"], label=d) for d in devices]
    handles += [
        Patch(color=(0.55, 0.55, 0.55), label="fusion"),
        Patch(color=(0.2, 0.2, 0.2), label="head"),
    ]
    ax.legend(handles=handles, loc="lower right", fontsize=7, ncols=min(len(handles), 6))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
