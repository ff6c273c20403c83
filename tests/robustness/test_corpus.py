"""Every case of the corpus through ``validate`` and ``run``, in process.

Each must exit 2 with one message that names the file (or flag) and the key, with no
traceback, within 5 s and 500 MB (the peak resident size may not grow by more).
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from owin_cosim.cli import app
from tests.robustness.corpus import Case, all_cases

CASES = all_cases()
runner = CliRunner()

#: Bounds of one command on one case.
MAX_SECONDS = 5.0
MAX_GROWTH_BYTES = 500 * 1024 * 1024


def _write(case: Case, d: Path) -> Path:
    for name, data in case.files.items():
        (d / name).write_bytes(data)
    if case.extra.get("spec_dir"):
        (d / "spec.yaml").unlink()
        (d / "spec.yaml").mkdir()
    loop = d / "loop.yaml"
    if not loop.is_symlink():
        os.symlink(loop, loop)
    return d / "scenario.yaml"


def _commands(case: Case, scenario: Path, d: Path) -> list[list[str]]:
    if case.commands == ("as-given",):
        return [[a.format(scenario=scenario, dir=d) for a in case.args]]
    out = []
    for command in case.commands:
        args = [command, str(scenario)]
        if command == "run":
            args += ["--out", str(d / "out"), "--no-plot"]
        out.append(args)
    return out


def _printed_key(output: str, file: Path) -> str:
    """The key of ``error: FILE: KEY: message``."""
    _, _, rest = output.partition(f"{file}: ")
    return rest.split(": ", 1)[0] if ": " in rest else ""


def _key_ok(case: Case, printed: str) -> bool:
    if printed == case.key:
        return True
    return case.prefix and case.key.startswith((printed + ".", printed + "["))


def _rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_one_clean_error(case: Case, tmp_path: Path) -> None:
    scenario = _write(case, tmp_path)
    for args in _commands(case, scenario, tmp_path):
        before = _rss()
        start = time.monotonic()
        res = runner.invoke(app, args)
        took = time.monotonic() - start
        out = res.output
        where = f"{args}: exit {res.exit_code}: {out[:600]!r}"
        assert res.exit_code == 2, where
        assert isinstance(res.exception, SystemExit), f"{where}: {res.exception!r}"
        assert "Traceback" not in out and out.startswith("error:"), where
        assert out.count("\n") <= 12 and len(out) < 4000, where
        assert took < MAX_SECONDS, f"{where}: took {took:.1f} s"
        assert _rss() - before < MAX_GROWTH_BYTES, where
        if case.commands != ("as-given",):
            named = tmp_path / case.names
            assert str(named) in out, where
            if case.key:
                printed = _printed_key(out, named)
                assert _key_ok(case, printed), f"{where}: key {printed!r}, expected {case.key!r}"
        else:
            assert case.names in out, where
        for word in ("mention",):
            if word in case.extra:
                assert case.extra[word] in out, where
        assert not (tmp_path / "out").exists(), where


def test_the_corpus_is_large_and_covers_every_family() -> None:
    families = {c.family for c in CASES}
    assert len(CASES) >= 300, len(CASES)
    assert len({c.id for c in CASES}) == len(CASES), "case names must be unique"
    assert {
        "deleted",
        "wrong-type",
        "unknown-key",
        "absurd-number",
        "deep",
        "alias-bomb",
        "encoding",
        "garbage",
        "tag",
        "model-file",
        "spec",
        "policy-endpoint",
        "flag",
        "encoder-params",
    } <= families
