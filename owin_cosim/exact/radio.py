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
  times the slot, floored in units of ``1 / BIT_SCALE`` bit): exact, one linear
  constraint per value of ``n``, nothing linearised away;
- ``done[k, c, s]`` (bool): the cumulative bits of ``k`` up to the end of slot ``s``
  reach the end of chunk ``c`` (chunks leave in index order, bits flow across chunk
  boundaries inside a slot), both ways (``done`` iff enough bits); chunk ``c`` is
  delivered at the end of its first done slot, ``(S - sum_s done[k, c, s]) + 1`` slots
  after 0. Every chunk is delivered within the horizon, and a device that has sent
  everything holds no RB afterwards (a symmetry cut: those RBs would carry nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from owin_cosim.network.ofdm.channel import OfdmChannel
from owin_cosim.system.problem import Problem

__all__ = [
    "BIT_SCALE",
    "RadioTables",
    "RadioVars",
    "add_radio",
    "believed_slots",
    "grid_of",
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
    #: Per device: the cumulative scaled bits at the end of each chunk.
    targets: list[list[int]]


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
    return RadioTables(slots, num_rbs, cfg.slot_s, q, targets)


@dataclass
class RadioVars:
    """The radio variables (see the module docstring)."""

    own: dict[tuple[int, int, int], cp_model.IntVar]
    done: dict[tuple[int, int, int], cp_model.IntVar]
    #: Per device, per chunk: the slot at whose end it is delivered.
    delivery_slot: list[list[cp_model.LinearExprT]]


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
    done: dict[tuple[int, int, int], cp_model.IntVar] = {}
    delivery: list[list[cp_model.LinearExprT]] = []
    for k in range(k_dev):
        cumulative = _device_bits(model, tab, own, k)
        for c, target in enumerate(tab.targets[k]):
            for s in range(slots):
                d = done[k, c, s] = model.new_bool_var(f"done[{k},{c},{s}]")
                model.add(cumulative[s] >= target).only_enforce_if(d)
                model.add(cumulative[s] <= target - 1).only_enforce_if(~d)
                model.add(cumulative[s] >= target * d)  # the same, for the LP relaxation
                if s > 0:
                    model.add_implication(done[k, c, s - 1], d)
            model.add(done[k, c, slots - 1] == 1)
        last = len(tab.targets[k]) - 1
        for s in range(1, slots):  # nothing left to send: hold no RB (a symmetry cut)
            for r in range(num_rbs):
                model.add_implication(done[k, last, s - 1], ~own[k, s, r])
        delivery.append(
            [slots - sum(done[k, c, s] for s in range(slots)) for c in range(len(tab.targets[k]))]
        )
    return RadioVars(own, done, delivery)


def _device_bits(
    model: cp_model.CpModel,
    tab: RadioTables,
    own: dict[tuple[int, int, int], cp_model.IntVar],
    k: int,
) -> list[cp_model.IntVar]:
    """Device ``k``'s cumulative scaled bits at the end of every slot."""
    num_rbs = tab.num_rbs
    cumulative: list[cp_model.IntVar] = []
    total = 0
    for s in range(tab.slots):
        most = int(tab.q[k, s].max(axis=1).sum())  # an upper bound of any slot's bits
        bits = model.new_int_var(0, most, f"bits[{k},{s}]")
        held = [model.new_bool_var(f"held[{k},{s},{n}]") for n in range(num_rbs + 1)]
        model.add_exactly_one(held)
        mine = [own[k, s, r] for r in range(num_rbs)]
        model.add(sum(mine) == sum(n * held[n] for n in range(num_rbs + 1)))
        model.add(bits == 0).only_enforce_if(held[0])
        best_n = [0]
        for n in range(1, num_rbs + 1):
            per_rb = tab.q[k, s, :, n - 1]
            model.add(
                bits == sum(int(per_rb[r]) * mine[r] for r in range(num_rbs))
            ).only_enforce_if(held[n])
            best_n.append(int(np.sort(per_rb)[::-1][:n].sum()))
        # Implied by the above, stated plainly for the LP relaxation: no RB carries more
        # than at full power, and n RBs no more than the best n of them at power P / n.
        full = tab.q[k, s, :, 0]
        model.add(bits <= sum(int(full[r]) * mine[r] for r in range(num_rbs)))
        model.add(bits <= sum(best_n[n] * held[n] for n in range(num_rbs + 1)))
        total += most
        cum = model.new_int_var(0, total, f"cum[{k},{s}]")
        model.add(cum == (cumulative[-1] + bits if cumulative else bits))
        cumulative.append(cum)
    return cumulative


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
