"""Plans as files: plan.json round trip, replaying a policy's plan, bad plans, placement
and core order honoured by the coordinator."""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest
from typer.testing import CliRunner

from owin_cosim.cli import app
from owin_cosim.errors import ConfigError
from owin_cosim.policies import make_policy
from owin_cosim.results.records import RunResult
from owin_cosim.results.writers import write_results
from owin_cosim.scenario.assemble import load_problem
from owin_cosim.sim.coordinator import execute
from owin_cosim.system.plan import Plan, RadioPhase
from owin_cosim.system.plan_file import (
    plan_from_json,
    plan_json_schema,
    read_plan,
    write_plan,
)
from owin_cosim.system.problem import Problem
from tests.conftest import REPO, scenario_dict, write_scenario

runner = CliRunner()
QUICKSTART = REPO / "examples" / "quickstart.yaml"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Problem]:
    path = write_scenario(tmp_path_factory.mktemp("tiny") / "tiny.yaml", scenario_dict())
    return path, load_problem(path)[1]


@pytest.fixture(scope="module")
def quickstart() -> tuple[Path, Problem]:
    return QUICKSTART, load_problem(QUICKSTART)[1]


def _schedule(r: RunResult) -> list[tuple[str, int, float, float]]:
    return [(x.layer, x.core, x.start_s, x.end_s) for x in r.layers]


def _pacs_run(problem: Problem) -> tuple[Plan, RunResult]:
    plan = make_policy("pacs").plan(problem)
    return plan, execute(problem, plan)


# ---- round trip and replay ------------------------------------------------------------


def test_round_trip_keeps_every_field(tmp_path: Path, tiny: tuple[Path, Problem]) -> None:
    _, problem = tiny
    pacs, _ = _pacs_run(problem)
    pinned = Plan(
        "hand",
        (RadioPhase({"a": 1.0, "b": 0.25}, ("a",)), RadioPhase({"b": 1.0})),
        (("b", 0), ("a", 1), ("a", 0)),
        "after_all_uploads",
        notes={"why": "a test", "nested": {"x": [1, 2.5]}},
        placement={"a/fc0#0": 3, "head/fc2": 1},
        priorities={"b/fc0": 1.5, "a/pool": -2.0},
        core_order={1: ["b/fc0", "b/fc1", "head/fc2"], 3: ["a/fc0#0", "a/fc1#0"]},
    )
    for plan in (pacs, pinned):
        path = tmp_path / f"{plan.policy}.json"
        write_plan(path, plan, problem)
        back = read_plan(path, problem)
        assert back == plan
        assert back.notes == plan.notes  # notes do not take part in ==
        assert json.loads(path.read_text())["version"] == 1


