"""The exact CP-SAT reference (``owin_cosim.exact``, ``owin-cosim solve``) and plans with
an explicit RB allocation (``radio_grid``).

The brute force here is independent of the model: it enumerates every RB allocation of
every slot (each RB to one device or to none) with its own float arithmetic of the
even power split, keeps the Pareto-best delivery times, and for each of them every
layer's mode (option x cores) and every topological order, timed by its own small
list scheduler (NoC gathers from the documented formula). Instances are tiny: 2
devices, 2 RBs, a few slots, 2 cores (also of two types), 4 layers.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from owin_cosim.api import build_problem, make_policy
from owin_cosim.cli import app
from owin_cosim.errors import BackendUnavailableError, ConfigError
from owin_cosim.exact import Solution, facade, references, solve
from owin_cosim.exact.facade import require_ortools
from owin_cosim.exact.symmetry import ordered_pairs
from owin_cosim.network.base import AdvanceResult, ChunkTx, NetworkBackend, NetworkRef, RadioUse
from owin_cosim.network.ofdm.channel import OfdmChannel
from owin_cosim.network.ofdm.config import OfdmConfig
from owin_cosim.sim.coordinator import execute
from owin_cosim.study.instances import small_instance
from owin_cosim.system.lower_bound import lower_bound
from owin_cosim.system.options import CoreTypeInfo, ExecOption, PartCost
from owin_cosim.system.plan import Plan, RadioPhase
from owin_cosim.system.plan_file import plan_from_json, plan_to_json, read_plan, write_plan
from owin_cosim.system.problem import CompiledDag, CostStats, DeviceSpec, Interconnect, Problem
from tests.conftest import SPECS, scenario_dict, write_scenario

runner = CliRunner()


# ---- tiny hand-built problems on the real OFDM uplink ---------------------------------
def _part(seconds: float) -> PartCost:
    return PartCost(seconds, 0.0, 0.0, 100, 1.0, 1, 0.5)


def _options(seconds: float, split: bool, hetero: bool) -> tuple[ExecOption, ...]:
    one = ExecOption(0, "-", (_part(seconds),))
    if hetero:  # core 0 is big, core 1 little and 2.5x slower; no split across types
        return (one, ExecOption(1, "-", (_part(seconds * 2.5),)))
    if not split:
        return (one,)
    return (one, ExecOption(0, "M", (_part(seconds * 0.6), _part(seconds * 0.6))))


def tiny_problem(
    payload: tuple[int, int] = (900, 500),
    seed: int = 3,
    fading: str = "rayleigh",
    split: bool = True,
    hop_latency_s: float = 20e-6,
    hetero: bool = False,
    distances: tuple[float, float] = (40.0, 80.0),
    slices: tuple[float, float] = (0.4e-3, 0.4e-3),
) -> Problem:
    """Device a (2 chunks) and b (1 chunk); a slice per chunk of a (``slices``: their
    times alone), b's encoder, a fusion."""
    devs = [
        DeviceSpec("a", "vec", distances[0], 0.2, payload[0], 2),
        DeviceSpec("b", "vec", distances[1], 0.2, payload[1], 1),
    ]
    names = ["a/x#0", "a/x#1", "b/y", "fuse"]
    preds: list[list[int]] = [[], [], [], [0, 1, 2]]
    succs: list[list[int]] = [[3], [3], [3], []]
    needs: list[tuple[int, int] | None] = [(0, 0), (0, 1), (1, -1), None]
    dur = [*slices, 0.7e-3, 0.9e-3]
    n = len(names)
    dag = CompiledDag(
        names,
        ["encoder:a", "encoder:a", "encoder:b", "fusion"],
        preds,
        succs,
        np.array(dur),
        np.full(n, 100.0),
        np.ones(n),
        np.full(n, 0.5),
        np.ones(n, dtype=np.int64),
        np.array([4000.0, 4000.0, 8000.0, 100.0]),
        needs,
        [_options(d, split, hetero) for d in dur],
    )
    types = (
        CoreTypeInfo("big", 1, None, (0,), "DRAM", math.inf, math.inf),
        CoreTypeInfo("little", 1, None, (1,), "DRAM", math.inf, math.inf),
    )
    noc = Interconnect(np.array([[0, 1], [1, 0]]), hop_latency_s, 1e9, 1.0)
    cfg = OfdmConfig(num_rbs=2, fading=fading)  # type: ignore[arg-type]
    ups = tuple(d.uplink() for d in devs)
    return Problem(
        "hand",
        seed,
        devs,
        dag,
        noc,
        NetworkRef("ofdm", cfg, ups, seed),
        NetworkRef("ofdm", cfg, ups, seed + 1000),
        np.ones(len(devs)),
        [[0.0] * d.chunks for d in devs],
        0.0,
        CostStats("hand", 0, 0),
        radio_units=2,
        core_types=types if hetero else (),
    )


