"""How long the coordinator takes to notice a faulty ns-3 worker.

Run: ``.venv/bin/python benchmarks/bench_faults.py [RUNS]`` (a few minutes; 3 runs by
default). It rewrites the ``faults`` section of ``benchmarks/RESULTS.md``.

For each fault (SIGSTOP or SIGKILL, sent from outside to the worker while it
configures, i.e. while cppyy loads ns-3, or while it advances a long transfer), the
time from the signal to the coordinator's ``Ns3WorkerError``; medians of ``RUNS`` runs,
with the default ``heartbeat_timeout_s`` (5 s). Every process and run directory lives
in a private ``TMPDIR``, checked empty afterwards.
"""

from __future__ import annotations

import math
import os
import platform
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from results_file import write_section

from owin_cosim.network.base import ChunkTx, UplinkDevice, dbm_to_w
from owin_cosim.network.ns3.backend import Ns3Config, Ns3Uplink, Ns3WorkerError

BEGIN, END = "<!-- faults:begin -->", "<!-- faults:end -->"
CONFIG = Ns3Config(scenario="wifi-ax-uplink", params={"channel_width_mhz": 20})
DEVICES = [UplinkDevice("a", 5.0, dbm_to_w(20.0))]
#: The issue's figure for a worker stopped while configuring, before this change.
BEFORE_STOP_CONFIGURE_S = 123.6


def _workers(base: Path) -> list[int]:
    """Live (not zombie) worker processes whose run directory is under ``base``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if b"owin_cosim.network.ns3.worker" in cmd and str(base).encode() in cmd and state != "Z":
            found.append(int(entry.name))
    return found


def _worker_pid(base: Path) -> int:
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if pids := _workers(base):
            return pids[0]
        time.sleep(0.02)
    raise RuntimeError("no worker started")


def while_configuring(sig: signal.Signals, base: Path) -> tuple[float, str]:
    """Signal the worker 1.5 s after it started (hello answered, ns-3 loading)."""
    box: dict[str, float | str] = {}

    def start() -> None:
        try:
            Ns3Uplink(CONFIG, DEVICES, 1).close()
            box["error"] = "no error"
        except Ns3WorkerError as exc:
            box["at"], box["error"] = time.monotonic(), str(exc).splitlines()[0]

    thread = threading.Thread(target=start)
    thread.start()
    pid = _worker_pid(base)
    time.sleep(1.5)
    os.kill(pid, sig)
    sent = time.monotonic()
    thread.join()
    return float(box["at"]) - sent, str(box["error"])


def while_advancing(sig: signal.Signals, base: Path) -> tuple[float, str]:
    """Signal the worker 0.3 s into the advance of a 20 MB chunk."""
    net = Ns3Uplink(CONFIG, DEVICES, 1)
    assert net._proc is not None
    pid = net._proc.pid
    net.submit(ChunkTx("a", 0, 20_000_000), 0.0)
    sent: list[float] = []

    def fire() -> None:
        os.kill(pid, sig)
        sent.append(time.monotonic())

    timer = threading.Timer(0.3, fire)
    timer.start()
    try:
        while net.has_backlog():
            net.advance(math.inf)
    except Ns3WorkerError as exc:
        at, error = time.monotonic(), str(exc).splitlines()[0]
    else:
        raise RuntimeError("the transfer ended before the signal: use a larger chunk")
    finally:
        timer.join()
        net.close()
    return at - sent[0], error


def main(runs: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    os.environ["TMPDIR"] = str(base)
    tempfile.tempdir = str(base)
    rows = []
    for phase, measure in (("configuring", while_configuring), ("advancing", while_advancing)):
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            times, error = [], ""
            for _ in range(runs):
                took, error = measure(sig, base)
                times.append(took)
                print(f"{sig.name} while {phase}: {took:.2f} s ({error})", flush=True)
            rows.append((sig.name, phase, statistics.median(times), min(times), max(times), error))
    left = sorted(p.name for p in base.iterdir())
    assert not left and not _workers(base), f"left behind: {left}, {_workers(base)}"
    base.rmdir()
    lines = [
        "## ns-3 worker faults: time to detect",
        "",
        f"`benchmarks/bench_faults.py` ({runs} runs each, median [min, max]; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores). A signal "
        "sent from outside to a worker while it configures (1.5 s after its start: ns-3 "
        "is loading) or while it advances a 20 MB chunk (0.3 s in); the time from the "
        "signal to the coordinator's `Ns3WorkerError`, with the default "
        f"`heartbeat_timeout_s` = {CONFIG.heartbeat_timeout_s:g} s. No process and no run "
        "directory was left in the private `TMPDIR`.",
        "",
        "| fault | while | detected after (s) | message |",
        "|---|---|---|---|",
    ]
    for name, phase, med, lo, hi, error in rows:
        message = error.split("' ", 1)[-1].split(" (the process")[0]
        lines.append(f"| {name} | {phase} | {med:.2f} [{lo:.2f}, {hi:.2f}] | {message} |")
    lines += [
        "",
        f"Before this change a worker stopped while configuring was noticed after "
        f"{BEFORE_STOP_CONFIGURE_S} s (`startup_timeout_s`; the figure of issue 8, not "
        "re-measured). A stopped worker is now noticed by ZeroMQ heartbeats (answered "
        "by libzmq's I/O thread, without the GIL cppyy holds while loading ns-3), a "
        "killed one by its exit status (looked at every 0.1 s).",
    ]
    print(write_section(BEGIN, END, lines))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
