"""Multi-core accelerator specifications: a Timeloop v0.3 core plus chip-level blocks.

A spec file (see ``accel_specs/README.md``) has three top-level blocks:

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

:func:`load_chip_spec` validates the whole file up front (types, ranges, unknown keys,
structure, energies) and raises :class:`~owin_cosim.errors.ConfigError` naming the
dotted key path of the first offending key. The result is a frozen :class:`ChipSpec`
whose storage levels are expressed per word: sizes in words, bandwidths in words per
cycle, energies in pJ per word access (see :mod:`owin_cosim.accel.chip`, whose classes
this module re-exports). The file's schema is in :mod:`owin_cosim.accel.spec_schema`.

Examples
--------
>>> from pathlib import Path
>>> from owin_cosim.accel import spec as accel_spec
>>> chip = load_chip_spec(Path(accel_spec.__file__).parents[2] / "accel_specs" / "mc4.yaml")
>>> chip.num_cores, chip.core.num_pes, chip.core.global_buffer.size_words
(4, 256, 131072)
>>> chip.hops(0, 3), chip.noc_transfer_s(3200, 0, 0)
(2, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from owin_cosim.accel.chip import ChipSpec, CoreSpec, NocSpec, StorageLevel
from owin_cosim.accel.spec_schema import (
    BUFFER_CLASSES,
    COMPUTE_CLASSES,
    DRAM_CLASSES,
    _Architecture,
    _BufferAttrs,
    _ChipBlock,
    _EnergyEntry,
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
    "ChipSpec",
    "CoreSpec",
    "NocSpec",
    "StorageLevel",
    "load_chip_spec",
    "parse_chip_spec",
]


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
        raise ConfigError(p, "", "expected a mapping with keys chip, architecture, energy_pJ")
    try:
        spec = _SpecFile.model_validate(dict(data))
    except ValidationError as e:
        raise to_config_error(e, p) from None
    return _build(spec, p)


# ---- from the validated file to the per-word ChipSpec ---------------------------------
def _build(spec: _SpecFile, path: Path | None) -> ChipSpec:
    """Check the structure and energies of a validated file; convert it to per-word units.

    The checks run in file order (chip, then system -> core -> PE, then energies), so the
    first offending key is the one reported.
    """
    chip, arch = spec.chip, spec.architecture
    _check_chip(chip, arch, path)
    tree = read_core_tree(arch, chip.word_bits, path)
    dram, glb, spad, mac = tree.dram, tree.global_buffer, tree.pe_buffer, tree.mac
    num_pes = tree.num_pes

    energies = spec.energy_pJ
    _check_energy_names(energies, tree.names, path)
    d_read, d_write, dram_pJ_per_byte = _dram_energies(chip, energies, dram, path)
    g_read, g_write = _storage_energy(energies.get(glb.comp.name), glb.comp.name, path)
    s_read, s_write = _storage_energy(energies.get(spad.comp.name), spad.comp.name, path)
    mac_pJ = _mac_energy(energies.get(mac.comp.name), mac.comp.name, path)

    wbytes = chip.word_bits // 8
    # every core sees the whole DRAM bandwidth: the coordinator shares it by contention
    dram_wpc = chip.dram.bandwidth_GBps * 1e9 / chip.clock_hz / wbytes
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
        _buffer_level(spad, num_pes, chip.word_bits, s_read, s_write),
    )
    noc = chip.noc
    return ChipSpec(
        name=chip.name,
        path=path,
        num_cores=chip.cores,
        clock_hz=chip.clock_hz,
        word_bits=chip.word_bits,
        core=CoreSpec(levels, tree.pe_mesh_x, num_pes // tree.pe_mesh_x, mac_pJ, mac.comp.name),
        noc=NocSpec(
            noc.topology,
            noc.mesh_x,
            noc.mesh_y,
            noc.link_bandwidth_bytes_per_cycle,
            noc.hop_latency_cycles,
            noc.energy_pJ_per_byte_hop,
        ),
        dram_bandwidth_Bps=chip.dram.bandwidth_GBps * 1e9,
        dram_energy_pJ_per_byte=float(dram_pJ_per_byte),
    )


def _check_chip(chip: _ChipBlock, arch: _Architecture, path: Path | None) -> None:
    """The chip block agrees with itself; the architecture is in Timeloop's v0.3 format."""
    noc = chip.noc
    if chip.cores != noc.mesh_x * noc.mesh_y:
        raise ConfigError(
            path,
            "chip.noc.mesh_x",
            f"expected mesh_x * mesh_y == chip.cores ({chip.cores}), got "
            f"{noc.mesh_x} x {noc.mesh_y} = {noc.mesh_x * noc.mesh_y}",
        )
    if str(arch.version) != "0.3":
        raise ConfigError(
            path,
            "architecture.version",
            f"expected 0.3 (Timeloop v0.3 format), got {arch.version!r}",
        )


