"""Unit tests of PACS's parts: Johnson's rule, the candidate radio plans, the search.

The planning runs here go to :class:`FluidUplink`, a fluid model of a shared band whose
delivery times can be worked out by hand (device ``k`` alone sends at ``rate_k``; under
weights, the backlogged devices with positive weight split the band in proportion), or
to the built-in OFDM surrogate of small assembled scenarios.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from owin_cosim.network.base import (
    AdvanceResult,
    ChunkTx,
    Delivery,
    NetworkBackend,
    NetworkRef,
    RadioUse,
)
from owin_cosim.policies import make_policy
from owin_cosim.policies.base import minmax_shares, upload_and_encoder_times
from owin_cosim.policies.pacs import Pacs, PacsParams, johnson_order
from owin_cosim.policies.rtfs import Rtfs
from owin_cosim.scenario.assemble import assemble
from owin_cosim.scenario.schema import Scenario
from owin_cosim.sim.evaluator import Evaluator
from owin_cosim.system.plan import RadioPhase
from owin_cosim.system.problem import CompiledDag, CostStats, DeviceSpec, Interconnect, Problem
from tests.conftest import scenario_dict

REL = 1e-9


# ---- Johnson's rule -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        # a <= b: 1 (a=1), 3 (a=2) by increasing a; then a > b: 0 (b=2), 2 (b=1) by
        # decreasing b.
        ([3, 1, 4, 2], [2, 5, 1, 3], [1, 3, 0, 2]),
        # a == b belongs to the first group; the second group is not sorted by a.
        ([2, 5, 1, 9], [2, 1, 3, 4], [2, 0, 3, 1]),
        # Ties by index in both groups.
        ([1, 1, 5, 5], [4, 4, 2, 2], [0, 1, 2, 3]),
        # Everything in the second group: decreasing b only.
        ([9, 8, 7], [1, 3, 2], [1, 2, 0]),
        ([], [], []),
    ],
)
def test_johnson_order(a: list[float], b: list[float], order: list[int]) -> None:
    assert johnson_order(a, b) == order


def test_johnson_order_is_optimal_for_two_machine_flow_shops() -> None:
    # Brute force over all orders of small random instances: no order beats Johnson's.
    def cmax(order: Sequence[int], a: np.ndarray, b: np.ndarray) -> float:
        t1 = t2 = 0.0
        for k in order:
            t1 += a[k]
            t2 = max(t2, t1) + b[k]
        return t2

    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = rng.integers(1, 10, 5).astype(float), rng.integers(1, 10, 5).astype(float)
        best = min(cmax(p, a, b) for p in itertools.permutations(range(5)))
        assert cmax(johnson_order(a.tolist(), b.tolist()), a, b) == best


# ---- a fluid uplink whose times are easy to derive ------------------------------------
class FluidUplink(NetworkBackend):
    """A shared band as a fluid: device ``k`` alone sends ``rates[k]`` bytes/s.

    The backlogged devices with a positive weight split the band in proportion to their
    weights (``w_k / sum w``: device ``k`` sends ``rates[k] * w_k / sum w``); when none
    has a positive weight, the backlogged devices split it evenly. Shares act at once.
    """

    name = "fluid"

    def __init__(self, rates: Mapping[str, float]) -> None:
        self.rates = dict(rates)
        self.weights: dict[str, float] = {}
        self.queues: dict[str, deque[list[Any]]] = {d: deque() for d in rates}
        self._now = 0.0

    @property
    def now_s(self) -> float:
        return self._now

    def submit(self, chunk: ChunkTx, at_s: float) -> None:
        assert at_s == self._now == 0.0
        self.queues[chunk.device].append([chunk, float(chunk.nbytes)])

    def set_shares(self, shares: Mapping[str, float], at_s: float) -> None:
        assert at_s == self._now
        self.weights = dict(shares)

    def _speeds(self) -> dict[str, float]:
        busy = [d for d, q in self.queues.items() if q]
        positive = [d for d in busy if self.weights.get(d, 0.0) > 0]
        if positive:
            total = sum(self.weights[d] for d in positive)
            return {d: self.rates[d] * self.weights[d] / total for d in positive}
        return {d: self.rates[d] / len(busy) for d in busy}

    def advance(self, until_s: float) -> AdvanceResult:
        speeds = self._speeds()
        if not speeds:
            self._now = max(self._now, until_s) if until_s < np.inf else self._now
            return AdvanceResult(self._now, ())
        dt = min(self.queues[d][0][1] / s for d, s in speeds.items())
        step = min(dt, until_s - self._now)
        assert step >= 0, "granted a time in the past"
        for d, s in speeds.items():
            self.queues[d][0][1] -= s * step
        self._now += step
        done = []
        for d in speeds:
            head = self.queues[d][0]
            if head[1] <= 1e-9 * head[0].nbytes:
                self.queues[d].popleft()
                done.append(Delivery(d, head[0].chunk, head[0].nbytes, 0.0, 0.0, self._now))
        return AdvanceResult(self._now, tuple(done))

    def has_backlog(self) -> bool:
        return any(self.queues.values())

    def radio_usage(self) -> list[RadioUse]:
        return []


@dataclass(frozen=True)
class FluidRef(NetworkRef):
    """The recipe of a :class:`FluidUplink`; counts the backends it builds."""

    backend: str = "fluid"
    config: Any = None
    devices: tuple[Any, ...] = ()
    seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)
    built: list[int] = field(default_factory=list, compare=False)

    def create(self) -> NetworkBackend:
        self.built.append(1)
        return FluidUplink(self.config)


@dataclass(frozen=True)
class RealNetwork(NetworkRef):
    """The real run's recipe: planning must never build it."""

    backend: str = "real"
    config: Any = None
    devices: tuple[Any, ...] = ()
    seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)

    def create(self) -> NetworkBackend:
        raise AssertionError("planning built the real run's network")


