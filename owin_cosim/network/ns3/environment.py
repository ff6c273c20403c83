"""Finding, preparing and importing ns-3 (the official ``ns3`` wheel, cppyy bindings).

Importing ``from ns import ns`` re-parses every module header (7-12 s, ~700 MB). A
precompiled header (PCH) of all ``ns3/*-module.h`` cuts that to about 1.3 s. It is built
once (about 13 s, 150 MB) into the cache directory, keyed by the ns3, cppyy-cling and
Python versions, and used through ``CLING_STANDARD_PCH``, which must be set before cppyy
is imported. ns-3's loader also globs the current directory for shared libraries, so the
import happens from an empty directory, through :mod:`owin_cosim.network.ns3.loader` (the
wheel's own loader skips every library under a path that contains ``test``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from owin_cosim.errors import BackendUnavailableError
from owin_cosim.network.ns3.loader import check_loadable, load_bindings
from owin_cosim.paths import cache_dir

__all__ = [
    "INSTALL_HINT",
    "NS3_VERSION",
    "ensure_pch",
    "import_ns3",
    "ns3_include_dir",
    "ns3_installed",
    "owin_header",
    "pch_path",
    "require_ns3",
]

#: The ns3 wheel version owin-cosim is written and tested against.
NS3_VERSION = "3.44.post0"

INSTALL_HINT = (
    'install it with: pip install "owin-cosim[ns3]" (the official ns3 wheel, '
    f"ns3=={NS3_VERSION}; needs g++ for its cppyy parts)"
)


def ns3_installed() -> bool:
    """Whether the ns3 wheel and cppyy are importable (without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("ns3", "cppyy"))


def require_ns3() -> None:
    """Raise :class:`BackendUnavailableError` with the install hint if ns-3 is missing."""
    if not ns3_installed():
        raise BackendUnavailableError(
            f"the ns-3 backend needs ns-3, which is not installed; {INSTALL_HINT}"
        )


def _spec_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailableError(f"{module} is not installed; {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def ns3_include_dir() -> Path:
    """The wheel's ``include`` directory (holds ``ns3/*.h``)."""
    return _spec_dir("ns3") / "include"


def owin_header() -> Path:
    """owin-cosim's C++ code for ns-3 (``ns3_scenarios/owin_ns3.h``)."""
    import ns3_scenarios

    return Path(ns3_scenarios.__file__).resolve().parent / "owin_ns3.h"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def pch_path() -> Path:
    """Where the precompiled header for this ns3 + cppyy-cling + Python lives.

    The key also holds a hash of the install's location: a PCH records the absolute
    paths of the headers it was built from, so two environments never share one.
    """
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    where = hashlib.sha256(f"{ns3_include_dir()}|{_spec_dir('cppyy_backend')}".encode())
    key = f"ns3-{_version('ns3')}-cling-{_version('cppyy-cling')}-{py}-{where.hexdigest()[:12]}"
    return cache_dir() / "ns3-pch" / f"{key}.pch"


def ensure_pch(say: Callable[[str], None] | None = None) -> Path:
    """Build the precompiled header if it is not cached yet; return its path.

    Safe when several processes race: each builds into its own temporary file and the
    first rename wins. Checks first that ns-3 can load from this install at all
    (:func:`~owin_cosim.network.ns3.loader.check_loadable`): a clear error before a worker
    starts, not cling's symbol errors inside it.
    """
    require_ns3()
    check_loadable()
    target = pch_path()
    if target.is_file() and target.stat().st_size > 0:
        return target
    if say is not None:
        say(f"building the ns-3 precompiled header once (about 15 s) into {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    backend = _spec_dir("cppyy_backend")
    headers = sorted(str(p) for p in (ns3_include_dir() / "ns3").glob("*-module.h"))
    fd, tmp = tempfile.mkstemp(suffix=".pch", dir=target.parent)
    os.close(fd)
    try:
        proc = subprocess.run(
            [
                sys.executable,
                str(backend / "etc" / "dictpch" / "makepch.py"),
                tmp,
                f"-I{ns3_include_dir()}",
                *headers,
            ],
            cwd=backend,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0 or os.path.getsize(tmp) == 0:
            raise BackendUnavailableError(
                "building the ns-3 precompiled header failed:\n"
                + (proc.stderr or proc.stdout)[-2000:]
            )
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return target


@contextlib.contextmanager
def _in_empty_directory() -> Iterator[None]:
    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="owin-ns3-import-") as empty:
        os.chdir(empty)
        try:
            yield
        finally:
            os.chdir(here)


def import_ns3() -> tuple[Any, Any, Any]:
    """Import ns-3 with the cached PCH and compile owin-cosim's C++ code.

    Returns ``(ns, cppyy, owin)``: the ns-3 namespace, cppyy, and the ``owin`` C++
    namespace of :func:`owin_header`. In the worker only (or the pool's fork server,
    :mod:`~owin_cosim.network.ns3.forkserver`); a second call returns the first's result
    (the owin code must not be defined twice in one process).
    """
    if _LOADED:
        return _LOADED[0]
    pch = ensure_pch()
    os.environ["CLING_STANDARD_PCH"] = str(pch)
    with _in_empty_directory():
        ns = load_bindings()
        import cppyy

        cppyy.cppdef(owin_header().read_text(encoding="utf-8"))
        from cppyy.gbl import owin

        owin.RegisterTypes()
    _LOADED.append((ns, cppyy, _CachedNamespace(owin)))
    return _LOADED[0]


#: What :func:`import_ns3` returned in this process (at most one entry).
_LOADED: list[tuple[Any, Any, Any]] = []


class _CachedNamespace:
    """Caches attribute lookups on a cppyy namespace.

    Looking a free function up on a cppyy namespace costs about 0.2 ms, calling it well
    under a microsecond; the worker calls a few of them once per slice or chunk.
    """

    def __init__(self, namespace: Any) -> None:
        self._namespace = namespace

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._namespace, name)
        setattr(self, name, value)
        return value
