"""Every exception type of owin-cosim, in one hierarchy.

Every error a user can cause by a bad input is a :class:`ConfigError`: it names the
file, the key path inside it and what was expected, so that the CLI can print one
clear line and exit with code 2. Failures of a backend at run time are
:class:`BackendError` subclasses (exit 1).

::

    OwinError
    ├── ConfigError               bad input (scenario, spec, model, plan, flag)   exit 2
    │   └── PluginError           a third-party plugin cannot be loaded           exit 2
    ├── BackendUnavailableError   a backend was asked for but is not installed    exit 2
    ├── BackendError              a backend failed while running                  exit 1
    │   ├── Ns3WorkerError        the ns-3 worker died, hung or reported an error
    │   ├── TimeloopError         a Timeloop run failed or timed out
    │   └── EstimatorError        the estimator service failed or did not answer
    ├── ProtocolError             a malformed or incompatible message (also ValueError)
    ├── UnknownNameError          an unknown zoo name (also KeyError)
    └── ScheduleError             the coordinator reached an impossible state
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "ConfigError",
    "EstimatorError",
    "Ns3WorkerError",
    "OwinError",
    "PluginError",
    "ProtocolError",
    "ScheduleError",
    "TimeloopError",
    "UnknownNameError",
]


class OwinError(Exception):
    """Base class of every error raised on purpose by owin-cosim."""


class ConfigError(OwinError):
    """A bad input: names the file, the key path inside it and what was expected.

    Parameters
    ----------
    file : path or None
        The offending file (scenario, model, accelerator spec, plan); ``None`` for a
        command-line flag.
    key : str
        Dotted key path inside that file, e.g. ``devices[0].payload.bytes``, or the flag
        (``--policy``); empty for the whole file.
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


class PluginError(ConfigError):
    """A plugin declared through an entry point cannot be loaded or is not usable.

    Examples
    --------
    >>> str(PluginError("owin_cosim.policies", "greedy", "mypkg:Greedy", "No module named 'mypkg'"))
    "plugin 'greedy' (owin_cosim.policies = mypkg:Greedy): No module named 'mypkg'"
    """

    def __init__(self, group: str, name: str, target: str, message: str) -> None:
        self.group, self.name, self.target = group, name, target
        super().__init__(None, f"plugin {name!r} ({group} = {target})", message)


class BackendUnavailableError(OwinError):
    """A backend was asked for (ns-3, Timeloop) but is not installed or cannot start."""


class BackendError(OwinError):
    """A backend failed while running."""


class Ns3WorkerError(BackendError):
    """The ns-3 worker died, stopped answering, or reported an error."""


class TimeloopError(BackendError):
    """A Timeloop run failed or timed out."""


class EstimatorError(BackendError):
    """The estimator service failed or did not answer in time."""


class ProtocolError(OwinError, ValueError):
    """A malformed or incompatible message."""


class UnknownNameError(OwinError, KeyError):
    """An unknown zoo name; ``str()`` gives the plain message (no ``KeyError`` quoting).

    Examples
    --------
    >>> str(UnknownNameError("unknown encoder 'x'"))
    "unknown encoder 'x'"
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ScheduleError(OwinError):
    """The coordinator reached an impossible state (a bug or an infeasible plan)."""
