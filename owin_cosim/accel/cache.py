"""A persistent cache of per-layer costs, shared by processes (SQLite, WAL mode).

The key is a SHA-256 of (layer problem, core spec, backend name, backend version,
options): the layer's name and group are not part of it, so equal shapes share an
entry. A backend's version names its own code
(:func:`~owin_cosim.accel.code_version.code_version`), so a change to a cost model misses
the cache instead of returning the old model's costs.

Several processes may read and write at once (sweeps, estimator services): SQLite
serialises the writers, ``INSERT OR IGNORE`` makes a race harmless (the values are the
same), and a busy timeout bounds every wait.

The cache never returns a cost it cannot vouch for. Each row carries a SHA-256 over its
key and value, checked on every read: a row that fails (edited, flipped bytes, not
JSON, cut short) is logged, deleted and recomputed. A database file SQLite calls
corrupt (or one that cannot be read) is moved aside (``<name>.corrupt-<time>-<pid>``)
and rebuilt; a path that cannot hold a database (a directory, a device, a read-only
file system) turns the cache off with one warning, and costs are computed as if there
were none. Warnings go through :mod:`logging` (logger ``owin_cosim.accel.cache``).
The checksum guards against accidents, not against someone who rewrites both columns.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from owin_cosim.accel.cost_model import CostModel, LayerCost, LevelAccesses
from owin_cosim.errors import ConfigError
from owin_cosim.paths import cache_dir
from owin_cosim.workload.graph import Layer

__all__ = [
    "SCHEMA_VERSION",
    "CachedCostModel",
    "CostCache",
    "cost_key",
    "default_cache_path",
    "open_existing",
]

log = logging.getLogger(__name__)

#: The row format (``PRAGMA user_version``); an older database is rebuilt on open.
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS costs (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    value TEXT NOT NULL,
    checksum TEXT NOT NULL,
    created REAL NOT NULL
)
"""
# SQLite's primary result codes for "this file is damaged" (not "busy", "read-only"...).
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26

_T = TypeVar("_T")


def default_cache_path() -> Path:
    """``$OWIN_COSIM_COST_CACHE``, else ``<owin-cosim cache dir>/costs.sqlite``."""
    explicit = os.environ.get("OWIN_COSIM_COST_CACHE")
    return Path(explicit) if explicit else cache_dir() / "costs.sqlite"