# ---- the brute force -------------------------------------------------------------------
def _slot_bits(problem: Problem, slots: int) -> list[dict[tuple[int, ...], list[float]]]:
    """Per slot: every RB allocation (owner per RB, -1 none) -> bits sent per device."""
    ref = problem.network
    ch = OfdmChannel(ref.config, ref.devices, ref.seed)
    cfg = ch.config
    k_dev = len(problem.devices)
    out = []
    for s in range(slots):
        gains = ch.gains(s)
        table = {}
        for owners in itertools.product(range(-1, k_dev), repeat=cfg.num_rbs):
            bits = [0.0] * k_dev
            for k in range(k_dev):
                mine = [r for r, o in enumerate(owners) if o == k]
                for r in mine:
                    snr = ch.power_w[k] / len(mine) * gains[k, r] / cfg.noise_w_per_rb
                    bits[k] += cfg.rb_bandwidth_hz * math.log2(1.0 + snr) * cfg.slot_s
            table[owners] = bits
        out.append(table)
    return out


def _dominates(
    x: tuple[tuple[float, ...], tuple[float, ...]], y: tuple[tuple[float, ...], tuple[float, ...]]
) -> bool:
    """State ``x`` (bits sent, delivery times) is at least as good as ``y`` everywhere."""
    return all(a >= b for a, b in zip(x[0], y[0], strict=True)) and all(
        a <= b for a, b in zip(x[1], y[1], strict=True)
    )


def _pareto(
    states: set[tuple[tuple[float, ...], tuple[float, ...]]],
) -> list[tuple[tuple[float, ...], tuple[float, ...]]]:
    return [x for x in states if not any(y != x and _dominates(y, x) for y in states)]


def _delivery_vectors(
    problem: Problem, slots: int, index_order: bool = False
) -> list[tuple[float, ...]]:
    """The Pareto-best delivery times of all chunks over every order of each device's
    chunks (only index order with ``index_order``) and every RB allocation of every slot."""
    found: set[tuple[float, ...]] = set()
    every = [
        [tuple(range(d.chunks))] if index_order else itertools.permutations(range(d.chunks))
        for d in problem.devices
    ]
    for queues in itertools.product(*every):
        found.update(_delivery_vectors_in(problem, slots, queues))
    return [v for v in found if not any(w != v and all(map(float.__le__, w, v)) for w in found)]


def _delivery_vectors_in(
    problem: Problem, slots: int, queues: Sequence[Sequence[int]]
) -> list[tuple[float, ...]]:
    """The same for one order of each device's chunks (``queues[k]``): slot by slot,
    every allocation from every state, dominated states dropped."""
    targets = []
    for d, queue in zip(problem.devices, queues, strict=True):
        sizes = [d.chunk_bytes[c] for c in queue]
        end = {c: float(sum(sizes[: p + 1])) * 8.0 for p, c in enumerate(queue)}
        targets += [end[c] for c in range(d.chunks)]
    owner_of = [k for k, d in enumerate(problem.devices) for _ in range(d.chunks)]
    slot_s = problem.network.config.slot_s
    tables = _slot_bits(problem, slots)
    k_dev = len(problem.devices)
    states = {((0.0,) * k_dev, (math.inf,) * len(targets))}
    finished: set[tuple[float, ...]] = set()
    for s in range(slots):
        grown = set()
        for cum, times in states:
            for bits in tables[s].values():
                new = tuple(c + b for c, b in zip(cum, bits, strict=True))
                nt = tuple(
                    t
                    if t < math.inf or new[owner_of[i]] < targets[i] * (1 - 1e-12)
                    else (s + 1) * slot_s
                    for i, t in enumerate(times)
                )
                if all(t < math.inf for t in nt):
                    finished.add(nt)
                else:
                    grown.add((new, nt))
        states = set(_pareto(grown))
    return [
        v for v in finished if not any(w != v and all(map(float.__le__, w, v)) for w in finished)
    ]


