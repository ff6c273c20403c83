"""The exact reference's facade: horizon, CP-SAT model, solve, plan, replay, check.

Steps of :func:`solve`:

1. reference plans (:mod:`~owin_cosim.exact.references`: a simultaneous-upload plan,
   plus any given, e.g. RTFS and PACS) run on the real network recipe; the best
   makespan bounds the optimum from above and sets the horizon: that many slots, plus
   :data:`MARGIN_SLOTS`;
2. the radio (:mod:`~owin_cosim.exact.radio`) and compute (:mod:`~owin_cosim.exact.compute`)
   halves on one integer clock, ``UNITS_PER_SLOT`` units per radio slot; the makespan
   is the latest layer end and chunk delivery, minimised;
3. CP-SAT with ``workers`` threads and a fixed random seed, within the time limit;
4. the plan: the solved RB owners per slot (``radio_grid``), every layer's cores
   (``placement``) and each core's layers by start (``core_order``);
5. the coordinator replays the plan on the same realisation; every chunk must arrive in
   the slot the solver believed and the makespans agree up to the time quantum, or
   DRAM contention (a relaxation: each layer at its time alone) made the replay
   slower, which the solution then says (status FEASIBLE, the model value a bound).

Determinism: with a fixed seed and a given number of workers (one: CP-SAT's plain
search; several: its strategies interleaved in deterministic batches), the search is
deterministic, so a
solve that finishes (OPTIMAL) before its time limit gives the same plan every time; a
solve stopped by the (wall-clock) limit stops wherever the machine's speed left it, so
its plan and bound may differ between runs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

from owin_cosim.errors import BackendUnavailableError, ConfigError, ScheduleError
from owin_cosim.exact.references import (
    ReferenceRun,
    best_reference,
    model_lower_bound,
    run_references,
    simultaneous_plan,
)
from owin_cosim.exact.replay import check_deliveries, dram_slowed
from owin_cosim.exact.solution import CLAIRVOYANT_NOTE, Solution
from owin_cosim.exact.symmetry import fixed_order, ordered_pairs
from owin_cosim.sim.coordinator import execute
from owin_cosim.system.plan import Plan
from owin_cosim.system.problem import Problem

__all__ = [
    "INDEX_ORDER",
    "INDEX_ORDER_SHARE",
    "MARGIN_SLOTS",
    "MAX_RADIO_BOOLEANS",
    "RANDOM_SEED",
    "UNITS_PER_SLOT",
    "require_ortools",
    "simultaneous_plan",
    "solve",
]

#: Integer time units per radio slot (0.5 ns at the default 0.5 ms slot).
UNITS_PER_SLOT = 1_000_000
#: Slots added to the horizon beyond the best reference plan's makespan.
MARGIN_SLOTS = 2
#: CP-SAT's random seed (fixed: same inputs, same search).
RANDOM_SEED = 0
#: Share of the time limit for the index-order model, when some device's chunk order
#: is free (its plan, under the name :data:`INDEX_ORDER`, starts the free search).
INDEX_ORDER_SHARE = 1 / 3
INDEX_ORDER = "index order"
#: Largest radio model built (``own`` and ``pick`` booleans): beyond it the model alone
#: takes minutes and gigabytes to build, and no proof comes (``docs/exact.md``).
MAX_RADIO_BOOLEANS = 500_000


def require_ortools() -> ModuleType:
    """OR-Tools' CP-SAT module, or a clear error naming the extra to install."""
    try:
        from ortools.sat.python import cp_model
    except ImportError:
        raise BackendUnavailableError(
            'the exact reference needs OR-Tools, which is not installed: pip install ".[exact]"'
        ) from None
    return cp_model


