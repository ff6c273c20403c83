"""The plan search on the quickstart: time per evaluation, makespan vs budget.

Run: ``.venv/bin/python benchmarks/bench_optimize.py [--write]`` (a few minutes). With
``--write`` it rewrites the ``optimize`` section of ``benchmarks/RESULTS.md``.

1. One ``Evaluator.makespan`` of PACS's plan on the planning surrogate: the median of
   20 (wall time; the figure the default budget is chosen by).
2. ``owin_cosim.optimize.search`` from PACS and from RTFS with budgets 25, 50, 100 and
   200, seeds 0, 1, 2: the best planning makespan, the same plan on the real run's
   channel (``Evaluator(problem, "real")``), and the search's wall time. Makespans are
   simulated times (deterministic for a seed and a budget); wall times depend on the
   machine and its load.
3. The same search (from PACS, budget 100, seeds 0 and 1) on the first 12 generated
   small instances (``owin_cosim.study.instances.small_instances``): best planning
   makespan over PACS's, per instance and on average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from results_file import write_section

from owin_cosim.api import build_problem
from owin_cosim.optimize import search, start_plan
from owin_cosim.sim.evaluator import Evaluator
from owin_cosim.study.instances import small_instances

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart.yaml"
BUDGETS = (25, 50, 100, 200)
SEEDS = (0, 1, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update RESULTS.md")
    args = parser.parse_args()
    problem = build_problem(QUICKSTART)
    planning, real = Evaluator(problem), Evaluator(problem, "real")
    lines = [
        "## Plan search (issue 11 part 1): quickstart, makespan vs budget",
        "",
        f"Machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start "
        "(shared). Makespans in ms (simulated); wall times in s.",
        "",
    ]
    times = []
    pacs = start_plan(problem, "pacs")
    for _ in range(20):
        t0 = time.perf_counter()
        planning.makespan(pacs)
        times.append(time.perf_counter() - t0)
    per_eval = statistics.median(times)
    lines.append(
        f"One `Evaluator.makespan` (PACS's plan, {len(problem.dag)} layers): median "
        f"{per_eval * 1e3:.1f} ms of 20 (min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f})."
    )
    lines += [
        "",
        "| start | budget | planning best (seeds 0/1/2) | mean | on the real channel (mean) "
        "| wall s (mean) |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name in ("pacs", "rtfs"):
        first = start_plan(problem, name)
        start_plan_s, start_real_s = planning.makespan(first), real.makespan(first)
        lines.append(
            f"| {name} | start | {start_plan_s * 1e3:.3f} | {start_plan_s * 1e3:.3f} | "
            f"{start_real_s * 1e3:.3f} | |"
        )
        for budget in BUDGETS:
            best, on_real, wall = [], [], []
            for seed in SEEDS:
                r = search(problem, first, budget, seed)
                best.append(r.best_s * 1e3)
                on_real.append(real.makespan(r.plan) * 1e3)
                wall.append(r.wall_s)
            row = (
                f"| {name} | {budget} | {' / '.join(f'{b:.3f}' for b in best)} | "
                f"{statistics.mean(best):.3f} | {statistics.mean(on_real):.3f} | "
                f"{statistics.mean(wall):.1f} |"
            )
            lines.append(row)
            print(row, flush=True)
    lines += _small_instances()
    lines.append(f"\nLoad average at the end: {os.getloadavg()[0]:.1f}.")
    section = "\n".join(lines)
    print(section)
    if args.write:
        write_section("<!-- optimize:begin -->", "<!-- optimize:end -->", lines)


def _small_instances() -> list[str]:
    """Part 3: best over PACS on small generated instances (planning channel)."""
    lines = [
        "",
        "Small generated instances (`small_instances(12)`), from PACS, budget 100; planning "
        "makespans in ms:",
        "",
        "| instance | layers | cores | PACS | seed 0 | seed 1 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for inst in small_instances(12):
            problem = build_problem(inst.write(tmp))
            pacs = start_plan(problem, "pacs")
            found = [search(problem, pacs, 100, seed) for seed in (0, 1)]
            ratios += [r.best_s / r.start_s for r in found]
            lines.append(
                f"| {inst.name} | {len(problem.dag)} | {problem.num_cores} | "
                f"{found[0].start_s * 1e3:.3f} | "
                + " | ".join(f"{r.best_s * 1e3:.3f}" for r in found)
                + " |"
            )
            print(lines[-1], flush=True)
    lines.append(f"\nMean best / PACS: {statistics.mean(ratios):.4f} ({len(ratios)} searches).")
    return lines


if __name__ == "__main__":
    main()
