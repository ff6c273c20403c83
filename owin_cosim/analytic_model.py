"""A tiling-aware analytical cost model of one accelerator core (Timeloop-like).

The core (see :mod:`owin_cosim.accel_spec`) has three storage levels - the DRAM (a
static, equal share of the chip's bandwidth), the global buffer (GLB) and one
scratchpad per PE - and a ``mesh_y x mesh_x`` array of MAC units. A layer, described by
Timeloop's CNN-layer dimensions, runs as the loop nest::

    for tile in DRAM-level tiles (M-outer or PQ-outer order):  # GLB holds one tile
        for fold in spatial folds of the tile:                # the PE array
            parallel-for (a, b) in mesh_y x mesh_x:            # spatial unrolling
                for ... temporal loops inside the PE           # one MAC per cycle

**Spatial unrolling (dataflows).** Two problem dimensions are unrolled on the PE mesh,
in both orientations when the mesh is not square:

========  ====================  =======================================================
``ws``    ``M x C``             weight-stationary: each PE keeps ``R*S`` weights in its
                                scratchpad; inputs multicast along ``M``, partial sums
                                reduced spatially along ``C``.
``os``    ``M x (P*Q)``         output-stationary: each PE accumulates one output over
                                ``C*R*S``; weights multicast along ``P*Q``, inputs along
                                ``M``.
``is``    ``(P*Q) x C``         input-stationary: each PE keeps an ``R*S`` input window
                                and loops over ``M``; weights multicast along ``P*Q``.
``cw``    ``C x (P*Q)``         channel-wise (depthwise, pool, eltwise): one output per
                                PE over its ``R*S`` taps (or ``operands``).
========  ====================  =======================================================

Compute cycles count padded iterations: the product over unrolled dimensions of the
folds ``ceil(tile / unroll)`` (summed over tiles, so ragged last tiles are exact) times
the temporal loops; utilization is ``macs / (cycles * num_pes)``.

**Temporal tiling at the GLB.** ``C``, ``R`` and ``S`` are never split at the GLB (no
partial sums go back to DRAM); tiles are taken over ``M`` (conv/matmul) or ``C``
(channel-wise) and over the output rows ``P`` (and columns ``Q`` only when a single
full-width row does not fit). Tile sizes are powers of two plus the full dimension; a
tile is legal when weights + inputs (with the halo rows of the window) + outputs of the
tile fit the GLB (no double buffering). Of two loop orders, ``M-outer`` keeps each
weight tile resident (inputs are re-read once per ``M`` tile) and ``PQ-outer`` keeps each
input tile resident (weights are re-read once per ``P*Q`` tile). Every (dataflow,
orientation, order, tile) candidate is priced and the one with the fewest cycles wins,
ties broken by energy, then by a fixed enumeration order: the result is deterministic.

**Accesses and roofline.** Per level, word reads, writes (partial-sum updates) and fills
(from the level above) follow the loop nest; they are totals over all instances. The
latency is ``max(compute, DRAM traffic / DRAM bandwidth, GLB reads / read bandwidth,
GLB writes+fills / write bandwidth, scratchpad traffic per PE / its bandwidth)``;
``bound_by`` names the winning term. The DRAM bandwidth of a core is the chip's DRAM
bandwidth divided by the number of cores (a static equal partition: no core borrows the
idle share of another). Energy is ``sum(reads * read energy + (writes + fills) * write
energy) + macs * mac energy``.

**Not modelled.** Sliding-window (halo) reuse between neighbouring outputs or tiles (each
tile re-reads its halo rows; each PE receives every input tap), compression, sparsity,
registers inside the PE, DRAM row/bank effects, double buffering and the overlap of
tile transfers with compute beyond the roofline ``max``, and contention of cores on the
shared DRAM beyond the static partition. Batches ``N`` share weights and are folded into
``P``; products whose second operand is an activation (``weights_from_activation``) are
``N`` independent problems.

Examples
--------
>>> from pathlib import Path
>>> from owin_cosim import accel_spec
>>> from owin_cosim.workload import conv2d
>>> chip = accel_spec.load_chip_spec(
...     Path(accel_spec.__file__).parents[1] / "accel_specs" / "mc4.yaml")
>>> model = AnalyticCostModel(chip)
>>> cost = model.layer_cost(conv2d("c", C=64, M=64, P=56, Q=56, R=3))
>>> cost.bound_by, cost.cycles >= cost.macs // chip.core.num_pes, 0 < cost.utilization <= 1
('compute', True, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from owin_cosim.accel_spec import ChipSpec
from owin_cosim.cost_model import LayerCost, LevelAccesses
from owin_cosim.errors import ConfigError
from owin_cosim.workload import Layer, OpKind

__all__ = ["CONV_DATAFLOWS", "AnalyticCostModel", "CoreMapping"]

#: Dataflows tried for convolutions and matrix products, in tie-breaking order.
CONV_DATAFLOWS: tuple[str, ...] = ("ws", "os", "is")

_I64 = np.int64


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
        Padded compute cycles, before the bandwidth roofline (one problem of a batch of
        independent products).
    """

    dataflow: str
    spatial: tuple[str, str]
    unroll: tuple[int, int]
    tile: dict[str, int]
    order: str
    compute_cycles: int


