"""``owin-cosim plot DIR``: figures and the report of a sweep directory.

The sweep directories here are written by hand in the format of ``docs/sweep.md``
(``results.parquet`` + ``sweep.resolved.json`` + ``sweep.yaml``): three axes of three
kinds (float, int, path), three policies with RTFS, two seeds, a few failed runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from itertools import product
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from owin_cosim.cli import app
from owin_cosim.study.plots import gains_over_rtfs, sweep_figures
from owin_cosim.study.report import RESULTS_COLUMNS, load_sweep, plot_directory

runner = CliRunner()

AXES: dict[str, list[Any]] = {
    "accelerator.latency_scale": [0.5, 1.0, 2.0],
    "network.ofdm.num_rbs": [25, 50],
    "accelerator.spec": ["accel_specs/mc4.yaml", "accel_specs/hetero_big_little.yaml"],
}
POLICIES = ["rtfs", "pacs", "greedy"]
SEEDS = [1, 2]
#: (point, policy, seed) of the runs that failed.
FAILED = {(3, "pacs", 2), (7, "rtfs", 1), (11, "greedy", 1)}
SWEEP_YAML = """\
scenario: ../quickstart.yaml        # relative to the sweep file
policies: [rtfs, pacs, greedy]
seeds: [1, 2]
grid:
  accelerator.latency_scale: [0.5, 1.0, 2.0]
  network.ofdm.num_rbs: [25, 50]
  accelerator.spec: [accel_specs/mc4.yaml, accel_specs/hetero_big_little.yaml]
"""
RESULT_TYPES = {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}


def _makespan(point: int, values: dict[str, Any], policy: str, seed: int) -> float:
    """A made-up but structured makespan: slower with latency, faster with RBs; PACS
    20-24 % and greedy 10 % faster than RTFS on the same point and seed."""
    base = 0.030 * values.get("accelerator.latency_scale", 1.0)
    base += 1.2 / values.get("network.ofdm.num_rbs", 50) + 1e-4 * values.get(
        "devices.camera.distance_m", 0
    )
    base *= 1.1 if "hetero" in values.get("accelerator.spec", "") else 1.0
    factor = {"rtfs": 1.0, "pacs": 0.8 - 0.02 * (point % 3), "greedy": 0.9}[policy]
    return base * factor * (1.0 + 0.04 * seed + 0.01 * (point % 4))


def _row(point: int, values: dict[str, Any], policy: str, seed: int) -> dict[str, Any]:
    run_id = hashlib.sha256(f"{point}/{policy}/{seed}".encode()).hexdigest()[:16]
    row: dict[str, Any] = {"run_id": run_id, "point": point, "policy": policy, "seed": seed}
    failed = (point, policy, seed) in FAILED
    row |= {"status": "failed" if failed else "ok"}
    row |= {"error": "scenario.yaml: network: <b>boom</b> & co" if failed else ""}
    row |= values
    m = None if failed else _makespan(point, values, policy, seed)
    lb = None if m is None else _makespan(point, values, "pacs", 0) * 0.7
    numbers = {
        "makespan_s": m,
        "lower_bound_s": lb,
        "gap_to_lower_bound": None if m is None or lb is None else m / lb - 1.0,
        "last_upload_s": None if m is None else 0.6 * m,
        "energy_J_total": None if m is None else 0.05 + 0.3 * m,
        "energy_J_radio": None if m is None else 0.01,
        "energy_J_accelerator": None if m is None else 0.04 + 0.3 * m,
        "energy_J_noc": None if m is None else 0.0,
        "optimum_s": None,
        "wall_s": None if m is None else 0.1 + point * 0.01,
        "run_dir": f"runs/{run_id}",
    }
    return row | numbers


def make_sweep_dir(
    root: Path,
    axes: dict[str, list[Any]] | None = None,
    policies: list[str] | None = None,
    *,
    zipped: bool = False,
) -> Path:
    """A sweep output directory as ``owin-cosim sweep`` writes it (without runs/)."""
    axes = AXES if axes is None else axes
    policies = POLICIES if policies is None else policies
    root.mkdir(parents=True, exist_ok=True)
    keys = list(axes)
    combos = zip(*axes.values(), strict=True) if zipped else product(*axes.values())
    rows = [
        _row(point, dict(zip(keys, combo, strict=True)), policy, seed)
        for point, combo in enumerate(combos)
        for policy in policies
        for seed in SEEDS
    ]
    axis_types = {k: pa.string() if isinstance(v[0], str) else
                  pa.int64() if isinstance(v[0], int) else pa.float64()
                  for k, v in axes.items()}  # fmt: skip
    head = ["run_id", "point", "policy", "seed", "status", "error"]
    names = head + keys + [c for c in RESULTS_COLUMNS if c not in head]
    types = {c: RESULT_TYPES[k] for c, k in RESULTS_COLUMNS.items()} | axis_types
    schema = pa.schema([(n, types[n]) for n in names])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), root / "results.parquet")
    resolved = {
        "scenario": "examples/quickstart.yaml",
        "axes": [{"key": k, "values": v} for k, v in axes.items()],
        "policies": policies,
        "seeds": SEEDS,
    }
    (root / "sweep.resolved.json").write_text(json.dumps(resolved, indent=2), encoding="utf-8")
    (root / "sweep.yaml").write_text(SWEEP_YAML, encoding="utf-8")
    return root


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}  # fmt: skip


STEMS = [
    "makespan_vs_accelerator.latency_scale",
    "makespan_vs_network.ofdm.num_rbs",
    "makespan_vs_accelerator.spec",
    "gain_over_rtfs",
    "gap_to_bound",
    "energy_vs_makespan",
]


def test_plot_writes_every_figure_and_the_report_only(tmp_path: Path) -> None:
    sweep = make_sweep_dir(tmp_path / "sweep")
    before = _tree(sweep)
    result = runner.invoke(app, ["plot", str(sweep)])
    assert result.exit_code == 0, result.output
    assert "6 figures" in result.output
    after = _tree(sweep)
    for name, content in before.items():  # the sweep's files are untouched
        assert after.pop(name) == content
    expected = {f"figures/{s}{x}" for s in STEMS for x in (".png", ".svg")} | {"report.html"}
    assert set(after) == expected  # nothing else: no temporary file left behind
    assert all(after[f"figures/{s}.png"].startswith(b"\x89PNG") for s in STEMS)
    assert all(b"<svg" in after[f"figures/{s}.svg"][:400] for s in STEMS)


@pytest.fixture(scope="module")
def plotted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hand-made sweep, plotted once (read, never changed, by the tests using it)."""
    sweep = make_sweep_dir(tmp_path_factory.mktemp("plotted") / "s")
    plot_directory(sweep)
    return sweep


