"""``owin-cosim plot DIR``: a sweep's figures and its one-page report.

:func:`plot_directory` reads ``DIR/results.parquet`` and ``DIR/sweep.resolved.json``
(:func:`load_sweep`: checked, as plain data), writes every figure of
:func:`owin_cosim.study.plots.sweep_figures` as PNG and SVG into ``DIR/figures/`` and
``DIR/report.html``: one self-contained page (the figures inline as SVG ``data:`` URIs,
a summary, a table of every run that sorts when a header is clicked, the sweep file)
that needs nothing but a browser, offline. Nothing else is written (temporary files
live in ``DIR/figures/``); the same directory gives the same bytes.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from owin_cosim.errors import ConfigError
from owin_cosim.study.plots import (
    Axis,
    FigureSpec,
    SweepData,
    finite,
    gains_over_rtfs,
    gap_to_bound,
    sweep_figures,
)

__all__ = [
    "FIGURES_DIR",
    "REPORT_FILE",
    "RESOLVED_FILE",
    "RESULTS_COLUMNS",
    "RESULTS_FILE",
    "SORT_SCRIPT",
    "SVG_HASHSALT",
    "load_sweep",
    "plot_directory",
    "replace_file",
    "report_html",
    "write_figure",
]

FIGURES_DIR = "figures"
#: Salt of the ids in SVG files: the same figure gives the same bytes on every run.
SVG_HASHSALT = "owin-cosim"
REPORT_FILE = "report.html"
RESULTS_FILE = "results.parquet"
RESOLVED_FILE = "sweep.resolved.json"
#: The most failed runs the summary lists (the table has them all).
_FAILURES_LISTED = 10

#: The table's sorting: ``sortRuns(column, descending)``, also bound to header clicks.
#: Empty cells (null values) go last either way; equal values keep their order.
SORT_SCRIPT = """
function sortRuns(col, desc) {
  var table = document.getElementById("runs");
  var body = table.tBodies[0];
  var head = table.tHead.rows[0].cells;
  var num = head[col].getAttribute("data-type") === "num";
  var rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = a.cells[col].getAttribute("data-v"), y = b.cells[col].getAttribute("data-v");
    if (x === "" || y === "") { return (x === "") - (y === ""); }
    var c = num ? Number(x) - Number(y) : (x < y ? -1 : (x > y ? 1 : 0));
    return desc ? -c : c;
  });
  rows.forEach(function (r) { body.appendChild(r); });
  for (var i = 0; i < head.length; i++) { head[i].removeAttribute("aria-sort"); }
  head[col].setAttribute("aria-sort", desc ? "descending" : "ascending");
}
(function () {
  var head = document.getElementById("runs").tHead.rows[0].cells;
  Array.prototype.forEach.call(head, function (th, col) {
    th.addEventListener("click", function () {
      sortRuns(col, th.getAttribute("aria-sort") === "ascending");
    });
  });
})();
"""


#: The result columns every ``results.parquet`` has (the axis columns come between
#: ``error`` and ``makespan_s``), with the kind of value each holds.
RESULTS_COLUMNS: dict[str, str] = {
    "run_id": "str",
    "point": "int",
    "policy": "str",
    "seed": "int",
    "status": "str",
    "error": "str",
    "makespan_s": "float",
    "lower_bound_s": "float",
    "gap_to_lower_bound": "float",
    "last_upload_s": "float",
    "energy_J_total": "float",
    "energy_J_radio": "float",
    "energy_J_accelerator": "float",
    "energy_J_noc": "float",
    "optimum_s": "float",
    "wall_s": "float",
    "run_dir": "str",
}

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.8em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
td.s, td.err, th { text-align: left; } td.err { max-width: 28em; white-space: normal; }
#runs th { cursor: pointer; background: #eee; position: sticky; top: 0; }
#runs th[aria-sort=ascending]::after { content: " \\25B2"; }
#runs th[aria-sort=descending]::after { content: " \\25BC"; }
tr.failed td { background: #fde8e8; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.85em; color: #555; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
.wrap { overflow-x: auto; max-height: 40em; }
"""


