"""``owin-cosim optimize SCENARIO.yaml [--budget N | --time S] [--start rtfs|pacs|PLAN.json]
[--seed K] [--check real] --out DIR``: search plans in simulation (``docs/policies.md``,
"owin").

Registered on :data:`owin_cosim.cli.app` (``cli.py`` imports this module); the search is
:func:`owin_cosim.optimize.search`. Writes ``DIR/plan.json`` (``owin-cosim run SCENARIO
--plan DIR/plan.json`` carries it out), ``DIR/convergence.csv`` and ``DIR/optimize.json``.
Exit codes: 0 done, 2 for a bad option, scenario or ``--out`` (before the search), 1 if
a backend fails, 130 on SIGINT (nothing written).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from owin_cosim.cli import DebugOpt, ScenarioArg, _assemble, _guard, _say, app, err
from owin_cosim.errors import ConfigError
from owin_cosim.optimize.search import DEFAULT_BUDGET
from owin_cosim.optimize.start import START_POLICIES
from owin_cosim.scenario.schema import Scenario
from owin_cosim.system.plan import Plan
from owin_cosim.system.problem import Problem

__all__ = ["optimize"]


def _check_options(budget: int | None, time_s: float | None, start: str, check: str | None) -> None:
    """The options that can be judged before the (slow) assembly."""
    if budget is not None and time_s is not None:
        raise ConfigError(None, "--budget", "give either --budget or --time, not both")
    if budget is not None and budget < 1:
        raise ConfigError(None, "--budget", f"expected an integer >= 1, got {budget}")
    if time_s is not None and not time_s > 0:  # also NaN
        raise ConfigError(None, "--time", f"expected a number of seconds > 0, got {time_s}")
    if start not in START_POLICIES and not Path(start).is_file():
        raise ConfigError(
            None,
            "--start",
            f"expected {', '.join(START_POLICIES)} or a plan file; no file {start!r}",
        )
    if check not in (None, "real"):
        raise ConfigError(None, "--check", f"expected 'real', got {check!r}")


def _start(problem: Problem, start: str) -> Plan:
    """The start plan: a start policy's, or a plan file checked against ``problem``."""
    from owin_cosim.optimize.start import start_plan
    from owin_cosim.system.plan_file import read_plan

    if start in START_POLICIES:
        return start_plan(problem, start)
    try:
        return read_plan(start, problem)
    except ConfigError as exc:  # e.g. a plan for another scenario: the option's fault
        raise ConfigError(None, "--start", str(exc)) from None


def _real_check(problem: Problem, start: Plan, best: Plan) -> dict[str, Any]:
    """The start and the best plan on the scenario's real network backend."""
    from owin_cosim.sim.evaluator import Evaluator

    real = Evaluator(problem, "real")
    with err.status(Text(f"checking on the real backend ({problem.network_backend}) ...")):
        start_s, best_s = real.makespan(start), real.makespan(best)
    return {
        "network": problem.network_backend,
        "start_makespan_s": start_s,
        "best_makespan_s": best_s,
    }


@app.command()
def optimize(
    scenario: ScenarioArg,
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write the plan and logs.")],
    budget: Annotated[
        int | None,
        typer.Option(help=f"Plans to simulate, the start included (default {DEFAULT_BUDGET})."),
    ] = None,
    time_s: Annotated[
        float | None,
        typer.Option("--time", help="A wall-clock budget in seconds (not deterministic)."),
    ] = None,
    start: Annotated[
        str, typer.Option(help="Start from 'pacs', 'rtfs' or a plan file.")
    ] = START_POLICIES[0],
    seed: Annotated[int, typer.Option(min=0, help="Seed of the search.")] = 0,
    check: Annotated[
        str | None,
        typer.Option(help="'real': also run the start and best plans on the real backend."),
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Search plans in the planning simulation, starting from a policy's plan or a plan
    file; write DIR/plan.json, DIR/convergence.csv and DIR/optimize.json."""
    from owin_cosim.results.safety import prepare_target

    with _guard(debug):
        _check_options(budget, time_s, start, check)

        def claim(_: Scenario) -> None:  # may --out be written? (before any work)
            prepare_target(out_dir, "--out")

        _, problem = _assemble(scenario, claim)
        first = _start(problem, start)
        if budget is None and time_s is None:
            budget = DEFAULT_BUDGET
        _write(problem, first, out_dir, start, budget, time_s, seed, check)


def _write(
    problem: Problem,
    first: Plan,
    out_dir: Path,
    start: str,
    budget: int | None,
    time_s: float | None,
    seed: int,
    check: str | None,
) -> None:
    """Search (with a progress bar on stderr), then write the directory atomically."""
    from owin_cosim.optimize.report import summary_doc, write_convergence_file
    from owin_cosim.optimize.search import search
    from owin_cosim.results.writers import atomic_directory, write_json
    from owin_cosim.system.plan_file import write_plan

    columns = [TextColumn("optimizing"), BarColumn(), MofNCompleteColumn()]
    with Progress(
        *columns,
        TextColumn("{task.fields[best]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("search", total=budget, best="")

        def shown(done: int, best_s: float) -> None:
            bar.update(task, completed=done, best=f"best {best_s * 1e3:.3f} ms")

        result = search(problem, first, budget, seed, time_s=time_s, progress=shown)
    report = _real_check(problem, first, result.plan) if check == "real" else None
    with atomic_directory(out_dir, "--out") as tmp:
        write_plan(tmp / "plan.json", result.plan, problem)
        write_convergence_file(tmp / "convergence.csv", result.log)
        doc = summary_doc(
            problem, result, start=start, seed=seed, budget=budget, time_s=time_s, check=report
        )
        write_json(tmp / "optimize.json", doc)
    line = (
        f"optimize: {result.evaluations} evaluations, planning makespan "
        f"{result.start_s * 1e3:.3f} -> {result.best_s * 1e3:.3f} ms "
        f"({result.improvement * 100:.2f} % lower)"
    )
    if report is not None:
        line += (
            f"; on {report['network']}: {report['start_makespan_s'] * 1e3:.3f} -> "
            f"{report['best_makespan_s'] * 1e3:.3f} ms"
        )
    _say(f"{line} -> {out_dir}")
