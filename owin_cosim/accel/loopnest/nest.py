"""An analytical loop-nest model of one accelerator core that reproduces ``timeloop-model``.

Given an architecture (storage levels, outermost first, and a compute unit), a CNN-layer
problem and a Timeloop mapping, :func:`evaluate` returns the cycles, energy,
utilization and per-level access counts that Timeloop's legacy nest analysis would
compute for that mapping. The counting rules below were checked level by level against
the per-level counters of real ``timeloop-model`` runs (``tests/data/timeloop_reference``).
The levels and compute unit come from :mod:`~owin_cosim.accel.loopnest.levels`; reference
case folders and loose Timeloop files are read by :mod:`~owin_cosim.accel.loopnest.cases`.

**The loop nest.** The mapping gives, for every storage level, a block of temporal
loops (the ``permutation`` string lists them innermost first) and a block of spatial
loops (the fan-out from this level to its children), nested in level order from the
outermost level (DRAM) inwards; spatial loops sit below the temporal loops of their
level. Loops of trip count 1 are dropped. Each loop has a *step* in its problem
dimension: the product of the trip counts of the loops of the same dimension inside it.

**Tiles and projections.** The tile of a level is the projection of all loops at and
below it (its own temporal and spatial loops included). Dataspaces are axis-aligned
boxes (Timeloop's AAHRs): Weights over ``C, M, R, S``; Outputs over ``N, M, P, Q``;
Inputs over ``N, C`` and the two sliding-window axes ``W = P*Wstride + R*Wdilation``
and ``H = Q*Hstride + S*Hdilation``, so an Inputs tile is ``((p-1)*Ws + (r-1)*Wd + 1)``
wide. Partial-window reuse is therefore exact for contiguous windows.

**Deltas (fills).** The words delivered to one instance of a level are the sum, over the
temporal iterations of the loops above it, of the *delta* between the new tile and the
instance's previous tile (Timeloop compares with the immediately preceding tile only).
For the increment of loop ``j`` (loops inside it but above the level wrap to 0) the
tile moves by ``+step_j`` in ``dim_j`` and ``-(trip_k-1)*step_k`` for each wrapping
loop ``k``. A move along one data-space axis keeps the overlap (sliding windows fetch
only the new rows/columns); a move along several axes refetches the whole tile, as
Timeloop's AAHR difference does. So innermost loops irrelevant to a dataspace give full
temporal reuse and a relevant loop outside an irrelevant one refetches.

**Reads and multicast.** A level's reads (Timeloop's *content accesses*) are the deltas
of its next inner level that keeps the dataspace (or, for the innermost keeper, one
operand per compute iteration) times, for each fan-out stage in between (the spatial
loops of the level itself and of every bypassing level below it), the number of
*distinct* child deltas at that stage: children whose deltas are equal share one read
(multicast; for Outputs, spatial reduction). Equality is tested like Timeloop, by the
children's data-space offsets, so halo overlaps between neighbours are not merged, and
stage by stage, which is what Timeloop's masking of bypassing levels amounts to (an
Eyeriss-style diagonal ``Q``/``S`` multicast across two stages is *not* merged).

**Read-write data (Outputs).** With Timeloop's first-read elision: ``updates`` = content
accesses, ``reads`` = updates - partition size, ``fills`` = deltas - partition size,
where the *partition* of an instance is the part of the dataspace it ever holds (the
full dataspace divided by the number of distinct spatial offsets above the level).
The outermost keeper (the backing store) has no fills.

**Energy.** Per scalar access, ``read`` = ERT ``read`` / block size and ``fill`` and
``update`` = ERT ``write`` (``update`` when the table has one) / block size, taking the
maximum over Accelergy's argument variants (Timeloop charges a random access). Compute
energy is ``computes x`` the MAC action (``mac_random``, or the compute class' action
such as ``compute``). Networks, address generators and idle/leakage energy are zero in
the v0.3 legacy model and are left out.

**Observed Timeloop behaviour (v3.0.3).** A ``reg_storage`` level (the compound
register of the simple weight- and output-stationary designs, whose ERT entry only has
an ``access`` action) is not charged its table value (0.009 pJ): ``timeloop-model``
falls back to about 0.975 pJ per scalar access for a 16-bit word
(:data:`~owin_cosim.accel.loopnest.levels.REGISTER_FALLBACK_PJ`), a value read off the
per-level energies of those reference runs; it is scaled per bit of word width
(:data:`~owin_cosim.accel.loopnest.levels.REGISTER_FALLBACK_PJ_PER_BIT`) by assumption,
only 16-bit registers were observed. Other access-only components (the
Simba-like ``PEWeightRegs``, class ``storage``) are charged their ``access`` energy,
which Timeloop only approximately does (it charges 0.008-0.014 pJ/access there, against
0.009 pJ; under 0.3 % of those designs' energy).

**Cycles.** ``compute cycles`` = product of all temporal trip counts. A level whose per
instance read (write: fills + updates) traffic exceeds its ``read_bandwidth``
(``write_bandwidth``) words/cycle slows down by the ratio; the result is the maximum
over levels. No reference mapping is bandwidth-bound, so the throttling path is only
unit-tested.

**Approximations.** Non-contiguous Inputs windows (stride > tile extent) are taken as
their bounding box, as Timeloop's AAHRs do. Timeloop extrapolates each loop from its
first two iterations; the closed form here agrees with it on every reference mapping
but one (``simple_output_stationary`` AlexNet layer 2: Timeloop refetches the whole
global-buffer Inputs tile at each ``Q`` step of DRAM, which is separated from the buffer
by an irrelevant ``M`` loop; we fetch only the new rows, -0.06 % energy). Imperfect
factorizations (residual loops), skews, link transfers, sparse features and the v0.4
leakage energy are not modelled (with the v0.4 ``aladdin_register`` of the Simba-like
design, under 1 % of those runs' energy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from owin_cosim.accel.loopnest.levels import DATASPACES, DIMS, ComputeUnit, NestLevel
from owin_cosim.accel.timeloop.formats import MappingDirective
from owin_cosim.errors import ConfigError

__all__ = ["NestResult", "distinct_on_axis", "evaluate", "summarize"]


@dataclass
class NestResult:
    """The outcome of :func:`evaluate`.

    ``per_level[level][dataspace]`` holds the per-instance counters ``reads``,
    ``fills``, ``updates``, their totals over the utilized instances
    (``reads_total``...), ``instances`` (utilized), ``tile`` and ``partition`` (words
    per instance). ``energy_by_level_pJ`` includes the compute unit under its name.
    """

    cycles: int
    energy_pJ: float
    utilization: float
    computes: int
    per_level: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    energy_by_level_pJ: dict[str, float] = field(default_factory=dict)
    cycles_by_level: dict[str, int] = field(default_factory=dict)


# ---- the nest -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Loop:
    dim: str
    trip: int
    level: int  # index of the owning storage level, outermost = 0
    spatial: bool
    step: int


def _axes(problem: dict[str, int]) -> dict[str, list[dict[str, int]]]:
    ws, hs = problem.get("Wstride", 1), problem.get("Hstride", 1)
    wd, hd = problem.get("Wdilation", 1), problem.get("Hdilation", 1)
    return {
        "Weights": [{"C": 1}, {"M": 1}, {"R": 1}, {"S": 1}],
        "Inputs": [{"N": 1}, {"C": 1}, {"R": wd, "P": ws}, {"S": hd, "Q": hs}],
        "Outputs": [{"N": 1}, {"M": 1}, {"P": 1}, {"Q": 1}],
    }


def _extent(axis: dict[str, int], ext: dict[str, int]) -> int:
    return sum(c * (ext[d] - 1) for d, c in axis.items()) + 1


def _size(axes: list[dict[str, int]], ext: dict[str, int]) -> int:
    return math.prod(_extent(a, ext) for a in axes)


def _order(directive: MappingDirective) -> list[str]:
    """Dims of a directive, outermost first (Timeloop lists permutations innermost first)."""
    perm = [d for d in directive.permutation if d in DIMS]
    rest = [d for d in DIMS if d not in perm]
    return list(reversed(perm + rest))


def _build_nest(
    levels: list[NestLevel], problem: dict[str, int], mapping: list[MappingDirective]
) -> tuple[list[_Loop], dict[str, set[str]]]:
    index = {lvl.name: i for i, lvl in enumerate(levels)}
    raw: list[tuple[str, int, int, bool]] = []
    keep: dict[str, set[str]] = {lvl.name: set(DATASPACES) for lvl in levels}
    by_level: dict[int, dict[str, MappingDirective]] = {}
    for d in mapping:
        if d.target not in index:
            raise ConfigError(None, f"mapping.{d.target}", "no such storage level")
        if d.type == "datatype":
            kept = set(keep[d.target])
            kept -= set(d.bypass)
            kept |= set(d.keep)
            keep[d.target] = kept
        elif d.type in ("temporal", "spatial"):
            by_level.setdefault(index[d.target], {})[d.type] = d
        else:
            raise ConfigError(None, f"mapping.{d.target}", f"unknown type {d.type!r}")
    for i in range(len(levels)):
        for kind in ("temporal", "spatial"):
            block = by_level.get(i, {}).get(kind)
            if block is None:
                continue
            for dim in _order(block):
                trip = block.factors.get(dim, 1)
                if trip > 1:
                    raw.append((dim, trip, i, kind == "spatial"))
    for dim in DIMS:
        prod = math.prod(t for dd, t, _, _ in raw if dd == dim)
        if prod != problem.get(dim, 1):
            raise ConfigError(
                None,
                f"mapping.factors.{dim}",
                f"factors multiply to {prod}, problem has {problem.get(dim, 1)}",
            )
    loops: list[_Loop] = []
    cum = dict.fromkeys(DIMS, 1)
    for dim, trip, lvl, spatial in reversed(raw):
        loops.append(_Loop(dim, trip, lvl, spatial, cum[dim]))
        cum[dim] *= trip
    loops.reverse()
    return loops, keep


def _extents(loops: list[_Loop], pred: Any) -> dict[str, int]:
    ext = dict.fromkeys(DIMS, 1)
    for lp in loops:
        if pred(lp):
            ext[lp.dim] *= lp.trip
    return ext


def _delta_count(axes: list[dict[str, int]], ext: dict[str, int], above: list[_Loop]) -> int:
    """Words delivered to one instance holding tiles of extents ``ext`` (see module doc)."""
    size = _size(axes, ext)
    temporal = [lp for lp in above if not lp.spatial]
    total = size
    outer = 1
    for j, lp in enumerate(temporal):
        count = outer * (lp.trip - 1)
        outer *= lp.trip
        disp = dict.fromkeys(DIMS, 0)
        disp[lp.dim] += lp.step
        for inner in temporal[j + 1 :]:
            disp[inner.dim] -= (inner.trip - 1) * inner.step
        shifts = [abs(sum(c * disp[d] for d, c in a.items())) for a in axes]
        moved = [k for k, sh in enumerate(shifts) if sh]
        if len(moved) == 1:
            e = _extent(axes[moved[0]], ext)
            delta = size // e * min(e, shifts[moved[0]])
        else:
            # Timeloop's AAHR difference keeps a partial overlap only for a move along
            # one axis; a move along several axes refetches the whole tile.
            delta = size if moved else 0
        total += count * delta
    return total


def _distinct(axes: list[dict[str, int]], spatial: list[_Loop]) -> int:
    """Number of distinct data-space offsets among the instances of a fan-out.

    Every dimension lies on one axis of a dataspace, so the count is the product over
    axes of the distinct offsets along each (:func:`distinct_on_axis`).
    """
    out = 1
    for a in axes:
        terms = [(a[lp.dim] * lp.step, lp.trip) for lp in spatial if lp.dim in a]
        out *= distinct_on_axis(terms)
    return out


def distinct_on_axis(terms: list[tuple[int, int]]) -> int:
    """How many distinct values ``sum(k_i * i_i)`` takes for ``0 <= i_i < n_i``.

    ``terms`` holds ``(k, n)`` pairs with ``k >= 1``. One term: ``n``. Two terms: with
    ``g = gcd(k1, k2)``, a value's representations form one chain
    ``(i1 + t*k2/g, i2 - t*k1/g)``, so the values are counted by the chains' first
    elements: ``n1*n2 - max(0, n1 - k2/g) * max(0, n2 - k1/g)``. More terms (a CNN
    axis has at most two dimensions) are enumerated.

    >>> distinct_on_axis([(1, 4), (1, 3)]), distinct_on_axis([(2, 4), (1, 2)])
    (6, 8)
    """
    terms = [(k, n) for k, n in terms if n > 1]
    if not terms:
        return 1
    if len(terms) == 1:
        return terms[0][1]
    if len(terms) == 2:
        (k1, n1), (k2, n2) = terms
        g = math.gcd(k1, k2)
        return n1 * n2 - max(0, n1 - k2 // g) * max(0, n2 - k1 // g)
    seen = {0}
    for k, n in terms:
        seen = {v + k * i for v in seen for i in range(n)}
    return len(seen)


@dataclass(frozen=True)
class _Counts:
    """Per-instance counts of one dataspace at one of its keepers (see the module doc)."""

    content: int  # content accesses: reads (read-write data: updates)
    deltas: int  # words delivered to one instance
    tile: int
    partition: int
    instances: int  # utilized instances

    @staticmethod
    def of(
        loops: list[_Loop],
        axes: list[dict[str, int]],
        i: int,
        child: int,
        n: int,
        per_instance_ops: int,
        full_size: int,
    ) -> _Counts:
        """Level ``i`` keeps the dataspace of ``axes``; ``child`` is its next inner keeper
        (``n``: the compute unit)."""
        between = [lp for lp in loops if lp.spatial and i <= lp.level < child]
        above_spatial = [lp for lp in loops if lp.spatial and lp.level < i]
        if child == n:
            child_delta = per_instance_ops
        else:
            cext = _extents(loops, lambda lp, c=child: lp.level >= c)
            child_delta = _delta_count(axes, cext, [lp for lp in loops if lp.level < child])
        content = child_delta * math.prod(
            _distinct(axes, [lp for lp in between if lp.level == s]) for s in range(i, child)
        )
        ext = _extents(loops, lambda lp, i=i: lp.level >= i)
        tile = _size(axes, ext)
        deltas = _delta_count(axes, ext, [lp for lp in loops if lp.level < i])
        partition = full_size // math.prod(
            _distinct(axes, [lp for lp in above_spatial if lp.level == s]) for s in range(i)
        )
        inst = math.prod(lp.trip for lp in above_spatial)
        return _Counts(content, deltas, tile, partition, inst)


def evaluate(
    levels: list[NestLevel],
    compute: ComputeUnit,
    problem: dict[str, int],
    mapping: list[MappingDirective],
) -> NestResult:
    """Evaluate a mapping on the core like ``timeloop-model`` (see the module docstring).

    Parameters
    ----------
    levels : list of NestLevel
        Storage levels, outermost first (from
        :func:`~owin_cosim.accel.loopnest.levels.levels_from_arch`).
    compute : ComputeUnit
        The MAC array.
    problem : dict
        CNN-layer instance (``R, S, P, Q, C, M, N``, strides and dilations).
    mapping : list of MappingDirective
        A complete Timeloop mapping (factors multiply to the problem dimensions).

    Returns
    -------
    NestResult

    Examples
    --------
    One buffer under DRAM, a 4x1 output row over 3 weights (a 1-D convolution):

    >>> from owin_cosim.accel.timeloop.formats import MappingDirective as D
    >>> lv = [NestLevel("DRAM", 1, None, 1, None, None, 10.0, 10.0, 10.0),
    ...       NestLevel("buf", 1, 64, 1, None, None, 1.0, 1.0, 1.0)]
    >>> prob = dict(R=3, S=1, P=4, Q=1, C=1, M=1, N=1)
    >>> m = [D("DRAM", "temporal", {"P": 4}, "P"), D("buf", "temporal", {"R": 3}, "R")]
    >>> r = evaluate(lv, ComputeUnit("mac", 1, 1.0), prob, m)
    >>> r.cycles, r.per_level["buf"]["Inputs"]["fills"], r.per_level["buf"]["Weights"]["fills"]
    (12, 6.0, 3.0)
    """
    loops, keep = _build_nest(levels, problem, mapping)
    axes_of = _axes(problem)
    n = len(levels)
    full = dict(problem)
    computes = math.prod(problem.get(d, 1) for d in DIMS)
    compute_cycles = math.prod(lp.trip for lp in loops if not lp.spatial)
    per_instance_ops = compute_cycles

    per_level: dict[str, dict[str, dict[str, float]]] = {lvl.name: {} for lvl in levels}
    energy: dict[str, float] = {lvl.name: 0.0 for lvl in levels}
    traffic: dict[str, list[float]] = {lvl.name: [0.0, 0.0] for lvl in levels}
    for ds in DATASPACES:
        axes = axes_of[ds]
        keepers = [i for i in range(n) if ds in keep[levels[i].name]]
        full_size = _size(axes, full)
        for k, i in enumerate(keepers):
            child = keepers[k + 1] if k + 1 < len(keepers) else n
            c = _Counts.of(loops, axes, i, child, n, per_instance_ops, full_size)
            outermost = k == 0
            if ds == "Outputs":
                updates = c.content
                reads = c.content - c.partition
                fills = 0 if outermost else c.deltas - c.partition
            else:
                updates, reads = 0, c.content
                fills = 0 if outermost else c.deltas
            inst = c.instances
            lvl = levels[i]
            per_level[lvl.name][ds] = {
                "reads": float(reads),
                "fills": float(fills),
                "updates": float(updates),
                "reads_total": float(reads * inst),
                "fills_total": float(fills * inst),
                "updates_total": float(updates * inst),
                "instances": float(inst),
                "tile": float(c.tile),
                "partition": float(c.partition),
            }
            energy[lvl.name] += inst * (
                reads * lvl.read_energy_pJ
                + fills * lvl.write_energy_pJ
                + updates * lvl.update_energy_pJ
            )
            traffic[lvl.name][0] += reads
            traffic[lvl.name][1] += fills + updates

    cycles, cycles_by_level = _throttled_cycles(levels, traffic, compute_cycles)
    energy[compute.name] = computes * compute.energy_pJ
    total = sum(energy.values())
    util = computes / (cycles * compute.instances) if cycles else 0.0
    return NestResult(cycles, total, util, computes, per_level, energy, cycles_by_level)


def _throttled_cycles(
    levels: list[NestLevel], traffic: dict[str, list[float]], compute_cycles: int
) -> tuple[int, dict[str, int]]:
    """Cycles of the nest and per level: a level over its bandwidth slows down by the ratio."""
    cycles_by_level: dict[str, int] = {}
    cycles = compute_cycles
    for lvl in levels:
        slow = 1.0
        rd, wr = traffic[lvl.name]
        if lvl.read_bw and compute_cycles:
            slow = max(slow, rd / (lvl.read_bw * compute_cycles))
        if lvl.write_bw and compute_cycles:
            slow = max(slow, wr / (lvl.write_bw * compute_cycles))
        cycles_by_level[lvl.name] = math.ceil(compute_cycles * slow)
        cycles = max(cycles, cycles_by_level[lvl.name])
    return cycles, cycles_by_level


def summarize(result: NestResult) -> dict[str, Any]:
    """A JSON-ready dict of ``result``: ``cycles``, ``energy_pJ``, ``utilization`` and
    ``levels`` (per level: ``reads``, ``writes`` (updates), ``fills`` summed over
    dataspaces and instances, and ``energy_pJ``; the compute unit is not a level)."""
    per_level: dict[str, dict[str, float]] = {}
    for name, spaces in result.per_level.items():
        per_level[name] = {
            "reads": sum(d.get("reads_total", 0.0) for d in spaces.values()),
            "writes": sum(d.get("updates_total", 0.0) for d in spaces.values()),
            "fills": sum(d.get("fills_total", 0.0) for d in spaces.values()),
            "energy_pJ": result.energy_by_level_pJ.get(name, 0.0),
        }
    return {
        "cycles": result.cycles,
        "energy_pJ": result.energy_pJ,
        "utilization": result.utilization,
        "levels": per_level,
    }
