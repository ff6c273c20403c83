"""One run of a sweep, carried out into its own results directory (in a worker).

:func:`run_one` takes a :class:`~owin_cosim.study.points.Run` (plain data) and writes
``DIR/runs/<run_id>/`` exactly as ``owin-cosim run`` writes a results directory
(:func:`owin_cosim.results.writers.write_results`, atomic), plus ``scenario.json`` (the
frozen scenario), ``run.json`` (point, policy, seed, axis values, wall time) and, for a
point with chip-spec axes, ``spec.yaml``. A run that fails writes, just as atomically,
``error.json`` (``{"error": message, "kind": exception type}``: the message ``run``
prints) and no ``summary.json``. ``summary.json`` is written last, inside the hidden
directory that is swapped into place: a run directory with it is complete.

Nothing is shared between runs: each builds its own problem and network backend (its
own sockets and ns-3 worker, closed on every exit path), writes its modified spec into
its own hidden temporary directory (removed, or left to
:func:`owin_cosim.results.safety.recover` after a kill), and opens the cost cache through
its own process's connection (SQLite WAL is safe across processes). Runs in the same
process (threads of one dask worker) take turns.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from owin_cosim import __version__
from owin_cosim.results.safety import atomic_directory
from owin_cosim.results.writers import write_json, write_results
from owin_cosim.scenario.schema import Scenario
from owin_cosim.study.points import SPEC_FILE, Run

__all__ = ["ERROR_FILE", "RUN_FILE", "SCENARIO_FILE", "record_failure", "run_one", "run_path"]

SCENARIO_FILE = "scenario.json"
RUN_FILE = "run.json"
ERROR_FILE = "error.json"
#: One run at a time per process (a dask worker may have several threads).
_ONE_AT_A_TIME = threading.Lock()
#: Whether this process is carrying out a run (a worker's SIGINT handler reads it).
ACTIVE = False


def run_path(out_dir: str | Path, run_id: str) -> Path:
    """``DIR/runs/<run_id>``."""
    return Path(out_dir) / "runs" / run_id


def _run_doc(run: Run, wall_s: float | None) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "point": run.point,
        "policy": run.policy,
        "seed": run.seed,
        "values": [[k, v] for k, v in run.values],
        "wall_s": wall_s,
        "owin_cosim": __version__,
    }


def _inputs(tmp: Path, run: Run, wall_s: float | None) -> None:
    """The run's inputs beside its results: frozen scenario, spec, run record."""
    write_json(tmp / SCENARIO_FILE, run.scenario)
    if run.spec is not None:
        (tmp / SPEC_FILE).write_text(yaml.safe_dump(run.spec, sort_keys=False), "utf-8")
    write_json(tmp / RUN_FILE, _run_doc(run, wall_s))


def _scenario(run: Run, work: Path) -> Scenario:
    """The frozen scenario as an object; its modified spec written into ``work``."""
    doc = run.scenario
    if run.spec is not None:
        # absolute: a relative path would be read beside the scenario's source
        spec = (work / SPEC_FILE).absolute()
        spec.write_text(yaml.safe_dump(run.spec, sort_keys=False), "utf-8")
        doc = {**doc, "accelerator": {**doc["accelerator"], "spec": str(spec)}}
    return Scenario.model_validate(doc).with_source(run.source)


def record_failure(run: Run, target: Path, exc: Exception) -> dict[str, Any]:
    """Write the failed run's directory (``error.json``, atomically); its outcome."""
    error = {"error": str(exc), "kind": type(exc).__name__}
    with atomic_directory(target, f"runs/{run.run_id}") as tmp:
        _inputs(tmp, run, None)
        write_json(tmp / ERROR_FILE, error)
    return {"run_id": run.run_id, "status": "failed", **error}


def run_one(run: Run, out_dir: str, plot: bool = False) -> dict[str, Any]:
    """Carry out ``run`` into ``DIR/runs/<run_id>``; returns its outcome (plain data).

    The outcome is ``{"run_id", "status": "ok" | "failed", "error", "kind"}``. Errors
    of the run are recorded (``error.json``) and returned, not raised;
    :class:`KeyboardInterrupt` is raised after the run's temporary files are removed.
    """
    from owin_cosim import api

    global ACTIVE
    target = run_path(out_dir, run.run_id)
    with _ONE_AT_A_TIME:
        ACTIVE = True
        target.parent.mkdir(parents=True, exist_ok=True)
        # A sibling named like atomic_directory's: recover() removes it after a kill.
        work = Path(tempfile.mkdtemp(prefix=f".{run.run_id}.tmp-{os.getpid()}-", dir=target.parent))
        try:
            t0 = time.perf_counter()
            result = api.run(_scenario(run, work), policy=run.policy)
            wall = time.perf_counter() - t0
            write_results(
                result,
                target,
                plot=plot,
                key=f"runs/{run.run_id}",
                extra=lambda tmp: _inputs(tmp, run, wall),
            )
        except Exception as exc:  # every failure of a run is recorded, the sweep goes on
            return record_failure(run, target, exc)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            ACTIVE = False
    return {"run_id": run.run_id, "status": "ok", "error": "", "kind": ""}