def _steps(n: int) -> list[int]:
    """Tile-size candidates, largest first: ``n`` and the powers of two below it.

    Largest first, so that exact ties go to the larger tile (fewer tile switches).

    >>> _steps(12)
    [12, 8, 4, 2, 1]
    """
    out = [n]
    v = 1
    while v < n:
        out.insert(1, v)
        v *= 2
    return out


def _cdiv(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    return np.asarray(-(-np.asarray(a) // b), dtype=_I64)


class _Tiles:
    """Vectors over tile candidates: counts of full tiles, remainders, halo sums."""

    def __init__(self, P: int, Q: int, Pt: np.ndarray, Qt: np.ndarray, layer: Layer) -> None:
        self.Pt, self.Qt = Pt, Qt
        self.nPf, self.Pr = P // Pt, P % Pt
        self.nQf, self.Qr = Q // Qt, Q % Qt
        self.nPQ = _cdiv(P, Pt) * _cdiv(Q, Qt)
        R, S = layer.R, layer.S

        def rows(x: np.ndarray) -> np.ndarray:
            x = np.maximum(x, 1)
            return np.minimum((x - 1) * layer.Hstride + (R - 1) * layer.Hdilation + 1, x * R)

        def cols(x: np.ndarray) -> np.ndarray:
            x = np.maximum(x, 1)
            return np.minimum((x - 1) * layer.Wstride + (S - 1) * layer.Wdilation + 1, x * S)

        self.h_tile, self.w_tile = rows(Pt), cols(Qt)
        self.sum_h = self.nPf * self.h_tile + np.where(self.Pr > 0, rows(self.Pr), 0)
        self.sum_w = self.nQf * self.w_tile + np.where(self.Qr > 0, cols(self.Qr), 0)

    def pq_folds(self, u: int) -> np.ndarray:
        """Sum over all ``P x Q`` tiles of ``ceil(tile_pixels / u)``."""
        Pt, Qt, Pr, Qr = self.Pt, self.Qt, self.Pr, self.Qr
        return (self.nPf * self.nQf * _cdiv(Pt * Qt, u) + self.nPf * _cdiv(Pt * Qr, u)
                + self.nQf * _cdiv(Pr * Qt, u) + _cdiv(Pr * Qr, u))


def _dim_folds(D: int, T: np.ndarray, u: int) -> np.ndarray:
    """Sum over the tiles of ``D`` (tile size ``T``) of ``ceil(tile / u)``."""
    return (D // T) * _cdiv(T, u) + _cdiv(D % T, u)


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
    :class:`~owin_cosim.cost_model.LayerCost` objects are shared: do not mutate their
    ``levels``.

    Examples
    --------
    >>> from pathlib import Path
    >>> from owin_cosim import accel_spec
    >>> from owin_cosim.workload import matmul
    >>> chip = accel_spec.load_chip_spec(
    ...     Path(accel_spec.__file__).parents[1] / "accel_specs" / "mc8.yaml")
    >>> model = AnalyticCostModel(chip)
    >>> fc = matmul("fc", rows=1, in_features=4096, out_features=4096)
    >>> model.layer_cost(fc).bound_by   # weights streamed once at 1.6 words/cycle
    'DRAM'
    >>> model.mapping(fc).dataflow in CONV_DATAFLOWS
    True
    """

    name = "analytic"

    def __init__(self, chip: ChipSpec, *, latency_scale: float = 1.0,
                 dataflows: Sequence[str] | None = None) -> None:
        if not (latency_scale > 0 and math.isfinite(latency_scale)):
            raise ValueError(f"latency_scale must be a finite number > 0, got {latency_scale!r}")
        flows = tuple(CONV_DATAFLOWS if dataflows is None else dataflows)
        unknown = [d for d in flows if d not in CONV_DATAFLOWS]
        if unknown or not flows:
            raise ValueError(f"dataflows must be a non-empty subset of {CONV_DATAFLOWS}, "
                             f"got {list(flows)!r}")
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
        return (layer.op, layer.R, layer.S, layer.P, layer.Q, layer.C, layer.M, layer.N,
                layer.Hstride, layer.Wstride, layer.Hdilation, layer.Wdilation,
                layer.operands, layer.weights_from_activation)

    def _evaluate(self, layer: Layer) -> tuple[LayerCost, CoreMapping]:
        key = self._shape_key(layer)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if not self.fits(layer):
            raise ConfigError(self.chip.path, f"{self._glb.key}.attributes.memory_depth",
                              f"layer {layer.name!r} needs at least "
                              f"{self.min_buffer_words(layer)} words of global buffer, the "
                              f"core has {self._glb_words}")
        conv = layer.op in (OpKind.CONV, OpKind.MATMUL)
        repeat = layer.N if (conv and layer.weights_from_activation) else 1
        rows = layer.P * (layer.N // repeat)  # shared-weight batches fold into P
        best = self._search_conv(layer, rows) if conv else self._search_channelwise(layer, rows)
        result = self._finish(layer, best, repeat)
        self._cache[key] = result
        return result

    def _glb_fit(self, w_tile: np.ndarray, i_tile: np.ndarray,
                 o_tile: np.ndarray) -> np.ndarray:
        fit: np.ndarray = (w_tile + i_tile + o_tile) <= self._glb_words
        return fit

    def _search_conv(self, layer: Layer, P: int) -> _Candidate:
        M, C, R, S, Q = layer.M, layer.C, layer.R, layer.S, layer.Q
        RS = R * S
        macs = M * C * RS * P * Q
        q_steps = [Q]
        _, _, i1 = self._single_tile_words(layer, 1, Q, C)
        if C * RS + i1 + Q > self._glb_words:
            q_steps = _steps(Q)
        Mt, Pt, Qt = (g.ravel() for g in np.meshgrid(
            np.array(_steps(M), dtype=_I64), np.array(_steps(P), dtype=_I64),
            np.array(q_steps, dtype=_I64), indexing="ij"))
        t = _Tiles(P, Q, Pt, Qt, layer)
        fit = self._glb_fit(Mt * C * RS, C * t.h_tile * t.w_tile, Mt * Pt * Qt)
        Mt, Pt, Qt = Mt[fit], Pt[fit], Qt[fit]
        t = _Tiles(P, Q, Pt, Qt, layer)
        n = Mt.size
        nM = _cdiv(M, Mt)
        W, O = M * C * RS, M * P * Q
        I_sum = C * t.sum_h * t.sum_w
        # two DRAM-level orders stacked: [M-outer | PQ-outer]
        w_dram = np.concatenate([np.full(n, W, _I64), np.where(nM == 1, W, t.nPQ * W)])
        i_dram = np.concatenate([np.where(t.nPQ == 1, I_sum, nM * I_sum), I_sum])
        dram_r = w_dram + i_dram
        Mt2, nM2, nPQ2 = np.tile(Mt, 2), np.tile(nM, 2), np.tile(t.nPQ, 2)
        orders = np.repeat(np.array([0, 1]), n)
        best: _Candidate | None = None
        for flow in self.dataflows:
            for uy, ux in self._orients:
                if flow == "ws":
                    uM, uC = uy, ux
                    sumM = _dim_folds(M, Mt2, uM)
                    cf = -(-C // uC)
                    cycles = sumM * (cf * RS * P * Q)
                    st_fit = RS <= self._spad_words
                    w_glb = W * nPQ2 if st_fit else np.full(2 * n, macs, _I64)
                    i_glb = (RS * P * Q * C) * sumM
                    o_w, o_r = O * cf, O * cf
                    sp_r, sp_w, sp_f = macs, 0, (w_glb if st_fit else macs)
                    spatial = ("M", "C")
                elif flow == "os":
                    uM, uPQ = uy, ux
                    sumM = _dim_folds(M, Mt2, uM)
                    fpq = np.tile(t.pq_folds(uPQ), 2)
                    cycles = sumM * fpq * (C * RS)
                    w_glb = W * fpq
                    i_glb = (P * Q * C * RS) * sumM
                    o_w, o_r = O, O
                    sp_r, sp_w, sp_f = macs, macs, 0
                    spatial = ("M", "PQ")
                else:  # "is"
                    uPQ, uC = uy, ux
                    cf = -(-C // uC)
                    fpq = np.tile(t.pq_folds(uPQ), 2)
                    cycles = fpq * (cf * M * RS)
                    st_fit = RS <= self._spad_words
                    i_glb = (P * Q * C * RS) * nM2 if st_fit else np.full(2 * n, macs, _I64)
                    w_glb = W * fpq
                    o_w, o_r = O * cf, O * cf
                    sp_r, sp_w, sp_f = macs, 0, i_glb
                    spatial = ("PQ", "C")
                cand = self._price(cycles, dram_r, O, w_glb + i_glb + o_r, o_w, sp_r, sp_w, sp_f,
                                   macs)
                idx, key = cand
                if best is None or key < best.key:
                    i = int(idx)
                    tile = {"M": int(Mt2[i]), "C": C, "P": int(np.tile(Pt, 2)[i]),
                            "Q": int(np.tile(Qt, 2)[i])}
                    best = _Candidate(key, flow, spatial, (uy, ux), tile,
                                      "M-outer" if orders[i] == 0 else "PQ-outer",
                                      self._counts_at(i, cycles, dram_r, O,
                                                      w_glb + i_glb + o_r, o_w, sp_r, sp_w,
                                                      sp_f))
        assert best is not None
        return best

    def _search_channelwise(self, layer: Layer, P: int) -> _Candidate:
        C, R, S, Q = layer.C, layer.R, layer.S, layer.Q
        RS = R * S
        ops_in = layer.operands if layer.op is OpKind.ELTWISE else 1
        has_w = layer.op is OpKind.DEPTHWISE
        macs = layer.macs  # the batch is folded into P: same total
        inner = macs // (C * P * Q)  # temporal ops per output
        q_steps = [Q]
        _, _, i1 = self._single_tile_words(layer, 1, Q, 1)
        if (RS if has_w else 0) + ops_in * i1 + Q > self._glb_words:
            q_steps = _steps(Q)
        Ct, Pt, Qt = (g.ravel() for g in np.meshgrid(
            np.array(_steps(C), dtype=_I64), np.array(_steps(P), dtype=_I64),
            np.array(q_steps, dtype=_I64), indexing="ij"))
        t = _Tiles(P, Q, Pt, Qt, layer)
        w_tile = Ct * RS if has_w else np.zeros_like(Ct)
        fit = self._glb_fit(w_tile, ops_in * Ct * t.h_tile * t.w_tile, Ct * Pt * Qt)
        Ct, Pt, Qt = Ct[fit], Pt[fit], Qt[fit]
        t = _Tiles(P, Q, Pt, Qt, layer)
        Wc, O = (C * RS if has_w else 0), C * P * Q
        dram_r = Wc + ops_in * C * t.sum_h * t.sum_w
        best: _Candidate | None = None
        for uy, ux in self._orients:
            uC, uPQ = uy, ux
            fpq = t.pq_folds(uPQ)
            cycles = _dim_folds(C, Ct, uC) * fpq * inner
            w_glb = Wc * fpq
            i_glb = O * RS * ops_in
            glb_r = w_glb + i_glb + O
            idx, key = self._price(cycles, dram_r, O, glb_r, O, macs, macs, 0, macs)
            if best is None or key < best.key:
                i = int(idx)
                best = _Candidate(key, "cw", ("C", "PQ"), (uy, ux),
                                  {"M": 1, "C": int(Ct[i]), "P": int(Pt[i]), "Q": int(Qt[i])},
                                  "-", self._counts_at(i, cycles, dram_r, O, glb_r, O, macs,
                                                       macs, 0))
        assert best is not None
        return best

    @staticmethod
    def _single_tile_words(layer: Layer, p: int, q: int, c: int) -> tuple[int, int, int]:
        """Input rows, columns and words of a ``p x q`` output tile over ``c`` channels."""
        h = min((p - 1) * layer.Hstride + (layer.R - 1) * layer.Hdilation + 1, p * layer.R)
        w = min((q - 1) * layer.Wstride + (layer.S - 1) * layer.Wdilation + 1, q * layer.S)
        return h, w, c * h * w

    def _price(self, cycles: np.ndarray, dram_r: np.ndarray | int, dram_w: int,
               glb_r: np.ndarray | int, glb_w: np.ndarray | int, sp_r: np.ndarray | int,
               sp_w: np.ndarray | int, sp_f: np.ndarray | int,
               macs: int) -> tuple[int, tuple[int, float]]:
        """Index of the best candidate and its sort key ``(cycles, energy)``.

        Ties on both go to the lowest index (the fixed enumeration order).
        """
        dram, glb, spad = self._dram, self._glb, self._spad
        n = np.size(cycles)
        lat = np.maximum(cycles.astype(float),
                         (dram_r + dram_w) / dram.read_bw_words_per_cycle)
        glb_f = dram_r
        lat = np.maximum(lat, np.asarray(glb_r) / glb.read_bw_words_per_cycle)
        lat = np.maximum(lat, (np.asarray(glb_w) + glb_f) / glb.write_bw_words_per_cycle)
        per_pe = 1.0 / self._num_pes
        lat = np.maximum(lat, np.asarray(sp_r) * per_pe / spad.read_bw_words_per_cycle)
        lat = np.maximum(lat, (np.asarray(sp_w) + sp_f) * per_pe / spad.write_bw_words_per_cycle)
        cyc = np.ceil(lat - 1e-9).astype(_I64)
        energy = (dram_r * dram.read_energy_pJ + dram_w * dram.write_energy_pJ
                  + np.asarray(glb_r) * glb.read_energy_pJ
                  + (np.asarray(glb_w) + glb_f) * glb.write_energy_pJ
                  + np.asarray(sp_r) * spad.read_energy_pJ
                  + (np.asarray(sp_w) + sp_f) * spad.write_energy_pJ)
        energy = np.broadcast_to(energy, (n,))
        best_cyc = cyc.min()
        pool = np.flatnonzero(cyc == best_cyc)
        i = int(pool[np.argmin(energy[pool])])
        return i, (int(best_cyc), float(energy[i]) + macs * self.chip.core.mac_energy_pJ)

    @staticmethod
    def _counts_at(i: int, cycles: np.ndarray, dram_r: np.ndarray | int, dram_w: int,
                   glb_r: np.ndarray | int, glb_w: np.ndarray | int, sp_r: np.ndarray | int,
                   sp_w: np.ndarray | int, sp_f: np.ndarray | int) -> dict[str, int]:
        def at(v: np.ndarray | int) -> int:
            arr = np.asarray(v)
            return int(arr) if arr.ndim == 0 else int(arr[i])

        return {"compute": at(cycles), "dram_r": at(dram_r), "dram_w": dram_w,
                "glb_r": at(glb_r), "glb_w": at(glb_w), "glb_f": at(dram_r),
                "sp_r": at(sp_r), "sp_w": at(sp_w), "sp_f": at(sp_f)}

    def _finish(self, layer: Layer, best: _Candidate,
                repeat: int) -> tuple[LayerCost, CoreMapping]:
        """Scale the chosen candidate by the independent repeats and build the result."""
        c = {k: v * repeat for k, v in best.counts.items()}
        dram, glb, spad = self._dram, self._glb, self._spad
        terms = [
            ("compute", float(c["compute"])),
            (dram.name, (c["dram_r"] + c["dram_w"]) / dram.read_bw_words_per_cycle),
            (glb.name, max(c["glb_r"] / glb.read_bw_words_per_cycle,
                           (c["glb_w"] + c["glb_f"]) / glb.write_bw_words_per_cycle)),
            (spad.name, max(c["sp_r"] / self._num_pes / spad.read_bw_words_per_cycle,
                            (c["sp_w"] + c["sp_f"]) / self._num_pes
                            / spad.write_bw_words_per_cycle)),
        ]
        bound_by, longest = terms[0]
        for name, value in terms[1:]:
            if value > longest + 1e-9 * max(longest, 1.0):
                bound_by, longest = name, value
        cycles = max(math.ceil(longest - 1e-9), 1)
        levels = {
            dram.name: LevelAccesses(c["dram_r"], c["dram_w"], 0,
                                     c["dram_r"] * dram.read_energy_pJ
                                     + c["dram_w"] * dram.write_energy_pJ),
            glb.name: LevelAccesses(c["glb_r"], c["glb_w"], c["glb_f"],
                                    c["glb_r"] * glb.read_energy_pJ
                                    + (c["glb_w"] + c["glb_f"]) * glb.write_energy_pJ),
            spad.name: LevelAccesses(c["sp_r"], c["sp_w"], c["sp_f"],
                                     c["sp_r"] * spad.read_energy_pJ
                                     + (c["sp_w"] + c["sp_f"]) * spad.write_energy_pJ),
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
        )
        mapping = CoreMapping(best.flow, best.spatial, best.unroll, best.tile, best.order,
                              best.counts["compute"])
        return cost, mapping


@dataclass(frozen=True, slots=True)
class _Candidate:
    key: tuple[int, float]
    flow: str
    spatial: tuple[str, str]
    unroll: tuple[int, int]
    tile: dict[str, int]
    order: str
    counts: dict[str, int]
