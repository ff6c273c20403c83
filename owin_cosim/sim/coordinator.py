"""The coordinator: runs a plan against a network backend and the accelerator model.

The coordinator owns the global clock. Its loop:

1. grant the network backend time up to the next compute event; the backend stops
   early at the first chunk delivery, so no radio decision is ever taken late;
2. pop every event at the earliest time (deliveries, then part completions, then layer
   starts, then by insertion order) and apply it: a delivery may move the plan to its
   next radio phase and release the layers waiting for that data; a layer whose parts
   have all completed frees its cores and releases its successors;
3. dispatch the ready layers (decreasing upward rank; each gets the option, the group
   of cores and the split that the split-aware earliest-finish rule of
   :mod:`owin_cosim.sim.dispatch` picks). A layer queues on its cores in dispatch order
   and starts when all of them are free and its inputs have crossed the NoC;
4. share the chip's DRAM between the parts running now (max-min fair, the fluid model
   of :mod:`owin_cosim.sim.dram`) and move the predicted end of every part whose pace
   changed (its old completion event is cancelled).

A plan's ``priorities`` replace the ranks, its ``placement`` fixes a layer's cores (one
core, or a list: a split over those cores), and its ``core_order`` holds a ready layer
until the layer before it on each of its cores has been dispatched.

Everything is deterministic: ties break by event kind, insertion order, rank, layer
number and core number.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque

import numpy as np

from owin_cosim.errors import ScheduleError
from owin_cosim.network.base import ChunkTx, Delivery, NetworkBackend
from owin_cosim.results.records import ChunkRecord, LayerRecord, RadioRecord, RunResult
from owin_cosim.sim.dispatch import choose, noc_energy_pJ
from owin_cosim.sim.dram import DramArbiter
from owin_cosim.sim.engine import EventKind, EventQueue
from owin_cosim.sim.state import Forecast, RunHook, RunState, capture, report, restore
from owin_cosim.system.lower_bound import lower_bound
from owin_cosim.system.plan import Plan, placed_cores
from owin_cosim.system.plan_file import ExecutedSchedule, check_plan, plan_to_json
from owin_cosim.system.problem import Problem

__all__ = ["execute", "forecast", "makespan_of"]

#: Per layer: the cores a plan fixes (None: free), and the layers that must be
#: dispatched before it (its predecessors in the core orders of its cores).
_Fixed = list[tuple[int, ...] | None]


def _schedule_arrays(
    plan: Plan, problem: Problem
) -> tuple[np.ndarray, _Fixed | None, list[list[int]] | None]:
    """The plan's priorities, fixed cores and core-order predecessors, by layer number.

    Fixed cores and turn lists are None when the plan sets no placement or core order
    at all (the plain dispatch path).
    """
    dag = problem.dag
    if plan.placement is None and plan.priorities is None and plan.core_order is None:
        return dag.rank_s, None, None
    check_plan(plan, problem)  # names, cores, groups and a core order free of cycles
    index = {name: v for v, name in enumerate(dag.names)}
    priority = dag.rank_s.copy()
    for name, value in (plan.priorities or {}).items():
        priority[index[name]] = value
    if plan.placement is None and plan.core_order is None:
        return priority, None, None
    fixed: _Fixed = [None] * len(dag)
    for name, cores in (plan.placement or {}).items():
        fixed[index[name]] = tuple(sorted(placed_cores(cores)))
    if plan.core_order is None:
        return priority, fixed, None
    after: list[list[int]] = [[] for _ in range(len(dag))]
    on: dict[int, list[int]] = defaultdict(list)
    for core, names in plan.core_order.items():
        prev = -1
        for name in names:
            v = index[name]
            on[v].append(core)
            if prev >= 0:
                after[v].append(prev)
            prev = v
    for v, cores in on.items():
        fixed[v] = tuple(sorted(cores))
    return priority, fixed, after


class _Run:
    """The state of one execution (kept in one object so the loop reads plainly)."""

    def __init__(
        self,
        problem: Problem,
        plan: Plan,
        network: NetworkBackend,
        state: RunState | None = None,
        hook: RunHook | None = None,
    ) -> None:
        self.problem, self.plan, self.net = problem, plan, network
        # A run from a snapshot (sim/state.py), and a hook watching it.
        self.resume_from, self.hook = state, hook
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
        self.start = np.full(n, math.nan)
        self.finish = np.full(n, math.nan)
        self.noc_pJ = np.zeros(n)
        # Compute side: the chosen option and cores, when the inputs are in, what is left.
        self.option_of = np.full(n, -1, dtype=np.int64)
        self.cores_of: list[tuple[int, ...]] = [()] * n
        self.inputs_at = np.full(n, math.nan)
        self.parts_left = np.zeros(n, dtype=np.int64)
        self.core_queue: list[deque[int]] = [deque() for _ in range(m)]
        self.busy = np.full(m, -1, dtype=np.int64)
        self.free_s = np.zeros(m)  # when each core is expected to be free
        self.arbiter: DramArbiter[tuple[int, int]] = DramArbiter()
        self.tokens: dict[tuple[int, int], int] = {}
        self.predicted: dict[tuple[int, int], float] = {}
        self.dram_trace: list[tuple[float, float]] = [(0.0, 0.0)]
        self.dispatched: list[int] = []  # layers in dispatch order (the executed core order)
        self.priority, self.fixed, self.turn_after = _schedule_arrays(plan, problem)
        self.done_layers = 0
        self.chunks_left = [d.chunks for d in problem.devices]
        self.deliveries: list[Delivery] = []
        self.phase = 0
        self.now = 0.0

    # ---- radio side ---------------------------------------------------------------
    def start_radio(self) -> None:
        if self.plan.radio_grid is not None:  # an explicit RB allocation (exact plans)
            self.net.set_allocation(self.plan.radio_grid)
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
        # A core order holds a layer until its predecessors in the orders are placed,
        # which may happen later in this same pass: repeat until a pass places nothing.
        after = self.turn_after
        pending = self.ready
        while True:
            held = []
            for v in pending:
                if all(self.cores_of[u] for u in after[v]):
                    self.place(v)
                else:
                    held.append(v)
            if not held or len(held) == len(pending):
                break
            pending = held
        self.ready = held

    def place(self, v: int) -> None:
        """Commit ready layer ``v`` to an option and cores; start it if it can."""
        fixed = None if self.fixed is None else self.fixed[v]
        c = choose(
            self.problem, v, self.free_s, self.finish, self.cores_of, self.arbiter, self.now, fixed
        )
        option = self.problem.dag.layer_options[v][c.option]
        self.option_of[v], self.cores_of[v], self.inputs_at[v] = c.option, c.cores, c.inputs_s
        self.noc_pJ[v] = noc_energy_pJ(self.problem, v, option, c.cores, self.cores_of)
        self.parts_left[v] = len(option.flows)  # one DRAM flow per distinct part
        for j in c.cores:
            self.core_queue[j].append(v)
            self.free_s[j] = c.end_s
        self.dispatched.append(v)
        self.try_start(v)

    def try_start(self, v: int) -> None:
        """Start ``v`` (now, or when its inputs are in) if it heads every core's queue."""
        cores = self.cores_of[v]
        if all(self.core_queue[j][0] == v and self.busy[j] < 0 for j in cores):
            for j in cores:
                self.busy[j] = v
            at = max(self.now, float(self.inputs_at[v]))
            if at > self.now:
                self.queue.push(at, EventKind.LAYER_START, v)
            else:
                self.start_layer(v)

    def start_layer(self, v: int) -> None:
        self.start[v] = self.now
        option = self.problem.dag.layer_options[v][int(self.option_of[v])]
        for i, (part, count) in enumerate(option.flows):
            self.arbiter.add((v, i), part.compute_s, part.dram_s, self.now, count)

    def on_part_done(self, key: tuple[int, int]) -> None:
        v = key[0]
        self.arbiter.remove(key, self.now)
        del self.tokens[key], self.predicted[key]
        self.parts_left[v] -= 1
        if self.parts_left[v] > 0:
            return
        self.finish[v] = self.now
        self.done_layers += 1
        cores = self.cores_of[v]
        for j in cores:
            self.core_queue[j].popleft()
            self.busy[j] = -1
            if not self.core_queue[j]:
                self.free_s[j] = self.now
        for s in self.problem.dag.succs[v]:
            self.waiting_preds[s] -= 1
            self.maybe_ready(s)
        for j in cores:
            if self.core_queue[j]:
                self.try_start(self.core_queue[j][0])

    def reschedule(self) -> None:
        """Move the completion events of the parts whose pace changed."""
        ends: dict[int, float] = {}
        for key, end in self.arbiter.finishes().items():
            if self.predicted.get(key) != end:
                if key in self.tokens:
                    self.queue.cancel(self.tokens[key])
                self.tokens[key] = self.queue.push(end, EventKind.LAYER_DONE, key)
                self.predicted[key] = end
            ends[key[0]] = max(ends.get(key[0], end), end)
        for v, end in ends.items():  # running layers last in their cores' queues
            for j in self.cores_of[v]:
                if self.core_queue[j][-1] == v:
                    self.free_s[j] = end
        share = self.arbiter.total_share
        if share != self.dram_trace[-1][1]:
            if self.dram_trace[-1][0] == self.now:
                self.dram_trace[-1] = (self.now, share)
            else:
                self.dram_trace.append((self.now, share))

    # ---- starting from a state, changing plan ---------------------------------------
    def snapshot(self) -> RunState:
        """The state now, as plain data (see :mod:`owin_cosim.sim.state`)."""
        return capture(self)

    def replace_plan(self, plan: Plan) -> None:
        """Follow ``plan`` from now: its radio phases (from the first one still waiting
        for a device), its priorities, placement and core order for layers not yet
        dispatched; what is dispatched, running or submitted stays. A plan with another
        ``radio_grid`` replaces the explicit allocation (none: the shares govern)."""
        if plan.radio_grid != self.plan.radio_grid:
            self.net.set_allocation(plan.radio_grid or ())
        self.plan = plan
        self.priority, self.fixed, self.turn_after = _schedule_arrays(plan, self.problem)
        self.phase = 0
        self.advance_phase()
        if self.phase == 0:
            self.net.set_shares(plan.radio_phases[0].shares, self.now)

    # ---- the loop -----------------------------------------------------------------
    def run(self) -> float:
        n = len(self.problem.dag)
        if self.resume_from is None:
            self.start_radio()
            for v in range(n):
                self.maybe_ready(v)
        else:
            restore(self, self.resume_from)
        self.dispatch()
        self.reschedule()
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
                elif event.kind is EventKind.LAYER_DONE:
                    self.on_part_done(event.payload)
                else:
                    self.start_layer(event.payload)
            if self.hook is not None:
                report(self, self.hook, batch)
            self.dispatch()
            self.reschedule()
        return max(self.now, max((d.last_byte_s for d in self.deliveries), default=0.0))


