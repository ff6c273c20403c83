"""``roofline``: a per-layer roofline cost backend.

A layer on one core takes the longer of its compute time and its DRAM time::

    compute_s = MACs / (PEs x clock x efficiency)
    memory_s  = DRAM bytes / DRAM bandwidth of the core
    seconds   = max(compute_s, memory_s)   (rounded up to whole cycles, x latency_scale)

where the DRAM bytes are every input, weight and output word crossing once
(``(input + weight + output elements) x word bytes``: perfect on-chip reuse) and the
core's DRAM bandwidth is its equal share of the chip's. Energy is
``MACs x mac_energy_pJ + DRAM bytes x dram_energy_pJ_per_byte``. No tiling, no mapping:
a fast, optimistic model for sweeps.

Registered in the entry-point group ``owin_cosim.cost_backends``; its options are the
mapping ``accelerator.roofline`` of a scenario (:class:`RooflineOptions`), e.g.::

    accelerator:
      spec: accel_specs/mc4.yaml
      cost_backend: roofline
      roofline: {efficiency: 0.8}

Examples
--------
>>> from pathlib import Path
>>> import owin_cosim
>>> from owin_cosim.accel.spec import load_chip_spec
>>> from owin_cosim.workload.graph import conv2d
>>> chip = load_chip_spec(Path(owin_cosim.__file__).parents[1] / "accel_specs" / "mc4.yaml")
>>> model = RooflineCostModel(chip, efficiency=1.0)
>>> cost = model.layer_cost(conv2d("c", C=64, M=64, P=56, Q=56, R=3))
>>> cost.bound_by, cost.cycles == -(-cost.macs // chip.core.num_pes)
('compute', True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from owin_cosim.accel.chip import ChipSpec
from owin_cosim.accel.cost_model import CostModel, LayerCost, LevelAccesses
from owin_cosim.validation import validation_to_config_error
from owin_cosim.workload.graph import Layer
from owin_cosim_example_plugin import __version__

__all__ = ["RooflineBackend", "RooflineCostModel", "RooflineOptions"]


class RooflineOptions(BaseModel):
    """``accelerator.roofline``: every key with its type and default; others are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Fraction of the peak MAC rate (one MAC per PE per cycle) a layer sustains.
    efficiency: float = Field(0.8, gt=0, le=1)
    #: Energy of one MAC (pJ); ``None``: the spec's MAC energy.
    mac_energy_pJ: float | None = Field(None, ge=0)
    #: Energy of one DRAM byte (pJ); ``None``: the spec's DRAM energy per byte.
    dram_energy_pJ_per_byte: float | None = Field(None, ge=0)


class RooflineCostModel:
    """The roofline model of one core of ``chip`` (see the module docstring).

    Parameters
    ----------
    chip : ChipSpec
        The accelerator; every core is alike.
    efficiency : float
        Fraction of the peak MAC rate sustained, in ``(0, 1]``.
    mac_energy_pJ, dram_energy_pJ_per_byte : float, optional
        Energy constants; by default the spec's.
    latency_scale : float
        Multiplies every latency (the scenario's ``accelerator.latency_scale``).
    """

    name = "roofline"

    def __init__(
        self,
        chip: ChipSpec,
        efficiency: float = 0.8,
        mac_energy_pJ: float | None = None,
        dram_energy_pJ_per_byte: float | None = None,
        latency_scale: float = 1.0,
    ) -> None:
        if not 0.0 < efficiency <= 1.0:
            raise ValueError(f"efficiency must be in (0, 1], got {efficiency}")
        self.chip = chip
        self.efficiency = efficiency
        self.mac_energy_pJ = chip.core.mac_energy_pJ if mac_energy_pJ is None else mac_energy_pJ
        self.dram_energy_pJ_per_byte = (
            chip.dram_energy_pJ_per_byte
            if dram_energy_pJ_per_byte is None
            else dram_energy_pJ_per_byte
        )
        self.latency_scale = latency_scale

    def layer_cost(self, layer: Layer) -> LayerCost:
        """Latency and energy of ``layer`` on one core.

        ``bound_by`` is ``"compute"`` or the name of the DRAM level; ``utilization`` is
        ``MACs / (cycles x PEs)`` (at most ``efficiency``).
        """
        chip = self.chip
        pes = chip.core.num_pes
        read_words = layer.input_elems + layer.weight_elems
        write_words = layer.output_elems
        dram_bytes = (read_words + write_words) * chip.word_bytes
        compute_s = layer.macs / (pes * chip.clock_hz * self.efficiency)
        memory_s = dram_bytes / chip.dram_bandwidth_Bps
        cycles = max(1, math.ceil(max(compute_s, memory_s) * chip.clock_hz))
        dram = chip.core.dram
        dram_pJ = dram_bytes * self.dram_energy_pJ_per_byte
        return LayerCost(
            cycles=cycles,
            seconds=cycles / chip.clock_hz * self.latency_scale,
            energy_pJ=layer.macs * self.mac_energy_pJ + dram_pJ,
            utilization=layer.macs / (cycles * pes),
            macs=layer.macs,
            levels={dram.name: LevelAccesses(read_words, write_words, 0, dram_pJ)},
            bound_by="compute" if compute_s >= memory_s else dram.name,
        )


class RooflineBackend:
    """Registry entry ``roofline``: options under ``accelerator.roofline``.

    Implements :class:`owin_cosim.accel.registry.CostBackend`.
    """

    name = "roofline"

    def options(self, accelerator: Mapping[str, Any], file: Path) -> dict[str, Any]:
        """Validate ``accelerator.roofline``; return the options that change a cost.

        Raises
        ------
        ConfigError
            Naming ``accelerator.roofline.<key>`` for an unknown key or a bad value.
        """
        try:
            opts = RooflineOptions.model_validate(accelerator.get(self.name) or {})
        except ValidationError as exc:
            raise validation_to_config_error(
                exc, file, RooflineOptions, f"accelerator.{self.name}"
            ) from None
        return {"latency_scale": float(accelerator.get("latency_scale", 1.0)), **opts.model_dump()}

    def files(self, accelerator: Mapping[str, Any], file: Path) -> list[Path]:
        """No input files of its own."""
        return []

    def require(self) -> None:
        """Pure Python: runs everywhere."""
        return None

    def build(
        self, chip: ChipSpec, options: Mapping[str, Any], files: Sequence[Path]
    ) -> tuple[CostModel, str, bytes]:
        """The model, the version that keys its cache entries, no extra digest bytes."""
        model = RooflineCostModel(
            chip,
            efficiency=float(options.get("efficiency", 0.8)),
            mac_energy_pJ=options.get("mac_energy_pJ"),
            dram_energy_pJ_per_byte=options.get("dram_energy_pJ_per_byte"),
            latency_scale=float(options.get("latency_scale", 1.0)),
        )
        return model, f"owin-cosim-example-plugin {__version__} roofline", b""
