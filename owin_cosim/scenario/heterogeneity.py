"""The modality-heterogeneity knob: ``modality_heterogeneity`` of a scenario.

``h = modality_heterogeneity`` in ``[0, 1]`` interpolates the devices' payloads and
their encoders' work between the scenario as written (``h = 1``, the default: nothing
changes) and a homogeneous set with the same totals (``h = 0``: every device sends the
same number of bytes and its encoder takes the same time). For a quantity ``x_k`` per
device (payload bytes; encoder work, the sum of its layers' fastest times alone on the
chip), with total ``X = sum_k x_k``::

    x_k(h) = X * x_k**h / sum_j x_j**h

so the totals, the load on the radio and on the accelerator, stay the same while the
spread between modalities shrinks (geometrically: the ratio of two devices' payloads is
raised to the power ``h``). Payloads are rounded to whole bytes; encoder work is changed
by scaling the compute time of every option of every layer of device ``k``'s encoder by
``x_k(h) / x_k`` (as ``accelerator.latency_scale`` does for all layers) and its DRAM
traffic and energy by the same factor: a layer with ``x_k(h) / x_k`` times the work
(MAC and cycle counts are left as written). Distances, transmit powers, the encoders' structure and
the chunking stay as written. See ``docs/scenario.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from owin_cosim.errors import ConfigError
from owin_cosim.system.options import ExecOption
from owin_cosim.system.problem import CompiledDag, DeviceSpec

__all__ = ["KEY", "interpolate", "scale_encoders", "with_payloads"]

#: The scenario key (top level).
KEY = "modality_heterogeneity"


def interpolate(values: Sequence[float], h: float) -> list[float]:
    """``x_k(h) = X x_k^h / sum_j x_j^h``: the same total, the spread raised to ``h``.

    >>> [round(v, 6) for v in interpolate([1.0, 3.0], 0.0)]
    [2.0, 2.0]
    >>> interpolate([1.0, 3.0], 1.0)
    [1.0, 3.0]
    >>> [round(v, 6) for v in interpolate([1.0, 4.0], 0.5)]
    [1.666667, 3.333333]
    """
    if h == 1.0:
        return [float(v) for v in values]
    total = float(sum(values))
    powered = [float(v) ** h for v in values]
    norm = sum(powered)
    return [total * p / norm for p in powered]


def with_payloads(devices: Sequence[DeviceSpec], h: float, file: Path) -> list[DeviceSpec]:
    """The devices with their payloads interpolated (whole bytes, at least one per chunk)."""
    if h == 1.0:
        return list(devices)
    sizes = interpolate([d.payload_bytes for d in devices], h)
    out = []
    for d, size in zip(devices, sizes, strict=True):
        nbytes = max(1, round(size))
        if nbytes < d.chunks:
            raise ConfigError(
                file,
                KEY,
                f"device {d.name!r} would send {nbytes} bytes in {d.chunks} chunks at "
                f"{KEY} = {h!r}; expected at most one chunk per byte (fewer chunks or a larger h)",
            )
        out.append(replace(d, payload_bytes=nbytes))
    return out


def _scaled(option: ExecOption, factor: float) -> ExecOption:
    parts = tuple(
        replace(
            p,
            compute_s=p.compute_s * factor,
            dram_s=p.dram_s * factor,
            dram_bytes=p.dram_bytes * factor,
            energy_pJ=p.energy_pJ * factor,
        )
        for p in option.parts
    )
    return ExecOption(option.core_type, option.split, parts)


def scale_encoders(
    dag: CompiledDag, devices: Sequence[DeviceSpec], h: float, file: Path
) -> CompiledDag:
    """``dag`` with every device's encoder work interpolated (see the module docstring).

    Raises
    ------
    ConfigError
        A device has no encoder layers (a model file or a synthetic model without
        ``encoder:<device>`` groups), so there is no encoder work to interpolate.
    """
    if h == 1.0:
        return dag
    members: list[list[int]] = []
    for d in devices:
        tag = f"encoder:{d.name}"
        layers = [v for v, g in enumerate(dag.groups) if g == tag]
        if not layers:
            raise ConfigError(
                file,
                KEY,
                f"device {d.name!r} has no encoder layers (group {tag!r}) whose work it "
                "could change; expected an encoder per device (zoo, ONNX and synthetic "
                "encoders have one, as do model-file layers fed by that device alone)",
            )
        members.append(layers)
    work = [float(dag.duration_s[layers].sum()) for layers in members]
    target = interpolate(work, h)
    options = [tuple(opts) for opts in dag.layer_options]
    for layers, w, t in zip(members, work, target, strict=True):
        factor = t / w if w > 0 else 1.0
        for v in layers:
            options[v] = tuple(_scaled(o, factor) for o in options[v])
    # the summary arrays are those of each layer's fastest option, as CompiledDag.build
    best = [min(opts, key=lambda o: (o.alone_s, o.group, o.core_type)) for opts in options]
    return replace(
        dag,
        duration_s=np.array([o.alone_s for o in best], dtype=float),
        cycles=np.array([o.cycles for o in best], dtype=float),
        energy_pJ=np.array([o.energy_pJ for o in best], dtype=float),
        utilization=np.array([sum(p.utilization for p in o.parts) / o.group for o in best]),
        options=list(options),
    )