def make_problem(
    devices: Sequence[tuple[str, int, float]],
    layers: Sequence[tuple[str, str, float, tuple[int, ...], tuple[int, int] | None]],
    cores: int = 1,
    hop_latency_s: float = 0.0,
) -> Problem:
    """``devices``: (name, payload bytes, bytes/s alone on the band), one chunk each;
    ``layers``: (name, group, seconds, preds, need) in topological order; no NoC bytes."""
    n = len(layers)
    succs: list[list[int]] = [[] for _ in range(n)]
    for v, (_, _, _, preds, _) in enumerate(layers):
        for p in preds:
            succs[p].append(v)
    duration = np.array([layer[2] for layer in layers])
    dag = CompiledDag(
        [layer[0] for layer in layers],
        [layer[1] for layer in layers],
        [sorted(layer[3]) for layer in layers],
        succs,
        duration,
        np.ones(n, dtype=np.int64),
        np.ones(n),
        np.ones(n),
        np.ones(n, dtype=np.int64),
        np.zeros(n),
        [layer[4] for layer in layers],
    )
    hops = np.abs(np.arange(cores)[:, None] - np.arange(cores)[None, :])
    return Problem(
        name="hand",
        seed=0,
        devices=[DeviceSpec(name, "vec", 10.0, 0.1, size, 1) for name, size, _ in devices],
        dag=dag,
        noc=Interconnect(hops, hop_latency_s, 1.0, 1.0),
        network=RealNetwork(),
        planning_network=FluidRef(config={name: rate for name, _, rate in devices}),
        mean_rate_bps=np.array([rate * 8.0 for _, _, rate in devices]),
        earliest_arrival_s=[[0.0] for _ in devices],
        radio_bound_s=0.0,
        cost=CostStats("hand", 0, 0),
    )


def built(problem: Problem) -> int:
    ref = problem.planning_network
    assert isinstance(ref, FluidRef)
    return len(ref.built)


