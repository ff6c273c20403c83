"""Reading Timeloop's and Accelergy's formats, and Timeloop's outputs.

- Architecture YAML (``architecture: {version, subtree: [...]}``, v0.3 ``arch.yaml`` and
  v0.4 ``parsed-processed-input.yaml``): flattened into :class:`ArchComponent` objects
  from the outermost level inwards, with their instance counts (``PE[0..255]`` ranges
  and ``meshX``), classes and attributes.
- Problem YAML (``problem: {instance: {R, S, P, Q, C, M, N, strides...}}``), to and from
  our :class:`~owin_cosim.workload.graph.Layer`.
- Mapping YAML (``mapping: [{target, type, factors, permutation, keep, bypass}]``).
- Accelergy ERT (``ERT.yaml``) and ERT summaries (``ERT_summary.yaml``): energy per
  action, in pJ.
- ``*.stats.txt`` of ``timeloop-model`` / ``timeloop-mapper``: per level, per
  dataspace accesses and energies, and the summary (cycles, energy, utilization).

Every reader raises :class:`~owin_cosim.errors.ConfigError` naming the file and key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from owin_cosim.accel.problem import cnn_layer_instance
from owin_cosim.errors import ConfigError
from owin_cosim.workload.graph import Layer, OpKind

__all__ = [
    "ArchComponent",
    "LevelStats",
    "MappingDirective",
    "TimeloopStats",
    "flatten_architecture",
    "layer_from_problem",
    "layer_to_problem",
    "load_yaml_any",
    "mapping_to_doc",
    "parse_stats",
    "read_architecture",
    "read_ert",
    "read_mapping",
    "read_problem",
    "write_mapping",
]

_DIMS = ("R", "S", "P", "Q", "C", "M", "N")
_RANGE = re.compile(r"^(?P<base>.+?)\[(?P<lo>\d+)\.\.(?P<hi>\d+)\]$")


class _AnyTagLoader(yaml.SafeLoader):
    """A safe loader that reads Timeloop v0.4 tags (``!Component``...) as plain data."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_AnyTagLoader.add_multi_constructor("!", _tagged)


