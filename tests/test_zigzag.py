"""The ``zigzag`` cost backend: translation, real ZigZag runs on small layers, the cache,
the isolation of its child process, the missing-extra error and ``owin-cosim estimate``."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from owin_cosim.accel.cache import CachedCostModel, CostCache
from owin_cosim.accel.cost_model import LayerCost
from owin_cosim.accel.registry import COST_BACKENDS, backend_options, make_cost_model
from owin_cosim.accel.spec import ChipSpec, load_chip_spec
from owin_cosim.accel.timeloop.formats import layer_to_problem
from owin_cosim.accel.zigzag.backend import ZigZagCostModel
from owin_cosim.accel.zigzag.runner import run_zigzag
from owin_cosim.accel.zigzag.translate import (
    hardware_doc,
    mapping_doc,
    spatial_unrolling,
    workload_doc,
)
from owin_cosim.cli import app
from owin_cosim.errors import BackendError, ConfigError
from owin_cosim.scenario.schema import load_scenario
from owin_cosim.workload.graph import Layer, conv2d, depthwise2d, matmul
from tests.conftest import SPECS, scenario_dict, write_scenario

CONV = conv2d("conv", C=16, M=32, P=8, Q=8, R=3, S=3)
FC = matmul("fc", rows=4, in_features=64, out_features=64)


@pytest.fixture(scope="module")
def chip() -> ChipSpec:
    return load_chip_spec(SPECS / "mc4.yaml")


@pytest.fixture(scope="module")
def costed(
    chip: ChipSpec, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any], dict[str, LayerCost]]:
    """One real ZigZag run per layer, through the persistent cache (as a scenario does)."""
    path = tmp_path_factory.mktemp("zigzag") / "costs.sqlite"
    model = make_cost_model(chip, "mc4", "zigzag", backend_options("zigzag"), cache=CostCache(path))
    assert isinstance(model, CachedCostModel) and isinstance(model.inner, ZigZagCostModel)
    costs = {layer.name: model.layer_cost(layer) for layer in (CONV, FC)}
    assert model.calls == 2
    summaries = {layer.name: model.inner.summary(layer) for layer in (CONV, FC)}
    return path, summaries, costs


def test_hardware_translation(chip: ChipSpec) -> None:
    hw = hardware_doc(chip)
    mems = hw["memories"]
    assert list(mems) == ["pe_spad", "glb", "DRAM"]  # ZigZag lists innermost first
    assert hw["operational_array"]["sizes"] == [chip.core.pe_mesh_x, chip.core.pe_mesh_y]
    assert hw["operational_array"]["unit_energy"] == chip.core.mac_energy_pJ
    assert mems["pe_spad"]["served_dimensions"] == []  # one per PE
    assert mems["glb"]["served_dimensions"] == ["D1", "D2"]
    assert mems["pe_spad"]["operands"] == ["I2", "O"]  # weights and partial sums
    assert mems["pe_spad"]["size"] == 192 * 16 and mems["glb"]["size"] == 131072 * 16
    glb_read = mems["glb"]["ports"][0]
    assert (glb_read["bandwidth_min"], glb_read["bandwidth_max"]) == (16, 32 * 16)
    # per access of bandwidth_max bits: the per-word energy times 32 words
    assert mems["glb"]["r_cost"] == pytest.approx(chip.core.global_buffer.read_energy_pJ * 32)
    assert mems["DRAM"]["ports"][0]["bandwidth_max"] == 204  # 12.8 words/cycle, rounded down


def test_layer_and_mapping_translation(chip: ChipSpec) -> None:
    conv = workload_doc(conv2d("s2", C=3, M=8, P=4, Q=6, R=5, S=3, stride=2), 16)[0]
    sizes = dict(zip(conv["loop_dims"], conv["loop_sizes"], strict=True))
    assert sizes == {"B": 1, "K": 8, "C": 3, "OY": 4, "OX": 6, "FY": 5, "FX": 3}
    assert conv["dimension_relations"] == ["ix=2*ox+1*fx", "iy=2*oy+1*fy"]
    dw = workload_doc(depthwise2d("dw", C=32, P=14, Q=14, R=3), 16)[0]
    dw_sizes = dict(zip(dw["loop_dims"], dw["loop_sizes"], strict=True))
    assert (dw_sizes["B"], dw_sizes["K"], dw_sizes["C"]) == (32, 1, 1)  # channels in B
    assert spatial_unrolling(chip, CONV) == {"D1": ("C", 16), "D2": ("K", 16)}
    assert mapping_doc({"D1": ("OX", 8)})[0]["spatial_mapping"] == {
        "D1": ["OX, 8"],
        "D2": ["C, 1"],
    }
    assert "spatial_mapping" not in mapping_doc(None)[0]  # ZigZag's own generator


@pytest.mark.parametrize("name", ["conv", "fc"])
def test_small_layers_end_to_end(
    chip: ChipSpec, costed: tuple[Path, dict[str, Any], dict[str, LayerCost]], name: str
) -> None:
    _, summaries, costs = costed
    cost, summary, layer = costs[name], summaries[name], {"conv": CONV, "fc": FC}[name]
    assert cost.macs == layer.macs
    assert cost.cycles >= layer.macs / chip.core.num_pes
    assert cost.energy_pJ > 0 and 0 < cost.utilization <= 1
    # with and without the on/off-loading of data
    assert summary["latency"] <= cost.cycles < summary["latency"] + 1  # rounded up
    assert 0 < summary["latency_no_loading"] < summary["latency"]
    assert summary["onloading_cycles"] > 0 and summary["offloading_cycles"] > 0
    assert cost.compute_cycles is not None
    assert summary["ideal_temporal_cycles"] <= cost.compute_cycles <= cost.cycles
    assert {"DRAM", "glb", "pe_spad", "mac"} == set(cost.levels)
    assert sum(lv.energy_pJ for lv in cost.levels.values()) == pytest.approx(cost.energy_pJ)
    assert cost.levels["pe_spad"].reads >= layer.macs  # every MAC reads its weight
    assert cost.seconds == pytest.approx(cost.cycles / chip.clock_hz)


def test_second_call_is_a_cache_hit(
    chip: ChipSpec, costed: tuple[Path, dict[str, Any], dict[str, LayerCost]]
) -> None:
    path, _, costs = costed
    again = make_cost_model(chip, "mc4", "zigzag", backend_options("zigzag"), cache=CostCache(path))
    assert isinstance(again, CachedCostModel)
    assert again.layer_cost(conv2d("renamed", C=16, M=32, P=8, Q=8, R=3, S=3)) == costs["conv"]
    assert (again.calls, again.hits) == (0, 1)
    # an option that changes the cost is a different key; the timeout is not
    opts = COST_BACKENDS.load("zigzag").options
    assert opts({"zigzag": None}, Path(".")) == backend_options("zigzag")
    other = make_cost_model(
        chip,
        "mc4",
        "zigzag",
        {**backend_options("zigzag"), "zigzag_timeout_s": 5.0},
        cache=CostCache(path),
    )
    assert isinstance(other, CachedCostModel) and other.layer_cost(CONV) == costs["conv"]
    assert other.calls == 0


def test_timeout_kills_the_child_and_cleans_up(
    chip: ChipSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    model = ZigZagCostModel(chip, timeout_s=0.5)
    with pytest.raises(BackendError, match=r"'conv' \(conv .*within 0.5 s"):
        model.layer_cost(CONV)
    assert list(tmp_path.iterdir()) == []


def test_zigzag_failure_names_the_layer(chip: ChipSpec) -> None:
    job = ZigZagCostModel(chip).job(CONV)
    job["workload"][0]["operator_type"] = "NoSuchOperator"
    with pytest.raises(BackendError, match=r"zigzag failed on layer the-layer.*\n"):
        run_zigzag(job, timeout_s=120, what="the-layer")


def test_missing_extra_is_a_clear_error() -> None:
    code = textwrap.dedent(
        """
        import importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] == "zigzag":
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None

        sys.meta_path.insert(0, Block())
        from owin_cosim.accel.registry import backend_options, make_cost_model
        from owin_cosim.accel.spec import load_chip_spec
        from owin_cosim.errors import BackendUnavailableError

        chip = load_chip_spec(sys.argv[1])
        try:
            make_cost_model(chip, "x", "zigzag", backend_options("zigzag"))
        except BackendUnavailableError as exc:
            print(exc)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(SPECS / "mc4.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert 'pip install ".[zigzag]"' in out and "'zigzag'" in out


def test_estimate_command(tmp_path: Path) -> None:
    layer: Layer = conv2d("tiny", C=8, M=16, P=4, Q=4, R=3, S=3)
    prob = tmp_path / "prob.yaml"
    prob.write_text(yaml.safe_dump(layer_to_problem(layer)))
    base = ["estimate", "--arch", str(SPECS / "mc4.yaml"), "--problem", str(prob)]
    res = CliRunner().invoke(app, [*base, "--backend", "zigzag", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["backend"] == "zigzag" and data["mode"] == "ZigZag, searched mapping"
    assert data["cycles"] >= layer.macs // 256 and data["energy_pJ"] > 0
    assert {"DRAM", "glb", "pe_spad"} <= set(data["levels"])


def test_scenario_keys_reach_the_backend_options(tmp_path: Path) -> None:
    acc: dict[str, Any] = {"spec": str(SPECS / "mc4.yaml"), "cost_backend": "zigzag"}
    acc["zigzag"] = {"spatial": "zigzag", "lpf_limit": 4, "timeout_s": 30}
    sc = load_scenario(write_scenario(tmp_path / "s.yaml", scenario_dict(accelerator=acc)))
    opts = COST_BACKENDS.load("zigzag").options(sc.accelerator.sections(), tmp_path)
    assert opts == {
        "latency_scale": 1.0,
        "zigzag_spatial": "zigzag",
        "zigzag_lpf_limit": 4,
        "zigzag_timeout_s": 30.0,
    }
    acc["zigzag"] = {"lpf_limit": 0}
    with pytest.raises(ConfigError, match=r"accelerator\.zigzag\.lpf_limit"):
        load_scenario(write_scenario(tmp_path / "bad.yaml", scenario_dict(accelerator=acc)))
