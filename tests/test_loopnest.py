"""The loop-nest model against real ``timeloop-model`` runs, and on hand-checkable nests."""

from __future__ import annotations

import time

import pytest

from owin_cosim.accel.loopnest.cases import evaluate_case
from owin_cosim.accel.loopnest.levels import (
    REGISTER_FALLBACK_PJ,
    ComputeUnit,
    NestLevel,
    levels_from_arch,
)
from owin_cosim.accel.loopnest.nest import evaluate
from owin_cosim.accel.timeloop.formats import ArchComponent
from owin_cosim.accel.timeloop.formats import MappingDirective as D
from owin_cosim.errors import ConfigError
from tests.conftest import timeloop_reference

REF = timeloop_reference()

CYCLES_TOL = 0.05
ENERGY_TOL = 0.10

# Every reference case meets both targets (cycles exact everywhere; worst energy -0.85 %
# on v4 simba_like AlexNet layer 1: leakage and the register's energy are not modelled). A case that
# stops meeting them should be moved to an explicit xfail(strict=True) with its error.
V3_CASES = [
    f"v3/cases/{arch}__AlexNet_layer{n}"
    for arch in (
        "eyeriss_like",
        "simba_like",
        "simple_output_stationary",
        "simple_weight_stationary",
    )
    for n in (1, 2, 3)
]
V4_CASES = [
    f"v4/cases/{arch}__{layer}"
    for arch in (
        "eyeriss_like",
        "simba_like",
        "simple_output_stationary",
        "simple_weight_stationary",
    )
    for layer in ("AlexNet_layer1", "AlexNet_layer2", "AlexNet_layer3", "default_problem")
]


@pytest.mark.parametrize("case", V3_CASES + V4_CASES)
def test_reference_case(case: str) -> None:
    result, stats = evaluate_case(REF / case)
    assert result.computes == stats.computes
    assert abs(result.cycles / stats.cycles - 1) <= CYCLES_TOL
    assert abs(result.energy_pJ / stats.energy_pJ - 1) <= ENERGY_TOL
    assert result.utilization == pytest.approx(stats.utilization, abs=0.01)


def test_reference_cases_all_listed() -> None:
    found = {str(p.relative_to(REF)) for p in REF.glob("v*/cases/*") if p.is_dir()}
    assert found == set(V3_CASES + V4_CASES)


@pytest.mark.parametrize(
    "case", ["v3/cases/eyeriss_like__AlexNet_layer2", "v3/cases/simba_like__AlexNet_layer1"]
)
def test_reference_per_level_counts(case: str) -> None:
    """Reads, fills and updates per instance match Timeloop level by level."""
    result, stats = evaluate_case(REF / case)
    keys = {
        "reads": "Scalar reads (per-instance)",
        "fills": "Scalar fills (per-instance)",
        "updates": "Scalar updates (per-instance)",
        "instances": "Utilized instances (max)",
    }
    checked = 0
    for lvl in stats.levels[1:]:
        for ds, counters in lvl.dataspaces.items():
            ours = result.per_level[lvl.name][ds]
            for mine, theirs in keys.items():
                assert ours[mine] == counters[theirs], (lvl.name, ds, mine)
                checked += 1
    assert checked > 20


def test_evaluation_is_fast() -> None:
    from owin_cosim.accel.timeloop.formats import (
        read_architecture,
        read_ert,
        read_mapping,
        read_problem,
    )

    case = REF / "v3/cases/eyeriss_like__AlexNet_layer2"
    design = REF / "v3/arch/eyeriss_like"
    levels, compute, _ = levels_from_arch(
        read_architecture(design / "inputs/arch.yaml"), read_ert(design / "accelergy/ERT.yaml")
    )
    problem = read_problem(case / "prob.yaml")
    mapping = read_mapping(case / "timeloop-mapper.map.yaml")
    start = time.perf_counter()
    for _ in range(10):
        evaluate(levels, compute, problem, mapping)
    assert (time.perf_counter() - start) / 10 < 0.05


# ---- hand-checkable nests ------------------------------------------------------------------
def _two_levels(read_bw: float | None = None, buf_instances: int = 1) -> list[NestLevel]:
    return [
        NestLevel("DRAM", 1, None, 1, read_bw, None, 10.0, 20.0, 30.0),
        NestLevel("buf", buf_instances, 16, 1, None, None, 1.0, 2.0, 3.0),
    ]


