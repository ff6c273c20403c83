"""Runtime re-planning (``owin-cosim run --plan P --replan RULE``, ``owin_cosim.runtime``).

The crafted case: device ``b`` sends first (a plan that holds ``a`` back until ``b`` is
done), ``a`` has a heavy encoder, and in the real run ``b`` stands twice as far from
the base station as the planning surrogate assumes, so its chunks arrive late.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from owin_cosim.cli import app
from owin_cosim.errors import ConfigError
from owin_cosim.network.base import Delivery
from owin_cosim.runtime import ReplanRule, parse_rule, run_with_replanning
from owin_cosim.runtime.candidates import candidates, continuation, residual_view
from owin_cosim.scenario.assemble import load_problem
from owin_cosim.sim.coordinator import execute, forecast
from owin_cosim.sim.evaluator import Evaluator
from owin_cosim.sim.state import RunControl, RunState
from owin_cosim.system.plan import Plan, RadioPhase
from owin_cosim.system.plan_file import write_plan
from owin_cosim.system.problem import Problem
from tests.conftest import scenario_dict, write_scenario

runner = CliRunner()


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Problem, Problem, Plan]:
    """The scenario file, its problem, the same with ``b`` farther in reality, the plan."""
    sc = scenario_dict()
    sc["devices"][1]["chunks"] = 4
    sc["model"]["encoders"]["a"]["params"].update({"rows": 256, "hidden": [4096, 4096, 4096]})
    path = write_scenario(tmp_path_factory.mktemp("replan") / "crafted.yaml", sc)
    problem = load_problem(path)[1]
    far = tuple(
        dataclasses.replace(d, distance_m=60.0) if d.name == "b" else d
        for d in problem.network.devices
    )
    real = dataclasses.replace(problem, network=dataclasses.replace(problem.network, devices=far))
    order = tuple((d.name, c) for d in problem.devices for c in range(d.chunks))
    plan = Plan(
        "b-first",
        (RadioPhase({"b": 1.0}, ("b",)), RadioPhase({"a": 1.0}, ("a",))),
        order,
        "on_arrival",
    )
    return path, problem, real, plan


def _events(result: Any) -> tuple[list[Any], list[Any]]:
    return list(result.chunks), list(result.layers)


# ---- the rule -------------------------------------------------------------------------


def test_rule_defaults_and_units() -> None:
    assert parse_rule("late") == ReplanRule()
    rule = parse_rule("late, threshold=250us, budget=3, max=0, cooldown=2ms, on=layers")
    assert rule == ReplanRule(250e-6, 3, 0, 2e-3, "layers")
    assert parse_rule("late,threshold=0.004").threshold_s == 0.004
    assert parse_rule("late,threshold=1s").threshold_s == 1.0


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "got ''"),
        ("early", "got 'early'"),
        ("late,threshold=fast", "threshold='fast' is not a duration"),
        ("late,threshold=-1ms", "is not a duration"),
        ("late,budget=0", "budget='0' is not an integer in 1..256"),
        ("late,budget=2.5", "not an integer"),
        ("late,max=x", "max='x' is not an integer in 0..1000"),
        ("late,speed=1", "'speed=1' is not a known key=value"),
        ("late,budget", "'budget' is not a known key=value"),
        ("late,budget=2,budget=3", "budget given twice"),
        ("late,on=radio", "on='radio'"),
    ],
)
def test_bad_rules_name_the_flag(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_rule(text)
    assert info.value.key == "--replan"
    assert says in str(info.value) and "expected 'late'" in str(info.value)


def test_cli_bad_rule_and_replan_without_plan_exit_2(
    crafted: tuple[Path, Problem, Problem, Plan], tmp_path: Path
) -> None:
    path, problem, _, plan = crafted
    plan_path = tmp_path / "plan.json"
    write_plan(plan_path, plan, problem)
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", str(path), "--replan", "late", "--out", str(out)])
    assert res.exit_code == 2 and "--replan" in res.output and "needs --plan" in res.output
    res = runner.invoke(
        app, ["run", str(path), "--plan", str(plan_path), "--replan", "soon", "--out", str(out)]
    )
    assert res.exit_code == 2 and "--replan" in res.output and "expected 'late'" in res.output
    assert not out.exists()  # refused before anything was written


# ---- re-planning ----------------------------------------------------------------------


def test_late_deliveries_trigger_a_replan_that_improves_the_makespan(
    crafted: tuple[Path, Problem, Problem, Plan],
) -> None:
    _, problem, real, plan = crafted
    plain = execute(real, plan)
    replanned = run_with_replanning(real, plan, parse_rule("late"))
    s = replanned.summary()
    assert s["planned_makespan_s"] == Evaluator(problem).makespan(plan)
    assert s["replans"], "b's first chunk is late: a re-plan must trigger"
    first = s["replans"][0]
    assert first["why"]["kind"] == "chunk" and first["why"]["name"] == "b#0"
    assert first["why"]["late_s"] > 1e-3 and first["at_s"] == pytest.approx(0.006)
    assert "radio_phases" in first["changed"]
    assert first["predicted_after_s"] < first["predicted_before_s"]
    # The re-plan lets a's data (and its heavy encoder) go before the rest of b's.
    assert s["makespan_s"] < 0.9 * plain.makespan_s
    assert s["makespan_s"] < s["replans"][0]["predicted_before_s"]
    assert len(s["replans"]) <= 8
    # The continuation plus at most the budget (8) per re-plan, all counted.
    assert all(2 <= r["evaluations"] <= 9 for r in s["replans"])
    assert sum(r["evaluations"] for r in s["replans"]) == s["replan_evaluations"]
    # Every key of a plain run's summary is there with its meaning unchanged.
    assert set(plain.summary()) <= set(s)
    assert s["plan"] == plain.summary()["plan"]


def test_cap_of_zero_replans_is_the_plain_run(
    crafted: tuple[Path, Problem, Problem, Plan],
) -> None:
    _, _, real, plan = crafted
    capped = run_with_replanning(real, plan, parse_rule("late,max=0"))
    assert capped.summary()["replans"] == []
    assert _events(capped) == _events(execute(real, plan))


def test_on_time_run_never_replans_and_equals_the_plain_run(
    crafted: tuple[Path, Problem, Problem, Plan],
) -> None:
    _, problem, _, plan = crafted
    # The real run on the surrogate's own realisation: every event exactly as planned.
    same = dataclasses.replace(problem, network=problem.planning_network)
    result = run_with_replanning(same, plan, parse_rule("late,threshold=0"))
    plain = execute(same, plan)
    s = result.summary()
    assert s["replans"] == [] and s["replan_evaluations"] == 0
    assert s["planned_makespan_s"] == s["makespan_s"] == plain.makespan_s
    assert _events(result) == _events(plain)
    assert {k: v for k, v in s.items() if k not in result.runtime} == plain.summary()


def test_replanning_is_deterministic(crafted: tuple[Path, Problem, Problem, Plan]) -> None:
    _, _, real, plan = crafted
    rule = parse_rule("late,threshold=0.5ms,budget=4,max=3")
    one, two = (run_with_replanning(real, plan, rule) for _ in range(2))
    assert json.dumps(one.summary(), sort_keys=True) == json.dumps(two.summary(), sort_keys=True)
    assert _events(one) == _events(two)


class _Snap:
    """A hook that keeps the state at the first delivery (and changes nothing)."""

    def __init__(self) -> None:
        self.state: RunState | None = None

    def on_progress(
        self, run: RunControl, deliveries: Sequence[Delivery], ended: Sequence[int]
    ) -> None:
        if deliveries and self.state is None:
            self.state = run.snapshot()


def test_a_run_from_a_snapshot_continues_the_run(
    crafted: tuple[Path, Problem, Problem, Plan],
) -> None:
    _, problem, _, plan = crafted
    snap = _Snap()
    whole = execute(problem, plan, problem.make_planning_network(), snap)
    state = snap.state
    assert state is not None and state.pending
    state = pickle.loads(pickle.dumps(state))  # plain data
    ahead = forecast(problem, continuation(plan, state), problem.make_planning_network(), state)
    # The chunk on the air is sent again whole: at most one chunk of b later.
    assert whole.makespan_s <= ahead.makespan_s <= whole.makespan_s + 0.0045 + 1e-9
    for d in state.deliveries:
        assert ahead.delivered_s[d.device, d.chunk] == d.last_byte_s
    # Residual view: each device with the chunks and bytes it has not delivered.
    assert [(d.device, d.chunk) for d in state.deliveries] == [("b", 0)]
    view = residual_view(problem, state)
    b_left = sum(problem.devices[1].chunk_bytes[1:])
    assert [(d.name, d.chunks, d.payload_bytes) for d in view.devices] == [
        ("a", 2, problem.devices[0].payload_bytes),
        ("b", 3, b_left),
    ]
    names = set(candidates(problem, plan, state, 2))
    assert len(names) == 2 and names <= {"johnson", "johnson_soft", "minmax", "spt", "lpt"}


def test_a_run_from_a_snapshot_follows_the_plans_rb_grid(
    crafted: tuple[Path, Problem, Problem, Plan],
) -> None:
    """An exact plan's explicit allocation (radio_grid) holds in a residual run too, and
    a candidate with a new radio plan drops it."""
    _, problem, _, plan = crafted
    # every RB to ``a`` for 30 slots: the opposite of the plan's b-first phases
    grid = (("a",) * problem.radio_units,) * 30
    gridded = dataclasses.replace(plan, radio_grid=grid)
    snap = _Snap()
    whole = execute(problem, gridded, problem.make_planning_network(), snap)
    assert whole.makespan_s != execute(problem, plan).makespan_s  # the grid matters here
    state = snap.state
    assert state is not None and state.pending
    assert [d.device for d in state.deliveries] == ["a"]  # ``a`` first: the grid held
    ahead = forecast(problem, continuation(gridded, state), problem.make_planning_network(), state)
    assert whole.makespan_s <= ahead.makespan_s <= whole.makespan_s + 0.0045 + 1e-9
    for name, cand in candidates(problem, gridded, state, 8).items():
        if cand.radio_phases != continuation(gridded, state).radio_phases:
            assert cand.radio_grid is None, name


def test_cli_replan_prints_and_reports(
    crafted: tuple[Path, Problem, Problem, Plan], tmp_path: Path
) -> None:
    path, problem, _, plan = crafted
    plan_path = tmp_path / "plan.json"
    write_plan(plan_path, plan, problem)
    plain, replan = tmp_path / "plain", tmp_path / "replan"
    args = ["run", str(path), "--plan", str(plan_path), "--no-plot", "--out"]
    res = runner.invoke(app, [*args, str(plain)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*args, str(replan), "--replan", "late,threshold=0"])
    assert res.exit_code == 0, res.output
    assert "planned makespan" in res.output
    doc = json.loads((replan / "summary.json").read_text())
    # Real and surrogate channels agree here (no fading): on time, nothing re-planned.
    assert doc["replans"] == [] and doc["planned_makespan_s"] == doc["makespan_s"]
    assert (plain / "events.csv").read_bytes() == (replan / "events.csv").read_bytes()
