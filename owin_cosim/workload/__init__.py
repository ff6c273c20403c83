"""Workloads: DNN layers as Timeloop problems, layer DAGs, and the model zoo.

Imports nothing else of owin-cosim but :mod:`owin_cosim.errors`.
"""
