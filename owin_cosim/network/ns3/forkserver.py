"""The ns-3 worker pool's fork server: ns-3 imported once, a fresh child per run.

Started by :class:`~owin_cosim.network.ns3.pool.WorkerPool` (``python -m
owin_cosim.network.ns3.forkserver --socket PATH --run-dir DIR --owner-pid PID
[--rehearse SCENARIOS]``). It imports ns-3 with the precompiled header, compiles
owin-cosim's C++ code (and, by taking the addresses of its entry points, has cling
generate their machine code now rather than in every run), rehearses a tiny run of each
scenario named by ``--rehearse`` (comma-separated; so that cppyy's call wrappers and
cling's template instances exist before any fork) and puts ns-3's global state back as
it was after the import (:mod:`~owin_cosim.network.ns3.rehearsal`), prints ``ready``
and then forks one child per request. Every child starts from the state a fresh worker
has right after its import: no simulator, no node, no ``Config`` value, the random
stream counter, the address and uid counters at their start.

A child is a worker (:class:`~owin_cosim.network.ns3.worker.Worker`) for one run: it
builds the scenario of the ``configure`` request it was forked for at once, binds
``ipc://`` in its own 0700 run directory and serves one session with its own token, as
a fresh worker does; the coordinator's ``configure`` (which must be the same request)
gets the reply of that build.

Requests come as one JSON line per connection on a Unix socket in the pool's 0700
directory, from processes of the same user only (checked with ``SO_PEERCRED``):
``prepare`` (fork ``count`` children for a run ahead of time) and ``lease`` (hand one
over, forking it if none is prepared). A lease's connection stays open: the server
writes ``{"exit": CODE}`` on it when the child is reaped, and kills the child (its
process group) when the connection says ``kill`` or closes (its coordinator is gone).

Clean-up: children die with the server (``PR_SET_PDEATHSIG``); the server exits,
killing every child, when its standard input (a pipe from the pool's owner) closes or
its owner is gone.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import selectors
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from owin_cosim.network.ns3.access import new_token
from owin_cosim.network.ns3.protocol import MAX_FRAME_BYTES, reply
from owin_cosim.network.ns3.rehearsal import rehearse
from owin_cosim.network.ns3.worker import Worker

__all__ = ["PreparedWorker", "Server", "configure_key", "main"]

_PR_SET_PDEATHSIG = 1
#: Largest request line (a configure request with its devices).
_MAX_REQUEST = 1 << 20
#: The owin-cosim C++ entry points whose code cling generates before any fork.
_ENTRY_POINTS = ("NewSink", "NewSender", "ReleaseAt", "ScheduleStopAt", "CancelEvent", "TheHub")


def configure_key(message: dict[str, Any]) -> str:
    """What identifies a ``configure`` request: its scenario, parameters, devices, seed.

    >>> configure_key({"op": "configure", "seed": 1, "scenario": "s", "v": 1})
    '{"devices": null, "params": null, "scenario": "s", "seed": 1}'
    """
    fields = {k: message.get(k) for k in ("scenario", "params", "devices", "seed")}
    return json.dumps(fields, sort_keys=True)


class PreparedWorker(Worker):
    """A worker that builds its run's scenario before its coordinator says hello."""

    prepared: dict[str, Any] | None = None
    _key = ""

    def send(self, message: dict[str, Any]) -> None:
        if self.owner is None:  # preparing: keep the reply, drop the heartbeats
            if message.get("op") == "configure":
                self.prepared = message
            return
        super().send(message)

    def prepare(self, message: dict[str, Any]) -> None:
        """Answer ``message`` (a ``configure`` request) now, keeping the reply."""
        self._key = configure_key(message)
        self.handle(message)

    def handle(self, message: dict[str, Any]) -> bool:
        if message["op"] == "configure" and self.prepared is not None:
            answer, self.prepared = self.prepared, None
            if configure_key(message) != self._key:
                answer = reply(
                    "configure", ok=False, error="this pooled worker was forked for another run"
                )
            self.send(answer)
            return False
        return super().handle(message)