def _check(problem: Problem, time_limit_s: float, workers: int) -> None:
    if problem.network.backend != "ofdm":
        raise ConfigError(
            None,
            "network.backend",
            f"the exact reference models the analytic OFDM uplink; got "
            f"{problem.network.backend!r}, expected network.backend: ofdm",
        )
    if isinstance(time_limit_s, bool) or not (
        isinstance(time_limit_s, int | float) and math.isfinite(time_limit_s) and time_limit_s > 0
    ):
        raise ConfigError(
            None, "--time-limit", f"expected a number of seconds > 0, got {time_limit_s!r}"
        )
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(None, "workers", f"expected an integer >= 1, got {workers!r}")


@dataclass
class _Model:
    """The built model and what reading its solution needs."""

    model: Any
    radio: Any
    tables: Any
    compute: Any
    makespan: Any


def _check_size(problem: Problem, slots: int) -> None:
    devices, rbs = len(problem.devices), problem.network.config.num_rbs
    size = devices * slots * rbs * (rbs + 1)
    if size > MAX_RADIO_BOOLEANS:
        raise ConfigError(
            None,
            "network.ofdm.num_rbs",
            f"the exact model would need {size} radio booleans ({devices} devices x "
            f"{slots} slots x {rbs} RBs x {rbs + 1}); expected at most {MAX_RADIO_BOOLEANS}: "
            "the exact reference is for small instances (fewer RBs, devices or slots; "
            "docs/exact.md, limits of size)",
        )


def _build(problem: Problem, slots: int, unit_s: float, index_order: bool = False) -> _Model:
    from ortools.sat.python import cp_model

    from owin_cosim.exact.compute import add_compute
    from owin_cosim.exact.radio import add_radio, radio_tables

    model = cp_model.CpModel()
    tables = radio_tables(problem, slots)
    radio = add_radio(model, tables)
    if index_order:  # every device's chunks in index order (the first stage of solve)
        for (_, c, p), var in radio.at.items():
            if c == p:
                model.add(var == 1)
    horizon = slots * UNITS_PER_SLOT
    at = [[(d + 1) * UNITS_PER_SLOT for d in dev] for dev in radio.delivery_slot]
    every = [(d + 1) * UNITS_PER_SLOT for d in radio.all_slot]
    comp = add_compute(model, problem, unit_s, horizon, _ready(problem, at, every))
    makespan = model.new_int_var(0, horizon, "makespan")
    for end in comp.end:
        model.add(makespan >= end)
    for dev_all in every:
        model.add(makespan >= dev_all)
    model.minimize(makespan)
    return _Model(model, radio, tables, comp, makespan)


def _ready(problem: Problem, at: list[list[Any]], every: list[Any]) -> list[Any]:
    """Per layer: when its data is there (a chunk's delivery, or all of a device's for
    chunk ``-1``), or ``None`` for a layer that needs no uplink data."""
    return [
        None if need is None else every[need[0]] if need[1] == -1 else at[need[0]][need[1]]
        for need in problem.dag.needs
    ]


def _hint(problem: Problem, built: _Model, unit_s: float, start: ReferenceRun) -> None:
    """Start CP-SAT from the best reference run (a complete, feasible hint)."""
    from owin_cosim.exact.compute import hint_compute
    from owin_cosim.exact.radio import hint_radio

    owners, runs, queues = start
    slots = hint_radio(built.model, built.tables, built.radio, owners, queues)
    at = [[(d + 1) * UNITS_PER_SLOT for d in dev] for dev in slots]
    every = [max(dev) for dev in at]
    ready = _ready(problem, at, every)
    end = hint_compute(built.model, built.compute, problem, unit_s, runs, ready)
    built.model.add_hint(built.makespan, max([end, *every]))


def _hinted_model(
    problem: Problem, plans: Mapping[str, Plan], index_order: bool = False
) -> tuple[dict[str, float], _Model, float]:
    """Run the reference ``plans``, build the model on their horizon and hint it with
    the best run.

    Returns
    -------
    tuple of (dict of str to float, _Model, float)
        Every reference's makespan (seconds), the hinted model and the time unit (s).
    """
    refs, start = run_references(problem, plans)
    slot_s = problem.network.config.slot_s
    slots = math.ceil(min(refs.values()) / slot_s - 1e-9) + MARGIN_SLOTS
    unit_s = slot_s / UNITS_PER_SLOT
    _check_size(problem, slots)
    built = _build(problem, slots, unit_s, index_order)
    _hint(problem, built, unit_s, start)
    return refs, built, unit_s


