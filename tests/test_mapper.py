"""Tests of the mapping search (:mod:`owin_cosim.accel.loopnest.mapper`) against real
``timeloop-mapper`` runs."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest

from owin_cosim.accel.loopnest.levels import ComputeUnit, NestLevel, levels_from_arch
from owin_cosim.accel.loopnest.mapper import Constraints, read_constraints, search, search_case
from owin_cosim.accel.loopnest.nest import evaluate
from owin_cosim.accel.timeloop.formats import read_architecture, read_ert
from tests.conftest import timeloop_reference

REF = timeloop_reference()
V3 = REF / "v3" / "cases"
V3_CASES = sorted(p for p in V3.glob("*") if p.is_dir())

#: Evaluation budget per case in the accuracy test (about 1-2 s per case on one core).
BUDGET = 600


def _levels(case: Path) -> tuple[list[NestLevel], ComputeUnit]:
    design = REF / "v3" / "arch" / (case / "ARCH").read_text(encoding="utf-8").strip()
    comps = read_architecture(design / "inputs" / "arch.yaml")
    levels, compute, _ = levels_from_arch(comps, read_ert(design / "accelergy" / "ERT.yaml"))
    return levels, compute


def test_synthetic_search_is_deterministic_and_bounded() -> None:
    lv = [
        NestLevel("DRAM", 1, None, 1, None, None, 100.0, 100.0, 100.0),
        NestLevel("buf", 4, 16, 1, None, None, 1.0, 1.0, 1.0),
    ]
    prob = dict(R=3, S=1, P=8, Q=1, C=2, M=4, N=1)
    cu = ComputeUnit("mac", 4, 1.0)
    a = search(lv, cu, prob, Constraints(), seed=3, max_evaluations=40)
    b = search(lv, cu, prob, Constraints(), seed=3, max_evaluations=40)
    assert a.mapping == b.mapping and a.result.energy_pJ == b.result.energy_pJ
    assert a.evaluations <= 40
    assert a.result.cycles == 3 * 8 * 2 * 4 // 4  # full use of the 4 MACs
    for ds, d in a.result.per_level["buf"].items():
        assert d["tile"] <= 16, ds


def test_read_constraints_v3_merges_arch_and_mapspace() -> None:
    c = read_constraints(REF / "v3" / "arch" / "eyeriss_like" / "inputs")
    glb = c.get("shared_glb", "temporal")
    assert glb is not None and glb.factors == {"Q": 1, "R": 1, "S": 1, "P": 0}
    sp = c.get("DummyBuffer", "spatial")
    assert sp is not None and sp.split == 4 and sp.permutation == "NPQRSCM"
    dt = c.get("shared_glb", "datatype")
    assert dt is not None and dt.bypass == ("Weights",)


def test_determinism_validity_and_budget() -> None:
    case = V3 / "eyeriss_like__AlexNet_layer3"
    a, row = search_case(case, seed=7, max_evaluations=150)
    b, _ = search_case(case, seed=7, max_evaluations=150)
    assert a.mapping == b.mapping
    assert (a.result.cycles, a.result.energy_pJ) == (b.result.cycles, b.result.energy_pJ)
    assert a.evaluations <= 150
    assert row["cycles"] > 0
    levels, compute = _levels(case)
    again = evaluate(levels, compute, _problem(case), a.mapping)
    assert (again.cycles, again.energy_pJ) == (a.result.cycles, a.result.energy_pJ)
    for lvl in levels:
        if lvl.size_words is not None:
            used = sum(d["tile"] for d in a.result.per_level[lvl.name].values())
            assert used <= lvl.size_words, lvl.name
    # the architecture's constraints hold: psum_spad only iterates over M, weights_spad
    # takes all of R, DummyBuffer has no temporal loops
    by = {(d.target, d.type): d for d in a.mapping}
    psum = by[("psum_spad", "temporal")].factors
    assert all(v == 1 for k, v in psum.items() if k != "M")
    assert by[("weights_spad", "temporal")].factors["R"] == 3
    assert all(v == 1 for v in by[("DummyBuffer", "temporal")].factors.values())
    dt = by[("shared_glb", "datatype")]
    assert "Weights" in dt.bypass


def _problem(case: Path) -> dict[str, int]:
    from owin_cosim.accel.timeloop.formats import read_problem

    return read_problem(case / "prob.yaml")


def test_median_errors_vs_timeloop_mapper() -> None:
    cycles_err, energy_err = [], []
    for case in V3_CASES:
        res, row = search_case(case, seed=0, max_evaluations=BUDGET)
        assert res.evaluations <= BUDGET
        cycles_err.append(abs(res.result.cycles - row["cycles"]) / row["cycles"])
        energy_err.append(abs(res.result.energy_pJ - row["energy_pJ"]) / row["energy_pJ"])
    assert statistics.median(cycles_err) <= 0.15, cycles_err
    assert statistics.median(energy_err) <= 0.25, energy_err


# ---- v0.4 (Timeloop master) cases ---------------------------------------------------------
V4 = REF / "v4" / "cases"


def test_spatial_split_is_a_prefix_of_the_permutation() -> None:
    # fan-out 16 = 2 (X) x 8 (Y); a complete spatial permutation without a split: Timeloop
    # searches the split position, so C (listed after M) can only be on X if M is too
    lv = [
        NestLevel("DRAM", 1, None, 1, None, None, 100.0, 100.0, 100.0),
        NestLevel("buf", 1, None, 1, None, None, 1.0, 1.0, 1.0),
    ]
    cu = ComputeUnit("mac", 16, 1.0)
    prob = dict(R=1, S=1, P=1, Q=1, C=2, M=8, N=1)
    cons = read_constraints(
        {"targets": [{"target": "buf", "type": "spatial", "permutation": "MCRSPQN"}]}
    )
    res = search(lv, cu, prob, cons, max_evaluations=200, mesh_x={"buf": 1, "mac": 2})
    assert res.result.cycles == 2  # M8 on Y, C temporal; M8 (Y) x C2 (X) is not expressible
    free = search(lv, cu, prob, Constraints(), max_evaluations=200, mesh_x={"buf": 1, "mac": 2})
    assert free.result.cycles == 1


def test_optimization_metrics() -> None:
    from owin_cosim.accel.loopnest.mapper import read_optimization_metrics
    from owin_cosim.errors import ConfigError

    assert read_optimization_metrics({"mapper": {"optimization_metrics": ["edp"]}}) == ("edp",)
    assert read_optimization_metrics({"optimization-metrics": ["delay", "energy"]}) == (
        "delay",
        "energy",
    )
    assert read_optimization_metrics({}) == ("delay", "energy")
    lv = [
        NestLevel("DRAM", 1, None, 1, None, None, 100.0, 100.0, 100.0),
        NestLevel("buf", 4, 16, 1, None, None, 1.0, 1.0, 1.0),
    ]
    prob = dict(R=3, S=1, P=8, Q=1, C=2, M=4, N=1)
    cu = ComputeUnit("mac", 4, 1.0)
    fast = search(lv, cu, prob, Constraints(), max_evaluations=300)
    frugal = search(lv, cu, prob, Constraints(), max_evaluations=300, metrics=("energy",))
    assert frugal.result.energy_pJ <= fast.result.energy_pJ
    assert fast.result.cycles <= frugal.result.cycles
    with pytest.raises(ConfigError, match="optimization_metrics"):
        search(lv, cu, prob, Constraints(), metrics=("area",))


def test_v4_case_reads_containers_metrics_and_cluster_capacity() -> None:
    from owin_cosim.accel.loopnest.cases import read_case_inputs
    from owin_cosim.accel.loopnest.mapper import read_search_settings

    inp = read_case_inputs(V4 / "simba_like__AlexNet_layer1")
    settings = read_search_settings(inp.settings)
    assert settings.metrics == ("edp",)  # the v0.4 runs optimise EDP, not delay then energy
    pe = settings.constraints.get("inter_PE_spatial", "spatial")
    assert pe is not None and pe.factors == {"R": 1, "S": 1, "P": 1, "Q": 1, "N": 1}
    assert pe.permutation == "MCRSPQN" and pe.split is None
    levels, _, _ = levels_from_arch(inp.components, inp.ert)
    regs = {lv.name: lv for lv in levels}["PEWeightRegs"]
    # 512 bits wide, 8-bit words, cluster-size 64: Timeloop's stats say Size 1
    assert regs.size_words == 1 and regs.block_size == 64


def test_v4_simba_search_respects_containers() -> None:
    case = V4 / "simba_like__AlexNet_layer1"
    res, row = search_case(case, seed=1, max_evaluations=300)
    assert res.evaluations <= 300
    by = {(d.target, d.type): d for d in res.mapping}

    def used(target: str, kind: str) -> dict[str, int]:
        return {k: v for k, v in by[(target, kind)].factors.items() if v > 1}

    pe = used("inter_PE_spatial", "spatial")  # the PE container: meshX 16, M and C only
    assert set(pe) <= {"M", "C"} and math.prod(pe.values()) <= 16
    dist = used("inter_distributed_buffers_spatial", "spatial")  # meshY 4, M only
    assert set(dist) <= {"M"} and math.prod(dist.values()) <= 4
    regmac = used("inter_reg_mac_spatial", "spatial")  # meshY 4, C only
    assert set(regmac) <= {"C"} and math.prod(regmac.values()) <= 4
    for c in ("inter_PE_spatial", "inter_distributed_buffers_spatial", "inter_reg_mac_spatial"):
        assert used(c, "temporal") == {}
        assert by[(c, "datatype")].keep == ()
    assert res.result.per_level["PEWeightRegs"]["Weights"]["tile"] == 1
    # no worse than timeloop-mapper's own result on its metric (EDP)
    assert res.result.cycles * res.result.energy_pJ <= row["cycles"] * row["energy_pJ"]
