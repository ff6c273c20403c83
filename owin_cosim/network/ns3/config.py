"""``network.ns3`` of a scenario: which ns-3 scenario, its parameters, the worker options.

Plain pydantic, importable without ns-3 or zmq (the scenario schema reads it).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Ns3Config"]


class Ns3Config(BaseModel):
    """``network.ns3`` in a scenario."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: ``wifi-ax-uplink`` or ``lte-uplink`` (see ``ns3_scenarios/README.md``).
    scenario: str = "wifi-ax-uplink"
    #: The scenario's parameters (validated by the scenario's own schema).
    params: dict[str, Any] = Field(default_factory=dict)
    #: Connect to a worker already listening here (``tcp://HOST:PORT``) instead of
    #: starting one.
    endpoint: str | None = None
    #: A CURVE key directory (``owin-cosim keys DIR``, relative to the scenario file):
    #: talk to ``endpoint`` encrypted and authenticated.
    keys: str | None = Field(None, min_length=1, max_length=4096)
    #: Longest silence from a busy worker before it counts as stuck.
    heartbeat_timeout_s: float = Field(5.0, gt=0, le=3600)
    #: Longest wait for a worker the coordinator starts to answer ``hello``, and for
    #: any worker to build the scenario (a stopped one: ``heartbeat_timeout_s``).
    startup_timeout_s: float = Field(120.0, gt=0, le=86400)
    #: Longest wait for the worker at ``endpoint`` to accept a connection and answer
    #: ``hello`` (it may be restarting): then "nothing listens" or "not a worker".
    connect_timeout_s: float = Field(8.0, gt=0, le=86400)
    #: What PACS's planning simulations run on: the analytic ``ofdm`` surrogate (fast)
    #: or ``ns3`` itself (one worker per candidate).
    planning: str = Field("ofdm", pattern="^(ofdm|ns3)$")
