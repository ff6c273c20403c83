"""From a sweep file to runs: the points of its axes, each a frozen, fully resolved scenario
per (policy, seed), named by the hash of its content.

Expansion order: every combination of the ``grid`` axes (in file order, the last
varying fastest), crossed with the positions of the ``zip`` axes, crossed with the
``random`` samples; then per point the policies, then the seeds. A random axis is drawn
from ``numpy.random.default_rng(random.seed)``, axis after axis, so the same sweep file
gives the same points.

A run's frozen scenario is the base scenario with the point's values, ``seed`` and
``policy.name`` set, validated by the scenario schema, dumped to JSON with every file
path absolute; a point with ``accelerator.spec_fields.*`` axes carries its modified spec
document and names it ``spec.yaml`` (the runner writes it into the run directory). The
run id is the first 16 hex digits of the SHA-256 of the canonical JSON of (frozen
scenario, spec document, policy, seed, owin-cosim version): equal content, equal id,
whatever the sweep file around it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from owin_cosim import __version__
from owin_cosim.accel.spec import parse_chip_spec
from owin_cosim.errors import ConfigError
from owin_cosim.scenario.overrides import override
from owin_cosim.scenario.schema import Scenario, load_scenario
from owin_cosim.study.spec_fields import PREFIX, apply_spec_fields
from owin_cosim.study.sweep_file import MAX_RUNS, RandomRange, SweepFile
from owin_cosim.yaml_input import read_yaml

__all__ = ["SPEC_FILE", "Point", "Run", "canonical_json", "expand_points", "resolve_runs"]

#: The name of a point's modified accelerator spec inside its run directory.
SPEC_FILE = "spec.yaml"


def canonical_json(data: Any) -> str:
    """The canonical JSON of ``data`` (sorted keys, no spaces, no NaN): what is hashed.

    >>> canonical_json({"b": 1.0, "a": [1, "x"]})
    '{"a":[1,"x"],"b":1.0}'
    """
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class Point:
    """One point of the axes: its index in expansion order and each axis's value."""

    index: int
    #: Axis key path -> value as given in the sweep file (or drawn).
    values: tuple[tuple[str, Any], ...]
    #: Where each axis is in the sweep file (``grid.``, ``zip.`` or ``random.axes.``).
    sections: tuple[str, ...]


@dataclass(frozen=True)
class Run:
    """One run: plain, picklable data (what a worker needs)."""

    run_id: str
    point: int
    policy: str
    seed: int
    #: Axis key path -> value as given (the table's axis columns).
    values: tuple[tuple[str, Any], ...]
    #: The frozen scenario (JSON data; file paths absolute, the spec ``spec.yaml`` when
    #: ``spec`` is given).
    scenario: dict[str, Any]
    #: The modified accelerator spec document, or ``None``.
    spec: dict[str, Any] | None
    #: The base scenario file (other relative paths resolve beside it).
    source: str


def _random_rows(section: Any) -> list[dict[str, Any]]:
    rng = np.random.default_rng(section.seed)
    n = section.samples
    columns: dict[str, list[Any]] = {}
    for key, spec in section.axes.items():
        if isinstance(spec, dict):
            r = RandomRange.model_validate(spec)
            if r.integer:
                columns[key] = [int(v) for v in rng.integers(int(r.low), int(r.high) + 1, n)]
            else:
                columns[key] = [float(v) for v in rng.uniform(r.low, r.high, n)]
        else:
            columns[key] = [spec[int(i)] for i in rng.integers(0, len(spec), n)]
    return [{k: col[i] for k, col in columns.items()} for i in range(n)]


def expand_points(sweep: SweepFile) -> list[Point]:
    """The points of ``sweep``'s axes in expansion order (one empty point without axes)."""
    grid = [
        dict(zip(sweep.grid, combo, strict=True))
        for combo in itertools.product(*sweep.grid.values())
    ]
    length = len(next(iter(sweep.zip.values()))) if sweep.zip else 1
    zipped = [{k: v[i] for k, v in sweep.zip.items()} for i in range(length)]
    randoms = _random_rows(sweep.random) if sweep.random is not None else [{}]
    where = {
        **{k: "grid." for k in sweep.grid},
        **{k: "zip." for k in sweep.zip},
        **{k: "random.axes." for k in (sweep.random.axes if sweep.random else {})},
    }
    points = []
    for i, (g, z, r) in enumerate(itertools.product(grid, zipped, randoms)):
        values = {**g, **z, **r}
        points.append(Point(i, tuple(values.items()), tuple(where[k] for k in values)))
    return points


def _absolute(doc: dict[str, Any], base: Path) -> None:
    """Make the scenario's own file paths absolute (the frozen scenario stands alone)."""

    def resolve(p: str) -> str:
        q = Path(p).expanduser()
        return str(q if q.is_absolute() else (base / q).resolve())

    acc, model = doc["accelerator"], doc["model"]
    acc["spec"] = resolve(acc["spec"])
    acc["timeloop_arch"] = [resolve(p) for p in acc.get("timeloop_arch", [])]
    if acc.get("estimator_keys"):
        acc["estimator_keys"] = resolve(acc["estimator_keys"])
    if model.get("file"):
        model["file"] = resolve(model["file"])


