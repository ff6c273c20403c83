"""The ``loopnest`` cost backend: loop-nest model + mapping search on a chip spec's core."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from owin_cosim.accel.analytic import AnalyticCostModel
from owin_cosim.accel.loopnest.backend import LoopNestCostModel
from owin_cosim.accel.loopnest.nest import evaluate
from owin_cosim.accel.problem import cnn_layer_instance
from owin_cosim.accel.spec import load_chip_spec
from owin_cosim.scenario.assemble import assemble
from owin_cosim.scenario.schema import load_scenario
from owin_cosim.workload.graph import Layer, conv2d, depthwise2d, eltwise, matmul, pool2d
from owin_cosim.workload.zoo import build_multimodal
from tests.conftest import SPECS, scenario_dict, write_scenario

MC4 = load_chip_spec(SPECS / "mc4.yaml")


def test_same_layer_same_cost_bit_for_bit() -> None:
    layer = conv2d("c", C=64, M=128, P=14, Q=14, R=3, S=3)
    a = LoopNestCostModel(MC4, max_evaluations=120, seed=5).layer_cost(layer)
    b = LoopNestCostModel(MC4, max_evaluations=120, seed=5).layer_cost(layer)
    assert a == b


def test_mapping_uses_the_mesh_and_fits_every_buffer() -> None:
    model = LoopNestCostModel(MC4, max_evaluations=200)
    layer = conv2d("c", C=64, M=64, P=28, Q=28, R=3, S=3)
    cost = model.layer_cost(layer)
    mapping = model.mapping(layer)
    spatial = next(d for d in mapping if d.type == "spatial" and d.target == "glb")
    assert math.prod(spatial.factors.values()) <= MC4.core.num_pes
    assert cost.cycles >= layer.macs // MC4.core.num_pes
    assert cost.utilization >= 0.85  # the spatial templates find a (nearly) full mesh
    r = evaluate(model.levels, model.compute, cnn_layer_instance(layer), mapping)
    assert (r.cycles, r.energy_pJ) == (cost.cycles, cost.energy_pJ)
    for lvl in model.levels:
        if lvl.size_words is not None:
            assert sum(d["tile"] for d in r.per_level[lvl.name].values()) <= lvl.size_words


@pytest.mark.parametrize(
    "layer",  # channel-wise layers are priced with their channels folded into N
    [
        depthwise2d("dw", C=32, P=14, Q=14, R=3),
        pool2d("pool", C=16, P=7, Q=7, R=2, stride=2),
        eltwise("add", C=8, P=14, Q=14),
        matmul("fc", rows=4, in_features=256, out_features=64),
    ],
)
def test_operation_count_is_exact(layer: Layer) -> None:
    model = LoopNestCostModel(MC4, max_evaluations=60)
    cost = model.layer_cost(layer)
    r = evaluate(model.levels, model.compute, cnn_layer_instance(layer), model.mapping(layer))
    assert r.computes == cost.macs == layer.macs
    assert 0 < cost.utilization <= 1


def test_agrees_with_the_analytic_model_on_resnet18() -> None:
    """Two independent models of the same core: total cycles within 30 %."""
    graph = build_multimodal("x", {"camera": ("resnet18", {})})
    analytic = AnalyticCostModel(MC4)
    nest = LoopNestCostModel(MC4)  # default budget
    a = sum(analytic.layer_cost(x).cycles for x in graph.layers())
    n = sum(nest.layer_cost(x).cycles for x in graph.layers())
    assert sum(x.macs for x in graph.layers()) / MC4.core.num_pes <= n
    assert 0.8 <= n / a <= 1.3, n / a


def test_scenario_backend_cached_and_warm_rerun_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OWIN_COSIM_COST_CACHE", str(tmp_path / "c.sqlite"))
    data = scenario_dict()
    data["accelerator"] = {
        **data["accelerator"],
        "cost_backend": "loopnest",
        "mapper": {"evaluations": 60, "seed": 3},
    }
    path = write_scenario(tmp_path / "s.yaml", data)
    s = load_scenario(path)
    cold, warm = assemble(s, path), assemble(s, path)
    assert cold.cost.backend == "loopnest" and cold.cost.calls > 0
    assert warm.cost.calls == 0 and warm.cost.hits == cold.cost.calls + cold.cost.hits
    assert list(cold.dag.duration_s) == list(warm.dag.duration_s)
    # another mapper budget is another cost: not served from the same cache entries
    data["accelerator"]["mapper"]["evaluations"] = 61
    other = assemble(load_scenario(write_scenario(tmp_path / "t.yaml", data)), tmp_path / "t.yaml")
    assert other.cost.calls > 0


def test_costing_reports_progress(tiny_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    problem = assemble(load_scenario(tiny_path), tiny_path, lambda d, t: seen.append((d, t)))
    n = problem.cost.calls + problem.cost.hits  # the distinct shapes costed
    assert seen[-1] == (n, n) and seen[0][0] >= 1 and n >= 1
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
