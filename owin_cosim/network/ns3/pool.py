"""A pool of pre-started ns-3 workers: ns-3 imported once, a fresh forked child per run.

A fresh worker spends seconds importing ns-3 (cppyy, the precompiled header, owin-cosim's
C++ code) before it builds its scenario. Inside :func:`worker_pool`, every
:class:`~owin_cosim.network.ns3.backend.Ns3Uplink` that would start a local worker
instead leases a child of one fork server (:mod:`~owin_cosim.network.ns3.forkserver`)
that imported ns-3 once and rehearsed each scenario once (so cppyy's call wrappers exist
before any fork: a child builds its scenario in a fraction of a second), then put
ns-3's global state back as it was (:mod:`~owin_cosim.network.ns3.rehearsal`): each
child starts from the same state as a fresh worker and gives the same results bit for
bit. A run known in advance can be *prepared* (:meth:`PoolClient.prepare`): its children
build the scenario at once, and the coordinator finds them configured.

Examples
--------
A sweep runner, around its runs (each run creates its ``Ns3Uplink`` as usual; processes
it starts inherit the pool through ``$OWIN_COSIM_NS3_POOL``)::

    from owin_cosim.network.ns3.pool import worker_pool

    with worker_pool() as pool:
        pool.prepare(problem.network)  # optional: build the next run's scenario now
        result = execute(problem, plan)

Clean-up: leaving the block (also by an exception or Ctrl-C) shuts the server down and
kills every child; if the owner process is killed outright, the server sees its pipe
close and does the same, and children die with the server (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from owin_cosim.errors import Ns3WorkerError
from owin_cosim.network.base import NetworkRef, UplinkDevice
from owin_cosim.network.ns3.access import make_run_dir
from owin_cosim.network.ns3.config import Ns3Config
from owin_cosim.network.ns3.rehearsal import REHEARSALS

__all__ = [
    "POOL_ENV",
    "Lease",
    "PoolClient",
    "WorkerPool",
    "configure_request",
    "current_pool",
    "pool_for_runs",
    "worker_pool",
]

#: The fork server's socket, for processes started inside :func:`worker_pool`.
POOL_ENV = "OWIN_COSIM_NS3_POOL"

#: The pools of this process, innermost last.
_ACTIVE: list[WorkerPool] = []


def configure_request(
    config: Ns3Config, devices: Sequence[UplinkDevice], seed: int
) -> dict[str, Any]:
    """The ``configure`` request a coordinator sends for this run (device power in dBm)."""
    return {
        "op": "configure",
        "scenario": config.scenario,
        "params": config.params,
        "devices": [
            {"name": d.name, "distance_m": d.distance_m, "tx_power_dBm": d.tx_power_dBm}
            for d in devices
        ],
        "seed": seed,
    }


class Lease:
    """One pooled worker, held by its coordinator: ``Popen``-like (``pid``, ``poll``,
    ``wait``, ``returncode``) plus ``kill``; its exit status comes from the server."""

    def __init__(self, conn: socket.socket, answer: dict[str, Any]) -> None:
        self._conn = conn
        self._buffer = b""
        self.pid: int = int(answer["pid"])
        self.endpoint: str = answer["endpoint"]
        self.token: str = answer["token"]
        self.stderr_path = Path(answer["stderr"])
        self.returncode: int | None = None

    def _read(self, timeout_s: float) -> None:
        if self.returncode is not None or self._conn.fileno() < 0:
            return
        ready, _, _ = select.select([self._conn], [], [], max(0.0, timeout_s))
        if not ready:
            return
        try:
            data = self._conn.recv(4096)
        except OSError:
            data = b""
        self._buffer += data
        if b"\n" in self._buffer:
            self.returncode = int(json.loads(self._buffer.split(b"\n", 1)[0])["exit"])
        elif not data:  # the server is gone, and its children with it
            self.returncode = -int(signal.SIGKILL)

    def poll(self) -> int | None:
        self._read(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = time.monotonic() + (60.0 if timeout is None else timeout)
        while self.returncode is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(f"pooled ns-3 worker {self.pid}", timeout or 60.0)
            self._read(min(left, 0.1))
        return self.returncode

    def kill(self) -> None:
        """Have the server kill the worker's process group (it knows it is not reaped)."""
        if self.returncode is None:
            with contextlib.suppress(OSError):
                self._conn.sendall(b"kill\n")

    def close(self) -> None:
        """Give the lease back: the server kills the worker if it is still running."""
        self._conn.close()


