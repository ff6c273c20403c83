"""The plan search: simulated annealing over plan moves, with the simulator as the oracle.

:func:`search` starts from a plan (PACS's, RTFS's or a plan file's), evaluates it first,
then repeatedly draws a neighbour of the current plan (one to three moves of
:mod:`owin_cosim.optimize.moves`), simulates it and accepts it with the Metropolis rule:
always if it is no worse, else with probability ``exp(-delta / T)``, where the
temperature ``T`` falls geometrically from 0.3 % to 0.01 % of the start's makespan over
the budget. After ``max(10, budget // 5)`` evaluations without a new best, the search
goes back to the best plan. The best plan seen is returned, so the result is never
worse than the start.

Determinism: moves and acceptance draw from ``np.random.default_rng([seed, 11])``
only; a candidate already simulated is not simulated again (nor counted). For a seed and
an evaluation budget the result is the same bit for bit. With a wall-clock budget
(``time_s``) the number of evaluations, and the temperature schedule, depend on the
machine's speed: that mode is not deterministic.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from owin_cosim.optimize.moves import neighbour
from owin_cosim.optimize.state import State, from_plan, to_plan
from owin_cosim.sim.evaluator import Evaluator
from owin_cosim.system.plan import Plan
from owin_cosim.system.problem import Problem

__all__ = ["DEFAULT_BUDGET", "LogRow", "SearchResult", "search"]

#: Evaluations when no budget is given (the CLI's and policy ``owin``'s default). One
#: evaluation of the quickstart (176 layers) takes 36 ms on an idle 2-core machine (50 to
#: 73 ms under load), so 100 take 4 to 7 s; from PACS, seeds 0 and 2 reach the best
#: quickstart plan seen (35.303 ms) within 100, and 200 gain little on average
#: (``benchmarks/bench_optimize.py``).
DEFAULT_BUDGET = 100
#: The temperature, as fractions of the start's makespan, at the start and at the end.
T_START = 3e-3
T_END = 1e-4
#: Give up on a candidate draw after this many neighbours already simulated.
_MAX_REDRAWS = 50


@dataclass(frozen=True, slots=True)
class LogRow:
    """One evaluation of the search (row of ``convergence.csv``)."""

    evaluation: int
    makespan_s: float
    best_s: float
    accepted: bool
    move: str


@dataclass
class SearchResult:
    """What :func:`search` found."""

    #: The best plan seen (the start's decisions if nothing beat it), named ``policy``.
    plan: Plan
    best_s: float
    start_s: float
    #: Plans simulated, the start included.
    evaluations: int
    log: list[LogRow] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def improvement(self) -> float:
        """Relative makespan gain over the start (0 when nothing beat it)."""
        return 1.0 - self.best_s / self.start_s if self.start_s > 0 else 0.0


def _temperature(start_s: float, progress: float) -> float:
    return float(start_s * T_START * (T_END / T_START) ** min(1.0, max(0.0, progress)))


def _accept(delta: float, temperature: float, rng: np.random.Generator) -> bool:
    """Metropolis: always when no worse; else with probability ``exp(-delta / T)``."""
    u = float(rng.random())  # drawn every time, so the stream does not depend on delta
    return delta <= 0.0 or (temperature > 0.0 and u < math.exp(-delta / temperature))


def search(
    problem: Problem,
    start: Plan,
    budget: int | None = DEFAULT_BUDGET,
    seed: int = 0,
    evaluate: Callable[[Plan], float] | None = None,
    *,
    time_s: float | None = None,
    policy: str = "owin",
    progress: Callable[[int, float], None] | None = None,
) -> SearchResult:
    """Search plans near ``start`` for a smaller simulated makespan.

    Parameters
    ----------
    problem : Problem
        The compiled scenario.
    start : Plan
        The plan to start from (checked against ``problem``); evaluated first.
    budget : int or None
        Plans to simulate, the start included (>= 1); None: only ``time_s`` bounds it.
    seed : int
        Seeds the moves and the acceptance draws.
    evaluate : callable, optional
        Plan -> makespan (s); default ``Evaluator(problem).makespan`` (the planning
        surrogate, never the real run's channel).
    time_s : float, optional
        A wall-clock budget (s) on top of ``budget``; not deterministic.
    policy : str
        The ``policy`` name of the plans the search builds.
    progress : callable, optional
        Called after every evaluation with (evaluations so far, best makespan).

    Returns
    -------
    SearchResult
        The best plan (``start`` itself unless a candidate was strictly better), its
        makespan, the start's, and the log of every evaluation.

    Examples
    --------
    >>> from pathlib import Path
    >>> import owin_cosim
    >>> from owin_cosim.api import build_problem, make_policy
    >>> ex = Path(owin_cosim.__file__).parents[1] / "examples/quickstart.yaml"
    >>> problem = build_problem(ex)
    >>> r = search(problem, make_policy("rtfs").plan(problem), budget=5, seed=1)
    >>> r.evaluations, r.best_s <= r.start_s, r.log[0].move
    (5, True, 'start')
    """
    if budget is None and time_s is None:
        raise ValueError("give a budget, a time_s or both")
    if budget is not None and budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    oracle = evaluate if evaluate is not None else Evaluator(problem).makespan
    began = time.perf_counter()
    rng = np.random.default_rng([seed, 11])
    start_s = oracle(start)
    log = [LogRow(0, start_s, start_s, True, "start")]
    if progress is not None:
        progress(1, start_s)
    current = best = from_plan(start, problem)
    current_s = best_s = start_s
    improved = False
    seen: dict[State, float] = {current: start_s}
    patience = max(10, (budget or 50) // 5)
    stale = 0

    def spent() -> float:
        if time_s is not None:
            used = (time.perf_counter() - began) / time_s
            return max(used, len(log) / budget) if budget is not None else used
        assert budget is not None
        return len(log) / budget

    while spent() < 1.0:
        drawn = _draw(current, problem, rng, seen)
        if drawn is None:
            break  # the neighbourhood is exhausted (a tiny problem)
        cand, moves = drawn
        span = oracle(to_plan(cand, problem, policy, base=start))
        seen[cand] = span
        ok = _accept(span - current_s, _temperature(start_s, spent()), rng)
        if ok:
            current, current_s = cand, span
        if span < best_s:
            best, best_s, improved, stale = cand, span, True, 0
        else:
            stale += 1
        if stale >= patience:  # restart from the best plan
            current, current_s, stale = best, best_s, 0
        log.append(LogRow(len(log), span, best_s, ok, moves))
        if progress is not None:
            progress(len(log), best_s)
    notes: dict[str, Any] = {
        "optimizer": {
            "start_policy": start.policy,
            "start_planning_makespan_s": start_s,
            "planning_makespan_s": best_s,
            "evaluations": len(log),
            "seed": seed,
            "budget": budget,
        }
    }
    # Nothing better: the start's own decisions, under the search's name.
    plan = (
        to_plan(best, problem, policy, notes, base=start)
        if improved
        else replace(start, policy=policy, notes=notes)
    )
    return SearchResult(plan, best_s, start_s, len(log), log, time.perf_counter() - began)


def _draw(
    current: State, problem: Problem, rng: np.random.Generator, seen: dict[State, float]
) -> tuple[State, str] | None:
    """A neighbour of ``current`` not simulated yet (None after many in a row)."""
    for _ in range(_MAX_REDRAWS):
        drawn = neighbour(current, problem, rng)
        if drawn is not None and drawn[0] not in seen:
            return drawn
    return None
