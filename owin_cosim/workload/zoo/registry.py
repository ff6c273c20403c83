"""The zoo's one registry: a record per encoder, the fusion and head builders, and the
functions that read them (:func:`build_multimodal`, :func:`payload_bytes_for`).

Every fact about an encoder (its zoo name, builder, natural input size, the modality it
is the default for) is in its :class:`EncoderRecord` in :data:`ENCODER_RECORDS`;
:data:`ENCODERS` and :data:`DEFAULT_ENCODER_BY_MODALITY` are read-only views of it.

Examples
--------
>>> ENCODER_RECORDS["pointnet"].default_for, DEFAULT_ENCODER_BY_MODALITY["lidar"]
('lidar', 'pointnet')
>>> ENCODERS["mlp"] is ENCODER_RECORDS["mlp"].build
True
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from owin_cosim.workload.graph import ModelGraph
from owin_cosim.workload.zoo.audio import audio_cnn, audio_cnn_input_bytes
from owin_cosim.workload.zoo.common import (
    EncoderBuilder,
    EncoderOutput,
    FusionBuilder,
    HeadBuilder,
    check_device,
)
from owin_cosim.workload.zoo.fusion import attention_fusion, concat_fusion
from owin_cosim.workload.zoo.heads import classifier_head
from owin_cosim.workload.zoo.lidar import pointnet, pointnet_input_bytes
from owin_cosim.workload.zoo.text import text_transformer, text_transformer_input_bytes
from owin_cosim.workload.zoo.vector import mlp_encoder, mlp_input_bytes
from owin_cosim.workload.zoo.vision import resnet18, resnet18_input_bytes

__all__ = [
    "DEFAULT_ENCODER_BY_MODALITY",
    "ENCODERS",
    "ENCODER_RECORDS",
    "FUSIONS",
    "HEADS",
    "EncoderRecord",
    "UnknownNameError",
    "build_multimodal",
    "payload_bytes_for",
]

_T = TypeVar("_T")


class UnknownNameError(KeyError):
    """An unknown zoo name; ``str()`` gives the plain message (no ``KeyError`` quoting).

    Examples
    --------
    >>> str(UnknownNameError("unknown encoder 'x'; valid: a, b"))
    "unknown encoder 'x'; valid: a, b"
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True, slots=True)
class EncoderRecord:
    """Everything the zoo knows about one encoder.

    Attributes
    ----------
    name : str
        Zoo name, as written in a scenario's ``model.encoders``.
    build : EncoderBuilder
        ``build(graph, device, **params) -> EncoderOutput``; its keyword-only
        parameters (with their defaults) are the encoder's parameters.
    input_bytes : callable
        Bytes of one natural input, from the complete keyword parameters (defaults
        filled in); see :func:`payload_bytes_for`.
    natural_input : str
        What one input is, in words (documentation of ``input_bytes``).
    default_for : str or None
        The device modality this encoder is used for when a scenario names none.
    """

    name: str
    build: EncoderBuilder
    input_bytes: Callable[[Mapping[str, Any]], int]
    natural_input: str
    default_for: str | None = None


def _by_name(records: Iterable[EncoderRecord]) -> Mapping[str, EncoderRecord]:
    out: dict[str, EncoderRecord] = {}
    modalities: set[str] = set()
    for record in records:
        if record.name in out:
            raise ValueError(f"two zoo encoders named {record.name!r}")
        if record.default_for in modalities:
            raise ValueError(f"two default encoders for modality {record.default_for!r}")
        out[record.name] = record
        if record.default_for is not None:
            modalities.add(record.default_for)
    return MappingProxyType(out)


