"""A seeded, budgeted mapping search over :mod:`~owin_cosim.accel.loopnest.nest` (the mapper).

Given the storage levels and compute unit of one core
(:func:`~owin_cosim.accel.loopnest.levels.levels_from_arch`), a CNN-layer problem and the
architecture's Timeloop constraints (:func:`read_constraints`), :func:`search` looks
for the best mapping by Timeloop's ``optimization-metrics`` (:func:`read_optimization_metrics`):
``[delay, energy]`` (fewest cycles, then least energy; the default and the v0.3 runs) or
``[edp]`` (the v0.4 runs), evaluating each candidate with
:func:`~owin_cosim.accel.loopnest.nest.evaluate`. :func:`search_design` (behind
:func:`search_case` and ``owin-cosim estimate``) takes the constraints and metrics from the
design's mapper settings (:func:`read_search_settings`).

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

**The search.** Seeded random sampling of valid mappings (a third of the evaluation
budget; half of the samples place prime factors spatially first, which is where cycles
are won), then a first-improvement hill climb from the best few samples, moving one
prime factor between two slots, reordering a level's loops or toggling a keep/bypass
choice. The evaluation count is the primary bound (results do not depend on machine
speed); the time budget is only a safety stop. Identical candidates (same effective
loop nest) are evaluated once.

Not modelled: imperfect factorization (residual loops), ``max-permutations-per-if``
pruning, Timeloop's victory condition (so this search is usually better than a
``timeloop-mapper`` run stopped after ``victory_condition`` suboptimal mappings, as the
v0.4 reference runs were with 100), the ``last_level_accesses`` metric,
``min_utilization``, and the v0.4 constraint options ``max_utilization``, ``no_reuse``,
``no_coalesce``, ``factors_only`` and factor bounds (``<=``, ``>=``), none of which the
reference designs use.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from owin_cosim.accel.loopnest.cases import read_case_inputs
from owin_cosim.accel.loopnest.levels import DATASPACES, ComputeUnit, NestLevel, levels_from_arch
from owin_cosim.accel.loopnest.nest import NestResult, evaluate
from owin_cosim.accel.timeloop.formats import (
    ArchComponent,
    MappingDirective,
    load_yaml_any,
)
from owin_cosim.errors import ConfigError

__all__ = [
    "METRICS",
    "Constraints",
    "Progress",
    "SearchResult",
    "SearchSettings",
    "TargetConstraint",
    "mesh_from_arch",
    "read_constraints",
    "read_optimization_metrics",
    "read_search_settings",
    "search",
    "search_case",
    "search_design",
]

#: Called as ``progress(evaluations_done, max_evaluations)`` after every new evaluation.
Progress = Callable[[int, int], None]

DIMS = ("R", "S", "P", "Q", "C", "M", "N")
_N_CLIMBERS = 4  # hill climbs run side by side
_PATIENCE = 150  # neighbour attempts without improvement before a climber restarts
_KINDS = ("temporal", "spatial")


# ---- constraints -----------------------------------------------------------------------------
@dataclass
class TargetConstraint:
    """The merged Timeloop constraints of one target and type.

    Parameters
    ----------
    target : str
        Storage level name.
    type : str
        ``"temporal"``, ``"spatial"`` or ``"datatype"`` (Timeloop's ``bypass`` too).
    factors : dict
        ``dim -> k``: ``k > 0`` fixes the factor, ``0`` gives it the rest of the dimension.
    permutation : str
        Dimensions, innermost first (spaces removed).
    split : int or None
        Spatial only: the first ``split`` dimensions of the permutation go to the X axis.
    keep, bypass : tuple of str
        Datatype only: dataspaces kept / bypassed.
    """

    target: str
    type: str
    factors: dict[str, int] = field(default_factory=dict)
    permutation: str = ""
    split: int | None = None
    keep: tuple[str, ...] = ()
    bypass: tuple[str, ...] = ()


@dataclass
class Constraints:
    """All constraints of an architecture, keyed by ``(target, type)``."""

    targets: dict[tuple[str, str], TargetConstraint] = field(default_factory=dict)

    def get(self, target: str, kind: str) -> TargetConstraint | None:
        """The constraint of ``target`` of type ``kind``, if any."""
        return self.targets.get((target, kind))


def _parse_factors(value: Any, where: str) -> dict[str, int]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): int(v) for k, v in value.items()}
    tokens = value if isinstance(value, list) else re.split(r"[\s,]+", str(value))
    out: dict[str, int] = {}
    for tok in tokens:
        tok = str(tok).strip()
        if not tok:
            continue
        m = re.fullmatch(r"([A-Za-z]+)\s*=?\s*(\d+)", tok)
        if m is None:
            raise ConfigError(None, where, f"bad factor {tok!r}")
        out[m[1]] = int(m[2])
    return out


def _entries(doc: Any) -> list[dict[str, Any]]:
    if isinstance(doc, list):
        return [e for e in doc if isinstance(e, dict)]
    if not isinstance(doc, dict):
        return []
    out: list[dict[str, Any]] = []
    if "targets" in doc:
        out += _entries(doc["targets"])
    for key in ("architecture_constraints", "mapspace_constraints", "constraints", "mapspace"):
        if key in doc:
            out += _entries(doc[key])
    return out


def read_constraints(
    path_or_doc: str | Path | Sequence[str | Path] | Mapping[str, Any],
) -> Constraints:
    """Read Timeloop architecture and map-space constraints.

    Parameters
    ----------
    path_or_doc : path, list of paths or dict
        A constraints file (``architecture_constraints`` / ``mapspace_constraints`` /
        ``constraints`` with ``targets``), a list of such files (merged in order), a
        folder (every ``*constraints*.yaml`` in it) or an already loaded document
        (e.g. v0.4 ``parsed-processed-input.yaml``).

    Returns
    -------
    Constraints
        Entries of the same target and type are merged: factors are united, the first
        permutation and split given are kept, keep/bypass lists are united.

    Examples
    --------
    >>> c = read_constraints({"architecture_constraints": {"targets": [
    ...     {"target": "glb", "type": "spatial", "factors": "R=1 S=0",
    ...      "permutation": "CM RS", "split": 1},
    ...     {"target": "rf", "type": "bypass", "keep": ["Weights"], "bypass": ["Inputs"]}]}})
    >>> c.get("glb", "spatial").factors, c.get("glb", "spatial").permutation
    ({'R': 1, 'S': 0}, 'CMRS')
    >>> c.get("rf", "datatype").keep
    ('Weights',)
    """
    entries: list[dict[str, Any]] = []
    if isinstance(path_or_doc, Mapping):
        entries = _entries(dict(path_or_doc))
    elif isinstance(path_or_doc, str | Path):
        p = Path(path_or_doc)
        files = sorted(p.glob("*constraints*.yaml")) if p.is_dir() else [p]
        for f in files:
            entries += _entries(load_yaml_any(f))
    else:
        for name in path_or_doc:
            entries += _entries(load_yaml_any(name))
    out = Constraints()
    for i, e in enumerate(entries):
        if "target" not in e or "type" not in e:
            continue
        kind = str(e["type"])
        kind = "datatype" if kind in ("bypass", "datatype", "dataspace") else kind
        if kind not in ("temporal", "spatial", "datatype"):
            continue
        target = str(e["target"]).split("[")[0]
        perm = e.get("permutation", "")
        perm_s = "".join(perm) if isinstance(perm, list) else str(perm or "")
        split = e.get("split")
        cur = out.targets.setdefault((target, kind), TargetConstraint(target, kind))
        cur.factors.update(_parse_factors(e.get("factors"), f"constraints[{i}].factors"))
        if perm_s.strip() and not cur.permutation:
            cur.permutation = re.sub(r"[^A-Za-z]", "", perm_s)
        if split is not None and cur.split is None:
            cur.split = int(split)
        cur.keep = tuple(dict.fromkeys((*cur.keep, *(e.get("keep") or ()))))
        cur.bypass = tuple(dict.fromkeys((*cur.bypass, *(e.get("bypass") or ()))))
    return out


#: Timeloop's ``optimization-metrics`` that :func:`search` understands.
METRICS = ("delay", "energy", "edp")
_DEFAULT_METRICS = ("delay", "energy")


def read_optimization_metrics(doc: Any) -> tuple[str, ...]:
    """The mapper's ``optimization-metrics`` (v0.3) / ``optimization_metrics`` (v0.4).

    ``doc`` is a loaded mapper file or whole input (with a ``mapper`` section). Returns
    ``("delay", "energy")``, Timeloop's default, when none are given.

    Examples
    --------
    >>> read_optimization_metrics({"mapper": {"optimization_metrics": ["edp"]}})
    ('edp',)
    >>> read_optimization_metrics({"mapper": {"optimization-metrics": []}})
    ('delay', 'energy')
    """
    sec = doc.get("mapper", doc) if isinstance(doc, Mapping) else {}
    if not isinstance(sec, Mapping):
        return _DEFAULT_METRICS
    value = sec.get("optimization_metrics") or sec.get("optimization-metrics") or ()
    if isinstance(value, str):
        value = [value]
    return tuple(str(m) for m in value) or _DEFAULT_METRICS


def mesh_from_arch(components: list[ArchComponent]) -> dict[str, int]:
    """``meshX`` of every component by name (for the X/Y split of the fan-outs)."""
    return {c.name: max(1, c.mesh_x) for c in components}


# ---- the map space --------------------------------------------------------------------------
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
class _Space:
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


def _build_space(
    levels: list[NestLevel],
    compute: ComputeUnit,
    problem: Mapping[str, int],
    constraints: Constraints,
    mesh_x: Mapping[str, int] | None,
) -> _Space:
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
    return _Space(
        levels, bounds, fixed, free, fanout, mesh, sp_perm, sp_split, prefix, keep_fixed, keep_free
    )


@dataclass
class _State:
    f: dict[str, dict[Slot, int]]  # dim -> free slot -> factor
    perms: list[tuple[str, ...]]  # per level, innermost first, full
    keep: dict[tuple[int, str], bool]  # free keep choices

    def copy(self) -> _State:
        return _State({d: dict(v) for d, v in self.f.items()}, list(self.perms), dict(self.keep))


def _factor(space: _Space, st: _State, d: str, slot: Slot) -> int:
    if slot in space.fixed[d]:
        return space.fixed[d][slot]
    return st.f[d].get(slot, 1)


def _level_factors(space: _Space, st: _State, i: int, k: int) -> dict[str, int]:
    return {d: _factor(space, st, d, (i, k)) for d in DIMS}


def _keeps(space: _Space, st: _State, i: int) -> set[str]:
    out = {ds for ds, v in space.keep_fixed[i].items() if v}
    out |= {ds for (j, ds), v in st.keep.items() if j == i and v}
    return out


def _spatial_x(space: _Space, factors: Mapping[str, int], i: int) -> tuple[str, ...] | None:
    """The dimensions on the X axis of level ``i``'s fan-out, or None if ``factors`` do not fit.

    Timeloop orders a spatial block by a permutation (the constraint's dimensions first,
    then the others in any order) and puts the first ``split`` dimensions on X, the rest
    on Y; without a ``split`` in the constraints every split position is searched. So
    the X dimensions are a prefix of the permutation: with a complete permutation and no
    split, ``M`` can only be on X if every dimension listed before it is too.
    """
    used = tuple((d, v) for d, v in factors.items() if v > 1)
    key = (i, used)
    if key in space.sp_cache:
        return space.sp_cache[key]
    out = _spatial_search(space, dict(used), i)
    space.sp_cache[key] = out
    return out


def _spatial_search(space: _Space, used: dict[str, int], i: int) -> tuple[str, ...] | None:
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


def _spatial_ok(space: _Space, factors: Mapping[str, int], i: int) -> bool:
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


def _overfull(space: _Space, st: _State, problem: Mapping[str, int]) -> int | None:
    """The outermost level whose kept tiles exceed its capacity, or None."""
    n = len(space.levels)
    ext = dict.fromkeys(DIMS, 1)
    worst: int | None = None
    for i in reversed(range(n)):
        for k in (0, 1):
            for d in DIMS:
                ext[d] *= _factor(space, st, d, (i, k))
        cap = space.levels[i].size_words
        if cap is None:
            continue
        sizes = _axes_sizes(problem, ext)
        if sum(sizes[ds] for ds in _keeps(space, st, i)) > cap:
            worst = i
    return worst


def _valid(space: _Space, st: _State, problem: Mapping[str, int]) -> bool:
    for i in range(len(space.levels)):
        if space.fanout[i] > 1 and not _spatial_ok(space, _level_factors(space, st, i, 1), i):
            return False
    return _overfull(space, st, problem) is None


def _to_mapping(space: _Space, st: _State) -> list[MappingDirective]:
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


def _key(space: _Space, st: _State) -> tuple[Any, ...]:
    parts: list[Any] = []
    for i in range(len(space.levels)):
        tf = _level_factors(space, st, i, 0)
        sf = _level_factors(space, st, i, 1)
        parts.append(tuple(tf[d] for d in DIMS))
        parts.append(tuple(sf[d] for d in DIMS))
        parts.append(tuple(d for d in st.perms[i] if tf[d] > 1))
        parts.append(tuple(sorted(_keeps(space, st, i))))
    return tuple(parts)


# ---- sampling and moves ---------------------------------------------------------------------
def _random_perm(space: _Space, i: int, rng: random.Random) -> tuple[str, ...]:
    pre = space.perm_prefix[i]
    rest = [d for d in DIMS if d not in pre]
    rng.shuffle(rest)
    return (*pre, *rest)


def _spatial_room(space: _Space, st: _State, slot: Slot, d: str, p: int) -> bool:
    i = slot[0]
    sf = _level_factors(space, st, i, 1)
    sf[d] *= p
    return _spatial_ok(space, sf, i)


def _sample(space: _Space, problem: Mapping[str, int], rng: random.Random) -> _State:
    n = len(space.levels)
    st = _State(
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


def _repair(space: _Space, st: _State, problem: Mapping[str, int], rng: random.Random) -> None:
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


def _neighbour(space: _Space, st: _State, rng: random.Random) -> _State | None:
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


# ---- search ---------------------------------------------------------------------------------
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
    metrics: Sequence[str] = _DEFAULT_METRICS,
    progress: Progress | None = None,
) -> SearchResult:
    """Search mappings of ``problem`` on the core; best by ``metrics`` (cycles, then energy).

    Parameters
    ----------
    levels, compute
        From :func:`~owin_cosim.accel.loopnest.levels.levels_from_arch`.
    problem : dict
        CNN-layer instance (``R, S, P, Q, C, M, N``, strides, dilations).
    constraints : Constraints
        From :func:`read_constraints` (an empty ``Constraints()`` leaves all free).
    seed : int
        Seed of the search's random generator; same inputs, seed and budget give the
        same result.
    max_evaluations : int
        Primary bound: number of distinct mappings evaluated with the loop-nest model.
    time_budget_s : float
        Safety stop (wall clock); normally the evaluation budget ends the search first.
    mesh_x : dict, optional
        ``meshX`` per component name (:func:`mesh_from_arch`); without it only the total
        fan-out limits the spatial loops.
    metrics : sequence of str
        Timeloop's ``optimization-metrics`` (:data:`METRICS`), compared in order:
        ``delay`` (cycles), ``energy`` (pJ) or ``edp`` (their product); cycles and
        then energy break remaining ties.
    progress : callable, optional
        Told ``(evaluations done, max_evaluations)`` after each new evaluation (for a
        status line; it does not change the search).

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
    if max_evaluations < 1:
        raise ConfigError(None, "max_evaluations", "expected an integer >= 1")
    bad = [m for m in metrics if m not in METRICS]
    if bad or not metrics:
        raise ConfigError(None, "optimization_metrics", f"expected some of {METRICS}, got {bad}")
    rng = random.Random(seed)
    space = _build_space(levels, compute, problem, constraints, mesh_x)
    t0 = time.monotonic()
    cache: dict[tuple[Any, ...], _Score] = {}
    best: tuple[_Score, _State] | None = None
    prob = dict(problem)

    def run(st: _State) -> _Score | None:
        nonlocal best
        key = _key(space, st)
        if key in cache:
            return cache[key]
        if len(cache) >= max_evaluations:
            return None
        r = evaluate(levels, compute, prob, _to_mapping(space, st))
        score = _score(r, metrics)
        cache[key] = score
        if progress is not None:
            progress(len(cache), max_evaluations)
        if best is None or score < best[0]:
            best = (score, st.copy())
        return score

    def out_of_budget() -> bool:
        return len(cache) >= max_evaluations or time.monotonic() - t0 > time_budget_s

    n_random = max(1, max_evaluations // 3)
    pool: list[tuple[_Score, int, _State]] = []
    attempts = 0
    while len(cache) < n_random and attempts < 50 * max_evaluations and not out_of_budget():
        attempts += 1
        st = _sample(space, prob, rng)
        if not _valid(space, st, prob):
            continue
        score = run(st)
        if score is not None:
            pool.append((score, attempts, st))
    if best is None:
        raise ConfigError(None, "mapping", "no valid mapping found within the budget")
    pool.sort(key=lambda t: (t[0], t[1]))
    starts = [t[2] for t in pool[:_N_CLIMBERS]]
    scores = [t[0] for t in pool[:_N_CLIMBERS]]
    idle = [0] * len(starts)
    steps = 0
    while not out_of_budget() and steps < 30 * max_evaluations:
        steps += 1
        j = steps % len(starts)
        if idle[j] >= _PATIENCE:  # stuck: restart this climber from a fresh sample
            idle[j] = 0
            fresh = _sample(space, prob, rng)
            if _valid(space, fresh, prob) and (sc := run(fresh)) is not None:
                starts[j], scores[j] = fresh, sc
            continue
        idle[j] += 1
        cand = _neighbour(space, starts[j], rng)
        if cand is None or not _valid(space, cand, prob):
            continue
        score = run(cand)
        if score is not None and score < scores[j]:
            starts[j], scores[j], idle[j] = cand, score, 0
    assert best is not None
    best_state = best[1]
    mapping = _to_mapping(space, best_state)
    result = evaluate(levels, compute, prob, mapping)
    return SearchResult(mapping, result, len(cache))


# ---- designs and reference cases ------------------------------------------------------------
@dataclass(frozen=True)
class SearchSettings:
    """A design's mapper settings: the map-space constraints and the objective."""

    constraints: Constraints
    metrics: tuple[str, ...]


def read_search_settings(settings: Path | Mapping[str, Any]) -> SearchSettings:
    """The constraints and ``optimization-metrics`` of a design.

    ``settings`` comes from :func:`~owin_cosim.accel.loopnest.cases.mapper_settings_of`:
    a v0.3 ``inputs`` folder (every ``*constraints*.yaml`` in it, the objective from its
    ``mapper.yaml``; Timeloop's default without one) or a v0.4 processed input document
    (its constraints and ``mapper`` section).

    Examples
    --------
    >>> s = read_search_settings({"mapper": {"optimization_metrics": ["edp"]},
    ...     "architecture_constraints": {"targets": [
    ...         {"target": "buf", "type": "spatial", "factors": "C=1"}]}})
    >>> s.metrics, s.constraints.get("buf", "spatial").factors
    (('edp',), {'C': 1})
    """
    if isinstance(settings, Path):  # v0.3: the design's inputs folder
        mapper_file = settings / "mapper.yaml"
        constraints = read_constraints(sorted(settings.glob("*constraints*.yaml")))
        metrics = (
            read_optimization_metrics(load_yaml_any(mapper_file))
            if mapper_file.is_file()
            else _DEFAULT_METRICS
        )
        return SearchSettings(constraints, metrics)
    return SearchSettings(read_constraints(settings), read_optimization_metrics(settings))


def search_design(
    components: list[ArchComponent],
    ert: dict[str, dict[str, float]],
    problem: Mapping[str, int],
    settings: Path | Mapping[str, Any],
    *,
    seed: int = 0,
    max_evaluations: int = 3000,
    time_budget_s: float = 60.0,
    metrics: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> tuple[SearchResult, tuple[str, ...]]:
    """Search a Timeloop design under its own constraints and objective.

    The one path from Timeloop inputs to :func:`search`, for :func:`search_case` and
    ``owin-cosim estimate``: the same architecture, ERT, problem, settings (see
    :func:`read_search_settings`), seed and budget give the same mapping. ``metrics``
    overrides the design's objective. Returns the result and the objective searched for.
    """
    read = read_search_settings(settings)
    objective = read.metrics if metrics is None else tuple(metrics)
    levels, compute, _ = levels_from_arch(components, ert)
    res = search(
        levels,
        compute,
        problem,
        read.constraints,
        seed=seed,
        max_evaluations=max_evaluations,
        time_budget_s=time_budget_s,
        mesh_x=mesh_from_arch(components),
        metrics=objective,
        progress=progress,
    )
    return res, objective


def search_case(
    case_dir: str | Path,
    *,
    seed: int = 0,
    max_evaluations: int = 3000,
    time_budget_s: float = 60.0,
    metrics: Sequence[str] | None = None,
) -> tuple[SearchResult, dict[str, Any]]:
    """Search a reference case folder (v0.3 or v0.4 layout) like ``timeloop-mapper`` did.

    The objective is the case's own ``optimization-metrics`` (v0.3 ``mapper.yaml``:
    delay then energy; the v0.4 runs: ``edp``) unless ``metrics`` is given. Returns the
    search result and the case's ``summary.json`` row (the mapper's ``cycles`` and
    ``energy_pJ`` among others; empty if the file is absent) with ``search_metrics``,
    the objective searched for, added.
    """
    case = Path(case_dir)
    inp = read_case_inputs(case)
    res, objective = search_design(
        inp.components,
        inp.ert,
        inp.problem,
        inp.settings,
        seed=seed,
        max_evaluations=max_evaluations,
        time_budget_s=time_budget_s,
        metrics=metrics,
    )
    summary = case / "summary.json"
    row: dict[str, Any] = {}
    if summary.is_file():
        row = dict(json.loads(summary.read_text(encoding="utf-8")).get("row", {}))
    row["search_metrics"] = list(objective)
    return res, row