def two_devices(enc_a: float = 4.0, enc_b: float = 1.0, cores: int = 1) -> Problem:
    """A uploads for 1 s alone (1000 B at 1000 B/s), B for 3 s; then each device's
    encoder, then a 0.5 s fusion."""
    return make_problem(
        [("A", 1000, 1000.0), ("B", 3000, 1000.0)],
        [
            ("A.enc", "encoder:A", enc_a, (), (0, -1)),
            ("B.enc", "encoder:B", enc_b, (), (1, -1)),
            ("fuse", "fusion", 0.5, (0, 1), None),
        ],
        cores,
    )


#: Planning makespans of the candidates on :func:`two_devices` (one core), by hand.
#: johnson (A then B; spt and lpt give the same order): A in at 1, B at 4;
#:   A.enc [1, 5], B.enc [5, 6], fuse [6, 6.5].
#: johnson_soft, ratio 4: weights A 1, B 1/4 until A is done: A at 800 B/s, in at 1.25;
#:   B sent 250 B by then, the other 2750 B by 4. A.enc [1.25, 5.25], B.enc [5.25, 6.25],
#:   fuse [6.25, 6.75].
#: minmax: shares 1/4, 3/4 (upload 1 s and 3 s): both in at 4; A.enc (rank 4.5) [4, 8],
#:   B.enc [8, 9], fuse [9, 9.5]. RTFS (the same shares, no overlap) gives 9.5 as well.
TWO_DEVICE_SPANS = {"johnson": 6.5, "johnson_soft": 6.75, "minmax": 9.5, "spt": 6.5, "lpt": 6.5}
SEQ_AB = (RadioPhase({"A": 1.0}, ("A",)), RadioPhase({"B": 1.0}, ("B",)))


# ---- the two stages and the candidate families ----------------------------------------
def four_devices() -> Problem:
    """a = 1, 2, 3, 4 s (8000 bits at 8000, 4000, 8000/3, 2000 bit/s); b = 0.5, 5, 7, 1 s.

    d2's encoder: x (2 s) and z (3 s), both before y (4 s): critical path 3 + 4 = 7 (not
    the 9 s of the three layers, nor the 6 s through x).
    """
    rates = [1000.0, 500.0, 1000.0 / 3.0, 250.0]
    return make_problem(
        [(f"d{k}", 1000, rates[k]) for k in range(4)],
        [
            ("d0.e", "encoder:d0", 0.5, (), (0, -1)),
            ("d1.e", "encoder:d1", 5.0, (), (1, -1)),
            ("d2.x", "encoder:d2", 2.0, (), (2, -1)),
            ("d2.z", "encoder:d2", 3.0, (), (2, -1)),
            ("d2.y", "encoder:d2", 4.0, (2, 3), None),
            ("d3.e", "encoder:d3", 1.0, (), (3, -1)),
            ("fuse", "fusion", 7.0, (0, 1, 4, 3, 5), None),
        ],
    )


def test_two_stage_times_are_mean_rate_uploads_and_encoder_critical_paths() -> None:
    a, b = upload_and_encoder_times(four_devices())
    assert a.tolist() == pytest.approx([1.0, 2.0, 3.0, 4.0], rel=REL)
    assert b.tolist() == [0.5, 5.0, 7.0, 1.0]  # the fusion layer is no encoder's


