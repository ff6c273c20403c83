"""``results.parquet`` and ``results.csv``: one row per (point, policy, seed) of a sweep.

Columns, in this order (``docs/sweep.md``): ``run_id``, ``point``, ``policy``, ``seed``,
``status`` (``"ok"`` or ``"failed"``), ``error`` (``""`` when ok); one column per axis,
named by its key path as written in the sweep file, with the value as given; then
:data:`RESULT_COLUMNS` (floats, null for a failed run; ``optimum_s`` null unless a run
reports one; every ok row of a point and seed gets the optimum one of them reports,
e.g. policy ``exact``'s), ``wall_s`` (the only machine-dependent column) and ``run_dir`` (relative
to the sweep directory). Rows follow the expansion order; runs not finished yet have no
row. Both files are written atomically, rebuilt from the run directories.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from owin_cosim.study.points import Run
from owin_cosim.study.store import SweepStore

__all__ = ["LEAD_COLUMNS", "RESULT_COLUMNS", "build_table", "write_tables"]

LEAD_COLUMNS = ("run_id", "point", "policy", "seed", "status", "error")
#: The numeric result columns (from ``summary.json``).
RESULT_COLUMNS = (
    "makespan_s",
    "lower_bound_s",
    "gap_to_lower_bound",
    "last_upload_s",
    "energy_J_total",
    "energy_J_radio",
    "energy_J_accelerator",
    "energy_J_noc",
    "optimum_s",
)


def _axis_type(values: Sequence[Any]) -> pa.DataType:
    if all(isinstance(v, bool) for v in values):
        return pa.bool_()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pa.int64()
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return pa.float64()
    return pa.string()


def _as(value: Any, typ: pa.DataType) -> Any:
    if typ == pa.float64():
        return float(value)
    if typ == pa.string() and not isinstance(value, str):
        return str(value)
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _results(summary: Mapping[str, Any] | None) -> dict[str, float | None]:
    if summary is None:
        return dict.fromkeys(RESULT_COLUMNS)
    energy = summary.get("energy_J") or {}
    out = {k: _number(summary.get(k)) for k in RESULT_COLUMNS if not k.startswith("energy_J")}
    if out["optimum_s"] is None:  # policy exact reports it in its plan's notes
        out["optimum_s"] = _number((summary.get("plan") or {}).get("optimum_s"))
    for part in ("total", "radio", "accelerator", "noc"):
        out[f"energy_J_{part}"] = _number(energy.get(part))
    return {k: out[k] for k in RESULT_COLUMNS}


def _share_optimum(rows: list[dict[str, Any]]) -> None:
    """Give every ok row the optimum that a run of the same point and seed reports.

    The optimum is of the (point, seed)'s problem, not of a policy: the gap of RTFS,
    PACS and owin to it is read from their own rows.

    >>> rows = [{"point": 0, "seed": 1, "status": "ok", "optimum_s": None},
    ...         {"point": 0, "seed": 1, "status": "ok", "optimum_s": 2.0}]
    >>> _share_optimum(rows); rows[0]["optimum_s"]
    2.0
    """
    known: dict[tuple[int, int], float] = {}
    for row in rows:
        if row["optimum_s"] is not None:
            known.setdefault((row["point"], row["seed"]), row["optimum_s"])
    for row in rows:
        if row["status"] == "ok" and row["optimum_s"] is None:
            row["optimum_s"] = known.get((row["point"], row["seed"]))


def build_table(runs: Sequence[Run], axes: Sequence[str], store: SweepStore) -> pa.Table:
    """The table of every finished run of ``runs`` (read from ``store``)."""
    all_values = {k: [dict(r.values)[k] for r in runs] for k in axes}
    types = {k: _axis_type(v) for k, v in all_values.items()}
    rows: list[dict[str, Any]] = []
    for r in runs:
        rec = store.record(r.run_id)
        if rec["status"] is None:
            continue
        ok = rec["status"] == "ok"
        values = dict(r.values)
        row: dict[str, Any] = {
            "run_id": r.run_id,
            "point": r.point,
            "policy": r.policy,
            "seed": r.seed,
            "status": rec["status"],
            "error": "" if ok else str((rec["error"] or {}).get("error", "")),
            **{k: _as(values[k], types[k]) for k in axes},
            **_results(rec["summary"] if ok else None),
            "wall_s": _number((rec["run"] or {}).get("wall_s")) if ok else None,
            "run_dir": f"runs/{r.run_id}",
        }
        rows.append(row)
    _share_optimum(rows)
    fields = [
        pa.field("run_id", pa.string()),
        pa.field("point", pa.int64()),
        pa.field("policy", pa.string()),
        pa.field("seed", pa.int64()),
        pa.field("status", pa.string()),
        pa.field("error", pa.string()),
        *(pa.field(k, types[k]) for k in axes),
        *(pa.field(k, pa.float64()) for k in (*RESULT_COLUMNS, "wall_s")),
        pa.field("run_dir", pa.string()),
    ]
    return pa.Table.from_pylist(rows, schema=pa.schema(fields))


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else value


def write_tables(table: pa.Table, store: SweepStore) -> None:
    """Write ``results.parquet`` and ``results.csv`` (each atomically)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    store.write("results.parquet", sink.getvalue().to_pybytes())
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in table.to_pylist():
        writer.writerow([_csv_cell(v) for v in row.values()])
    store.write("results.csv", text.getvalue().encode("utf-8"))
