"""Scenario files: a declared, typed schema, validated up front.

Every key is declared here with its type and default (see ``docs/scenario.md``).
:func:`load_scenario` reads a YAML file and returns a :class:`Scenario`, or raises one
:class:`~owin_cosim.errors.ConfigError` that names the file, the key path and what was
expected. Unknown keys are errors, never ignored.

Examples
--------
>>> s = Scenario.model_validate({
...     "name": "one",
...     "devices": [{"name": "cam", "modality": "image", "distance_m": 10}],
...     "accelerator": {"spec": "mc4.yaml"},
... })
>>> s.devices[0].tx_power_dBm, s.network.backend, s.policy.name
(23.0, 'ofdm', 'pacs')
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from owin_cosim.accel.registry import COST_BACKENDS
from owin_cosim.errors import ConfigError
from owin_cosim.network.ns3.config import Endpoint, Ns3Config
from owin_cosim.network.ofdm.config import OfdmConfig
from owin_cosim.network.registry import NETWORK_BACKENDS
from owin_cosim.plugins import Registry
from owin_cosim.policies.registry import POLICIES
from owin_cosim.validation import validation_to_config_error
from owin_cosim.yaml_input import read_yaml

__all__ = [
    "AcceleratorSection",
    "DeviceConfig",
    "EncoderRef",
    "MapperSection",
    "ModelSection",
    "NetworkSection",
    "PayloadConfig",
    "PolicySection",
    "Scenario",
    "SyntheticParams",
    "TensorPayload",
    "ZigZagSection",
    "load_scenario",
    "load_yaml",
    "validation_to_config_error",
]

#: Bytes per element of the tensor dtypes a payload may declare.
DTYPE_BYTES: dict[str, int] = {
    "uint8": 1,
    "int8": 1,
    "int16": 2,
    "float16": 2,
    "bfloat16": 2,
    "int32": 4,
    "float32": 4,
}

_NAME = r"^[A-Za-z0-9_.-]+$"
#: The longest scenario name (it names a directory: see ``Scenario._plain_name``).
MAX_NAME_LENGTH = 100

#: Largest payload a device may send (16 GiB); the work estimate of the uplink refuses
#: far less on a slow link (see ``docs/robustness.md``).
MAX_PAYLOAD_BYTES = 2**34
#: Largest distance of a device from the edge server (1000 km), and of a coordinate.
MAX_DISTANCE_M = 1e6
_Coordinate = Annotated[float, Field(ge=-MAX_DISTANCE_M, le=MAX_DISTANCE_M)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TensorPayload(_Strict):
    """A payload given as a tensor shape and element type."""

    shape: list[Annotated[int, Field(le=MAX_PAYLOAD_BYTES)]] = Field(min_length=1, max_length=8)
    dtype: Literal["uint8", "int8", "int16", "float16", "bfloat16", "int32", "float32"] = "uint8"

    @field_validator("shape")
    @classmethod
    def _positive(cls, shape: list[int]) -> list[int]:
        if any(d <= 0 for d in shape):
            raise ValueError(f"every dimension must be > 0, got {shape}")
        if math.prod(shape) > MAX_PAYLOAD_BYTES:
            raise ValueError(
                f"the tensor has {math.prod(shape)} elements; expected at most "
                f"{MAX_PAYLOAD_BYTES} (16 GiB of uint8)"
            )
        return shape

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPE_BYTES[self.dtype]


class PayloadConfig(_Strict):
    """A device's payload: ``bytes`` or ``tensor`` (exactly one)."""

    bytes: int | None = Field(None, gt=0, le=MAX_PAYLOAD_BYTES)
    tensor: TensorPayload | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> PayloadConfig:
        if (self.bytes is None) == (self.tensor is None):
            raise ValueError("give exactly one of 'bytes' or 'tensor'")
        return self

    @property
    def nbytes(self) -> int:
        if self.tensor is not None:
            return self.tensor.nbytes
        assert self.bytes is not None
        return self.bytes


class DeviceConfig(_Strict):
    """A sensor node sending one modality."""

    name: str = Field(pattern=_NAME)
    modality: str = Field(min_length=1, max_length=128)
    distance_m: float | None = Field(None, gt=0, le=MAX_DISTANCE_M)
    position_m: tuple[_Coordinate, _Coordinate] | None = None
    tx_power_dBm: float = Field(23.0, ge=-30, le=40)
    #: Payload; by default the natural input size of the device's encoder.
    payload: PayloadConfig | None = None
    chunks: int = Field(1, ge=1, le=4096)

    @model_validator(mode="after")
    def _where(self) -> DeviceConfig:
        if (self.distance_m is None) == (self.position_m is None):
            raise ValueError("give exactly one of 'distance_m' or 'position_m'")
        if self.payload is not None and self.chunks > self.payload.nbytes:
            raise ValueError(
                f"chunks ({self.chunks}) exceeds the payload size ({self.payload.nbytes} bytes)"
            )
        return self

    @property
    def distance(self) -> float:
        """Distance to the edge server (at the origin), in metres."""
        if self.distance_m is not None:
            return self.distance_m
        assert self.position_m is not None
        return max(math.hypot(*self.position_m), 1e-3)