def _check_energy_names(
    energies: Mapping[str, _EnergyEntry], names: Mapping[str, str], path: Path | None
) -> None:
    for ename in energies:
        if ename not in names:
            raise ConfigError(
                path,
                f"energy_pJ.{ename}",
                f"no component named {ename!r} in the architecture (components: "
                f"{', '.join(names)})",
            )


def _dram_energies(
    chip: _ChipBlock, energies: Mapping[str, _EnergyEntry], dram: Part, path: Path | None
) -> tuple[float, float, float]:
    """DRAM read and write energy per word, and per byte, from ``energy_pJ`` or
    ``chip.dram.energy_pJ_per_byte`` (which must agree when both are given)."""
    wbytes = chip.word_bits // 8
    name = dram.comp.name
    entry = energies.get(name)
    per_byte = chip.dram.energy_pJ_per_byte
    if entry is None and per_byte is None:
        raise ConfigError(
            path,
            f"energy_pJ.{name}",
            "missing energies: give {read, write} in pJ per DRAM access here or "
            "chip.dram.energy_pJ_per_byte",
        )
    if entry is not None:
        d_read, d_write = _storage_energy(entry, name, path)
        d_read, d_write = d_read / dram.block, d_write / dram.block
        if per_byte is not None and not math.isclose(d_read / wbytes, per_byte, rel_tol=1e-6):
            raise ConfigError(
                path,
                "chip.dram.energy_pJ_per_byte",
                f"expected {d_read / wbytes:g} (energy_pJ.{name}.read per byte), got {per_byte:g}",
            )
    else:
        assert per_byte is not None
        d_read = d_write = per_byte * wbytes
    return d_read, d_write, per_byte if per_byte is not None else d_read / wbytes


def _mac_energy(entry: _EnergyEntry | None, name: str, path: Path | None) -> float:
    """Energy per MAC of the compute unit ``name``."""
    if entry is None:
        raise ConfigError(path, f"energy_pJ.{name}", "missing energies: expected {mac: pJ per MAC}")
    if entry.read is not None or entry.write is not None:
        raise ConfigError(
            path,
            f"energy_pJ.{name}.{'read' if entry.read is not None else 'write'}",
            "a compute unit has the action mac only",
        )
    if entry.mac is None:
        raise ConfigError(path, f"energy_pJ.{name}.mac", "missing required key")
    return float(entry.mac)


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


def _storage_energy(
    entry: _EnergyEntry | None, name: str, path: Path | None
) -> tuple[float, float]:
    if entry is None:
        raise ConfigError(
            path, f"energy_pJ.{name}", "missing energies: expected {read, write} in pJ per access"
        )
    if entry.mac is not None:
        raise ConfigError(
            path, f"energy_pJ.{name}.mac", "a storage component has the actions read and write only"
        )
    for action in ("read", "write"):
        if getattr(entry, action) is None:
            raise ConfigError(path, f"energy_pJ.{name}.{action}", "missing required key")
    assert entry.read is not None and entry.write is not None
    return float(entry.read), float(entry.write)
