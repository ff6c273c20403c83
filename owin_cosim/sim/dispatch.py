"""Split-aware earliest-finish dispatch: for a ready layer, the option, the cores and the
estimated start and end.

For each of the layer's options (core type ``t``, group size ``g``, split; see
:mod:`owin_cosim.system.options`) the rule takes the ``g`` cores of type ``t`` that can
begin soonest, where a core can begin at ``max(its estimated free time, the arrival of
the layer's inputs over the NoC)``; the option's start is the latest of its ``g``
cores and its end the start plus the time its parts would take if they joined the DRAM
flows running now (:meth:`~owin_cosim.sim.dram.DramArbiter.preview`). The option that
ends first wins; ties go to fewer cores, then the lower core type, then the lower core
numbers. A plan's fixed cores leave one option (the type and group size of those cores).

Inputs: each consumer core receives its share of every predecessor's output from each
core the predecessor ran on (the gather), one transfer per source core over its XY path:
``bytes / link bandwidth + hops * hop latency``, in parallel from the sources (links are
not shared). A consumer split along ``M`` (or not split) needs the whole input on every
core (broadcast); one split along ``C`` or ``P`` needs ``1 / g`` of it per core (scatter).

Cost per ready layer: ``O(K * (C log C + F))`` for ``K`` options, ``C`` cores and ``F``
running DRAM flows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from owin_cosim.sim.dram import DramArbiter
from owin_cosim.system.options import ExecOption
from owin_cosim.system.problem import Problem

__all__ = ["Choice", "arrival_at_cores", "choose", "noc_energy_pJ"]


@dataclass(frozen=True, slots=True)
class Choice:
    """Where and how a layer runs, and when the dispatcher expects it to."""

    option: int
    cores: tuple[int, ...]
    #: When the inputs are on every core of the group (the NoC transfers done).
    inputs_s: float
    #: When every core of the group can begin (inputs in, cores free), as estimated.
    begin_s: float
    #: The estimated end.
    end_s: float


def _input_fraction(option: ExecOption) -> float:
    """Part of each input a core of this option receives (broadcast 1, scatter 1/g)."""
    return 1.0 if option.split in ("-", "M") else 1.0 / option.group


def arrival_at_cores(
    problem: Problem,
    v: int,
    fraction: float,
    finish: np.ndarray,
    cores_of: Sequence[tuple[int, ...]],
    now: float,
) -> np.ndarray:
    """When ``v``'s inputs can be on each core: ``now`` at the earliest."""
    dag, noc = problem.dag, problem.noc
    arrive = np.full(noc.num_cores, now)
    for p in dag.preds[v]:
        sources = cores_of[p]
        nbytes = dag.out_bytes[p] * fraction / len(sources)
        np.maximum(arrive, finish[p] + noc.gather_s(nbytes, sources), out=arrive)
    return arrive


def noc_energy_pJ(
    problem: Problem,
    v: int,
    option: ExecOption,
    cores: Sequence[int],
    cores_of: Sequence[tuple[int, ...]],
) -> float:
    """Energy of moving ``v``'s inputs to its cores: bytes x hops x energy per byte-hop."""
    dag, noc = problem.dag, problem.noc
    fraction = _input_fraction(option)
    total = 0.0
    for p in dag.preds[v]:
        sources = cores_of[p]
        nbytes = dag.out_bytes[p] * fraction / len(sources)
        total += sum(nbytes * noc.hops[s, c] for s in sources for c in cores)
    return float(total * noc.energy_pJ_per_byte_hop)


def choose(
    problem: Problem,
    v: int,
    free_s: np.ndarray,
    finish: np.ndarray,
    cores_of: Sequence[tuple[int, ...]],
    arbiter: DramArbiter[tuple[int, int]],
    now: float,
    fixed: tuple[int, ...] | None = None,
) -> Choice:
    """The dispatch decision for ready layer ``v`` (see the module docstring)."""
    options = problem.dag.layer_options[v]
    pools = [np.asarray(t.cores, dtype=np.int64) for t in problem.chip_types]
    arrivals: dict[float, np.ndarray] = {}
    best: tuple[tuple[float, int, int, tuple[int, ...]], Choice] | None = None
    for k, option in enumerate(options):
        if fixed is not None and (
            len(fixed) != option.group or problem.core_type_of(fixed[0]) != option.core_type
        ):
            continue
        fraction = _input_fraction(option)
        if fraction not in arrivals:
            arrivals[fraction] = arrival_at_cores(problem, v, fraction, finish, cores_of, now)
        begin_at = np.maximum(arrivals[fraction], free_s)
        if fixed is not None:
            cores = tuple(fixed)
        else:
            pool = pools[option.core_type]
            # stable sort: ties by core number (the pool is in core order)
            ranked = pool[np.argsort(begin_at[pool], kind="stable")[: option.group]]
            cores = tuple(sorted(int(j) for j in ranked))
        idx = list(cores)
        begin = float(begin_at[idx].max())
        inputs = float(arrivals[fraction][idx].max())
        flows = option.flows
        took = arbiter.preview(
            [p.compute_s for p, _ in flows], [p.dram_s for p, _ in flows], [c for _, c in flows]
        )
        end = begin + max(took)
        key = (end, option.group, option.core_type, cores)
        if best is None or key < best[0]:
            best = (key, Choice(k, cores, inputs, begin, end))
    if best is None:
        raise ValueError(f"no option of layer {problem.dag.names[v]!r} runs on cores {fixed}")
    return best[1]
