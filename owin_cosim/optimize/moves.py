"""Moves of the plan search: each turns a :class:`~owin_cosim.optimize.state.State` into a
neighbour, or returns None where it does not apply.

Radio moves (the order and the shares over time):

- ``swap``: two devices of different phases trade places (and their weights);
- ``move``: a device leaves its phase for another one, or for a new phase of its own;
- ``merge``: two consecutive phases become one (both groups send together);
- ``split``: a phase of several devices becomes two: a random part of them first, the
  other part kept on a low weight meanwhile (0.05 or 0.25 of its own, or none);
- ``share``: one device's weight in one phase is scaled by ``exp(N(0, 1))``, set to the
  phase's largest, set to 0 or raised from 0 (soft versus hard priority).

Compute moves (what ``eft`` dispatch cannot find by itself, since it decides each layer
greedily when it becomes ready):

- ``priority``: a layer (drawn as for ``place``, below) moves up or down among the others
  by up to 8 places in priority order (the ready list is sorted by it);
- ``place``: a layer, drawn with probability proportional to its fastest time alone, is
  pinned to one of its options (core type, group size) on random cores of that type (a
  split when the group has several), or unpinned;
- ``chunks``: two chunks of one device trade places in the chunk order;
- ``release``: ``after_all_uploads`` becomes ``on_arrival`` (a start from RTFS).

Every move draws from the generator it is given, and nothing else: same generator
state, same neighbour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from owin_cosim.optimize.state import State
from owin_cosim.system.problem import Problem

__all__ = ["MOVES", "Move", "neighbour"]

Move = Callable[[State, Problem, np.random.Generator], State | None]

#: Weights in the share moves: the floor of a raised weight, and the largest scale step.
_LOW_WEIGHTS = (0.05, 0.25)
_SHARE_SIGMA = 1.0
#: How far (in places of the priority order) a priority move goes at most.
_PRIORITY_REACH = 8


def _normalised(row: list[float], active: list[int]) -> tuple[float, ...]:
    """Weights scaled so the largest among the devices still sending is 1 (all in [0, 1])."""
    top = max((row[k] for k in active), default=0.0)
    if top <= 0.0:
        return tuple(1.0 if k in active else 0.0 for k in range(len(row)))
    return tuple(min(1.0, max(0.0, w / top)) for w in row)


def _index(problem: Problem) -> dict[str, int]:
    return {d.name: k for k, d in enumerate(problem.devices)}


def _ensure_positive(state: State, problem: Problem) -> State:
    """Each phase gives its own group a positive weight (else it waits on the others)."""
    index = _index(problem)
    rows = []
    done: list[int] = []
    for group, row in zip(state.groups, state.shares, strict=True):
        ks = [index[d] for d in group]
        new = list(row)
        top = max(new) if max(new) > 0 else 1.0
        for k in ks:
            if new[k] <= 0.0:
                new[k] = top
        active = [k for k in range(len(new)) if k not in done]
        rows.append(_normalised(new, active))
        done += ks
    return replace(state, shares=tuple(rows))


def _heavy_layer(problem: Problem, rng: np.random.Generator) -> int:
    """A layer drawn with probability proportional to its fastest time alone: where a
    layer runs matters in proportion to how long it runs."""
    w = np.asarray(problem.dag.duration_s, dtype=float) + 1e-12
    return int(rng.choice(len(w), p=w / w.sum()))


def swap(state: State, problem: Problem, rng: np.random.Generator) -> State | None:
    """Two devices of different phases trade places and weights."""
    if len(state.groups) < 2:
        return None
    i, j = sorted(rng.choice(len(state.groups), 2, replace=False).tolist())
    a = state.groups[i][int(rng.integers(len(state.groups[i])))]
    b = state.groups[j][int(rng.integers(len(state.groups[j])))]
    index = _index(problem)
    ka, kb = index[a], index[b]
    groups = tuple(tuple(b if d == a else a if d == b else d for d in g) for g in state.groups)
    rows = []
    for row in state.shares:
        new = list(row)
        new[ka], new[kb] = row[kb], row[ka]
        rows.append(tuple(new))
    return replace(state, groups=groups, shares=tuple(rows))


def move(state: State, problem: Problem, rng: np.random.Generator) -> State | None:
    """A device leaves its phase for another phase or a new one of its own."""
    devices = [(i, d) for i, g in enumerate(state.groups) for d in g]
    if len(devices) < 2:
        return None
    i, dev = devices[int(rng.integers(len(devices)))]
    groups = [list(g) for g in state.groups]
    rows = [list(r) for r in state.shares]
    groups[i].remove(dev)
    # Targets: every other phase, or a new phase before position p (0..len).
    target = int(rng.integers(2 * len(groups) + 1))
    if target < len(groups):
        if target == i:
            return None
        groups[target].append(dev)
    else:
        p = target - len(groups)
        groups.insert(p, [dev])
        rows.insert(p, list(rows[min(p, len(rows) - 1)]))
    kept = [(g, r) for g, r in zip(groups, rows, strict=True) if g]
    new = replace(
        state,
        groups=tuple(tuple(g) for g, _ in kept),
        shares=tuple(tuple(r) for _, r in kept),
    )
    return _ensure_positive(new, problem)


def merge(state: State, problem: Problem, rng: np.random.Generator) -> State | None:
    """Two consecutive phases become one."""
    if len(state.groups) < 2:
        return None
    i = int(rng.integers(len(state.groups) - 1))
    groups = list(state.groups)
    rows = list(state.shares)
    groups[i : i + 2] = [groups[i] + groups[i + 1]]
    rows[i : i + 2] = [rows[i]]
    return _ensure_positive(replace(state, groups=tuple(groups), shares=tuple(rows)), problem)


def split(state: State, problem: Problem, rng: np.random.Generator) -> State | None:
    """A phase of several devices becomes two (a random part of them first)."""
    many = [i for i, g in enumerate(state.groups) if len(g) > 1]
    if not many:
        return None
    i = many[int(rng.integers(len(many)))]
    index = _index(problem)
    row = state.shares[i]
    ranked = [state.groups[i][int(j)] for j in rng.permutation(len(state.groups[i]))]
    cut = int(rng.integers(1, len(ranked)))
    first, second = tuple(ranked[:cut]), tuple(ranked[cut:])
    low = float(rng.choice([0.0, *_LOW_WEIGHTS]))
    head = list(row)
    for d in second:
        head[index[d]] = row[index[d]] * low
    groups = list(state.groups)
    rows = list(state.shares)
    groups[i : i + 1] = [first, second]
    rows[i : i + 1] = [tuple(head), row]
    return _ensure_positive(replace(state, groups=tuple(groups), shares=tuple(rows)), problem)


def share(state: State, problem: Problem, rng: np.random.Generator) -> State | None:
    """One device's weight in one phase: scaled, set to 0, or raised from 0."""
    index = _index(problem)
    i = int(rng.integers(len(state.groups)))
    done = {index[d] for g in state.groups[:i] for d in g}
    active = [k for k in range(len(problem.devices)) if k not in done]
    if len(active) < 2:
        return None
    k = active[int(rng.integers(len(active)))]
    own = k in {index[d] for d in state.groups[i]}
    row = list(state.shares[i])
    u = float(rng.random())
    if row[k] <= 0.0:
        row[k] = float(rng.choice(_LOW_WEIGHTS))
    elif u < 0.15:
        row[k] = 1.0  # first among equals: the largest weight of the phase
    elif u < 0.3 and not own:
        row[k] = 0.0  # a later device waits (a hard order)
    else:
        row[k] *= float(np.exp(rng.normal(0.0, _SHARE_SIGMA)))
    rows = list(state.shares)
    rows[i] = _normalised(row, active)
    return _ensure_positive(replace(state, shares=tuple(rows)), problem)


