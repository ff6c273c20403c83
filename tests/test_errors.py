"""Bad inputs: one clear error naming the file, the key and what was expected; exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from owin_cosim.cli import app
from tests.conftest import SPECS, scenario_dict, write_scenario

runner = CliRunner()


def _validate(path: Path) -> tuple[int, str]:
    res = runner.invoke(app, ["validate", str(path)])
    return res.exit_code, res.output


def _with(**over: Any) -> dict[str, Any]:
    return scenario_dict(**over)


def _dev(**over: Any) -> list[dict[str, Any]]:
    devs = scenario_dict()["devices"]
    devs[0] = {**devs[0], **over}
    return devs


CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown key", {**_with(), "colour": 1}, "colour", "unknown key"),
    ("unknown nested key", _with(devices=_dev(speed=3)), "devices[0].speed", "expected one of"),
    ("wrong type", _with(seed="abc"), "seed", "integer"),
    ("negative seed", _with(seed=-2), "seed", "greater than or equal to 0"),
    (
        "zero payload",
        _with(devices=_dev(payload={"bytes": 0})),
        "devices[0].payload.bytes",
        "greater than 0",
    ),
    ("zero chunks", _with(devices=_dev(chunks=0)), "devices[0].chunks", "greater than or equal"),
    (
        "negative distance",
        _with(devices=_dev(distance_m=-5)),
        "devices[0].distance_m",
        "greater than 0",
    ),
    (
        "zero tensor dim",
        _with(devices=_dev(payload={"tensor": {"shape": [3, 0]}})),
        "devices[0].payload.tensor.shape",
        "> 0",
    ),
    (
        "both payload kinds",
        _with(devices=_dev(payload={"bytes": 3, "tensor": {"shape": [3]}})),
        "devices[0].payload",
        "exactly one",
    ),
    ("zero RBs", _with(network={"ofdm": {"num_rbs": 0}}), "network.ofdm.num_rbs", "greater than 0"),
    (
        "unknown backend",
        _with(network={"backend": "wifi"}),
        "network.backend",
        "expected one of: ofdm, ns3",
    ),
    (
        "missing accelerator",
        {k: v for k, v in _with().items() if k != "accelerator"},
        "accelerator",
        "required",
    ),
    (
        "missing spec file",
        _with(accelerator={"spec": "nope.yaml"}),
        "accelerator.spec",
        "not found",
    ),
    ("unknown policy", _with(policy={"name": "magic"}), "policy.name", "rtfs, pacs"),
    (
        "bad policy param",
        _with(policy={"name": "pacs", "params": {"soft_ratio": 0.5}}),
        "policy.params.soft_ratio",
        "greater than 1",
    ),
    (
        "unknown policy param",
        _with(policy={"name": "rtfs", "params": {"x": 1}}),
        "policy.params.x",
        "unknown key",
    ),
    ("unknown encoder", _with(model={"encoders": {"a": "vgg99", "b": "mlp"}}), "model", "resnet18"),
    ("no encoder for modality", _with(model={}), "devices[0].modality", "no built-in encoder"),
    (
        "encoder for unknown device",
        _with(model={"encoders": {"zz": "mlp"}}),
        "model.encoders.zz",
        "no device called",
    ),
    ("duplicate device", _with(devices=[*_dev(), _dev()[0]]), "devices", "used twice"),
    (
        "more chunks than bytes",
        _with(devices=_dev(payload={"bytes": 3}, chunks=5)),
        "devices[0]",
        "exceeds the payload",
    ),
    (
        "zero mapper budget",
        _with(
            accelerator={
                "spec": str(SPECS / "mc4.yaml"),
                "cost_backend": "loopnest",
                "mapper": {"evaluations": 0},
            }
        ),
        "accelerator.mapper.evaluations",
        "greater than or equal to 1",
    ),
    (
        "unknown cost backend",
        _with(accelerator={"spec": str(SPECS / "mc4.yaml"), "cost_backend": "magic"}),
        "accelerator.cost_backend",
        "loopnest",
    ),
]


@pytest.mark.parametrize(("label", "data", "key", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_scenario(
    tmp_path: Path, label: str, data: dict[str, Any], key: str, expected: str
) -> None:
    path = write_scenario(tmp_path / "bad.yaml", data)
    code, output = _validate(path)
    assert code == 2, output
    assert str(path) in output and key in output and expected in output, output
    assert "Traceback" not in output


def test_missing_scenario_file(tmp_path: Path) -> None:
    code, output = _validate(tmp_path / "absent.yaml")
    assert code == 2 and "absent.yaml" in output and "not found" in output


def test_invalid_yaml_and_duplicate_keys(tmp_path: Path) -> None:
    p = tmp_path / "syntax.yaml"
    p.write_text("name: x\ndevices: [\n", encoding="utf-8")
    code, output = _validate(p)
    assert code == 2 and "invalid YAML" in output and "line" in output
    p.write_text("name: x\nseed: 1\nseed: 2\n", encoding="utf-8")
    code, output = _validate(p)
    assert code == 2 and "duplicate key 'seed'" in output


def _model_file(tmp_path: Path, layers: list[dict[str, Any]]) -> Path:
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump({"name": "m", "layers": layers}), encoding="utf-8")
    return write_scenario(
        tmp_path / "s.yaml",
        _with(
            devices=[{"name": "a", "modality": "vec", "distance_m": 5, "payload": {"bytes": 1000}}],
            model={"file": "model.yaml"},
        ),
    )


def test_cyclic_model_file(tmp_path: Path) -> None:
    layers = [
        {
            "name": "x",
            "op": "matmul",
            "dims": {"P": 4, "C": 8, "M": 8},
            "device": "a",
            "inputs": ["z"],
        },
        {"name": "y", "op": "matmul", "dims": {"P": 4, "C": 8, "M": 8}, "inputs": ["x"]},
        {"name": "z", "op": "matmul", "dims": {"P": 4, "C": 8, "M": 8}, "inputs": ["y"]},
    ]
    code, output = _validate(_model_file(tmp_path, layers))
    assert code == 2 and "model.yaml" in output and "cycle" in output and "x -> y" in output


def test_model_file_unknown_input_and_bad_dim(tmp_path: Path) -> None:
    layers = [
        {"name": "x", "op": "conv", "dims": {"P": 4, "C": 8, "M": 8}, "device": "a"},
        {"name": "y", "op": "conv", "dims": {"P": 4}, "inputs": ["nope"]},
    ]
    code, output = _validate(_model_file(tmp_path, layers))
    assert code == 2 and "layers[1].inputs[0]" in output and "nope" in output
    layers = [{"name": "x", "op": "conv", "dims": {"P": -4}, "device": "a"}]
    code, output = _validate(_model_file(tmp_path, layers))
    assert code == 2 and "layers[0].dims.P" in output


def test_model_file_runs(tmp_path: Path) -> None:
    layers = [
        {
            "name": "x",
            "op": "conv",
            "dims": {"R": 3, "S": 3, "P": 8, "Q": 8, "C": 3, "M": 8},
            "device": "a",
            "streamable": True,
        },
        {"name": "y", "op": "matmul", "dims": {"P": 1, "C": 512, "M": 10}, "inputs": ["x"]},
    ]
    code, output = _validate(_model_file(tmp_path, layers))
    assert code == 0 and "valid" in output, output


def test_layer_that_fits_no_core(tmp_path: Path) -> None:
    spec = yaml.safe_load((SPECS / "mc4.yaml").read_text())
    spec["architecture"]["subtree"][0]["subtree"][0]["local"][0]["attributes"]["memory_depth"] = 4
    (tmp_path / "tiny_chip.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    path = write_scenario(tmp_path / "s.yaml", _with(accelerator={"spec": "tiny_chip.yaml"}))
    code, output = _validate(path)
    assert code == 2 and "accelerator.spec" in output and "fits" not in output.split(":")[0]
    assert "words of on-chip buffer" in output


def test_unavailable_backends_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ns-3 asked for on a machine without it: a clear error with how to get it.
    monkeypatch.setattr("owin_cosim.network.ns3.backend_type.ns3_installed", lambda: False)
    path = write_scenario(tmp_path / "s.yaml", _with(network={"backend": "ns3"}))
    code, output = _validate(path)
    assert code == 2 and "ns-3 is not installed" in output and "pip install" in output
    path = write_scenario(
        tmp_path / "t.yaml",
        _with(accelerator={"spec": str(SPECS / "mc4.yaml"), "cost_backend": "timeloop"}),
    )
    code, output = _validate(path)
    assert code == 2 and "cost_backend is 'timeloop'" in output and "container" in output


def test_bad_ns3_section(tmp_path: Path) -> None:
    path = write_scenario(
        tmp_path / "s.yaml", _with(network={"backend": "ns3", "ns3": {"scenario": "nr-uplink"}})
    )
    code, output = _validate(path)
    assert code == 2 and "network.ns3.scenario" in output and "lte-uplink" in output
    path = write_scenario(
        tmp_path / "t.yaml",
        _with(
            network={
                "backend": "ns3",
                "ns3": {"scenario": "lte-uplink", "params": {"ul_bandwidth_rbs": 7}},
            }
        ),
    )
    code, output = _validate(path)
    assert code == 2 and "network.ns3.params.ul_bandwidth_rbs" in output
    path = write_scenario(
        tmp_path / "u.yaml",
        _with(
            network={
                "backend": "ns3",
                "ns3": {"scenario": "wifi-ax-uplink", "params": {"ul_ofdma": True}},
            }
        ),
    )
    code, output = _validate(path)
    assert code == 2 and "spectrum" in output


def test_failed_run_keeps_earlier_results(tmp_path: Path, tiny_path: Path) -> None:
    out = tmp_path / "res"
    ok = runner.invoke(app, ["run", str(tiny_path), "--out", str(out), "--no-plot"])
    assert ok.exit_code == 0, ok.output
    before = (out / "summary.json").read_bytes()
    bad = write_scenario(tmp_path / "bad.yaml", _with(policy={"name": "magic"}))
    res = runner.invoke(app, ["run", str(bad), "--out", str(out)])
    assert res.exit_code == 2
    assert (out / "summary.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_console_script_error_has_no_traceback(tmp_path: Path) -> None:
    path = write_scenario(tmp_path / "bad.yaml", _with(seed="x"))
    proc = subprocess.run(
        [sys.executable, "-m", "owin_cosim.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "seed" in proc.stderr and "Traceback" not in proc.stderr + proc.stdout
    debug = subprocess.run(
        [sys.executable, "-m", "owin_cosim.cli", "validate", str(path), "--debug"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert debug.returncode != 0 and "Traceback" in debug.stderr
