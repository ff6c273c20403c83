"""The ns-3 network backend: a worker process per run, driven over pyzmq.

:class:`Ns3Uplink` starts ``python -m owin_cosim.network.ns3.worker`` on a private ``ipc://``
endpoint (or connects to a worker already listening, e.g. in another container, at
``tcp://HOST:PORT``) and speaks the protocol of :mod:`owin_cosim.network.ns3.protocol`. Every wait
on the socket is bounded: the worker sends heartbeats during long requests, so silence
longer than ``heartbeat_timeout_s`` means a stuck worker; a local worker's death is
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
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import zmq

from owin_cosim.errors import Ns3WorkerError
from owin_cosim.network.base import (
    AdvanceResult,
    ChunkTx,
    Delivery,
    NetworkBackend,
    RadioUse,
    UplinkDevice,
)
from owin_cosim.network.ns3.config import Ns3Config
from owin_cosim.network.ns3.environment import ensure_pch, require_ns3
from owin_cosim.network.ns3.protocol import ProtocolError, decode, encode, request
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
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None
        self._stderr: Any = None
        self._ctx = zmq.Context()
        self._sock: zmq.Socket[bytes] = self._ctx.socket(zmq.PAIR)
        self._sock.setsockopt(zmq.LINGER, 0)
        if config.keys is not None:  # a standalone worker behind CURVE
            curve_client(self._sock, Path(config.keys))
        self.events = 0
        #: Submissions and share changes not sent yet: they ride on the next ``advance``.
        self._pending: list[dict[str, Any]] = []
        #: Wall time the worker spent inside ``Simulator::Run`` (diagnostics, benchmarks).
        self.ns3_run_wall_s = 0.0
        self.info: dict[str, Any] = {}
        #: Chunk releases and share changes, after ``radio_usage`` (for replays).
        self.recording: dict[str, Any] = {}
        try:
            if config.endpoint is None:
                require_ns3()
                ensure_pch(say)
                endpoint = self._spawn()
            else:
                endpoint = config.endpoint
            self._sock.connect(endpoint)
            self._call(request("hello"), config.startup_timeout_s)
            self.info = self._call(
                request(
                    "configure",
                    scenario=config.scenario,
                    params=config.params,
                    devices=[_device_message(d) for d in self.devices],
                    seed=seed,
                ),
                config.startup_timeout_s,
            )
        except BaseException:
            self.close()
            raise

    # ---- process and socket -------------------------------------------------------
    def _spawn(self) -> str:
        self._tmp = Path(tempfile.mkdtemp(prefix="owin-ns3-"))
        endpoint = f"ipc://{self._tmp / 'worker.sock'}"
        self._stderr = (self._tmp / "stderr.log").open("wb")
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
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            cwd=self._tmp,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": _import_path(), "CPPYY_CRASH_QUIET": "1"},
        )
        return endpoint

    def _stderr_tail(self, lines: int = 20) -> str:
        if self._tmp is None:
            return "(remote worker: see its own log)"
        try:
            text = (self._tmp / "stderr.log").read_text(errors="replace")
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

    def _fail(self, what: str) -> Ns3WorkerError:
        where = f"ns-3 worker for scenario {self.config.scenario!r}"
        err = Ns3WorkerError(f"{where} {what}\n--- worker stderr (tail) ---\n{self._stderr_tail()}")
        self.close()
        return err

    def _call(self, message: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send a request; wait for its reply, accepting heartbeats; never unbounded."""
        try:
            self._sock.send(encode(message), flags=zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            raise self._fail(f"cannot be reached ({exc})") from None
        deadline = time.monotonic() + timeout_s
        while True:
            if self._sock.poll(_POLL_MS):
                try:
                    answer = decode(self._sock.recv())
                except ProtocolError as exc:
                    raise self._fail(f"sent a bad message: {exc}") from None
                if answer["op"] == "heartbeat":
                    deadline = time.monotonic() + self.config.heartbeat_timeout_s
                    continue
                if answer["op"] != message["op"]:
                    raise self._fail(f"answered {answer['op']!r} to {message['op']!r}")
                if not answer.get("ok", False):
                    raise self._fail(f"failed on {message['op']!r}: {answer.get('error')}")
                return answer
            # Looked at before the deadline, so that a worker that is gone is never
            # reported as one that stopped answering.
            if self._proc is not None and self._proc.poll() is not None:
                how = _exit_text(self._proc.returncode)
                raise self._fail(f"died ({how}) during {message['op']!r}") from None
            if time.monotonic() > deadline:
                raise self._fail(
                    f"stopped answering: no reply to {message['op']!r} within {timeout_s:g} s"
                ) from None

    # ---- NetworkBackend -----------------------------------------------------------
    @property
    def now_s(self) -> float:
        return self._now

    def submit(self, chunk: ChunkTx, at_s: float) -> None:
        # Sent with the next request that needs it (ns-3 time cannot move before).
        self._pending.append(
            {
                "op": "submit",
                "chunks": [
                    {
                        "device": chunk.device,
                        "chunk": chunk.chunk,
                        "nbytes": chunk.nbytes,
                        "at_s": at_s,
                    }
                ],
            }
        )
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
            if self._proc is None or self._proc.poll() is None:
                with contextlib.suppress(zmq.ZMQError):
                    self._sock.send(encode(request("shutdown")), flags=zmq.NOBLOCK)
                    if self._sock.poll(2000):
                        self._sock.recv()
            self._sock.close(0)
            self._ctx.term()
        if self._proc is not None:
            if self._proc.poll() is None:
                try:
                    self._proc.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    _kill_group(self._proc)
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


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
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
