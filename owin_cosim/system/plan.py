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

Three optional fields pin down the compute side further (None: the policy leaves it to
``eft``; see ``docs/plans.md``):

- ``placement``: layer name -> core index, or a list of core indices: the layer is split
  over those cores (of one type, in a group size it has an option for; see
  :mod:`owin_cosim.system.options`). A placed layer goes there (at the earliest start)
  instead of where ``eft`` would put it.
- ``priorities``: layer name -> priority, replacing the layer's upward rank (in seconds)
  when the ready list is sorted (larger first, ties by layer number).
- ``core_order``: core index -> layer names. A listed layer runs on that core (a split
  layer is listed on each of its cores), and is dispatched only after the layer before
  it in each of those lists has been dispatched (so it starts no earlier than they end).
  The order must agree with precedence: the DAG's edges
  plus each list's consecutive pairs must form no cycle, or the run would deadlock.

One optional field pins down the radio side (None: the shares of ``radio_phases`` drive
the backend's own scheduler):

- ``radio_grid``: per slot, per RB, the name of the device that owns it (None: unused),
  from slot 0. The OFDM uplink follows it exactly (a device splits its power evenly
  over the RBs it holds); past the grid's last slot the radio phases govern as without
  it. Backends that cannot follow an explicit allocation (ns-3) refuse it. The exact
  reference (:mod:`owin_cosim.exact`) writes plans with a grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Plan", "RadioPhase", "placed_cores"]


def placed_cores(value: int | list[int]) -> tuple[int, ...]:
    """The cores a ``placement`` value names: one core, or the cores of a split.

    >>> placed_cores(2), placed_cores([3, 1])
    ((2,), (3, 1))
    """
    return tuple(value) if isinstance(value, list) else (value,)


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
    placement: dict[str, int | list[int]] | None = None
    priorities: dict[str, float] | None = None
    core_order: dict[int, list[str]] | None = None
    radio_grid: tuple[tuple[str | None, ...], ...] | None = None

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
            # Only when set, so that the summaries of plain policy runs stay as they were.
            **{k: v for k, v in self.schedule().items() if v is not None},
            **({} if self.radio_grid is None else {"radio_grid": self.grid_rows()}),
            **self.notes,
        }

    def schedule(self) -> dict[str, Any]:
        """The optional compute-side fields, JSON-ready (None where not set).

        >>> Plan("p", (RadioPhase({"a": 1.0}),), (("a", 0),), "on_arrival",
        ...      core_order={1: ["x", "y"]}).schedule()
        {'placement': None, 'priorities': None, 'core_order': {'1': ['x', 'y']}}
        """
        order = self.core_order
        return {
            "placement": None
            if self.placement is None
            else {k: list(v) if isinstance(v, list) else v for k, v in self.placement.items()},
            "priorities": None if self.priorities is None else dict(self.priorities),
            "core_order": None
            if order is None
            else {str(j): list(names) for j, names in sorted(order.items())},
        }

    def grid_rows(self) -> list[list[str | None]] | None:
        """:attr:`radio_grid` as JSON-ready lists (None when not set).

        >>> Plan("p", (RadioPhase({"a": 1.0}),), (("a", 0),), "on_arrival",
        ...      radio_grid=(("a", None),)).grid_rows()
        [['a', None]]
        """
        return None if self.radio_grid is None else [list(row) for row in self.radio_grid]
