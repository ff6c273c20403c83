"""The mapper's map space: the slots prime factors go to, loop orders, keep/bypass choices.

:func:`build_space` turns the storage levels of a core, a CNN-layer problem and the
:class:`~owin_cosim.accel.loopnest.constraints.Constraints` into a :class:`Space`; a
:class:`State` is one point of it (:mod:`owin_cosim.accel.loopnest.moves` draws points
and moves between them). :func:`valid` checks fan-outs and capacities,
:func:`to_mapping` writes the Timeloop mapping and :func:`state_key` names the effective
loop nest (equal keys, equal evaluations). The search over it:
:mod:`owin_cosim.accel.loopnest.search`.

**The map space.** For every problem dimension, its prime factors are allocated to
*slots*: the temporal loop block of each storage level and the spatial block (the
fan-out to the next level) of each level whose fan-out exceeds 1. A constraint factor
``D=k`` (``k > 0``) fixes a slot (clamped, like Timeloop, to what is left of the
dimension: ``C=16`` on a layer with ``C=3`` gives 3); ``D=0`` gives that slot all that
is left, every other unconstrained slot of that dimension gets 1. Spatial blocks must fit
the mesh, with ``X = meshX(child) / meshX(parent)`` and ``Y = fanout / X``, and the
X/Y assignment must be one Timeloop can express: a spatial block is ordered by its
permutation (the constraint's dimensions, innermost first, then the others in any
order) and its first ``split`` dimensions go to X, the rest to Y; without a ``split``
every split position is allowed, so with a complete permutation the X dimensions are a
prefix of it. Temporal loop orders are permutations of the dimensions whose trip
count exceeds 1, the constrained ones innermost in the constraint's order (Timeloop
lists permutations innermost first). Datatype keep/bypass is fixed by the constraints;
the others are searched (the outermost level, the backing store, keeps everything).
A mapping is valid if, at every level with a capacity, the tiles of the dataspaces it
keeps (``NestResult.per_level[level][ds]['tile']``) add up to at most ``size_words``
(``depth x words per row``; a ``cluster-size`` divides the row, as in Timeloop: the
v0.4 Simba-like ``PEWeightRegs`` hold one word).

**v0.4 containers.** In a v0.4 processed input (``parsed-processed-input.yaml``) every
``!Container`` with a ``spatial`` mesh and constraints appears as a ``dummy_storage``
level ``inter_<name>_spatial`` (1 word, bypassing everything) whose instance count and
``meshX`` give the container's fan-out, and its ``spatial``/``temporal``/``dataspace``
constraints target that level. They are therefore levels here like any other: their
spatial factors, permutation and split limit the container's fan-out (e.g. the Simba-like
``PE`` container: 16 on X, only ``M`` and ``C``; ``distributed_buffers``: ``M`` on Y,
at most 4), their temporal factors are all 1. On the reference designs the number of
factorization options per dimension equals the counts ``timeloop-mapper`` prints
("Factorization options along problem dimension ..."), and the keep/bypass choices its
``DatatypeBypass`` size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from owin_cosim.accel.loopnest.constraints import Constraints
from owin_cosim.accel.loopnest.levels import DATASPACES, DIMS, ComputeUnit, NestLevel
from owin_cosim.accel.timeloop.formats import MappingDirective
from owin_cosim.errors import ConfigError

__all__ = [
    "Slot",
    "Space",
    "State",
    "build_space",
    "checked_key",
    "state_key",
    "to_mapping",
    "valid",
]

_KINDS = ("temporal", "spatial")


def _primes(n: int) -> list[int]:
    out: list[int] = []
    k = 2
    while k * k <= n:
        while n % k == 0:
            out.append(k)
            n //= k
        k += 1
    if n > 1:
        out.append(n)
    return out


def _fit(k: int, rest: int) -> int:
    """Timeloop-like clamping of a fixed factor ``k`` to what is left of a dimension."""
    if k >= rest:
        return rest
    return max(d for d in range(1, k + 1) if rest % d == 0)


Slot = tuple[int, int]  # (level index, 0 temporal / 1 spatial)


@dataclass
class Space:
    """The map space of one problem on one core (see the module docstring)."""

    levels: list[NestLevel]
    bounds: dict[str, int]
    fixed: dict[str, dict[Slot, int]]
    free: dict[str, list[Slot]]
    fanout: list[int]
    mesh: list[tuple[int, int]]  # (X, Y) per level
    sp_perm: list[tuple[str, ...]]  # spatial constraint permutation per level (innermost first)
    sp_split: list[int | None]  # spatial constraint split per level (None = searched)
    perm_prefix: list[tuple[str, ...]]  # constrained innermost dims per level
    keep_fixed: list[dict[str, bool]]
    keep_free: list[tuple[int, str]]
    sp_cache: dict[tuple[int, tuple[tuple[str, int], ...]], tuple[str, ...] | None] = field(
        default_factory=dict
    )
    base: list[list[list[int]]] = field(default_factory=list)  # fixed factors (_table)
    kept: list[frozenset[str]] = field(default_factory=list)  # fixed keeps per level


def build_space(
    levels: list[NestLevel],
    compute: ComputeUnit,
    problem: Mapping[str, int],
    constraints: Constraints,
    mesh_x: Mapping[str, int] | None,
) -> Space:
    """The map space of ``problem`` on ``levels`` and ``compute`` under ``constraints``.

    ``mesh_x`` is ``meshX`` per component name; without it only the total fan-out limits
    the spatial blocks.

    Raises
    ------
    ConfigError
        When the constraints leave a dimension no free loop for what is left of it.
    """
    n = len(levels)
    names = [lv.name for lv in levels]
    fanout: list[int] = []
    mesh: list[tuple[int, int]] = []
    for i, lv in enumerate(levels):
        child_inst = levels[i + 1].instances if i + 1 < n else compute.instances
        f = max(1, child_inst // max(1, lv.instances))
        fanout.append(f)
        if mesh_x is None:
            mesh.append((f, f))  # only the total fan-out limits
        else:
            child = names[i + 1] if i + 1 < n else compute.name
            x = max(1, mesh_x.get(child, 1) // max(1, mesh_x.get(lv.name, 1)))
            x = min(x, f)
            mesh.append((x, max(1, f // x)))
    bounds = {d: int(problem.get(d, 1)) for d in DIMS}
    fixed: dict[str, dict[Slot, int]] = {}
    free: dict[str, list[Slot]] = {}
    for d in DIMS:
        rest = bounds[d]
        fx: dict[Slot, int] = {}
        residual: Slot | None = None
        slots: list[Slot] = []
        for i in reversed(range(n)):  # inner levels first
            for k, kind in enumerate(_KINDS):
                slot = (i, k)
                if kind == "spatial" and fanout[i] == 1:
                    fx[slot] = 1
                    continue
                c = constraints.get(names[i], kind)
                if c is not None and d in c.factors:
                    v = c.factors[d]
                    if v == 0:
                        residual = slot
                    else:
                        fx[slot] = _fit(v, rest)
                        rest //= fx[slot]
                else:
                    slots.append(slot)
        if residual is not None:
            fx[residual] = rest
            for s in slots:
                fx[s] = 1
            slots = []
        elif not slots and rest > 1:
            raise ConfigError(None, f"constraints.{d}", f"no free loop left for {d}={rest}")
        fixed[d] = fx
        free[d] = slots
    sp_perm: list[tuple[str, ...]] = []
    sp_split: list[int | None] = []
    prefix: list[tuple[str, ...]] = []
    keep_fixed: list[dict[str, bool]] = []
    keep_free: list[tuple[int, str]] = []
    for i, name in enumerate(names):
        sp = constraints.get(name, "spatial")
        perm = tuple(dict.fromkeys(d for d in (sp.permutation if sp else "") if d in DIMS))
        sp_perm.append(perm)
        sp_split.append(sp.split if sp is not None else None)
        tc = constraints.get(name, "temporal")
        prefix.append(tuple(d for d in (tc.permutation if tc else "") if d in DIMS))
        dc = constraints.get(name, "datatype")
        kf: dict[str, bool] = {}
        for ds in DATASPACES:
            if i == 0 or (dc is not None and ds in dc.keep):
                kf[ds] = True
            elif dc is not None and ds in dc.bypass:
                kf[ds] = False
            else:
                keep_free.append((i, ds))
        keep_fixed.append(kf)
    return Space(
        levels, bounds, fixed, free, fanout, mesh, sp_perm, sp_split, prefix, keep_fixed, keep_free
    )


@dataclass
class State:
    """One point of a :class:`Space`: free factors, loop orders, free keep choices."""

    f: dict[str, dict[Slot, int]]  # dim -> free slot -> factor
    perms: list[tuple[str, ...]]  # per level, innermost first, full
    keep: dict[tuple[int, str], bool]  # free keep choices

    def copy(self) -> State:
        return State({d: dict(v) for d, v in self.f.items()}, list(self.perms), dict(self.keep))


def _factor(space: Space, st: State, d: str, slot: Slot) -> int:
    if slot in space.fixed[d]:
        return space.fixed[d][slot]
    return st.f[d].get(slot, 1)


def _level_factors(space: Space, st: State, i: int, k: int) -> dict[str, int]:
    return {d: _factor(space, st, d, (i, k)) for d in DIMS}


def _table(space: Space, st: State) -> list[list[list[int]]]:
    """Every slot's factor at once: ``[level][0 temporal / 1 spatial][dim index]``."""
    if not space.base:  # the fixed factors, once per space
        space.base.extend([[1] * len(DIMS), [1] * len(DIMS)] for _ in space.levels)
        for di, d in enumerate(DIMS):
            for (i, k), v in space.fixed[d].items():
                space.base[i][k][di] = v
    tab = [[t[:], sp[:]] for t, sp in space.base]
    for di, d in enumerate(DIMS):
        fixed = space.fixed[d]
        for slot, v in st.f[d].items():
            if slot not in fixed:
                tab[slot[0]][slot[1]][di] = v
    return tab


