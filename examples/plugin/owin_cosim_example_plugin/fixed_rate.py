"""``fixed-rate``: a fluid uplink of one fixed rate shared in proportion to the shares.

The link carries ``rate_bps``. At every instant the backlogged devices with a positive
share split it in proportion to their shares (if none has one, every backlogged device
gets an equal part: the link is work-conserving); each device sends its chunks in FIFO
order, at its whole part of the rate. Rates change only when the set of backlogged
devices or the shares change, so every delivery time is computed in closed form from
the last change (a device alone on the link delivers chunk ``c`` at exactly
``cumulative bytes x 8 / rate_bps``). No channel, no randomness: the seed is unused.

Registered in the entry-point group ``owin_cosim.network_backends``; its options are
the mapping ``network.fixed-rate`` of a scenario (:class:`FixedRateOptions`), e.g.::

    network:
      backend: fixed-rate
      fixed-rate: {rate_bps: 50000000}

Examples
--------
>>> devs = [UplinkDevice("a", 10.0, 0.1), UplinkDevice("b", 20.0, 0.1)]
>>> net = FixedRateUplink(8e6, devs)       # one byte per microsecond
>>> net.set_shares({"a": 3.0, "b": 1.0}, 0.0)
>>> net.submit(ChunkTx("a", 0, 3000), 0.0)
>>> net.submit(ChunkTx("b", 0, 3000), 0.0)
>>> [(d.device, d.last_byte_s) for d in net.advance(1.0).deliveries]  # a at 3/4 rate
[('a', 0.004)]
>>> [(d.device, d.last_byte_s) for d in net.advance(1.0).deliveries]  # b: 1000 B, then alone
[('b', 0.006)]
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from owin_cosim.network.base import (
    AdvanceResult,
    ChunkTx,
    Delivery,
    NetworkBackend,
    NetworkRef,
    RadioUse,
    UplinkDevice,
    UplinkSetup,
)
from owin_cosim.validation import validation_to_config_error

__all__ = ["RADIO_UNITS", "FixedRateBackendType", "FixedRateOptions", "FixedRateUplink"]

#: The link is reported in hundredths: a device holding half of it holds 50 units.
RADIO_UNITS = 100


class FixedRateOptions(BaseModel):
    """``network.fixed-rate``: every key with its type and default; others are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The link's rate (bit/s), shared by every device.
    rate_bps: float = Field(50e6, gt=0, allow_inf_nan=False)


@dataclass(slots=True)
class _Chunk:
    tx: ChunkTx
    submit_s: float
    #: The device's bits up to and including this chunk.
    end_bits: float
    first_byte_s: float | None = None


@dataclass(slots=True)
class _Device:
    name: str
    chunks: list[_Chunk] = field(default_factory=list)
    #: Bytes submitted so far (integers: the chunk ends are exact).
    submitted_bytes: int = 0
    #: First undelivered chunk.
    head: int = 0
    weight: float = 0.0
    rate_bps: float = 0.0
    #: Bits sent by the anchor time.
    sent_bits: float = 0.0
    #: The open radio-use interval: since when, on how many units.
    use_since: float | None = None
    use_units: int = 0

    @property
    def backlogged(self) -> bool:
        return self.head < len(self.chunks)

    def delivered_bits(self) -> float:
        return self.chunks[self.head - 1].end_bits if self.head else 0.0

    def head_end_bits(self) -> float:
        return self.chunks[self.head].end_bits if self.backlogged else self.delivered_bits()