MAC = ComputeUnit("mac", 1, 0.5)
PROB_CM = dict(R=1, S=1, P=1, Q=1, C=2, M=3, N=1)


def test_irrelevant_inner_loop_reuses_then_outer_loop_refetches() -> None:
    # DRAM: for M in 3: for C in 2 (C innermost); the buffer holds one word of each.
    m = [D("DRAM", "temporal", {"M": 3, "C": 2}, "CM")]
    r = evaluate(_two_levels(), MAC, PROB_CM, m)
    buf, dram = r.per_level["buf"], r.per_level["DRAM"]
    assert r.cycles == 6 and r.computes == 6
    assert buf["Weights"]["fills"] == 6  # every (c, m) is a new weight
    assert buf["Inputs"]["fills"] == 6  # C innermost: input changes every step
    # Outputs: each of the 3 outputs stays over the inner C loop.
    assert (buf["Outputs"]["updates"], buf["Outputs"]["reads"], buf["Outputs"]["fills"]) == (
        6,
        3,
        0,
    )
    assert dram["Weights"]["reads"] == 6 and dram["Inputs"]["reads"] == 6
    assert (dram["Outputs"]["updates"], dram["Outputs"]["reads"]) == (3, 0)
    # energy: DRAM reads 12 x 10 + updates 3 x 30; buf reads 6+6+3 x 1, fills 12 x 2,
    # updates 6 x 3; MACs 6 x 0.5.
    assert r.energy_by_level_pJ["DRAM"] == pytest.approx(120 + 90)
    assert r.energy_by_level_pJ["buf"] == pytest.approx(15 + 24 + 18)
    assert r.energy_pJ == pytest.approx(210 + 57 + 3)


def test_swapped_order_reuses_inputs_and_spills_partial_sums() -> None:
    # DRAM: for C in 2: for M in 3 (M innermost).
    m = [D("DRAM", "temporal", {"M": 3, "C": 2}, "MC")]
    r = evaluate(_two_levels(), MAC, PROB_CM, m)
    buf, dram = r.per_level["buf"], r.per_level["DRAM"]
    assert buf["Inputs"]["fills"] == 2  # M innermost is irrelevant to Inputs
    assert buf["Weights"]["fills"] == 6
    # Each output is visited twice: 6 deliveries, the first 3 need no fill.
    assert (buf["Outputs"]["updates"], buf["Outputs"]["reads"], buf["Outputs"]["fills"]) == (
        6,
        3,
        3,
    )
    assert (dram["Outputs"]["updates"], dram["Outputs"]["reads"]) == (6, 3)


def test_sliding_window_fills_only_new_columns() -> None:
    # 1-D conv, R=3 in the buffer, P=4 at DRAM: window 3 moving by 1 -> 3 + 3*1 inputs.
    prob = dict(R=3, S=1, P=4, Q=1, C=1, M=1, N=1)
    m = [D("DRAM", "temporal", {"P": 4}, "P"), D("buf", "temporal", {"R": 3}, "R")]
    r = evaluate(_two_levels(), MAC, prob, m)
    assert r.per_level["buf"]["Inputs"]["fills"] == 6
    assert r.per_level["buf"]["Inputs"]["tile"] == 3
    # With stride 2 the window moves by 2: 3 + 3*2 = 9 (= all 9 inputs once).
    r2 = evaluate(_two_levels(), MAC, dict(prob, Wstride=2), m)
    assert r2.per_level["buf"]["Inputs"]["fills"] == 9
    # With stride 3 the windows no longer overlap: 4 x 3.
    r3 = evaluate(_two_levels(), MAC, dict(prob, Wstride=3), m)
    assert r3.per_level["buf"]["Inputs"]["fills"] == 12


