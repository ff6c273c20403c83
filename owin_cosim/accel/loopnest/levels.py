"""The core as the loop-nest model sees it: storage levels and a compute unit.

:func:`levels_from_arch` turns a Timeloop architecture (its components, outermost first,
and the Accelergy ERT) into :class:`NestLevel` records (capacity, block size,
bandwidths, energy per scalar access) and the :class:`ComputeUnit`, which
:func:`~owin_cosim.accel.loopnest.nest.evaluate` and the mapping search
(:mod:`owin_cosim.accel.loopnest.mapper`) work on. The energy rules, and the register
fallback Timeloop was observed to charge (:data:`REGISTER_FALLBACK_PJ`), are described in
:mod:`owin_cosim.accel.loopnest.nest`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from owin_cosim.accel.timeloop.formats import ArchComponent
from owin_cosim.errors import ConfigError

__all__ = [
    "DATASPACES",
    "DIMS",
    "REGISTER_FALLBACK_PJ",
    "REGISTER_FALLBACK_PJ_PER_BIT",
    "ComputeUnit",
    "NestLevel",
    "levels_from_arch",
]

#: The dataspaces of a CNN layer.
DATASPACES = ("Weights", "Inputs", "Outputs")
#: The problem dimensions of a CNN layer (Timeloop's ``R, S, P, Q, C, M, N``).
DIMS = ("R", "S", "P", "Q", "C", "M", "N")

#: Energy (pJ) per scalar access that Timeloop v3.0.3 charges a 16-bit storage level
#: whose ERT entry has no ``read``/``write`` action (observed in the reference runs).
REGISTER_FALLBACK_PJ = 0.975
#: The same fallback per bit of word width (``REGISTER_FALLBACK_PJ / 16``).
REGISTER_FALLBACK_PJ_PER_BIT = REGISTER_FALLBACK_PJ / 16


@dataclass
class NestLevel:
    """One storage level of the modelled core.

    Parameters
    ----------
    name : str
        The level's name (the mapping's ``target``).
    instances : int
        Number of instances of the level in the core.
    size_words : int or None
        Capacity per instance in words (``None`` = unbounded, e.g. DRAM).
    block_size : int
        Words per vector access; the ERT energies are per vector access.
    read_bw, write_bw : float or None
        Words per cycle per instance (``None`` = unlimited).
    read_energy_pJ, write_energy_pJ, update_energy_pJ : float
        Energy per *scalar* access (ERT energy per vector access / block size).
    """

    name: str
    instances: int
    size_words: int | None
    block_size: int
    read_bw: float | None
    write_bw: float | None
    read_energy_pJ: float
    write_energy_pJ: float
    update_energy_pJ: float


@dataclass(frozen=True)
class ComputeUnit:
    """The MAC array: its name, number of instances and energy per compute (pJ)."""

    name: str
    instances: int
    energy_pJ: float


# ---- architecture -----------------------------------------------------------------------
def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _int_attr(comp: ArchComponent, *names: str) -> int | None:
    value = _num(comp.attr(*names))
    return int(value) if value is not None and value > 0 else None


def _mac_energy(actions: dict[str, float]) -> float:
    for name in ("mac_random", "compute", "mac", "multiply_accumulate"):
        if name in actions:
            return actions[name]
    rest = [v for k, v in actions.items() if k not in ("idle", "leak", "mac_gated")]
    return max(rest, default=0.0)


def levels_from_arch(
    components: list[ArchComponent], ert: dict[str, dict[str, float]]
) -> tuple[list[NestLevel], ComputeUnit, float]:
    """Storage levels (outer to inner), the compute unit and its energy per MAC.

    Parameters
    ----------
    components : list of ArchComponent
        From :func:`~owin_cosim.accel.timeloop.formats.read_architecture` (outermost first); the
        storage levels keep that order, which is Timeloop's level order.
    ert : dict
        Energy per action, from :func:`~owin_cosim.accel.timeloop.formats.read_ert`.

    Returns
    -------
    levels, compute, mac_energy_pJ
        Block size is ``block-size`` when given, else ``width / word bits`` when both
        are given, else 1. The capacity is ``depth x block size``, divided by the
        ``cluster-size`` when one is given (Timeloop's words per cluster row). A level
        without ``read``/``write`` actions in the ERT is charged
        :data:`REGISTER_FALLBACK_PJ_PER_BIT` per bit of its word (observed Timeloop
        behaviour, see :mod:`owin_cosim.accel.loopnest.nest`).
    """
    levels: list[NestLevel] = []
    compute: ComputeUnit | None = None
    for comp in components:
        actions = ert.get(comp.name, {})
        if comp.is_compute:
            if compute is None:
                compute = ComputeUnit(comp.name, comp.instances, _mac_energy(actions))
            continue
        word_bits = _int_attr(comp, "word-bits", "word_bits", "datawidth") or 16
        width = _int_attr(comp, "memory_width", "width")
        block = _int_attr(comp, "block-size", "block_size")
        if block is None:
            block = max(1, width // word_bits) if width and width >= word_bits else 1
        depth = _int_attr(comp, "memory_depth", "depth")
        # Timeloop splits a ``cluster-size``-wide level into clusters: a row then holds
        # width / (word bits x cluster size) words (the Simba-like v0.4 PEWeightRegs,
        # 512 bits wide, 64 clusters, depth 1: Size 1 in Timeloop's stats). Capacity only;
        # the energy per scalar access stays ERT / (width / word bits).
        cluster = _int_attr(comp, "cluster-size", "cluster_size") or 1
        row = max(1, block // cluster) if cluster > 1 else block
        size = depth * row if depth is not None else None
        if "read" in actions or "write" in actions:
            read = actions.get("read", actions.get("write", 0.0))
            write = actions.get("write", read)
            update = actions.get("update", write)
            e_read, e_write, e_update = read / block, write / block, update / block
        elif comp.cls == "reg_storage" or not actions:
            e_read = e_write = e_update = REGISTER_FALLBACK_PJ_PER_BIT * word_bits
        else:
            other = max(v for k, v in actions.items() if k not in ("idle", "leak"))
            e_read = e_write = e_update = other / block
        levels.append(
            NestLevel(
                comp.name,
                comp.instances,
                size,
                block,
                _num(comp.attr("read_bandwidth")),
                _num(comp.attr("write_bandwidth")),
                e_read,
                e_write,
                e_update,
            )
        )
    if compute is None:
        raise ConfigError(None, "architecture", "no compute (MAC) component found")
    if not levels:
        raise ConfigError(None, "architecture", "no storage level found")
    return levels, compute, compute.energy_pJ
