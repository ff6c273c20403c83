"""The radio half of the CP-SAT model: who owns each RB in each slot, the even power
split over a device's RBs, and FIFO chunk deliveries at the end of a slot.

Variables, per device ``k``, slot ``s`` and RB ``r``:

- ``own[k, s, r]`` (bool): device ``k`` holds RB ``r`` in slot ``s``; at most one device
  per RB and slot;
- ``held[k, s, n]`` (bool, one-hot over ``n = 0 .. R``): ``k`` holds ``n`` RBs in slot
  ``s``, i.e. ``sum_r own[k, s, r] = sum_n n held[k, s, n]``;
- ``bits[k, s]``: what ``k`` sends in slot ``s``; under ``held[k, s, n]`` it equals
  ``sum_r q[k, s, r, n] own[k, s, r]`` with ``q[k, s, r, n]`` the bits RB ``r`` carries
  when ``k`` splits its power over ``n`` RBs (``channel.rb_rate_bps(P_k / n, gain)``
  times the slot, floored in units of ``1 / BIT_SCALE`` bit). Exactly, with
  ``pick[k, s, r, n] = own[k, s, r] and held[k, s, n]`` (``sum_n pick = own``,
  ``sum_r pick = n held``): ``bits[k, s] = sum_{r, n} q[k, s, r, n] pick[k, s, r, n]``,
  nothing linearised away (the rates stay the Shannon values of each ``n``), and the
  LP relaxation mixes exact per-``n`` values instead of a loose envelope;
- ``at[k, c, p]`` (bool, a permutation; devices with several chunks): ``k`` sends
  chunk ``c`` in position ``p`` of its queue (a device sends its chunks one after the
  other in any order the plan gives, bits flowing across chunk boundaries inside a
  slot); position ``p`` ends at ``T[k, p]``, the sizes of the chunks in positions
  ``0 .. p`` (a constant when the chunks are of equal size);
- ``done[k, p, s]`` (bool): the cumulative bits of ``k`` up to the end of slot ``s``
  reach ``T[k, p]``, both ways (``done`` iff enough bits); position ``p`` is delivered
  at the end of its first done slot, ``(S - sum_s done[k, p, s]) + 1`` slots after 0,
  and so is the chunk in it. Every chunk is delivered within the horizon, and a device
  that has sent everything holds no RB afterwards (a symmetry cut: those RBs would
  carry nothing); RBs interchangeable in a slot (the same bits for every device, e.g.
  without fading) take their owners in order (another symmetry cut).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model

from owin_cosim.exact.symmetry import fixed_order, ordered_pairs
from owin_cosim.network.ofdm.channel import OfdmChannel
from owin_cosim.system.problem import Problem

__all__ = [
    "BIT_SCALE",
    "RadioTables",
    "RadioVars",
    "add_radio",
    "believed_slots",
    "grid_of",
    "hint_radio",
    "queues_of",
    "radio_tables",
]

#: Bits are counted in units of ``1 / BIT_SCALE`` bit (each RB-slot term floored).
BIT_SCALE = 64


@dataclass(frozen=True)
class RadioTables:
    """The radio data of the model: scaled bits per (device, slot, RB, RBs held)."""

    slots: int
    num_rbs: int
    slot_s: float
    #: ``q[k, s, r, n - 1]``: scaled bits of RB ``r`` for ``k`` holding ``n`` RBs in ``s``.
    q: np.ndarray
    #: Per device: the cumulative scaled bits at the end of each chunk (index order).
    targets: list[list[int]]
    #: Per device: chunk pairs ``(a, b)`` the model sends ``a`` first without loss
    #: (:func:`~owin_cosim.exact.symmetry.ordered_pairs`).
    ordered: list[list[tuple[int, int]]] = field(default_factory=list)

    @property
    def sizes(self) -> list[list[int]]:
        """Per device: each chunk's scaled bits."""
        return [[b - a for a, b in zip([0, *t], t, strict=False)] for t in self.targets]


def radio_tables(problem: Problem, slots: int) -> RadioTables:
    """Bits every RB carries in the first ``slots`` slots of the real run's channel."""
    ref = problem.network
    channel = OfdmChannel(ref.config, ref.devices, ref.seed)
    cfg = channel.config
    num_rbs, k_dev = cfg.num_rbs, len(problem.devices)
    q = np.zeros((k_dev, slots, num_rbs, num_rbs), dtype=np.int64)
    split = np.arange(1, num_rbs + 1, dtype=float)
    for s in range(slots):
        gains = channel.gains(s)
        for k in range(k_dev):
            # rate of every RB at power P_k / n, as the uplink's _rates computes it
            rate = channel.rb_rate_bps(channel.power_w[k] / split[None, :], gains[k][:, None])
            q[k, s] = np.floor(rate * cfg.slot_s * BIT_SCALE).astype(np.int64)
    targets = [[int(x) * 8 * BIT_SCALE for x in np.cumsum(d.chunk_bytes)] for d in problem.devices]
    ordered = [ordered_pairs(problem, k) for k in range(k_dev)]
    return RadioTables(slots, num_rbs, cfg.slot_s, q, targets, ordered)


