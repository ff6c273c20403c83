"""The cases that need a process of their own: a FIFO as an input, SIGINT at start-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import SPECS, scenario_dict, write_scenario

EXE = Path(sys.executable).with_name("owin-cosim")


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "OWIN_COSIM_COST_CACHE": str(tmp_path / "costs.sqlite")}


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), *args], capture_output=True, text=True, timeout=20, env=_env(tmp_path)
    )


def test_fifo_as_the_scenario_file_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "scenario.yaml"
    os.mkfifo(fifo)
    start = time.monotonic()
    res = _cli(tmp_path, "validate", str(fifo))
    assert res.returncode == 2, res.stderr
    assert time.monotonic() - start < 10
    assert str(fifo) in res.stderr and "not a regular file" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("which", ["spec", "model"])
def test_fifo_as_the_spec_or_model_file_is_refused_at_once(tmp_path: Path, which: str) -> None:
    fifo = tmp_path / f"{which}.yaml"
    os.mkfifo(fifo)
    data = scenario_dict()
    if which == "spec":
        data["accelerator"] = {"spec": str(fifo)}
        key = "accelerator.spec"
    else:
        data["model"] = {"file": str(fifo)}
        key = "model.file"
    path = write_scenario(tmp_path / "s.yaml", data)
    res = _cli(tmp_path, "validate", str(path))
    assert res.returncode == 2 and key in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def test_fifo_as_the_plan_file_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "plan.json"
    os.mkfifo(fifo)
    path = write_scenario(tmp_path / "s.yaml", scenario_dict())
    res = _cli(tmp_path, "run", str(path), "--plan", str(fifo), "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and str(fifo) in res.stderr, res.stderr
    assert "not a regular file" in res.stderr and "Traceback" not in res.stderr


def _slow_scenario(tmp_path: Path) -> Path:
    """A scenario whose validation takes several seconds (a 12,000-layer synthetic
    model), so every delay of the SIGINT tests falls inside it, also on an idle machine."""
    data = {
        "name": "slow",
        "devices": [
            {
                "name": f"dev{k}",
                "modality": "image",
                "distance_m": 10 + k,
                "payload": {"bytes": 10**5},
            }
            for k in range(2)
        ],
        "model": {"zoo": "synthetic", "zoo_params": {"layers": 12000}},
        "accelerator": {"spec": str(SPECS / "mc4.yaml"), "cache": False},
    }
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


#: The console script's own code, with a line on stderr once the interpreter is up: the
#: delays count from there (a SIGINT while Python itself starts, before any owin-cosim
#: code runs, is Python's; see docs/robustness.md).
_SCRIPT = (
    "import sys; sys.stderr.write('up\\n'); sys.stderr.flush(); "
    "sys.argv[0] = 'owin-cosim'; from owin_cosim.cli import main; sys.exit(main())"
)


@pytest.mark.parametrize("delay_s", [0.05, 0.1, 0.2, 0.35, 0.5, 0.8, 1.5])
def test_sigint_during_startup_exits_130_quietly(tmp_path: Path, delay_s: float) -> None:
    path = _slow_scenario(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, "validate", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
    )
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline() == "up\n"
        time.sleep(delay_s)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().count("\n") == 0 and "interrupted" in err, err


def test_sigint_through_the_console_script_exits_130(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [str(EXE), "validate", str(_slow_scenario(tmp_path))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
    )
    try:
        time.sleep(1.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and "Traceback" not in err, err