def load_yaml_any(path: str | Path) -> Any:
    """Load a YAML file that may carry Timeloop/Accelergy tags."""
    p = Path(path)
    try:
        return yaml.load(p.read_text(encoding="utf-8"), Loader=_AnyTagLoader)
    except FileNotFoundError:
        raise ConfigError(p, "", "file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(p, "", f"invalid YAML: {exc}") from None


# ---- architecture ---------------------------------------------------------------------
@dataclass(frozen=True)
class ArchComponent:
    """One component of a flattened architecture, outermost first."""

    name: str
    path: str
    cls: str
    instances: int
    mesh_x: int
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def is_compute(self) -> bool:
        return self.cls in ("intmac", "fpmac", "mac", "lmac", "compute") or "mac" in self.cls

    def attr(self, *names: str, default: Any = None) -> Any:
        """The first of ``names`` present in the attributes (v0.3 and v0.4 spellings)."""
        for n in names:
            if n in self.attributes and self.attributes[n] is not None:
                return self.attributes[n]
        return default


def _count(name: str) -> tuple[str, int]:
    m = _RANGE.match(name)
    if m is None:
        return name, 1
    return m["base"], int(m["hi"]) - int(m["lo"]) + 1


def flatten_architecture(
    data: dict[str, Any], file: str | Path | None = None
) -> list[ArchComponent]:
    """Flatten ``architecture.subtree`` into components, outermost first."""
    arch = data.get("architecture") if isinstance(data, dict) else None
    if not isinstance(arch, dict) or not isinstance(arch.get("subtree"), list):
        raise ConfigError(file, "architecture.subtree", "expected a list of nodes")
    out: list[ArchComponent] = []

    def walk(nodes: list[Any], prefix: str, fanout: int, key: str) -> None:
        for i, node in enumerate(nodes):
            where = f"{key}[{i}]"
            if not isinstance(node, dict) or "name" not in node:
                raise ConfigError(file, where, "expected a node with a 'name'")
            base, count = _count(str(node["name"]))
            path = f"{prefix}.{base}" if prefix else base
            inner = fanout * count
            for j, comp in enumerate(node.get("local") or []):
                if not isinstance(comp, dict) or "name" not in comp or "class" not in comp:
                    raise ConfigError(
                        file, f"{where}.local[{j}]", "expected a component with 'name' and 'class'"
                    )
                cbase, ccount = _count(str(comp["name"]))
                attrs = dict(comp.get("attributes") or {})
                out.append(
                    ArchComponent(
                        cbase,
                        f"{path}.{cbase}",
                        str(comp["class"]),
                        inner * ccount,
                        int(attrs.get("meshX", 1) or 1),
                        attrs,
                    )
                )
            walk(node.get("subtree") or [], path, inner, f"{where}.subtree")

    walk(arch["subtree"], "", 1, "architecture.subtree")
    if not out:
        raise ConfigError(file, "architecture.subtree", "no components found")
    return out


def read_architecture(path: str | Path) -> list[ArchComponent]:
    """Read an architecture file (v0.3 ``arch.yaml`` or a v0.4 processed input)."""
    return flatten_architecture(load_yaml_any(path), path)


# ---- problems -------------------------------------------------------------------------
def read_problem(path: str | Path) -> dict[str, int]:
    """The ``problem.instance`` of a CNN-layer problem file (missing dims default to 1)."""
    data = load_yaml_any(path)
    inst = data.get("problem", {}).get("instance") if isinstance(data, dict) else None
    if not isinstance(inst, dict):
        raise ConfigError(path, "problem.instance", "expected a mapping of dimensions")
    out: dict[str, int] = {}
    for key in (*_DIMS, "Hstride", "Wstride", "Hdilation", "Wdilation"):
        value = inst.get(key, 1)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(
                path, f"problem.instance.{key}", f"expected an integer >= 1, got {value!r}"
            )
        out[key] = value
    for bad in ("HStride", "WStride"):
        if bad in inst:
            raise ConfigError(
                path,
                f"problem.instance.{bad}",
                "Timeloop reads this spelling as stride 1; expected 'Hstride' / 'Wstride'",
            )
    return out


def layer_from_problem(instance: dict[str, int], name: str = "layer") -> Layer:
    """A convolution :class:`Layer` from a problem instance."""
    return Layer(
        name,
        OpKind.CONV,
        R=instance["R"],
        S=instance["S"],
        P=instance["P"],
        Q=instance["Q"],
        C=instance["C"],
        M=instance["M"],
        N=instance["N"],
        Hstride=instance.get("Hstride", 1),
        Wstride=instance.get("Wstride", 1),
        Hdilation=instance.get("Hdilation", 1),
        Wdilation=instance.get("Wdilation", 1),
    )


def layer_to_problem(layer: Layer) -> dict[str, Any]:
    """A Timeloop problem document (``problem: {shape: CNN-Layer, instance}``).

    The instance is :func:`~owin_cosim.accel.problem.cnn_layer_instance` (channel-wise
    layers with their channels folded into ``N``), as the loop-nest backend prices it.
    """
    return {"problem": {"shape": {"name": "CNN-Layer"}, "instance": cnn_layer_instance(layer)}}


# ---- mappings -------------------------------------------------------------------------
@dataclass(frozen=True)
class MappingDirective:
    """One entry of a Timeloop mapping."""

    target: str
    type: str
    factors: dict[str, int] = field(default_factory=dict)
    permutation: str = ""
    keep: tuple[str, ...] = ()
    bypass: tuple[str, ...] = ()
    #: Spatial only: the first ``split`` dimensions of the permutation go to the X axis.
    split: int | None = None


def mapping_to_doc(mapping: list[MappingDirective]) -> dict[str, Any]:
    """A mapping as Timeloop's ``map.yaml`` document (the inverse of :func:`read_mapping`).

    >>> d = mapping_to_doc([MappingDirective("buf", "spatial", {"M": 4, "C": 2}, "MC", split=1)])
    >>> d["mapping"][0]["factors"], d["mapping"][0]["split"]
    ('M4 C2', 1)
    """
    entries: list[dict[str, Any]] = []
    for d in mapping:
        e: dict[str, Any] = {"target": d.target, "type": d.type}
        if d.type == "datatype":
            e["keep"], e["bypass"] = list(d.keep), list(d.bypass)
        else:
            e["factors"] = " ".join(f"{k}{v}" for k, v in d.factors.items())
            e["permutation"] = d.permutation
            if d.split is not None:
                e["split"] = d.split
        entries.append(e)
    return {"mapping": entries}


def write_mapping(path: str | Path, mapping: list[MappingDirective]) -> None:
    """Write ``mapping`` as a Timeloop ``map.yaml`` (``timeloop-model`` reads it)."""
    Path(path).write_text(yaml.safe_dump(mapping_to_doc(mapping), sort_keys=False))


def read_mapping(path: str | Path) -> list[MappingDirective]:
    """Read ``mapping: [...]`` (``timeloop-mapper.map.yaml``)."""
    data = load_yaml_any(path)
    entries = data.get("mapping") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ConfigError(path, "mapping", "expected a list of directives")
    out = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or "target" not in e or "type" not in e:
            raise ConfigError(path, f"mapping[{i}]", "expected 'target' and 'type'")
        factors: dict[str, int] = {}
        for tok in str(e.get("factors", "")).split():
            m = re.fullmatch(r"([A-Z])=?(\d+)", tok)
            if m is None:
                raise ConfigError(path, f"mapping[{i}].factors", f"bad factor {tok!r}")
            factors[m[1]] = int(m[2])
        out.append(
            MappingDirective(
                str(e["target"]).split("[")[0],
                str(e["type"]),
                factors,
                str(e.get("permutation", "")),
                tuple(e.get("keep") or ()),
                tuple(e.get("bypass") or ()),
                int(e["split"]) if e.get("split") is not None else None,
            )
        )
    return out


# ---- energy tables --------------------------------------------------------------------
def read_ert(path: str | Path) -> dict[str, dict[str, float]]:
    """Energy per action (pJ) by component name, from an ERT or an ERT summary.

    Components are keyed by their last name (``system.simple_ws.PE[0..255].mac`` ->
    ``mac``). With several argument variants of an action (ERT), or an average/max/min
    (summary), the *max* is taken: Timeloop charges a random access at the maximum.
    """
    data = load_yaml_any(path)
    if not isinstance(data, dict):
        raise ConfigError(path, "", "expected an ERT or ERT_summary mapping")
    if "ERT" in data:
        tables = data["ERT"].get("tables", [])
    elif "ERT_summary" in data:
        tables = data["ERT_summary"].get("table_summary", [])
    else:
        raise ConfigError(path, "", "expected a top-level 'ERT' or 'ERT_summary'")
    out: dict[str, dict[str, float]] = {}
    for i, table in enumerate(tables):
        # Ranges first: ``PE[0..15].Buffer[0..3]`` must key as ``Buffer``.
        name = re.sub(r"\[\d+\.\.\d+\]", "", str(table.get("name", ""))).split(".")[-1]
        actions: dict[str, float] = out.setdefault(name, {})
        for j, act in enumerate(table.get("actions") or []):
            value = act.get("energy", act.get("max_energy"))
            if value is None:
                raise ConfigError(path, f"tables[{i}].actions[{j}]", "no energy given")
            aname = str(act["name"])
            actions[aname] = max(actions.get(aname, 0.0), float(value))
    return out


# ---- stats ----------------------------------------------------------------------------
@dataclass
class LevelStats:
    """One level of a ``stats.txt``: per dataspace, its counters (per instance)."""

    name: str
    index: int
    specs: dict[str, str] = field(default_factory=dict)
    stats: dict[str, str] = field(default_factory=dict)
    dataspaces: dict[str, dict[str, float]] = field(default_factory=dict)

    def counter(self, dataspace: str, key: str) -> float:
        return self.dataspaces.get(dataspace, {}).get(key, 0.0)


@dataclass
class TimeloopStats:
    """A parsed ``timeloop-model`` / ``timeloop-mapper`` ``stats.txt``."""

    cycles: int
    energy_pJ: float
    utilization: float
    computes: int
    levels: list[LevelStats]
    fj_per_compute: dict[str, float]

    def level(self, name: str) -> LevelStats:
        for lvl in self.levels:
            if lvl.name == name:
                return lvl
        raise KeyError(name)

    def energy_by_level_pJ(self) -> dict[str, float]:
        """Energy per level (pJ), from the per-compute breakdown."""
        return {
            k: v * 1e-3 * self.computes
            for k, v in self.fj_per_compute.items()
            if "<==>" not in k and k != "Total"
        }


_NUM = re.compile(r"^-?[\d.]+(?:e[+-]?\d+)?")


def _number(text: str) -> float | None:
    m = _NUM.match(text.strip())
    return float(m.group(0)) if m else None


def parse_stats(path: str | Path) -> TimeloopStats:
    """Parse a Timeloop ``stats.txt``."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        raise ConfigError(p, "", "file not found") from None
    levels: list[LevelStats] = []
    current: LevelStats | None = None
    section = ""
    dataspace = ""
    summary: dict[str, str] = {}
    breakdown: dict[str, float] = {}
    computes = 0
    mode = "levels"
    for raw in lines:
        line = raw.rstrip()
        stripped = line.strip()
        if line.startswith("Level "):
            mode = "levels"
            current = LevelStats("", int(line.split()[1]))
            levels.append(current)
            continue
        if line.startswith("Operational Intensity Stats"):
            mode = "oi"
            current = None
            continue
        if line.startswith("Summary Stats"):
            mode = "summary"
            continue
        if mode == "levels" and current is not None:
            m = re.match(r"^=== (.+) ===$", stripped)
            if m:
                current.name = m.group(1)
                continue
            if stripped in ("SPECS", "STATS", "MAPPING"):
                section, dataspace = stripped, ""
                continue
            if re.match(r"^[A-Za-z_]+:$", stripped) and section == "STATS":
                dataspace = stripped[:-1]
                current.dataspaces.setdefault(dataspace, {})
                continue
            if ":" in stripped and not stripped.startswith("-"):
                key, _, value = stripped.partition(":")
                key, value = key.strip(), value.strip()
                if section == "SPECS":
                    current.specs[key] = value
                elif section == "STATS" and dataspace:
                    num = _number(value)
                    if num is not None:
                        current.dataspaces[dataspace][key] = num
                elif section == "STATS":
                    current.stats[key] = value
        elif mode == "summary":
            if stripped.startswith("Computes ="):
                computes = int(stripped.split("=")[1])
            elif "=" in stripped and computes:
                key, _, value = stripped.partition("=")
                num = _number(value)
                if num is not None:
                    breakdown[key.strip()] = num
            elif ":" in stripped:
                key, _, value = stripped.partition(":")
                summary[key.strip()] = value.strip()
    try:
        cycles = int(float(summary["Cycles"]))
        energy_uj = float(summary["Energy"].split()[0])
        util_text = summary["Utilization"]
        util = float(util_text.rstrip("%")) / (100.0 if util_text.endswith("%") else 1.0)
    except (KeyError, ValueError):
        raise ConfigError(p, "Summary Stats", "expected Cycles, Energy and Utilization") from None
    total_fj = breakdown.get("Total")
    energy_pJ = total_fj * 1e-3 * computes if total_fj is not None and computes else energy_uj * 1e6
    return TimeloopStats(cycles, energy_pJ, util, computes, levels, breakdown)
