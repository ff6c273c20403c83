"""ns-3 worker start-up with and without the worker pool (issue 10 part 4).

Run: ``.venv/bin/python benchmarks/bench_ns3_pool.py [--reps N]`` (a few minutes). It
rewrites the ``ns3-pool`` section of ``benchmarks/RESULTS.md``.

Start-up = from asking for a worker (``Ns3Uplink(...)``) to a configured scenario, the
coordinator's view, with a warm cache (the precompiled header exists):

- *fresh*: a new worker process (Python start, ns-3 import, owin-cosim's C++ code,
  scenario build);
- *pool, forked on request*: a child of the pool's fork server, forked when asked for (it
  builds the scenario then; the server rehearsed each scenario once before it was ready,
  so cppyy's call wrappers and cling's template instances exist already);
- *pool, prepared*: a child forked by ``pool.prepare(...)`` ``head start`` seconds
  earlier (what ``compare`` does: every policy's worker is prepared at once).

The fork server's own start (once per pool: ns-3's import and the rehearsal of both
scenarios) is reported beside. Medians of ``--reps``
runs; the machine's load average is printed, since these machines are shared.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Any

from bench_ns3 import ns3_devices, scenario
from results_file import write_section

from owin_cosim.network.base import NetworkRef
from owin_cosim.network.ns3.backend import Ns3Uplink
from owin_cosim.network.ns3.pool import worker_pool

BEGIN, END = "<!-- ns3-pool:begin -->", "<!-- ns3-pool:end -->"


def start_once(ns3: dict[str, Any]) -> float:
    """Seconds from asking for a worker to a configured scenario (then closed)."""
    s = scenario(ns3, 0.01)
    t = time.perf_counter()
    net = Ns3Uplink(s.network.ns3, ns3_devices(s), s.seed)
    took = time.perf_counter() - t
    net.close()
    return took


def measure(ns3: dict[str, Any], reps: int) -> dict[str, float]:
    fresh = statistics.median(start_once(ns3) for _ in range(reps))
    t = time.perf_counter()
    with worker_pool() as pool:
        server = time.perf_counter() - t
        forked = statistics.median(start_once(ns3) for _ in range(reps))
        s = scenario(ns3, 0.01)
        ref = NetworkRef("ns3", s.network.ns3, tuple(ns3_devices(s)), s.seed)
        head = forked + 1.0
        prepared = []
        for _ in range(reps):
            pool.prepare(ref)
            time.sleep(head)
            prepared.append(start_once(ns3))
    return {
        "fresh": fresh,
        "server": server,
        "forked": forked,
        "prepared": statistics.median(prepared),
        "head": head,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    wifi = {"scenario": "wifi-ax-uplink", "params": {"channel_width_mhz": 80}}
    lte = {"scenario": "lte-uplink", "params": {"ul_bandwidth_rbs": 50}}
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "## ns-3 worker pool: start-up (issue 10)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()} ({os.cpu_count()} "
        f"cores, load average {load} at the start), Python {platform.python_version()}, "
        "by `benchmarks/bench_ns3_pool.py`. Start-up = asking for a worker to a configured "
        f"scenario (4 devices), warm cache; medians of {args.reps} runs. *Prepared* = "
        "forked by `pool.prepare` a *head start* earlier (as `compare` does for every "
        "policy); *forked on request* builds the scenario after the request, in a child of a "
        "server that rehearsed both scenarios once (its start includes that). The machine "
        "is shared: other sessions' processes ran meanwhile.",
        "",
        "| scenario | fresh worker s | fork server start (once) s | pool, forked on request s "
        "| pool, prepared s (head start s) |",
        "|---|---|---|---|---|",
    ]
    for label, cfg in (("wifi-ax-uplink 80 MHz", wifi), ("lte-uplink 50 RBs", lte)):
        r = measure(cfg, args.reps)
        lines.append(
            f"| {label} | {r['fresh']:.2f} | {r['server']:.2f} | {r['forked']:.2f} | "
            f"{r['prepared']:.3f} ({r['head']:.1f}) |"
        )
    lines += [""]
    print(write_section(BEGIN, END, lines))


if __name__ == "__main__":
    main()