def priority(state: State, problem: Problem, rng: np.random.Generator) -> State | None:
    """A layer moves up or down by a few places in priority order."""
    n = len(problem.dag)
    if n < 2:
        return None
    prio = problem.dag.rank_s.astype(float).copy()
    for v, p in state.priorities:
        prio[v] = p
    order = sorted(range(n), key=lambda u: (-prio[u], u))  # dispatch order of a ready list
    v = _heavy_layer(problem, rng)
    pos = order.index(v)
    step = int(rng.integers(1, _PRIORITY_REACH + 1)) * (1 if rng.random() < 0.5 else -1)
    to = min(n - 1, max(0, pos - step))
    if to == pos:
        return None
    rest = [u for u in order if u != v]
    rest.insert(to, v)
    # v's new priority: between its new neighbours (above the next, below the previous).
    below = prio[rest[to + 1]] if to + 1 < n else prio[rest[to - 1]] - 1.0
    above = prio[rest[to - 1]] if to > 0 else prio[rest[1]] + 1.0
    value = float((above + below) / 2.0)
    pairs = dict(state.priorities)
    pairs[v] = value
    return replace(state, priorities=tuple(sorted(pairs.items())))


def place(state: State, problem: Problem, rng: np.random.Generator) -> State | None:
    """A layer is pinned to an option on random cores of its type, or unpinned."""
    frozen = set() if state.core_order is None else {n for _, ns in state.core_order for n in ns}
    names = problem.dag.names
    v = _heavy_layer(problem, rng)
    if names[v] in frozen:
        return None
    pinned = dict(state.placement)
    if v in pinned and rng.random() < 0.3:
        del pinned[v]
    else:
        options = problem.dag.layer_options[v]
        option = options[int(rng.integers(len(options)))]
        pool = problem.chip_types[option.core_type].cores
        picked = rng.choice(len(pool), option.group, replace=False)
        cores = tuple(sorted(int(pool[int(i)]) for i in picked))
        if pinned.get(v) == cores:
            return None
        pinned[v] = cores
    return replace(state, placement=tuple(sorted(pinned.items())))