def _keeps(space: Space, st: State, i: int) -> set[str]:
    return _all_keeps(space, st)[i]


def _all_keeps(space: Space, st: State) -> list[set[str]]:
    """The dataspaces each level keeps."""
    if not space.kept:
        space.kept.extend(frozenset(ds for ds, v in kf.items() if v) for kf in space.keep_fixed)
    out = [set(k) for k in space.kept]
    for (j, ds), v in st.keep.items():
        if v:
            out[j].add(ds)
    return out


def _spatial_x(space: Space, factors: Mapping[str, int], i: int) -> tuple[str, ...] | None:
    """The dimensions on the X axis of level ``i``'s fan-out, or None if ``factors`` do not fit.

    Timeloop orders a spatial block by a permutation (the constraint's dimensions first,
    then the others in any order) and puts the first ``split`` dimensions on X, the rest
    on Y; without a ``split`` in the constraints every split position is searched. So
    the X dimensions are a prefix of the permutation: with a complete permutation and no
    split, ``M`` can only be on X if every dimension listed before it is too.
    """
    return _spatial_x_of(space, tuple((d, v) for d, v in factors.items() if v > 1), i)


_X = tuple[str, ...] | None  # the X dimensions of a fan-out, or None if it does not fit


def _spatial_x_of(space: Space, used: tuple[tuple[str, int], ...], i: int) -> _X:
    key = (i, used)
    if key in space.sp_cache:
        return space.sp_cache[key]
    out = _spatial_search(space, dict(used), i)
    space.sp_cache[key] = out
    return out


