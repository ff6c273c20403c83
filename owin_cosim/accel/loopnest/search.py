"""The mapper's search strategy: seeded random sampling, then a hill climb.

:func:`search` looks for the best mapping of a CNN-layer problem on a core's levels
(:func:`~owin_cosim.accel.loopnest.levels.levels_from_arch`) in the map space of
:mod:`owin_cosim.accel.loopnest.mapspace`, evaluating each candidate with
:func:`~owin_cosim.accel.loopnest.nest.evaluate` and ranking by Timeloop's
``optimization-metrics`` (:data:`~owin_cosim.accel.loopnest.constraints.METRICS`).

**The search.** Seeded random sampling of valid mappings (a third of the evaluation
budget; half of the samples place prime factors spatially first, which is where cycles
are won), then a first-improvement hill climb from the best few samples, moving one
prime factor between two slots, reordering a level's loops or toggling a keep/bypass
choice. The evaluation count is the primary bound (results do not depend on machine
speed); the time budget is only a safety stop. Identical candidates (same effective
loop nest) are evaluated once.

**Batches.** By default (``batched=True``) candidates are scored in numpy batches
(:func:`~owin_cosim.accel.loopnest.batch.evaluate_batch`, the same numbers bit for bit)
with the same random draws in the same order as one at a time: the samples are drawn,
then scored together, then taken in order; the climb speculates that the next moves do
not improve, scores a chunk of them, takes them in order up to the first improvement and
rewinds the generator to just after it (what was scored for nothing is kept, and does
not count against the budget). :func:`search_many` runs several searches of one problem
side by side, one shared batch per round. The time budget is checked between chunks.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from owin_cosim.accel.loopnest.batch import arrays_from_keys, evaluate_batch
from owin_cosim.accel.loopnest.constraints import DEFAULT_METRICS, METRICS, Constraints
from owin_cosim.accel.loopnest.levels import ComputeUnit, NestLevel
from owin_cosim.accel.loopnest.mapspace import (
    Space,
    State,
    build_space,
    checked_key,
    state_key,
    to_mapping,
    valid,
)
from owin_cosim.accel.loopnest.moves import neighbour, sample
from owin_cosim.accel.loopnest.nest import NestResult, evaluate
from owin_cosim.accel.timeloop.formats import MappingDirective
from owin_cosim.errors import ConfigError

__all__ = ["Progress", "SearchResult", "search", "search_many"]

#: Called as ``progress(evaluations_done, max_evaluations)`` after every new evaluation.
Progress = Callable[[int, int], None]

_N_CLIMBERS = 4  # hill climbs run side by side
_PATIENCE = 150  # neighbour attempts without improvement before a climber restarts

_Score = tuple[float, ...]


def _score(r: NestResult, metrics: Sequence[str]) -> _Score:
    value = {"delay": float(r.cycles), "energy": r.energy_pJ, "edp": r.cycles * r.energy_pJ}
    return (*(value[m] for m in metrics), float(r.cycles), r.energy_pJ)


@dataclass
class SearchResult:
    """The best mapping found, its evaluation and the number of evaluations spent."""

    mapping: list[MappingDirective]
    result: NestResult
    evaluations: int


def search(
    levels: list[NestLevel],
    compute: ComputeUnit,
    problem: Mapping[str, int],
    constraints: Constraints,
    *,
    seed: int = 0,
    max_evaluations: int = 3000,
    time_budget_s: float = 30.0,
    mesh_x: Mapping[str, int] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    progress: Progress | None = None,
    batched: bool = True,
) -> SearchResult:
    """Search mappings of ``problem`` on the core; best by ``metrics`` (cycles, then energy).

    Parameters
    ----------
    levels, compute
        From :func:`~owin_cosim.accel.loopnest.levels.levels_from_arch`.
    problem : dict
        CNN-layer instance (``R, S, P, Q, C, M, N``, strides, dilations).
    constraints : Constraints
        From :func:`~owin_cosim.accel.loopnest.constraints.read_constraints` (an empty
        ``Constraints()`` leaves all free).
    seed : int
        Seed of the search's random generator; same inputs, seed and budget give the
        same result.
    max_evaluations : int
        Primary bound: number of distinct mappings evaluated with the loop-nest model.
    time_budget_s : float
        Safety stop (wall clock); normally the evaluation budget ends the search first.
    mesh_x : dict, optional
        ``meshX`` per component name
        (:func:`~owin_cosim.accel.loopnest.constraints.mesh_from_arch`); without it only
        the total fan-out limits the spatial loops.
    metrics : sequence of str
        Timeloop's ``optimization-metrics``
        (:data:`~owin_cosim.accel.loopnest.constraints.METRICS`), compared in order:
        ``delay`` (cycles), ``energy`` (pJ) or ``edp`` (their product); cycles and
        then energy break remaining ties.
    progress : callable, optional
        Told ``(evaluations done, max_evaluations)`` after each new evaluation (for a
        status line; it does not change the search).
    batched : bool
        Score candidates in numpy batches (the default) or one at a time with
        :func:`~owin_cosim.accel.loopnest.nest.evaluate`; the same result either way.

    Returns
    -------
    SearchResult

    Examples
    --------
    >>> lv = [NestLevel("DRAM", 1, None, 1, None, None, 100.0, 100.0, 100.0),
    ...       NestLevel("buf", 4, 64, 1, None, None, 1.0, 1.0, 1.0)]
    >>> prob = dict(R=3, S=1, P=8, Q=1, C=1, M=4, N=1)
    >>> res = search(lv, ComputeUnit("mac", 4, 1.0), prob, Constraints(), max_evaluations=50)
    >>> res.result.cycles, res.evaluations <= 50
    (24, True)
    """
    _check_args(max_evaluations, metrics)
    if batched:
        args = (constraints, seed, max_evaluations, time_budget_s, mesh_x, metrics, progress)
        (out,) = _drive(levels, compute, problem, [_batched_steps(levels, compute, problem, *args)])
        if isinstance(out, ConfigError):
            raise out
        return out
    rng = random.Random(seed)
    space = build_space(levels, compute, problem, constraints, mesh_x)
    ev = _Evaluations(
        space, levels, compute, dict(problem), metrics, max_evaluations, time_budget_s, progress
    )
    pool = _sample_pool(ev, rng)
    if ev.best is None:
        raise ConfigError(None, "mapping", "no valid mapping found within the budget")
    _climb(ev, pool, rng)
    return _finish(ev)


def search_many(
    levels: list[NestLevel],
    compute: ComputeUnit,
    problem: Mapping[str, int],
    runs: Sequence[tuple[Constraints, int]],
    *,
    seed: int = 0,
    time_budget_s: float = 30.0,
    mesh_x: Mapping[str, int] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> list[SearchResult | ConfigError]:
    """Batched :func:`search` of one problem under several ``(constraints, budget)`` runs.

    The runs advance side by side and share one ``evaluate_batch`` call per round (its
    rows do not depend on each other); each run gives what :func:`search` gives for it
    alone, or the :class:`ConfigError` that raises.

    Examples
    --------
    >>> lv = [NestLevel("DRAM", 1, None, 1, None, None, 100.0, 100.0, 100.0),
    ...       NestLevel("buf", 4, 64, 1, None, None, 1.0, 1.0, 1.0)]
    >>> mac, prob = ComputeUnit("mac", 4, 1.0), dict(R=3, S=1, P=8, Q=1, C=1, M=4, N=1)
    >>> a, b = search_many(lv, mac, prob, [(Constraints(), 50), (Constraints(), 20)])
    >>> a.result == search(lv, mac, prob, Constraints(), max_evaluations=50).result
    True
    """
    for _, budget in runs:
        _check_args(budget, metrics)
    gens = [
        _batched_steps(
            levels, compute, problem, c, seed, budget, time_budget_s, mesh_x, metrics, None
        )
        for c, budget in runs
    ]
    return _drive(levels, compute, problem, gens)


def _check_args(max_evaluations: int, metrics: Sequence[str]) -> None:
    if max_evaluations < 1:
        raise ConfigError(None, "max_evaluations", "expected an integer >= 1")
    bad = [m for m in metrics if m not in METRICS]
    if bad or not metrics:
        raise ConfigError(None, "optimization_metrics", f"expected some of {METRICS}, got {bad}")


#: What a batched search asks for: score these keys (not scored yet) into this memo.
_Request = tuple["_Evaluations", list[tuple[Any, ...]]]
_Steps = Generator[_Request, None, SearchResult]


def _batched_steps(
    levels: list[NestLevel],
    compute: ComputeUnit,
    problem: Mapping[str, int],
    constraints: Constraints,
    seed: int,
    max_evaluations: int,
    time_budget_s: float,
    mesh_x: Mapping[str, int] | None,
    metrics: Sequence[str],
    progress: Progress | None,
) -> _Steps:
    """The batched search as a generator of scoring requests (driven by :func:`_drive`)."""
    rng = random.Random(seed)
    space = build_space(levels, compute, problem, constraints, mesh_x)
    ev = _Evaluations(
        space, levels, compute, dict(problem), metrics, max_evaluations, time_budget_s, progress
    )
    pool = yield from _sample_pool_batched(ev, rng)
    if ev.best is None:
        raise ConfigError(None, "mapping", "no valid mapping found within the budget")
    yield from _climb_batched(ev, pool, rng)
    return _finish(ev)


def _drive(
    levels: list[NestLevel],
    compute: ComputeUnit,
    problem: Mapping[str, int],
    gens: Sequence[_Steps],
) -> list[SearchResult | ConfigError]:
    """Run batched searches side by side, one shared batch per round; results in order."""
    out: list[SearchResult | ConfigError | None] = [None] * len(gens)
    waiting: dict[int, _Request] = {}

    def advance(k: int) -> None:
        try:
            waiting[k] = next(gens[k])
        except StopIteration as stop:
            out[k] = stop.value
        except ConfigError as err:
            out[k] = err

    for k in range(len(gens)):
        advance(k)
    while waiting:
        reqs = sorted(waiting.items())
        waiting.clear()
        keys = [key for _, (_, todo) in reqs for key in todo]
        arrays = arrays_from_keys(keys, len(levels))
        cycles, energy = (a.tolist() for a in evaluate_batch(levels, compute, problem, *arrays))
        at = 0
        for k, (ev, todo) in reqs:
            ev.store(todo, cycles[at : at + len(todo)], energy[at : at + len(todo)])
            at += len(todo)
            advance(k)
    return [r for r in out if r is not None]


def _finish(ev: _Evaluations) -> SearchResult:
    assert ev.best is not None
    mapping = to_mapping(ev.space, ev.best[1])
    result = evaluate(ev.levels, ev.compute, ev.problem, mapping)
    return SearchResult(mapping, result, len(ev.cache))


class _Evaluations:
    """Each distinct candidate evaluated once, within the budget; the best one kept."""

    def __init__(
        self,
        space: Space,
        levels: list[NestLevel],
        compute: ComputeUnit,
        problem: dict[str, int],
        metrics: Sequence[str],
        max_evaluations: int,
        time_budget_s: float,
        progress: Progress | None,
    ) -> None:
        self.space, self.levels, self.compute, self.problem = space, levels, compute, problem
        self.metrics, self.max_evaluations = metrics, max_evaluations
        self.time_budget_s, self.progress = time_budget_s, progress
        self.t0 = time.monotonic()
        self.cache: dict[tuple[Any, ...], _Score] = {}
        self.best: tuple[_Score, State] | None = None
        self.memo: dict[tuple[Any, ...], _Score] = {}  # every score computed, batched

    def todo(self, keys: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The ``keys`` not scored yet, each once, in order."""
        return list(dict.fromkeys(k for k in keys if k not in self.memo and k not in self.cache))

    def store(self, keys: Sequence[tuple[Any, ...]], cycles: list[int], pj: list[float]) -> None:
        """Keep the batch scores of ``keys`` (cycles, energy in pJ) in ``memo``."""
        for key, c, e in zip(keys, cycles, pj, strict=True):
            value = {"delay": float(c), "energy": e, "edp": c * e}
            self.memo[key] = (*(value[m] for m in self.metrics), float(c), e)

    def commit(self, key: tuple[Any, ...], st: State) -> _Score | None:
        """:meth:`run` for a candidate already scored (:meth:`store`)."""
        if key in self.cache:
            return self.cache[key]
        if len(self.cache) >= self.max_evaluations:
            return None
        score = self.memo[key]
        self.cache[key] = score
        if self.progress is not None:
            self.progress(len(self.cache), self.max_evaluations)
        if self.best is None or score < self.best[0]:
            self.best = (score, st.copy())
        return score

    def timed_out(self) -> bool:
        """The time budget (the safety stop) is spent."""
        return time.monotonic() - self.t0 > self.time_budget_s

    def run(self, st: State) -> _Score | None:
        """The score of ``st`` (evaluated if new); ``None`` once the budget is spent."""
        key = state_key(self.space, st)
        if key in self.cache:
            return self.cache[key]
        if len(self.cache) >= self.max_evaluations:
            return None
        r = evaluate(self.levels, self.compute, self.problem, to_mapping(self.space, st))
        score = _score(r, self.metrics)
        self.cache[key] = score
        if self.progress is not None:
            self.progress(len(self.cache), self.max_evaluations)
        if self.best is None or score < self.best[0]:
            self.best = (score, st.copy())
        return score

    def out_of_budget(self) -> bool:
        """The evaluation budget is spent, or the time budget (the safety stop)."""
        return (
            len(self.cache) >= self.max_evaluations
            or time.monotonic() - self.t0 > self.time_budget_s
        )


