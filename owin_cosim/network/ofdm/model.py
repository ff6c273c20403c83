"""The analytic OFDM uplink: resource blocks, slots, path loss, Rayleigh fading, Shannon.

The band is ``num_rbs`` resource blocks of ``subcarriers_per_rb`` subcarriers each
(``B_rb = subcarriers_per_rb * subcarrier_spacing_hz``); time is divided into slots of
``slot_s``. In slot ``t`` device ``k`` sees on RB ``r`` the gain
``g = beta_k * |h|^2`` with ``beta_k`` the log-distance path loss (plus optional seeded
log-normal shadowing) and ``|h|^2 ~ Exp(1)`` (Rayleigh), drawn i.i.d. per device, RB and
coherence block from a counter-based stream (seed, slot block), so every policy run sees
the same channel realisation (common random numbers). A device spreads its power ``P_k``
evenly over the RBs it holds; one RB carries ``B_rb log2(1 + p g / (N0 B_rb))`` bit/s.

Per slot, the scheduler gives each backlogged device a number of RBs proportional to its
share (largest-remainder rounding, never more than it needs to empty its queue), then
hands out RBs greedily by descending gain among devices with quota left. Bits flow at a
constant rate inside a slot (``first_byte_s`` is exact); a chunk is delivered at the end
of the slot that carried its last bit, as a transport block is decoded at the end of its
slot.
"""

from __future__ import annotations

import functools
import heapq
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from owin_cosim.network.base import (
    AdvanceResult,
    ChunkTx,
    Delivery,
    NetworkBackend,
    RadioUse,
    UplinkDevice,
)

__all__ = ["OfdmChannel", "OfdmConfig", "OfdmUplink", "PathLossConfig", "dbm_to_w"]

#: Slots per block of the counter-based fading stream.
_BLOCK = 256
_EPS = 1e-12


def dbm_to_w(dbm: float) -> float:
    """Convert dBm to watts.

    >>> dbm_to_w(30.0)
    1.0
    """
    return float(10.0 ** ((dbm - 30.0) / 10.0))


class PathLossConfig(BaseModel):
    """Log-distance path loss ``PL(d) = ref_loss_dB + 10 n log10(d / ref_distance_m)``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Literal["log_distance"] = "log_distance"
    ref_distance_m: float = Field(1.0, gt=0)
    #: Loss at the reference distance; 38.5 dB is free space at 1 m for a 2 GHz carrier.
    ref_loss_dB: float = 38.5
    exponent: float = Field(3.0, gt=0)
    shadowing_std_dB: float = Field(0.0, ge=0)


class OfdmConfig(BaseModel):
    """Parameters of the analytic OFDM uplink (``network.ofdm`` in a scenario)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_rbs: int = Field(50, gt=0, description="resource blocks in the band")
    subcarriers_per_rb: int = Field(12, gt=0)
    subcarrier_spacing_hz: float = Field(15_000.0, gt=0)
    slot_s: float = Field(0.5e-3, gt=0, description="scheduling slot length")
    noise_psd_dBm_per_Hz: float = -174.0
    noise_figure_dB: float = Field(7.0, ge=0)
    pathloss: PathLossConfig = Field(default_factory=PathLossConfig)
    fading: Literal["rayleigh", "none"] = "rayleigh"
    coherence_slots: int = Field(1, gt=0, description="slots over which a fading draw holds")
    coherence_rbs: int = Field(1, gt=0, description="adjacent RBs sharing a fading draw")
    rate_efficiency: float = Field(1.0, gt=0, le=1, description="fraction of Shannon achieved")
    #: Cap of the spectral efficiency per RB (bit/s/Hz), as the highest MCS imposes;
    #: none by default (pure Shannon). LTE's uplink tops out near 4.
    max_bits_per_s_per_hz: float | None = Field(None, gt=0)
    #: SNR gap of real modulation and coding to Shannon (``log2(1 + SNR / gap)``); 0 dB
    #: by default. ns-3's LTE AMC uses -ln(5 BER)/1.5 at BER 5e-5, i.e. about 7.4 dB.
    snr_gap_dB: float = Field(0.0, ge=0)
    max_slots: int = Field(10_000_000, gt=0, description="guard against endless runs")

    @property
    def rb_bandwidth_hz(self) -> float:
        """Bandwidth of one resource block."""
        return self.subcarriers_per_rb * self.subcarrier_spacing_hz

    @property
    def noise_w_per_rb(self) -> float:
        """Thermal noise plus noise figure over one resource block, in watts."""
        return dbm_to_w(self.noise_psd_dBm_per_Hz + self.noise_figure_dB) * self.rb_bandwidth_hz


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
            raise RuntimeError("upload bound passed max_slots: is a device out of range?")
        bits = bits_in_slot(slot)
        while i < len(targets) and done + bits >= targets[i]:
            out.append((slot + 1) * slot_s)  # deliveries happen at slot ends
            i += 1
        done += bits
        slot += 1
    return out


