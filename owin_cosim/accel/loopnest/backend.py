"""The ``loopnest`` cost backend: Timeloop's nest analysis plus a mapping search, per layer.

:class:`LoopNestCostModel` prices a layer on one core of a chip spec the way
``timeloop-mapper`` would: it turns the core (DRAM share, global buffer, per-PE
scratchpad, MAC mesh; :mod:`owin_cosim.accel.spec`) into the storage levels of
:mod:`owin_cosim.accel.loopnest.levels`, the layer into a CNN-layer problem, and runs the
seeded, evaluation-bounded search of :mod:`owin_cosim.accel.loopnest.mapper` (no
architecture constraints: every tiling, loop order, spatial unrolling and bypass choice
that fits is allowed). The best mapping by cycles, then energy, gives the cost.

It is slower than the default ``analytic`` backend (a few hundred loop-nest evaluations
per distinct layer shape instead of a closed-form tiling search) but its numbers come
from the model that reproduces ``timeloop-model`` on the reference layers. Results are
memoised per shape here and kept in the persistent cost cache by the scenario assembly.

**Channel-wise layers.** Depthwise, pooling and elementwise layers have no reduction
over input channels, which the CNN-layer shape cannot say with ``C > 1``; they are priced
as ``C = M = 1`` problems with the channels folded into ``N`` (inputs, outputs and
operation count are exact), by :func:`~owin_cosim.accel.problem.cnn_layer_instance`, the
conversion the ``timeloop`` backend uses too. Two approximations follow, both small for
these layers: depthwise weights are counted once per filter tap instead of once per tap
and channel, and an elementwise layer's second and further operands are not counted as
reads.

**Bandwidth.** The core's DRAM share limits reads and writes separately, as Timeloop
treats a level's read and write bandwidths (the ``analytic`` roofline lets them share).

Examples
--------
>>> from pathlib import Path
>>> from owin_cosim.accel import spec as accel_spec
>>> from owin_cosim.workload.graph import conv2d
>>> chip = accel_spec.load_chip_spec(
...     Path(accel_spec.__file__).parents[2] / "accel_specs" / "mc16.yaml")
>>> model = LoopNestCostModel(chip, max_evaluations=60)
>>> cost = model.layer_cost(conv2d("c", C=16, M=16, P=8, Q=8, R=3, S=3))
>>> cost.macs, cost.cycles >= cost.macs // chip.core.num_pes
(147456, True)
>>> sorted(cost.levels)
['DRAM', 'glb', 'mac', 'pe_spad']
"""

from __future__ import annotations

import math

from owin_cosim.accel.cost_model import LayerCost, LevelAccesses
from owin_cosim.accel.loopnest.levels import ComputeUnit, NestLevel
from owin_cosim.accel.loopnest.mapper import Constraints, SearchResult, TargetConstraint
from owin_cosim.accel.loopnest.nest import NestResult, summarize
from owin_cosim.accel.loopnest.search import search_many
from owin_cosim.accel.problem import cnn_layer_instance
from owin_cosim.accel.spec import ChipSpec
from owin_cosim.accel.timeloop.formats import MappingDirective
from owin_cosim.errors import ConfigError
from owin_cosim.workload.graph import Layer

__all__ = [
    "DEFAULT_EVALUATIONS",
    "LoopNestCostModel",
    "core_levels",
    "spatial_templates",
]

#: Loop-nest evaluations per distinct layer shape (the search's only bound).
DEFAULT_EVALUATIONS = 300
#: Spatial templates tried before the free search (each gets an equal budget share).
_N_TEMPLATES = 4
_DIMS = ("R", "S", "P", "Q", "C", "M", "N")


