"""The tables of docs/results.md, printed as Markdown from the study's sweep directories.

    python examples/study/tables.py results/study/main results/study/exact

Reads ``results.parquet`` of each (the main study of ``study.yaml`` and the exact study
of ``exact.yaml``) and, for the exact study, the exact runs' ``summary.json`` (the
solver's status and proven bound). Every number of docs/results.md comes from here.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

AXES = (
    "accelerator.spec_fields.cores",
    "network.ofdm.num_rbs",
    "accelerator.latency_scale",
    "modality_heterogeneity",
)
SHORT = {AXES[0]: "cores", AXES[1]: "RBs", AXES[2]: "latency scale", AXES[3]: "heterogeneity"}

POLS = ("rtfs", "pacs", "owin")
Row = dict[str, Any]


def _rows(directory: Path) -> list[Row]:
    rows: list[Row] = pq.read_table(directory / "results.parquet").to_pylist()
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        print(f"<!-- {directory}: {len(failed)} failed runs -->")
    return [r for r in rows if r["status"] == "ok"]


def _by_run(rows: Iterable[Row]) -> dict[tuple[int, int, str], Row]:
    return {(r["point"], r["seed"], r["policy"]): r for r in rows}


def _ratio(rows: list[Row], num: str, den: str) -> list[tuple[Row, float]]:
    """``(row of num, makespan(num) / makespan(den))`` on every point and seed."""
    by = _by_run(rows)
    return [
        (r, r["makespan_s"] / by[p, s, den]["makespan_s"])
        for (p, s, pol), r in by.items()
        if pol == num and (p, s, den) in by
    ]


def _stats(values: Sequence[float], pct: bool = True) -> str:
    f = 100.0 if pct else 1.0
    if not values:
        return "-"
    return (
        f"{statistics.median(values) * f:.1f} [{min(values) * f:.1f}, {max(values) * f:.1f}]"
        if pct
        else f"{statistics.mean(values):.3f} / {max(values):.3f}"
    )


def _table(header: Sequence[str], lines: Iterable[Sequence[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for line in lines:
        print("| " + " | ".join(line) + " |")
    print()


def _per_axis(pairs: list[tuple[Row, float]], value: Callable[[float], float]) -> None:
    """Median [min, max] of ``value(x)`` per value of every axis."""
    for axis in AXES:
        keys = sorted({r[axis] for r, _ in pairs})
        cells = [_stats([value(x) for r, x in pairs if r[axis] == k]) for k in keys]
        print(f"**{SHORT[axis]}**")
        print()
        _table([SHORT[axis], *map(str, keys)], [["median [min, max] %", *cells]])


def main_study(directory: Path) -> None:
    """Gains over RTFS and PACS, per axis and on the heterogeneity x latency grid."""
    rows = _rows(directory)
    print(f"## main study: {len(rows)} ok runs\n")
    gain = _ratio(rows, "pacs", "rtfs")
    owin = _ratio(rows, "owin", "rtfs")
    over_pacs = _ratio(rows, "owin", "pacs")
    print("### per policy: makespan (ms) median [min, max]; gain over RTFS (%); gap to bound\n")
    lines = []
    for pol, pairs in (("rtfs", None), ("pacs", gain), ("owin", owin)):
        mine = [r for r in rows if r["policy"] == pol]
        ms = [r["makespan_s"] * 1e3 for r in mine]
        gaps = [r["gap_to_lower_bound"] for r in mine]
        g = "-" if pairs is None else _stats([1 - x for _, x in pairs])
        lines.append([pol, f"{statistics.median(ms):.2f} [{min(ms):.2f}, {max(ms):.2f}]",
                      g, _stats(gaps)])  # fmt: skip
    _table(["policy", "makespan ms", "gain over RTFS %", "gap to lower bound %"], lines)
    print("### makespan (ms) per heterogeneity, median over the other axes and seeds\n")
    hs = sorted({r[AXES[3]] for r in rows})

    def median_ms(pol: str, h: float) -> str:
        ms = [r["makespan_s"] * 1e3 for r in rows if r["policy"] == pol and r[AXES[3]] == h]
        return f"{statistics.median(ms):.2f}"

    _table(["policy", *map(str, hs)], [[p, *(median_ms(p, h) for h in hs)] for p in POLS])
    print("### PACS's gain over RTFS (%) per axis value\n")
    _per_axis(gain, lambda x: 1 - x)
    print("### PACS's gain over RTFS (%), median over cores, RBs and seeds\n")
    hs = sorted({r[AXES[3]] for r, _ in gain})
    ls = sorted({r[AXES[2]] for r, _ in gain})
    _table(
        ["latency scale \\ heterogeneity", *map(str, hs)],
        [
            [str(lat)]
            + [_stats([1 - x for r, x in gain if r[AXES[2]] == lat and r[AXES[3]] == h])
               for h in hs]
            for lat in ls
        ],
    )  # fmt: skip
    print("### the points where PACS gains most and least (median over seeds)\n")
    per_point: dict[int, list[float]] = {}
    for r, x in gain:
        per_point.setdefault(r["point"], []).append(1 - x)
    first = {r["point"]: r for r, _ in gain}
    ranked = sorted(per_point, key=lambda p: statistics.median(per_point[p]))
    _table(
        ["cores", "RBs", "latency scale", "heterogeneity", "PACS gain %"],
        [
            [*(str(first[p][a]) for a in AXES), f"{statistics.median(per_point[p]) * 100:.1f}"]
            for p in [*ranked[-5:][::-1], *ranked[:3]]
        ],
    )
    print("### owin's gain over PACS (%) per axis value\n")
    _per_axis(over_pacs, lambda x: 1 - x)
    better = sum(x < 1 for _, x in over_pacs)
    worse = sum(x > 1 for _, x in over_pacs)
    print(f"owin vs PACS: better on {better}, worse on {worse}, equal on "
          f"{len(over_pacs) - better - worse} of {len(over_pacs)} point-seeds\n")  # fmt: skip


def _exact_docs(directory: Path, rows: list[Row]) -> dict[tuple[int, int], dict[str, Any]]:
    out = {}
    for r in rows:
        if r["policy"] == "exact":
            doc = json.loads((directory / r["run_dir"] / "summary.json").read_text("utf-8"))
            out[r["point"], r["seed"]] = doc["plan"]
    return out


def _bracket(
    rows: list[Row], plans: dict[tuple[int, int], dict[str, Any]], pols: Sequence[str]
) -> None:
    """Every point-seed, optimal or not: the ratio to the optimum lies between
    ``makespan / exact's makespan`` and ``makespan / exact's proven bound``."""
    print("### every point-seed: makespan / exact's makespan .. makespan / its bound (mean)\n")

    def cell(sub: list[Row], pol: str) -> str:
        mine = [r for r in sub if r["policy"] == pol and (r["point"], r["seed"]) in plans]
        lo = [r["makespan_s"] / plans[r["point"], r["seed"]]["makespan_s"] for r in mine]
        hi = [r["makespan_s"] / plans[r["point"], r["seed"]]["bound_s"] for r in mine]
        return f"{statistics.mean(lo):.3f} .. {statistics.mean(hi):.3f}" if mine else "-"

    lines = [["all", str(len(plans)), *(cell(rows, p) for p in pols)]]
    for axis in AXES:
        for k in sorted({r[axis] for r in rows}):
            sub = [r for r in rows if r[axis] == k]
            n = len({(r["point"], r["seed"]) for r in sub if r["policy"] == "exact"})
            lines.append([f"{SHORT[axis]} = {k}", str(n), *(cell(sub, p) for p in pols)])
    _table(["subset", "point-seeds", *pols], lines)


def exact_study(directory: Path) -> None:
    """Each policy's ratio to the optimum (proven), and the solver's statuses and times."""
    rows = _rows(directory)
    print(f"## exact study: {len(rows)} ok runs\n")
    plans = _exact_docs(directory, rows)
    statuses = [p["status"] for p in plans.values()]
    walls = sorted(r["wall_s"] for r in rows if r["policy"] == "exact")
    print(f"exact: {statuses.count('OPTIMAL')} OPTIMAL, {statuses.count('FEASIBLE')} FEASIBLE "
          f"of {len(statuses)}; run wall time median {statistics.median(walls):.1f} s, "
          f"max {max(walls):.1f} s\n")  # fmt: skip
    opt = [r for r in rows if r["optimum_s"] is not None]
    print("### makespan / optimum (mean / max) over the point-seeds with a proven optimum\n")
    pols = ["rtfs", "pacs", "owin", "exact"]
    lines = [["all", str(len(opt) // 4), *(
        _stats([r["makespan_s"] / r["optimum_s"] for r in opt if r["policy"] == p], False)
        for p in pols)]]  # fmt: skip
    for axis in AXES:
        for k in sorted({r[axis] for r in opt}):
            sub = [r for r in opt if r[axis] == k]
            lines.append([f"{SHORT[axis]} = {k}", str(len(sub) // 4)] + [
                _stats([r["makespan_s"] / r["optimum_s"] for r in sub if r["policy"] == p],
                       False) for p in pols])  # fmt: skip
    _table(["subset", "point-seeds", *pols], lines)
    _bracket(rows, plans, pols)
    lb = [r["lower_bound_s"] / r["optimum_s"] for r in opt if r["policy"] == "exact"]
    print(f"lower bound / optimum: mean {statistics.mean(lb):.3f}, min {min(lb):.3f}\n")
    feas = [p for p in plans.values() if p["status"] != "OPTIMAL"]
    if feas:
        gaps = [p["gap"] for p in feas]
        print(f"FEASIBLE solves: gap (makespan - bound) / makespan median "
              f"{statistics.median(gaps) * 100:.1f} %, max {max(gaps) * 100:.1f} %\n")  # fmt: skip
    print("### PACS's gain over RTFS (%) on the small instance, per heterogeneity\n")
    _per_axis(_ratio(rows, "pacs", "rtfs"), lambda x: 1 - x)


if __name__ == "__main__":
    main_study(Path(sys.argv[1]))
    if len(sys.argv) > 2:
        exact_study(Path(sys.argv[2]))
