"""The estimator service: batched per-layer cost queries over pyzmq.

``owin-cosim estimator --bind tcp://0.0.0.0:5556`` serves cost queries (the container
layout: one estimator next to Timeloop, coordinators elsewhere). A query names a chip
spec (its YAML document, so the service needs no shared files), a backend and a batch
of layers; the answer holds one cost per layer, in order. The service keeps its cost
models per spec and goes through the persistent cost cache.

Messages (JSON, REQ/REP, ``"v": 1``)::

    -> {"v": 1, "op": "estimate", "backend": "analytic", "spec": {...chip spec...},
        "options": {"latency_scale": 1.0}, "layers": [{"name", "op", "R", ..., "N", ...}]}

``backend`` is ``analytic``, ``loopnest`` (options ``mapper_evaluations``,
``mapper_seed``) or ``timeloop`` (option ``timeloop_arch``: ``{file name: text}`` of
the Timeloop architecture and component files, written to a private folder on the
service's side; Timeloop must be installed there).
    <- {"v": 1, "op": "estimate", "ok": true, "costs": [{"cycles", "seconds",
        "energy_pJ", "utilization", "macs", "levels", "bound_by"}, ...], "backend_calls": k}
    -> {"v": 1, "op": "shutdown"}   <- {"v": 1, "op": "shutdown", "ok": true}
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import zmq

from owin_cosim.accel.cache import CostCache
from owin_cosim.accel.cost_model import CostModel, LayerCost, LevelAccesses
from owin_cosim.accel.registry import BACKENDS, make_cost_model
from owin_cosim.accel.spec import parse_chip_spec
from owin_cosim.accel.timeloop.backend import require_timeloop
from owin_cosim.errors import EstimatorError
from owin_cosim.network.ns3.protocol import PROTOCOL_VERSION
from owin_cosim.workload.graph import Layer, OpKind

__all__ = ["EstimatorError", "RemoteCostModel", "layer_from_dict", "layer_to_dict", "serve"]

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


def _cost_from_dict(data: dict[str, Any]) -> LayerCost:
    levels = {k: LevelAccesses(**v) for k, v in data["levels"].items()}
    return LayerCost(**{**data, "levels": levels})


class _Service:
    def __init__(self, cache: CostCache | None) -> None:
        self.cache = cache
        self.models: dict[str, CostModel] = {}
        self._dirs: list[tempfile.TemporaryDirectory[str]] = []

    def close(self) -> None:
        for d in self._dirs:
            d.cleanup()

    def model(self, spec: dict[str, Any], backend: str, options: dict[str, Any]) -> CostModel:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
        options = dict(options)
        arch_texts = options.pop("timeloop_arch", None) or {}
        if backend == "timeloop":
            require_timeloop()
            if not isinstance(arch_texts, dict) or not arch_texts:
                raise ValueError(
                    "backend 'timeloop' needs options.timeloop_arch: "
                    "{file name: text} of the architecture and component files"
                )
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
        arch_digest = hashlib.sha256(json.dumps(arch_texts, sort_keys=True).encode()).hexdigest()
        key = f"{digest}/{arch_digest}/{backend}/{json.dumps(options, sort_keys=True)}"
        if key not in self.models:
            chip = parse_chip_spec(spec, "<estimator request>")
            files: list[Path] = []
            if arch_texts:
                tmp = tempfile.TemporaryDirectory(prefix="owin-estimator-arch-")
                self._dirs.append(tmp)
                for name, text in sorted(arch_texts.items()):
                    if Path(name).name != name:
                        raise ValueError(f"timeloop_arch file name {name!r} must be a base name")
                    (Path(tmp.name) / name).write_text(str(text))
                    files.append(Path(tmp.name) / name)
            self.models[key] = make_cost_model(
                chip, digest, backend, options, cache=self.cache, timeloop_arch=files
            )
        return self.models[key]

    def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        if message.get("v") != PROTOCOL_VERSION:
            raise ValueError(f"protocol version {message.get('v')!r}; expected {PROTOCOL_VERSION}")
        op = message.get("op")
        if op == "hello":
            return {"protocol": PROTOCOL_VERSION}
        if op == "shutdown":
            return {}
        if op != "estimate":
            raise ValueError(f"unknown op {op!r}; expected hello, estimate or shutdown")
        model = self.model(
            message["spec"], message.get("backend", "analytic"), message.get("options") or {}
        )
        before = getattr(model, "calls", 0)
        costs = [asdict(model.layer_cost(layer_from_dict(d))) for d in message["layers"]]
        return {"costs": costs, "backend_calls": getattr(model, "calls", len(costs)) - before}


def serve(bind: str, *, cache: bool = True, max_requests: int | None = None) -> None:
    """Answer queries on ``bind`` until ``shutdown`` (or ``max_requests``)."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REP)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.bind(bind)
    service = _Service(CostCache() if cache else None)
    served = 0
    try:
        while max_requests is None or served < max_requests:
            message: dict[str, Any] = {}
            try:
                message = json.loads(sock.recv())
                answer = {
                    "v": PROTOCOL_VERSION,
                    "op": message.get("op"),
                    "ok": True,
                    **service.handle(message),
                }
            except Exception as exc:  # a bad query must not kill the service
                answer = {
                    "v": PROTOCOL_VERSION,
                    "op": message.get("op"),
                    "ok": False,
                    "error": f"{type(exc).__name__}: {exc}",
                }
            sock.send(json.dumps(answer).encode())
            served += 1
            if message.get("op") == "shutdown":
                return
    finally:
        service.close()
        sock.close()
        ctx.term()