def _spatial_search(space: Space, used: dict[str, int], i: int) -> tuple[str, ...] | None:
    if math.prod(used.values()) > space.fanout[i]:
        return None
    x_max, y_max = space.mesh[i]
    perm = space.sp_perm[i]
    rest = [d for d in DIMS if d not in perm]
    free_used = [d for d in rest if d in used]
    split = space.sp_split[i]
    for s in [split] if split is not None else range(len(DIMS) + 1):
        xs, ys = 1, 1
        x_dims = [d for j, d in enumerate(perm) if d in used and j < s]
        for j, d in enumerate(perm):
            if d in used:
                if j < s:
                    xs *= used[d]
                else:
                    ys *= used[d]
        n_x = min(max(s - len(perm), 0), len(rest))  # free positions on X
        for mask in range(1 << len(free_used)):
            on_x = [d for j, d in enumerate(free_used) if (mask >> j) & 1]
            if len(on_x) > n_x or len(free_used) - len(on_x) > len(rest) - n_x:
                continue
            px = math.prod(used[d] for d in on_x)
            py = math.prod(used[d] for d in free_used if d not in on_x)
            if xs * px <= x_max and ys * py <= y_max:
                return (*x_dims, *on_x)
    return None


def _spatial_ok(space: Space, factors: Mapping[str, int], i: int) -> bool:
    return _spatial_x(space, factors, i) is not None


