"""The ns-3 worker process: one ns-3 simulation, driven over ZeroMQ by a coordinator.

Started by :class:`owin_cosim.network.ns3.backend.Ns3Uplink` (``python -m
owin_cosim.network.ns3.worker --bind ipc://... --parent-pid PID --run-dir DIR``, the
run's token in ``$OWIN_COSIM_NS3_TOKEN``) or on its own for containers (``owin-cosim
ns3-worker --bind tcp://HOST:5555 --token-file FILE``). It binds a ROUTER socket and is
driven only by the first peer whose ``hello`` carries the run's token: any other peer
(one that says nothing, sends garbage or has the wrong token) gets an error reply or
nothing, and never blocks the real coordinator. It serves one session (one simulation)
and exits after ``shutdown``: ns-3 keeps global state (random streams, type registry) that
cannot be reset within a process, so one process per run is what makes runs
reproducible.

ns-3 never runs past the time it is granted: ``advance`` runs in slices, each ending at
a scheduled stop no later than the grant, and returns early at the first instant a chunk
is delivered (the sinks stop the simulator). Between slices the worker sends heartbeats;
while ``configure`` builds the scenario, a thread does whenever cppyy lets go of the GIL
(the coordinator's ZeroMQ heartbeats tell a stopped worker from a busy one meanwhile).
A worker whose coordinator is gone removes the coordinator's run directory and exits.
Faults can be injected for tests (``OWIN_COSIM_NS3_FAULT``: see
:func:`~owin_cosim.network.ns3.session.inject`); ``OWIN_COSIM_NS3_PROFILE=FILE`` writes
a cProfile of the session to ``FILE``.

A C++ crash (an ns-3 fatal error, an abort, a segfault) ends the worker at once, by its
signal, after Python's traceback on stderr: cppyy's own handler would first run a
debugger for a stack dump, seconds during which the dying worker looks stuck.

Transmission order: a chunk is *released* to its device's socket only when the plan
lets the device send: devices with a positive share send; devices with share 0 wait
until no device with a positive share has data left (the same rule as the OFDM
scheduler). Releases are decided when shares or chunks change and at the start of each
``advance``, i.e. always after the coordinator has reacted to the last delivery.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import zmq

from owin_cosim.network.ns3.access import read_token, run_dir_owner, same_token
from owin_cosim.network.ns3.protocol import (
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    ProtocolError,
    check_chunk,
    check_device,
    decode,
    encode,
    reply,
)
from owin_cosim.network.ns3.session import (
    Chunk,
    Session,
    die_at_once_on_crash,
    gave_up,
    inject,
    warm_up,
)
from owin_cosim.security import curve_server

__all__ = ["Worker", "main"]

_HEARTBEAT_S = 0.5
#: cppyy's exceptions for C++ crashes (signals turned into Python exceptions).
_FATAL = {"FatalError", "SegmentationViolation", "BusError", "AbortSignal", "IllegalInstruction"}


class Worker:
    """Answers the protocol's requests on one ROUTER socket (see ``docs/protocol.md``)."""

    def __init__(
        self,
        sock: zmq.Socket[bytes],
        token: str,
        parent_pid: int | None = None,
        run_dir: Path | None = None,
    ) -> None:
        self.sock = sock
        self.token = token
        self.parent_pid = parent_pid
        self.run_dir = run_dir
        #: The routing id of the peer whose ``hello`` had the token: the coordinator.
        self.owner: bytes | None = None
        self.session: Session | None = None
        self._last_beat = time.monotonic()
        self._send_lock = threading.Lock()  # the heartbeat thread sends too

    # ---- plumbing -----------------------------------------------------------------
    def send_to(self, peer: bytes, message: dict[str, Any]) -> None:
        with self._send_lock:
            self.sock.send_multipart([peer, encode(message)])

    def send(self, message: dict[str, Any]) -> None:
        """Send to the coordinator."""
        if self.owner is not None:
            self.send_to(self.owner, message)
        self._last_beat = time.monotonic()

    def heartbeat(self, sim_time_s: float) -> None:
        if time.monotonic() - self._last_beat >= _HEARTBEAT_S:
            self.send({"op": "heartbeat", "sim_time_s": sim_time_s})
        self.check_parent()

    def check_parent(self) -> None:
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            print("owin-cosim ns3-worker: the coordinator is gone; exiting", file=sys.stderr)
            # Its run directory is ours to remove now (only one named after it).
            if self.run_dir is not None and run_dir_owner(self.run_dir) == self.parent_pid:
                shutil.rmtree(self.run_dir, ignore_errors=True)
            os._exit(3)

    @contextlib.contextmanager
    def beating(self) -> Iterator[None]:
        """Heartbeats from a thread while the main one is busy in one long step."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(_HEARTBEAT_S):
                self.send({"op": "heartbeat", "sim_time_s": 0.0})
                self.check_parent()

        thread = threading.Thread(target=beat, name="owin-ns3-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def admit(self, peer: bytes, message: dict[str, Any]) -> str | None:
        """Why ``peer`` may not make this request, or ``None`` if it may."""
        if self.owner is None:
            if message["op"] != "hello":
                return "say hello first, with the run's token"
            if not same_token(message.get("token"), self.token):
                return "wrong or missing token: this worker belongs to another run"
            self.owner = peer
            return None
        if peer != self.owner:
            return "this worker is driven by another coordinator"
        return None

    def serve(self) -> None:
        """Answer requests until ``shutdown``."""
        while True:
            if not self.sock.poll(500):
                self.check_parent()
                continue
            frames = self.sock.recv_multipart()
            peer = frames[0]
            if len(frames) != 2:
                self.send_to(peer, reply("invalid", ok=False, error="one frame per message"))
                continue
            try:
                message = decode(frames[1])
            except ProtocolError as exc:
                self.send_to(peer, reply("invalid", ok=False, error=str(exc)))
                continue
            refusal = self.admit(peer, message)
            if refusal is not None:
                self.send_to(peer, reply(message["op"], ok=False, error=refusal))
            elif self.handle(message):
                return

    def handle(self, message: dict[str, Any]) -> bool:
        """Answer one request of the coordinator's; ``True`` after ``shutdown``."""
        op = message["op"]
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            self.send(reply(op, ok=False, error=f"unknown op {op!r}"))
            return False
        try:
            if op == "configure":
                with self.beating():
                    result = handler(message)
            else:
                result = handler(message)
        except Exception as exc:
            self.send(
                reply(
                    op,
                    ok=False,
                    error=f"{type(exc).__name__}: {exc}",
                    traceback=traceback.format_exc(),
                )
            )
            if type(exc).__name__ in _FATAL:
                # cppyy turned a C++ crash into an exception: ns-3 is unusable now.
                print(
                    f"owin-cosim ns3-worker: fatal {type(exc).__name__}: {exc}",
                    file=sys.stderr,
                    flush=True,
                )
                self.sock.close(linger=1000)
                os._exit(70)
            return False
        self.send(reply(op, **result))
        return bool(op == "shutdown")

    # ---- requests -----------------------------------------------------------------
    def op_hello(self, message: dict[str, Any]) -> dict[str, Any]:
        return {"protocol": PROTOCOL_VERSION, "pid": os.getpid()}

    def op_configure(self, message: dict[str, Any]) -> dict[str, Any]:
        if self.session is not None:
            raise RuntimeError("this worker is configured already (one simulation per worker)")
        from ns3_scenarios import SCENARIOS
        from ns3_scenarios.common import Ns3Device
        from owin_cosim.network.ns3.environment import import_ns3

        inject("configure")  # before ns-3 loads: the worker's longest step follows
        name = message["scenario"]
        module = SCENARIOS.get(name)
        if module is None:
            raise ValueError(f"unknown ns-3 scenario {name!r}; expected one of {sorted(SCENARIOS)}")
        params = module.Params.model_validate(message.get("params") or {})
        if not isinstance(message.get("devices"), list) or not message["devices"]:
            raise ProtocolError("configure needs a non-empty list of 'devices'")
        for d in message["devices"]:
            check_device(d)
        devices = [
            Ns3Device(i, d["name"], float(d["distance_m"]), float(d["tx_power_dBm"]))
            for i, d in enumerate(message["devices"])
        ]
        seed = int(message.get("seed", 1))
        ns, _, owin = import_ns3()
        die_at_once_on_crash()
        # Explicit streams: seed and run fixed here; every model's streams assigned by
        # the scenario with AssignStreams.
        ns.RngSeedManager.SetSeed(seed % (2**31 - 2) + 1)
        ns.RngSeedManager.SetRun(1)
        built = module.build(ns, owin, params, devices, seed)
        t0 = float(ns.Simulator.Now().GetSeconds())
        warm_up(ns, owin, built)
        fault = os.environ.get("OWIN_COSIM_NS3_FAULT", "")
        if fault.startswith("abort@"):
            owin.ScheduleFaultAt(t0 + float(fault.removeprefix("abort@")))
        self.session = Session(
            ns, owin, built, params, [d.name for d in devices], t0, [0.0] * len(devices)
        )
        return {
            "t0_s": t0,
            "peak_rate_bps": built.peak_rate_bps,
            "describe": built.describe,
            "shares_in_radio": built.apply_shares is not None,
        }

    def _s(self) -> Session:
        if self.session is None:
            raise RuntimeError("configure first")
        return self.session

    def _now(self) -> float:
        s = self._s()
        return float(s.ns.Simulator.Now().GetSeconds()) - s.t0

    def op_submit(self, message: dict[str, Any]) -> dict[str, Any]:
        s = self._s()
        chunks = message.get("chunks")
        if not isinstance(chunks, list):
            raise ProtocolError("submit needs a list of 'chunks'")
        for c in chunks:
            check_chunk(c)
            if c["device"] not in s.names:
                raise ProtocolError(f"unknown device {c['device']!r:.60}")
        for c in chunks:
            k = s.names.index(c["device"])
            at = max(float(c["at_s"]), self._now())
            s.chunks.append(Chunk(k, int(c["chunk"]), int(c["nbytes"]), at))
            s.built.sinks[k].Expect(int(c["chunk"]), int(c["nbytes"]), at)
        self.regate()
        return {}

    def op_set_shares(self, message: dict[str, Any]) -> dict[str, Any]:
        s = self._s()
        weights = [0.0] * len(s.names)
        for name, w in message["shares"].items():
            if not (isinstance(w, int | float) and math.isfinite(w) and w >= 0):
                raise ValueError(f"share of {name!r} must be a finite number >= 0, got {w!r}")
            weights[s.names.index(name)] = float(w)
        s.weights = weights
        s.shares_log.append({"t": self._now(), "weights": weights})
        if s.built.apply_shares is not None:
            s.built.apply_shares({k: w for k, w in enumerate(weights)})
        self.regate()
        return {}

    def regate(self) -> None:
        """Release the chunks the plan lets go now (see the module docstring)."""
        s = self._s()
        now = self._now()
        pending = [c for c in s.chunks if not c.delivered]
        busy = {c.device for c in pending}
        positive = {k for k, w in enumerate(s.weights) if w > 0}
        eligible = positive if positive & busy else set(range(len(s.names)))
        for c in pending:
            if c.released_s is None and c.device in eligible and c.at_s <= now + 1e-12:
                c.released_s = now
                s.releases.append(
                    {"device": c.device, "chunk": c.chunk, "nbytes": c.nbytes, "t": now}
                )
                s.owin.ReleaseAt(s.built.senders[c.device], s.t0 + now, c.chunk, c.nbytes)

    def op_advance(self, message: dict[str, Any]) -> dict[str, Any]:
        s = self._s()
        ns, owin, hub = s.ns, s.owin, s.owin.TheHub()
        if os.environ.get("OWIN_COSIM_NS3_FAULT") == "hang":
            time.sleep(3600)
        inject("advance")
        for op in message.get("before") or ():  # held submissions / share changes, in order
            kind = op.get("op") if isinstance(op, dict) else None
            if kind not in ("submit", "set_shares"):
                raise ValueError(f"advance.before: expected submit or set_shares, got {kind!r}")
            getattr(self, f"op_{kind}")(op)
        until = message.get("until_s")
        limit = math.inf if until is None else float(until)
        start_events = int(ns.Simulator.GetEventCount())
        hub.Clear()
        self.regate()
        while True:
            now = self._now()
            if now >= limit - 1e-12:
                break
            if now > s.params.max_sim_time_s:
                raise RuntimeError(
                    f"no delivery within max_sim_time_s={s.params.max_sim_time_s} "
                    "s of simulated time: is a device out of range?"
                )
            target = min(limit, now + s.params.slice_s)
            future = [c.at_s for c in s.chunks if c.released_s is None and c.at_s > now]
            if future:
                target = min(target, min(future))
            ev = owin.ScheduleStopAt(s.t0 + target)
            t_run = time.perf_counter()
            ns.Simulator.Run()
            s.run_wall_s += time.perf_counter() - t_run
            owin.CancelEvent(ev)
            if hub.failed.size():
                raise RuntimeError(gave_up(s, hub.failed[0]))
            if hub.done.size():
                break
            self.regate()
            self.heartbeat(self._now())
        deliveries = []
        for d in hub.done:
            k, chunk = int(d.device), int(d.chunk)
            for c in s.chunks:
                if c.device == k and c.chunk == chunk and not c.delivered:
                    c.delivered = True
                    s.usage.append(
                        {
                            "device": s.names[k],
                            "start_s": c.released_s,
                            "end_s": float(d.last) - s.t0,
                        }
                    )
                    break
            deliveries.append(
                {
                    "device": s.names[k],
                    "chunk": chunk,
                    "nbytes": int(d.nbytes),
                    "submit_s": float(d.submit),
                    "first_byte_s": float(d.first) - s.t0,
                    "last_byte_s": float(d.last) - s.t0,
                    "lost_bytes": int(d.lost),
                    "received_bytes": int(d.received),
                }
            )
        hub.Clear()
        return {
            "time_s": self._now(),
            "deliveries": deliveries,
            "events": int(ns.Simulator.GetEventCount()) - start_events,
            "run_wall_s": s.run_wall_s,
        }

    def op_usage(self, message: dict[str, Any]) -> dict[str, Any]:
        s = self._s()
        return {
            "usage": list(s.usage),
            "releases": list(s.releases),
            "shares_log": list(s.shares_log),
        }

    def op_shutdown(self, message: dict[str, Any]) -> dict[str, Any]:
        if self.session is not None:
            self.session.ns.Simulator.Destroy()
        return {}


