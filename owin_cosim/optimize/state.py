"""The search's view of a plan: a hashable :class:`State`, and the way back to a :class:`Plan`.

A state holds the same decisions as a plan, in a canonical form that moves can edit:

- the radio as *groups*: phase ``i`` holds until every device of ``groups[i]`` is done,
  the groups partition the devices, and ``shares[i]`` holds one weight per device (in
  the problem's device order). Phases that hold for no time (an empty ``until_done``
  before the last phase, or devices already finished) are dropped, and the last phase
  waits for every device not named before: the coordinator treats both forms alike;
- the chunk order and the release rule as in the plan;
- ``placement`` and ``priorities`` by layer number, sorted (only the layers the search,
  or the start plan, pinned or re-prioritised);
- the start plan's ``core_order``, kept as it is (the search does not edit it; layers it
  lists are never re-placed, so the two cannot disagree). Other fields of the start plan
  (an exact plan's ``radio_grid``) pass through :func:`to_plan`'s ``base`` unchanged.

>>> from owin_cosim.system.plan import Plan, RadioPhase
>>> class P:  # the two attributes of a Problem that from_plan reads
...     devices = [type("D", (), {"name": n})() for n in ("a", "b", "c")]
...     dag = type("G", (), {"names": ["x", "y"]})()
>>> plan = Plan("demo", (RadioPhase({"a": 0.5, "b": 1.0}),), (("a", 0),), "on_arrival")
>>> s = from_plan(plan, P())
>>> s.groups, s.shares
((('a', 'b', 'c'),), ((0.5, 1.0, 0.0),))
>>> to_plan(s, P(), "owin").radio_phases
(RadioPhase(shares={'a': 0.5, 'b': 1.0, 'c': 0.0}, until_done=('a', 'b', 'c')),)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from owin_cosim.system.plan import Plan, RadioPhase, placed_cores

__all__ = ["State", "from_plan", "to_plan"]

Release = Literal["on_arrival", "after_all_uploads"]


class _ProblemView(Protocol):
    """What converting needs of a :class:`~owin_cosim.system.problem.Problem`."""

    @property
    def devices(self) -> Any: ...

    @property
    def dag(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class State:
    """A plan in the search's canonical, hashable form (see the module docstring)."""

    groups: tuple[tuple[str, ...], ...]
    shares: tuple[tuple[float, ...], ...]
    chunk_order: tuple[tuple[str, int], ...]
    release: Release
    #: (layer number, cores), sorted by layer.
    placement: tuple[tuple[int, tuple[int, ...]], ...] = ()
    #: (layer number, priority), sorted by layer.
    priorities: tuple[tuple[int, float], ...] = ()
    #: The start plan's core order (never edited), as sorted (core, layer names) pairs.
    core_order: tuple[tuple[int, tuple[str, ...]], ...] | None = None


def _radio(plan: Plan, names: list[str]) -> tuple[list[tuple[str, ...]], list[tuple[float, ...]]]:
    """Groups and share rows of ``plan``'s phases, canonical (see the module docstring)."""
    groups: list[tuple[str, ...]] = []
    rows: list[tuple[float, ...]] = []
    seen: set[str] = set()
    phases = plan.radio_phases
    for i, phase in enumerate(phases):
        group: list[str] = []
        for dev in phase.until_done:
            if dev not in seen and dev not in group:
                group.append(dev)
        if i == len(phases) - 1:  # the last phase holds until the end
            group += [d for d in names if d not in seen and d not in group]
        if not group:  # holds for no time
            continue
        seen.update(group)
        groups.append(tuple(group))
        rows.append(tuple(float(phase.shares.get(d, 0.0)) for d in names))
    return groups, rows


def from_plan(plan: Plan, problem: _ProblemView) -> State:
    """The canonical state of ``plan`` (a plan checked against ``problem``)."""
    names = [d.name for d in problem.devices]
    groups, rows = _radio(plan, names)
    index = {name: v for v, name in enumerate(problem.dag.names)}
    placement = sorted(
        (index[name], tuple(sorted(placed_cores(c)))) for name, c in (plan.placement or {}).items()
    )
    priorities = sorted((index[name], float(p)) for name, p in (plan.priorities or {}).items())
    order = plan.core_order
    return State(
        tuple(groups),
        tuple(rows),
        tuple(plan.chunk_order),
        plan.compute_release,
        tuple(placement),
        tuple(priorities),
        None if order is None else tuple((j, tuple(v)) for j, v in sorted(order.items())),
    )


def to_plan(
    state: State,
    problem: _ProblemView,
    policy: str,
    notes: dict[str, Any] | None = None,
    base: Plan | None = None,
) -> Plan:
    """The :class:`Plan` a state stands for.

    The fields a state does not hold (e.g. an exact plan's ``radio_grid``) are taken
    from ``base``, the plan the search started from, unchanged.
    """
    names = [d.name for d in problem.devices]
    layer = problem.dag.names
    phases = tuple(
        RadioPhase(dict(zip(names, row, strict=True)), group)
        for group, row in zip(state.groups, state.shares, strict=True)
    )
    placement: dict[str, int | list[int]] | None = None
    if state.placement:
        placement = {
            layer[v]: (cores[0] if len(cores) == 1 else list(cores)) for v, cores in state.placement
        }
    priorities = {layer[v]: p for v, p in state.priorities} if state.priorities else None
    core_order = None
    if state.core_order is not None:
        core_order = {j: list(v) for j, v in state.core_order}
    decided = Plan(
        policy,
        phases,
        state.chunk_order,
        state.release,
        notes=dict(notes or {}),
        placement=placement,
        priorities=priorities,
        core_order=core_order,
    )
    if base is None:
        return decided
    edited = ("radio_phases", "chunk_order", "compute_release", "placement", "priorities")
    return replace(
        base,
        policy=policy,
        notes=decided.notes,
        core_order=core_order,
        **{name: getattr(decided, name) for name in edited},
    )
