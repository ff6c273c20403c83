"""``owin-cosim sweep``: the sweep-file form of the issue, the table contract, reuse of
unchanged runs, failures, chip-spec axes, bad sweep files (exit 2) and dask."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from owin_cosim import api
from owin_cosim.cli import app
from owin_cosim.errors import BackendUnavailableError, ConfigError
from owin_cosim.study.executors import make_executor
from owin_cosim.study.sweep import run_sweep
from owin_cosim.study.table import RESULT_COLUMNS
from tests.conftest import free_port, scenario_dict, write_scenario

runner = CliRunner()

#: The issue's form: 3 x 2 points x 2 policies x 2 seeds = 24 runs.
ISSUE_FORM = {
    "scenario": "base.yaml",
    "policies": ["rtfs", "pacs"],
    "seeds": [1, 2],
    "grid": {"accelerator.latency_scale": [0.5, 1.0, 2.0], "network.ofdm.num_rbs": [5, 10]},
}


def _sweep(tmp: Path, doc: dict[str, Any], name: str = "sweep.yaml") -> Path:
    if not (tmp / "base.yaml").exists():
        write_scenario(tmp / "base.yaml", scenario_dict())
    path = tmp / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _rows(out: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(out / "results.parquet").to_pylist()
    return rows


def _run_dirs(out: Path) -> list[str]:
    return sorted(e for e in os.listdir(out / "runs") if not e.startswith("."))


def test_the_issue_form_gives_24_runs_and_the_table_contract(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, ISSUE_FORM)
    out = tmp_path / "out"
    res = runner.invoke(app, ["sweep", str(sweep), "--out", str(out), "--workers", "2"])
    assert res.exit_code == 0, res.output
    assert "24 ran, 0 failed, 0 skipped" in res.output
    rows = _rows(out)
    assert len(rows) == 24 and len(_run_dirs(out)) == 24
    assert list(rows[0]) == [
        *("run_id", "point", "policy", "seed", "status", "error"),
        *("accelerator.latency_scale", "network.ofdm.num_rbs"),
        *RESULT_COLUMNS,
        *("wall_s", "run_dir"),
    ]
    assert [(r["point"], r["policy"], r["seed"]) for r in rows[:4]] == [
        (0, "rtfs", 1), (0, "rtfs", 2), (0, "pacs", 1), (0, "pacs", 2)
    ]  # fmt: skip
    assert {r["status"] for r in rows} == {"ok"} and {r["error"] for r in rows} == {""}
    assert all(r["optimum_s"] is None and r["makespan_s"] > 0 for r in rows)
    # The compute-bound end: a slower accelerator gives a longer makespan.
    by = {(r["accelerator.latency_scale"], r["network.ofdm.num_rbs"], r["policy"], r["seed"]): r
          for r in rows}  # fmt: skip
    assert by[(2.0, 10, "pacs", 1)]["makespan_s"] > by[(0.5, 10, "pacs", 1)]["makespan_s"]
    with (out / "results.csv").open(encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert [r["run_id"] for r in table] == [r["run_id"] for r in rows]
    assert float(table[5]["makespan_s"]) == rows[5]["makespan_s"]
    assert (out / "sweep.yaml").read_bytes() == sweep.read_bytes()
    resolved = json.loads((out / "sweep.resolved.json").read_text())
    assert resolved["axes"][1] == {"key": "network.ofdm.num_rbs", "values": [5, 10]}
    assert resolved["policies"] == ["rtfs", "pacs"] and resolved["seeds"] == [1, 2]
    run = out / rows[0]["run_dir"]
    assert {"summary.json", "events.csv", "plan.json", "scenario.json"} <= set(os.listdir(run))
    frozen = api.load_scenario(run / "scenario.json")  # a frozen scenario stands alone
    assert (frozen.seed, frozen.policy.name, frozen.network.ofdm.num_rbs) == (1, "rtfs", 5)
    again = api.run(frozen, policy="rtfs")
    assert again.makespan_s == rows[0]["makespan_s"]
    # The same command again: nothing to do.
    res = runner.invoke(app, ["sweep", str(sweep), "--out", str(out), "--resume"])
    assert res.exit_code == 0 and "0 ran, 0 failed, 24 skipped" in res.output, res.output


def test_a_changed_axis_reuses_the_runs_that_did_not_change(tmp_path: Path) -> None:
    doc = {"scenario": "base.yaml", "policies": ["rtfs"], "grid": {"network.ofdm.num_rbs": [5, 10]}}
    out = tmp_path / "out"
    first = run_sweep(_sweep(tmp_path, doc), out, workers=1)
    assert (first.ran, first.skipped) == (2, 0)
    before = {d: (out / "runs" / d / "summary.json").stat().st_mtime_ns for d in _run_dirs(out)}
    doc["grid"]["network.ofdm.num_rbs"] = [5, 10.0, 20]  # 10.0 is the same scenario as 10
    second = run_sweep(_sweep(tmp_path, doc), out, workers=1)
    assert (second.ran, second.skipped) == (1, 2)
    for d, mtime in before.items():
        assert (out / "runs" / d / "summary.json").stat().st_mtime_ns == mtime
    rows = _rows(out)
    assert [r["network.ofdm.num_rbs"] for r in rows] == [5.0, 10.0, 20.0]
    assert len(_run_dirs(out)) == 3


def test_a_failed_run_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    doc = {
        "scenario": "base.yaml",
        "policies": ["rtfs"],
        "grid": {"network.ofdm.max_slots": [1, 10_000_000], "accelerator.latency_scale": [1, 2]},
    }
    sweep, out = _sweep(tmp_path, doc), tmp_path / "out"
    res = runner.invoke(app, ["sweep", str(sweep), "--out", str(out), "--workers", "1"])
    assert res.exit_code == 1, res.output
    rows = _rows(out)
    assert [r["status"] for r in rows] == ["failed", "failed", "ok", "ok"]
    failed = rows[0]
    assert "network.ofdm.max_slots" in failed["error"] and failed["makespan_s"] is None
    error = json.loads((out / failed["run_dir"] / "error.json").read_text())
    assert error == {"error": failed["error"], "kind": "ConfigError"}
    assert not (out / failed["run_dir"] / "summary.json").exists()
    # --fail-fast on a fresh directory: stops at the first failure.
    res = runner.invoke(
        app, ["sweep", str(sweep), "--out", str(tmp_path / "ff"), "--workers", "1", "--fail-fast"]
    )
    assert res.exit_code == 1 and "--fail-fast" in res.output, res.output
    assert len(_rows(tmp_path / "ff")) < 4


def test_spec_fields_axes_change_the_costs(tmp_path: Path) -> None:
    doc = {
        "scenario": "base.yaml",
        "policies": ["rtfs"],
        "grid": {
            "accelerator.spec_fields.pe_array": ["16x16", "4x4"],
            "accelerator.spec_fields.chip.noc.link_bandwidth_bytes_per_cycle": [32],
        },
        "zip": {"accelerator.spec_fields.cores": [4]},
    }
    out = tmp_path / "out"
    run_sweep(_sweep(tmp_path, doc), out, workers=1)
    rows = _rows(out)
    assert [r["accelerator.spec_fields.pe_array"] for r in rows] == ["16x16", "4x4"]
    assert rows[1]["makespan_s"] > rows[0]["makespan_s"]
    assert rows[1]["energy_J_accelerator"] != rows[0]["energy_J_accelerator"]
    run = out / rows[1]["run_dir"]
    spec = yaml.safe_load((run / "spec.yaml").read_text())
    pe = spec["architecture"]["subtree"][0]["subtree"][0]["subtree"][0]
    assert pe["name"] == "PE[0..15]" and pe["local"][0]["attributes"]["meshX"] == 4
    frozen = api.load_scenario(run / "scenario.json")
    assert frozen.accelerator.spec == "spec.yaml"
    assert api.run(frozen, policy="rtfs").makespan_s == rows[1]["makespan_s"]


def test_spec_fields_axes_with_a_relative_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--out`` relative to a working directory that is not the sweep file's: the
    run's modified spec is still found (it was looked up beside the scenario)."""
    study = tmp_path / "study"
    study.mkdir()
    doc = {
        "scenario": "base.yaml",
        "policies": ["rtfs"],
        "grid": {"accelerator.spec_fields.cores": [2]},
    }
    sweep = _sweep(study, doc)
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(
        app, ["sweep", str(sweep.relative_to(tmp_path)), "--out", "out", "--workers", "1"]
    )
    assert res.exit_code == 0, res.output
    rows = _rows(tmp_path / "out")
    assert [r["status"] for r in rows] == ["ok"], rows


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"grid": {"network.ofdm.rbs": [5]}}, "grid.network.ofdm.rbs"),
        ({"grid": {"network.ofdm.num_rbs": []}}, "grid.network.ofdm.num_rbs"),
        ({"grid": {"network.ofdm.num_rbs": ["many"]}}, "grid.network.ofdm.num_rbs"),
        ({"zip": {"devices.a.distance_m": [1, 2], "seed": [1, 2]}}, "zip.seed"),
        ({"grid": {"accelerator.spec_fields.chip.nic": [1]}}, "accelerator.spec_fields.chip.nic"),
        ({"random": {"samples": 2, "axes": {"accelerator.latency_scale": {"low": 2, "high": 1}}}},
         "random.axes.accelerator.latency_scale"),
    ],
)  # fmt: skip
def test_bad_sweep_files_exit_2_naming_file_and_key(
    tmp_path: Path, section: dict[str, Any], key: str
) -> None:
    sweep = _sweep(tmp_path, {"scenario": "base.yaml", **section})
    out = tmp_path / "out"
    res = runner.invoke(app, ["sweep", str(sweep), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert str(sweep) in res.output and key in res.output and "Traceback" not in res.output
    assert not out.exists()  # refused before anything is written


def test_out_follows_the_safety_rules_of_run(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, {"scenario": "base.yaml"})
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    res = runner.invoke(app, ["sweep", str(sweep), "--out", str(mine)])
    assert res.exit_code == 2 and "did not write" in res.output
    assert os.listdir(mine) == ["notes.txt"]
    res = runner.invoke(app, ["sweep", str(sweep), "--out", str(tmp_path / "new"), "--resume"])
    assert res.exit_code == 2 and "nothing to resume" in res.output


def test_scheduler_without_dask_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails: not installed
    with pytest.raises(BackendUnavailableError, match=r'pip install "\.\[dask\]"'):
        make_executor("out", None, "tcp://127.0.0.1:1", False)


def test_a_bad_point_is_said_without_waiting_for_the_scheduler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dask client connects while the points are checked; a bad point is said at
    once, and the client that connects later is closed by its own thread."""
    distributed = pytest.importorskip("distributed")
    release, closed = threading.Event(), threading.Event()

    class PendingClient:
        def __init__(self, *args: object, **kwargs: object) -> None:
            assert release.wait(60)

        def close(self) -> None:
            closed.set()

    monkeypatch.setattr(distributed, "Client", PendingClient)
    doc = {**ISSUE_FORM, "grid": {"accelerator.spec_fields.chip.nic": [1]}}
    with pytest.raises(ConfigError, match=r"accelerator\.spec_fields\.chip\.nic"):
        run_sweep(_sweep(tmp_path, doc), tmp_path / "out", scheduler="tcp://127.0.0.1:1")
    assert not release.is_set() and not closed.is_set()  # said while still connecting
    release.set()
    assert closed.wait(60)


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """A real dask scheduler and two workers on loopback (stopped on every exit path)."""
    pytest.importorskip("distributed")
    dask = shutil.which("dask", path=str(Path(sys.executable).parent)) or "dask"
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    common = ["--no-dashboard"]
    procs = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), *common],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
        )
    ]  # fmt: skip
    try:
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [dask, "worker", address, "--nthreads", "1", "--host", "127.0.0.1", *common],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
                )
            )  # fmt: skip
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_dask_with_two_workers_gives_the_table_of_the_process_pool(
    tmp_path: Path, dask_cluster: str
) -> None:
    doc = {
        "scenario": "base.yaml",
        "policies": ["pacs"],
        "zip": {"devices.a.distance_m": [10, 40], "network.ofdm.num_rbs": [5, 10]},
        "random": {
            "samples": 2,
            "seed": 3,
            "axes": {"accelerator.latency_scale": {"low": 0.5, "high": 2.0}},
        },
    }
    sweep = _sweep(tmp_path, doc)
    t0 = time.monotonic()
    res = runner.invoke(
        app, ["sweep", str(sweep), "--out", str(tmp_path / "dask"), "--scheduler", dask_cluster]
    )
    assert res.exit_code == 0, res.output
    assert time.monotonic() - t0 < 120
    res = runner.invoke(
        app, ["sweep", str(sweep), "--out", str(tmp_path / "pool"), "--workers", "2"]
    )
    assert res.exit_code == 0, res.output

    def table(out: Path) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "wall_s"} for r in _rows(out)]

    on_dask, on_pool = table(tmp_path / "dask"), table(tmp_path / "pool")
    assert len(on_dask) == 4 and on_dask == on_pool


def test_every_sweep_file_key_and_shortcut_is_documented() -> None:
    from owin_cosim.study.spec_fields import PREFIX, SHORTCUTS
    from owin_cosim.study.sweep_file import RandomSection, SweepFile
    from tests.conftest import REPO

    text = (REPO / "docs" / "sweep.md").read_text(encoding="utf-8")
    keys = [f.alias or k for k, f in SweepFile.model_fields.items()]
    keys += [f"random.{k}" for k in RandomSection.model_fields]
    keys += [PREFIX + s for s in SHORTCUTS]
    missing = [k for k in keys if f"`{k}`" not in text]
    assert not missing, f"undocumented in docs/sweep.md: {missing}"
