"""The coordinator: runs a plan against a network backend and the accelerator model.

The coordinator owns the global clock. Its loop:

1. grant the network backend time up to the next compute event; the backend stops
   early at the first chunk delivery, so no radio decision is ever taken late;
2. pop every event at the earliest time (deliveries before layer completions, then by
   insertion order) and apply it: a delivery may move the plan to its next radio phase
   and release the layers waiting for that data; a completion releases successors;
3. dispatch the ready layers (``eft``: decreasing upward rank, each to the core with the
   earliest finish time counting NoC transfers from its predecessors' cores) and
   schedule their completions. A plan's ``priorities`` replace the ranks, its
   ``placement`` fixes a layer's core, and its ``core_order`` holds a ready layer until
   the layer before it on its core has been dispatched.

Everything is deterministic: ties break by event kind, insertion order, rank, layer
number and core number.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict

import numpy as np

from owin_cosim.errors import ScheduleError
from owin_cosim.network.base import ChunkTx, Delivery, NetworkBackend
from owin_cosim.results.records import ChunkRecord, LayerRecord, RadioRecord, RunResult
from owin_cosim.sim.engine import EventKind, EventQueue
from owin_cosim.system.lower_bound import lower_bound
from owin_cosim.system.plan import Plan
from owin_cosim.system.plan_file import ExecutedSchedule, check_plan, plan_to_json
from owin_cosim.system.problem import Problem

__all__ = ["execute", "makespan_of"]


def _schedule_arrays(
    plan: Plan, problem: Problem
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The plan's priorities, fixed cores and core-order predecessors, by layer number.

    Fixed core and predecessor are -1 where the plan leaves them free; None when the plan
    sets no placement or core order at all (the plain ``eft`` path).
    """
    dag = problem.dag
    if plan.placement is None and plan.priorities is None and plan.core_order is None:
        return dag.rank_s, None, None
    check_plan(plan, problem)  # names, cores and a core order free of cycles
    index = {name: v for v, name in enumerate(dag.names)}
    priority = dag.rank_s.copy()
    for name, value in (plan.priorities or {}).items():
        priority[index[name]] = value
    if plan.placement is None and plan.core_order is None:
        return priority, None, None
    fixed = np.full(len(dag), -1, dtype=np.int64)
    for name, core in (plan.placement or {}).items():
        fixed[index[name]] = core
    if plan.core_order is None:
        return priority, fixed, None
    after = np.full(len(dag), -1, dtype=np.int64)
    for core, names in plan.core_order.items():
        prev = -1
        for name in names:
            v = index[name]
            fixed[v], after[v], prev = core, prev, v
    return priority, fixed, after


