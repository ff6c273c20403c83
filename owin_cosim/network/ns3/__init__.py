"""The ns-3 backend: the worker process (ns-3 through cppyy), its message protocol over
pyzmq, the coordinator-side backend, and the ns-3 install environment (PCH cache).

The ns-3 scenarios themselves live in the top-level ``ns3_scenarios`` package.
"""