def _registered(registry: Registry[Any], name: str) -> str:
    try:
        registry.entry(name)  # the registry's own message, with the registered names
    except ConfigError as exc:
        raise ValueError(exc.message) from None
    return name


def _plugin_sections(registry: Registry[Any], extra: dict[str, Any] | None) -> None:
    """Keys beyond the declared ones may only be sections of plugin backends."""
    builtin = {e.name for e in registry.entries() if e.builtin}
    for key, value in (extra or {}).items():
        if key in builtin or key not in registry:
            raise ValueError(
                f"unknown key {key!r}; expected a declared key or the options section of a "
                f"plugin {registry.kind} (one of: "
                f"{', '.join(n for n in registry.names() if n not in builtin) or 'none installed'})"
            )
        if not isinstance(value, dict):
            raise ValueError(f"{key}: expected a mapping of the plugin's options")


class NetworkSection(_Strict):
    """The uplink backend and its parameters.

    A plugin network backend reads its options from the section named after it
    (``network.<name>``); see ``docs/plugins.md``.
    """

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    #: A registered network backend: ``ofdm``, ``ns3`` or a plugin's.
    backend: str = "ofdm"
    ofdm: OfdmConfig = Field(default_factory=OfdmConfig)
    #: The ns-3 backend: scenario, its parameters, worker options.
    ns3: Ns3Config = Field(default_factory=Ns3Config)

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, name: str) -> str:
        return _registered(NETWORK_BACKENDS, name)

    @model_validator(mode="after")
    def _plugin_options(self) -> NetworkSection:
        _plugin_sections(NETWORK_BACKENDS, self.model_extra)
        return self

    def sections(self) -> dict[str, Any]:
        """Every section as a plain mapping (what a backend type's ``setup`` reads)."""
        return {
            **{k: getattr(self, k) for k in type(self).model_fields},
            **(self.model_extra or {}),
        }


class EncoderRef(_Strict):
    """A zoo part (encoder, fusion or head) and its keyword parameters, or an ONNX file."""

    #: A zoo name (exactly one of ``name`` and ``file``).
    name: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    #: An ONNX file of this part, relative to the scenario file.
    file: str | None = Field(None, min_length=1, max_length=4096, validate_default=True)

    # A field validator, not a model validator: the union's error names stay plain.
    @field_validator("file")
    @classmethod
    def _name_or_file(cls, file: str | None, info: ValidationInfo) -> str | None:
        if (info.data.get("name") is None) == (file is None) and "name" in info.data:
            raise ValueError("give exactly one of 'name' (a zoo part) or 'file' (an ONNX file)")
        if file is not None and info.data.get("params"):
            raise ValueError("'params' go with a zoo 'name'; an ONNX 'file' takes none")
        return file


class SyntheticParams(_Strict):
    """``model.zoo_params`` of ``zoo: synthetic`` (see
    :func:`owin_cosim.workload.zoo.synthetic.synthetic_dag`); ``seed`` defaults to the
    scenario's."""

    #: Total layers (at least the number of devices + 3).
    layers: int = Field(ge=4, le=100_000)
    seed: int = Field(0, ge=0, lt=2**63)
    skip_prob: float = Field(0.15, ge=0, le=1)
    branch_prob: float = Field(0.1, ge=0, le=1)
    macs_range: tuple[
        Annotated[float, Field(ge=1, le=1e15)], Annotated[float, Field(ge=1, le=1e15)]
    ] = (1e5, 1e8)
    fusion_hidden: int = Field(512, ge=1, le=1_000_000)
    classes: int = Field(10, ge=1, le=1_000_000)


