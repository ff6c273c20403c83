"""Lower bounds on the makespan of a scenario, valid for every schedule.

Valid for every schedule the coordinator can produce (any radio phases and shares, any
chunk order, placement, split, priority or core order): the makespan is at least the
largest of the bounds below. Facts they rest on, from the simulator itself:

- a layer takes at least ``alone_s`` of its fastest option (``duration_s``): a share of
  the DRAM is never more than all of it, and NoC transfers only delay its start; a
  layer on ``g`` cores holds all of them for at least its time alone in that option;
- a layer starts after its predecessors end and after its data (its chunk, or all of
  its device's chunks) is delivered; the makespan is at least the last delivery;
- chunks arrive at slot ends; upload bounds (:mod:`owin_cosim.system.radio_bound`): the
  earliest time ``A_k[j]`` that any ``j + 1`` chunks of device ``k`` can be in, and the
  earliest time ``R(S)`` that all bits of a set ``S`` of devices can be up.

``radio_s``
    Every bit must cross the air: the network backend's bound (OFDM: per slot no
    allocation carries more than ``sum_r max_k rate(P_k on RB r alone)``).
``critical_path_s``
    A robust earliest start ``e(v)`` per layer: if ``v`` depends (itself or through its
    ancestors) on ``j`` chunks of device ``k``, the last of them to arrive comes no
    earlier than ``A_k[j - 1]``, whatever the chunk order, and ``v`` starts at least the
    longest path from that chunk's layers later; a lower bound on that path for every
    chunk is carried along the DAG. Also ``e(v) >= e(p) + duration(p)`` for every
    predecessor. Then ``max_v e(v) + rank(v)``, ``rank`` the longest compute path from
    ``v`` to the end (``v`` included).
``work_s``
    No layer starts before the earliest possible delivery of any chunk; then the total
    work (each layer in its cheapest option, ``g * alone_s`` core-seconds) spread evenly
    over the cores.
``dram_s``
    As ``work_s``, with every layer's DRAM bytes (its option with the fewest) through
    the chip's one DRAM at its whole bandwidth.
``sum_rate_s``
    ``R(all devices)``: on the OFDM uplink, every bit up at a per-slot sum rate that
    accounts for the even power split over the RBs a device holds (much tighter than
    ``radio_s`` at high SNR; see :mod:`~owin_cosim.system.radio_bound`).
``release_work_s``
    Layers with ``e(v) >= t`` run after ``t``: ``max_t t + (their core-seconds) / M``.
``radio_tail_s``
    Radio, then the tail: let ``D(k, c)`` be the layers needing chunk ``c`` or all of
    device ``k`` and all their descendants, and ``L_k = min_c max(max rank over D(k, c),
    core-seconds of D(k, c) / M)``. The device of a set ``S`` whose last chunk arrives
    last does so at ``>= R(S)``, and that chunk (some ``c``) releases ``D(k, c)``, all of
    which runs after it: the makespan is at least ``R(S) + min_{k in S} L_k``. The best
    sets are the ``j`` devices of largest ``L_k``; the bound is the max over ``j``
    (``j = 1``: a device's own last arrival plus its tail).

``tradeoff_s``
    Splitting a layer over ``g`` cores shortens it but costs more core-seconds, and the
    fastest option of ``critical_path_s`` and the cheapest of ``work_s`` are seldom the
    same. For the options ``x`` the schedule really used, any ``0 <= lambda <= 1`` and any
    path ``P`` from a layer ``u``: ``makespan >= lambda (e(u) + sum_P alone_s(x_v)) +
    (1 - lambda) (first + sum_v g(x_v) alone_s(x_v) / M)``. Taking, layer by layer, the
    option that minimises its term gives a bound free of ``x``; the max over ``P`` is a
    longest path, over ``lambda`` a grid of 21 values.

A Johnson-style two-stage bound (devices as jobs: upload then compute) is not used: the
uplink carries several devices at once, and with multi-user diversity (each RB to the
device with the best gain) a simultaneous schedule beats every sequential order in sum
rate, so the order argument behind it does not hold.

How much tighter: on ``owin_cosim.study.instances.small_instances(20)``, the ratio of the
bound to the best of RTFS and PACS is 0.804 on average (min 0.583) with the first four
bounds alone and 0.879 (min 0.636) with all of them; against the exact optimum see
``benchmarks/RESULTS.md`` ("optimality") and ``docs/policies.md`` ("The lower bound").
"""

