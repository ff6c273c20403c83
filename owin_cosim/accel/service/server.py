"""The estimator server: answers batched per-layer cost queries over pyzmq.

``owin-cosim estimator`` serves cost queries on ``tcp://127.0.0.1:5556`` unless told
otherwise (the container layout: one estimator next to Timeloop, coordinators
elsewhere, over CURVE: ``--keys DIR``). A query names a chip spec (its YAML document, so
the service needs no shared files), a cost backend and a batch of layers; the answer
holds one cost per layer, in order. Messages: :mod:`owin_cosim.accel.service.protocol`.

A ROUTER socket takes every request; ``hello`` and ``shutdown`` are answered at once, and
``estimate`` goes to a small pool of worker threads (``workers``), so a slow query does
not hold the others back. Each worker thread keeps its own cost models and cost-cache
connection; an answer depends on its query only (the cache holds what the backend
computes), so concurrency never changes a number. A query past its deadline
(``deadline_s``) is answered with an error at once; an ``analytic`` one is abandoned
after the layer in progress, any other backend's runs in a child process that is
stopped (:mod:`owin_cosim.accel.service.isolated`).
Malformed input of any kind (not JSON, not an object, wrong types, several frames,
frames over :data:`~owin_cosim.accel.limits.MAX_MESSAGE_BYTES`) gets an error answer or
is dropped; the service stops only for its owner: ``shutdown`` with the token it was
started with, or SIGTERM / SIGINT from the local process that started it.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from owin_cosim.accel.cache import CostCache
from owin_cosim.accel.cost_model import CostModel
from owin_cosim.accel.limits import DEFAULT_QUERY_DEADLINE_S, DEFAULT_WORKERS, MAX_MESSAGE_BYTES
from owin_cosim.accel.registry import COST_BACKENDS, make_cost_model
from owin_cosim.accel.service.isolated import (
    IN_PROCESS_BACKENDS,
    CancelledError,
    ChildError,
    run_isolated,
)
from owin_cosim.accel.service.protocol import (
    PROTOCOL_VERSION,
    BadRequestError,
    cost_to_dict,
    layer_from_dict,
    parse_request,
)
from owin_cosim.accel.spec import parse_chip_spec
from owin_cosim.security import same_token

__all__ = ["serve"]

#: Queries waiting for a worker, per worker, before new ones are refused as busy.
_QUEUE_PER_WORKER = 64
#: Longest sleep of the loop (it checks for a stop signal and deadlines this often).
_TICK_S = 0.2


class _CancelledError(Exception):
    """The query's deadline passed; its answer was already sent."""


class _Service:
    """One worker thread's cost models (and its own cost-cache connection)."""

    def __init__(self, cache: bool) -> None:
        self.cache = CostCache() if cache else None
        self.models: dict[str, CostModel] = {}
        self._dirs: list[tempfile.TemporaryDirectory[str]] = []

    def close(self) -> None:
        for d in self._dirs:
            d.cleanup()

    def model(self, spec: dict[str, Any], backend: str, options: dict[str, Any]) -> CostModel:
        options = dict(options)
        arch_texts = options.pop("timeloop_arch", None) or {}
        if backend == "timeloop":
            COST_BACKENDS.load(backend).require()
            if not arch_texts:
                raise ValueError(
                    "backend 'timeloop' needs options.timeloop_arch: "
                    "{file name: text} of the architecture and component files"
                )
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
        arch_digest = hashlib.sha256(json.dumps(arch_texts, sort_keys=True).encode()).hexdigest()
        key = f"{digest}/{arch_digest}/{backend}/{json.dumps(options, sort_keys=True)}"
        if key not in self.models:
            COST_BACKENDS.entry(backend)  # an unknown name is a clear error
            chip = parse_chip_spec(spec, "<estimator request>")
            files: list[Path] = []
            if arch_texts:
                tmp = tempfile.TemporaryDirectory(prefix="owin-estimator-arch-")
                self._dirs.append(tmp)
                for name, text in sorted(arch_texts.items()):
                    if Path(name).name != name or name in ("", ".", ".."):
                        raise ValueError(f"timeloop_arch file name {name!r} must be a base name")
                    (Path(tmp.name) / name).write_text(text)
                    files.append(Path(tmp.name) / name)
            self.models[key] = make_cost_model(
                chip, digest, backend, options, cache=self.cache, timeloop_arch=files
            )
        return self.models[key]

    def estimate(self, message: dict[str, Any], cancelled: threading.Event) -> dict[str, Any]:
        model = self.model(message["spec"], message.get("backend", "analytic"), message["options"])
        before = getattr(model, "calls", 0)
        costs = []
        for d in message["layers"]:
            if cancelled.is_set():  # the deadline passed: stop between layers
                raise _CancelledError
            costs.append(cost_to_dict(model.layer_cost(layer_from_dict(d))))
        return {"costs": costs, "backend_calls": getattr(model, "calls", len(costs)) - before}