class RemoteCostModel:
    """A :class:`~owin_cosim.accel.cost_model.CostModel` answered by an estimator service.

    Layers are sent in batches (:meth:`layer_costs`); every wait is bounded by
    ``timeout_s`` and a silent service is an :class:`EstimatorError`. Before the first
    batch a ``hello`` (bounded by ``connect_timeout_s``) tells an absent service from a
    slow answer, so a wrong endpoint fails in seconds even when batches may take long.
    """

    def __init__(
        self,
        endpoint: str,
        spec: dict[str, Any],
        *,
        backend: str = "analytic",
        options: dict[str, Any] | None = None,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.endpoint = endpoint
        self.connect_timeout_s = min(connect_timeout_s, timeout_s)
        self._greeted = False
        self.spec = spec
        self.name = backend
        self.options = options or {}
        self.timeout_s = timeout_s
        self.backend_calls = 0
        self._ctx = zmq.Context()
        self._sock: zmq.Socket[bytes] | None = None

    def _socket(self) -> zmq.Socket[bytes]:
        if self._sock is None:
            self._sock = self._ctx.socket(zmq.REQ)
            self._sock.setsockopt(zmq.LINGER, 0)
            self._sock.connect(self.endpoint)
        return self._sock

    def _ask(self, message: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
        if not self._greeted and message.get("op") != "hello":
            self._ask({"op": "hello"}, self.connect_timeout_s)
            self._greeted = True
        wait = self.timeout_s if timeout_s is None else timeout_s
        sock = self._socket()
        sock.send(json.dumps({"v": PROTOCOL_VERSION, **message}).encode())
        if not sock.poll(int(wait * 1000)):
            # A REQ socket without its reply cannot be reused: drop it.
            sock.close(0)
            self._sock = None
            what = "is it running there?" if message.get("op") == "hello" else "(a batch)"
            raise EstimatorError(
                f"estimator at {self.endpoint} did not answer within {wait:g} s {what}"
            )
        answer: dict[str, Any] = json.loads(sock.recv())
        if not answer.get("ok"):
            raise EstimatorError(f"estimator at {self.endpoint}: {answer.get('error')}")
        return answer

    def layer_costs(self, layers: Sequence[Layer]) -> list[LayerCost]:
        """Costs of a batch of layers, in one round trip."""
        answer = self._ask(
            {
                "op": "estimate",
                "backend": self.name,
                "spec": self.spec,
                "options": self.options,
                "layers": [layer_to_dict(x) for x in layers],
            }
        )
        self.backend_calls += int(answer.get("backend_calls", 0))
        return [_cost_from_dict(c) for c in answer["costs"]]

    def layer_cost(self, layer: Layer) -> LayerCost:
        return self.layer_costs([layer])[0]

    def shutdown_service(self) -> None:
        """Ask the service to stop."""
        self._ask({"op": "shutdown"})

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None
        self._ctx.term()