def _plan(problem: Problem, solver: Any, built: _Model) -> Plan:
    """The solved decisions as a plan the coordinator carries out exactly."""
    from owin_cosim.exact.radio import grid_of, queues_of

    names = problem.dag.names
    comp = built.compute
    placement: dict[str, int | list[int]] = {}
    per_core: dict[int, list[tuple[int, int, int]]] = {}
    for v, name in enumerate(names):
        i = next(i for i, lit in enumerate(comp.chosen[v]) if solver.boolean_value(lit))
        cores = comp.modes[v][i].cores
        placement[name] = cores[0] if len(cores) == 1 else list(cores)
        span = (int(solver.value(comp.start[v])), int(solver.value(comp.end[v])), v)
        for j in cores:
            per_core.setdefault(j, []).append(span)
    core_order = {j: [names[v] for _, _, v in sorted(spans)] for j, spans in per_core.items()}
    base = simultaneous_plan(problem)
    grid = grid_of(solver, built.radio, [d.name for d in problem.devices], built.tables)
    queues = queues_of(solver, built.radio, [d.chunks for d in problem.devices])
    # every device's chunks in its solved order (devices interleaved: each has its queue)
    order = sorted(
        (
            (p, k, d.name, queues[k][p])
            for k, d in enumerate(problem.devices)
            for p in range(d.chunks)
        )
    )
    return Plan(
        "exact",
        base.radio_phases,
        tuple((name, c) for _, _, name, c in order),
        "on_arrival",
        notes={"solver": "cp-sat", "clairvoyant": True, "note": CLAIRVOYANT_NOTE},
        placement=placement,
        core_order=dict(sorted(core_order.items())),
        radio_grid=grid,
    )


def _relaxations(problem: Problem, unit_s: float) -> tuple[str, ...]:
    from owin_cosim.exact.radio import BIT_SCALE

    out = [
        f"time: layer durations and NoC times floored to the quantum {unit_s:g} s",
        f"radio: bits per RB and slot floored to 1/{BIT_SCALE} bit",
    ]
    if any(o.dram_s > 0 for opts in problem.dag.layer_options for o in opts):
        out.append(
            "dram: every layer at its time alone on the chip (alone_s); sharing of the DRAM "
            "bandwidth by contention is not modelled (a relaxation; checked in the replay)"
        )
    return tuple(out)


