"""The estimator service (real process, real sockets), the estimate command, Timeloop."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from owin_cosim.accel_spec import load_chip_spec
from owin_cosim.analytic_model import AnalyticCostModel
from owin_cosim.assemble import assemble
from owin_cosim.cli import app
from owin_cosim.errors import BackendUnavailableError
from owin_cosim.estimator import EstimatorError, RemoteCostModel
from owin_cosim.scenario import Scenario
from owin_cosim.timeloop_backend import TimeloopCostModel, timeloop_available
from owin_cosim.workload import conv2d, matmul
from tests.conftest import SPECS, scenario_dict

REF = Path(__file__).resolve().parents[2] / "shared" / "timeloop_reference"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def service(tmp_path: Path) -> str:
    endpoint = f"tcp://127.0.0.1:{_port()}"
    env_cache = {"OWIN_COSIM_COST_CACHE": str(tmp_path / "svc.sqlite")}
    import os

    proc = subprocess.Popen(
        [sys.executable, "-m", "owin_cosim.cli", "estimator", "--bind", endpoint],
        env={**os.environ, **env_cache},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    yield endpoint
    if proc.poll() is None:
        try:
            RemoteCostModel(endpoint, {}, timeout_s=5).shutdown_service()
            proc.wait(timeout=10)
        except Exception:
            proc.kill()
            proc.wait()


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
    remote = RemoteCostModel(f"tcp://127.0.0.1:{_port()}", {}, timeout_s=1.0)
    t = time.monotonic()
    with pytest.raises(EstimatorError, match="did not answer within 1 s"):
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


@pytest.mark.skipif(not REF.is_dir(), reason="shared/timeloop_reference absent")
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
    if REF.is_dir():
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


@pytest.mark.skipif(not REF.is_dir(), reason="shared/timeloop_reference absent")
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
