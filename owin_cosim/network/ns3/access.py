"""Who may drive an ns-3 worker, and what is left on disk when either side dies.

- The run's **token**: a random secret the coordinator creates for a worker it starts
  (given in the worker's environment, never on its command line) or reads for a
  standalone one (``OWIN_COSIM_NS3_TOKEN`` or a file named by
  ``OWIN_COSIM_NS3_TOKEN_FILE``; the worker also takes ``--token-file``). The worker
  answers only the peer whose ``hello`` carried it.
- **Run directories** ``$TMPDIR/owin-ns3-<coordinator pid>-*`` (mode 0700): the worker's
  socket and stderr log. The coordinator removes its own; a worker whose coordinator
  died removes it; any start reaps those of coordinators that are gone.
- The **endpoint probe**: a plain connect, to tell "nothing listens" from "something
  listens but is not a worker" when a ``hello`` goes unanswered.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import socket
import tempfile
from pathlib import Path

from owin_cosim.security import same_token  # re-exported: the worker checks hellos with it

__all__ = [
    "TOKEN_ENV",
    "TOKEN_FILE_ENV",
    "make_run_dir",
    "new_token",
    "pid_alive",
    "probe",
    "read_token",
    "reap_stale_run_dirs",
    "require_token",
    "run_dir_owner",
    "same_token",
]

TOKEN_ENV = "OWIN_COSIM_NS3_TOKEN"
TOKEN_FILE_ENV = "OWIN_COSIM_NS3_TOKEN_FILE"
_RUN_DIR = re.compile(r"^owin-ns3-(\d+)-")


def new_token() -> str:
    """A fresh random token (256 bits, hex)."""
    return secrets.token_hex(32)


def read_token(token_file: str | os.PathLike[str] | None = None) -> str | None:
    """The token from ``token_file``, else ``$OWIN_COSIM_NS3_TOKEN_FILE``, else
    ``$OWIN_COSIM_NS3_TOKEN``; ``None`` if none is set.

    Raises
    ------
    ValueError
        If the token file cannot be read or is empty.
    """
    path = token_file or os.environ.get(TOKEN_FILE_ENV)
    if path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"cannot read the ns-3 worker token file {str(path)!r}: {exc}"
            ) from None
        if not token:
            raise ValueError(f"the ns-3 worker token file {str(path)!r} is empty")
        return token
    return os.environ.get(TOKEN_ENV) or None


def require_token(token_file: str | os.PathLike[str] | None = None) -> str:
    """:func:`read_token` for a standalone worker, which must have one.

    Raises
    ------
    ConfigError
        If no token is set, or its file cannot be read.
    """
    from owin_cosim.errors import ConfigError

    try:
        token = read_token(token_file)
    except ValueError as exc:
        path = Path(token_file) if token_file else None
        raise ConfigError(path, "--token-file", str(exc)) from None
    if token is None:
        raise ConfigError(
            None,
            "--token-file",
            f"no token: give --token-file or set {TOKEN_ENV} (the coordinator needs the same)",
        )
    return token


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_dir_owner(path: Path) -> int | None:
    """The coordinator pid in a run directory's name.

    >>> run_dir_owner(Path("/tmp/owin-ns3-4242-abcd")), run_dir_owner(Path("/tmp/x"))
    (4242, None)
    """
    match = _RUN_DIR.match(path.name)
    return int(match.group(1)) if match else None


def make_run_dir() -> Path:
    """A private (0700) run directory named after this process; stale ones reaped first."""
    reap_stale_run_dirs()
    return Path(tempfile.mkdtemp(prefix=f"owin-ns3-{os.getpid()}-"))


def reap_stale_run_dirs(parent: Path | None = None) -> list[Path]:
    """Remove this user's run directories whose coordinator is gone; return them."""
    reaped = []
    base = Path(parent or tempfile.gettempdir())
    with contextlib.suppress(OSError):
        for entry in base.iterdir():
            pid = run_dir_owner(entry)
            if pid is None or pid_alive(pid):
                continue
            with contextlib.suppress(OSError):
                if (
                    entry.is_dir()
                    and not entry.is_symlink()
                    and entry.lstat().st_uid == os.getuid()
                ):
                    shutil.rmtree(entry, ignore_errors=True)
                    reaped.append(entry)
    return reaped


def probe(endpoint: str, timeout_s: float) -> str | None:
    """Why nothing can connect to ``endpoint``, or ``None`` if something accepts.

    Only ``tcp://`` and ``ipc://`` endpoints are probed (others return ``None``).

    >>> probe("ipc:///nonexistent-dir/worker.sock", 1.0)
    'nothing listens at ipc:///nonexistent-dir/worker.sock (no such socket file)'
    """
    scheme, _, rest = endpoint.partition("://")
    try:
        if scheme == "tcp":
            host, _, port = rest.rpartition(":")
            host = host.strip("[]")
            with socket.create_connection((host, int(port)), timeout=timeout_s):
                return None
        if scheme == "ipc":
            if not os.path.exists(rest):
                return f"nothing listens at {endpoint} (no such socket file)"
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout_s)
                s.connect(rest)
                return None
    except ConnectionRefusedError:
        return f"nothing listens at {endpoint} (connection refused)"
    except TimeoutError:
        return f"nothing answers at {endpoint} (no connection within {timeout_s:g} s)"
    except OSError as exc:
        reason = errno.errorcode.get(exc.errno or 0, "") or type(exc).__name__
        return f"cannot connect to {endpoint} ({reason}: {exc.strerror or exc})"
    except ValueError:
        return f"cannot connect to {endpoint} (not HOST:PORT)"
    return None
