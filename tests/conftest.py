"""Shared helpers: small scenarios written on the fly."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "accel_specs"
DATA = Path(__file__).resolve().parent / "data"


def scenario_dict(**over: Any) -> dict[str, Any]:
    """A small valid scenario: two MLP-encoded devices on mc4, no fading."""
    base: dict[str, Any] = {
        "name": "tiny",
        "seed": 1,
        "devices": [
            {
                "name": "a",
                "modality": "vec",
                "distance_m": 10,
                "payload": {"bytes": 20000},
                "chunks": 2,
            },
            {"name": "b", "modality": "vec", "distance_m": 30, "payload": {"bytes": 60000}},
        ],
        "network": {"backend": "ofdm", "ofdm": {"num_rbs": 10, "fading": "none"}},
        "model": {
            "encoders": {
                "a": {"name": "mlp", "params": {"in_features": 256, "rows": 8}},
                "b": {"name": "mlp", "params": {"in_features": 512, "rows": 4}},
            }
        },
        "accelerator": {"spec": str(SPECS / "mc4.yaml")},
        "policy": {"name": "pacs"},
    }
    base.update(over)
    return base


def write_scenario(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def tiny_path(tmp_path: Path) -> Path:
    return write_scenario(tmp_path / "tiny.yaml", scenario_dict())


@pytest.fixture(autouse=True, scope="session")
def _private_cost_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never touch the user's cost cache."""
    import os

    os.environ["OWIN_COSIM_COST_CACHE"] = str(tmp_path_factory.mktemp("cache") / "costs.sqlite")


#: Real Timeloop + Accelergy runs, shipped with the tests (see its README.md).
TIMELOOP_REF = DATA / "timeloop_reference"


def timeloop_reference() -> Path:
    """The reference runs' folder; raises when it is absent.

    Tests call this at import, so a missing folder is a collection error (a failure),
    never a silent skip or an empty parametrization.
    """
    if not (TIMELOOP_REF / "summary.csv").is_file():
        raise FileNotFoundError(f"{TIMELOOP_REF} is missing: the Timeloop reference data")
    return TIMELOOP_REF


def free_port() -> int:
    """A TCP port free on loopback right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def estimator_process(cache: Path, *args: str) -> Iterator[str]:
    """An ``owin-cosim estimator`` on loopback with its own cost cache and a fresh
    shutdown token (in its environment, never on its command line); ``args`` are more
    options. Stopped on every exit path: asked with the token, then SIGTERM, then
    killed. Yields its endpoint."""
    import os
    import secrets
    import subprocess
    import sys

    from owin_cosim.accel.service.client import RemoteCostModel
    from owin_cosim.accel.service.protocol import TOKEN_ENV

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    token = secrets.token_hex(16)
    keys = Path(args[args.index("--keys") + 1]) if "--keys" in args else None
    proc = subprocess.Popen(
        [sys.executable, "-m", "owin_cosim.cli", "estimator", "--bind", endpoint, *args],
        env={**os.environ, "OWIN_COSIM_COST_CACHE": str(cache), TOKEN_ENV: token},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def ask() -> None:
        client = RemoteCostModel(endpoint, {}, timeout_s=5, keys=keys)
        try:
            client.shutdown_service(token)
        finally:
            client.close()

    try:
        yield endpoint
    finally:
        stop_process(proc, ask)
        if proc.stderr is not None:
            proc.stderr.close()


def stop_process(proc: Any, ask: Any) -> None:
    """Stop ``proc``: ``ask()`` it, then SIGTERM, then SIGKILL; always reaped."""
    import subprocess

    if proc.poll() is not None:
        return
    try:
        ask()
        proc.wait(timeout=10)
        return
    except Exception:
        pass
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
