"""The container layout is consistent: compose services, their binds, the example scenario.

No Docker engine runs here; the roles themselves are tested as processes elsewhere.
"""

from __future__ import annotations

from urllib.parse import urlparse

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
    assert '".[ns3]"' in main and "g++" in main and "COPY ns3_scenarios" in main
    timeloop = (REPO / "docker" / "Dockerfile.timeloop").read_text()
    assert "ARG TIMELOOP_IMAGE=timeloopaccelergy/" in timeloop
    assert "FROM ${TIMELOOP_IMAGE}" in timeloop
    assert '"estimator", "--bind"' in timeloop
