"""``owin-cosim run --plan PLAN.json [--replan RULE]``: carrying out a plan file.

Without ``--replan`` the plan runs as it is; with it, the run re-plans what remains
when it is late (:mod:`owin_cosim.runtime`, ``docs/replanning.md``) and prints one
line per re-plan and the planned makespan.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from owin_cosim.errors import ConfigError
from owin_cosim.runtime.rule import GRAMMAR, ReplanRule
from owin_cosim.system.problem import Problem

__all__ = ["ReplanOpt", "replan_lines", "replan_rule", "run_plan"]

ReplanOpt = Annotated[
    str | None,
    typer.Option(
        "--replan",
        metavar="RULE",
        help="With --plan: re-plan what remains when the run is late, e.g. 'late' or "
        "'late,threshold=1ms,budget=8,max=8' (docs/replanning.md).",
    ),
]


def replan_rule(text: str | None, plan: Path | None) -> ReplanRule | None:
    """The ``--replan`` rule, or None without the flag.

    Raises
    ------
    ConfigError
        ``--replan`` without ``--plan``, or a bad rule (naming ``--replan``).
    """
    from owin_cosim.runtime.rule import parse_rule

    if text is None:
        return None
    if plan is None:
        raise ConfigError(None, "--replan", f"needs --plan PLAN.json; expected {GRAMMAR} with it")
    return parse_rule(text)


def replan_lines(summary: dict[str, Any]) -> list[str]:
    """One line per re-plan of a run's summary, then its planned makespan.

    >>> s = {"planned_makespan_s": 0.03, "replans": [{"at_s": 0.01, "why": {"kind": "chunk",
    ...      "name": "cam#1", "late_s": 0.002}, "changed": {},
    ...      "candidate": "current", "predicted_before_s": 0.04, "predicted_after_s": 0.04}]}
    >>> print("\\n".join(replan_lines(s)))
    re-plan at 10.000 ms: chunk cam#1 2.000 ms late; plan kept; predicted 40.000 -> 40.000 ms
    planned makespan 30.000 ms (the plan on the planning surrogate)
    """
    lines = []
    for r in summary["replans"]:
        why = r["why"]
        what = f"{', '.join(r['changed'])} -> {r['candidate']}" if r["changed"] else "plan kept"
        lines.append(
            f"re-plan at {r['at_s'] * 1e3:.3f} ms: {why['kind']} {why['name']} "
            f"{why['late_s'] * 1e3:.3f} ms late; {what}; predicted "
            f"{r['predicted_before_s'] * 1e3:.3f} -> {r['predicted_after_s'] * 1e3:.3f} ms"
        )
    planned = summary["planned_makespan_s"] * 1e3
    return [*lines, f"planned makespan {planned:.3f} ms (the plan on the planning surrogate)"]


def run_plan(
    plan_path: Path,
    problem: Problem,
    out_dir: Path | None,
    plot: bool,
    rule: ReplanRule | None = None,
) -> dict[str, Any]:
    """Carry out a plan file (checked against ``problem``), re-planning by ``rule`` if
    given, and write its results (by default into ``results/NAME/plan/``)."""
    from owin_cosim import cli
    from owin_cosim.runtime import run_with_replanning
    from owin_cosim.system.plan_file import REPLAY_POLICY, read_plan, replayed

    plan = replayed(read_plan(plan_path, problem), plan_path)
    target = out_dir or Path("results") / problem.name / REPLAY_POLICY
    status = f"{plan_path}: running {len(problem.dag)} layers ..."
    if rule is None:
        return cli._execute_and_write(problem, lambda _: plan, target, plot, status)
    summary = cli._execute_and_write(
        problem, lambda _: plan, target, plot, status, lambda p, q: run_with_replanning(p, q, rule)
    )
    for line in replan_lines(summary):
        cli._say(line)
    return summary