def core_levels(chip: ChipSpec) -> tuple[list[NestLevel], ComputeUnit, dict[str, int]]:
    """The core of ``chip`` as loop-nest levels (outer to inner), compute unit and ``meshX``.

    Energies in a chip spec are already per word, so every level has block size 1.

    >>> from pathlib import Path
    >>> from owin_cosim.accel import spec as accel_spec
    >>> chip = accel_spec.load_chip_spec(
    ...     Path(accel_spec.__file__).parents[2] / "accel_specs" / "mc4.yaml")
    >>> levels, mac, mesh = core_levels(chip)
    >>> [(lv.name, lv.instances, lv.size_words) for lv in levels]
    [('DRAM', 1, None), ('glb', 1, 131072), ('pe_spad', 256, 192)]
    >>> mac.instances, mesh["pe_spad"]
    (256, 16)
    """
    core = chip.core
    levels = []
    for lvl in core.levels:
        levels.append(
            NestLevel(
                lvl.name,
                lvl.instances,
                lvl.size_words,
                1,
                None if math.isinf(lvl.read_bw_words_per_cycle) else lvl.read_bw_words_per_cycle,
                None if math.isinf(lvl.write_bw_words_per_cycle) else lvl.write_bw_words_per_cycle,
                lvl.read_energy_pJ,
                lvl.write_energy_pJ,
                lvl.write_energy_pJ,
            )
        )
    compute = ComputeUnit(core.mac_name, core.num_pes, core.mac_energy_pJ)
    mesh = {lvl.name: 1 for lvl in core.levels[:-1]}
    mesh[core.pe_buffer.name] = core.pe_mesh_x
    mesh[core.mac_name] = core.pe_mesh_x
    return levels, compute, mesh


def _largest_divisor(n: int, cap: int) -> int:
    return max(d for d in range(1, min(n, cap) + 1) if n % d == 0)


