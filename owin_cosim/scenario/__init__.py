"""Scenarios: the typed schema of scenario files, their loading, model files, and the
assembly of a scenario into a :class:`~owin_cosim.system.problem.Problem`.

May import every other concept's configuration and registries (it is where they meet);
it never imports zmq or a backend's runtime.
"""
