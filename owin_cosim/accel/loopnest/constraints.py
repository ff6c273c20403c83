"""What bounds the mapper's search: Timeloop's constraints and optimization metrics.

:func:`read_constraints` merges a design's architecture and map-space constraints into
:class:`Constraints` (per target level and type: factors, permutation, split,
keep/bypass), :func:`read_optimization_metrics` reads the objective and
:func:`mesh_from_arch` the ``meshX`` of each component (the X/Y split of the fan-outs).
:func:`read_search_settings` reads both constraints and objective of a design, wherever
its mapper settings live (:func:`~owin_cosim.accel.loopnest.cases.mapper_settings_of`).
How they shape the map space: :mod:`owin_cosim.accel.loopnest.mapspace`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from owin_cosim.accel.timeloop.formats import ArchComponent, load_yaml_any
from owin_cosim.errors import ConfigError

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "Constraints",
    "SearchSettings",
    "TargetConstraint",
    "mesh_from_arch",
    "read_constraints",
    "read_optimization_metrics",
    "read_search_settings",
]


@dataclass
class TargetConstraint:
    """The merged Timeloop constraints of one target and type.

    Parameters
    ----------
    target : str
        Storage level name.
    type : str
        ``"temporal"``, ``"spatial"`` or ``"datatype"`` (Timeloop's ``bypass`` too).
    factors : dict
        ``dim -> k``: ``k > 0`` fixes the factor, ``0`` gives it the rest of the dimension.
    permutation : str
        Dimensions, innermost first (spaces removed).
    split : int or None
        Spatial only: the first ``split`` dimensions of the permutation go to the X axis.
    keep, bypass : tuple of str
        Datatype only: dataspaces kept / bypassed.
    """

    target: str
    type: str
    factors: dict[str, int] = field(default_factory=dict)
    permutation: str = ""
    split: int | None = None
    keep: tuple[str, ...] = ()
    bypass: tuple[str, ...] = ()


@dataclass
class Constraints:
    """All constraints of an architecture, keyed by ``(target, type)``."""

    targets: dict[tuple[str, str], TargetConstraint] = field(default_factory=dict)

    def get(self, target: str, kind: str) -> TargetConstraint | None:
        """The constraint of ``target`` of type ``kind``, if any."""
        return self.targets.get((target, kind))


def _parse_factors(value: Any, where: str) -> dict[str, int]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): int(v) for k, v in value.items()}
    tokens = value if isinstance(value, list) else re.split(r"[\s,]+", str(value))
    out: dict[str, int] = {}
    for tok in tokens:
        tok = str(tok).strip()
        if not tok:
            continue
        m = re.fullmatch(r"([A-Za-z]+)\s*=?\s*(\d+)", tok)
        if m is None:
            raise ConfigError(None, where, f"bad factor {tok!r}")
        out[m[1]] = int(m[2])
    return out


def _entries(doc: Any) -> list[dict[str, Any]]:
    if isinstance(doc, list):
        return [e for e in doc if isinstance(e, dict)]
    if not isinstance(doc, dict):
        return []
    out: list[dict[str, Any]] = []
    if "targets" in doc:
        out += _entries(doc["targets"])
    for key in ("architecture_constraints", "mapspace_constraints", "constraints", "mapspace"):
        if key in doc:
            out += _entries(doc[key])
    return out


def read_constraints(
    path_or_doc: str | Path | Sequence[str | Path] | Mapping[str, Any],
) -> Constraints:
    """Read Timeloop architecture and map-space constraints.

    Parameters
    ----------
    path_or_doc : path, list of paths or dict
        A constraints file (``architecture_constraints`` / ``mapspace_constraints`` /
        ``constraints`` with ``targets``), a list of such files (merged in order), a
        folder (every ``*constraints*.yaml`` in it) or an already loaded document
        (e.g. v0.4 ``parsed-processed-input.yaml``).

    Returns
    -------
    Constraints
        Entries of the same target and type are merged: factors are united, the first
        permutation and split given are kept, keep/bypass lists are united.

    Examples
    --------
    >>> c = read_constraints({"architecture_constraints": {"targets": [
    ...     {"target": "glb", "type": "spatial", "factors": "R=1 S=0",
    ...      "permutation": "CM RS", "split": 1},
    ...     {"target": "rf", "type": "bypass", "keep": ["Weights"], "bypass": ["Inputs"]}]}})
    >>> c.get("glb", "spatial").factors, c.get("glb", "spatial").permutation
    ({'R': 1, 'S': 0}, 'CMRS')
    >>> c.get("rf", "datatype").keep
    ('Weights',)
    """
    entries: list[dict[str, Any]] = []
    if isinstance(path_or_doc, Mapping):
        entries = _entries(dict(path_or_doc))
    elif isinstance(path_or_doc, str | Path):
        p = Path(path_or_doc)
        files = sorted(p.glob("*constraints*.yaml")) if p.is_dir() else [p]
        for f in files:
            entries += _entries(load_yaml_any(f))
    else:
        for name in path_or_doc:
            entries += _entries(load_yaml_any(name))
    out = Constraints()
    for i, e in enumerate(entries):
        if "target" not in e or "type" not in e:
            continue
        kind = str(e["type"])
        kind = "datatype" if kind in ("bypass", "datatype", "dataspace") else kind
        if kind not in ("temporal", "spatial", "datatype"):
            continue
        target = str(e["target"]).split("[")[0]
        perm = e.get("permutation", "")
        perm_s = "".join(perm) if isinstance(perm, list) else str(perm or "")
        split = e.get("split")
        cur = out.targets.setdefault((target, kind), TargetConstraint(target, kind))
        cur.factors.update(_parse_factors(e.get("factors"), f"constraints[{i}].factors"))
        if perm_s.strip() and not cur.permutation:
            cur.permutation = re.sub(r"[^A-Za-z]", "", perm_s)
        if split is not None and cur.split is None:
            cur.split = int(split)
        cur.keep = tuple(dict.fromkeys((*cur.keep, *(e.get("keep") or ()))))
        cur.bypass = tuple(dict.fromkeys((*cur.bypass, *(e.get("bypass") or ()))))
    return out


#: Timeloop's ``optimization-metrics`` that :func:`~owin_cosim.accel.loopnest.search.search`
#: understands.
METRICS = ("delay", "energy", "edp")
#: Timeloop's default ``optimization-metrics``: fewest cycles, then least energy.
DEFAULT_METRICS = ("delay", "energy")


def read_optimization_metrics(doc: Any) -> tuple[str, ...]:
    """The mapper's ``optimization-metrics`` (v0.3) / ``optimization_metrics`` (v0.4).

    ``doc`` is a loaded mapper file or whole input (with a ``mapper`` section). Returns
    ``("delay", "energy")``, Timeloop's default, when none are given.

    Examples
    --------
    >>> read_optimization_metrics({"mapper": {"optimization_metrics": ["edp"]}})
    ('edp',)
    >>> read_optimization_metrics({"mapper": {"optimization-metrics": []}})
    ('delay', 'energy')
    """
    sec = doc.get("mapper", doc) if isinstance(doc, Mapping) else {}
    if not isinstance(sec, Mapping):
        return DEFAULT_METRICS
    value = sec.get("optimization_metrics") or sec.get("optimization-metrics") or ()
    if isinstance(value, str):
        value = [value]
    return tuple(str(m) for m in value) or DEFAULT_METRICS


def mesh_from_arch(components: list[ArchComponent]) -> dict[str, int]:
    """``meshX`` of every component by name (for the X/Y split of the fan-outs)."""
    return {c.name: max(1, c.mesh_x) for c in components}


@dataclass(frozen=True)
class SearchSettings:
    """A design's mapper settings: the map-space constraints and the objective."""

    constraints: Constraints
    metrics: tuple[str, ...]


def read_search_settings(settings: Path | Mapping[str, Any]) -> SearchSettings:
    """The constraints and ``optimization-metrics`` of a design.

    ``settings`` comes from :func:`~owin_cosim.accel.loopnest.cases.mapper_settings_of`:
    a v0.3 ``inputs`` folder (every ``*constraints*.yaml`` in it, the objective from its
    ``mapper.yaml``; Timeloop's default without one) or a v0.4 processed input document
    (its constraints and ``mapper`` section).

    Examples
    --------
    >>> s = read_search_settings({"mapper": {"optimization_metrics": ["edp"]},
    ...     "architecture_constraints": {"targets": [
    ...         {"target": "buf", "type": "spatial", "factors": "C=1"}]}})
    >>> s.metrics, s.constraints.get("buf", "spatial").factors
    (('edp',), {'C': 1})
    """
    if isinstance(settings, Path):  # v0.3: the design's inputs folder
        mapper_file = settings / "mapper.yaml"
        constraints = read_constraints(sorted(settings.glob("*constraints*.yaml")))
        metrics = (
            read_optimization_metrics(load_yaml_any(mapper_file))
            if mapper_file.is_file()
            else DEFAULT_METRICS
        )
        return SearchSettings(constraints, metrics)
    return SearchSettings(read_constraints(settings), read_optimization_metrics(settings))
