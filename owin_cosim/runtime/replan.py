"""The re-planning hook, and a run that uses it.

:func:`run_with_replanning` first simulates the plan once on the planning surrogate
(:meth:`owin_cosim.sim.evaluator.Evaluator.run`): that run is the *planned timeline*,
every chunk's planned delivery and every layer's planned end, and its makespan is the
``planned_makespan_s`` of the summary. Then it carries the plan out on the real
backend with a :class:`Replanner` watching (a
:class:`~owin_cosim.sim.state.RunHook`).

At each instant with deliveries or layer ends, the replanner takes the latest of them
against the timeline; if it is later than planned by more than the rule's threshold
(and the rule's cap and cool-down allow), it re-plans: it takes the run's state,
simulates the current plan's continuation and up to ``budget`` candidate
continuations from that state on a fresh planning surrogate: PACS's radio families
(:mod:`owin_cosim.runtime.candidates`) first, then, with what is left of the budget, a
search (:func:`owin_cosim.optimize.search`, seeded by the re-plan's number) started
from the best so far, whose oracle is the same residual simulation. It hands the best
candidate to the run if its predicted makespan is lower than the continuation's.
Either way the timeline becomes the prediction of the plan kept, so that the next
trigger measures lateness against what is now expected, not the stale original.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from owin_cosim.network.base import Delivery, NetworkBackend
from owin_cosim.optimize import search
from owin_cosim.results.records import RunResult
from owin_cosim.runtime.candidates import candidates, changes, continuation, plan_key
from owin_cosim.runtime.rule import ReplanRule
from owin_cosim.sim.coordinator import execute, forecast
from owin_cosim.sim.evaluator import Evaluator
from owin_cosim.sim.state import Forecast, RunControl, RunState
from owin_cosim.system.plan import Plan
from owin_cosim.system.problem import Problem

__all__ = ["Replanner", "planned_timeline", "run_with_replanning"]


def planned_timeline(problem: Problem, result: RunResult) -> Forecast:
    """The timeline of a (surrogate) run: its deliveries and layer ends."""
    index = {name: v for v, name in enumerate(problem.dag.names)}
    finish = np.full(len(problem.dag), math.nan)
    for rec in result.layers:
        finish[index[rec.layer]] = rec.end_s
    delivered = {(c.device, c.chunk): c.last_byte_s for c in result.chunks}
    return Forecast(result.makespan_s, delivered, finish)


class Replanner:
    """Watches a run against a timeline and re-plans what remains when it runs late.

    Parameters
    ----------
    problem : Problem
        The problem being run.
    rule : ReplanRule
        When to re-plan and with what budget.
    timeline : Forecast
        The planned timeline (see :func:`planned_timeline`).
    """

    def __init__(self, problem: Problem, rule: ReplanRule, timeline: Forecast) -> None:
        self.problem, self.rule, self.timeline = problem, rule, timeline
        #: One record per re-plan, JSON-ready (the summary's ``replans``).
        self.records: list[dict[str, Any]] = []
        #: Residual simulations run, over all re-plans.
        self.evaluations = 0

    def _latest(
        self, run: RunControl, deliveries: Sequence[Delivery], ended: Sequence[int]
    ) -> dict[str, Any] | None:
        """The latest of this instant's events against the timeline, if over threshold."""
        late: list[tuple[float, str, str, float]] = []
        if self.rule.on in ("both", "chunks"):
            for d in deliveries:
                planned = self.timeline.delivered_s.get((d.device, d.chunk), math.inf)
                late.append((d.last_byte_s - planned, "chunk", f"{d.device}#{d.chunk}", planned))
        if self.rule.on in ("both", "layers"):
            for v in ended:
                planned = float(self.timeline.finish_s[v])
                late.append((run.now - planned, "layer", self.problem.dag.names[v], planned))
        late = [x for x in late if x[0] > self.rule.threshold_s]
        if not late:
            return None
        by, kind, name, planned = max(late, key=lambda x: (x[0], x[1], x[2]))
        return {"kind": kind, "name": name, "planned_s": planned, "late_s": by}

    def on_progress(
        self, run: RunControl, deliveries: Sequence[Delivery], ended: Sequence[int]
    ) -> None:
        """Re-plan if the rule says so (see the module docstring)."""
        rule = self.rule
        if len(self.records) >= rule.max_replans:
            return
        if self.records and run.now - self.records[-1]["at_s"] < rule.cooldown_s:
            return
        why = self._latest(run, deliveries, ended)
        if why is None:
            return
        state = run.snapshot()
        if not state.pending and all(state.cores_of):
            return  # everything sent and dispatched: nothing a plan could change
        spent = self.evaluations
        current = continuation(run.plan, state)
        options = candidates(self.problem, run.plan, state, rule.budget)
        before = self._forecast(current, state)
        best_name, best_plan, best = "current", current, before
        for name, plan in options.items():
            predicted = self._forecast(plan, state)
            if predicted.makespan_s < best.makespan_s:
                best_name, best_plan, best = name, plan, predicted
        left = rule.budget - len(options)
        if left > 0:
            found = self._search(best_plan, best, state, left)
            if found is not None:
                best_name, best_plan, best = "search", *found
        if best_plan is not current:
            run.replace_plan(best_plan)
        self.timeline = best
        self.records.append(
            {
                "at_s": run.now,
                "why": why,
                "changed": changes(current, best_plan),
                "candidate": best_name,
                "evaluations": self.evaluations - spent,
                "predicted_before_s": before.makespan_s,
                "predicted_after_s": best.makespan_s,
            }
        )

    def _forecast(self, plan: Plan, state: RunState) -> Forecast:
        self.evaluations += 1
        net = self.problem.make_planning_network()
        return forecast(self.problem, plan, net, state)

    def _search(
        self, start: Plan, start_fc: Forecast, state: RunState, budget: int
    ) -> tuple[Plan, Forecast] | None:
        """The optimizer's best continuation from ``start`` (``budget`` residual
        simulations), if strictly better than ``start``."""
        seen = {plan_key(start): start_fc}

        def residual(plan: Plan) -> float:
            key = plan_key(plan)
            if key not in seen:
                seen[key] = self._forecast(plan, state)
            return seen[key].makespan_s

        found = search(
            self.problem, start, budget + 1, len(self.records), residual, policy=start.policy
        )
        if found.best_s >= start_fc.makespan_s:
            return None
        return replace(found.plan, notes=start.notes), seen[plan_key(found.plan)]


def run_with_replanning(
    problem: Problem, plan: Plan, rule: ReplanRule, network: NetworkBackend | None = None
) -> RunResult:
    """Carry ``plan`` out on the real backend (or ``network``), re-planning by ``rule``.

    The result's summary gains ``planned_makespan_s`` (the plan on the planning
    surrogate), ``replan_rule``, ``replan_evaluations`` and ``replans`` (one record per
    re-plan: ``at_s``, ``why``, ``changed``, ``candidate``, ``evaluations``,
    ``predicted_before_s``, ``predicted_after_s``); the other keys are as without.
    """
    planned = Evaluator(problem).run(plan)
    hook = Replanner(problem, rule, planned_timeline(problem, planned))
    result = execute(problem, plan, network, hook)
    result.runtime = {
        "planned_makespan_s": planned.makespan_s,
        "replan_rule": rule.describe(),
        "replan_evaluations": hook.evaluations,
        "replans": hook.records,
    }
    return result
