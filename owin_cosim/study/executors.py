"""Where a sweep's runs are carried out: a local process pool, or a dask.distributed cluster.

Both take :class:`~owin_cosim.study.points.Run` objects (plain data) and yield each run's
outcome (:func:`owin_cosim.study.runner.run_one`) as it finishes; the worker writes the
run's directory itself, so ``DIR`` must be on a file system every worker sees.

:class:`LocalPool`
    ``concurrent.futures`` worker processes started by ``forkserver`` (a fresh
    interpreter forked from a server that has imported owin-cosim once: no sockets,
    threads or file handles of the sweep process are inherited). At most ``workers + 1``
    runs are handed out at a time; if a worker dies (SIGKILL, out of memory), the pool is
    started again and the runs it held are retried, up to :data:`MAX_ATTEMPTS` times,
    then recorded as failed. On SIGINT the workers are interrupted too (each removes its
    half-written run), then stopped. :meth:`LocalPool.start_soon` starts the workers in
    the background (the sweep does it while it checks the sweep file: the server's
    imports and the checks then use both cores).
:class:`DaskPool`
    a real ``distributed.Client`` on ``tcp://HOST:PORT`` (:meth:`DaskPool.start_soon`
    connects it in the background); dask retries a run whose worker died and reports
    ``KilledWorker`` after its own limit (recorded as failed).
    Start the workers with ``--nthreads 1`` (runs in one process take turns) and the
    settings :data:`SWEEP_WORKER_ENV`.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from types import FrameType
from typing import Any, Protocol

from owin_cosim.errors import BackendUnavailableError, ConfigError
from owin_cosim.study import runner
from owin_cosim.study.points import Run
from owin_cosim.study.runner import record_failure, run_one, run_path

__all__ = ["MAX_ATTEMPTS", "SWEEP_WORKER_ENV", "DaskPool", "Executor", "LocalPool", "make_executor"]

#: The environment docs/sweep.md recommends for ``dask worker`` processes that carry out
#: sweeps: dask's statistical profiler samples every thread's stack each 10 ms and its
#: system monitor wakes every 0.5 s, both under the GIL a run needs (measured: runs 7-10 %
#: slower with the defaults; benchmarks/bench_sweep.py compares both).
SWEEP_WORKER_ENV = {
    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
    "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL": "10s",
}
#: How often a run is started again after its worker process died.
MAX_ATTEMPTS = 3
#: How long interrupted workers get to clean up before they are killed.
_STOP_S = 10.0
#: How often a worker checks that the sweep process is still there.
_WATCH_S = 1.0
#: What the fork server imports once, so that no worker imports it again (a run needs
#: the whole package; numpy's random and polynomial modules load lazily otherwise).
_PRELOAD = ["owin_cosim.study.runner", "owin_cosim.api", "numpy.random", "numpy.polynomial"]


class Executor(Protocol):
    """Carries out runs; yields each outcome as it finishes."""

    def ready(self) -> None:
        """Wait until runs can be handed out (raises what keeps them from it)."""

    def results(self, runs: Sequence[Run]) -> Iterator[dict[str, Any]]: ...

    def close(self, abort: bool = False) -> None: ...


def _worker_sigint(signum: int, frame: FrameType | None) -> None:
    if runner.ACTIVE:  # a run cleans up on its way out (temporary files, ns-3 workers)
        raise KeyboardInterrupt
    os._exit(130)  # an idle worker has nothing to clean up


def _watch_owner(owner: int) -> None:
    """Exit when the sweep process is gone (SIGKILL leaves no one to stop the pool)."""
    while True:
        time.sleep(_WATCH_S)
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            os._exit(137)  # a half-written run is left to recover(), as after a kill


def _worker_init(owner: int) -> None:
    # Whatever handler the sweep's own process installed (the CLI's exits at once).
    signal.signal(signal.SIGINT, _worker_sigint)
    threading.Thread(target=_watch_owner, args=(owner,), name="owin-owner", daemon=True).start()


class LocalPool:
    """``workers`` local processes (see the module docstring)."""

    def __init__(self, workers: int, out_dir: str, plot: bool) -> None:
        self.workers, self.out_dir, self.plot = workers, out_dir, plot
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(_PRELOAD)
        self._pool: ProcessPoolExecutor | None = None
        self._starting: threading.Thread | None = None

    def _start(self) -> ProcessPoolExecutor:
        self._pool = ProcessPoolExecutor(
            self.workers, mp_context=self._ctx, initializer=_worker_init, initargs=(os.getpid(),)
        )
        return self._pool

    def start_soon(self) -> None:
        """Start the fork server and every worker in a background thread (returns at once).

        The workers' environment is the sweep process's at this moment: start them only
        once it is final (e.g. after an ns-3 worker pool has been announced in it).
        """

        def spawn() -> None:
            pool = self._start()
            # A pool spawns a worker per submission that finds none idle: one each.
            wait([pool.submit(os.getpid) for _ in range(self.workers)], return_when=ALL_COMPLETED)

        self._starting = threading.Thread(target=spawn, name="owin-pool-start", daemon=True)
        self._starting.start()

    def _started(self) -> ProcessPoolExecutor:
        """The pool :meth:`start_soon` started (waiting for it), or a new one."""
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        return self._pool if self._pool is not None else self._start()

    def ready(self) -> None:
        """Wait for the workers :meth:`start_soon` started (or start them now)."""
        self._started()

    def results(self, runs: Sequence[Run]) -> Iterator[dict[str, Any]]:
        """Each run's outcome, in the order they finish."""
        todo = list(reversed(runs))  # pop() from the end: expansion order
        attempts: Counter[str] = Counter()
        pool = self._started()
        held: dict[Future[dict[str, Any]], Run] = {}
        while todo or held:
            broken = False
            while todo and len(held) <= self.workers:
                r = todo.pop()
                try:
                    held[pool.submit(run_one, r, self.out_dir, self.plot)] = r
                except BrokenProcessPool:  # a worker died since the last wait
                    held[_lost()] = r
                    break
            finished, _ = wait(held, return_when=FIRST_COMPLETED)
            for fut in finished:
                r = held.pop(fut)
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    broken = True
                    attempts[r.run_id] += 1
                    if attempts[r.run_id] >= MAX_ATTEMPTS:
                        yield _died(r, self.out_dir)
                    else:
                        todo.append(r)
            if broken:  # every run the pool held is lost with it: start again
                for r in held.values():
                    attempts[r.run_id] += 1
                    todo.append(r)
                held.clear()
                pool.shutdown(wait=True, cancel_futures=True)
                pool = self._start()

    def close(self, abort: bool = False) -> None:
        """Stop the workers; with ``abort``, at once (interrupted first: each removes
        its half-written run)."""
        if self._starting is not None:  # never leave a half-started pool behind
            self._starting.join()
            self._starting = None
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if not abort:
            pool.shutdown(wait=True)
            return
        procs = list(getattr(pool, "_processes", {}).values())  # not public API
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive() and p.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGINT)
        for p in procs:
            p.join(_STOP_S)
            if p.is_alive():
                p.kill()
                p.join(1.0)


