"""The cost-backend registry: build the cost model a scenario or an estimator query asks for.

One place knows the cost backends, their options and what goes into their cache keys, so
that a scenario costed in process and the same scenario costed by a remote estimator
service get the same numbers and share the persistent cache.

========== ====================================================================
backend    model
========== ====================================================================
analytic   :class:`~owin_cosim.accel.analytic.AnalyticCostModel` (closed-form tiling)
loopnest   :class:`~owin_cosim.accel.loopnest.backend.LoopNestCostModel` (nest analysis +
           mapping search); options ``mapper_evaluations``, ``mapper_seed``
           (scenario keys ``accelerator.mapper.*``)
timeloop   :class:`~owin_cosim.accel.timeloop.backend.TimeloopCostModel`
           (``timeloop-mapper``); needs the Timeloop architecture files
           (``accelerator.timeloop_arch``)
zigzag     :class:`~owin_cosim.accel.zigzag.backend.ZigZagCostModel` (ZigZag 3.9.1's
           mapping search, the extra ``pip install ".[zigzag]"``); options
           ``zigzag_spatial``, ``zigzag_lpf_limit`` (scenario keys
           ``accelerator.zigzag.*``; ``timeout_s`` is not a cost option)
========== ====================================================================

Every backend takes the option ``latency_scale``. A plugin registers a
:class:`CostBackend` in the entry-point group ``owin_cosim.cost_backends``; its own
options are the mapping under ``accelerator.<name>`` (see ``docs/plugins.md``).

>>> COST_BACKENDS.names()[:3]
['analytic', 'loopnest', 'timeloop']
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from owin_cosim import __version__
from owin_cosim.accel.cache import CachedCostModel, CostCache
from owin_cosim.accel.code_version import code_version
from owin_cosim.accel.cost_model import CostModel
from owin_cosim.accel.spec import ChipSpec
from owin_cosim.errors import ConfigError
from owin_cosim.plugins import Registry

__all__ = [
    "BACKENDS",
    "COST_BACKENDS",
    "CostBackend",
    "backend_options",
    "make_cost_model",
]


@runtime_checkable
class CostBackend(Protocol):
    """What a cost backend registers.

    ``options`` reads the backend's settings from a scenario's ``accelerator`` section
    (a plain mapping; built-in sub-sections arrive validated, a plugin's own section
    ``accelerator.<name>`` as the raw mapping) and returns the JSON-ready options that
    change what a cost means (they go into cache keys and estimator queries).
    ``files`` names the backend's own input files, if any. ``build`` makes the model and
    returns the version string that keys its cache entries.
    """

    name: str

    def options(self, accelerator: Mapping[str, Any], file: Path) -> dict[str, Any]:
        """The options of this backend for one scenario (``ConfigError`` if bad)."""
        ...

    def files(self, accelerator: Mapping[str, Any], file: Path) -> list[Path]:
        """The backend's own input files, resolved and checked (``ConfigError``)."""
        ...

    def require(self) -> None:
        """Raise :class:`~owin_cosim.errors.BackendUnavailableError` if it cannot run here."""
        ...

    def build(
        self, chip: ChipSpec, options: Mapping[str, Any], files: Sequence[Path]
    ) -> tuple[CostModel, str, bytes]:
        """The model, its cache version string, and extra bytes naming the core (files)."""
        ...


def _resolve(base: Path, name: str) -> Path:
    p = Path(name).expanduser()
    return p if p.is_absolute() else base / p


class _Builtin:
    """Shared parts of the built-in backends: the ``latency_scale`` option."""

    name = ""

    def options(self, accelerator: Mapping[str, Any], file: Path) -> dict[str, Any]:
        return {"latency_scale": float(accelerator.get("latency_scale", 1.0))}

    def files(self, accelerator: Mapping[str, Any], file: Path) -> list[Path]:
        return []

    def require(self) -> None:
        return None


class AnalyticBackend(_Builtin):
    """``analytic``: the closed-form tiling model."""

    name = "analytic"

    def build(
        self, chip: ChipSpec, options: Mapping[str, Any], files: Sequence[Path]
    ) -> tuple[CostModel, str, bytes]:
        from owin_cosim.accel.analytic import AnalyticCostModel

        scale = float(options.get("latency_scale", 1.0))
        model = AnalyticCostModel(chip, latency_scale=scale)
        version = f"owin-cosim {__version__} analytic {code_version(AnalyticCostModel.__module__)}"
        return model, version, b""


