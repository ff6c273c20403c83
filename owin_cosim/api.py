"""The library API: what the command line does, as functions.

Data flows one way: a scenario file is loaded (:func:`load_scenario`), compiled into a
:class:`~owin_cosim.system.problem.Problem` (:func:`build_problem`: the model costed on
the chip, the uplink described by its backend), planned by a policy and carried out by
the coordinator (:func:`run`, :func:`compare`) into a
:class:`~owin_cosim.results.records.RunResult`; :func:`write_results` writes its results
directory.

Examples
--------
>>> from pathlib import Path
>>> import owin_cosim
>>> quickstart = Path(owin_cosim.__file__).parents[1] / "examples" / "quickstart.yaml"
>>> scenario = load_scenario(quickstart)
>>> slower = override(scenario, {"accelerator.latency_scale": 2.0})
>>> slower.accelerator.latency_scale, scenario.accelerator.latency_scale
(2.0, 1.0)
>>> result = run(scenario, policy="pacs")  # doctest: +SKIP
>>> round(result.makespan_s * 1e3, 2)      # doctest: +SKIP
36.22
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from owin_cosim.errors import ConfigError
from owin_cosim.policies.base import Policy
from owin_cosim.policies.registry import make_policy
from owin_cosim.results.records import RunResult
from owin_cosim.scenario.assemble import assemble
from owin_cosim.scenario.overrides import override
from owin_cosim.scenario.schema import Scenario
from owin_cosim.scenario.schema import load_scenario as _load_scenario
from owin_cosim.sim.coordinator import execute
from owin_cosim.system.plan import Plan
from owin_cosim.system.problem import Problem

__all__ = [
    "build_problem",
    "compare",
    "load_scenario",
    "make_policy",
    "override",
    "run",
    "write_results",
]

Progress = Callable[[int, int], None]


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file.

    Relative paths inside it (accelerator spec, model file, ...) stay relative to the
    file, also for copies made with :func:`override`.

    Raises
    ------
    ConfigError
        Naming the file, the key and what was expected.
    """
    return _load_scenario(path)


def build_problem(scenario: Scenario | str | Path, progress: Progress | None = None) -> Problem:
    """Compile a scenario (object or file) into a picklable :class:`Problem`.

    ``progress(done, total)`` follows the costing of the layers.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    return assemble(scenario, scenario.source_file, progress)


def _policy(policy: str | Policy, scenario: Scenario | None) -> Policy:
    if isinstance(policy, Policy):
        return policy
    params: Mapping[str, Any] = {}
    if scenario is not None and policy == scenario.policy.name:
        params = scenario.policy.params  # the scenario's parameters go with its policy
    return make_policy(policy, dict(params), None, "policy")


def _problem(target: Scenario | Problem | str | Path) -> tuple[Problem, Scenario | None]:
    if isinstance(target, Problem):
        return target, None
    scenario = target if isinstance(target, Scenario) else load_scenario(target)
    return build_problem(scenario), scenario


def run(
    scenario_or_problem: Scenario | Problem | str | Path,
    policy: str | Policy = "pacs",
    plan: Plan | str | Path | None = None,
) -> RunResult:
    """Plan with ``policy`` (a registered name or a :class:`Policy` object) and run.

    With ``plan`` (a :class:`Plan` or a ``plan.json`` file), that plan is carried out
    instead and ``policy`` is not consulted.
    """
    problem, scenario = _problem(scenario_or_problem)
    if plan is None:
        decided = _policy(policy, scenario).plan(problem)
    elif isinstance(plan, Plan):
        decided = plan
    else:
        from owin_cosim.system.plan_file import read_plan

        decided = read_plan(plan, problem)
    return execute(problem, decided)


def compare(
    scenario_or_problem: Scenario | Problem | str | Path,
    policies: Iterable[str | Policy] = ("rtfs", "pacs"),
) -> dict[str, RunResult]:
    """Run several policies on the same problem (same seed, same costs), in order.

    Returns a mapping policy name -> result. Names must be distinct.
    """
    from owin_cosim.network.ns3.pool import pool_for_runs

    problem, scenario = _problem(scenario_or_problem)
    chosen: dict[str, Policy] = {}
    for p in policies:
        pol = _policy(p, scenario)
        if pol.name in chosen:
            raise ConfigError(None, "policies", f"policy {pol.name!r} is given twice")
        chosen[pol.name] = pol
    # On ns-3: one worker pool, a worker per policy prepared at once.
    with pool_for_runs(problem.network, len(chosen)):
        return {name: execute(problem, pol.plan(problem)) for name, pol in chosen.items()}


def write_results(result: RunResult, out_dir: str | Path, plot: bool = True) -> Path:
    """Write a run's results directory (atomically); returns its path."""
    from owin_cosim.results.writers import write_results as _write

    return _write(result, Path(out_dir), plot=plot)
