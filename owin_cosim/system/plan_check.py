"""Checking a plan against the problem it will run on (before the run, with key paths).

Names of devices, layers and cores must exist, chunk indices and shares be in range,
every chunk be listed once; a layer's fixed cores (``placement``: one core, or a list of
cores it is split over) must be of one core type that runs the layer, in a group size
the layer has an option for; a split layer is listed in the core order of each of its
cores, once; the DAG plus the core orders must form no cycle (otherwise the run
would deadlock); and a ``radio_grid`` has one entry per RB in every slot, each a
device of the problem or None.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from owin_cosim.errors import ConfigError
from owin_cosim.system.plan import Plan, placed_cores
from owin_cosim.system.problem import Problem

__all__ = ["check_plan"]


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
    _check_grid(plan, problem, file)
    _check_chunks(plan, problem, file)
    if plan.compute_release not in ("on_arrival", "after_all_uploads"):
        raise ConfigError(file, "compute_release", "expected 'on_arrival' or 'after_all_uploads'")
    if plan.dispatch != "eft":
        raise ConfigError(file, "dispatch", "expected 'eft'")
    if plan.placement is None and plan.priorities is None and plan.core_order is None:
        return
    index = {name: v for v, name in enumerate(problem.dag.names)}
    for name, cores in (plan.placement or {}).items():
        key = f"{schedule_prefix}placement.{name}"
        v = _layer(index, name, file, key)
        group = placed_cores(cores)
        for i, core in enumerate(group):
            _core(core, problem.num_cores, file, f"{key}[{i}]" if isinstance(cores, list) else key)
        _check_group(problem, v, group, file, key)
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


def _check_grid(plan: Plan, problem: Problem, file: str | Path | None) -> None:
    """An explicit RB allocation: one entry per RB in every slot, each a device or None."""
    if plan.radio_grid is None:
        return
    names = {d.name for d in problem.devices}
    units = problem.radio_units
    for s, row in enumerate(plan.radio_grid):
        if len(row) != units:
            raise ConfigError(
                file,
                f"radio_grid.{s}",
                f"expected {units} entries (one per RB of the uplink), got {len(row)}",
            )
        for r, name in enumerate(row):
            if name is not None and name not in names:
                raise ConfigError(
                    file,
                    f"radio_grid.{s}.{r}",
                    f"no device called {name!r}; expected one of: {_devices(problem)}, "
                    "or null (RB unused)",
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


def _check_group(
    problem: Problem, v: int, cores: Sequence[int], file: str | Path | None, key: str
) -> None:
    """Fixed cores: distinct, one type, and a group size the layer has an option for."""
    if not cores or len(set(cores)) != len(cores):
        raise ConfigError(file, key, f"expected distinct cores, at least one; got {list(cores)}")
    types = problem.chip_types
    kinds = {problem.core_type_of(c) for c in cores}
    if len(kinds) > 1:
        names = sorted(types[t].name for t in kinds)
        raise ConfigError(file, key, f"a split runs on cores of one type; got types {names}")
    t = kinds.pop()
    sizes = sorted(o.group for o in problem.dag.layer_options[v] if o.core_type == t)
    if len(cores) not in sizes:
        what = (
            f"the layer runs on {types[t].name!r} cores in groups of {sizes}"
            if sizes
            else f"no {types[t].name!r} core runs this layer"
        )
        raise ConfigError(file, key, f"{len(cores)} core(s) given; {what}")


def _check_core_order(
    plan: Plan, problem: Problem, index: Mapping[str, int], file: str | Path | None, base: str
) -> None:
    assert plan.core_order is not None
    placement = {name: set(placed_cores(c)) for name, c in (plan.placement or {}).items()}
    seen: dict[tuple[str, int], str] = {}
    on: dict[str, list[int]] = {}
    first_key: dict[str, str] = {}
    # (layer, previous layer) -> (core, position): the order's consecutive pairs
    chain: dict[tuple[int, int], tuple[int, int]] = {}
    for core, names in plan.core_order.items():
        _core(core, problem.num_cores, file, f"{base}.{core}")
        prev = -1
        for i, name in enumerate(names):
            key = f"{base}.{core}[{i}]"
            v = _layer(index, name, file, key)
            if (name, core) in seen:
                raise ConfigError(file, key, f"{name!r} is listed already, at {seen[name, core]}")
            seen[name, core] = key
            first_key.setdefault(name, key)
            on.setdefault(name, []).append(core)
            if name in placement and core not in placement[name]:
                raise ConfigError(
                    file,
                    key,
                    f"placement puts {name!r} on core(s) {sorted(placement[name])}, not {core}",
                )
            if prev >= 0:
                chain.setdefault((v, prev), (core, i))
            prev = v
    for name, cores in on.items():
        if name in placement and set(cores) != placement[name]:
            raise ConfigError(
                file,
                first_key[name],
                f"placement splits {name!r} over cores {sorted(placement[name])}; the core "
                f"orders list it on {sorted(cores)}",
            )
        _check_group(problem, index[name], cores, file, first_key[name])
    _check_acyclic(problem, chain, file, base)


def _check_acyclic(
    problem: Problem,
    chain: Mapping[tuple[int, int], tuple[int, int]],
    file: str | Path | None,
    base: str,
) -> None:
    """The DAG plus the core orders' consecutive pairs must have no cycle.

    With no cycle, some unfinished layer always has its predecessors done and its turn on
    its cores: the run cannot deadlock. A cycle means a layer would wait for itself.
    """
    dag = problem.dag
    g = dag.to_networkx()
    g.add_edges_from((prev, v) for (v, prev) in chain)
    try:
        cycle = [u for u, _ in nx.find_cycle(g)]
    except nx.NetworkXNoCycle:
        return

    def ordered(i: int) -> bool:  # is the edge into cycle[i] a core-order edge only?
        w, before = cycle[i], cycle[i - 1]
        return (w, before) in chain and before not in dag.preds[w]

    # The DAG has no cycle, so this one has a core-order edge: start the cycle after the
    # first such edge (by core, then position), the entry the error names.
    start = min(
        (i for i in range(len(cycle)) if ordered(i)), key=lambda i: chain[cycle[i], cycle[i - 1]]
    )
    cycle = cycle[start:] + cycle[:start]
    v = cycle[0]
    prev = cycle[-1]
    core, pos = chain[v, prev]
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
