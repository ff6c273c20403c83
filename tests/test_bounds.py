"""The lower bounds hold for every schedule, and the small instances are what they say.

Random valid plans go beyond the policies: any chunk order (also inside a device), any
radio phases, explicit random RB grids, random priorities and placements (splits
included), both compute releases. The bound must never exceed the makespan the
coordinator gives them.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from owin_cosim.api import build_problem
from owin_cosim.policies import make_policy
from owin_cosim.sim.coordinator import execute
from owin_cosim.study.instances import FADINGS, REGIMES, small_instance, small_instances
from owin_cosim.system.lower_bound import lower_bound
from owin_cosim.system.plan import Plan, RadioPhase
from owin_cosim.system.problem import Problem
from tests.conftest import scenario_dict, write_scenario
from tests.test_exact import brute_force, tiny_problem

EPS = 1e-12


def _random_plan(problem: Problem, rng: random.Random) -> Plan:
    """A valid plan with random radio, chunk order, priorities and placements."""
    names = [d.name for d in problem.devices]
    chunks = [(d.name, c) for d in problem.devices for c in range(d.chunks)]
    rng.shuffle(chunks)
    if rng.random() < 0.5:
        phases: tuple[RadioPhase, ...] = (RadioPhase({n: rng.uniform(0.1, 1.0) for n in names}),)
    else:
        order = rng.sample(names, len(names))
        phases = tuple(RadioPhase({n: 1.0}, (n,)) for n in order)
    dag = problem.dag
    placement: dict[str, int | list[int]] = {}
    for v, opts in enumerate(dag.layer_options):
        if rng.random() < 0.5:
            option = rng.choice(opts)
            pool = problem.chip_types[option.core_type].cores
            cores = sorted(rng.sample(list(pool), option.group))
            placement[dag.names[v]] = cores[0] if option.group == 1 else cores
    grid = None
    if rng.random() < 0.5:  # an explicit RB allocation, then the phases
        grid = tuple(
            tuple(rng.choice([*names, None]) for _ in range(problem.radio_units))
            for _ in range(rng.randint(1, 40))
        )
    return Plan(
        "random",
        phases,
        tuple(chunks),
        rng.choice(("on_arrival", "after_all_uploads")),
        placement=placement,
        priorities={name: rng.random() for name in dag.names},
        radio_grid=grid,
    )


def _makespans(problem: Problem, rng: random.Random) -> list[float]:
    plans = [make_policy(p).plan(problem) for p in ("rtfs", "pacs")]
    plans += [_random_plan(problem, rng) for _ in range(2)]
    return [execute(problem, plan).makespan_s for plan in plans]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    regime=st.sampled_from(REGIMES),
    fading=st.sampled_from(FADINGS),
    plan_seed=st.integers(0, 2**32),
)
def test_no_schedule_beats_the_bound(
    tmp_path_factory: pytest.TempPathFactory, seed: int, regime: str, fading: str, plan_seed: int
) -> None:
    inst = small_instance(seed, regime, fading)  # type: ignore[arg-type]
    problem = build_problem(inst.write(tmp_path_factory.mktemp("inst")))
    bound = lower_bound(problem)
    rng = random.Random(plan_seed)
    for makespan in _makespans(problem, rng):
        for name, value in dataclasses.asdict(bound).items():
            assert makespan * (1 + EPS) >= value, (name, value, makespan)


def test_a_permuted_chunk_order_keeps_the_bound(tmp_path: Path) -> None:
    """Chunks sent last-first inside each device: the bound must not assume index order."""
    data = scenario_dict()
    data["devices"][0]["chunks"] = 4
    data["devices"][0]["payload"] = {"bytes": 20_003}  # unequal chunks: 5001, 5001, ...
    problem = build_problem(write_scenario(tmp_path / "s.yaml", data))
    base = make_policy("rtfs").plan(problem)
    backwards = tuple(sorted(base.chunk_order, key=lambda dc: (dc[0], -dc[1])))
    plan = dataclasses.replace(base, chunk_order=backwards, compute_release="on_arrival")
    result = execute(problem, plan)
    assert [c.chunk for c in result.chunks if c.device == "a"] == [3, 2, 1, 0]
    assert result.makespan_s * (1 + EPS) >= lower_bound(problem).value


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"seed": 11, "payload": (700, 700)}, {"fading": "none", "split": False}],
)
def test_the_bound_is_below_the_brute_force_optimum(kwargs: dict[str, object]) -> None:
    """Every RB allocation of every slot and every core assignment (test_exact's brute
    force): the optimum is never below the bound (measured: 0.999, 0.999 and 0.868 of
    it; the last one loses a slot to chunk boundaries the bound does not see)."""
    problem = tiny_problem(**kwargs)  # type: ignore[arg-type]
    optimum = brute_force(problem)
    bound = lower_bound(problem).value
    assert optimum * (1 + EPS) >= bound >= 0.85 * optimum


def test_new_bounds_only_tighten_and_value_is_the_max(tmp_path: Path) -> None:
    problem = build_problem(write_scenario(tmp_path / "s.yaml", scenario_dict()))
    lb = lower_bound(problem)
    parts = dataclasses.asdict(lb)
    assert lb.value == max(parts.values())
    assert set(parts) >= {"radio_s", "critical_path_s", "work_s", "dram_s"}
    # Without fading the even-power sum rate is exact per slot: never looser than radio_s.
    assert lb.sum_rate_s >= lb.radio_s
    assert lb.radio_tail_s >= lb.sum_rate_s
    assert lb.tradeoff_s >= lb.work_s - 1e-15


def test_instances_are_deterministic_and_in_range(tmp_path: Path) -> None:
    insts = small_instances(6, seed=11)
    assert insts == small_instances(6, seed=11)
    assert {(i.regime, i.fading) for i in insts} == {(r, f) for r in REGIMES for f in FADINGS}
    one, two = insts[0].write(tmp_path / "a"), insts[0].write(tmp_path / "b")
    assert one.read_bytes() == two.read_bytes()
    for inst in insts:
        problem = build_problem(inst.write(tmp_path / "all"))
        assert 2 <= len(problem.devices) <= 4
        assert 5 <= len(problem.dag) <= 30
        assert 2 <= problem.num_cores <= 4
        assert 2 <= problem.radio_units <= 8
        slots = problem.radio_bound_s / inst.scenario["network"]["ofdm"]["slot_s"]
        assert 2 <= slots <= 60
        dram = sum(min(o.dram_s for o in opts) for opts in problem.dag.layer_options)
        assert dram < 0.25 * lower_bound(problem).value  # the DRAM does not bind
    with pytest.raises(ValueError, match="regime"):
        small_instance(1, "io", "none")  # type: ignore[arg-type]