def makespan_of(problem: Problem, plan: Plan, network: NetworkBackend) -> float:
    """Run ``plan`` and return only the makespan (used when evaluating candidates)."""
    with network:
        return _Run(problem, plan, network).run()


def forecast(problem: Problem, plan: Plan, network: NetworkBackend, state: RunState) -> Forecast:
    """Carry ``plan`` out from ``state`` on a fresh ``network`` (closed at the end): the
    predicted makespan, deliveries and layer ends (see :mod:`owin_cosim.sim.state`)."""
    with network:
        run = _Run(problem, plan, network, state)
        span = run.run()
    delivered = {(d.device, d.chunk): d.last_byte_s for d in run.deliveries}
    return Forecast(span, delivered, run.finish.copy())


def execute(
    problem: Problem,
    plan: Plan,
    network: NetworkBackend | None = None,
    hook: RunHook | None = None,
) -> RunResult:
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
    hook : RunHook, optional
        Told of every instant's deliveries and layer ends; it may change the plan for
        what remains (re-planning, :mod:`owin_cosim.runtime`).
    """
    net = problem.make_network() if network is None else network
    with net:
        started = time.perf_counter()
        run = _Run(problem, plan, net, hook=hook)
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
    order = sorted(range(len(dag)), key=lambda v: (run.start[v], v))
    layers = [_layer_record(run, v) for v in order]
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
    result.dram_share = list(run.dram_trace)
    result.plan_file = plan_to_json(plan, problem, _executed(run, makespan))
    return result


def _layer_record(run: _Run, v: int) -> LayerRecord:
    """What layer ``v`` did: when, where, split how, at what cost."""
    problem, dag = run.problem, run.problem.dag
    option = dag.layer_options[v][int(run.option_of[v])]
    cores = run.cores_of[v]
    return LayerRecord(
        dag.names[v],
        dag.groups[v],
        cores[0],
        float(run.ready_at[v]),
        float(run.start[v]),
        float(run.finish[v]),
        option.cycles,
        option.energy_pJ,
        float(run.noc_pJ[v]),
        sum(p.utilization for p in option.parts) / option.group,
        int(dag.macs[v]),
        cores,
        problem.chip_types[option.core_type].name,
        option.split,
        option.dram_bytes,
    )


def _executed(run: _Run, makespan_s: float) -> ExecutedSchedule:
    """Where and in what order every layer actually ran (replaying it gives the same run)."""
    names = run.problem.dag.names
    order: dict[int, list[str]] = {j: [] for j in range(run.problem.num_cores)}
    for v in run.dispatched:
        for j in run.cores_of[v]:
            order[j].append(names[v])
    placement: dict[str, int | list[int]] = {
        names[v]: (cores[0] if len(cores) == 1 else list(cores))
        for v, cores in enumerate(run.cores_of)
    }
    return ExecutedSchedule(makespan_s, placement, order)
