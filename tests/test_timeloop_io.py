"""Timeloop/Accelergy format readers and the stats parser, on every reference file."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import yaml

from owin_cosim.accel.problem import cnn_layer_instance
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
from owin_cosim.workload.graph import Layer, OpKind, conv2d, depthwise2d, eltwise, matmul, pool2d
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


DIMS = ("R", "S", "P", "Q", "C", "M", "N")


@pytest.mark.parametrize(
    ("layer", "dims"),  # R S P Q C M N
    [
        (conv2d("conv", C=3, M=8, P=6, Q=5, R=3, stride=2, N=2), (3, 3, 6, 5, 3, 8, 2)),
        (matmul("fc", rows=4, in_features=64, out_features=32), (1, 1, 4, 1, 64, 32, 1)),
        # channel-wise: channels folded into N, no reduction over C, one output per channel
        (depthwise2d("dw", C=32, P=14, Q=14, R=3), (3, 3, 14, 14, 1, 1, 32)),
        (pool2d("pool", C=16, P=7, Q=7, R=2, stride=2), (2, 2, 7, 7, 1, 1, 16)),
        (eltwise("add", C=8, P=14, Q=14, N=2), (1, 1, 14, 14, 1, 1, 16)),
    ],
    ids=["conv", "matmul", "depthwise", "pool", "eltwise"],
)
def test_cnn_layer_instance_per_op_kind(layer: Layer, dims: tuple[int, ...]) -> None:
    inst = cnn_layer_instance(layer)
    assert tuple(inst[d] for d in DIMS) == dims
    assert (inst["Hstride"], inst["Wstride"]) == (layer.Hstride, layer.Wstride)
    ops = math.prod(dims)  # one operation per point of the CNN-layer iteration space
    assert ops == layer.macs  # eltwise with 2 operands: one add per output
    # Inputs and Outputs keep the layer's own sizes (Outputs[N, M, P, Q] = every channel)
    channels = layer.M if layer.op in (OpKind.CONV, OpKind.MATMUL) else layer.C
    assert inst["N"] * inst["M"] * inst["P"] * inst["Q"] == layer.N * channels * layer.P * layer.Q
    assert layer_to_problem(layer)["problem"]["instance"] == inst  # the Timeloop backend's


_SAVING_MAPPER = """#!/bin/sh
# Stands in for timeloop-mapper: keeps the problem it was given, answers a real stats file.
cp prob.yaml "{keep}"
cp "{stats}" timeloop-mapper.stats.txt
"""


def test_timeloop_backend_prices_the_shared_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Timeloop backend hands ``timeloop-mapper`` the instance the loop-nest backend
    prices (depthwise: channels in ``N``), not a ``C = channels, M = 1`` reduction."""
    from owin_cosim.accel.timeloop.backend import TimeloopCostModel

    stats = REF / "v3/cases/simple_weight_stationary__AlexNet_layer2/timeloop-mapper.stats.txt"
    keep = tmp_path / "given.yaml"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("timeloop-mapper", "timeloop-model"):
        exe = bin_dir / name
        exe.write_text(_SAVING_MAPPER.format(keep=keep, stats=stats))
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    layer = depthwise2d("dw", C=32, P=14, Q=14, R=3)
    TimeloopCostModel([tmp_path / "arch.yaml"]).layer_cost(layer)
    given = yaml.safe_load(keep.read_text())["problem"]["instance"]
    assert given == cnn_layer_instance(layer)
    assert (given["C"], given["M"], given["N"]) == (1, 1, 32)