def _modes(problem: Problem, v: int) -> list[tuple[ExecOption, tuple[int, ...]]]:
    pools = [t.cores for t in problem.chip_types]
    return [
        (o, c)
        for o in problem.dag.layer_options[v]
        for c in itertools.combinations(pools[o.core_type], o.group)
    ]


def _noc(
    problem: Problem,
    p_cores: Sequence[int],
    v_opt: ExecOption,
    v_cores: Sequence[int],
    nbytes: float,
) -> float:
    """The documented gather: per source core, bytes / link + hops * latency, in parallel."""
    noc = problem.noc
    fraction = 1.0 if v_opt.split in ("-", "M") else 1.0 / v_opt.group
    share = nbytes * fraction / len(p_cores)
    worst = 0.0
    for s in p_cores:
        for c in v_cores:
            h = int(noc.hops[s, c])
            if h > 0:
                worst = max(worst, share / noc.link_bytes_per_s + h * noc.hop_latency_s)
    return worst


def brute_force(problem: Problem, slots: int = 8, index_order: bool = False) -> float:
    """The optimum over every RB allocation, chunk order, mode and layer order (see the
    module docstring); with ``index_order`` every device sends its chunks in index order."""
    dag = problem.dag
    n = len(dag)
    chunk_index = {}
    i = 0
    for k, d in enumerate(problem.devices):
        for c in range(d.chunks):
            chunk_index[k, c] = i
            i += 1
    orders = [
        order
        for order in itertools.permutations(range(n))
        if all(order.index(p) < order.index(v) for v in range(n) for p in dag.preds[v])
    ]
    mode_lists = [_modes(problem, v) for v in range(n)]
    best = math.inf
    for times in _delivery_vectors(problem, slots, index_order):
        ready = []
        for need in dag.needs:
            if need is None:
                ready.append(0.0)
            else:
                k, c = need
                mine = range(problem.devices[k].chunks) if c == -1 else [c]  # -1: all
                ready.append(max(times[chunk_index[k, j]] for j in mine))
        for choice in itertools.product(*mode_lists):
            for order in orders:
                free = [0.0] * problem.num_cores
                end = [0.0] * n
                for v in order:
                    opt, cores = choice[v]
                    start = max([ready[v]] + [free[j] for j in cores])
                    for p in dag.preds[v]:
                        start = max(
                            start,
                            end[p] + _noc(problem, choice[p][1], opt, cores, dag.out_bytes[p]),
                        )
                    end[v] = start + opt.alone_s
                    for j in cores:
                        free[j] = end[v]
                best = min(best, max(max(end), max(times)))
    return best


# ---- the solver against the brute force ----------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"seed": 11, "payload": (700, 700)},
        {"fading": "none", "split": False, "hop_latency_s": 0.3e-3},
        {"seed": 7, "hetero": True},
        # far devices, moderate SNR: splitting the power over 2 RBs gains little
        {"seed": 2, "distances": (300.0, 450.0), "payload": (300, 160)},
    ],
)
def test_exact_equals_brute_force_and_its_plan_replays(kwargs: Mapping[str, object]) -> None:
    problem = tiny_problem(**kwargs)  # type: ignore[arg-type]
    sol = solve(problem, time_limit_s=20.0)
    assert sol.status == "OPTIMAL"
    optimum = brute_force(problem)
    quantum = 20 * sol.time_unit_s  # durations and NoC times floored to the unit
    assert abs(sol.makespan_s - optimum) <= quantum
    assert sol.bound_s <= optimum + 1e-15
    # the combinatorial bound, as used without a plan from CP-SAT, holds for the model
    assert references.model_lower_bound(problem, sol.time_unit_s) <= sol.model_makespan_s
    assert abs(sol.model_makespan_s - sol.makespan_s) <= quantum
    assert sol.gap <= 1e-5
    # the coordinator, given the solver's grid, placement and core order, agrees
    replay = execute(problem, sol.plan)
    assert replay.makespan_s == sol.makespan_s
    assert sol.plan.radio_grid is not None and sol.plan.core_order is not None
    # no policy beats it on the same realisation
    assert all(ms >= sol.makespan_s - quantum for ms in sol.references.values())


