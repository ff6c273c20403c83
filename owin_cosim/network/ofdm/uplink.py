"""The analytic OFDM uplink backend: per-slot RB scheduling of the devices' queues.

Per slot, the scheduler gives each backlogged device a number of RBs proportional to its
share (largest-remainder rounding, never more than it needs to empty its queue), then
hands out RBs greedily by descending gain among devices with quota left. Bits flow at a
constant rate inside a slot (``first_byte_s`` is exact); a chunk is delivered at the end
of the slot that carried its last bit, as a transport block is decoded at the end of its
slot.

An explicit allocation (:meth:`OfdmUplink.set_allocation`, a plan's ``radio_grid``)
replaces the scheduler in the slots it covers: each RB goes to the device the grid
names (if it still has data), and a device splits its power evenly over the RBs it
holds; past the grid's last slot the scheduler above decides again.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from owin_cosim.errors import ConfigError
from owin_cosim.network.base import (
    AdvanceResult,
    ChunkTx,
    Delivery,
    NetworkBackend,
    RadioUse,
    UplinkDevice,
)
from owin_cosim.network.ofdm.channel import OfdmChannel
from owin_cosim.network.ofdm.config import OfdmConfig

__all__ = ["OfdmUplink"]

_EPS = 1e-12


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
        self._grid: list[list[int]] = []  # explicit RB owners per slot (-1: unused)
        #: Set to a dict to record the RB owners (device index, -1: unused) of every
        #: slot allocated (the exact reference reads its start plans' grids from it).
        self.allocation_log: dict[int, list[int]] | None = None

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

    def set_allocation(self, grid: Sequence[Sequence[str | None]]) -> None:
        """Follow ``grid[s][r]`` (a device name or None) in slots ``0 .. len(grid) - 1``.

        Raises
        ------
        ConfigError
            A row without one entry per RB, or an unknown device (key
            ``radio_grid.<slot>[.<rb>]``).
        """
        rows: list[list[int]] = []
        for s, row in enumerate(grid):
            if len(row) != self.config.num_rbs:
                raise ConfigError(
                    None,
                    f"radio_grid.{s}",
                    f"expected {self.config.num_rbs} entries (one per RB), got {len(row)}",
                )
            owners = []
            for r, name in enumerate(row):
                if name is not None and name not in self._index:
                    raise ConfigError(
                        None,
                        f"radio_grid.{s}.{r}",
                        f"no device called {name!r}; expected one of: "
                        f"{', '.join(self._index)}, or null",
                    )
                owners.append(-1 if name is None else self._index[name])
            rows.append(owners)
        self._grid = rows

    def has_backlog(self) -> bool:
        return bool(self._future or self._done_in_slot) or any(s.queue for s in self._state)

    def radio_usage(self) -> list[RadioUse]:
        return sorted(self._usage, key=lambda u: (u.start_s, u.device))

    def advance(self, until_s: float) -> AdvanceResult:
        cfg = self.config
        while self._now < until_s - _EPS:
            slot = math.floor(self._now / cfg.slot_s + 1e-9)
            if slot >= cfg.max_slots:
                raise ConfigError(
                    None,
                    "network.ofdm.max_slots",
                    f"the uplink reached max_slots={cfg.max_slots} "
                    f"({cfg.max_slots * cfg.slot_s:g} s) with data still to send; expected "
                    "a larger max_slots (or closer devices, smaller payloads)",
                )
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
        if slot < len(self._grid):
            self._follow_grid(self._grid[slot], active, gains, slot)
            return
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
        self._hold(owner, rates, slot)

    def _follow_grid(
        self, row: list[int], active: np.ndarray, gains: np.ndarray, slot: int
    ) -> None:
        """The slot's allocation as the grid says; RBs of devices without data stay idle."""
        owner = np.array(row)
        held = owner >= 0
        owner[held] = np.where(active[owner[held]], owner[held], -1)
        self._hold(owner, self._rates(owner, gains), slot)

    def _hold(self, owner: np.ndarray, rates: np.ndarray, slot: int) -> None:
        """Put the slot's allocation ``owner`` (with its ``rates``) in force."""
        units = np.bincount(owner[owner >= 0], minlength=len(self._state))
        for k, st in enumerate(self._state):
            st.rate_bps, st.units = float(rates[k]), int(units[k])
        if self.allocation_log is not None:
            self.allocation_log[slot] = owner.tolist()

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
