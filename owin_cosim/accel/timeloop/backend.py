"""The Timeloop cost backend: the real ``timeloop-mapper`` / ``timeloop-model``.

Timeloop is not on any package registry (the PyPI package called ``timeloop`` is an
unrelated task scheduler). When the programs are on ``PATH`` (e.g. in the official
Timeloop/Accelergy container images), this backend writes each
layer's problem next to the architecture, runs the mapper with a timeout on one thread,
and reads
``timeloop-mapper.stats.txt``. When Timeloop is asked for and missing, it says so and
how to get it: never a silent fallback to the analytic model.

Reproducibility: ``timeloop-mapper`` has no seed setting (a ``random-seed`` key was
proposed upstream, NVlabs/timeloop#167). It runs here on one thread, terminated by
counts (``victory-condition``; ``timeout`` counts invalid mappings in a row), never by
wall time, so its answer depends only on the inputs and on Timeloop's own internal
seeding (not checked here: no Timeloop on these machines). The cost cache then pins
the answer: the mapper settings and the binary are part of its key.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from owin_cosim.accel.cost_model import LayerCost, LevelAccesses
from owin_cosim.accel.timeloop.formats import TimeloopStats, layer_to_problem, parse_stats
from owin_cosim.errors import BackendUnavailableError, TimeloopError
from owin_cosim.workload.graph import Layer

__all__ = [
    "TimeloopCostModel",
    "TimeloopError",
    "cost_from_stats",
    "require_timeloop",
    "timeloop_available",
    "timeloop_version",
]

HINT = (
    "Timeloop is not installed here (it is on no package registry; the PyPI package "
    "'timeloop' is unrelated). Run inside the official Timeloop/Accelergy container "
    "image (timeloopaccelergy/timeloop-accelergy-pytorch), or build timeloop and "
    "accelergy from source so that timeloop-mapper and timeloop-model are on PATH; or "
    "use cost_backend: analytic or loopnest"
)


def timeloop_available() -> bool:
    """Whether ``timeloop-mapper`` and ``timeloop-model`` are on PATH."""
    return all(shutil.which(p) for p in ("timeloop-mapper", "timeloop-model"))


def timeloop_version() -> str:
    """Names the installed ``timeloop-mapper`` for cache keys: its path, size and mtime.

    Timeloop has no ``--version`` flag; a rebuilt binary gets a new key.
    """
    require_timeloop()
    path = Path(str(shutil.which("timeloop-mapper"))).resolve()
    st = path.stat()
    ident = f"{path}:{st.st_size}:{st.st_mtime_ns}".encode()
    return hashlib.sha256(ident).hexdigest()[:16]


def require_timeloop() -> None:
    """Raise :class:`BackendUnavailableError` (with how to get Timeloop) if it is missing."""
    if not timeloop_available():
        raise BackendUnavailableError(HINT)


def cost_from_stats(
    stats: TimeloopStats, macs: int, clock_hz: float, latency_scale: float = 1.0
) -> LayerCost:
    """A :class:`LayerCost` from a parsed stats file (per-level accesses summed over
    dataspaces and instances)."""
    levels: dict[str, LevelAccesses] = {}
    energy = stats.energy_by_level_pJ()
    for lvl in stats.levels[1:]:
        reads = writes = fills = 0.0
        for counters in lvl.dataspaces.values():
            inst = counters.get("Utilized instances (max)", 1.0)
            reads += counters.get("Scalar reads (per-instance)", 0.0) * inst
            writes += counters.get("Scalar updates (per-instance)", 0.0) * inst
            fills += counters.get("Scalar fills (per-instance)", 0.0) * inst
        levels[lvl.name] = LevelAccesses(
            int(reads), int(writes), int(fills), energy.get(lvl.name, 0.0)
        )
    return LayerCost(
        cycles=stats.cycles,
        seconds=stats.cycles / clock_hz * latency_scale,
        energy_pJ=stats.energy_pJ,
        utilization=stats.utilization,
        macs=macs,
        levels=levels,
        bound_by="timeloop",
    )


class TimeloopCostModel:
    """Per-layer costs from ``timeloop-mapper`` on a Timeloop architecture.

    Parameters
    ----------
    arch_files : sequence of path
        The architecture and its component files, as ``timeloop-mapper`` takes them.
    mapper : dict, optional
        The ``mapper`` section; by default a random-pruned search on one thread.
    clock_hz : float
        To turn cycles into seconds.
    timeout_s : float
        Wall-time limit of one mapper run.
    """

    name = "timeloop"

    def __init__(
        self,
        arch_files: Sequence[str | Path],
        *,
        mapper: dict[str, Any] | None = None,
        clock_hz: float = 1e9,
        timeout_s: float = 600.0,
        latency_scale: float = 1.0,
    ) -> None:
        require_timeloop()
        self.arch_files = [Path(p) for p in arch_files]
        self.mapper = mapper or {
            "optimization-metrics": ["delay", "energy"],
            "algorithm": "random-pruned",
            "num-threads": 1,
            "victory-condition": 500,
            "timeout": 5000,
        }
        self.clock_hz = clock_hz
        self.timeout_s = timeout_s
        self.latency_scale = latency_scale

    def layer_cost(self, layer: Layer) -> LayerCost:
        with tempfile.TemporaryDirectory(prefix="owin-timeloop-") as tmp:
            work = Path(tmp)
            (work / "prob.yaml").write_text(yaml.safe_dump(layer_to_problem(layer)))
            (work / "mapper.yaml").write_text(yaml.safe_dump({"mapper": self.mapper}))
            cmd = ["timeloop-mapper", *map(str, self.arch_files), "prob.yaml", "mapper.yaml"]
            try:
                proc = subprocess.run(
                    cmd,
                    cwd=work,
                    capture_output=True,
                    text=True,
                    timeout=self.timeout_s,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise TimeloopError(
                    f"timeloop-mapper on layer {layer.name!r} exceeded {self.timeout_s:g} s"
                ) from None
            stats = work / "timeloop-mapper.stats.txt"
            if proc.returncode != 0 or not stats.is_file():
                tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
                raise TimeloopError(
                    f"timeloop-mapper failed on layer {layer.name!r} "
                    f"(exit {proc.returncode}):\n{tail}"
                )
            return cost_from_stats(
                parse_stats(stats), layer.macs, self.clock_hz, self.latency_scale
            )
