"""The persistent cost cache: hits and misses, warm re-runs, concurrent writers, CLI."""

from __future__ import annotations

import json
import multiprocessing
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from owin_cosim.accel import code_version as code_version_module
from owin_cosim.accel.analytic import AnalyticCostModel
from owin_cosim.accel.cache import CachedCostModel, CostCache, cost_key
from owin_cosim.accel.code_version import code_sources, code_version
from owin_cosim.accel.registry import backend_options, make_cost_model
from owin_cosim.accel.spec import load_chip_spec
from owin_cosim.cli import app
from owin_cosim.scenario.assemble import assemble
from owin_cosim.scenario.schema import load_scenario
from owin_cosim.workload.graph import conv2d, depthwise2d, eltwise, matmul, pool2d
from tests.conftest import DATA, SPECS


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
    # every distinct shape (layers and the parts of their splits) is costed once
    assert warm.cost.calls == 0 and warm.cost.hits == cold.cost.calls + cold.cost.hits
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


# ---- the backend's own code in the key ------------------------------------------------------
@pytest.fixture
def fresh_code_version() -> Iterator[None]:
    """``code_version`` is computed once per process: recompute it in and after the test."""
    code_version.cache_clear()
    yield
    code_version.cache_clear()


def test_code_version_follows_the_imports(
    fresh_code_version: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "cv_pkg_probe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "model.py").write_text("def cost():\n    from cv_pkg_probe import helper\n")
    (pkg / "helper.py").write_text("FACTOR = 2\n")
    (pkg / "unrelated.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert set(code_sources("cv_pkg_probe.model")) == {
            "cv_pkg_probe",  # the package itself: "from cv_pkg_probe import helper"
            "cv_pkg_probe.model",
            "cv_pkg_probe.helper",  # imported inside a function: still followed
        }
        before = code_version("cv_pkg_probe.model")
        (pkg / "unrelated.py").write_text("X = 2\n")
        code_version.cache_clear()
        assert code_version("cv_pkg_probe.model") == before
        (pkg / "helper.py").write_text("FACTOR = 3\n")
        code_version.cache_clear()
        assert code_version("cv_pkg_probe.model") != before
    finally:
        sys.modules.pop("cv_pkg_probe", None)


def test_the_models_own_code_is_what_they_import() -> None:
    analytic = set(code_sources("owin_cosim.accel.analytic"))
    assert {"owin_cosim.accel.analytic", "owin_cosim.workload.graph"} <= analytic
    assert "owin_cosim.accel.loopnest.nest" not in analytic
    nest = set(code_sources("owin_cosim.accel.loopnest.backend"))
    assert {
        "owin_cosim.accel.loopnest.nest",
        "owin_cosim.accel.loopnest.mapper",
        "owin_cosim.accel.problem",
    } <= nest
    assert "owin_cosim.accel.analytic" not in nest
    assert not any(m.startswith("owin_cosim.network") for m in analytic | nest)


@pytest.mark.parametrize(
    ("backend", "changed"),
    [("analytic", "analytic.py"), ("loopnest", "nest.py")],  # nest.py: a module it imports
)
def test_a_change_to_the_models_code_misses_the_cache(
    fresh_code_version: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
    changed: str,
) -> None:
    chip = load_chip_spec(SPECS / "mc4.yaml")
    options = backend_options(backend, mapper_evaluations=20)
    layer = conv2d("c", C=16, M=32, P=14, Q=14)
    cache = CostCache(tmp_path / "c.sqlite")

    def cached() -> CachedCostModel:
        model = make_cost_model(chip, "mc4", backend, options, cache=cache)
        assert isinstance(model, CachedCostModel)
        model.layer_cost(layer)
        return model

    first, again = cached(), cached()
    assert (first.calls, again.calls, again.hits) == (1, 0, 1)
    read = code_version_module._read_source

    def edited(path: Path) -> bytes:  # as if the model's source had been edited
        return read(path) + (b"\n# edited\n" if path.name == changed else b"")

    monkeypatch.setattr(code_version_module, "_read_source", edited)
    code_version.cache_clear()
    after = cached()
    assert after.version != first.version
    assert (after.calls, after.hits) == (1, 0)  # the old model's cost is not reused
    assert cache.info()["entries"] == 2


# ---- the analytic model pinned to golden costs ----------------------------------------------
GOLDEN = DATA / "analytic_golden.json"


def _golden_layers() -> list[Any]:
    return [
        conv2d("conv3x3", C=64, M=128, P=28, Q=28, R=3),
        conv2d("conv7x7s2", C=3, M=64, P=112, Q=112, R=7, stride=2),
        conv2d("conv1x1", C=256, M=64, P=14, Q=14, R=1),
        matmul("fc", rows=8, in_features=512, out_features=1000),
        depthwise2d("dw", C=128, P=28, Q=28, R=3),
        pool2d("pool", C=64, P=56, Q=56, R=2, stride=2),
        eltwise("add", C=64, P=56, Q=56),
    ]


def _golden_costs() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for spec in ("mc4", "mc16"):
        model = AnalyticCostModel(load_chip_spec(SPECS / f"{spec}.yaml"))
        for layer in _golden_layers():
            out[f"{spec}/{layer.name}"] = asdict(model.layer_cost(layer))
    return out


def test_analytic_costs_match_the_golden_file() -> None:
    """A change to the analytic model's numbers shows up here (and, through
    ``code_version``, in fresh cache keys). If intended: ``python -m tests.test_cost_cache``
    rewrites the file; say why in the commit."""
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    got = json.loads(json.dumps(_golden_costs()))  # the same float round trip as the file
    assert sorted(got) == sorted(golden)
    for key, cost in got.items():
        assert cost == golden[key], key


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(_golden_costs(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
