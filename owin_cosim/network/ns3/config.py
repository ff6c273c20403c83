"""``network.ns3`` of a scenario: which ns-3 scenario, its parameters, the worker options.

Plain pydantic, importable without ns-3 or zmq (the scenario schema reads it).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = ["ENDPOINT_PATTERN", "Endpoint", "Ns3Config", "check_endpoint"]

#: A ZeroMQ endpoint a scenario may name: ``tcp://HOST:PORT`` (port 1..65535; a host
#: name, IPv4 address or bracketed IPv6 address) or ``ipc://PATH``. Checked here, in the
#: schema, so that a bad string is a ConfigError and never reaches zmq.
ENDPOINT_PATTERN = (
    r"^(tcp://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?)"
    r":([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
    r"|ipc://[^\x00]{1,200})$"
)


def check_endpoint(value: str) -> str:
    """``value`` if it is an endpoint of :data:`ENDPOINT_PATTERN`, else a ValueError.

    >>> check_endpoint("tcp://127.0.0.1:5556")
    'tcp://127.0.0.1:5556'
    >>> check_endpoint("tcp://host:0")
    Traceback (most recent call last):
    ...
    ValueError: expected tcp://HOST:PORT (port 1..65535) or ipc://PATH, got 'tcp://host:0'
    """
    if len(value) > 512 or re.match(ENDPOINT_PATTERN, value) is None:
        raise ValueError(
            f"expected tcp://HOST:PORT (port 1..65535) or ipc://PATH, got {value[:80]!r}"
        )
    return value


#: A ZeroMQ endpoint string, checked by :func:`check_endpoint`.
Endpoint = Annotated[str, AfterValidator(check_endpoint)]


class Ns3Config(BaseModel):
    """``network.ns3`` in a scenario."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    #: ``wifi-ax-uplink`` or ``lte-uplink`` (see ``ns3_scenarios/README.md``).
    scenario: str = "wifi-ax-uplink"
    #: The scenario's parameters (validated by the scenario's own schema).
    params: dict[str, Any] = Field(default_factory=dict)
    #: Connect to a worker already listening here (``tcp://HOST:PORT``) instead of
    #: starting one.
    endpoint: Endpoint | None = None
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
