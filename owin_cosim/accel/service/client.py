"""The estimator client: a :class:`~owin_cosim.accel.cost_model.CostModel` whose costs a
remote estimator service computes (``accelerator.estimator: tcp://HOST:PORT``)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import zmq

from owin_cosim.accel.cost_model import LayerCost
from owin_cosim.accel.limits import MAX_LAYERS_PER_BATCH
from owin_cosim.accel.service.protocol import (
    PROTOCOL_VERSION,
    TOKEN_ENV,
    cost_from_dict,
    layer_to_dict,
)
from owin_cosim.errors import EstimatorError
from owin_cosim.workload.graph import Layer

__all__ = ["TOKEN_ENV", "EstimatorError", "RemoteCostModel"]


class RemoteCostModel:
    """A :class:`~owin_cosim.accel.cost_model.CostModel` answered by an estimator service.

    Layers are sent in batches (:meth:`layer_costs`); every wait is bounded by
    ``timeout_s`` and a silent service is an :class:`EstimatorError`. Before the first
    batch a ``hello`` (bounded by ``connect_timeout_s``) tells an absent service from a
    slow answer, so a wrong endpoint fails in seconds even when batches may take long.
    ``keys`` (a directory of ``owin-cosim keys``) connects with CURVE. A list longer than
    :data:`~owin_cosim.accel.limits.MAX_LAYERS_PER_BATCH` goes in several batches.
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
        keys: Path | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.keys = keys
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
            if self.keys is not None:
                from owin_cosim.security import curve_client

                curve_client(self._sock, self.keys)
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
        try:
            answer = json.loads(sock.recv())
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise EstimatorError(f"{self.endpoint} answered something that is not an estimator")
        if not answer.get("ok"):
            raise EstimatorError(f"estimator at {self.endpoint}: {answer.get('error')}")
        return answer

    def layer_costs(self, layers: Sequence[Layer]) -> list[LayerCost]:
        """Costs of a batch of layers, in one round trip per
        :data:`~owin_cosim.accel.limits.MAX_LAYERS_PER_BATCH` layers."""
        costs: list[LayerCost] = []
        for start in range(0, len(layers), MAX_LAYERS_PER_BATCH):
            costs.extend(self._batch(layers[start : start + MAX_LAYERS_PER_BATCH]))
        return costs

    def _batch(self, layers: Sequence[Layer]) -> list[LayerCost]:
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
        return [cost_from_dict(c) for c in answer["costs"]]

    def layer_cost(self, layer: Layer) -> LayerCost:
        return self.layer_costs([layer])[0]

    def shutdown_service(self, token: str | None = None) -> None:
        """Ask the service to stop, with its owner's ``token`` (default: ``$TOKEN_ENV``).

        Raises
        ------
        EstimatorError
            When the service refuses (a wrong or missing token) or does not answer.
        """
        token = os.environ.get(TOKEN_ENV, "") if token is None else token
        self._ask({"op": "shutdown", "token": token})

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None
        self._ctx.term()
