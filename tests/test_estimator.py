"""The estimator service (real process, real sockets), the estimate command, Timeloop."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from owin_cosim.accel.analytic import AnalyticCostModel
from owin_cosim.accel.cache import CachedCostModel, CostCache
from owin_cosim.accel.loopnest.backend import LoopNestCostModel
from owin_cosim.accel.registry import backend_options, make_cost_model
from owin_cosim.accel.service.client import EstimatorError, RemoteCostModel
from owin_cosim.accel.spec import load_chip_spec
from owin_cosim.accel.timeloop.backend import TimeloopCostModel, timeloop_available
from owin_cosim.accel.timeloop.formats import read_mapping
from owin_cosim.cli import app
from owin_cosim.errors import BackendUnavailableError
from owin_cosim.scenario.assemble import assemble
from owin_cosim.scenario.schema import Scenario
from owin_cosim.workload.graph import conv2d, matmul
from tests.conftest import (
    SPECS,
    estimator_process,
    free_port,
    scenario_dict,
    timeloop_reference,
)

REF = timeloop_reference()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[str]:
    with estimator_process(tmp_path / "svc.sqlite") as endpoint:
        yield endpoint


def test_round_trip_matches_local(service: str) -> None:
    spec = yaml.safe_load((SPECS / "mc8.yaml").read_text())
    remote = RemoteCostModel(service, spec, timeout_s=30)
    layers = [
        conv2d("a", C=32, M=64, P=28, Q=28),
        matmul("b", rows=8, in_features=512, out_features=256),
    ]
    local = AnalyticCostModel(load_chip_spec(SPECS / "mc8.yaml"))
    got = remote.layer_costs(layers)
    assert got == [local.layer_cost(x) for x in layers]
    assert remote.backend_calls == 2
    remote.layer_costs(layers)
    assert remote.backend_calls == 2  # the service's cache answered
    remote.close()


def test_scenario_through_the_estimator(service: str, tmp_path: Path) -> None:
    base = scenario_dict()
    local = assemble(Scenario.model_validate(base), tmp_path / "s.yaml")
    remote_cfg = {**base, "accelerator": {**base["accelerator"], "estimator": service}}
    remote = assemble(Scenario.model_validate(remote_cfg), tmp_path / "s.yaml")
    assert list(remote.dag.duration_s) == list(local.dag.duration_s)


def test_silent_estimator_times_out() -> None:
    remote = RemoteCostModel(f"tcp://127.0.0.1:{free_port()}", {}, timeout_s=1.0)
    t = time.monotonic()
    with pytest.raises(EstimatorError, match="did not answer within 1 s"):
        remote.layer_cost(conv2d("a", C=3, M=8, P=8, Q=8))
    assert time.monotonic() - t < 3
    remote.close()


def test_absent_service_fails_fast_even_with_a_long_batch_timeout() -> None:
    remote = RemoteCostModel(
        f"tcp://127.0.0.1:{free_port()}", {}, timeout_s=600, connect_timeout_s=1.0
    )
    t = time.monotonic()
    with pytest.raises(EstimatorError, match="within 1 s is it running there"):
        remote.layer_cost(conv2d("a", C=3, M=8, P=8, Q=8))
    assert time.monotonic() - t < 3
    remote.close()


def test_bad_query_gets_an_error_not_a_dead_service(service: str) -> None:
    remote = RemoteCostModel(service, {"chip": {"cores": -1}}, timeout_s=10)
    with pytest.raises(EstimatorError, match="chip"):
        remote.layer_cost(conv2d("a", C=3, M=8, P=8, Q=8))
    good = RemoteCostModel(service, yaml.safe_load((SPECS / "mc4.yaml").read_text()))
    assert good.layer_cost(conv2d("a", C=3, M=8, P=8, Q=8)).cycles > 0
    for r in (remote, good):
        r.close()


def test_estimate_command_on_a_multicore_spec() -> None:
    prob = REF / "v3" / "cases" / "simple_weight_stationary__AlexNet_layer2" / "prob.yaml"
    res = CliRunner().invoke(
        app, ["estimate", "--arch", str(SPECS / "mc4.yaml"), "--problem", str(prob), "--json"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert {"cycles", "energy_pJ", "utilization"} <= set(data)
    assert data["cycles"] >= 447897600 // 256


@pytest.mark.skipif(timeloop_available(), reason="Timeloop is installed here")
def test_timeloop_missing_is_a_clear_error() -> None:
    with pytest.raises(BackendUnavailableError, match="container image"):
        TimeloopCostModel([Path("arch.yaml")])
    case = REF / "v3" / "cases" / "simple_weight_stationary__AlexNet_layer2"
    arch = REF / "v3" / "arch" / "simple_weight_stationary" / "inputs" / "arch.yaml"
    res = CliRunner().invoke(
        app,
        [
            "estimate",
            "--arch",
            str(arch),
            "--problem",
            str(case / "prob.yaml"),
            "--backend",
            "timeloop",
        ],
    )
    assert res.exit_code == 2 and "Timeloop is not installed" in res.output


def test_estimate_command_evaluates_a_given_mapping() -> None:
    case = REF / "v3" / "cases" / "eyeriss_like__AlexNet_layer2"
    arch = REF / "v3" / "arch" / "eyeriss_like" / "inputs" / "arch.yaml"
    res = CliRunner().invoke(
        app,
        [
            "estimate",
            "--arch",
            str(arch),
            "--problem",
            str(case / "prob.yaml"),
            "--mapping",
            str(case / "timeloop-mapper.map.yaml"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    ref = json.loads((case / "summary.json").read_text())["row"]
    assert data["cycles"] == ref["cycles"]
    assert data["energy_pJ"] == pytest.approx(ref["energy_pJ"], rel=0.10)
    assert set(data["levels"]) >= {"DRAM", "shared_glb"}


def test_loopnest_through_the_estimator_matches_local(service: str) -> None:
    spec = yaml.safe_load((SPECS / "mc4.yaml").read_text())
    options = backend_options("loopnest", mapper_evaluations=40, mapper_seed=2)
    remote = RemoteCostModel(service, spec, backend="loopnest", options=options, timeout_s=60)
    layers = [
        conv2d("a", C=16, M=32, P=14, Q=14),
        matmul("b", rows=8, in_features=64, out_features=32),
    ]
    local = LoopNestCostModel(load_chip_spec(SPECS / "mc4.yaml"), max_evaluations=40, seed=2)
    assert remote.layer_costs(layers) == [local.layer_cost(x) for x in layers]
    remote.close()


@pytest.mark.skipif(timeloop_available(), reason="Timeloop is installed here")
def test_estimator_without_timeloop_says_so(service: str) -> None:
    spec = yaml.safe_load((SPECS / "mc4.yaml").read_text())
    options = {"latency_scale": 1.0, "timeloop_arch": {"arch.yaml": "architecture: {}"}}
    remote = RemoteCostModel(service, spec, backend="timeloop", options=options, timeout_s=30)
    with pytest.raises(EstimatorError, match="Timeloop is not installed"):
        remote.layer_cost(conv2d("a", C=3, M=8, P=8, Q=8))
    remote.close()


_FAKE_MAPPER = """#!/bin/sh
# Stands in for timeloop-mapper: checks its inputs are there, answers a real stats file.
for f in "$@"; do test -f "$f" || { echo "missing $f" >&2; exit 3; }; done
cp "{stats}" timeloop-mapper.stats.txt
"""


def test_timeloop_backend_wiring_with_a_stand_in_mapper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The subprocess, file and parsing path of the Timeloop backend, on a real stats file.

    ``timeloop-mapper`` here is a shell stand-in that returns a recorded
    ``timeloop-model`` output; what is checked is our side: inputs written, the stats
    parsed into cycles and energy, the cache keyed and reused.
    """
    case = REF / "v3" / "cases" / "simple_weight_stationary__AlexNet_layer2"
    stats = case / "model" / "timeloop-model.stats.txt"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("timeloop-mapper", "timeloop-model"):
        exe = bin_dir / name
        exe.write_text(_FAKE_MAPPER.replace("{stats}", str(stats)))
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("OWIN_COSIM_COST_CACHE", str(tmp_path / "c.sqlite"))
    assert timeloop_available()
    arch = REF / "v3" / "arch" / "simple_weight_stationary" / "inputs"
    files = [arch / "arch.yaml", *sorted((arch / "components").glob("*.yaml"))]
    chip = load_chip_spec(SPECS / "mc4.yaml")
    model = make_cost_model(
        chip, "d", "timeloop", backend_options("timeloop"), cache=CostCache(), timeloop_arch=files
    )
    layer = conv2d("l2", C=96, M=256, P=27, Q=27, R=5, S=5)
    cost = model.layer_cost(layer)
    ref = json.loads((case / "summary.json").read_text())["row"]
    assert cost.cycles == ref["cycles"]
    assert cost.energy_pJ == pytest.approx(ref["energy_pJ"], rel=1e-3)
    assert cost.seconds == pytest.approx(ref["cycles"] / chip.clock_hz)
    again = make_cost_model(
        chip, "d", "timeloop", backend_options("timeloop"), cache=CostCache(), timeloop_arch=files
    )
    assert again.layer_cost(layer) == cost
    assert isinstance(again, CachedCostModel) and again.calls == 0


