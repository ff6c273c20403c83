"""Multi-core accelerator specifications: Timeloop v0.3 cores plus chip-level blocks.

A spec file (see ``accel_specs/README.md``) is homogeneous or heterogeneous. A
homogeneous file has three top-level blocks:

``chip``
    Core count, clock, word size, the 2-D mesh network-on-chip between cores and the
    DRAM shared by the chip.
``architecture``
    ONE core in Timeloop's v0.3 architecture format: ``system`` (holding the ``DRAM``)
    -> the core (holding the global buffer) -> ``PE[0..N-1]`` (holding a per-PE
    scratchpad and the MAC unit). ``PE[lo..hi]`` gives the PE count and ``meshX`` its
    width. Every core of the chip is a copy of this one.
``energy_pJ``
    Energy per action in pJ, like an Accelergy ERT summary: component name ->
    ``{read, write}`` for storage (one action moves one block of ``block-size`` words)
    or ``{mac}`` for the compute unit.

A heterogeneous file has ``chip`` and ``core_types`` instead: a list of core types, each
with a ``name``, a ``count``, optionally the layer kinds it ``runs``, and its own
``architecture`` and ``energy_pJ`` as above. The counts sum to ``chip.cores``; the types
take the cores of the mesh row-major in the order listed.

:func:`load_chip_spec` validates the whole file up front (types, ranges, unknown keys,
structure, energies) and raises :class:`~owin_cosim.errors.ConfigError` naming the
dotted key path of the first offending key (``core_types[1].architecture.subtree[0]...``
in a heterogeneous file). The result is a frozen :class:`ChipSpec` whose storage levels
are expressed per word: sizes in words, bandwidths in words per cycle, energies in pJ per
word access (see :mod:`owin_cosim.accel.chip`, whose classes this module re-exports).
Every core's DRAM level has the chip's whole DRAM bandwidth: the coordinator shares it
between the cores by contention. The file's schema is in
:mod:`owin_cosim.accel.spec_schema`.

Examples
--------
>>> from pathlib import Path
>>> from owin_cosim.accel import spec as accel_spec
>>> specs = Path(accel_spec.__file__).parents[2] / "accel_specs"
>>> chip = load_chip_spec(specs / "mc4.yaml")
>>> chip.num_cores, chip.core.num_pes, chip.core.global_buffer.size_words
(4, 256, 131072)
>>> chip.hops(0, 3), chip.noc_transfer_s(3200, 0, 0)
(2, 0.0)
>>> [(t.name, t.count) for t in chip.core_types], chip.core_types[0].chip.num_cores
([('core', 4)], 1)
>>> hetero = load_chip_spec(specs / "hetero_big_little.yaml")
>>> [(t.name, t.count, t.chip.core.num_pes) for t in hetero.core_types]
[('big', 4, 256), ('little', 10, 64), ('vector', 2, 64)]
>>> hetero.types_by_kind("conv"), hetero.types_by_kind("eltwise")
((0, 1), (0, 1, 2))
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from owin_cosim.accel.chip import (
    LAYER_KINDS,
    ChipSpec,
    CoreSpec,
    CoreType,
    NocSpec,
    StorageLevel,
)
from owin_cosim.accel.spec_energy import (
    check_energy_names,
    dram_energies,
    mac_energy,
    storage_energy,
)
from owin_cosim.accel.spec_schema import (
    BUFFER_CLASSES,
    COMPUTE_CLASSES,
    DRAM_CLASSES,
    _Architecture,
    _BufferAttrs,
    _ChipBlock,
    _CoreTypeBlock,
    _EnergyEntry,
    _HeteroSpecFile,
    _SpecFile,
    to_config_error,
)
from owin_cosim.accel.spec_tree import Part, read_core_tree
from owin_cosim.errors import ConfigError
from owin_cosim.yaml_input import read_yaml

__all__ = [
    "BUFFER_CLASSES",
    "COMPUTE_CLASSES",
    "DRAM_CLASSES",
    "LAYER_KINDS",
    "ChipSpec",
    "CoreSpec",
    "CoreType",
    "NocSpec",
    "StorageLevel",
    "load_chip_spec",
    "parse_chip_spec",
]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# ---- loading -------------------------------------------------------------------------
def load_chip_spec(path: str | Path) -> ChipSpec:
    """Read, validate and convert an accelerator spec file.

    Parameters
    ----------
    path : str or Path
        A YAML spec (see ``accel_specs/README.md``).

    Returns
    -------
    ChipSpec

    Raises
    ------
    ConfigError
        Unreadable file, bad YAML, or any missing, unknown or invalid key, with the
        dotted key path of the offending key.
    """
    p = Path(path)
    data = read_yaml(p, "accelerator spec")
    return parse_chip_spec(data, p)


def parse_chip_spec(data: Any, path: str | Path | None = None) -> ChipSpec:
    """Validate and convert an already-parsed spec mapping (``path`` only names it).

    Raises
    ------
    ConfigError
        As :func:`load_chip_spec`.
    """
    p = Path(path) if path is not None else None
    if not isinstance(data, Mapping):
        raise ConfigError(
            p, "", "expected a mapping with keys chip and architecture, energy_pJ or core_types"
        )
    hetero = _is_heterogeneous(data, p)
    try:
        if hetero:
            return _build_hetero(_HeteroSpecFile.model_validate(dict(data)), p)
        return _build(_SpecFile.model_validate(dict(data)), p)
    except ValidationError as e:
        raise to_config_error(e, p) from None


def _is_heterogeneous(data: Mapping[Any, Any], path: Path | None) -> bool:
    """Whether ``data`` lists ``core_types`` (else one ``architecture``); exactly one."""
    if "architecture" in data and "core_types" in data:
        raise ConfigError(
            path,
            "core_types",
            "expected either architecture (every core alike) or core_types "
            "(a heterogeneous chip), not both",
        )
    if "core_types" in data:
        if "energy_pJ" in data:
            raise ConfigError(
                path,
                "energy_pJ",
                "unknown key in a spec with core_types: each core type has its own energy_pJ",
            )
        return True
    if "architecture" not in data:
        raise ConfigError(
            path,
            "architecture",
            "missing required key: expected architecture (every core alike) or "
            "core_types (a heterogeneous chip)",
        )
    return False


# ---- from the validated file to the per-word ChipSpec ---------------------------------
def _build(spec: _SpecFile, path: Path | None) -> ChipSpec:
    """Check the structure and energies of a validated homogeneous file; convert it.

    The checks run in file order (chip, then system -> core -> PE, then energies), so the
    first offending key is the one reported.
    """
    chip = spec.chip
    _check_chip(chip, path)
    core, dram_pJ = _core(chip, spec.architecture, spec.energy_pJ, path, "")
    doc = _doc(chip, spec.architecture, spec.energy_pJ, one_core=False)
    if chip.cores == 1:  # the chip is its own one-core view
        return _chip_spec(chip, path, chip.name, core, dram_pJ, (), doc)
    view_doc = _doc(chip, spec.architecture, spec.energy_pJ, one_core=True)
    view = _chip_spec(chip, path, chip.name, core, dram_pJ, (), view_doc)
    types = (CoreType("core", chip.cores, None, view, view_doc),)
    return _chip_spec(chip, path, chip.name, core, dram_pJ, types, doc)


def _build_hetero(spec: _HeteroSpecFile, path: Path | None) -> ChipSpec:
    """As :func:`_build` for a file with ``core_types``: each type is a one-core view
    named ``<chip>.<type>``; all types must price the one DRAM alike."""
    chip = spec.chip
    _check_chip(chip, path)
    _check_core_types(chip, spec.core_types, path)
    types: list[CoreType] = []
    for i, t in enumerate(spec.core_types):
        prefix = f"core_types[{i}]."
        core, dram_pJ = _core(chip, t.architecture, t.energy_pJ, path, prefix)
        first = types[0].chip.dram_energy_pJ_per_byte if types else dram_pJ
        if not math.isclose(dram_pJ, first, rel_tol=1e-6):
            raise ConfigError(
                path,
                f"{prefix}energy_pJ.{core.dram.name}",
                f"expected the DRAM energy of core_types[0] ({first:g} pJ/byte: the chip "
                f"has one DRAM), got {dram_pJ:g} pJ/byte",
            )
        view_doc = _doc(chip, t.architecture, t.energy_pJ, one_core=True, name=f".{t.name}")
        view = _chip_spec(chip, path, f"{chip.name}.{t.name}", core, dram_pJ, (), view_doc)
        runs = None if t.runs is None else frozenset(t.runs)
        types.append(CoreType(t.name, t.count, runs, view, view_doc))
    doc = {
        "chip": _dump(chip),
        "core_types": [
            {"name": t.name, "count": t.count}
            | ({} if t.runs is None else {"runs": list(t.runs)})
            | {"architecture": _dump(t.architecture), "energy_pJ": _dump_energies(t.energy_pJ)}
            for t in spec.core_types
        ],
    }
    lead = types[0].chip
    return _chip_spec(
        chip, path, chip.name, lead.core, lead.dram_energy_pJ_per_byte, tuple(types), doc
    )


def _chip_spec(
    chip: _ChipBlock,
    path: Path | None,
    name: str,
    core: CoreSpec,
    dram_pJ_per_byte: float,
    types: tuple[CoreType, ...],
    doc: dict[str, Any],
) -> ChipSpec:
    """The ChipSpec of ``chip``'s block; a one-core view when ``types`` is empty."""
    noc = chip.noc
    one = not types
    return ChipSpec(
        name=name,
        path=path,
        num_cores=1 if one else chip.cores,
        clock_hz=chip.clock_hz,
        word_bits=chip.word_bits,
        core=core,
        noc=NocSpec(
            noc.topology,
            1 if one else noc.mesh_x,
            1 if one else noc.mesh_y,
            noc.link_bandwidth_bytes_per_cycle,
            noc.hop_latency_cycles,
            noc.energy_pJ_per_byte_hop,
        ),
        dram_bandwidth_Bps=chip.dram.bandwidth_GBps * 1e9,
        dram_energy_pJ_per_byte=float(dram_pJ_per_byte),
        core_types=types,
        spec_doc=doc,
    )


