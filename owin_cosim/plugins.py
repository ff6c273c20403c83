"""Registries of named components, filled by owin-cosim and by third-party packages.

Each concept keeps one :class:`Registry`: network backends
(:mod:`owin_cosim.network.registry`), cost backends (:mod:`owin_cosim.accel.registry`)
and policies (:mod:`owin_cosim.policies.registry`). A registry knows its built-in
entries as ``"module:attribute"`` strings and discovers plugins through the entry-point
group of its kind (``owin_cosim.policies``, ``owin_cosim.cost_backends``,
``owin_cosim.network_backends``). Listing names imports nothing: a broken plugin only
fails, with a :class:`~owin_cosim.errors.PluginError` that names it, when it is used.

Examples
--------
>>> reg = Registry("demo", "owin_cosim.demo", {"path": "os.path:join"})
>>> reg.names()
['path']
>>> reg.load("path")("a", "b")
'a/b'
>>> reg.load("nope")
Traceback (most recent call last):
...
owin_cosim.errors.ConfigError: unknown demo 'nope'; expected one of: path
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from owin_cosim.errors import ConfigError, PluginError

__all__ = ["Entry", "Registry"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Entry:
    """One registered name: where it lives and who provides it."""

    name: str
    #: ``"module:attribute"``.
    target: str
    #: ``"owin-cosim"`` for built-ins, else the distribution that declares the plugin.
    provider: str

    @property
    def builtin(self) -> bool:
        return self.provider == "owin-cosim"


class Registry(Generic[T]):
    """Named components of one kind: built-ins first, then entry-point plugins.

    Parameters
    ----------
    kind : str
        What the entries are, for messages (``"policy"``, ``"cost backend"``).
    group : str
        The entry-point group plugins declare themselves in.
    builtins : mapping of str to str
        Name -> ``"module:attribute"`` of the built-in entries, in documentation order.
    check : callable, optional
        Called with each loaded object; returns it typed, or raises ``TypeError`` with
        what was expected (reported as a :class:`PluginError` for plugins).
    """

    def __init__(
        self,
        kind: str,
        group: str,
        builtins: Mapping[str, str],
        check: Callable[[Any], T] | None = None,
    ) -> None:
        self.kind, self.group = kind, group
        self._builtins = dict(builtins)
        self._check = check
        self._loaded: dict[str, T] = {}

    def entries(self) -> list[Entry]:
        """Every entry: built-ins in their order, then plugins sorted by name.

        A plugin cannot replace a built-in of the same name (it is listed, not used).
        """
        out = [Entry(n, t, "owin-cosim") for n, t in self._builtins.items()]
        plugins: list[Entry] = []
        for ep in importlib.metadata.entry_points(group=self.group):
            # A distribution whose metadata lacks a name (a half-removed install) must
            # not break the listing (None would not sort against a name).
            dist = (ep.dist.name if ep.dist is not None else None) or "unknown distribution"
            plugins.append(Entry(ep.name, ep.value, dist))
        seen = set(self._builtins)
        for e in sorted(plugins, key=lambda e: (e.name, e.provider)):
            if e.name not in seen:
                out.append(e)
                seen.add(e.name)
        return out

    def names(self) -> list[str]:
        """The registered names (importing nothing)."""
        return [e.name for e in self.entries()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        # a built-in needs no scan of the installed distributions (about 5 ms each)
        return isinstance(name, str) and (name in self._builtins or name in self.names())

    def entry(self, name: str, file: str | Path | None = None, key: str = "") -> Entry:
        """The entry called ``name``.

        Raises
        ------
        ConfigError
            If there is none: names ``file`` and ``key`` (where the name was read) and
            the registered names.
        """
        if name in self._builtins:  # never replaced by a plugin: no scan needed
            return Entry(name, self._builtins[name], "owin-cosim")
        for e in self.entries():
            if e.name == name:
                return e
        raise ConfigError(
            file, key, f"unknown {self.kind} {name!r}; expected one of: {', '.join(self.names())}"
        )

    def load(self, name: str, file: str | Path | None = None, key: str = "") -> T:
        """Import and check the object registered as ``name`` (cached per process).

        Raises
        ------
        ConfigError
            For an unknown name (see :meth:`entry`).
        PluginError
            If a plugin cannot be imported or is not what this registry holds (also when
            its ``name`` attribute is not the name it is registered under: results and
            network recipes carry that name).
        """
        if name in self._loaded:
            return self._loaded[name]
        e = self.entry(name, file, key)
        try:
            obj = _import(e.target)
            checked: T = self._check(obj) if self._check is not None else obj
            own = getattr(checked, "name", name)
            if own != name:
                raise TypeError(f"its name is {own!r}; expected the registered name {name!r}")
        except Exception as exc:
            if e.builtin:
                raise
            raise PluginError(self.group, name, e.target, f"{type(exc).__name__}: {exc}") from None
        self._loaded[name] = checked
        return checked


def _import(target: str) -> Any:
    module, _, attr = target.partition(":")
    if not module or not attr:
        raise ValueError(f"expected 'module:attribute', got {target!r}")
    obj: Any = importlib.import_module(module.strip())
    for part in attr.strip().split("."):
        obj = getattr(obj, part)
    return obj
