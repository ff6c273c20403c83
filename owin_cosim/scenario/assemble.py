"""Assemble a validated :class:`~owin_cosim.scenario.schema.Scenario` into a
:class:`~owin_cosim.system.problem.Problem`: build the model, cost it on the accelerator
through the cost-backend registry, and let the network backend type describe the uplink.

Cross-file checks live here (each a :class:`~owin_cosim.errors.ConfigError` naming the
file and key): model devices match scenario devices, files exist, the model is acyclic,
every layer fits a core, requested backends are registered and available. What a
backend needs of its own section (ns-3 peak rates, Timeloop files, ...) is that
backend's business: see :mod:`owin_cosim.network.registry` and
:mod:`owin_cosim.accel.registry`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from owin_cosim.accel.analytic import AnalyticCostModel
from owin_cosim.accel.cache import CachedCostModel, CostCache
from owin_cosim.accel.cost_model import CostModel
from owin_cosim.accel.registry import COST_BACKENDS, make_cost_model
from owin_cosim.accel.spec import ChipSpec, load_chip_spec
from owin_cosim.errors import BackendUnavailableError, ConfigError
from owin_cosim.network.base import UplinkSetup, dbm_to_w
from owin_cosim.network.ofdm.backend import planning_seed
from owin_cosim.network.registry import NETWORK_BACKENDS
from owin_cosim.policies.registry import make_policy
from owin_cosim.scenario.heterogeneity import scale_encoders, with_payloads
from owin_cosim.scenario.limits import check_model, check_uplink
from owin_cosim.scenario.model_file import load_model_file, load_onnx_model
from owin_cosim.scenario.onnx_parts import build_with_onnx_parts, has_onnx_parts
from owin_cosim.scenario.schema import EncoderRef, Scenario, load_scenario
from owin_cosim.system.options import CoreTypeInfo
from owin_cosim.system.problem import CompiledDag, CostStats, DeviceSpec, Interconnect, Problem
from owin_cosim.workload.graph import ModelGraph
from owin_cosim.workload.zoo import (
    DEFAULT_ENCODER_BY_MODALITY,
    ENCODERS,
    build_multimodal,
    payload_bytes_for,
    synthetic_dag,
)

__all__ = ["assemble", "load_problem", "planning_seed"]


def load_problem(
    path: str | Path, progress: Callable[[int, int], None] | None = None
) -> tuple[Scenario, Problem]:
    """Read, validate and assemble a scenario file (``progress``: see :func:`assemble`)."""
    scenario = load_scenario(path)
    return scenario, assemble(scenario, path, progress)


def _resolve(base: Path, file: str) -> Path:
    p = Path(file).expanduser()
    return p if p.is_absolute() else base / p


def _build_model(s: Scenario, file: Path) -> tuple[ModelGraph, dict[str, int]]:
    """The model, and the natural payload bytes of the devices whose encoder implies one."""
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
        return _model_from_file(s, file)
    refs: dict[str, EncoderRef] = {}
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
            ref = EncoderRef(name=default)
        refs[dev.name] = ref
    if has_onnx_parts(s):
        return build_with_onnx_parts(s, file, refs)
    encoders = {d: (str(r.name), dict(r.params)) for d, r in refs.items()}
    fusion, head = s.model.part_of("fusion"), s.model.part_of("head")
    try:
        graph = build_multimodal(
            s.name,
            encoders,
            fusion=str(fusion.name),
            fusion_params=fusion.params,
            head=str(head.name),
            head_params=head.params,
        )
    except (KeyError, TypeError, ValueError) as exc:
        msg = exc.args[0] if exc.args else str(exc)
        raise ConfigError(file, "model", str(msg)) from None
    return graph, {d: payload_bytes_for(*enc) for d, enc in encoders.items()}


def _model_from_file(s: Scenario, file: Path) -> tuple[ModelGraph, dict[str, int]]:
    """``model.file``: a YAML/JSON layer list, or an ONNX model (``*.onnx``)."""
    if s.model.encoders:
        raise ConfigError(file, "model.encoders", "give either 'file' or 'encoders', not both")
    for part in ("fusion", "head"):
        if isinstance(getattr(s.model, part), EncoderRef):
            raise ConfigError(
                file,
                f"model.{part}",
                f"a whole model (model.file) has its own {part}; expected no model.{part} "
                "mapping with it",
            )
    model_path = _resolve(file.parent, s.model.file or "")
    if not model_path.is_file():
        raise ConfigError(file, "model.file", f"model file {str(model_path)!r} not found")
    if model_path.suffix.lower() == ".onnx":
        devices = [d.name for d in s.devices]
        return load_onnx_model(model_path, file, devices, s.model.onnx_unsupported)
    return load_model_file(model_path), {}


def _devices(
    s: Scenario, file: Path, model: ModelGraph, payloads: dict[str, int]
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
        elif d.name in payloads:
            nbytes = payloads[d.name]
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
        power_w = dbm_to_w(d.tx_power_dBm)
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


def _core_type_infos(chip: ChipSpec) -> tuple[CoreTypeInfo, ...]:
    """The chip's core types as the problem needs them (plain data)."""
    infos = []
    for t, ct in enumerate(chip.core_types):
        core = ct.chip.core
        glb_words = core.global_buffer.size_words or 0
        infos.append(
            CoreTypeInfo(
                ct.name,
                ct.count,
                ct.runs,
                tuple(j for j, k in enumerate(chip.core_type_of) if k == t),
                core.dram.name,
                core.dram.read_bw_words_per_cycle,
                float(glb_words * chip.word_bytes),
            )
        )
    return tuple(infos)


