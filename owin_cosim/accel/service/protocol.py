"""The estimator service's messages (protocol version 1 of its own), over pyzmq REQ/REP.

Messages are JSON objects, one per frame, each with ``"v": PROTOCOL_VERSION``::

    -> {"v": 1, "op": "hello"}      <- {"v": 1, "op": "hello", "ok": true, "protocol": 1}
    -> {"v": 1, "op": "estimate", "backend": "analytic", "spec": {...chip spec...},
        "options": {"latency_scale": 1.0}, "layers": [{"name", "op", "R", ..., "N", ...}]}
    <- {"v": 1, "op": "estimate", "ok": true, "costs": [{"cycles", "seconds",
        "energy_pJ", "utilization", "macs", "levels", "bound_by"}, ...], "backend_calls": k}
    -> {"v": 1, "op": "shutdown"}   <- {"v": 1, "op": "shutdown", "ok": true}

``backend`` is a registered cost backend (``analytic``, ``loopnest`` with options
``mapper_evaluations``, ``mapper_seed``, ``timeloop`` with option ``timeloop_arch``:
``{file name: text}`` of the Timeloop architecture and component files, written to a
private folder on the service's side; Timeloop must be installed there). A failed query
is answered ``{"ok": false, "error": "..."}``.

>>> from owin_cosim.workload.graph import Layer, OpKind
>>> layer = Layer("fc", OpKind.MATMUL, C=4, M=2)
>>> layer_from_dict(layer_to_dict(layer)) == layer
True
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from owin_cosim.accel.cost_model import LayerCost, LevelAccesses
from owin_cosim.workload.graph import Layer, OpKind

__all__ = ["PROTOCOL_VERSION", "cost_from_dict", "layer_from_dict", "layer_to_dict"]

#: The estimator protocol's version (independent of the ns-3 worker protocol's).
PROTOCOL_VERSION = 1

_LAYER_FIELDS = {f.name for f in fields(Layer)}


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


def cost_from_dict(data: dict[str, Any]) -> LayerCost:
    levels = {k: LevelAccesses(**v) for k, v in data["levels"].items()}
    return LayerCost(**{**data, "levels": levels})
