"""The accelerator cost-model interface: per-layer latency and energy on one core.

Backends (the analytic model now, Timeloop later) implement :class:`CostModel`. Results
use Timeloop's names: ``cycles``, ``energy_pJ``, ``utilization`` and per-level accesses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from owin_cosim.workload.graph import Layer

__all__ = ["CostModel", "LayerCost", "LevelAccesses"]


@dataclass(frozen=True, slots=True)
class LevelAccesses:
    """Word accesses at one storage level, as Timeloop counts them."""

    reads: int = 0
    writes: int = 0
    fills: int = 0
    energy_pJ: float = 0.0


@dataclass(frozen=True, slots=True)
class LayerCost:
    """Latency and energy of one layer on one core.

    Attributes
    ----------
    cycles : int
        Core clock cycles from first to last operation.
    seconds : float
        ``cycles / clock_hz`` (times the scenario's latency scale, if any).
    energy_pJ : float
        Total energy, compute plus every storage level.
    utilization : float
        Fraction of MAC units doing useful work over the layer, in ``[0, 1]``.
    macs : int
        Useful multiply-accumulates.
    levels : dict
        Storage level name -> :class:`LevelAccesses`.
    bound_by : str
        What limits the latency: ``"compute"`` or the name of a storage level.
    compute_cycles : int or None
        Cycles of the same mapping with unlimited DRAM bandwidth (compute and on-chip
        levels only). The coordinator shares the chip's DRAM between the layers running
        at once and needs the two apart; None when the backend cannot tell (its
        ``cycles`` are then taken as the compute side).
    """

    cycles: int
    seconds: float
    energy_pJ: float
    utilization: float
    macs: int
    levels: dict[str, LevelAccesses] = field(default_factory=dict)
    bound_by: str = "compute"
    compute_cycles: int | None = None


@runtime_checkable
class CostModel(Protocol):
    """Something that prices one layer on one core of a chip."""

    #: Backend name written into results and cache keys, e.g. ``"analytic"``.
    name: str

    def layer_cost(self, layer: Layer) -> LayerCost:
        """Latency and energy of ``layer`` on one core."""
        ...