@dataclass
class _Query:
    envelope: list[bytes]
    deadline: float
    cancelled: threading.Event = field(default_factory=threading.Event)


def _reply(op: Any, ok: bool, **body: Any) -> bytes:
    return json.dumps({"v": PROTOCOL_VERSION, "op": op, "ok": ok, **body}).encode()


def _error(op: Any, exc: BaseException | str) -> bytes:
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return _reply(op if isinstance(op, str) else None, False, error=text[:2000])


class _Server:
    """The ROUTER loop: parses requests, hands estimates to the pool, sends answers."""

    def __init__(
        self,
        ctx: zmq.Context[zmq.Socket[bytes]],
        router: zmq.Socket[bytes],
        *,
        cache: bool,
        workers: int,
        deadline_s: float,
        token: str | None,
    ) -> None:
        self.router = router
        self.deadline_s = deadline_s
        self.token = token
        self.max_queued = workers * _QUEUE_PER_WORKER
        self.pending: dict[int, _Query] = {}
        self.ids = itertools.count()
        self.stop = threading.Event()
        self.sent = 0
        address = f"inproc://owin-estimator-done-{id(self)}"
        self.done = ctx.socket(zmq.PULL)
        self.done.bind(address)
        self._push = ctx.socket(zmq.PUSH)
        self._push.connect(address)
        self._push_lock = threading.Lock()
        self._closed = False
        self._local = threading.local()
        self._services: list[_Service] = []
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="owin-estimator")
        self.cache = cache

    # ---- worker side ------------------------------------------------------------
    def _service(self) -> _Service:
        service: _Service | None = getattr(self._local, "service", None)
        if service is None:
            service = self._local.service = _Service(self.cache)
            with self._push_lock:
                self._services.append(service)
        return service

    def _work(self, qid: int, message: dict[str, Any], query: _Query) -> None:
        try:
            if message.get("backend", "analytic") in IN_PROCESS_BACKENDS:
                body = self._service().estimate(message, query.cancelled)
            else:  # may run for hours: in a child that the deadline can stop
                body = run_isolated(self.cache, message, query.cancelled)
            answer = _reply("estimate", True, **body)
        except (_CancelledError, CancelledError):
            return
        except ChildError as exc:
            answer = _error("estimate", str(exc))
        except Exception as exc:  # a bad query must not kill the service
            answer = _error("estimate", exc)
        with self._push_lock:
            if not self._closed:
                self._push.send_multipart([str(qid).encode(), answer])

    # ---- loop side --------------------------------------------------------------
    def _send(self, envelope: list[bytes], answer: bytes) -> None:
        self.sent += 1
        with contextlib.suppress(zmq.ZMQError):  # the peer is gone or not reading
            self.router.send_multipart([*envelope, answer], flags=zmq.NOBLOCK)

    def _request(self, frames: list[bytes]) -> bool:
        """Handle one incoming message; ``True`` when it was an accepted shutdown."""
        if len(frames) >= 3 and frames[1] == b"":  # REQ: identity, delimiter, body
            envelope, body = frames[:2], frames[2:]
        elif len(frames) >= 2:  # DEALER: identity, body
            envelope, body = frames[:1], frames[1:]
        else:  # nothing to answer to
            return False
        if len(body) != 1:
            self._send(envelope, _error(None, f"expected one frame, got {len(body)}"))
            return False
        try:
            message = parse_request(body[0])
        except BadRequestError as exc:
            self._send(envelope, _error(None, str(exc)))
            return False
        except Exception as exc:  # a checker's own bug must not stop the service either
            self._send(envelope, _error(None, exc))
            return False
        op = message["op"]
        if op == "hello":
            self._send(envelope, _reply(op, True, protocol=PROTOCOL_VERSION))
        elif op == "shutdown":
            refusal = self._refuse_shutdown(message.get("token"))
            self._send(envelope, _error(op, refusal) if refusal else _reply(op, True))
            return refusal is None
        elif len(self.pending) >= self.max_queued:
            self._send(envelope, _error(op, f"busy: {len(self.pending)} queries queued"))
        else:
            qid = next(self.ids)
            query = _Query(envelope, time.monotonic() + self.deadline_s)
            self.pending[qid] = query
            self.pool.submit(self._work, qid, message, query)
        return False

    def _refuse_shutdown(self, token: Any) -> str | None:
        if self.token is None:
            return (
                "refused: this service was started without a token; only the process "
                "that started it may stop it (SIGTERM)"
            )
        if not same_token(token, self.token):
            return "refused: shutdown needs the token the service was started with"
        return None

    def _expire(self) -> None:
        now = time.monotonic()
        for qid, query in list(self.pending.items()):
            if query.deadline <= now:
                query.cancelled.set()
                del self.pending[qid]
                self._send(
                    query.envelope,
                    _error("estimate", f"the query took longer than {self.deadline_s:g} s"),
                )

    def _timeout_ms(self) -> int:
        wait = _TICK_S
        if self.pending:
            nearest = min(q.deadline for q in self.pending.values())
            wait = min(wait, max(0.0, nearest - time.monotonic()))
        return int(wait * 1000) + 1

    def run(self, max_requests: int | None) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.done, zmq.POLLIN)
        while not self.stop.is_set() and (max_requests is None or self.sent < max_requests):
            events = dict(poller.poll(self._timeout_ms()))
            if self.done in events:
                qid_text, answer = self.done.recv_multipart()
                query = self.pending.pop(int(qid_text), None)
                if query is not None:  # else: already answered as past its deadline
                    self._send(query.envelope, answer)
            if self.router in events:
                frames = self.router.recv_multipart()
                if self._request(frames):
                    return
            self._expire()

    def close(self) -> None:
        for query in self.pending.values():
            query.cancelled.set()
        self.pool.shutdown(wait=False, cancel_futures=True)
        with self._push_lock:
            self._closed = True
            self._push.close(0)
            services = list(self._services)
        self.done.close(0)
        for service in services:
            service.close()


