"""The ns-3 worker process: one ns-3 simulation, driven over ZeroMQ by a coordinator.

Started by :class:`owin_cosim.network.ns3.backend.Ns3Uplink` (``python -m
owin_cosim.network.ns3.worker --bind ipc://...``) or on its own for containers (``owin-cosim
ns3-worker --bind tcp://0.0.0.0:5555``). It serves one session (one simulation) and
exits after ``shutdown``: ns-3 keeps global state (random streams, type registry) that
cannot be reset within a process, so one process per run is what makes runs
reproducible.

ns-3 never runs past the time it is granted: ``advance`` runs in slices, each ending at
a scheduled stop no later than the grant, and returns early at the first instant a chunk
is delivered (the sinks stop the simulator). Between slices the worker sends heartbeats.

Fault injection (for tests of the coordinator's failure handling):
``OWIN_COSIM_NS3_FAULT=abort@T`` makes ns-3 fail fatally at simulated time ``T`` (s after
warm-up); ``OWIN_COSIM_NS3_FAULT=hang`` makes the worker stop answering on its first
``advance``. ``OWIN_COSIM_NS3_PROFILE=FILE`` writes a cProfile of the session to ``FILE``.

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
import faulthandler
import json
import math
import os
import resource
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from owin_cosim.network.ns3.protocol import PROTOCOL_VERSION, ProtocolError, decode, encode, reply
from owin_cosim.security import curve_server

__all__ = ["Worker", "main"]

_HEARTBEAT_S = 0.5
#: cppyy's exceptions for C++ crashes (signals turned into Python exceptions).
_FATAL = {"FatalError", "SegmentationViolation", "BusError", "AbortSignal", "IllegalInstruction"}
#: Signals of a C++ crash.
_CRASH_SIGNALS = (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE)


@dataclass
class _Chunk:
    device: int
    chunk: int
    nbytes: int
    at_s: float
    released_s: float | None = None
    delivered: bool = False


@dataclass
class _Session:
    ns: Any
    owin: Any
    built: Any
    params: Any
    names: list[str]
    t0: float
    weights: list[float]
    chunks: list[_Chunk] = field(default_factory=list)
    usage: list[dict[str, Any]] = field(default_factory=list)
    #: What happened, for a standalone replay of the same traffic (benchmarks).
    releases: list[dict[str, Any]] = field(default_factory=list)
    shares_log: list[dict[str, Any]] = field(default_factory=list)
    #: Wall time spent inside ``Simulator::Run`` so far (what ns-3 itself costs).
    run_wall_s: float = 0.0


class Worker:
    """Answers the protocol's requests on one socket (see ``docs/protocol.md``)."""

    def __init__(self, sock: zmq.Socket[bytes], parent_pid: int | None = None) -> None:
        self.sock = sock
        self.parent_pid = parent_pid
        self.session: _Session | None = None
        self._last_beat = time.monotonic()

    # ---- plumbing -----------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        self.sock.send(encode(message))
        self._last_beat = time.monotonic()

    def heartbeat(self, sim_time_s: float) -> None:
        if time.monotonic() - self._last_beat >= _HEARTBEAT_S:
            self.send({"op": "heartbeat", "sim_time_s": sim_time_s})
        self.check_parent()

    def check_parent(self) -> None:
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            print("owin-cosim ns3-worker: the coordinator is gone; exiting", file=sys.stderr)
            os._exit(3)

    def serve(self) -> None:
        """Answer requests until ``shutdown``."""
        while True:
            if not self.sock.poll(500):
                self.check_parent()
                continue
            frame = self.sock.recv()
            try:
                message = decode(frame)
            except ProtocolError as exc:
                self.send(reply("invalid", ok=False, error=str(exc)))
                continue
            op = message["op"]
            handler = getattr(self, f"op_{op}", None)
            if handler is None:
                self.send(reply(op, ok=False, error=f"unknown op {op!r}"))
                continue
            try:
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
                continue
            self.send(reply(op, **result))
            if op == "shutdown":
                return

    # ---- requests -----------------------------------------------------------------
    def op_hello(self, message: dict[str, Any]) -> dict[str, Any]:
        return {"protocol": PROTOCOL_VERSION, "pid": os.getpid()}

    def op_configure(self, message: dict[str, Any]) -> dict[str, Any]:
        if self.session is not None:
            raise RuntimeError("this worker is configured already (one simulation per worker)")
        from ns3_scenarios import SCENARIOS
        from ns3_scenarios.common import Ns3Device
        from owin_cosim.network.ns3.environment import import_ns3

        name = message["scenario"]
        module = SCENARIOS.get(name)
        if module is None:
            raise ValueError(f"unknown ns-3 scenario {name!r}; expected one of {sorted(SCENARIOS)}")
        params = module.Params.model_validate(message.get("params") or {})
        devices = [
            Ns3Device(i, d["name"], float(d["distance_m"]), float(d["tx_power_dBm"]))
            for i, d in enumerate(message["devices"])
        ]
        seed = int(message.get("seed", 1))
        ns, _, owin = import_ns3()
        _die_at_once_on_crash()
        # Explicit streams: seed and run fixed here; every model's streams assigned by
        # the scenario with AssignStreams.
        ns.RngSeedManager.SetSeed(seed % (2**31 - 2) + 1)
        ns.RngSeedManager.SetRun(1)
        built = module.build(ns, owin, params, devices, seed)
        t0 = float(ns.Simulator.Now().GetSeconds())
        _warm_up(ns, owin, built)
        fault = os.environ.get("OWIN_COSIM_NS3_FAULT", "")
        if fault.startswith("abort@"):
            owin.ScheduleFaultAt(t0 + float(fault.removeprefix("abort@")))
        self.session = _Session(
            ns, owin, built, params, [d.name for d in devices], t0, [0.0] * len(devices)
        )
        return {
            "t0_s": t0,
            "peak_rate_bps": built.peak_rate_bps,
            "describe": built.describe,
            "shares_in_radio": built.apply_shares is not None,
        }

    def _s(self) -> _Session:
        if self.session is None:
            raise RuntimeError("configure first")
        return self.session

    def _now(self) -> float:
        s = self._s()
        return float(s.ns.Simulator.Now().GetSeconds()) - s.t0

    def op_submit(self, message: dict[str, Any]) -> dict[str, Any]:
        s = self._s()
        for c in message["chunks"]:
            k = s.names.index(c["device"])
            at = max(float(c["at_s"]), self._now())
            s.chunks.append(_Chunk(k, int(c["chunk"]), int(c["nbytes"]), at))
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
                raise RuntimeError(_gave_up(s, hub.failed[0]))
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


