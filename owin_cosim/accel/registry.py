"""Build the cost model a scenario or an estimator query asks for.

One place knows the cost backends, their options and what goes into their cache keys, so
that a scenario costed in process and the same scenario costed by a remote estimator
service get the same numbers and share the persistent cache.

========== ====================================================================
backend    model
========== ====================================================================
analytic   :class:`~owin_cosim.accel.analytic.AnalyticCostModel` (closed-form tiling)
loopnest   :class:`~owin_cosim.accel.loopnest.backend.LoopNestCostModel` (nest analysis +
           mapping search); options ``mapper_evaluations``, ``mapper_seed``
timeloop   :class:`~owin_cosim.accel.timeloop.backend.TimeloopCostModel` (``timeloop-mapper``);
           needs the Timeloop architecture files
========== ====================================================================

Every backend takes the option ``latency_scale``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from owin_cosim import __version__
from owin_cosim.accel.analytic import AnalyticCostModel
from owin_cosim.accel.cache import CachedCostModel, CostCache
from owin_cosim.accel.cost_model import CostModel
from owin_cosim.accel.loopnest.backend import DEFAULT_EVALUATIONS, LoopNestCostModel
from owin_cosim.accel.spec import ChipSpec

__all__ = ["BACKENDS", "backend_options", "make_cost_model"]

#: The cost backends, in the order the documentation lists them.
BACKENDS: tuple[str, ...] = ("analytic", "loopnest", "timeloop")


def backend_options(
    backend: str,
    latency_scale: float = 1.0,
    mapper_evaluations: int = DEFAULT_EVALUATIONS,
    mapper_seed: int = 0,
) -> dict[str, Any]:
    """The options that change what a cost of ``backend`` means (and so its cache key).

    >>> backend_options("analytic", 2.0)
    {'latency_scale': 2.0}
    >>> backend_options("loopnest")
    {'latency_scale': 1.0, 'mapper_evaluations': 300, 'mapper_seed': 0}
    """
    options: dict[str, Any] = {"latency_scale": float(latency_scale)}
    if backend == "loopnest":
        options["mapper_evaluations"] = int(mapper_evaluations)
        options["mapper_seed"] = int(mapper_seed)
    return options


def make_cost_model(
    chip: ChipSpec,
    core_digest: str,
    backend: str,
    options: Mapping[str, Any],
    *,
    cache: CostCache | None = None,
    timeloop_arch: Sequence[Path] = (),
) -> CostModel:
    """The cost model of ``backend`` for ``chip``, behind ``cache`` when one is given.

    Parameters
    ----------
    chip : ChipSpec
        The accelerator.
    core_digest : str
        Names the core in cache keys (a hash of the spec, or of the Timeloop files).
    backend : str
        One of :data:`BACKENDS`.
    options : dict
        From :func:`backend_options`.
    cache : CostCache, optional
        The persistent cache; ``None`` costs every layer.
    timeloop_arch : sequence of Path
        ``timeloop`` only: the architecture and component files.

    Raises
    ------
    ValueError
        For an unknown backend.
    BackendUnavailableError
        ``timeloop`` without Timeloop installed.
    """
    scale = float(options.get("latency_scale", 1.0))
    inner: CostModel
    if backend == "analytic":
        inner = AnalyticCostModel(chip, latency_scale=scale)
        version = f"owin-cosim {__version__} analytic"
    elif backend == "loopnest":
        inner = LoopNestCostModel(
            chip,
            latency_scale=scale,
            max_evaluations=int(options.get("mapper_evaluations", DEFAULT_EVALUATIONS)),
            seed=int(options.get("mapper_seed", 0)),
        )
        version = f"owin-cosim {__version__} loopnest"
    elif backend == "timeloop":
        from owin_cosim.accel.timeloop.backend import TimeloopCostModel, timeloop_version

        tl = TimeloopCostModel(timeloop_arch, clock_hz=chip.clock_hz, latency_scale=scale)
        inner = tl
        # The binary and the mapper settings both decide the answer.
        settings = hashlib.sha256(json.dumps(tl.mapper, sort_keys=True).encode()).hexdigest()
        version = f"timeloop {timeloop_version()} mapper {settings[:16]}"
        core_digest = hashlib.sha256(
            core_digest.encode() + b"".join(p.read_bytes() for p in timeloop_arch)
        ).hexdigest()
    else:
        raise ValueError(f"unknown cost backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if cache is None:
        return inner
    return CachedCostModel(inner, cache, core_digest, version, dict(options))