def cost_key(
    layer: Layer,
    core_digest: str,
    backend: str,
    version: str,
    options: dict[str, Any] | None = None,
) -> str:
    """The cache key of one layer's cost.

    >>> from owin_cosim.workload.graph import matmul
    >>> a = cost_key(matmul("a", rows=1, in_features=8, out_features=8), "c", "analytic", "1")
    >>> b = cost_key(matmul("b", rows=1, in_features=8, out_features=8), "c", "analytic", "1")
    >>> a == b
    True
    """
    problem = {
        "op": str(layer.op),
        **layer.problem_instance(),
        "operands": layer.operands,
        "weights_from_activation": layer.weights_from_activation,
    }
    blob = json.dumps(
        {
            "problem": problem,
            "core": core_digest,
            "backend": backend,
            "version": version,
            "options": options or {},
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _encode(cost: LayerCost) -> str:
    return json.dumps(asdict(cost), sort_keys=True)


def _decode(text: str) -> LayerCost:
    data = json.loads(text)
    data["levels"] = {k: LevelAccesses(**v) for k, v in data["levels"].items()}
    return LayerCost(**data)


def _checksum(key: str, value: str) -> str:
    """What a row's ``checksum`` column holds: SHA-256 of key, NUL, value."""
    return hashlib.sha256(f"{key}\0{value}".encode()).hexdigest()


def _verified(key: str, value: object, checksum: object) -> LayerCost | str:
    """The row's cost, or why it cannot be trusted."""
    if not isinstance(value, str) or not isinstance(checksum, str):
        return "a column is not text"
    if _checksum(key, value) != checksum:
        return "checksum mismatch"
    try:
        return _decode(value)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return f"unreadable value ({type(exc).__name__})"


def _is_corrupt(exc: sqlite3.Error) -> bool:
    """Whether SQLite says the file itself is damaged (rather than busy or read-only)."""
    return exc.sqlite_errorcode & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


def _readable_and_writable(path: Path) -> bool:
    """Whether this process can open ``path`` for reading and writing: tried, not asked
    of ``os.access``, which answers for the real user and not the effective rights."""
    try:
        with path.open("r+b"):
            return True
    except PermissionError:
        return False


class _UnusableError(Exception):
    """The path cannot hold the cache: run without one."""


class _DamagedError(Exception):
    """The file at the path is not a usable database: move it aside and rebuild."""


class CostCache:
    """The SQLite store. Open one per process (connections are not shared).

    Never raises for a bad file or path: a damaged database is moved aside and rebuilt,
    an unusable path turns the cache off (:attr:`disabled` says why), each with one
    warning through :mod:`logging`.

    Parameters
    ----------
    path : path, optional
        The database file; default :func:`default_cache_path`.
    timeout_s : float
        The longest wait for another process's write lock.
    """

    def __init__(self, path: str | Path | None = None, *, timeout_s: float = 30.0) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.timeout_s = timeout_s
        self.disabled: str | None = None
        self.moved_aside: list[Path] = []
        self._db: sqlite3.Connection | None = None
        self._inode: tuple[int, int] | None = None
        self._rebuilt = False
        self._open()

    # ---- opening, moving aside, turning off ----------------------------------------------
    def _open(self) -> None:
        try:
            self._db = self._connect()
        except _DamagedError as exc:
            self._rebuild(str(exc))
        except _UnusableError as exc:
            self._disable(str(exc))
        except sqlite3.Error as exc:
            self._failed(exc)

    def _failed(self, exc: sqlite3.Error) -> None:
        if _is_corrupt(exc):
            self._rebuild(f"not a sound database ({exc})")
        else:
            self._disable(str(exc))

    def _connect(self) -> sqlite3.Connection:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        except OSError as exc:  # e.g. a component of the path is a regular file
            raise _UnusableError(exc.strerror or str(exc)) from None
        if st is not None and not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise _UnusableError(f"the path is {kind}")
        if st is not None and not _readable_and_writable(self.path):
            raise _DamagedError("the file cannot be read and written")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _UnusableError(exc.strerror or str(exc)) from None
        db = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        try:
            self._check_version(db)  # before WAL mode rewrites a newer file's header
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._migrate(db)
        except BaseException:
            db.close()
            raise
        st = os.stat(self.path)
        self._inode = (st.st_dev, st.st_ino)
        return db

    @staticmethod
    def _check_version(db: sqlite3.Connection) -> int:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise _UnusableError(f"written by a newer owin-cosim (format {version})")
        return version

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Bring the table to :data:`SCHEMA_VERSION` (old rows have no checksum: dropped)."""
        if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        db.execute("BEGIN IMMEDIATE")  # one process migrates; the others then see it done
        try:
            version = self._check_version(db)
            if version < SCHEMA_VERSION:
                old = db.execute(
                    "SELECT COUNT(*) FROM sqlite_master WHERE name = 'costs'"
                ).fetchone()[0]
                if old:
                    log.warning(
                        "cost cache %s: old format %d without checksums: rebuilt empty",
                        self.path,
                        version,
                    )
                db.execute("DROP TABLE IF EXISTS costs")
                db.execute(_SCHEMA)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _rebuild(self, why: str) -> None:
        """Move the damaged file (and its WAL) aside and start an empty cache, once."""
        self._close_db()
        if self._rebuilt:
            self._disable(f"{why}, again after a rebuild")
            return
        self._rebuilt = True
        try:
            st = os.stat(self.path)
            # Another process may have rebuilt it already: then leave its fresh file be.
            if self._inode is None or self._inode == (st.st_dev, st.st_ino):
                self._move_aside()
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._disable(f"{why}; cannot move it aside ({exc.strerror or exc})")
            return
        moved = f"moved aside to {self.moved_aside[0].name}" if self.moved_aside else ""
        log.warning("cost cache %s: %s; %s, rebuilt empty", self.path, why, moved or "gone")
        self._inode = None
        try:
            self._db = self._connect()
        except (_UnusableError, _DamagedError, sqlite3.Error) as exc:
            self._disable(f"cannot rebuild it ({exc})")

    def _move_aside(self) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{os.getpid()}")
        os.rename(self.path, target)
        self.moved_aside.insert(0, target)
        for suffix in ("-wal", "-shm"):  # SQLite finds these by name: keep them together
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                os.rename(side, target.with_name(target.name + suffix))

    def _disable(self, why: str) -> None:
        self._close_db()
        if self.disabled is None:
            log.warning("cost cache %s: %s; running without the cost cache", self.path, why)
        self.disabled = why

    def _close_db(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    def _run(self, op: Callable[[sqlite3.Connection], _T], default: _T) -> _T:
        """``op(db)``; on damage rebuild and try once more, else turn off: ``default``."""
        for _ in range(2):
            if self._db is None:
                return default
            try:
                return op(self._db)
            except sqlite3.Error as exc:
                self._failed(exc)
        return default

    # ---- the store -----------------------------------------------------------------------
    def get(self, key: str) -> LayerCost | None:
        """The cost stored under ``key``; ``None`` if absent or not to be trusted."""
        sql = "SELECT value, checksum FROM costs WHERE key = ?"
        row = self._run(lambda db: db.execute(sql, (key,)).fetchone(), None)
        if row is None:
            return None
        cost = _verified(key, row[0], row[1])
        if isinstance(cost, LayerCost):
            return cost
        log.warning("cost cache %s: entry %s… %s: recomputed", self.path, key[:12], cost)
        self._run(lambda db: db.execute("DELETE FROM costs WHERE key = ?", (key,)), None)
        return None

    def put(self, key: str, backend: str, cost: LayerCost) -> None:
        """Store ``cost`` under ``key`` (a no-op when the cache is off)."""
        value = _encode(cost)
        row = (key, backend, value, _checksum(key, value), time.time())
        sql = "INSERT OR IGNORE INTO costs VALUES (?, ?, ?, ?, ?)"
        self._run(lambda db: db.execute(sql, row), None)

    def info(self) -> dict[str, Any]:
        """Entries (total and per backend), size on disk, location, and why it is off."""
        sql = "SELECT backend, COUNT(*) FROM costs GROUP BY backend"
        no_rows: list[tuple[str, int]] = []
        rows = self._run(lambda db: db.execute(sql).fetchall(), no_rows)
        files = [self.path.with_name(self.path.name + s) for s in ("", "-wal", "-shm")]
        return {
            "path": str(self.path),
            "entries": sum(n for _, n in rows),
            "by_backend": dict(rows),
            "bytes": sum(p.stat().st_size for p in files if p.is_file()),
            "disabled": self.disabled,
            "moved_aside": [str(p) for p in self.moved_aside],
        }

    def clear(self) -> int:
        """Remove every entry; returns how many there were (0 when the cache is off)."""

        def clear(db: sqlite3.Connection) -> int:
            n = int(db.execute("SELECT COUNT(*) FROM costs").fetchone()[0])
            db.execute("DELETE FROM costs")
            db.execute("VACUUM")
            return n

        return self._run(clear, 0)

    def close(self) -> None:
        self._close_db()


def open_existing(path: str | Path | None = None) -> CostCache | None:
    """The cache at ``path`` for inspection (``cache info|clear``); ``None`` if absent.

    Raises
    ------
    ConfigError
        When the path cannot hold a cache (a directory, a device, a newer format).
    """
    path = Path(path) if path is not None else default_cache_path()
    if not os.path.lexists(path):
        return None
    cache = CostCache(path)
    if cache.disabled is not None:
        raise ConfigError(path, "", f"cannot use the cost cache: {cache.disabled}")
    return cache


class CachedCostModel:
    """A :class:`~owin_cosim.accel.cost_model.CostModel` in front of a cache.

    ``calls`` counts the calls that reached the backend (misses).
    """

    def __init__(
        self,
        inner: CostModel,
        cache: CostCache,
        core_digest: str,
        version: str,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.inner = inner
        self.cache = cache
        self.name = inner.name
        self.core_digest = core_digest
        self.version = version
        self.options = options or {}
        self.calls = 0
        self.hits = 0

    def layer_cost(self, layer: Layer) -> LayerCost:
        key = cost_key(layer, self.core_digest, self.name, self.version, self.options)
        hit = self.cache.get(key)
        if hit is not None:
            self.hits += 1
            return hit
        self.calls += 1
        cost = self.inner.layer_cost(layer)
        self.cache.put(key, self.name, cost)
        return cost