class LoopNestBackend(_Builtin):
    """``loopnest``: nest analysis plus a seeded mapping search per layer shape."""

    name = "loopnest"

    def options(self, accelerator: Mapping[str, Any], file: Path) -> dict[str, Any]:
        from owin_cosim.accel.loopnest.backend import DEFAULT_EVALUATIONS

        mapper = accelerator.get("mapper")
        evaluations = getattr(mapper, "evaluations", DEFAULT_EVALUATIONS)
        seed = getattr(mapper, "seed", 0)
        return {
            **super().options(accelerator, file),
            "mapper_evaluations": int(evaluations),
            "mapper_seed": int(seed),
        }

    def build(
        self, chip: ChipSpec, options: Mapping[str, Any], files: Sequence[Path]
    ) -> tuple[CostModel, str, bytes]:
        from owin_cosim.accel.loopnest.backend import DEFAULT_EVALUATIONS, LoopNestCostModel

        model = LoopNestCostModel(
            chip,
            latency_scale=float(options.get("latency_scale", 1.0)),
            max_evaluations=int(options.get("mapper_evaluations", DEFAULT_EVALUATIONS)),
            seed=int(options.get("mapper_seed", 0)),
        )
        version = f"owin-cosim {__version__} loopnest {code_version(LoopNestCostModel.__module__)}"
        return model, version, b""


class TimeloopBackend(_Builtin):
    """``timeloop``: the real ``timeloop-mapper`` on Timeloop architecture files."""

    name = "timeloop"

    def files(self, accelerator: Mapping[str, Any], file: Path) -> list[Path]:
        names = list(accelerator.get("timeloop_arch") or [])
        if not names:
            raise ConfigError(
                file,
                "accelerator.timeloop_arch",
                "cost_backend 'timeloop' needs "
                "the Timeloop architecture files (arch.yaml and its components)",
            )
        paths = [_resolve(file.parent, f) for f in names]
        for i, path in enumerate(paths):
            if not path.is_file():
                raise ConfigError(file, f"accelerator.timeloop_arch[{i}]", f"no such file: {path}")
        base = [p.name for p in paths]
        if len(set(base)) != len(base):
            raise ConfigError(
                file, "accelerator.timeloop_arch", "expected files with distinct names (basenames)"
            )
        return paths

    def require(self) -> None:
        from owin_cosim.accel.timeloop.backend import require_timeloop

        require_timeloop()

    def build(
        self, chip: ChipSpec, options: Mapping[str, Any], files: Sequence[Path]
    ) -> tuple[CostModel, str, bytes]:
        from owin_cosim.accel.timeloop.backend import TimeloopCostModel, timeloop_version

        scale = float(options.get("latency_scale", 1.0))
        model = TimeloopCostModel(list(files), clock_hz=chip.clock_hz, latency_scale=scale)
        # The binary and the mapper settings both decide the answer.
        settings = hashlib.sha256(json.dumps(model.mapper, sort_keys=True).encode()).hexdigest()
        code = code_version(TimeloopCostModel.__module__)  # our problem writer, stats parser
        version = f"timeloop {timeloop_version()} mapper {settings[:16]} code {code}"
        return model, version, b"".join(p.read_bytes() for p in files)


