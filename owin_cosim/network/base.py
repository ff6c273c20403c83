"""The network-backend interface: chunks go in, timed deliveries come out.

The coordinator owns the global clock. It hands chunks to the backend (``submit``), sets
the per-device share of radio resources (``set_shares``) and grants time (``advance``):
the backend simulates up to the granted time but **stops early at the first instant at
which a chunk completes**, so that the coordinator can react to that delivery before any
later radio decision is taken. It never runs past the granted time. This is the
conservative synchronisation protocol that the ns-3 worker speaks as well.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from owin_cosim.errors import ConfigError

__all__ = [
    "AdvanceResult",
    "ChunkTx",
    "Delivery",
    "NetworkBackend",
    "NetworkRef",
    "RadioUse",
    "UplinkDevice",
    "UplinkSetup",
    "dbm_to_w",
    "w_to_dbm",
]


def dbm_to_w(dbm: float) -> float:
    """Convert dBm to watts.

    >>> dbm_to_w(30.0)
    1.0
    """
    return float(10.0 ** ((dbm - 30.0) / 10.0))


def w_to_dbm(watts: float) -> float:
    """Convert watts to dBm.

    >>> w_to_dbm(1.0)
    30.0
    """
    return 10.0 * math.log10(watts * 1e3)


@dataclass(frozen=True, slots=True)
class UplinkDevice:
    """What a network backend needs to know of one device (the one device record of the
    network side; each backend derives its own wire form from it)."""

    name: str
    distance_m: float
    tx_power_W: float

    @property
    def tx_power_dBm(self) -> float:
        return w_to_dbm(self.tx_power_W)


@dataclass(frozen=True, slots=True)
class ChunkTx:
    """One chunk of a device's payload, handed to the backend for transmission."""

    device: str
    chunk: int
    nbytes: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """A chunk received in full at the edge server.

    ``first_byte_s`` is the first instant the chunk was on the air, ``last_byte_s`` the
    instant its last bit arrived (the delivery time).
    """

    device: str
    chunk: int
    nbytes: int
    submit_s: float
    first_byte_s: float
    last_byte_s: float
    lost_bytes: int = 0


@dataclass(frozen=True, slots=True)
class RadioUse:
    """A device transmitting on ``units`` radio resources (RBs, RUs) over an interval."""

    device: str
    start_s: float
    end_s: float
    units: int


@dataclass(frozen=True, slots=True)
class AdvanceResult:
    """What happened up to ``time_s`` (the granted time or the first delivery instant)."""

    time_s: float
    deliveries: tuple[Delivery, ...]


class NetworkBackend(ABC):
    """A simulator of the uplink, driven by the coordinator.

    Backends are context managers: ``close`` releases what they hold (processes,
    sockets) and is called on every exit path.
    """

    #: Name written into results, e.g. ``"ofdm"`` or ``"ns3"``.
    name: str = "abstract"
    #: Whether what the backend simulates depends only on the submissions and share
    #: changes and their times, not on where the granted times fall. The coordinator
    #: then grants "until the next delivery" instead of "until the next event of any
    #: kind" (only deliveries trigger network actions): fewer round trips to a worker.
    grant_invariant: bool = False

    @property
    @abstractmethod
    def now_s(self) -> float:
        """The time the backend has simulated up to."""

    @abstractmethod
    def submit(self, chunk: ChunkTx, at_s: float) -> None:
        """Queue ``chunk`` at its device from time ``at_s`` (``>= now_s``), after the
        chunks already queued at that device."""

    @abstractmethod
    def set_shares(self, shares: Mapping[str, float], at_s: float) -> None:
        """Set the devices' relative shares of radio resources from time ``at_s``.

        Shares are non-negative weights; devices missing from ``shares`` get 0. A device
        with weight 0 transmits only when no device with a positive weight has data
        (the scheduler stays work-conserving).
        """

    @abstractmethod
    def advance(self, until_s: float) -> AdvanceResult:
        """Simulate up to ``until_s`` or to the first delivery, whichever comes first."""

    @abstractmethod
    def has_backlog(self) -> bool:
        """Whether any submitted byte is still undelivered."""

    @abstractmethod
    def radio_usage(self) -> list[RadioUse]:
        """Every interval in which a device held radio resources, in time order."""

    def set_allocation(self, grid: Sequence[Sequence[str | None]]) -> None:
        """Follow an explicit allocation from slot 0: ``grid[s][r]`` owns RB ``r`` in
        slot ``s`` (a device name, or None: unused); past the grid, the shares govern.

        Called before any chunk is submitted. Backends that cannot follow one (their
        own scheduler decides, as ns-3's) keep this default, which refuses it.

        Raises
        ------
        ConfigError
            Always, naming the plan key ``radio_grid``.
        """
        raise ConfigError(
            None,
            "radio_grid",
            f"the {self.name!r} network backend cannot follow an explicit per-slot RB "
            "allocation; expected network.backend: ofdm, or a plan without radio_grid",
        )

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release processes and sockets; idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class NetworkRef:
    """A recipe for a fresh network backend: plain data, so a problem can be pickled.

    ``config`` is the backend's own validated configuration (a pydantic model or other
    picklable value) and ``options`` anything else its type needs to build it.
    """

    backend: str
    config: Any
    devices: tuple[UplinkDevice, ...]
    seed: int
    options: Mapping[str, Any] = field(default_factory=dict)

    def create(self) -> NetworkBackend:
        """Build the backend through the registry."""
        from owin_cosim.network.registry import create_network

        return create_network(self)


@dataclass(frozen=True)
class UplinkSetup:
    """What a backend type tells the assembly about the uplink of one scenario."""

    #: The backend of the real run.
    network: NetworkRef
    #: The surrogate that planners simulate (its own channel realisation).
    planning: NetworkRef
    #: Per device: mean full-band rate (bit/s), the planners' estimate.
    mean_rate_bps: tuple[float, ...]
    #: Per device, per chunk: earliest possible arrival (a bound, for lower bounds).
    earliest_arrival_s: tuple[tuple[float, ...], ...]
    #: Time to push every bit at an upper bound of the sum rate.
    radio_bound_s: float
    #: Radio resources shared per slot (e.g. resource blocks).
    radio_units: int
