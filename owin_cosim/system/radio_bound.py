"""Upload bounds for the lower bounds: when chunks and sets of devices can be up at best.

Two quantities, both lower bounds for every schedule the coordinator can produce:

``arrival_s[k][j]``
    The earliest time *any* ``j + 1`` chunks of device ``k`` can all be delivered,
    whatever the plan's chunk order: they hold at least the bits of the ``j + 1``
    smallest chunks.
``prefix_s[j]``
    The earliest time every bit of the first ``j + 1`` devices of a given order can be
    up.

From any backend, only what the problem carries is used: its per-chunk earliest
arrivals (in index order; a set of chunks is bounded by the largest index-order prefix
with no more bits), its radio bound for all devices and each device's own last arrival
for the other sets.

On the analytic OFDM uplink (:mod:`owin_cosim.network.ofdm.uplink`) both are
recomputed from the run's own channel realisation, slot by slot, with what the
scheduler really does: a device holding ``n`` RBs splits its power evenly over them
(the rate ``rb_rate_bps(P / n, g)`` per RB, cap included), each RB serves one device,
and a chunk is delivered at the end of the slot that carries its last bit. So in slot
``t`` device ``k`` carries at most ``f_k(n) = sum of rb_rate(P_k / n, g)`` over its
``n`` best RBs, and a set of devices at most
``min(max_{sum n_k <= R} sum_k f_k(n_k), sum_r max_k rate(P_k on r))``: the first a
knapsack over RB counts that forgets which RBs (exact without fading), the second the
per-RB bound of ``radio_s`` (``network/ofdm/channel.py``). The crossing of the
cumulative capacity with the bits, rounded up to a slot end, bounds the delivery.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from owin_cosim.network.ofdm.channel import OfdmChannel
from owin_cosim.network.ofdm.config import OfdmConfig
from owin_cosim.system.problem import Problem

__all__ = ["upload_bounds"]

#: Bits of slack when comparing capacities with payloads: the uplink delivers a chunk
#: whose remaining bits are within a relative 1e-12 (plus 1e-9 bits) of the budget.
_REL_TOL, _ABS_TOL = 1e-9, 1e-6


def _generic(problem: Problem, order: Sequence[int]) -> tuple[list[np.ndarray], np.ndarray]:
    """The bounds from the problem's own per-chunk arrivals and radio bound."""
    arrival: list[np.ndarray] = []
    for k, dev in enumerate(problem.devices):
        sizes = np.asarray(dev.chunk_bytes, dtype=float)
        index_bits = np.cumsum(sizes)  # what problem.earliest_arrival_s[k] bounds
        need_bits = np.cumsum(np.sort(sizes))  # the fewest bits of any j + 1 chunks
        own = np.asarray(problem.earliest_arrival_s[k], dtype=float)
        # The largest index-order prefix with no more bits than any j + 1 chunks.
        last = np.searchsorted(index_bits, need_bits, side="right") - 1
        arrival.append(np.where(last >= 0, own[np.maximum(last, 0)], 0.0))
    ends = [float(a[-1]) if a.size else 0.0 for a in arrival]
    prefix = np.maximum.accumulate(np.array([ends[k] for k in order], dtype=float))
    if len(prefix):
        prefix[-1] = max(prefix[-1], problem.radio_bound_s)
    return arrival, prefix


#: Slots whose capacities are computed in one batch (fading draws come in blocks of
#: 256 slots, so a batch stays inside one).
_BATCH = 32


def _rates_by_count(channel: OfdmChannel, gains: np.ndarray) -> np.ndarray:
    """``f[s, k, n]``: the most bits/s device ``k`` carries on ``n`` RBs in slot ``s`` of
    the batch, from the batch's gains ``(slots, devices, rbs)``."""
    gains = np.sort(gains, axis=2)[:, :, ::-1]  # best RBs first
    num = gains.shape[2]
    counts = np.arange(1, num + 1, dtype=float)
    power = channel.power_w[None, :, None, None] / counts[None, None, :, None]
    per_rb = channel.rb_rate_bps(power, gains[:, :, None, :])  # (slot, device, n - 1, rb)
    used = np.arange(num)[None, :] < counts[:, None]
    f = np.zeros((*gains.shape[:2], num + 1))
    f[:, :, 1:] = np.where(used, per_rb, 0.0).sum(axis=3)
    result: np.ndarray = np.maximum.accumulate(f, axis=2)  # fewer RBs are allowed too
    return result