@pytest.mark.parametrize("which", ["tiny", "quickstart"])
def test_replaying_the_pacs_plan_reproduces_its_makespan(
    which: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    _, problem = request.getfixturevalue(which)
    _, ref = _pacs_run(problem)
    write_results(ref, tmp_path / "pacs", plot=False)
    plan_path = tmp_path / "pacs" / "plan.json"
    doc = json.loads(plan_path.read_text())
    assert "placement" not in doc and doc["executed"]["makespan_s"] == ref.makespan_s

    replays = {"as decided": read_plan(plan_path, problem)}
    replays["pinned"] = read_plan(plan_path, problem, pin_executed=True)
    placed = copy.deepcopy(doc)
    placed["placement"] = doc["executed"]["placement"]  # placement only, no core order
    replays["placement"] = plan_from_json(placed, problem)
    for how, plan in replays.items():
        again = execute(problem, plan)
        assert again.makespan_s == ref.makespan_s, how
        assert _schedule(again) == _schedule(ref), how
    assert replays["pinned"].core_order is not None
    assert replays["pinned"].placement == doc["executed"]["placement"]


@pytest.mark.parametrize("which", ["tiny", "quickstart"])
def test_cli_runs_the_plan_pacs_wrote(
    which: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    scenario, _ = request.getfixturevalue(which)
    first = tmp_path / "pacs"
    res = runner.invoke(
        app, ["run", str(scenario), "--policy", "pacs", "--out", str(first), "--no-plot"]
    )
    assert res.exit_code == 0, res.output
    assert (first / "plan.json").is_file()
    second = tmp_path / "replay"
    res = runner.invoke(
        app,
        ["run", str(scenario), "--plan", str(first / "plan.json"), "--out", str(second)],
    )
    assert res.exit_code == 0, res.output
    a = json.loads((first / "summary.json").read_text())
    b = json.loads((second / "summary.json").read_text())
    assert b["makespan_s"] == a["makespan_s"]
    assert b["policy"] == "plan" and b["plan"]["planned_by"] == "pacs"
    assert (first / "events.csv").read_bytes() == (second / "events.csv").read_bytes()
    replayed_doc = json.loads((second / "plan.json").read_text())
    assert replayed_doc["policy"] == "plan"
    assert replayed_doc["notes"]["planned_by"] == "pacs"


def test_cli_default_directory_is_results_name_plan(
    tmp_path: Path, tiny: tuple[Path, Problem], monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario, problem = tiny
    plan_path = tmp_path / "p.json"
    write_plan(plan_path, make_policy("rtfs").plan(problem), problem)
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["run", str(scenario), "--plan", str(plan_path), "--no-plot"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "results" / "tiny" / "plan" / "plan.json").is_file()


# ---- bad plans ------------------------------------------------------------------------


def _edit(doc: dict[str, Any], key: str, value: Any) -> None:
    doc[key] = value


def _drop_chunk(doc: dict[str, Any]) -> None:
    doc["chunk_order"].pop()


def _dup_chunk(doc: dict[str, Any]) -> None:
    doc["chunk_order"][2] = dict(doc["chunk_order"][0])


#: (what, how to spoil a valid tiny plan, expected key path).
BAD: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("unknown layer", lambda d: _edit(d, "placement", {"nope": 0}), "placement.nope"),
    ("core out of range", lambda d: _edit(d, "placement", {"b/fc0": 4}), "placement.b/fc0"),
    ("negative core", lambda d: _edit(d, "placement", {"b/fc0": -1}), "placement.b/fc0"),
    (
        "unknown device share",
        lambda d: d["radio_phases"][0]["shares"].update(ghost=0.5),
        "radio_phases[0].shares.ghost",
    ),
    (
        "share above 1",
        lambda d: d["radio_phases"][0]["shares"].update(a=1.5),
        "radio_phases[0].shares.a",
    ),
    (
        "unknown device to wait for",
        lambda d: _edit(d, "radio_phases", [{"shares": {"a": 1.0}, "until_done": ["ghost"]}]),
        "radio_phases[0].until_done[0]",
    ),
    ("no radio phase", lambda d: _edit(d, "radio_phases", []), "radio_phases"),
    (
        "chunk out of range",
        lambda d: d["chunk_order"][0].update(chunk=7),
        "chunk_order[0].chunk",
    ),
    (
        "unknown device chunk",
        lambda d: d["chunk_order"][0].update(device="ghost"),
        "chunk_order[0].device",
    ),
    ("duplicate chunk", _dup_chunk, "chunk_order[2]"),
    ("missing chunk", _drop_chunk, "chunk_order"),
    (
        "core order against precedence",
        lambda d: _edit(d, "core_order", {"0": ["a/fc1#0", "a/fc0#0"]}),
        "core_order.0[1]",
    ),
    (
        "core orders forming a cycle across cores",
        # a/fc1#0 needs a/fc0#0 and b/fc1 needs b/fc0: crossing the orders locks both.
        lambda d: _edit(d, "core_order", {"0": ["a/fc1#0", "b/fc0"], "1": ["b/fc1", "a/fc0#0"]}),
        "core_order.0[1]",
    ),
    ("core order on a missing core", lambda d: _edit(d, "core_order", {"9": []}), "core_order.9"),
    (
        "core order with an unknown layer",
        lambda d: _edit(d, "core_order", {"0": ["b/fc0", "nope"]}),
        "core_order.0[1]",
    ),
    (
        "layer twice in one core order",
        lambda d: _edit(d, "core_order", {"0": ["b/fc0", "b/fc0"]}),
        "core_order.0[1]",
    ),
    (
        "layer in three core orders: no 3-way split",
        lambda d: _edit(d, "core_order", {"0": ["b/fc0"], "1": ["b/fc0"], "2": ["b/fc0"]}),
        "core_order.0[0]",
    ),
    (
        "split placement against the core orders",
        lambda d: d.update(placement={"b/fc0": [0, 1]}, core_order={"0": ["b/fc0"]}),
        "core_order.0[0]",
    ),
    (
        "split over a repeated core",
        lambda d: d.update(placement={"b/fc0": [1, 1]}),
        "placement.b/fc0",
    ),
    (
        "core order against the placement",
        lambda d: d.update(placement={"b/fc0": 1}, core_order={"0": ["b/fc0"]}),
        "core_order.0[0]",
    ),
    ("unknown priority layer", lambda d: _edit(d, "priorities", {"nope": 1.0}), "priorities.nope"),
    ("version", lambda d: _edit(d, "version", 2), "version"),
    ("unknown key", lambda d: _edit(d, "colour", "red"), "colour"),
    ("bad release rule", lambda d: _edit(d, "compute_release", "later"), "compute_release"),
    ("missing key", lambda d: d.pop("chunk_order"), "chunk_order"),
]


@pytest.mark.parametrize(("what", "spoil", "key"), BAD, ids=[b[0] for b in BAD])
def test_bad_plan_names_file_and_key(
    what: str,
    spoil: Callable[[dict[str, Any]], None],
    key: str,
    tmp_path: Path,
    tiny: tuple[Path, Problem],
) -> None:
    _, problem = tiny
    path = tmp_path / "plan.json"
    write_plan(path, make_policy("pacs").plan(problem), problem)
    doc = json.loads(path.read_text())
    spoil(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as info:
        read_plan(path, problem)
    assert info.value.file == str(path)
    assert info.value.key == key, str(info.value)


def test_cycle_message_says_what_waits_for_what(tmp_path: Path, tiny: tuple[Path, Problem]) -> None:
    _, problem = tiny
    doc = json.loads(json.dumps(execute(problem, make_policy("rtfs").plan(problem)).plan_file))
    doc["core_order"] = {"0": ["a/fc1#0", "a/fc0#0"]}
    with pytest.raises(ConfigError, match=r"'a/fc0#0' is ordered after 'a/fc1#0' on core 0"):
        plan_from_json(doc, problem, "x.json")


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_unreadable_plan_file(text: str, tmp_path: Path, tiny: tuple[Path, Problem]) -> None:
    path = tmp_path / "plan.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_plan(path, tiny[1])
    assert info.value.key == "" and info.value.file == str(path)
    with pytest.raises(ConfigError, match="no such plan file"):
        read_plan(tmp_path / "absent.json", tiny[1])


def test_cli_bad_plan_exits_2(tmp_path: Path, tiny: tuple[Path, Problem]) -> None:
    scenario, problem = tiny
    path = tmp_path / "plan.json"
    write_plan(path, make_policy("pacs").plan(problem), problem)
    doc = json.loads(path.read_text())
    doc["placement"] = {"enc_cam_conv1": 0}
    path.write_text(json.dumps(doc))
    target = tmp_path / "out"
    res = runner.invoke(app, ["run", str(scenario), "--plan", str(path), "--out", str(target)])
    assert res.exit_code == 2
    assert "placement.enc_cam_conv1" in res.output and str(path) in res.output
    assert not target.exists()
    both = ["run", str(scenario), "--plan", str(path), "--policy", "pacs"]
    res = runner.invoke(app, both)
    assert res.exit_code == 2 and "--plan" in res.output


def test_programmatic_plan_is_checked_too(tiny: tuple[Path, Problem]) -> None:
    _, problem = tiny
    base = make_policy("rtfs").plan(problem)
    bad = Plan(**{**_fields(base), "core_order": {0: ["a/fc1#0", "a/fc0#0"]}})
    with pytest.raises(ConfigError) as info:
        execute(problem, bad)
    assert info.value.file is None and info.value.key == "core_order.0[1]"


def _fields(plan: Plan) -> dict[str, Any]:
    return {k: getattr(plan, k) for k in Plan.__dataclass_fields__}


# ---- the coordinator honours placement, core order and priorities --------------------


@pytest.mark.parametrize("which", ["tiny", "quickstart"])
def test_placement_is_honoured(which: str, request: pytest.FixtureRequest) -> None:
    _, problem = request.getfixturevalue(which)
    names = problem.dag.names
    # Everything against eft's choice: layer v on core (v * 3) mod M.
    placement = {name: (v * 3) % problem.num_cores for v, name in enumerate(names)}
    plan = Plan(**{**_fields(make_policy("pacs").plan(problem)), "placement": placement})
    result = execute(problem, plan)
    assert {r.layer: r.core for r in result.layers} == placement
    _assert_feasible(problem, result)
    assert result.plan_file["placement"] == placement


@pytest.mark.parametrize("which", ["tiny", "quickstart"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_core_order_is_honoured(which: str, seed: int, request: pytest.FixtureRequest) -> None:
    _, problem = request.getfixturevalue(which)
    dag, rng = problem.dag, np.random.default_rng(seed)
    # A random topological order, cut into random cores: a valid core order.
    noise = rng.random(len(dag))
    topo = list(nx.lexicographical_topological_sort(dag.to_networkx(), key=lambda v: noise[v]))
    cores = rng.integers(0, problem.num_cores, len(dag))
    order: dict[int, list[str]] = {j: [] for j in range(problem.num_cores)}
    for v in topo:
        order[int(cores[v])].append(dag.names[v])
    plan = Plan(**{**_fields(make_policy("pacs").plan(problem)), "core_order": order})
    result = execute(problem, plan)
    by_core: dict[int, list[str]] = {j: [] for j in order}
    for r in sorted(result.layers, key=lambda r: (r.start_s, order[r.core].index(r.layer))):
        by_core[r.core].append(r.layer)
    assert by_core == order
    _assert_feasible(problem, result)
    assert result.plan_file["executed"]["core_order"] == {str(j): v for j, v in order.items()}


def test_priorities_order_the_ready_list(tiny: tuple[Path, Problem]) -> None:
    _, problem = tiny
    names = problem.dag.names
    # One core, so the start order is the dispatch order; reverse the upward ranks.
    priorities = {name: -float(problem.dag.rank_s[v]) for v, name in enumerate(names)}
    base = _fields(make_policy("rtfs").plan(problem))  # all layers ready together
    plan = Plan(**{**base, "placement": dict.fromkeys(names, 0), "priorities": priorities})
    result = execute(problem, plan)
    first = [r for r in result.layers if r.ready_s == result.layers[0].ready_s]
    assert len(first) > 1
    assert [r.layer for r in first] == sorted(
        (r.layer for r in first), key=lambda n: (-priorities[n], names.index(n))
    )
    same = Plan(
        **{**base, "priorities": {n: float(problem.dag.rank_s[v]) for v, n in enumerate(names)}}
    )
    assert _schedule(execute(problem, same)) == _schedule(execute(problem, Plan(**base)))


def _assert_feasible(problem: Problem, result: RunResult) -> None:
    rec = {r.layer: r for r in result.layers}
    dag = problem.dag
    for v, name in enumerate(dag.names):
        for p in dag.preds[v]:
            assert rec[name].start_s >= rec[dag.names[p]].end_s
    for j in range(problem.num_cores):
        spans = sorted((r.start_s, r.end_s) for r in result.layers if r.core == j)
        assert all(b[0] >= a[1] for a, b in itertools.pairwise(spans))


# ---- documentation --------------------------------------------------------------------


def test_json_schema_in_docs_is_current() -> None:
    text = (REPO / "docs" / "plan.schema.json").read_text(encoding="utf-8")
    assert json.loads(text) == plan_json_schema()


def test_docs_example_is_a_valid_quickstart_plan(
    tmp_path: Path, quickstart: tuple[Path, Problem]
) -> None:
    text = (REPO / "docs" / "plans.md").read_text(encoding="utf-8")
    example = re.search(r"```json\n(.*?)```", text, re.S)
    assert example is not None
    path = tmp_path / "plan.json"
    path.write_text(example.group(1))
    _, problem = quickstart
    plan = read_plan(path, problem)
    result = execute(problem, plan)
    assert all(result.plan_file["executed"]["placement"][n] == c for n, c in plan.placement.items())
