"""Several policies on one scenario side by side: ``comparison.json`` and the table.

The table has one row per policy; :func:`plain_table` prints it as aligned plain text
that never truncates a value (for pipes, files and narrow terminals).

>>> rows = [{"policy": "rtfs", "makespan_s": 0.06042, "lower_bound_s": 0.03198,
...          "gap_to_lower_bound": 0.889, "last_upload_s": 0.0335,
...          "energy_J": {"radio": 0.01481, "accelerator": 0.04324},
...          "core_utilization": [0.2, 0.26]}]
>>> print(plain_table(rows))
policy  makespan ms  bound ms    gap  uploads done ms  radio mJ  accel mJ  core util
rtfs          60.42     31.98  88.9%            33.50     14.81     43.24       0.23
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["COLUMNS", "comparison_doc", "plain_table", "table_rows"]

#: Column titles of the comparison table.
COLUMNS: tuple[str, ...] = (
    "policy",
    "makespan ms",
    "bound ms",
    "gap",
    "uploads done ms",
    "radio mJ",
    "accel mJ",
    "core util",
)


def table_rows(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
    """The table's cells, one list per policy, formatted as in every view."""
    cells = []
    for r in rows:
        util = r["core_utilization"]
        cells.append(
            [
                r["policy"],
                f"{r['makespan_s'] * 1e3:.2f}",
                f"{r['lower_bound_s'] * 1e3:.2f}",
                f"{r['gap_to_lower_bound'] * 100:.1f}%",
                f"{r['last_upload_s'] * 1e3:.2f}",
                f"{r['energy_J']['radio'] * 1e3:.2f}",
                f"{r['energy_J']['accelerator'] * 1e3:.2f}",
                f"{sum(util) / len(util):.2f}",
            ]
        )
    return cells


def plain_table(rows: Sequence[dict[str, Any]]) -> str:
    """The table as aligned plain text (policy left-aligned, numbers right-aligned)."""
    cells = [list(COLUMNS), *table_rows(rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = []
    for row in cells:
        parts = [row[0].ljust(widths[0])]
        parts += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def comparison_doc(scenario: str, seed: int, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The content of ``comparison.json`` (the first policy is the reference)."""
    ref = rows[0]["makespan_s"]
    return {
        "scenario": scenario,
        "seed": seed,
        "policies": [r["policy"] for r in rows],
        "lower_bound_s": rows[0]["lower_bound_s"],
        "results": {
            r["policy"]: {
                "makespan_s": r["makespan_s"],
                "gap_to_lower_bound": r["gap_to_lower_bound"],
                "makespan_vs_first": r["makespan_s"] / ref,
                "last_upload_s": r["last_upload_s"],
                "energy_J": r["energy_J"],
                "core_utilization": r["core_utilization"],
            }
            for r in rows
        },
    }
