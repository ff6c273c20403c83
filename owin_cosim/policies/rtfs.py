"""RTFS: transmit first, then compute (no overlap). See ``docs/policies.md``."""

from __future__ import annotations

from owin_cosim.policies.base import Policy, minmax_shares
from owin_cosim.system.plan import Plan, RadioPhase
from owin_cosim.system.problem import Problem

__all__ = ["Rtfs"]


class Rtfs(Policy):
    """RTFS: the whole upload first, then the whole computation.

    1. Radio: one phase for every device with min-max shares (``share_k ∝ a_k``), so
       that all uploads end together and as early as a proportional split allows.
    2. Compute: nothing starts before the last bit of the last device has arrived; then
       the whole DAG is list-scheduled (decreasing upward rank, earliest finish time,
       NoC transfers counted). O(K) planning; O(V (log V + E/V * M)) at run time.
    """

    name = "rtfs"

    def plan(self, problem: Problem) -> Plan:
        shares = minmax_shares(problem)
        order = tuple((d.name, c) for d in problem.devices for c in range(d.chunks))
        return Plan(self.name, (RadioPhase(shares),), order, "after_all_uploads")
