"""The chip's DRAM, shared by contention: a fluid model of the layers moving data at once.

Every running part of a layer is a *flow* with two costs measured alone on the chip:
``compute_s``, the time its compute and on-chip buffers need with unlimited DRAM
bandwidth, and ``dram_s``, the time its DRAM bytes take at the chip's whole bandwidth.
Alone it takes ``max(compute_s, dram_s)`` (the roofline). Its *demand* is the share of
the bandwidth it would use running at compute speed, ``dram_s / compute_s`` (above 1 it
is DRAM-bound even alone).

Sharing rule: max-min fair over the demands (water-filling). The flows are served in
increasing demand; each gets ``min(demand, what is left / flows left)``. A flow that
needs less than an equal share keeps what it needs and the rest goes to the others; no
flow gets more than its demand, and the shares never add up to more than the whole
bandwidth. A flow with share ``a`` progresses at ``a / dram_s`` of its work per second
(at ``1 / compute_s`` when it gets its whole demand), so its end moves whenever another
flow starts or ends: the coordinator calls :meth:`DramArbiter.add` and
:meth:`DramArbiter.remove` at those instants and re-reads :meth:`DramArbiter.finish_s`.

Examples
--------
Two DRAM-bound flows started together each take twice as long as alone:

>>> arb: DramArbiter[str] = DramArbiter()
>>> arb.add("a", compute_s=1.0, dram_s=2.0, now=0.0)
>>> arb.finish_s("a")
2.0
>>> arb.add("b", compute_s=1.0, dram_s=2.0, now=0.0)
>>> arb.finish_s("a"), arb.finish_s("b")
(4.0, 4.0)
>>> max_min_fair([0.1, 0.9, 0.9])
[0.1, 0.45, 0.45]
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["DramArbiter", "Flow", "demand_of", "max_min_fair"]

K = TypeVar("K", bound=Hashable)


def demand_of(compute_s: float, dram_s: float) -> float:
    """The bandwidth share a flow uses at compute speed: ``dram_s / compute_s``.

    Above 1 the flow is DRAM-bound even alone; ``inf`` for a flow with no compute side.

    >>> demand_of(2.0, 1.0), demand_of(1.0, 3.0), demand_of(0.0, 0.0)
    (0.5, 3.0, 0.0)
    """
    if dram_s <= 0.0:
        return 0.0
    if compute_s <= 0.0:
        return math.inf
    return dram_s / compute_s


def max_min_fair(
    demands: Sequence[float], capacity: float = 1.0, counts: Sequence[int] | None = None
) -> list[float]:
    """Max-min fair shares of ``capacity`` (water-filling), in the order of ``demands``.

    ``counts[i]`` identical flows stand behind entry ``i`` (the equal parts of a split
    layer, which run in lockstep); each of them gets the returned share. Ties in demand
    are served in index order, so the result is deterministic.

    >>> max_min_fair([1.0, 1.0]), max_min_fair([0.2, 1.0], 1.0)
    ([0.5, 0.5], [0.2, 0.8])
    >>> max_min_fair([1.0, 1.0], counts=[3, 1])
    [0.25, 0.25]
    """
    many = [1] * len(demands) if counts is None else counts
    order = sorted(range(len(demands)), key=lambda i: (demands[i], i))
    shares = [0.0] * len(demands)
    left, remaining = sum(many), capacity
    for i in order:
        share = min(demands[i], remaining / left)
        shares[i] = share
        remaining = max(0.0, remaining - share * many[i])
        left -= many[i]
    return shares


@dataclass(slots=True)
class Flow:
    """One running part: its costs alone, its share now, and when it will end."""

    compute_s: float
    dram_s: float
    demand: float
    #: Identical parts behind this flow (a split layer's equal parts run in lockstep).
    count: int = 1
    share: float = -1.0
    #: Seconds per unit of work at the current share (``inf``: stalled).
    period: float = 0.0
    #: When it ends at the current pace (``inf`` while stalled).
    end: float = 0.0
    #: Work left when stalled (otherwise implied by ``end``).
    left: float = 1.0

    def pace(self, share: float) -> float:
        """Seconds per unit of work at ``share``.

        A flow that gets its whole demand runs at compute speed (exactly ``compute_s``,
        so a layer alone ends when its roofline says); otherwise DRAM sets the pace,
        ``dram_s / share``.
        """
        if share >= self.demand:
            return max(self.compute_s, 0.0)
        return self.dram_s / share if share > 0.0 else math.inf

    def set_share(self, share: float, now: float) -> None:
        """From ``now`` on, run at ``share``; the end moves only if the pace changes."""
        period = self.pace(share)
        self.share = share
        if period == self.period:
            return
        if math.isfinite(self.period):
            self.left = (self.end - now) / self.period if self.period > 0.0 else 0.0
        self.period = period
        self.end = now + self.left * period if math.isfinite(period) else math.inf


class DramArbiter(Generic[K]):
    """The flows on the chip's DRAM, their max-min fair shares and their predicted ends.

    Keys are whatever the caller uses to name a part (e.g. ``(layer, part)``); the order
    in which flows were added breaks ties, so runs are deterministic.
    """

    def __init__(self) -> None:
        self._flows: dict[K, Flow] = {}

    def __len__(self) -> int:
        return len(self._flows)

    def __contains__(self, key: object) -> bool:
        return key in self._flows

    @property
    def total_share(self) -> float:
        """Sum of the shares in force (never above 1)."""
        return sum(f.share * f.count for f in self._flows.values())

    def shares(self) -> dict[K, float]:
        """The share of every flow now."""
        return {k: f.share for k, f in self._flows.items()}

    def _share_out(self, now: float) -> None:
        flows = list(self._flows.values())
        shares = max_min_fair([f.demand for f in flows], counts=[f.count for f in flows])
        for f, share in zip(flows, shares, strict=True):
            f.set_share(share, now)

    def add(self, key: K, compute_s: float, dram_s: float, now: float, count: int = 1) -> None:
        """Start a flow (``count`` identical parts) at ``now``; every share is recomputed."""
        if key in self._flows:
            raise ValueError(f"flow {key!r} is already running")
        flow = Flow(compute_s, dram_s, demand_of(compute_s, dram_s), count, period=math.inf)
        self._flows[key] = flow
        self._share_out(now)

    def remove(self, key: K, now: float) -> None:
        """End a flow at ``now``; the others share what it used."""
        del self._flows[key]
        self._share_out(now)

    def finish_s(self, key: K) -> float:
        """When the flow ends if nothing else starts or ends before."""
        return self._flows[key].end

    def work_left(self, key: K, now: float) -> float:
        """The fraction of the flow's work still to do at ``now`` (1 at its start).

        >>> arb: DramArbiter[str] = DramArbiter()
        >>> arb.add("a", compute_s=2.0, dram_s=0.0, now=0.0)
        >>> arb.work_left("a", 0.5)
        0.75
        """
        f = self._flows[key]
        if not math.isfinite(f.period):
            return f.left
        return (f.end - now) / f.period if f.period > 0.0 else 0.0

    def finishes(self) -> dict[K, float]:
        """:meth:`finish_s` of every flow, in the order they were added."""
        return {k: f.end for k, f in self._flows.items()}

    def preview(
        self, compute_s: Sequence[float], dram_s: Sequence[float], counts: Sequence[int]
    ) -> list[float]:
        """How long new flows would take if they started now and nothing else changed.

        Used by dispatch to estimate a candidate's finish: the new flows (``counts[i]``
        parts each) and the running ones are shared out together, and each new flow's
        time is its pace.
        """
        running = list(self._flows.values())
        new = [demand_of(c, d) for c, d in zip(compute_s, dram_s, strict=True)]
        shares = max_min_fair(
            [f.demand for f in running] + new,
            counts=[f.count for f in running] + list(counts),
        )[len(running) :]
        return [
            Flow(c, d, dem).pace(share)
            for c, d, dem, share in zip(compute_s, dram_s, new, shares, strict=True)
        ]
