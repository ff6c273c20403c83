"""Runtime re-planning on ns-3: plans made on the analytic OFDM surrogate, carried out on
ns-3's LTE uplink (``examples/quickstart-ns3.yaml``) with and without ``--replan``.

Run: ``.venv/bin/python benchmarks/bench_replan.py`` (about two minutes: every run is a
full ns-3 simulation, in workers of one pool). It rewrites the ``replan`` section of
``benchmarks/RESULTS.md``.

For each plan (PACS's and RTFS's, both decided on the surrogate) and each rule: the
planned makespan (the plan on the surrogate, the reference the rule compares with),
the achieved makespan on ns-3, the re-plans (how many, and how many kept a new plan),
the residual simulations they ran and the wall time of the run. The first rule is the
plain run (``owin-cosim run --plan``); each later one is the same command with
``--replan RULE``. The re-planned runs are repeated once to check they are
deterministic.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

from results_file import write_section

from owin_cosim.network.ns3.pool import pool_for_runs
from owin_cosim.policies import make_policy
from owin_cosim.runtime import parse_rule, run_with_replanning
from owin_cosim.scenario.assemble import load_problem
from owin_cosim.sim.coordinator import execute
from owin_cosim.sim.evaluator import Evaluator

HERE = Path(__file__).resolve().parent
SCENARIO = HERE.parent / "examples" / "quickstart-ns3.yaml"
BEGIN, END = "<!-- replan:begin -->", "<!-- replan:end -->"
POLICIES = ("pacs", "rtfs")
RULES = ("late,max=4", "late", "late,budget=24", "late,threshold=0.25ms,max=32")


def main() -> None:
    problem = load_problem(SCENARIO)[1]
    rows: list[str] = []
    runs = len(POLICIES) * (1 + 2 * len(RULES))
    load0 = os.getloadavg()[0]
    with pool_for_runs(problem.network, runs):
        for name in POLICIES:
            plan = make_policy(name).plan(problem)
            planned = Evaluator(problem).makespan(plan)
            t0 = time.perf_counter()
            plain = execute(problem, plan)
            wall = time.perf_counter() - t0
            rows.append(
                f"| {name} | (none) | {planned * 1e3:.2f} | {plain.makespan_s * 1e3:.2f} "
                f"| - | 0 / 0 | 0 | {wall:.1f} | - |"
            )
            print(rows[-1], flush=True)
            for text in RULES:
                rule = parse_rule(text)
                t0 = time.perf_counter()
                result = run_with_replanning(problem, plan, rule)
                wall = time.perf_counter() - t0
                again = run_with_replanning(problem, plan, rule)
                s = result.summary()
                same = again.summary() == s and again.chunks == result.chunks
                kept = sum(1 for r in s["replans"] if r["changed"])
                gain = 1.0 - s["makespan_s"] / plain.makespan_s
                rows.append(
                    f"| {name} | `{text}` | {s['planned_makespan_s'] * 1e3:.2f} "
                    f"| {s['makespan_s'] * 1e3:.2f} | {gain * 100:+.1f} % "
                    f"| {len(s['replans'])} / {kept} | {s['replan_evaluations']} "
                    f"| {wall:.1f} | {same} |"
                )
                print(rows[-1], flush=True)
    load1 = os.getloadavg()[0]
    lines = [
        "## Runtime re-planning on ns-3 (`benchmarks/bench_replan.py`)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()} "
        f"({os.cpu_count()} cores, load average {load0:.1f} at the start, {load1:.1f} at "
        f"the end, a shared machine), Python {platform.python_version()}. "
        "`examples/quickstart-ns3.yaml`: plans decided on the analytic OFDM surrogate, "
        "carried out on ns-3 `lte-uplink` (TCP, 50 RBs). *planned* = the plan on the "
        "surrogate (the timeline the rule compares with); *gain* = achieved makespan vs "
        "the same plan without re-planning; *re-plans* = triggered / of which a new plan "
        "was kept; *residual sims* = candidate continuations simulated on the surrogate "
        "(all re-plans); *same twice* = a second run gave the same summary and chunks.",
        "",
        "| plan | --replan | planned ms | achieved ms | gain | re-plans | residual sims "
        "| wall s | same twice |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    print(write_section(BEGIN, END, lines))


if __name__ == "__main__":
    sys.exit(main())