def _sample_pool(ev: _Evaluations, rng: random.Random) -> list[tuple[_Score, int, State]]:
    """Random valid samples for a third of the budget: ``(score, attempt, state)``."""
    space, prob, max_evaluations = ev.space, ev.problem, ev.max_evaluations
    n_random = max(1, max_evaluations // 3)
    pool: list[tuple[_Score, int, State]] = []
    attempts = 0
    while len(ev.cache) < n_random and attempts < 50 * max_evaluations and not ev.out_of_budget():
        attempts += 1
        st = sample(space, prob, rng)
        if not valid(space, st, prob):
            continue
        score = ev.run(st)
        if score is not None:
            pool.append((score, attempts, st))
    return pool


def _climb(ev: _Evaluations, pool: list[tuple[_Score, int, State]], rng: random.Random) -> None:
    """First-improvement hill climbs from the best samples, until the budget is spent."""
    space, prob = ev.space, ev.problem
    pool.sort(key=lambda t: (t[0], t[1]))
    starts = [t[2] for t in pool[:_N_CLIMBERS]]
    scores = [t[0] for t in pool[:_N_CLIMBERS]]
    idle = [0] * len(starts)
    steps = 0
    while not ev.out_of_budget() and steps < 30 * ev.max_evaluations:
        steps += 1
        j = steps % len(starts)
        if idle[j] >= _PATIENCE:  # stuck: restart this climber from a fresh sample
            idle[j] = 0
            fresh = sample(space, prob, rng)
            if valid(space, fresh, prob) and (sc := ev.run(fresh)) is not None:
                starts[j], scores[j] = fresh, sc
            continue
        idle[j] += 1
        cand = neighbour(space, starts[j], rng)
        if cand is None or not valid(space, cand, prob):
            continue
        score = ev.run(cand)
        if score is not None and score < scores[j]:
            starts[j], scores[j], idle[j] = cand, score, 0


def _sample_pool_batched(
    ev: _Evaluations, rng: random.Random
) -> Generator[_Request, None, list[tuple[_Score, int, State]]]:
    """:func:`_sample_pool` with the samples drawn first, then scored in one batch."""
    space, prob, max_evaluations = ev.space, ev.problem, ev.max_evaluations
    n_random = max(1, max_evaluations // 3)
    drawn: list[tuple[int, State, tuple[Any, ...]]] = []
    seen = set(ev.cache)  # what the cache will hold once the drawn samples are taken
    attempts = 0
    while len(seen) < n_random and attempts < 50 * max_evaluations and not ev.timed_out():
        attempts += 1
        st = sample(space, prob, rng)
        key = checked_key(space, st, prob)
        if key is None:
            continue
        seen.add(key)
        drawn.append((attempts, st, key))
    todo = ev.todo([key for _, _, key in drawn])
    if todo:
        yield ev, todo
    pool: list[tuple[_Score, int, State]] = []
    for attempt, st, key in drawn:
        score = ev.commit(key, st)
        if score is not None:
            pool.append((score, attempt, st))
    return pool


@dataclass
class _Climbers:
    """The climb's state: current point and score of each climber, idle counts, steps."""

    starts: list[State]
    scores: list[_Score]
    idle: list[int]
    steps: int


@dataclass
class _Move:
    """One drawn candidate and the climb's state (and generator's) right after drawing it."""

    j: int
    restart: bool
    st: State
    key: tuple[Any, ...]
    after: _Climbers
    rng_state: Any


def _speculate(ev: _Evaluations, cl: _Climbers, rng: random.Random, chunk: int) -> list[_Move]:
    """Up to ``chunk`` steps of :func:`_climb` drawn as if none improved; ``cl`` advances."""
    space, prob = ev.space, ev.problem
    new: set[tuple[Any, ...]] = set()
    moves: list[_Move] = []
    max_steps = 30 * ev.max_evaluations
    while len(moves) < chunk and len(ev.cache) + len(new) < ev.max_evaluations:
        if cl.steps >= max_steps:
            break
        cl.steps += 1
        j = cl.steps % len(cl.starts)
        restart = cl.idle[j] >= _PATIENCE
        if restart:
            cl.idle[j] = 0
            cand: State | None = sample(space, prob, rng)
        else:
            cl.idle[j] += 1
            cand = neighbour(space, cl.starts[j], rng)
        key = None if cand is None else checked_key(space, cand, prob)
        if key is None:
            continue
        assert cand is not None
        if key not in ev.cache:
            new.add(key)
        if restart:
            cl.starts[j] = cand
        after = _Climbers(list(cl.starts), list(cl.scores), list(cl.idle), cl.steps)
        moves.append(_Move(j, restart, cand, key, after, rng.getstate()))
    return moves


def _climb_batched(
    ev: _Evaluations, pool: list[tuple[_Score, int, State]], rng: random.Random
) -> Generator[_Request, None, None]:
    """:func:`_climb` scoring speculative chunks of moves in batches (module docstring)."""
    pool.sort(key=lambda t: (t[0], t[1]))
    starts = [t[2] for t in pool[:_N_CLIMBERS]]
    cl = _Climbers(starts, [t[0] for t in pool[:_N_CLIMBERS]], [0] * len(starts), 0)
    chunk = 8
    while not ev.out_of_budget() and cl.steps < 30 * ev.max_evaluations:
        scores = list(cl.scores)
        moves = _speculate(ev, cl, rng, chunk)  # cl: the state if nothing improves
        todo = ev.todo([m.key for m in moves])
        if todo:
            yield ev, todo
        improved = False
        for m in moves:
            score = ev.commit(m.key, m.st)
            assert score is not None  # the chunk stops where the budget does
            if m.restart:
                scores[m.j] = score
            elif score < scores[m.j]:  # rewind to just after this move
                m.after.starts[m.j], m.after.idle[m.j] = m.st, 0
                scores[m.j] = score
                cl = _Climbers(m.after.starts, scores, m.after.idle, m.after.steps)
                rng.setstate(m.rng_state)
                improved = True
                break
        if not improved:
            cl.scores = scores
        chunk = max(4, chunk // 2) if improved else min(256, chunk * 2)
