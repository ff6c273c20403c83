"""The ``zigzag`` cost backend: ZigZag's mapping search and cost model, per layer shape.

:class:`ZigZagCostModel` translates the chip's core into ZigZag's hardware description
(:mod:`.translate`), each layer into a one-layer workload, runs ZigZag 3.9.1's LOMA
temporal-mapping search in an isolated child process (:mod:`.runner`) and reads the best
mapping's latency, energy and per-level accesses (:mod:`.parse`). Costs are memoised per
shape here and kept in the persistent cost cache by the scenario assembly, like the
other backends.

ZigZag is the optional extra ``zigzag`` (``pip install ".[zigzag]"``, which pins
``zigzag-dse`` and ``six``, a module its metadata forgets); :func:`require_zigzag` says
so when it is missing. There is never a fallback to another backend.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
from typing import Any

from owin_cosim.accel.cost_model import LayerCost
from owin_cosim.accel.spec import ChipSpec
from owin_cosim.accel.zigzag.parse import layer_cost
from owin_cosim.accel.zigzag.runner import run_zigzag
from owin_cosim.accel.zigzag.translate import (
    hardware_doc,
    mapping_doc,
    spatial_unrolling,
    workload_doc,
)
from owin_cosim.errors import BackendUnavailableError
from owin_cosim.workload.graph import Layer

__all__ = [
    "DEFAULT_LPF_LIMIT",
    "DEFAULT_TIMEOUT_S",
    "HINT",
    "SPATIAL_CANDIDATES",
    "ZIGZAG_VERSION",
    "ZigZagCostModel",
    "require_zigzag",
]

#: The ZigZag release whose input formats and API this backend speaks.
ZIGZAG_VERSION = "3.9.1"
#: How to get it.
HINT = (
    f'cost_backend zigzag needs ZigZag {ZIGZAG_VERSION}: pip install ".[zigzag]" '
    f"(zigzag-dse=={ZIGZAG_VERSION} and six)"
)
#: LOMA's loop prime factor limit (ZigZag's default): larger searches more orderings.
DEFAULT_LPF_LIMIT = 6
#: Spatial mappings ZigZag's generator tries with ``spatial: zigzag`` (its default).
SPATIAL_CANDIDATES = 3
#: Longest wall time of one layer's search.
DEFAULT_TIMEOUT_S = 600.0
_SPATIAL = ("template", "zigzag")


def require_zigzag() -> None:
    """Raise :class:`BackendUnavailableError` naming the extra if ZigZag cannot be used."""
    for module in ("zigzag", "six"):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise BackendUnavailableError(f"{HINT}; no module named {module!r} here")
    try:
        version = importlib.metadata.version("zigzag-dse")
    except importlib.metadata.PackageNotFoundError:
        raise BackendUnavailableError(f"{HINT}; zigzag-dse is not installed") from None
    if version != ZIGZAG_VERSION:
        raise BackendUnavailableError(f"{HINT}; found zigzag-dse {version}")


def _describe(layer: Layer) -> str:
    dims = " ".join(f"{k}={v}" for k, v in layer.problem_instance().items() if v != 1)
    return f"{layer.name or '(unnamed)'!r} ({layer.op.value} {dims})"


class ZigZagCostModel:
    """Per-layer cost from ZigZag's best mapping (by latency) on one core.

    Parameters
    ----------
    chip : ChipSpec
        The accelerator; every core is a copy of ``chip.core``.
    latency_scale : float, default 1.0
        Multiplies ``seconds`` (not ``cycles``).
    spatial : {"template", "zigzag"}, default "template"
        The spatial unrolling: the loop-nest model's best template
        (:func:`~.translate.spatial_unrolling`) or ZigZag's own generator
        (:data:`SPATIAL_CANDIDATES` candidates, each searched).
    lpf_limit : int, default :data:`DEFAULT_LPF_LIMIT`
        LOMA's loop prime factor limit.
    timeout_s : float, default :data:`DEFAULT_TIMEOUT_S`
        Longest wall time of one layer's search (it does not change a cost).
    """

    name = "zigzag"

    def __init__(
        self,
        chip: ChipSpec,
        *,
        latency_scale: float = 1.0,
        spatial: str = "template",
        lpf_limit: int = DEFAULT_LPF_LIMIT,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if not (latency_scale > 0 and math.isfinite(latency_scale)):
            raise ValueError(f"latency_scale must be a finite number > 0, got {latency_scale!r}")
        if spatial not in _SPATIAL:
            raise ValueError(f"spatial must be one of {_SPATIAL}, got {spatial!r}")
        if lpf_limit < 1:
            raise ValueError(f"lpf_limit must be >= 1, got {lpf_limit!r}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
        self.chip = chip
        self.latency_scale = float(latency_scale)
        self.spatial = spatial
        self.lpf_limit = int(lpf_limit)
        self.timeout_s = float(timeout_s)
        self.hardware = hardware_doc(chip)  # ConfigError now if the core cannot be said
        self._memo: dict[tuple[object, ...], dict[str, Any]] = {}

    def job(self, layer: Layer) -> dict[str, Any]:
        """ZigZag's inputs for ``layer``: the three documents and the search settings."""
        unrolling = spatial_unrolling(self.chip, layer) if self.spatial == "template" else None
        return {
            "hardware": self.hardware,
            "mapping": mapping_doc(unrolling),
            "workload": workload_doc(layer, self.chip.word_bits),
            "settings": {
                "lpf_limit": self.lpf_limit,
                "spatial_candidates": 1 if unrolling is not None else SPATIAL_CANDIDATES,
                "word_bits": self.chip.word_bits,
                "dram": self.chip.core.dram.name,
            },
        }

    def summary(self, layer: Layer) -> dict[str, Any]:
        """ZigZag's numbers for ``layer`` (:func:`~.parse.summarize`), memoised per shape.

        Raises
        ------
        BackendError
            When ZigZag fails or runs out of time; the message names the layer.
        """
        key = (layer.op, layer.operands, tuple(sorted(layer.problem_instance().items())))
        hit = self._memo.get(key)
        if hit is None:
            hit = run_zigzag(self.job(layer), timeout_s=self.timeout_s, what=_describe(layer))
            self._memo[key] = hit
        return hit

    def layer_cost(self, layer: Layer) -> LayerCost:
        """Latency and energy of ``layer`` on one core (see :mod:`.parse` for the fields)."""
        core = self.chip.core
        return layer_cost(
            self.summary(layer),
            macs=layer.macs,
            pes=core.num_pes,
            clock_hz=self.chip.clock_hz,
            latency_scale=self.latency_scale,
            mac_name=core.mac_name,
        )
