"""ZigZag's results as plain data, and that data as a :class:`LayerCost`.

:func:`summarize` runs in the child process (it reads ZigZag's ``CostModelEvaluation``
of the best mapping) and returns JSON-ready numbers; :func:`layer_cost` turns them into
a :class:`~owin_cosim.accel.cost_model.LayerCost` in the caller.

===========================  ==========================================================
ZigZag                       here
===========================  ==========================================================
``latency_total2``           ``cycles``, rounded up (with the initial on-loading and
                             the final off-loading of data: ZigZag's full latency)
``latency_total0``           ``latency_no_loading`` (without on/off-loading)
``ideal_temporal_cycle``     the chosen mapping's cycles with no stall at all
``stall_slack_comb_collect`` per-level stalls; ``compute_cycles`` = ideal temporal
                             cycles + the largest stall of an on-chip level (the DRAM
                             level's own stall and the on/off-loading left out: what
                             the mapping takes with unlimited DRAM bandwidth)
``energy_total``             ``energy_pJ`` (MACs + every memory level)
``memory_word_access``       per level ``reads`` (read out to either side), ``fills``
                             (written from above) and ``writes`` (written from below:
                             partial-sum updates), in words, summed over operands
===========================  ==========================================================
"""

from __future__ import annotations

import math
from typing import Any

from owin_cosim.accel.cost_model import LayerCost, LevelAccesses

__all__ = ["layer_cost", "summarize"]


def _level_accesses(cme: Any, word_bits: int) -> dict[str, dict[str, float]]:
    from zigzag.hardware.architecture.memory_port import DataDirection

    hierarchy = cme.accelerator.memory_hierarchy
    links = cme.memory_operand_links
    kinds = {
        DataDirection.RD_OUT_TO_LOW: "reads",
        DataDirection.RD_OUT_TO_HIGH: "reads",
        DataDirection.WR_IN_BY_HIGH: "fills",
        DataDirection.WR_IN_BY_LOW: "writes",
    }
    out: dict[str, dict[str, float]] = {}
    for layer_op, per_level in cme.memory_word_access.items():
        mem_op = links.layer_to_mem_op(layer_op)
        mem_levels = hierarchy.get_memory_levels(mem_op=mem_op)
        energies = cme.mem_energy_breakdown[layer_op]
        for accesses, level, energy in zip(per_level, mem_levels, energies, strict=True):
            rec = out.setdefault(
                level.name, {"reads": 0.0, "writes": 0.0, "fills": 0.0, "energy_pJ": 0.0}
            )
            rec["energy_pJ"] += float(energy)
            for direction, kind in kinds.items():
                count = accesses.get(direction)
                if count:
                    # Counts are in units of the port's width; back to words.
                    width = level.get_max_bandwidth(mem_op, direction) or word_bits
                    rec[kind] += float(count) * width / word_bits
    return out


def summarize(cme: Any, word_bits: int, dram: str) -> dict[str, Any]:
    """The numbers of ZigZag's evaluation ``cme`` (child side; see the module doc)."""
    stalls = {
        level.name: max([0.0, *(float(v) for v in ports.values())])
        for level, ports in zip(cme.mem_level_list, cme.stall_slack_comb_collect, strict=True)
    }
    on_chip = max([0.0, *(v for k, v in stalls.items() if k != dram)])
    return {
        "latency": float(cme.latency_total2),
        "latency_no_loading": float(cme.latency_total0),
        "latency_onloading": float(cme.latency_total1),
        "onloading_cycles": float(cme.data_onloading_cycle),
        "offloading_cycles": float(cme.data_offloading_cycle),
        "ideal_cycles": float(cme.ideal_cycle),
        "ideal_temporal_cycles": float(cme.ideal_temporal_cycle),
        "compute_cycles": float(cme.ideal_temporal_cycle) + on_chip,
        "stalls": stalls,
        "dram": dram,
        "energy_pJ": float(cme.energy_total),
        "mac_energy_pJ": float(cme.mac_energy),
        "levels": _level_accesses(cme, word_bits),
        "spatial_mapping": str(cme.layer.spatial_mapping),
        "temporal_mapping": str(cme.temporal_mapping),
    }


def layer_cost(
    summary: dict[str, Any],
    *,
    macs: int,
    pes: int,
    clock_hz: float,
    latency_scale: float,
    mac_name: str,
) -> LayerCost:
    """The :class:`LayerCost` of one :func:`summarize` result.

    ``bound_by`` is the level with the largest stall (DRAM's: its own stall or the cycles
    beyond ``compute_cycles``, on/off-loading included) when the layer is slower than its
    mapping's stall-free cycles, else ``"compute"``.

    >>> s = {"latency": 1200.0, "compute_cycles": 1000.0, "ideal_temporal_cycles": 1000.0,
    ...      "stalls": {"glb": 0.0, "DRAM": 150.0}, "dram": "DRAM", "energy_pJ": 5.0,
    ...      "mac_energy_pJ": 2.0,
    ...      "levels": {"DRAM": {"reads": 10.0, "writes": 0.0, "fills": 0.0,
    ...                          "energy_pJ": 3.0}}}
    >>> c = layer_cost(s, macs=256000, pes=256, clock_hz=1e9, latency_scale=1.0,
    ...                mac_name="mac")
    >>> c.cycles, c.compute_cycles, c.bound_by, round(c.utilization, 3), sorted(c.levels)
    (1200, 1000, 'DRAM', 0.833, ['DRAM', 'mac'])
    """
    cycles = max(1, math.ceil(summary["latency"]))  # ZigZag's latencies can be fractional
    levels = {
        name: LevelAccesses(
            reads=round(lv["reads"]),
            writes=round(lv["writes"]),
            fills=round(lv["fills"]),
            energy_pJ=float(lv["energy_pJ"]),
        )
        for name, lv in summary["levels"].items()
    }
    levels[mac_name] = LevelAccesses(energy_pJ=float(summary["mac_energy_pJ"]))
    # DRAM is charged its own stall or everything beyond the on-chip cycles (on/off-loading).
    stalls = dict(summary["stalls"])
    dram = summary["dram"]
    stalls[dram] = max(stalls.get(dram, 0.0), cycles - summary["compute_cycles"])
    bound_by = "compute"
    if cycles > summary["ideal_temporal_cycles"] and any(v > 0 for v in stalls.values()):
        bound_by = max(stalls, key=lambda k: stalls[k])
    return LayerCost(
        cycles=cycles,
        seconds=cycles / clock_hz * latency_scale,
        energy_pJ=float(summary["energy_pJ"]),
        utilization=min(1.0, macs / (cycles * pes)),
        macs=macs,
        levels=levels,
        bound_by=bound_by,
        compute_cycles=min(cycles, max(1, math.ceil(summary["compute_cycles"]))),
    )