@dataclass
class RadioVars:
    """The radio variables (see the module docstring), by (device, slot[, RB | n])."""

    own: dict[tuple[int, int, int], cp_model.IntVar]
    done: dict[tuple[int, int, int], cp_model.IntVar] = field(default_factory=dict)
    #: Per device, per chunk: the slot at whose end it is delivered.
    delivery_slot: list[list[cp_model.LinearExprT]] = field(default_factory=list)
    #: Per device: the slot at whose end its last chunk is delivered (all its data).
    all_slot: list[cp_model.LinearExprT] = field(default_factory=list)
    #: ``at[k, c, p]``: chunk ``c`` of ``k`` in position ``p`` (devices with 2+ chunks).
    at: dict[tuple[int, int, int], cp_model.IntVar] = field(default_factory=dict)
    held: dict[tuple[int, int, int], cp_model.IntVar] = field(default_factory=dict)
    #: ``pick[k, s, r, n]``: ``own[k, s, r]`` and ``held[k, s, n]``.
    pick: dict[tuple[int, int, int, int], cp_model.IntVar] = field(default_factory=dict)
    bits: dict[tuple[int, int], cp_model.IntVar] = field(default_factory=dict)
    cum: dict[tuple[int, int], cp_model.IntVar] = field(default_factory=dict)


def add_radio(model: cp_model.CpModel, tab: RadioTables) -> RadioVars:
    """Add the radio variables and constraints for ``tab`` to ``model``."""
    k_dev, slots, num_rbs = tab.q.shape[0], tab.slots, tab.num_rbs
    own = {
        (k, s, r): model.new_bool_var(f"own[{k},{s},{r}]")
        for k in range(k_dev)
        for s in range(slots)
        for r in range(num_rbs)
    }
    for s in range(slots):
        for r in range(num_rbs):
            model.add_at_most_one(own[k, s, r] for k in range(k_dev))
    rv = RadioVars(own)
    _same_rbs_in_order(model, tab, rv)
    for k in range(k_dev):
        for s in range(tab.slots):
            _slot_bits(model, tab, rv, k, s)
        _deliveries(model, tab, rv, k)
    return rv


def _same_rbs_in_order(model: cp_model.CpModel, tab: RadioTables, rv: RadioVars) -> None:
    """RBs that carry the same bits for every device are interchangeable: their owners go
    in order (owner index, none last), a symmetry cut (fading-free channels)."""
    k_dev = tab.q.shape[0]
    for s in range(tab.slots):
        for r in range(tab.num_rbs - 1):
            if not _interchangeable(tab, s, r):
                continue
            index = [
                sum(k * rv.own[k, s, x] for k in range(k_dev))
                + k_dev * (1 - sum(rv.own[k, s, x] for k in range(k_dev)))
                for x in (r, r + 1)
            ]
            model.add(index[0] <= index[1])


def _interchangeable(tab: RadioTables, s: int, r: int) -> bool:
    """Whether RBs ``r`` and ``r + 1`` carry the same bits for every device in slot ``s``."""
    return bool(np.array_equal(tab.q[:, s, r, :], tab.q[:, s, r + 1, :]))


def _in_order(tab: RadioTables, s: int, row: list[int]) -> list[int]:
    """``row`` (RB owners of slot ``s``, -1: none) with the owners of every run of
    interchangeable RBs sorted as :func:`_same_rbs_in_order` requires (none last).

    The uplink hands such RBs out in its own order; permuting owners among RBs that
    carry the same bits for every device changes no device's bits, so the permuted row
    is the same schedule, stated as the model admits it.

    >>> tab = RadioTables(1, 3, 1e-3, np.ones((2, 1, 3, 3), dtype=np.int64), [[1], [1]])
    >>> _in_order(tab, 0, [-1, 1, 0])
    [0, 1, -1]
    """
    k_dev = tab.q.shape[0]
    out, first = list(row), 0
    for r in range(tab.num_rbs):
        if r == tab.num_rbs - 1 or not _interchangeable(tab, s, r):
            run = out[first : r + 1]
            out[first : r + 1] = sorted(run, key=lambda o: k_dev if o < 0 else o)
            first = r + 1
    return out


