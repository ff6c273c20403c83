"""Run ZigZag's own mapping search on one layer, isolated in a child process.

ZigZag writes dump folders (``outputs/...``), pickles and plots into the working
directory and calls ``logging.basicConfig`` inside its API. So each call runs
``python -m owin_cosim.accel.zigzag.runner DIR`` in its own process group, working in a
fresh temporary directory ``DIR`` that holds its inputs (the three YAML documents and
``job.json``), its dumps, its captured stdout, stderr and log, and its answer
(``result.json``). The directory is removed afterwards whatever happens; on a timeout,
an error or ``KeyboardInterrupt`` the whole process group is killed first.

The child calls :func:`zigzag.api.get_hardware_performance_zigzag` (LOMA temporal
mapping search, ``opt="latency"``) and answers with :func:`~.parse.summarize` of the
best mapping found.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from owin_cosim.errors import BackendError

__all__ = ["main", "run_zigzag"]

_TAIL_LINES = 12


def _write_inputs(work: Path, job: dict[str, Any]) -> None:
    for key in ("hardware", "mapping", "workload"):
        (work / f"{key}.yaml").write_text(yaml.safe_dump(job[key], sort_keys=False))
    (work / "job.json").write_text(json.dumps(job["settings"], sort_keys=True))


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-_TAIL_LINES:])


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _child_env() -> dict[str, str]:
    # The child must import this very copy of owin_cosim (editable or not).
    root = str(Path(__file__).resolve().parents[3])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def run_zigzag(job: dict[str, Any], *, timeout_s: float, what: str) -> dict[str, Any]:
    """Run ZigZag on one layer in a child process; return its :func:`~.parse.summarize`.

    Parameters
    ----------
    job : dict
        ``hardware``, ``mapping`` and ``workload`` (ZigZag's documents) and ``settings``
        (``lpf_limit``, ``spatial_candidates``, ``word_bits``, ``dram``).
    timeout_s : float
        Longest wall time of the child; it is killed after that.
    what : str
        Names the layer in error messages.

    Raises
    ------
    BackendError
        When ZigZag fails, answers nothing or runs out of time.
    """
    with tempfile.TemporaryDirectory(prefix="owin-zigzag-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        _write_inputs(work, job)
        with open(work / "stdout.txt", "wb") as out, open(work / "stderr.txt", "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "owin_cosim.accel.zigzag.runner", str(work)],
                cwd=work,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=_child_env(),
                start_new_session=True,
            )
            try:
                rc = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill(proc)
                raise BackendError(
                    f"zigzag: no answer for layer {what} within {timeout_s:g} s (stopped); "
                    "raise accelerator.zigzag.timeout_s or lower accelerator.zigzag.lpf_limit"
                ) from None
            finally:
                _kill(proc)  # also on KeyboardInterrupt; a no-op once it has exited
        result = work / "result.json"
        if rc != 0 or not result.is_file():
            detail = _tail(work / "stderr.txt") or _tail(work / "zigzag.log") or "no output"
            raise BackendError(f"zigzag failed on layer {what} (exit status {rc}):\n{detail}")
        answer: dict[str, Any] = json.loads(result.read_text())
        return answer


def _search(work: Path) -> dict[str, Any]:
    from zigzag.api import get_hardware_performance_zigzag

    from owin_cosim.accel.zigzag.parse import summarize

    settings = json.loads((work / "job.json").read_text())
    start = time.perf_counter()
    _, _, cmes = get_hardware_performance_zigzag(
        str(work / "workload.yaml"),
        str(work / "hardware.yaml"),
        str(work / "mapping.yaml"),
        opt="latency",
        dump_folder=str(work / "outputs"),
        lpf_limit=int(settings["lpf_limit"]),
        nb_spatial_mappings_generated=int(settings["spatial_candidates"]),
        loma_show_progress_bar=False,
    )
    best = cmes[0][1][0][0]  # (sum over layers, [(the one layer's best CME, info)])
    summary = summarize(best, int(settings["word_bits"]), str(settings["dram"]))
    summary["search_s"] = time.perf_counter() - start
    return summary


def main(argv: list[str] | None = None) -> int:
    """The child process: ``python -m owin_cosim.accel.zigzag.runner DIR``."""
    work = Path((argv if argv is not None else sys.argv[1:])[0])
    # A handler on the root logger first: ZigZag's own basicConfig is then a no-op.
    handler = logging.FileHandler(work / "zigzag.log")
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    summary = _search(work)
    tmp = work / "result.json.tmp"
    tmp.write_text(json.dumps(summary, sort_keys=True))
    tmp.replace(work / "result.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
