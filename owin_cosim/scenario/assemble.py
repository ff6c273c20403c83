"""Assemble a validated :class:`~owin_cosim.scenario.schema.Scenario` into a
:class:`~owin_cosim.system.problem.Problem`: build the model, cost it on the accelerator, set up
the network backend and the bounds.

Cross-file checks live here (each a :class:`~owin_cosim.errors.ConfigError` naming the
file and key): model devices match scenario devices, files exist, the model is acyclic,
every layer fits a core, requested backends are available.

Random streams (all derived from the scenario ``seed``): fading ``[seed, 1, block]``,
shadowing ``[seed, 2]``; the planning surrogate uses the same streams of a derived seed
(``SeedSequence([seed, 7])``), i.e. another channel realisation with the same statistics.
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import ValidationError

from owin_cosim.accel.analytic import AnalyticCostModel
from owin_cosim.accel.cache import CostCache
from owin_cosim.accel.cost_model import CostModel
from owin_cosim.accel.registry import backend_options, make_cost_model
from owin_cosim.accel.service.estimator import RemoteCostModel
from owin_cosim.accel.spec import ChipSpec, load_chip_spec
from owin_cosim.accel.timeloop.backend import HINT, timeloop_available
from owin_cosim.errors import BackendUnavailableError, ConfigError
from owin_cosim.network.base import NetworkBackend
from owin_cosim.network.ns3.backend import Ns3Device, Ns3Uplink
from owin_cosim.network.ns3.environment import INSTALL_HINT, ns3_installed
from owin_cosim.network.ofdm import OfdmChannel, OfdmUplink
from owin_cosim.policies import make_policy
from owin_cosim.scenario.model_file import load_model_file
from owin_cosim.scenario.schema import Scenario, load_scenario, validation_to_config_error
from owin_cosim.system.problem import CompiledDag, DeviceSpec, Interconnect, Problem
from owin_cosim.workload.graph import ModelGraph
from owin_cosim.workload.zoo import (
    DEFAULT_ENCODER_BY_MODALITY,
    ENCODERS,
    build_multimodal,
    payload_bytes_for,
    synthetic_dag,
)

__all__ = ["assemble", "load_problem", "planning_seed"]


def planning_seed(seed: int) -> int:
    """The seed of the planning surrogate's channel: another realisation.

    >>> planning_seed(1) == planning_seed(1) != 1
    True
    """
    return int(np.random.SeedSequence([seed, 7]).generate_state(1, dtype=np.uint64)[0] >> 1)


def load_problem(
    path: str | Path, progress: Callable[[int, int], None] | None = None
) -> tuple[Scenario, Problem]:
    """Read, validate and assemble a scenario file (``progress``: see :func:`assemble`)."""
    scenario = load_scenario(path)
    return scenario, assemble(scenario, path, progress)


def _resolve(base: Path, file: str) -> Path:
    p = Path(file).expanduser()
    return p if p.is_absolute() else base / p


def _build_model(
    s: Scenario, file: Path
) -> tuple[ModelGraph, dict[str, tuple[str, dict[str, Any]]]]:
    names = {d.name for d in s.devices}
    for name in s.model.encoders:
        if name not in names:
            raise ConfigError(
                file,
                f"model.encoders.{name}",
                f"no device called {name!r}; expected one of: {', '.join(sorted(names))}",
            )
    if s.model.zoo == "synthetic":
        expected = [f"dev{k}" for k in range(len(s.devices))]
        if [d.name for d in s.devices] != expected:
            raise ConfigError(
                file,
                "devices",
                f"the synthetic model reads devices {expected}; "
                "expected the devices to carry exactly these names, in order",
            )
        params = {"seed": s.seed, **s.model.zoo_params}
        try:
            return synthetic_dag(modalities=len(s.devices), **params), {}
        except (TypeError, ValueError) as exc:
            raise ConfigError(file, "model.zoo_params", str(exc)) from None
    if s.model.file is not None:
        if s.model.encoders:
            raise ConfigError(file, "model.encoders", "give either 'file' or 'encoders', not both")
        model_path = _resolve(file.parent, s.model.file)
        if not model_path.is_file():
            raise ConfigError(file, "model.file", f"model file {str(model_path)!r} not found")
        return load_model_file(model_path), {}
    encoders: dict[str, tuple[str, dict[str, Any]]] = {}
    for i, dev in enumerate(s.devices):
        ref = s.model.encoder_of(dev.name)
        if ref is None:
            default = DEFAULT_ENCODER_BY_MODALITY.get(dev.modality)
            if default is None:
                raise ConfigError(
                    file,
                    f"devices[{i}].modality",
                    f"no built-in encoder for modality {dev.modality!r}; expected "
                    f"one of {sorted(DEFAULT_ENCODER_BY_MODALITY)} or an entry "
                    f"model.encoders.{dev.name} naming one of {sorted(ENCODERS)}",
                )
            encoders[dev.name] = (default, {})
        else:
            encoders[dev.name] = (ref.name, dict(ref.params))
    try:
        graph = build_multimodal(
            s.name,
            encoders,
            fusion=s.model.fusion,
            fusion_params=s.model.fusion_params,
            head=s.model.head,
            head_params=s.model.head_params,
        )
    except (KeyError, TypeError, ValueError) as exc:
        msg = exc.args[0] if exc.args else str(exc)
        raise ConfigError(file, "model", str(msg)) from None
    return graph, encoders


def _devices(
    s: Scenario, file: Path, model: ModelGraph, encoders: dict[str, tuple[str, dict[str, Any]]]
) -> list[DeviceSpec]:
    used = set(model.devices())
    out: list[DeviceSpec] = []
    for i, d in enumerate(s.devices):
        if d.name not in used:
            raise ConfigError(
                file,
                f"devices[{i}].name",
                f"the model reads no data from device {d.name!r}; expected every "
                "device to feed an input layer",
            )
        if d.payload is not None:
            nbytes = d.payload.nbytes
        elif d.name in encoders:
            nbytes = payload_bytes_for(*encoders[d.name])
        else:
            raise ConfigError(
                file,
                f"devices[{i}].payload",
                "required with a model file or a synthetic model (no encoder to infer it from)",
            )
        if d.chunks > nbytes:
            raise ConfigError(
                file,
                f"devices[{i}].chunks",
                f"{d.chunks} chunks for a {nbytes}-byte payload; expected at most "
                "one chunk per byte",
            )
        power_w = 10.0 ** ((d.tx_power_dBm - 30.0) / 10.0)
        out.append(DeviceSpec(d.name, d.modality, d.distance, power_w, nbytes, d.chunks))
    unknown = used - {d.name for d in s.devices}
    if unknown:
        raise ConfigError(
            file,
            "model",
            f"the model reads devices {sorted(unknown)} that the "
            "scenario does not declare; expected them under 'devices'",
        )
    return out


def _chip(s: Scenario, file: Path) -> ChipSpec:
    spec_path = _resolve(file.parent, s.accelerator.spec)
    if not spec_path.is_file():
        raise ConfigError(
            file,
            "accelerator.spec",
            f"spec file {str(spec_path)!r} not found; "
            "expected a multi-core spec such as accel_specs/mc4.yaml",
        )
    return load_chip_spec(spec_path)


def _say(message: str) -> None:
    print(f"owin-cosim: {message}", file=sys.stderr, flush=True)


def _ns3_peak_rate_bps(s: Scenario, file: Path) -> float:
    """Validate ``network.ns3`` against its scenario's schema; return the peak rate."""
    from ns3_scenarios import SCENARIOS

    name = s.network.ns3.scenario
    module = SCENARIOS.get(name)
    if module is None:
        raise ConfigError(
            file,
            "network.ns3.scenario",
            f"unknown ns-3 scenario {name!r}; expected one of: {', '.join(sorted(SCENARIOS))}",
        )
    try:
        params = module.Params.model_validate(s.network.ns3.params)
    except ValidationError as exc:
        raise validation_to_config_error(exc, file, module.Params, "network.ns3.params") from None
    return float(module.peak_rate_bps(params))


