"""Many mappings of one problem at once: :func:`~owin_cosim.accel.loopnest.nest.evaluate`
in numpy arrays.

The mapping search (:mod:`owin_cosim.accel.loopnest.search`) scores candidates by cycles
and energy only; :func:`evaluate_batch` computes those two numbers for a batch of
candidates with the counting rules of :mod:`owin_cosim.accel.loopnest.nest`, bit for bit
(the same integer counts, the same floating-point operations in the same order).
Candidates come as the map space's state keys
(:func:`~owin_cosim.accel.loopnest.mapspace.state_key`: per level the temporal and
spatial factors, the temporal loop order and the kept dataspaces), turned into arrays by
:func:`arrays_from_keys`.

**Layout.** Level ``i``'s temporal block and then its spatial block, outermost level
first, give ``14 n`` loop positions (7 per block; a block lists every dimension, those
of trip count 1 are no-ops, as dropped loops are in the scalar model). The temporal
block is in loop order, the spatial block in :data:`DIMS` order (the order of a fan-out
changes no count). Steps, tile extents and the per-loop displacements of
:func:`~owin_cosim.accel.loopnest.nest._delta_count` become cumulative products and sums
over these positions; the distinct offsets of a fan-out use the closed form of
:func:`~owin_cosim.accel.loopnest.nest.distinct_on_axis`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from owin_cosim.accel.loopnest.levels import DATASPACES, DIMS, ComputeUnit, NestLevel

__all__ = ["arrays_from_keys", "evaluate_batch"]

_D = len(DIMS)
_DI = {d: k for k, d in enumerate(DIMS)}
_IntArr = NDArray[np.int64]
_FloatArr = NDArray[np.float64]


def arrays_from_keys(
    keys: Sequence[tuple[Any, ...]], n: int
) -> tuple[_IntArr, _IntArr, NDArray[np.bool_]]:
    """``(trips, order, keep)`` of :func:`evaluate_batch` from state keys of ``n`` levels.

    A key holds, per level, the temporal factors and the spatial factors (in
    :data:`DIMS` order), the dimensions of temporal trip count > 1 innermost first, and
    the kept dataspaces.
    """
    b = len(keys)
    trips = np.ones((b, n, 2, _D), dtype=np.int64)
    order = np.empty((b, n, _D), dtype=np.int64)
    keep = np.zeros((b, n, len(DATASPACES)), dtype=np.bool_)
    dsi = {ds: k for k, ds in enumerate(DATASPACES)}
    for r, key in enumerate(keys):
        for i in range(n):
            tf, sf, perm, kept = key[4 * i : 4 * i + 4]
            # outermost first, as nest._order: the unlisted dims (trip 1) outside
            dims = [_DI[d] for d in reversed(perm)]
            rest = [k for k in range(_D) if k not in dims]
            dims = rest[::-1] + dims
            order[r, i] = dims
            trips[r, i, 0] = [tf[k] for k in dims]
            trips[r, i, 1] = sf
            for ds in kept:
                keep[r, i, dsi[ds]] = True
    return trips, order, keep


def _tables(problem: Mapping[str, int]) -> tuple[_IntArr, _IntArr, _IntArr, _IntArr, _IntArr]:
    """Axis coefficients ``(3, 4, 7)``, the full dataspace sizes ``(3,)``, and per axis
    its first and second dimension and their coefficients (as ``nest._axes``)."""
    ws, hs = problem.get("Wstride", 1), problem.get("Hstride", 1)
    wd, hd = problem.get("Wdilation", 1), problem.get("Hdilation", 1)
    axes = [
        [("C", 1, "", 0), ("M", 1, "", 0), ("R", 1, "", 0), ("S", 1, "", 0)],
        [("N", 1, "", 0), ("C", 1, "", 0), ("P", ws, "R", wd), ("Q", hs, "S", hd)],
        [("N", 1, "", 0), ("M", 1, "", 0), ("P", 1, "", 0), ("Q", 1, "", 0)],
    ]
    coeff = np.zeros((3, 4, _D), dtype=np.int64)
    pairs = np.zeros((4, 12), dtype=np.int64)  # d1, c1, d2, c2 (c2 = 0: one dimension)
    for k, ds_axes in enumerate(axes):
        for a, (d1, c1, d2, c2) in enumerate(ds_axes):
            coeff[k, a, _DI[d1]] = c1
            if d2:
                coeff[k, a, _DI[d2]] = c2
            pairs[:, 4 * k + a] = (_DI[d1], c1, _DI[d2] if d2 else 0, c2)
    full_ext = (np.array([int(problem[d]) for d in DIMS]) - 1) @ coeff.transpose(0, 2, 1) + 1
    full = np.prod(full_ext, axis=1)
    return coeff, full, pairs[0], pairs[1], np.stack([pairs[2], pairs[3]])


class _Nest:
    """Per-position arrays of a batch of nests (see the module docstring)."""

    def __init__(self, trips: _IntArr, order: _IntArr) -> None:
        b, n = trips.shape[:2]
        self.n = n
        self.trip = trips.reshape(b, n * 2 * _D)
        sp_dims = np.broadcast_to(np.arange(_D), (b, n, _D))
        self.dim = np.stack([order, sp_dims], axis=2).reshape(b, n * 2 * _D)
        self.temporal = np.tile(np.repeat([True, False], _D), n)
        onehot = self.dim[:, :, None] == np.arange(_D)
        per_dim = np.where(onehot, self.trip[:, :, None], 1)
        # trip products from a position inwards, per dimension (inclusive, exclusive)
        incl = np.cumprod(per_dim[:, ::-1], axis=1)[:, ::-1]
        excl = np.concatenate([incl[:, 1:], np.ones((b, 1, _D), np.int64)], axis=1)
        self.step = np.take_along_axis(excl, self.dim[:, :, None], axis=2)[:, :, 0]
        self.ext = incl[:, :: 2 * _D, :]  # tile extents at each level (B, n, 7)
        # temporal loops only (spatial loops never move a tile): (B, n*7)
        tpos = self.temporal
        self.t_dim = self.dim[:, tpos]
        self.t_trip = self.trip[:, tpos]
        self.t_step = self.step[:, tpos]
        t_onehot = onehot[:, tpos]
        self.disp_own = np.where(t_onehot, self.t_step[:, :, None], 0)
        ttrip = np.where(self.temporal, self.trip, 1)
        self.count = np.cumprod(self.t_trip, axis=1) // self.t_trip * (self.t_trip - 1)
        wrap = (self.t_trip - 1) * self.t_step
        suffix = np.cumsum((t_onehot * wrap[:, :, None])[:, ::-1], axis=1)[:, ::-1]
        self.suffix = np.concatenate([suffix, np.zeros((b, 1, _D), np.int64)], axis=1)
        self.compute_cycles = np.prod(ttrip, axis=1)
        sp = self.trip.reshape(b, n, 2, _D)
        self.sp_trip = sp[:, :, 1, :]
        self.sp_step = self.step.reshape(b, n, 2, _D)[:, :, 1, :]


def _deltas(nest: _Nest, coeff: _IntArr, d1: _IntArr, c1: _IntArr, d2c2: _IntArr) -> _IntArr:
    """Words delivered to one instance, per level and dataspace (``nest._delta_count``)."""
    n = nest.n
    b = nest.trip.shape[0]
    e = np.einsum("bnd,kad->bnka", nest.ext - 1, coeff) + 1  # tile extents along the axes
    size: _IntArr = np.prod(e, axis=3)  # (B, n, 3)
    if n == 1:
        return size
    m = _D * (n - 1)  # the temporal loops above some level
    starts = np.arange(1, n) * _D
    disp = (
        nest.disp_own[:, None, :m, :]
        - nest.suffix[:, None, 1 : m + 1, :]
        + nest.suffix[:, starts, None, :]
    )  # (B, n-1, m, 7): the move of loop j seen from level i
    d2, c2 = d2c2
    shifts = np.abs(disp[..., d1] * c1 + disp[..., d2] * c2).reshape(b, n - 1, m, 3, 4)
    moved = shifts != 0
    n_moved = moved.sum(axis=4)
    first = np.argmax(moved, axis=4)[..., None]
    e_sel = np.take_along_axis(np.broadcast_to(e[:, 1:, None], shifts.shape), first, axis=4)
    sh_sel = np.take_along_axis(shifts, first, axis=4)
    sz = size[:, 1:, None]
    one = (sz // e_sel[..., 0]) * np.minimum(e_sel, sh_sel)[..., 0]
    delta = np.where(n_moved == 1, one, np.where(n_moved > 1, sz, 0))
    above = np.arange(m)[None, :] < starts[:, None]  # (n-1, m)
    count = np.where(above, nest.count[:, None, :m], 0)
    total: _IntArr = size + np.concatenate(
        [np.zeros((b, 1, 3), np.int64), (count[..., None] * delta).sum(axis=2)], axis=1
    )
    return total


def _distinct(nest: _Nest, d1: _IntArr, c1: _IntArr, d2c2: _IntArr) -> _IntArr:
    """Distinct offsets of each level's fan-out per dataspace (``nest.distinct_on_axis``)."""
    d2, c2 = d2c2
    n1, n2 = nest.sp_trip[:, :, d1], np.where(c2 > 0, nest.sp_trip[:, :, d2], 1)
    k1 = c1 * nest.sp_step[:, :, d1]
    k2 = np.where(c2 > 0, c2 * nest.sp_step[:, :, d2], 1)
    g = np.gcd(k1, k2)
    per_axis = n1 * n2 - np.maximum(0, n1 - k2 // g) * np.maximum(0, n2 - k1 // g)
    b, n = per_axis.shape[:2]
    out: _IntArr = np.prod(per_axis.reshape(b, n, 3, 4), axis=3)
    return out


def _next_keeper(keep: NDArray[np.bool_]) -> _IntArr:
    """Per level and dataspace, the next inner level that keeps it (``n``: the compute)."""
    n = keep.shape[1]
    idx = np.where(keep, np.arange(n)[None, :, None], n)
    inner = np.minimum.accumulate(idx[:, ::-1], axis=1)[:, ::-1]
    pad = np.full((keep.shape[0], 1, keep.shape[2]), n)
    return np.concatenate([inner[:, 1:], pad], axis=1)


def evaluate_batch(
    levels: list[NestLevel],
    compute: ComputeUnit,
    problem: Mapping[str, int],
    trips: _IntArr,
    order: _IntArr,
    keep: NDArray[np.bool_],
) -> tuple[_IntArr, _FloatArr]:
    """Cycles and energy (pJ) of a batch of mappings, as :func:`nest.evaluate` gives them.

    Parameters
    ----------
    levels, compute, problem
        As for :func:`~owin_cosim.accel.loopnest.nest.evaluate`.
    trips : int array, shape (B, n, 2, 7)
        Per candidate and level, the temporal block's trip counts in loop order
        (outermost first) and the spatial block's in :data:`DIMS` order.
    order : int array, shape (B, n, 7)
        The dimension (index into :data:`DIMS`) of each temporal position.
    keep : bool array, shape (B, n, 3)
        Whether each level keeps each of :data:`DATASPACES`.

    Returns
    -------
    cycles, energy_pJ : arrays of shape (B,)
    """
    nest = _Nest(trips, order)
    b, n = trips.shape[:2]
    coeff, full, d1, c1, d2c2 = _tables(problem)
    deltas = _deltas(nest, coeff, d1, c1, d2c2)  # (B, n, 3)
    ones = np.ones((b, 1, 3), dtype=np.int64)
    cum = np.concatenate([ones, np.cumprod(_distinct(nest, d1, c1, d2c2), axis=1)], axis=1)
    sp_prod = np.prod(nest.sp_trip, axis=2)
    inst = np.concatenate([ones[:, :, 0], np.cumprod(sp_prod, axis=1)], axis=1)[:, :n]
    cc = nest.compute_cycles
    child_delta = np.concatenate([deltas, np.broadcast_to(cc[:, None, None], (b, 1, 3))], 1)
    nxt = _next_keeper(keep)
    content = np.take_along_axis(child_delta, nxt, 1) * (
        np.take_along_axis(cum, nxt, 1) // cum[:, :n]
    )
    partition = full // cum[:, :n]
    outermost: NDArray[np.bool_] = np.cumsum(keep, axis=1) - keep == 0
    is_out = np.arange(3) == DATASPACES.index("Outputs")
    updates = np.where(is_out, content, 0)
    reads = np.where(is_out, content - partition, content)
    fills = np.where(outermost, 0, np.where(is_out, deltas - partition, deltas))
    er, ew, eu = (np.array([getattr(lv, a) for lv in levels])[None, :, None] for a in _ENERGY)
    term = inst[:, :, None] * (reads * er + fills * ew + updates * eu)
    term = np.where(keep, term, 0.0)  # x + 0.0 == x: the scalar model adds kept ones only
    energy = term[:, :, 0] + term[:, :, 1] + term[:, :, 2]  # per level, dataspaces in order
    rd = np.where(keep, reads, 0).sum(axis=2).astype(np.float64)
    wr = np.where(keep, fills + updates, 0).sum(axis=2).astype(np.float64)
    ccf = cc.astype(np.float64)[:, None]
    rbw, wbw = (np.array([getattr(lv, a) or np.inf for lv in levels]) for a in _BW)
    slow = np.maximum(np.maximum(1.0, rd / (rbw * ccf)), wr / (wbw * ccf))
    cycles = np.maximum(cc, np.ceil(ccf * slow).astype(np.int64).max(axis=1))
    computes = 1
    for d in DIMS:
        computes *= int(problem.get(d, 1))
    by_name = {lvl.name: energy[:, i] for i, lvl in enumerate(levels)}
    by_name[compute.name] = np.full(b, computes * compute.energy_pJ)
    total = np.zeros(b)
    for e in by_name.values():  # Python's sum(): left to right
        total = total + e
    return cycles, total


_ENERGY = ("read_energy_pJ", "write_energy_pJ", "update_energy_pJ")
_BW = ("read_bw", "write_bw")
