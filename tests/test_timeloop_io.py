"""Timeloop/Accelergy format readers and the stats parser, on every reference file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from owin_cosim.accel.timeloop.formats import (
    layer_from_problem,
    layer_to_problem,
    parse_stats,
    read_architecture,
    read_ert,
    read_mapping,
    read_problem,
)
from owin_cosim.errors import ConfigError
from tests.conftest import timeloop_reference

REF = timeloop_reference()


def _all(pattern: str) -> list[Path]:
    found = sorted(REF.glob(pattern))
    if not found:  # an empty parametrization would skip, not fail
        raise FileNotFoundError(f"no {pattern} under {REF}")
    return found


@pytest.mark.parametrize(
    "path",
    _all("v3/arch/*/inputs/arch.yaml") + _all("v4/cases/*/parsed-processed-input.yaml"),
    ids=str,
)
def test_architectures(path: Path) -> None:
    comps = read_architecture(path)
    assert comps[0].cls == "DRAM" and comps[0].instances == 1
    assert any(c.is_compute for c in comps)
    compute = next(c for c in comps if c.is_compute)
    assert compute.instances in (168, 256)


@pytest.mark.parametrize("path", _all("v3/cases/*/prob.yaml"), ids=str)
def test_problems_round_trip(path: Path) -> None:
    inst = read_problem(path)
    layer = layer_from_problem(inst)
    back = layer_to_problem(layer)["problem"]["instance"]
    assert {k: back[k] for k in inst} == inst
    summary = json.loads((path.parent / "summary.json").read_text())["row"]
    assert layer.macs == summary["computes"]


@pytest.mark.parametrize("path", _all("*/cases/*/timeloop-mapper.map.yaml"), ids=str)
def test_mappings(path: Path) -> None:
    directives = read_mapping(path)
    kinds = {d.type for d in directives}
    assert "temporal" in kinds
    assert all(all(v >= 1 for v in d.factors.values()) for d in directives)


@pytest.mark.parametrize("path", _all("**/ERT*.yaml"), ids=str)
def test_energy_tables(path: Path) -> None:
    ert = read_ert(path)
    assert "DRAM" in ert and ert["DRAM"]["read"] > 0
    assert all(v >= 0 for actions in ert.values() for v in actions.values())


@pytest.mark.parametrize(
    "path",
    _all("*/cases/*/timeloop-mapper.stats.txt") + _all("*/cases/*/model/timeloop-model.stats.txt"),
    ids=str,
)
def test_stats_match_the_case_summary(path: Path) -> None:
    case = path.parent if path.parent.name != "model" else path.parent.parent
    row = json.loads((case / "summary.json").read_text())["row"]
    stats = parse_stats(path)
    assert stats.cycles == row["cycles"]
    assert stats.computes == row["computes"]
    assert stats.energy_pJ == pytest.approx(row["energy_pJ"], rel=1e-3)
    assert stats.utilization == pytest.approx(row["utilization"], abs=0.01)
    assert stats.levels and stats.levels[0].index == 0
    dram = stats.level("DRAM")
    assert (
        sum(
            dram.counter(ds, "Scalar reads (per-instance)")
            for ds in ("Weights", "Inputs", "Outputs")
        )
        > 0
    )
    assert sum(stats.energy_by_level_pJ().values()) == pytest.approx(stats.energy_pJ, rel=1e-3)


def test_reader_errors(tmp_path: Path) -> None:
    bad = tmp_path / "prob.yaml"
    bad.write_text("problem: {instance: {R: 3, S: 3, P: 0}}\n")
    with pytest.raises(ConfigError, match=r"problem\.instance\.P"):
        read_problem(bad)
    bad.write_text("problem: {instance: {R: 3, HStride: 2}}\n")
    with pytest.raises(ConfigError, match="HStride"):
        read_problem(bad)
    arch = tmp_path / "arch.yaml"
    arch.write_text("architecture: {version: 0.3}\n")
    with pytest.raises(ConfigError, match=r"architecture\.subtree"):
        read_architecture(arch)
    with pytest.raises(ConfigError, match="not found"):
        parse_stats(tmp_path / "none.stats.txt")
