"""Candidate continuations of a plan from a run's state.

The candidates of one re-plan, in the order they are simulated (the budget takes the
first ones; duplicates are dropped):

1. PACS's radio families (:meth:`owin_cosim.policies.pacs.Pacs.candidates`) over the
   devices still sending, computed on a *residual view* of the problem (each such
   device's payload is what it has not delivered, the layers that have ended cost
   nothing), keeping the plan's compute side (priorities, placement, core order) and
   dropping an explicit RB allocation (an exact plan's ``radio_grid``: the family
   replaces it);
2. if the plan has a compute side: the current radio continuation, then each family,
   with plain ``eft`` dispatch instead (for the layers not yet dispatched).

The current plan's own continuation (its radio phases from the one in force) is the
reference every candidate must beat; it is not one of the candidates.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from owin_cosim.policies.pacs import Pacs
from owin_cosim.sim.state import RunState
from owin_cosim.system.plan import Plan, RadioPhase
from owin_cosim.system.problem import Problem

__all__ = ["candidates", "changes", "continuation", "plan_key", "residual_view"]


def residual_view(problem: Problem, state: RunState) -> Problem:
    """``problem`` as seen from ``state``: only the devices still sending, each with the
    bytes and chunks it has not delivered; layers that have ended take no time."""
    left: dict[str, int] = {}
    for chunk in state.pending:
        left[chunk.device] = left.get(chunk.device, 0) + chunk.nbytes
    still = [k for k, d in enumerate(problem.devices) if d.name in left]
    devices = [
        dataclasses.replace(
            problem.devices[k],
            payload_bytes=left[problem.devices[k].name],
            chunks=state.chunks_left[k],
        )
        for k in still
    ]
    duration = np.where(np.isnan(state.finish), problem.dag.duration_s, 0.0)
    dag = dataclasses.replace(problem.dag, duration_s=duration)  # ranks recomputed
    return dataclasses.replace(
        problem, devices=devices, dag=dag, mean_rate_bps=problem.mean_rate_bps[still]
    )


def continuation(plan: Plan, state: RunState) -> Plan:
    """``plan`` from ``state`` on: its radio phases from the one in force."""
    return dataclasses.replace(plan, radio_phases=plan.radio_phases[state.phase :])


def _eft(plan: Plan) -> Plan:
    return dataclasses.replace(plan, placement=None, priorities=None, core_order=None)


def plan_key(plan: Plan) -> str:
    """What a continuation decides, as a string (same decisions, same key)."""
    phases = [(sorted(p.shares.items()), p.until_done) for p in plan.radio_phases]
    return json.dumps([phases, plan.schedule(), plan.grid_rows()], sort_keys=True)


def candidates(problem: Problem, plan: Plan, state: RunState, budget: int) -> dict[str, Plan]:
    """At most ``budget`` candidate continuations, by name (see the module docstring)."""
    families = Pacs().candidates(residual_view(problem, state)) if state.pending else {}
    radio: dict[str, tuple[RadioPhase, ...]] = dict(families)
    out: dict[str, Plan] = {}
    seen = {plan_key(continuation(plan, state))}
    # a new radio plan supersedes an explicit RB allocation (an exact plan's grid)
    options = [
        (name, dataclasses.replace(plan, radio_phases=p, radio_grid=None))
        for name, p in radio.items()
    ]
    if any(v is not None for v in plan.schedule().values()):
        options.append(("eft", _eft(continuation(plan, state))))
        options += [(f"{name}+eft", _eft(p)) for name, p in options[: len(radio)]]
    for name, cand in options:
        key = plan_key(cand)
        if key not in seen and len(out) < budget:
            seen.add(key)
            out[name] = cand
    return out


def changes(before: Plan, after: Plan) -> dict[str, object]:
    """What ``after`` changes of ``before`` (both continuations): JSON-ready."""
    out: dict[str, object] = {}
    if before.radio_phases != after.radio_phases:
        out["radio_phases"] = after.describe()["radio_phases"]
    if before.radio_grid != after.radio_grid:
        out["radio_grid"] = after.grid_rows() if after.radio_grid is not None else "dropped"
    old, new = before.schedule(), after.schedule()
    for field, value in new.items():
        if value != old[field]:
            out[field] = value if value is not None else "dropped (eft dispatch)"
    return out
