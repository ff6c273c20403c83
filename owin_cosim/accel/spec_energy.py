"""The ``energy_pJ`` block of an accelerator spec: per-action energies (an Accelergy ERT
summary) checked against the core's components and converted to pJ per access.

Every function takes the dotted key path of the entry it reads (``energy_pJ.glb`` or
``core_types[1].energy_pJ.glb``) and raises a :class:`~owin_cosim.errors.ConfigError`
naming it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from owin_cosim.accel.spec_schema import _ChipBlock, _EnergyEntry
from owin_cosim.accel.spec_tree import Part
from owin_cosim.errors import ConfigError

__all__ = ["check_energy_names", "dram_energies", "mac_energy", "storage_energy"]


def check_energy_names(
    energies: Mapping[str, _EnergyEntry], names: Mapping[str, str], path: Path | None, ekey: str
) -> None:
    for ename in energies:
        if ename not in names:
            raise ConfigError(
                path,
                f"{ekey}.{ename}",
                f"no component named {ename!r} in the architecture (components: "
                f"{', '.join(names)})",
            )


def dram_energies(
    chip: _ChipBlock,
    energies: Mapping[str, _EnergyEntry],
    dram: Part,
    path: Path | None,
    ekey: str,
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
            f"{ekey}.{name}",
            "missing energies: give {read, write} in pJ per DRAM access here or "
            "chip.dram.energy_pJ_per_byte",
        )
    if entry is not None:
        d_read, d_write = storage_energy(entry, f"{ekey}.{name}", path)
        d_read, d_write = d_read / dram.block, d_write / dram.block
        if per_byte is not None and not math.isclose(d_read / wbytes, per_byte, rel_tol=1e-6):
            raise ConfigError(
                path,
                "chip.dram.energy_pJ_per_byte",
                f"expected {d_read / wbytes:g} ({ekey}.{name}.read per byte), got {per_byte:g}",
            )
    else:
        assert per_byte is not None
        d_read = d_write = per_byte * wbytes
    return d_read, d_write, per_byte if per_byte is not None else d_read / wbytes


def mac_energy(entry: _EnergyEntry | None, key: str, path: Path | None) -> float:
    """Energy per MAC of the compute unit whose entry is at ``key``."""
    if entry is None:
        raise ConfigError(path, key, "missing energies: expected {mac: pJ per MAC}")
    if entry.read is not None or entry.write is not None:
        raise ConfigError(
            path,
            f"{key}.{'read' if entry.read is not None else 'write'}",
            "a compute unit has the action mac only",
        )
    if entry.mac is None:
        raise ConfigError(path, f"{key}.mac", "missing required key")
    return float(entry.mac)


def storage_energy(entry: _EnergyEntry | None, key: str, path: Path | None) -> tuple[float, float]:
    """Read and write energy per access of the storage entry at ``key``."""
    if entry is None:
        raise ConfigError(path, key, "missing energies: expected {read, write} in pJ per access")
    if entry.mac is not None:
        raise ConfigError(
            path, f"{key}.mac", "a storage component has the actions read and write only"
        )
    for action in ("read", "write"):
        if getattr(entry, action) is None:
            raise ConfigError(path, f"{key}.{action}", "missing required key")
    assert entry.read is not None and entry.write is not None
    return float(entry.read), float(entry.write)
