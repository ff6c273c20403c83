"""Unit tests of the coordinator on hand-built problems and a scripted network.

Every problem here is written by hand (a few layers with chosen durations, 1-3 cores, a
chosen NoC) and the network is :class:`ScriptedNetwork`, which delivers each chunk at a
time fixed by the test and records what the coordinator asks of it. The expected times
in each test are derived by hand in its comments (durations and latencies are chosen so
that every time is exact in binary floating point).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from owin_cosim.errors import ScheduleError
from owin_cosim.network.base import (
    AdvanceResult,
    ChunkTx,
    Delivery,
    NetworkBackend,
    NetworkRef,
    RadioUse,
)
from owin_cosim.results.records import RunResult
from owin_cosim.sim.coordinator import execute, makespan_of
from owin_cosim.system.plan import Plan, RadioPhase
from owin_cosim.system.problem import CompiledDag, CostStats, DeviceSpec, Interconnect, Problem

INF = math.inf


# ---- a scripted network backend -------------------------------------------------------
class ScriptedNetwork(NetworkBackend):
    """Delivers chunk ``(device, chunk)`` at ``script[(device, chunk)]``, once submitted.

    Honours the interface: ``advance(until)`` stops at the first delivery instant (and
    returns every chunk delivered at that instant), never runs past ``until``. Every
    call is recorded. Chunks missing from the script are never delivered (they stay in
    the backlog).
    """

    name = "scripted"

    def __init__(self, script: Mapping[tuple[str, int], float], grant_invariant: bool = False):
        self.script = dict(script)
        self.grant_invariant = grant_invariant
        self._now = 0.0
        self.submitted: list[tuple[str, int, int, float]] = []
        self.shares: list[tuple[dict[str, float], float]] = []
        self.grants: list[float] = []
        self.delivered: set[tuple[str, int]] = set()
        self.closed = False

    @property
    def now_s(self) -> float:
        return self._now

    def submit(self, chunk: ChunkTx, at_s: float) -> None:
        assert at_s >= self._now
        self.submitted.append((chunk.device, chunk.chunk, chunk.nbytes, at_s))

    def set_shares(self, shares: Mapping[str, float], at_s: float) -> None:
        assert at_s >= self._now
        self.shares.append((dict(shares), at_s))

    def _pending(self) -> list[tuple[float, str, int, int]]:
        return sorted(
            (self.script[(d, c)], d, c, n)
            for d, c, n, _ in self.submitted
            if (d, c) in self.script and (d, c) not in self.delivered
        )

    def advance(self, until_s: float) -> AdvanceResult:
        self.grants.append(until_s)
        pending = self._pending()
        if not pending or pending[0][0] > until_s:
            self._now = max(self._now, until_s)
            return AdvanceResult(self._now, ())
        t = pending[0][0]
        assert t >= self._now, "script delivers in the past"
        self._now = t
        out = []
        for when, d, c, n in pending:
            if when == t:
                self.delivered.add((d, c))
                out.append(Delivery(d, c, n, 0.0, 0.0, t))
        return AdvanceResult(t, tuple(out))

    def has_backlog(self) -> bool:
        return any((d, c) not in self.delivered for d, c, _, _ in self.submitted)

    def radio_usage(self) -> list[RadioUse]:
        return []

    def close(self) -> None:
        self.closed = True


@dataclass(frozen=True)
class NeverBuilt(NetworkRef):
    """A network recipe that must not be used: the tests pass ``network=`` explicitly."""

    backend: str = "never-built"
    config: Any = None
    devices: tuple[Any, ...] = ()
    seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)

    def create(self) -> NetworkBackend:
        raise AssertionError("the coordinator built a network from the problem's recipe")


# ---- hand-built problems --------------------------------------------------------------
@dataclass(frozen=True)
class L:
    """One layer of a hand-built DAG (preds by layer number, which must be smaller)."""

    name: str
    duration: float
    preds: tuple[int, ...] = ()
    need: tuple[int, int] | None = None
    out_bytes: float = 0.0
    group: str = "g"


def make_dag(layers: Sequence[L]) -> CompiledDag:
    n = len(layers)
    succs: list[list[int]] = [[] for _ in range(n)]
    for v, layer in enumerate(layers):
        for p in layer.preds:
            assert p < v, "layers must be listed in topological order"
            succs[p].append(v)
    duration = np.array([layer.duration for layer in layers], dtype=float)
    return CompiledDag(
        names=[layer.name for layer in layers],
        groups=[layer.group for layer in layers],
        preds=[sorted(layer.preds) for layer in layers],
        succs=[sorted(s) for s in succs],
        duration_s=duration,
        cycles=np.arange(1, n + 1, dtype=np.int64) * 100,
        energy_pJ=duration * 10.0,
        utilization=np.full(n, 0.5),
        macs=np.arange(1, n + 1, dtype=np.int64),
        out_bytes=np.array([layer.out_bytes for layer in layers], dtype=float),
        needs=[layer.need for layer in layers],
    )


def line_noc(
    cores: int, hop_latency_s: float = 0.5, link_bytes_per_s: float = 1.0, pj: float = 1.0
) -> Interconnect:
    """Cores on a line: ``hops(i, j) = |i - j|``."""
    idx = np.arange(cores)
    hops = np.abs(idx[:, None] - idx[None, :]).astype(np.int64)
    return Interconnect(hops, hop_latency_s, link_bytes_per_s, pj)


def device(name: str, payload: int = 8, chunks: int = 1) -> DeviceSpec:
    return DeviceSpec(name, "vec", 10.0, 0.1, payload, chunks)


def make_problem(
    layers: Sequence[L], devices: Sequence[DeviceSpec], noc: Interconnect | None = None
) -> Problem:
    return Problem(
        name="hand",
        seed=0,
        devices=list(devices),
        dag=make_dag(layers),
        noc=noc if noc is not None else line_noc(1),
        network=NeverBuilt(),
        planning_network=NeverBuilt(),
        mean_rate_bps=np.ones(len(devices)),
        earliest_arrival_s=[[0.0] * d.chunks for d in devices],
        radio_bound_s=0.0,
        cost=CostStats("hand", 0, 0),
    )


def simple_plan(
    problem: Problem,
    release: str = "on_arrival",
    phases: tuple[RadioPhase, ...] | None = None,
    order: tuple[tuple[str, int], ...] | None = None,
) -> Plan:
    names = [d.name for d in problem.devices]
    if phases is None:
        phases = (RadioPhase(dict.fromkeys(names, 1.0)),)
    if order is None:
        order = tuple((d.name, c) for d in problem.devices for c in range(d.chunks))
    return Plan("hand", phases, order, release)  # type: ignore[arg-type]


def by_layer(result: RunResult) -> dict[str, tuple[int, float, float, float]]:
    """Layer name -> (core, ready, start, end)."""
    return {r.layer: (r.core, r.ready_s, r.start_s, r.end_s) for r in result.layers}


def assert_one_layer_at_a_time(result: RunResult) -> None:
    for core in range(result.num_cores):
        spans = sorted((r.start_s, r.end_s) for r in result.layers if r.core == core)
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end


def run(problem: Problem, plan: Plan, net: ScriptedNetwork) -> RunResult:
    result = execute(problem, plan, network=net)
    assert net.closed
    assert_one_layer_at_a_time(result)
    return result


# ---- release of layers by data --------------------------------------------------------
#: Device a sends 2 chunks (at 2 and 5); one slice per chunk, then a tail; one core.
CHUNKED = [
    L("s0", 1.0, need=(0, 0)),
    L("s1", 1.0, need=(0, 1)),
    L("tail", 3.0, preds=(0, 1)),
]


@pytest.mark.parametrize(
    ("release", "expected", "makespan"),
    [
        # s0 runs as soon as chunk 0 is in (2), s1 when chunk 1 is (5), tail after both.
        (
            "on_arrival",
            {"s0": (0, 2.0, 2.0, 3.0), "s1": (0, 5.0, 5.0, 6.0), "tail": (0, 6.0, 6.0, 9.0)},
            9.0,
        ),
        # Nothing before the last delivery (5); s0 and s1 tie on rank (4 = 1 + 3): layer
        # number decides, s0 first.
        (
            "after_all_uploads",
            {"s0": (0, 5.0, 5.0, 6.0), "s1": (0, 5.0, 6.0, 7.0), "tail": (0, 7.0, 7.0, 10.0)},
            10.0,
        ),
    ],
)
def test_layers_start_when_their_chunk_is_in(
    release: str, expected: dict[str, tuple[int, float, float, float]], makespan: float
) -> None:
    problem = make_problem(CHUNKED, [device("a", payload=10, chunks=2)])
    net = ScriptedNetwork({("a", 0): 2.0, ("a", 1): 5.0})
    result = run(problem, simple_plan(problem, release), net)
    assert by_layer(result) == expected
    assert result.makespan_s == makespan
    assert [(c.device, c.chunk, c.nbytes, c.last_byte_s) for c in result.chunks] == [
        ("a", 0, 5, 2.0),
        ("a", 1, 5, 5.0),
    ]


def test_whole_payload_need_waits_for_the_last_chunk_and_join_waits_for_both() -> None:
    # ea needs all of a (chunks at 1 and 4): [4, 6]. eb's data comes at 6.5 (the core idles
    # from 6 to 6.5): [6.5, 7.5]. fuse needs both: [7.5, 8.5].
    layers = [
        L("ea", 2.0, need=(0, -1)),
        L("eb", 1.0, need=(1, -1)),
        L("fuse", 1.0, preds=(0, 1)),
    ]
    problem = make_problem(layers, [device("a", chunks=2), device("b")])
    net = ScriptedNetwork({("a", 0): 1.0, ("a", 1): 4.0, ("b", 0): 6.5})
    result = run(problem, simple_plan(problem), net)
    assert by_layer(result) == {
        "ea": (0, 4.0, 4.0, 6.0),
        "eb": (0, 6.5, 6.5, 7.5),
        "fuse": (0, 7.5, 7.5, 8.5),
    }
    assert result.makespan_s == 8.5


def test_events_at_one_instant_are_all_applied_before_dispatch() -> None:
    # At t = 2 the delivery of a#0 (applied first: deliveries before completions) makes
    # `late` ready, and the end of `root` makes `next` ready. Dispatch then goes by rank:
    # next (rank 1) before late (rank 0.5), although late became ready first.
    layers = [
        L("root", 2.0),
        L("next", 1.0, preds=(0,)),
        L("late", 0.5, need=(0, 0)),
    ]
    problem = make_problem(layers, [device("a")])
    net = ScriptedNetwork({("a", 0): 2.0})
    result = run(problem, simple_plan(problem), net)
    assert by_layer(result) == {
        "root": (0, 0.0, 0.0, 2.0),
        "next": (0, 2.0, 2.0, 3.0),
        "late": (0, 2.0, 3.0, 3.5),
    }
    assert result.makespan_s == 3.5


# ---- dispatch: ranks, ties, EFT with NoC transfers ------------------------------------
def test_ties_break_by_rank_then_layer_number_then_core_number() -> None:
    # Four roots on 2 cores, all ready at 0. Ranks 1, 3, 1, 2: order r1, r3, r0, r2
    # (r0 before r2: equal rank, lower number).
    # r1: both cores free at 0 -> core 0 (lowest number), [0, 3].
    # r3: core 1 free at 0 -> [0, 2].   r0: cores free at 3 and 2 -> core 1, [2, 3].
    # r2: both cores free at 3 -> core 0, [3, 4].
    layers = [L("r0", 1.0), L("r1", 3.0), L("r2", 1.0), L("r3", 2.0)]
    problem = make_problem(layers, [device("a")], line_noc(2))
    result = run(problem, simple_plan(problem), ScriptedNetwork({("a", 0): 0.0}))
    assert by_layer(result) == {
        "r0": (1, 0.0, 2.0, 3.0),
        "r1": (0, 0.0, 0.0, 3.0),
        "r2": (0, 0.0, 3.0, 4.0),
        "r3": (1, 0.0, 0.0, 2.0),
    }
    assert result.makespan_s == 4.0


@pytest.mark.parametrize(
    ("d1", "core", "start", "noc_pJ"),
    [
        (2.0, 0, 6.0, 0.0),  # core 0 frees at 6 < 6.5: waiting for the busy core pays
        (2.5, 0, 6.5, 0.0),  # both at 6.5: the tie goes to the lower core number
        (3.0, 1, 6.5, 6.0),  # core 0 frees at 7 > 6.5: moving pays (2 B x 1 hop x 3 pJ)
    ],
)
def test_eft_weighs_waiting_for_the_busy_core_against_the_noc_transfer(
    d1: float, core: int, start: float, noc_pJ: float
) -> None:
    # src on core 0 [0, 4], output 2 B. At 4, s1 (rank d1 > 1) goes first, to core 0
    # [4, 4 + d1] (on core 1 it could start only at 4 + 2 B / 1 B/s + 1 hop x 0.5 s = 6.5).
    # s2 then starts on core 0 at 4 + d1, or on core 1 at 6.5.
    layers = [L("src", 4.0, out_bytes=2.0), L("s1", d1, preds=(0,)), L("s2", 1.0, preds=(0,))]
    problem = make_problem(layers, [device("a")], line_noc(2, 0.5, 1.0, pj=3.0))
    result = run(problem, simple_plan(problem), ScriptedNetwork({("a", 0): 0.0}))
    rec = by_layer(result)
    assert rec["src"] == (0, 0.0, 0.0, 4.0)
    assert rec["s1"] == (0, 4.0, 4.0, 4.0 + d1)
    assert rec["s2"] == (core, 4.0, start, start + 1.0)
    noc = {r.layer: r.noc_energy_pJ for r in result.layers}
    assert noc == {"src": 0.0, "s1": 0.0, "s2": noc_pJ}
    assert result.energy_J()["noc"] == pytest.approx(noc_pJ * 1e-12, rel=1e-12, abs=0)
    assert result.makespan_s == max(4.0 + d1, start + 1.0)


@pytest.mark.parametrize(
    ("out_a", "out_b", "join"),
    [
        # pa sends 4 B, pb 1 B. join is ready at 3; its inputs arrive at
        #   core 0: pa 2 + 4 B + 0.5 = 6.5, pb 3                -> 6.5
        #   core 1: pa 2,                   pb 3 + 1 B + 0.5 = 4.5 -> 4.5
        #   core 2: pa 2 + 4 + 0.5 = 6.5,   pb 3 + 1 + 2 x 0.5 = 5 -> 6.5
        # so it runs on core 1, although core 0 ran its last predecessor; pb's byte
        # crosses the NoC: 1 B x 1 hop x 2 pJ.
        (4.0, 1.0, (1, 3.0, 4.5, 5.5, 2.0)),
        # pa sends 1 B, pb 4 B: core 0: pa 2 + 1 + 0.5 = 3.5, pb 3 -> 3.5; core 1: pb
        # 3 + 4 + 0.5 = 7.5; core 2: pb 3 + 4 + 1 = 8. Core 0, pa's byte moves 1 hop.
        (1.0, 4.0, (0, 3.0, 3.5, 4.5, 2.0)),
    ],
)
def test_eft_counts_the_transfer_from_every_predecessor(
    out_a: float, out_b: float, join: tuple[int, float, float, float, float]
) -> None:
    # 3 cores on a line, 0.5 s per hop, 1 B/s, 2 pJ/B/hop. pb (rank 4) -> core 0 [0, 3];
    # pa (rank 3) -> core 1 [0, 2] (core 0 is taken).
    layers = [
        L("pa", 2.0, out_bytes=out_a),
        L("pb", 3.0, out_bytes=out_b),
        L("join", 1.0, preds=(0, 1)),
    ]
    problem = make_problem(layers, [device("a")], line_noc(3, 0.5, 1.0, pj=2.0))
    result = run(problem, simple_plan(problem), ScriptedNetwork({("a", 0): 0.0}))
    assert by_layer(result) == {
        "pa": (1, 0.0, 0.0, 2.0),
        "pb": (0, 0.0, 0.0, 3.0),
        "join": join[:4],
    }
    noc = {r.layer: r.noc_energy_pJ for r in result.layers}
    assert noc == {"pa": 0.0, "pb": 0.0, "join": join[4]}
    assert result.makespan_s == join[3]


def test_transfer_time_and_energy_grow_with_hops() -> None:
    # 3 cores on a line, 0.5 s per hop, 1 B/s, 1.5 pJ/B/hop. v0 on core 0 [0, 1], 1 B out.
    # At 1: s1 (rank 10) -> core 0 [1, 11]; s2 (rank 9): core 0 at 11, core 1 at
    # 1 + 1 + 0.5 = 2.5, core 2 at 1 + 1 + 2 x 0.5 = 3 -> core 1 [2.5, 11.5]; s3: core 0
    # at 11, core 1 at 11.5, core 2 at 3 -> core 2 [3, 11], 2 hops away.
    layers = [
        L("v0", 1.0, out_bytes=1.0),
        L("s1", 10.0, preds=(0,)),
        L("s2", 9.0, preds=(0,)),
        L("s3", 8.0, preds=(0,)),
    ]
    problem = make_problem(layers, [device("a")], line_noc(3, 0.5, 1.0, pj=1.5))
    result = run(problem, simple_plan(problem), ScriptedNetwork({("a", 0): 0.0}))
    assert by_layer(result) == {
        "v0": (0, 0.0, 0.0, 1.0),
        "s1": (0, 1.0, 1.0, 11.0),
        "s2": (1, 1.0, 2.5, 11.5),
        "s3": (2, 1.0, 3.0, 11.0),
    }
    noc = {r.layer: r.noc_energy_pJ for r in result.layers}
    assert noc == {"v0": 0.0, "s1": 0.0, "s2": 1.5, "s3": 3.0}
    # The makespan is the end of the last layer to finish (s2), not of the last layer.
    assert result.makespan_s == 11.5


def test_no_insertion_into_an_idle_gap_of_a_reserved_core() -> None:
    # As the d1 = 3 case above: core 0 runs src [0, 4] and s1 [4, 7]; s2 is reserved on
    # core 1 at [6.5, 7.5], core 1 idling before. x's data comes at 5: x (1 s) would fit
    # into core 1's gap [5, 6], but a reserved core is free only after its last layer, so
    # x starts on core 0 at 7 (core 1: 7.5).
    layers = [
        L("src", 4.0, out_bytes=2.0),
        L("s1", 3.0, preds=(0,)),
        L("s2", 1.0, preds=(0,)),
        L("x", 1.0, need=(0, 0)),
    ]
    problem = make_problem(layers, [device("a")], line_noc(2, 0.5, 1.0))
    result = run(problem, simple_plan(problem), ScriptedNetwork({("a", 0): 5.0}))
    assert by_layer(result) == {
        "src": (0, 0.0, 0.0, 4.0),
        "s1": (0, 4.0, 4.0, 7.0),
        "s2": (1, 4.0, 6.5, 7.5),
        "x": (0, 5.0, 7.0, 8.0),
    }
    assert result.makespan_s == 8.0


# ---- the radio side: submissions, phases, grants --------------------------------------
def test_chunks_are_submitted_at_zero_in_plan_order() -> None:
    devices = [device("a", payload=7, chunks=2), device("b", payload=5), device("c", payload=2)]
    layers = [L("ea", 1.0, need=(0, -1)), L("eb", 1.0, need=(1, -1)), L("ec", 1.0, need=(2, -1))]
    problem = make_problem(layers, devices)
    order = (("b", 0), ("a", 0), ("c", 0), ("a", 1))
    phase = RadioPhase({"a": 0.5, "b": 0.25, "c": 0.25})
    net = ScriptedNetwork({("a", 0): 1.0, ("a", 1): 2.0, ("b", 0): 1.0, ("c", 0): 3.0})
    run(problem, simple_plan(problem, phases=(phase,), order=order), net)
    # 7 bytes in 2 chunks: 4 + 3.
    assert net.submitted == [("b", 0, 5, 0.0), ("a", 0, 4, 0.0), ("c", 0, 2, 0.0), ("a", 1, 3, 0.0)]
    # One phase: its shares are set once, at 0, and never changed.
    assert net.shares == [({"a": 0.5, "b": 0.25, "c": 0.25}, 0.0)]


SEQUENTIAL = (
    RadioPhase({"a": 1.0}, ("a",)),
    RadioPhase({"b": 1.0}, ("b",)),
    RadioPhase({"c": 1.0}, ("c",)),
)


@pytest.mark.parametrize(
    ("phases", "script", "expected"),
    [
        # a ends at 2 -> phase 1; b ends at 3 -> phase 2.
        (
            SEQUENTIAL,
            {("a", 0): 1.0, ("a", 1): 2.0, ("b", 0): 3.0, ("c", 0): 4.0},
            [({"a": 1.0}, 0.0), ({"b": 1.0}, 2.0), ({"c": 1.0}, 3.0)],
        ),
        # b is done (at 1) before a (at 2): at 2 phase 1 is passed over at once, one call.
        (
            SEQUENTIAL,
            {("b", 0): 1.0, ("a", 0): 1.5, ("a", 1): 2.0, ("c", 0): 4.0},
            [({"a": 1.0}, 0.0), ({"c": 1.0}, 2.0)],
        ),
        # Phase 0 waits for both a (done at 2) and b (done at 3).
        (
            (RadioPhase({"a": 1.0, "b": 1.0}, ("a", "b")), RadioPhase({"c": 1.0})),
            {("a", 0): 1.0, ("a", 1): 2.0, ("b", 0): 3.0, ("c", 0): 4.0},
            [({"a": 1.0, "b": 1.0}, 0.0), ({"c": 1.0}, 3.0)],
        ),
    ],
)
def test_phases_switch_when_their_devices_are_done(
    phases: tuple[RadioPhase, ...],
    script: dict[tuple[str, int], float],
    expected: list[tuple[dict[str, float], float]],
) -> None:
    devices = [device("a", chunks=2), device("b"), device("c")]
    layers = [
        L("ea", 0.25, need=(0, -1)),
        L("eb", 0.25, need=(1, -1)),
        L("ec", 0.25, need=(2, -1)),
    ]
    problem = make_problem(layers, devices)
    net = ScriptedNetwork(script)
    result = run(problem, simple_plan(problem, phases=phases), net)
    assert net.shares == expected
    assert result.makespan_s == 4.25  # c's encoder after the last delivery


@pytest.mark.parametrize(
    ("grant_invariant", "grants"),
    [
        # Up to the next event: first delivery (1); the end of v0 (3); then nothing is
        # pending but the network: the second delivery (5). After it, no backlog.
        (False, [INF, 3.0, INF]),
        # Until the next delivery, whatever compute events lie before it.
        (True, [INF, INF]),
    ],
)
def test_time_is_granted_to_the_network_up_to_the_next_event(
    grant_invariant: bool, grants: list[float]
) -> None:
    layers = [L("v0", 2.0, need=(0, 0)), L("v1", 1.0, need=(0, 1))]
    problem = make_problem(layers, [device("a", chunks=2)])
    net = ScriptedNetwork({("a", 0): 1.0, ("a", 1): 5.0}, grant_invariant=grant_invariant)
    result = run(problem, simple_plan(problem), net)
    assert net.grants == grants
    assert by_layer(result) == {"v0": (0, 1.0, 1.0, 3.0), "v1": (0, 5.0, 5.0, 6.0)}
    assert result.makespan_s == 6.0


def test_makespan_of_agrees_with_execute() -> None:
    problem = make_problem(CHUNKED, [device("a", payload=10, chunks=2)])
    script = {("a", 0): 2.0, ("a", 1): 5.0}
    net = ScriptedNetwork(script)
    assert makespan_of(problem, simple_plan(problem), net) == 9.0
    assert net.closed


# ---- impossible states ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("layers", "script", "release"),
    [
        # b's chunk never comes (the network keeps it in its backlog forever).
        ([L("ea", 1.0, need=(0, -1)), L("eb", 1.0, need=(1, -1))], {("a", 0): 1.0}, "on_arrival"),
        # The release barrier never opens for the same reason.
        ([L("ea", 1.0, need=(0, -1))], {("a", 0): 1.0}, "after_all_uploads"),
        # A layer needs a chunk that its device does not have (a sends one chunk).
        (
            [L("ea", 1.0, need=(0, 0)), L("e3", 1.0, need=(0, 3))],
            {("a", 0): 1.0, ("b", 0): 1.0},
            "on_arrival",
        ),
    ],
)
def test_layers_that_can_never_run_raise_schedule_error(
    layers: list[L], script: dict[tuple[str, int], float], release: str
) -> None:
    problem = make_problem(layers, [device("a"), device("b")])
    net = ScriptedNetwork(script)
    with pytest.raises(ScheduleError, match="deadlock"):
        execute(problem, simple_plan(problem, release), network=net)
    assert net.closed  # closed on the error path too


def test_a_first_phase_with_nothing_to_wait_for_ends_at_once() -> None:
    # Phase 0 waits for no device, so by the rule "phase i holds until every device of its
    # until_done is done" phase 1 is in force from t = 0 (as the coordinator does for a
    # later phase whose devices are already done, see the test above).
    devices = [device("a"), device("b")]
    layers = [L("ea", 0.25, need=(0, -1)), L("eb", 0.25, need=(1, -1))]
    problem = make_problem(layers, devices)
    phases = (RadioPhase({"a": 1.0}), RadioPhase({"b": 1.0}, ("b",)), RadioPhase({"a": 1.0}))
    net = ScriptedNetwork({("a", 0): 3.0, ("b", 0): 2.0})
    run(problem, simple_plan(problem, phases=phases), net)
    at_zero = [shares for shares, t in net.shares if t == 0.0]
    assert at_zero[-1] == {"b": 1.0}  # phase 1 from the start
    assert [t for _, t in net.shares if t > 0.0] == [2.0]  # phase 2 when b is done
