"""``owin-cosim estimate``: one layer's cost on one core, from Timeloop-format inputs.

``--arch`` is either a multi-core spec of ``accel_specs/`` or a Timeloop architecture
(``arch.yaml`` with its ``components/`` folder beside it). On a spec with several core
types, ``--core-type NAME`` picks the core (default: the first type).

=================  ===========================================================
arch / backend     what prices the layer
=================  ===========================================================
spec, analytic     the closed-form tiling model (:mod:`owin_cosim.accel.analytic`)
spec, loopnest     loop-nest model + mapping search on the spec's core
                   (:mod:`owin_cosim.accel.loopnest.backend`)
spec, zigzag       ZigZag's mapping search on the spec's core, in a child process
                   (:mod:`owin_cosim.accel.zigzag.backend`; the ``zigzag`` extra)
Timeloop arch,     with ``--mapping``: the loop-nest model on exactly that mapping;
analytic or        without: the mapping search (:mod:`owin_cosim.accel.loopnest.mapper`) under the
loopnest           design's constraints and objective (see below)
Timeloop arch,     ``timeloop-mapper`` (a clear error when it is not installed)
timeloop
=================  ===========================================================

Energies of a Timeloop architecture come from the Accelergy ERT (``--ert``, or
``../accelergy/ERT.yaml``, ``ERT.yaml`` or ``timeloop-mapper.ERT.yaml`` beside it).

The search reads the design's mapper settings the way the reference cases and
``benchmarks/fidelity.py`` do (:func:`~owin_cosim.accel.loopnest.mapper.search_design`):
a v0.4 processed input (``parsed-processed-input.yaml``) holds its constraints and
``optimization_metrics`` itself; a v0.3 ``arch.yaml`` has ``*constraints*.yaml`` and
``mapper.yaml`` beside it. Same files, seed and budget: the same mapping as
:func:`~owin_cosim.accel.loopnest.mapper.search_case` finds.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from owin_cosim.accel.timeloop.formats import layer_from_problem, load_yaml_any, read_problem
from owin_cosim.errors import ConfigError

if TYPE_CHECKING:
    from owin_cosim.accel.chip import ChipSpec, CoreType
    from owin_cosim.accel.loopnest.mapper import Progress
    from owin_cosim.workload.graph import Layer

__all__ = ["estimate_layer"]


def _find_ert(arch: Path, ert: Path | None) -> Path:
    if ert is not None:
        return ert
    for cand in (
        arch.parent.parent / "accelergy" / "ERT.yaml",  # v0.3 design folders
        arch.parent / "ERT.yaml",
        arch.parent / "timeloop-mapper.ERT.yaml",  # v0.4 case folders
    ):
        if cand.is_file():
            return cand
    raise ConfigError(
        arch, "", "no Accelergy ERT found beside the architecture; expected --ert ERT.yaml"
    )


def estimate_layer(
    arch: Path,
    problem: Path,
    *,
    mapping: Path | None = None,
    ert: Path | None = None,
    backend: str = "analytic",
    evaluations: int = 3000,
    seed: int = 0,
    write_mapping_to: Path | None = None,
    progress: Progress | None = None,
    core_type: str | None = None,
) -> dict[str, Any]:
    """The JSON-ready cost of the layer of ``problem`` on ``arch`` (see the module doc).

    ``progress`` is told ``(evaluations done, budget)`` during a mapping search.
    ``core_type`` names the core type of a spec (default: its first); a spec's result
    says which under ``core_type``.
    """
    layer = layer_from_problem(read_problem(problem), name=problem.stem)
    if write_mapping_to is not None and (mapping is not None or backend == "timeloop"):
        raise ConfigError(
            None,
            "--write-mapping",
            "writes the mapping found by a search; expected a Timeloop architecture "
            "without --mapping and with --backend analytic or loopnest",
        )
    doc = load_yaml_any(arch)
    if isinstance(doc, dict) and "chip" in doc:
        return _on_spec(
            arch, layer, mapping, backend, evaluations, seed, write_mapping_to, core_type
        )
    if backend == "zigzag":
        raise ConfigError(
            arch,
            "",
            "the zigzag backend prices a multi-core spec's core; expected --arch SPEC.yaml",
        )
    if core_type is not None:
        raise ConfigError(
            None, "--core-type", "picks a core type of a multi-core spec; --arch is not one"
        )
    if backend == "timeloop":
        from owin_cosim.accel.timeloop.backend import TimeloopCostModel

        components = sorted((arch.parent / "components").glob("*.yaml"))
        model = TimeloopCostModel([arch, *components])
        return _result(asdict(model.layer_cost(layer)), "timeloop-mapper", backend)
    if mapping is None:
        return _searched(
            arch,
            doc,
            problem,
            _find_ert(arch, ert),
            backend,
            evaluations,
            seed,
            write_mapping_to,
            progress,
        )
    from owin_cosim.accel.loopnest.cases import evaluate_files

    return _result(
        evaluate_files(arch, problem, mapping, _find_ert(arch, ert)),
        "loop-nest model, given mapping",
        backend,
    )


def _on_spec(
    arch: Path,
    layer: Layer,
    mapping: Path | None,
    backend: str,
    evaluations: int,
    seed: int,
    write_mapping_to: Path | None,
    core_type: str | None,
) -> dict[str, Any]:
    """The layer on one core of the multi-core spec ``arch`` (analytic, loopnest or zigzag), on
    the one-core view of the core type ``core_type`` (default: the first)."""
    if write_mapping_to is not None:
        raise ConfigError(
            write_mapping_to,
            "",
            "--write-mapping needs a Timeloop architecture (a spec's core is not one)",
        )
    if mapping is not None:
        raise ConfigError(
            mapping,
            "",
            "a mapping applies to a Timeloop architecture, not "
            "to a multi-core spec; expected --arch ARCH.yaml of Timeloop",
        )
    if backend == "timeloop":
        raise ConfigError(
            arch,
            "",
            "the timeloop backend needs a Timeloop architecture; "
            "expected --arch ARCH.yaml with its components folder",
        )
    from owin_cosim.accel.spec import load_chip_spec

    ctype = _core_type(load_chip_spec(arch), core_type, layer)
    if backend == "loopnest":
        from owin_cosim.accel.loopnest.backend import LoopNestCostModel

        nest = LoopNestCostModel(ctype.chip, max_evaluations=evaluations, seed=seed)
        mode, cost = "loop-nest model, searched mapping", asdict(nest.layer_cost(layer))
    elif backend == "zigzag":
        from owin_cosim.accel.zigzag.backend import ZigZagCostModel, require_zigzag

        require_zigzag()
        zigzag = ZigZagCostModel(ctype.chip)
        mode, cost = "ZigZag, searched mapping", asdict(zigzag.layer_cost(layer))
    else:
        from owin_cosim.accel.analytic import AnalyticCostModel

        mode, cost = (
            "analytic model, searched tiling",
            asdict(AnalyticCostModel(ctype.chip).layer_cost(layer)),
        )
    return _result(cost, mode, backend) | {"core_type": ctype.name}


def _core_type(chip: ChipSpec, name: str | None, layer: Layer) -> CoreType:
    """The core type ``name`` of ``chip`` (default: the first), which must run ``layer``."""
    names = [t.name for t in chip.core_types]
    if name is not None and name not in names:
        raise ConfigError(
            None, "--core-type", f"expected one of {', '.join(names)} ({chip.name}), got {name!r}"
        )
    ctype = chip.core_types[names.index(name) if name is not None else 0]
    if not ctype.runs_kind(str(layer.op)):
        raise ConfigError(
            None,
            "--core-type",
            f"core type {ctype.name!r} runs {', '.join(sorted(ctype.runs or ()))} layers, "
            f"not {layer.op}; expected one of "
            + ", ".join(t.name for t in chip.core_types if t.runs_kind(str(layer.op))),
        )
    return ctype


def _searched(
    arch: Path,
    doc: Any,
    problem: Path,
    ert: Path,
    backend: str,
    evaluations: int,
    seed: int,
    write_mapping_to: Path | None,
    progress: Progress | None,
) -> dict[str, Any]:
    from owin_cosim.accel.loopnest.cases import mapper_settings_of
    from owin_cosim.accel.loopnest.mapper import search_design
    from owin_cosim.accel.loopnest.nest import summarize
    from owin_cosim.accel.timeloop.formats import (
        flatten_architecture,
        mapping_to_doc,
        read_ert,
        write_mapping,
    )

    found, objective = search_design(
        flatten_architecture(doc, arch),
        read_ert(ert),
        read_problem(problem),
        mapper_settings_of(arch, doc),
        seed=seed,
        max_evaluations=evaluations,
        time_budget_s=float("inf"),  # bounded by evaluations only: reproducible
        progress=progress,
    )
    out = _result(
        summarize(found.result),
        f"loop-nest model, searched mapping ({found.evaluations} evaluations, "
        f"objective {', '.join(objective)})",
        backend,
    )
    out["mapping"] = mapping_to_doc(found.mapping)["mapping"]
    if write_mapping_to is not None:
        write_mapping(write_mapping_to, found.mapping)
    return out


def _result(cost: dict[str, Any], mode: str, backend: str) -> dict[str, Any]:
    levels = {
        name: {k: lvl[k] for k in ("reads", "writes", "fills", "energy_pJ")}
        for name, lvl in cost.get("levels", {}).items()
    }
    return {
        "cycles": int(cost["cycles"]),
        "energy_pJ": float(cost["energy_pJ"]),
        "utilization": float(cost["utilization"]),
        "levels": levels,
        "mode": mode,
        "backend": backend,
    }