def test_same_directory_same_bytes_anywhere(plotted: Path, tmp_path: Path) -> None:
    first = _tree(plotted)
    one = tmp_path / "one"
    shutil.copytree(plotted, one)
    plot_directory(one)  # again, over its own output
    assert _tree(one) == first
    two = tmp_path / "elsewhere" / "two"  # the sweep alone, somewhere else
    make_sweep_dir(two)
    plot_directory(two)
    assert _tree(two) == first
    assert b"<dc:date>" not in first["figures/gap_to_bound.svg"]


def test_the_report_is_self_contained_and_escaped(plotted: Path) -> None:
    page = (plotted / "report.html").read_text(encoding="utf-8")
    assert "http://" not in page.replace("http://www.w3.org/", "")  # SVG namespaces only
    assert "https://" not in page and "<link" not in page
    srcs = page.count(' src="')
    assert srcs == len(STEMS) == page.count(' src="data:image/svg+xml;base64,')
    assert page.count("<tr") == 1 + 72 + 1 + 3  # header, runs; policy table: header, 3
    assert "&lt;b&gt;boom&lt;/b&gt; &amp; co" in page and "<b>boom" not in page
    assert "# relative to the sweep file" in page  # sweep.yaml, as given
    assert "69 ok, 3 failed" in page


def test_gain_over_rtfs_pairs_point_and_seed(tmp_path: Path) -> None:
    data = load_sweep(make_sweep_dir(tmp_path / "s"))
    gains = gains_over_rtfs(data)
    # 12 points x 2 seeds x 2 other policies, less the 2 failed ones and the 2 whose
    # RTFS run failed (point 7, seed 1: pacs and greedy)
    assert len(gains) == 48 - 2 - 2
    by_policy = {(r["policy"], r["point"], r["seed"]): g for r, g in gains}
    assert by_policy["pacs", 0, 1] == pytest.approx(20.0)
    assert by_policy["pacs", 5, 2] == pytest.approx(24.0)  # 5 % 3 == 2
    assert by_policy["greedy", 5, 2] == pytest.approx(10.0)
    assert ("pacs", 7, 1) not in by_policy