class PoolClient:
    """Talks to a fork server at ``path`` (any process of the pool's user)."""

    def __init__(self, path: Path, timeout_s: float = 10.0) -> None:
        self.path = path
        self.timeout_s = timeout_s

    def _ask(self, message: dict[str, Any]) -> tuple[socket.socket, dict[str, Any]]:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(self.timeout_s)
        try:
            conn.connect(str(self.path))
            conn.sendall(json.dumps(message).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                part = conn.recv(65536)
                if not part:
                    raise ConnectionError("the server closed the connection")
                data += part
        except (OSError, ConnectionError) as exc:
            conn.close()
            raise Ns3WorkerError(
                f"the ns-3 worker pool at {self.path} does not answer ({exc})"
            ) from None
        answer: dict[str, Any] = json.loads(data)
        if not answer.get("ok"):
            conn.close()
            raise Ns3WorkerError(f"the ns-3 worker pool refused: {answer.get('error')}")
        return conn, answer

    def prepare(self, network: NetworkRef | dict[str, Any], count: int = 1) -> list[int]:
        """Fork ``count`` children now that build this run's scenario (its recipe or its
        ``configure`` request) and wait for its coordinator; returns their pids."""
        request = network
        if isinstance(network, NetworkRef):
            request = configure_request(network.config, network.devices, network.seed)
        conn, answer = self._ask({"op": "prepare", "configure": request, "count": count})
        conn.close()
        return [int(p) for p in answer["pids"]]

    def lease(self, request: dict[str, Any]) -> Lease:
        """A worker for this ``configure`` request: a prepared one, or one forked now."""
        conn, answer = self._ask({"op": "lease", "configure": request})
        conn.settimeout(None)
        return Lease(conn, answer)


class WorkerPool(PoolClient):
    """Starts and owns a fork server; :meth:`close` (or ``with``) ends it and its
    children. Usually made by :func:`worker_pool`; ``rehearse``: the scenarios its
    server rehearses before it is ready (see :func:`worker_pool`)."""

    def __init__(
        self, startup_timeout_s: float = 120.0, rehearse: Sequence[str] = REHEARSALS
    ) -> None:
        from owin_cosim.network.ns3.backend import _import_path
        from owin_cosim.network.ns3.environment import ensure_pch

        ensure_pch()
        self.dir = make_run_dir()
        super().__init__(self.dir / "pool.sock")
        self._log = (self.dir / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "owin_cosim.network.ns3.forkserver",
                "--socket",
                str(self.path),
                "--run-dir",
                str(self.dir),
                "--owner-pid",
                str(os.getpid()),
                "--rehearse",
                ",".join(rehearse),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=self.dir,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": _import_path(), "CPPYY_CRASH_QUIET": "1"},
        )
        _OWNED.append(self)
        try:
            self._wait_ready(startup_timeout_s)
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, timeout_s: float) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while True:
            ready = select.select([self.proc.stdout], [], [], 0.1)[0]
            if ready and self.proc.stdout.readline().strip() == b"ready":
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.dir / "server.log").read_text(errors="replace")[-2000:]
                state = "exited" if self.proc.returncode is not None else "is not ready"
                raise Ns3WorkerError(
                    f"the ns-3 worker pool's fork server {state} after start "
                    f"(waited up to {timeout_s:g} s)\n--- server stderr (tail) ---\n{tail}"
                )

    def close(self) -> None:
        """End the server (its pipe closes), then every child; idempotent."""
        if self in _OWNED:
            _OWNED.remove(self)
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15.0)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5.0)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Pools this process owns (their pipes are closed in forked copies of it).
_OWNED: list[WorkerPool] = []


def _forget_in_child() -> None:
    """In a forked copy of an owner: drop the server pipes, so that the owner's death
    still closes them (the copy's own pool users connect by socket)."""
    for pool in _OWNED:
        if pool.proc.stdin is not None:
            with contextlib.suppress(OSError):
                pool.proc.stdin.close()
    _OWNED.clear()


os.register_at_fork(after_in_child=_forget_in_child)


def current_pool() -> PoolClient | None:
    """The pool new local workers come from: this process's innermost
    :func:`worker_pool`, else the one named by ``$OWIN_COSIM_NS3_POOL``, else ``None``."""
    if _ACTIVE:
        return _ACTIVE[-1]
    path = os.environ.get(POOL_ENV)
    return PoolClient(Path(path)) if path else None


@contextlib.contextmanager
def worker_pool(
    startup_timeout_s: float = 120.0, rehearse: Sequence[str] = REHEARSALS
) -> Iterator[WorkerPool]:
    """Run the block with a pool of pre-started ns-3 workers.

    Every local ns-3 worker started inside (by this process, or by processes it starts,
    through ``$OWIN_COSIM_NS3_POOL``) is a fresh child of the pool's fork server. The
    server and all children are gone when the block ends, however it ends.

    The server rehearses each scenario of ``rehearse`` once before it is ready (seconds,
    once per pool), so that a child for one of them builds it in a fraction of a second;
    a child for another scenario builds it as a fresh worker would (seconds). Results
    are the same either way.

    Raises
    ------
    BackendUnavailableError
        If ns-3 is not installed or cannot load.
    Ns3WorkerError
        If the fork server does not start within ``startup_timeout_s``.
    """
    pool = WorkerPool(startup_timeout_s, rehearse)
    before = os.environ.get(POOL_ENV)
    _ACTIVE.append(pool)
    os.environ[POOL_ENV] = str(pool.path)
    try:
        yield pool
    finally:
        _ACTIVE.remove(pool)
        if before is None:
            os.environ.pop(POOL_ENV, None)
        else:
            os.environ[POOL_ENV] = before
        pool.close()


@contextlib.contextmanager
def pool_for_runs(network: NetworkRef, runs: int) -> Iterator[PoolClient | None]:
    """A pool with ``runs`` workers prepared for this recipe, if that helps: ``runs``
    runs of the same local ns-3 network (e.g. ``compare``'s policies); else nothing.

    No pool when the backend is not ns-3, the worker is remote (``endpoint``), fewer than
    two runs are coming, or a pool is already active (its workers are used).
    """
    config = network.config
    if (
        network.backend != "ns3"
        or not isinstance(config, Ns3Config)
        or config.endpoint is not None
        or runs < 2
        or current_pool() is not None
    ):
        yield None
        return
    rehearse = tuple(s for s in REHEARSALS if s == config.scenario)
    with worker_pool(config.startup_timeout_s, rehearse) as pool:
        pool.prepare(network, count=min(runs, 8))
        yield pool
