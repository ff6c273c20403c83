"""Exception types of owin-cosim.

Every error a user can cause by a bad input is a :class:`ConfigError`: it names the
file, the key path inside it and what was expected, so that the CLI can print one
clear line and exit with code 2.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BackendUnavailableError",
    "ConfigError",
    "OwinError",
    "ScheduleError",
]


class OwinError(Exception):
    """Base class of every error raised on purpose by owin-cosim."""


class ConfigError(OwinError):
    """A bad input: names the file, the key path inside it and what was expected.

    Parameters
    ----------
    file : path or None
        The offending file (scenario, model, accelerator spec).
    key : str
        Dotted key path inside that file, e.g. ``devices[0].payload.bytes``; empty for
        the whole file.
    message : str
        What is wrong and what was expected.

    Examples
    --------
    >>> str(ConfigError("s.yaml", "seed", "expected an integer >= 0, got -1"))
    's.yaml: seed: expected an integer >= 0, got -1'
    """

    def __init__(self, file: str | Path | None, key: str, message: str) -> None:
        self.file = str(file) if file is not None else None
        self.key = key
        self.message = message
        where = ": ".join(p for p in (self.file, key) if p)
        super().__init__(f"{where}: {message}" if where else message)


class BackendUnavailableError(OwinError):
    """A backend was asked for (ns-3, Timeloop) but is not installed or cannot start."""


class ScheduleError(OwinError):
    """The coordinator reached an impossible state (a bug or an infeasible plan)."""
