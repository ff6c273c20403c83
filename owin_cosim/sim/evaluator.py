"""The makespan oracle that planners use: carry a candidate plan out in simulation.

An :class:`Evaluator` runs plans on a fresh network backend each time, built from the
problem's recipe: by default the *planning surrogate* (its own channel realisation,
never the real run's), or the real run's backend for a final check. It counts its
evaluations, so that a search can be given a budget and report what it spent.

>>> from pathlib import Path
>>> import owin_cosim
>>> from owin_cosim.api import build_problem, make_policy
>>> problem = build_problem(Path(owin_cosim.__file__).parents[1] / "examples/quickstart.yaml")
>>> plan = make_policy("rtfs").plan(problem)
>>> ev = Evaluator(problem)
>>> planned = ev.makespan(plan)
>>> round(planned * 1e3, 2), planned == ev.makespan(plan), ev.evaluations
(47.24, True, 2)
"""

from __future__ import annotations

from typing import Literal

from owin_cosim.results.records import RunResult
from owin_cosim.sim.coordinator import execute, makespan_of
from owin_cosim.system.plan import Plan
from owin_cosim.system.problem import Problem

__all__ = ["Evaluator"]


class Evaluator:
    """Simulate plans of one problem and return their makespan (or full result).

    Parameters
    ----------
    problem : Problem
        The compiled scenario.
    network : {"planning", "real"}
        Which backend recipe the plans run on: the planning surrogate (default) or the
        real run's backend (e.g. ns-3, for a final check).
    """

    def __init__(self, problem: Problem, network: Literal["planning", "real"] = "planning") -> None:
        self.problem = problem
        self.network = network
        #: Plans simulated so far.
        self.evaluations = 0

    def makespan(self, plan: Plan) -> float:
        """The makespan of ``plan`` (seconds)."""
        self.evaluations += 1
        p = self.problem
        net = p.make_planning_network() if self.network == "planning" else p.make_network()
        return makespan_of(p, plan, net)

    def run(self, plan: Plan) -> RunResult:
        """The full record of ``plan`` (every chunk and layer)."""
        self.evaluations += 1
        p = self.problem
        net = p.make_planning_network() if self.network == "planning" else p.make_network()
        return execute(p, plan, net)
