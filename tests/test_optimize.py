"""The plan search (``owin_cosim.optimize``), ``owin-cosim optimize`` and policy ``owin``.

Everything runs on the small scenario of :func:`tests.conftest.scenario_dict` (no
fading: the planning surrogate and the real channel agree, so a planning makespan can
be compared with a run's) with budgets of a few dozen evaluations.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from owin_cosim.api import build_problem
from owin_cosim.cli import app
from owin_cosim.errors import ConfigError
from owin_cosim.optimize import search, start_plan
from owin_cosim.optimize.state import from_plan, to_plan
from owin_cosim.policies import Pacs, make_policy
from owin_cosim.scenario.assemble import assemble
from owin_cosim.scenario.schema import Scenario
from owin_cosim.sim.evaluator import Evaluator
from owin_cosim.system.plan import Plan
from owin_cosim.system.plan_file import write_plan
from owin_cosim.system.problem import Problem
from tests.conftest import scenario_dict, write_scenario
from tests.test_properties import scenarios

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Problem]:
    path = write_scenario(tmp_path_factory.mktemp("opt") / "tiny.yaml", scenario_dict())
    return path, build_problem(path)


# ---- the search -----------------------------------------------------------------------
@pytest.mark.parametrize("start", ["rtfs", "pacs"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_never_worse_than_its_start(tiny: tuple[Path, Problem], start: str, seed: int) -> None:
    _, problem = tiny
    first = start_plan(problem, start)
    result = search(problem, first, budget=12, seed=seed)
    again = Evaluator(problem)
    # The reported makespans are the plans' own (a fresh evaluator agrees), and the
    # best is no worse than the start, whatever the seed.
    assert result.start_s == again.makespan(first)
    assert again.makespan(result.plan) == result.best_s <= result.start_s
    assert result.evaluations == len(result.log) == 12
    assert [r.best_s for r in result.log] == sorted((r.best_s for r in result.log), reverse=True)
    assert result.plan.policy == "owin"


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.sampled_from(["rtfs", "pacs"]), st.integers(0, 2**32))
def test_random_scenarios_never_worse_and_repeatable(
    data: dict[str, Any], start: str, seed: int
) -> None:
    problem = assemble(Scenario.model_validate(data), Path("prop.yaml"))
    first = start_plan(problem, start)
    result = search(problem, first, budget=6, seed=seed)
    assert result.best_s <= result.start_s == Evaluator(problem).makespan(first)
    assert Evaluator(problem).makespan(result.plan) == result.best_s
    again = search(problem, first, budget=6, seed=seed)
    assert again.log == result.log and again.plan == result.plan


def test_improves_a_start_that_holds_compute_back(tiny: tuple[Path, Problem]) -> None:
    # RTFS holds every layer until the last upload; letting them start on arrival is a
    # move away, and on this scenario it is strictly better.
    _, problem = tiny
    result = search(problem, start_plan(problem, "rtfs"), budget=30, seed=0)
    assert result.best_s < result.start_s
    assert result.plan.notes["optimizer"]["start_policy"] == "rtfs"


def test_canonical_state_keeps_the_plan(tiny: tuple[Path, Problem]) -> None:
    # from_plan drops phases that hold for no time and completes the last phase's
    # group: the coordinator must run the canonical plan exactly as the original.
    _, problem = tiny
    ev = Evaluator(problem)
    order = start_plan(problem, "pacs").chunk_order
    for name, phases in Pacs().candidates(problem).items():
        plan = Plan("p", phases, order, "on_arrival")
        state = from_plan(plan, problem)
        assert sorted(d for g in state.groups for d in g) == ["a", "b"], name
        assert ev.makespan(to_plan(state, problem, "p")) == ev.makespan(plan), name


def test_wall_clock_budget(tiny: tuple[Path, Problem]) -> None:
    _, problem = tiny
    result = search(problem, start_plan(problem, "pacs"), budget=None, seed=0, time_s=0.3)
    assert 1 <= result.evaluations < 1000 and result.best_s <= result.start_s
    with pytest.raises(ValueError, match="budget"):
        search(problem, start_plan(problem, "pacs"), budget=0)


def test_a_custom_oracle_is_used(tiny: tuple[Path, Problem]) -> None:
    _, problem = tiny
    calls: list[Plan] = []

    def oracle(plan: Plan) -> float:
        calls.append(plan)
        return float(len(calls))  # every candidate looks worse than the start

    result = search(problem, start_plan(problem, "pacs"), budget=6, seed=0, evaluate=oracle)
    assert len(calls) == 6 and result.best_s == 1.0
    assert result.plan.radio_phases == calls[0].radio_phases  # the start's decisions


def test_fields_the_search_does_not_edit_pass_through(tiny: tuple[Path, Problem]) -> None:
    # An exact plan's RB grid is not part of the search's state: every candidate, and
    # the result, keeps the start's.
    _, problem = tiny
    grid = (("a",) * 5 + ("b",) * 5,) * 3
    first = replace(start_plan(problem, "rtfs"), radio_grid=grid)
    seen: list[Plan] = []
    ev = Evaluator(problem)

    def oracle(plan: Plan) -> float:
        seen.append(plan)
        return ev.makespan(plan)

    result = search(problem, first, budget=8, seed=0, evaluate=oracle)
    assert len(seen) == 8 and all(p.radio_grid == grid for p in [*seen, result.plan])
    # ... while they did differ in what the search edits.
    assert any(replace(p, policy=first.policy) != first for p in seen[1:])


# ---- the command ----------------------------------------------------------------------
def _optimize(tmp_path: Path, scenario: Path, out: str, *args: str) -> Path:
    res = runner.invoke(app, ["optimize", str(scenario), "--out", str(tmp_path / out), *args])
    assert res.exit_code == 0, res.output
    return tmp_path / out


def test_cli_writes_its_files_and_run_accepts_the_plan(
    tmp_path: Path, tiny: tuple[Path, Problem]
) -> None:
    scenario, _ = tiny
    out = _optimize(tmp_path, scenario, "o", "--start", "rtfs", "--budget", "20", "--seed", "3")
    doc = json.loads((out / "optimize.json").read_text())
    assert doc["start"] == "rtfs" and doc["evaluations"] == 20 and doc["seed"] == 3
    assert doc["best_makespan_s"] <= doc["start_makespan_s"] and doc["budget"] == 20
    rows = (out / "convergence.csv").read_text().splitlines()
    assert rows[0] == "evaluation,makespan_s,best_s,accepted,move" and len(rows) == 21
    assert float(rows[-1].split(",")[2]) == doc["best_makespan_s"]
    res = runner.invoke(
        app, ["run", str(scenario), "--plan", str(out / "plan.json"), "--out", str(tmp_path / "r")]
    )
    assert res.exit_code == 0, res.output
    # No fading: the real run sees the planning channel, so it ends when planned.
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["makespan_s"] == doc["best_makespan_s"]
    # Starting from the plan file just written, a search never gets worse either.
    again = _optimize(tmp_path, scenario, "o2", "--start", str(out / "plan.json"), "--budget", "3")
    doc2 = json.loads((again / "optimize.json").read_text())
    assert doc2["start_makespan_s"] == doc["best_makespan_s"] >= doc2["best_makespan_s"]


def test_cli_same_seed_same_bytes(tmp_path: Path, tiny: tuple[Path, Problem]) -> None:
    scenario, _ = tiny
    args = ("--start", "rtfs", "--budget", "15", "--seed", "7")
    a, b = (_optimize(tmp_path, scenario, name, *args) for name in ("a", "b"))
    for name in ("plan.json", "convergence.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    c = _optimize(tmp_path, scenario, "c", "--start", "rtfs", "--budget", "15", "--seed", "8")
    assert (c / "convergence.csv").read_bytes() != (a / "convergence.csv").read_bytes()


def test_cli_time_budget_and_real_check(tmp_path: Path, tiny: tuple[Path, Problem]) -> None:
    scenario, problem = tiny
    out = _optimize(tmp_path, scenario, "t", "--start", "rtfs", "--time", "0.5", "--check", "real")
    doc = json.loads((out / "optimize.json").read_text())
    assert doc["time_s"] == 0.5 and doc["budget"] is None and doc["evaluations"] >= 1
    rows = (out / "convergence.csv").read_text().splitlines()
    assert len(rows) == doc["evaluations"] + 1
    check = doc["check"]
    assert check["network"] == "ofdm"
    # The real backend's own runs of the start and the best plan (no fading here: the
    # same times as on the planning surrogate).
    real = Evaluator(problem, "real")
    assert check["start_makespan_s"] == real.makespan(start_plan(problem, "rtfs"))
    assert check["best_makespan_s"] == doc["best_makespan_s"]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--budget", "0"], "--budget"),
        (["--budget", "-3"], "--budget"),
        (["--time", "0"], "--time"),
        (["--time", "-1.5"], "--time"),
        (["--budget", "5", "--time", "1"], "--budget"),
        (["--start", "greedy"], "--start"),
        (["--check", "ns3"], "--check"),
    ],
)
def test_cli_bad_options_exit_2(
    tmp_path: Path, tiny: tuple[Path, Problem], args: list[str], option: str
) -> None:
    scenario, _ = tiny
    res = runner.invoke(app, ["optimize", str(scenario), "--out", str(tmp_path / "o"), *args])
    assert res.exit_code == 2, res.output
    assert option in res.output
    assert not (tmp_path / "o").exists()  # refused before anything is written


def test_cli_start_plan_for_another_scenario(tmp_path: Path, tiny: tuple[Path, Problem]) -> None:
    scenario, problem = tiny
    other = scenario_dict(name="other")
    other["devices"][0]["name"] = "z"
    other["model"]["encoders"]["z"] = other["model"]["encoders"].pop("a")
    other_path = write_scenario(tmp_path / "other.yaml", other)
    foreign = tmp_path / "foreign.json"
    write_plan(foreign, start_plan(problem, "pacs"), problem)
    res = runner.invoke(
        app, ["optimize", str(other_path), "--start", str(foreign), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2, res.output
    assert "--start" in res.output and "no device called 'a'" in res.output
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    broken = ["--start", str(tmp_path / "broken.json"), "--out", str(tmp_path / "o")]
    res = runner.invoke(app, ["optimize", str(scenario), *broken])
    assert res.exit_code == 2 and "--start" in res.output and "invalid JSON" in res.output


def test_cli_out_is_not_a_users_directory(tmp_path: Path, tiny: tuple[Path, Problem]) -> None:
    scenario, _ = tiny
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep", encoding="utf-8")
    res = runner.invoke(app, ["optimize", str(scenario), "--budget", "2", "--out", str(mine)])
    assert res.exit_code == 2 and "--out" in res.output
    assert (mine / "notes.txt").read_text() == "keep" and len(list(mine.iterdir())) == 1


# ---- policy owin ----------------------------------------------------------------------
def test_policy_params_are_validated() -> None:
    assert make_policy("owin", {"budget": 7, "start": "rtfs"}).describe_params() == {
        "budget": 7,
        "seed": 0,
        "start": "rtfs",
    }
    for bad in ({"budget": 0}, {"start": "greedy"}, {"budgets": 5}):
        with pytest.raises(ConfigError, match=r"policy\.params"):
            make_policy("owin", bad, "s.yaml")


def test_policy_owin_in_compare(tmp_path: Path) -> None:
    scenario = write_scenario(
        tmp_path / "s.yaml",
        scenario_dict(policy={"name": "owin", "params": {"budget": 10, "seed": 4}}),
    )
    out = tmp_path / "cmp"
    res = runner.invoke(
        app,
        ["compare", str(scenario), "--policies", "rtfs,pacs,owin", "--out", str(out), "--json"],
    )
    assert res.exit_code == 0, res.output
    span = {
        p: json.loads((out / p / "summary.json").read_text())["makespan_s"]
        for p in ("rtfs", "pacs", "owin")
    }
    plan = json.loads((out / "owin" / "plan.json").read_text())
    assert plan["policy"] == "owin" and plan["notes"]["optimizer"]["budget"] == 10
    assert plan["notes"]["optimizer"]["start_policy"] == "pacs"
    assert plan["notes"]["optimizer"]["seed"] == 4
    assert span["owin"] <= span["pacs"]  # no fading: the planning channel is the run's
