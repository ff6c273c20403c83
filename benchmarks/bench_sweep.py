"""Sweep throughput: 1 vs 2 local workers, and dask.distributed vs the local pool.

Run: ``.venv/bin/python benchmarks/bench_sweep.py [--repeats 3]`` (a few minutes). It
rewrites the ``sweep`` section of ``benchmarks/RESULTS.md``.

The sweep is the issue's form on the quickstart (3 latency scales x 2 RB counts x
RTFS/PACS x 2 seeds = 24 runs, analytic costs, no Gantt charts), run by
:func:`owin_cosim.study.sweep.run_sweep` into a fresh directory each time, with a private
cost cache filled once beforehand (so every variant sees warm costs). The time is the
whole call (pool or client start included); throughput = runs / time. The variants
alternate, each repeated, and the figures are medians. dask runs on a real
``dask scheduler`` and two ``dask worker --nthreads 1`` processes on loopback, started
once (their start is not timed); the local pool it is compared with has 2 workers.
Two dask clusters are compared: workers with the settings docs/sweep.md recommends for
sweeps (:data:`SWEEP_WORKER_ENV`: the statistical profiler off, the system monitor
every 10 s) and workers with dask's defaults. The machine's own ceiling is measured in
the same run: a pure-Python CPU loop in 1 vs 2 processes. The load average is recorded:
on a shared 2-core machine the numbers move.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import yaml
from results_file import write_section

from owin_cosim.study.executors import SWEEP_WORKER_ENV

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BEGIN, END = "<!-- sweep:begin -->", "<!-- sweep:end -->"
SWEEP = {
    "scenario": str(REPO / "examples" / "quickstart.yaml"),
    "policies": ["rtfs", "pacs"],
    "seeds": [1, 2],
    "grid": {"accelerator.latency_scale": [0.5, 1.0, 2.0], "network.ofdm.num_rbs": [25, 50]},
}


def _spin(n: int) -> int:
    """A pure-Python CPU loop (no I/O, no allocation to speak of)."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def _cpu_ceiling(repeats: int) -> float:
    """The machine's own 2- vs 1-process speed-up on 8 equal CPU-bound tasks (median)."""
    ratios = []
    ctx = multiprocessing.get_context("forkserver")
    for _ in range(repeats):
        took = []
        for procs in (1, 2):
            with ctx.Pool(procs) as pool:
                pool.map(_spin, [1000], chunksize=1)  # the processes are up
                t0 = time.perf_counter()
                pool.map(_spin, [3_000_000] * 8, chunksize=1)
                took.append(time.perf_counter() - t0)
        ratios.append(took[0] / took[1])
    return statistics.median(ratios)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _dask_cluster(workdir: Path, env: dict[str, str]) -> Iterator[str]:
    dask = str(Path(sys.executable).parent / "dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = {
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
        "cwd": workdir,
        "env": {**os.environ, **env},
    }
    procs = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            **quiet,  # type: ignore[call-overload]
        )
    ]
    try:
        for _ in range(2):
            cmd = [dask, "worker", address, "--nthreads", "1", "--host", "127.0.0.1"]
            procs.append(subprocess.Popen([*cmd, "--no-dashboard"], **quiet))  # type: ignore[call-overload]
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)


def _time(sweep: Path, root: Path, **how: object) -> tuple[float, float]:
    """(whole call, run phase): the run phase starts once every run is checked and the
    directory is ready (``on_start``) and includes the pool or client start."""
    from owin_cosim.study.sweep import run_sweep

    out = Path(tempfile.mkdtemp(dir=root))
    shutil.rmtree(out)
    started: list[float] = []
    t0 = time.perf_counter()
    report = run_sweep(
        sweep,
        out,
        on_start=lambda *_: started.append(time.perf_counter()),
        **how,  # type: ignore[arg-type]
    )
    end = time.perf_counter()
    assert report.ran == report.runs and report.failed == 0, report
    shutil.rmtree(out)
    return end - t0, end - started[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    os.environ["OWIN_COSIM_COST_CACHE"] = str(root / "costs.sqlite")  # inherited by workers
    sweep = root / "sweep.yaml"
    sweep.write_text(yaml.safe_dump(SWEEP), encoding="utf-8")
    runs = 24
    load_before = os.getloadavg()
    _time(sweep, root, workers=2)  # fills the cost cache
    ceiling = _cpu_ceiling(args.repeats)
    tuned, default = "dask (2 workers)", "dask, default worker settings"
    times: dict[str, list[float]] = {"1 worker": [], "2 workers": [], tuned: [], default: []}
    phase: dict[str, list[float]] = {k: [] for k in times}
    try:
        with _dask_cluster(root, SWEEP_WORKER_ENV) as fast, _dask_cluster(root, {}) as plain:
            for address in (fast, plain):
                _time(sweep, root, scheduler=address)  # the dask workers import owin-cosim
            for i in range(args.repeats):
                for key, how in (
                    ("1 worker", {"workers": 1}),
                    ("2 workers", {"workers": 2}),
                    (tuned, {"scheduler": fast}),
                    (default, {"scheduler": plain}),
                ):
                    whole, running = _time(sweep, root, **how)
                    times[key].append(whole)
                    phase[key].append(running)
                print(i, {k: round(v[-1], 2) for k, v in times.items()}, flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load_after = os.getloadavg()
    med = {k: statistics.median(v) for k, v in times.items()}
    pmed = {k: statistics.median(v) for k, v in phase.items()}
    ratio = med["1 worker"] / med["2 workers"]
    overhead = med[tuned] / med["2 workers"] - 1.0
    plain_overhead = med[default] / med["2 workers"] - 1.0
    lines = [
        "## Sweep throughput (`benchmarks/bench_sweep.py`)",
        "",
        f"{date.today()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (a shared machine).",
        f"The issue's sweep form on the quickstart: {runs} runs (analytic costs, warm cost "
        f"cache, no Gantt charts); medians of {args.repeats} alternating repeats, whole "
        "`run_sweep` call.",
        "",
        "| executor | wall s (median) | run phase s (median) | runs/s in the run phase | "
        "wall s (best) | all wall s |",
        "|---|---|---|---|---|---|",
    ]
    for k, v in times.items():
        every = ", ".join(f"{x:.2f}" for x in v)
        lines.append(
            f"| {k} | {med[k]:.2f} | {pmed[k]:.2f} | {runs / pmed[k]:.2f} | {min(v):.2f} "
            f"| {every} |"
        )
    best_ratio = min(times["1 worker"]) / min(times["2 workers"])
    best_overhead = min(times[tuned]) / min(times["2 workers"]) - 1.0
    lines += [
        "",
        f"Speed-up 2 vs 1 worker: **{ratio:.2f}x** (target >= 1.7; the machine's own "
        f"ceiling, a CPU loop in 2 vs 1 processes measured in the same run: {ceiling:.2f}x). "
        f"dask vs the local pool (2 workers each, the recommended worker settings of "
        f"docs/sweep.md): **{overhead * 100:+.1f} %** (target <= 10 %); with dask's default "
        f"worker settings {plain_overhead * 100:+.1f} %. From the best "
        f"repeats (least disturbed by the other load): {best_ratio:.2f}x and "
        f"{best_overhead * 100:+.1f} %. Run phase only (without reading and checking the "
        f"sweep): {pmed['1 worker'] / pmed['2 workers']:.2f}x and "
        f"{(pmed[tuned] / pmed['2 workers'] - 1) * 100:+.1f} %.",
    ]
    print(write_section(BEGIN, END, lines))


if __name__ == "__main__":
    main()
