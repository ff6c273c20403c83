"""The cost cache cannot lie: damaged rows, damaged files and unusable paths.

Every case tampers with a real cache, then asks for a layer's cost and checks it equals a
freshly computed one (never the tampered value) and that one warning line was logged.
Not testable here (the suite runs as root, which ignores permissions): a file without
read permission and a read-only directory; their tests run only as another user. The
read-only case is covered as root by opening an existing database ``mode=ro``.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from owin_cosim.accel.analytic import AnalyticCostModel
from owin_cosim.accel.cache import SCHEMA_VERSION, CachedCostModel, CostCache
from owin_cosim.accel.cost_model import LayerCost
from owin_cosim.accel.spec import load_chip_spec
from owin_cosim.cli import app
from owin_cosim.workload.graph import Layer, conv2d
from tests.conftest import SPECS
from tests.unprivileged import without_root_privileges

LAYER = conv2d("x", C=16, M=32, P=28, Q=28)
AS_ROOT = os.geteuid() == 0


def _model(cache: CostCache) -> CachedCostModel:
    chip = load_chip_spec(SPECS / "mc4.yaml")
    return CachedCostModel(AnalyticCostModel(chip), cache, "mc4", "v1")


def _fresh(layer: Layer = LAYER) -> LayerCost:
    return AnalyticCostModel(load_chip_spec(SPECS / "mc4.yaml")).layer_cost(layer)


def _seed(path: Path, layers: int = 1) -> None:
    """A cache at ``path`` holding ``layers`` entries (closed: the WAL is checkpointed)."""
    cache = CostCache(path)
    model = _model(cache)
    model.layer_cost(LAYER)
    for c in range(1, layers):
        model.layer_cost(conv2d("s", C=c, M=8, P=8, Q=8))
    cache.close()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    records = [r for r in caplog.records if r.name == "owin_cosim.accel.cache"]
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in records)
    lines = [r.getMessage() for r in records]
    assert all("\n" not in line for line in lines)  # one line each, no traceback
    return lines


def _edit(path: Path, sql: str) -> None:
    db = sqlite3.connect(path)
    with db:
        db.execute(sql)
    db.close()


def _flip_a_digit(path: Path) -> None:
    """Change one digit of the stored value inside the database file's bytes."""
    data = bytearray(path.read_bytes())
    at = data.index(b'"seconds": ') + len(b'"seconds": ')
    while not chr(data[at]).isdigit() or data[at] == ord("0"):
        at += 1
    data[at] = ord("1") if data[at] != ord("1") else ord("2")
    path.write_bytes(bytes(data))


