"""A seeded, budgeted mapping search over :mod:`~owin_cosim.accel.loopnest.nest` (the mapper).

Given the storage levels and compute unit of one core
(:func:`~owin_cosim.accel.loopnest.levels.levels_from_arch`), a CNN-layer problem and the
architecture's Timeloop constraints (:func:`read_constraints`), :func:`search` looks
for the best mapping by Timeloop's ``optimization-metrics`` (:func:`read_optimization_metrics`):
``[delay, energy]`` (fewest cycles, then least energy; the default and the v0.3 runs) or
``[edp]`` (the v0.4 runs), evaluating each candidate with
:func:`~owin_cosim.accel.loopnest.nest.evaluate`. :func:`search_design` (behind
:func:`search_case` and ``owin-cosim estimate``) takes the constraints and metrics from the
design's mapper settings (:func:`read_search_settings`).

The mapper's parts: the constraints and objective
(:mod:`~owin_cosim.accel.loopnest.constraints`), the map space
(:mod:`~owin_cosim.accel.loopnest.mapspace`) and the search strategy
(:mod:`~owin_cosim.accel.loopnest.search`); their public names are re-exported here.

Not modelled: imperfect factorization (residual loops), ``max-permutations-per-if``
pruning, Timeloop's victory condition (so this search is usually better than a
``timeloop-mapper`` run stopped after ``victory_condition`` suboptimal mappings, as the
v0.4 reference runs were with 100), the ``last_level_accesses`` metric,
``min_utilization``, and the v0.4 constraint options ``max_utilization``, ``no_reuse``,
``no_coalesce``, ``factors_only`` and factor bounds (``<=``, ``>=``), none of which the
reference designs use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from owin_cosim.accel.loopnest.cases import read_case_inputs
from owin_cosim.accel.loopnest.constraints import (
    METRICS,
    Constraints,
    SearchSettings,
    TargetConstraint,
    mesh_from_arch,
    read_constraints,
    read_optimization_metrics,
    read_search_settings,
)
from owin_cosim.accel.loopnest.levels import levels_from_arch
from owin_cosim.accel.loopnest.search import Progress, SearchResult, search
from owin_cosim.accel.timeloop.formats import ArchComponent

__all__ = [
    "METRICS",
    "Constraints",
    "Progress",
    "SearchResult",
    "SearchSettings",
    "TargetConstraint",
    "mesh_from_arch",
    "read_constraints",
    "read_optimization_metrics",
    "read_search_settings",
    "search",
    "search_case",
    "search_design",
]


def search_design(
    components: list[ArchComponent],
    ert: dict[str, dict[str, float]],
    problem: Mapping[str, int],
    settings: Path | Mapping[str, Any],
    *,
    seed: int = 0,
    max_evaluations: int = 3000,
    time_budget_s: float = 60.0,
    metrics: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> tuple[SearchResult, tuple[str, ...]]:
    """Search a Timeloop design under its own constraints and objective.

    The one path from Timeloop inputs to :func:`search`, for :func:`search_case` and
    ``owin-cosim estimate``: the same architecture, ERT, problem, settings (see
    :func:`read_search_settings`), seed and budget give the same mapping. ``metrics``
    overrides the design's objective. Returns the result and the objective searched for.
    """
    read = read_search_settings(settings)
    objective = read.metrics if metrics is None else tuple(metrics)
    levels, compute, _ = levels_from_arch(components, ert)
    res = search(
        levels,
        compute,
        problem,
        read.constraints,
        seed=seed,
        max_evaluations=max_evaluations,
        time_budget_s=time_budget_s,
        mesh_x=mesh_from_arch(components),
        metrics=objective,
        progress=progress,
    )
    return res, objective


def search_case(
    case_dir: str | Path,
    *,
    seed: int = 0,
    max_evaluations: int = 3000,
    time_budget_s: float = 60.0,
    metrics: Sequence[str] | None = None,
) -> tuple[SearchResult, dict[str, Any]]:
    """Search a reference case folder (v0.3 or v0.4 layout) like ``timeloop-mapper`` did.

    The objective is the case's own ``optimization-metrics`` (v0.3 ``mapper.yaml``:
    delay then energy; the v0.4 runs: ``edp``) unless ``metrics`` is given. Returns the
    search result and the case's ``summary.json`` row (the mapper's ``cycles`` and
    ``energy_pJ`` among others; empty if the file is absent) with ``search_metrics``,
    the objective searched for, added.
    """
    case = Path(case_dir)
    inp = read_case_inputs(case)
    res, objective = search_design(
        inp.components,
        inp.ert,
        inp.problem,
        inp.settings,
        seed=seed,
        max_evaluations=max_evaluations,
        time_budget_s=time_budget_s,
        metrics=metrics,
    )
    summary = case / "summary.json"
    row: dict[str, Any] = {}
    if summary.is_file():
        row = dict(json.loads(summary.read_text(encoding="utf-8")).get("row", {}))
    row["search_metrics"] = list(objective)
    return res, row
