"""A version of a cost model's own code, for cache keys: a digest of its source files and
of every module of this package they import, so an edited model never reuses old costs.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
from pathlib import Path

__all__ = ["code_sources", "code_version"]


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
