"""The estimator server: answers batched per-layer cost queries over pyzmq.

``owin-cosim estimator --bind tcp://127.0.0.1:5556`` serves cost queries (the container
layout: one estimator next to Timeloop, coordinators elsewhere). A query names a chip
spec (its YAML document, so the service needs no shared files), a cost backend and a
batch of layers; the answer holds one cost per layer, in order. The service keeps its
cost models per spec and goes through the persistent cost cache. Messages:
:mod:`owin_cosim.accel.service.protocol`.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import zmq

from owin_cosim.accel.cache import CostCache
from owin_cosim.accel.cost_model import CostModel
from owin_cosim.accel.registry import COST_BACKENDS, make_cost_model
from owin_cosim.accel.service.protocol import PROTOCOL_VERSION, layer_from_dict
from owin_cosim.accel.spec import parse_chip_spec

__all__ = ["serve"]


class _Service:
    def __init__(self, cache: CostCache | None) -> None:
        self.cache = cache
        self.models: dict[str, CostModel] = {}
        self._dirs: list[tempfile.TemporaryDirectory[str]] = []

    def close(self) -> None:
        for d in self._dirs:
            d.cleanup()

    def model(self, spec: dict[str, Any], backend: str, options: dict[str, Any]) -> CostModel:
        COST_BACKENDS.entry(backend)  # an unknown name is a clear error
        options = dict(options)
        arch_texts = options.pop("timeloop_arch", None) or {}
        if backend == "timeloop":
            COST_BACKENDS.load(backend).require()
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
