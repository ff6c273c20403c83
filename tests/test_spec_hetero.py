"""Heterogeneous chip specs: core types, their one-core views, and the errors of bad files."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from owin_cosim.accel.analytic import AnalyticCostModel
from owin_cosim.accel.spec import ChipSpec, CoreType, load_chip_spec, parse_chip_spec
from owin_cosim.cli import app
from owin_cosim.errors import ConfigError
from owin_cosim.workload.graph import conv2d, depthwise2d, eltwise
from tests.conftest import DATA, SPECS

HETERO = SPECS / "hetero_big_little.yaml"
CONV = conv2d("conv3x3", C=64, M=128, P=28, Q=28, R=3)


@pytest.fixture(scope="module")
def hetero() -> ChipSpec:
    return load_chip_spec(HETERO)


def _doc() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(HETERO.read_text())
    return data


# ---- the spec and its core types ----------------------------------------------------------
def test_hetero_spec_types_counts_and_numbering(hetero: ChipSpec) -> None:
    assert (hetero.num_cores, hetero.mesh_x, hetero.mesh_y) == (16, 4, 4)
    types = hetero.core_types
    assert [(t.name, t.count) for t in types] == [("big", 4), ("little", 10), ("vector", 2)]
    assert types[0].runs is None and types[1].runs is None
    assert types[2].runs == frozenset({"depthwise", "pool", "eltwise"})
    # row-major on the mesh, the types' cores in the order listed
    assert hetero.core_type_of == (0,) * 4 + (1,) * 10 + (2,) * 2
    assert hetero.cores_of_type(2) == (14, 15) and hetero.core_xy(14) == (2, 3)
    assert hetero.types_by_kind("conv") == hetero.types_by_kind("matmul") == (0, 1)
    for kind in ("depthwise", "pool", "eltwise"):
        assert hetero.types_by_kind(kind) == (0, 1, 2)
    assert types[2].runs_kind("pool") and not types[2].runs_kind("conv")
    with pytest.raises(ValueError, match="unknown layer kind"):
        hetero.types_by_kind("attention")
    # ChipSpec.core is the first type's core
    assert hetero.core == types[0].chip.core and hetero.core.num_pes == 256
    pes = [(t.chip.core.pe_mesh_x, t.chip.core.pe_mesh_y) for t in types]
    assert pes == [(16, 16), (8, 8), (64, 1)]
    glb = [t.chip.core.global_buffer.size_words for t in types]
    assert glb == [131072, 32768, 16384]


def test_views_are_one_core_chips_with_the_whole_dram(hetero: ChipSpec) -> None:
    for t in hetero.core_types:
        view = t.chip
        assert view.name == f"hetero_big_little.{t.name}" and view.path == HETERO
        assert (view.num_cores, view.mesh_x, view.mesh_y) == (1, 1, 1)
        assert (view.clock_hz, view.word_bits) == (hetero.clock_hz, hetero.word_bits)
        assert view.dram_bandwidth_Bps == hetero.dram_bandwidth_Bps == 25.6e9
        assert view.dram_energy_pJ_per_byte == hetero.dram_energy_pJ_per_byte == 64.0
        assert view.core.dram.read_bw_words_per_cycle == pytest.approx(12.8)
        # the view is its own single core type: a cycle that ends at once
        (own,) = view.core_types
        assert own.chip is view and (own.name, own.count, own.runs) == ("core", 1, None)
    keys = [t.chip.core.global_buffer.key for t in hetero.core_types]
    assert keys[1] == "core_types[1].architecture.subtree[0].subtree[0].local[0]"


def test_views_cost_big_and_little_differently(hetero: ChipSpec) -> None:
    big, little, vector = (AnalyticCostModel(t.chip) for t in hetero.core_types)
    b, s = big.layer_cost(CONV), little.layer_cost(CONV)
    assert b.bound_by == s.bound_by == "compute"
    assert b.cycles >= CONV.macs // 256 and s.cycles >= CONV.macs // 64
    assert s.cycles == pytest.approx(4 * b.cycles, rel=0.05)  # a quarter of the PEs
    # the vector core's wide buffer makes it the fastest at a depthwise layer
    dw = depthwise2d("dw", C=128, P=28, Q=28, R=3)
    assert vector.layer_cost(dw).cycles < big.layer_cost(dw).cycles
    add = eltwise("add", C=64, P=56, Q=56)
    assert vector.layer_cost(add).bound_by == hetero.core_types[2].chip.core.dram.name


def test_homogeneous_spec_has_one_type_core() -> None:
    chip = load_chip_spec(SPECS / "mc4.yaml")
    (t,) = chip.core_types
    assert (t.name, t.count, t.runs) == ("core", 4, None)
    assert chip.core_type_of == (0, 0, 0, 0) and chip.types_by_kind("pool") == (0,)
    assert t.chip.num_cores == 1 and t.chip.core == chip.core and t.chip.name == "mc4"
    assert t.chip.core_types[0].chip is t.chip
    one = load_chip_spec(DATA / "mc1.yaml")  # a one-core chip is its own view
    assert one.core_types[0].chip is one and one.core_types[0].spec_doc == one.spec_doc
    costs = AnalyticCostModel(chip).layer_cost(CONV), AnalyticCostModel(t.chip).layer_cost(CONV)
    assert costs[0] == costs[1]


@pytest.mark.parametrize("name", ["hetero_big_little", "mc4", "mc16"])
def test_spec_docs_parse_back_to_the_views(name: str) -> None:
    path = SPECS / f"{name}.yaml"
    chip = load_chip_spec(path)
    for t in chip.core_types:
        sent = json.loads(json.dumps(t.spec_doc))  # what a remote estimator receives
        assert sent == t.spec_doc and set(sent) == {"chip", "architecture", "energy_pJ"}
        assert parse_chip_spec(sent, path) == t.chip
    assert parse_chip_spec(json.loads(json.dumps(chip.spec_doc)), path) == chip
    again = load_chip_spec(path)  # stable: the same digest on every load
    assert json.dumps(again.spec_doc, sort_keys=True) == json.dumps(chip.spec_doc, sort_keys=True)
    assert [t.spec_doc for t in again.core_types] == [t.spec_doc for t in chip.core_types]


def test_pickling_round_trip(hetero: ChipSpec) -> None:
    for chip in (hetero, load_chip_spec(DATA / "mc1.yaml"), load_chip_spec(SPECS / "mc8.yaml")):
        back = pickle.loads(pickle.dumps(chip))
        assert back == chip and hash(back) == hash(chip)
        assert (back.hop_matrix() == chip.hop_matrix()).all()
        assert back.core_type_of == chip.core_type_of
        for t, u in zip(back.core_types, chip.core_types, strict=True):
            assert isinstance(t, CoreType) and t == u and t.chip == u.chip
            assert t.chip.core_types[0].chip is t.chip
            assert AnalyticCostModel(t.chip).layer_cost(CONV) == AnalyticCostModel(
                u.chip
            ).layer_cost(CONV)


def test_a_kind_no_type_runs_is_not_a_spec_error(tmp_path: Path) -> None:
    data = _doc()
    for t in data["core_types"]:
        t["runs"] = ["conv", "matmul"]
    path = tmp_path / "convs.yaml"
    path.write_text(yaml.safe_dump(data))
    chip = load_chip_spec(path)
    assert chip.types_by_kind("pool") == () and chip.types_by_kind("conv") == (0, 1, 2)


# ---- bad files ----------------------------------------------------------------------------
def _edit(fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = copy.deepcopy(_doc())
    fn(data)
    return data


def _both(d: dict[str, Any]) -> None:
    d["architecture"] = d["core_types"][0]["architecture"]


def _neither(d: dict[str, Any]) -> None:
    del d["core_types"]


def _count(d: dict[str, Any]) -> None:
    d["core_types"][1]["count"] = 9


def _kind(d: dict[str, Any]) -> None:
    d["core_types"][2]["runs"] = ["softmax", "pool"]


def _later_kind(d: dict[str, Any]) -> None:
    d["core_types"][2]["runs"] = ["pool", "conv2d"]


def _dup_kind(d: dict[str, Any]) -> None:
    d["core_types"][2]["runs"] = ["pool", "pool"]


def _no_kinds(d: dict[str, Any]) -> None:
    d["core_types"][2]["runs"] = []


def _dup_name(d: dict[str, Any]) -> None:
    d["core_types"][2]["name"] = "big"


def _bad_name(d: dict[str, Any]) -> None:
    d["core_types"][1]["name"] = "little core"


def _bad_depth(d: dict[str, Any]) -> None:
    glb = d["core_types"][1]["architecture"]["subtree"][0]["subtree"][0]["local"][0]
    glb["attributes"]["memory_depth"] = -8


def _bad_class(d: dict[str, Any]) -> None:
    pe = d["core_types"][2]["architecture"]["subtree"][0]["subtree"][0]["subtree"][0]
    pe["local"][1]["class"] = "alu"


def _version(d: dict[str, Any]) -> None:
    d["core_types"][0]["architecture"]["version"] = 0.4


def _missing_energy(d: dict[str, Any]) -> None:
    del d["core_types"][2]["energy_pJ"]["lane_rf"]


def _dram_energy(d: dict[str, Any]) -> None:
    del d["chip"]["dram"]["energy_pJ_per_byte"]
    d["core_types"][1]["energy_pJ"]["DRAM"] = {"read": 400.0, "write": 400.0}


def _top_energy(d: dict[str, Any]) -> None:
    d["energy_pJ"] = d["core_types"][0]["energy_pJ"]


def _unknown_key(d: dict[str, Any]) -> None:
    d["core_types"][0]["area_mm2"] = 9.0


def _zero_count(d: dict[str, Any]) -> None:
    d["core_types"][0]["count"] = 0


def _no_types(d: dict[str, Any]) -> None:
    d["core_types"] = []


@pytest.mark.parametrize(
    ("edit", "key", "words"),
    [
        (_both, "core_types", "not both"),
        (_neither, "architecture", "or core_types"),
        (_count, "chip.cores", "4 + 9 + 2 = 15"),
        (_kind, "core_types[2].runs[0]", "expected one of conv, matmul, depthwise"),
        (_later_kind, "core_types[2].runs[1]", "got 'conv2d'"),
        (_dup_kind, "core_types[2].runs[1]", "duplicate layer kind"),
        (_no_kinds, "core_types[2].runs", "at least one layer kind"),
        (_dup_name, "core_types[2].name", "duplicate core type name 'big'"),
        (_bad_name, "core_types[1].name", "expected an identifier"),
        (
            _bad_depth,
            "core_types[1].architecture.subtree[0].subtree[0].local[0].attributes.memory_depth",
            "greater than 0",
        ),
        (
            _bad_class,
            "core_types[2].architecture.subtree[0].subtree[0].subtree[0].local[1].class",
            "unknown component class 'alu'",
        ),
        (_version, "core_types[0].architecture.version", "expected 0.3"),
        (_missing_energy, "core_types[2].energy_pJ.lane_rf", "missing energies"),
        (_dram_energy, "core_types[1].energy_pJ.DRAM", "the chip has one DRAM"),
        (_top_energy, "energy_pJ", "each core type has its own"),
        (_unknown_key, "core_types[0].area_mm2", "unknown key"),
        (_zero_count, "core_types[0].count", "greater than or equal to 1"),
        (_no_types, "core_types", "at least one core type"),
    ],
)
def test_bad_hetero_files_name_the_key(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], key: str, words: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_edit(edit)))
    with pytest.raises(ConfigError) as info:
        load_chip_spec(path)
    assert info.value.file == str(path)
    assert info.value.key == key, str(info.value)
    assert words in info.value.message, str(info.value)


# ---- the estimate command -----------------------------------------------------------------
def test_estimate_picks_a_core_type(tmp_path: Path) -> None:
    prob = tmp_path / "prob.yaml"
    prob.write_text(
        yaml.safe_dump(
            {
                "problem": {
                    "shape": {"name": "CNN-Layer"},
                    "instance": {"C": 64, "M": 128, "P": 28, "Q": 28, "R": 3, "S": 3, "N": 1},
                }
            }
        )
    )
    base = ["estimate", "--arch", str(HETERO), "--problem", str(prob), "--json"]
    runner = CliRunner()
    out = {}
    for name in ("big", "little", None):
        res = runner.invoke(app, base + (["--core-type", name] if name else []))
        assert res.exit_code == 0, res.output
        out[name] = json.loads(res.output)
    assert out[None] == out["big"] and out["big"]["core_type"] == "big"
    assert out["little"]["cycles"] > out["big"]["cycles"]
    for bad, words in (("vector", "not conv; expected one of big, little"), ("tiny", "got")):
        res = runner.invoke(app, [*base, "--core-type", bad])
        assert res.exit_code == 2 and "--core-type" in res.output and words in res.output
