"""The standard figures of a sweep, drawn from its table of runs.

:func:`sweep_figures` draws, from a :class:`SweepData` (what a sweep directory's
``results.parquet`` and ``sweep.resolved.json`` hold, read by
:func:`owin_cosim.study.report.load_sweep`; ``docs/sweep.md``):

- ``makespan_vs_<axis key>``: makespan against each axis, one line per policy (the
  median over seeds) with the min-max band (numeric axes) or bars (other axes); one
  panel per combination of the other axes' values when that is few panels, else all
  points pooled;
- ``gain_over_rtfs``: each policy's makespan gain over RTFS on the same point and
  seed, against each axis (when ``rtfs`` is among the policies);
- ``gap_to_bound``: the gap of each run to its lower bound, or to the optimum where
  the run reports one (``optimum_s``), against each axis;
- ``energy_vs_makespan``: every run's energy against its makespan.

Failed runs (``status == "failed"``) are left out of every figure. Figures are drawn
on their own Agg canvas (no pyplot state) and written as PNG and SVG with the same
bytes for the same directory (:func:`owin_cosim.study.report.write_figure`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "MAX_PANELS",
    "Axis",
    "FigureSpec",
    "SweepData",
    "file_stem",
    "finite",
    "gains_over_rtfs",
    "gap_to_bound",
    "short_keys",
    "sweep_figures",
]

#: Most panels in one makespan figure; past that, the other axes are pooled.
MAX_PANELS = 9


@dataclass(frozen=True)
class Axis:
    """One sweep axis: its key path (as in the sweep file) and its values in order."""

    key: str
    values: tuple[Any, ...]

    @property
    def numeric(self) -> bool:
        """Whether every value is a number (drawn on a numeric x axis).

        >>> Axis("network.ofdm.num_rbs", (25, 50)).numeric, Axis("accelerator.spec", ("a",)).numeric
        (True, False)
        """
        return all(isinstance(v, int | float) and not isinstance(v, bool) for v in self.values)


@dataclass(frozen=True)
class SweepData:
    """What a sweep directory holds, as plain data: its table and what was swept."""

    directory: Path
    scenario: str
    axes: tuple[Axis, ...]
    policies: tuple[str, ...]
    seeds: tuple[int, ...]
    columns: tuple[str, ...]
    #: Column name -> whether it holds numbers (for sorting the report's table).
    numeric: dict[str, bool]
    rows: tuple[dict[str, Any], ...]

    @property
    def ok_rows(self) -> list[dict[str, Any]]:
        """The rows of the runs that succeeded."""
        return [r for r in self.rows if r["status"] == "ok"]


@dataclass(frozen=True)
class FigureSpec:
    """A figure to write: its file stem, a one-line caption, the figure."""

    stem: str
    caption: str
    figure: Figure


def finite(value: Any) -> bool:
    """Whether ``value`` is a finite number (not a null, not NaN)."""
    return isinstance(value, int | float) and math.isfinite(value)


# ---- drawing ------------------------------------------------------------------------
def sweep_figures(data: SweepData) -> list[FigureSpec]:
    """Every standard figure of ``data``, in the order the report shows them."""
    axes = list(data.axes) or [_point_axis(data)]
    specs = [_makespan_figure(data, axis, axes) for axis in axes]
    if "rtfs" in data.policies and len(data.policies) > 1:
        specs.append(_gain_figure(data, axes))
    specs.append(_gap_figure(data, axes))
    specs.append(_energy_figure(data))
    return specs


def file_stem(name: str) -> str:
    """A file name made of ``name`` (key paths keep their dots).

    >>> file_stem("makespan_vs_devices.camera.distance_m")
    'makespan_vs_devices.camera.distance_m'
    >>> file_stem("makespan_vs_a/b c")
    'makespan_vs_a_b_c'
    """
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def _point_axis(data: SweepData) -> Axis:
    """A sweep without axes: its points (seeds and policies only) as the x axis."""
    return Axis("point", tuple(sorted({r["point"] for r in data.rows})))


def _new_figure(panels: int, width: float = 4.4, height: float = 3.3) -> tuple[Figure, list[Axes]]:
    ncols = min(panels, 3)
    nrows = math.ceil(panels / ncols)
    fig = Figure(figsize=(width * ncols + 0.4, height * nrows + 0.8), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)  # a canvas of its own: no pyplot state
    grid = fig.subplots(nrows, ncols, squeeze=False)
    flat: list[Axes] = list(grid.flat)
    for ax in flat[panels:]:
        ax.set_visible(False)
    return fig, flat[:panels]


def _colours(data: SweepData) -> dict[str, Any]:
    tab10 = matplotlib.colormaps["tab10"]
    return {p: tab10(i % 10) for i, p in enumerate(data.policies)}


def _legend(fig: Figure, ax: Axes) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:  # below the panels, never over data
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 6))


def _x_of(axis: Axis, value: Any) -> float:
    """Where ``value`` of ``axis`` sits on the x axis (categories at 0, 1, ...)."""
    if axis.numeric:
        return float(value)
    # By text: an axis of numbers and strings has a column of strings ("1" for 1).
    labels = [str(v) for v in axis.values]
    return float(labels.index(str(value))) if str(value) in labels else float(len(labels))


def _set_x(ax: Axes, axis: Axis) -> None:
    ax.set_xlabel(axis.key)
    if axis.numeric and len(axis.values) <= 8:
        ax.set_xticks(sorted(float(v) for v in axis.values))
    if not axis.numeric:
        labels = [_label(v) for v in axis.values]
        ax.set_xticks(range(len(labels)), labels, rotation=20 if len(labels) > 3 else 0)


def _spread_line(
    ax: Axes,
    axis: Axis,
    points: Iterable[tuple[Any, float]],
    *,
    colour: Any,
    label: str,
    dodge: float = 0.0,
) -> None:
    """Median line over the values at each x, and their min-max spread."""
    by_x: dict[float, list[float]] = {}
    for value, y in points:
        by_x.setdefault(_x_of(axis, value), []).append(y)
    if not by_x:
        return
    xs = np.array(sorted(by_x))
    ys = [np.array(by_x[x]) for x in xs]
    med = np.array([np.median(y) for y in ys])
    lo = np.array([y.min() for y in ys])
    hi = np.array([y.max() for y in ys])
    if axis.numeric:
        ax.plot(xs, med, marker="o", markersize=4, color=colour, label=label)
        ax.fill_between(xs, lo, hi, color=colour, alpha=0.2, linewidth=0)
    else:  # categories: bars at each one, shifted apart so that policies do not overlap
        ax.errorbar(
            xs + dodge,
            med,
            yerr=[med - lo, hi - med],
            marker="o",
            markersize=4,
            capsize=3,
            color=colour,
            label=label,
            linestyle="none",
        )


def _dodge(axis: Axis, i: int, n: int) -> float:
    return 0.0 if axis.numeric else (i - (n - 1) / 2) * 0.08


def _panels(
    rows: Sequence[dict[str, Any]], axis: Axis, axes: Sequence[Axis]
) -> tuple[list[tuple[str, list[dict[str, Any]]]], bool]:
    """Rows grouped by the values of the other axes (one panel each), or pooled.

    Pooled (one panel, and ``True``) when that would be more than :data:`MAX_PANELS`
    panels, or when no panel would hold two values of ``axis`` (zipped axes).
    """
    others = [a for a in axes if a.key != axis.key]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[a.key] for a in others), []).append(r)
    spans = [len({r[axis.key] for r in g}) for g in groups.values()]
    if not others or len(groups) > MAX_PANELS or max(spans, default=0) < 2:
        return [("", list(rows))], bool(others)
    order = sorted(groups, key=lambda k: min(r["point"] for r in groups[k]))
    short = short_keys([a.key for a in axes])
    titles = {
        k: "\n".join(f"{short[a.key]} = {_label(v)}" for a, v in zip(others, k, strict=True))
        for k in order
    }
    return [(titles[k], groups[k]) for k in order], False


def short_keys(keys: Sequence[str]) -> dict[str, str]:
    """Each key path by its shortest tail that no other key ends with.

    >>> list(short_keys(["devices.camera.distance_m", "devices.lidar.distance_m", "x.y"]).values())
    ['camera.distance_m', 'lidar.distance_m', 'y']
    """
    out: dict[str, str] = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            tail = ".".join(parts[-n:])
            if not any(o != key and (o == tail or o.endswith("." + tail)) for o in keys):
                break
        out[key] = tail
    return out


def _label(value: Any) -> str:
    """An axis value as a tick or title shows it: a path by its file name."""
    return str(value).rsplit("/", 1)[-1]


def _makespan_figure(data: SweepData, axis: Axis, axes: Sequence[Axis]) -> FigureSpec:
    panels, pooled = _panels(data.rows, axis, axes)
    fig, frames = _new_figure(len(panels))
    colour = _colours(data)
    for ax, (title, rows) in zip(frames, panels, strict=True):
        for i, policy in enumerate(data.policies):
            pts = [
                (r[axis.key], r["makespan_s"] * 1e3)
                for r in rows
                if r["policy"] == policy and r["status"] == "ok"
            ]
            _spread_line(
                ax,
                axis,
                pts,
                colour=colour[policy],
                label=policy,
                dodge=_dodge(axis, i, len(data.policies)),
            )
        _set_x(ax, axis)
        ax.set_ylabel("makespan (ms)")
        ax.set_title(title, fontsize=8)
        ax.grid(True, alpha=0.3)
    spread = "seeds and the other axes" if pooled else "seeds"
    fig.suptitle(f"makespan vs {axis.key}\nmedian and min-max over {spread}", fontsize=10)
    _legend(fig, frames[0])
    caption = f"Makespan against {axis.key}, per policy (median, min-max over {spread})."
    return FigureSpec(file_stem(f"makespan_vs_{axis.key}"), caption, fig)


def gains_over_rtfs(data: SweepData) -> list[tuple[dict[str, Any], float]]:
    """``(row, gain in %)`` of each other policy's run over RTFS's run on the same
    point and seed (both ok): positive when the policy is faster."""
    rtfs = {(r["point"], r["seed"]): r["makespan_s"] for r in data.ok_rows if r["policy"] == "rtfs"}
    return [
        (r, (1.0 - r["makespan_s"] / rtfs[r["point"], r["seed"]]) * 100.0)
        for r in data.ok_rows
        if r["policy"] != "rtfs" and rtfs.get((r["point"], r["seed"]), 0.0) > 0.0
    ]


def _per_axis_figure(
    data: SweepData,
    axes: Sequence[Axis],
    values: list[tuple[dict[str, Any], float]],
    policies: Sequence[str],
    ylabel: str,
) -> Figure:
    """One panel per axis; per policy the median and min-max of ``values`` at each
    value of that axis, pooled over seeds and the other axes."""
    fig, frames = _new_figure(len(axes))
    colour = _colours(data)
    for ax, axis in zip(frames, axes, strict=True):
        for i, policy in enumerate(policies):
            pts = [(r[axis.key], v) for r, v in values if r["policy"] == policy]
            _spread_line(
                ax,
                axis,
                pts,
                colour=colour[policy],
                label=policy,
                dodge=_dodge(axis, i, len(policies)),
            )
        ax.axhline(0.0, color="black", linewidth=0.6)
        _set_x(ax, axis)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    _legend(fig, frames[0])
    return fig


def _gain_figure(data: SweepData, axes: Sequence[Axis]) -> FigureSpec:
    others = [p for p in data.policies if p != "rtfs"]
    fig = _per_axis_figure(data, axes, gains_over_rtfs(data), others, "gain over RTFS (%)")
    fig.suptitle(
        "makespan gain over RTFS, same point and seed\nmedian and min-max over "
        "seeds and the other axes",
        fontsize=10,
    )
    caption = (
        "Gain of each policy over RTFS: 1 - makespan / makespan(RTFS) on the same "
        "point and seed (positive: faster than RTFS)."
    )
    return FigureSpec("gain_over_rtfs", caption, fig)


def gap_to_bound(row: dict[str, Any]) -> float | None:
    """The gap of a run to its optimum when it reports one, else to its lower bound."""
    if finite(row["optimum_s"]) and row["optimum_s"] > 0:
        return float(row["makespan_s"] / row["optimum_s"] - 1.0)
    return float(row["gap_to_lower_bound"]) if finite(row["gap_to_lower_bound"]) else None


def _gap_figure(data: SweepData, axes: Sequence[Axis]) -> FigureSpec:
    values = [(r, g * 100.0) for r in data.ok_rows if (g := gap_to_bound(r)) is not None]
    with_opt = sum(finite(r["optimum_s"]) for r, _ in values)
    if with_opt == 0:
        what, short = "gap to the lower bound", "gap to the lower bound"
    elif with_opt == len(values):
        what, short = "gap to the optimum", "gap to the optimum"
    else:
        what, short = "gap to the optimum (to the lower bound where none)", "gap"
    fig = _per_axis_figure(data, axes, values, data.policies, f"{short} (%)")
    fig.suptitle(f"{what}\nmedian and min-max over seeds and the other axes", fontsize=10)
    caption = f"{what[0].upper()}{what[1:]}: makespan / reference - 1, per policy."
    return FigureSpec("gap_to_bound", caption, fig)


def _energy_figure(data: SweepData) -> FigureSpec:
    fig, (ax,) = _new_figure(1, width=6.0, height=4.2)
    colour = _colours(data)
    markers = "osD^v<>ph*"
    for i, policy in enumerate(data.policies):
        rows = [r for r in data.ok_rows if r["policy"] == policy and finite(r["energy_J_total"])]
        ax.scatter(
            [r["makespan_s"] * 1e3 for r in rows],
            [r["energy_J_total"] * 1e3 for r in rows],
            s=18,
            color=colour[policy],
            marker=markers[i % len(markers)],
            label=policy,
            alpha=0.8,
            linewidths=0,
        )
    ax.set_xlabel("makespan (ms)")
    ax.set_ylabel("energy, total (mJ)")
    ax.grid(True, alpha=0.3)
    ax.set_title("energy vs makespan, every run that is ok", fontsize=10)
    _legend(fig, ax)
    return FigureSpec("energy_vs_makespan", "Total energy against makespan, one dot per run.", fig)