def _gave_up(s: _Session, failure: Any) -> str:
    """The error for a UDP chunk whose sender gave up asking for the server's report."""
    p = s.params
    return (
        f"UDP chunk {int(failure.chunk)} of device {s.names[int(failure.device)]!r} cannot "
        f"be completed: {int(failure.requests)} requests in a row for the server's report "
        f"went unanswered (udp_max_requests={p.udp_max_requests}, "
        f"udp_report_timeout_s={p.udp_report_timeout_s} s apart): its link is down, or too "
        f"congested for udp_rate_mbps={p.udp_rate_mbps}"
    )


def _die_at_once_on_crash() -> None:
    """Let a C++ crash end the process by its signal, after Python's traceback.

    Called after cppyy is imported, to replace its handlers: they run a debugger for a
    stack dump before exiting (seconds; more on a busy machine), and the coordinator
    would meanwhile take the dying worker for a stuck one.
    """
    for sig in _CRASH_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    # Nor a core dump of the whole interpreter (about 1 GB) before the process is gone.
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    # faulthandler chains to the handler it replaces: the default one, set just above.
    faulthandler.enable(file=sys.stderr, all_threads=False)


def _warm_up(ns: Any, owin: Any, built: Any) -> None:
    """Call every C++ entry point of the run loop once, with no effect.

    cppyy generates a call wrapper the first time a C++ function is called from Python
    (tens of milliseconds each); doing it here keeps it out of the simulated run.
    """
    hub = owin.TheHub()
    built.sinks[0].Expect(0, 0, 0.0)
    owin.ReleaseAt(built.senders[0], float(ns.Simulator.Now().GetSeconds()), 0, 0)
    owin.CancelEvent(owin.ScheduleStopAt(float(ns.Simulator.Now().GetSeconds()) + 1.0))
    int(ns.Simulator.GetEventCount())
    if built.apply_shares is not None:
        built.apply_shares({0: 1.0})
        owin.ClearUlWeights()
    int(hub.done.size())
    for d in hub.done:
        int(d.device)
    hub.Clear()


