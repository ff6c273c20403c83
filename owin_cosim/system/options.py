"""How a layer can run on the chip: on which core type, on how many cores, split how.

A layer may run on one core or on a *group* of ``g`` cores of one type, split into ``g``
near-equal parts, each costed by the cost model as its own smaller problem:

- convolutions and matrix products split along the output channels ``M`` (each part
  holds ``M / g`` filters; the input is broadcast to every part);
- channel-wise layers (depthwise, pooling, elementwise) split along the channels ``C``
  (inputs and outputs scattered);
- when that dimension is smaller than ``g``, along the output rows ``P`` (inputs
  scattered with their halo rows, weights broadcast);
- a layer with fewer than ``g`` of both has no ``g``-way split.

Group sizes are the powers of two up to the type's core count, plus the count itself
(``accelerator.max_split_cores`` caps them); a larger group is costed only while the
previous one paid off (:data:`SPLIT_GAIN`). Each option keeps its parts' costs alone on
the chip (compute-side time, DRAM time at the whole bandwidth, bytes, cycles, energy);
the coordinator shares the DRAM between the parts running at once
(:mod:`owin_cosim.sim.dram`) and moves outputs between cores over the NoC.

>>> from owin_cosim.workload.graph import conv2d
>>> dim, parts = split_layer(conv2d("c", C=64, M=10, P=8, Q=8, R=3), 4)
>>> dim, [p.M for p in parts], sum(p.macs for p in parts) == conv2d("c", C=64, M=10,
...     P=8, Q=8, R=3).macs
('M', [3, 3, 2, 2], True)
>>> group_sizes(10), group_sizes(4, cap=2)
((1, 2, 4, 8, 10), (1, 2))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from owin_cosim.accel.cost_model import CostModel, LayerCost
from owin_cosim.errors import ConfigError
from owin_cosim.workload.graph import Layer, OpKind

__all__ = [
    "CoreTypeInfo",
    "ExecOption",
    "PartCost",
    "cost_options",
    "group_sizes",
    "near_equal",
    "split_layer",
]


@dataclass(frozen=True, slots=True)
class CoreTypeInfo:
    """One kind of core on the chip, as the problem needs it (plain data).

    ``dram_bw_words_per_cycle`` is the chip's whole DRAM bandwidth seen from this core
    (what its costs were priced with).
    """

    name: str
    count: int
    #: Layer kinds it runs (OpKind values); None: every kind.
    runs: frozenset[str] | None
    #: Core numbers of this type on the mesh.
    cores: tuple[int, ...]
    dram_name: str
    dram_bw_words_per_cycle: float
    glb_bytes: float

    def runs_kind(self, kind: str) -> bool:
        """Whether cores of this type run layers of ``kind``."""
        return self.runs is None or kind in self.runs


@dataclass(frozen=True, slots=True)
class PartCost:
    """One part of a layer, alone on the chip."""

    #: Seconds of compute and on-chip traffic with unlimited DRAM bandwidth.
    compute_s: float
    #: Seconds its DRAM bytes take at the chip's whole DRAM bandwidth.
    dram_s: float
    dram_bytes: float
    cycles: int
    energy_pJ: float
    macs: int
    utilization: float


@dataclass(frozen=True)
class ExecOption:
    """One way to run a layer: ``len(parts)`` cores of type ``core_type``, split along
    ``split`` (``"-"``: one core, no split)."""

    core_type: int
    split: str
    parts: tuple[PartCost, ...]
    #: The distinct parts and how many of each: equal parts run in lockstep, so the
    #: coordinator moves each distinct part as one DRAM flow of that many parts.
    flows: tuple[tuple[PartCost, int], ...] = field(init=False, compare=False, repr=False)

    @property
    def group(self) -> int:
        """Cores the layer occupies."""
        return len(self.parts)

    @property
    def alone_s(self) -> float:
        """Its time alone on the chip: every part computing, all their DRAM bytes through
        the whole bandwidth: ``max(max compute_s, sum dram_s)`` (exact for equal parts;
        a lower bound in every case)."""
        return max(max(p.compute_s for p in self.parts), sum(p.dram_s for p in self.parts))

    @property
    def dram_s(self) -> float:
        """DRAM time of all parts at the whole bandwidth."""
        return sum(p.dram_s for p in self.parts)

    @property
    def energy_pJ(self) -> float:
        return sum(p.energy_pJ for p in self.parts)

    @property
    def cycles(self) -> int:
        """Cycles of its longest part alone."""
        return max(p.cycles for p in self.parts)

    @property
    def dram_bytes(self) -> float:
        return sum(p.dram_bytes for p in self.parts)

    def __post_init__(self) -> None:
        seen: dict[PartCost, int] = {}
        for p in self.parts:
            seen[p] = seen.get(p, 0) + 1
        object.__setattr__(self, "flows", tuple(seen.items()))


def group_sizes(count: int, cap: int | None = None) -> tuple[int, ...]:
    """The group sizes tried on a type with ``count`` cores (powers of two, and ``count``)."""
    limit = count if cap is None else min(count, cap)
    sizes = {1 << k for k in range(limit.bit_length()) if 1 << k <= limit}
    if count <= limit:
        sizes.add(count)
    return tuple(sorted(sizes))


def near_equal(total: int, parts: int) -> tuple[int, ...]:
    """``total`` cut into ``parts`` near-equal sizes, the earlier ones one larger.

    >>> near_equal(10, 3)
    (4, 3, 3)
    """
    base, extra = divmod(total, parts)
    return tuple(base + (1 if i < extra else 0) for i in range(parts))


def split_layer(layer: Layer, parts: int) -> tuple[str, list[Layer]]:
    """The dimension and the ``parts`` pieces of ``layer`` (see the module docstring).

    Raises
    ------
    ValueError
        When no dimension has ``parts`` or more entries.
    """
    if parts == 1:
        return "-", [layer]
    primary = "M" if layer.op in (OpKind.CONV, OpKind.MATMUL) else "C"
    for dim in (primary, "P"):
        size = getattr(layer, dim)
        if size >= parts:
            pieces = []
            for i, n in enumerate(near_equal(size, parts)):
                change: dict[str, Any] = {"name": f"{layer.name}[{i}/{parts}]", dim: n}
                pieces.append(replace(layer, **change))
            return dim, pieces
    raise ValueError(f"layer {layer.name!r} cannot be split {parts} ways")


def _part(cost: LayerCost, info: CoreTypeInfo, word_bytes: int) -> PartCost:
    """A part's costs: compute side and DRAM time apart, in the backend's seconds."""
    per_cycle = cost.seconds / cost.cycles if cost.cycles else 0.0
    acc = cost.levels.get(info.dram_name)
    words = 0 if acc is None else acc.reads + acc.writes + acc.fills
    dram_cycles = words / info.dram_bw_words_per_cycle
    compute = cost.cycles if cost.compute_cycles is None else cost.compute_cycles
    return PartCost(
        compute_s=compute * per_cycle,
        dram_s=dram_cycles * per_cycle,
        dram_bytes=float(words * word_bytes),
        cycles=cost.cycles,
        energy_pJ=cost.energy_pJ,
        macs=cost.macs,
        utilization=cost.utilization,
    )


def _shape(layer: Layer) -> Layer:
    """What a cost depends on: the layer without its name and group."""
    return replace(layer, name="", group="")


def _price(
    model: CostModel, layers: Sequence[Layer], progress: Callable[[int], None]
) -> dict[Layer, LayerCost | ConfigError]:
    """Cost every distinct shape once; a shape no mapping fits keeps its error."""
    shapes = list(dict.fromkeys(_shape(x) for x in layers))
    if not shapes:
        return {}
    batch = getattr(model, "layer_costs", None)  # remote estimators answer in batches
    out: dict[Layer, LayerCost | ConfigError] = {}
    if batch is not None:
        out.update(zip(shapes, batch(shapes), strict=True))
        progress(len(shapes))
        return out
    for shape in shapes:
        try:
            out[shape] = model.layer_cost(shape)
        except ConfigError as exc:
            out[shape] = exc
        progress(1)
    return out


#: A group twice as large is costed only while the previous doubling paid off: the
#: layer alone got at least this much faster (otherwise larger groups are not tried).
SPLIT_GAIN = 0.95


def cost_options(
    layers: Sequence[Layer],
    models: Sequence[CostModel],
    types: Sequence[CoreTypeInfo],
    word_bytes: int,
    max_split: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[tuple[ExecOption, ...]]:
    """Every layer's options, costed with the model of each core type that runs it.

    Group sizes are tried in increasing order, in rounds (one batch of shapes per core
    type and round, so a remote estimator answers a round at once); a layer stops
    growing on a type when a larger group is not :data:`SPLIT_GAIN` faster alone than
    the best smaller one, cannot be split that many ways, or does not fit. The options
    a layer has are the ones costed (the dispatch and the lower bound use those).

    Raises
    ------
    ConfigError
        When a layer has no option: no core type runs its kind, or no mapping of it
        fits any core (the cost model's own message for the last type tried).
    """
    sizes = [group_sizes(info.count, max_split) for info in types]
    # (layer, type) -> index of the next group size to try; absent: stopped
    growing = {
        (v, t): 0
        for v, layer in enumerate(layers)
        for t, info in enumerate(types)
        if info.runs_kind(str(layer.op))
    }
    best: dict[tuple[int, int], float] = {}
    options: list[list[ExecOption]] = [[] for _ in layers]
    errors: dict[int, ConfigError] = {}
    priced: list[dict[Layer, LayerCost | ConfigError]] = [{} for _ in types]
    done = 0

    def step(k: int) -> None:
        nonlocal done
        done += k
        if progress is not None:
            progress(done, max(done, 1))

    while growing:
        round_: list[tuple[int, int, str, list[Layer]]] = []
        for (v, t), i in sorted(growing.items()):
            try:
                dim, parts = split_layer(layers[v], sizes[t][i])
            except ValueError:
                continue
            round_.append((v, t, dim, parts))
        for t, model in enumerate(models):
            fresh = [p for v, tt, _, parts in round_ if tt == t for p in parts]
            fresh = [p for p in fresh if _shape(p) not in priced[t]]
            priced[t].update(_price(model, fresh, step))
        stopped = set(growing) - {(v, t) for v, t, _, _ in round_}
        for v, t, dim, parts in round_:
            costs = [priced[t][_shape(p)] for p in parts]
            failed = next((c for c in costs if isinstance(c, ConfigError)), None)
            if failed is not None:
                errors.setdefault(v, failed)
                stopped.add((v, t))
                continue
            option = ExecOption(
                t,
                dim,
                tuple(_part(c, types[t], word_bytes) for c in costs if isinstance(c, LayerCost)),
            )
            options[v].append(option)
            key = (v, t)
            if key in best and option.alone_s > SPLIT_GAIN * best[key]:
                stopped.add(key)
            best[key] = min(best.get(key, math.inf), option.alone_s)
        growing = {
            key: i + 1
            for key, i in growing.items()
            if key not in stopped and i + 1 < len(sizes[key[1]])
        }
    if progress is not None:
        progress(done, done)
    result: list[tuple[ExecOption, ...]] = []
    for v, layer in enumerate(layers):
        if not options[v]:
            if v in errors:
                raise errors[v]
            kinds = ", ".join(f"{i.name}: {sorted(i.runs or [])}" for i in types)
            raise ConfigError(
                None,
                "accelerator.spec",
                f"layer {layer.name!r} is a {layer.op} layer and no core type runs it "
                f"({kinds}); expected a core type whose 'runs' includes {str(layer.op)!r}",
            )
        result.append(tuple(sorted(options[v], key=lambda o: (o.core_type, o.group))))
    return result