# ---- reading the directory ------------------------------------------------------------
def load_sweep(directory: str | Path) -> SweepData:
    """Read and check ``DIR/results.parquet`` and ``DIR/sweep.resolved.json``.

    Raises
    ------
    ConfigError
        Naming the file (and column or key) when ``directory`` is not a directory, a
        file is missing or unreadable, or a column or key is missing or of the wrong kind.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(directory, "", "expected a sweep output directory (owin-cosim sweep)")
    resolved = _read_resolved(directory / RESOLVED_FILE)
    columns, numeric, rows = _read_results(directory / RESULTS_FILE, resolved[0])
    return SweepData(
        directory, resolved[3], resolved[0], resolved[1], resolved[2], columns, numeric, rows
    )


def _read_resolved(
    path: Path,
) -> tuple[tuple[Axis, ...], tuple[str, ...], tuple[int, ...], str]:
    """The axes, policies, seeds and base scenario of ``sweep.resolved.json``."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, "", "missing: not a sweep output directory?") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(path, "", f"expected a JSON object ({exc})") from None
    if not isinstance(doc, dict):
        raise ConfigError(path, "", "expected a JSON object")
    axes_doc = doc.get("axes")
    if not isinstance(axes_doc, list):
        raise ConfigError(path, "axes", 'expected a list of {"key": ..., "values": [...]}')
    axes: list[Axis] = []
    for i, a in enumerate(axes_doc):
        ok = isinstance(a, dict) and isinstance(a.get("key"), str)
        if not ok or not isinstance(a.get("values"), list) or not a["values"]:
            raise ConfigError(path, f"axes[{i}]", 'expected {"key": str, "values": [...]}')
        axes.append(Axis(a["key"], tuple(a["values"])))
    policies, seeds = doc.get("policies"), doc.get("seeds")
    if not isinstance(policies, list) or not policies:
        raise ConfigError(path, "policies", "expected a non-empty list of policy names")
    if not all(isinstance(p, str) for p in policies):
        raise ConfigError(path, "policies", "expected a non-empty list of policy names")
    if not isinstance(seeds, list) or not all(type(s) is int for s in seeds):
        raise ConfigError(path, "seeds", "expected a list of integers")
    scenario = doc.get("scenario")
    if not isinstance(scenario, str):
        raise ConfigError(path, "scenario", "expected the base scenario's path (a string)")
    return tuple(axes), tuple(policies), tuple(seeds), scenario