def replay(spec: dict[str, Any]) -> dict[str, Any]:
    """Run a recorded traffic pattern in ns-3 alone: no coordinator, no sockets.

    ``spec``: the ``configure`` fields plus ``releases`` and ``shares_log`` as returned
    by ``usage``. The baseline of the coordinator-overhead benchmark: the same packets
    through the same scenario, timed from the first release to the last delivery.
    """
    from ns3_scenarios import SCENARIOS
    from ns3_scenarios.common import Ns3Device
    from owin_cosim.network.ns3.environment import import_ns3

    module = SCENARIOS[spec["scenario"]]
    params = module.Params.model_validate(spec.get("params") or {})
    devices = [
        Ns3Device(i, d["name"], float(d["distance_m"]), float(d["tx_power_dBm"]))
        for i, d in enumerate(spec["devices"])
    ]
    ns, _, owin = import_ns3()
    _die_at_once_on_crash()
    seed = int(spec.get("seed", 1))
    ns.RngSeedManager.SetSeed(seed % (2**31 - 2) + 1)
    ns.RngSeedManager.SetRun(1)
    built = module.build(ns, owin, params, devices, seed)
    _warm_up(ns, owin, built)
    t0 = float(ns.Simulator.Now().GetSeconds())
    hub = owin.TheHub()
    hub.Clear()
    for r in spec["releases"]:
        built.sinks[r["device"]].Expect(r["chunk"], r["nbytes"], r["t"])
        owin.ReleaseAt(built.senders[r["device"]], t0 + r["t"], r["chunk"], r["nbytes"])
    changes = sorted(spec.get("shares_log", []), key=lambda c: c["t"])
    expected = len(spec["releases"])
    start_events = int(ns.Simulator.GetEventCount())
    wall = time.perf_counter()
    delivered = 0
    while delivered < expected:
        while changes and changes[0]["t"] <= float(ns.Simulator.Now().GetSeconds()) - t0 + 1e-12:
            if built.apply_shares is not None:
                built.apply_shares(dict(enumerate(changes.pop(0)["weights"])))
            else:
                changes.pop(0)
        if changes:
            ev = owin.ScheduleStopAt(t0 + changes[0]["t"])
            ns.Simulator.Run()
            owin.CancelEvent(ev)
        else:
            ns.Simulator.Run()
        delivered += int(hub.done.size())
        hub.Clear()
    wall = time.perf_counter() - wall
    return {
        "wall_s": wall,
        "events": int(ns.Simulator.GetEventCount()) - start_events,
        "sim_time_s": float(ns.Simulator.Now().GetSeconds()) - t0,
    }


def run_worker(bind: str, parent_pid: int | None = None, *, keys: Path | None = None) -> None:
    """Bind ``bind`` (CURVE with a ``keys`` directory), serve one session, exit."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PAIR)
    sock.setsockopt(zmq.LINGER, 1000)
    auth = None if keys is None else curve_server(ctx, sock, keys)
    sock.bind(bind)
    profile_to = os.environ.get("OWIN_COSIM_NS3_PROFILE")
    profiler = None
    if profile_to:  # where a worker spends its time, for benchmarks (pstats file)
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        Worker(sock, parent_pid).serve()
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
    parser.add_argument("--bind", help="ZeroMQ endpoint, e.g. tcp://0.0.0.0:5555")
    parser.add_argument(
        "--replay", help="run a recorded traffic spec (JSON) standalone; print the timing as JSON"
    )
    parser.add_argument(
        "--parent-pid",
        type=int,
        default=None,
        help="exit when this process (the coordinator) is gone",
    )
    args = parser.parse_args(argv)
    # A C++ crash should end the worker at once, not run gdb for a stack trace.
    os.environ.setdefault("CPPYY_CRASH_QUIET", "1")
    if args.replay:
        with open(args.replay, encoding="utf-8") as fh:
            print(json.dumps(replay(json.load(fh))))
        return
    if not args.bind:
        parser.error("--bind is required")
    run_worker(args.bind, args.parent_pid)


if __name__ == "__main__":
    main()