class _Run:
    """The state of one execution (kept in one object so the loop reads plainly)."""

    def __init__(self, problem: Problem, plan: Plan, network: NetworkBackend) -> None:
        self.problem, self.plan, self.net = problem, plan, network
        dag = problem.dag
        n, m = len(dag), problem.num_cores
        self.queue = EventQueue()
        self.waiting_preds = np.array([len(p) for p in dag.preds], dtype=np.int64)
        self.data_ok = np.array([need is None for need in dag.needs])
        self.gate_open = plan.compute_release == "on_arrival"
        self.by_need: dict[tuple[int, int], list[int]] = defaultdict(list)
        for v, need in enumerate(dag.needs):
            if need is not None:
                self.by_need[need].append(v)
        self.ready: list[int] = []
        self.ready_at = np.full(n, math.nan)
        self.core_of = np.full(n, -1, dtype=np.int64)
        self.start = np.full(n, math.nan)
        self.finish = np.full(n, math.nan)
        self.noc_pJ = np.zeros(n)
        self.core_free = np.zeros(m)
        self.dispatched: list[int] = []  # layers in dispatch order (the executed core order)
        self.priority, self.fixed_core, self.turn_after = _schedule_arrays(plan, problem)
        self.done_layers = 0
        self.chunks_left = [d.chunks for d in problem.devices]
        self.deliveries: list[Delivery] = []
        self.phase = 0
        self.now = 0.0

    # ---- radio side ---------------------------------------------------------------
    def start_radio(self) -> None:
        phases = self.plan.radio_phases
        # Leading phases with nothing to wait for hold for no time (as later ones do).
        while self.phase + 1 < len(phases) and not phases[self.phase].until_done:
            self.phase += 1
        self.net.set_shares(phases[self.phase].shares, 0.0)
        for dev, chunk in self.plan.chunk_order:
            d = self.problem.devices[self.problem.device_index(dev)]
            self.net.submit(ChunkTx(dev, chunk, d.chunk_bytes[chunk]), 0.0)

    def on_delivery(self, d: Delivery) -> None:
        self.deliveries.append(d)
        k = self.problem.device_index(d.device)
        self.chunks_left[k] -= 1
        self.release_data((k, d.chunk))
        if self.chunks_left[k] == 0:
            self.release_data((k, -1))
        if not self.gate_open and not any(self.chunks_left):
            self.gate_open = True
            for v in range(len(self.problem.dag)):
                self.maybe_ready(v)
        self.advance_phase()

    def advance_phase(self) -> None:
        phases = self.plan.radio_phases
        moved = False
        while self.phase + 1 < len(phases) and all(
            self.chunks_left[self.problem.device_index(dev)] == 0
            for dev in phases[self.phase].until_done
        ):
            self.phase += 1
            moved = True
        if moved:
            self.net.set_shares(phases[self.phase].shares, self.now)

    def release_data(self, need: tuple[int, int]) -> None:
        for v in self.by_need.get(need, ()):
            self.data_ok[v] = True
            self.maybe_ready(v)

    # ---- compute side -------------------------------------------------------------
    def maybe_ready(self, v: int) -> None:
        if (
            self.gate_open
            and self.data_ok[v]
            and self.waiting_preds[v] == 0
            and math.isnan(self.ready_at[v])
        ):
            self.ready_at[v] = self.now
            self.ready.append(v)

    def on_layer_done(self, v: int) -> None:
        self.done_layers += 1
        for s in self.problem.dag.succs[v]:
            self.waiting_preds[s] -= 1
            self.maybe_ready(s)

    def dispatch(self) -> None:
        if not self.ready:
            return
        rank = self.priority
        self.ready.sort(key=lambda v: (-rank[v], v))
        if self.turn_after is None:
            for v in self.ready:
                self.place(v)
            self.ready.clear()
            return
        # A core order holds a layer until its predecessor in the order is placed, which
        # may happen later in this same pass: repeat until a pass places nothing more.
        after = self.turn_after
        pending = self.ready
        while True:
            held = []
            for v in pending:
                if after[v] < 0 or self.core_of[after[v]] >= 0:
                    self.place(v)
                else:
                    held.append(v)
            if not held or len(held) == len(pending):
                break
            pending = held
        self.ready = held

    def place(self, v: int) -> None:
        """Put ready layer ``v`` on its fixed core, or on the earliest-finish one."""
        dag, noc = self.problem.dag, self.problem.noc
        arrive = np.full(noc.num_cores, self.now)
        for p in dag.preds[v]:
            np.maximum(
                arrive,
                self.finish[p] + noc.transfer_s(dag.out_bytes[p], int(self.core_of[p])),
                out=arrive,
            )
        begin = np.maximum(arrive, self.core_free)
        fixed = -1 if self.fixed_core is None else int(self.fixed_core[v])
        # Equal durations on every core: min start = min finish.
        j = fixed if fixed >= 0 else int(np.argmin(begin))
        end = float(begin[j] + dag.duration_s[v])
        self.core_of[v], self.start[v], self.finish[v] = j, begin[j], end
        self.core_free[j] = end
        self.noc_pJ[v] = (
            sum(dag.out_bytes[p] * noc.hops[int(self.core_of[p]), j] for p in dag.preds[v])
            * noc.energy_pJ_per_byte_hop
        )
        self.dispatched.append(v)
        self.queue.push(end, EventKind.LAYER_DONE, v)

    # ---- the loop -----------------------------------------------------------------
    def run(self) -> float:
        n = len(self.problem.dag)
        self.start_radio()
        for v in range(n):
            self.maybe_ready(v)
        self.dispatch()
        while self.done_layers < n:
            horizon = self.queue.peek_time()
            if self.net.has_backlog():
                result = None
                if not self.net.grant_invariant:
                    result = self.net.advance(horizon)
                elif self.net.now_s < horizon:
                    # Network actions follow deliveries only, and the backend stops at the
                    # first one: granting past compute events changes nothing it simulates.
                    result = self.net.advance(math.inf)
                for d in result.deliveries if result is not None else ():
                    self.queue.push(d.last_byte_s, EventKind.DELIVERY, d)
            batch = self.queue.pop_simultaneous()
            if not batch:
                why = (
                    f"{len(self.ready)} ready layers wait for their turn in core_order"
                    if self.ready
                    else "layers wait for data that no device will send"
                )
                raise ScheduleError(
                    f"deadlock at t={self.now:.6g} s: {n - self.done_layers} layers left; {why}"
                )
            self.now = batch[0].time
            for event in batch:
                if event.kind is EventKind.DELIVERY:
                    self.on_delivery(event.payload)
                else:
                    self.on_layer_done(event.payload)
            self.dispatch()
        return max(self.now, max((d.last_byte_s for d in self.deliveries), default=0.0))


