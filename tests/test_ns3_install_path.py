"""ns-3 from an install whose path contains ``test``, a comma and a space (issue 12).

The ns3 wheel's own loader drops every library whose full path contains ``test``; the
worker loads ns-3 through :mod:`owin_cosim.network.ns3.loader` instead. These tests link
the installed wheel (hard links: fast, and the installed files are never written) into a
temporary folder with such a path, put it first on ``PYTHONPATH``, and run a short LTE
scenario there and from the normal install.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from owin_cosim.errors import BackendUnavailableError
from owin_cosim.network.ns3.environment import ns3_installed
from owin_cosim.network.ns3.loader import wheel_libraries
from tests.conftest import REPO, SPECS

if os.environ.get("OWIN_COSIM_SKIP_NS3") == "1":
    pytest.skip("OWIN_COSIM_SKIP_NS3=1", allow_module_level=True)
if not ns3_installed():
    pytest.fail(
        'ns-3 is not installed: pip install -e ".[test,ns3]" (or set OWIN_COSIM_SKIP_NS3=1)',
        pytrace=False,
    )

pytestmark = pytest.mark.ns3

#: A folder name as researchers have them: "test", a comma and a space.
AWKWARD = "thesis tests,v2"

#: Runs the tiny scenario with rtfs on ns-3 and prints what it produced as JSON.
_RUN = """
import dataclasses, json, sys
from pathlib import Path
from owin_cosim.network.ns3.environment import ns3_include_dir
from owin_cosim.policies import make_policy
from owin_cosim.scenario.assemble import assemble
from owin_cosim.scenario.schema import Scenario
from owin_cosim.sim.coordinator import execute
scenario = Scenario.model_validate(json.loads(sys.argv[1]))
problem = assemble(scenario, Path("tiny.yaml"))
try:
    result = execute(problem, make_policy("rtfs").plan(problem))
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
    raise SystemExit(0)
print(json.dumps({
    "include": str(ns3_include_dir()),
    "makespan_s": result.makespan_s,
    "chunks": [dataclasses.asdict(c) for c in result.chunks],
    "layers": [dataclasses.asdict(r) for r in result.layers],
}))
"""


def _scenario() -> dict[str, object]:
    return {
        "name": "tiny-ns3",
        "seed": 2,
        "devices": [
            {
                "name": "a",
                "modality": "vec",
                "distance_m": 8,
                "payload": {"bytes": 30_000},
                "chunks": 2,
            },
            {"name": "b", "modality": "vec", "distance_m": 25, "payload": {"bytes": 12_000}},
        ],
        "network": {"backend": "ns3", "ns3": {"scenario": "lte-uplink"}},
        "model": {
            "encoders": {
                "a": {"name": "mlp", "params": {"in_features": 256, "rows": 8}},
                "b": {"name": "mlp", "params": {"in_features": 64, "rows": 4}},
            }
        },
        "accelerator": {"spec": str(SPECS / "mc4.yaml")},
    }


def _link(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system: a copy
        shutil.copy2(src, dst)


def _install_at(site: Path) -> Path:
    """Link the installed ``ns3`` and ``ns`` packages into ``site``; return ``site``."""
    spec = importlib.util.find_spec("ns3")
    assert spec is not None and spec.submodule_search_locations
    ns3_dir = Path(next(iter(spec.submodule_search_locations)))
    for package in ("ns3", "ns"):
        shutil.copytree(ns3_dir.parent / package, site / package, copy_function=_link)
    return site


def _start(tmp: Path, site: Path | None, cache: Path | None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join([*([str(site)] if site else []), str(REPO)])
    if cache is not None:
        env["OWIN_COSIM_CACHE"] = str(cache)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # nothing written next to the linked files
    return subprocess.Popen(
        [sys.executable, "-c", _RUN, json.dumps(_scenario())],
        cwd=tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(proc: subprocess.Popen[str]) -> dict[str, object]:
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    assert "unresolved" not in stderr, stderr[-3000:]  # cling's symbol errors
    out: dict[str, object] = json.loads(stdout.strip().splitlines()[-1])
    return out


def _run(tmp: Path, site: Path | None, cache: Path | None) -> dict[str, object]:
    return _result(_start(tmp, site, cache))


def test_ns3_runs_from_a_path_with_test_a_comma_and_a_space(tmp_path: Path) -> None:
    awkward = tmp_path / AWKWARD
    site = _install_at(awkward / "site")
    # Both at once: the awkward one builds its own precompiled header first (~15 s).
    procs = [_start(tmp_path, site, awkward / "cache"), _start(tmp_path, None, None)]
    try:
        there, here = (_result(p) for p in procs)
    finally:
        for p in procs:  # after a failure: no run left behind
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert "error" not in there, there
    assert str(there["include"]).startswith(str(site))  # the linked copy was used
    assert "error" not in here, here
    assert not str(here["include"]).startswith(str(site))
    assert isinstance(there["chunks"], list) and len(there["chunks"]) == 3
    # The same ns-3, the same seed: the same run bit for bit.
    for key in ("makespan_s", "chunks", "layers"):
        assert there[key] == here[key], key


def test_unknown_wheel_loader_under_a_test_path_is_a_clear_error(tmp_path: Path) -> None:
    """A wheel whose loader owin-cosim cannot work around, under a path with ``test``:
    a BackendUnavailableError saying why and what to do, before any worker starts."""
    site = _install_at(tmp_path / AWKWARD / "site")
    loader = site / "ns3" / "ns" / "__init__.py"
    text = loader.read_text(encoding="utf-8")
    assert "\nns = load_modules()" in text
    loader.unlink()  # a hard link to the installed file: never write through it
    # Another wheel version: the same loader, written differently.
    loader.write_text(
        text.replace("\nns = load_modules()", "\nbindings = load_modules()\nns = bindings")
    )
    out = _run(tmp_path, site, tmp_path / "cache")
    assert out["error"] == "BackendUnavailableError", out
    message = str(out["message"])
    assert "contains 'test'" in message and "reinstall owin-cosim" in message, message
    assert not (tmp_path / "cache" / "ns3-pch").exists()  # failed before building anything


def test_test_libraries_are_recognised_by_file_name(tmp_path: Path) -> None:
    prefix = tmp_path / "a-test,dir" / "ns3"
    (prefix / "lib64").mkdir(parents=True)
    for name in ("libns3.44-core.so", "libns3.44-wifi.so", "libns3.44-core-test.so"):
        (prefix / "lib64" / name).touch()
    (prefix / "lib64" / "libgsl.so").touch()
    libraries, version = wheel_libraries(prefix)
    assert [p.name for p in libraries] == ["libns3.44-core.so", "libns3.44-wifi.so"]
    assert version == "3.44"
    (prefix / "lib64" / "libns3.45-lte.so").touch()
    with pytest.raises(BackendUnavailableError, match=r"several versions \(3\.44, 3\.45\)"):
        wheel_libraries(prefix)
    shutil.rmtree(prefix / "lib64")
    with pytest.raises(BackendUnavailableError, match="no ns-3 libraries"):
        wheel_libraries(prefix)