@dataclass(slots=True)
class _Queued:
    chunk: ChunkTx
    submit_s: float
    remaining_bits: float
    first_byte_s: float | None = None


@dataclass(slots=True)
class _DeviceState:
    queue: deque[_Queued] = field(default_factory=deque)
    rate_bps: float = 0.0  # in the current slot
    units: int = 0  # RBs held in the current slot
    active_since: float | None = None


class OfdmUplink(NetworkBackend):
    """The analytic OFDM uplink backend.

    Examples
    --------
    >>> devs = [UplinkDevice("cam", 20.0, 0.2)]
    >>> net = OfdmUplink(OfdmConfig(fading="none"), devs, seed=0)
    >>> net.submit(ChunkTx("cam", 0, 10_000), at_s=0.0)
    >>> net.set_shares({"cam": 1.0}, at_s=0.0)
    >>> res = net.advance(1.0)
    >>> res.deliveries[0].device, res.time_s == res.deliveries[0].last_byte_s
    ('cam', True)
    """

    name = "ofdm"

    def __init__(self, config: OfdmConfig, devices: Sequence[UplinkDevice], seed: int) -> None:
        self.config = config
        self.channel = OfdmChannel(config, devices, seed)
        self.devices = list(devices)
        self._index = {d.name: i for i, d in enumerate(devices)}
        self._state = [_DeviceState() for _ in devices]
        self._weights = np.zeros(len(devices))
        self._pending_weights: np.ndarray | None = None
        self._future: list[tuple[float, int, _Queued]] = []  # (at_s, seq, item)
        self._seq = 0
        self._now = 0.0
        self._slot = -1  # slot whose allocation is in force
        self._usage: list[RadioUse] = []
        self._done_in_slot: list[Delivery] = []  # completed, reported at the slot's end

    # ---- interface ----------------------------------------------------------------
    @property
    def now_s(self) -> float:
        return self._now

    def submit(self, chunk: ChunkTx, at_s: float) -> None:
        if chunk.device not in self._index:
            raise KeyError(f"unknown device {chunk.device!r}")
        if at_s < self._now - _EPS:
            raise ValueError(f"submit at {at_s} s is in the past (backend at {self._now} s)")
        item = _Queued(chunk, at_s, float(chunk.nbytes) * 8.0)
        heapq.heappush(self._future, (at_s, self._seq, item))
        self._seq += 1

    def set_shares(self, shares: Mapping[str, float], at_s: float) -> None:
        w = np.zeros(len(self.devices))
        for name, value in shares.items():
            if value < 0 or not math.isfinite(value):
                raise ValueError(f"share of {name!r} must be finite and >= 0, got {value}")
            w[self._index[name]] = value
        # Shares take effect at the next slot boundary, as a real per-slot scheduler would.
        self._pending_weights = w

    def has_backlog(self) -> bool:
        return bool(self._future or self._done_in_slot) or any(s.queue for s in self._state)

    def radio_usage(self) -> list[RadioUse]:
        return sorted(self._usage, key=lambda u: (u.start_s, u.device))

    def advance(self, until_s: float) -> AdvanceResult:
        cfg = self.config
        while self._now < until_s - _EPS:
            slot = math.floor(self._now / cfg.slot_s + 1e-9)
            if slot >= cfg.max_slots:
                raise RuntimeError(f"OFDM uplink passed max_slots={cfg.max_slots}")
            slot_end = (slot + 1) * cfg.slot_s
            self._release(self._now)
            if not self._done_in_slot and not any(st.queue for st in self._state):
                # Idle radio: jump to the next submission (or the granted time).
                self._close_slot()
                nxt = self._future[0][0] if self._future else until_s
                if nxt == math.inf:
                    break
                self._now = min(max(nxt, self._now), until_s)
                continue
            if slot != self._slot:
                self._close_slot()
                if self._now > slot * cfg.slot_s + _EPS:
                    # Data arrived mid-slot on an idle radio: grants start at a boundary.
                    self._now = min(slot_end, until_s)
                    continue
                self._allocate(slot)
            horizon = min(slot_end, until_s)
            if self._future:
                horizon = min(horizon, max(self._future[0][0], self._now))
            self._done_in_slot += self._progress(horizon)
            if abs(horizon - slot_end) <= _EPS:
                self._now = slot_end
                if self._done_in_slot:
                    # Transport blocks are decoded at the end of the slot that carried them.
                    done = tuple(replace(d, last_byte_s=slot_end) for d in self._done_in_slot)
                    self._done_in_slot = []
                    return AdvanceResult(slot_end, done)
            else:
                self._now = horizon
        return AdvanceResult(self._now, ())

    # ---- internals ----------------------------------------------------------------
    def _release(self, t: float) -> None:
        while self._future and self._future[0][0] <= t + _EPS:
            _, _, item = heapq.heappop(self._future)
            self._state[self._index[item.chunk.device]].queue.append(item)

    def _backlog_bits(self) -> np.ndarray:
        return np.array([sum(q.remaining_bits for q in s.queue) for s in self._state])

    def _allocate(self, slot: int) -> None:
        """Decide the RB allocation of ``slot`` from the queues at its start."""
        cfg = self.config
        self._slot = slot
        if self._pending_weights is not None:
            self._weights = self._pending_weights
            self._pending_weights = None
        backlog = self._backlog_bits()
        active = backlog > 0
        for st in self._state:
            st.rate_bps, st.units = 0.0, 0
        if not active.any():
            return
        w = np.where(active, self._weights, 0.0)
        if w.sum() <= 0:
            w = active.astype(float)
        gains = self.channel.gains(slot)
        quota = _largest_remainder(w / w.sum() * cfg.num_rbs, cfg.num_rbs)
        # Greedy by gain: each RB to the best device that still has quota (plain lists:
        # this loop runs every slot).
        num_rbs = cfg.num_rbs
        owner_list = [-1] * num_rbs
        left = quota.tolist()
        to_place = sum(left)
        for flat in np.argsort(-gains, axis=None, kind="stable").tolist():
            k, r = divmod(flat, num_rbs)
            if left[k] > 0 and owner_list[r] < 0:
                owner_list[r] = k
                left[k] -= 1
                to_place -= 1
                if to_place == 0:
                    break
        owner = np.array(owner_list)
        # Trim: a device keeps only the fewest of its best RBs that carry its whole backlog
        # in this slot (as a buffer-status-driven scheduler would) ...
        rates = self._rates(owner, gains)
        for k in np.flatnonzero(active & (rates * cfg.slot_s >= backlog)):
            held = np.flatnonzero(owner == k)
            if held.size > 1:
                best_first = held[np.argsort(-gains[k, held], kind="stable")]
                keep = self._fewest_rbs(int(k), gains[k, best_first], backlog[k])
                owner[best_first[keep:]] = -1
        rates = self._rates(owner, gains)
        # ... and the RBs so freed go, by gain, to devices that cannot empty their queue.
        hungry = [int(k) for k in np.flatnonzero(active & (rates * cfg.slot_s < backlog))]
        free = np.flatnonzero(owner < 0)
        if free.size and hungry:
            for r in map(int, free):
                owner[r] = max(hungry, key=lambda j: (gains[j, r], -j))
            rates = self._rates(owner, gains)
        units = np.bincount(owner[owner >= 0], minlength=len(self._state))
        for k, st in enumerate(self._state):
            st.rate_bps, st.units = float(rates[k]), int(units[k])

    def _fewest_rbs(self, k: int, sorted_gains: np.ndarray, need_bits: float) -> int:
        """Fewest of the (best-first) RBs that carry ``need_bits`` in one slot, power
        split evenly over them; all of them if none suffices."""
        n = sorted_gains.size
        m = np.arange(1, n + 1)[:, None]
        per_rb = self.channel.rb_rate_bps(self.channel.power_w[k] / m, sorted_gains[None, :])
        per_rb = np.where(np.arange(n)[None, :] < m, per_rb, 0.0)
        enough = np.flatnonzero(per_rb.sum(axis=1) * self.config.slot_s >= need_bits)
        return int(enough[0]) + 1 if enough.size else n

    def _rates(self, owner: np.ndarray, gains: np.ndarray) -> np.ndarray:
        """Rate of every device (bit/s) under the RB ownership ``owner`` (-1: unused)."""
        held = owner >= 0
        k = owner[held]
        n = np.bincount(k, minlength=len(self._state))
        per_rb = self.channel.rb_rate_bps(
            self.channel.power_w[k] / n[k], gains[k, np.flatnonzero(held)]
        )
        rates: np.ndarray = np.bincount(k, weights=per_rb, minlength=len(self._state))
        return rates

    def _progress(self, t: float) -> list[Delivery]:
        """Move every device's queue forward to time ``t``; return completed chunks."""
        done: list[Delivery] = []
        dt = t - self._now
        for k, st in enumerate(self._state):
            if st.rate_bps <= 0 or not st.queue:
                continue
            if st.active_since is None:
                st.active_since = self._now
            budget = st.rate_bps * dt
            clock = self._now
            while st.queue and budget > 0:
                head = st.queue[0]
                if head.first_byte_s is None:
                    head.first_byte_s = clock
                if head.remaining_bits <= budget * (1 + 1e-12) + 1e-9:
                    clock += head.remaining_bits / st.rate_bps
                    budget -= head.remaining_bits
                    st.queue.popleft()
                    done.append(
                        Delivery(
                            head.chunk.device,
                            head.chunk.chunk,
                            head.chunk.nbytes,
                            head.submit_s,
                            head.first_byte_s,
                            clock,
                        )
                    )
                else:
                    head.remaining_bits -= budget
                    budget = 0.0
            if not st.queue:
                self._record_use(k, st, min(clock, t))
        return done

    def _record_use(self, k: int, st: _DeviceState, end: float) -> None:
        if st.active_since is not None and end > st.active_since:
            self._usage.append(RadioUse(self.devices[k].name, st.active_since, end, st.units))
        st.active_since = None

    def _close_slot(self) -> None:
        """End the allocation in force: record radio use up to now, release the RBs."""
        for k, st in enumerate(self._state):
            self._record_use(k, st, self._now)
            st.rate_bps, st.units = 0.0, 0
        self._slot = -1


def _largest_remainder(exact: np.ndarray, total: int) -> np.ndarray:
    """Round non-negative ``exact`` (summing to ``total``) to integers with the same sum.

    >>> _largest_remainder(np.array([1.5, 1.5, 1.0]), 4).tolist()
    [2, 1, 1]
    """
    base = np.floor(exact + 1e-9).astype(int)
    rest = total - int(base.sum())
    if rest > 0:
        frac = exact - base
        for k in np.argsort(-frac, kind="stable")[:rest]:
            base[k] += 1
    return base
