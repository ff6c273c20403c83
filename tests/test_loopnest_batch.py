"""Batched loop-nest evaluation (:mod:`owin_cosim.accel.loopnest.batch`) against the
scalar model, and the batched search against the one-candidate-at-a-time search."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from owin_cosim.accel.loopnest.backend import core_levels, spatial_templates
from owin_cosim.accel.loopnest.batch import arrays_from_keys, evaluate_batch
from owin_cosim.accel.loopnest.constraints import Constraints, read_constraints
from owin_cosim.accel.loopnest.levels import ComputeUnit, NestLevel
from owin_cosim.accel.loopnest.mapspace import build_space, state_key, to_mapping, valid
from owin_cosim.accel.loopnest.moves import sample
from owin_cosim.accel.loopnest.nest import distinct_on_axis, evaluate
from owin_cosim.accel.loopnest.search import search, search_many
from owin_cosim.accel.spec import load_chip_spec
from owin_cosim.errors import ConfigError
from tests.conftest import SPECS

MC4 = load_chip_spec(SPECS / "mc4.yaml")
LEVELS, MAC, MESH = core_levels(MC4)

# three levels with bandwidth limits, so the batched throttling path is exercised
BW_LEVELS = [
    NestLevel("DRAM", 1, None, 1, 2.0, 1.0, 200.0, 210.0, 220.0),
    NestLevel("glb", 1, 4096, 1, 8.0, None, 6.0, 7.0, 7.5),
    NestLevel("spad", 16, 64, 1, None, None, 1.0, 1.1, 1.2),
]
BW_MAC = ComputeUnit("mac", 16, 0.3)
BW_MESH = {"DRAM": 1, "glb": 1, "spad": 4, "mac": 4}

_dim = hs.sampled_from([1, 2, 3, 4, 6, 7, 8, 12, 14, 16])
problems = hs.fixed_dictionaries(
    {
        "R": hs.sampled_from([1, 3, 5]),
        "S": hs.sampled_from([1, 3]),
        "P": _dim,
        "Q": _dim,
        "C": _dim,
        "M": _dim,
        "N": hs.sampled_from([1, 2]),
        "Wstride": hs.sampled_from([1, 2]),
        "Hstride": hs.sampled_from([1, 3]),
        "Wdilation": hs.sampled_from([1, 2]),
        "Hdilation": hs.just(1),
    }
)


@settings(max_examples=60, deadline=None)
@given(problems, hs.integers(0, 2**32 - 1), hs.booleans())
def test_batch_equals_scalar_on_random_mappings(prob: dict[str, int], seed: int, bw: bool) -> None:
    levels, mac, mesh = (BW_LEVELS, BW_MAC, BW_MESH) if bw else (LEVELS, MAC, MESH)
    space = build_space(levels, mac, prob, Constraints(), mesh)
    rng = random.Random(seed)
    states = [sample(space, prob, rng) for _ in range(12)]  # valid or not: both are nests
    keys = [state_key(space, st) for st in states]
    cycles, energy = evaluate_batch(levels, mac, prob, *arrays_from_keys(keys, len(levels)))
    for st, c, e in zip(states, cycles.tolist(), energy.tolist(), strict=True):
        r = evaluate(levels, mac, prob, to_mapping(space, st))
        assert (r.cycles, r.energy_pJ) == (c, e)  # bit for bit


@settings(max_examples=200, deadline=None)
@given(hs.lists(hs.tuples(hs.integers(1, 12), hs.integers(1, 9)), min_size=0, max_size=3))
def test_distinct_on_axis_equals_enumeration(terms: list[tuple[int, int]]) -> None:
    values = {
        sum(k * i for (k, _), i in zip(terms, idx, strict=True))
        for idx in itertools.product(*(range(n) for _, n in terms))
    }
    assert distinct_on_axis(terms) == len(values)


def test_batch_counts_the_bandwidth_bound() -> None:
    prob = dict(R=3, S=3, P=8, Q=8, C=8, M=8, N=1)
    space = build_space(BW_LEVELS, BW_MAC, prob, Constraints(), BW_MESH)
    rng = random.Random(1)
    states = [st for st in (sample(space, prob, rng) for _ in range(40)) if valid(space, st, prob)]
    keys = [state_key(space, st) for st in states]
    cycles, _ = evaluate_batch(BW_LEVELS, BW_MAC, prob, *arrays_from_keys(keys, 3))
    throttled = 0
    for st, c in zip(states, cycles.tolist(), strict=True):
        r = evaluate(BW_LEVELS, BW_MAC, prob, to_mapping(space, st))
        assert r.cycles == c
        throttled += r.cycles > min(r.cycles_by_level.values())
    assert throttled > 0  # the test reaches the throttling path


SHAPES = [
    dict(R=3, S=3, P=28, Q=28, C=64, M=64, N=1),
    dict(R=7, S=7, P=56, Q=56, C=3, M=64, N=1, Wstride=2, Hstride=2),
    dict(R=1, S=1, P=7, Q=7, C=256, M=512, N=1, Wstride=2, Hstride=2),
    dict(R=1, S=1, P=1, Q=128, C=64, M=256, N=1),
    dict(R=1, S=1, P=14, Q=14, C=1, M=1, N=96),  # a depthwise-like, channels in N
]


@pytest.mark.parametrize("prob", SHAPES)
@pytest.mark.parametrize("seed", [0, 7])
def test_batched_search_picks_the_scalar_mapping(prob: dict[str, int], seed: int) -> None:
    for cons in [Constraints(), *spatial_templates(prob, LEVELS, MESH, 1)]:
        kw = dict(seed=seed, max_evaluations=60, time_budget_s=1e9, mesh_x=MESH)
        a = search(LEVELS, MAC, prob, cons, batched=False, **kw)  # type: ignore[arg-type]
        b = search(LEVELS, MAC, prob, cons, batched=True, **kw)  # type: ignore[arg-type]
        assert a.mapping == b.mapping and a.result == b.result
        assert a.evaluations == b.evaluations


def test_batched_search_reports_the_same_progress() -> None:
    prob = SHAPES[0]
    seen: dict[bool, list[tuple[int, int]]] = {True: [], False: []}
    for batched in (True, False):

        def record(done: int, total: int, b: bool = batched) -> None:
            seen[b].append((done, total))

        search(
            LEVELS,
            MAC,
            prob,
            Constraints(),
            seed=2,
            max_evaluations=90,
            time_budget_s=1e9,
            mesh_x=MESH,
            progress=record,
            batched=batched,
        )
    assert seen[True] == seen[False] == [(k, 90) for k in range(1, 91)]


@pytest.mark.parametrize("prob", SHAPES[:3])
def test_side_by_side_searches_equal_each_search_alone(prob: dict[str, int]) -> None:
    runs = [(c, 40) for c in spatial_templates(prob, LEVELS, MESH, 4)] + [(Constraints(), 70)]
    kw = dict(seed=3, time_budget_s=1e9, mesh_x=MESH)
    together = search_many(LEVELS, MAC, prob, runs, **kw)  # type: ignore[arg-type]
    assert len(together) == len(runs) > 2
    for (cons, budget), got in zip(runs, together, strict=True):
        alone = search(LEVELS, MAC, prob, cons, max_evaluations=budget, batched=False, **kw)  # type: ignore[arg-type]
        assert not isinstance(got, Exception)
        assert (got.mapping, got.result, got.evaluations) == (
            alone.mapping,
            alone.result,
            alone.evaluations,
        )


def test_side_by_side_search_reports_an_impossible_run() -> None:
    prob = dict(R=1, S=1, P=8, Q=8, C=8, M=8, N=1)
    pe = [
        {"target": "pe_spad", "type": "temporal", "factors": "P=8 Q=8 C=8 M=8"},
        {"target": "pe_spad", "type": "bypass", "keep": ["Weights", "Inputs", "Outputs"]},
    ]  # a 512-word input tile kept in a 192-word pe_spad: no valid mapping
    cons = read_constraints({"mapspace_constraints": {"targets": pe}})
    bad, good = search_many(LEVELS, MAC, prob, [(cons, 20), (Constraints(), 20)], mesh_x=MESH)
    assert isinstance(bad, ConfigError)
    with pytest.raises(ConfigError):
        search(LEVELS, MAC, prob, cons, max_evaluations=20, mesh_x=MESH)
    assert good == search(LEVELS, MAC, prob, Constraints(), max_evaluations=20, mesh_x=MESH)