def chunks(state: State, problem: Problem, rng: np.random.Generator) -> State | None:
    """Two chunks of one device trade places in the chunk order."""
    many = [d for d in problem.devices if d.chunks > 1]
    if not many:
        return None
    dev = many[int(rng.integers(len(many)))].name
    spots = [i for i, (d, _) in enumerate(state.chunk_order) if d == dev]
    i, j = rng.choice(len(spots), 2, replace=False).tolist()
    order = list(state.chunk_order)
    order[spots[i]], order[spots[j]] = order[spots[j]], order[spots[i]]
    return replace(state, chunk_order=tuple(order))


def release(state: State, problem: Problem, rng: np.random.Generator) -> State | None:
    """Let layers start on arrival (a start from RTFS holds them for every upload)."""
    if state.release == "on_arrival":
        return None
    return replace(state, release="on_arrival")


#: Move name -> (move, relative weight of drawing it).
MOVES: dict[str, tuple[Move, float]] = {
    "swap": (swap, 0.10),
    "move": (move, 0.10),
    "merge": (merge, 0.06),
    "split": (split, 0.08),
    "share": (share, 0.14),
    "priority": (priority, 0.20),
    "place": (place, 0.28),
    "chunks": (chunks, 0.02),
    # Applies only while compute is held back, so it costs nothing afterwards.
    "release": (release, 0.15),
}


def neighbour(state: State, problem: Problem, rng: np.random.Generator) -> tuple[State, str] | None:
    """Apply one to three moves (a small large-neighbourhood step): the state and the
    moves' names joined by ``+``, or None if the drawn moves changed nothing."""
    names = list(MOVES)
    weights = np.array([MOVES[n][1] for n in names])
    count = int(rng.choice([1, 2, 3], p=[0.7, 0.2, 0.1]))
    done: list[str] = []
    for _ in range(count):
        name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        new = MOVES[name][0](state, problem, rng)
        if new is not None and new != state:
            state = new
            done.append(name)
    return (state, "+".join(done)) if done else None