from __future__ import annotations

import numpy as np

from owin_cosim.results.records import LowerBound
from owin_cosim.system.problem import Problem
from owin_cosim.system.radio_bound import upload_bounds

__all__ = ["lower_bound"]

#: The weights ``lambda`` of the split trade-off bound (0: ``work_s``; 1: a critical
#: path at the fastest options).
_LAMBDAS = np.linspace(0.0, 1.0, 21)


def _option_costs(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """``(time, core_s)``, ``(layers, most options)``: each option's ``alone_s`` and
    ``g * alone_s``, padded with ``inf``."""
    options = problem.dag.layer_options
    width = max((len(opts) for opts in options), default=0)
    time = np.full((len(options), width), np.inf)
    core_s = np.full((len(options), width), np.inf)
    for v, opts in enumerate(options):
        alone = [o.alone_s for o in opts]
        time[v, : len(opts)] = alone
        core_s[v, : len(opts)] = [o.group * t for o, t in zip(opts, alone, strict=True)]
    return time, core_s


def _descendants(problem: Problem) -> list[int]:
    """Per layer: itself and every layer after it, as a bit mask over layer numbers."""
    dag = problem.dag
    masks = [0] * len(dag)
    for v in range(len(dag) - 1, -1, -1):  # index order is topological
        m = 1 << v
        for s in dag.succs[v]:
            m |= masks[s]
        masks[v] = m
    return masks


def _tails(problem: Problem, work: np.ndarray) -> np.ndarray:
    """``L_k`` of the module docstring: what must still run after device ``k``'s last
    chunk, at the least, for every device (0 for a device no layer needs)."""
    dag, n, m = problem.dag, len(problem.dag), problem.num_cores
    desc = _descendants(problem)
    tails = np.zeros(len(problem.devices))
    for k, dev in enumerate(problem.devices):
        whole = [v for v, need in enumerate(dag.needs) if need == (k, -1)]
        best = np.inf
        for c in range(dev.chunks):
            roots = whole + [v for v, need in enumerate(dag.needs) if need == (k, c)]
            if not roots:
                best = 0.0
                break
            mask = 0
            for v in roots:
                mask |= desc[v]
            raw = np.frombuffer(mask.to_bytes((n + 7) // 8, "little"), dtype=np.uint8)
            inside = np.unpackbits(raw, bitorder="little")[:n].astype(bool)
            span = max(float(dag.rank_s[v]) for v in roots)
            best = min(best, max(span, float(work[inside].sum()) / m))
        tails[k] = best if np.isfinite(best) else 0.0
    return tails


def _earliest_starts(problem: Problem, arrival: list[np.ndarray]) -> np.ndarray:
    """``e(v)`` of the module docstring: a start no schedule can beat, per layer."""
    dag = problem.dag
    num_dev = len(problem.devices)
    full = [(1 << d.chunks) - 1 for d in problem.devices]
    # Per layer and device: the chunks it depends on (bit mask), and a lower bound on
    # the longest path from any one of those chunks' layers to the layer's start.
    deps: list[list[int]] = []
    gap = np.zeros((len(dag), num_dev))
    est = np.zeros(len(dag))
    dur = dag.duration_s
    for v in range(len(dag)):
        preds = dag.preds[v]
        t = max((est[p] + dur[p] for p in preds), default=0.0)
        mine = [0] * num_dev
        need = dag.needs[v]
        for k in range(num_dev):
            own = 0
            if need is not None and need[0] == k:
                own = full[k] if need[1] < 0 else 1 << need[1]
            dep = own
            for p in preds:
                dep |= deps[p][k]
            mine[k] = dep
            if not dep:
                continue
            if not own:  # a chunk's layers are v itself only when v reads it
                through = [gap[p, k] + dur[p] for p in preds if deps[p][k]]
                covering = [gap[p, k] + dur[p] for p in preds if deps[p][k] | dep == deps[p][k]]
                gap[v, k] = max(min(through), max(covering, default=0.0))
            t = max(t, float(arrival[k][dep.bit_count() - 1]) + gap[v, k])
        deps.append(mine)
        est[v] = t
    return est


def _release_work(est: np.ndarray, work: np.ndarray, cores: int) -> float:
    """``max_t t + (core-seconds of the layers with e(v) >= t) / cores``."""
    if not len(est):
        return 0.0
    order = np.argsort(-est, kind="stable")
    return float((est[order] + np.cumsum(work[order]) / cores).max())


def _tradeoff(
    problem: Problem, est: np.ndarray, first: float, time: np.ndarray, core_s: np.ndarray
) -> float:
    """The split trade-off bound: ``max`` over ``lambda`` and paths of the docstring's
    sum, by one longest-path pass for all ``lambda`` at once."""
    dag, m = problem.dag, problem.num_cores
    if not len(dag):
        return 0.0
    lam = _LAMBDAS[:, None, None]
    # (lambda, layer): the cheapest weighted option, less its share of the plain work.
    work = core_s.min(axis=1)
    valid = np.isfinite(time)[None]  # padding: no option (0 * inf would be nan)
    weighted = (
        lam * np.where(valid, time[None], 0.0)
        + (1.0 - lam) * np.where(valid, core_s[None], 0.0) / m
    )
    cost = np.where(valid, weighted, np.inf).min(axis=2)
    cost -= (1.0 - _LAMBDAS)[:, None] * work[None, :] / m
    start = _LAMBDAS[:, None] * est[None, :]
    best = np.zeros_like(cost)
    for v in range(len(dag)):
        here = start[:, v]
        for p in dag.preds[v]:
            here = np.maximum(here, best[:, p])
        best[:, v] = here + cost[:, v]
    rest = (1.0 - _LAMBDAS) * (first + float(work.sum()) / m)
    return float((best.max(axis=1) + rest).max())


def lower_bound(problem: Problem) -> LowerBound:
    """The lower bounds of :mod:`owin_cosim.system.lower_bound` for ``problem``."""
    dag = problem.dag
    time, core_s = _option_costs(problem)
    work = core_s.min(axis=1) if len(dag) else np.zeros(0)
    tails = _tails(problem, work)
    order = sorted(range(len(problem.devices)), key=lambda k: (-tails[k], k))
    arrival, prefix = upload_bounds(problem, order)
    est = _earliest_starts(problem, arrival)
    critical = float((est + dag.rank_s).max()) if len(dag) else 0.0
    first = float(est.min()) if len(dag) else 0.0  # no layer starts earlier
    dram = first + sum(min(o.dram_s for o in opts) for opts in dag.layer_options)
    radio_tail = max((float(prefix[j]) + float(tails[k]) for j, k in enumerate(order)), default=0.0)
    return LowerBound(
        radio_s=problem.radio_bound_s,
        critical_path_s=critical,
        work_s=first + float(work.sum()) / problem.num_cores,
        dram_s=dram,
        sum_rate_s=float(prefix[-1]) if len(prefix) else 0.0,
        release_work_s=_release_work(est, work, problem.num_cores),
        radio_tail_s=radio_tail,
        tradeoff_s=_tradeoff(problem, est, first, time, core_s),
    )