#: Encoder zoo name -> its record: THE list of encoders (add new ones here).
ENCODER_RECORDS: Mapping[str, EncoderRecord] = _by_name(
    (
        EncoderRecord(
            "resnet18",
            resnet18,
            resnet18_input_bytes,
            "in_channels x input_hw^2 uint8 pixels (3 x 224 x 224 = 150,528)",
            default_for="image",
        ),
        EncoderRecord(
            "audio_cnn",
            audio_cnn,
            audio_cnn_input_bytes,
            "mel_bins x frames float16 log-mel values (64 x 96 x 2 = 12,288)",
            default_for="audio",
        ),
        EncoderRecord(
            "pointnet",
            pointnet,
            pointnet_input_bytes,
            "num_points x (x, y, z, intensity) float32 (1024 x 16 = 16,384; "
            "the encoder uses x, y, z)",
            default_for="lidar",
        ),
        EncoderRecord(
            "text_transformer",
            text_transformer,
            text_transformer_input_bytes,
            "seq_len int32 token ids (128 x 4 = 512)",
            default_for="text",
        ),
        EncoderRecord("mlp", mlp_encoder, mlp_input_bytes, "rows x in_features float32 values"),
    )
)
#: Encoder zoo name -> builder (a view of :data:`ENCODER_RECORDS`).
ENCODERS: Mapping[str, EncoderBuilder] = MappingProxyType(
    {name: record.build for name, record in ENCODER_RECORDS.items()}
)
#: Modality -> the encoder used for it by default (a view of :data:`ENCODER_RECORDS`).
DEFAULT_ENCODER_BY_MODALITY: Mapping[str, str] = MappingProxyType(
    {r.default_for: name for name, r in ENCODER_RECORDS.items() if r.default_for is not None}
)
#: Fusion zoo name -> builder.
FUSIONS: Mapping[str, FusionBuilder] = MappingProxyType(
    {"concat": concat_fusion, "attention": attention_fusion}
)
#: Head zoo name -> builder.
HEADS: Mapping[str, HeadBuilder] = MappingProxyType({"classifier": classifier_head})
_RESERVED_PREFIXES = ("fusion", "head")


def _lookup(kind: str, name: object, registry: Mapping[str, _T], where: str = "") -> _T:
    at = f" for {where}" if where else ""
    if not isinstance(name, str) or name not in registry:
        raise UnknownNameError(
            f"unknown {kind} {name!r}{at}; valid {kind}s: {', '.join(sorted(registry))}"
        )
    return registry[name]