def _slot_bits(model: cp_model.CpModel, tab: RadioTables, rv: RadioVars, k: int, s: int) -> None:
    """Device ``k``'s bits in slot ``s``: exactly ``sum q[k, s, r, n] pick[k, s, r, n]``."""
    num_rbs = tab.num_rbs
    held = [model.new_bool_var(f"held[{k},{s},{n}]") for n in range(num_rbs + 1)]
    model.add_exactly_one(held)
    mine = [rv.own[k, s, r] for r in range(num_rbs)]
    model.add(sum(mine) == sum(n * held[n] for n in range(num_rbs + 1)))
    terms = []
    best_n = [0]
    for n in range(1, num_rbs + 1):
        per_rb = tab.q[k, s, :, n - 1]
        picks = []
        for r in range(num_rbs):
            z = rv.pick[k, s, r, n] = model.new_bool_var(f"pick[{k},{s},{r},{n}]")
            model.add_implication(z, held[n])
            picks.append(z)
            terms.append(int(per_rb[r]) * z)
        model.add(sum(picks) == n * held[n])  # the n RBs held, when n are held
        best_n.append(int(np.sort(per_rb)[::-1][:n].sum()))
    for r in range(num_rbs):  # an RB held counts under the one n in force
        model.add(sum(rv.pick[k, s, r, n] for n in range(1, num_rbs + 1)) == mine[r])
    bits = rv.bits[k, s] = model.new_int_var(0, max(best_n), f"bits[{k},{s}]")
    model.add(bits == sum(terms))
    # implied, stated plainly for the LP relaxation: n RBs carry at most the best n
    model.add(bits <= sum(best_n[n] * held[n] for n in range(num_rbs + 1)))
    for n in range(num_rbs + 1):
        rv.held[k, s, n] = held[n]


def _positions(
    model: cp_model.CpModel, tab: RadioTables, rv: RadioVars, k: int
) -> list[cp_model.LinearExprT]:
    """Where each of ``k``'s chunks goes in its queue; the end of every position in
    scaled bits (constants when the chunks are of equal size or alone). No variables
    when the symmetry cut fixes the whole order (every chunk interchangeable with the
    next: index order loses nothing)."""
    sizes, pairs = tab.sizes[k], tab.ordered[k] if tab.ordered else []
    n = len(sizes)
    if fixed_order(pairs, n):
        return list(tab.targets[k])
    for c in range(n):
        for p in range(n):
            rv.at[k, c, p] = model.new_bool_var(f"at[{k},{c},{p}]")
        model.add_exactly_one(rv.at[k, c, p] for p in range(n))
    for p in range(n):
        model.add_exactly_one(rv.at[k, c, p] for c in range(n))
    for a, b in pairs:  # interchangeable: a goes first (a symmetry cut)
        model.add(
            sum(p * rv.at[k, a, p] for p in range(n)) < sum(p * rv.at[k, b, p] for p in range(n))
        )
    if len(set(sizes)) == 1:
        return list(tab.targets[k])
    return [
        sum(sizes[c] * sum(rv.at[k, c, q] for q in range(p + 1)) for c in range(n))
        for p in range(n)
    ]


def _deliveries(model: cp_model.CpModel, tab: RadioTables, rv: RadioVars, k: int) -> None:
    """Cumulative bits, each position's done flags and delivery slot, each chunk's
    delivery slot; no RB once all is sent."""
    slots, total = tab.slots, 0
    for s in range(slots):
        total += int(tab.q[k, s].max(axis=1).sum())
        cum = rv.cum[k, s] = model.new_int_var(0, total, f"cum[{k},{s}]")
        model.add(cum == (rv.cum[k, s - 1] + rv.bits[k, s] if s else rv.bits[k, s]))
    ends = _positions(model, tab, rv, k)
    for p, end in enumerate(ends):
        for s in range(slots):
            d = rv.done[k, p, s] = model.new_bool_var(f"done[{k},{p},{s}]")
            model.add(rv.cum[k, s] >= end).only_enforce_if(d)
            model.add(rv.cum[k, s] <= end - 1).only_enforce_if(~d)
            if isinstance(end, int):
                model.add(rv.cum[k, s] >= end * d)  # the same, for the LP relaxation
            if s > 0:
                model.add_implication(rv.done[k, p, s - 1], d)
        model.add(rv.done[k, p, slots - 1] == 1)
    last = len(ends) - 1
    for s in range(1, slots):  # nothing left to send: hold no RB (a symmetry cut)
        for r in range(tab.num_rbs):
            model.add_implication(rv.done[k, last, s - 1], ~rv.own[k, s, r])
    position: list[cp_model.LinearExprT] = [
        slots - sum(rv.done[k, p, s] for s in range(slots)) for p in range(len(ends))
    ]
    rv.all_slot.append(position[last])
    if (k, 0, 0) not in rv.at:  # one chunk, or index order: chunk c in position c
        rv.delivery_slot.append(position)
        return
    chunk: list[cp_model.LinearExprT] = []
    for c in range(len(ends)):
        slot = model.new_int_var(0, slots, f"delivery[{k},{c}]")
        for p in range(len(ends)):
            model.add(slot == position[p]).only_enforce_if(rv.at[k, c, p])
        chunk.append(slot)
    rv.delivery_slot.append(chunk)


