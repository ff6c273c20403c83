"""Plugins through real entry points (see ``docs/plugins.md``).

The example package of ``examples/plugin`` is installed once into a temporary directory
and a second, broken distribution is written by hand into another; the command line then
runs in subprocesses with those directories on ``PYTHONPATH``, so that
``importlib.metadata`` finds the entry points as it would in any environment. The
in-process tests at the end check the example's backends against their formulas.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from owin_cosim.errors import ConfigError
from tests.conftest import REPO, SPECS, scenario_dict, write_scenario

PLUGIN = REPO / "examples" / "plugin"
EXAMPLE = PLUGIN / "scenario.yaml"
PACKAGE = "owin_cosim_example_plugin"

#: The broken distribution: a missing module, objects of the wrong kind, a policy named
#: otherwise than registered, and a name taken by a built-in.
BROKEN_ENTRY_POINTS = """\
[owin_cosim.policies]
broken = no_such_module:X
wrongtype = os.path:join
abstract = owin_cosim.policies.base:Policy
misnamed = owin_cosim.policies.rtfs:Rtfs
rtfs = no_such_module:R

[owin_cosim.network_backends]
broken-net = no_such_module:Y
"""


# ---- installing -----------------------------------------------------------------------
def _install_with_pip(target: Path, scratch: Path) -> None:
    """``pip install --target``, offline, from a copy (the build writes into the tree)."""
    source = scratch / "src"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _write_dist_info(info: Path, name: str, version: str, entry_points: str) -> None:
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")


@pytest.fixture(scope="session")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin, installed once by a real, offline ``pip install --target``
    (``wheel`` is a test dependency: setuptools needs it to build)."""
    target = tmp_path_factory.mktemp("plugin-site")
    t0 = time.perf_counter()
    _install_with_pip(target, tmp_path_factory.mktemp("plugin-build"))
    print(f"example plugin installed by pip in {time.perf_counter() - t0:.2f} s")
    assert (target / PACKAGE / "policy.py").is_file()
    return target


@pytest.fixture(scope="session")
def broken_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A distribution declaring entry points that cannot work, and a half-removed one
    (a ``.dist-info`` without metadata) declaring a name again."""
    target = tmp_path_factory.mktemp("broken-site")
    _write_dist_info(
        target / "broken_plugin-0.0.1.dist-info", "broken-plugin", "0.0.1", BROKEN_ENTRY_POINTS
    )
    nameless = target / "nameless-0.dist-info"
    nameless.mkdir()
    (nameless / "entry_points.txt").write_text("[owin_cosim.policies]\nbroken = elsewhere:X\n")
    return target


# ---- running --------------------------------------------------------------------------
def _env(paths: tuple[Path, ...]) -> dict[str, str]:
    old = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, paths), *filter(None, [old])])}


def _cli(cwd: Path, *args: str, paths: tuple[Path, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "owin_cosim.cli", *args],
        cwd=cwd,
        env=_env(paths),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _config_error(done: subprocess.CompletedProcess[str]) -> str:
    """The one-line error of exit code 2 (and no traceback)."""
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return " ".join(done.stderr.split())  # rich may wrap long lines


def _summary(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return data


def _example_variant(path: Path, **sections: dict[str, Any]) -> Path:
    """The example scenario with some sections replaced, its spec path made absolute."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["accelerator"]["spec"] = str(SPECS / "mc4.yaml")
    for key, value in sections.items():
        data[key] = {**data[key], **value}
    return write_scenario(path, data)


