"""Plans: what a policy decides before the run, for the coordinator to carry out.

A plan fixes the *rules*; the coordinator applies them to the events that really happen:

- ``radio_phases``: a sequence of share vectors. Phase ``i`` holds until every device in
  its ``until_done`` has delivered all of its chunks; then phase ``i + 1`` starts. One
  phase with all devices is simultaneous transmission; one phase per device is a
  transmission order.
- ``chunk_order``: the order in which chunks are handed to their device's queue.
- ``compute_release``: ``"on_arrival"`` lets a layer start as soon as its own data (or
  chunk) is in; ``"after_all_uploads"`` holds every layer until the last bit of the last
  device has arrived (no overlap, as RTFS).
- ``dispatch``: how ready layers go to cores. ``"eft"``: in decreasing upward rank, each
  to the core giving the earliest finish time, NoC transfers included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Plan", "RadioPhase"]


@dataclass(frozen=True, slots=True)
class RadioPhase:
    """Radio shares in force until every device of ``until_done`` has finished."""

    shares: dict[str, float]
    until_done: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """A policy's decisions for one run.

    Examples
    --------
    >>> p = Plan("demo", (RadioPhase({"a": 1.0}, ("a",)), RadioPhase({"b": 1.0})),
    ...          (("a", 0), ("b", 0)), "on_arrival")
    >>> p.describe()["radio_phases"][0]
    {'shares': {'a': 1.0}, 'until_done': ['a']}
    """

    policy: str
    radio_phases: tuple[RadioPhase, ...]
    chunk_order: tuple[tuple[str, int], ...]
    compute_release: Literal["on_arrival", "after_all_uploads"]
    dispatch: Literal["eft"] = "eft"
    notes: dict[str, Any] = field(default_factory=dict, compare=False)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description, written into ``summary.json``."""
        return {
            "radio_phases": [
                {"shares": dict(p.shares), "until_done": list(p.until_done)}
                for p in self.radio_phases
            ],
            "chunk_order": [f"{d}#{c}" for d, c in self.chunk_order],
            "compute_release": self.compute_release,
            "dispatch": self.dispatch,
            **self.notes,
        }
