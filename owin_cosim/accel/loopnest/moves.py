"""Moves in the map space of :mod:`owin_cosim.accel.loopnest.mapspace`: random points and
one-step neighbours.

:func:`sample` draws a valid-looking point (prime factors to random slots, half the time
spatial slots first, then repaired until the tiles fit), :func:`neighbour` moves one
step from a point (a prime factor to another slot, a loop swap or a keep toggle). Both
draw only from the generator they are given, so a seeded search repeats exactly.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

from owin_cosim.accel.loopnest.levels import DIMS
from owin_cosim.accel.loopnest.mapspace import (
    Slot,
    Space,
    State,
    _level_factors,
    _overfull,
    _primes,
    _spatial_ok,
)

__all__ = ["neighbour", "sample"]


def _random_perm(space: Space, i: int, rng: random.Random) -> tuple[str, ...]:
    pre = space.perm_prefix[i]
    rest = [d for d in DIMS if d not in pre]
    rng.shuffle(rest)
    return (*pre, *rest)


def _spatial_room(space: Space, st: State, slot: Slot, d: str, p: int) -> bool:
    i = slot[0]
    sf = _level_factors(space, st, i, 1)
    sf[d] *= p
    return _spatial_ok(space, sf, i)


def sample(space: Space, problem: Mapping[str, int], rng: random.Random) -> State:
    """A random point: prime factors to random slots (half the time spatial first), repaired."""
    n = len(space.levels)
    st = State(
        {d: {} for d in DIMS},
        [_random_perm(space, i, rng) for i in range(n)],
        {kd: rng.random() < 0.5 for kd in space.keep_free},
    )
    spatial_first = rng.random() < 0.5
    for d in DIMS:
        slots = space.free[d]
        if not slots:
            continue
        rest = space.bounds[d] // math.prod(space.fixed[d].values())
        primes = _primes(rest)
        rng.shuffle(primes)
        temporal = [s for s in slots if s[1] == 0]
        spatial = [s for s in slots if s[1] == 1]
        for p in primes:
            room = [s for s in spatial if _spatial_room(space, st, s, d, p)]
            if spatial_first and room:
                slot = rng.choice(room)
            else:
                cands = temporal + room
                if not cands:
                    cands = slots
                slot = rng.choice(cands)
            st.f[d][slot] = st.f[d].get(slot, 1) * p
    _repair(space, st, problem, rng)
    return st


def _repair(space: Space, st: State, problem: Mapping[str, int], rng: random.Random) -> None:
    """Move prime factors outwards until every level's tiles fit (bounded attempts)."""
    for _ in range(64):
        bad = _overfull(space, st, problem)
        if bad is None:
            return
        inner = [
            (d, s) for d in DIMS for s, v in st.f[d].items() if v > 1 and s[0] >= bad and s[1] == 0
        ] or [(d, s) for d in DIMS for s, v in st.f[d].items() if v > 1 and s[0] >= bad]
        outer_ok = [
            (d, s) for d, s in inner if any(t[0] < bad and t[1] == 0 for t in space.free[d])
        ]
        if not outer_ok:
            return
        d, s = rng.choice(outer_ok)
        p = rng.choice(_primes(st.f[d][s]))
        st.f[d][s] //= p
        dest = rng.choice([t for t in space.free[d] if t[0] < bad and t[1] == 0])
        st.f[d][dest] = st.f[d].get(dest, 1) * p


def neighbour(space: Space, st: State, rng: random.Random) -> State | None:
    """One move from ``st``: a prime factor to another slot, a loop swap or a keep toggle.

    ``None`` when the drawn move is not possible (the level has fewer than two free loops).
    """
    new = st.copy()
    r = rng.random()
    movable = [d for d in DIMS if len(space.free[d]) >= 2 and any(v > 1 for v in st.f[d].values())]
    if r < 0.6 and movable:
        d = rng.choice(movable)
        src = rng.choice([s for s, v in st.f[d].items() if v > 1])
        dst = rng.choice([s for s in space.free[d] if s != src])
        p = rng.choice(_primes(st.f[d][src]))
        new.f[d][src] //= p
        new.f[d][dst] = new.f[d].get(dst, 1) * p
        return new
    if r < 0.9 or not space.keep_free:
        i = rng.randrange(len(space.levels))
        perm = list(new.perms[i])
        npre = len(space.perm_prefix[i])
        if len(perm) - npre < 2:
            return None
        a, b = rng.sample(range(npre, len(perm)), 2)
        perm[a], perm[b] = perm[b], perm[a]
        new.perms[i] = tuple(perm)
        return new
    kd = rng.choice(space.keep_free)
    new.keep[kd] = not new.keep[kd]
    return new
