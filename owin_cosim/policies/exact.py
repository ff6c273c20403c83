"""The exact CP-SAT reference as a policy, so that sweeps carry the optimum.

Policy ``exact`` solves the problem with :func:`owin_cosim.exact.solve` (OR-Tools,
``pip install ".[exact]"``) and returns the solver's plan (an explicit RB grid, a
placement and core orders), so its run's makespan is the replayed solver makespan.
Unlike every other policy it is **clairvoyant**: the solver knows the fading of every
slot of the real run's channel, while RTFS, PACS and owin plan on the planning
surrogate (``docs/exact.md``). Its plan's notes, written into ``summary.json`` under
``plan``, hold the solver's ``status``, ``bound_s``, ``gap`` and, when the status is
``OPTIMAL``, ``optimum_s`` (read by :mod:`owin_cosim.study.table`).

The solver's wall time (``solve_s``) is left out of the notes: a summary must not
depend on the machine (a sweep's ``wall_s`` column has the run's wall time).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from owin_cosim.policies.base import Policy
from owin_cosim.policies.pacs import Pacs
from owin_cosim.policies.rtfs import Rtfs
from owin_cosim.system.plan import Plan
from owin_cosim.system.problem import Problem

__all__ = ["Exact", "ExactParams", "solution_notes"]


class ExactParams(BaseModel):
    """Parameters of policy ``exact``.

    >>> ExactParams().time_limit_s, ExactParams(workers=2).workers
    (60.0, 2)
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    #: CP-SAT's wall-clock limit; a solve it stops is FEASIBLE (a plan and a bound).
    time_limit_s: float = Field(60.0, gt=0, le=86_400)
    #: CP-SAT's search threads (1: deterministic when the solve ends before the limit).
    workers: int = Field(1, ge=1, le=256)


def solution_notes(solution: Any) -> dict[str, Any]:
    """What a run of policy ``exact`` reports of its solution (machine-independent).

    ``solution`` is an :class:`owin_cosim.exact.Solution`; ``optimum_s`` only when it is
    proven optimal.
    """
    notes: dict[str, Any] = {
        "status": solution.status,
        "makespan_s": solution.makespan_s,
        "bound_s": solution.bound_s,
        "gap": solution.gap,
        "dram_binds": solution.dram_binds,
        "references": dict(solution.references),
        "horizon_slots": solution.horizon_slots,
    }
    if solution.status == "OPTIMAL":
        notes["optimum_s"] = solution.makespan_s
    return notes


class Exact(Policy):
    """The CP-SAT reference's plan: optimal (or the best found with a proven bound) for
    the real run's channel realisation, which it knows (clairvoyant).

    RTFS's and PACS's plans are given to the solver as references: the best of them
    sets the horizon and starts the search, so the answer is never worse than theirs
    on this realisation.

    Raises
    ------
    BackendUnavailableError
        OR-Tools is not installed (``pip install ".[exact]"``).
    ConfigError
        Not an OFDM problem, or no plan within the time limit.
    """

    name = "exact"
    Params = ExactParams

    def plan(self, problem: Problem) -> Plan:
        # the facade imports OR-Tools only when a model is built
        from owin_cosim.exact import solve
        from owin_cosim.exact.facade import require_ortools

        params = self.params
        assert isinstance(params, ExactParams)
        require_ortools()  # the clear error before the reference runs
        refs = {"rtfs": Rtfs().plan(problem), "pacs": Pacs().plan(problem)}
        solution = solve(problem, params.time_limit_s, params.workers, references=refs)
        notes = {**solution.plan.notes, **solution_notes(solution)}
        return replace(solution.plan, notes=notes)
