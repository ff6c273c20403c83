"""The ``ns3`` backend type: ns-3 in a worker process, in the network registry.

Set-up validates ``network.ns3`` against the chosen ns-3 scenario's own schema and
bounds the uplink by that scenario's peak PHY rate; it imports neither ns-3 nor zmq
(the backend itself, :class:`~owin_cosim.network.ns3.backend.Ns3Uplink`, is imported
only to run).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from itertools import accumulate
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from owin_cosim.errors import BackendUnavailableError, ConfigError
from owin_cosim.network.base import NetworkBackend, NetworkRef, UplinkDevice, UplinkSetup
from owin_cosim.network.ns3.config import Ns3Config
from owin_cosim.network.ns3.environment import INSTALL_HINT, ns3_installed
from owin_cosim.network.ofdm.backend import ofdm_surrogate, planning_seed
from owin_cosim.validation import validation_to_config_error

__all__ = ["Ns3BackendType"]


def _say(message: str) -> None:
    print(f"owin-cosim: {message}", file=sys.stderr, flush=True)


def peak_rate_bps(config: Ns3Config, file: Path | None) -> float:
    """Validate ``network.ns3`` against its scenario's schema; return the peak rate."""
    from ns3_scenarios import SCENARIOS

    module = SCENARIOS.get(config.scenario)
    if module is None:
        raise ConfigError(
            file,
            "network.ns3.scenario",
            f"unknown ns-3 scenario {config.scenario!r}; expected one of: "
            f"{', '.join(sorted(SCENARIOS))}",
        )
    try:
        params = module.Params.model_validate(config.params)
    except ValidationError as exc:
        raise validation_to_config_error(exc, file, module.Params, "network.ns3.params") from None
    return float(module.peak_rate_bps(params))


class Ns3BackendType:
    """Registry entry ``ns3``: options under ``network.ns3`` (:class:`Ns3Config`).

    Planning runs on the analytic ``network.ofdm`` surrogate unless
    ``network.ns3.planning`` is ``ns3``.
    """

    name = "ns3"

    def setup(
        self,
        network: Mapping[str, Any],
        devices: Sequence[UplinkDevice],
        chunk_bytes: Sequence[Sequence[int]],
        seed: int,
        file: Path,
    ) -> UplinkSetup:
        config: Ns3Config = network["ns3"]
        if config.keys is not None:  # relative to the scenario file, like every path
            config = config.model_copy(update={"keys": str(file.parent / config.keys)})
        if config.endpoint is None and not ns3_installed():
            raise BackendUnavailableError(
                f"{file}: network.backend is 'ns3' but ns-3 is not installed; {INSTALL_HINT}"
            )
        peak = peak_rate_bps(config, file)
        surrogate, mean_rate = ofdm_surrogate(network["ofdm"], devices, seed)
        planning = surrogate
        if config.planning == "ns3":
            planning = NetworkRef("ns3", config, tuple(devices), planning_seed(seed))
        arrival = tuple(tuple(float(c) * 8.0 / peak for c in accumulate(b)) for b in chunk_bytes)
        return UplinkSetup(
            network=NetworkRef("ns3", config, tuple(devices), seed),
            planning=planning,
            mean_rate_bps=mean_rate,
            earliest_arrival_s=arrival,
            radio_bound_s=sum(sum(b) for b in chunk_bytes) * 8.0 / peak,
            radio_units=len(devices),
        )

    def create(self, ref: NetworkRef) -> NetworkBackend:
        from owin_cosim.network.ns3.backend import Ns3Uplink

        return Ns3Uplink(ref.config, ref.devices, ref.seed, say=_say)