def hint_radio(
    model: cp_model.CpModel,
    tab: RadioTables,
    rv: RadioVars,
    owners: list[list[int]],
    queues: list[list[int]],
) -> list[list[int]]:
    """Hint every radio variable from RB owners per slot (device index, -1: none; no row:
    none) and each device's chunk order (``queues[k]``); return every chunk's delivery
    slot under them (``slots``: not within).

    Within a slot the owners of interchangeable RBs are first put in the order the
    model's symmetry cut requires (:func:`_in_order`: the same bits for every device,
    so the same schedule); the recorded order would break the cut and the hint with it.
    """
    k_dev, slots, num_rbs = tab.q.shape[0], tab.slots, tab.num_rbs
    rows = [
        _in_order(tab, s, owners[s]) if s < len(owners) else [-1] * num_rbs for s in range(slots)
    ]
    out = []
    for k in range(k_dev):
        queue, sizes = queues[k], tab.sizes[k]
        for c in range(len(sizes)):
            for p in range(len(sizes)):
                if (k, c, p) in rv.at:
                    model.add_hint(rv.at[k, c, p], queue[p] == c)
        ends = [int(x) for x in np.cumsum([sizes[c] for c in queue])]
        cum = 0
        when = [slots] * len(ends)  # by position
        for s, row in enumerate(rows):
            n = sum(o == k for o in row)
            for r in range(num_rbs):
                model.add_hint(rv.own[k, s, r], row[r] == k)
                for m in range(1, num_rbs + 1):
                    model.add_hint(rv.pick[k, s, r, m], row[r] == k and m == n)
            for m in range(num_rbs + 1):
                model.add_hint(rv.held[k, s, m], m == n)
            bits = sum(int(tab.q[k, s, r, n - 1]) for r in range(num_rbs) if row[r] == k)
            cum += bits
            model.add_hint(rv.bits[k, s], bits)
            model.add_hint(rv.cum[k, s], cum)
            for p, end in enumerate(ends):
                model.add_hint(rv.done[k, p, s], cum >= end)
                if cum >= end and when[p] == slots:
                    when[p] = s
        by_chunk = [slots] * len(ends)
        for p, c in enumerate(queue):
            by_chunk[c] = when[p]
        for c, slot in enumerate(by_chunk):
            if (k, c, 0) in rv.at:
                model.add_hint(rv.delivery_slot[k][c], slot)  # type: ignore[arg-type]
        out.append(by_chunk)
    return out


def queues_of(solver: cp_model.CpSolver, rv: RadioVars, chunks: list[int]) -> list[list[int]]:
    """Per device, its chunks in the solved sending order."""
    out = []
    for k, n in enumerate(chunks):
        where = [
            next((p for p in range(n) if solver.boolean_value(rv.at[k, c, p])), 0)
            if (k, c, 0) in rv.at
            else c
            for c in range(n)
        ]
        out.append(sorted(range(n), key=lambda c: where[c]))
    return out


def grid_of(
    solver: cp_model.CpSolver, rv: RadioVars, names: list[str], tab: RadioTables
) -> tuple[tuple[str | None, ...], ...]:
    """The solved RB owners per slot, up to the last slot in which an RB is held."""
    rows: list[tuple[str | None, ...]] = []
    for s in range(tab.slots):
        row: list[str | None] = [None] * tab.num_rbs
        for r in range(tab.num_rbs):
            for k, name in enumerate(names):
                if solver.boolean_value(rv.own[k, s, r]):
                    row[r] = name
        rows.append(tuple(row))
    while rows and all(x is None for x in rows[-1]):
        rows.pop()
    return tuple(rows)


def believed_slots(solver: cp_model.CpSolver, rv: RadioVars) -> list[list[int]]:
    """Per device, per chunk: the slot at whose end the solver believes it is delivered."""
    return [[int(solver.value(e)) for e in dev] for dev in rv.delivery_slot]