class FixedRateUplink(NetworkBackend):
    """The fluid fixed-rate uplink (see the module docstring).

    Parameters
    ----------
    rate_bps : float
        The link's rate.
    devices : sequence of UplinkDevice
        The devices (only their names matter).
    """

    name = "fixed-rate"
    # What it simulates depends only on the submissions, share changes and their times.
    grant_invariant = True

    def __init__(self, rate_bps: float, devices: Sequence[UplinkDevice]) -> None:
        if not (rate_bps > 0 and math.isfinite(rate_bps)):
            raise ValueError(f"rate_bps must be finite and > 0, got {rate_bps}")
        self.rate_bps = rate_bps
        self._devices = [_Device(d.name) for d in devices]
        self._index = {d.name: k for k, d in enumerate(devices)}
        self._now = 0.0
        #: Rates hold since this instant; ``sent_bits`` are counted up to it.
        self._anchor_s = 0.0
        #: Submissions and share changes in the future: (time, seq, chunk or shares).
        self._future: list[tuple[float, int, ChunkTx | dict[str, float]]] = []
        self._seq = 0
        self._usage: list[RadioUse] = []

    # ---- interface ----------------------------------------------------------------
    @property
    def now_s(self) -> float:
        return self._now

    def submit(self, chunk: ChunkTx, at_s: float) -> None:
        if chunk.device not in self._index:
            raise KeyError(f"unknown device {chunk.device!r}")
        self._schedule(chunk, at_s)

    def set_shares(self, shares: Mapping[str, float], at_s: float) -> None:
        for name, value in shares.items():
            if name not in self._index:
                raise KeyError(f"unknown device {name!r}")
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"share of {name!r} must be finite and >= 0, got {value}")
        self._schedule(dict(shares), at_s)

    def advance(self, until_s: float) -> AdvanceResult:
        while True:
            self._apply_due()
            finish, done = self._next_delivery()
            event = self._future[0][0] if self._future else math.inf
            if finish <= min(event, until_s) and finish < math.inf:
                self._move_to(finish)
                return AdvanceResult(self._now, self._deliver(done))
            if event <= until_s:
                self._move_to(event)
                continue
            if until_s < math.inf:
                self._move_to(until_s)
            return AdvanceResult(self._now, ())

    def has_backlog(self) -> bool:
        pending = any(isinstance(item, ChunkTx) for _, _, item in self._future)
        return pending or any(d.backlogged for d in self._devices)

    def radio_usage(self) -> list[RadioUse]:
        open_ = [
            RadioUse(d.name, d.use_since, self._now, d.use_units)
            for d in self._devices
            if d.use_since is not None and self._now > d.use_since
        ]
        return sorted(self._usage + open_, key=lambda u: (u.start_s, u.device))

    # ---- internals ----------------------------------------------------------------
    def _schedule(self, item: ChunkTx | dict[str, float], at_s: float) -> None:
        if at_s < self._now:
            raise ValueError(f"at_s={at_s} s is in the past (backend at {self._now} s)")
        if at_s > self._now:
            heapq.heappush(self._future, (at_s, self._seq, item))
            self._seq += 1
            return
        self._apply(item)
        self._update_rates()

    def _move_to(self, t: float) -> None:
        """Let the clock run to ``t``: a head sending from now on has its first byte now.

        (Not when its rate is set: the coordinator may change the shares again at the
        same instant, after a delivery.)
        """
        if t <= self._now:
            return
        for d in self._devices:
            if d.rate_bps > 0 and d.chunks[d.head].first_byte_s is None:
                d.chunks[d.head].first_byte_s = self._now
        self._now = t

    def _apply_due(self) -> None:
        """Apply the submissions and share changes due by now (in submission order)."""
        if not self._future or self._future[0][0] > self._now:
            return
        while self._future and self._future[0][0] <= self._now:
            self._apply(heapq.heappop(self._future)[2])
        self._update_rates()

    def _apply(self, item: ChunkTx | dict[str, float]) -> None:
        if isinstance(item, ChunkTx):
            dev = self._devices[self._index[item.device]]
            dev.submitted_bytes += item.nbytes
            end_bits = float(dev.submitted_bytes) * 8.0
            dev.chunks.append(_Chunk(item, self._now, end_bits))
            return
        for dev in self._devices:
            dev.weight = float(item.get(dev.name, 0.0))

    def _rates(self) -> list[float]:
        """Every device's rate under the current backlog and shares."""
        active = [d for d in self._devices if d.backlogged]
        total = sum(d.weight for d in active if d.weight > 0)
        out = []
        for d in self._devices:
            if not d.backlogged:
                out.append(0.0)
            elif total > 0:
                out.append(self.rate_bps * (d.weight / total) if d.weight > 0 else 0.0)
            else:
                out.append(self.rate_bps * (1.0 / len(active)))
        return out

    def _update_rates(self) -> None:
        """After a change at ``now``: re-anchor if any rate changes."""
        rates = self._rates()
        if rates != [d.rate_bps for d in self._devices]:
            for d, rate in zip(self._devices, rates, strict=True):
                sent = d.sent_bits + d.rate_bps * (self._now - self._anchor_s)
                # Between the delivered bits and the head's end (the closed form is exact
                # up to rounding; a delivered chunk's bits are all sent).
                d.sent_bits = min(max(sent, d.delivered_bits()), d.head_end_bits())
                d.rate_bps = rate
                self._record_use(d)
            self._anchor_s = self._now

    def _next_delivery(self) -> tuple[float, list[_Device]]:
        """The earliest instant a head chunk completes, and the devices completing then."""
        best, done = math.inf, []
        for d in self._devices:
            if d.rate_bps <= 0:
                continue
            t = self._anchor_s + (d.chunks[d.head].end_bits - d.sent_bits) / d.rate_bps
            if t < best:
                best, done = t, [d]
            elif t == best:
                done.append(d)
        return best, done

    def _deliver(self, done: list[_Device]) -> tuple[Delivery, ...]:
        out = []
        for d in done:
            c = d.chunks[d.head]
            d.head += 1
            first = c.first_byte_s if c.first_byte_s is not None else self._now
            out.append(Delivery(c.tx.device, c.tx.chunk, c.tx.nbytes, c.submit_s, first, self._now))
        self._update_rates()
        return tuple(out)

    def _record_use(self, d: _Device) -> None:
        """Close ``d``'s radio-use interval if its part of the link changed; open anew."""
        units = max(1, round(RADIO_UNITS * d.rate_bps / self.rate_bps)) if d.rate_bps else 0
        if units == d.use_units:
            return
        if d.use_since is not None and self._now > d.use_since:
            self._usage.append(RadioUse(d.name, d.use_since, self._now, d.use_units))
        d.use_since, d.use_units = (self._now, units) if units else (None, 0)


