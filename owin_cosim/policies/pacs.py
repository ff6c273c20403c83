"""PACS: pipeline-aware co-scheduling of transmission and computation.

See ``docs/policies.md`` for the precise definition and its complexity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from owin_cosim.policies.base import Policy, minmax_shares, upload_and_encoder_times
from owin_cosim.sim.evaluator import Evaluator
from owin_cosim.system.plan import Plan, RadioPhase
from owin_cosim.system.problem import Problem

__all__ = ["CANDIDATES", "Pacs", "PacsParams", "johnson_order"]

#: The radio-plan families PACS can evaluate.
CANDIDATES = ("johnson", "johnson_soft", "minmax", "spt", "lpt")


class PacsParams(BaseModel):
    """Parameters of PACS."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    #: Radio-plan families to evaluate in the planning simulation.
    candidates: list[str] = Field(
        default_factory=lambda: list(CANDIDATES), min_length=1, max_length=16
    )
    #: ``johnson_soft``: weight ratio between consecutive devices in Johnson order.
    soft_ratio: float = Field(4.0, gt=1.0, le=1e6)
    #: Evaluate the candidates in the planning simulation and keep the best; if false,
    #: take the first candidate without simulating.
    search: bool = True

    def model_post_init(self, _: object) -> None:
        unknown = [c for c in self.candidates if c not in CANDIDATES]
        if unknown:
            raise ValueError(f"unknown candidates {unknown}; expected some of {list(CANDIDATES)}")


def johnson_order(a: Sequence[float], b: Sequence[float]) -> list[int]:
    """Johnson's rule for the two-machine flow shop (stage 1 times ``a``, stage 2 ``b``).

    Jobs with ``a <= b`` first by increasing ``a``, then the others by decreasing ``b``;
    ties by index. Optimal for ``F2 || C_max``.

    >>> johnson_order([3, 1, 4, 2], [2, 5, 1, 3])
    [1, 3, 0, 2]
    """
    first = sorted((i for i in range(len(a)) if a[i] <= b[i]), key=lambda i: (a[i], i))
    second = sorted((i for i in range(len(a)) if a[i] > b[i]), key=lambda i: (-b[i], i))
    return first + second


class Pacs(Policy):
    """Pipeline-aware co-scheduling (see the module docstring)."""

    name = "pacs"
    Params = PacsParams

    def candidates(self, problem: Problem) -> dict[str, tuple[RadioPhase, ...]]:
        """The radio plans PACS considers, by family name."""
        params = self.params
        assert isinstance(params, PacsParams)
        a, b = upload_and_encoder_times(problem)
        names = [d.name for d in problem.devices]
        john = johnson_order(a.tolist(), b.tolist())

        def sequential(order: list[int]) -> tuple[RadioPhase, ...]:
            return tuple(RadioPhase({names[k]: 1.0}, (names[k],)) for k in order)

        def soft(order: list[int]) -> tuple[RadioPhase, ...]:
            return tuple(
                RadioPhase(
                    {
                        names[k]: params.soft_ratio ** -(j - i)
                        for j, k in enumerate(order)
                        if j >= i
                    },
                    (names[order[i]],),
                )
                for i in range(len(order))
            )

        families: dict[str, Callable[[], tuple[RadioPhase, ...]]] = {
            "johnson": lambda: sequential(john),
            "johnson_soft": lambda: soft(john),
            "minmax": lambda: (RadioPhase(minmax_shares(problem)),),
            "spt": lambda: sequential(sorted(range(len(a)), key=lambda k: (a[k], k))),
            "lpt": lambda: sequential(sorted(range(len(b)), key=lambda k: (-b[k], k))),
        }
        return {name: families[name]() for name in params.candidates}

    def plan(self, problem: Problem) -> Plan:
        params = self.params
        assert isinstance(params, PacsParams)
        a, b = upload_and_encoder_times(problem)
        order = tuple((d.name, c) for d in problem.devices for c in range(d.chunks))
        evaluated: dict[str, float] = {}
        best_name, best_span = "", np.inf
        best_phases: tuple[RadioPhase, ...] = ()
        seen: dict[tuple[object, ...], str] = {}
        oracle = Evaluator(problem)
        for name, phases in self.candidates(problem).items():
            key = tuple((tuple(sorted(p.shares.items())), p.until_done) for p in phases)
            if key in seen:  # same plan as an earlier family: same result
                evaluated[name] = evaluated[seen[key]]
                continue
            seen[key] = name
            if not params.search:
                best_name, best_phases = name, phases
                break
            plan = Plan(self.name, phases, order, "on_arrival")
            span = oracle.makespan(plan)
            evaluated[name] = span
            if span < best_span:
                best_name, best_phases, best_span = name, phases, span
        notes = {
            "chosen_radio_plan": best_name,
            "planning_makespan_s": evaluated,
            "johnson_inputs_s": {
                d.name: {"upload": float(a[k]), "encoder": float(b[k])}
                for k, d in enumerate(problem.devices)
            },
        }
        return Plan(self.name, best_phases, order, "on_arrival", notes=notes)