def _read_results(
    path: Path, axes: Sequence[Axis]
) -> tuple[tuple[str, ...], dict[str, bool], tuple[dict[str, Any], ...]]:
    """The column names, which of them are numeric, and the rows of ``results.parquet``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise ConfigError(path, "", "missing: not a sweep output directory?")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ConfigError(path, "", f"expected a Parquet table ({exc})") from None
    kinds: dict[str, Callable[[Any], bool]] = {
        "str": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
        "int": pa.types.is_integer,
        "float": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t),
    }
    schema = table.schema
    for name, kind in RESULTS_COLUMNS.items():
        if name not in schema.names:
            raise ConfigError(path, name, "missing column (see docs/sweep.md)")
        t = schema.field(name).type
        if not (kinds[kind](t) or pa.types.is_null(t)):
            raise ConfigError(path, name, f"expected a column of {kind} values, got {t}")
    for axis in axes:
        if axis.key not in schema.names:
            raise ConfigError(path, axis.key, "missing column of a swept axis")
    numeric = {
        n: pa.types.is_integer(schema.field(n).type) or pa.types.is_floating(schema.field(n).type)
        for n in schema.names
    }
    rows = tuple(table.to_pylist())
    for i, r in enumerate(rows):
        if r["status"] not in ("ok", "failed"):
            raise ConfigError(
                path, f"status (row {i})", f'expected "ok" or "failed", got {r["status"]!r}'
            )
        if r["status"] == "ok" and not finite(r["makespan_s"]):
            raise ConfigError(
                path, f"makespan_s (row {i})", "expected a number for a run that is ok"
            )
    return tuple(schema.names), numeric, rows


# ---- the report -----------------------------------------------------------------------
def plot_directory(directory: str | Path) -> list[Path]:
    """Write ``DIR/figures/*.png``, ``DIR/figures/*.svg`` and ``DIR/report.html``.

    Figures of an earlier plot that this sweep no longer has (an axis dropped) are
    removed; nothing outside ``DIR/figures/`` and ``DIR/report.html`` is touched.

    Returns
    -------
    list of Path
        The files written, the report last.

    Raises
    ------
    ConfigError
        A missing or malformed ``results.parquet`` or ``sweep.resolved.json`` (see
        :func:`owin_cosim.study.plots.load_sweep`), or a ``figures`` or ``report.html``
        that is not a plain directory or file (a symbolic link is refused: it could
        lead the output outside ``DIR``).
    """
    data = load_sweep(directory)
    figures, report = data.directory / FIGURES_DIR, data.directory / REPORT_FILE
    for path, kind in ((figures, "directory"), (report, "file")):
        plain = path.is_dir() if kind == "directory" else path.is_file()
        if path.is_symlink() or (path.exists() and not plain):
            raise ConfigError(path, "", f"expected a plain {kind} for owin-cosim plot to write")
    figures.mkdir(exist_ok=True)
    specs = sweep_figures(data)
    svgs = [write_figure(spec, figures) for spec in specs]
    written = [figures / f"{s.stem}{x}" for s in specs for x in (".png", ".svg")]
    _remove_stale(figures, set(written))
    text = _sweep_text(data.directory)
    page = report_html(data, list(zip(specs, svgs, strict=True)), text)
    replace_file(report, page.encode("utf-8"), tmp_dir=figures)
    return [*written, report]


def _remove_stale(figures: Path, keep: set[Path]) -> None:
    """Remove figures an earlier ``plot`` wrote that this one did not (only its names)."""
    patterns = ("makespan_vs_*", "gain_over_rtfs.*", "gap_to_bound.*", "energy_vs_makespan.*")
    for pattern in patterns:
        for path in figures.glob(pattern):
            if path.suffix in (".png", ".svg") and path not in keep and path.is_file():
                path.unlink()


def _sweep_text(directory: Path) -> str | None:
    try:
        return (directory / "sweep.yaml").read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None


def report_html(
    data: SweepData, figures: Sequence[tuple[FigureSpec, bytes]], sweep_text: str | None
) -> str:
    """The report page: summary, figures (SVG bytes inlined), table of runs, sweep file.

    Only ``data`` and the arguments go in (no date, no host), so the same sweep gives
    the same page.
    """
    e = html.escape
    if sweep_text is not None:
        sweep = f"<pre>{e(sweep_text)}</pre>"
    else:
        sweep = "<p>No <code>sweep.yaml</code> in the directory; the resolved sweep:</p>"
    resolved = json.dumps(_resolved(data), indent=2)
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>owin-cosim sweep: {e(data.scenario)}</title>",
        f"<style>{_STYLE}</style>\n</head>\n<body>",
        "<h1>owin-cosim sweep report</h1>",
        f"<p>Base scenario <code>{e(data.scenario)}</code>; drawn by <code>owin-cosim plot"
        "</code> from <code>results.parquet</code> and <code>sweep.resolved.json</code>.</p>",
        '<section id="summary">\n<h2>Summary</h2>',
        _summary(data),
        '</section>\n<section id="figures">\n<h2>Figures</h2>',
        *(_figure(spec, svg) for spec, svg in figures),
        '</section>\n<section id="all-runs">\n<h2>All runs</h2>',
        "<p>Click a column header to sort (again to reverse); empty cells are nulls.</p>",
        _runs_table(data),
        '</section>\n<section id="sweep-file">\n<h2>Sweep file</h2>',
        sweep,
        f"<details><summary>sweep.resolved.json</summary><pre>{e(resolved)}</pre></details>",
        f"</section>\n<script>{SORT_SCRIPT}</script>\n</body>\n</html>\n",
    ]
    return "\n".join(parts)


def _resolved(data: SweepData) -> dict[str, Any]:
    axes = [{"key": a.key, "values": list(a.values)} for a in data.axes]
    return {
        "scenario": data.scenario,
        "axes": axes,
        "policies": list(data.policies),
        "seeds": list(data.seeds),
    }


def _figure(spec: FigureSpec, svg: bytes) -> str:
    uri = "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
    e = html.escape
    return (
        f'<figure id="fig-{e(spec.stem)}"><img src="{uri}" alt="{e(spec.caption)}">'
        f"<figcaption>{e(spec.caption)} Files: <code>figures/{e(spec.stem)}.png</code>, "
        f"<code>figures/{e(spec.stem)}.svg</code>.</figcaption></figure>"
    )


def _cell(value: Any, numeric: bool) -> tuple[str, str]:
    """``(shown text, sort key)`` of a table cell; a null shows a dash, sorts last."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ("—" if value is None else str(value)), ""
    if isinstance(value, float):
        return f"{value:.6g}", repr(value)
    if numeric or isinstance(value, int):
        return str(value), str(value)
    return str(value), str(value)


def _runs_table(data: SweepData) -> str:
    e = html.escape
    head = "".join(
        f'<th data-type="{"num" if data.numeric[c] else "str"}">{e(c)}</th>' for c in data.columns
    )
    body: list[str] = []
    for row in data.rows:
        cells = []
        for c in data.columns:
            shown, key = _cell(row[c], data.numeric[c])
            cls = "" if data.numeric[c] else (' class="err"' if c == "error" else ' class="s"')
            cells.append(f'<td{cls} data-v="{e(key)}">{e(shown)}</td>')
        status = ' class="failed"' if row["status"] == "failed" else ""
        body.append(f"<tr{status}>{''.join(cells)}</tr>")
    return (
        f'<div class="wrap"><table id="runs"><thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{chr(10).join(body)}\n</tbody></table></div>"
    )


def _stats(values: Sequence[float], scale: float = 1.0) -> str:
    """``median [min, max]`` of ``values`` times ``scale``; a dash when empty."""
    if not values:
        return "—"
    v = np.asarray(values, dtype=float) * scale
    return f"{np.median(v):.4g} [{v.min():.4g}, {v.max():.4g}]"


def _summary(data: SweepData) -> str:
    e = html.escape
    ok, rows = data.ok_rows, data.rows
    points = len({r["point"] for r in rows})
    lines = [
        f"<p>{len(rows)} runs: {len(ok)} ok, {len(rows) - len(ok)} failed "
        f"({points} points &times; {len(data.policies)} policies &times; "
        f"{len(data.seeds)} seeds).</p>",
        "<ul>",
        *(
            f"<li><code>{e(a.key)}</code>: {e(', '.join(map(str, a.values)))}</li>"
            for a in data.axes
        ),
        f"<li>policies: {e(', '.join(data.policies))}; seeds: "
        f"{e(', '.join(map(str, data.seeds)))}</li>",
        "</ul>",
        _policy_table(data),
    ]
    if ok:
        best = min(ok, key=lambda r: (r["makespan_s"], r["point"], r["seed"]))
        where = ", ".join(f"{a.key} = {best[a.key]}" for a in data.axes) or "the only point"
        lines.append(
            f"<p>Lowest makespan: {best['makespan_s'] * 1e3:.4g} ms, {e(best['policy'])} "
            f"at {e(where)}, seed {best['seed']} (run <code>{e(best['run_id'])}</code>).</p>"
        )
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        items = [
            f"<li><code>{e(r['run_id'])}</code> {e(r['policy'])}, seed {r['seed']}: "
            f"{e(r['error'])}</li>"
            for r in failed[:_FAILURES_LISTED]
        ]
        more = len(failed) - _FAILURES_LISTED
        tail = [f"<li>and {more} more (see the table)</li>"] if more > 0 else []
        lines += ["<p>Failed runs:</p>", "<ul>", *items, *tail, "</ul>"]
    return "\n".join(lines)


def _policy_table(data: SweepData) -> str:
    """Per policy: runs ok, makespan, gap, energy and gain over RTFS (median [min, max])."""
    gains: dict[str, list[float]] = {}
    for r, g in gains_over_rtfs(data):
        gains.setdefault(r["policy"], []).append(g)
    has_rtfs = "rtfs" in data.policies and len(data.policies) > 1
    head = ["policy", "runs ok", "makespan (ms)", "gap to bound (%)", "energy (mJ)"]
    head += ["gain over RTFS (%)"] if has_rtfs else []
    out = ['<table id="policies"><thead><tr>', *(f"<th>{h}</th>" for h in head), "</tr></thead>"]
    for p in data.policies:
        ok = [r for r in data.ok_rows if r["policy"] == p]
        gaps = [x for r in ok if (x := gap_to_bound(r)) is not None]
        energy = [r["energy_J_total"] for r in ok if r["energy_J_total"] is not None]
        cells = [
            html.escape(p),
            f"{len(ok)} of {sum(r['policy'] == p for r in data.rows)}",
            _stats([r["makespan_s"] for r in ok], 1e3),
            _stats(gaps, 100.0),
            _stats(energy, 1e3),
        ]
        if has_rtfs:
            cells.append("—" if p == "rtfs" else _stats(gains.get(p, [])))
        out.append("<tr>" + "".join(f'<td class="s">{c}</td>' for c in cells) + "</tr>")
    out.append("</table>")
    out.append("<p>Cells: median [min, max] over the runs that are ok.</p>")
    return "\n".join(out)


# ---- writing files -------------------------------------------------------------------
def write_figure(spec: FigureSpec, directory: Path) -> bytes:
    """Write ``spec`` as ``STEM.png`` and ``STEM.svg`` in ``directory`` (each atomically:
    a temporary file beside it, then a rename); the SVG's bytes.

    The same figure gives the same bytes: SVG ids are salted with
    :data:`SVG_HASHSALT` and no date is written.
    """
    svg = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT}):
        spec.figure.savefig(svg, format="svg", metadata={"Date": None})
    png = io.BytesIO()
    spec.figure.savefig(png, format="png")
    for suffix, content in ((".png", png.getvalue()), (".svg", svg.getvalue())):
        replace_file(directory / f"{spec.stem}{suffix}", content)
    return svg.getvalue()


def replace_file(path: Path, content: bytes, tmp_dir: Path | None = None) -> None:
    """Write ``content`` to a temporary file in ``tmp_dir`` (by default ``path``'s
    directory; the same file system), then rename it to ``path``: a reader sees the old
    file or the new one, never half of one."""
    where = path.parent if tmp_dir is None else tmp_dir
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=where)
    try:
        mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)  # as a plain open() would (mkstemp makes it 0600)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
