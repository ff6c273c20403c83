"""Plans as files: ``plan.json``, written into every results directory and read back.

A plan file holds a :class:`~owin_cosim.system.plan.Plan` (``version: 1``): radio phases,
chunk order, release rule, dispatch rule and optionally a placement, priorities,
per-core orders and an explicit per-slot RB allocation (``radio_grid``), plus the
policy's ``notes``. Results directories add ``executed``:
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
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from owin_cosim.errors import ConfigError
from owin_cosim.system.plan import Plan, RadioPhase
from owin_cosim.system.plan_check import check_plan
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


def _one_message(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A core or a list of cores: one error message, not one per union branch."""
    try:
        return handler(value)
    except ValidationError:
        raise PydanticCustomError(
            "placement",
            "expected a core number >= 0 or a non-empty list of them, got {v}",
            {"v": repr(value)},
        ) from None


#: Where a layer runs: one core, or the cores it is split over.
Cores = Annotated[Core | Annotated[list[Core], Field(min_length=1)], WrapValidator(_one_message)]


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
    placement: dict[str, Cores]
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
    placement: dict[str, Cores] | None = None
    priorities: dict[str, Annotated[float, Field(allow_inf_nan=False)]] | None = None
    core_order: dict[CoreKey, list[str]] | None = None
    #: Per slot, per RB: the device that owns it, or null (unused).
    radio_grid: list[list[str | None]] | None = None
    notes: dict[str, Any] = Field(default_factory=dict)
    executed: ExecutedDoc | None = None


@dataclass(frozen=True)
class ExecutedSchedule:
    """What a run did on the compute side: each layer's core, each core's order."""

    makespan_s: float
    #: Layer -> its core, or the list of cores it was split over.
    placement: dict[str, int | list[int]]
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
    if plan.radio_grid is not None:
        doc["radio_grid"] = plan.grid_rows()
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
        radio_grid=None if doc.radio_grid is None else tuple(map(tuple, doc.radio_grid)),
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
