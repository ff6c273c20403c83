"""One named test per case of issue 8, item 1: each is exit 2 with one clear line."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from owin_cosim.cli import app
from owin_cosim.errors import ConfigError
from owin_cosim.scenario.limits import ENV_VAR, check_model, check_uplink, work_factor
from owin_cosim.scenario.schema import Scenario, load_scenario
from tests.conftest import SPECS, scenario_dict, write_scenario
from tests.robustness.corpus import _bomb, _put

runner = CliRunner()


def _validate(path: Path) -> tuple[int, str]:
    res = runner.invoke(app, ["validate", str(path)])
    assert "Traceback" not in res.output
    return res.exit_code, res.output


def _bad(tmp_path: Path, dotted: str, value: Any) -> tuple[int, str]:
    return _validate(write_scenario(tmp_path / "s.yaml", _put(scenario_dict(), dotted, value)))


# ---- markup ---------------------------------------------------------------------------
def test_markup_in_an_error_message_is_printed_as_plain_text(tmp_path: Path) -> None:
    data = scenario_dict()
    del data["model"]
    data["devices"][0]["modality"] = "[/bold]"
    code, out = _validate(write_scenario(tmp_path / "s.yaml", data))
    assert code == 2 and "'[/bold]'" in out and "devices[0].modality" in out, out


def test_markup_in_a_file_name_is_printed_as_plain_text(tmp_path: Path) -> None:
    code, out = _validate(tmp_path / "[bold]x[/].yaml")
    assert code == 2 and "[bold]x[/].yaml: file not found" in out, out


def test_markup_in_validate_output_is_printed_as_plain_text(tmp_path: Path) -> None:
    data = scenario_dict()
    data["devices"][0]["modality"] = "[/x]"  # encoders are given: any modality is valid
    code, out = _validate(write_scenario(tmp_path / "s.yaml", data))
    assert code == 0 and "[/x]" in out, out


def test_markup_in_the_scenario_path_does_not_break_the_status_line(tmp_path: Path) -> None:
    (tmp_path / "[").mkdir()
    path = write_scenario(tmp_path / "[" / "bold].yaml", scenario_dict())  # .../[/bold].yaml
    code, out = _validate(path)
    assert code == 0 and "valid" in out, out
    out_dir = tmp_path / "[" / "x]out"  # .../[/x]out
    res = runner.invoke(app, ["run", str(path), "--out", str(out_dir), "--no-plot"])
    assert res.exit_code == 0 and "[/x]out" in res.output, res.output


# ---- nesting and aliases -------------------------------------------------------------
@pytest.mark.parametrize("levels", [1_000, 5_000, 50_000])
@pytest.mark.parametrize("kind", ["list", "mapping"])
def test_deep_nesting_is_a_config_error_not_a_recursion_error(
    tmp_path: Path, levels: int, kind: str
) -> None:
    deep = "[" * levels + "]" * levels if kind == "list" else "{a: " * levels + "1" + "}" * levels
    path = tmp_path / "s.yaml"
    path.write_text(f"devices: {deep}\n")
    code, out = _validate(path)
    assert code == 2 and "nests deeper than 64 levels" in out and str(path) in out, out


def test_deep_nesting_in_an_accelerator_spec_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text("chip: " + "[" * 20_000 + "]" * 20_000 + "\n")
    data = _put(scenario_dict(), "accelerator.spec", str(tmp_path / "spec.yaml"))
    code, out = _validate(write_scenario(tmp_path / "s.yaml", data))
    assert code == 2 and "spec.yaml" in out and "nests deeper" in out, out


@pytest.mark.parametrize("key", ["name", "seed", "devices", "accelerator"])
def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path, key: str) -> None:
    data = {k: v for k, v in scenario_dict().items() if k != key}
    path = tmp_path / "s.yaml"
    path.write_text(_bomb(8, 9) + f"{key}: *b8\n" + yaml.safe_dump(data))
    start = time.monotonic()
    code, out = _validate(path)
    assert time.monotonic() - start < 5
    assert code == 2 and "more than 1000000 nodes" in out, out


def test_an_error_message_never_reprs_a_large_input(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        _bomb(5, 6) + "seed: *b5\n" + yaml.safe_dump(scenario_dict()).replace("seed: 1\n", "")
    )
    code, out = _validate(path)
    assert code == 2 and "seed" in out and len(out) < 1500, out


# ---- non-finite and absurd numbers ---------------------------------------------------
ISSUE_NUMBERS = [
    ("devices.0.distance_m", math.inf, "devices[0].distance_m"),
    ("devices.0.distance_m", 1e308, "devices[0].distance_m"),
    ("network.ofdm.subcarrier_spacing_hz", math.inf, "network.ofdm.subcarrier_spacing_hz"),
    ("network.ofdm.noise_psd_dBm_per_Hz", math.nan, "network.ofdm.noise_psd_dBm_per_Hz"),
    ("network.ofdm.noise_psd_dBm_per_Hz", 1e308, "network.ofdm.noise_psd_dBm_per_Hz"),
    ("network.ofdm.pathloss.exponent", math.inf, "network.ofdm.pathloss.exponent"),
    ("network.ofdm.pathloss.ref_loss_dB", math.nan, "network.ofdm.pathloss.ref_loss_dB"),
    ("network.ofdm.snr_gap_dB", math.inf, "network.ofdm.snr_gap_dB"),
    ("accelerator.latency_scale", math.inf, "accelerator.latency_scale"),
    ("network.ofdm.slot_s", math.inf, "network.ofdm.slot_s"),
    ("network.ofdm.slot_s", 1e-12, "network.ofdm.slot_s"),
    ("network.ofdm.max_slots", 1, "network.ofdm.max_slots"),
    ("network.ofdm.num_rbs", 1_000_000_000, "network.ofdm.num_rbs"),
    ("devices.0.payload.bytes", 1e15, "devices[0].payload.bytes"),
]


@pytest.mark.parametrize(
    ("dotted", "value", "key"), ISSUE_NUMBERS, ids=[f"{d}={v:g}" for d, v, _ in ISSUE_NUMBERS]
)
def test_non_finite_and_absurd_numbers_are_refused(
    tmp_path: Path, dotted: str, value: float, key: str
) -> None:
    start = time.monotonic()
    code, out = _bad(tmp_path, dotted, value)
    assert time.monotonic() - start < 5
    assert code == 2 and f": {key}: " in out, out


def test_slot_s_inf_is_not_valid(tmp_path: Path) -> None:
    code, out = _bad(tmp_path, "network.ofdm.slot_s", math.inf)
    assert code == 2 and "finite" in out, out


def test_tensor_shape_1e9_by_1e9_is_refused(tmp_path: Path) -> None:
    code, out = _bad(tmp_path, "devices.0.payload", {"tensor": {"shape": [10**9, 10**9]}})
    assert code == 2 and "devices[0].payload.tensor.shape" in out, out


def test_zoo_params_a_million_layers_is_refused(tmp_path: Path) -> None:
    data = scenario_dict()
    data["devices"] = [
        {"name": "dev0", "modality": "vec", "distance_m": 10, "payload": {"bytes": 1000}}
    ]
    data["model"] = {"zoo": "synthetic", "zoo_params": {"layers": 1_000_000}}
    code, out = _validate(write_scenario(tmp_path / "s.yaml", data))
    assert code == 2 and "model.zoo_params" in out and "layers" in out, out


def test_zoo_params_without_zoo_is_refused(tmp_path: Path) -> None:
    code, out = _bad(tmp_path, "model.zoo_params", {"layers": 10})
    assert code == 2 and "model.zoo_params" in out and "model.zoo" in out, out


# ---- the work estimate -------------------------------------------------------------
def _scenario(**over: Any) -> Scenario:
    data = scenario_dict()
    for dotted, value in over.items():
        data = _put(data, dotted.replace("__", "."), value)
    return Scenario.model_validate(data)


def _uplink_check(s: Scenario) -> None:
    from owin_cosim.network.base import UplinkDevice, dbm_to_w

    devices = [UplinkDevice(d.name, d.distance, dbm_to_w(d.tx_power_dBm)) for d in s.devices]
    check_uplink(s, Path("s.yaml"), devices, [d.payload.nbytes for d in s.devices if d.payload])


def test_a_payload_that_cannot_finish_is_refused_with_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    start = time.monotonic()
    code, out = _bad(tmp_path, "devices.0.payload.bytes", 10**10)
    assert time.monotonic() - start < 5
    assert code == 2 and "network.ofdm" in out and ENV_VAR in out and "limit" in out, out


def test_the_work_limit_is_raised_by_the_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = _scenario(devices__0__payload__bytes=4 * 10**9)
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(ConfigError, match=ENV_VAR):
        _uplink_check(s)
    monkeypatch.setenv(ENV_VAR, "100")
    _uplink_check(s)  # within 100 times the limit


@pytest.mark.parametrize("raw", ["0", "-1", "nan", "inf", "lots"])
def test_a_bad_work_factor_is_a_config_error(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(ENV_VAR, raw)
    with pytest.raises(ConfigError, match=ENV_VAR):
        work_factor()


def test_layers_after_chunking_beyond_the_limit_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, "0.00001")  # the limit becomes 2 layers
    code, out = _validate(write_scenario(tmp_path / "s.yaml", scenario_dict()))
    assert code == 2 and "layers after chunking" in out and ": model: " in out, out


def test_mapper_work_beyond_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from owin_cosim.workload.zoo import synthetic_dag

    monkeypatch.delenv(ENV_VAR, raising=False)
    s = _scenario(accelerator__cost_backend="loopnest", accelerator__mapper__evaluations=10**6)
    model = synthetic_dag(modalities=2, layers=200, seed=1)
    with pytest.raises(ConfigError, match="distinct layer shapes") as info:
        check_model(s, Path("s.yaml"), model, {"dev0": 1, "dev1": 1})
    assert info.value.key == "accelerator.mapper.evaluations"


# ---- files and strings -------------------------------------------------------------
def test_a_directory_as_the_scenario_file_is_refused(tmp_path: Path) -> None:
    code, out = _validate(tmp_path)
    assert code == 2 and "a directory" in out, out


@pytest.mark.parametrize("which", ["scenario", "spec", "model"])
def test_a_binary_file_is_a_config_error_not_a_unicode_error(tmp_path: Path, which: str) -> None:
    blob = bytes(range(128, 256)) * 8
    data = scenario_dict()
    if which == "spec":
        (tmp_path / "spec.yaml").write_bytes(blob)
        data = _put(data, "accelerator.spec", str(tmp_path / "spec.yaml"))
    elif which == "model":
        (tmp_path / "model.yaml").write_bytes(blob)
        data["model"] = {"file": "model.yaml"}
    path = write_scenario(tmp_path / "s.yaml", data)
    if which == "scenario":
        path.write_bytes(blob)
    code, out = _validate(path)
    assert code == 2 and f"{which}.yaml" in out.replace("s.yaml", "scenario.yaml"), out
    assert "not UTF-8" in out, out


def test_utf16_scenario_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(yaml.safe_dump(scenario_dict()).encode("utf-16"))
    code, out = _validate(path)
    assert code == 2 and "UTF-16" in out, out


@pytest.mark.parametrize("value", ["tcp://host", "tcp://host:0", "tcp://h:65536", "zmq", "[/x]"])
def test_a_bad_estimator_endpoint_is_refused_by_the_schema(tmp_path: Path, value: str) -> None:
    code, out = _bad(tmp_path, "accelerator.estimator", value)
    assert code == 2 and "accelerator.estimator: expected tcp://HOST:PORT" in out, out


@pytest.mark.parametrize("value", ["foo", "tcp://127.0.0.1:99999", "ipc://", ""])
def test_a_bad_ns3_endpoint_is_refused_by_the_schema(tmp_path: Path, value: str) -> None:
    code, out = _bad(tmp_path, "network.ns3.endpoint", value)
    assert code == 2 and "network.ns3.endpoint: expected tcp://HOST:PORT" in out, out


def test_python_tags_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    text = yaml.safe_dump(scenario_dict()).replace(
        "seed: 1", "seed: !!python/object/apply:os.system ['x']"
    )
    path.write_text(text)
    code, out = _validate(path)
    assert code == 2 and "invalid YAML" in out and "python/object/apply" in out, out


def test_a_valid_scenario_still_loads(tmp_path: Path) -> None:
    s = load_scenario(write_scenario(tmp_path / "s.yaml", scenario_dict()))
    assert s.network.ofdm.num_rbs == 10 and str(SPECS) in s.accelerator.spec
