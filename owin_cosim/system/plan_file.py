"""Plans as files: ``plan.json``, written into every results directory and read back.

A plan file holds a :class:`~owin_cosim.system.plan.Plan` (``version: 1``): radio phases,
chunk order, release rule, dispatch rule and optionally a placement, priorities and
per-core orders, plus the policy's ``notes``. Results directories add ``executed``:
where and in what order every layer actually ran. Reading ignores ``executed`` unless
asked to pin it (``pin_executed``): then its placement and core order become the plan's.

Every read plan is checked against the problem it will run on: names of devices,
layers and cores, chunk indices, shares, and that the core orders agree with the DAG's
precedence (otherwise the run would deadlock). Each failure is a
:class:`~owin_cosim.errors.ConfigError` naming the file and the key path, e.g.
``placement.camera/conv1#0``. The format is described in ``docs/plans.md``; its JSON
Schema is :func:`plan_json_schema` (also in ``docs/plan.schema.json``).

Examples
--------
>>> from owin_cosim.system.plan import Plan, RadioPhase
>>> plan = Plan("demo", (RadioPhase({"a": 1.0}, ("a",)),), (("a", 0), ("a", 1)),
...             "on_arrival", placement={"a/fc1": 2})
>>> doc = plan_to_json(plan)
>>> doc["chunk_order"][1], doc["placement"]
({'device': 'a', 'chunk': 1}, {'a/fc1': 2})
>>> plan_from_json(doc) == plan
True
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import networkx as nx
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from owin_cosim.errors import ConfigError
from owin_cosim.system.plan import Plan, RadioPhase
from owin_cosim.system.problem import Problem
from owin_cosim.yaml_input import read_text

__all__ = [
    "PLAN_VERSION",
    "REPLAY_POLICY",
    "ExecutedSchedule",
    "PlanDoc",
    "check_plan",
    "plan_from_json",
    "plan_json_schema",
    "plan_to_json",
    "read_plan",
    "replayed",
    "write_plan",
    "write_plan_doc",
]

#: The format version written into, and expected in, every plan file.
PLAN_VERSION = 1
#: The policy name of a run carried out from a plan file (``owin-cosim run --plan``).
REPLAY_POLICY = "plan"

Core = Annotated[StrictInt, Field(ge=0)]
#: JSON object keys are strings: a core as a key is read from its digits.
CoreKey = Annotated[int, Field(ge=0)]
Share = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PhaseDoc(_Strict):
    """One radio phase: shares (weights in [0, 1]) in force until ``until_done`` finish."""

    shares: dict[str, Share]
    until_done: list[str] = Field(default_factory=list)


class ChunkDoc(_Strict):
    """One chunk, ``chunk`` counted from 0 within its device."""

    device: str
    chunk: Annotated[StrictInt, Field(ge=0)]


class ExecutedDoc(_Strict):
    """Where and in what order every layer ran in the run that wrote the file."""

    scenario: str
    seed: int
    makespan_s: float
    placement: dict[str, Core]
    core_order: dict[CoreKey, list[str]]


class PlanDoc(_Strict):
    """The schema of ``plan.json`` (see ``docs/plans.md``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="owin-cosim plan")

    version: Literal[1]
    policy: str = Field(min_length=1)
    radio_phases: list[PhaseDoc] = Field(min_length=1)
    chunk_order: list[ChunkDoc]
    compute_release: Literal["on_arrival", "after_all_uploads"]
    dispatch: Literal["eft"] = "eft"
    placement: dict[str, Core] | None = None
    priorities: dict[str, Annotated[float, Field(allow_inf_nan=False)]] | None = None
    core_order: dict[CoreKey, list[str]] | None = None
    notes: dict[str, Any] = Field(default_factory=dict)
    executed: ExecutedDoc | None = None


@dataclass(frozen=True)
class ExecutedSchedule:
    """What a run did on the compute side: each layer's core, each core's order."""

    makespan_s: float
    placement: dict[str, int]
    core_order: dict[int, list[str]]


def plan_json_schema() -> dict[str, Any]:
    """The JSON Schema of a plan file (pydantic's, from :class:`PlanDoc`).

    >>> plan_json_schema()["properties"]["version"]
    {'const': 1, 'title': 'Version', 'type': 'integer'}
    """
    return PlanDoc.model_json_schema()


# ---- writing ------------------------------------------------------------------------