def test_a_device_may_send_its_chunks_in_any_order() -> None:
    """a's second slice is the long one: sending chunk 1 first is better than any plan
    that keeps index order, and the solver finds it (the model once kept index order,
    and the optimizer's plans beat its "optimum")."""
    problem = tiny_problem(payload=(900, 500), slices=(0.05e-3, 1.2e-3), split=False)
    sol = solve(problem, time_limit_s=20.0)
    assert sol.status == "OPTIMAL"
    quantum = 20 * sol.time_unit_s
    optimum = brute_force(problem)
    assert abs(sol.makespan_s - optimum) <= quantum
    assert optimum < brute_force(problem, index_order=True) - 1e-6
    queue_a = [c for dev, c in sol.plan.chunk_order if dev == "a"]
    assert queue_a == [1, 0]
    assert execute(problem, sol.plan).makespan_s == sol.makespan_s


@pytest.mark.parametrize(
    ("kwargs", "pairs"),
    [
        ({}, [(0, 1)]),  # equal chunks, equal slices: a mirror image for every schedule
        ({"slices": (0.05e-3, 1.2e-3)}, []),  # the slices differ
        ({"payload": (901, 500)}, []),  # 451 and 450 bytes
    ],
)
def test_only_interchangeable_chunks_keep_index_order(
    kwargs: Mapping[str, object], pairs: list[tuple[int, int]]
) -> None:
    problem = tiny_problem(**kwargs)  # type: ignore[arg-type]
    assert ordered_pairs(problem, 0) == pairs
    assert ordered_pairs(problem, 1) == []  # one chunk


def test_dram_contention_in_the_replay_makes_the_answer_a_bound() -> None:
    problem = tiny_problem(payload=(300, 200), split=False)
    # every layer DRAM-bound alone (dram 4x compute): two at once share the bandwidth
    heavy = [
        (ExecOption(0, "-", (PartCost(0.1e-3, 0.4e-3, 1e5, 100, 1.0, 1, 0.5),)),)
        for _ in range(len(problem.dag))
    ]
    problem.dag = dataclasses.replace(problem.dag, duration_s=np.full(4, 0.4e-3), options=heavy)
    sol = solve(problem, 20.0)
    assert sol.dram_binds and sol.status == "FEASIBLE"
    assert sol.replay_makespan_s > sol.model_makespan_s >= sol.bound_s
    assert sol.gap > 0 and any(r.startswith("dram") for r in sol.relaxations)
    assert execute(problem, sol.plan).makespan_s == sol.makespan_s
    # never worse than a reference plan: the better one is returned, the bound stands
    assert sol.makespan_s == min(sol.replay_makespan_s, *sol.references.values())
    assert sol.plan_source in ("solver", *sol.references)


def test_no_plan_from_cp_sat_in_time_returns_the_best_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cp_model = require_ortools()
    original = cp_model.CpSolver.solve

    def no_plan(self: Any, model: Any, *args: object) -> Any:
        self.parameters.max_time_in_seconds = 1e-3  # a bound of its own, a little
        original(self, model)
        return cp_model.UNKNOWN  # as when the limit comes before any plan

    monkeypatch.setattr(cp_model.CpSolver, "solve", no_plan)
    problem = tiny_problem(seed=5)
    refs = {name: make_policy(name).plan(problem) for name in ("rtfs", "pacs")}
    sol = solve(problem, 5.0, references=refs)
    assert sol.status == "FEASIBLE" and sol.solver["status"] == "UNKNOWN"
    best = min(sol.references, key=lambda k: (sol.references[k], k))
    assert sol.plan_source == best and sol.makespan_s == sol.references[best]
    assert execute(problem, sol.plan).makespan_s == sol.makespan_s
    assert references.model_lower_bound(problem, sol.time_unit_s) <= sol.bound_s
    assert min(lower_bound(problem).value, sol.makespan_s) <= sol.bound_s <= sol.makespan_s
    assert sol.bound_s > 0
    assert sol.gap == pytest.approx((sol.makespan_s - sol.bound_s) / sol.makespan_s)
    doc = sol.to_json()
    assert {"status", "makespan_s", "bound_s", "gap", "solve_s"} <= set(doc)


def test_solve_is_deterministic_and_its_plan_survives_a_file(tmp_path: Path) -> None:
    problem = tiny_problem(seed=5)
    a, b = solve(problem, 20.0), solve(problem, 20.0)
    assert a.plan == b.plan and a.makespan_s == b.makespan_s and a.bound_s == b.bound_s
    c, d = solve(problem, 20.0, workers=2), solve(problem, 20.0, workers=2)  # interleaved
    assert c.plan == d.plan and c.status == "OPTIMAL" and c.makespan_s == a.makespan_s
    write_plan(tmp_path / "plan.json", a.plan, problem)
    again = read_plan(tmp_path / "plan.json", problem)
    assert again == a.plan
    assert execute(problem, again).makespan_s == a.makespan_s
    doc = a.to_json()
    assert {"status", "makespan_s", "bound_s", "gap", "solve_s"} <= set(doc)
    assert doc["clairvoyant"] is True and isinstance(a, Solution)