class _Resolver:
    """Turns points into runs for one sweep file (the base scenario and specs read once)."""

    def __init__(self, sweep: SweepFile, file: Path) -> None:
        self.sweep, self.file = sweep, file
        self.base = self._base()
        self.specs: dict[str, dict[str, Any]] = {}

    def _base(self) -> Scenario:
        path = self.file.parent / self.sweep.scenario
        if not path.is_file():
            raise ConfigError(
                self.file,
                "scenario",
                f"scenario file {str(path)!r} not found (relative to the sweep file)",
            )
        return load_scenario(path.resolve())

    def _spec_doc(self, path: str, where: str) -> dict[str, Any]:
        if path not in self.specs:
            if not Path(path).is_file():
                raise ConfigError(self.file, where, f"spec file {path!r} not found")
            doc = read_yaml(Path(path), "accelerator spec")
            if not isinstance(doc, dict):
                raise ConfigError(path, "", "expected a mapping (an accelerator spec)")
            self.specs[path] = doc
        return self.specs[path]

    def _override(
        self, values: Mapping[str, Any], where: str, point: Point | None = None
    ) -> Scenario:
        """``override`` of the base; an error names the sweep file and ``where``."""
        try:
            return override(self.base, values)
        except ConfigError as exc:
            if point is None:  # one axis alone: its own message (the key is the axis)
                key = next(iter(values))
                msg = exc.message if exc.key == key else f"{exc.key}: {exc.message}"
            else:
                said = ", ".join(f"{k}={v!r}" for k, v in point.values) or "no axes"
                msg = f"point {point.index} ({said}): {exc.key}: {exc.message}"
            raise ConfigError(self.file, where, msg) from None

    def check_axes(self, points: list[Point]) -> None:
        """Each axis value alone on the base scenario: the first error names its axis."""
        seen: set[tuple[str, str]] = set()
        for p in points:
            for (key, value), where in zip(p.values, p.sections, strict=True):
                if key.startswith(PREFIX) or (key, repr(value)) in seen:
                    continue
                seen.add((key, repr(value)))
                self._override({key: value}, f"{where}{key}")

    def _spec(self, point: Point, spec_path: str) -> dict[str, Any] | None:
        """The point's modified spec document (checked), or ``None`` without spec fields."""
        axes = [(k, w) for (k, _), w in zip(point.values, point.sections, strict=True)]
        fields = {k[len(PREFIX) :]: v for k, v in point.values if k.startswith(PREFIX)}
        if not fields:
            return None
        key, where = next((k, w) for k, w in axes if k.startswith(PREFIX))
        spec = apply_spec_fields(self._spec_doc(spec_path, where + key), fields, self.file, where)
        try:
            parse_chip_spec(spec, SPEC_FILE)
        except ConfigError as exc:
            raise ConfigError(
                self.file,
                f"{where}{key}",
                f"point {point.index}: the modified spec: {exc.key}: {exc.message}",
            ) from None
        return spec

    def runs(self, point: Point) -> Iterator[Run]:
        """The runs of one point: its policies x seeds."""
        plain = {k: v for k, v in point.values if not k.startswith(PREFIX)}
        base = self.base
        spec: dict[str, Any] | None = None
        for i, policy in enumerate(self.sweep.policies or [base.policy.name]):
            params = dict(base.policy.params) if policy == base.policy.name else {}
            for j, seed in enumerate(self.sweep.seeds or [base.seed]):
                extra = {"seed": seed, "policy.name": policy, "policy.params": params}
                sc = self._override({**plain, **extra}, "", point)
                doc = sc.model_dump(mode="json")
                _absolute(doc, sc.source_file.parent)
                if i == j == 0:  # the spec depends on the point only
                    spec = self._spec(point, doc["accelerator"]["spec"])
                if spec is not None:
                    doc["accelerator"]["spec"] = SPEC_FILE
                ident = {"scenario": doc, "spec": spec, "policy": policy, "seed": seed}
                digest = hashlib.sha256(
                    canonical_json({**ident, "owin_cosim": __version__}).encode()
                )
                yield Run(
                    digest.hexdigest()[:16],
                    point.index,
                    policy,
                    seed,
                    point.values,
                    doc,
                    spec,
                    str(sc.source_file),
                )


def resolve_runs(sweep: SweepFile, file: str | Path) -> tuple[list[Point], list[Run]]:
    """Every point and run of ``sweep`` (read from ``file``), each validated up front.

    Raises
    ------
    ConfigError
        Naming the sweep file and the axis (``grid.network.ofdm.num_rbs``) for an
        unknown key path or a value the scenario (or chip-spec) schema refuses, or the
        point whose combination of values is refused.
    """
    file = Path(file)
    resolver = _Resolver(sweep, file)
    points = expand_points(sweep)
    total = len(points) * len(sweep.policies or [0]) * len(sweep.seeds or [0])
    if total > MAX_RUNS:
        raise ConfigError(
            file, "", f"the sweep expands to {total} runs; expected at most {MAX_RUNS}"
        )
    resolver.check_axes(points)
    runs = [r for p in points for r in resolver.runs(p)]
    return points, runs