def spatial_templates(
    problem: dict[str, int], levels: list[NestLevel], mesh_x: dict[str, int], count: int
) -> list[Constraints]:
    """The ``count`` best two-dimension unrollings of the PE mesh, as constraints.

    For every ordered pair of problem dimensions ``(x, y)``, ``x`` is unrolled along the
    mesh's X axis by its largest divisor that fits and ``y`` along Y likewise (the
    ``ws``/``os``/``is`` dataflows are such pairs). The pairs with the most PEs in use
    are kept (ties: the fixed dimension order). Random sampling rarely hits a full
    mesh on its own; these seeds let the search start from one, like a dataflow
    template in a Timeloop constraints file.

    >>> from owin_cosim.accel.loopnest.levels import NestLevel
    >>> lv = [NestLevel("DRAM", 1, None, 1, None, None, 1.0, 1.0, 1.0),
    ...       NestLevel("glb", 1, 4096, 1, None, None, 1.0, 1.0, 1.0),
    ...       NestLevel("spad", 16, 64, 1, None, None, 1.0, 1.0, 1.0)]
    >>> prob = dict(R=3, S=3, P=6, Q=6, C=3, M=8, N=1)
    >>> t = spatial_templates(prob, lv, {"DRAM": 1, "glb": 1, "spad": 4}, 1)
    >>> t[0].get("glb", "spatial").factors
    {'R': 3, 'S': 1, 'P': 1, 'Q': 1, 'C': 1, 'M': 4, 'N': 1}
    """
    n = len(levels)
    fan = [i for i in range(n - 1) if levels[i + 1].instances > levels[i].instances]
    if not fan:
        return []
    i = fan[-1]  # the fan-out to the PEs
    parent, child = levels[i], levels[i + 1]
    fanout = child.instances // max(1, parent.instances)
    mx = max(1, min(fanout, mesh_x.get(child.name, 1) // max(1, mesh_x.get(parent.name, 1))))
    my = max(1, fanout // mx)
    scored: list[tuple[int, int, Constraints]] = []
    k = 0
    for x in _DIMS:
        for y in _DIMS:
            if x == y or problem.get(x, 1) == 1 or problem.get(y, 1) == 1:
                continue
            fx = _largest_divisor(problem[x], mx)
            fy = _largest_divisor(problem[y], my)
            factors = {d: 1 for d in _DIMS}
            factors[x], factors[y] = fx, fy
            rest = "".join(d for d in _DIMS if d not in (x, y))
            c = Constraints()
            c.targets[(parent.name, "spatial")] = TargetConstraint(
                parent.name, "spatial", factors, x + y + rest, 1
            )
            scored.append((-(fx * fy), k, c))
            k += 1
    scored.sort(key=lambda t: (t[0], t[1]))
    return [c for _, _, c in scored[:count]]


class LoopNestCostModel:
    """Per-layer cost from the best mapping the search finds on one core.

    Parameters
    ----------
    chip : ChipSpec
        The accelerator; every core is a copy of ``chip.core``.
    latency_scale : float, default 1.0
        Multiplies ``seconds`` (not ``cycles``).
    max_evaluations : int, default :data:`DEFAULT_EVALUATIONS`
        Loop-nest evaluations per distinct layer shape.
    seed : int, default 0
        Seed of the mapping search; same spec, layer, budget and seed give the same
        cost, bit for bit (the search is bounded by evaluations only, never by time).
    """

    name = "loopnest"

    def __init__(
        self,
        chip: ChipSpec,
        *,
        latency_scale: float = 1.0,
        max_evaluations: int = DEFAULT_EVALUATIONS,
        seed: int = 0,
    ) -> None:
        if not (latency_scale > 0 and math.isfinite(latency_scale)):
            raise ValueError(f"latency_scale must be a finite number > 0, got {latency_scale!r}")
        if max_evaluations < 1:
            raise ValueError(f"max_evaluations must be >= 1, got {max_evaluations!r}")
        self.chip = chip
        self.latency_scale = float(latency_scale)
        self.max_evaluations = int(max_evaluations)
        self.seed = int(seed)
        self.levels, self.compute, self.mesh_x = core_levels(chip)
        self._memo: dict[tuple[object, ...], tuple[LayerCost, SearchResult]] = {}

    def _search(self, layer: Layer) -> tuple[LayerCost, SearchResult]:
        problem = cnn_layer_instance(layer)
        key = (layer.op, layer.operands, tuple(sorted(problem.items())))
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        found = self._best(problem)
        cost = self._cost(found.result, layer.macs)
        self._memo[key] = (cost, found)
        return cost, found

    def _best(self, problem: dict[str, int]) -> SearchResult:
        """Split the budget between the best spatial templates and a free search."""
        templates = spatial_templates(problem, self.levels, self.mesh_x, _N_TEMPLATES)
        share = self.max_evaluations // (len(templates) + 1)
        runs: list[tuple[Constraints, int]] = [(c, share) for c in templates if share >= 1]
        runs.append((Constraints(), self.max_evaluations - share * (len(runs))))
        found_all = search_many(
            self.levels,
            self.compute,
            problem,
            runs,
            seed=self.seed,
            time_budget_s=math.inf,
            mesh_x=self.mesh_x,
        )  # side by side, one shared batch per round; each as if searched alone
        best: SearchResult | None = None
        for (constraints, _), found in zip(runs, found_all, strict=True):
            if isinstance(found, ConfigError):
                if constraints.targets:  # a template with no valid mapping: skip it
                    continue
                if best is not None:
                    break
                raise found
            score = (found.result.cycles, found.result.energy_pJ)
            if best is None or score < (best.result.cycles, best.result.energy_pJ):
                best = found
        assert best is not None
        return best

    def _cost(self, r: NestResult, macs: int) -> LayerCost:
        levels = {
            name: LevelAccesses(
                reads=round(lv["reads"]),
                writes=round(lv["writes"]),
                fills=round(lv["fills"]),
                energy_pJ=lv["energy_pJ"],
            )
            for name, lv in summarize(r)["levels"].items()
        }
        levels[self.compute.name] = LevelAccesses(
            energy_pJ=r.energy_by_level_pJ.get(self.compute.name, 0.0)
        )
        compute_cycles = min(r.cycles_by_level.values(), default=r.cycles)
        dram = self.levels[0].name  # outermost: the chip's shared DRAM
        on_chip = max(
            (c for name, c in r.cycles_by_level.items() if name != dram), default=compute_cycles
        )
        bound_by = "compute"
        if r.cycles > compute_cycles:
            bound_by = max(self.levels, key=lambda lv: r.cycles_by_level.get(lv.name, 0)).name
        return LayerCost(
            cycles=r.cycles,
            seconds=r.cycles / self.chip.clock_hz * self.latency_scale,
            energy_pJ=r.energy_pJ,
            utilization=min(1.0, macs / (r.cycles * self.compute.instances)) if r.cycles else 0.0,
            macs=macs,
            levels=levels,
            bound_by=bound_by,
            compute_cycles=min(max(on_chip, compute_cycles), r.cycles),
        )

    def layer_cost(self, layer: Layer) -> LayerCost:
        """Latency and energy of ``layer`` on one core (memoised per shape).

        Raises
        ------
        ConfigError
            When no mapping of the layer fits the core within the budget.
        """
        return self._search(layer)[0]

    def mapping(self, layer: Layer) -> list[MappingDirective]:
        """The Timeloop mapping chosen for ``layer``."""
        return list(self._search(layer)[1].mapping)
