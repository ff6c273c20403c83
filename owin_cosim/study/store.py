"""The sweep directory: what is done, what is left, written so that a kill loses nothing.

``DIR`` holds the marker :data:`SWEEP_MARKER` (owin-cosim wrote it), ``sweep.yaml`` (the
sweep file's bytes), ``sweep.resolved.json``, ``runs/<run_id>/`` (one results directory
per run, see :mod:`owin_cosim.study.runner`) and the tables. A run is done when its
directory holds ``summary.json`` (written last, and the directory swapped in whole);
failed when it holds ``error.json``. Resume is the normal path: every sweep asks the
store which runs are done and runs only the others.

``DIR`` follows the rules of ``run --out`` (:mod:`owin_cosim.results.safety`): it may
only be absent, an empty directory or a sweep directory owin-cosim wrote; anything
else is refused before any work. One sweep at a time writes a ``DIR`` (an advisory
``flock`` on the marker, released by the kernel when the process dies).
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from owin_cosim import __version__
from owin_cosim.errors import ConfigError
from owin_cosim.results.safety import recover
from owin_cosim.study.runner import ERROR_FILE, RUN_FILE

__all__ = ["SWEEP_MARKER", "SweepStore", "atomic_write"]

#: The marker file of a sweep directory.
SWEEP_MARKER = ".owin-cosim-sweep"
_MARKER_DOC = {"kind": "owin-cosim-sweep", "format": 1, "owin_cosim": __version__}
Status = Literal["ok", "failed"]


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all (a temporary sibling, fsync, ``os.replace``)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _is_sweep_dir(d: Path) -> bool:
    try:
        if not stat.S_ISREG(os.lstat(d / SWEEP_MARKER).st_mode):
            return False
        doc = json.loads((d / SWEEP_MARKER).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("kind") == _MARKER_DOC["kind"]


def _check_out(out: Path, resume: bool) -> None:
    """``--out`` may be written (absent, empty, or a sweep directory we wrote)."""
    if os.path.islink(out):
        raise ConfigError(None, "--out", f"{out} is a symbolic link; expected a directory")
    if not os.path.lexists(out):
        if resume:
            raise ConfigError(None, "--out", f"{out} does not exist: nothing to resume")
        return
    if not out.is_dir():
        raise ConfigError(None, "--out", f"{out} is not a directory")
    if _is_sweep_dir(out):
        return
    if resume:
        raise ConfigError(None, "--out", f"{out} is not a sweep directory: nothing to resume")
    if any(out.iterdir()):
        raise ConfigError(
            None,
            "--out",
            f"{out} is a directory owin-cosim did not write (no {SWEEP_MARKER} inside, and "
            "not empty); choose another --out, or remove it yourself",
        )


class SweepStore:
    """An open sweep directory (see the module docstring); use :meth:`open`."""

    def __init__(self, out: Path, lock_fd: int) -> None:
        self.out, self.runs = out, out / "runs"
        self._lock_fd = lock_fd

    @classmethod
    @contextmanager
    def open(cls, out: str | Path, resume: bool = False) -> Iterator[SweepStore]:
        """Check, create and lock ``out``; leftovers of killed writers are cleaned.

        Raises
        ------
        ConfigError
            (``--out``) if ``out`` may not be written, or another sweep is writing it.
        """
        out = Path(out)
        _check_out(out, resume)
        try:
            (out / "runs").mkdir(parents=True, exist_ok=True)
            if not _is_sweep_dir(out):
                atomic_write(out / SWEEP_MARKER, json.dumps(_MARKER_DOC).encode() + b"\n")
            fd = os.open(out / SWEEP_MARKER, os.O_RDONLY)
        except OSError as exc:
            raise ConfigError(None, "--out", f"{out}: cannot write ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConfigError(
                None, "--out", f"{out}: another owin-cosim sweep is writing it; wait for it"
            ) from None
        store = cls(out, fd)
        try:
            store.recover()
            yield store
        finally:
            os.close(fd)  # releases the lock

    def recover(self) -> None:
        """Remove the hidden leftovers of killed runs (see :func:`safety.recover`)."""
        targets = {e.split(".", 2)[1] for e in os.listdir(self.runs) if e.startswith(".")}
        for run_id in sorted(t for t in targets if t):
            recover(self.runs / run_id)

    def status(self, run_id: str) -> Status | None:
        """``"ok"`` (done), ``"failed"`` (recorded an error) or ``None`` (not run)."""
        d = self.runs / run_id
        if (d / "summary.json").is_file():
            return "ok"
        if (d / ERROR_FILE).is_file():
            return "failed"
        return None

    def record(self, run_id: str) -> dict[str, Any]:
        """What the table needs of a finished run: summary (or error) and run record."""
        d = self.runs / run_id
        out: dict[str, Any] = {"status": self.status(run_id)}
        for name, key in (("summary.json", "summary"), (ERROR_FILE, "error"), (RUN_FILE, "run")):
            try:
                out[key] = json.loads((d / name).read_text("utf-8"))
            except FileNotFoundError:
                out[key] = None
        return out

    def write(self, name: str, data: bytes) -> None:
        """Write ``DIR/name`` atomically."""
        atomic_write(self.out / name, data)
