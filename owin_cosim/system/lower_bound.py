"""Lower bounds on the makespan of a scenario, valid for every policy.

Three bounds; the makespan of any schedule is at least the largest:

``radio_s``
    Every bit must cross the air. Per slot, no allocation carries more than
    ``sum_r max_k rate(P_k on RB r alone)`` (each RB serves one device, and no device
    puts more than its whole power on one RB), so the upload of all bits takes at least
    the time this upper bound of the sum rate needs to reach the total.
``critical_path_s``
    Each chunk arrives no earlier than its device could push it (with the previous
    chunks) alone on the whole band with water-filled power. From those arrival times,
    the longest path through the DAG with zero NoC cost bounds the end.
``work_s``
    No layer starts before the earliest arrival of any chunk; then the total work is
    spread over the cores at best evenly. A layer run on ``g`` cores holds all of them
    for at least its time alone on the chip, so it costs at least ``g * alone_s``
    core-seconds in its cheapest option (any core type, any split).
``dram_s``
    No layer starts before the earliest arrival of any chunk; then every layer's DRAM
    bytes (in its option with the fewest) pass through the chip's one DRAM at no more
    than its whole bandwidth.

Each layer's time in the critical path is its fastest option alone on the chip: no
share of the DRAM is larger than all of it, so contention only makes layers slower.
"""

from __future__ import annotations

import numpy as np

from owin_cosim.results.records import LowerBound
from owin_cosim.system.problem import Problem

__all__ = ["lower_bound"]


def lower_bound(problem: Problem) -> LowerBound:
    """The three lower bounds of :mod:`owin_cosim.system.lower_bound` for ``problem``."""
    dag = problem.dag
    arrival = problem.earliest_arrival_s
    est = np.zeros(len(dag))
    for v in range(len(dag)):  # index order is topological
        need = dag.needs[v]
        t = 0.0
        if need is not None:
            k, c = need
            t = arrival[k][-1] if c < 0 else arrival[k][c]
        for p in dag.preds[v]:
            t = max(t, est[p] + dag.duration_s[p])
        est[v] = t
    critical = float((est + dag.duration_s).max()) if len(dag) else 0.0
    first = min((a[0] for a in arrival), default=0.0)
    options = dag.layer_options
    core_s = sum(min(o.group * o.alone_s for o in opts) for opts in options)
    work = first + core_s / problem.num_cores
    dram = first + sum(min(o.dram_s for o in opts) for opts in options)
    return LowerBound(
        radio_s=problem.radio_bound_s, critical_path_s=critical, work_s=work, dram_s=dram
    )
