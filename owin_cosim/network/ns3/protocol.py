"""The coordinator <-> ns-3 worker message protocol (version 1), over ZeroMQ.

Messages are JSON objects, one per ZeroMQ frame, on a PAIR socket: the worker binds
(``ipc://`` locally, ``tcp://`` across containers), the coordinator connects. Every
message carries ``"v": PROTOCOL_VERSION``. The coordinator sends one request at a time
and waits for its reply; while a long request runs, the worker sends
``{"op": "heartbeat"}`` messages, so that silence means a dead or stuck worker. The full
description, with examples, is in ``docs/protocol.md``.
"""

from __future__ import annotations

import json
from typing import Any

from owin_cosim.errors import ProtocolError

__all__ = ["OPS", "PROTOCOL_VERSION", "ProtocolError", "decode", "encode", "reply", "request"]

PROTOCOL_VERSION = 1

#: Requests the worker answers.
OPS = ("hello", "configure", "submit", "set_shares", "advance", "usage", "shutdown")


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