def solve(
    problem: Problem,
    time_limit_s: float,
    workers: int = 1,
    *,
    references: Mapping[str, Plan] | None = None,
    random_seed: int = RANDOM_SEED,
) -> Solution:
    """The exact reference of ``problem``: the best plan found and a proven bound.

    Parameters
    ----------
    problem : Problem
        A problem on the analytic OFDM uplink (``network.backend: ofdm``).
    time_limit_s : float
        CP-SAT's wall-clock limit (seconds, > 0); building the model and the reference
        runs come on top.
    workers : int
        CP-SAT's search threads (1: deterministic when the solve ends before the limit).
    references : mapping of str to Plan, optional
        Plans whose makespans on the real network bound the horizon (e.g. RTFS and
        PACS); a simultaneous-upload plan is always added.
    random_seed : int
        CP-SAT's seed.

    Returns
    -------
    Solution
        Status, the replayed makespan, the bound, the gap, the solve time and the plan.

    Raises
    ------
    ConfigError
        Not an OFDM problem, a bad time limit, or a model too large to build
        (:data:`MAX_RADIO_BOOLEANS`). When CP-SAT finds no plan within the limit, the
        best reference plan is the answer (``FEASIBLE``, its ``plan_source``).
    BackendUnavailableError
        OR-Tools is not installed.
    ScheduleError
        The replay disagrees with the solver (a bug).
    """
    _check(problem, time_limit_s, workers)
    cp_model = require_ortools()
    plans = {"simultaneous": simultaneous_plan(problem), **dict(references or {})}
    first: dict[str, Any] = {}
    devices = enumerate(problem.devices)
    if not all(fixed_order(ordered_pairs(problem, k), d.chunks) for k, d in devices):
        # Chunk orders multiply the search: the index-order optimum first, on a share
        # of the limit; its plan then starts the free search (docs/exact.md)
        limit = time_limit_s * INDEX_ORDER_SHARE
        solver, built, _, _, status, took = _search(
            problem, plans, limit, workers, random_seed, True
        )
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            plans[INDEX_ORDER] = _plan(problem, solver, built)
        first = {"status": solver.status_name(status), "wall_s": took}
        time_limit_s = max(time_limit_s - took, 1e-3)
    solver, built, refs, unit_s, status, solve_s = _search(
        problem, plans, time_limit_s, workers, random_seed
    )
    solve_s += first.get("wall_s", 0.0)
    name = solver.status_name(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        # stopped before a plan of its own (even the hint unread, e.g. a limit spent
        # presolving): the best reference plan is one, with the best bound known
        found = _from_reference(problem, solver, built, name, solve_s, refs, unit_s, plans)
    else:
        found = _better_reference(
            _finish(problem, solver, built, name, solve_s, refs, unit_s), plans
        )
    return replace(found, solver={**found.solver, INDEX_ORDER: first}) if first else found


def _search(
    problem: Problem,
    plans: Mapping[str, Plan],
    time_limit_s: float,
    workers: int,
    random_seed: int,
    index_order: bool = False,
) -> tuple[Any, _Model, dict[str, float], float, Any, float]:
    """Build, hint and solve the model: the solver, the model, the references'
    makespans, the time unit, CP-SAT's status and the solve's wall time."""
    from ortools.sat.python import cp_model

    refs, built, unit_s = _hinted_model(problem, plans, index_order)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = random_seed
    solver.parameters.max_time_in_seconds = float(time_limit_s)
    # every constraint in the LP relaxation (the enforced ones too): the radio's bound
    # comes from there (measured: 0.3 s to optimal where the default stalls at 60 s)
    solver.parameters.linearization_level = 2
    # Several workers: CP-SAT's strategies interleaved in deterministic batches (plain
    # parallel workers race: no two runs alike); one worker: the plain search, faster on
    # radio-bound instances (docs/exact.md compares the two)
    solver.parameters.interleave_search = workers > 1
    t0 = time.perf_counter()
    status = solver.solve(built.model)
    took = time.perf_counter() - t0
    name = solver.status_name(status)
    if status == cp_model.INFEASIBLE:
        raise ScheduleError("exact reference: the model is infeasible (a bug: the references fit)")
    if status == cp_model.MODEL_INVALID:
        raise ScheduleError(f"exact reference: CP-SAT rejects the model ({name}; a bug)")
    return solver, built, refs, unit_s, status, took


def _from_reference(
    problem: Problem,
    solver: Any,
    built: _Model,
    status: str,
    solve_s: float,
    refs: dict[str, float],
    unit_s: float,
    plans: Mapping[str, Plan],
) -> Solution:
    """The best reference plan as a ``FEASIBLE`` answer when CP-SAT found no plan.

    The bound is the largest of CP-SAT's (its padding removed, as :func:`_finish` does),
    :func:`~owin_cosim.exact.references.model_lower_bound` and
    :func:`~owin_cosim.system.lower_bound.lower_bound` itself (valid for every plan the
    coordinator runs, ``dram_s`` included), never above the plan's makespan.
    """
    from owin_cosim.system.lower_bound import lower_bound

    name = best_reference(refs)
    span = refs[name]
    cp_bound = _cp_bound_s(solver, built, unit_s)
    known = max(cp_bound, model_lower_bound(problem, unit_s), lower_bound(problem).value)
    bound_s = min(known, span)
    return Solution(
        "FEASIBLE",
        span,
        bound_s,
        _gap(span, bound_s),
        solve_s,
        plans[name],  # no solver's plan: model_makespan_s and replay_makespan_s nan
        relaxations=_relaxations(problem, unit_s),
        references=refs,
        horizon_slots=built.tables.slots,
        time_unit_s=unit_s,
        solver=_solver_doc(solver, status),
        plan_source=name,
    )


def _better_reference(found: Solution, plans: Mapping[str, Plan]) -> Solution:
    """When DRAM contention slowed the solver's plan below a reference plan, return the
    reference plan (the bound stands): the answer is never worse than a policy's."""
    name = best_reference(found.references)
    best = found.references[name]
    if not found.dram_binds or best >= found.makespan_s:
        return found
    gap = _gap(best, found.bound_s)
    return replace(found, makespan_s=best, gap=gap, plan=plans[name], plan_source=name)


def _gap(span_s: float, bound_s: float) -> float:
    """The relative gap of a makespan to its bound (0 for an empty schedule)."""
    return (span_s - bound_s) / span_s if span_s > 0 else 0.0


def _cp_bound_s(solver: Any, built: _Model, unit_s: float) -> float:
    """CP-SAT's bound in seconds; layers padded to one unit may have lifted it by a unit
    each, so that much is taken off."""
    padded = int(built.compute.padded)
    return float(max(0, int(solver.best_objective_bound) - padded) * unit_s)


def _solver_doc(solver: Any, status: str) -> dict[str, Any]:
    """CP-SAT's own status name and the parameters it ran with (plain data)."""
    return {
        "status": status,
        "workers": int(solver.parameters.num_workers),
        "random_seed": int(solver.parameters.random_seed),
        "time_limit_s": float(solver.parameters.max_time_in_seconds),
        "wall_s": float(solver.wall_time),
    }


def _finish(
    problem: Problem,
    solver: Any,
    built: _Model,
    status: str,
    solve_s: float,
    refs: dict[str, float],
    unit_s: float,
) -> Solution:
    """Read the plan, replay it, check it against the model, and say what it is."""
    from owin_cosim.exact.radio import believed_slots

    optimal = status == "OPTIMAL"
    plan = _plan(problem, solver, built)
    result = execute(problem, plan)
    check_deliveries(problem, result, believed_slots(solver, built.radio))
    model_s = int(solver.objective_value) * unit_s
    replay_s = result.makespan_s
    tol = (2 * len(problem.dag) + 2) * unit_s
    dram_binds = False
    if replay_s > model_s + tol:
        if not dram_slowed(problem, result):
            raise ScheduleError(
                f"exact reference: the replay's makespan {replay_s!r} s exceeds the solver's "
                f"{model_s!r} s and no layer was slowed by DRAM contention (a bug)"
            )
        dram_binds = True
    elif optimal and replay_s < model_s - tol:
        raise ScheduleError(
            f"exact reference: the replay's makespan {replay_s!r} s beats the solver's "
            f"proven optimum {model_s!r} s (a bug)"
        )
    bound_s = min(_cp_bound_s(solver, built, unit_s), replay_s)
    gap = _gap(replay_s, bound_s)
    return Solution(
        "OPTIMAL" if optimal and not dram_binds else "FEASIBLE",
        replay_s,
        bound_s,
        gap,
        solve_s,
        plan,
        model_makespan_s=model_s,
        replay_makespan_s=replay_s,
        dram_binds=dram_binds,
        relaxations=_relaxations(problem, unit_s),
        references=refs,
        horizon_slots=built.tables.slots,
        time_unit_s=unit_s,
        solver=_solver_doc(solver, status),
    )
