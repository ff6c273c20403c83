"""Timeloop inputs for the loop-nest model: reference case folders and design files.

:func:`read_case_inputs` reads what a reference case folder (v0.3 or v0.4 layout, as in
``tests/data/timeloop_reference``) says about the core, the layer and the mapper's
settings (:func:`mapper_settings_of`); :func:`load_case` adds the mapping and the
``timeloop-model`` stats, and :func:`evaluate_case` / :func:`evaluate_files` run
:func:`~owin_cosim.accel.loopnest.nest.evaluate` on a case or on loose Timeloop files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from owin_cosim.accel.loopnest.levels import DIMS, ComputeUnit, NestLevel, levels_from_arch
from owin_cosim.accel.loopnest.nest import NestResult, evaluate, summarize
from owin_cosim.accel.timeloop.formats import (
    ArchComponent,
    MappingDirective,
    TimeloopStats,
    load_yaml_any,
    parse_stats,
    read_architecture,
    read_ert,
    read_mapping,
    read_problem,
)
from owin_cosim.errors import ConfigError

__all__ = [
    "CaseInputs",
    "evaluate_case",
    "evaluate_files",
    "load_case",
    "mapper_settings_of",
    "read_case_inputs",
]


def _problem_from_doc(doc: dict[str, Any], file: Path) -> dict[str, int]:
    inst = doc.get("problem", {}).get("instance")
    if not isinstance(inst, dict):
        raise ConfigError(file, "problem.instance", "expected a mapping of dimensions")
    keys = (*DIMS, "Hstride", "Wstride", "Hdilation", "Wdilation")
    return {k: int(inst.get(k, 1)) for k in keys}


#: Top-level keys of an input document that holds its own mapper settings.
_SETTINGS_KEYS = (
    "mapper",
    "architecture_constraints",
    "mapspace_constraints",
    "constraints",
    "mapspace",
)


def mapper_settings_of(arch: str | Path, doc: Any = None) -> Path | dict[str, Any]:
    """Where the mapper settings (constraints, objective) of an architecture file live.

    A whole input document (a v0.4 ``parsed-processed-input.yaml``, or any file with a
    ``mapper`` or constraints section) holds them itself: the document is returned. A
    bare v0.3 ``arch.yaml`` has them beside it (``*constraints*.yaml``, ``mapper.yaml``):
    its folder is returned. ``doc`` is the already loaded file, if at hand.

    Examples
    --------
    >>> mapper_settings_of("inputs/arch.yaml", {"architecture": {}})
    PosixPath('inputs')
    >>> mapper_settings_of("case/in.yaml", {"architecture": {}, "mapper": {}})
    {'architecture': {}, 'mapper': {}}
    """
    path = Path(arch)
    if doc is None:
        doc = load_yaml_any(path)
    if isinstance(doc, dict) and any(k in doc for k in _SETTINGS_KEYS):
        return doc
    return path.parent


@dataclass(frozen=True)
class CaseInputs:
    """What a reference case folder says about the core and the layer (see :func:`load_case`).

    ``settings`` is where the mapper's settings live (:func:`mapper_settings_of`): for
    v0.3, the design's ``inputs`` folder (``*constraints*.yaml``, ``mapper.yaml``); for
    v0.4, the processed input document.
    """

    components: list[ArchComponent]
    ert: dict[str, dict[str, float]]
    problem: dict[str, int]
    settings: Path | dict[str, Any]


def read_case_inputs(case_dir: str | Path) -> CaseInputs:
    """Architecture, ERT, problem and mapper settings of a reference case folder."""
    case = Path(case_dir)
    if (case / "ARCH").is_file():
        name = (case / "ARCH").read_text(encoding="utf-8").strip()
        design = case.parent.parent / "arch" / Path(name).name
        arch = design / "inputs" / "arch.yaml"
        return CaseInputs(
            read_architecture(arch),
            read_ert(design / "accelergy" / "ERT.yaml"),
            read_problem(case / "prob.yaml"),
            mapper_settings_of(arch),
        )
    spec = case / "parsed-processed-input.yaml"
    if not spec.is_file():
        raise ConfigError(case, "", "neither ARCH (v0.3) nor parsed-processed-input.yaml (v0.4)")
    doc = load_yaml_any(spec)
    return CaseInputs(
        read_architecture(spec),
        read_ert(case / "timeloop-mapper.ERT.yaml"),
        _problem_from_doc(doc, spec),
        mapper_settings_of(spec, doc),
    )


def load_case(
    case_dir: str | Path,
) -> tuple[list[NestLevel], ComputeUnit, dict[str, int], list[MappingDirective], TimeloopStats]:
    """Read a reference case folder: levels, compute unit, problem, mapping and the
    ``timeloop-model`` stats.

    v0.3 layout: ``prob.yaml``, ``timeloop-mapper.map.yaml``, ``ARCH`` naming
    ``../../arch/NAME`` (``inputs/arch.yaml``, ``accelergy/ERT.yaml``) and
    ``model/timeloop-model.stats.txt``. v0.4 layout: ``parsed-processed-input.yaml``
    (architecture and problem), ``timeloop-mapper.ERT.yaml`` and the same mapping and
    stats files.
    """
    case = Path(case_dir)
    mapping = read_mapping(case / "timeloop-mapper.map.yaml")
    stats = parse_stats(case / "model" / "timeloop-model.stats.txt")
    inputs = read_case_inputs(case)
    levels, compute, _ = levels_from_arch(inputs.components, inputs.ert)
    return levels, compute, inputs.problem, mapping, stats


def evaluate_case(case_dir: str | Path) -> tuple[NestResult, TimeloopStats]:
    """Evaluate a reference case folder (see :func:`load_case`) and return its stats too."""
    levels, compute, problem, mapping, stats = load_case(case_dir)
    return evaluate(levels, compute, problem, mapping), stats


def evaluate_files(
    arch: str | Path, problem: str | Path, mapping: str | Path, ert: str | Path
) -> dict[str, Any]:
    """Evaluate a mapping from Timeloop files; a JSON-ready dict with ``cycles``,
    ``energy_pJ``, ``utilization`` and ``levels`` (per level: ``reads``, ``writes``
    (updates), ``fills`` summed over dataspaces and instances, and ``energy_pJ``)."""
    levels, compute, _ = levels_from_arch(read_architecture(arch), read_ert(ert))
    return summarize(evaluate(levels, compute, read_problem(problem), read_mapping(mapping)))