def _keyword_params(builder: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    return {
        p.name: p
        for p in inspect.signature(builder).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def _params_of(
    kind: str, name: str, builder: Callable[..., Any], params: object, where: str = ""
) -> dict[str, Any]:
    """Check ``params`` against the builder's keyword-only parameters."""
    at = f" for {where}" if where else ""
    if not isinstance(params, Mapping):
        raise TypeError(f"{kind} {name!r}{at}: parameters must be a mapping, got {params!r}")
    accepted = _keyword_params(builder)
    valid = ", ".join(sorted(accepted)) or "none"
    unknown = sorted(str(k) for k in params if k not in accepted)
    if unknown:
        raise TypeError(
            f"{kind} {name!r}{at}: unknown parameter(s) {', '.join(unknown)}; "
            f"valid parameters: {valid}"
        )
    missing = sorted(
        n for n, p in accepted.items() if p.default is inspect.Parameter.empty and n not in params
    )
    if missing:
        raise TypeError(f"{kind} {name!r}{at}: missing required parameter(s) {', '.join(missing)}")
    return dict(params)


def build_multimodal(
    name: str,
    encoders: Mapping[str, tuple[str, Mapping[str, Any]]],
    *,
    fusion: str = "concat",
    fusion_params: Mapping[str, Any] | None = None,
    head: str = "classifier",
    head_params: Mapping[str, Any] | None = None,
) -> ModelGraph:
    """Build a multimodal model: one encoder per device, a fusion block and a head.

    Parameters
    ----------
    name : str
        Model name.
    encoders : mapping
        Device name -> ``(encoder zoo name, encoder keyword parameters)``, in device
        order. Zoo names are the keys of :data:`ENCODER_RECORDS`.
    fusion : str
        Key of :data:`FUSIONS`.
    fusion_params : mapping, optional
        Keyword parameters of the fusion builder.
    head : str
        Key of :data:`HEADS`.
    head_params : mapping, optional
        Keyword parameters of the head builder.

    Returns
    -------
    ModelGraph
        A DAG whose single sink is the head's last layer.

    Raises
    ------
    UnknownNameError
        (a ``KeyError``) for an unknown encoder, fusion or head name; the message lists
        the valid names.
    TypeError
        For unknown, missing or mistyped parameters; the message lists the valid ones.
    ValueError
        For out-of-range values, no encoders or a bad device name.

    Examples
    --------
    >>> g = build_multimodal("m", {"cam": ("mlp", {"in_features": 8}),
    ...                            "mic": ("mlp", {"in_features": 4, "hidden": [16]})},
    ...                      fusion="attention", fusion_params={"d_model": 32},
    ...                      head_params={"classes": 5})
    >>> [n for n in g.graph.nodes if g.graph.out_degree(n) == 0]
    ['head/fc2']
    >>> try:
    ...     build_multimodal("m", {"cam": ("resnet", {})})
    ... except KeyError as exc:
    ...     print(exc)
    unknown encoder 'resnet' for device 'cam'; valid encoders: audio_cnn, mlp, pointnet, resnet18, text_transformer
    """  # noqa: E501
    if not isinstance(encoders, Mapping) or not encoders:
        raise ValueError(
            f"model {name!r}: needs at least one encoder (device -> "
            f"(encoder, params)), got {encoders!r}"
        )
    graph = ModelGraph(name)
    outputs: list[EncoderOutput] = []
    for device, spec in encoders.items():
        where = f"device {device!r}"
        check_device(where, device)
        if device in _RESERVED_PREFIXES:
            raise ValueError(
                f"{where}: the names {', '.join(_RESERVED_PREFIXES)} are "
                "reserved for the fusion and head layers"
            )
        if not isinstance(spec, tuple | list) or len(spec) != 2:
            raise TypeError(f"{where}: expected (encoder name, parameters), got {spec!r}")
        enc_name, enc_params = spec
        builder = _lookup("encoder", enc_name, ENCODER_RECORDS, where).build
        params = _params_of("encoder", enc_name, builder, enc_params, where)
        outputs.append(builder(graph, device, **params))
    fuse = _lookup("fusion", fusion, FUSIONS)
    fused = fuse(graph, outputs, **_params_of("fusion", fusion, fuse, fusion_params or {}))
    make_head = _lookup("head", head, HEADS)
    make_head(graph, fused, **_params_of("head", head, make_head, head_params or {}))
    return graph


def payload_bytes_for(encoder_name: str, params: Mapping[str, Any] | None = None) -> int:
    """Natural raw size in bytes of one input of an encoder.

    Each record's ``input_bytes`` computes it from the encoder's keyword parameters
    (defaults filled in); its ``natural_input`` says what the input is:

    >>> for record in ENCODER_RECORDS.values():
    ...     print(f"{record.name:<17} {record.natural_input}")
    resnet18          in_channels x input_hw^2 uint8 pixels (3 x 224 x 224 = 150,528)
    audio_cnn         mel_bins x frames float16 log-mel values (64 x 96 x 2 = 12,288)
    pointnet          num_points x (x, y, z, intensity) float32 (1024 x 16 = 16,384; the encoder uses x, y, z)
    text_transformer  seq_len int32 token ids (128 x 4 = 512)
    mlp               rows x in_features float32 values

    Parameters
    ----------
    encoder_name : str
        Key of :data:`ENCODER_RECORDS`.
    params : mapping, optional
        The encoder's keyword parameters (defaults fill the rest).

    Returns
    -------
    int
        Bytes.

    Examples
    --------
    >>> payload_bytes_for("resnet18", {})
    150528
    >>> payload_bytes_for("audio_cnn", {"frames": 48})
    6144
    >>> payload_bytes_for("mlp", {"in_features": 8, "rows": 2})
    64
    """  # noqa: E501
    record = _lookup("encoder", encoder_name, ENCODER_RECORDS)
    given = _params_of("encoder", encoder_name, record.build, params or {})
    values = {n: p.default for n, p in _keyword_params(record.build).items()}
    values.update(given)
    return record.input_bytes(values)
