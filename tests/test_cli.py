"""The command line end to end: outputs, comparison, determinism."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from owin_cosim.cli import app
from tests.conftest import REPO

runner = CliRunner()


def test_run_writes_every_output(tmp_path: Path, tiny_path: Path) -> None:
    out = tmp_path / "r"
    res = runner.invoke(app, ["run", str(tiny_path), "--policy", "rtfs", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == [
        ".owin-cosim-results",
        "events.csv",
        "gantt.png",
        "plan.json",
        "summary.json",
        "trace.json",
    ]
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "policy",
        "makespan_s",
        "lower_bound_s",
        "upload_finish_s",
        "core_utilization",
        "energy_J",
    ):
        assert key in summary
    assert summary["policy"] == "rtfs"
    assert set(summary["energy_J"]) >= {"radio", "accelerator"}
    assert summary["makespan_s"] >= summary["lower_bound_s"] > 0
    rows = list(csv.DictReader((out / "events.csv").open()))
    kinds = {r["kind"] for r in rows}
    assert kinds == {"tx", "layer"}
    assert sum(r["kind"] == "tx" for r in rows) == summary["num_chunks"] == 3
    trace = json.loads((out / "trace.json").read_text())
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert {e["pid"] for e in spans} == {1, 2} and all(e["dur"] >= 0 for e in spans)
    assert (out / "gantt.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_same_bytes(tmp_path: Path, tiny_path: Path) -> None:
    for name in ("one", "two"):
        res = runner.invoke(app, ["run", str(tiny_path), "--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
    for f in ("summary.json", "events.csv", "plan.json", "trace.json", "gantt.png"):
        assert (tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes(), f


def test_compare_writes_one_dir_per_policy(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    res = runner.invoke(
        app,
        [
            "compare",
            str(REPO / "examples" / "quickstart.yaml"),
            "--policies",
            "rtfs,pacs",
            "--out",
            str(out),
            "--no-plot",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "rtfs" in res.output and "pacs" in res.output
    cmp = json.loads((out / "comparison.json").read_text())
    assert set(cmp["results"]) == {"rtfs", "pacs"}
    for pol in ("rtfs", "pacs"):
        assert (out / pol / "summary.json").is_file()
    # The quickstart is heterogeneous: PACS must gain at least 20 % over RTFS.
    assert cmp["results"]["pacs"]["makespan_s"] <= 0.8 * cmp["results"]["rtfs"]["makespan_s"]


def test_compare_rejects_unknown_policy(tmp_path: Path, tiny_path: Path) -> None:
    res = runner.invoke(
        app, ["compare", str(tiny_path), "--policies", "rtfs,nope", "--out", str(tmp_path / "x")]
    )
    assert res.exit_code == 2 and "--policies" in res.output
    assert not (tmp_path / "x").exists()
