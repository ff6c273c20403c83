"""A tiny discrete-event core: a heap of ``(time, priority, seq, event)``.

Modelled on SimPy's ``Environment``: events at the same time are ordered by priority,
then by insertion order (``seq``), so a run is deterministic whatever the payloads.
An event can be cancelled (a layer whose end moved because the DRAM shares changed):
it stays in the heap and is skipped when it reaches the top.
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
    #: A part of a layer finished on a core.
    LAYER_DONE = 1
    #: A dispatched layer's inputs have crossed the NoC: it starts on its cores.
    LAYER_START = 2


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
    >>> for t, kind, what in [(2.0, EventKind.LAYER_DONE, "b"), (2.0, EventKind.DELIVERY, "a"),
    ...                       (1.0, EventKind.LAYER_DONE, "c")]:
    ...     _ = q.push(t, kind, what)
    >>> [e.payload for e in q.pop_simultaneous()], [e.payload for e in q.pop_simultaneous()]
    (['c'], ['a', 'b'])
    >>> token = q.push(0.5, EventKind.LAYER_DONE, "moved")
    >>> q.cancel(token); q.peek_time(), len(q)
    (inf, 0)
    """

    def __init__(self) -> None:
        self._heap: list[Event] = []
        self._seq = 0
        self._cancelled: set[int] = set()
        self._live: set[int] = set()

    def __len__(self) -> int:
        return len(self._live)

    def push(self, time: float, kind: EventKind, payload: Any) -> int:
        """Schedule ``payload`` at ``time``; returns a token for :meth:`cancel`."""
        if math.isnan(time):
            raise ValueError("event time is NaN")
        heapq.heappush(self._heap, Event(time, kind, self._seq, payload))
        self._live.add(self._seq)
        self._seq += 1
        return self._seq - 1

    def cancel(self, token: int) -> None:
        """Drop the event ``token`` (from :meth:`push`) if it has not been popped yet."""
        if token in self._live:
            self._live.discard(token)
            self._cancelled.add(token)

    def _drop_cancelled(self) -> None:
        while self._heap and self._heap[0].seq in self._cancelled:
            self._cancelled.discard(heapq.heappop(self._heap).seq)

    def peek_time(self) -> float:
        """Time of the next event, ``inf`` when empty."""
        self._drop_cancelled()
        return self._heap[0].time if self._heap else math.inf

    def pop_simultaneous(self) -> list[Event]:
        """Pop every event at the earliest time, in ``(kind, seq)`` order."""
        self._drop_cancelled()
        if not self._heap:
            return []
        first = heapq.heappop(self._heap)
        batch = [first]
        while True:
            self._drop_cancelled()
            if not self._heap or self._heap[0].time != first.time:
                break
            batch.append(heapq.heappop(self._heap))
        self._live.difference_update(e.seq for e in batch)
        return batch
