"""The ``ofdm`` backend type: the analytic OFDM uplink in the network registry.

Random streams (all derived from the scenario ``seed``): fading ``[seed, 1, block]``,
shadowing ``[seed, 2]``; the planning surrogate uses the same streams of a derived seed
(:func:`planning_seed`), i.e. another channel realisation with the same statistics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from owin_cosim.errors import ConfigError
from owin_cosim.network.base import NetworkBackend, NetworkRef, UplinkDevice, UplinkSetup
from owin_cosim.network.ofdm.channel import OfdmChannel
from owin_cosim.network.ofdm.config import OfdmConfig
from owin_cosim.network.ofdm.uplink import OfdmUplink

__all__ = ["OfdmBackendType", "ofdm_surrogate", "planning_seed"]


def planning_seed(seed: int) -> int:
    """The seed of the planning surrogate's channel: another realisation.

    >>> planning_seed(1) == planning_seed(1) != 1
    True
    """
    return int(np.random.SeedSequence([seed, 7]).generate_state(1, dtype=np.uint64)[0] >> 1)


def ofdm_surrogate(
    config: OfdmConfig,
    devices: Sequence[UplinkDevice],
    seed: int,
    channel: OfdmChannel | None = None,
) -> tuple[NetworkRef, tuple[float, ...]]:
    """The planning surrogate of a scenario and the devices' mean full-band rates.

    Every backend's planners may use it: the analytic model of ``network.ofdm`` on the
    planning seed's channel realisation. ``channel``: the run's own channel, if built.
    """
    channel = channel or OfdmChannel(config, devices, seed)
    mean_rate = tuple(channel.mean_rate_bps(k) for k in range(len(devices)))
    return NetworkRef("ofdm", config, tuple(devices), planning_seed(seed)), mean_rate


class OfdmBackendType:
    """Registry entry ``ofdm``: options under ``network.ofdm`` (:class:`OfdmConfig`)."""

    name = "ofdm"

    def setup(
        self,
        network: Mapping[str, Any],
        devices: Sequence[UplinkDevice],
        chunk_bytes: Sequence[Sequence[int]],
        seed: int,
        file: Path,
    ) -> UplinkSetup:
        config: OfdmConfig = network["ofdm"]
        channel = OfdmChannel(config, devices, seed)
        planning, mean_rate = ofdm_surrogate(config, devices, seed, channel)
        try:
            arrival, radio_s = channel.uplink_bounds(chunk_bytes)
        except ConfigError as exc:  # name the scenario file
            raise ConfigError(file, exc.key, exc.message) from None
        return UplinkSetup(
            network=NetworkRef("ofdm", config, tuple(devices), seed),
            planning=planning,
            mean_rate_bps=mean_rate,
            earliest_arrival_s=tuple(tuple(a) for a in arrival),
            radio_bound_s=radio_s,
            radio_units=config.num_rbs,
        )

    def create(self, ref: NetworkRef) -> NetworkBackend:
        return OfdmUplink(ref.config, ref.devices, ref.seed)
