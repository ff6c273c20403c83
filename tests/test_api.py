"""The library API, picklable problems, registries and the CLI's flag handling."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import pickle
import runpy
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from owin_cosim import api
from owin_cosim.cli import app
from owin_cosim.errors import ConfigError
from owin_cosim.policies import POLICIES, Rtfs
from owin_cosim.results.records import RunResult
from owin_cosim.system.problem import Problem
from tests.conftest import REPO, estimator_process, scenario_dict, write_scenario

EXAMPLES = REPO / "examples"
runner = CliRunner()


def _fingerprint(result: RunResult) -> str:
    """Everything a run reports, as one string (wall-clock times left out)."""
    summary = result.summary()
    summary.pop("wall_s", None)
    rows: list[object] = [dataclasses.astuple(c) for c in result.chunks]
    rows += [dataclasses.astuple(x) for x in result.layers]
    return json.dumps([summary, rows], sort_keys=True, default=str)


@pytest.fixture(scope="module")
def estimator_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with estimator_process(tmp_path_factory.mktemp("svc") / "costs.sqlite") as endpoint:
        yield endpoint


def test_run_matches_the_cli_and_takes_names_or_objects(tmp_path: Path) -> None:
    path = EXAMPLES / "quickstart.yaml"
    by_name = api.run(path, policy="rtfs")
    by_object = api.run(api.build_problem(path), policy=Rtfs())
    assert _fingerprint(by_name) == _fingerprint(by_object)
    res = runner.invoke(
        app, ["run", str(path), "--policy", "rtfs", "--out", str(tmp_path / "r"), "--no-plot"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["makespan_s"] == by_name.makespan_s


def test_compare_keeps_order_and_refuses_duplicates() -> None:
    problem = api.build_problem(EXAMPLES / "quickstart.yaml")
    results = api.compare(problem, ["pacs", "rtfs"])
    assert list(results) == ["pacs", "rtfs"]
    assert results["pacs"].makespan_s < results["rtfs"].makespan_s
    with pytest.raises(ConfigError, match="given twice"):
        api.compare(problem, ["rtfs", "rtfs"])


def test_override_changes_one_key_and_validates() -> None:
    base = api.load_scenario(EXAMPLES / "quickstart.yaml")
    slower = api.override(base, {"accelerator.latency_scale": 2.0, "devices.camera.chunks": 2})
    assert slower.accelerator.latency_scale == 2.0 and base.accelerator.latency_scale == 1.0
    assert slower.devices[0].chunks == 2 and slower.source_file == base.source_file
    with pytest.raises(ConfigError, match=r"network\.ofdm\.rbs: unknown key"):
        api.override(base, {"network.ofdm.rbs": 3})
    with pytest.raises(ConfigError, match="no item named 'radar'"):
        api.override(base, {"devices.radar.distance_m": 3})
    with pytest.raises(ConfigError, match="num_rbs"):
        api.override(base, {"network.ofdm.num_rbs": 0})


def test_api_usage_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    module = runpy.run_path(str(EXAMPLES / "api_usage.py"))
    rows = module["main"]()
    assert len(rows) == 6 and "PACS gain" in capsys.readouterr().out
    by_key = {(scale, rbs): (rtfs, pacs) for scale, rbs, rtfs, pacs in rows}
    quick = api.compare(EXAMPLES / "quickstart.yaml", ["rtfs", "pacs"])
    assert by_key[(1.0, 50)] == (quick["rtfs"].makespan_s, quick["pacs"].makespan_s)
    # a slower chip never shortens a schedule
    for rbs in (25, 50):
        assert by_key[(0.5, rbs)][0] < by_key[(1.0, rbs)][0] < by_key[(2.0, rbs)][0]


# ---- pickling -----------------------------------------------------------------------
def _example_problems(estimator: str) -> dict[str, Problem]:
    problems = {
        name: api.build_problem(EXAMPLES / f"{name}.yaml")
        for name in ("quickstart", "low_heterogeneity", "quickstart-ns3")
    }
    containers = api.override(
        api.load_scenario(EXAMPLES / "quickstart-containers.yaml"),
        # the service of the example's compose file, here on loopback (so without its
        # CURVE keys); a small search budget
        {
            "accelerator.estimator": estimator,
            "accelerator.estimator_keys": None,
            "accelerator.mapper.evaluations": 20,
        },
    )
    problems["quickstart-containers"] = api.build_problem(containers)
    return problems


def test_every_example_problem_pickles(estimator_service: str) -> None:
    for name, problem in _example_problems(estimator_service).items():
        loaded = pickle.loads(pickle.dumps(problem))
        assert isinstance(loaded, Problem), name
        assert loaded.dag.names == problem.dag.names
        assert np.array_equal(loaded.dag.duration_s, problem.dag.duration_s)
        assert loaded.network == problem.network
        # planning runs on the surrogate: the same plan from either copy
        plan_a = api.make_policy("pacs").plan(problem)
        plan_b = api.make_policy("pacs").plan(loaded)
        assert plan_a.describe() == plan_b.describe(), name


def test_a_pickled_problem_gives_the_same_results_bit_for_bit() -> None:
    problem = api.build_problem(EXAMPLES / "quickstart.yaml")
    loaded = pickle.loads(pickle.dumps(problem))
    for policy in ("rtfs", "pacs"):
        assert _fingerprint(api.run(problem, policy)) == _fingerprint(api.run(loaded, policy))


def _makespan_in_worker(problem: Problem) -> float:
    return api.run(problem, "pacs").makespan_s


def test_a_problem_runs_in_another_process() -> None:
    problem = api.build_problem(EXAMPLES / "low_heterogeneity.yaml")
    ctx = multiprocessing.get_context("spawn")  # nothing inherited: only the pickle travels
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        remote = pool.submit(_makespan_in_worker, problem).result(timeout=120)
    assert remote == api.run(problem, "pacs").makespan_s


# ---- registries and flags -----------------------------------------------------------
def test_registries_list_the_builtins_in_order() -> None:
    from owin_cosim.accel.registry import COST_BACKENDS
    from owin_cosim.network.registry import NETWORK_BACKENDS

    assert POLICIES.names()[:2] == ["rtfs", "pacs"]
    assert COST_BACKENDS.names()[:3] == ["analytic", "loopnest", "timeloop"]
    assert NETWORK_BACKENDS.names()[:2] == ["ofdm", "ns3"]
    with pytest.raises(ConfigError, match=r"s\.yaml: policy\.name: unknown policy 'magic'"):
        POLICIES.load("magic", "s.yaml", "policy.name")


def test_version_flag() -> None:
    from owin_cosim import __version__

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"owin-cosim {__version__}"


def test_duplicate_policies_are_refused(tiny_path: Path) -> None:
    res = runner.invoke(app, ["compare", str(tiny_path), "--policies", "rtfs,rtfs"])
    assert res.exit_code == 2
    assert "--policies" in res.output and "rtfs given more than once" in res.output


def test_unknown_policy_flag_blames_the_flag(tiny_path: Path) -> None:
    res = runner.invoke(app, ["run", str(tiny_path), "--policy", "magic"])
    assert res.exit_code == 2
    assert "--policy: unknown policy 'magic'" in res.output
    assert str(tiny_path) not in res.output  # the scenario file is not at fault
    res = runner.invoke(app, ["compare", str(tiny_path), "--policies", "rtfs,magic"])
    assert res.exit_code == 2 and "--policies: unknown policy 'magic'" in res.output


def test_error_text_is_never_read_as_markup(tmp_path: Path) -> None:
    path = write_scenario(tmp_path / "m.yaml", scenario_dict(name="x[/bold]y"))
    res = runner.invoke(app, ["validate", str(path)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    path = write_scenario(tmp_path / "n.yaml", scenario_dict(policy={"name": "[/x]"}))
    res = runner.invoke(app, ["validate", str(path)])
    assert res.exit_code == 2 and "unknown policy '[/x]'" in res.output


def test_compare_prints_a_plain_table_off_terminal_and_json(
    tmp_path: Path, tiny_path: Path
) -> None:
    # CliRunner's output is not a terminal: every header and value in full
    res = runner.invoke(app, ["compare", str(tiny_path), "--out", str(tmp_path / "c"), "--no-plot"])
    assert res.exit_code == 0, res.output
    header = res.output.splitlines()[0].split("  ")
    assert [h.strip() for h in header if h.strip()][:3] == ["policy", "makespan ms", "bound ms"]
    saved = json.loads((tmp_path / "c" / "comparison.json").read_text())
    ms = f"{saved['results']['pacs']['makespan_s'] * 1e3:.2f}"
    assert ms in res.output and "…" not in res.output
    res = runner.invoke(
        app, ["compare", str(tiny_path), "--out", str(tmp_path / "d"), "--no-plot", "--json"]
    )
    assert res.exit_code == 0, res.output
    printed = json.loads(res.output)
    assert printed["results"].keys() == saved["results"].keys()
    assert printed["results"]["pacs"]["makespan_s"] == saved["results"]["pacs"]["makespan_s"]
