"""The study (``examples/study/``, ``docs/results.md``): policy ``exact`` (the CP-SAT
reference inside sweeps), the optimum shared by every row of a point and seed, the
``modality_heterogeneity`` knob, and the study's sweep files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from owin_cosim import api
from owin_cosim.cli import app
from owin_cosim.errors import BackendUnavailableError
from owin_cosim.exact import solve
from owin_cosim.policies.pacs import Pacs
from owin_cosim.policies.registry import make_policy
from owin_cosim.policies.rtfs import Rtfs
from owin_cosim.scenario.heterogeneity import interpolate
from owin_cosim.study.plots import gap_to_bound
from owin_cosim.study.points import resolve_runs
from owin_cosim.study.sweep_file import load_sweep_file
from tests.conftest import SPECS, scenario_dict, write_scenario

runner = CliRunner()
STUDY = Path(__file__).resolve().parents[1] / "examples" / "study"


def _tiny(tmp_path: Path, **top: Any) -> Path:
    """Two devices, 2 cores (a DRAM that never binds), 2 RBs: CP-SAT proves the optimum
    in about a second."""
    d = scenario_dict()
    d["devices"][0]["payload"]["bytes"] = 1200
    d["devices"][1]["payload"]["bytes"] = 900
    d["network"] = {"backend": "ofdm", "ofdm": {"num_rbs": 2}}
    d["accelerator"]["spec"] = str(STUDY / "small_chip.yaml")
    d["policy"] = {"name": "exact", "params": {"time_limit_s": 20}}
    for dev in ("a", "b"):
        d["model"]["encoders"][dev]["params"] = {"in_features": 64, "rows": 2, "hidden": [64]}
    d.update(top)
    return write_scenario(tmp_path / "tiny2.yaml", d)


# ---- policy exact ---------------------------------------------------------------------
def test_policy_exact_runs_the_solvers_plan_and_reports_its_optimum(tmp_path: Path) -> None:
    problem = api.build_problem(_tiny(tmp_path))
    result = api.run(problem, make_policy("exact", {"time_limit_s": 20}))
    refs = {"rtfs": Rtfs().plan(problem), "pacs": Pacs().plan(problem)}
    sol = solve(problem, 20.0, references=refs)
    assert sol.status == "OPTIMAL"
    assert result.makespan_s == sol.makespan_s  # the run replays the solver's plan
    plan = result.summary()["plan"]
    assert plan["status"] == "OPTIMAL" and plan["optimum_s"] == result.makespan_s
    assert plan["bound_s"] <= result.makespan_s and plan["gap"] <= 1e-5
    assert plan["clairvoyant"] is True and "solve_s" not in plan  # machine-independent
    assert all(ms >= result.makespan_s - 1e-9 for ms in plan["references"].values())


def test_policy_exact_without_ortools_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ortools.sat.python

    problem = api.build_problem(_tiny(tmp_path))
    monkeypatch.setitem(sys.modules, "ortools.sat.python.cp_model", None)
    monkeypatch.delattr(ortools.sat.python, "cp_model", raising=False)
    with pytest.raises(BackendUnavailableError, match=r'pip install "\.\[exact\]"'):
        make_policy("exact").plan(problem)


def test_policy_exact_params_are_checked(tmp_path: Path) -> None:
    res = runner.invoke(app, ["validate", str(_tiny(tmp_path, policy={"name": "exact",
                              "params": {"time_limit_s": 0}}))])  # fmt: skip
    assert res.exit_code == 2 and "policy.params.time_limit_s" in res.output, res.output


def test_a_sweep_of_pacs_and_exact_gives_both_rows_the_optimum(tmp_path: Path) -> None:
    _tiny(tmp_path)
    sweep = tmp_path / "sweep.yaml"
    doc = {"scenario": "tiny2.yaml", "policies": ["pacs", "exact"], "seeds": [1]}
    sweep.write_text(yaml.safe_dump(doc), encoding="utf-8")
    out = tmp_path / "out"
    res = runner.invoke(app, ["sweep", str(sweep), "--out", str(out), "--workers", "1"])
    assert res.exit_code == 0, res.output
    rows = pq.read_table(out / "results.parquet").to_pylist()
    by = {r["policy"]: r for r in rows}
    assert set(by) == {"pacs", "exact"} and {r["status"] for r in rows} == {"ok"}
    optimum = by["exact"]["makespan_s"]
    assert by["exact"]["optimum_s"] == by["pacs"]["optimum_s"] == optimum
    assert by["pacs"]["makespan_s"] >= optimum - 1e-9
    # the gap figure reads the optimum, not the lower bound
    assert gap_to_bound(by["pacs"]) == by["pacs"]["makespan_s"] / optimum - 1.0
    assert gap_to_bound(by["exact"]) == 0.0


# ---- modality_heterogeneity -------------------------------------------------------------
def test_heterogeneity_keeps_the_totals_and_equalises_at_zero(tmp_path: Path) -> None:
    written = api.build_problem(_tiny(tmp_path))
    half = api.build_problem(_tiny(tmp_path, modality_heterogeneity=0.5))
    flat = api.build_problem(_tiny(tmp_path, modality_heterogeneity=0.0))
    same = api.build_problem(_tiny(tmp_path, modality_heterogeneity=1.0))
    assert list(same.dag.duration_s) == list(written.dag.duration_s)
    assert [d.payload_bytes for d in same.devices] == [1200, 900]
    assert [d.payload_bytes for d in flat.devices] == [1050, 1050]
    sizes = [d.payload_bytes for d in half.devices]
    assert sum(sizes) == 2100 and 1050 < sizes[0] < 1200

    def work(p: Any) -> list[float]:
        return [float(p.dag.duration_s[p.encoder_layers(k)].sum()) for k in range(2)]

    w, f, h = work(written), work(flat), work(half)
    assert f[0] == pytest.approx(f[1]) and sum(f) == pytest.approx(sum(w))
    assert sum(h) == pytest.approx(sum(w)) and min(w) < min(h) < max(h) < max(w)
    # fusion and head are left as they are
    rest = [v for v, g in enumerate(written.dag.groups) if not g.startswith("encoder:")]
    assert [flat.dag.duration_s[v] for v in rest] == [written.dag.duration_s[v] for v in rest]
    assert interpolate([1.0, 9.0], 0.5) == [2.5, 7.5]


@pytest.mark.parametrize("value", [-0.1, 1.5, "high", ".nan"])
def test_bad_heterogeneity_values_exit_2_naming_the_key(tmp_path: Path, value: Any) -> None:
    path = _tiny(tmp_path)
    text = path.read_text(encoding="utf-8") + f"modality_heterogeneity: {value}\n"
    path.write_text(text, encoding="utf-8")
    res = runner.invoke(app, ["validate", str(path)])
    assert res.exit_code == 2, res.output
    assert "modality_heterogeneity" in res.output


def test_heterogeneity_needs_an_encoder_per_device(tmp_path: Path) -> None:
    doc = {
        "devices": [
            {"name": "dev0", "modality": "m0", "distance_m": 10, "payload": {"bytes": 400}},
            {"name": "dev1", "modality": "m1", "distance_m": 20, "payload": {"bytes": 900}},
        ],
        "model": {"file": "model.yaml"},
        "accelerator": {"spec": str(SPECS / "mc4.yaml")},
        "modality_heterogeneity": 0.5,
    }
    # dev1's only layer has a group of its own: no encoder layers to scale for dev1
    layers = [
        {"name": "dev0/fc", "op": "matmul", "device": "dev0", "dims": {"C": 8, "M": 8}},
        {"name": "dev1/fc", "op": "matmul", "device": "dev1", "dims": {"C": 8, "M": 8},
         "group": "stem"},
        {"name": "fuse", "op": "matmul", "inputs": ["dev0/fc", "dev1/fc"],
         "dims": {"C": 16, "M": 4}},
    ]  # fmt: skip
    (tmp_path / "model.yaml").write_text(yaml.safe_dump({"layers": layers}), encoding="utf-8")
    path = write_scenario(tmp_path / "file.yaml", doc)
    res = runner.invoke(app, ["validate", str(path)])
    assert res.exit_code == 2, res.output
    assert "modality_heterogeneity" in res.output and "encoder" in res.output


# ---- the study's sweep files ------------------------------------------------------------
@pytest.mark.parametrize(("name", "points"), [("study.yaml", 81), ("exact.yaml", 24)])
def test_the_study_sweep_files_validate(name: str, points: int) -> None:
    file = STUDY / name
    sweep = load_sweep_file(file)
    keys = [*sweep.grid]
    assert keys == [
        "accelerator.spec_fields.cores",
        "network.ofdm.num_rbs",
        "accelerator.latency_scale",
        "modality_heterogeneity",
    ]
    assert {"rtfs", "pacs", "owin"} <= set(sweep.policies or []) and len(sweep.seeds or []) >= 2
    # every point checked (as `owin-cosim sweep` does first), with one policy and seed:
    # the others change only the seed and the policy's name (the full file takes 30 s)
    one = sweep.model_copy(update={"policies": ["rtfs"], "seeds": (sweep.seeds or [])[:1]})
    found, runs = resolve_runs(one, file)
    assert len(found) == len(runs) == points
    base = api.load_scenario(Path(runs[0].source))
    make_policy(base.policy.name, base.policy.params)  # the base policy's params