def _cost_model(s: Scenario, file: Path, view: ChipSpec, spec_doc: dict[str, Any]) -> CostModel:
    """The cost model of one core type (``view``: that core alone on the chip, and its
    spec mapping): in process (cached) or a remote estimator service."""
    acc = s.accelerator
    backend = COST_BACKENDS.load(acc.cost_backend, file, "accelerator.cost_backend")
    section = acc.sections()
    if acc.estimator is None:  # a remote service checks its own installation
        try:
            backend.require()
        except BackendUnavailableError as exc:
            raise BackendUnavailableError(
                f"{file}: accelerator.cost_backend is {acc.cost_backend!r}: {exc}"
            ) from None
    files = backend.files(section, file)
    options = backend.options(section, file)
    if acc.estimator is not None:
        from owin_cosim.accel.service.client import RemoteCostModel

        if files:  # the service runs the backend on its side: ship the files' text
            options["timeloop_arch"] = {p.name: p.read_text() for p in files}
        return RemoteCostModel(
            acc.estimator,
            spec_doc,
            backend=acc.cost_backend,
            options=options,
            timeout_s=acc.estimator_timeout_s,
            keys=None if acc.estimator_keys is None else file.parent / acc.estimator_keys,
        )
    # The core's own spec names it; the options change what a cost means.
    canonical = json.dumps(spec_doc, sort_keys=True, default=str).encode()
    return make_cost_model(
        view,
        hashlib.sha256(canonical).hexdigest(),
        acc.cost_backend,
        options,
        cache=CostCache() if acc.cache else None,
        timeloop_arch=files,
    )


def _cost_stats(costs: Sequence[CostModel], layers: int) -> CostStats:
    """What the costing did (all core types), then release the models' resources."""
    name, calls, hits = "", 0, 0
    for cost in costs:
        name = name or cost.name
        if isinstance(cost, CachedCostModel):
            calls, hits = calls + cost.calls, hits + cost.hits
            cost.cache.close()
        else:
            calls += int(getattr(cost, "backend_calls", layers))
        close = getattr(cost, "close", None)
        if callable(close) and not isinstance(cost, CachedCostModel):
            close()
    return CostStats(name, calls, hits)