def test_solve_refuses_other_backends_and_bad_limits() -> None:
    problem = tiny_problem()
    other = Problem(**{**problem.__dict__, "network": NetworkRef("ns3", None, (), 0)})
    with pytest.raises(ConfigError) as info:
        solve(other, 1.0)
    assert info.value.key == "network.backend" and "network.backend: ofdm" in str(info.value)
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ConfigError) as info:
            solve(problem, bad)
        assert info.value.key == "--time-limit"


def test_a_model_too_large_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(facade, "MAX_RADIO_BOOLEANS", 10)
    with pytest.raises(ConfigError) as info:
        solve(tiny_problem(), 1.0)
    assert info.value.key == "network.ofdm.num_rbs" and "radio booleans" in str(info.value)


def test_missing_ortools_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import ortools.sat.python

    monkeypatch.setitem(sys.modules, "ortools.sat.python.cp_model", None)
    monkeypatch.delattr(ortools.sat.python, "cp_model", raising=False)
    with pytest.raises(BackendUnavailableError, match=r'pip install "\.\[exact\]"'):
        require_ortools()


# ---- plans with a radio grid -----------------------------------------------------------
def _grid_plan(grid: tuple[tuple[str | None, ...], ...]) -> Plan:
    order = (("a", 0), ("a", 1), ("b", 0))
    return Plan("hand", (RadioPhase({"a": 1.0, "b": 1.0}),), order, "on_arrival", radio_grid=grid)


def test_radio_grid_in_plan_files_is_checked() -> None:
    problem = tiny_problem()
    doc = plan_to_json(_grid_plan((("a", "b"), ("a", None))))
    assert doc["radio_grid"] == [["a", "b"], ["a", None]]
    assert plan_from_json(doc, problem).radio_grid == (("a", "b"), ("a", None))
    bad = {**doc, "radio_grid": [["a", "b"], [None, "cam"]]}
    with pytest.raises(ConfigError) as info:
        plan_from_json(bad, problem, "plan.json")
    assert info.value.key == "radio_grid.1.1" and "'cam'" in str(info.value)
    short = {**doc, "radio_grid": [["a"]]}
    with pytest.raises(ConfigError) as info:
        plan_from_json(short, problem, "plan.json")
    assert info.value.key == "radio_grid.0"


def test_the_uplink_follows_the_grid_and_then_the_shares() -> None:
    problem = tiny_problem(fading="none", payload=(900, 500))
    # b alone on both RBs for three slots, then the shares: b is in when its bits are
    grid = (("b", "b"),) * 3
    per_slot = _slot_bits(problem, 1)[0][1, 1][1]
    slot_s = problem.network.config.slot_s
    need = 500 * 8
    expected = math.ceil(need / per_slot - 1e-9) * slot_s
    assert expected <= 3 * slot_s
    result = execute(problem, _grid_plan(grid))
    arrived = {(c.device, c.chunk): c.last_byte_s for c in result.chunks}
    assert arrived["b", 0] == pytest.approx(expected, rel=1e-12)
    assert min(arrived["a", 0], arrived["a", 1]) > expected  # nothing for a until then
    empty = execute(problem, _grid_plan(()))  # an empty grid: the scheduler as without one
    without = execute(problem, _grid_plan(None))  # type: ignore[arg-type]
    assert empty.makespan_s == without.makespan_s


class _NoGrid(NetworkBackend):
    """A backend that keeps the default ``set_allocation`` (as ns-3's)."""

    name = "nogrid"

    @property
    def now_s(self) -> float:
        return 0.0

    def submit(self, chunk: ChunkTx, at_s: float) -> None:
        raise AssertionError("never reached: the grid is refused first")

    def set_shares(self, shares: Mapping[str, float], at_s: float) -> None:
        raise AssertionError("never reached")

    def advance(self, until_s: float) -> AdvanceResult:
        raise AssertionError("never reached")

    def has_backlog(self) -> bool:
        return False

    def radio_usage(self) -> list[RadioUse]:
        return []


