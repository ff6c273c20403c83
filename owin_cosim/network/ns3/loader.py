"""Loading the ns3 wheel's bindings wherever the wheel is installed.

The wheel's loader (``ns3/ns/__init__.py``) globs for shared libraries and then drops
every one whose *full path* contains ``test`` ("Remove test libraries"). Under a folder
such as ``~/tests/owin`` or ``/tmp/x-test/venv`` it keeps none, loads no library, and the
first call into ns-3 fails in cling with "symbol ... unresolved". Its search also globs
``PATH``, ``LD_LIBRARY_PATH`` and the current directory, so another ns-3 found there can
win over the wheel's own.

:func:`load_bindings` runs the wheel's own loader with only that search replaced: the
libraries are the ``libns3*`` files of the wheel's own ``lib64`` (or ``lib``), test
libraries dropped by *file name*. Everything else (headers, third-party include paths
and defines, the ``Time`` operators, ``Node`` lifetime) stays the wheel's, and
``from ns import ns`` afterwards returns the same module. The installed files are read,
never changed.
"""

from __future__ import annotations

import ast
import builtins
import importlib.util
import re
import sys
import types
from pathlib import Path
from typing import Any

from owin_cosim.errors import BackendUnavailableError

__all__ = ["check_loadable", "is_test_library", "load_bindings", "wheel_libraries"]

_VERSION = re.compile(r"^libns([0-9][^-]*)-")

#: What to do when the install cannot be used: said in every error of this module.
_MOVE_HINT = (
    "reinstall owin-cosim and its venv under a folder whose path does not contain 'test' "
    "(or install the ns3 version owin-cosim pins)"
)


def is_test_library(name: str) -> bool:
    """Whether a library file is one of ns-3's test libraries, judged by its name only.

    >>> is_test_library("libns3.44-core-test.so"), is_test_library("libns3.44-core.so")
    (True, False)
    """
    return "test" in name


def _loader_file() -> Path:
    spec = importlib.util.find_spec("ns3.ns")
    if spec is None or spec.origin is None:
        raise BackendUnavailableError("the ns3 wheel has no ns3.ns module (its loader)")
    return Path(spec.origin)


def wheel_libraries(prefix: Path) -> tuple[list[Path], str]:
    """The wheel's ns-3 module libraries under ``prefix`` and their ns-3 version.

    ``prefix`` is the wheel's ``ns3`` folder (it holds ``lib64`` or ``lib``); its path
    may contain anything, test libraries are recognised by file name.
    """
    libraries = sorted(
        p
        for variant in ("lib64", "lib")
        for p in (prefix / variant).glob("libns3*.so")
        if not is_test_library(p.name) and _VERSION.match(p.name)
    )
    if not libraries:
        raise BackendUnavailableError(
            f"no ns-3 libraries (libns3*.so) in {prefix / 'lib64'} or {prefix / 'lib'}: "
            "the ns3 wheel is incomplete; reinstall it"
        )
    versions = {m.group(1) for p in libraries if (m := _VERSION.match(p.name))}
    if len(versions) != 1:
        raise BackendUnavailableError(
            f"ns-3 libraries of several versions ({', '.join(sorted(versions))}) in "
            f"{prefix}: reinstall the ns3 wheel"
        )
    return libraries, versions.pop()


def _loader_code(path: Path) -> types.CodeType | None:
    """The wheel's loader without its final ``ns = load_modules()`` and what follows;
    ``None`` if it is not shaped as the one owin-cosim knows (ns3 3.44)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    if not {"find_ns3_from_search", "load_modules"} <= defined:
        return None
    for i, node in enumerate(tree.body):
        if (
            isinstance(node, ast.Assign)
            and [ast.dump(t) for t in node.targets] == [ast.dump(ast.Name("ns", ast.Store()))]
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "load_modules"
            and not node.value.args
        ):
            tree.body = tree.body[:i]
            return compile(tree, str(path), "exec")
    return None


def check_loadable() -> None:
    """Raise :class:`BackendUnavailableError` now if ns-3 cannot load from this install,
    saying why, instead of cling's symbol errors in the worker later.

    Cheap (no ns-3 import): the coordinator calls it before it starts a worker.
    """
    path = _loader_file()
    prefix = path.resolve().parent.parent
    wheel_libraries(prefix)
    if _loader_code(path) is None and "test" in str(prefix):
        raise BackendUnavailableError(
            f"ns-3 cannot load from {prefix}: this ns3 wheel's loader skips every library "
            "whose path contains 'test', and it is not the loader owin-cosim knows how to "
            f"work around; {_MOVE_HINT}"
        )


def load_bindings() -> Any:
    """Import ns-3 (the ``ns3`` wheel's cppyy bindings) and return its ``ns`` namespace.

    Call once per process, from a directory without shared libraries (the wheel's
    search for third-party libraries globs the current directory).
    """
    loaded = sys.modules.get("ns3.ns")
    if loaded is not None and hasattr(loaded, "ns"):  # loaded once already
        return loaded.ns
    check_loadable()
    path = _loader_file()
    code = _loader_code(path)
    if code is None:  # another wheel, under a path it copes with: its own import
        from ns import ns

        return ns
    prefix = path.resolve().parent.parent
    libraries, version = wheel_libraries(prefix)

    def find_in_wheel() -> tuple[str, list[str], str]:
        return str(prefix), [str(p) for p in libraries], version

    import ns3

    module = types.ModuleType("ns3.ns")
    module.__file__ = str(path)
    module.__path__ = [str(path.parent)]
    module.__package__ = "ns3.ns"
    module.__spec__ = importlib.util.find_spec("ns3.ns")
    sys.modules["ns3.ns"] = module
    try:
        exec(code, module.__dict__)
        module.__dict__["find_ns3_from_search"] = find_in_wheel
        ns = module.load_modules()
    except BaseException:
        del sys.modules["ns3.ns"]
        raise
    # What the wheel's own import leaves behind: ``ns3.ns.ns``, the ``ns`` module, and
    # ``ns`` as a builtin.
    module.__dict__["ns"] = ns
    ns3.ns = module
    sys.modules["ns"] = module
    builtins.__dict__["ns"] = ns
    return ns
