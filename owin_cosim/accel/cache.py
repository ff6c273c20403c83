"""A persistent cache of per-layer costs, shared by processes (SQLite, WAL mode).

The key is a SHA-256 of (layer problem, core spec, backend name, backend version,
options): the layer's name and group are not part of it, so equal shapes share an
entry. A backend's version names its own code (:func:`code_version`), so a change to a
cost model misses the cache instead of returning the old model's costs.

Several processes may read and write at once (sweeps, estimator services): SQLite
serialises the writers, ``INSERT OR IGNORE`` makes a race harmless (the values are the
same), and a busy timeout bounds every wait.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import os
import sqlite3
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from owin_cosim.accel.cost_model import CostModel, LayerCost, LevelAccesses
from owin_cosim.paths import cache_dir
from owin_cosim.workload.graph import Layer

__all__ = [
    "CachedCostModel",
    "CostCache",
    "code_sources",
    "code_version",
    "cost_key",
    "default_cache_path",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS costs (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def default_cache_path() -> Path:
    """``$OWIN_COSIM_COST_CACHE``, else ``<owin-cosim cache dir>/costs.sqlite``."""
    explicit = os.environ.get("OWIN_COSIM_COST_CACHE")
    return Path(explicit) if explicit else cache_dir() / "costs.sqlite"


def _read_source(path: Path) -> bytes:
    return path.read_bytes()


def _module_file(name: str) -> Path | None:
    """The source file of module ``name``; ``None`` if it is not a module (a class...)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):  # ``pkg.mod.Name``: the parent is not a package
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _imported(tree: ast.Module, name: str, is_package: bool) -> set[str]:
    """Absolute names of what the module's import statements (at any depth) import."""
    package = name if is_package else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)  # submodules
    return out


def code_sources(*modules: str) -> dict[str, bytes]:
    """The source of ``modules`` and of every module of their package they import.

    Starting from ``modules`` (dotted names), every module of the same top-level package
    named by an import statement (at any depth, so imports inside functions count) is
    followed. Returns module name -> source bytes.
    """
    root = modules[0].partition(".")[0] if modules else ""
    todo = list(modules)
    files: dict[str, bytes] = {}
    while todo:
        name = todo.pop()
        if name in files or name.partition(".")[0] != root:
            continue
        path = _module_file(name)
        if path is None:
            continue
        files[name] = source = _read_source(path)
        tree = ast.parse(source, filename=str(path))
        todo.extend(_imported(tree, name, path.name == "__init__.py"))
    return files


@functools.cache
def code_version(*modules: str) -> str:
    """A digest (16 hex digits) of the code of ``modules`` and of what they use of ours.

    The SHA-256 of :func:`code_sources`. A cost backend puts it into its cache version:
    editing the model, or anything of this package it imports, changes the keys, with
    no version bump to forget. Computed once per process for each set of modules.

    Examples
    --------
    >>> a = code_version("owin_cosim.accel.analytic")
    >>> len(a), a == code_version("owin_cosim.accel.analytic")
    (16, True)
    """
    digest = hashlib.sha256()
    for name, source in sorted(code_sources(*modules).items()):
        digest.update(f"{name}\0{len(source)}\0".encode())
        digest.update(source)
    return digest.hexdigest()[:16]


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


class CostCache:
    """The SQLite store. Open one per process (connections are not shared)."""

    def __init__(self, path: str | Path | None = None, *, timeout_s: float = 30.0) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def get(self, key: str) -> LayerCost | None:
        row = self._db.execute("SELECT value FROM costs WHERE key = ?", (key,)).fetchone()
        return None if row is None else _decode(row[0])

    def put(self, key: str, backend: str, cost: LayerCost) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO costs VALUES (?, ?, ?, ?)",
            (key, backend, _encode(cost), time.time()),
        )

    def info(self) -> dict[str, Any]:
        """Entries (total and per backend), size on disk, location."""
        rows = self._db.execute("SELECT backend, COUNT(*) FROM costs GROUP BY backend").fetchall()
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*"))
        return {
            "path": str(self.path),
            "entries": sum(n for _, n in rows),
            "by_backend": dict(rows),
            "bytes": size,
        }

    def clear(self) -> int:
        """Remove every entry; returns how many there were."""
        n = int(self._db.execute("SELECT COUNT(*) FROM costs").fetchone()[0])
        self._db.execute("DELETE FROM costs")
        self._db.execute("VACUUM")
        return n

    def close(self) -> None:
        self._db.close()


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
