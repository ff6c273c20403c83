"""ns-3 scenarios of owin-cosim, built inside the ns-3 worker process.

Each scenario module exposes ``Params`` (a pydantic model: every parameter declared with
type and default, validated in the coordinator before any process starts) and
``build(ns, owin, params, devices, seed) -> Built``. See ``README.md`` here.
"""

from __future__ import annotations

from ns3_scenarios import lte_uplink, wifi_ax_uplink

__all__ = ["SCENARIOS"]

#: Scenario name (``network.ns3.scenario``) -> module.
SCENARIOS = {"wifi-ax-uplink": wifi_ax_uplink, "lte-uplink": lte_uplink}