def test_candidate_families() -> None:
    # Johnson: a <= b are d1 (2 <= 5), d2 (3 <= 7) by increasing a; then d3 (b 1), d0
    # (b 0.5) by decreasing b -> d1 d2 d3 d0. spt (increasing a): d0 d1 d2 d3. lpt
    # (decreasing b): d2 d1 d3 d0.
    cands = Pacs().candidates(four_devices())
    assert list(cands) == ["johnson", "johnson_soft", "minmax", "spt", "lpt"]

    def seq(*names: str) -> tuple[RadioPhase, ...]:
        return tuple(RadioPhase({n: 1.0}, (n,)) for n in names)

    assert cands["johnson"] == seq("d1", "d2", "d3", "d0")
    assert cands["spt"] == seq("d0", "d1", "d2", "d3")
    assert cands["lpt"] == seq("d2", "d1", "d3", "d0")
    # Soft: the devices still to send, weighted 4^-(distance in Johnson's order).
    assert cands["johnson_soft"] == (
        RadioPhase({"d1": 1.0, "d2": 0.25, "d3": 0.0625, "d0": 0.015625}, ("d1",)),
        RadioPhase({"d2": 1.0, "d3": 0.25, "d0": 0.0625}, ("d2",)),
        RadioPhase({"d3": 1.0, "d0": 0.25}, ("d3",)),
        RadioPhase({"d0": 1.0}, ("d0",)),
    )
    (minmax,) = cands["minmax"]
    assert minmax.until_done == ()
    assert minmax.shares == pytest.approx({"d0": 0.1, "d1": 0.2, "d2": 0.3, "d3": 0.4}, rel=REL)


def test_soft_ratio_and_candidate_subset() -> None:
    pacs = make_policy("pacs", {"candidates": ["johnson_soft", "spt"], "soft_ratio": 2.0})
    assert isinstance(pacs, Pacs)
    cands = pacs.candidates(four_devices())
    assert list(cands) == ["johnson_soft", "spt"]
    assert cands["johnson_soft"][0] == RadioPhase(
        {"d1": 1.0, "d2": 0.5, "d3": 0.25, "d0": 0.125}, ("d1",)
    )


def test_unknown_candidate_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown candidates"):
        PacsParams(candidates=["johnson", "random"])


def test_minmax_shares_sum_to_one_and_equalise_upload_times() -> None:
    problem = four_devices()
    shares = minmax_shares(problem)
    assert sum(shares.values()) == pytest.approx(1.0, rel=1e-12)
    # Device k at share s_k of its mean rate: 8000 bits / (s_k r_k) = sum of a = 10 s each.
    for k, d in enumerate(problem.devices):
        upload = d.payload_bytes * 8.0 / (shares[d.name] * problem.mean_rate_bps[k])
        assert upload == pytest.approx(10.0, rel=REL)


# ---- the search ----------------------------------------------------------------------
def test_search_keeps_the_smallest_planning_makespan() -> None:
    problem = two_devices()
    plan = Pacs().plan(problem)
    assert plan.notes["planning_makespan_s"] == pytest.approx(TWO_DEVICE_SPANS, rel=REL)
    assert plan.notes["chosen_radio_plan"] == "johnson"
    assert plan.notes["johnson_inputs_s"] == {
        "A": {"upload": 1.0, "encoder": 4.0},
        "B": {"upload": 3.0, "encoder": 1.0},
    }
    assert plan.radio_phases == SEQ_AB
    assert plan.chunk_order == (("A", 0), ("B", 0))
    assert plan.compute_release == "on_arrival"
    # spt and lpt are the same plan as johnson: simulated once, 3 planning runs in all.
    assert built(problem) == 3
    # Carried out on the surrogate, the chosen plan gives the recorded makespan.
    assert Evaluator(problem).makespan(plan) == pytest.approx(6.5, rel=REL)


def test_search_finds_the_best_family_when_it_is_not_the_first() -> None:
    problem = two_devices()
    pacs = make_policy("pacs", {"candidates": ["minmax", "johnson_soft", "johnson"]})
    plan = pacs.plan(problem)
    assert plan.notes["chosen_radio_plan"] == "johnson"
    assert plan.radio_phases == SEQ_AB
    assert plan.notes["planning_makespan_s"] == pytest.approx(
        {"minmax": 9.5, "johnson_soft": 6.75, "johnson": 6.5}, rel=REL
    )


def test_search_off_takes_the_first_family_without_simulating() -> None:
    problem = two_devices()
    plan = make_policy("pacs", {"candidates": ["minmax", "johnson"], "search": False}).plan(problem)
    assert plan.notes["chosen_radio_plan"] == "minmax"
    assert plan.radio_phases == (RadioPhase({"A": 0.25, "B": 0.75}),)
    assert plan.notes["planning_makespan_s"] == {}
    assert built(problem) == 0