def plan_to_json(
    plan: Plan, problem: Problem | None = None, executed: ExecutedSchedule | None = None
) -> dict[str, Any]:
    """The content of ``plan.json`` for ``plan`` (keys in reading order).

    Parameters
    ----------
    plan : Plan
        The plan as decided.
    problem : Problem, optional
        The problem it was run on; names the scenario and seed of ``executed``.
    executed : ExecutedSchedule, optional
        Where the layers actually ran; written under ``executed``.
    """
    doc: dict[str, Any] = {
        "version": PLAN_VERSION,
        "policy": plan.policy,
        "radio_phases": [
            {"shares": dict(p.shares), "until_done": list(p.until_done)} for p in plan.radio_phases
        ],
        "chunk_order": [{"device": d, "chunk": c} for d, c in plan.chunk_order],
        "compute_release": plan.compute_release,
        "dispatch": plan.dispatch,
    }
    doc.update((k, v) for k, v in plan.schedule().items() if v is not None)
    if plan.notes:
        doc["notes"] = plan.notes
    if executed is not None:
        doc["executed"] = {
            "scenario": problem.name if problem is not None else "",
            "seed": problem.seed if problem is not None else 0,
            "makespan_s": executed.makespan_s,
            "placement": dict(executed.placement),
            "core_order": {str(j): list(v) for j, v in sorted(executed.core_order.items())},
        }
    return doc


def _plain(x: Any) -> Any:
    if isinstance(x, np.generic):  # numpy scalars in a policy's notes
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON-serialisable in a plan: {type(x).__name__}")


def write_plan_doc(path: str | Path, doc: Mapping[str, Any]) -> None:
    """Write a plan document as indented JSON (same bytes for the same document)."""
    Path(path).write_text(json.dumps(doc, indent=2, default=_plain) + "\n", encoding="utf-8")


def write_plan(path: str | Path, plan: Plan, problem: Problem) -> None:
    """Write ``plan`` as a plan file at ``path`` (without an ``executed`` section)."""
    check_plan(plan, problem, path)
    write_plan_doc(path, plan_to_json(plan, problem))


# ---- reading ------------------------------------------------------------------------


