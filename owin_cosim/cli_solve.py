"""``owin-cosim solve SCENARIO.yaml --time-limit S [--out DIR] [--workers N]``: the exact
CP-SAT reference of a scenario on the analytic OFDM uplink (``docs/exact.md``).

Registered on :data:`owin_cosim.cli.app` (``cli.py`` imports this module); the work is
done by :func:`owin_cosim.exact.solve`, with RTFS's and PACS's plans (run on the real
network recipe) setting the horizon. Writes ``DIR/solution.json`` (status, makespan,
bound, gap, solve time, what is relaxed, the reference makespans) and ``DIR/plan.json``
(``owin-cosim run SCENARIO --plan DIR/plan.json`` replays it); the default ``DIR`` is
``results/NAME/solve``. The written plan is read back and run by the coordinator on the
same channel realisation: its makespan must be the solver's (a mismatch is a bug,
exit 1). Exit codes: 0 done, 2 bad input (a non-OFDM backend, a bad ``--time-limit``,
no plan found within it, OR-Tools missing), 1 a failed run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from owin_cosim.cli import DebugOpt, OutOpt, ScenarioArg, _assemble, _guard, _say, app, err
from owin_cosim.errors import ConfigError, ScheduleError
from owin_cosim.scenario.schema import Scenario

__all__ = ["parse_time_limit", "solve"]


def parse_time_limit(text: str) -> float:
    """``--time-limit``: a finite number of seconds > 0.

    >>> parse_time_limit("2.5")
    2.5
    >>> parse_time_limit("0")
    Traceback (most recent call last):
    ...
    owin_cosim.errors.ConfigError: --time-limit: expected a number of seconds > 0, got '0'
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(None, "--time-limit", f"expected a number of seconds > 0, got {text!r}")
    return value


def _needs_ofdm(scenario: Scenario) -> None:
    if scenario.network.backend != "ofdm":
        raise ConfigError(
            scenario.source_file,
            "network.backend",
            f"the exact reference models the analytic OFDM uplink; got "
            f"{scenario.network.backend!r}, expected network.backend: ofdm",
        )


@app.command()
def solve(
    scenario: ScenarioArg,
    time_limit: Annotated[
        str,
        typer.Option(
            "--time-limit", help="CP-SAT's wall-clock limit (seconds, > 0).", show_default=False
        ),
    ],
    out_dir: OutOpt = None,
    workers: Annotated[
        int,
        typer.Option(min=1, max=256, help="CP-SAT search threads (1: deterministic)."),
    ] = 1,
    debug: DebugOpt = False,
) -> None:
    """Solve the scenario exactly (CP-SAT, clairvoyant on the real channel realisation);
    write DIR/solution.json and DIR/plan.json, and replay the plan."""
    from owin_cosim.exact.facade import require_ortools

    with _guard(debug):
        limit = parse_time_limit(time_limit)
        require_ortools()  # before the (slow) assembly
        targets: list[Path] = []

        def claim(sc: Scenario) -> None:  # may --out be written? (before any work)
            from owin_cosim.results.safety import prepare_target

            _needs_ofdm(sc)
            targets.append(prepare_target(out_dir or Path("results") / sc.name / "solve", "--out"))

        _, problem = _assemble(scenario, claim)
        _solve_and_write(problem, limit, workers, targets[0])


def _solve_and_write(problem: object, limit: float, workers: int, target: Path) -> None:
    from rich.text import Text

    from owin_cosim.exact import solve as exact_solve
    from owin_cosim.policies import make_policy
    from owin_cosim.results.writers import atomic_directory, write_json
    from owin_cosim.sim.coordinator import execute
    from owin_cosim.system.plan_file import read_plan, write_plan
    from owin_cosim.system.problem import Problem

    assert isinstance(problem, Problem)
    refs = {name: make_policy(name).plan(problem) for name in ("rtfs", "pacs")}
    with err.status(Text(f"solving {len(problem.dag)} layers (limit {limit:g} s) ...")):
        solution = exact_solve(problem, limit, workers, references=refs)
    with atomic_directory(target, "--out") as tmp:
        write_plan(tmp / "plan.json", solution.plan, problem)
        # the file as written, run again: what `owin-cosim run --plan` will do
        replay = execute(problem, read_plan(tmp / "plan.json", problem)).makespan_s
        if replay != solution.makespan_s:
            raise ScheduleError(
                f"the written plan's replay gives {replay!r} s, the solution "
                f"{solution.makespan_s!r} s (a bug)"
            )
        write_json(tmp / "solution.json", solution.to_json())
    s = solution
    _say(
        f"exact ({s.status}): makespan {s.makespan_s * 1e3:.3f} ms, bound "
        f"{s.bound_s * 1e3:.3f} ms, gap {s.gap * 100:.3f} %, solved in {s.solve_s:.2f} s"
    )
    _say(
        f"  solver's makespan {s.model_makespan_s * 1e3:.6f} ms, replayed by the "
        f"coordinator {replay * 1e3:.6f} ms (same channel realisation)"
    )
    if s.dram_binds:
        _say("  DRAM contention binds in the replay: the solver's value is a bound only")
    if s.plan_source != "solver":
        _say(
            f"  the solver's plan replays to {s.replay_makespan_s * 1e3:.6f} ms: the better "
            f"{s.plan_source} plan is written instead"
        )
    refs_text = ", ".join(f"{k} {v * 1e3:.3f} ms" for k, v in s.references.items())
    _say(f"  policies on the same realisation: {refs_text}")
    _say("  clairvoyant: the solver knows every slot's fading of this realisation")
    _say(f"-> {target}/solution.json, {target}/plan.json")