def _half(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


ROW_DAMAGE: dict[str, Callable[[Path], None]] = {
    "flipped_byte_in_value": _flip_a_digit,
    "edited_number": lambda p: _edit(
        p, "UPDATE costs SET value = json_set(value, '$.seconds', 1e-9)"
    ),
    "not_json": lambda p: _edit(p, "UPDATE costs SET value = 'not json'"),
    "partial_value": lambda p: _edit(p, "UPDATE costs SET value = substr(value, 1, 40)"),
    "checksum_mismatch": lambda p: _edit(p, "UPDATE costs SET checksum = 'deadbeef'"),
    "value_not_text": lambda p: _edit(p, "UPDATE costs SET value = x'00ff'"),
}


@pytest.mark.parametrize("damage", sorted(ROW_DAMAGE))
def test_a_damaged_row_is_detected_deleted_and_recomputed(
    damage: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "costs.sqlite"
    _seed(path)
    ROW_DAMAGE[damage](path)
    cache = CostCache(path)
    model = _model(cache)
    assert model.layer_cost(LAYER) == _fresh()
    assert (model.calls, model.hits) == (1, 0)  # recomputed, not served
    [warning] = _warnings(caplog)
    assert "recomputed" in warning and str(path) in warning
    assert model.layer_cost(LAYER) == _fresh() and model.hits == 1  # the row is sound again
    assert cache.info()["entries"] == 1
    cache.close()


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(3000))


def _truncated_db(path: Path) -> None:
    _seed(path, layers=300)
    _half(path)


@pytest.mark.parametrize("damage", [_garbage, _truncated_db], ids=["garbage_db", "truncated_db"])
def test_a_damaged_file_is_moved_aside_and_rebuilt(
    damage: Callable[[Path], None], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "costs.sqlite"
    damage(path)
    before = path.read_bytes()
    cache = CostCache(path)
    model = _model(cache)
    for c in range(1, 300):  # every layer, so a missing page is reached if there is one
        layer = conv2d("s", C=c, M=8, P=8, Q=8)
        assert model.layer_cost(layer) == _fresh(layer)
    assert model.layer_cost(LAYER) == _fresh()
    [warning] = _warnings(caplog)
    assert "moved aside" in warning and "rebuilt" in warning
    [aside] = cache.moved_aside
    assert aside.read_bytes() == before  # kept for a post-mortem, byte for byte
    assert cache.disabled is None and cache.info()["entries"] == 300
    cache.close()


def test_truncated_wal_loses_only_the_tail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite's WAL frames carry checksums: a cut WAL drops its tail, which is recomputed."""
    live = tmp_path / "live.sqlite"
    cache = CostCache(live)
    model = _model(cache)
    layers = [conv2d("s", C=c, M=8, P=8, Q=8) for c in range(1, 100)]
    for layer in layers:
        model.layer_cost(layer)
    copy = tmp_path / "copy.sqlite"  # as if the process died: its files, WAL not merged
    shutil.copy(live, copy)
    shutil.copy(live.with_name("live.sqlite-wal"), copy.with_name("copy.sqlite-wal"))
    cache.close()
    _half(copy.with_name("copy.sqlite-wal"))
    again = _model(CostCache(copy))
    assert [again.layer_cost(layer) for layer in layers] == [_fresh(x) for x in layers]
    assert 0 < again.calls < len(layers)  # the surviving frames are served
    assert _warnings(caplog) == []


def _fifo(path: Path) -> None:
    os.mkfifo(path)


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda p: p.mkdir(), "directory"),
        (_fifo, "not a regular file"),  # opening it must not block
        (lambda p: p.parent.joinpath("file").write_text("x"), "Not a directory"),
    ],
    ids=["directory_at_path", "fifo_at_path", "path_under_a_file"],
)
def test_an_unusable_path_runs_without_caching(
    make: Callable[[Path], None], why: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "costs.sqlite"
    make(path)
    if why == "Not a directory":
        path = tmp_path / "file" / "costs.sqlite"
    cache = CostCache(path)
    assert cache.disabled is not None and why in cache.disabled
    model = _model(cache)
    assert model.layer_cost(LAYER) == _fresh() and model.layer_cost(LAYER) == _fresh()
    assert (model.calls, model.hits) == (2, 0)  # no cache: both computed
    [warning] = _warnings(caplog)
    assert "running without the cost cache" in warning
    assert cache.info()["entries"] == 0 and cache.clear() == 0
    assert not cache.moved_aside  # a user's directory or device is never moved


def test_read_only_database_runs_without_caching(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """As root a read-only directory cannot be made: the database is opened ``mode=ro``."""
    path = tmp_path / "costs.sqlite"
    _seed(path)
    before = path.read_bytes()
    connect = sqlite3.connect

    def read_only(target: Path, timeout: float, isolation_level: None) -> sqlite3.Connection:
        uri = f"file:{target}?mode=ro"
        return connect(uri, uri=True, timeout=timeout, isolation_level=isolation_level)

    monkeypatch.setattr(sqlite3, "connect", read_only)  # the module the cache uses
    cache = CostCache(path)
    model = _model(cache)
    assert model.layer_cost(LAYER) == _fresh() and model.hits == 1  # sound rows still serve
    other = conv2d("y", C=8, M=8, P=8, Q=8)
    assert model.layer_cost(other) == _fresh(other)  # its write fails: the cache turns off
    assert model.layer_cost(other) == _fresh(other)
    assert cache.disabled is not None and "readonly" in cache.disabled
    [warning] = _warnings(caplog)
    assert "running without the cost cache" in warning
    assert path.read_bytes() == before


def test_read_only_directory_runs_without_caching(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with without_root_privileges():
            model = _model(CostCache(ro / "costs.sqlite"))
            assert model.layer_cost(LAYER) == _fresh()
        assert len(_warnings(caplog)) == 1
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_unreadable_file_is_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "costs.sqlite"
    _seed(path)
    path.chmod(0)
    with without_root_privileges():
        cache = CostCache(path)
        assert _model(cache).layer_cost(LAYER) == _fresh()
    assert cache.moved_aside and "moved aside" in _warnings(caplog)[0]


def test_old_format_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "costs.sqlite"
    _edit(path, "CREATE TABLE costs (key TEXT PRIMARY KEY, backend, value, created)")
    _edit(path, "INSERT INTO costs VALUES ('k', 'analytic', '{}', 0)")
    cache = CostCache(path)
    assert cache.disabled is None and cache.info()["entries"] == 0
    assert "old format" in _warnings(caplog)[0]
    assert _model(cache).layer_cost(LAYER) == _fresh()
    cache.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_newer_format_is_left_alone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "costs.sqlite"
    _edit(path, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = path.read_bytes()
    cache = CostCache(path)
    assert cache.disabled is not None and "newer" in cache.disabled
    assert _model(cache).layer_cost(LAYER) == _fresh()
    assert len(_warnings(caplog)) == 1 and path.read_bytes() == before


# ---- the CLI: never a traceback ---------------------------------------------------------
@pytest.mark.parametrize("command", ["info", "clear"])
def test_cli_on_a_corrupt_db(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "costs.sqlite"
    _garbage(path)
    monkeypatch.setenv("OWIN_COSIM_COST_CACHE", str(path))
    res = CliRunner().invoke(app, ["cache", command])
    assert res.exit_code == 0, res.output
    assert res.exception is None and "Traceback" not in res.output
    assert ("moved aside" in res.output) if command == "info" else ("removed 0" in res.output)
    assert "moved aside" in _warnings(caplog)[0]
    assert CostCache(path).info()["entries"] == 0  # a sound, empty cache now


@pytest.mark.parametrize("command", ["info", "clear"])
def test_cli_on_a_directory_at_the_path(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "costs.sqlite"
    path.mkdir()
    monkeypatch.setenv("OWIN_COSIM_COST_CACHE", str(path))
    res = CliRunner().invoke(app, ["cache", command])
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit)
    assert "directory" in res.output and "Traceback" not in res.output
    assert path.is_dir()


@pytest.mark.parametrize("command", ["info", "clear"])
def test_cli_on_a_missing_file(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "none" / "costs.sqlite"
    monkeypatch.setenv("OWIN_COSIM_COST_CACHE", str(path))
    res = CliRunner().invoke(app, ["cache", command])
    assert res.exit_code == 0 and "no cost cache" in res.output
    assert not path.exists()  # asking does not create one


def test_cli_warning_is_one_line_on_stderr(tmp_path: Path) -> None:
    """Out of process, with no logging set up: the warning reaches stderr as one line."""
    path = tmp_path / "costs.sqlite"
    _garbage(path)
    env = {**os.environ, "OWIN_COSIM_COST_CACHE": str(path)}
    res = subprocess.run(
        [sys.executable, "-m", "owin_cosim.cli", "cache", "info"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    [line] = res.stderr.strip().splitlines()
    assert "moved aside" in line and str(path) in line
    assert "0 entries" in res.stdout
