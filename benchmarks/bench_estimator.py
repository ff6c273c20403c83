"""The estimator service's throughput with 20 concurrent clients, before and after hardening.

Run: ``.venv/bin/python benchmarks/bench_estimator.py [--before DIR] [--before-python PY]``
(about a minute). It rewrites the ``estimator`` section of ``benchmarks/RESULTS.md``.

"Before" is the single-threaded REP service of an older tree (default ``/tmp/work/before``,
commit 58b149d, whose estimator service is the same as 218c472's, run by its own venv's
Python from that directory); "after" is this tree's ROUTER service with its pool of
worker threads and the per-request checks. Each service gets its own cost cache, warmed
by one batch first, so every query is answered from the cache (the analytic backend):
the figure is the service's own overhead per query, not a backend's. 20 client threads,
each with its own REQ socket, send the same pre-encoded batch back to back for
``SECONDS``; queries/s is answers over time. The variants alternate, ``ROUNDS`` each,
and the figure is the median.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import yaml
import zmq
from results_file import write_section

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from owin_cosim.accel.service.protocol import TOKEN_ENV, layer_to_dict  # noqa: E402
from owin_cosim.workload.graph import conv2d, matmul  # noqa: E402

BEGIN, END = "<!-- estimator:begin -->", "<!-- estimator:end -->"
CLIENTS, SECONDS, ROUNDS, LAYERS = 20, 4.0, 5, 32


def _batch() -> bytes:
    spec = yaml.safe_load((REPO / "accel_specs" / "mc4.yaml").read_text())
    layers = [conv2d(f"c{i}", C=3 + i, M=16, P=14, Q=14) for i in range(LAYERS // 2)]
    layers += [matmul(f"m{i}", rows=8, in_features=64 + i, out_features=32) for i in range(16)]
    message = {"v": 1, "op": "estimate", "backend": "analytic", "spec": spec}
    message.update(options={"latency_scale": 1.0}, layers=[layer_to_dict(x) for x in layers])
    return json.dumps(message).encode()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ask(endpoint: str, frame: bytes, timeout_s: float = 30.0) -> dict[str, Any]:
    ctx: zmq.Context[Any] = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        sock.send(frame)
        if not sock.poll(int(timeout_s * 1000)):
            raise RuntimeError(f"no answer from {endpoint}")
        answer: dict[str, Any] = json.loads(sock.recv())
        return answer
    finally:
        sock.close(0)
        ctx.term()


class _Service:
    """One estimator process (``before`` or ``after``) with its own cache."""

    def __init__(self, variant: str, python: str, cwd: Path, cache: Path) -> None:
        self.variant = variant
        self.endpoint = f"tcp://127.0.0.1:{_free_port()}"
        self.token = secrets.token_hex(16)
        env = {**os.environ, "OWIN_COSIM_COST_CACHE": str(cache), TOKEN_ENV: self.token}
        env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen(
            [python, "-m", "owin_cosim.cli", "estimator", "--bind", self.endpoint],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:  # until it answers hello
            try:
                _ask(self.endpoint, b'{"v": 1, "op": "hello"}', 2.0)
                break
            except RuntimeError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            frame = json.dumps({"v": 1, "op": "shutdown", "token": self.token}).encode()
            try:
                _ask(self.endpoint, frame, 5.0)
                self.proc.wait(timeout=10)
            except (RuntimeError, subprocess.TimeoutExpired):
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
        self.proc.wait()


def _throughput(endpoint: str, frame: bytes) -> float:
    """Answers per second of ``CLIENTS`` threads sending ``frame`` back to back."""
    counts = [0] * CLIENTS
    start = threading.Barrier(CLIENTS + 1)
    stop = threading.Event()
    ctx: zmq.Context[Any] = zmq.Context()

    def client(i: int) -> None:
        sock = ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        start.wait()
        while not stop.is_set():
            sock.send(frame)
            answer = sock.recv()
            if b'"ok": true' not in answer:
                raise RuntimeError(answer[:200])
            counts[i] += 1
        sock.close(0)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    time.sleep(SECONDS)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    ctx.term()
    return sum(counts) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, default=Path("/tmp/work/before"))
    parser.add_argument("--before-python", default="/tmp/work/venv-before/bin/python")
    args = parser.parse_args()
    frame = _batch()
    variants = {
        "before": (args.before_python, args.before),
        "after": (sys.executable, REPO),
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="owin-bench-estimator-") as tmp:
        for r in range(ROUNDS):
            for name, (python, cwd) in variants.items():
                service = _Service(name, python, cwd, Path(tmp) / f"{name}.sqlite")
                try:
                    warm = _ask(service.endpoint, frame)  # fills the cache
                    assert warm["ok"], warm
                    rates[name].append(_throughput(service.endpoint, frame))
                finally:
                    service.stop()
                print(f"round {r + 1} {name}: {rates[name][-1]:.0f} queries/s", flush=True)
    before, after = (statistics.median(rates[n]) for n in ("before", "after"))
    lines = [
        "## Estimator service: 20 concurrent clients (warm cache)",
        "",
        f"`benchmarks/bench_estimator.py`, {date.today()}, {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}. {CLIENTS} client "
        f"threads (one REQ socket each) send the same {LAYERS}-layer analytic batch back "
        f"to back for {SECONDS:g} s; every answer comes from the service's warm cost "
        f"cache. Median of {ROUNDS} alternating runs per variant. Before: the "
        "single-threaded REP service of commit 58b149d (its service code is 218c472's); "
        "after: the ROUTER service with a pool of 4 worker threads, per-request checks, "
        "deadlines and the owner's token.",
        "",
        "| service | queries/s (median) | runs | ratio after / before |",
        "|---|---:|---|---:|",
        f"| before | {before:.0f} | {', '.join(f'{x:.0f}' for x in rates['before'])} | |",
        f"| after | {after:.0f} | {', '.join(f'{x:.0f}' for x in rates['after'])} "
        f"| {after / before:.2f} |",
        "",
        "Target: after >= 0.8 x before. A first cut of the new service measured 0.42: it "
        "looked the backend's entry point up and deep-copied every cost "
        "(`dataclasses.asdict`) for every query; the lookup now happens once per cost "
        "model and costs are encoded by `protocol.cost_to_dict`.",
        "",
        f"Load average at the end of the run: {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores (a shared machine).",
    ]
    print(write_section(BEGIN, END, lines))


if __name__ == "__main__":
    main()
