"""Results directories that nothing destroys: marked, checked, swapped in crash-safely.

Every results directory owin-cosim writes (one run's, and a comparison's parent) holds a
small marker file, :data:`MARKER`. A target may be replaced only if it is absent, an empty
directory, or a directory owin-cosim wrote (marked; or, written before markers existed,
holding nothing but result files; or holding nothing but such directories and a
``comparison.json``). Anything else (a user's directory, a regular file, a symbolic
link, a FIFO or device node) is refused with a :class:`~owin_cosim.errors.ConfigError`
and left untouched. :func:`prepare_target` checks this, and that the parent is
writable, before any work is done; :func:`atomic_directory` checks it again at swap time.

The swap. The new result is written into a hidden sibling ``.D.tmp-PID-X`` and put in
place by an atomic exchange (Linux ``renameat2(RENAME_EXCHANGE)``): at every instant
``D`` is either the old or the new result. Where the exchange is not available the
swap is two renames, ``D -> .D.old-PID-X`` then ``.D.tmp-PID-X -> D``; the sibling names
are the journal: :func:`recover` (run at the start of every command that writes results)
removes the siblings of dead processes and, if ``D`` is missing, restores it from
``.D.old-PID-X``. A kill at any step therefore leaves the old or the new result.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from owin_cosim import __version__
from owin_cosim.errors import ConfigError

__all__ = ["MARKER", "atomic_directory", "prepare_target", "recover", "refusal"]

log = logging.getLogger(__name__)

#: The marker file inside every results directory owin-cosim writes.
MARKER = ".owin-cosim-results"
#: What the marker holds (``kind`` identifies it; ``format`` is its version).
MARKER_DOC = {"kind": "owin-cosim-results", "format": 1, "owin_cosim": __version__}
#: The files of a results directory (a directory of only these is one written before
#: markers existed).
RESULT_FILES = frozenset(
    {"summary.json", "events.csv", "plan.json", "trace.json", "gantt.png", MARKER}
)
COMPARISON_FILE = "comparison.json"

#: Tests set this to a function called after each step of the swap (to inject kills).
_STEP_HOOK: Callable[[str], None] | None = None
_SIBLING = re.compile(r"(?P<pid>[0-9]+)-[A-Za-z0-9_]+")
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2


def _step(name: str) -> None:
    if _STEP_HOOK is not None:
        _STEP_HOOK(name)


def _show(path: Path) -> str:
    """A path for a message (a very long one shortened: messages stay readable)."""
    s = str(path)
    return s if len(s) <= 160 else f"{s[:80]}...{s[-60:]} ({len(s)} characters)"


# ---- what may be replaced ---------------------------------------------------------


def _marked(d: Path) -> bool:
    try:
        if not stat.S_ISREG(os.lstat(d / MARKER).st_mode):
            return False
        with open(d / MARKER, "rb") as fh:
            doc = json.loads(fh.read(4096))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("kind") == MARKER_DOC["kind"]


def _is_result(d: Path, entries: list[str]) -> bool:
    return _marked(d) or ("summary.json" in entries and set(entries) <= RESULT_FILES)


def _ours(d: Path) -> bool:
    """Whether directory ``d`` is empty or was written by owin-cosim."""
    entries = os.listdir(d)
    if not entries or _is_result(d, entries):
        return True
    # A parent of results (a comparison, or the default ``results/NAME`` of runs).
    for e in entries:
        p = d / e
        st = os.lstat(p)
        if e == COMPARISON_FILE and stat.S_ISREG(st.st_mode):
            continue
        if not (stat.S_ISDIR(st.st_mode) and _is_result(p, os.listdir(p))):
            return False
    return True


def refusal(target: Path) -> str | None:
    """Why ``target`` may not be replaced by a results directory; ``None`` if it may."""
    if target.name in ("", ".", ".."):
        return "is not a plain directory name (it ends in '.', '..' or '/')"
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be inspected ({exc.strerror})"
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        return "is a symbolic link; owin-cosim replaces only directories it wrote"
    if stat.S_ISREG(mode):
        return "is a regular file; owin-cosim replaces only directories it wrote"
    if not stat.S_ISDIR(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else ""
        return f"is {kind or 'a device node'}; owin-cosim replaces only directories it wrote"
    try:
        if _ours(target):
            return None
    except OSError as exc:
        return f"cannot be inspected ({exc.strerror})"
    return (
        f"is a directory owin-cosim did not write (no {MARKER} inside, and not empty); "
        "choose another --out, or remove it yourself"
    )


def _check(target: Path, key: str) -> None:
    why = refusal(target)
    if why is not None:
        raise ConfigError(None, key, f"{_show(target)} {why}")


def prepare_target(target: str | Path, key: str = "out_dir") -> Path:
    """Recover ``target`` from an interrupted write, then check that a results directory
    may be written there, before any work is done.

    Creates the parent directories and probes that a hidden sibling can be made there.

    Raises
    ------
    ConfigError
        (``key`` names the flag or argument) if the target may not be replaced (see
        :func:`refusal`) or its parent cannot be created or written.
    """
    target = Path(target)
    _check(target, key)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        recover(target)
        os.rmdir(tempfile.mkdtemp(prefix=_prefix(target, "tmp"), dir=parent))
    except OSError as exc:
        raise ConfigError(
            None, key, f"{_show(target)}: cannot write in {_show(parent)} ({exc.strerror})"
        ) from None
    _check(target, key)  # recovery may have restored an earlier result
    return target


# ---- recovery ---------------------------------------------------------------------


def _prefix(target: Path, kind: str) -> str:
    return f".{target.name}.{kind}-{os.getpid()}-"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _stale(target: Path, kind: str) -> list[Path]:
    """The ``.D.<kind>-PID-X`` siblings of ``target`` left by dead processes."""
    head = f".{target.name}.{kind}-"
    out = []
    for e in os.listdir(target.parent):
        m = _SIBLING.fullmatch(e[len(head) :]) if e.startswith(head) else None
        if m is not None and not _alive(int(m["pid"])):
            out.append(target.parent / e)
    return sorted(out)


def recover(target: str | Path) -> None:
    """Finish what a killed writer of ``target`` left: restore a result moved aside
    (if ``target`` is missing) and remove the hidden siblings of dead processes."""
    target = Path(target)
    if not target.parent.is_dir():
        return
    olds = _stale(target, "old")
    if olds and not os.path.lexists(target):
        try:
            os.rename(olds[-1], target)
            log.warning("restored %s from an interrupted write (%s)", target, olds[-1].name)
        except OSError as exc:  # e.g. a concurrent recovery got there first
            log.warning("could not restore %s from %s: %s", target, olds[-1], exc)
    for p in [*_stale(target, "old"), *_stale(target, "tmp")]:
        shutil.rmtree(p, ignore_errors=True)
        if os.path.lexists(p):
            log.warning("could not remove the leftover %s", p)


# ---- the swap ---------------------------------------------------------------------


def _load_renameat2() -> Callable[..., int] | None:
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


#: ``renameat2`` of the C library, or ``None`` (tests set ``None`` to try the fallback).
_renameat2 = _load_renameat2()


def _rename2(src: Path, dst: Path, flags: int) -> bool:
    """``renameat2``; ``False`` if the system does not offer it (or these flags)."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(dst))


