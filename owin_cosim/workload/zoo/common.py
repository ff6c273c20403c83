"""What the zoo's builders share: the encoder output record, argument checks, the layer
scope and the multi-head attention block (used by the text encoder and attention fusion).

Helpers for the builders of :mod:`owin_cosim.workload.zoo`; only :class:`EncoderOutput`
and the builder type aliases are public (re-exported by the package).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from owin_cosim.workload.graph import Layer, ModelGraph, OpKind, eltwise, matmul

__all__ = [
    "EncoderBuilder",
    "EncoderOutput",
    "FusionBuilder",
    "HeadBuilder",
    "Scope",
    "attention_block",
    "ceil_half",
    "check_device",
    "check_inputs",
    "flag",
    "int_param",
    "positive_int",
]


@dataclass(frozen=True, slots=True)
class EncoderOutput:
    """What an encoder (or a fusion block) hands to the next stage.

    Attributes
    ----------
    last_layer : str
        Name of the encoder's single sink layer.
    features : int
        Size of the feature vector that layer produces.

    Examples
    --------
    >>> EncoderOutput("camera/avgpool", 512).features
    512
    """

    last_layer: str
    features: int


#: ``builder(graph, device, **params) -> EncoderOutput``
EncoderBuilder = Callable[..., EncoderOutput]
#: ``builder(graph, inputs, **params) -> EncoderOutput``
FusionBuilder = Callable[..., EncoderOutput]
#: ``builder(graph, fused, **params) -> name of the last layer``
HeadBuilder = Callable[..., str]


# ---- argument checks ------------------------------------------------------------------
def positive_int(where: str, name: str, value: object) -> int:
    """``value`` if it is an integer >= 1 (not a bool); else a TypeError or ValueError.

    >>> positive_int("mlp", "rows", 0)
    Traceback (most recent call last):
    ...
    ValueError: mlp: rows must be >= 1, got 0
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{where}: {name} must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{where}: {name} must be >= 1, got {value}")
    return value


def int_param(where: str, params: Mapping[str, Any], key: str) -> int:
    """``params[key]``, checked by :func:`positive_int` (for the payload-size functions)."""
    return positive_int(where, key, params[key])


def flag(where: str, name: str, value: object) -> bool:
    """``value`` if it is a bool; else a TypeError."""
    if not isinstance(value, bool):
        raise TypeError(f"{where}: {name} must be true or false, got {value!r}")
    return value


def check_device(where: str, device: object) -> str:
    """``device`` if it is a non-empty name without ``/``; else a ValueError."""
    if not isinstance(device, str) or not device or "/" in device:
        raise ValueError(
            f"{where}: device name must be a non-empty string without '/', got {device!r}"
        )
    return device


def check_inputs(
    where: str, graph: ModelGraph, inputs: Sequence[EncoderOutput]
) -> list[EncoderOutput]:
    """The encoder outputs a fusion block or head reads, checked against ``graph``."""
    items = list(inputs)
    if not items:
        raise ValueError(f"{where}: needs at least one encoder output")
    for item in items:
        if not isinstance(item, EncoderOutput):
            raise TypeError(f"{where}: inputs must be EncoderOutput objects, got {item!r}")
        if item.last_layer not in graph.graph:
            raise ValueError(f"{where}: unknown layer {item.last_layer!r}")
    return items


def ceil_half(n: int) -> int:
    """``ceil(n / 2)``: the map size after a padded stride-2 layer.

    >>> ceil_half(7)
    4
    """
    return -(-n // 2)


# ---- building -------------------------------------------------------------------------
class Scope:
    """Adds layers named ``<prefix>/<local>`` with one group to a graph."""

    def __init__(self, graph: ModelGraph, prefix: str, group: str) -> None:
        self.graph = graph
        self.prefix = prefix
        self.group = group

    def name(self, local: str) -> str:
        return f"{self.prefix}/{local}"

    def add(self, layer: Layer, after: Sequence[str] = (), inputs_from: str | None = None) -> str:
        self.graph.add_layer(layer, after=after, inputs_from=inputs_from)
        return layer.name

    def global_pool(self, local: str, *, C: int, window: int, after: Sequence[str]) -> str:
        """A pool over ``window`` rows (points, tokens) down to one row of ``C`` features."""
        layer = Layer(self.name(local), OpKind.POOL, R=window, S=1, P=1, Q=1, C=C, group=self.group)
        return self.add(layer, after)


def attention_block(
    s: Scope, tag: str, *, rows: int, d: int, heads: int, after: Sequence[str]
) -> str:
    """Multi-head self-attention over ``rows`` tokens of width ``d``; returns ``out``."""
    dh = d // heads
    q, k, v = (
        s.add(
            matmul(s.name(f"{tag}.{x}"), rows=rows, in_features=d, out_features=d, group=s.group),
            after,
        )
        for x in "qkv"
    )
    scores = s.add(
        matmul(
            s.name(f"{tag}.scores"),
            rows=rows,
            in_features=dh,
            out_features=rows,
            batch=heads,
            weights_from_activation=True,
            group=s.group,
        ),
        [q, k],
    )
    soft = s.add(
        eltwise(s.name(f"{tag}.softmax"), C=rows, P=rows, N=heads, operands=1, group=s.group),
        [scores],
    )
    av = s.add(
        matmul(
            s.name(f"{tag}.av"),
            rows=rows,
            in_features=rows,
            out_features=dh,
            batch=heads,
            weights_from_activation=True,
            group=s.group,
        ),
        [soft, v],
    )
    return s.add(
        matmul(s.name(f"{tag}.out"), rows=rows, in_features=d, out_features=d, group=s.group), [av]
    )
