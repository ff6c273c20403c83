"""Tests of the mapping search (:mod:`owin_cosim.mapper`) against real ``timeloop-mapper`` runs."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from owin_cosim.loopnest import ComputeUnit, NestLevel, evaluate, levels_from_arch
from owin_cosim.mapper import Constraints, read_constraints, search, search_case
from owin_cosim.timeloop_io import read_architecture, read_ert

REF = Path(__file__).resolve().parents[2] / "shared" / "timeloop_reference"
V3 = REF / "v3" / "cases"
V3_CASES = sorted(p for p in V3.glob("*") if p.is_dir()) if V3.is_dir() else []
needs_ref = pytest.mark.skipif(not V3_CASES, reason="timeloop_reference not present")

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


@needs_ref
def test_read_constraints_v3_merges_arch_and_mapspace() -> None:
    c = read_constraints(REF / "v3" / "arch" / "eyeriss_like" / "inputs")
    glb = c.get("shared_glb", "temporal")
    assert glb is not None and glb.factors == {"Q": 1, "R": 1, "S": 1, "P": 0}
    sp = c.get("DummyBuffer", "spatial")
    assert sp is not None and sp.split == 4 and sp.permutation == "NPQRSCM"
    dt = c.get("shared_glb", "datatype")
    assert dt is not None and dt.bypass == ("Weights",)


@needs_ref
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
    from owin_cosim.timeloop_io import read_problem

    return read_problem(case / "prob.yaml")


@needs_ref
def test_median_errors_vs_timeloop_mapper() -> None:
    cycles_err, energy_err = [], []
    for case in V3_CASES:
        res, row = search_case(case, seed=0, max_evaluations=BUDGET)
        assert res.evaluations <= BUDGET
        cycles_err.append(abs(res.result.cycles - row["cycles"]) / row["cycles"])
        energy_err.append(abs(res.result.energy_pJ - row["energy_pJ"]) / row["energy_pJ"])
    assert statistics.median(cycles_err) <= 0.15, cycles_err
    assert statistics.median(energy_err) <= 0.25, energy_err
