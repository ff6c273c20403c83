"""A tiling-aware analytical cost model of one accelerator core (Timeloop-like).

The core (see :mod:`owin_cosim.accel.spec`) has three storage levels - the DRAM (the
whole chip's bandwidth: a layer is costed as if alone on the chip), the global buffer
(GLB) and one scratchpad per PE - and a ``mesh_y x mesh_x`` array of MAC units. A
layer, described by Timeloop's CNN-layer dimensions, runs as the loop nest::

    for tile in DRAM-level tiles (M-outer or PQ-outer order):  # GLB holds one tile
        for fold in spatial folds of the tile:                # the PE array
            parallel-for (a, b) in mesh_y x mesh_x:            # spatial unrolling
                for ... temporal loops inside the PE           # one MAC per cycle

**Spatial unrolling (dataflows).** Two problem dimensions are unrolled on the PE mesh,
in both orientations when the mesh is not square:

========  ====================  =======================================================
``ws``    ``M x C``             weight-stationary: each PE keeps ``R*S`` weights (of
                                as many channel folds as fit) in its scratchpad; inputs
                                multicast along ``M``, partial sums reduced spatially
                                along ``C``.
``os``    ``M x (P*Q)``         output-stationary: each PE accumulates one output over
                                ``C*R*S``; weights multicast along ``P*Q``, inputs along
                                ``M``.
``is``    ``(P*Q) x C``         input-stationary: each PE keeps ``R*S`` input windows
                                and loops over ``M``; weights multicast along ``P*Q``,
                                partial sums reduced spatially along ``C``.
``cw``    ``C x (P*Q)``         channel-wise (depthwise, pool, eltwise): one output per
                                PE over its ``R*S`` taps (or ``operands``).
========  ====================  =======================================================

Compute cycles count padded iterations: the product over unrolled dimensions of the
folds ``ceil(tile / unroll)`` (summed over tiles, so ragged last tiles are exact) times
the temporal loops; utilization is ``macs / (cycles * num_pes)``.
The loop nest of each dataflow, counted over all tile candidates at once, is in
:mod:`owin_cosim.accel.analytic_dataflows`.

**Temporal tiling at the GLB.** ``C``, ``R`` and ``S`` are never split at the GLB (no
partial sums go back to DRAM); tiles are taken over ``M`` (conv/matmul) or ``C``
(channel-wise) and over the output rows ``P`` (and columns ``Q`` only when a single
full-width row does not fit). Tile sizes are powers of two plus the full dimension; a
tile is legal when weights + inputs (with the halo rows of the window) + outputs of the
tile fit the GLB (no double buffering). Of two loop orders, ``M-outer`` keeps each
weight tile resident (inputs are re-read once per ``M`` tile) and ``PQ-outer`` keeps each
input tile resident (weights are re-read once per ``P*Q`` tile). Every (dataflow,
orientation, order, tile) candidate is priced and the one with the fewest cycles wins,
ties broken by energy, then by a fixed enumeration order (dataflows as listed,
orientation, order, tiles largest first): the result is deterministic. A PE's
stationary block (``R*S`` weights or inputs) that does not fit its scratchpad is
streamed from the GLB at every use instead.

**Accesses and roofline.** Per level, word reads, writes (partial-sum updates) and fills
(from the level above) follow the loop nest; they are totals over all instances. The
latency is ``max(compute, DRAM traffic / DRAM bandwidth, GLB reads / read bandwidth,
GLB writes+fills / write bandwidth, scratchpad traffic per PE / its bandwidth)``;
``bound_by`` names the winning term. The DRAM bandwidth of a core is the chip's whole
DRAM bandwidth (a layer alone on the chip gets all of it); layers running at once share
it by contention in the coordinator, not here. Energy is
``sum(reads * read energy + (writes + fills) * write energy) + macs * mac energy``.

**Not modelled.** Sliding-window (halo) reuse between neighbouring outputs or tiles (each
tile re-reads its halo rows; each PE receives every input tap), compression, sparsity,
registers inside the PE, DRAM row/bank effects, double buffering and the overlap of
tile transfers with compute beyond the roofline ``max``, and contention of cores on the
shared DRAM (the coordinator's job). Batches ``N`` share weights and are folded into
``P``; products whose second operand is an activation (``weights_from_activation``) are
``N`` independent problems.

Examples
--------
>>> from pathlib import Path
>>> from owin_cosim.accel import spec as accel_spec
>>> from owin_cosim.workload.graph import conv2d
>>> chip = accel_spec.load_chip_spec(
...     Path(accel_spec.__file__).parents[2] / "accel_specs" / "mc4.yaml")
>>> model = AnalyticCostModel(chip)
>>> cost = model.layer_cost(conv2d("c", C=64, M=64, P=56, Q=56, R=3))
>>> cost.bound_by, cost.cycles >= cost.macs // chip.core.num_pes, 0 < cost.utilization <= 1
('compute', True, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from owin_cosim.accel.analytic_dataflows import (
    Counts,
    channelwise_counts,
    channelwise_nest,
    conv_counts,
    conv_nest,
)
from owin_cosim.accel.cost_model import LayerCost, LevelAccesses
from owin_cosim.accel.spec import ChipSpec
from owin_cosim.errors import ConfigError
from owin_cosim.workload.graph import Layer, OpKind

__all__ = ["CONV_DATAFLOWS", "AnalyticCostModel", "CoreMapping"]

#: Dataflows tried for convolutions and matrix products, in tie-breaking order.
CONV_DATAFLOWS: tuple[str, ...] = ("ws", "os", "is")


@dataclass(frozen=True, slots=True)
class CoreMapping:
    """The mapping chosen for a layer.

    Attributes
    ----------
    dataflow : str
        ``ws``, ``os``, ``is`` or ``cw`` (see the module docstring).
    spatial : tuple of str
        Problem dimensions unrolled along the mesh's Y (rows) and X (columns).
    unroll : tuple of int
        PEs along Y and X.
    tile : dict
        GLB tile sizes per dimension (``M, C, P, Q``; ``P`` includes the folded ``N``).
    order : str
        DRAM-level loop order: ``M-outer``, ``PQ-outer`` or ``-`` (channel-wise).
    compute_cycles : int
        Padded compute cycles before the bandwidth roofline (all of the layer).
    """

    dataflow: str
    spatial: tuple[str, str]
    unroll: tuple[int, int]
    tile: dict[str, int]
    order: str
    compute_cycles: int


@dataclass(frozen=True, slots=True)
class _Choice:
    """The best candidate of one (dataflow, orientation)."""

    key: tuple[int, float]  # (cycles, energy)
    dataflow: str
    spatial: tuple[str, str]
    unroll: tuple[int, int]
    tile: dict[str, int]
    order: str
    counts: dict[str, int]


class AnalyticCostModel:
    """Tiling-aware analytical latency and energy of a layer on one core.

    Parameters
    ----------
    chip : ChipSpec
        The accelerator; every core is a copy of ``chip.core``.
    latency_scale : float, default 1.0
        Multiplies ``seconds`` (not ``cycles``), e.g. to calibrate against Timeloop.
    dataflows : sequence of str, optional
        Restrict the dataflows tried for conv/matmul layers (subset of
        :data:`CONV_DATAFLOWS`); channel-wise layers always use ``cw``.

    Notes
    -----
    Results are memoised per layer *shape* (dimensions, strides, kind; not the name),
    so the slices of a chunked layer and repeated blocks are priced once. The returned
    :class:`~owin_cosim.accel.cost_model.LayerCost` objects are shared: do not mutate their
    ``levels``.

    Examples
    --------
    >>> from pathlib import Path
    >>> from owin_cosim.accel import spec as accel_spec
    >>> from owin_cosim.workload.graph import matmul
    >>> chip = accel_spec.load_chip_spec(
    ...     Path(accel_spec.__file__).parents[2] / "accel_specs" / "mc8.yaml")
    >>> model = AnalyticCostModel(chip)
    >>> fc = matmul("fc", rows=1, in_features=4096, out_features=4096)
    >>> model.layer_cost(fc).bound_by   # weights streamed once at 1.6 words/cycle
    'DRAM'
    >>> model.mapping(fc).dataflow in CONV_DATAFLOWS
    True
    """

    name = "analytic"

    def __init__(
        self, chip: ChipSpec, *, latency_scale: float = 1.0, dataflows: Sequence[str] | None = None
    ) -> None:
        if not (latency_scale > 0 and math.isfinite(latency_scale)):
            raise ValueError(f"latency_scale must be a finite number > 0, got {latency_scale!r}")
        flows = tuple(CONV_DATAFLOWS if dataflows is None else dataflows)
        unknown = [d for d in flows if d not in CONV_DATAFLOWS]
        if unknown or not flows:
            raise ValueError(
                f"dataflows must be a non-empty subset of {CONV_DATAFLOWS}, got {list(flows)!r}"
            )
        self.chip = chip
        self.latency_scale = float(latency_scale)
        self.dataflows = tuple(d for d in CONV_DATAFLOWS if d in flows)
        core = chip.core
        self._dram, self._glb, self._spad = core.dram, core.global_buffer, core.pe_buffer
        assert self._glb.size_words is not None and self._spad.size_words is not None
        self._glb_words = self._glb.size_words
        self._spad_words = self._spad.size_words
        self._my, self._mx = core.pe_mesh_y, core.pe_mesh_x
        self._num_pes = core.num_pes
        self._orients = [(self._my, self._mx)]
        if self._mx != self._my:
            self._orients.append((self._mx, self._my))
        self._cache: dict[tuple[object, ...], tuple[LayerCost, CoreMapping]] = {}

    # ---- public API ------------------------------------------------------------------
    def layer_cost(self, layer: Layer) -> LayerCost:
        """Latency and energy of ``layer`` on one core (memoised per shape).

        Raises
        ------
        ConfigError
            When even the smallest tile of the layer does not fit the global buffer
            (check :meth:`fits` first).
        """
        return self._evaluate(layer)[0]

    def mapping(self, layer: Layer) -> CoreMapping:
        """The dataflow, tiling and loop order chosen for ``layer``."""
        return self._evaluate(layer)[1]

    def min_buffer_words(self, layer: Layer) -> int:
        """Global-buffer words needed by the smallest legal tile of ``layer``.

        One output: its filter (``R*S*C`` weights; ``R*S`` for depthwise, none for pool
        and eltwise), the matching input window (``R*S*C``; ``R*S`` per channel for
        depthwise and pool, ``operands`` for eltwise) and the output word.
        """
        R, S, C = layer.R, layer.S, layer.C
        if layer.op in (OpKind.CONV, OpKind.MATMUL):
            return 2 * R * S * C + 1
        weights = R * S if layer.op is OpKind.DEPTHWISE else 0
        inputs = R * S * (layer.operands if layer.op is OpKind.ELTWISE else 1)
        return weights + inputs + 1

    def fits(self, layer: Layer) -> bool:
        """Whether some tile of ``layer`` fits the core's global buffer."""
        return self.min_buffer_words(layer) <= self._glb_words

    # ---- evaluation --------------------------------------------------------------------
    @staticmethod
    def _shape_key(layer: Layer) -> tuple[object, ...]:
        return (
            layer.op,
            layer.R,
            layer.S,
            layer.P,
            layer.Q,
            layer.C,
            layer.M,
            layer.N,
            layer.Hstride,
            layer.Wstride,
            layer.Hdilation,
            layer.Wdilation,
            layer.operands,
            layer.weights_from_activation,
        )

    def _evaluate(self, layer: Layer) -> tuple[LayerCost, CoreMapping]:
        key = self._shape_key(layer)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if not self.fits(layer):
            raise ConfigError(
                self.chip.path,
                f"{self._glb.key}.attributes.memory_depth",
                f"layer {layer.name!r} needs at least "
                f"{self.min_buffer_words(layer)} words of global buffer, the "
                f"core has {self._glb_words}",
            )
        conv = layer.op in (OpKind.CONV, OpKind.MATMUL)
        # Products with an activation as second operand are N independent problems;
        # otherwise the batch shares the weights and is folded into the rows P.
        repeat = layer.N if (conv and layer.weights_from_activation) else 1
        rows = layer.P * (layer.N // repeat)
        best = self._search_conv(layer, rows) if conv else self._search_channelwise(layer, rows)
        result = self._finish(layer, best, repeat)
        self._cache[key] = result
        return result

    def _search_conv(self, layer: Layer, P: int) -> _Choice:
        """Convolutions and matrix products: dataflows x orientations x orders x tiles."""
        nest = conv_nest(layer, P, self._glb_words)
        best: _Choice | None = None
        for flow in self.dataflows:
            for uy, ux in self._orients:
                counts, spatial = conv_counts(nest, flow, uy, ux, self._spad_words)
                i, key = self._pick(counts, nest.macs)
                if best is None or key < best.key:
                    tile = {
                        "M": int(nest.Mt[i]),
                        "C": nest.C,
                        "P": int(nest.Pt[i]),
                        "Q": int(nest.Qt[i]),
                    }
                    best = _Choice(key, flow, spatial, (uy, ux), tile, nest.orders[i], counts.at(i))
        assert best is not None
        return best

    def _search_channelwise(self, layer: Layer, P: int) -> _Choice:
        """Depthwise, pool and eltwise: channels x pixels, tiles over C and P (x Q)."""
        nest = channelwise_nest(layer, P, self._glb_words)
        best: _Choice | None = None
        for uy, ux in self._orients:  # C along Y, pixels along X
            counts = channelwise_counts(nest, uy, ux)
            i, key = self._pick(counts, nest.macs)
            if best is None or key < best.key:
                tile = {"M": 1, "C": int(nest.Ct[i]), "P": int(nest.Pt[i]), "Q": int(nest.Qt[i])}
                best = _Choice(key, "cw", ("C", "PQ"), (uy, ux), tile, "-", counts.at(i))
        assert best is not None
        return best

    def _terms(self, c: Counts | dict[str, int]) -> list[tuple[str, Any]]:
        """Roofline terms in cycles: compute, then each level (outermost first)."""
        get = c.__getitem__ if isinstance(c, dict) else c.__getattribute__
        dram, glb, spad = self._dram, self._glb, self._spad
        per_pe = 1.0 / self._num_pes
        return [
            ("compute", get("compute")),
            (dram.name, (get("dram_r") + get("dram_w")) / dram.read_bw_words_per_cycle),
            (
                glb.name,
                np.maximum(
                    get("glb_r") / glb.read_bw_words_per_cycle,
                    (get("glb_w") + get("glb_f")) / glb.write_bw_words_per_cycle,
                ),
            ),
            (
                spad.name,
                np.maximum(
                    get("spad_r") * per_pe / spad.read_bw_words_per_cycle,
                    (get("spad_w") + get("spad_f")) * per_pe / spad.write_bw_words_per_cycle,
                ),
            ),
        ]

    def _level_energy(self, c: Counts | dict[str, int]) -> dict[str, Any]:
        """Energy (pJ) per storage level: reads, and writes + fills."""
        get = c.__getitem__ if isinstance(c, dict) else c.__getattribute__
        dram, glb, spad = self._dram, self._glb, self._spad
        return {
            dram.name: get("dram_r") * dram.read_energy_pJ + get("dram_w") * dram.write_energy_pJ,
            glb.name: get("glb_r") * glb.read_energy_pJ
            + (get("glb_w") + get("glb_f")) * glb.write_energy_pJ,
            spad.name: get("spad_r") * spad.read_energy_pJ
            + (get("spad_w") + get("spad_f")) * spad.write_energy_pJ,
        }

    def _pick(self, counts: Counts, macs: int) -> tuple[int, tuple[int, float]]:
        """Best candidate: fewest cycles, then least energy, then lowest index."""
        terms = self._terms(counts)
        latency = terms[0][1]
        for _, value in terms[1:]:
            latency = np.maximum(latency, value)
        cycles = np.ceil(latency - 1e-9).astype(np.int64)
        energy = sum(self._level_energy(counts).values()) + np.zeros(cycles.shape)
        pool = np.flatnonzero(cycles == cycles.min())
        i = int(pool[np.argmin(energy[pool])])
        return i, (int(cycles[i]), float(energy[i]) + macs * self.chip.core.mac_energy_pJ)

    def _finish(self, layer: Layer, best: _Choice, repeat: int) -> tuple[LayerCost, CoreMapping]:
        """Scale the chosen candidate by the independent repeats and build the result."""
        c = {k: v * repeat for k, v in best.counts.items()}
        terms = [(name, float(value)) for name, value in self._terms(c)]
        bound_by, longest = terms[0]
        for name, value in terms[1:]:  # ties go to compute, then the outer level
            if value > longest * (1 + 1e-12):
                bound_by, longest = name, value
        cycles = max(math.ceil(longest - 1e-9), 1)
        on_chip = max(value for name, value in terms if name != self._dram.name)
        energies = self._level_energy(c)
        dram, glb, spad = self._dram, self._glb, self._spad
        levels = {
            dram.name: LevelAccesses(c["dram_r"], c["dram_w"], 0, float(energies[dram.name])),
            glb.name: LevelAccesses(c["glb_r"], c["glb_w"], c["glb_f"], float(energies[glb.name])),
            spad.name: LevelAccesses(
                c["spad_r"], c["spad_w"], c["spad_f"], float(energies[spad.name])
            ),
        }
        macs = layer.macs
        energy = sum(lv.energy_pJ for lv in levels.values()) + macs * self.chip.core.mac_energy_pJ
        cost = LayerCost(
            cycles=cycles,
            seconds=cycles / self.chip.clock_hz * self.latency_scale,
            energy_pJ=float(energy),
            utilization=min(1.0, macs / (cycles * self._num_pes)),
            macs=macs,
            levels=levels,
            bound_by=bound_by,
            compute_cycles=min(max(math.ceil(on_chip - 1e-9), 1), cycles),
        )
        mapping = CoreMapping(
            best.dataflow, best.spatial, best.unroll, best.tile, best.order, c["compute"]
        )
        return cost, mapping