class ModelSection(_Strict):
    """The multimodal DNN: zoo encoders + fusion + head, or a model file."""

    #: A model file (YAML layer list); relative to the scenario file.
    file: str | None = None
    #: A whole-model zoo entry instead of per-device encoders: ``synthetic`` is a seeded
    #: random multimodal DAG (devices must be named ``dev0``, ``dev1``, ...).
    zoo: Literal["synthetic"] | None = None
    #: Parameters of the zoo model (``synthetic``: ``layers``, ``seed``, ...); only with
    #: ``zoo``.
    zoo_params: dict[str, Any] = Field(default_factory=dict)
    #: Device name -> encoder (a zoo name or ``{name, params}``); default by modality.
    encoders: dict[str, str | EncoderRef] = Field(default_factory=dict)
    #: A zoo fusion name, or ``{file: fusion.onnx}`` (graph inputs named after devices).
    fusion: str | EncoderRef = "concat"
    fusion_params: dict[str, Any] = Field(default_factory=dict)
    #: A zoo head name, or ``{file: head.onnx}`` (one graph input: the fused feature).
    head: str | EncoderRef = "classifier"
    head_params: dict[str, Any] = Field(default_factory=dict)
    #: ONNX ops without a layer kind: ``error`` (one error listing them) or ``eltwise``
    #: (priced as elementwise layers over their outputs).
    onnx_unsupported: Literal["error", "eltwise"] = "error"

    @field_validator("zoo_params")
    @classmethod
    def _params_need_zoo(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if params and info.data.get("zoo") is None:
            raise ValueError("given without 'model.zoo'; expected 'zoo: synthetic' with it")
        if info.data.get("zoo") == "synthetic":
            try:
                SyntheticParams.model_validate(params)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                msg = validation_to_config_error(exc, None, SyntheticParams).message
                raise ValueError(f"{where}: {msg}") from None
        return params

    def encoder_of(self, device: str) -> EncoderRef | None:
        ref = self.encoders.get(device)
        return EncoderRef(name=ref) if isinstance(ref, str) else ref

    def part_of(self, part: Literal["fusion", "head"]) -> EncoderRef:
        """The fusion or head as ``{name, params}`` (zoo) or ``{file}`` (ONNX)."""
        ref: str | EncoderRef = getattr(self, part)
        params: dict[str, Any] = getattr(self, f"{part}_params")
        if isinstance(ref, str):
            return EncoderRef(name=ref, params=params)
        return (
            ref if ref.file is not None or ref.params else EncoderRef(name=ref.name, params=params)
        )

    @model_validator(mode="after")
    def _part_params_once(self) -> ModelSection:
        for part in ("fusion", "head"):
            ref = getattr(self, part)
            if (
                isinstance(ref, EncoderRef)
                and (ref.file or ref.params)
                and getattr(self, f"{part}_params")
            ):
                raise ValueError(
                    f"{part}_params given with {part}.{'file' if ref.file else 'params'}; "
                    f"expected the parameters in one place ({part}_params with a zoo name)"
                )
        return self


class MapperSection(_Strict):
    """The mapping search of the ``loopnest`` cost backend."""

    #: Loop-nest evaluations per distinct layer shape (the search's only bound).
    evaluations: int = Field(300, ge=1, le=1_000_000)
    #: Seed of the search (independent of the scenario seed, so costs stay cached).
    seed: int = Field(0, ge=0, lt=2**63)


class ZigZagSection(_Strict):
    """The ``zigzag`` cost backend (ZigZag's own mapping search, ``docs/accelerator.md``)."""

    #: Spatial unrolling: the loop-nest model's best template, or ZigZag's generator.
    spatial: Literal["template", "zigzag"] = "template"
    #: LOMA's loop prime factor limit (larger: more loop orderings searched, slower).
    lpf_limit: int = Field(6, ge=1, le=12)
    #: Longest wall time of one layer's search (ZigZag runs in a child process).
    timeout_s: float = Field(600.0, gt=0, le=86400)


class AcceleratorSection(_Strict):
    """The multi-core accelerator and its cost backend.

    A plugin cost backend reads its options from the section named after it
    (``accelerator.<name>``); see ``docs/plugins.md``.
    """

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    #: Multi-core spec file (``accel_specs/*.yaml``), relative to the scenario file.
    spec: str
    #: A registered cost backend: ``analytic``, ``loopnest``, ``timeloop``, ``zigzag`` or a
    #: plugin's.
    cost_backend: str = "analytic"
    #: ``cost_backend: loopnest``: the mapping search per distinct layer shape.
    mapper: MapperSection = Field(default_factory=lambda: MapperSection())
    #: ``cost_backend: zigzag``: ZigZag's search settings.
    zigzag: ZigZagSection = Field(default_factory=lambda: ZigZagSection())
    #: Multiplies every compute time (alpha): moves a scenario between radio- and
    #: compute-bound.
    latency_scale: float = Field(1.0, gt=0, le=1e6)
    #: Largest group of cores one layer may be split over (None: every core of a type;
    #: 1: no splits). See ``docs/accelerator.md``.
    max_split_cores: int | None = Field(None, ge=1, le=4096)
    #: Keep per-layer costs in the persistent cache (``owin-cosim cache info|clear``).
    cache: bool = True
    #: ``cost_backend: timeloop``: the Timeloop architecture and component files.
    timeloop_arch: list[str] = Field(default_factory=list)
    #: Ask a remote estimator service (``tcp://HOST:PORT``) instead of costing here.
    estimator: Endpoint | None = None
    #: A CURVE key directory (``owin-cosim keys DIR``, relative to the scenario file):
    #: talk to ``estimator`` encrypted and authenticated.
    estimator_keys: str | None = Field(None, min_length=1, max_length=4096)
    #: Longest wait for the estimator's answer to one batch.
    estimator_timeout_s: float = Field(60.0, gt=0, le=86400)

    @field_validator("cost_backend")
    @classmethod
    def _known_backend(cls, name: str) -> str:
        return _registered(COST_BACKENDS, name)

    @model_validator(mode="after")
    def _plugin_options(self) -> AcceleratorSection:
        _plugin_sections(COST_BACKENDS, self.model_extra)
        return self

    def sections(self) -> dict[str, Any]:
        """Every key as a plain mapping (what a cost backend's ``options`` reads)."""
        return {
            **{k: getattr(self, k) for k in type(self).model_fields},
            **(self.model_extra or {}),
        }


class PolicySection(_Strict):
    """The orchestration policy and its parameters."""

    #: A registered policy: ``rtfs``, ``pacs`` or a plugin's.
    name: str = "pacs"
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known_policy(cls, name: str) -> str:
        return _registered(POLICIES, name)


class Scenario(_Strict):
    """A whole scenario file."""

    #: A plain file name (the results directory ``results/<name>``): see ``_plain_name``.
    name: str = "scenario"
    description: str = Field("", max_length=100_000)
    seed: int = Field(0, ge=0, lt=2**63)
    devices: list[DeviceConfig] = Field(min_length=1, max_length=256)
    network: NetworkSection = Field(default_factory=NetworkSection)
    model: ModelSection = Field(default_factory=ModelSection)
    accelerator: AcceleratorSection
    policy: PolicySection = Field(default_factory=PolicySection)
    #: Interpolates the devices' payloads and encoder work between the set as written
    #: (1) and a homogeneous one with the same totals (0): owin_cosim/scenario/heterogeneity.py.
    modality_heterogeneity: float = Field(1.0, ge=0, le=1)
    #: The file the scenario was read from (relative paths inside are relative to it).
    _source: Path | None = PrivateAttr(default=None)

    @property
    def source_file(self) -> Path:
        """The scenario's file; ``./<name>.yaml`` (relative to the working directory) for
        a scenario built in memory."""
        return self._source if self._source is not None else Path(f"{self.name}.yaml")

    def with_source(self, path: str | Path) -> Scenario:
        """This scenario, recorded as read from ``path``."""
        self._source = Path(path)
        return self

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        # The name is a directory under results/: '.' would make compare replace
        # results/ itself, '..' write beside it, a long name fail late in the OS.
        plain = all(c.isascii() and (c.isalnum() or c in "_.-") for c in name)
        if not (0 < len(name) <= MAX_NAME_LENGTH and plain and name[0] not in ".-"):
            raise ValueError(
                f"expected a plain file name of 1 to {MAX_NAME_LENGTH} letters, digits, "
                f"'_', '.' or '-', not starting with '.' or '-' (got {name[:60]!r}"
                f"{'...' if len(name) > 60 else ''}, {len(name)} characters)"
            )
        return name

    @field_validator("devices")
    @classmethod
    def _unique_devices(cls, devices: list[DeviceConfig]) -> list[DeviceConfig]:
        seen: dict[str, int] = {}
        for i, d in enumerate(devices):
            if d.name in seen:
                raise ValueError(
                    f"device name {d.name!r} of devices[{i}] is used twice (first "
                    f"at devices[{seen[d.name]}]); expected unique names"
                )
            seen[d.name] = i
        return devices


# ---- loading ------------------------------------------------------------------------
def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with clear errors for missing, hostile or malformed files
    (the bounds of :mod:`owin_cosim.yaml_input`)."""
    p = Path(path)
    data = read_yaml(p)
    if not isinstance(data, dict):
        raise ConfigError(
            p, "", f"expected a mapping of keys at the top level, got {type(data).__name__}"
        )
    return data


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (schema only; see :mod:`owin_cosim.scenario.assemble`)."""
    data = load_yaml(path)
    try:
        return Scenario.model_validate(data).with_source(path)
    except ValidationError as exc:
        raise validation_to_config_error(exc, path, Scenario) from None
