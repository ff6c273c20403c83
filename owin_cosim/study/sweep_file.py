"""Sweep files: a declared, typed schema, validated up front (see ``docs/sweep.md``).

A sweep file names a base scenario (relative to the sweep file), the policies, the
seeds (replications; each overrides the scenario's ``seed``) and axes over scenario key
paths: ``grid`` (every combination), ``zip`` (axes of equal length advanced together)
and ``random`` (seeded samples). Unknown keys, empty axes, values given twice and
zipped axes of unequal length are :class:`~owin_cosim.errors.ConfigError` naming the
file and the key. Whether each axis names a real scenario key, and whether each value
fits it, is checked by :mod:`owin_cosim.study.points` on every point before anything
runs.

Examples
--------
>>> s = SweepFile.model_validate({
...     "scenario": "../quickstart.yaml",
...     "policies": ["rtfs", "pacs"],
...     "seeds": [1, 2],
...     "grid": {"accelerator.latency_scale": [0.5, 1.0, 2.0]},
... })
>>> s.grid["accelerator.latency_scale"], s.zip, s.random
([0.5, 1.0, 2.0], {}, None)
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from owin_cosim.errors import ConfigError
from owin_cosim.policies.registry import POLICIES
from owin_cosim.scenario.schema import load_yaml
from owin_cosim.validation import validation_to_config_error
from owin_cosim.yaml_input import clip

__all__ = [
    "MAX_RUNS",
    "RandomRange",
    "RandomSection",
    "SweepFile",
    "load_sweep_file",
]

#: The most runs one sweep may expand to (a typo such as ``samples: 1e9`` fails early).
MAX_RUNS = 1_000_000
#: An axis value as written in the sweep file (kept as given: it is a table column).
Axis = Annotated[list[Any], Field(max_length=MAX_RUNS)]
#: A key path: dotted names and ``[i]`` indices (``devices[0].distance_m``).
_KEY_PATH = re.compile(r"^[A-Za-z_][\w-]*(\[\d+\])*(\.[\w-]+(\[\d+\])*)*$")
#: Axes that have their own sweep-file keys.
_RESERVED = {"seed": "seeds", "policy.name": "policies"}
_PLAIN = (bool, int, float, str)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RandomRange(_Strict):
    """A sampled range: integers in ``[low, high]`` if both are integers, else floats
    uniform in ``[low, high)``."""

    low: StrictInt | StrictFloat
    high: StrictInt | StrictFloat

    @model_validator(mode="after")
    def _ordered(self) -> RandomRange:
        if not self.low < self.high:
            raise ValueError(f"expected low < high, got low={self.low}, high={self.high}")
        return self

    @property
    def integer(self) -> bool:
        """Whether both bounds are integers (then samples are integers)."""
        return isinstance(self.low, int) and isinstance(self.high, int)


class RandomSection(_Strict):
    """``random``: ``samples`` points, each axis drawn independently from ``seed``."""

    samples: int = Field(ge=1, le=MAX_RUNS)
    seed: int = Field(0, ge=0, lt=2**63)
    #: Key path -> ``{low, high}`` or a list of choices.
    axes: dict[str, Any] = Field(min_length=1)


class SweepFile(_Strict):
    """A whole sweep file."""

    #: The base scenario file, relative to the sweep file.
    scenario: str = Field(min_length=1, max_length=4096)
    #: Policies to run on every point (default: the scenario's own).
    policies: list[str] | None = Field(None, min_length=1, max_length=64)
    #: Seeds (replications), each overriding the scenario's ``seed`` (default: its own).
    seeds: list[Annotated[int, Field(ge=0, lt=2**63)]] | None = Field(
        None, min_length=1, max_length=MAX_RUNS
    )
    #: Axes crossed with each other: every combination of their values.
    grid: dict[str, Axis] = Field(default_factory=dict)
    #: Axes of equal length advanced together (one point per position).
    zip: dict[str, Axis] = Field(default_factory=dict)
    #: Seeded random samples of some axes.
    random: RandomSection | None = None

    @field_validator("policies")
    @classmethod
    def _known_policies(cls, names: list[str] | None) -> list[str] | None:
        for name in names or []:
            try:
                POLICIES.entry(name)
            except ConfigError as exc:
                raise ValueError(exc.message) from None
            if names is not None and names.count(name) > 1:
                raise ValueError(f"policy {name!r} given twice; expected each once")
        return names

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int] | None) -> list[int] | None:
        twice = sorted({s for s in seeds or [] if (seeds or []).count(s) > 1})
        if twice:
            raise ValueError(f"seed {', '.join(map(str, twice))} given twice")
        return seeds

    @model_validator(mode="after")
    def _consistent(self) -> SweepFile:
        lengths = {len(v) for v in self.zip.values()}
        if len(lengths) > 1:
            sizes = ", ".join(f"{k}: {len(v)}" for k, v in self.zip.items())
            raise ValueError(f"zip: expected axes of equal length, got {sizes}")
        sections = [self.grid, self.zip, self.random.axes if self.random else {}]
        keys = [k for s in sections for k in s]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"axis {', '.join(twice)} appears in more than one section")
        return self

    def axis_keys(self) -> list[str]:
        """Every axis key path, in expansion order (grid, zip, random)."""
        axes = [*self.grid, *self.zip, *(self.random.axes if self.random else {})]
        return list(axes)


def load_sweep_file(path: str | Path) -> SweepFile:
    """Read and validate a sweep file (the schema only).

    Raises
    ------
    ConfigError
        Naming the file, the dotted key (``grid.network.ofdm.num_rbs``) and what was
        expected.
    """
    data = load_yaml(path)
    try:
        sweep = SweepFile.model_validate(data)
    except ValidationError as exc:
        raise validation_to_config_error(exc, path, SweepFile) from None
    for section, axes in (("grid", sweep.grid), ("zip", sweep.zip)):
        for key, values in axes.items():
            _check_axis(path, f"{section}.{key}", key, values)
    if sweep.random is not None:
        for key, spec in sweep.random.axes.items():
            where = f"random.axes.{key}"
            if isinstance(spec, dict):
                try:
                    RandomRange.model_validate(spec)
                except ValidationError as exc:
                    raise validation_to_config_error(exc, path, RandomRange, where) from None
            else:
                _check_axis(path, where, key, spec)
    return sweep


def _check_axis(file: str | Path, where: str, key: str, values: Any) -> None:
    """One axis: a key path, and a non-empty list of distinct plain values."""
    if not _KEY_PATH.match(key):
        raise ConfigError(
            file, where, "expected a key path such as network.ofdm.num_rbs or devices[0].distance_m"
        )
    if key in _RESERVED:
        raise ConfigError(file, where, f"give these values in the top-level {_RESERVED[key]!r}")
    if not isinstance(values, list):
        raise ConfigError(
            file, where, f"expected a list of values (or {{low, high}}), got {clip(values)}"
        )
    if not values:
        raise ConfigError(file, where, "empty axis; expected at least one value")
    for i, v in enumerate(values):
        if not isinstance(v, _PLAIN) or (isinstance(v, float) and not math.isfinite(v)):
            raise ConfigError(
                file,
                f"{where}[{i}]",
                f"expected a number, string or boolean, got {clip(v)} ({type(v).__name__})",
            )
    seen = [repr(v) for v in values]
    twice = sorted({v for v in seen if seen.count(v) > 1})
    if twice:
        raise ConfigError(file, where, f"value {', '.join(twice)} given twice; expected each once")