def _timeloop_files(s: Scenario, file: Path) -> list[Path]:
    files = [_resolve(file.parent, f) for f in s.accelerator.timeloop_arch]
    for i, path in enumerate(files):
        if not path.is_file():
            raise ConfigError(file, f"accelerator.timeloop_arch[{i}]", f"no such file: {path}")
    names = [p.name for p in files]
    if len(set(names)) != len(names):
        raise ConfigError(
            file, "accelerator.timeloop_arch", "expected files with distinct names (basenames)"
        )
    return files


def _cost_model(s: Scenario, file: Path, chip: ChipSpec) -> CostModel:
    """The scenario's cost backend: in process (cached) or a remote estimator service."""
    acc = s.accelerator
    options = backend_options(
        acc.cost_backend, acc.latency_scale, acc.mapper.evaluations, acc.mapper.seed
    )
    arch_files = _timeloop_files(s, file) if acc.cost_backend == "timeloop" else []
    if acc.estimator is not None:
        spec_doc = yaml.safe_load(chip.path.read_text()) if chip.path else {}
        if arch_files:  # the service runs Timeloop on its side: ship the files' text
            options["timeloop_arch"] = {p.name: p.read_text() for p in arch_files}
        return RemoteCostModel(
            acc.estimator,
            spec_doc,
            backend=acc.cost_backend,
            options=options,
            timeout_s=acc.estimator_timeout_s,
        )
    # The spec file's bytes name the core; the options change what a cost means.
    digest = hashlib.sha256(chip.path.read_bytes() if chip.path else b"").hexdigest()
    return make_cost_model(
        chip,
        digest,
        acc.cost_backend,
        options,
        cache=CostCache() if acc.cache else None,
        timeloop_arch=arch_files,
    )


