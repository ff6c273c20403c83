"""The files of a search: ``convergence.csv`` (one row per evaluation) and the summary
``optimize.json``; the plan itself is written by :mod:`owin_cosim.system.plan_file`.

>>> import io
>>> from owin_cosim.optimize.search import LogRow
>>> buf = io.StringIO()
>>> write_convergence(buf, [LogRow(0, 0.5, 0.5, True, "start")])
>>> buf.getvalue()
'evaluation,makespan_s,best_s,accepted,move\\n0,0.5,0.5,1,start\\n'
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, TextIO

from owin_cosim.optimize.search import LogRow, SearchResult
from owin_cosim.system.problem import Problem

__all__ = ["CONVERGENCE_COLUMNS", "summary_doc", "write_convergence", "write_convergence_file"]

CONVERGENCE_COLUMNS = ("evaluation", "makespan_s", "best_s", "accepted", "move")


def write_convergence(out: TextIO, log: list[LogRow]) -> None:
    """The convergence log as CSV (floats as ``repr``: the same bytes for the same log)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CONVERGENCE_COLUMNS)
    for row in log:
        writer.writerow(
            [row.evaluation, repr(row.makespan_s), repr(row.best_s), int(row.accepted), row.move]
        )


def write_convergence_file(path: Path, log: list[LogRow]) -> None:
    """:func:`write_convergence` into the file ``path``."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        write_convergence(fh, log)


def summary_doc(
    problem: Problem,
    result: SearchResult,
    *,
    start: str,
    seed: int,
    budget: int | None,
    time_s: float | None,
    check: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The content of ``optimize.json``.

    ``wall_s`` is the search's wall time: the one entry that differs between two runs
    of the same search (and, with ``time_s``, so may everything else).
    """
    return {
        "scenario": problem.name,
        "scenario_seed": problem.seed,
        "network": "planning",
        "start": start,
        "start_makespan_s": result.start_s,
        "best_makespan_s": result.best_s,
        "improvement": result.improvement,
        "evaluations": result.evaluations,
        "seed": seed,
        "budget": budget,
        "time_s": time_s,
        "wall_s": result.wall_s,
        "check": check,
    }
