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
