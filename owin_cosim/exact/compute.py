"""The compute half of the CP-SAT model: modes, precedence with NoC times, core
exclusivity, data before use.

A *mode* of layer ``v`` is one of its options (core type x group size, see
:mod:`owin_cosim.system.options`) on one concrete set of cores of that type (every
subset of the right size is enumerated: instances are small). Per layer: a start and an
end, one literal per mode (exactly one is true) and, per mode, an optional interval of
the option's time alone (:attr:`~owin_cosim.system.options.ExecOption.alone_s`) on
every core of the set; a no-overlap per core. Per DAG edge ``p -> v`` and pair of modes
``(a, b)``: ``start_v >= end_p + noc(a, b)`` when both are chosen, ``noc`` being the
gather of ``p``'s output from ``a``'s cores onto ``b``'s cores exactly as the dispatcher
computes it (:func:`owin_cosim.sim.dispatch.arrival_at_cores`). A layer that needs a
chunk (or all chunks) of a device starts no earlier than its delivery.

Times are integers in units of ``unit_s`` (a fraction of the radio slot); durations and
NoC times are floored to it, so the model is a relaxation by at most one unit per term
(its bound stays valid; the replay measures the plan in floating point).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ortools.sat.python import cp_model

# the dispatcher's own rule for the part of an input each core receives
from owin_cosim.sim.dispatch import _input_fraction as input_fraction
from owin_cosim.system.problem import Problem

__all__ = [
    "ComputeVars",
    "Mode",
    "add_compute",
    "hint_compute",
    "layer_modes",
    "noc_s",
    "to_units",
]


def to_units(seconds: float, unit_s: float) -> int:
    """``seconds`` floored to whole units (a relative 1e-12 forgives float noise).

    >>> to_units(0.3e-3, 0.5e-9), to_units(0.0, 1.0)
    (600000, 0)
    """
    return math.floor(seconds / unit_s * (1.0 + 1e-12))


@dataclass(frozen=True)
class Mode:
    """One way to run a layer: option ``option`` on ``cores``."""

    option: int
    cores: tuple[int, ...]
    #: The option's time alone, in units (at least 1).
    duration: int


def layer_modes(problem: Problem, v: int, unit_s: float) -> list[Mode]:
    """Every (option, core set) of layer ``v``, cores of the option's type."""
    types = problem.chip_types
    modes = []
    for i, option in enumerate(problem.dag.layer_options[v]):
        pool = types[option.core_type].cores
        for cores in itertools.combinations(pool, option.group):
            # one unit at least: CP-SAT lets empty intervals sit inside others, the
            # coordinator would not (the bound is lowered by a unit per such layer)
            modes.append(Mode(i, tuple(cores), max(1, to_units(option.alone_s, unit_s))))
    return modes


def noc_s(problem: Problem, p: int, src: Sequence[int], v: int, dst: Mode) -> float:
    """When ``v``'s input from ``p`` (run on ``src``) is on all of ``dst``'s cores, after
    ``p`` ends: the dispatcher's gather (one term of ``arrival_at_cores``)."""
    option = problem.dag.layer_options[v][dst.option]
    nbytes = problem.dag.out_bytes[p] * input_fraction(option) / len(src)
    return float(problem.noc.gather_s(nbytes, src)[list(dst.cores)].max())


@dataclass
class ComputeVars:
    """The compute variables: per layer its start, end, modes and their literals."""

    start: list[cp_model.IntVar]
    end: list[cp_model.IntVar]
    modes: list[list[Mode]]
    chosen: list[list[cp_model.IntVar]]
    #: Layers with a mode shorter than one unit (each padded to one unit).
    padded: int


def add_compute(
    model: cp_model.CpModel,
    problem: Problem,
    unit_s: float,
    horizon: int,
    ready: Sequence[cp_model.LinearExprT | None],
) -> ComputeVars:
    """Add the compute side; ``ready[v]``: when ``v``'s data is in (units), or None."""
    dag = problem.dag
    n = len(dag)
    start = [model.new_int_var(0, horizon, f"start[{v}]") for v in range(n)]
    end = [model.new_int_var(0, horizon, f"end[{v}]") for v in range(n)]
    modes = [layer_modes(problem, v, unit_s) for v in range(n)]
    chosen: list[list[cp_model.IntVar]] = []
    on_core: list[list[cp_model.IntervalVar]] = [[] for _ in range(problem.num_cores)]
    for v in range(n):
        lits = [model.new_bool_var(f"mode[{v},{i}]") for i in range(len(modes[v]))]
        model.add_exactly_one(lits)
        chosen.append(lits)
        for i, (mode, lit) in enumerate(zip(modes[v], lits, strict=True)):
            # One fixed-size interval per mode, its end tied by an enforced equality.
            # Optional intervals of different sizes sharing one start and one end
            # variable (the obvious model) made CP-SAT 9.15 with linearization_level 2
            # prove a wrong optimum (small_instance(13, "compute", "none", max_layers=7):
            # 4.7002 ms "OPTIMAL", PACS runs 4.6831; level 1 agreed with PACS).
            # tests/test_optimality.py keeps the case.
            model.add(end[v] == start[v] + mode.duration).only_enforce_if(lit)
            iv = model.new_optional_fixed_size_interval_var(
                start[v], mode.duration, lit, f"run[{v},{i}]"
            )
            for j in mode.cores:
                on_core[j].append(iv)
        if ready[v] is not None:
            model.add(start[v] >= ready[v])
    for intervals in on_core:
        if len(intervals) > 1:
            model.add_no_overlap(intervals)
    for v in range(n):
        for p in dag.preds[v]:
            model.add(start[v] >= end[p])
            for (a, la), (b, lb) in itertools.product(
                zip(modes[p], chosen[p], strict=True), zip(modes[v], chosen[v], strict=True)
            ):
                delay = to_units(noc_s(problem, p, a.cores, v, b), unit_s)
                if delay > 0:
                    model.add(start[v] >= end[p] + delay).only_enforce_if(la, lb)
    padded = sum(
        any(to_units(o.alone_s, unit_s) == 0 for o in dag.layer_options[v]) for v in range(n)
    )
    return ComputeVars(start, end, modes, chosen, padded)


def hint_compute(
    model: cp_model.CpModel,
    cv: ComputeVars,
    problem: Problem,
    unit_s: float,
    runs: Sequence[tuple[tuple[int, ...], float]],
    ready: Sequence[int | None],
) -> int:
    """Hint the compute variables with the semi-active schedule, in model units, of a
    run's ``runs[v] = (cores, start_s)`` (its cores, and its order on each core);
    return the hinted latest end."""
    n = len(cv.start)
    pick = []
    for v in range(n):
        cores = tuple(sorted(runs[v][0]))
        i = next(i for i, m in enumerate(cv.modes[v]) if m.cores == cores)
        pick.append(i)
        for x, lit in enumerate(cv.chosen[v]):
            model.add_hint(lit, x == i)
    free = [0] * problem.num_cores
    end = [0] * n
    for v in sorted(range(n), key=lambda v: (runs[v][1], v)):
        mode = cv.modes[v][pick[v]]
        at = max([ready[v] or 0] + [free[j] for j in mode.cores])
        for p in problem.dag.preds[v]:
            src = cv.modes[p][pick[p]].cores
            at = max(at, end[p] + to_units(noc_s(problem, p, src, v, mode), unit_s))
        end[v] = at + mode.duration
        for j in mode.cores:
            free[j] = end[v]
        model.add_hint(cv.start[v], at)
        model.add_hint(cv.end[v], end[v])
    return max(end, default=0)
