"""The OFDM channel: seeded gains ``beta_k |h|^2`` per slot and RB, Shannon rates per RB,
and the rate and arrival-time bounds derived from them (for planners and lower bounds).

Fading draws come from a counter-based stream ``default_rng([seed, 1, block])`` per block
of slots, shadowing from ``default_rng([seed, 2])``, so any slot can be looked up in any
order and every policy run sees the same realisation.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np

from owin_cosim.errors import ConfigError
from owin_cosim.network.base import UplinkDevice
from owin_cosim.network.ofdm.config import OfdmConfig

__all__ = ["OfdmChannel"]

#: Slots per block of the counter-based fading stream.
_BLOCK = 256


class OfdmChannel:
    """Seeded channel gains ``beta_k |h|^2`` per slot and RB, with random access by slot.

    Examples
    --------
    >>> devs = [UplinkDevice("a", 10.0, 0.2), UplinkDevice("b", 50.0, 0.2)]
    >>> ch = OfdmChannel(OfdmConfig(num_rbs=4), devs, seed=1)
    >>> ch.gains(0).shape
    (2, 4)
    >>> bool((ch.gains(7) == ch.gains(7)).all())
    True
    """

    def __init__(self, config: OfdmConfig, devices: Sequence[UplinkDevice], seed: int) -> None:
        self.config = config
        self.devices = list(devices)
        self.seed = seed
        pl = config.pathloss
        dist = np.array([max(d.distance_m, pl.ref_distance_m) for d in devices])
        loss_db = pl.ref_loss_dB + 10.0 * pl.exponent * np.log10(dist / pl.ref_distance_m)
        if pl.shadowing_std_dB > 0:
            rng = np.random.default_rng([seed, 2])
            loss_db = loss_db + rng.normal(0.0, pl.shadowing_std_dB, size=len(devices))
        #: Large-scale gain per device (linear).
        self.beta = 10.0 ** (-loss_db / 10.0)
        self.power_w = np.array([d.tx_power_W for d in devices])
        self._cached_block = -1
        self._block = np.empty((0, len(devices), config.num_rbs))

    def gains(self, slot: int) -> np.ndarray:
        """Channel gains ``(devices, rbs)`` in slot ``slot``."""
        cfg = self.config
        if cfg.fading == "none":
            return np.repeat(self.beta[:, None], cfg.num_rbs, axis=1)
        coh = slot // cfg.coherence_slots
        block = coh // _BLOCK
        if block != self._cached_block:
            rng = np.random.default_rng([self.seed, 1, block])
            groups = math.ceil(cfg.num_rbs / cfg.coherence_rbs)
            draw = rng.exponential(1.0, size=(_BLOCK, len(self.devices), groups))
            self._block = np.repeat(draw, cfg.coherence_rbs, axis=2)[:, :, : cfg.num_rbs]
            self._cached_block = block
        result: np.ndarray = self.beta[:, None] * self._block[coh % _BLOCK]
        return result

    def rb_rate_bps(self, power_per_rb_w: np.ndarray | float, gains: np.ndarray) -> np.ndarray:
        """Shannon rate of RBs at the given per-RB power and gains (bit/s)."""
        cfg = self.config
        snr = np.asarray(power_per_rb_w) * gains / cfg.noise_w_per_rb
        se = np.log2(1.0 + snr / 10.0 ** (cfg.snr_gap_dB / 10.0))
        if cfg.max_bits_per_s_per_hz is not None:
            se = np.minimum(se, cfg.max_bits_per_s_per_hz)
        rate: np.ndarray = cfg.rate_efficiency * cfg.rb_bandwidth_hz * se
        return rate

    def full_power_rates(self, slot: int) -> np.ndarray:
        """Rate of every (device, RB) if the device put all its power on that one RB.

        An upper bound on what any allocation can reach per RB (used by lower bounds).
        """
        return self.rb_rate_bps(self.power_w[:, None], self.gains(slot))

    def waterfill_rate(self, device: int, slot: int) -> float:
        """Best rate of ``device`` alone on the whole band in ``slot`` (water-filling).

        No allocation with even power splitting can beat it, so it bounds from above
        the rate of any schedule (computed without the spectral-efficiency cap, which
        only lowers rates).
        """
        cfg = self.config
        g = np.sort(self.gains(slot)[device] / cfg.noise_w_per_rb)[::-1]
        g = g / 10.0 ** (cfg.snr_gap_dB / 10.0)
        inv = 1.0 / g
        levels = (float(self.power_w[device]) + np.cumsum(inv)) / np.arange(1, len(g) + 1)
        m = int(np.flatnonzero(levels > inv)[-1]) + 1  # m = 1 is always valid
        powers = levels[m - 1] - inv[:m]
        rate = cfg.rate_efficiency * cfg.rb_bandwidth_hz * np.log2(1.0 + powers * g[:m])
        return float(rate.sum())

    def _waterfill_bits(self, device: int, slot: int) -> float:
        return self.waterfill_rate(device, slot) * self.config.slot_s

    def mean_rate_bps(self, device: int) -> float:
        """Expected rate of ``device`` alone on the whole band with even power split.

        The Rayleigh average ``E[log2(1 + a X)]``, ``X ~ Exp(1)``, by 32-point
        Gauss-Laguerre quadrature (exact enough, and deterministic).
        """
        cfg = self.config
        a = (
            self.power_w[device]
            / cfg.num_rbs
            * self.beta[device]
            / cfg.noise_w_per_rb
            / 10.0 ** (cfg.snr_gap_dB / 10.0)
        )
        cap = np.inf if cfg.max_bits_per_s_per_hz is None else cfg.max_bits_per_s_per_hz
        if cfg.fading == "none":
            per_rb = float(min(np.log2(1.0 + a), cap))
        else:
            x, w = np.polynomial.laguerre.laggauss(32)
            per_rb = float((w * np.minimum(np.log2(1.0 + a * x), cap)).sum())
        return cfg.rate_efficiency * cfg.rb_bandwidth_hz * cfg.num_rbs * per_rb

    def uplink_bounds(
        self, chunk_bytes: Sequence[Sequence[int]]
    ) -> tuple[list[list[float]], float]:
        """Lower bounds on chunk arrival times and on the time to upload every bit.

        Returns
        -------
        arrival : list of list of float
            Per device, per chunk: the earliest time its last bit can arrive, if the
            device had the whole band to itself with water-filled power from t = 0.
        all_bits : float
            The earliest time every bit of every device can be up, at the per-slot upper
            bound ``sum_r max_k rate(P_k on r)`` of the sum rate.
        """
        slot_s = self.config.slot_s
        arrival: list[list[float]] = []
        for k, sizes in enumerate(chunk_bytes):
            targets = np.cumsum(np.asarray(sizes, dtype=float) * 8.0)
            arrival.append(
                _crossing_times(
                    functools.partial(self._waterfill_bits, k),
                    targets,
                    slot_s,
                    self.config.max_slots,
                )
            )
        total = float(sum(sum(s) for s in chunk_bytes)) * 8.0
        sum_rate = _crossing_times(
            lambda t: float(self.full_power_rates(t).max(axis=0).sum()) * slot_s,
            np.array([total]),
            slot_s,
            self.config.max_slots,
        )
        return arrival, sum_rate[0]


def _crossing_times(
    bits_in_slot: Callable[[int], float], targets: np.ndarray, slot_s: float, max_slots: int
) -> list[float]:
    """Times at which the cumulative ``bits_in_slot`` (constant rate in a slot) reaches
    each of the increasing ``targets``."""
    out: list[float] = []
    done, slot, i = 0.0, 0, 0
    while i < len(targets):
        if slot >= max_slots:
            raise ConfigError(
                None,
                "network.ofdm.max_slots",
                f"even the best-case upload needs more than {max_slots} slots "
                f"({max_slots * slot_s:g} s): a device is out of range or its payload too "
                "large; expected a larger max_slots, a closer device or a smaller payload",
            )
        bits = bits_in_slot(slot)
        while i < len(targets) and done + bits >= targets[i]:
            out.append((slot + 1) * slot_s)  # deliveries happen at slot ends
            i += 1
        done += bits
        slot += 1
    return out