@pytest.mark.parametrize(
    ("candidates", "chosen"),
    [(["minmax", "johnson"], "minmax"), (["johnson", "minmax"], "johnson")],
)
def test_ties_go_to_the_earlier_candidate(candidates: list[str], chosen: str) -> None:
    # Tiny encoders on 2 cores, free NoC: every plan ends at 4 (last upload) + 0.5 + 0.5.
    # johnson: B in at 4, B.enc [4, 4.5], fuse [4.5, 5]; minmax: both in at 4, both
    # encoders [4, 4.5] side by side, fuse [4.5, 5].
    problem = two_devices(enc_a=0.5, enc_b=0.5, cores=2)
    plan = make_policy("pacs", {"candidates": candidates}).plan(problem)
    assert plan.notes["planning_makespan_s"] == {"minmax": 5.0, "johnson": 5.0}
    assert plan.notes["chosen_radio_plan"] == chosen


def test_planning_never_builds_the_real_network() -> None:
    problem = two_devices()
    with pytest.raises(AssertionError, match="real run's network"):
        problem.make_network()  # the trap is armed
    Pacs().plan(problem)  # would raise if it touched problem.network
    assert built(problem) == 3


def test_pacs_beats_rtfs_on_the_hand_problem() -> None:
    problem = two_devices()
    rtfs = Rtfs().plan(problem)
    assert rtfs.radio_phases[0].shares == pytest.approx({"A": 0.25, "B": 0.75}, rel=REL)
    assert rtfs.compute_release == "after_all_uploads"
    assert Evaluator(problem).makespan(rtfs) == pytest.approx(9.5, rel=REL)
    pacs = Pacs().plan(problem)
    assert Evaluator(problem).makespan(pacs) == pytest.approx(6.5, rel=REL)


# ---- on the OFDM surrogate of small scenarios -----------------------------------------
def _scenario(seed: int, payloads: list[int], chunks: list[int], rbs: int) -> dict[str, Any]:
    devices = [
        {
            "name": f"d{k}",
            "modality": "vec",
            "distance_m": 10.0 + 15.0 * k,
            "payload": {"bytes": p},
            "chunks": c,
        }
        for k, (p, c) in enumerate(zip(payloads, chunks, strict=True))
    ]
    encoders = {
        f"d{k}": {"name": "mlp", "params": {"in_features": 256, "rows": 4 * (k + 1)}}
        for k in range(len(payloads))
    }
    return scenario_dict(
        seed=seed,
        devices=devices,
        network={"backend": "ofdm", "ofdm": {"num_rbs": rbs, "fading": "rayleigh"}},
        model={"encoders": encoders},
    )


@pytest.mark.parametrize(
    ("seed", "payloads", "chunks", "rbs"),
    [
        (1, [20_000, 60_000], [2, 1], 10),
        (2, [5_000, 40_000, 15_000], [1, 3, 2], 6),
        (3, [80_000, 2_000], [4, 1], 20),
        (4, [10_000, 10_000, 10_000, 10_000], [1, 2, 1, 2], 8),
    ],
)
def test_pacs_is_no_worse_than_rtfs_on_the_planning_surrogate(
    tmp_path: Path, seed: int, payloads: list[int], chunks: list[int], rbs: int
) -> None:
    problem = assemble(
        Scenario.model_validate(_scenario(seed, payloads, chunks, rbs)), tmp_path / "s.yaml"
    )
    assert problem.planning_network.seed != problem.network.seed
    plan = Pacs().plan(problem)
    spans = plan.notes["planning_makespan_s"]
    chosen = plan.notes["chosen_radio_plan"]
    assert spans[chosen] == min(spans.values())
    oracle = Evaluator(problem)
    assert oracle.makespan(plan) == spans[chosen]  # deterministic, same surrogate
    assert spans[chosen] <= oracle.makespan(Rtfs().plan(problem))