def assemble(
    s: Scenario, file: str | Path, progress: Callable[[int, int], None] | None = None
) -> Problem:
    """Build the :class:`Problem` of scenario ``s`` read from ``file``.

    ``progress(done, total)`` follows the costing of the layers (the slow part with the
    ``loopnest`` and ``timeloop`` backends on a cold cache).
    """
    file = Path(file)
    make_policy(s.policy.name, s.policy.params, file)  # validates name and parameters
    if s.network.backend == "ns3" and s.network.ns3.endpoint is None and not ns3_installed():
        raise BackendUnavailableError(
            f"{file}: network.backend is 'ns3' but ns-3 is not installed; {INSTALL_HINT}"
        )
    if s.accelerator.cost_backend == "timeloop" and s.accelerator.estimator is None:
        if not timeloop_available():
            raise BackendUnavailableError(f"{file}: accelerator.cost_backend is 'timeloop': {HINT}")
        if not s.accelerator.timeloop_arch:
            raise ConfigError(
                file,
                "accelerator.timeloop_arch",
                "cost_backend 'timeloop' needs "
                "the Timeloop architecture files (arch.yaml and its components)",
            )
    model, encoders = _build_model(s, file)
    devices = _devices(s, file, model, encoders)
    chip = _chip(s, file)
    analytic = AnalyticCostModel(chip, latency_scale=s.accelerator.latency_scale)
    cost = _cost_model(s, file, chip)
    for layer in model.layers():
        if not analytic.fits(layer):
            raise ConfigError(
                file,
                "accelerator.spec",
                f"layer {layer.name!r} needs at least {analytic.min_buffer_words(layer)} "
                f"words of on-chip buffer; the cores of {chip.name!r} have fewer. "
                "Expected a spec whose cores fit every layer",
            )
    dag = CompiledDag.build(model, cost, devices, chip.word_bytes, progress)
    noc = Interconnect(
        chip.hop_matrix(),
        chip.hop_latency_s,
        chip.link_bytes_per_s,
        chip.noc.energy_pJ_per_byte_hop,
    )
    cfg = s.network.ofdm
    uplinks = [d.uplink() for d in devices]
    channel = OfdmChannel(cfg, uplinks, s.seed)
    mean_rate = np.array([channel.mean_rate_bps(k) for k in range(len(devices))])
    seed, pseed = s.seed, planning_seed(s.seed)

    def surrogate() -> NetworkBackend:
        return OfdmUplink(cfg, uplinks, pseed)

    make_network: Callable[[], NetworkBackend]
    if s.network.backend == "ns3":
        ns3cfg = s.network.ns3
        peak = _ns3_peak_rate_bps(s, file)
        ns3_devices = [
            Ns3Device(d.name, d.distance_m, 10.0 * math.log10(d.tx_power_W * 1e3)) for d in devices
        ]
        arrival = [[float(c) * 8.0 / peak for c in np.cumsum(d.chunk_bytes)] for d in devices]
        radio_s = sum(d.payload_bytes for d in devices) * 8.0 / peak

        def make_network() -> NetworkBackend:
            return Ns3Uplink(ns3cfg, ns3_devices, seed, say=_say)

        def planning_ns3() -> NetworkBackend:
            return Ns3Uplink(ns3cfg, ns3_devices, pseed, say=_say)

        make_planning = planning_ns3 if ns3cfg.planning == "ns3" else surrogate
        units = len(devices)
    else:
        arrival, radio_s = channel.uplink_bounds([d.chunk_bytes for d in devices])

        def make_network() -> NetworkBackend:
            return OfdmUplink(cfg, uplinks, seed)

        make_planning = surrogate
        units = cfg.num_rbs
    return Problem(
        name=s.name,
        seed=s.seed,
        devices=devices,
        dag=dag,
        noc=noc,
        make_network=make_network,
        make_planning_network=make_planning,
        mean_rate_bps=mean_rate,
        earliest_arrival_s=arrival,
        radio_bound_s=radio_s,
        radio_units=units,
        network_backend=s.network.backend,
        cost_backend=cost.name,
        cost_model=cost,
        accelerator=chip.name,
    )
