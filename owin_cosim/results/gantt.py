"""Gantt chart of a run: one row per device (uplink chunks) and per core (layers)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from owin_cosim.results.records import ChunkRecord, RunResult

__all__ = ["MIN_BAR_FRACTION", "chunk_bar", "gantt_figure", "plot_gantt"]

#: Narrowest chunk bar, as a fraction of the time axis (about 4 px on the default
#: figure): ns-3 can deliver a small chunk in one segment, first and last byte together.
MIN_BAR_FRACTION = 0.004

_Colour = tuple[float, float, float, float]
_FUSION: _Colour = (0.55, 0.55, 0.55, 1.0)
_HEAD: _Colour = (0.2, 0.2, 0.2, 1.0)  # and any group without a colour of its own


def gantt_figure(result: RunResult, *, title: str | None = None) -> Figure:
    """Draw the uplink and core timelines of ``result``.

    Parameters
    ----------
    result : RunResult
        The run to draw.
    title : str, optional
        Figure title; by default the scenario, policy, makespan and lower bound.

    Returns
    -------
    Figure
        One axes with time in seconds from 0 (the run's start) and the legend below it,
        outside the data area. Chunk bars carry the gid ``"chunk:<device>#<chunk>"``.

    See Also
    --------
    plot_gantt : the same figure written to a PNG.
    """
    devices = list(result.devices)
    rows = [f"uplink {d}" for d in devices] + [f"core {c}" for c in range(result.num_cores)]
    tab10 = matplotlib.colormaps["tab10"]
    colour = {f"encoder:{d}": tab10(i % 10) for i, d in enumerate(devices)}
    colour.setdefault("fusion", _FUSION)
    fig = Figure(figsize=(11, 0.45 * len(rows) + 1.9), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)  # a canvas of its own: no pyplot state, drawable in tests
    ax = fig.add_subplot()
    lb = result.lower_bound.value
    ends = [c.last_byte_s for c in result.chunks] + [r.end_s for r in result.layers]
    right = 1.02 * max([result.makespan_s, lb, *ends]) or 1e-3
    waited = _draw_uplinks(ax, result, colour, MIN_BAR_FRACTION * right)
    for rec in result.layers:
        for core in rec.cores or (rec.core,):  # a split layer: one bar on each of its cores
            ax.barh(
                len(devices) + core,
                rec.end_s - rec.start_s,
                left=rec.start_s,
                height=0.6,
                color=colour.get(rec.group, _HEAD),
                linewidth=0,
            )
    ax.axvline(result.makespan_s, color="red", linestyle="--", linewidth=1)
    ax.axvline(lb, color="green", linestyle=":", linewidth=1)
    ax.set_xlim(0.0, right)
    ax.set_yticks(range(len(rows)), rows)
    ax.invert_yaxis()
    ax.set_xlabel("time (s)")
    ax.set_title(
        title
        or f"{result.scenario} - {result.policy}: makespan "
        f"{result.makespan_s * 1e3:.2f} ms (lower bound {lb * 1e3:.2f} ms)"
    )
    handles: list[Artist] = [Patch(color=colour[f"encoder:{d}"], label=d) for d in devices]
    handles += [Patch(color=_FUSION, label="fusion"), Patch(color=_HEAD, label="head")]
    if waited:
        handles.append(Line2D([], [], color="grey", linestyle=":", label="waiting to send"))
    handles += [
        Line2D([], [], color="red", linestyle="--", label="makespan"),
        Line2D([], [], color="green", linestyle=":", label="lower bound"),
    ]
    # Below the axes, not over a row: any row may hold bars at any time.
    fig.legend(handles=handles, loc="outside lower center", fontsize=7, ncols=min(len(handles), 9))
    return fig


def chunk_bar(chunk: ChunkRecord, min_width: float) -> tuple[float, float]:
    """The ``(left, width)`` of a chunk's bar: its time on the air, at least ``min_width``.

    A shorter chunk is widened around its midpoint (not before 0) so that it stays
    visible and centred on when it went.

    Examples
    --------
    >>> from owin_cosim.results.records import ChunkRecord
    >>> chunk_bar(ChunkRecord("chat", "text", 0, 512, 0.0, 0.012, 0.012), 0.002)
    (0.011, 0.002)
    """
    left, width = chunk.first_byte_s, chunk.last_byte_s - chunk.first_byte_s
    if width >= min_width:
        return left, width
    return max(0.0, (chunk.first_byte_s + chunk.last_byte_s - min_width) / 2), min_width


def _draw_uplinks(
    ax: Axes, result: RunResult, colour: dict[str, _Colour], min_width: float
) -> bool:
    """Draw each device's row of chunks; whether any device waited before its first byte."""
    devices = list(result.devices)
    waited = False
    for y, d in enumerate(devices):
        own = [c for c in result.chunks if c.device == d]
        submit = min((c.submit_s for c in own), default=0.0)
        first = min((c.first_byte_s for c in own), default=0.0)
        if first > submit:  # submitted but not yet on the air (ns-3 attaches and connects)
            ax.hlines(y, submit, first, colors=[colour[f"encoder:{d}"]], linestyles=":")
            waited = True
    for ch in result.chunks:
        left, width = chunk_bar(ch, min_width)
        ax.barh(
            devices.index(ch.device),
            width,
            left=left,
            height=0.6,
            color=colour[f"encoder:{ch.device}"],
            edgecolor="black",
            linewidth=0.3,
            gid=f"chunk:{ch.device}#{ch.chunk}",
        )
    return waited


def plot_gantt(result: RunResult, path: str | Path, *, title: str | None = None) -> None:
    """Draw the uplink and core timelines of ``result`` into a PNG at ``path``.

    See Also
    --------
    gantt_figure : the figure itself, for tests and notebooks.
    """
    gantt_figure(result, title=title).savefig(path)