def _axes_sizes(problem: Mapping[str, int], ext: Mapping[str, int]) -> dict[str, int]:
    ws, hs = problem.get("Wstride", 1), problem.get("Hstride", 1)
    wd, hd = problem.get("Wdilation", 1), problem.get("Hdilation", 1)
    w = (ext["P"] - 1) * ws + (ext["R"] - 1) * wd + 1
    h = (ext["Q"] - 1) * hs + (ext["S"] - 1) * hd + 1
    return {
        "Weights": ext["C"] * ext["M"] * ext["R"] * ext["S"],
        "Inputs": ext["N"] * ext["C"] * w * h,
        "Outputs": ext["N"] * ext["M"] * ext["P"] * ext["Q"],
    }


def _overfull(space: Space, st: State, problem: Mapping[str, int]) -> int | None:
    """The outermost level whose kept tiles exceed its capacity, or None."""
    return _overfull_of(space, st, problem, _table(space, st))


def _overfull_of(
    space: Space,
    st: State,
    problem: Mapping[str, int],
    tab: list[list[list[int]]],
    keeps: list[set[str]] | None = None,
) -> int | None:
    n = len(space.levels)
    keeps = _all_keeps(space, st) if keeps is None else keeps
    ext = [1] * len(DIMS)
    worst: int | None = None
    for i in reversed(range(n)):
        t, sp = tab[i]
        ext = [e * a * b for e, a, b in zip(ext, t, sp, strict=True)]
        cap = space.levels[i].size_words
        if cap is None:
            continue
        sizes = _axes_sizes(problem, dict(zip(DIMS, ext, strict=True)))
        if sum(sizes[ds] for ds in keeps[i]) > cap:
            worst = i
    return worst


def valid(space: Space, st: State, problem: Mapping[str, int]) -> bool:
    """Whether every fan-out fits its mesh and every level's kept tiles its capacity."""
    return checked_key(space, st, problem) is not None


def checked_key(space: Space, st: State, problem: Mapping[str, int]) -> tuple[Any, ...] | None:
    """:func:`state_key` of ``st`` if it is :func:`valid`, else None (one table for both)."""
    tab = _table(space, st)
    for i in range(len(space.levels)):
        used = tuple((DIMS[k], v) for k, v in enumerate(tab[i][1]) if v > 1)
        if space.fanout[i] > 1 and _spatial_x_of(space, used, i) is None:
            return None
    keeps = _all_keeps(space, st)
    if _overfull_of(space, st, problem, tab, keeps) is not None:
        return None
    return _key_of(space, st, tab, keeps)


def to_mapping(space: Space, st: State) -> list[MappingDirective]:
    """The Timeloop mapping of ``st``: datatype, then spatial and temporal, inner levels first."""
    out: list[MappingDirective] = []
    for i, lv in reversed(list(enumerate(space.levels))):
        keeps = _keeps(space, st, i)
        out.append(
            MappingDirective(
                lv.name,
                "datatype",
                keep=tuple(ds for ds in DATASPACES if ds in keeps),
                bypass=tuple(ds for ds in DATASPACES if ds not in keeps),
            )
        )
    for i, lv in reversed(list(enumerate(space.levels))):
        if space.fanout[i] > 1:
            sf = _level_factors(space, st, i, 1)
            x = list(_spatial_x(space, sf, i) or ())
            y = [d for d in DIMS if d not in x]
            out.append(MappingDirective(lv.name, "spatial", sf, "".join(x + y), split=len(x)))
        out.append(
            MappingDirective(
                lv.name, "temporal", _level_factors(space, st, i, 0), "".join(st.perms[i])
            )
        )
    return out


def state_key(space: Space, st: State) -> tuple[Any, ...]:
    """What decides the evaluation of ``st``: factors, effective loop orders and keeps."""
    return _key_of(space, st, _table(space, st), _all_keeps(space, st))


def _key_of(
    space: Space, st: State, tab: list[list[list[int]]], keeps: list[set[str]]
) -> tuple[Any, ...]:
    parts: list[Any] = []
    for i in range(len(space.levels)):
        tf, sf = tab[i]
        parts.append(tuple(tf))
        parts.append(tuple(sf))
        parts.append(tuple(d for d in st.perms[i] if tf[_DIM_INDEX[d]] > 1))
        parts.append(tuple(sorted(keeps[i])))
    return tuple(parts)


_DIM_INDEX = {d: k for k, d in enumerate(DIMS)}