def _umask_mode() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return 0o777 & ~mask


def _swap_in(tmp: Path, target: Path) -> None:
    """Put the complete ``tmp`` at ``target`` (the old result, if any, removed)."""
    if not os.path.lexists(target):
        if not _rename2(tmp, target, _RENAME_NOREPLACE):
            os.rename(tmp, target)
        _step("swapped")
        return
    if _rename2(tmp, target, _RENAME_EXCHANGE):  # now tmp holds the old result
        _step("swapped")
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        old = target.parent / tmp.name.replace(".tmp-", ".old-", 1)
        os.rename(target, old)
        _step("moved-aside")
        try:
            os.rename(tmp, target)
        except BaseException:
            os.rename(old, target)  # put the old result back before giving up
            raise
        _step("swapped")
        shutil.rmtree(old, ignore_errors=True)
    _step("cleaned")


@contextmanager
def atomic_directory(target: str | Path, key: str = "out_dir") -> Iterator[Path]:
    """Yield a temporary directory that replaces ``target`` only if the block succeeds.

    ``target`` is checked first and again at swap time (see :func:`prepare_target`);
    the result is marked (:data:`MARKER`), given the mode the umask asks for, and
    swapped in crash-safely (see the module docstring).
    """
    target = prepare_target(target, key)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(target, "tmp"), dir=target.parent))
    try:
        _step("created")
        yield tmp
        _step("written")
        (tmp / MARKER).write_text(json.dumps(MARKER_DOC, sort_keys=True) + "\n", "utf-8")
        os.chmod(tmp, _umask_mode())
        _step("marked")
        _check(target, key)
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
