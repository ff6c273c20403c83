"""Runtime execution with re-planning (stage 2 of O-WiN; ``docs/replanning.md``).

A plan is carried out on the configured backend while a :class:`Replanner` hook of the
coordinator compares every delivery and layer end with the plan's *planned timeline*
(the plan simulated once on the planning surrogate). When reality is later than
planned by more than the rule's threshold, it re-plans what remains from the current
state (:mod:`owin_cosim.sim.state`): candidate continuations are simulated on the
planning surrogate from that state and the best one replaces the current plan if it
beats the current plan's own continuation.

``rule.py`` (the ``--replan`` grammar), ``candidates.py`` (the residual view and the
candidate plans), ``replan.py`` (the hook, the optimizer on the residual, and
:func:`run_with_replanning`).

May import :mod:`owin_cosim.system`, :mod:`owin_cosim.sim`, :mod:`owin_cosim.policies`,
:mod:`owin_cosim.optimize`, :mod:`owin_cosim.results` and :mod:`owin_cosim.errors`;
never a backend's internals.
"""

from __future__ import annotations

from owin_cosim.runtime.replan import Replanner, run_with_replanning
from owin_cosim.runtime.rule import ReplanRule, parse_rule

__all__ = ["ReplanRule", "Replanner", "parse_rule", "run_with_replanning"]
