"""The layout rules of the package (``docs/architecture.md``, ``/work/shared/STYLE.md``).

- No module of ``owin_cosim/`` over :data:`MAX_MODULE_LINES` lines.
- No function over :data:`MAX_FUNCTION_LINES` lines (counted from ``def`` to its last
  line, without the docstring; nested functions count in their parent too) unless a
  comment in it, or right above it, says why: ``# long because ...``.
- Modules that others are still splitting are listed in :data:`ALLOWED` with the reason;
  an entry that no longer breaks a rule fails :func:`test_allowlist_is_current`, so the
  list only shrinks.
- Every package's ``__init__.py`` has a docstring (what lives there, what it may import).
- Imports go one way: the accelerator side never imports the network side; the workload
  imports nothing of owin-cosim but itself and :mod:`owin_cosim.errors`; the scenario
  schema does not pull in zmq (the ns-3 runtime).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "owin_cosim"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
MARKER = "long because"

#: Module (relative to the repository) -> why it may break the size rules for now.
ALLOWED: dict[str, str] = {}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def _function_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    assert node.end_lineno is not None
    length = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        assert first.end_lineno is not None
        length -= first.end_lineno - first.lineno + 1
    return length


def _says_why(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> bool:
    """A ``# long because`` comment inside the function or in the comment block above."""
    start = min([d.lineno for d in node.decorator_list] + [node.lineno]) - 1
    assert node.end_lineno is not None
    inside = lines[start : node.end_lineno]
    above: list[str] = []
    i = start - 1
    while i >= 0 and lines[i].lstrip().startswith("#"):
        above.append(lines[i])
        i -= 1
    return any("#" in line and MARKER in line.split("#", 1)[1] for line in inside + above)


def _violations_in(text: str, name: str) -> list[str]:
    lines = text.splitlines()
    out: list[str] = []
    if len(lines) > MAX_MODULE_LINES:
        out.append(f"{name}: {len(lines)} lines (max {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(text, filename=name)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        n = _function_lines(node)
        if n > MAX_FUNCTION_LINES and not _says_why(node, lines):
            out.append(
                f"{name}:{node.lineno}: {node.name}() is {n} lines "
                f"(max {MAX_FUNCTION_LINES} without a '# {MARKER} ...' comment)"
            )
    return out


def _violations(path: Path) -> list[str]:
    return _violations_in(path.read_text(encoding="utf-8"), _rel(path))


def test_module_and_function_sizes() -> None:
    found = [v for p in _modules() if _rel(p) not in ALLOWED for v in _violations(p)]
    assert not found, "split these, or say why they stay long:\n" + "\n".join(found)


def test_allowlist_is_current() -> None:
    missing = [m for m in ALLOWED if not (PACKAGE.parent / m).is_file()]
    clean = [m for m in ALLOWED if m not in missing and not _violations(PACKAGE.parent / m)]
    assert not missing and not clean, (
        f"remove from ALLOWED: {missing + clean} (gone, or within the limits now)"
    )


def test_every_package_has_a_docstring() -> None:
    bare = [
        _rel(init)
        for init in sorted(PACKAGE.rglob("__init__.py"))
        if not ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
    ]
    assert not bare, f"say in the docstring what lives there and what it may import: {bare}"


# ---- import direction -----------------------------------------------------------------
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every owin-cosim module ``path`` imports (at any depth of its code), resolved."""
    is_package = path.name == "__init__.py"
    here = _module_name(path).split(".")
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_package else here[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                candidate = f"{module}.{alias.name}"
                as_path = PACKAGE.parent / Path(*candidate.split("."))
                is_module = as_path.is_dir() or as_path.with_suffix(".py").is_file()
                yield node.lineno, candidate if is_module else module


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _imports_of(subpackage: str) -> Iterator[tuple[str, str]]:
    """``(where, module)`` for every owin-cosim module that ``subpackage`` imports."""
    for path in sorted((PACKAGE / subpackage).rglob("*.py")):
        for line, name in _imports(path):
            if name.startswith("owin_cosim."):
                yield f"{_rel(path)}:{line}", name


def test_accel_never_imports_the_network_side() -> None:
    found = [
        f"{where}: imports {name}"
        for where, name in _imports_of("accel")
        if _within(name, ("owin_cosim.network",))
    ]
    assert not found, "\n".join(found)


def test_workload_imports_only_itself_and_errors() -> None:
    found = [
        f"{where}: imports {name}"
        for where, name in _imports_of("workload")
        if not _within(name, ("owin_cosim.workload", "owin_cosim.errors"))
    ]
    assert not found, "\n".join(found)


def test_scenario_schema_does_not_import_zmq() -> None:
    code = "import owin_cosim.scenario.schema, sys; assert 'zmq' not in sys.modules"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent
    )
    assert run.returncode == 0, run.stderr


_BODY = "    x = 1\n"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f():\n" + _BODY * 79, []),
        ("def f():\n" + _BODY * 80, ["m.py:1: f() is 81 lines"]),
        ("def f():\n    # long because: one table\n" + _BODY * 90, []),
        ("# long because: one table\ndef f():\n" + _BODY * 90, []),
        ('def f():\n    """Doc.\n\n    More.\n    """\n' + _BODY * 79, []),
        ("x = 1\n" * 501, ["m.py: 501 lines"]),
    ],
)
def test_the_size_rules_themselves(source: str, expected: list[str]) -> None:
    found = [v.split(" (max")[0] for v in _violations_in(source, "m.py")]
    assert found == expected