def makespan_of(problem: Problem, plan: Plan, network: NetworkBackend) -> float:
    """Run ``plan`` and return only the makespan (used when evaluating candidates)."""
    with network:
        return _Run(problem, plan, network).run()


def execute(problem: Problem, plan: Plan, network: NetworkBackend | None = None) -> RunResult:
    """Run ``plan`` on ``problem`` and record everything.

    Parameters
    ----------
    problem : Problem
        The compiled scenario.
    plan : Plan
        The policy's decisions.
    network : NetworkBackend, optional
        The backend to drive; a fresh ``problem.make_network()`` by default. It is
        closed on every exit path.
    """
    net = problem.make_network() if network is None else network
    with net:
        started = time.perf_counter()
        run = _Run(problem, plan, net)
        makespan = run.run()
        usage = net.radio_usage()
        run_wall_s = time.perf_counter() - started
    dag = problem.dag
    modality = {d.name: d.modality for d in problem.devices}
    chunks = [
        ChunkRecord(
            d.device,
            modality[d.device],
            d.chunk,
            d.nbytes,
            d.submit_s,
            d.first_byte_s,
            d.last_byte_s,
            d.lost_bytes,
        )
        for d in sorted(run.deliveries, key=lambda x: (x.last_byte_s, x.device, x.chunk))
    ]
    layers = [
        LayerRecord(
            dag.names[v],
            dag.groups[v],
            int(run.core_of[v]),
            float(run.ready_at[v]),
            float(run.start[v]),
            float(run.finish[v]),
            int(dag.cycles[v]),
            float(dag.energy_pJ[v]),
            float(run.noc_pJ[v]),
            float(dag.utilization[v]),
            int(dag.macs[v]),
        )
        for v in sorted(range(len(dag)), key=lambda v: (run.start[v], v))
    ]
    radio = [RadioRecord(u.device, u.start_s, u.end_s, u.units) for u in usage]
    devices = {
        d.name: {
            "modality": d.modality,
            "distance_m": d.distance_m,
            "tx_power_W": d.tx_power_W,
            "payload_bytes": d.payload_bytes,
            "chunks": d.chunks,
        }
        for d in problem.devices
    }
    result = RunResult(
        problem.name,
        plan.policy,
        problem.seed,
        problem.network_backend,
        problem.cost_backend,
        problem.accelerator,
        problem.num_cores,
        makespan,
        lower_bound(problem),
        devices,
        chunks,
        layers,
        radio,
        plan.describe(),
    )
    result.run_wall_s = run_wall_s
    result.plan_file = plan_to_json(plan, problem, _executed(run, makespan))
    return result


def _executed(run: _Run, makespan_s: float) -> ExecutedSchedule:
    """Where and in what order every layer actually ran (replaying it gives the same run)."""
    names = run.problem.dag.names
    order: dict[int, list[str]] = {j: [] for j in range(run.problem.num_cores)}
    for v in run.dispatched:
        order[int(run.core_of[v])].append(names[v])
    placement = {names[v]: int(run.core_of[v]) for v in range(len(names))}
    return ExecutedSchedule(makespan_s, placement, order)
