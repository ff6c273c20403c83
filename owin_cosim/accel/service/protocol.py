"""The estimator service's messages (protocol version 1 of its own), over pyzmq REQ/REP.

Messages are JSON objects, one per frame, each with ``"v": PROTOCOL_VERSION``::

    -> {"v": 1, "op": "hello"}      <- {"v": 1, "op": "hello", "ok": true, "protocol": 1}
    -> {"v": 1, "op": "estimate", "backend": "analytic", "spec": {...chip spec...},
        "options": {"latency_scale": 1.0}, "layers": [{"name", "op", "R", ..., "N", ...}]}
    <- {"v": 1, "op": "estimate", "ok": true, "costs": [{"cycles", "seconds",
        "energy_pJ", "utilization", "macs", "levels", "bound_by"}, ...], "backend_calls": k}
    -> {"v": 1, "op": "shutdown", "token": "..."}   <- {"v": 1, "op": "shutdown", "ok": true}

``backend`` is a registered cost backend (``analytic``, ``loopnest`` with options
``mapper_evaluations``, ``mapper_seed``, ``timeloop`` with option ``timeloop_arch``:
``{file name: text}`` of the Timeloop architecture and component files, written to a
private folder on the service's side; Timeloop must be installed there). A failed query
is answered ``{"ok": false, "error": "..."}``; so is a malformed one: every request is
checked field by field (:func:`parse_request`) against the bounds of
:mod:`owin_cosim.accel.limits` before any work. ``shutdown`` needs the token the
service was started with.

>>> from owin_cosim.workload.graph import Layer, OpKind
>>> layer = Layer("fc", OpKind.MATMUL, C=4, M=2)
>>> layer_from_dict(layer_to_dict(layer)) == layer
True
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, fields
from typing import Any

from owin_cosim.accel.cost_model import LayerCost, LevelAccesses
from owin_cosim.accel.limits import (
    MAX_LATENCY_SCALE,
    MAX_LAYER_DIM,
    MAX_LAYERS_PER_BATCH,
    MAX_MAPPER_EVALUATIONS,
)
from owin_cosim.workload.graph import Layer, OpKind

__all__ = [
    "OPS",
    "PROTOCOL_VERSION",
    "TOKEN_ENV",
    "BadRequestError",
    "cost_from_dict",
    "cost_to_dict",
    "layer_from_dict",
    "layer_to_dict",
    "parse_request",
]

#: The estimator protocol's version (independent of the ns-3 worker protocol's).
PROTOCOL_VERSION = 1

#: The environment variable holding the estimator's shutdown token (service and client).
TOKEN_ENV = "OWIN_COSIM_ESTIMATOR_TOKEN"

_LAYER_FIELDS = {f.name for f in fields(Layer)}
_LAYER_TYPES = {f.name: str(f.type) for f in fields(Layer)}
_OPS_BY_NAME = frozenset(str(k) for k in OpKind)

#: The requests a service answers.
OPS = ("hello", "estimate", "shutdown")


class BadRequestError(ValueError):
    """A request the service refuses before any work (answered as an error)."""


def layer_to_dict(layer: Layer) -> dict[str, Any]:
    """A layer as a JSON-ready dict."""
    d = asdict(layer)
    d["op"] = str(layer.op)
    return d


def layer_from_dict(data: dict[str, Any]) -> Layer:
    """The inverse of :func:`layer_to_dict`."""
    kwargs = {k: v for k, v in data.items() if k in _LAYER_FIELDS}
    kwargs["op"] = OpKind(kwargs["op"])
    return Layer(**kwargs)


_COST_FIELDS = tuple(f.name for f in fields(LayerCost) if f.name != "levels")
_LEVEL_FIELDS = tuple(f.name for f in fields(LevelAccesses))


def cost_to_dict(cost: LayerCost) -> dict[str, Any]:
    """A cost as a JSON-ready dict (what ``dataclasses.asdict`` gives, without its deep
    copies: the service answers many of these per query).

    >>> c = LayerCost(10, 1e-8, 2.0, 0.5, 64, {"DRAM": LevelAccesses(1, 2, 3, 4.0)})
    >>> cost_to_dict(c) == asdict(c) and cost_from_dict(cost_to_dict(c)) == c
    True
    """
    out: dict[str, Any] = {name: getattr(cost, name) for name in _COST_FIELDS}
    out["levels"] = {
        level: {name: getattr(acc, name) for name in _LEVEL_FIELDS}
        for level, acc in cost.levels.items()
    }
    return out


def cost_from_dict(data: dict[str, Any]) -> LayerCost:
    levels = {k: LevelAccesses(**v) for k, v in data["levels"].items()}
    return LayerCost(**{**data, "levels": levels})


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise BadRequestError(message)


def _int(value: Any, what: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:  # bool is not an int here
        raise BadRequestError(f"{what} must be an integer in [{low}, {high}], got {_short(value)}")
    return value


def _short(value: Any) -> str:
    """At most a hundred characters of a value (never the whole of a huge input)."""
    text = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 100 else text[:97] + "..."


def _options(options: Any) -> Any:
    _check(isinstance(options, dict), f"options must be an object, got {_short(options)}")
    for key, value in options.items():
        if key == "latency_scale":
            _check(
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
                and 0 < value <= MAX_LATENCY_SCALE,
                f"options.latency_scale must be a number in (0, {MAX_LATENCY_SCALE:g}], "
                f"got {_short(value)}",
            )
        elif key == "mapper_evaluations":
            _int(value, "options.mapper_evaluations", 1, MAX_MAPPER_EVALUATIONS)
        elif key == "mapper_seed":
            _int(value, "options.mapper_seed", 0, 2**63 - 1)
        elif key == "timeloop_arch":
            _check(
                isinstance(value, dict)
                and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()),
                "options.timeloop_arch must be an object of {file name: text}",
            )
    return options


def _layer(data: Any, i: int) -> None:
    # The checks run for every layer of every query: messages are built only on failure.
    if not isinstance(data, dict):
        raise BadRequestError(f"layers[{i}] must be an object, got {_short(data)}")
    if not isinstance(data.get("name"), str):
        raise BadRequestError(f"layers[{i}].name must be a string")
    if data.get("op") not in _OPS_BY_NAME:
        raise BadRequestError(
            f"layers[{i}].op must be one of {', '.join(OpKind)}, got {_short(data.get('op'))}"
        )
    for key, value in data.items():
        kind = _LAYER_TYPES.get(key)
        if kind == "int":
            if type(value) is not int or not 1 <= value <= MAX_LAYER_DIM:
                _int(value, f"layers[{i}].{key}", 1, MAX_LAYER_DIM)
        elif kind == "bool":
            _check(type(value) is bool, f"layers[{i}].{key} must be true or false")
        elif kind == "str":
            _check(isinstance(value, str), f"layers[{i}].{key} must be a string")


def parse_request(frame: bytes) -> dict[str, Any]:
    """The request of one frame, checked; :class:`BadRequestError` for anything malformed.

    >>> parse_request(b'{"v": 1, "op": "hello"}')
    {'v': 1, 'op': 'hello'}
    >>> parse_request(b"[1]")
    Traceback (most recent call last):
    ...
    owin_cosim.accel.service.protocol.BadRequestError: a request must be a JSON object, got list
    """
    try:
        message: Any = json.loads(frame)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise BadRequestError("a request must be one JSON object (UTF-8)") from None
    _check(
        isinstance(message, dict),
        f"a request must be a JSON object, got {type(message).__name__}",
    )
    _check(
        type(message.get("v")) is int and message["v"] == PROTOCOL_VERSION,
        f"protocol version {_short(message.get('v'))}; expected {PROTOCOL_VERSION}",
    )
    op = message.get("op")
    _check(op in OPS, f"unknown op {_short(op)}; expected {', '.join(OPS)}")
    if op == "shutdown":
        _check(isinstance(message.get("token", ""), str), "token must be a string")
    if op == "estimate":
        _check(isinstance(message.get("spec"), dict), "spec must be an object (a chip spec)")
        _check(isinstance(message.get("backend", "analytic"), str), "backend must be a string")
        message["options"] = _options(message.get("options") or {})
        layers = message.get("layers")
        _check(isinstance(layers, list), "layers must be a list")
        _check(
            len(layers) <= MAX_LAYERS_PER_BATCH,
            f"{len(layers)} layers in one query; at most {MAX_LAYERS_PER_BATCH} "
            "(owin_cosim.accel.limits.MAX_LAYERS_PER_BATCH)",
        )
        for i, layer in enumerate(layers):
            _layer(layer, i)
    checked: dict[str, Any] = message
    return checked
