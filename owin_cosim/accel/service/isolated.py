"""Backend calls in a child process, so that a query past its deadline can be stopped.

A thread cannot be stopped, and one layer of ``loopnest`` with the largest mapping
budget runs for about an hour; so every backend but ``analytic`` (closed form, micro-
seconds per layer) costs a query's layers in a child process of a fork server
(:func:`run_isolated`), which the service stops at the deadline: SIGTERM first (the
child removes its temporary files, and ``subprocess.run`` kills a ``timeloop-mapper``
it started), SIGKILL after a grace period. The child goes through the same persistent
cost cache (SQLite, safe for several processes), so the answer is the one the service
would have computed itself, and later queries find the costs cached.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["IN_PROCESS_BACKENDS", "CancelledError", "ChildError", "run_isolated"]

#: Backends costed in the service's own threads (fast enough never to need stopping).
IN_PROCESS_BACKENDS = frozenset({"analytic"})
#: How long a child has to exit after SIGTERM before SIGKILL.
_GRACE_S = 5.0
_POLL_S = 0.1

_context_lock = threading.Lock()
_context: Any = None


class ChildError(Exception):
    """The child's query failed; the text is the error answer (``Type: message``)."""


class CancelledError(Exception):
    """The query's deadline passed while the child ran (it was stopped)."""


def _fork_context() -> Any:
    global _context
    with _context_lock:
        if _context is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["owin_cosim.accel.service.server"])
            _context = ctx
        return _context


def _exit_on_sigterm(*_: object) -> None:
    raise SystemExit(143)


def _child(conn: Connection, cache: bool, message: dict[str, Any]) -> None:
    """The child's side: cost the query, send ``("ok", answer)`` or ``("error", text)``."""
    from owin_cosim.accel.service.server import _Service

    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    service = _Service(cache)
    try:
        conn.send(("ok", service.estimate(message, threading.Event())))
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        service.close()
        conn.close()


def run_isolated(cache: bool, message: dict[str, Any], cancelled: threading.Event) -> Any:
    """The answer of ``estimate`` ``message``, computed in a child process.

    Raises
    ------
    ChildError
        The query failed in the child, or the child died (its exit code is named).
    CancelledError
        ``cancelled`` was set first; the child has been stopped.
    """
    ctx = _fork_context()
    parent, child_end = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child_end, cache, message), daemon=True)
    proc.start()
    child_end.close()
    try:
        while not parent.poll(_POLL_S):
            if cancelled.is_set():
                raise CancelledError
            if not proc.is_alive() and not parent.poll(0):
                raise ChildError(f"the backend's process died (exit code {proc.exitcode})")
        try:
            status, value = parent.recv()
        except EOFError:
            raise ChildError(f"the backend's process died (exit code {proc.exitcode})") from None
    finally:
        _stop(proc)
        parent.close()
    if status != "ok":
        raise ChildError(value)
    return value


def _stop(proc: Any) -> None:
    if proc.is_alive():
        proc.terminate()
        proc.join(_GRACE_S)
    if proc.is_alive():
        proc.kill()
    proc.join()
