"""What the exact reference returns: the plan, its makespan, the proven bound, the gap."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from owin_cosim.system.plan import Plan

__all__ = ["CLAIRVOYANT_NOTE", "Solution"]

#: Said in every solution: what the solver knows that a policy does not.
CLAIRVOYANT_NOTE = (
    "clairvoyant reference: the solver knows the fading of every slot of the real run's "
    "channel realisation; policies plan on another realisation (the planning surrogate)"
)


@dataclass(frozen=True)
class Solution:
    """The exact reference's answer for one problem.

    ``makespan_s`` is the makespan of :attr:`plan` replayed by the coordinator on the
    real run's channel realisation; ``bound_s`` a proven lower bound on the makespan of
    every plan (of the modelled kind, see ``docs/exact.md``); ``gap`` is
    ``(makespan_s - bound_s) / makespan_s``. ``status`` is ``"OPTIMAL"`` when the solver
    proved its plan optimal and no relaxation binds in the replay (the gap is then only
    the time quantum's), ``"FEASIBLE"`` otherwise.

    Examples
    --------
    >>> from owin_cosim.system.plan import RadioPhase
    >>> plan = Plan("exact", (RadioPhase({"a": 1.0}),), (("a", 0),), "on_arrival")
    >>> s = Solution("OPTIMAL", 2.0, 2.0, 0.0, 0.1, plan)
    >>> s.to_json()["status"], s.to_json()["clairvoyant"]
    ('OPTIMAL', True)
    """

    status: Literal["OPTIMAL", "FEASIBLE"]
    makespan_s: float
    bound_s: float
    gap: float
    solve_s: float
    plan: Plan
    #: The solver's own objective (integer time units, in seconds).
    model_makespan_s: float = float("nan")
    #: The coordinator's makespan of the solver's own plan (:attr:`makespan_s`, unless
    #: DRAM contention slowed it below a reference plan, which is then :attr:`plan`).
    replay_makespan_s: float = float("nan")
    #: Whether DRAM contention made the replay slower than the model (then the model
    #: value is a bound and the status FEASIBLE).
    dram_binds: bool = False
    #: What the model simplifies, in words (see ``docs/exact.md``).
    relaxations: tuple[str, ...] = ()
    #: Makespans of the reference plans that set the horizon (name -> seconds).
    references: dict[str, float] = field(default_factory=dict)
    horizon_slots: int = 0
    time_unit_s: float = 0.0
    #: CP-SAT's own status name and its parameters.
    solver: dict[str, Any] = field(default_factory=dict)
    #: Where :attr:`plan` comes from: ``"solver"``, or the name of a better reference.
    plan_source: str = "solver"

    def to_json(self) -> dict[str, Any]:
        """The content of ``solution.json`` (JSON-ready; the plan is written apart)."""
        return {
            "status": self.status,
            "makespan_s": self.makespan_s,
            "bound_s": self.bound_s,
            "gap": self.gap,
            "solve_s": self.solve_s,
            "clairvoyant": True,
            "note": CLAIRVOYANT_NOTE,
            "model_makespan_s": self.model_makespan_s,
            "replay_makespan_s": self.replay_makespan_s,
            "dram_binds": self.dram_binds,
            "relaxations": list(self.relaxations),
            "references": dict(self.references),
            "horizon_slots": self.horizon_slots,
            "time_unit_s": self.time_unit_s,
            "solver": dict(self.solver),
            "plan_source": self.plan_source,
        }
