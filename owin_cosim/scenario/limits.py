"""The up-front estimate of the work a scenario implies, and the limits it must keep.

A scenario whose every value is in range can still ask for more than can finish: a
16 GiB payload over a slow link, a million-layer synthetic model, a loop-nest search of
a million evaluations for each of thousands of layer shapes. :func:`check_uplink` and
:func:`check_model` estimate that work before any of it is done and refuse, with the
limit in the message, what is beyond it.

Every limit is multiplied by the environment variable ``OWIN_COSIM_MAX_WORK`` (a positive
number, default 1): ``OWIN_COSIM_MAX_WORK=10 owin-cosim run big.yaml`` allows ten times
the work. See ``docs/robustness.md``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from owin_cosim.errors import ConfigError
from owin_cosim.network.base import UplinkDevice
from owin_cosim.scenario.schema import Scenario
from owin_cosim.workload.graph import ModelGraph

__all__ = [
    "ENV_VAR",
    "MAX_LAYERS",
    "MAX_MAPPER_WORK",
    "MAX_UPLINK_CELLS",
    "MAX_UPLINK_STEPS",
    "check_model",
    "check_uplink",
    "work_factor",
]

#: The environment variable that scales every limit of this module.
ENV_VAR = "OWIN_COSIM_MAX_WORK"
#: Slot steps (slots x (devices + 1)) of the OFDM uplink's bounds and run; each costs
#: tens of microseconds, so this is about a minute.
MAX_UPLINK_STEPS = 2e6
#: Slot x resource block x device cells the OFDM uplink may compute.
MAX_UPLINK_CELLS = 1e9
#: Layers after chunking (streamable layers split per chunk).
MAX_LAYERS = 200_000
#: Loop-nest mapper evaluations over all distinct layer shapes.
MAX_MAPPER_WORK = 5e7


def work_factor() -> float:
    """The multiplier of every limit, from ``OWIN_COSIM_MAX_WORK`` (default 1).

    >>> work_factor() > 0
    True
    """
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return 1.0
    try:
        factor = float(raw)
    except ValueError:
        factor = math.nan
    if not (math.isfinite(factor) and factor > 0):
        raise ConfigError(None, ENV_VAR, f"expected a positive number, got {raw[:60]!r}")
    return factor


def _refuse(file: Path, key: str, what: str, estimate: float, limit: float) -> ConfigError:
    return ConfigError(
        file,
        key,
        f"{what}: about {estimate:.3g}, more than the limit of {limit:.3g}; reduce it, or "
        f"raise every limit with the environment variable {ENV_VAR} (a factor, now "
        f"{work_factor():g})",
    )


def check_uplink(
    s: Scenario, file: Path, devices: Sequence[UplinkDevice], payload_bytes: Sequence[int]
) -> None:
    """Refuse an OFDM uplink that would need more slots than ``max_slots``, more slot
    steps than :data:`MAX_UPLINK_STEPS` or more slot x RB x device cells than
    :data:`MAX_UPLINK_CELLS` (times the factor).

    The estimate: every device alone on the whole band at its mean rate, one after the
    other (the uplink shares the band, so the real run is of this order).
    """
    if s.network.backend != "ofdm":
        return
    from owin_cosim.network.ofdm.channel import OfdmChannel

    cfg = s.network.ofdm
    channel = OfdmChannel(cfg, devices, s.seed)
    slots = 0.0
    for k, nbytes in enumerate(payload_bytes):
        rate = channel.mean_rate_bps(k)
        if not (math.isfinite(rate) and rate > 0):
            raise ConfigError(
                file,
                f"devices[{k}]",
                f"device {devices[k].name!r} has no usable link (mean rate {rate:g} bit/s); "
                "expected it within range of the edge server",
            )
        slots += nbytes * 8.0 / (rate * cfg.slot_s)
    if slots > cfg.max_slots:
        raise ConfigError(
            file,
            "network.ofdm.max_slots",
            f"the uploads need about {slots:.3g} slots of {cfg.slot_s:g} s, more than "
            f"max_slots ({cfg.max_slots}); expected a larger max_slots, longer slots or "
            "smaller payloads",
        )
    factor = work_factor()
    steps = slots * (len(devices) + 1)
    if steps > MAX_UPLINK_STEPS * factor:
        raise _refuse(
            file, "network.ofdm", "uplink slot steps to simulate", steps, MAX_UPLINK_STEPS * factor
        )
    cells = slots * cfg.num_rbs * len(devices)
    if cells > MAX_UPLINK_CELLS * factor:
        raise _refuse(
            file, "network.ofdm", "slot x RB x device cells", cells, MAX_UPLINK_CELLS * factor
        )


def check_model(s: Scenario, file: Path, model: ModelGraph, chunks: dict[str, int]) -> None:
    """Refuse a model with more than :data:`MAX_LAYERS` layers after chunking, or a
    loop-nest search of more than :data:`MAX_MAPPER_WORK` evaluations (times the factor).
    """
    factor = work_factor()
    most = max(chunks.values(), default=1)
    layers = model.layers()
    after = sum(most if layer.streamable else 1 for layer in layers)
    if after > MAX_LAYERS * factor:
        raise _refuse(file, "model", "layers after chunking", after, MAX_LAYERS * factor)
    if s.accelerator.cost_backend == "loopnest":
        shapes = {replace(layer, name="", group="") for layer in layers}
        work = float(s.accelerator.mapper.evaluations) * len(shapes)
        if work > MAX_MAPPER_WORK * factor:
            raise _refuse(
                file,
                "accelerator.mapper.evaluations",
                f"mapper evaluations x {len(shapes)} distinct layer shapes",
                work,
                MAX_MAPPER_WORK * factor,
            )
