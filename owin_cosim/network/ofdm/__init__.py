"""The analytic OFDM uplink: resource blocks, slots, path loss, Rayleigh fading, Shannon.

The band is ``num_rbs`` resource blocks of ``subcarriers_per_rb`` subcarriers each
(``B_rb = subcarriers_per_rb * subcarrier_spacing_hz``); time is divided into slots of
``slot_s``. In slot ``t`` device ``k`` sees on RB ``r`` the gain
``g = beta_k * |h|^2`` with ``beta_k`` the log-distance path loss (plus optional seeded
log-normal shadowing) and ``|h|^2 ~ Exp(1)`` (Rayleigh), drawn i.i.d. per device, RB and
coherence block from a counter-based stream (seed, slot block), so every policy run sees
the same channel realisation (common random numbers). A device spreads its power ``P_k``
evenly over the RBs it holds; one RB carries ``B_rb log2(1 + p g / (N0 B_rb))`` bit/s.

Modules: :mod:`~.config` (:class:`OfdmConfig`, the ``network.ofdm`` block: pydantic only,
imported by the scenario schema), :mod:`~.channel` (:class:`OfdmChannel`: gains, rates,
bounds), :mod:`~.uplink` (:class:`OfdmUplink`, the backend: the per-slot scheduler) and
:mod:`~.backend` (the ``ofdm`` entry of the network-backend registry). Imports
:mod:`owin_cosim.network.base` only.
"""

from owin_cosim.network.ofdm.channel import OfdmChannel
from owin_cosim.network.ofdm.config import OfdmConfig, PathLossConfig, dbm_to_w
from owin_cosim.network.ofdm.uplink import OfdmUplink

__all__ = ["OfdmChannel", "OfdmConfig", "OfdmUplink", "PathLossConfig", "dbm_to_w"]