class ZigZagBackend(_Builtin):
    """``zigzag``: ZigZag's own mapping search and cost model, in a child process per layer."""

    name = "zigzag"

    def options(self, accelerator: Mapping[str, Any], file: Path) -> dict[str, Any]:
        from owin_cosim.accel.zigzag.backend import DEFAULT_LPF_LIMIT, DEFAULT_TIMEOUT_S

        section = accelerator.get("zigzag")
        return {
            **super().options(accelerator, file),
            "zigzag_spatial": str(getattr(section, "spatial", "template")),
            "zigzag_lpf_limit": int(getattr(section, "lpf_limit", DEFAULT_LPF_LIMIT)),
            # Bounds the wall time only; make_cost_model keeps it out of cache keys.
            "zigzag_timeout_s": float(getattr(section, "timeout_s", DEFAULT_TIMEOUT_S)),
        }

    def require(self) -> None:
        from owin_cosim.accel.zigzag.backend import require_zigzag

        require_zigzag()

    def build(
        self, chip: ChipSpec, options: Mapping[str, Any], files: Sequence[Path]
    ) -> tuple[CostModel, str, bytes]:
        from owin_cosim.accel.zigzag.backend import (
            DEFAULT_LPF_LIMIT,
            DEFAULT_TIMEOUT_S,
            ZIGZAG_VERSION,
            ZigZagCostModel,
        )

        model = ZigZagCostModel(
            chip,
            latency_scale=float(options.get("latency_scale", 1.0)),
            spatial=str(options.get("zigzag_spatial", "template")),
            lpf_limit=int(options.get("zigzag_lpf_limit", DEFAULT_LPF_LIMIT)),
            timeout_s=float(options.get("zigzag_timeout_s", DEFAULT_TIMEOUT_S)),
        )
        code = code_version(ZigZagCostModel.__module__)
        version = f"owin-cosim {__version__} zigzag-dse {ZIGZAG_VERSION} {code}"
        return model, version, b""


def _cost_backend(obj: Any) -> CostBackend:
    if isinstance(obj, type):
        obj = obj()
    if not isinstance(obj, CostBackend):
        raise TypeError(
            "expected a cost backend with 'name', 'options', 'files', 'require' and "
            f"'build', got {obj!r}"
        )
    return obj


#: Cost backend name -> backend.
COST_BACKENDS: Registry[CostBackend] = Registry(
    "cost backend",
    "owin_cosim.cost_backends",
    {
        "analytic": "owin_cosim.accel.registry:AnalyticBackend",
        "loopnest": "owin_cosim.accel.registry:LoopNestBackend",
        "timeloop": "owin_cosim.accel.registry:TimeloopBackend",
        "zigzag": "owin_cosim.accel.registry:ZigZagBackend",
    },
    _cost_backend,
)

#: Options that bound a backend's wall time but never change a cost: not in cache keys.
_NOT_COST_OPTIONS = frozenset({"zigzag_timeout_s"})

#: The built-in cost backends, in the order the documentation lists them.
BACKENDS: tuple[str, ...] = ("analytic", "loopnest", "timeloop", "zigzag")


def backend_options(
    backend: str,
    latency_scale: float = 1.0,
    mapper_evaluations: int | None = None,
    mapper_seed: int = 0,
) -> dict[str, Any]:
    """The options of a built-in ``backend`` from plain values (for the estimator and tests).

    >>> backend_options("analytic", 2.0)
    {'latency_scale': 2.0}
    >>> backend_options("loopnest")
    {'latency_scale': 1.0, 'mapper_evaluations': 300, 'mapper_seed': 0}
    """
    from types import SimpleNamespace

    mapper = SimpleNamespace(seed=mapper_seed)
    if mapper_evaluations is not None:
        mapper.evaluations = mapper_evaluations
    section = {"latency_scale": latency_scale, "mapper": mapper}
    return COST_BACKENDS.load(backend).options(section, Path("."))


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
        Names the core in cache keys (a hash of the spec); the backend's own files are
        hashed into it too.
    backend : str
        A name registered in :data:`COST_BACKENDS`.
    options : dict
        From the backend's ``options`` (or :func:`backend_options`).
    cache : CostCache, optional
        The persistent cache; ``None`` costs every layer.
    timeloop_arch : sequence of Path
        The backend's own input files (``timeloop``: architecture and components).

    Raises
    ------
    ConfigError
        For an unknown backend.
    BackendUnavailableError
        When the backend cannot run here (``timeloop`` without Timeloop installed).
    """
    impl = COST_BACKENDS.load(backend, None, "accelerator.cost_backend")
    impl.require()
    inner, version, extra = impl.build(chip, options, list(timeloop_arch))
    if extra:
        core_digest = hashlib.sha256(core_digest.encode() + extra).hexdigest()
    if cache is None:
        return inner
    keyed = {k: v for k, v in options.items() if k not in _NOT_COST_OPTIONS}
    return CachedCostModel(inner, cache, core_digest, version, keyed)
