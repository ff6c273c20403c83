"""Orchestration policies: a policy turns a :class:`~owin_cosim.system.problem.Problem`
into a :class:`~owin_cosim.system.plan.Plan`; the registry finds them by name.

May import :mod:`owin_cosim.system` and :mod:`owin_cosim.sim` (planners evaluate
candidate plans with the simulator); never a backend's internals.
"""

from __future__ import annotations

from owin_cosim.policies.base import Policy
from owin_cosim.policies.pacs import Pacs
from owin_cosim.policies.registry import POLICIES, make_policy
from owin_cosim.policies.rtfs import Rtfs

__all__ = ["POLICIES", "Pacs", "Policy", "Rtfs", "make_policy"]
