"""The ns-3 network backend: a worker process per run, driven over pyzmq.

:class:`Ns3Uplink` starts ``python -m owin_cosim.network.ns3.worker`` on a private ``ipc://``
endpoint in a 0700 run directory named after this process, with a fresh token (or
connects to a worker already listening, e.g. in another container, at
``tcp://HOST:PORT``, with the token of :func:`~owin_cosim.network.ns3.access.read_token`)
and speaks the protocol of :mod:`owin_cosim.network.ns3.protocol`. Every wait on the
socket is bounded: the worker sends heartbeats during long requests (``configure``
included), so silence longer than ``heartbeat_timeout_s`` means a stuck worker; an
endpoint where nothing listens, or where something that is not a worker does, is told
apart within ``connect_timeout_s``; a local worker's death is
noticed within 0.1 s, whatever the timeout (the wait polls the process in slices, and a
crashing worker exits at once). Either way the run fails with :class:`Ns3WorkerError` naming the
scenario and the tail of the worker's stderr, and the worker is killed (its whole
process group): no orphans, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import zmq

from owin_cosim.errors import ConfigError, Ns3WorkerError
from owin_cosim.network.base import (
    AdvanceResult,
    ChunkTx,
    Delivery,
    NetworkBackend,
    RadioUse,
    UplinkDevice,
)
from owin_cosim.network.ns3.access import TOKEN_ENV, make_run_dir, new_token, probe, read_token
from owin_cosim.network.ns3.config import Ns3Config
from owin_cosim.network.ns3.environment import ensure_pch, require_ns3
from owin_cosim.network.ns3.pool import Lease, configure_request, current_pool
from owin_cosim.network.ns3.protocol import (
    MAX_FRAME_BYTES,
    ProtocolError,
    check_chunk,
    check_device,
    decode,
    encode,
    request,
)
from owin_cosim.security import curve_client

__all__ = ["Ns3Config", "Ns3Uplink", "Ns3WorkerError"]


#: Slice of a wait on the worker's socket, between looks at the worker process.
_POLL_MS = 100

_STACK_LINE = re.compile(r"^(#\d+\s|entry=|\s+at\s|\s*\*\*\* Break \*\*\*|0x[0-9a-f]+)")


def _device_message(d: UplinkDevice) -> dict[str, Any]:
    """A device as the worker's ``configure`` request carries it (power in dBm)."""
    return {"name": d.name, "distance_m": d.distance_m, "tx_power_dBm": d.tx_power_dBm}