def test_without_rtfs_no_gain_figure_and_optimum_is_the_reference(tmp_path: Path) -> None:
    sweep = make_sweep_dir(tmp_path / "s", {"network.ofdm.num_rbs": [25, 50]}, ["pacs"])
    table = pq.read_table(sweep / "results.parquet")
    optimum = [None if m is None else m / 1.25 for m in table["makespan_s"].to_pylist()]
    i = table.schema.get_field_index("optimum_s")
    table = table.set_column(i, "optimum_s", pa.array(optimum, pa.float64()))
    pq.write_table(table, sweep / "results.parquet")
    specs = sweep_figures(load_sweep(sweep))
    assert [s.stem for s in specs] == ["makespan_vs_network.ofdm.num_rbs", "gap_to_bound",
                                       "energy_vs_makespan"]  # fmt: skip
    gap = specs[1].figure.axes[0]
    assert gap.get_ylabel() == "gap to the optimum (%)"
    assert [y for line in gap.lines[:1] for y in line.get_ydata()] == pytest.approx([25.0] * 2)


def test_zipped_axes_pool_into_one_panel_and_a_grid_gets_panels(tmp_path: Path) -> None:
    zipped = {"devices.camera.distance_m": [10.0, 20.0, 40.0], "network.ofdm.num_rbs": [25, 50, 75]}
    data = load_sweep(make_sweep_dir(tmp_path / "z", zipped, ["rtfs"], zipped=True))
    first = sweep_figures(data)[0]
    assert len([a for a in first.figure.axes if a.get_visible()]) == 1
    assert "other axes" in first.caption
    grid = sweep_figures(load_sweep(make_sweep_dir(tmp_path / "g")))[0]
    # latency_scale: one panel per (num_rbs, spec), 2 x 2
    assert len([a for a in grid.figure.axes if a.get_visible()]) == 4
    assert "other axes" not in grid.caption
    # first panel (num_rbs 25, mc4: points 0, 4, 8), RTFS: the median over the two seeds
    # and a band from the lower seed's makespan to the higher one's
    panel = grid.figure.axes[0]
    assert panel.get_title() == "num_rbs = 25\nspec = mc4.yaml"
    ms = [[_makespan(p, dict(zip(AXES, v, strict=True)), "rtfs", s) * 1e3 for s in SEEDS]
          for p, v in ((0, (0.5, 25, AXES["accelerator.spec"][0])),
                       (4, (1.0, 25, AXES["accelerator.spec"][0])),
                       (8, (2.0, 25, AXES["accelerator.spec"][0])))]  # fmt: skip
    assert list(panel.lines[0].get_ydata()) == pytest.approx([sum(m) / 2 for m in ms])
    band = panel.collections[0].get_paths()[0].vertices[:, 1]
    assert min(band) == pytest.approx(min(ms[0])) and max(band) == pytest.approx(max(ms[2]))


def test_figures_of_an_earlier_plot_are_replaced(tmp_path: Path) -> None:
    sweep = make_sweep_dir(tmp_path / "s")
    plot_directory(sweep)
    (sweep / "figures" / "mine.png").write_bytes(b"not ours")
    make_sweep_dir(sweep, {"network.ofdm.num_rbs": [25, 50]})  # an axis fewer, rewritten
    plot_directory(sweep)
    names = sorted(p.name for p in (sweep / "figures").iterdir())
    assert "makespan_vs_accelerator.spec.svg" not in names
    assert "mine.png" in names and "makespan_vs_network.ofdm.num_rbs.png" in names


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _drop_column(path: Path, name: str) -> None:
    table = pq.read_table(path)
    pq.write_table(table.drop_columns([name]), path)


@pytest.mark.parametrize(
    ("damage", "file", "says"),
    [
        (lambda d: shutil.rmtree(d), "", "expected a sweep output directory"),
        (lambda d: (d / "results.parquet").unlink(), "results.parquet", "missing"),
        (lambda d: _write(d / "results.parquet", "run_id,point\n"), "results.parquet",
         "expected a Parquet table"),
        (lambda d: _drop_column(d / "results.parquet", "makespan_s"), "results.parquet",
         "makespan_s: missing column"),
        (lambda d: _drop_column(d / "results.parquet", "network.ofdm.num_rbs"),
         "results.parquet", "network.ofdm.num_rbs: missing column of a swept axis"),
        (lambda d: (d / "sweep.resolved.json").unlink(), "sweep.resolved.json", "missing"),
        (lambda d: _write(d / "sweep.resolved.json", "{axes: ["), "sweep.resolved.json",
         "expected a JSON object"),
        (lambda d: _write(d / "sweep.resolved.json", '{"axes": 3}'), "sweep.resolved.json",
         "axes: expected a list"),
        (lambda d: _write(d / "sweep.resolved.json", '{"axes": [], "policies": []}'),
         "sweep.resolved.json", "policies: expected a non-empty list"),
        (lambda d: os.symlink(d.parent, d / "figures"), "figures", "expected a plain directory"),
    ],
)  # fmt: skip
def test_a_bad_directory_exits_2_naming_the_file(
    tmp_path: Path, damage: Any, file: str, says: str
) -> None:
    sweep = make_sweep_dir(tmp_path / "s")
    damage(sweep)
    result = runner.invoke(app, ["plot", str(sweep)])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())  # rich wraps long lines
    assert f"error: {sweep / file if file else sweep}" in message
    assert says in message
    assert not (tmp_path / "report.html").exists() and not (sweep / "report.html").exists()


