"""The multi-core chip model: DRAM shared by contention, layers split across cores,
heterogeneous core types, fixed splits in plans, and the lower bound that covers them."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from owin_cosim.accel.analytic import AnalyticCostModel
from owin_cosim.accel.spec import load_chip_spec
from owin_cosim.errors import ConfigError
from owin_cosim.policies import make_policy
from owin_cosim.results.records import RunResult
from owin_cosim.scenario.assemble import load_problem
from owin_cosim.sim.coordinator import execute
from owin_cosim.sim.dram import DramArbiter, max_min_fair
from owin_cosim.system.lower_bound import lower_bound
from owin_cosim.system.options import (
    CoreTypeInfo,
    ExecOption,
    PartCost,
    cost_options,
    split_layer,
)
from owin_cosim.system.plan import Plan
from owin_cosim.system.plan_file import read_plan
from owin_cosim.system.problem import Problem
from owin_cosim.workload.graph import Layer, OpKind, conv2d, matmul
from tests.conftest import SPECS, scenario_dict, write_scenario
from tests.test_coordinator import (
    L,
    ScriptedNetwork,
    device,
    line_noc,
    make_dag,
    make_problem,
    simple_plan,
)


def part(compute_s: float, dram_s: float = 0.0, macs: int = 1) -> PartCost:
    return PartCost(compute_s, dram_s, dram_s * 1e3, 1, 1.0, macs, 0.5)


def typed_problem(
    layers: Sequence[L],
    options: Sequence[tuple[ExecOption, ...]],
    types: Sequence[CoreTypeInfo],
    cores: int,
) -> Problem:
    """A hand-built problem whose layers have the given options on the given types."""
    base = make_problem(layers, [device("a")], line_noc(cores))
    base.dag = dataclasses.replace(
        make_dag(layers),
        duration_s=np.array([min(o.alone_s for o in opts) for opts in options]),
        options=list(options),
    )
    base.core_types = tuple(types)
    return base


def one_type(cores: int) -> CoreTypeInfo:
    return CoreTypeInfo("core", cores, None, tuple(range(cores)), "DRAM", 1.0, 1e9)


def run(problem: Problem, plan: Plan | None = None) -> RunResult:
    return execute(problem, plan or simple_plan(problem), ScriptedNetwork({("a", 0): 0.0}))


# ---- the DRAM fluid model --------------------------------------------------------------
def test_max_min_fair_gives_small_demands_what_they_ask_and_splits_the_rest() -> None:
    assert max_min_fair([0.1, 2.0, 2.0]) == [0.1, 0.45, 0.45]
    assert max_min_fair([0.2, 0.3]) == [0.2, 0.3]  # both fit: nobody is held back
    assert sum(max_min_fair([5.0, 1.0, 0.5, math.inf])) == pytest.approx(1.0)


def test_a_flow_that_ends_speeds_up_the_others() -> None:
    arb = DramArbiter()
    arb.add("a", 0.0, 1.0, 0.0)  # pure DRAM: 1 s alone
    arb.add("b", 0.0, 3.0, 0.0)  # 3 s alone
    assert arb.finish_s("a") == 2.0  # half the bandwidth each
    arb.remove("a", 2.0)  # b moved 1 s worth of its 3 s; the rest alone
    assert arb.finish_s("b") == pytest.approx(4.0)


def test_a_layer_alone_on_the_chip_gets_the_whole_dram_bandwidth() -> None:
    """A fully connected layer streams its weights once: hand-computed from the spec."""
    chip = load_chip_spec(SPECS / "mc4.yaml")
    fc = matmul("fc", rows=1, in_features=4096, out_features=4096)
    cost = AnalyticCostModel(chip).layer_cost(fc)
    words = fc.weight_elems + fc.input_elems + fc.output_elems
    alone_s = words * 2 / 25.6e9  # 16-bit words through 25.6 GB/s
    assert cost.bound_by == "DRAM"
    assert cost.seconds == pytest.approx(alone_s, rel=1e-3)
    info = CoreTypeInfo(
        "core", 4, None, (0, 1, 2, 3), "DRAM", chip.core.dram.read_bw_words_per_cycle, 1e9
    )
    (opts,) = cost_options([fc], [AnalyticCostModel(chip)], [info], 2, max_split=1)
    problem = typed_problem([L("fc", 0.0)], [opts], [info], 4)
    (rec,) = run(problem).layers
    assert rec.end_s - rec.start_s == pytest.approx(alone_s, rel=1e-3)


def test_two_dram_bound_layers_started_together_each_take_twice_as_long() -> None:
    alone = ExecOption(0, "-", (part(0.5, 1.0),))  # DRAM-bound: 1 s alone
    problem = typed_problem([L("x", 1.0), L("y", 1.0)], [(alone,), (alone,)], [one_type(2)], 2)
    result = run(problem)
    spans = {r.layer: (r.start_s, r.end_s) for r in result.layers}
    assert spans == {"x": (0.0, 2.0), "y": (0.0, 2.0)}
    assert max(share for _, share in result.dram_share) == pytest.approx(1.0)
    # Compute-bound layers do not slow each other down.
    light = ExecOption(0, "-", (part(1.0, 0.3),))
    problem = typed_problem([L("x", 1.0), L("y", 1.0)], [(light,), (light,)], [one_type(2)], 2)
    assert [r.end_s for r in run(problem).layers] == [1.0, 1.0]


def test_the_lower_bound_counts_dram_time_and_core_seconds() -> None:
    alone = ExecOption(0, "-", (part(0.5, 1.0),))
    problem = typed_problem([L("x", 1.0), L("y", 1.0)], [(alone,), (alone,)], [one_type(2)], 2)
    lb = lower_bound(problem)
    assert lb.dram_s == 2.0 and lb.critical_path_s == 1.0 and lb.work_s == 1.0
    assert run(problem).makespan_s >= lb.value


# ---- splits ---------------------------------------------------------------------------
def test_a_split_layers_parts_sum_to_its_macs() -> None:
    for layer, ways in [
        (conv2d("c", C=64, M=100, P=28, Q=28, R=3), 4),
        (conv2d("c", C=64, M=2, P=28, Q=28, R=3), 4),  # M too small: along P
        (Layer("dw", OpKind.DEPTHWISE, R=3, S=3, P=14, Q=14, C=96), 8),
        (Layer("pool", OpKind.POOL, R=2, S=2, P=7, Q=7, C=3), 2),
    ]:
        dim, parts = split_layer(layer, ways)
        assert len(parts) == ways
        assert sum(p.macs for p in parts) == layer.macs, (layer.name, dim)
    assert split_layer(conv2d("c", C=8, M=64, P=4, Q=4), 4)[0] == "M"
    assert split_layer(conv2d("c", C=8, M=2, P=4, Q=4), 4)[0] == "P"
    with pytest.raises(ValueError):
        split_layer(conv2d("c", C=8, M=2, P=2, Q=4), 4)


def test_a_split_layer_runs_on_its_group_and_its_output_is_gathered_over_the_noc() -> None:
    # "big" runs alone in 4 s or split over 2 cores in 2 s; "next" depends on it.
    split = ExecOption(0, "M", (part(2.0), part(2.0)))
    layers = [L("big", 4.0, out_bytes=8.0), L("next", 1.0, preds=(0,))]
    options = [(ExecOption(0, "-", (part(4.0),)), split), (ExecOption(0, "-", (part(1.0),)),)]
    problem = typed_problem(layers, options, [one_type(2)], 2)
    result = run(problem)
    rec = {r.layer: r for r in result.layers}
    assert rec["big"].cores == (0, 1) and rec["big"].split == "M"
    assert rec["big"].end_s == 2.0
    # next on core 0 pulls core 1's half (4 B at 1 B/s plus one 0.5 s hop).
    assert rec["next"].cores == (0,)
    assert rec["next"].start_s == pytest.approx(2.0 + 4.0 + 0.5)
    assert rec["next"].noc_energy_pJ == pytest.approx(4.0 * 1 * 1.0)
    assert result.core_utilization()[1] == pytest.approx(2.0 / result.makespan_s)


def test_a_plan_can_fix_a_split_and_bad_groups_are_errors() -> None:
    split = ExecOption(0, "M", (part(2.0), part(2.0)))
    options = [(ExecOption(0, "-", (part(4.0),)), split)]
    problem = typed_problem([L("big", 4.0)], options, [one_type(3)], 3)
    base = simple_plan(problem)
    fixed = Plan(
        base.policy, base.radio_phases, base.chunk_order, "on_arrival", placement={"big": [1, 2]}
    )
    (rec,) = run(problem, fixed).layers
    assert rec.cores == (1, 2)
    one = Plan(base.policy, base.radio_phases, base.chunk_order, "on_arrival", placement={"big": 2})
    (rec,) = run(problem, one).layers
    assert rec.cores == (2,) and rec.end_s == 4.0
    bad = Plan(
        base.policy, base.radio_phases, base.chunk_order, "on_arrival", placement={"big": [0, 1, 2]}
    )
    with pytest.raises(ConfigError, match=r"placement.big: 3 core\(s\) given"):
        run(problem, bad)
    twice = Plan(
        base.policy, base.radio_phases, base.chunk_order, "on_arrival", placement={"big": [1, 1]}
    )
    with pytest.raises(ConfigError, match="distinct"):
        run(problem, twice)


# ---- heterogeneous cores --------------------------------------------------------------
def test_dispatch_puts_an_elementwise_layer_on_the_vector_core_when_that_is_faster() -> None:
    big = CoreTypeInfo("big", 1, None, (0,), "DRAM", 1.0, 1e9)
    vec = CoreTypeInfo("vector", 1, frozenset({"eltwise", "pool"}), (1,), "DRAM", 1.0, 1e9)
    options = [
        (ExecOption(0, "-", (part(3.0),)),),  # conv: big only
        (ExecOption(0, "-", (part(2.0),)), ExecOption(1, "-", (part(0.5),))),  # eltwise
    ]
    problem = typed_problem([L("conv", 3.0), L("add", 0.5)], options, [big, vec], 2)
    rec = {r.layer: r for r in run(problem).layers}
    assert rec["add"].core_type == "vector" and rec["add"].cores == (1,)
    assert rec["conv"].core_type == "big"
    # The plan may not put the conv on the vector core: no option runs it there.
    base = simple_plan(problem)
    bad = Plan(
        base.policy, base.radio_phases, base.chunk_order, "on_arrival", placement={"conv": 1}
    )
    with pytest.raises(ConfigError, match="no 'vector' core runs this layer"):
        run(problem, bad)


# ---- capacity and scenario-level checks -------------------------------------------------
def _hetero_with(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    doc = yaml.safe_load((SPECS / "hetero_big_little.yaml").read_text())
    edit(doc)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_a_layer_that_fits_no_core_is_an_error_before_the_run(tmp_path: Path) -> None:
    def shrink(doc: dict[str, Any]) -> None:  # every global buffer: 64 words
        for ct in doc["core_types"]:
            core = ct["architecture"]["subtree"][0]["subtree"][0]
            core["local"][0]["attributes"]["memory_depth"] = 16

    spec = _hetero_with(tmp_path, shrink)
    path = write_scenario(tmp_path / "s.yaml", scenario_dict(accelerator={"spec": str(spec)}))
    with pytest.raises(ConfigError, match=r"needs at least \d+ words of on-chip buffer") as info:
        load_problem(path)
    assert info.value.key == "accelerator.spec" and info.value.file == str(path)
    assert "big: 64" in str(info.value) and "little: 64" in str(info.value)


def test_a_layer_kind_no_core_type_runs_is_an_error(tmp_path: Path) -> None:
    def conv_only(doc: dict[str, Any]) -> None:
        for ct in doc["core_types"]:
            ct["runs"] = ["conv"]

    spec = _hetero_with(tmp_path, conv_only)
    path = write_scenario(tmp_path / "s.yaml", scenario_dict(accelerator={"spec": str(spec)}))
    with pytest.raises(ConfigError, match="no core type of 'hetero_big_little' runs matmul"):
        load_problem(path)


def test_hetero_scenario_uses_several_core_types_and_splits(tmp_path: Path) -> None:
    path = write_scenario(
        tmp_path / "s.yaml",
        scenario_dict(accelerator={"spec": str(SPECS / "hetero_big_little.yaml")}),
    )
    _, problem = load_problem(path)
    assert [t.name for t in problem.chip_types] == ["big", "little", "vector"]
    assert problem.chip_types[2].cores == (14, 15)
    result = execute(problem, make_policy("pacs").plan(problem))
    assert {r.core_type for r in result.layers} <= {"big", "little"}  # MLPs: matmul only
    assert result.makespan_s >= result.lower_bound.value
    # Without splits every layer runs on one core.
    over = scenario_dict(
        accelerator={"spec": str(SPECS / "hetero_big_little.yaml"), "max_split_cores": 1}
    )
    _, single = load_problem(write_scenario(tmp_path / "one.yaml", over))
    assert all(o.group == 1 for opts in single.dag.layer_options for o in opts)
    one = execute(single, make_policy("pacs").plan(single))
    assert {len(r.cores) for r in one.layers} == {1}


def test_a_plans_split_replays_to_the_same_makespan(tmp_path: Path) -> None:
    _, problem = load_problem(SPECS.parent / "examples" / "quickstart.yaml")
    first = execute(problem, make_policy("pacs").plan(problem))
    assert any(len(r.cores) > 1 for r in first.layers)  # something was split
    doc = first.plan_file
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    pinned = read_plan(path, problem, pin_executed=True)
    again = execute(problem, pinned)
    assert again.makespan_s == first.makespan_s
    assert [(r.layer, r.cores) for r in again.layers] == [(r.layer, r.cores) for r in first.layers]