def read_plan(path: str | Path, problem: Problem, *, pin_executed: bool = False) -> Plan:
    """Read a plan file and check it against ``problem``.

    Parameters
    ----------
    path : path
        The plan file (JSON).
    problem : Problem
        The problem the plan will run on.
    pin_executed : bool
        Take the placement and core order from the file's ``executed`` section (where
        the layers ran when the file was written) instead of its own, so that the
        replay does not depend on ``eft`` at all.

    Raises
    ------
    ConfigError
        Unreadable file, invalid JSON, a schema violation, or a plan that does not fit
        ``problem``; names the file and the key path.
    """
    p = Path(path)
    if not p.exists() and not p.is_symlink():
        raise ConfigError(p, "", "no such plan file")
    text = read_text(p, "plan file")  # a regular UTF-8 file, never a FIFO
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            p, "", f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:  # the C decoder's own bound on nesting: no stack is at risk
        raise ConfigError(p, "", "invalid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError(p, "", f"expected a JSON object, got {type(data).__name__}")
    return plan_from_json(data, problem, p, pin_executed=pin_executed)


def plan_from_json(
    data: Mapping[str, Any],
    problem: Problem | None = None,
    file: str | Path | None = None,
    *,
    pin_executed: bool = False,
) -> Plan:
    """A :class:`Plan` from a plan document; checked against ``problem`` if given.

    See :func:`read_plan` for ``pin_executed``; ``file`` names the source in errors.
    """
    from owin_cosim.scenario.schema import validation_to_config_error

    try:
        doc = PlanDoc.model_validate(data)
    except ValidationError as exc:
        raise validation_to_config_error(exc, file, PlanDoc) from None
    placement, core_order, prefix = doc.placement, doc.core_order, ""
    if pin_executed:
        if doc.executed is None:
            raise ConfigError(file, "executed", "required to pin the executed schedule")
        placement, core_order, prefix = doc.executed.placement, doc.executed.core_order, "executed."
    plan = Plan(
        doc.policy,
        tuple(RadioPhase(dict(p.shares), tuple(p.until_done)) for p in doc.radio_phases),
        tuple((c.device, c.chunk) for c in doc.chunk_order),
        doc.compute_release,
        doc.dispatch,
        notes=dict(doc.notes),
        placement=None if placement is None else dict(placement),
        priorities=None if doc.priorities is None else dict(doc.priorities),
        core_order=None if core_order is None else {j: list(v) for j, v in core_order.items()},
    )
    if problem is not None:
        check_plan(plan, problem, file, schedule_prefix=prefix)
    return plan


def replayed(plan: Plan, source: str | Path) -> Plan:
    """``plan`` as run from the file ``source``: policy :data:`REPLAY_POLICY`, and notes
    that say where it came from (``plan_file``) and who decided it (``planned_by``).

    >>> from owin_cosim.system.plan import RadioPhase
    >>> p = replayed(Plan("pacs", (RadioPhase({"a": 1.0}),), (("a", 0),), "on_arrival"),
    ...              "plan.json")
    >>> p.policy, p.notes
    ('plan', {'plan_file': 'plan.json', 'planned_by': 'pacs'})
    """
    notes = {**plan.notes, "plan_file": str(source)}
    notes.setdefault("planned_by", plan.policy)
    return replace(plan, policy=REPLAY_POLICY, notes=notes)


# ---- checking against a problem -----------------------------------------------------


def check_plan(
    plan: Plan, problem: Problem, file: str | Path | None = None, *, schedule_prefix: str = ""
) -> None:
    """Check that ``plan`` fits ``problem`` and cannot deadlock.

    Devices, chunks, shares, layers and cores must exist; every chunk is listed exactly
    once in ``chunk_order``; a layer is in at most one core order, on the core its
    placement names (if any); and the DAG plus the core orders form no cycle.
    ``schedule_prefix`` is put before the key paths of ``placement`` and ``core_order``
    (``"executed."`` when those come from the ``executed`` section).

    Raises
    ------
    ConfigError
        The first problem found, with its key path (as in the plan file).
    """
    _check_radio(plan, problem, file)
    _check_chunks(plan, problem, file)
    if plan.compute_release not in ("on_arrival", "after_all_uploads"):
        raise ConfigError(file, "compute_release", "expected 'on_arrival' or 'after_all_uploads'")
    if plan.dispatch != "eft":
        raise ConfigError(file, "dispatch", "expected 'eft'")
    if plan.placement is None and plan.priorities is None and plan.core_order is None:
        return
    index = {name: v for v, name in enumerate(problem.dag.names)}
    for name, core in (plan.placement or {}).items():
        key = f"{schedule_prefix}placement.{name}"
        _layer(index, name, file, key)
        _core(core, problem.num_cores, file, key)
    for name, value in (plan.priorities or {}).items():
        _layer(index, name, file, f"priorities.{name}")
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(
                file, f"priorities.{name}", f"expected a finite number, got {value!r}"
            )
    if plan.core_order is not None:
        _check_core_order(plan, problem, index, file, f"{schedule_prefix}core_order")


def _devices(problem: Problem) -> str:
    return ", ".join(d.name for d in problem.devices)


def _check_radio(plan: Plan, problem: Problem, file: str | Path | None) -> None:
    names = {d.name for d in problem.devices}
    if not plan.radio_phases:
        raise ConfigError(file, "radio_phases", "expected at least one phase")
    for i, phase in enumerate(plan.radio_phases):
        for dev, share in phase.shares.items():
            key = f"radio_phases[{i}].shares.{dev}"
            if dev not in names:
                raise ConfigError(
                    file, key, f"no device called {dev!r}; expected one of: {_devices(problem)}"
                )
            if not (isinstance(share, int | float) and 0.0 <= share <= 1.0):
                raise ConfigError(file, key, f"expected a share in [0, 1], got {share!r}")
        for j, dev in enumerate(phase.until_done):
            if dev not in names:
                raise ConfigError(
                    file,
                    f"radio_phases[{i}].until_done[{j}]",
                    f"no device called {dev!r}; expected one of: {_devices(problem)}",
                )


def _check_chunks(plan: Plan, problem: Problem, file: str | Path | None) -> None:
    chunks = {d.name: d.chunks for d in problem.devices}
    first: dict[tuple[str, int], int] = {}
    for i, (dev, c) in enumerate(plan.chunk_order):
        if dev not in chunks:
            raise ConfigError(
                file,
                f"chunk_order[{i}].device",
                f"no device called {dev!r}; expected one of: {_devices(problem)}",
            )
        if not 0 <= c < chunks[dev]:
            raise ConfigError(
                file,
                f"chunk_order[{i}].chunk",
                f"device {dev!r} has {chunks[dev]} chunk(s), numbered 0..{chunks[dev] - 1}; "
                f"got {c}",
            )
        if (dev, c) in first:
            raise ConfigError(
                file,
                f"chunk_order[{i}]",
                f"{dev}#{c} is listed twice (also at chunk_order[{first[dev, c]}])",
            )
        first[dev, c] = i
    missing = [
        f"{d.name}#{c}"
        for d in problem.devices
        for c in range(d.chunks)
        if (d.name, c) not in first
    ]
    if missing:
        shown = ", ".join(missing[:8]) + (
            f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        )
        raise ConfigError(file, "chunk_order", f"every chunk must be listed once; missing {shown}")


def _layer(index: Mapping[str, int], name: str, file: str | Path | None, key: str) -> int:
    v = index.get(name)
    if v is None:
        example = next(iter(index), "")
        raise ConfigError(
            file,
            key,
            f"no layer called {name!r} in the scenario's DAG ({len(index)} layers after "
            f"chunking, named as in events.csv, e.g. {example!r})",
        )
    return v


def _core(core: Any, num_cores: int, file: str | Path | None, key: str) -> None:
    if (
        isinstance(core, bool)
        or not isinstance(core, int | np.integer)
        or not 0 <= core < num_cores
    ):
        raise ConfigError(
            file, key, f"no core {core!r}; the accelerator has cores 0..{num_cores - 1}"
        )


def _check_core_order(
    plan: Plan, problem: Problem, index: Mapping[str, int], file: str | Path | None, base: str
) -> None:
    assert plan.core_order is not None
    placement = plan.placement or {}
    seen: dict[str, str] = {}
    chain: dict[int, tuple[int, int, int]] = {}  # layer -> (previous layer, core, position)
    for core, names in plan.core_order.items():
        _core(core, problem.num_cores, file, f"{base}.{core}")
        prev = -1
        for i, name in enumerate(names):
            key = f"{base}.{core}[{i}]"
            v = _layer(index, name, file, key)
            if name in seen:
                raise ConfigError(file, key, f"{name!r} is listed already, at {seen[name]}")
            seen[name] = key
            if name in placement and placement[name] != core:
                raise ConfigError(
                    file, key, f"placement puts {name!r} on core {placement[name]}, not {core}"
                )
            if prev >= 0:
                chain[v] = (prev, core, i)
            prev = v
    _check_acyclic(problem, chain, file, base)


def _check_acyclic(
    problem: Problem, chain: Mapping[int, tuple[int, int, int]], file: str | Path | None, base: str
) -> None:
    """The DAG plus the core orders' consecutive pairs must have no cycle.

    With no cycle, some unfinished layer always has its predecessors done and its turn on
    its core: the run cannot deadlock. A cycle means a layer would wait for itself.
    """
    dag = problem.dag
    g = dag.to_networkx()
    g.add_edges_from((prev, v) for v, (prev, _, _) in chain.items())
    try:
        cycle = [u for u, _ in nx.find_cycle(g)]
    except nx.NetworkXNoCycle:
        return

    def ordered(i: int) -> bool:  # is the edge into cycle[i] a core-order edge only?
        w, before = cycle[i], cycle[i - 1]
        return w in chain and chain[w][0] == before and before not in dag.preds[w]

    # The DAG has no cycle, so this one has a core-order edge: start the cycle after the
    # first such edge (by core, then position), the entry the error names.
    start = min((i for i in range(len(cycle)) if ordered(i)), key=lambda i: chain[cycle[i]][1:])
    cycle = cycle[start:] + cycle[:start]
    v = cycle[0]
    prev, core, pos = chain[v]
    names = dag.names
    if sum(ordered(i) for i in range(len(cycle))) == 1:
        message = (
            f"{names[v]!r} is ordered after {names[prev]!r} on core {core}, but "
            f"{names[prev]!r} depends on it ({_show_path([names[w] for w in cycle], ' -> ')}); "
            "a core order must follow precedence"
        )
    else:
        steps = [names[v]]
        for i in range(1, len(cycle) + 1):
            steps.append(
                ("=> " if ordered(i % len(cycle)) else "-> ") + names[cycle[i % len(cycle)]]
            )
        message = (
            "the core orders and the DAG's precedence form a cycle, so a layer would wait "
            f"for itself ({_show_path(steps, ' ')}; -> is precedence, => the order on a core)"
        )
    raise ConfigError(file, f"{base}.{core}[{pos}]", message)


def _show_path(steps: Sequence[str], sep: str, keep: int = 8) -> str:
    """Join a path's steps with ``sep``, eliding the middle of a long one."""
    if len(steps) > keep:
        steps = [*steps[: keep // 2], "...", *steps[-(keep // 2) :]]
    return sep.join(steps)
