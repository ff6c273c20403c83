"""A whole sweep: read and check the sweep file, run what is not done, keep the table.

:func:`run_sweep` is what ``owin-cosim sweep`` does. Every point's scenario is validated
before anything runs; the store (:mod:`owin_cosim.study.store`) says which runs are
done, and only the others are handed to the executor (resume is the normal path: the
same command again, or a changed sweep file, reruns only runs whose frozen scenario is
new, plus those that failed). The tables are rewritten atomically as runs finish (at
most once a second) and rebuilt from the run directories at the end, also after an
interrupt or a failure.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from owin_cosim.errors import ConfigError
from owin_cosim.scenario.schema import load_scenario
from owin_cosim.study.executors import DaskPool, Executor, LocalPool, make_executor
from owin_cosim.study.points import Run, resolve_runs
from owin_cosim.study.progress import SweepProgress
from owin_cosim.study.store import SweepStore
from owin_cosim.study.sweep_file import SweepFile, load_sweep_file
from owin_cosim.study.table import build_table, write_tables

__all__ = ["SweepReport", "resolved_doc", "run_sweep"]

#: Shortest time between two intermediate rewrites of the tables.
_TABLE_EVERY_S = 1.0


@dataclass
class SweepReport:
    """What a sweep did."""

    points: int
    runs: int
    #: Runs done before this sweep started (skipped).
    skipped: int
    ran: int
    failed: int
    #: The first failure's message (``--fail-fast``), or ``""``.
    first_error: str
    out: Path


def resolved_doc(sweep: SweepFile, file: Path, runs: list[Run]) -> dict[str, Any]:
    """The content of ``sweep.resolved.json`` (what ``owin-cosim plot`` reads)."""
    axes = sweep.axis_keys()
    values: dict[str, list[Any]] = {k: [] for k in axes}
    for r in runs:
        for k, v in r.values:
            if v not in values[k]:
                values[k].append(v)
    base = runs[0] if runs else None
    return {
        "sweep_file": str(file.resolve()),
        "scenario": str((file.parent / sweep.scenario).resolve()),
        "axes": [{"key": k, "values": values[k]} for k in axes],
        "policies": sorted({r.policy for r in runs}, key=[r.policy for r in runs].index),
        "seeds": sorted({r.seed for r in runs}, key=[r.seed for r in runs].index),
        "points": len({r.point for r in runs}),
        "runs": len(runs),
        "scenario_name": base.scenario["name"] if base else None,
    }


def run_sweep(
    sweep_file: str | Path,
    out: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    fail_fast: bool = False,
    plot: bool = False,
    on_start: Callable[[int, int, int], None] | None = None,
) -> SweepReport:
    """Run the sweep ``sweep_file`` into ``out`` (see the module docstring).

    ``on_start(points, runs, skipped)`` is called once everything is checked, before
    the first run starts.

    Raises
    ------
    ConfigError
        For a bad sweep file, axis, point or ``--out`` (before anything runs).
    BackendUnavailableError
        For ``scheduler`` without dask.distributed, or a scheduler that cannot be reached.
    """
    file = Path(sweep_file)
    sweep = load_sweep_file(file)
    early = _early_pool(sweep, file, out, workers, scheduler, plot)
    try:
        points, runs = resolve_runs(sweep, file)
        with SweepStore.open(out, resume) as store:
            store.write("sweep.yaml", file.read_bytes())
            doc = resolved_doc(sweep, file, runs)
            store.write("sweep.resolved.json", (json.dumps(doc, indent=2) + "\n").encode())
            unique = list({r.run_id: r for r in runs}.values())  # equal content runs once
            todo = [r for r in unique if store.status(r.run_id) != "ok"]
            skipped = len(unique) - len(todo)
            if on_start is not None:
                on_start(len(points), len(runs), skipped)
            report = SweepReport(len(points), len(runs), skipped, 0, 0, "", store.out)
            axes = sweep.axis_keys()
            try:
                if todo:
                    with _ns3_pool(todo, scheduler):
                        # absolute: workers (dask's too) may run in another working directory
                        where = str(store.out.absolute())
                        executor = early or make_executor(where, workers, scheduler, plot)
                        early = None  # _execute closes it
                        _execute(todo, store, runs, axes, report, executor, fail_fast)
            finally:
                write_tables(build_table(runs, axes, store), store)
    finally:
        if early is not None:  # not used (a bad point, nothing to do): stop its workers
            early.close(abort=True)
    return report


def _early_pool(
    sweep: SweepFile,
    file: Path,
    out: str | Path,
    workers: int | None,
    scheduler: str | None,
    plot: bool,
) -> LocalPool | DaskPool | None:
    """The executor, started now (while the points are checked), when it is safe: the
    dask client always (the cluster's workers are not ours); the local pool when no run
    can need a local ns-3 worker pool (whose announcement the workers must inherit, so
    they start after it)."""
    where = str(Path(out).absolute())  # workers may run in another working directory
    if scheduler is not None:
        client = make_executor(where, workers, scheduler, plot)
        assert isinstance(client, DaskPool)  # a scheduler: the dask client
        client.start_soon()
        return client
    switches = ("network", "network.backend")  # axes that could choose ns-3
    if any(k in switches for k in sweep.axis_keys()):
        return None
    path = file.parent / sweep.scenario
    try:
        if load_scenario(path.resolve()).network.backend == "ns3":
            return None
    except ConfigError:
        return None  # resolve_runs says what is wrong with it
    pool = make_executor(where, workers, None, plot)
    assert isinstance(pool, LocalPool)  # no scheduler: the local pool
    pool.start_soon()
    return pool


def _ns3_pool(todo: list[Run], scheduler: str | None) -> AbstractContextManager[object]:
    """The ns-3 worker pool (a fresh forked child per run, ns-3 imported once) for runs
    on a local ns-3 worker; local pool workers inherit it through the environment."""
    uses_ns3 = any(
        r.scenario["network"]["backend"] == "ns3"
        and not r.scenario["network"]["ns3"].get("endpoint")
        for r in todo
    )
    if scheduler is not None or not uses_ns3:
        return contextlib.nullcontext()
    from owin_cosim.network.ns3.pool import worker_pool

    return worker_pool()


def _execute(
    todo: list[Run],
    store: SweepStore,
    runs: list[Run],
    axes: list[str],
    report: SweepReport,
    executor: Executor,
    fail_fast: bool,
) -> None:
    last = time.monotonic()
    abort = True
    try:
        executor.ready()  # a scheduler that cannot be reached: said before any progress
        with SweepProgress(report.runs, report.skipped) as bar:
            for outcome in executor.results(todo):
                ok = outcome["status"] == "ok"
                report.ran += 1
                report.failed += not ok
                bar.advance(ok)
                if time.monotonic() - last >= _TABLE_EVERY_S:
                    write_tables(build_table(runs, axes, store), store)
                    last = time.monotonic()
                if not ok and fail_fast:
                    report.first_error = f"{outcome['run_id']}: {outcome['error']}"
                    break
        abort = report.first_error != ""
    finally:
        executor.close(abort)
