"""Writing a run's results directory, atomically.

A results directory holds ``summary.json``, ``events.csv`` (long form: one row per chunk
transmission and per layer execution), ``plan.json`` (the plan, readable by
``owin-cosim run --plan``; see :mod:`owin_cosim.system.plan_file`), ``trace.json``
(Chrome/Perfetto), ``gantt.png`` and the marker ``.owin-cosim-results``. Everything is
written into a hidden sibling directory first and swapped into place only when
complete, so an interrupted or failed run never leaves a directory that looks like a
result, and an earlier result at the same place is replaced only by a complete new one
(and only if owin-cosim wrote it: see :mod:`owin_cosim.results.safety`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from owin_cosim.results.records import RunResult
from owin_cosim.results.safety import atomic_directory
from owin_cosim.results.trace import chrome_trace
from owin_cosim.system.plan_file import write_plan_doc

__all__ = ["CSV_COLUMNS", "atomic_directory", "write_json", "write_results"]

#: Columns of ``events.csv``.
CSV_COLUMNS = (
    "kind",
    "name",
    "device",
    "modality",
    "group",
    "chunk",
    "core",
    "bytes",
    "ready_s",
    "start_s",
    "end_s",
    "cycles",
    "macs",
    "energy_pJ",
    "noc_energy_pJ",
    "utilization",
    "lost_bytes",
    "cores",
    "core_type",
    "split",
    "dram_bytes",
)


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented, key-sorted JSON (stable bytes for the same data)."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _rows(result: RunResult) -> Iterator[dict[str, Any]]:
    for c in result.chunks:
        yield {
            "kind": "tx",
            "name": f"{c.device}#{c.chunk}",
            "device": c.device,
            "modality": c.modality,
            "chunk": c.chunk,
            "bytes": c.nbytes,
            "ready_s": c.submit_s,
            "start_s": c.first_byte_s,
            "end_s": c.last_byte_s,
            "lost_bytes": c.lost_bytes,
        }
    for r in result.layers:
        yield {
            "kind": "layer",
            "name": r.layer,
            "group": r.group,
            "core": r.core,
            "ready_s": r.ready_s,
            "start_s": r.start_s,
            "end_s": r.end_s,
            "cycles": r.cycles,
            "macs": r.macs,
            "energy_pJ": r.energy_pJ,
            "noc_energy_pJ": r.noc_energy_pJ,
            "utilization": r.utilization,
            "cores": ";".join(str(c) for c in (r.cores or (r.core,))),
            "core_type": r.core_type,
            "split": r.split,
            "dram_bytes": r.dram_bytes,
        }


def write_results(
    result: RunResult,
    out_dir: str | Path,
    *,
    plot: bool = True,
    extra: Callable[[Path], None] | None = None,
    key: str = "out_dir",
) -> Path:
    """Write the results directory of ``result`` at ``out_dir`` (atomically).

    ``out_dir`` may only be absent, empty or a results directory owin-cosim wrote;
    anything else is refused with a :class:`~owin_cosim.errors.ConfigError` naming
    ``key`` (see :mod:`owin_cosim.results.safety`).
    """
    out = Path(out_dir)
    with atomic_directory(out, key) as tmp:
        with (tmp / "events.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, lineterminator="\n")
            writer.writeheader()
            for row in _rows(result):
                writer.writerow(
                    {k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()}
                )
        if result.plan_file:
            write_plan_doc(tmp / "plan.json", result.plan_file)
        write_json(tmp / "trace.json", chrome_trace(result))
        if plot:
            from owin_cosim.results.gantt import plot_gantt  # matplotlib: only to draw

            plot_gantt(result, tmp / "gantt.png")
        if extra is not None:
            extra(tmp)
        write_json(tmp / "summary.json", result.summary())
    return out
