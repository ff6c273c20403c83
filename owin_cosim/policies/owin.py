"""O-WiN: PACS (or RTFS) improved by simulation-based search over plans.

See ``docs/policies.md`` ("owin") and :mod:`owin_cosim.optimize`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from owin_cosim.optimize.search import DEFAULT_BUDGET, search
from owin_cosim.optimize.start import start_plan
from owin_cosim.policies.base import Policy
from owin_cosim.system.plan import Plan
from owin_cosim.system.problem import Problem

__all__ = ["Owin", "OwinParams"]


class OwinParams(BaseModel):
    """Parameters of policy ``owin``.

    >>> OwinParams(budget=50).start
    'pacs'
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    #: Plans simulated in the planning search, the start included.
    budget: int = Field(DEFAULT_BUDGET, ge=1, le=1_000_000)
    #: Seeds the search's moves and acceptance draws.
    seed: int = Field(0, ge=0, le=2**63 - 1)
    #: The policy whose plan the search starts from.
    start: Literal["pacs", "rtfs"] = "pacs"


class Owin(Policy):
    """The start policy's plan, then :func:`owin_cosim.optimize.search` on the planning
    surrogate with ``budget`` evaluations; the best plan seen (never worse than the start
    in the planning simulation)."""

    name = "owin"
    Params = OwinParams

    def plan(self, problem: Problem) -> Plan:
        params = self.params
        assert isinstance(params, OwinParams)
        start = start_plan(problem, params.start)
        return search(problem, start, params.budget, params.seed, policy=self.name).plan