def _core(
    chip: _ChipBlock,
    arch: _Architecture,
    energies: Mapping[str, _EnergyEntry],
    path: Path | None,
    prefix: str,
) -> tuple[CoreSpec, float]:
    """One core in per-word units, and the DRAM energy per byte; ``prefix`` goes before
    the key paths (``""`` or ``"core_types[1]."``)."""
    if str(arch.version) != "0.3":
        raise ConfigError(
            path,
            f"{prefix}architecture.version",
            f"expected 0.3 (Timeloop v0.3 format), got {arch.version!r}",
        )
    tree = read_core_tree(arch, chip.word_bits, path, prefix)
    dram, glb, spad, mac = tree.dram, tree.global_buffer, tree.pe_buffer, tree.mac
    ekey = f"{prefix}energy_pJ"
    check_energy_names(energies, tree.names, path, ekey)
    d_read, d_write, dram_pJ_per_byte = dram_energies(chip, energies, dram, path, ekey)
    g_read, g_write = storage_energy(energies.get(glb.comp.name), f"{ekey}.{glb.comp.name}", path)
    s_read, s_write = storage_energy(energies.get(spad.comp.name), f"{ekey}.{spad.comp.name}", path)
    mac_pJ = mac_energy(energies.get(mac.comp.name), f"{ekey}.{mac.comp.name}", path)

    # every core sees the whole DRAM bandwidth: the coordinator shares it by contention
    dram_wpc = chip.dram.bandwidth_GBps * 1e9 / chip.clock_hz / (chip.word_bits // 8)
    levels = (
        StorageLevel(
            dram.comp.name,
            None,
            1,
            dram_wpc,
            dram_wpc,
            d_read,
            d_write,
            dram.comp.class_,
            dram.key,
        ),
        _buffer_level(glb, 1, chip.word_bits, g_read, g_write),
        _buffer_level(spad, tree.num_pes, chip.word_bits, s_read, s_write),
    )
    pe_y = tree.num_pes // tree.pe_mesh_x
    return CoreSpec(levels, tree.pe_mesh_x, pe_y, mac_pJ, mac.comp.name), dram_pJ_per_byte


# ---- the spec as plain data ------------------------------------------------------------
def _dump(model: BaseModel) -> dict[str, Any]:
    """A validated block as plain data, in the file's spelling (``class``, ``word-bits``)."""
    out: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out


def _dump_energies(energies: Mapping[str, _EnergyEntry]) -> dict[str, Any]:
    return {name: _dump(entry) for name, entry in energies.items()}


def _doc(
    chip: _ChipBlock,
    arch: _Architecture,
    energies: Mapping[str, _EnergyEntry],
    *,
    one_core: bool,
    name: str = "",
) -> dict[str, Any]:
    """A homogeneous spec mapping of ``arch``: the whole chip, or (``one_core``) one core
    alone on a 1 x 1 mesh; ``name`` is appended to the chip's name."""
    block = _dump(chip)
    block["name"] = chip.name + name
    if one_core:
        block["cores"] = 1
        block["noc"]["mesh_x"] = block["noc"]["mesh_y"] = 1
    return {"chip": block, "architecture": _dump(arch), "energy_pJ": _dump_energies(energies)}


# ---- checks ----------------------------------------------------------------------------
def _check_chip(chip: _ChipBlock, path: Path | None) -> None:
    """The chip block agrees with itself."""
    noc = chip.noc
    if chip.cores != noc.mesh_x * noc.mesh_y:
        raise ConfigError(
            path,
            "chip.noc.mesh_x",
            f"expected mesh_x * mesh_y == chip.cores ({chip.cores}), got "
            f"{noc.mesh_x} x {noc.mesh_y} = {noc.mesh_x * noc.mesh_y}",
        )


def _check_core_types(chip: _ChipBlock, types: Sequence[_CoreTypeBlock], path: Path | None) -> None:
    """At least one type; identifier names, unique; known layer kinds; counts that sum
    to ``chip.cores``. (A kind no type runs is the scenario's business, not the spec's.)"""
    if not types:
        raise ConfigError(path, "core_types", "expected at least one core type, got []")
    total = sum(t.count for t in types)
    if total != chip.cores:
        counts = " + ".join(str(t.count) for t in types)
        raise ConfigError(
            path,
            "chip.cores",
            f"expected the sum of core_types[*].count ({counts} = {total}), got {chip.cores}",
        )
    seen: dict[str, int] = {}
    for i, t in enumerate(types):
        if not _IDENTIFIER.match(t.name):
            raise ConfigError(
                path,
                f"core_types[{i}].name",
                f"expected an identifier (letters, digits, _; not starting with a digit), "
                f"got {t.name!r}",
            )
        if t.name in seen:
            raise ConfigError(
                path,
                f"core_types[{i}].name",
                f"duplicate core type name {t.name!r} (also core_types[{seen[t.name]}])",
            )
        seen[t.name] = i
        _check_runs(t.runs, f"core_types[{i}].runs", path)


def _check_runs(runs: Sequence[str] | None, key: str, path: Path | None) -> None:
    if runs is None:
        return
    if not runs:
        raise ConfigError(
            path, key, "expected at least one layer kind (leave runs out for every kind)"
        )
    for j, kind in enumerate(runs):
        if kind not in LAYER_KINDS:
            raise ConfigError(
                path, f"{key}[{j}]", f"expected one of {', '.join(LAYER_KINDS)}, got {kind!r}"
            )
        if kind in runs[:j]:
            raise ConfigError(path, f"{key}[{j}]", f"duplicate layer kind {kind!r}")


def _buffer_level(
    part: Part, instances: int, word_bits: int, read_pJ: float, write_pJ: float
) -> StorageLevel:
    """An on-chip buffer level, per word; ``read_pJ``, ``write_pJ``: per access."""
    attrs: _BufferAttrs = part.attrs
    return StorageLevel(
        part.comp.name,
        attrs.memory_depth * attrs.memory_width // word_bits,
        instances,
        attrs.read_bandwidth or math.inf,
        attrs.write_bandwidth or math.inf,
        read_pJ / part.block,
        write_pJ / part.block,
        part.comp.class_,
        part.key,
    )