@pytest.fixture(scope="module")
def example_run(plugin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example scenario run once with its own policy (greedy): the results dir."""
    cwd = tmp_path_factory.mktemp("example-run")
    _ok(_cli(cwd, "run", str(EXAMPLE), "--out", "out", "--no-plot", paths=(plugin_dir,)))
    return cwd / "out"


# ---- through the entry points ---------------------------------------------------------
def test_example_declares_all_three_groups() -> None:
    meta = tomllib.loads((PLUGIN / "pyproject.toml").read_text(encoding="utf-8"))
    eps = meta["project"]["entry-points"]
    assert eps == {
        "owin_cosim.policies": {"greedy": f"{PACKAGE}.policy:SmallestUploadFirst"},
        "owin_cosim.cost_backends": {"roofline": f"{PACKAGE}.roofline:RooflineBackend"},
        "owin_cosim.network_backends": {"fixed-rate": f"{PACKAGE}.fixed_rate:FixedRateBackendType"},
    }
    assert meta["build-system"]["build-backend"] == "setuptools.build_meta"


_LISTING = """
import json, sys
from owin_cosim.accel.registry import COST_BACKENDS
from owin_cosim.errors import PluginError
from owin_cosim.network.registry import NETWORK_BACKENDS
from owin_cosim.policies.registry import POLICIES
out = {
    "policies": POLICIES.names(),
    "cost": COST_BACKENDS.names(),
    "network": NETWORK_BACKENDS.names(),
    "providers": {e.name: e.provider for e in POLICIES.entries()},
    "imported": sorted(m for m in sys.modules if m.startswith(("owin_cosim_example", "no_such"))),
    "errors": {},
}
for registry, name in [
    (POLICIES, "broken"),
    (POLICIES, "wrongtype"),
    (POLICIES, "abstract"),
    (POLICIES, "misnamed"),
    (NETWORK_BACKENDS, "broken-net"),
]:
    try:
        registry.load(name)
    except PluginError as exc:
        out["errors"][name] = [type(exc).__name__, str(exc), exc.name, exc.target]
out["greedy"] = POLICIES.load("greedy").__name__
out["rtfs"] = POLICIES.load("rtfs").__module__
print(json.dumps(out))
"""


def test_listing_imports_nothing_and_loading_reports_the_plugin(
    plugin_dir: Path, broken_dir: Path, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _LISTING],
        cwd=tmp_path,
        env=_env((plugin_dir, broken_dir)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    got = json.loads(_ok(done))
    assert got["policies"][:2] == ["rtfs", "pacs"]  # built-ins first
    assert {"greedy", "broken", "wrongtype"} <= set(got["policies"])
    assert "roofline" in got["cost"] and "fixed-rate" in got["network"]
    assert "broken-net" in got["network"]
    assert got["providers"]["greedy"] == "owin-cosim-example-plugin"
    assert got["providers"]["broken"] == "broken-plugin"
    assert got["imported"] == []  # listing names imported no plugin
    kind, message, name, target = got["errors"]["broken"]
    assert (kind, name, target) == ("PluginError", "broken", "no_such_module:X")
    assert "No module named 'no_such_module'" in message
    kind, message, name, _ = got["errors"]["wrongtype"]
    assert (kind, name) == ("PluginError", "wrongtype")
    assert "expected a subclass of owin_cosim.policies.Policy" in message
    assert got["errors"]["broken-net"][3] == "no_such_module:Y"
    assert "Policy does not implement ['plan']" in got["errors"]["abstract"][1]
    misnamed = got["errors"]["misnamed"][1]
    assert "its name is 'rtfs'; expected the registered name 'misnamed'" in misnamed
    # A built-in name cannot be taken over: listed once, the built-in loads.
    assert got["policies"].count("rtfs") == 1 and got["providers"]["rtfs"] == "owin-cosim"
    assert got["rtfs"] == "owin_cosim.policies.rtfs"
    assert got["greedy"] == "SmallestUploadFirst"


def test_run_with_a_plugin_policy(plugin_dir: Path, tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path / "tiny.yaml", scenario_dict())
    args = ("run", str(scenario), "--policy", "greedy", "--out", "out", "--no-plot")
    _ok(_cli(tmp_path, *args, paths=(plugin_dir,)))
    s = _summary(tmp_path / "out")
    assert s["policy"] == "greedy"
    # a: 20 kB at 10 m, b: 60 kB at 30 m: a first; each phase gives the band to one.
    assert s["plan"]["upload_order"] == ["a", "b"]
    assert [p["shares"] for p in s["plan"]["radio_phases"]] == [{"a": 1.0}, {"b": 1.0}]
    assert s["plan"]["compute_release"] == "on_arrival"
    assert s["makespan_s"] >= s["lower_bound_s"] > 0


def test_compare_with_a_plugin_policy(plugin_dir: Path, tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path / "tiny.yaml", scenario_dict())
    args = ("compare", str(scenario), "--policies", "rtfs,greedy", "--out", "cmp", "--no-plot")
    doc = json.loads(_ok(_cli(tmp_path, *args, "--json", paths=(plugin_dir,))))
    assert doc["policies"] == ["rtfs", "greedy"]
    assert doc["results"]["greedy"]["makespan_s"] >= doc["lower_bound_s"] > 0
    assert _summary(tmp_path / "cmp" / "greedy")["policy"] == "greedy"


def test_validate_the_example_scenario(plugin_dir: Path, broken_dir: Path, tmp_path: Path) -> None:
    # The broken distribution beside it changes nothing.
    done = _cli(tmp_path, "validate", str(EXAMPLE), paths=(plugin_dir, broken_dir))
    out = " ".join(_ok(done).split())
    assert "network fixed-rate, policy greedy" in out
    assert out.count("mean full-band rate 50.0 Mbit/s") == 3
    assert out.endswith("valid")


def test_the_example_scenario_runs_on_the_plugin_backends(example_run: Path) -> None:
    s = _summary(example_run)
    assert (s["policy"], s["cost_backend"], s["network_backend"]) == (
        "greedy",
        "roofline",
        "fixed-rate",
    )
    rate = 50e6
    payload = {name: d["payload_bytes"] for name, d in s["devices"].items()}
    assert s["plan"]["upload_order"] == ["chat", "microphone", "camera"]  # by size
    done = s["upload_finish_by_device_s"]
    # One device at a time on the whole link: the first ends at exactly its bits / rate,
    # the others once every byte before theirs has crossed too.
    assert done["chat"] == payload["chat"] * 8.0 / rate
    assert done["microphone"] == pytest.approx((512 + 12288) * 8.0 / rate, rel=1e-12)
    assert done["camera"] == pytest.approx(sum(payload.values()) * 8.0 / rate, rel=1e-12)
    lb = s["lower_bound_parts_s"]
    assert lb["radio_s"] == sum(payload.values()) * 8.0 / rate
    assert s["last_upload_s"] >= lb["radio_s"]
    assert s["makespan_s"] >= s["lower_bound_s"] > 0
    assert 0 < s["gap_to_lower_bound"] < 1.0
    assert s["energy_J"]["accelerator"] > 0


def test_a_broken_plugin_leaves_other_commands_alone(
    plugin_dir: Path, broken_dir: Path, example_run: Path, tmp_path: Path
) -> None:
    paths = (plugin_dir, broken_dir)
    _ok(_cli(tmp_path, "run", str(EXAMPLE), "--out", "again", "--no-plot", paths=paths))
    # ... and gives the same results as the run without it (deterministic).
    for name in ("summary.json", "events.csv"):
        assert (tmp_path / "again" / name).read_bytes() == (example_run / name).read_bytes()


def test_a_broken_policy_is_a_clear_error(
    plugin_dir: Path, broken_dir: Path, tmp_path: Path
) -> None:
    scenario = write_scenario(tmp_path / "tiny.yaml", scenario_dict())
    args = ("run", str(scenario), "--policy", "broken", "--no-plot")
    message = _config_error(_cli(tmp_path, *args, paths=(plugin_dir, broken_dir)))
    assert "plugin 'broken' (owin_cosim.policies = no_such_module:X)" in message
    assert "No module named 'no_such_module'" in message
    assert not (tmp_path / "results").exists()


def test_a_bad_plugin_option_names_its_key(plugin_dir: Path, tmp_path: Path) -> None:
    bad = {"accelerator": {"roofline": {"efficency": 0.5}}}
    scenario = _example_variant(tmp_path / "bad.yaml", **bad)
    message = _config_error(_cli(tmp_path, "validate", str(scenario), paths=(plugin_dir,)))
    assert "bad.yaml: accelerator.roofline.efficency: unknown key; expected one of: " in message
    assert "efficiency, mac_energy_pJ, dram_energy_pJ_per_byte" in message


# ---- the example's backends, in process -----------------------------------------------
@pytest.fixture
def plugin(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The installed example importable here (its entry points only during the test)."""
    monkeypatch.syspath_prepend(str(plugin_dir))


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_fixed_rate_alone_on_the_link_meets_its_bound(plugin: None) -> None:
    from owin_cosim.network.base import ChunkTx, UplinkDevice

    fr = _module("fixed_rate")
    devices = [UplinkDevice("a", 10.0, 0.1), UplinkDevice("b", 20.0, 0.1)]
    chunks = [[1000, 777, 3], [5000]]
    setup = fr.FixedRateBackendType().setup(
        {"fixed-rate": {"rate_bps": 3e6}}, devices, chunks, 0, Path("s.yaml")
    )
    assert setup.planning == setup.network and setup.mean_rate_bps == (3e6, 3e6)
    assert setup.radio_bound_s == 6780 * 8 / 3e6
    for k, dev in enumerate(devices):
        net = fr.FixedRateBackendType().create(setup.network)
        net.set_shares({dev.name: 1.0}, 0.0)
        for c, nbytes in enumerate(chunks[k]):
            net.submit(ChunkTx(dev.name, c, nbytes), 0.0)
        got = []
        while net.has_backlog():
            res = net.advance(math.inf)
            assert len(res.deliveries) == 1 and res.time_s == res.deliveries[0].last_byte_s
            got.append(res.deliveries[0])
        # Exactly the earliest arrivals of the set-up, chunk after chunk, back to back.
        assert tuple(d.last_byte_s for d in got) == setup.earliest_arrival_s[k]
        assert [d.first_byte_s for d in got] == [0.0, *(d.last_byte_s for d in got[:-1])]


def test_fixed_rate_shares_and_work_conservation(plugin: None) -> None:
    from owin_cosim.network.base import ChunkTx, UplinkDevice

    fr = _module("fixed_rate")
    # 2**20 bytes per second, 1 KiB chunks: every instant below is a binary fraction.
    devices = [UplinkDevice("a", 1.0, 0.1), UplinkDevice("b", 1.0, 0.1)]
    net = fr.FixedRateUplink(8.0 * 2**20, devices)
    net.set_shares({"a": 1.0}, 0.0)  # b has share 0: it waits while a has data
    net.submit(ChunkTx("a", 0, 1024), 0.0)
    net.submit(ChunkTx("b", 0, 1024), 0.0)
    assert net.advance(2**-11).deliveries == () and net.now_s == 2**-11  # stops at until
    (a,) = net.advance(1.0).deliveries
    assert (a.device, a.first_byte_s, a.last_byte_s) == ("a", 0.0, 2**-10)
    (b,) = net.advance(1.0).deliveries  # then b alone, at the whole rate
    assert (b.device, b.first_byte_s, b.last_byte_s) == ("b", 2**-10, 2**-9)
    assert not net.has_backlog()
    assert [(u.device, u.start_s, u.end_s, u.units) for u in net.radio_usage()] == [
        ("a", 0.0, 2**-10, 100),
        ("b", 2**-10, 2**-9, 100),
    ]
    # Equal split when no backlogged device has a share; a submission in the future
    # waits for its time.
    net.set_shares({}, net.now_s)
    net.submit(ChunkTx("a", 1, 1024), 2**-6)
    net.submit(ChunkTx("b", 1, 1024), 2**-6)
    got = net.advance(1.0).deliveries
    assert [(d.device, d.submit_s, d.first_byte_s, d.last_byte_s) for d in got] == [
        ("a", 2**-6, 2**-6, 2**-6 + 2**-9),
        ("b", 2**-6, 2**-6, 2**-6 + 2**-9),
    ]
    assert net.radio_usage()[-1].units == 50


def test_roofline_follows_its_formula(plugin: None) -> None:
    from owin_cosim.accel.spec import load_chip_spec
    from owin_cosim.workload.graph import conv2d, matmul

    rl = _module("roofline")
    chip = load_chip_spec(SPECS / "mc4.yaml")
    backend = rl.RooflineBackend()
    options = backend.options({"roofline": {"efficiency": 0.5}, "latency_scale": 2.0}, Path("s"))
    assert options == {
        "latency_scale": 2.0,
        "efficiency": 0.5,
        "mac_energy_pJ": None,
        "dram_energy_pJ_per_byte": None,
    }
    model, version, extra = backend.build(chip, options, [])
    assert model.name == "roofline" and "roofline" in version and extra == b""
    pes, clock, bw = chip.core.num_pes, chip.clock_hz, chip.dram_bandwidth_Bps
    conv = conv2d("c", C=64, M=64, P=56, Q=56, R=3)  # many MACs per byte
    fc = matmul("fc", rows=1, in_features=4096, out_features=4096)  # one MAC per weight
    for layer, bound in ((conv, "compute"), (fc, chip.core.dram.name)):
        cost = model.layer_cost(layer)
        nbytes = (layer.input_elems + layer.weight_elems + layer.output_elems) * chip.word_bytes
        exact = max(layer.macs / (pes * clock * 0.5), nbytes / bw)
        assert cost.cycles == math.ceil(exact * clock) and cost.bound_by == bound
        assert cost.seconds == cost.cycles / clock * 2.0  # whole cycles, x latency_scale
        assert cost.energy_pJ == pytest.approx(
            layer.macs * chip.core.mac_energy_pJ + nbytes * chip.dram_energy_pJ_per_byte
        )
        assert 0 < cost.utilization <= 0.5


def test_plugin_options_are_checked(plugin: None) -> None:
    from owin_cosim.network.base import UplinkDevice

    rl, fr = _module("roofline"), _module("fixed_rate")
    with pytest.raises(ConfigError) as info:
        rl.RooflineBackend().options({"roofline": {"efficiency": 1.5}}, Path("s.yaml"))
    assert (info.value.file, info.value.key) == ("s.yaml", "accelerator.roofline.efficiency")
    with pytest.raises(ConfigError) as info:
        devices = [UplinkDevice("a", 1.0, 0.1)]
        section = {"fixed-rate": {"rate_bps": 0}}
        fr.FixedRateBackendType().setup(section, devices, [[10]], 0, Path("s.yaml"))
    assert info.value.key == "network.fixed-rate.rate_bps"
    assert "greater than 0" in info.value.message


@pytest.mark.parametrize("name", ["policy", "roofline", "fixed_rate"])
def test_example_doctests(plugin: None, name: str) -> None:
    import doctest

    result = doctest.testmod(_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_the_docs_quote_the_example_verbatim() -> None:
    text = (REPO / "docs" / "plugins.md").read_text(encoding="utf-8")
    quotes = re.findall(r"<!-- from (\S+) -->\n```\w*\n(.*?)```", text, re.S)
    assert len(quotes) >= 8
    for path, code in quotes:
        source = (REPO / path).read_text(encoding="utf-8")
        assert code in source, f"docs/plugins.md quotes {path} out of date:\n{code}"


def test_plugins_command_lists_and_checks(
    plugin_dir: Path, broken_dir: Path, tmp_path: Path
) -> None:
    listing = _ok(_cli(tmp_path, "plugins", paths=(plugin_dir,)))
    for name in ("greedy", "roofline", "fixed-rate", "rtfs", "analytic", "ofdm"):
        assert f"  {name} " in listing, listing
    assert "owin-cosim-example-plugin" in listing or "owin_cosim_example_plugin" in listing
    assert " ok" in _ok(_cli(tmp_path, "plugins", "--check", paths=(plugin_dir,)))
    # listing never imports: a broken plugin is listed; --check names what fails
    listing = _ok(_cli(tmp_path, "plugins", paths=(plugin_dir, broken_dir)))
    assert "  broken " in listing
    done = _cli(tmp_path, "plugins", "--check", paths=(plugin_dir, broken_dir))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "broken" in done.stdout and "FAILED" in done.stdout and "no_such_module" in done.stdout
