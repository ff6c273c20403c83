"""The exact reference: a CP-SAT model of the joint radio and compute problem.

:func:`solve` builds a CP-SAT model (OR-Tools, ``pip install ".[exact]"``) of what the
coordinator executes on the analytic OFDM uplink, on the real run's channel realisation
(a *clairvoyant* reference: it knows the fading of every slot), solves it within a time
limit, and returns the best plan found with a proven bound (:class:`Solution`). The plan
sets an explicit per-slot RB allocation (``radio_grid``), a placement and core orders,
so the coordinator replays it exactly; :func:`solve` replays it and checks the two agree.

Modules: :mod:`~owin_cosim.exact.solution` (the result), :mod:`~owin_cosim.exact.radio`
(RB ownership, the power split, chunk deliveries), :mod:`~owin_cosim.exact.compute`
(modes, precedence with NoC times, core exclusivity), :mod:`~owin_cosim.exact.references`
(the reference plans: horizon, hint, fallback), :mod:`~owin_cosim.exact.facade`
(the facade: model, solver, plan, replay). See ``docs/exact.md``.

May import :mod:`owin_cosim.system`, :mod:`owin_cosim.network`, :mod:`owin_cosim.sim`
and :mod:`owin_cosim.results`; OR-Tools is imported here only, and only when a model
is built (importing this package does not need it).
"""

from __future__ import annotations

from owin_cosim.exact.facade import solve
from owin_cosim.exact.solution import Solution

__all__ = ["Solution", "solve"]
