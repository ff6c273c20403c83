"""Accelerators: chip specs, the :class:`CostModel` interface, the cost-backend registry,
the persistent cost cache, and the analytic, loop-nest and Timeloop models; the estimator
service.

Imports :mod:`owin_cosim.workload.graph` and :mod:`owin_cosim.errors`; never the network side.
"""