def test_estimate_search_writes_a_mapping_that_evaluates_the_same(tmp_path: Path) -> None:
    case = REF / "v3" / "cases" / "simple_weight_stationary__AlexNet_layer3"
    arch = REF / "v3" / "arch" / "simple_weight_stationary" / "inputs" / "arch.yaml"
    out = tmp_path / "found.map.yaml"
    base = ["estimate", "--arch", str(arch), "--problem", str(case / "prob.yaml"), "--json"]
    res = CliRunner().invoke(app, [*base, "--evaluations", "150", "--write-mapping", str(out)])
    assert res.exit_code == 0, res.output
    searched = json.loads(res.output)
    assert "searched mapping" in searched["mode"]
    spatial = [d for d in read_mapping(out) if d.type == "spatial"]
    assert spatial and all(d.split is not None for d in spatial)
    again = CliRunner().invoke(app, [*base, "--mapping", str(out)])
    assert again.exit_code == 0, again.output
    given = json.loads(again.output)
    assert (given["cycles"], given["energy_pJ"]) == (searched["cycles"], searched["energy_pJ"])
    bad = CliRunner().invoke(app, [*base, "--mapping", str(out), "--write-mapping", str(out)])
    assert bad.exit_code == 2 and "--write-mapping" in bad.output


@pytest.mark.parametrize(
    "case", ["v4/cases/simba_like__AlexNet_layer3", "v3/cases/simba_like__AlexNet_layer3"]
)
def test_estimate_search_is_the_benchmarks_search(case: str) -> None:
    """``estimate`` without ``--mapping`` searches under the case's own constraints and
    objective, as ``search_case`` (``benchmarks/fidelity.py``) does: same seed and budget,
    same mapping, bit for bit (v4: everything in parsed-processed-input.yaml; v3:
    constraints and mapper.yaml beside arch.yaml)."""
    from owin_cosim.accel.loopnest.mapper import search_case
    from owin_cosim.accel.timeloop.formats import mapping_to_doc

    folder = REF / case
    if case.startswith("v4"):
        arch = problem = folder / "parsed-processed-input.yaml"
    else:
        arch = REF / "v3/arch/simba_like/inputs/arch.yaml"
        problem = folder / "prob.yaml"
    budget, seed = 300, 4
    res = CliRunner().invoke(
        app,
        [
            "estimate",
            "--arch",
            str(arch),
            "--problem",
            str(problem),
            "--evaluations",
            str(budget),
            "--seed",
            str(seed),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    ours = json.loads(res.stdout)
    bench, row = search_case(folder, seed=seed, max_evaluations=budget)
    assert (ours["cycles"], ours["energy_pJ"]) == (bench.result.cycles, bench.result.energy_pJ)
    assert ours["mapping"] == mapping_to_doc(bench.mapping)["mapping"]
    assert f"objective {', '.join(row['search_metrics'])}" in ours["mode"]


def test_estimate_search_reports_progress() -> None:
    from owin_cosim.accel.estimate import estimate_layer

    case = REF / "v4/cases/simba_like__AlexNet_layer3"
    seen: list[tuple[int, int]] = []
    out = estimate_layer(
        case / "parsed-processed-input.yaml",
        case / "parsed-processed-input.yaml",
        evaluations=40,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(i, 40) for i in range(1, 41)]
    assert "(40 evaluations, objective edp)" in out["mode"]