class Ns3Uplink(NetworkBackend):
    """The uplink simulated packet by packet by ns-3 in a worker process."""

    name = "ns3"
    grant_invariant = True  # ns-3 stops at every delivery; grants only bound it

    def __init__(
        self,
        config: Ns3Config,
        devices: Sequence[UplinkDevice],
        seed: int,
        *,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.devices = list(devices)
        self.seed = seed
        self._now = 0.0
        self._backlog = 0
        self._usage: list[RadioUse] | None = None
        self._proc: subprocess.Popen[bytes] | Lease | None = None
        self._tmp: Path | None = None
        self._stderr_path: Path | None = None
        self._stderr: Any = None
        self._ctx = zmq.Context()
        self._sock: zmq.Socket[bytes] = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
        # ZeroMQ's own heartbeats, answered by libzmq's I/O thread without Python's GIL:
        # they stop only when the worker's whole process does (SIGSTOP, a frozen
        # container), also while cppyy holds the GIL for seconds loading ns-3.
        self._sock.setsockopt(zmq.HEARTBEAT_IVL, 500)
        self._sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(config.heartbeat_timeout_s * 1000))
        self._monitor = self._sock.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
        )
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)
        #: Whether a ZeroMQ handshake with the peer succeeded (a ZeroMQ peer is there).
        self._linked = False
        if config.keys is not None:  # a standalone worker behind CURVE
            curve_client(self._sock, Path(config.keys))
        self.events = 0
        #: Submissions and share changes not sent yet: they ride on the next ``advance``.
        self._pending: list[dict[str, Any]] = []
        #: Wall time the worker spent inside ``Simulator::Run`` (diagnostics, benchmarks).
        self.ns3_run_wall_s = 0.0
        self.info: dict[str, Any] = {}
        #: Whether the worker accepted our hello (else it is not ours to shut down).
        self._greeted = False
        #: Chunk releases and share changes, after ``radio_usage`` (for replays).
        self.recording: dict[str, Any] = {}
        for i, d in enumerate(self.devices):
            try:
                check_device(_device_message(d))
            except ProtocolError as exc:
                raise ConfigError(None, f"devices[{i}]", str(exc)) from None
        try:
            if config.endpoint is None:
                require_ns3()
                pool = current_pool()  # inside worker_pool(): a forked, pre-started worker
                if pool is None:
                    ensure_pch(say)
                    token = new_token()
                    self._connect(self._spawn(token))
                else:
                    self._proc = pool.lease(configure_request(config, self.devices, seed))
                    self._stderr_path = self._proc.stderr_path
                    self._connect(self._proc.endpoint)
                    token = self._proc.token
                self._call(request("hello", token=token), config.startup_timeout_s)
                self._greeted = True
            else:
                self._hello_remote(config.endpoint)
            # Building the scenario may take long on a busy machine (a slow worker is
            # not a stuck one): bounded by startup_timeout_s; a stopped worker is
            # noticed within heartbeat_timeout_s by ZeroMQ's heartbeats.
            self.info = self._call(
                configure_request(config, self.devices, seed), config.startup_timeout_s
            )
        except BaseException:
            self.close()
            raise

    # ---- process and socket -------------------------------------------------------
    def _connect(self, endpoint: str) -> None:
        try:
            self._sock.connect(endpoint)
        except zmq.ZMQError as exc:
            raise self._fail(f"cannot connect to {endpoint!r} ({exc})") from None

    def _hello_remote(self, endpoint: str) -> None:
        """Connect to a standalone worker: tell "nothing listens" from "not a worker"."""
        try:
            token = read_token()
        except ValueError as exc:
            raise self._fail(str(exc)) from None
        if token is None:
            raise self._fail(
                f"at {endpoint} needs the run's token: set {TOKEN_ENV} (or "
                "OWIN_COSIM_NS3_TOKEN_FILE) to the worker's"
            )
        wait = self.config.connect_timeout_s
        deadline = time.monotonic() + wait
        while (why := probe(endpoint, max(0.1, min(2.0, deadline - time.monotonic())))) is not None:
            if time.monotonic() >= deadline:  # retried: a worker may be restarting
                raise self._fail(f"cannot be reached: {why} (tried for {wait:g} s)")
            time.sleep(0.2)
        self._connect(endpoint)
        left = max(0.5, deadline - time.monotonic())
        self._call(
            request("hello", token=token),
            left,
            silence=lambda: (
                f"at {endpoint} is not an owin-cosim ns-3 worker: "
                + (
                    "a ZeroMQ peer there did not answer the protocol's hello"
                    if self._linked
                    else "something accepts connections there but does not speak ZeroMQ"
                )
                + f" (waited {left:.1f} s)"
            ),
        )
        self._greeted = True

    def _spawn(self, token: str) -> str:
        self._tmp = make_run_dir()
        endpoint = f"ipc://{self._tmp / 'worker.sock'}"
        self._stderr_path = self._tmp / "stderr.log"
        self._stderr = self._stderr_path.open("wb")
        # The worker imports from an empty directory (ns-3 globs the cwd for libraries).
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "owin_cosim.network.ns3.worker",
                "--bind",
                endpoint,
                "--parent-pid",
                str(os.getpid()),
                "--run-dir",
                str(self._tmp),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            cwd=self._tmp,
            start_new_session=True,
            # The token in the environment: a command line is visible to every user.
            env={
                **os.environ,
                "PYTHONPATH": _import_path(),
                "CPPYY_CRASH_QUIET": "1",
                TOKEN_ENV: token,
            },
        )
        return endpoint

    def _stderr_tail(self, lines: int = 20) -> str:
        if self._stderr_path is None:
            return "(remote worker: see its own log)"
        try:
            text = self._stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        # Keep what people read (ns-3's messages, Python tracebacks), not a debugger's
        # stack dump that a C++ crash may print, nor blank lines.
        kept = [
            line
            for line in text.strip().splitlines()
            if line.strip() and not _STACK_LINE.match(line)
        ]
        return "\n".join(kept[-lines:]) or "(stderr empty)"

    def _fail(self, what: str, *, stuck: bool = False) -> Ns3WorkerError:
        where = f"ns-3 worker for scenario {self.config.scenario!r}"
        err = Ns3WorkerError(f"{where} {what}\n--- worker stderr (tail) ---\n{self._stderr_tail()}")
        if stuck:
            # A stuck (or stopped) worker answers no shutdown: kill it now, not ask.
            self._greeted = False
            if self._proc is not None:
                _signal_group(self._proc, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=2.0)
        self.close()
        return err

    def _call(
        self,
        message: dict[str, Any],
        timeout_s: float,
        silence: Callable[[], str] | None = None,
    ) -> dict[str, Any]:
        """Send a request; wait for its reply, accepting heartbeats; never unbounded.

        ``silence``: the error if nothing at all comes back in time.
        """
        try:
            self._sock.send(encode(message), flags=zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            raise self._fail(f"cannot be reached ({exc})") from None
        deadline = time.monotonic() + timeout_s
        while True:
            ready = dict(self._poller.poll(_POLL_MS))
            if self._monitor in ready:
                self._link_event(message["op"])
            if self._sock in ready:
                try:
                    answer = decode(self._sock.recv())
                except ProtocolError as exc:
                    raise self._fail(f"sent a bad message: {exc}") from None
                if answer["op"] == "heartbeat":  # extends the wait, never shortens it
                    deadline = max(deadline, time.monotonic() + self.config.heartbeat_timeout_s)
                    continue
                if answer["op"] != message["op"]:
                    raise self._fail(f"answered {answer['op']!r} to {message['op']!r}")
                if not answer.get("ok", False):
                    raise self._fail(f"failed on {message['op']!r}: {answer.get('error')}")
                return answer
            # Looked at before the deadline, so that a worker that is gone is never
            # reported as one that stopped answering.
            if self._proc is not None and (code := self._proc.poll()) is not None:
                how = _exit_text(code)
                raise self._fail(f"died ({how}) during {message['op']!r}") from None
            if time.monotonic() > deadline:
                if silence is not None:
                    raise self._fail(silence()) from None
                raise self._fail(
                    f"stopped answering: no reply to {message['op']!r} within {timeout_s:g} s",
                    stuck=True,
                ) from None

    def _link_event(self, op: str) -> None:
        """Note a handshake; fail on a lost connection (a dead or stopped worker)."""
        from zmq.utils.monitor import recv_monitor_message

        event = recv_monitor_message(self._monitor)["event"]
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self._linked = True
            return
        if not self._linked:
            return
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=0.3)  # a dying worker: report its exit instead
            if self._proc.returncode is not None:
                how = _exit_text(self._proc.returncode)
                raise self._fail(f"died ({how}) during {op!r}") from None
        raise self._fail(
            f"stopped answering during {op!r}: its connection missed ZeroMQ heartbeats for "
            f"{self.config.heartbeat_timeout_s:g} s (the process is stopped, frozen or gone)",
            stuck=True,
        ) from None

    # ---- NetworkBackend -----------------------------------------------------------
    @property
    def now_s(self) -> float:
        return self._now

    def submit(self, chunk: ChunkTx, at_s: float) -> None:
        message = {
            "device": chunk.device,
            "chunk": chunk.chunk,
            "nbytes": chunk.nbytes,
            "at_s": at_s,
        }
        try:  # refused here, not after a round trip (the worker checks it too)
            check_chunk(message)
        except ProtocolError as exc:
            raise ConfigError(None, f"payload of {chunk.device!r}", str(exc)) from None
        # Sent with the next request that needs it (ns-3 time cannot move before).
        self._pending.append({"op": "submit", "chunks": [message]})
        self._backlog += 1

    def set_shares(self, shares: Mapping[str, float], at_s: float) -> None:
        self._pending.append({"op": "set_shares", "shares": dict(shares), "at_s": at_s})

    def _flush(self) -> None:
        """Send the held submissions and share changes on their own (no time passes)."""
        pending, self._pending = self._pending, []
        for op in pending:
            fields = {k: v for k, v in op.items() if k != "op"}
            self._call(request(op["op"], **fields), self.config.heartbeat_timeout_s)

    def advance(self, until_s: float) -> AdvanceResult:
        until = None if until_s == float("inf") else until_s
        pending, self._pending = self._pending, []
        answer = self._call(
            request("advance", until_s=until, before=pending), self.config.heartbeat_timeout_s
        )
        self._now = float(answer["time_s"])
        self.events += int(answer.get("events", 0))
        self.ns3_run_wall_s = float(answer.get("run_wall_s", self.ns3_run_wall_s))
        for d in answer["deliveries"]:
            if d["received_bytes"] != d["nbytes"]:  # a chunk arrives whole or not at all
                raise self._fail(
                    f"delivered chunk {d['chunk']} of device {d['device']!r} with only "
                    f"{d['received_bytes']} of its {d['nbytes']} bytes"
                )
        done = tuple(
            Delivery(
                d["device"],
                d["chunk"],
                d["nbytes"],
                d["submit_s"],
                d["first_byte_s"],
                d["last_byte_s"],
                d["lost_bytes"],
            )
            for d in answer["deliveries"]
        )
        self._backlog -= len(done)
        return AdvanceResult(self._now, done)

    def has_backlog(self) -> bool:
        return self._backlog > 0

    def radio_usage(self) -> list[RadioUse]:
        if self._usage is None:
            self._flush()
            answer = self._call(request("usage"), self.config.heartbeat_timeout_s)
            self.recording = {"releases": answer["releases"], "shares_log": answer["shares_log"]}
            self._usage = _merge_intervals(answer["usage"])
        return sorted(self._usage, key=lambda u: (u.start_s, u.device))

    def close(self) -> None:
        """Shut the worker down (politely, then by force); idempotent."""
        if self._sock is not None and not self._sock.closed:
            if self._greeted and (self._proc is None or self._proc.poll() is None):
                with contextlib.suppress(zmq.ZMQError):
                    self._sock.send(encode(request("shutdown")), flags=zmq.NOBLOCK)
                    if self._sock.poll(2000):
                        self._sock.recv()
            with contextlib.suppress(zmq.ZMQError):
                self._sock.disable_monitor()
            self._monitor.close(0)
            self._sock.close(0)
            self._ctx.term()
        if self._proc is not None:
            if self._proc.poll() is None:
                try:
                    self._proc.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    _kill_group(self._proc)
            if isinstance(self._proc, Lease):
                self._proc.close()
            self._proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def _merge_intervals(usage: list[dict[str, Any]]) -> list[RadioUse]:
    """Per device, the union of its chunks' [release, delivery] intervals (busy time).

    >>> [(u.start_s, u.end_s) for u in _merge_intervals([
    ...     {"device": "a", "start_s": 0.0, "end_s": 2.0},
    ...     {"device": "a", "start_s": 1.0, "end_s": 3.0},
    ...     {"device": "a", "start_s": 5.0, "end_s": 6.0}])]
    [(0.0, 3.0), (5.0, 6.0)]
    """
    out: list[RadioUse] = []
    by_device: dict[str, list[tuple[float, float]]] = {}
    for u in usage:
        by_device.setdefault(u["device"], []).append((float(u["start_s"]), float(u["end_s"])))
    for device, spans in by_device.items():
        spans.sort()
        start, end = spans[0]
        for s, e in spans[1:]:
            if s > end:
                out.append(RadioUse(device, start, end, 1))
                start, end = s, e
            else:
                end = max(end, e)
        out.append(RadioUse(device, start, end, 1))
    return out


def _exit_text(code: int) -> str:
    """How a process ended, from its return code.

    >>> _exit_text(70), _exit_text(-6)
    ('exit code 70', 'killed by signal SIGABRT')
    """
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"killed by signal {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def _signal_group(proc: subprocess.Popen[bytes] | Lease, sig: int) -> None:
    """Signal a worker's process group (a pooled one's through its server: killed)."""
    if isinstance(proc, Lease):
        proc.kill()
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _kill_group(proc: subprocess.Popen[bytes] | Lease) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        _signal_group(proc, sig)
        try:
            proc.wait(timeout=2.0)
            return
        except subprocess.TimeoutExpired:
            continue


def _import_path() -> str:
    """PYTHONPATH for the worker: where owin_cosim and ns3_scenarios are importable."""
    root = str(Path(__file__).resolve().parents[3])
    extra = os.environ.get("PYTHONPATH", "")
    return root + (os.pathsep + extra if extra else "")
