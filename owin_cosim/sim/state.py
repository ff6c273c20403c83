"""A run's state at one instant, as plain data, and the hooks that watch a run.

A :class:`RunState` is what a running execution (the coordinator's loop) holds after
it applied every event at ``now_s`` and before it dispatches: what was delivered, what
ran where, what is running (each DRAM flow with the work it has left), what is queued
on each core, what is ready. The coordinator can start from one instead of from time 0
(:func:`~owin_cosim.sim.coordinator.forecast`): the run then carries a (new) plan out
for what remains, on a fresh network backend to which the undelivered chunks are
submitted at ``now_s``. Re-planning (:mod:`owin_cosim.runtime`) uses this to simulate
candidate continuations on the planning surrogate.

Layers already dispatched keep their option, cores and queue position; only layers not
yet dispatched follow the new plan's priorities, placement and core order. A chunk on
the air at ``now_s`` is resubmitted whole: the network interface does not report how
much of a chunk has been sent.

Imports nothing of the coordinator at run time (the coordinator imports this module).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from owin_cosim.network.base import ChunkTx, Delivery
from owin_cosim.sim.engine import Event, EventKind
from owin_cosim.system.plan import Plan

if TYPE_CHECKING:
    from owin_cosim.sim.coordinator import _Run

__all__ = [
    "FlowLeft",
    "Forecast",
    "RunControl",
    "RunHook",
    "RunState",
    "capture",
    "report",
    "restore",
]


@dataclass(frozen=True, slots=True)
class FlowLeft:
    """A running part of a layer (its DRAM flow) and the costs of the work it has left."""

    layer: int
    part: int
    compute_s: float
    dram_s: float
    count: int


@dataclass(frozen=True)
class RunState:
    """A snapshot of an execution at ``now_s`` (arrays indexed by layer or core number).

    Plain data: picklable, and copied, so the run it came from can go on.
    """

    now_s: float
    #: Index of the radio phase in force in the plan being carried out.
    phase: int
    gate_open: bool
    chunks_left: tuple[int, ...]
    #: Chunks submitted but not delivered, in submission order.
    pending: tuple[ChunkTx, ...]
    deliveries: tuple[Delivery, ...]
    waiting_preds: np.ndarray
    data_ok: np.ndarray
    #: Ready layers not dispatched yet.
    ready: tuple[int, ...]
    ready_at: np.ndarray
    start: np.ndarray
    finish: np.ndarray
    noc_pJ: np.ndarray
    option_of: np.ndarray
    cores_of: tuple[tuple[int, ...], ...]
    inputs_at: np.ndarray
    parts_left: np.ndarray
    core_queue: tuple[tuple[int, ...], ...]
    busy: np.ndarray
    free_s: np.ndarray
    flows: tuple[FlowLeft, ...]
    dispatched: tuple[int, ...]
    done_layers: int


@dataclass(frozen=True)
class Forecast:
    """What a run from a state predicts: its makespan, each chunk's delivery and each
    layer's end (NaN for none)."""

    makespan_s: float
    delivered_s: dict[tuple[str, int], float]
    finish_s: np.ndarray


class RunControl(Protocol):
    """What a hook may read and do on a running execution."""

    @property
    def now(self) -> float: ...

    @property
    def plan(self) -> Plan: ...

    @property
    def finish(self) -> np.ndarray: ...

    def snapshot(self) -> RunState:
        """The state now (after this instant's events, before dispatching)."""
        ...

    def replace_plan(self, plan: Plan) -> None:
        """Carry ``plan`` out from now for what is not yet dispatched or sent."""
        ...


class RunHook(Protocol):
    """Called by the coordinator after it applied every event of one instant."""

    def on_progress(
        self, run: RunControl, deliveries: Sequence[Delivery], ended: Sequence[int]
    ) -> None:
        """``deliveries`` and ``ended`` (layer numbers): what happened at ``run.now``."""
        ...


def capture(run: _Run) -> RunState:
    """The state of ``run`` now (see :class:`RunState`)."""
    delivered = {(d.device, d.chunk) for d in run.deliveries}
    pending = tuple(
        ChunkTx(dev, c, run.problem.devices[run.problem.device_index(dev)].chunk_bytes[c])
        for dev, c in run.plan.chunk_order
        if (dev, c) not in delivered
    )
    flows = tuple(
        FlowLeft(v, i, part.compute_s * left, part.dram_s * left, count)
        for (v, i) in run.arbiter.finishes()
        for part, count in [run.problem.dag.layer_options[v][int(run.option_of[v])].flows[i]]
        for left in [run.arbiter.work_left((v, i), run.now)]
    )
    return RunState(
        run.now,
        run.phase,
        run.gate_open,
        tuple(run.chunks_left),
        pending,
        tuple(run.deliveries),
        run.waiting_preds.copy(),
        run.data_ok.copy(),
        tuple(run.ready),
        run.ready_at.copy(),
        run.start.copy(),
        run.finish.copy(),
        run.noc_pJ.copy(),
        run.option_of.copy(),
        tuple(run.cores_of),
        run.inputs_at.copy(),
        run.parts_left.copy(),
        tuple(tuple(q) for q in run.core_queue),
        run.busy.copy(),
        run.free_s.copy(),
        flows,
        tuple(run.dispatched),
        run.done_layers,
    )


def restore(run: _Run, state: RunState) -> None:
    """Put a fresh ``run`` (nothing started) into ``state``; submit what is left to send.

    The run's plan takes over from ``state.now_s``: its radio phases from the first one
    still waiting for a device (see :meth:`_Run.replace_plan`).
    """
    run.now = state.now_s
    run.gate_open = state.gate_open
    run.chunks_left = list(state.chunks_left)
    run.deliveries = list(state.deliveries)
    for name in ("waiting_preds", "data_ok", "ready_at", "start", "finish", "noc_pJ"):
        setattr(run, name, getattr(state, name).copy())
    for name in ("option_of", "inputs_at", "parts_left", "busy", "free_s"):
        setattr(run, name, getattr(state, name).copy())
    run.ready = list(state.ready)
    run.cores_of = list(state.cores_of)
    for j, queue in enumerate(state.core_queue):
        run.core_queue[j].extend(queue)
    run.dispatched = list(state.dispatched)
    run.done_layers = state.done_layers
    for f in state.flows:
        run.arbiter.add((f.layer, f.part), f.compute_s, f.dram_s, state.now_s, f.count)
    # Layers holding their cores while their inputs cross the NoC start later.
    for v, cores in enumerate(run.cores_of):
        if cores and math.isnan(run.start[v]) and all(run.busy[j] == v for j in cores):
            run.queue.push(max(state.now_s, float(run.inputs_at[v])), EventKind.LAYER_START, v)
    if run.plan.radio_grid is not None:  # the fresh backend follows it too (slot 0 on)
        run.net.set_allocation(run.plan.radio_grid)
    for chunk in state.pending:
        run.net.submit(chunk, state.now_s)
    run.replace_plan(run.plan)


def report(run: _Run, hook: RunHook, batch: Sequence[Event]) -> None:
    """Tell ``hook`` what happened at ``run.now``: the deliveries, the layers that ended."""
    delivered = [e.payload for e in batch if e.kind is EventKind.DELIVERY]
    ended = [
        e.payload[0]
        for e in batch
        if e.kind is EventKind.LAYER_DONE and run.parts_left[e.payload[0]] == 0
    ]
    hook.on_progress(run, delivered, list(dict.fromkeys(ended)))
