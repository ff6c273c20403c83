"""The ns-3 side of a worker's session: its state, crash handling, warm-up, faults."""

from __future__ import annotations

import faulthandler
import os
import resource
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Chunk", "Session", "die_at_once_on_crash", "gave_up", "inject", "warm_up"]

#: Signals of a C++ crash.
_CRASH_SIGNALS = (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE)


@dataclass
class Chunk:
    device: int
    chunk: int
    nbytes: int
    at_s: float
    released_s: float | None = None
    delivered: bool = False


@dataclass
class Session:
    ns: Any
    owin: Any
    built: Any
    params: Any
    names: list[str]
    t0: float
    weights: list[float]
    chunks: list[Chunk] = field(default_factory=list)
    usage: list[dict[str, Any]] = field(default_factory=list)
    #: What happened, for a standalone replay of the same traffic (benchmarks).
    releases: list[dict[str, Any]] = field(default_factory=list)
    shares_log: list[dict[str, Any]] = field(default_factory=list)
    #: Wall time spent inside ``Simulator::Run`` so far (what ns-3 itself costs).
    run_wall_s: float = 0.0


def gave_up(s: Session, failure: Any) -> str:
    """The error for a UDP chunk whose sender gave up asking for the server's report."""
    p = s.params
    return (
        f"UDP chunk {int(failure.chunk)} of device {s.names[int(failure.device)]!r} cannot "
        f"be completed: {int(failure.requests)} requests in a row for the server's report "
        f"went unanswered (udp_max_requests={p.udp_max_requests}, "
        f"udp_report_timeout_s={p.udp_report_timeout_s} s apart): its link is down, or too "
        f"congested for udp_rate_mbps={p.udp_rate_mbps}"
    )


def inject(stage: str) -> None:
    """The fault ``OWIN_COSIM_NS3_FAULT`` asks for at ``stage``, for tests of the
    coordinator's failure handling.

    ``stop@configure``, ``stop@advance``, ``kill@configure``, ``kill@advance``: the worker
    sends itself SIGSTOP or SIGKILL there; ``slow@configure:S``: ``configure`` takes ``S``
    more seconds. (The worker itself handles ``abort@T``, ns-3 failing fatally at
    simulated time ``T`` s after warm-up, and ``hang``, no answer to the first
    ``advance``.)
    """
    what, _, where = os.environ.get("OWIN_COSIM_NS3_FAULT", "").partition("@")
    place, _, arg = where.partition(":")
    if place != stage:
        return
    if what == "stop":
        os.kill(os.getpid(), signal.SIGSTOP)
    elif what == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif what == "slow":
        time.sleep(float(arg))


def die_at_once_on_crash() -> None:
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


def warm_up(ns: Any, owin: Any, built: Any) -> None:
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