def test_a_backend_without_grids_refuses_one() -> None:
    with pytest.raises(ConfigError) as info:
        execute(tiny_problem(), _grid_plan((("a", "b"),)), network=_NoGrid())
    assert info.value.key == "radio_grid" and "network.backend: ofdm" in str(info.value)


# ---- the hint, and no plan from CP-SAT in time ---------------------------------------
def _small(tmp_path: Path, seed: int, regime: str, fading: str) -> Problem:
    inst = small_instance(seed, regime, fading, max_layers=7)  # type: ignore[arg-type]
    return build_problem(inst.write(tmp_path))


@pytest.mark.parametrize("with_policies", [False, True])
def test_the_hint_is_a_feasible_solution(tmp_path: Path, with_policies: bool) -> None:
    # fading-free: interchangeable RBs, whose owners the model takes in order while the
    # uplink hands them out in its own order (the hint used to break that cut)
    problem = _small(tmp_path, 8, "radio", "none")
    plans = {"simultaneous": references.simultaneous_plan(problem)}
    if with_policies:  # as the solve command: RTFS and PACS, the best run hinted
        plans |= {name: make_policy(name).plan(problem) for name in ("rtfs", "pacs")}
    refs, built, unit_s = facade._hinted_model(problem, plans)
    cp_model = require_ortools()
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = 3.0
    solver.parameters.fix_variables_to_their_hinted_value = True
    status = solver.solve(built.model)
    assert solver.status_name(status) in ("OPTIMAL", "FEASIBLE")
    # the hint is the best reference run, in model units (durations floored)
    assert solver.objective_value * unit_s <= min(refs.values()) + 1e-12


# ---- the command -----------------------------------------------------------------------
def _two_core_scenario(tmp_path: Path, **network: object) -> Path:
    spec = (SPECS / "mc4.yaml").read_text(encoding="utf-8")
    spec = spec.replace("\n  cores: 4\n", "\n  cores: 2\n").replace("mesh_y: 2", "mesh_y: 1")
    (tmp_path / "mc2.yaml").write_text(spec, encoding="utf-8")
    d = scenario_dict()
    d["devices"][0]["payload"]["bytes"] = 1200
    d["devices"][1]["payload"]["bytes"] = 900
    d["network"] = network or {"backend": "ofdm", "ofdm": {"num_rbs": 2}}
    d["accelerator"]["spec"] = str(tmp_path / "mc2.yaml")
    for dev in ("a", "b"):
        d["model"]["encoders"][dev]["params"] = {"in_features": 64, "rows": 2}
    return write_scenario(tmp_path / "tiny2.yaml", d)


def test_solve_command_writes_a_solution_and_a_replayable_plan(tmp_path: Path) -> None:
    path = _two_core_scenario(tmp_path)
    out = tmp_path / "solved"
    res = runner.invoke(app, ["solve", str(path), "--time-limit", "20", "--out", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "solution.json").read_text(encoding="utf-8"))
    assert doc["status"] in ("OPTIMAL", "FEASIBLE") and doc["clairvoyant"] is True
    assert doc["bound_s"] <= doc["makespan_s"] == doc["replay_makespan_s"]
    assert all(v >= doc["bound_s"] for v in doc["references"].values())
    assert "replayed by the coordinator" in res.output and "clairvoyant" in res.output
    again = tmp_path / "again"
    res = runner.invoke(
        app, ["run", str(path), "--plan", str(out / "plan.json"), "--out", str(again), "--no-plot"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((again / "summary.json").read_text(encoding="utf-8"))
    assert summary["makespan_s"] == doc["makespan_s"]


@pytest.mark.parametrize("limit", ["0", "-2", "abc", "inf", "nan"])
def test_solve_command_rejects_a_bad_time_limit(tmp_path: Path, limit: str) -> None:
    path = _two_core_scenario(tmp_path)
    res = runner.invoke(app, ["solve", str(path), "--time-limit", limit])
    assert res.exit_code == 2
    assert "--time-limit" in res.output and "seconds > 0" in res.output


def test_solve_command_needs_the_ofdm_backend(tmp_path: Path) -> None:
    ns3 = {"backend": "ns3", "ns3": {"scenario": "lte-uplink"}}
    path = _two_core_scenario(tmp_path, **ns3)
    res = runner.invoke(app, ["solve", str(path), "--time-limit", "5"])
    assert res.exit_code == 2, res.output
    assert "network.backend" in res.output and "network.backend: ofdm" in res.output