@dataclass
class Child:
    pid: int
    run_dir: Path
    token: str
    endpoint: str
    key: str
    conn: socket.socket | None = None


def _prewarm(cppyy: Any) -> None:
    """Have cling generate the owin entry points' code now (nothing runs)."""
    refs = ", ".join(f"(void*)&owin::{name}" for name in _ENTRY_POINTS)
    cppyy.cppdef(f"namespace owin_pool_prewarm {{ void* entry_points[] = {{{refs}}}; }}")


def _pdeathsig() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


class Server:
    """Accepts pool requests; forks, tracks and reaps the children."""

    def __init__(self, path: Path, run_dir: Path, owner_pid: int) -> None:
        self.path, self.run_dir, self.owner_pid = path, run_dir, owner_pid
        self.children: dict[int, Child] = {}
        self.spares: dict[str, list[int]] = {}
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        os.chmod(path, 0o600)
        self.listener.listen(64)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the selector
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listener, selectors.EVENT_READ, "accept")
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "owner")

    # ---- the loop -----------------------------------------------------------------
    def serve(self) -> None:
        print("ready", flush=True)
        while os.getppid() == self.owner_pid:
            for key, _ in self.sel.select(timeout=0.5):
                if key.data == "owner" and not os.read(sys.stdin.fileno(), 4096):
                    return  # the owner closed its pipe (or died)
                if key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wake_r, 4096)
                elif key.data == "accept":
                    self.accept()
                elif isinstance(key.data, int):
                    self.lease_event(key.data)
            self.reap()

    def accept(self) -> None:
        conn, _ = self.listener.accept()
        try:
            cred = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            if struct.unpack("3i", cred)[1] != os.getuid():
                raise ValueError("a pool serves its own user only")
            conn.settimeout(5.0)
            message = json.loads(_read_line(conn))
            answer = self.request(message, conn)
        except Exception as exc:
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps(answer).encode() + b"\n")
        if answer.get("op") != "lease" or not answer.get("ok"):
            conn.close()

    def request(self, message: dict[str, Any], conn: socket.socket) -> dict[str, Any]:
        op, configure = message.get("op"), message.get("configure")
        if not isinstance(configure, dict) or configure.get("op") != "configure":
            raise ValueError("a pool request needs a 'configure' request")
        key = configure_key(configure)
        if op == "prepare":
            count = int(message.get("count", 1))
            if not 1 <= count <= 64:
                raise ValueError("count must be in 1..64")
            pids = [self.fork(configure, key) for _ in range(count)]
            self.spares.setdefault(key, []).extend(pids)
            return {"op": op, "ok": True, "pids": pids}
        if op != "lease":
            raise ValueError(f"unknown pool op {op!r}")
        self.reap()
        spares = self.spares.get(key) or []
        pid = spares.pop(0) if spares else self.fork(configure, key)
        child = self.children[pid]
        child.conn = conn
        conn.setblocking(False)
        self.sel.register(conn, selectors.EVENT_READ, pid)
        return {
            "op": op,
            "ok": True,
            "pid": pid,
            "endpoint": child.endpoint,
            "token": child.token,
            "stderr": str(child.run_dir / "stderr.log"),
        }

    def lease_event(self, pid: int) -> None:
        """A lease says ``kill`` or closes: the child goes (its coordinator is done)."""
        child = self.children.get(pid)
        if child is None or child.conn is None:
            return
        try:
            data = child.conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data or b"kill" in data:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        if not data:
            self._drop_conn(child)

    def _drop_conn(self, child: Child) -> None:
        if child.conn is not None:
            self.sel.unregister(child.conn)
            child.conn.close()
            child.conn = None

    def reap(self) -> None:
        """Collect exited children; tell each one's lease how it ended."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            for spares in self.spares.values():
                with contextlib.suppress(ValueError):
                    spares.remove(pid)
            if child.conn is not None:
                with contextlib.suppress(OSError):
                    child.conn.setblocking(True)
                    child.conn.settimeout(1.0)
                    code = os.waitstatus_to_exitcode(status)
                    child.conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
                self._drop_conn(child)
            shutil.rmtree(child.run_dir, ignore_errors=True)

    def shutdown(self) -> None:
        """Kill every child and wait for them (bounded); remove what is left."""
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10.0
        while self.children and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.01)
        self.listener.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
        if os.getppid() != self.owner_pid:  # the owner is gone: nobody else will
            shutil.rmtree(self.run_dir, ignore_errors=True)

    # ---- children -----------------------------------------------------------------
    def fork(self, configure: dict[str, Any], key: str) -> int:
        run_dir = Path(tempfile.mkdtemp(prefix=f"owin-ns3-{os.getpid()}-", dir=self.run_dir))
        token = new_token()
        endpoint = f"ipc://{run_dir / 'worker.sock'}"
        server_pid = os.getpid()
        pid = os.fork()
        if pid == 0:  # never returns
            self._child(configure, run_dir, token, endpoint, server_pid)
        self.children[pid] = Child(pid, run_dir, token, endpoint, key)
        return pid

    def _child(
        self, configure: dict[str, Any], run_dir: Path, token: str, endpoint: str, server: int
    ) -> None:
        code = 1
        try:
            _pdeathsig()
            if os.getppid() != server:  # the server died before the line above
                os._exit(3)
            os.setsid()
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGCHLD, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.sel.close()
            self.listener.close()
            for fd in (self.wake_r, self.wake_w):
                os.close(fd)
            for other in self.children.values():
                if other.conn is not None:
                    other.conn.close()
            _redirect(run_dir)
            _serve_child(configure, run_dir, token, endpoint, server)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)


def _redirect(run_dir: Path) -> None:
    """stdin and stdout to nothing, stderr to the run's log; work in the run dir."""
    null = os.open(os.devnull, os.O_RDWR)
    log = os.open(run_dir / "stderr.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    for fd, target in ((0, null), (1, null), (2, log)):
        os.dup2(target, fd)
    os.close(null)
    os.close(log)
    os.chdir(run_dir)
    tempfile.tempdir = str(run_dir)


def _serve_child(
    configure: dict[str, Any], run_dir: Path, token: str, endpoint: str, server: int
) -> None:
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
    try:
        sock.bind(endpoint)
        worker = PreparedWorker(sock, token, server, run_dir)
        worker.prepare(configure)
        worker.serve()
    finally:
        sock.close()
        ctx.term()


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        part = conn.recv(65536)
        if not part or len(data) > _MAX_REQUEST:
            raise ValueError("incomplete or oversized request")
        data += part
    return data


def main(argv: list[str] | None = None) -> None:
    """``python -m owin_cosim.network.ns3.forkserver --socket P --run-dir D --owner-pid N``
    (and ``--rehearse S1,S2``)."""
    parser = argparse.ArgumentParser(prog="owin-cosim ns3-forkserver")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--owner-pid", type=int, required=True)
    parser.add_argument("--rehearse", default="", help="scenarios to rehearse, comma-separated")
    args = parser.parse_args(argv)
    os.environ.setdefault("CPPYY_CRASH_QUIET", "1")
    run_dir = Path(args.run_dir)
    tempfile.tempdir = str(run_dir)
    import ns3_scenarios.common  # noqa: F401  (what every child imports: once, here)
    from owin_cosim.network.ns3.environment import import_ns3

    ns, cppyy, owin = import_ns3()
    _prewarm(cppyy)
    rehearse(ns, owin, [name for name in args.rehearse.split(",") if name])
    server = Server(Path(args.socket), run_dir, args.owner_pid)
    try:
        server.serve()
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
