"""Reading YAML input files with bounds: every hostile file is a clear ConfigError.

Scenario, model and accelerator spec files are read here (plan files, JSON, use
:func:`read_text`). Before anything is built
from a file, this module checks that

- the path is a regular file (a FIFO or a device would block or never end) of at most
  :data:`MAX_FILE_BYTES` bytes, encoded in UTF-8 (binary files are refused by name);
- the YAML nests at most :data:`MAX_DEPTH` levels (counted on the parser's event
  stream, which is not recursive, so 50,000 levels cost no stack);
- the document, with every alias expanded, has at most :data:`MAX_NODES` nodes (an
  alias bomb of 9^9 expansions is refused in linear time, before pydantic walks it).

The limits are far beyond any real input (see ``docs/robustness.md``).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> (d / "ok.yaml").write_text("a: {b: [1, 2]}\\n")
15
>>> read_yaml(d / "ok.yaml")
{'a': {'b': [1, 2]}}
>>> (d / "deep.yaml").write_text("[" * 100 + "]" * 100)
200
>>> read_yaml(d / "deep.yaml")
Traceback (most recent call last):
...
owin_cosim.errors.ConfigError: ...deep.yaml: the YAML nests deeper than 64 levels (at line 1); ...
"""

from __future__ import annotations

import os
import reprlib
import stat
from pathlib import Path
from typing import Any

import yaml

from owin_cosim.errors import ConfigError

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_NODES", "clip", "read_text", "read_yaml"]

#: Deepest nesting of mappings and sequences in an input file.
MAX_DEPTH = 64
#: Most nodes a document may hold with every alias expanded.
MAX_NODES = 1_000_000
#: Largest input file read (a scenario is a few KiB; a big model file a few MiB).
MAX_FILE_BYTES = 16 * 1024 * 1024


def clip(value: Any, limit: int = 200) -> str:
    """``repr(value)`` cut to about ``limit`` characters (inputs in messages stay short).

    The repr of a container is built only up to the limit's worth of items, so an
    expanded alias bomb is never rendered whole.

    >>> len(clip("x" * 1000)) <= 203, len(clip([[list(range(99))] * 99] * 99)) <= 203
    (True, True)
    >>> clip([1, 2])
    '[1, 2]'
    """
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxtuple = 3, 12, 12, 12
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 160, 160, 60


# libyaml's parser where PyYAML was built with it (the wheels are): the same documents
# and constructors, several times faster (a sweep reads a chip spec per run)
_SafeBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeBase):  # type: ignore[valid-type,misc]
    """A safe loader that rejects duplicate keys instead of keeping the last."""


def _mapping_no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
        except TypeError:  # an unhashable key (a list or mapping as a key)
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            ) from None
        if duplicate:
            line = key_node.start_mark.line + 1
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {clip(key, 60)} (line {line})", key_node.start_mark
            )
        seen[key] = loader.construct_object(value_node, deep=True)
    return seen


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_no_duplicates
)


def read_text(p: Path, what: str) -> str:
    """The UTF-8 text of ``p``: a regular file of at most :data:`MAX_FILE_BYTES` bytes
    (read without blocking), else a :class:`ConfigError` naming it."""
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise ConfigError(p, "", "file not found") from None
    except OSError as exc:
        raise ConfigError(p, "", f"cannot read the {what}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise ConfigError(p, "", f"cannot read the {what}: {kind}; expected a regular file")
    if st.st_size > MAX_FILE_BYTES:
        raise ConfigError(
            p, "", f"the {what} has {st.st_size} bytes; expected at most {MAX_FILE_BYTES}"
        )
    try:
        # O_NONBLOCK: a file swapped for a FIFO after the stat above still cannot block.
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(p, "", f"cannot read the {what}: {exc.strerror or exc}") from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(p, "", f"the {what} is UTF-16 text; expected UTF-8")
    if b"\0" in raw:
        raise ConfigError(p, "", f"the {what} is a binary file (NUL bytes); expected UTF-8 text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            p, "", f"the {what} is not UTF-8 text (byte {exc.start}); expected UTF-8"
        ) from None


def _check_depth(text: str, p: Path) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=_UniqueKeyLoader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else 0
                raise ConfigError(
                    p,
                    "",
                    f"the YAML nests deeper than {MAX_DEPTH} levels (at line {line}); "
                    f"expected at most {MAX_DEPTH}",
                )
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def _expanded(node: yaml.Node, memo: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """(nodes, depth) of ``node`` with aliases expanded; memoised, so linear in the file."""
    got = memo.get(id(node))
    if got is not None:
        return got
    memo[id(node)] = (MAX_NODES + 1, MAX_DEPTH + 1)  # a recursive alias counts as too big
    count, depth = 1, 0
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    for child in children:
        c, d = _expanded(child, memo)
        count, depth = min(count + c, MAX_NODES + 1), max(depth, d)
    result = (count, depth + (1 if children or not isinstance(node, yaml.ScalarNode) else 0))
    memo[id(node)] = result
    return result


def read_yaml(path: str | Path, what: str = "file") -> Any:
    """The YAML document of ``path`` (any type), within the bounds of this module.

    Raises
    ------
    ConfigError
        Not a regular file, too large, not UTF-8, bad YAML, too deep, or too many nodes
        once aliases are expanded.
    """
    p = Path(path)
    text = read_text(p, what)
    try:
        _check_depth(text, p)
        loader = _UniqueKeyLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            count, depth = _expanded(node, {})
            if depth > MAX_DEPTH:
                raise ConfigError(
                    p, "", f"the YAML nests deeper than {MAX_DEPTH} levels through aliases"
                )
            if count > MAX_NODES:
                raise ConfigError(
                    p,
                    "",
                    f"the YAML expands to more than {MAX_NODES} nodes (aliases included); "
                    f"expected at most {MAX_NODES}",
                )
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(p, "", f"invalid YAML{where}: {str(problem)[:300]}") from None
