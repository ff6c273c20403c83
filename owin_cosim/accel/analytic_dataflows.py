"""The analytic model's loop nests, vectorised over tile candidates.

For one layer, :func:`conv_nest` (convolutions, matrix products) and
:func:`channelwise_nest` (depthwise, pool, eltwise) enumerate the legal global-buffer
tiles (the rules of :mod:`owin_cosim.accel.analytic`: powers of two plus the full
dimension, everything of a tile fits the GLB, no double buffering) as int64 vectors;
:func:`conv_counts` and :func:`channelwise_counts` give, for one dataflow and
orientation of the PE mesh, the compute cycles and the word accesses per level of every
candidate (:class:`Counts`). Pricing them (the roofline, energy) and choosing one is the
model's part (:class:`~owin_cosim.accel.analytic.AnalyticCostModel`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from owin_cosim.workload.graph import Layer, OpKind

__all__ = [
    "ChannelwiseNest",
    "ConvNest",
    "Counts",
    "Tiles",
    "channelwise_counts",
    "channelwise_nest",
    "conv_counts",
    "conv_nest",
]

_I64 = np.int64
_IntArray = np.ndarray  # int64 vectors over tile candidates


@dataclass(frozen=True, slots=True)
class Counts:
    """Compute cycles and word accesses per level: per-candidate vectors or scalars."""

    compute: _IntArray
    dram_r: _IntArray | int
    dram_w: _IntArray | int
    glb_r: _IntArray | int
    glb_w: _IntArray | int
    glb_f: _IntArray | int
    spad_r: _IntArray | int
    spad_w: _IntArray | int
    spad_f: _IntArray | int

    def at(self, i: int) -> dict[str, int]:
        """Candidate ``i`` as plain integers."""
        out = {}
        for name in self.__slots__:
            v = getattr(self, name)
            out[name] = int(v) if isinstance(v, int) else int(v[i])
        return out


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


def _cdiv(a: _IntArray | int, b: _IntArray | int) -> _IntArray:
    """Elementwise integer ceiling of ``a / b``."""
    out: _IntArray = -(-np.asarray(a, dtype=_I64) // b)
    return out


def _dim_folds(D: int, T: _IntArray, u: int) -> _IntArray:
    """Sum over the tiles of a dimension ``D`` (tile size ``T``) of ``ceil(tile / u)``."""
    out: _IntArray = (D // T) * _cdiv(T, u) + _cdiv(D % T, u)
    return out


class Tiles:
    """Per-candidate tile counts over ``P x Q``, with the input rows/columns they read."""

    def __init__(self, layer: Layer, P: int, Pt: _IntArray, Qt: _IntArray) -> None:
        Q = layer.Q
        self.layer = layer
        self.Pt, self.Qt = Pt, Qt
        self.nPf, self.Pr = P // Pt, P % Pt
        self.nQf, self.Qr = Q // Qt, Q % Qt
        self.nPQ = _cdiv(P, Pt) * _cdiv(Q, Qt)
        self.h_tile, self.w_tile = self.rows(Pt), self.cols(Qt)
        # input rows (columns) read over all tiles: halos are re-read by every tile
        self.sum_h = self.nPf * self.h_tile + np.where(self.Pr > 0, self.rows(self.Pr), 0)
        self.sum_w = self.nQf * self.w_tile + np.where(self.Qr > 0, self.cols(self.Qr), 0)

    def rows(self, p: _IntArray) -> _IntArray:
        """Input rows read by ``p`` output rows (at most ``p * R`` with big strides)."""
        L = self.layer
        x = np.maximum(p, 1)
        out: _IntArray = np.minimum((x - 1) * L.Hstride + (L.R - 1) * L.Hdilation + 1, x * L.R)
        return out

    def cols(self, q: _IntArray) -> _IntArray:
        """Input columns read by ``q`` output columns."""
        L = self.layer
        x = np.maximum(q, 1)
        out: _IntArray = np.minimum((x - 1) * L.Wstride + (L.S - 1) * L.Wdilation + 1, x * L.S)
        return out

    def pq_folds(self, u: int) -> _IntArray:
        """Sum over all ``P x Q`` tiles of ``ceil(tile_pixels / u)``."""
        Pt, Qt, Pr, Qr = self.Pt, self.Qt, self.Pr, self.Qr
        out: _IntArray = (
            self.nPf * self.nQf * _cdiv(Pt * Qt, u)
            + self.nPf * _cdiv(Pt * Qr, u)
            + self.nQf * _cdiv(Pr * Qt, u)
            + _cdiv(Pr * Qr, u)
        )
        return out


def _q_steps(layer: Layer, weights: int, in_channels: int, glb_words: int) -> list[int]:
    """Tile sizes over ``Q``: the full width, unless even one full row does not fit.

    ``weights`` and ``in_channels`` are the weight words and the input channels of
    the smallest tile along the other dimensions.
    """
    one = np.ones(1, _I64)
    t = Tiles(layer, 1, one, np.full(1, layer.Q, _I64))
    row = weights + in_channels * int(t.h_tile[0]) * int(t.w_tile[0]) + layer.Q
    return _steps(layer.Q) if row > glb_words else [layer.Q]


def _chan_chunk(folds: int, RS: int, spad_words: int) -> int:
    """Channel folds a PE walks through temporally, keeping its partial sum.

    In ``ws`` (``is``) a PE may hold the weights (input windows) of ``k`` channel
    folds in its scratchpad and accumulate over them before sending one partial sum
    to the GLB: ``k`` is the largest divisor of ``folds`` with ``k * R * S`` words
    fitting the scratchpad (so no extra padding).
    """
    for k in range(min(folds, spad_words // RS), 0, -1):
        if folds % k == 0:
            return k
    return 1


# ---- convolutions and matrix products ------------------------------------------------
@dataclass(frozen=True, slots=True)
class ConvNest:
    """The legal GLB tiles of a conv/matmul layer under both DRAM-level loop orders.

    The candidate vectors (``Mt``, ``Pt``, ``Qt``, ``nM``, ``nPQ``, ``dram_r``) are
    stacked ``[M-outer | PQ-outer]`` (``orders``); ``tiles`` covers one half. ``P`` is
    the output rows with the batch folded in; ``W`` and ``Out`` are the weight and
    output words.
    """

    M: int
    C: int
    P: int
    Q: int
    RS: int
    macs: int
    W: int
    Out: int
    tiles: Tiles
    Mt: _IntArray
    Pt: _IntArray
    Qt: _IntArray
    nM: _IntArray
    nPQ: _IntArray
    orders: tuple[str, ...]
    dram_r: _IntArray

    @property
    def n(self) -> int:
        """Number of candidates (both orders)."""
        return int(self.Mt.size)


def conv_nest(layer: Layer, P: int, glb_words: int) -> ConvNest:
    """The tile candidates of a convolution or matrix product with ``P`` output rows."""
    M, C, Q, RS = layer.M, layer.C, layer.Q, layer.R * layer.S
    macs = M * C * RS * P * Q
    W, Out = M * C * RS, M * P * Q
    # smallest tile with full-width rows: one filter, the input rows of one output row
    q_steps = _q_steps(layer, C * RS, C, glb_words)
    Mt, Pt, Qt = (
        g.ravel()
        for g in np.meshgrid(
            np.array(_steps(M), _I64),
            np.array(_steps(P), _I64),
            np.array(q_steps, _I64),
            indexing="ij",
        )
    )
    t = Tiles(layer, P, Pt, Qt)
    fit = Mt * C * RS + C * t.h_tile * t.w_tile + Mt * Pt * Qt <= glb_words
    Mt, Pt, Qt = Mt[fit], Pt[fit], Qt[fit]
    t = Tiles(layer, P, Pt, Qt)
    nM = _cdiv(M, Mt)
    inputs = C * t.sum_h * t.sum_w  # one pass over all P x Q tiles, halos re-read
    # Two DRAM-level loop orders, stacked: [M-outer | PQ-outer]. M-outer keeps the
    # weight tile resident and re-reads the inputs per M tile; PQ-outer the reverse.
    n = 2 * Mt.size
    w_dram = np.concatenate([np.full(Mt.size, W, _I64), np.where(nM == 1, W, t.nPQ * W)])
    i_dram = np.concatenate([np.where(t.nPQ == 1, inputs, nM * inputs), inputs])
    Mt, Pt, Qt, nM, nPQ = (np.tile(a, 2) for a in (Mt, Pt, Qt, nM, t.nPQ))
    orders = ("M-outer",) * (n // 2) + ("PQ-outer",) * (n // 2)
    dram_r = w_dram + i_dram
    return ConvNest(M, C, P, Q, RS, macs, W, Out, t, Mt, Pt, Qt, nM, nPQ, orders, dram_r)


def _ws(c: ConvNest, uy: int, ux: int, spad_words: int) -> Counts:
    """M x C; R*S weights per PE, inputs multicast along M."""
    M, C, P, Q, RS, W, Out, macs = c.M, c.C, c.P, c.Q, c.RS, c.W, c.Out, c.macs
    sumM = _dim_folds(M, c.Mt, uy)
    cf = -(-C // ux)
    compute = sumM * (cf * RS * P * Q)
    held = spad_words >= RS
    w_glb = W * c.nPQ if held else np.full(c.n, macs, _I64)
    i_glb = (RS * P * Q * C) * sumM
    psums = Out * (cf // _chan_chunk(cf, RS, spad_words)) if held else Out * cf
    return Counts(
        compute=compute,
        dram_r=c.dram_r,
        dram_w=Out,
        glb_r=w_glb + i_glb + psums,
        glb_w=psums,
        glb_f=c.dram_r,
        spad_r=macs,
        spad_w=0,
        spad_f=w_glb,
    )


def _os(c: ConvNest, uy: int, ux: int, spad_words: int) -> Counts:
    """M x PQ; outputs accumulate in the PE."""
    M, C, P, Q, RS, W, Out, macs = c.M, c.C, c.P, c.Q, c.RS, c.W, c.Out, c.macs
    sumM = _dim_folds(M, c.Mt, uy)
    fpq = np.tile(c.tiles.pq_folds(ux), 2)
    compute = sumM * fpq * (C * RS)
    w_glb = W * fpq
    i_glb = (P * Q * C * RS) * sumM
    return Counts(
        compute=compute,
        dram_r=c.dram_r,
        dram_w=Out,
        glb_r=w_glb + i_glb + Out,
        glb_w=Out,
        glb_f=c.dram_r,
        spad_r=macs,
        spad_w=macs,
        spad_f=0,
    )


def _is(c: ConvNest, uy: int, ux: int, spad_words: int) -> Counts:
    """PQ x C; R*S input window per PE, loops over M."""
    M, C, P, Q, RS, W, Out, macs = c.M, c.C, c.P, c.Q, c.RS, c.W, c.Out, c.macs
    cf = -(-C // ux)
    fpq = np.tile(c.tiles.pq_folds(uy), 2)
    compute = fpq * (cf * M * RS)
    held = spad_words >= RS
    i_glb = (P * Q * C * RS) * c.nM if held else np.full(c.n, macs, _I64)
    w_glb = W * fpq
    psums = Out * (cf // _chan_chunk(cf, RS, spad_words)) if held else Out * cf
    return Counts(
        compute=compute,
        dram_r=c.dram_r,
        dram_w=Out,
        glb_r=w_glb + i_glb + psums,
        glb_w=psums,
        glb_f=c.dram_r,
        spad_r=macs,
        spad_w=0,
        spad_f=i_glb,
    )


#: Per conv dataflow: the dimensions unrolled along the mesh's Y and X, and its counts.
_CONV_FLOWS: dict[str, tuple[tuple[str, str], Callable[[ConvNest, int, int, int], Counts]]] = {
    "ws": (("M", "C"), _ws),
    "os": (("M", "PQ"), _os),
    "is": (("PQ", "C"), _is),
}


def conv_counts(
    nest: ConvNest, flow: str, uy: int, ux: int, spad_words: int
) -> tuple[Counts, tuple[str, str]]:
    """Counts of every candidate of ``nest`` under dataflow ``flow`` on a ``uy x ux`` mesh.

    Returns the counts and the dimensions unrolled along Y and X. ``spad_words`` is a
    PE scratchpad's capacity: a stationary block that does not fit it is streamed.
    """
    spatial, counts = _CONV_FLOWS[flow]
    return counts(nest, uy, ux, spad_words), spatial


# ---- channel-wise layers -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ChannelwiseNest:
    """The legal GLB tiles (over ``C``, ``P``, ``Q``) of a depthwise, pool or eltwise layer.

    ``inner`` is the temporal operations per output, ``ops_in`` the input operands per
    output (eltwise), ``W`` and ``Out`` the weight and output words.
    """

    C: int
    RS: int
    ops_in: int
    macs: int
    inner: int
    W: int
    Out: int
    tiles: Tiles
    Ct: _IntArray
    Pt: _IntArray
    Qt: _IntArray
    dram_r: _IntArray


def channelwise_nest(layer: Layer, P: int, glb_words: int) -> ChannelwiseNest:
    """The tile candidates of a channel-wise layer with ``P`` output rows."""
    C, Q, RS = layer.C, layer.Q, layer.R * layer.S
    ops_in = layer.operands if layer.op is OpKind.ELTWISE else 1
    w_per_c = RS if layer.op is OpKind.DEPTHWISE else 0
    macs = layer.macs  # the batch is folded into P: same total
    inner = macs // (C * P * Q)  # temporal operations per output
    q_steps = _q_steps(layer, w_per_c, ops_in, glb_words)
    Ct, Pt, Qt = (
        g.ravel()
        for g in np.meshgrid(
            np.array(_steps(C), _I64),
            np.array(_steps(P), _I64),
            np.array(q_steps, _I64),
            indexing="ij",
        )
    )
    t = Tiles(layer, P, Pt, Qt)
    fit = Ct * w_per_c + ops_in * Ct * t.h_tile * t.w_tile + Ct * Pt * Qt <= glb_words
    Ct, Pt, Qt = Ct[fit], Pt[fit], Qt[fit]
    t = Tiles(layer, P, Pt, Qt)
    W, Out = C * w_per_c, C * P * Q
    # channels are independent: every word crosses the DRAM once (plus halos)
    dram_r = W + ops_in * C * t.sum_h * t.sum_w
    return ChannelwiseNest(C, RS, ops_in, macs, inner, W, Out, t, Ct, Pt, Qt, dram_r)


def channelwise_counts(nest: ChannelwiseNest, uy: int, ux: int) -> Counts:
    """Counts of every candidate of ``nest``: channels along Y, pixels along X."""
    c = nest
    fpq = c.tiles.pq_folds(ux)
    compute = _dim_folds(c.C, c.Ct, uy) * fpq * c.inner
    glb_r = c.W * fpq + c.Out * c.RS * c.ops_in + c.Out  # weights multicast, inputs unicast
    return Counts(
        compute=compute,
        dram_r=c.dram_r,
        dram_w=c.Out,
        glb_r=glb_r,
        glb_w=c.Out,
        glb_f=c.dram_r,
        spad_r=c.macs,
        spad_w=c.macs,
        spad_f=0,
    )