def serve(
    bind: str,
    *,
    cache: bool = True,
    max_requests: int | None = None,
    workers: int = DEFAULT_WORKERS,
    deadline_s: float = DEFAULT_QUERY_DEADLINE_S,
    token: str | None = None,
    keys: Path | None = None,
    ready: Callable[[], object] | None = None,
) -> None:
    """Answer queries on ``bind`` until an accepted ``shutdown``, SIGTERM or SIGINT.

    Parameters
    ----------
    bind : str
        The ZeroMQ endpoint; the caller checks it against loopback
        (:func:`owin_cosim.security.check_bind`).
    cache : bool
        Go through the persistent cost cache.
    max_requests : int, optional
        Stop after answering this many requests (tests).
    workers : int
        Queries answered at once.
    deadline_s : float
        One query's time bound: past it the answer is an error.
    token : str, optional
        The secret a ``shutdown`` request must carry; without one, ``shutdown`` is
        always refused.
    keys : Path, optional
        A key directory of ``owin-cosim keys``: CURVE encryption and authentication.
    ready : callable, optional
        Called once the socket is bound and the signal handlers are in place.
    """
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 1000)
    router.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
    auth = None
    server = None
    try:
        if keys is not None:
            from owin_cosim.security import curve_server

            auth = curve_server(ctx, router, keys)
        router.bind(bind)
        server = _Server(
            ctx, router, cache=cache, workers=workers, deadline_s=deadline_s, token=token
        )
        with _stop_on_signals(server.stop):
            if ready is not None:
                ready()
            server.run(max_requests)
    finally:
        if server is not None:
            server.close()
        router.close()
        if auth is not None:
            auth.stop()
        ctx.term()


class _stop_on_signals:  # noqa: N801 - used as a context manager, reads as a phrase
    """SIGTERM and SIGINT set ``stop`` (the loop ends within a tick); main thread only."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.saved: dict[int, Any] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.saved[sig] = signal.signal(sig, lambda *_: self.stop.set())

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
