"""A tiny discrete-event core: a heap of ``(time, priority, seq, event)``.

Modelled on SimPy's ``Environment``: events at the same time are ordered by priority,
then by insertion order (``seq``), so a run is deterministic whatever the payloads.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

__all__ = ["Event", "EventKind", "EventQueue"]


class EventKind(IntEnum):
    """Event kinds; the value is the priority at equal times (lower first)."""

    #: A chunk fully received: data must be known before layers finishing at t act.
    DELIVERY = 0
    #: A layer finished on a core.
    LAYER_DONE = 1


@dataclass(frozen=True, slots=True, order=True)
class Event:
    """An event on the heap; ordering is ``(time, kind, seq)``, never the payload."""

    time: float
    kind: EventKind
    seq: int
    payload: Any = field(compare=False)


class EventQueue:
    """Min-heap of events with a deterministic tiebreak.

    Examples
    --------
    >>> q = EventQueue()
    >>> q.push(2.0, EventKind.LAYER_DONE, "b")
    >>> q.push(2.0, EventKind.DELIVERY, "a")
    >>> q.push(1.0, EventKind.LAYER_DONE, "c")
    >>> [e.payload for e in q.pop_simultaneous()], [e.payload for e in q.pop_simultaneous()]
    (['c'], ['a', 'b'])
    """

    def __init__(self) -> None:
        self._heap: list[Event] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, time: float, kind: EventKind, payload: Any) -> None:
        """Schedule ``payload`` at ``time``."""
        if math.isnan(time):
            raise ValueError("event time is NaN")
        heapq.heappush(self._heap, Event(time, kind, self._seq, payload))
        self._seq += 1

    def peek_time(self) -> float:
        """Time of the next event, ``inf`` when empty."""
        return self._heap[0].time if self._heap else math.inf

    def pop_simultaneous(self) -> list[Event]:
        """Pop every event at the earliest time, in ``(kind, seq)`` order."""
        if not self._heap:
            return []
        first = heapq.heappop(self._heap)
        batch = [first]
        while self._heap and self._heap[0].time == first.time:
            batch.append(heapq.heappop(self._heap))
        return batch
