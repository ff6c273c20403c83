"""The coordinator <-> ns-3 worker message protocol (version 1), over ZeroMQ.

Messages are JSON objects, one per ZeroMQ frame: the worker binds a ROUTER socket
(``ipc://`` locally, ``tcp://`` across containers), the coordinator connects a DEALER.
Every message carries ``"v": PROTOCOL_VERSION``; the first, ``hello``, carries the run's
token, and the worker is driven only by the peer whose ``hello`` had it. The coordinator
sends one request at a time and waits for its reply; while a long request runs, the worker sends
``{"op": "heartbeat"}`` messages, so that silence means a dead or stuck worker. The full
description, with examples, is in ``docs/protocol.md``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from owin_cosim.errors import ProtocolError

__all__ = [
    "MAX_CHUNK_BYTES",
    "MAX_DISTANCE_M",
    "MAX_FRAME_BYTES",
    "OPS",
    "PROTOCOL_VERSION",
    "ProtocolError",
    "check_chunk",
    "check_device",
    "decode",
    "encode",
    "reply",
    "request",
]

PROTOCOL_VERSION = 1

#: Requests the worker answers.
OPS = ("hello", "configure", "submit", "set_shares", "advance", "usage", "shutdown")

#: Largest chunk a worker accepts (4 GiB): ns-3 carries every byte as packets, and
#: much more would not finish in any useful time.
MAX_CHUNK_BYTES = 1 << 32
#: Largest device distance (1000 km): beyond it no radio link of either scenario exists.
MAX_DISTANCE_M = 1e6
#: Largest frame a worker reads; a bigger one drops the sender's connection.
MAX_FRAME_BYTES = 64 << 20


def _number(value: Any, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f"{what} must be a number, got {value!r:.60}")
    if not (math.isfinite(value) and low <= value <= high):
        raise ProtocolError(f"{what} must be a finite number in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def check_device(device: Any) -> None:
    """Refuse a ``configure`` device that ns-3 cannot place (NaN, negative, absurd).

    >>> check_device({"name": "a", "distance_m": float("nan"), "tx_power_dBm": 20})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    owin_cosim.errors.ProtocolError: distance_m of device 'a' must be a finite ..., got nan
    """
    if not isinstance(device, dict) or not isinstance(device.get("name"), str):
        raise ProtocolError(f"a device must be an object with a string 'name', got {device!r:.60}")
    name = device["name"]
    _number(device.get("distance_m"), f"distance_m of device {name!r}", 0.0, MAX_DISTANCE_M)
    _number(device.get("tx_power_dBm"), f"tx_power_dBm of device {name!r}", -200.0, 100.0)


def check_chunk(chunk: Any) -> None:
    """Refuse a ``submit`` chunk of an impossible size or time, before ns-3 sees it.

    >>> check_chunk({"device": "a", "chunk": 0, "nbytes": 1e15, "at_s": 0.0})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    owin_cosim.errors.ProtocolError: nbytes of chunk 0 of device 'a' must be an integer ...
    """
    if not isinstance(chunk, dict) or not isinstance(chunk.get("device"), str):
        raise ProtocolError(f"a chunk must be an object with a string 'device', got {chunk!r:.60}")
    what = f"chunk {chunk.get('chunk')!r} of device {chunk['device']!r}"
    index, nbytes = chunk.get("chunk"), chunk.get("nbytes")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 2**31:
        raise ProtocolError(f"chunk index of device {chunk['device']!r} must be an integer >= 0")
    if (
        isinstance(nbytes, bool)
        or not isinstance(nbytes, int)
        or not 0 <= nbytes <= MAX_CHUNK_BYTES
    ):
        raise ProtocolError(
            f"nbytes of {what} must be an integer in [0, {MAX_CHUNK_BYTES}], got {nbytes!r:.60}"
        )
    _number(chunk.get("at_s"), f"at_s of {what}", 0.0, 1e9)


def encode(message: dict[str, Any]) -> bytes:
    """Serialise a message (adds the version)."""
    return json.dumps({"v": PROTOCOL_VERSION, **message}, separators=(",", ":")).encode()


def decode(frame: bytes) -> dict[str, Any]:
    """Parse and check a message.

    >>> decode(encode({"op": "hello"}))["op"]
    'hello'
    """
    try:
        message = json.loads(frame)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"not a JSON message: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    if message.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(f"protocol version {message.get('v')!r}; expected {PROTOCOL_VERSION}")
    if not isinstance(message.get("op"), str):
        raise ProtocolError("a message needs a string 'op'")
    return message


def request(op: str, **fields: Any) -> dict[str, Any]:
    """A request message."""
    if op not in OPS:
        raise ProtocolError(f"unknown op {op!r}; expected one of {', '.join(OPS)}")
    return {"op": op, **fields}


def reply(op: str, *, ok: bool = True, **fields: Any) -> dict[str, Any]:
    """A reply message to ``op``."""
    return {"op": op, "ok": ok, **fields}
