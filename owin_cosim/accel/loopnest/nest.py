"""An analytical loop-nest model of one accelerator core that reproduces ``timeloop-model``.

Given an architecture (storage levels, outermost first, and a compute unit), a CNN-layer
problem and a Timeloop mapping, :func:`evaluate` returns the cycles, energy,
utilization and per-level access counts that Timeloop's legacy nest analysis would
compute for that mapping. The counting rules below were checked level by level against
the per-level counters of real ``timeloop-model`` runs (``tests/data/timeloop_reference``).

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
(:data:`REGISTER_FALLBACK_PJ`), a value read off the per-level energies of those
reference runs; it is scaled per bit of word width (:data:`REGISTER_FALLBACK_PJ_PER_BIT`)
by assumption, only 16-bit registers were observed. Other access-only components (the
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

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from owin_cosim.accel.timeloop.formats import (
    ArchComponent,
    MappingDirective,
    TimeloopStats,
    load_yaml_any,
    parse_stats,
    read_architecture,
    read_ert,
    read_mapping,
    read_problem,
)
from owin_cosim.errors import ConfigError

__all__ = [
    "DATASPACES",
    "REGISTER_FALLBACK_PJ",
    "REGISTER_FALLBACK_PJ_PER_BIT",
    "CaseInputs",
    "ComputeUnit",
    "NestLevel",
    "NestResult",
    "evaluate",
    "evaluate_case",
    "evaluate_files",
    "levels_from_arch",
    "load_case",
    "mapper_settings_of",
    "read_case_inputs",
    "summarize",
]

DATASPACES = ("Weights", "Inputs", "Outputs")
_DIMS = ("R", "S", "P", "Q", "C", "M", "N")

#: Energy (pJ) per scalar access that Timeloop v3.0.3 charges a 16-bit storage level
#: whose ERT entry has no ``read``/``write`` action (observed in the reference runs).
REGISTER_FALLBACK_PJ = 0.975
#: The same fallback per bit of word width (``REGISTER_FALLBACK_PJ / 16``).
REGISTER_FALLBACK_PJ_PER_BIT = REGISTER_FALLBACK_PJ / 16


@dataclass
class NestLevel:
    """One storage level of the modelled core.

    Parameters
    ----------
    name : str
        The level's name (the mapping's ``target``).
    instances : int
        Number of instances of the level in the core.
    size_words : int or None
        Capacity per instance in words (``None`` = unbounded, e.g. DRAM).
    block_size : int
        Words per vector access; the ERT energies are per vector access.
    read_bw, write_bw : float or None
        Words per cycle per instance (``None`` = unlimited).
    read_energy_pJ, write_energy_pJ, update_energy_pJ : float
        Energy per *scalar* access (ERT energy per vector access / block size).
    """

    name: str
    instances: int
    size_words: int | None
    block_size: int
    read_bw: float | None
    write_bw: float | None
    read_energy_pJ: float
    write_energy_pJ: float
    update_energy_pJ: float


@dataclass(frozen=True)
class ComputeUnit:
    """The MAC array: its name, number of instances and energy per compute (pJ)."""

    name: str
    instances: int
    energy_pJ: float


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


# ---- architecture -----------------------------------------------------------------------
def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _int_attr(comp: ArchComponent, *names: str) -> int | None:
    value = _num(comp.attr(*names))
    return int(value) if value is not None and value > 0 else None


def _mac_energy(actions: dict[str, float]) -> float:
    for name in ("mac_random", "compute", "mac", "multiply_accumulate"):
        if name in actions:
            return actions[name]
    rest = [v for k, v in actions.items() if k not in ("idle", "leak", "mac_gated")]
    return max(rest, default=0.0)


def levels_from_arch(
    components: list[ArchComponent], ert: dict[str, dict[str, float]]
) -> tuple[list[NestLevel], ComputeUnit, float]:
    """Storage levels (outer to inner), the compute unit and its energy per MAC.

    Parameters
    ----------
    components : list of ArchComponent
        From :func:`~owin_cosim.accel.timeloop.formats.read_architecture` (outermost first); the
        storage levels keep that order, which is Timeloop's level order.
    ert : dict
        Energy per action, from :func:`~owin_cosim.accel.timeloop.formats.read_ert`.

    Returns
    -------
    levels, compute, mac_energy_pJ
        Block size is ``block-size`` when given, else ``width / word bits`` when both
        are given, else 1. The capacity is ``depth x block size``, divided by the
        ``cluster-size`` when one is given (Timeloop's words per cluster row). A level
        without ``read``/``write`` actions in the ERT is charged
        :data:`REGISTER_FALLBACK_PJ_PER_BIT` per bit of its word (observed Timeloop
        behaviour, see the module docstring).
    """
    levels: list[NestLevel] = []
    compute: ComputeUnit | None = None
    for comp in components:
        actions = ert.get(comp.name, {})
        if comp.is_compute:
            if compute is None:
                compute = ComputeUnit(comp.name, comp.instances, _mac_energy(actions))
            continue
        word_bits = _int_attr(comp, "word-bits", "word_bits", "datawidth") or 16
        width = _int_attr(comp, "memory_width", "width")
        block = _int_attr(comp, "block-size", "block_size")
        if block is None:
            block = max(1, width // word_bits) if width and width >= word_bits else 1
        depth = _int_attr(comp, "memory_depth", "depth")
        # Timeloop splits a ``cluster-size``-wide level into clusters: a row then holds
        # width / (word bits x cluster size) words (the Simba-like v0.4 PEWeightRegs,
        # 512 bits wide, 64 clusters, depth 1: Size 1 in Timeloop's stats). Capacity only;
        # the energy per scalar access stays ERT / (width / word bits).
        cluster = _int_attr(comp, "cluster-size", "cluster_size") or 1
        row = max(1, block // cluster) if cluster > 1 else block
        size = depth * row if depth is not None else None
        if "read" in actions or "write" in actions:
            read = actions.get("read", actions.get("write", 0.0))
            write = actions.get("write", read)
            update = actions.get("update", write)
            e_read, e_write, e_update = read / block, write / block, update / block
        elif comp.cls == "reg_storage" or not actions:
            e_read = e_write = e_update = REGISTER_FALLBACK_PJ_PER_BIT * word_bits
        else:
            other = max(v for k, v in actions.items() if k not in ("idle", "leak"))
            e_read = e_write = e_update = other / block
        levels.append(
            NestLevel(
                comp.name,
                comp.instances,
                size,
                block,
                _num(comp.attr("read_bandwidth")),
                _num(comp.attr("write_bandwidth")),
                e_read,
                e_write,
                e_update,
            )
        )
    if compute is None:
        raise ConfigError(None, "architecture", "no compute (MAC) component found")
    if not levels:
        raise ConfigError(None, "architecture", "no storage level found")
    return levels, compute, compute.energy_pJ


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
    perm = [d for d in directive.permutation if d in _DIMS]
    rest = [d for d in _DIMS if d not in perm]
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
    for dim in _DIMS:
        prod = math.prod(t for dd, t, _, _ in raw if dd == dim)
        if prod != problem.get(dim, 1):
            raise ConfigError(
                None,
                f"mapping.factors.{dim}",
                f"factors multiply to {prod}, problem has {problem.get(dim, 1)}",
            )
    loops: list[_Loop] = []
    cum = dict.fromkeys(_DIMS, 1)
    for dim, trip, lvl, spatial in reversed(raw):
        loops.append(_Loop(dim, trip, lvl, spatial, cum[dim]))
        cum[dim] *= trip
    loops.reverse()
    return loops, keep


def _extents(loops: list[_Loop], pred: Any) -> dict[str, int]:
    ext = dict.fromkeys(_DIMS, 1)
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
        disp = dict.fromkeys(_DIMS, 0)
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
    """Number of distinct data-space offsets among the instances of a fan-out."""
    rel = [lp for lp in spatial if any(lp.dim in a for a in axes)]
    if not rel:
        return 1
    seen: set[tuple[int, ...]] = set()
    for idx in itertools.product(*(range(lp.trip) for lp in rel)):
        off = dict.fromkeys(_DIMS, 0)
        for i, lp in zip(idx, rel, strict=True):
            off[lp.dim] += i * lp.step
        seen.add(tuple(sum(c * off[d] for d, c in a.items()) for a in axes))
    return len(seen)


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
        Storage levels, outermost first (from :func:`levels_from_arch`).
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
    computes = math.prod(problem.get(d, 1) for d in _DIMS)
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
            outermost = k == 0
            if ds == "Outputs":
                updates = content
                reads = content - partition
                fills = 0 if outermost else deltas - partition
            else:
                updates, reads = 0, content
                fills = 0 if outermost else deltas
            inst = math.prod(lp.trip for lp in above_spatial)
            lvl = levels[i]
            per_level[lvl.name][ds] = {
                "reads": float(reads),
                "fills": float(fills),
                "updates": float(updates),
                "reads_total": float(reads * inst),
                "fills_total": float(fills * inst),
                "updates_total": float(updates * inst),
                "instances": float(inst),
                "tile": float(tile),
                "partition": float(partition),
            }
            energy[lvl.name] += inst * (
                reads * lvl.read_energy_pJ
                + fills * lvl.write_energy_pJ
                + updates * lvl.update_energy_pJ
            )
            traffic[lvl.name][0] += reads
            traffic[lvl.name][1] += fills + updates

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
    energy[compute.name] = computes * compute.energy_pJ
    total = sum(energy.values())
    util = computes / (cycles * compute.instances) if cycles else 0.0
    return NestResult(cycles, total, util, computes, per_level, energy, cycles_by_level)


# ---- reference cases ----------------------------------------------------------------------
def _problem_from_doc(doc: dict[str, Any], file: Path) -> dict[str, int]:
    inst = doc.get("problem", {}).get("instance")
    if not isinstance(inst, dict):
        raise ConfigError(file, "problem.instance", "expected a mapping of dimensions")
    keys = (*_DIMS, "Hstride", "Wstride", "Hdilation", "Wdilation")
    return {k: int(inst.get(k, 1)) for k in keys}


#: Top-level keys of an input document that holds its own mapper settings.
_SETTINGS_KEYS = (
    "mapper",
    "architecture_constraints",
    "mapspace_constraints",
    "constraints",
    "mapspace",
)


def mapper_settings_of(arch: str | Path, doc: Any = None) -> Path | dict[str, Any]:
    """Where the mapper settings (constraints, objective) of an architecture file live.

    A whole input document (a v0.4 ``parsed-processed-input.yaml``, or any file with a
    ``mapper`` or constraints section) holds them itself: the document is returned. A
    bare v0.3 ``arch.yaml`` has them beside it (``*constraints*.yaml``, ``mapper.yaml``):
    its folder is returned. ``doc`` is the already loaded file, if at hand.

    Examples
    --------
    >>> mapper_settings_of("inputs/arch.yaml", {"architecture": {}})
    PosixPath('inputs')
    >>> mapper_settings_of("case/in.yaml", {"architecture": {}, "mapper": {}})
    {'architecture': {}, 'mapper': {}}
    """
    path = Path(arch)
    if doc is None:
        doc = load_yaml_any(path)
    if isinstance(doc, dict) and any(k in doc for k in _SETTINGS_KEYS):
        return doc
    return path.parent


@dataclass(frozen=True)
class CaseInputs:
    """What a reference case folder says about the core and the layer (see :func:`load_case`).

    ``settings`` is where the mapper's settings live (:func:`mapper_settings_of`): for
    v0.3, the design's ``inputs`` folder (``*constraints*.yaml``, ``mapper.yaml``); for
    v0.4, the processed input document.
    """

    components: list[ArchComponent]
    ert: dict[str, dict[str, float]]
    problem: dict[str, int]
    settings: Path | dict[str, Any]


def read_case_inputs(case_dir: str | Path) -> CaseInputs:
    """Architecture, ERT, problem and mapper settings of a reference case folder."""
    case = Path(case_dir)
    if (case / "ARCH").is_file():
        name = (case / "ARCH").read_text(encoding="utf-8").strip()
        design = case.parent.parent / "arch" / Path(name).name
        arch = design / "inputs" / "arch.yaml"
        return CaseInputs(
            read_architecture(arch),
            read_ert(design / "accelergy" / "ERT.yaml"),
            read_problem(case / "prob.yaml"),
            mapper_settings_of(arch),
        )
    spec = case / "parsed-processed-input.yaml"
    if not spec.is_file():
        raise ConfigError(case, "", "neither ARCH (v0.3) nor parsed-processed-input.yaml (v0.4)")
    doc = load_yaml_any(spec)
    return CaseInputs(
        read_architecture(spec),
        read_ert(case / "timeloop-mapper.ERT.yaml"),
        _problem_from_doc(doc, spec),
        mapper_settings_of(spec, doc),
    )


def load_case(
    case_dir: str | Path,
) -> tuple[list[NestLevel], ComputeUnit, dict[str, int], list[MappingDirective], TimeloopStats]:
    """Read a reference case folder: levels, compute unit, problem, mapping and the
    ``timeloop-model`` stats.

    v0.3 layout: ``prob.yaml``, ``timeloop-mapper.map.yaml``, ``ARCH`` naming
    ``../../arch/NAME`` (``inputs/arch.yaml``, ``accelergy/ERT.yaml``) and
    ``model/timeloop-model.stats.txt``. v0.4 layout: ``parsed-processed-input.yaml``
    (architecture and problem), ``timeloop-mapper.ERT.yaml`` and the same mapping and
    stats files.
    """
    case = Path(case_dir)
    mapping = read_mapping(case / "timeloop-mapper.map.yaml")
    stats = parse_stats(case / "model" / "timeloop-model.stats.txt")
    inputs = read_case_inputs(case)
    levels, compute, _ = levels_from_arch(inputs.components, inputs.ert)
    return levels, compute, inputs.problem, mapping, stats


def evaluate_case(case_dir: str | Path) -> tuple[NestResult, TimeloopStats]:
    """Evaluate a reference case folder (see :func:`load_case`) and return its stats too."""
    levels, compute, problem, mapping, stats = load_case(case_dir)
    return evaluate(levels, compute, problem, mapping), stats


def evaluate_files(
    arch: str | Path, problem: str | Path, mapping: str | Path, ert: str | Path
) -> dict[str, Any]:
    """Evaluate a mapping from Timeloop files; a JSON-ready dict with ``cycles``,
    ``energy_pJ``, ``utilization`` and ``levels`` (per level: ``reads``, ``writes``
    (updates), ``fills`` summed over dataspaces and instances, and ``energy_pJ``)."""
    levels, compute, _ = levels_from_arch(read_architecture(arch), read_ert(ert))
    return summarize(evaluate(levels, compute, read_problem(problem), read_mapping(mapping)))


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
