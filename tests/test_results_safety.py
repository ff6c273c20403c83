"""Results that nothing destroys: --out refuses what owin-cosim did not write, scenario
names are plain file names, path errors come before any work, the swap survives a kill
at every step, and results directories honour the umask."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from owin_cosim.cli import app
from owin_cosim.errors import ConfigError
from owin_cosim.results import safety
from owin_cosim.results.safety import MARKER, atomic_directory, prepare_target, recover
from owin_cosim.scenario import assemble as assemble_mod
from tests.conftest import scenario_dict, write_scenario
from tests.unprivileged import without_root_privileges

runner = CliRunner()


def _no_costing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any assembly fail loudly: a check that passes must come before it."""

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("assembly started before --out was checked")

    monkeypatch.setattr(assemble_mod, "assemble", boom)


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with the bytes of its files (to compare before/after)."""
    out: dict[str, bytes | None] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = p.read_bytes() if p.is_file() and not p.is_symlink() else None
    return out


def _names(d: Path) -> list[str]:
    """What ``d`` holds, besides the scenario file the ``tiny_path`` fixture puts there."""
    return sorted(n for n in os.listdir(d) if n != "tiny.yaml")


# ---- scenario names ---------------------------------------------------------------


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_names_with_compare_leave_results_alone(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    other = tmp_path / "results" / "other" / "pacs"
    other.mkdir(parents=True)
    (other / "summary.json").write_text("{}")
    (tmp_path / "keep.txt").write_text("mine")
    path = write_scenario(tmp_path / "s.yaml", scenario_dict(name=name))
    before = _tree(tmp_path)
    _no_costing(monkeypatch)
    res = runner.invoke(app, ["compare", str(path), "--no-plot"])
    assert res.exit_code == 2, res.output
    assert "name" in res.output and "plain file name" in res.output
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("name", ["a" * 300, "a/b", "-rf", ".hidden", ""])
def test_names_that_are_not_plain_file_names(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write_scenario(tmp_path / "s.yaml", scenario_dict(name=name))
    _no_costing(monkeypatch)
    res = runner.invoke(app, ["run", str(path), "--no-plot"])
    assert res.exit_code == 2, res.output
    assert f"{path}: name: expected a plain file name" in res.output
    assert "Traceback" not in res.output and len(res.output) < 600
    assert not (tmp_path / "results").exists()


# ---- what --out may replace ---------------------------------------------------------


def _special(kind: str, at: Path) -> None:
    if kind == "user dir":
        at.mkdir()
        (at / "thesis.tex").write_text("years of work")
    elif kind == "regular file":
        at.write_text("precious")
    elif kind == "fifo":
        os.mkfifo(at)
    else:  # a symlink to a user's directory
        (at.parent / "real").mkdir()
        (at.parent / "real" / "data.txt").write_text("data")
        at.symlink_to(at.parent / "real")


@pytest.mark.parametrize("kind", ["user dir", "regular file", "fifo", "symlink"])
@pytest.mark.parametrize("command", ["run", "compare"])
def test_out_refuses_what_owin_cosim_did_not_write(
    kind: str, command: str, tmp_path: Path, tiny_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "t"
    _special(kind, target)
    before = _tree(tmp_path)
    kinds = os.lstat(target).st_mode
    _no_costing(monkeypatch)
    res = runner.invoke(app, [command, str(tiny_path), "--out", str(target), "--no-plot"])
    assert res.exit_code == 2, res.output
    assert f"--out: {target} is a" in res.output
    assert _tree(tmp_path) == before and os.lstat(target).st_mode == kinds
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before_top(before))


def before_top(tree: dict[str, bytes | None]) -> list[str]:
    return [k for k in tree if "/" not in k]


def test_out_replaces_its_own_results_and_empty_dirs(tmp_path: Path, tiny_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(app, ["run", str(tiny_path), "--out", str(empty), "--no-plot"])
    assert res.exit_code == 0, res.output
    assert json.loads((empty / MARKER).read_text())["kind"] == "owin-cosim-results"
    res = runner.invoke(app, ["run", str(tiny_path), "--out", str(empty), "--no-plot"])
    assert res.exit_code == 0, res.output
    # A comparison parent is marked too, and can be replaced by the next comparison.
    cmp = tmp_path / "cmp"
    for _ in range(2):
        res = runner.invoke(
            app, ["compare", str(tiny_path), "--policies", "rtfs", "--out", str(cmp), "--no-plot"]
        )
        assert res.exit_code == 0, res.output
    assert (cmp / MARKER).is_file() and (cmp / "rtfs" / MARKER).is_file()
    assert _names(tmp_path) == ["cmp", "empty"]


def test_results_written_before_markers_and_run_parents_are_ours(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for f in ("summary.json", "events.csv", "plan.json"):
        (legacy / f).write_text("{}")
    assert safety.refusal(legacy) is None
    (legacy / "notes.txt").write_text("mine")
    assert "did not write" in str(safety.refusal(legacy))
    # results/NAME holding the results of 'run' (and a comparison.json) may be compared over.
    parent = tmp_path / "parent"
    with atomic_directory(parent / "pacs") as tmp:
        (tmp / "summary.json").write_text("{}")
    (parent / "comparison.json").write_text("{}")
    assert safety.refusal(parent) is None
    (parent / "user").mkdir()
    assert "did not write" in str(safety.refusal(parent))


def test_target_changed_during_the_run_is_refused_at_swap_time(tmp_path: Path) -> None:
    target = tmp_path / "t"
    with pytest.raises(ConfigError, match="did not write"), atomic_directory(target) as tmp:
        (tmp / "summary.json").write_text("{}")
        target.mkdir()
        (target / "user.txt").write_text("arrived meanwhile")
    assert (target / "user.txt").read_text() == "arrived meanwhile"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]


# ---- path errors before any work ----------------------------------------------------


def test_path_errors_come_before_any_work(
    tmp_path: Path, tiny_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_costing(monkeypatch)
    (tmp_path / "file").write_text("x")
    cases = {
        tmp_path / "file" / "out": "Not a directory",  # the parent is a regular file
        tmp_path / ("n" * 300): "File name too long",
        tmp_path / ("n" * 250): "File name too long",  # fits, but its hidden sibling not
        tmp_path / "file" / "deeper" / "out": "Not a directory",
    }
    for target, why in cases.items():
        for command in ("run", "compare"):
            res = runner.invoke(app, [command, str(tiny_path), "--out", str(target)])
            assert res.exit_code == 2, res.output
            assert "--out: " in res.output and why in res.output, res.output
            assert "Traceback" not in res.output
    assert _names(tmp_path) == ["file"]


def test_read_only_parent_is_refused_up_front(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with without_root_privileges(), pytest.raises(ConfigError, match="Permission denied"):
            prepare_target(ro / "out", "--out")
    finally:
        ro.chmod(0o700)
    assert list(ro.iterdir()) == []


def test_results_honour_the_umask(tmp_path: Path) -> None:
    for mask, mode in ((0o022, 0o755), (0o077, 0o700), (0o002, 0o775)):
        old = os.umask(mask)
        try:
            with atomic_directory(tmp_path / f"r{mask:o}") as tmp:
                (tmp / "summary.json").write_text("{}")
        finally:
            os.umask(old)
        got = stat.S_IMODE(os.stat(tmp_path / f"r{mask:o}").st_mode)
        assert got == mode, (oct(mask), oct(got))


# ---- a kill at every step of the swap ------------------------------------------------

_WRITER = """
import os, signal, sys
from pathlib import Path
from owin_cosim.results import safety