def _options(network: Mapping[str, Any], file: Path) -> FixedRateOptions:
    try:
        return FixedRateOptions.model_validate(network.get(FixedRateBackendType.name) or {})
    except ValidationError as exc:
        prefix = f"network.{FixedRateBackendType.name}"
        raise validation_to_config_error(exc, file, FixedRateOptions, prefix) from None


class FixedRateBackendType:
    """Registry entry ``fixed-rate``: options under ``network.fixed-rate``.

    Implements :class:`owin_cosim.network.registry.NetworkBackendType`. The planning
    surrogate is the same link (the model is exact and deterministic).
    """

    name = "fixed-rate"

    def setup(
        self,
        network: Mapping[str, Any],
        devices: Sequence[UplinkDevice],
        chunk_bytes: Sequence[Sequence[int]],
        seed: int,
        file: Path,
    ) -> UplinkSetup:
        """Validate ``network.fixed-rate``; describe the uplink and its bounds.

        No device sends faster than the whole link, so chunk ``c`` of a device arrives
        no earlier than its cumulative bits over ``rate_bps``, and all the bits need at
        least their total over ``rate_bps``.

        Raises
        ------
        ConfigError
            Naming ``network.fixed-rate.<key>`` for an unknown key or a bad value.
        """
        opts = _options(network, file)
        rate = opts.rate_bps
        ref = NetworkRef(self.name, opts, tuple(devices), seed)
        return UplinkSetup(
            network=ref,
            planning=ref,
            mean_rate_bps=tuple(rate for _ in devices),
            earliest_arrival_s=tuple(
                tuple(float(c) * 8.0 / rate for c in accumulate(b)) for b in chunk_bytes
            ),
            radio_bound_s=float(sum(sum(b) for b in chunk_bytes)) * 8.0 / rate,
            radio_units=RADIO_UNITS,
        )

    def create(self, ref: NetworkRef) -> NetworkBackend:
        """A fresh link from the recipe written by :meth:`setup`."""
        opts = ref.config
        if not isinstance(opts, FixedRateOptions):
            raise TypeError(f"expected FixedRateOptions in the recipe, got {opts!r}")
        return FixedRateUplink(opts.rate_bps, ref.devices)
