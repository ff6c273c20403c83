"""Accelerator specs (loader, NoC helpers) and the analytic per-core cost model."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from owin_cosim.accel.analytic import AnalyticCostModel
from owin_cosim.accel.cost_model import CostModel
from owin_cosim.accel.spec import ChipSpec, load_chip_spec, parse_chip_spec
from owin_cosim.errors import ConfigError
from owin_cosim.workload.graph import Layer, OpKind, conv2d, depthwise2d, eltwise, matmul, pool2d
from tests.conftest import timeloop_reference

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "accel_specs"
REFERENCE = timeloop_reference()

EXPECTED = {  # name: (cores, mesh_x, mesh_y, PEs per core, PE mesh x, y, GLB words)
    "mc4": (4, 2, 2, 256, 16, 16, 131072),
    "mc8": (8, 4, 2, 128, 16, 8, 65536),
    "mc16": (16, 4, 4, 64, 8, 8, 32768),
}


@pytest.fixture(scope="module")
def chips() -> dict[str, ChipSpec]:
    return {name: load_chip_spec(SPECS / f"{name}.yaml") for name in EXPECTED}


def _base() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((SPECS / "mc4.yaml").read_text())
    return data


def _load_bad(tmp_path: Path, data: dict[str, Any] | str) -> ConfigError:
    path = tmp_path / "bad.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_chip_spec(path)
    assert info.value.file == str(path)
    return info.value


GLB = "architecture.subtree[0].subtree[0].local[0]"
PE = "architecture.subtree[0].subtree[0].subtree[0]"


# ---- the specs ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(EXPECTED))
def test_specs_load(chips: dict[str, ChipSpec], name: str) -> None:
    chip = chips[name]
    cores, mx, my, pes, px, py, glb = EXPECTED[name]
    assert (chip.name, chip.num_cores, chip.mesh_x, chip.mesh_y) == (name, cores, mx, my)
    assert (chip.core.num_pes, chip.core.pe_mesh_x, chip.core.pe_mesh_y) == (pes, px, py)
    assert chip.path == SPECS / f"{name}.yaml"
    assert chip.word_bits == 16 and chip.word_bytes == 2 and chip.clock_hz == 1e9
    dram, buf, spad = chip.core.levels
    assert [lv.name for lv in chip.core.levels] == ["DRAM", "glb", "pe_spad"]
    assert dram.size_words is None and buf.size_words == glb and spad.size_words == 192
    assert (dram.instances, buf.instances, spad.instances) == (1, 1, pes)
    # every core sees the whole chip's DRAM (shared by contention), in words per cycle
    assert dram.read_bw_words_per_cycle == pytest.approx(25.6e9 / 1e9 / 2)
    assert dram.read_energy_pJ == pytest.approx(128.0)  # 512 pJ per 4-word access
    assert buf.read_energy_pJ == pytest.approx(37.09967 / 4)
    assert chip.core.mac_energy_pJ == pytest.approx(2.20035)
    assert chip.dram_bandwidth_Bps == pytest.approx(25.6e9)
    assert chip.core.peak_macs_per_cycle * cores == 1024  # iso-compute design points


@pytest.mark.parametrize("name", list(EXPECTED))
def test_hop_matrix(chips: dict[str, ChipSpec], name: str) -> None:
    chip = chips[name]
    h = chip.hop_matrix()
    n = chip.num_cores
    assert h.shape == (n, n) and h.dtype.kind == "i"
    assert np.array_equal(h, h.T) and not h.diagonal().any()
    for a in range(n):
        ax, ay = chip.core_xy(a)
        assert a == ay * chip.mesh_x + ax
        for b in range(n):
            bx, by = chip.core_xy(b)
            assert h[a, b] == chip.hops(a, b) == abs(ax - bx) + abs(ay - by)
    assert h.max() == chip.mesh_x + chip.mesh_y - 2
    with pytest.raises(ValueError):
        chip.hops(0, n)


def test_noc_transfer(chips: dict[str, ChipSpec]) -> None:
    chip = chips["mc16"]
    assert chip.noc_transfer_s(1 << 20, 5, 5) == 0.0
    assert chip.noc_energy_pJ(1 << 20, 5, 5) == 0.0
    # (64 B / 32 B per cycle + 1 hop x 2 cycles) at 1 GHz
    assert chip.noc_transfer_s(64, 0, 1) == pytest.approx(4e-9)
    times = [chip.noc_transfer_s(4096, 0, dst) for dst in (1, 2, 3, 7, 11, 15)]
    hops = [chip.hops(0, dst) for dst in (1, 2, 3, 7, 11, 15)]
    assert hops == [1, 2, 3, 4, 5, 6]
    assert all(a < b for a, b in itertools.pairwise(times))
    assert chip.noc_energy_pJ(100, 0, 15) == pytest.approx(100 * 6 * 1.2)
    assert chip.hop_latency_s == pytest.approx(2e-9)
    assert chip.link_bytes_per_s == pytest.approx(32e9)


# ---- loader errors ---------------------------------------------------------------------
def test_error_missing_key(tmp_path: Path) -> None:
    data = _base()
    del data["chip"]["noc"]["link_bandwidth_bytes_per_cycle"]
    err = _load_bad(tmp_path, data)
    assert err.key == "chip.noc.link_bandwidth_bytes_per_cycle"
    assert "missing" in err.message


def test_error_wrong_type(tmp_path: Path) -> None:
    data = _base()
    data["chip"]["noc"]["mesh_x"] = "two"
    err = _load_bad(tmp_path, data)
    assert err.key == "chip.noc.mesh_x" and "integer" in err.message
    data = _base()
    data["architecture"]["subtree"][0]["subtree"][0]["local"][0]["attributes"]["memory_depth"] = 1.5
    assert _load_bad(tmp_path, data).key == f"{GLB}.attributes.memory_depth"


def test_error_unsigned_exponent_is_text(tmp_path: Path) -> None:
    text = (SPECS / "mc4.yaml").read_text().replace("clock_hz: 1.0e+9", "clock_hz: 1.0e9")
    err = _load_bad(tmp_path, text)
    assert err.key == "chip.clock_hz" and "1.0e+9" in err.message


def test_error_cores_not_mesh(tmp_path: Path) -> None:
    data = _base()
    data["chip"]["noc"]["mesh_x"] = 4
    err = _load_bad(tmp_path, data)
    assert err.key == "chip.noc.mesh_x" and "chip.cores" in err.message


def test_error_negative_bandwidth(tmp_path: Path) -> None:
    data = _base()
    data["chip"]["dram"]["bandwidth_GBps"] = -25.6
    err = _load_bad(tmp_path, data)
    assert err.key == "chip.dram.bandwidth_GBps" and "greater than 0" in err.message
    data = _base()
    data["architecture"]["subtree"][0]["subtree"][0]["local"][0]["attributes"][
        "read_bandwidth"
    ] = -1
    assert _load_bad(tmp_path, data).key == f"{GLB}.attributes.read_bandwidth"


def test_error_unknown_key(tmp_path: Path) -> None:
    data = _base()
    data["chip"]["noc"]["colour"] = "red"
    err = _load_bad(tmp_path, data)
    assert err.key == "chip.noc.colour" and "unknown key" in err.message
    data = _base()
    data["architecture"]["subtree"][0]["subtree"][0]["local"][0]["attributes"]["size"] = 1
    assert _load_bad(tmp_path, data).key == f"{GLB}.attributes.size"


def test_error_structure_and_energies(tmp_path: Path) -> None:
    data = _base()
    data["architecture"]["subtree"][0]["subtree"][0]["local"][0]["class"] = "magic_SRAM"
    err = _load_bad(tmp_path, data)
    assert err.key == f"{GLB}.class" and "unknown component class" in err.message

    data = _base()
    data["architecture"]["subtree"][0]["subtree"][0]["subtree"][0]["local"][0]["attributes"][
        "meshX"
    ] = 7
    assert _load_bad(tmp_path, data).key.startswith(f"{PE}.local[")

    data = _base()
    del data["energy_pJ"]["pe_spad"]
    err = _load_bad(tmp_path, data)
    assert err.key == "energy_pJ.pe_spad" and "missing energies" in err.message

    data = _base()
    del data["energy_pJ"]["mac"]["mac"]
    assert _load_bad(tmp_path, data).key == "energy_pJ.mac.mac"  # an empty entry

    data = _base()
    data["chip"]["dram"]["energy_pJ_per_byte"] = 10.0  # disagrees with energy_pJ.DRAM
    assert _load_bad(tmp_path, data).key == "chip.dram.energy_pJ_per_byte"

    data = _base()
    data["architecture"]["subtree"][0]["subtree"][0]["subtree"][0]["name"] = "PE[0..x]"
    assert _load_bad(tmp_path, data).key == f"{PE}.name"

    err = _load_bad(tmp_path, "chip: [unclosed")
    assert err.key == "" and "YAML" in err.message
    with pytest.raises(ConfigError):
        load_chip_spec(tmp_path / "absent.yaml")


def test_dram_energy_from_chip_block_only() -> None:
    data = _base()
    del data["energy_pJ"]["DRAM"]
    chip = parse_chip_spec(data, "inline")
    assert chip.core.dram.read_energy_pJ == pytest.approx(128.0)


# ---- the analytic model ------------------------------------------------------------------
LAYERS = [
    conv2d("stem", C=3, M=64, P=112, Q=112, R=7, stride=2),
    conv2d("c3x3", C=64, M=64, P=56, Q=56),
    conv2d("late", C=256, M=512, P=7, Q=7),
    conv2d("pw", C=128, M=256, P=28, Q=28, R=1, N=2),
    matmul("qkv", rows=197, in_features=768, out_features=2304),
    matmul(
        "attn", rows=197, in_features=64, out_features=197, batch=12, weights_from_activation=True
    ),
    matmul("fc", rows=1, in_features=2048, out_features=1000),
    depthwise2d("dw", C=256, P=28, Q=28, stride=1),
    pool2d("pool", C=64, P=56, Q=56, R=3, stride=2),
    eltwise("add", C=256, P=56, Q=56),
]


def test_protocol_and_sanity(chips: dict[str, ChipSpec]) -> None:
    for chip in chips.values():
        model = AnalyticCostModel(chip)
        assert isinstance(model, CostModel) and model.name == "analytic"
        level_names = {lv.name for lv in chip.core.levels}
        for layer in LAYERS:
            c = model.layer_cost(layer)
            assert c.macs == layer.macs
            assert 0 < c.utilization <= 1
            assert c.cycles >= layer.macs / chip.core.num_pes
            assert c.seconds == pytest.approx(c.cycles / chip.clock_hz)
            assert set(c.levels) == level_names
            assert c.bound_by in level_names | {"compute"}
            assert c.energy_pJ == pytest.approx(
                sum(lv.energy_pJ for lv in c.levels.values()) + c.macs * chip.core.mac_energy_pJ
            )
            dram = c.levels["DRAM"]
            # everything the layer touches crosses the DRAM at least once
            assert dram.reads >= layer.weight_elems and dram.writes == layer.output_elems
            assert c.levels["glb"].fills == dram.reads
            m = model.mapping(layer)
            assert m.compute_cycles <= c.cycles
            assert m.dataflow == (
                "cw" if layer.op in (OpKind.DEPTHWISE, OpKind.POOL, OpKind.ELTWISE) else m.dataflow
            )


def test_bigger_layer_costs_more(chips: dict[str, ChipSpec]) -> None:
    model = AnalyticCostModel(chips["mc8"])
    for layer in LAYERS:
        if layer.op not in (OpKind.CONV, OpKind.MATMUL):
            continue
        small = model.layer_cost(layer)
        big = model.layer_cost(Layer(**{**_fields(layer), "M": 2 * layer.M}))
        assert big.cycles >= small.cycles and big.energy_pJ >= small.energy_pJ


def _fields(layer: Layer) -> dict[str, Any]:
    return {f: getattr(layer, f) for f in Layer.__dataclass_fields__}


def test_memoised_by_shape_and_deterministic(chips: dict[str, ChipSpec]) -> None:
    chip = chips["mc4"]
    model = AnalyticCostModel(chip)
    a = model.layer_cost(conv2d("a", C=32, M=48, P=20, Q=20))
    b = model.layer_cost(conv2d("b", C=32, M=48, P=20, Q=20, group="other"))
    assert a is b
    again = AnalyticCostModel(chip).layer_cost(conv2d("c", C=32, M=48, P=20, Q=20))
    assert again == a
    assert AnalyticCostModel(chip).mapping(LAYERS[1]) == model.mapping(LAYERS[1])


def test_latency_scale_and_dataflow_restriction(chips: dict[str, ChipSpec]) -> None:
    chip = chips["mc4"]
    base = AnalyticCostModel(chip).layer_cost(LAYERS[0])
    scaled = AnalyticCostModel(chip, latency_scale=2.0).layer_cost(LAYERS[0])
    assert scaled.cycles == base.cycles and scaled.seconds == pytest.approx(2 * base.seconds)
    for flow in ("ws", "os", "is"):
        only = AnalyticCostModel(chip, dataflows=[flow])
        assert only.mapping(LAYERS[0]).dataflow == flow
        assert only.layer_cost(LAYERS[0]).cycles >= base.cycles
    with pytest.raises(ValueError):
        AnalyticCostModel(chip, dataflows=["rs"])
    with pytest.raises(ValueError):
        AnalyticCostModel(chip, latency_scale=0.0)


def test_dram_bound_matmul(chips: dict[str, ChipSpec]) -> None:
    for chip in chips.values():
        c = AnalyticCostModel(chip).layer_cost(
            matmul("gemv", rows=1, in_features=4096, out_features=4096)
        )
        # every weight read once: the whole DRAM bandwidth sets the time (on mc16 the
        # GLB's re-reads for its small PE array take 0.03 % longer and win the max)
        bound = chip.core.global_buffer if chip.name == "mc16" else chip.core.dram
        assert c.bound_by == bound.name
        share = chip.core.dram.read_bw_words_per_cycle
        assert c.cycles == pytest.approx((4096 * 4096 + 4096 + 4096) / share, rel=0.01)


def test_layer_that_fits_no_core(tmp_path: Path) -> None:
    data = _base()
    data["architecture"]["subtree"][0]["subtree"][0]["local"][0]["attributes"]["memory_depth"] = (
        4  # 16 words
    )
    chip = parse_chip_spec(data, tmp_path / "tiny.yaml")
    model = AnalyticCostModel(chip)
    big = conv2d("big", C=64, M=64, P=8, Q=8)
    assert model.min_buffer_words(big) == 2 * 9 * 64 + 1
    assert not model.fits(big)
    with pytest.raises(ConfigError) as info:
        model.layer_cost(big)
    assert info.value.key == f"{GLB}.attributes.memory_depth"
    small = eltwise("add", C=8, P=4, Q=4)
    assert model.min_buffer_words(small) == 3 and model.fits(small)
    assert model.layer_cost(small).cycles > 0
    # the smallest legal tile is enough: a row of Q that does not fit gets tiled
    wide = pool2d("pool", C=4, P=2, Q=64, R=2, stride=1)
    assert model.fits(wide) and model.mapping(wide).tile["Q"] < 64


@settings(max_examples=40, deadline=None)
@given(
    op=st.sampled_from(list(OpKind)),
    R=st.sampled_from([1, 3, 5]),
    P=st.integers(1, 40),
    Q=st.integers(1, 40),
    C=st.integers(1, 300),
    M=st.integers(1, 300),
    N=st.integers(1, 3),
    stride=st.sampled_from([1, 2]),
    wfa=st.booleans(),
)
def test_invariants_random_layers(
    op: OpKind, R: int, P: int, Q: int, C: int, M: int, N: int, stride: int, wfa: bool
) -> None:
    chip = _MC8
    if op is OpKind.ELTWISE:
        R, stride = 1, 1
    layer = Layer(
        "x",
        op,
        R=R,
        S=R,
        P=P,
        Q=Q,
        C=C,
        M=M if op in (OpKind.CONV, OpKind.MATMUL) else 1,
        N=N,
        Hstride=stride,
        Wstride=stride,
        operands=2 if op is OpKind.ELTWISE else 1,
        weights_from_activation=wfa and op is OpKind.MATMUL,
    )
    model = AnalyticCostModel(chip)
    c = model.layer_cost(layer)
    assert 0 < c.utilization <= 1 and c.cycles * chip.core.num_pes >= c.macs
    assert c.energy_pJ > 0 and c.levels["DRAM"].writes == layer.output_elems
    tile = model.mapping(layer).tile
    assert 1 <= tile["P"] <= P * N and 1 <= tile["Q"] <= Q


_MC8 = load_chip_spec(SPECS / "mc8.yaml")


# ---- calibration against the real Timeloop -------------------------------------------------
def reference_chip(design: str) -> ChipSpec:
    """Our ChipSpec for a v3 Timeloop reference design (one core, registers dropped).

    The DRAM gets ``width`` bits per cycle (Timeloop leaves it unlimited); energies are
    the ERT max energies, as Timeloop charges them.
    """
    root = REFERENCE / "v3" / "arch" / design
    arch = yaml.safe_load((root / "inputs" / "arch.yaml").read_text())["architecture"]
    ert = yaml.safe_load((root / "accelergy" / "ERT_summary.yaml").read_text())

    def strip(node: dict[str, Any]) -> None:
        node["local"] = [c for c in node.get("local", []) if c["class"] != "reg_storage"]
        for child in node.get("subtree", []):
            strip(child)

    arch = copy.deepcopy(arch)
    for node in arch["subtree"]:
        strip(node)
    energies: dict[str, dict[str, float]] = {}
    for entry in ert["ERT_summary"]["table_summary"]:
        acts = {a["name"]: a.get("max_energy", a.get("energy")) for a in entry["actions"]}
        comp = entry["name"].split(".")[-1]
        if "mac_random" in acts:
            energies[comp] = {"mac": acts["mac_random"]}
        elif "read" in acts:
            energies[comp] = {"read": acts["read"], "write": acts["write"]}
    dram = arch["subtree"][0]["local"][0]["attributes"]
    clock = 1e9
    data = {
        "chip": {
            "name": design,
            "cores": 1,
            "clock_hz": clock,
            "word_bits": dram["word-bits"],
            "noc": {
                "mesh_x": 1,
                "mesh_y": 1,
                "link_bandwidth_bytes_per_cycle": 32,
                "hop_latency_cycles": 1,
                "energy_pJ_per_byte_hop": 1.0,
            },
            "dram": {"bandwidth_GBps": dram["width"] / 8 * clock / 1e9},
        },
        "architecture": arch,
        "energy_pJ": energies,
    }
    return parse_chip_spec(data, root / "inputs" / "arch.yaml")


def test_calibration_against_timeloop_simple_weight_stationary() -> None:
    chip = reference_chip("simple_weight_stationary")
    assert (chip.core.num_pes, chip.core.global_buffer.size_words) == (256, 65536)
    ws_only = AnalyticCostModel(chip, dataflows=["ws"])  # the design's M x C constraint
    free = AnalyticCostModel(chip)
    for i in (1, 2, 3):
        case = REFERENCE / "v3" / "cases" / f"simple_weight_stationary__AlexNet_layer{i}"
        row = json.loads((case / "summary.json").read_text())["row"]
        layer = Layer(
            f"alexnet{i}",
            OpKind.CONV,
            R=row["R"],
            S=row["S"],
            P=row["P"],
            Q=row["Q"],
            C=row["C"],
            M=row["M"],
            N=row["N"],
            Hstride=row["Hstride"],
            Wstride=row["Wstride"],
        )
        assert layer.macs == row["computes"]
        ours = ws_only.layer_cost(layer)
        assert 0.5 <= ours.cycles / row["cycles"] <= 2.0, (i, ours.cycles, row["cycles"])
        assert free.layer_cost(layer).cycles <= ours.cycles
