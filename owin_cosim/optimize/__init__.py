"""Simulation-based optimization of plans (O-WiN's first stage): a seeded search over
plans, each evaluated by the co-simulator, warm-started from PACS, RTFS or a plan file.

- :mod:`~owin_cosim.optimize.state`: a plan in the search's canonical, hashable form;
- :mod:`~owin_cosim.optimize.moves`: the moves (radio order, phases and shares;
  priorities, placements and splits; chunk order; release rule);
- :mod:`~owin_cosim.optimize.search`: simulated annealing over those moves
  (:func:`search`, the library entry point, also used for re-planning at run time);
- :mod:`~owin_cosim.optimize.start`: start plans by policy name;
- :mod:`~owin_cosim.optimize.report`: the search's files (``convergence.csv``,
  ``optimize.json``).

May import :mod:`owin_cosim.system`, :mod:`owin_cosim.sim`, :mod:`owin_cosim.results`
and :mod:`owin_cosim.policies` ``base``, ``pacs`` and ``rtfs`` (never the registry, so
that policy ``owin`` can be built on this package).
"""

from __future__ import annotations

from owin_cosim.optimize.search import DEFAULT_BUDGET, LogRow, SearchResult, search
from owin_cosim.optimize.start import START_POLICIES, start_plan

__all__ = ["DEFAULT_BUDGET", "START_POLICIES", "LogRow", "SearchResult", "search", "start_plan"]
