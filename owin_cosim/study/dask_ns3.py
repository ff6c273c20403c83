"""An ns-3 worker pool per dask worker: ``dask worker ... --preload owin_cosim.study.dask_ns3``.

Without it, every sweep run on local ns-3 that a dask worker carries out starts a fresh
ns-3 worker process (seconds of importing ns-3 each time). With it, the dask worker
process owns one :func:`~owin_cosim.network.ns3.pool.worker_pool` for its lifetime:
ns-3 is imported once, and each run leases a freshly forked child (the same results bit
for bit as a fresh worker). The pool ends with the dask worker: at ``dask_teardown``,
or, if the worker is killed outright, when its fork server sees the worker's pipe close.

dask calls :func:`dask_setup` when the worker starts and :func:`dask_teardown` when it
closes; this module imports no dask. ns-3 must be installed where the worker runs
(``pip install ".[ns3,dask]"``); otherwise the worker does not start, with ns-3's
not-installed error.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["dask_setup", "dask_teardown"]

#: The pool of this process, entered by dask_setup and left by dask_teardown.
_POOL = contextlib.ExitStack()


def _start() -> None:
    from owin_cosim.network.ns3.pool import worker_pool

    _POOL.enter_context(worker_pool())


async def dask_setup(worker: object) -> None:
    """Start this worker's ns-3 worker pool (in a thread: the fork server's start takes
    seconds, and the worker's event loop keeps answering meanwhile)."""
    await asyncio.get_running_loop().run_in_executor(None, _start)


def dask_teardown(worker: object) -> None:
    """End the pool and every child it forked."""
    _POOL.close()