target, kill_at, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
if mode == "fallback":
    safety._renameat2 = None
seen = []

def hook(step):
    seen.append(step)
    if step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

safety._STEP_HOOK = hook
with safety.atomic_directory(target) as tmp:
    (tmp / "a.txt").write_text("new")
    if kill_at == "half-written":
        os.kill(os.getpid(), signal.SIGKILL)
    (tmp / "b.txt").write_text("new")
print(",".join(seen))
"""
_STEPS = ["created", "half-written", "written", "marked", "moved-aside", "swapped", "cleaned"]


def _write_old(target: Path) -> None:
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("old")
        (tmp / "b.txt").write_text("old")


def _writer(target: Path, kill_at: str, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _WRITER, str(target), kill_at, mode],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("mode", ["exchange", "fallback"])
@pytest.mark.parametrize("had_old", [True, False])
def test_a_kill_at_every_step_leaves_the_old_or_the_new_result(
    mode: str, had_old: bool, tmp_path: Path
) -> None:
    assert safety._renameat2 is not None  # Linux: the exchange path is really tried
    # Which steps this path goes through (no kill).
    probe = tmp_path / "probe" / "r"
    if had_old:
        _write_old(probe)
    done = _writer(probe, "never", mode)
    assert done.returncode == 0, done.stderr
    steps = done.stdout.strip().split(",")
    assert ("moved-aside" in steps) == (mode == "fallback" and had_old)
    outcomes = set()
    for step in [s for s in _STEPS if s in steps or s == "half-written"]:
        target = tmp_path / step / "r"
        if had_old:
            _write_old(target)
        killed = _writer(target, step, mode)
        assert killed.returncode == -9, (step, killed.stdout, killed.stderr)
        if step == "moved-aside":  # the moment when neither is at the target
            assert not target.exists() and len(list(target.parent.iterdir())) == 2
        recover(target)
        left = sorted(p.name for p in target.parent.iterdir())
        if not had_old and step in ("created", "half-written", "written", "marked"):
            assert left == [], (step, left)
            outcomes.add("none")
            continue
        assert left == ["r"], (step, left)
        texts = {(target / f).read_text() for f in ("a.txt", "b.txt")}
        assert texts in ({"old"}, {"new"}), (step, texts)
        assert (target / MARKER).is_file()
        outcomes.add(texts.pop())
    assert "new" in outcomes and ("old" in outcomes) == had_old


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_run_restores_a_result_lost_between_the_two_renames(
    tmp_path: Path, tiny_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "r"
    _write_old(target)
    pid = _dead_pid()
    target.rename(tmp_path / f".r.old-{pid}-abc")  # killed after the first rename
    (tmp_path / f".r.tmp-{pid}-def").mkdir()
    (tmp_path / f".r.tmp-{pid}-def" / "a.txt").write_text("half")
    _no_costing(monkeypatch)
    res = runner.invoke(app, ["run", str(tiny_path), "--out", str(target)])
    assert "assembly started" in repr(res.exception)  # the recovery ran before the work
    assert _names(tmp_path) == ["r"]
    assert (target / "a.txt").read_text() == "old"