def _knapsack(best: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Max-plus convolution per slot: ``out[s, n] = max_{a <= n} best[s, a] + f[s, n - a]``
    (both nondecreasing in ``n``, so the result is too)."""
    num = best.shape[1]
    total = np.arange(num)[:, None]
    part = np.arange(num)[None, :]
    gather = f[:, np.clip(total - part, 0, None)]  # (slot, n, a)
    table = np.where(part <= total, best[:, None, :] + gather, -np.inf)
    result: np.ndarray = table.max(axis=2)
    return result


def _capacities(channel: OfdmChannel, slots: range, order: Sequence[int]) -> np.ndarray:
    """Bits/s per slot ``(slots, 2K)``: each device alone, then each prefix of ``order``."""
    gains = np.stack([channel.gains(t) for t in slots])
    f = _rates_by_count(channel, gains)
    num_dev = f.shape[1]
    out = np.empty((len(slots), 2 * num_dev))
    out[:, :num_dev] = f[:, :, -1]
    # Every device's whole power on one RB (channel.full_power_rates, for the batch).
    full = channel.rb_rate_bps(channel.power_w[None, :, None], gains)[:, list(order)]
    per_rb = np.maximum.accumulate(full, axis=1).sum(axis=2)  # (slot, prefix)
    best = f[:, order[0]]
    out[:, num_dev] = np.minimum(best[:, -1], per_rb[:, 0])
    for j in range(1, len(order)):
        best = _knapsack(best, f[:, order[j]])
        out[:, num_dev + j] = np.minimum(best[:, -1], per_rb[:, j])
    return out


def _ofdm(
    problem: Problem, config: OfdmConfig, order: Sequence[int]
) -> tuple[list[np.ndarray], np.ndarray]:
    """The bounds recomputed slot by slot on the run's own OFDM channel."""
    ref = problem.network
    channel = OfdmChannel(config, ref.devices, ref.seed)
    sizes = [np.sort(np.asarray(d.chunk_bytes, dtype=float)) * 8.0 for d in problem.devices]
    device_bits = [s.sum() for s in sizes]
    targets = [np.cumsum(s) for s in sizes]
    targets += [np.array([sum(device_bits[k] for k in order[: j + 1])]) for j in range(len(order))]
    targets = [t - (_REL_TOL * t + _ABS_TOL) for t in targets]
    crossed: list[list[float]] = [[] for _ in targets]
    done = np.zeros(len(targets))
    slot, constant = 0, None
    while slot < config.max_slots and any(
        len(c) < len(t) for c, t in zip(crossed, targets, strict=True)
    ):
        if constant is None:
            size = 1 if config.fading == "none" else _BATCH - slot % _BATCH
            batch = range(slot, min(slot + size, config.max_slots))
            capacity = _capacities(channel, batch, order) * config.slot_s
            if config.fading == "none":  # every slot alike
                constant = capacity[:1]
        else:
            batch = range(slot, min(slot + _BATCH, config.max_slots))
            capacity = np.repeat(constant, len(batch), axis=0)
        reach = done + np.cumsum(capacity, axis=0)  # cumulative bits at each slot's end
        for i, t in enumerate(targets):
            # deliveries happen at slot ends: the first slot whose cumulative reaches t
            hits = np.searchsorted(reach[:, i], t[len(crossed[i]) :], side="left")
            crossed[i] += [(batch[h] + 1) * config.slot_s for h in hits if h < len(batch)]
        done = reach[-1]
        slot = batch[-1] + 1
    cap = config.max_slots * config.slot_s  # no run gets past max_slots
    full = [np.array(c + [cap] * (len(t) - len(c))) for c, t in zip(crossed, targets, strict=True)]
    num_dev = len(problem.devices)
    return full[:num_dev], np.array([float(x[0]) for x in full[num_dev:]])


def upload_bounds(problem: Problem, order: Sequence[int]) -> tuple[list[np.ndarray], np.ndarray]:
    """``(arrival_s, prefix_s)`` of the module docstring; ``order``: every device once.

    The OFDM recomputation is used when the run's backend is ``ofdm``; the problem's own
    bounds hold too, so each entry is the larger of the two.

    Examples
    --------
    >>> from owin_cosim.system.problem import DeviceSpec
    >>> class P:  # the fields a generic backend's bounds read
    ...     devices = [DeviceSpec("a", "m", 1.0, 1.0, 10, 3), DeviceSpec("b", "m", 1.0, 1.0, 4, 1)]
    ...     earliest_arrival_s = [[1.0, 2.0, 3.0], [0.5]]
    ...     radio_bound_s = 3.2
    ...     network = None
    >>> arrival, prefix = upload_bounds(P(), [0, 1])  # chunks of 4, 3 and 3 bytes
    >>> arrival[0].tolist(), prefix.tolist()
    ([0.0, 1.0, 3.0], [3.0, 3.2])
    """
    arrival, prefix = _generic(problem, order)
    ref = problem.network
    if ref is not None and ref.backend == "ofdm" and isinstance(ref.config, OfdmConfig):
        own, own_prefix = _ofdm(problem, ref.config, order)
        arrival = [np.maximum(a, b) for a, b in zip(arrival, own, strict=True)]
        prefix = np.maximum(prefix, own_prefix)
    return arrival, prefix
