"""Nothing lost, nothing done twice: a sweep after SIGKILL of a worker, SIGINT and SIGKILL
of the sweep process (counting rows and run directories)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from tests.conftest import scenario_dict, write_scenario

#: 12 runs of the tiny scenario.
SWEEP = {
    "scenario": "base.yaml",
    "policies": ["rtfs", "pacs"],
    "grid": {"network.ofdm.num_rbs": [5, 10, 20], "accelerator.latency_scale": [1.0, 2.0]},
}
RUNS = 12
#: A run's hidden working directory: ``.<run_id>.tmp-<pid>-<random>``.
_WORKING = re.compile(r"^\.[0-9a-f]{16}\.tmp-(\d+)-")


def _setup(tmp: Path) -> Path:
    write_scenario(tmp / "base.yaml", scenario_dict())
    path = tmp / "sweep.yaml"
    path.write_text(yaml.safe_dump(SWEEP), encoding="utf-8")
    return path


def _start(sweep: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    """The sweep command; its output in files (workers orphaned by a kill keep them open)."""
    cmd = [sys.executable, "-m", "owin_cosim.cli", "sweep", str(sweep), "--out", str(out)]
    n = len(list(out.parent.glob("log-*.out")))
    with (
        (out.parent / f"log-{n}.out").open("w") as so,
        (out.parent / f"log-{n}.err").open("w") as se,
    ):
        return subprocess.Popen([*cmd, "--workers", "2", *extra], stdout=so, stderr=se, text=True)


def _output(proc: subprocess.Popen[str], out: Path, timeout: float) -> tuple[str, str]:
    """Wait for ``proc``; its stdout and stderr."""
    proc.wait(timeout)
    n = len(list(out.parent.glob("log-*.out"))) - 1
    return (out.parent / f"log-{n}.out").read_text(), (out.parent / f"log-{n}.err").read_text()


def _done(out: Path) -> dict[str, int]:
    """Complete run directories -> the mtime of their summary.json."""
    runs = out / "runs"
    if not runs.is_dir():
        return {}
    found = {}
    for e in os.listdir(runs):
        summary = runs / e / "summary.json"
        if not e.startswith(".") and summary.is_file():
            found[e] = summary.stat().st_mtime_ns
    return found


def _working_pids(out: Path) -> set[int]:
    runs = out / "runs"
    names = os.listdir(runs) if runs.is_dir() else []
    return {int(m[1]) for e in names if (m := _WORKING.match(e))}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait(cond: object, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if callable(cond) and cond():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _check_complete(out: Path) -> None:
    """Every run once: RUNS rows, RUNS directories, all complete, no leftovers."""
    rows = pq.read_table(out / "results.parquet").to_pylist()
    assert len(rows) == RUNS and len({r["run_id"] for r in rows}) == RUNS
    assert {r["status"] for r in rows} == {"ok"}
    entries = os.listdir(out / "runs")
    assert sorted(entries) == sorted(r["run_id"] for r in rows)  # no hidden leftovers
    assert len(_done(out)) == RUNS


def test_sigkill_of_a_worker_loses_nothing(tmp_path: Path) -> None:
    sweep, out = _setup(tmp_path), tmp_path / "out"
    proc = _start(sweep, out)
    try:
        _wait(lambda: _working_pids(out) or proc.poll() is not None, 120, "a running run")
        victims = _working_pids(out)
        assert victims, proc.communicate()
        os.kill(min(victims), signal.SIGKILL)
        _, stderr = _output(proc, out, 300)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    _check_complete(out)


def test_sigint_and_sigkill_of_the_sweep_then_resume(tmp_path: Path) -> None:
    sweep, out = _setup(tmp_path), tmp_path / "out"
    proc = _start(sweep, out)
    try:
        _wait(lambda: len(_done(out)) >= 2 or proc.poll() is not None, 120, "two runs")
        proc.send_signal(signal.SIGINT)
        _, stderr = _output(proc, out, 60)
    finally:
        proc.kill()
    if len(_done(out)) < RUNS:  # (on an idle machine the sweep may have finished first)
        assert proc.returncode == 130 and "interrupted" in stderr, stderr
        assert "Traceback" not in stderr
    kept = _done(out)
    rows = pq.read_table(out / "results.parquet").to_pylist()
    assert sorted(r["run_id"] for r in rows) == sorted(kept)  # the table has every kept run

    proc = _start(sweep, out)
    workers: set[int] = set()  # every worker seen at work

    def two_more() -> bool:
        workers.update(_working_pids(out))
        return len(_done(out)) >= len(kept) + 2 or proc.poll() is not None

    try:
        _wait(two_more, 120, "runs")
        proc.kill()  # SIGKILL: no cleanup at all
        proc.wait(30)
    finally:
        proc.kill()
    # Workers orphaned by the kill notice it and exit (busy or idle); then resume.
    assert workers
    _wait(lambda: not any(_alive(p) for p in workers | _working_pids(out)), 60, "orphans")
    before = _done(out)
    proc = _start(sweep, out, "--resume")
    stdout, stderr = _output(proc, out, 300)
    assert proc.returncode == 0, stderr
    assert f"{len(before)} done already" in stdout and f"{RUNS - len(before)} ran" in stdout
    after = _done(out)
    assert {k: after[k] for k in before} == before  # nothing done twice
    _check_complete(out)