def test_spatial_multicast_and_reduction() -> None:
    # 4 buffers under DRAM, one output channel each (spatial M4), P=3 temporal inside.
    prob = dict(R=1, S=1, P=3, Q=1, C=1, M=4, N=1)
    m = [
        D("DRAM", "spatial", {"M": 4}, "M"),
        D("buf", "temporal", {"P": 3}, "P"),
    ]
    r = evaluate(_two_levels(buf_instances=4), ComputeUnit("mac", 4, 1.0), prob, m)
    buf, dram = r.per_level["buf"], r.per_level["DRAM"]
    assert buf["Inputs"]["instances"] == 4 and buf["Inputs"]["fills"] == 3
    assert dram["Inputs"]["reads"] == 3  # the same 3 inputs multicast to all 4
    assert dram["Weights"]["reads"] == 4  # one distinct weight per buffer
    assert buf["Outputs"]["updates"] == 3 and buf["Outputs"]["partition"] == 3
    assert dram["Outputs"]["updates"] == 12
    assert r.cycles == 3 and r.utilization == pytest.approx(1.0)
    # Spatial C instead of M: partial sums are reduced on the way up.
    prob_c = dict(prob, M=1, C=4)
    m_c = [D("DRAM", "spatial", {"C": 4}, "C"), D("buf", "temporal", {"P": 3}, "P")]
    rc = evaluate(_two_levels(buf_instances=4), ComputeUnit("mac", 4, 1.0), prob_c, m_c)
    assert rc.per_level["DRAM"]["Outputs"]["updates"] == 3
    assert rc.per_level["DRAM"]["Inputs"]["reads"] == 12


def test_bypass_and_bandwidth_throttling() -> None:
    m = [
        D("buf", "datatype", keep=("Weights",), bypass=("Inputs", "Outputs")),
        D("DRAM", "temporal", {"M": 3, "C": 2}, "CM"),
    ]
    r = evaluate(_two_levels(), MAC, PROB_CM, m)
    assert set(r.per_level["buf"]) == {"Weights"}
    # Inputs and Outputs now go straight from DRAM to the MAC: one per compute.
    assert r.per_level["DRAM"]["Inputs"]["reads"] == 6
    assert r.per_level["DRAM"]["Outputs"]["updates"] == 6
    assert r.cycles == 6
    # DRAM reads 6 weights + 6 inputs + 3 partial sums in 6 cycles; at 1 word/cycle: 15.
    slow = evaluate(_two_levels(read_bw=1.0), MAC, PROB_CM, m)
    assert slow.cycles == 15
    assert slow.cycles_by_level["DRAM"] == 15 and slow.cycles_by_level["buf"] == 6


def test_bad_mappings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="factors multiply"):
        evaluate(_two_levels(), MAC, PROB_CM, [D("DRAM", "temporal", {"M": 3}, "M")])
    with pytest.raises(ConfigError, match="no such storage level"):
        evaluate(_two_levels(), MAC, PROB_CM, [D("GLB", "temporal", {"M": 3, "C": 2}, "CM")])


def test_levels_from_arch_conventions() -> None:
    comps = [
        ArchComponent("DRAM", "s.DRAM", "DRAM", 1, 1, {"block-size": 4, "word-bits": 16}),
        ArchComponent(
            "glb",
            "s.glb",
            "smartbuffer_SRAM",
            1,
            1,
            {"memory_depth": 1024, "memory_width": 64, "word-bits": 16, "read_bandwidth": 16},
        ),
        ArchComponent("reg", "s.PE.reg", "reg_storage", 16, 4, {"depth": 1, "width": 16}),
        ArchComponent("mac", "s.PE.mac", "intmac", 16, 4, {"datawidth": 16}),
    ]
    ert = {
        "DRAM": {"read": 512.0, "write": 512.0},
        "glb": {"read": 40.0, "write": 48.0, "idle": 0.1},
        "reg": {"access": 0.009},
        "mac": {"mac_random": 2.2, "mac_reused": 1.9, "idle": 0.06},
    }
    levels, compute, mac = levels_from_arch(comps, ert)
    assert [lv.name for lv in levels] == ["DRAM", "glb", "reg"]
    dram, glb, reg = levels
    assert dram.block_size == 4 and dram.read_energy_pJ == 128.0
    assert glb.block_size == 4 and glb.size_words == 4096
    assert (glb.read_energy_pJ, glb.write_energy_pJ) == (10.0, 12.0)
    assert glb.read_bw == 16.0 and glb.write_bw is None
    assert reg.read_energy_pJ == pytest.approx(REGISTER_FALLBACK_PJ)
    assert compute == ComputeUnit("mac", 16, 2.2) and mac == 2.2