def _check_fits(s: Scenario, file: Path, chip: ChipSpec, model: ModelGraph) -> None:
    """Every layer fits the buffer of some core type that runs its kind (before costing)."""
    scale = s.accelerator.latency_scale
    checks = [(ct, AnalyticCostModel(ct.chip, latency_scale=scale)) for ct in chip.core_types]
    for layer in model.layers():
        kind = str(layer.op)
        runners = [(ct, m) for ct, m in checks if ct.runs_kind(kind)]
        if not runners:
            raise ConfigError(
                file,
                "accelerator.spec",
                f"layer {layer.name!r} is a {kind} layer and no core type of {chip.name!r} "
                f"runs {kind} layers; expected a core type whose 'runs' lists {kind!r}",
            )
        if not any(m.fits(layer) for _, m in runners):
            sizes = ", ".join(
                f"{ct.name}: {ct.chip.core.global_buffer.size_words}" for ct, _ in runners
            )
            raise ConfigError(
                file,
                "accelerator.spec",
                f"layer {layer.name!r} needs at least {runners[0][1].min_buffer_words(layer)} "
                f"words of on-chip buffer even split over cores (splits along M, C or P do "
                f"not shrink one output's filter and window); the global buffers of "
                f"{chip.name!r} hold fewer ({sizes} words). Expected a spec whose cores fit "
                "every layer",
            )


def _cost_dag(
    s: Scenario,
    file: Path,
    chip: ChipSpec,
    model: ModelGraph,
    devices: list[DeviceSpec],
    progress: Callable[[int, int], None] | None,
) -> tuple[CompiledDag, CostStats, tuple[CoreTypeInfo, ...]]:
    """Cost every layer's options on every core type that runs it."""
    types = _core_type_infos(chip)
    if len(types) > 1 and s.accelerator.cost_backend == "timeloop":
        raise ConfigError(
            file,
            "accelerator.cost_backend",
            "timeloop_arch describes one core; a heterogeneous spec needs a backend that "
            "reads each core type from the spec (analytic, loopnest, zigzag)",
        )
    costs = [_cost_model(s, file, ct.chip, ct.spec_doc) for ct in chip.core_types]
    try:
        dag = CompiledDag.build(
            model,
            costs,
            types,
            devices,
            chip.word_bytes,
            progress,
            s.accelerator.max_split_cores,
        )
    except ConfigError as exc:
        if exc.file is None:
            raise ConfigError(file, exc.key, exc.message) from None
        raise
    finally:
        stats = _cost_stats(costs, len(model.layers()))
    return dag, stats, types


def assemble(
    s: Scenario, file: str | Path, progress: Callable[[int, int], None] | None = None
) -> Problem:
    """Build the :class:`Problem` of scenario ``s`` read from ``file``.

    ``progress(done, total)`` follows the costing of the layers (the slow part with the
    ``loopnest`` and ``timeloop`` backends on a cold cache).
    """
    file = Path(file)
    make_policy(s.policy.name, s.policy.params, file)  # validates name and parameters
    network_type = NETWORK_BACKENDS.load(s.network.backend, file, "network.backend")
    model, payloads = _build_model(s, file)
    h = s.modality_heterogeneity
    devices = with_payloads(_devices(s, file, model, payloads), h, file)
    check_model(s, file, model, {d.name: d.chunks for d in devices})
    check_uplink(s, file, [d.uplink() for d in devices], [sum(d.chunk_bytes) for d in devices])
    uplink: UplinkSetup = network_type.setup(
        s.network.sections(),
        [d.uplink() for d in devices],
        [d.chunk_bytes for d in devices],
        s.seed,
        file,
    )
    chip = _chip(s, file)
    _check_fits(s, file, chip, model)
    dag, stats, types = _cost_dag(s, file, chip, model, devices, progress)
    dag = scale_encoders(dag, devices, h, file)
    noc = Interconnect(
        chip.hop_matrix(),
        chip.hop_latency_s,
        chip.link_bytes_per_s,
        chip.noc.energy_pJ_per_byte_hop,
    )
    return Problem(
        name=s.name,
        seed=s.seed,
        devices=devices,
        dag=dag,
        noc=noc,
        network=uplink.network,
        planning_network=uplink.planning,
        mean_rate_bps=np.array(uplink.mean_rate_bps),
        earliest_arrival_s=[list(a) for a in uplink.earliest_arrival_s],
        radio_bound_s=uplink.radio_bound_s,
        cost=stats,
        radio_units=uplink.radio_units,
        accelerator=chip.name,
        core_types=types,
        dram_bandwidth_Bps=chip.dram_bandwidth_Bps,
    )
