"""The persistent cost cache: hits and misses, warm re-runs, concurrent writers, CLI."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from owin_cosim.accel.analytic import AnalyticCostModel
from owin_cosim.accel.cache import CachedCostModel, CostCache, cost_key
from owin_cosim.accel.spec import load_chip_spec
from owin_cosim.cli import app
from owin_cosim.scenario.assemble import assemble
from owin_cosim.scenario.schema import load_scenario
from owin_cosim.workload.graph import conv2d, matmul
from tests.conftest import SPECS


def _model(cache: CostCache, scale: float = 1.0) -> CachedCostModel:
    chip = load_chip_spec(SPECS / "mc4.yaml")
    return CachedCostModel(
        AnalyticCostModel(chip, latency_scale=scale), cache, "mc4", "v1", {"latency_scale": scale}
    )


def test_hit_miss_and_same_values(tmp_path: Path) -> None:
    cache = CostCache(tmp_path / "c.sqlite")
    m = _model(cache)
    layer = conv2d("x", C=16, M=32, P=28, Q=28)
    first = m.layer_cost(layer)
    again = m.layer_cost(conv2d("renamed", C=16, M=32, P=28, Q=28))
    assert (m.calls, m.hits) == (1, 1)
    assert again == first
    m.layer_cost(conv2d("x", C=16, M=64, P=28, Q=28))
    assert m.calls == 2
    other = _model(cache, scale=2.0)  # other options: other key
    assert other.layer_cost(layer).seconds == pytest.approx(2 * first.seconds)
    assert other.calls == 1
    assert cache.info()["entries"] == 3


def test_key_depends_on_backend_and_version() -> None:
    layer = matmul("m", rows=4, in_features=8, out_features=8)
    keys = {cost_key(layer, "c", b, v) for b in ("analytic", "timeloop") for v in ("1", "2")}
    assert len(keys) == 4


def test_warm_rerun_makes_zero_backend_calls(
    tiny_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OWIN_COSIM_COST_CACHE", str(tmp_path / "warm.sqlite"))
    s = load_scenario(tiny_path)
    cold = assemble(s, tiny_path)
    warm = assemble(s, tiny_path)
    assert cold.cost.calls > 0
    assert warm.cost.calls == 0 and warm.cost.hits == len(warm.dag)
    assert list(cold.dag.duration_s) == list(warm.dag.duration_s)


def _writer(path: str, start: int) -> int:
    cache = CostCache(path)
    m = _model(cache)
    for c in range(start, start + 30):
        m.layer_cost(conv2d("w", C=c + 1, M=8, P=8, Q=8))
    cache.close()
    return m.calls


def test_concurrent_writers(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite")
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        calls = pool.starmap(_writer, [(path, 0), (path, 10), (path, 20), (path, 0)])
    assert sum(calls) >= 50
    assert CostCache(path).info()["entries"] == 50  # keys 0..49, overlapping writes merged


def test_cli_info_and_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cli.sqlite"
    monkeypatch.setenv("OWIN_COSIM_COST_CACHE", str(path))
    _model(CostCache(path)).layer_cost(conv2d("x", C=3, M=8, P=8, Q=8))
    runner = CliRunner()
    res = runner.invoke(app, ["cache", "info"])
    assert res.exit_code == 0 and "1 entries" in res.output and "analytic: 1" in res.output
    res = runner.invoke(app, ["cache", "clear"])
    assert res.exit_code == 0 and "removed 1" in res.output
    assert CostCache(path).info()["entries"] == 0
