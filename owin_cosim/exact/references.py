"""The exact reference's reference plans: what bounds the horizon and starts the search.

Plans the coordinator runs on the real network recipe before the model is built (a
simultaneous-upload plan, plus any given, e.g. RTFS and PACS): the best makespan bounds
the optimum from above (the horizon) and the best run, as recorded, is CP-SAT's hint.
When CP-SAT finds no plan in time, the best of them is the answer, with the bound of
:func:`model_lower_bound` among others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from owin_cosim.network.ofdm.uplink import OfdmUplink
from owin_cosim.sim.coordinator import execute
from owin_cosim.system.plan import Plan, RadioPhase
from owin_cosim.system.problem import Problem

__all__ = [
    "ReferenceRun",
    "best_reference",
    "model_lower_bound",
    "run_references",
    "simultaneous_plan",
]

#: What the best reference run did: RB owners per slot, per layer (cores, start), and
#: per device its chunks in sending order.
ReferenceRun = tuple[list[list[int]], list[tuple[tuple[int, ...], float]], list[list[int]]]


def simultaneous_plan(problem: Problem) -> Plan:
    """Every device on equal shares, chunks in index order, layers on arrival, ``eft``."""
    names = [d.name for d in problem.devices]
    order = tuple((d.name, c) for d in problem.devices for c in range(d.chunks))
    return Plan("simultaneous", (RadioPhase(dict.fromkeys(names, 1.0)),), order, "on_arrival")


def run_references(
    problem: Problem, plans: Mapping[str, Plan]
) -> tuple[dict[str, float], ReferenceRun]:
    """Every reference plan's makespan on the real network, and what the best one did
    (its RB owners per slot, recorded by the uplink, its layers' cores and starts, and
    each device's chunk order)."""
    refs: dict[str, float] = {}
    best: tuple[float, ReferenceRun] | None = None
    index = {name: v for v, name in enumerate(problem.dag.names)}
    for name, plan in plans.items():
        net = problem.make_network()
        assert isinstance(net, OfdmUplink)  # checked: network.backend is ofdm
        log: dict[int, list[int]] = {}
        net.allocation_log = log
        result = execute(problem, plan, net)
        refs[name] = result.makespan_s
        if best is None or result.makespan_s < best[0]:
            empty = [-1] * problem.radio_units
            owners = [log.get(s, empty) for s in range(max(log, default=-1) + 1)]
            runs: list[tuple[tuple[int, ...], float]] = [((), 0.0)] * len(index)
            for rec in result.layers:
                runs[index[rec.layer]] = (rec.cores, rec.start_s)
            queues: list[list[int]] = [[] for _ in problem.devices]
            for dev, c in plan.chunk_order:  # a device sends its chunks in this order
                queues[problem.device_index(dev)].append(c)
            best = (result.makespan_s, (owners, runs, queues))
    assert best is not None
    return refs, best[1]


def best_reference(refs: Mapping[str, float]) -> str:
    """The name of the shortest reference run (ties: the first name).

    >>> best_reference({"rtfs": 2.0, "pacs": 1.5, "simultaneous": 1.5})
    'pacs'
    """
    return min(refs, key=lambda k: (refs[k], k))


def model_lower_bound(problem: Problem, unit_s: float) -> float:
    """:func:`~owin_cosim.system.lower_bound.lower_bound` as a bound on the model's own
    optimum too, in seconds.

    Its parts rest on the facts the model states (alone times, precedence, data before
    use, slot-end deliveries at the uplink's rates, which the model's floored bits never
    beat), except ``dram_s``, DRAM contention being outside the model; and the model
    floors every duration and NoC time to a unit, so it may run up to a unit per layer
    and per edge of a path (or per layer of work) faster: that much is taken off.
    The model times a layer by its options' ``alone_s``: the bound's critical paths
    are taken on the fastest of them (a hand-built DAG's ``duration_s`` may differ).
    """
    import numpy as np

    from owin_cosim.system.lower_bound import lower_bound

    fastest = np.array([min(o.alone_s for o in opts) for opts in problem.dag.layer_options])
    dag = replace(problem.dag, duration_s=fastest)  # rank_s recomputed from these
    lb = lower_bound(replace(problem, dag=dag))
    parts = (
        lb.radio_s,
        lb.critical_path_s,
        lb.work_s,
        lb.sum_rate_s,
        lb.release_work_s,
        lb.radio_tail_s,
        lb.tradeoff_s,
    )
    return max(0.0, max(parts) - (2 * len(problem.dag) + 2) * unit_s)