# ---- the page in a real browser ---------------------------------------------------------
#: Run after the page has loaded: what a person would see, written into the DOM.
PROBE = """
<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var out = {
    images: imgs.length,
    decoded: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
    widths: imgs.map(function (i) { return i.naturalWidth; }),
    rows: document.querySelectorAll("#runs tbody tr").length,
    columns: document.querySelectorAll("#runs thead th").length
  };
  var head = Array.prototype.map.call(document.querySelectorAll("#runs thead th"),
                                      function (th) { return th.textContent; });
  var col = head.indexOf("makespan_s"), pol = head.indexOf("policy");
  var read = function (c) {
    return Array.prototype.map.call(document.querySelectorAll("#runs tbody tr"),
      function (tr) { return tr.cells[c].getAttribute("data-v"); });
  };
  document.querySelectorAll("#runs thead th")[col].click();
  out.ascending = read(col);
  document.querySelectorAll("#runs thead th")[col].click();
  out.descending = read(col);
  sortRuns(pol, false);
  out.policies = read(pol);
  var pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def _chromium(*args: str, timeout: float = 60.0) -> str:
    """Run headless Chromium on file:// pages only; kill its whole process group after."""
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail(
            "chromium is not installed: the README's test command installs it "
            "(apt-get install -y chromium)"
        )
    with tempfile.TemporaryDirectory(prefix="owin-chromium-") as profile:
        cmd = [exe, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
               "--disable-extensions", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--metrics-recording-only",
               f"--user-data-dir={profile}", "--virtual-time-budget=10000", *args]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                start_new_session=True, text=True)  # fmt: skip
        try:
            stdout, _ = proc.communicate(timeout=timeout)
        finally:
            # its renderer and zygote children share its new session's process group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, f"chromium exited with {proc.returncode}"
    return stdout


def test_chromium_shows_the_figures_and_a_sortable_table(plotted: Path, tmp_path: Path) -> None:
    page = (plotted / "report.html").read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"  # a copy with the probe: the report stays as written
    probed.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = _chromium("--dump-dom", probed.as_uri())
    start = dom.index('<pre id="probe">') + len('<pre id="probe">')
    out = json.loads(dom[start : dom.index("</pre>", start)].replace("&quot;", '"'))
    assert out["images"] == len(STEMS) == out["decoded"], out
    assert all(w > 300 for w in out["widths"])
    assert out["rows"] == 72 and out["columns"] == 6 + 3 + 11
    ok = sorted(float(v) for v in out["ascending"] if v)
    assert [float(v) for v in out["ascending"][:69]] == ok
    assert out["ascending"][69:] == ["", "", ""]  # failed runs (no makespan) last
    assert [float(v) for v in out["descending"][:69]] == ok[::-1]
    assert out["policies"] == sorted(out["policies"])
    shot = tmp_path / "report.png"
    _chromium(f"--screenshot={shot}", "--window-size=1200,1600", (plotted / "report.html").as_uri())
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000


def test_plot_reads_what_owin_cosim_sweep_writes(tmp_path: Path) -> None:
    from tests.conftest import scenario_dict, write_scenario

    write_scenario(tmp_path / "base.yaml", scenario_dict())
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(
        "scenario: base.yaml\npolicies: [rtfs, pacs]\nseeds: [1, 2]\n"
        "grid:\n  network.ofdm.num_rbs: [5, 10]\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    ran = runner.invoke(app, ["sweep", str(sweep_file), "--out", str(out), "--workers", "1"])
    assert ran.exit_code == 0, ran.output
    result = runner.invoke(app, ["plot", str(out)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (out / "figures").iterdir())
    stems = ["energy_vs_makespan", "gain_over_rtfs", "gap_to_bound",
             "makespan_vs_network.ofdm.num_rbs"]  # fmt: skip
    assert names == [f"{s}{x}" for s in stems for x in (".png", ".svg")]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("<tr") == 1 + 8 + 1 + 2 and "8 runs: 8 ok, 0 failed" in page
    assert "network.ofdm.num_rbs: [5, 10]" in page  # the sweep file as given
