"""The network-backend registry, and what a backend type provides to it.

A network backend *type* (registered by name) validates its own section of a scenario's
``network`` block and returns a :class:`~owin_cosim.network.base.UplinkSetup`: plain,
picklable data holding the recipes (:class:`~owin_cosim.network.base.NetworkRef`) of
the real run's backend and of the planning surrogate, plus the rates and bounds that
planners and lower bounds need. The assembly of a scenario therefore knows no backend's
internals. Plugins register in the entry-point group ``owin_cosim.network_backends``
(see ``docs/plugins.md``); a plugin's options are the mapping under ``network.<name>``.

>>> NETWORK_BACKENDS.names()[:2]
['ofdm', 'ns3']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from owin_cosim.network.base import NetworkBackend, NetworkRef, UplinkDevice, UplinkSetup
from owin_cosim.plugins import Registry

__all__ = ["NETWORK_BACKENDS", "NetworkBackendType", "create_network"]


@runtime_checkable
class NetworkBackendType(Protocol):
    """What a network backend registers: a name, a set-up step and a factory."""

    name: str

    def setup(
        self,
        network: Mapping[str, Any],
        devices: Sequence[UplinkDevice],
        chunk_bytes: Sequence[Sequence[int]],
        seed: int,
        file: Path,
    ) -> UplinkSetup:
        """Validate the scenario's ``network`` section (a plain mapping: ``backend``,
        ``ofdm``, this backend's own section, ...) and describe the uplink.

        Raises :class:`~owin_cosim.errors.ConfigError` (naming ``file`` and the key) for
        bad options and :class:`~owin_cosim.errors.BackendUnavailableError` when the
        backend cannot run here.
        """
        ...

    def create(self, ref: NetworkRef) -> NetworkBackend:
        """A fresh backend for one run, from a recipe this type wrote in ``setup``."""
        ...


def _backend_type(obj: Any) -> NetworkBackendType:
    if isinstance(obj, type):
        obj = obj()
    if not isinstance(obj, NetworkBackendType):
        raise TypeError(
            f"expected a network backend type with 'name', 'setup' and 'create', got {obj!r}"
        )
    return obj


#: Backend name -> backend type.
NETWORK_BACKENDS: Registry[NetworkBackendType] = Registry(
    "network backend",
    "owin_cosim.network_backends",
    {
        "ofdm": "owin_cosim.network.ofdm.backend:OfdmBackendType",
        "ns3": "owin_cosim.network.ns3.backend_type:Ns3BackendType",
    },
    _backend_type,
)


def create_network(ref: NetworkRef) -> NetworkBackend:
    """Build the backend a recipe describes (in this process or a worker's)."""
    return NETWORK_BACKENDS.load(ref.backend).create(ref)
