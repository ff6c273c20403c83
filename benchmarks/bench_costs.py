"""Cost backends on a whole scenario: time to cost it, agreement, effect on the policies.

Run: ``.venv/bin/python benchmarks/bench_costs.py`` (a few minutes on one core). It
rewrites the ``costs`` section of ``benchmarks/RESULTS.md``.

For the quickstart scenario (ResNet-18, VGGish, PointNet, transformer on ``mc4``) and
each cost backend (``analytic``; ``loopnest`` at several mapping-search budgets), with
the persistent cache off: wall time to cost every layer (``assemble``), as a ratio to
the ``analytic`` backend measured in the same run; the model's total cycles and
accelerator energy, as ratios to ``analytic``; RTFS and PACS makespans. Then the
``loopnest`` default budget again with a cold and a warm persistent cache: the warm
run's backend calls and time.
"""

from __future__ import annotations

import copy
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from results_file import write_section

from owin_cosim.policies import make_policy
from owin_cosim.scenario.assemble import assemble
from owin_cosim.scenario.schema import Scenario
from owin_cosim.sim.coordinator import execute
from owin_cosim.system.problem import Problem

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
QUICKSTART = REPO / "examples" / "quickstart.yaml"
BEGIN, END = "<!-- costs:begin -->", "<!-- costs:end -->"


def scenario(accel: dict[str, Any]) -> Scenario:
    data = yaml.safe_load(QUICKSTART.read_text())
    data["accelerator"] = {**copy.deepcopy(data["accelerator"]), **accel}
    return Scenario.model_validate(data)


def timed_assemble(s: Scenario) -> tuple[Problem, float]:
    t0 = time.perf_counter()
    problem = assemble(s, QUICKSTART)
    return problem, time.perf_counter() - t0


def totals(problem: Problem) -> tuple[int, float]:
    return int(problem.dag.cycles.sum()), float(problem.dag.energy_pJ.sum())


def makespans_ms(problem: Problem) -> tuple[float, float]:
    r = execute(problem, make_policy("rtfs").plan(problem))
    p = execute(problem, make_policy("pacs").plan(problem))
    return r.makespan_s * 1e3, p.makespan_s * 1e3


def main() -> None:
    runs: list[tuple[str, dict[str, Any]]] = [("analytic", {"cost_backend": "analytic"})]
    for budget in (100, 300, 1000):
        runs.append(
            (
                f"loopnest, {budget} evaluations/shape",
                {"cost_backend": "loopnest", "mapper": {"evaluations": budget}},
            )
        )
    rows = []
    base: tuple[float, int, float] | None = None
    for label, accel in runs:
        problem, secs = timed_assemble(scenario({**accel, "cache": False}))
        cycles, energy = totals(problem)
        rtfs, pacs = makespans_ms(problem)
        if base is None:
            base = (secs, cycles, energy)
        rows.append(
            f"| {label} | {secs:.2f} | {secs / base[0]:.1f}x | {cycles / base[1]:.3f} | "
            f"{energy / base[2]:.3f} | {rtfs:.2f} | {pacs:.2f} | "
            f"{(1 - pacs / rtfs) * 100:.1f} % |"
        )
        print(rows[-1], flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["OWIN_COSIM_COST_CACHE"] = str(Path(tmp) / "costs.sqlite")
        s = scenario({"cost_backend": "loopnest"})
        cold, t_cold = timed_assemble(s)
        warm, t_warm = timed_assemble(s)
        cm, wm = cold.cost, warm.cost
        same = list(cold.dag.duration_s) == list(warm.dag.duration_s)
        cache_line = (
            f"Persistent cache, `loopnest` at the default budget: cold {t_cold:.2f} s "
            f"({cm.calls} backend calls), warm {t_warm:.2f} s ({wm.calls} backend calls, "
            f"{wm.hits} hits, same durations: {same})."
        )
        print(cache_line)

    n_layers = len(cold.dag)
    lines = [
        "## Cost backends on a whole scenario (issue 4)",
        "",
        f"Measured {date.today().isoformat()} on {platform.machine()}, Python "
        f"{sys.version.split()[0]}, by `benchmarks/bench_costs.py`: the quickstart "
        f"scenario ({n_layers} layers after chunking, `mc4`), persistent cache off. "
        "Times are wall time to cost every layer (`assemble`); ratios are against the "
        "`analytic` backend in the same run.",
        "",
        "| backend | cost all layers (s) | time ratio | total cycles ratio | "
        "accel energy ratio | RTFS ms | PACS ms | PACS gain |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        cache_line,
    ]
    write_section(BEGIN, END, lines)


if __name__ == "__main__":
    main()