def _lost() -> Future[dict[str, Any]]:
    """A future that failed as the broken pool's would (counted like them)."""
    fut: Future[dict[str, Any]] = Future()
    fut.set_exception(BrokenProcessPool("a worker process died"))
    return fut


def _died(run: Run, out_dir: str) -> dict[str, Any]:
    from owin_cosim.errors import BackendError

    exc = BackendError(
        f"the worker process running it died {MAX_ATTEMPTS} times (killed, or out of memory)"
    )
    return record_failure(run, run_path(out_dir, run.run_id), exc)


class DaskPool:
    """Runs on a dask.distributed scheduler (see the module docstring)."""

    def __init__(self, address: str, out_dir: str, plot: bool) -> None:
        try:
            distributed: Any = importlib.import_module("distributed")  # the dask extra
        except ImportError:
            raise BackendUnavailableError(
                f"--scheduler {address}: dask.distributed is not installed; install it "
                'with: pip install ".[dask]"'
            ) from None
        self._distributed = distributed
        self.address, self.out_dir, self.plot = address, out_dir, plot
        self._client: Any = None
        self._failure: BackendUnavailableError | None = None
        self._connecting: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._futures: list[Any] = []

    def _connect(self) -> None:
        try:
            client = self._distributed.Client(self.address, timeout=20)
        except (OSError, TimeoutError) as exc:
            self._failure = BackendUnavailableError(
                f"--scheduler {self.address}: cannot reach the dask scheduler ({exc})"
            )
            return
        with self._lock:
            if not self._closed:
                self._client = client
                return
        client.close()  # closed while connecting: nobody else will

    def start_soon(self) -> None:
        """Connect to the scheduler in a background thread (returns at once); a failure
        to connect is raised when the runs are handed out."""
        self._connecting = threading.Thread(target=self._connect, name="owin-dask-connect")
        self._connecting.daemon = True
        self._connecting.start()

    @property
    def client(self) -> Any:
        """The connected ``distributed.Client`` (waiting for :meth:`start_soon`'s)."""
        if self._connecting is not None:
            self._connecting.join()
            self._connecting = None
        elif self._client is None and self._failure is None:
            self._connect()
        if self._failure is not None:
            raise self._failure
        return self._client

    def ready(self) -> None:
        """Wait for the connection (raises :class:`BackendUnavailableError` without one)."""
        self.client  # noqa: B018 (the property connects, or raises why it cannot)

    def results(self, runs: Sequence[Run]) -> Iterator[dict[str, Any]]:
        """Each run's outcome, in the order they finish."""
        token = uuid.uuid4().hex[:8]
        by_key = {f"owin-run-{r.run_id}-{token}": r for r in runs}
        self._futures = [
            self.client.submit(run_one, r, self.out_dir, self.plot, key=k, pure=False)
            for k, r in by_key.items()
        ]
        for fut in self._distributed.as_completed(self._futures):
            try:
                yield fut.result()
            except self._distributed.KilledWorker:
                yield _died(by_key[fut.key], self.out_dir)

    def close(self, abort: bool = False) -> None:
        """Cancel what is left and disconnect (a connection still being made is closed
        by its thread when it is: a bad sweep file is said at once, not after the
        connection's timeout)."""
        with self._lock:
            self._closed = True
            client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(Exception):  # the scheduler may be gone already
            if self._futures:
                client.cancel(self._futures)
        client.close()


def make_executor(out_dir: str, workers: int | None, scheduler: str | None, plot: bool) -> Executor:
    """A :class:`LocalPool` (``workers``, default the CPU count) or a :class:`DaskPool`."""
    if scheduler is not None:
        if workers is not None:
            raise ConfigError(None, "--workers", "give either --workers or --scheduler, not both")
        if not scheduler.startswith("tcp://"):
            raise ConfigError(None, "--scheduler", f"expected tcp://HOST:PORT, got {scheduler!r}")
        return DaskPool(scheduler, out_dir, plot)
    return LocalPool(workers or os.cpu_count() or 1, out_dir, plot)