def run_worker(
    bind: str,
    parent_pid: int | None = None,
    *,
    token: str | None = None,
    run_dir: Path | None = None,
    keys: Path | None = None,
) -> None:
    """Bind ``bind`` (CURVE with a ``keys`` directory), serve one session, exit.

    Raises
    ------
    ValueError
        Without a token (a worker anyone could drive).
    """
    if not token:
        raise ValueError(
            "no token for this ns-3 worker: set OWIN_COSIM_NS3_TOKEN or "
            "OWIN_COSIM_NS3_TOKEN_FILE, or give --token-file (the coordinator needs the same)"
        )
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
    auth = None if keys is None else curve_server(ctx, sock, keys)
    sock.bind(bind)
    profile_to = os.environ.get("OWIN_COSIM_NS3_PROFILE")
    profiler = None
    if profile_to:  # where a worker spends its time, for benchmarks (pstats file)
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        Worker(sock, token, parent_pid, run_dir).serve()
    finally:
        if profiler is not None and profile_to:
            profiler.disable()
            profiler.dump_stats(profile_to)
        sock.close()
        if auth is not None:
            auth.stop()
        ctx.term()


def main(argv: list[str] | None = None) -> None:
    """``python -m owin_cosim.network.ns3.worker --bind ENDPOINT [--parent-pid PID]``."""
    parser = argparse.ArgumentParser(prog="owin-cosim ns3-worker")
    parser.add_argument("--bind", help="ZeroMQ endpoint, e.g. tcp://127.0.0.1:5555")
    parser.add_argument(
        "--replay", help="run a recorded traffic spec (JSON) standalone; print the timing as JSON"
    )
    parser.add_argument(
        "--parent-pid",
        type=int,
        default=None,
        help="exit when this process (the coordinator) is gone",
    )
    parser.add_argument(
        "--run-dir", default=None, help="the coordinator's run directory: removed if it dies"
    )
    parser.add_argument(
        "--token-file",
        default=None,
        help="file holding the run's token (else $OWIN_COSIM_NS3_TOKEN)",
    )
    args = parser.parse_args(argv)
    # A C++ crash should end the worker at once, not run gdb for a stack trace.
    os.environ.setdefault("CPPYY_CRASH_QUIET", "1")
    if args.replay:
        from owin_cosim.network.ns3.replay import replay

        with open(args.replay, encoding="utf-8") as fh:
            print(json.dumps(replay(json.load(fh))))
        return
    if not args.bind:
        parser.error("--bind is required")
    try:
        token = read_token(args.token_file)
    except ValueError as exc:
        parser.error(str(exc))
    run_dir = Path(args.run_dir) if args.run_dir else None
    if run_dir is not None:  # our own temporary files too: gone with the run directory
        tempfile.tempdir = str(run_dir)
    try:
        run_worker(args.bind, args.parent_pid, token=token, run_dir=run_dir)
    except ValueError as exc:
        parser.error(str(exc))


if __name__ == "__main__":
    main()
