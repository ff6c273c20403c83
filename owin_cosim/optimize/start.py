"""Where a search starts: a built-in policy's plan, by name.

>>> START_POLICIES
('pacs', 'rtfs')
"""

from __future__ import annotations

from owin_cosim.policies.base import Policy
from owin_cosim.policies.pacs import Pacs
from owin_cosim.policies.rtfs import Rtfs
from owin_cosim.system.plan import Plan
from owin_cosim.system.problem import Problem

__all__ = ["START_POLICIES", "start_plan"]

#: The policies a search can start from by name (the first is the default).
START_POLICIES = ("pacs", "rtfs")


def start_plan(problem: Problem, name: str) -> Plan:
    """The plan of the start policy ``name`` (one of :data:`START_POLICIES`).

    PACS's own planning simulations (one per radio-plan family) are not counted in the
    search's budget.

    Raises
    ------
    ValueError
        For a name not in :data:`START_POLICIES`.
    """
    policies: dict[str, type[Policy]] = {"pacs": Pacs, "rtfs": Rtfs}
    if name not in policies:
        raise ValueError(f"unknown start {name!r}; expected one of {list(START_POLICIES)}")
    return policies[name]().plan(problem)
