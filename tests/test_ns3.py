"""The ns-3 backend, with real ns-3 in worker processes (a few seconds per worker).

These tests need the ``ns3`` extra (``pip install -e ".[test,ns3]"``, as the README and
CI do). Set ``OWIN_COSIM_SKIP_NS3=1`` to skip them on a machine without it; otherwise a
missing ns-3 is a failure, not a silent skip.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from owin_cosim.network.base import ChunkTx, Delivery, NetworkBackend, UplinkDevice, dbm_to_w
from owin_cosim.network.ns3.backend import Ns3Config, Ns3Uplink, Ns3WorkerError
from owin_cosim.network.ns3.environment import ns3_installed
from owin_cosim.policies import make_policy
from owin_cosim.results.writers import write_results
from owin_cosim.scenario.assemble import assemble
from owin_cosim.scenario.schema import Scenario
from owin_cosim.sim.coordinator import execute
from tests.conftest import REPO, SPECS
from tests.test_properties import check_schedule

if os.environ.get("OWIN_COSIM_SKIP_NS3") == "1":
    pytest.skip("OWIN_COSIM_SKIP_NS3=1", allow_module_level=True)
if not ns3_installed():
    pytest.fail(
        'ns-3 is not installed: pip install -e ".[test,ns3]" (or set OWIN_COSIM_SKIP_NS3=1)',
        pytrace=False,
    )

pytestmark = pytest.mark.ns3


def _devices(*spec: tuple[str, float]) -> list[UplinkDevice]:
    return [UplinkDevice(name, dist, dbm_to_w(20.0)) for name, dist in spec]


def _drain(net: NetworkBackend, step: float | None = None) -> list[Delivery]:
    out: list[Delivery] = []
    t = 0.0
    while net.has_backlog():
        if step is None:
            res = net.advance(math.inf)
        else:
            t += step
            res = net.advance(t)
            assert res.time_s <= t + 1e-12
            assert all(d.last_byte_s <= t + 1e-12 for d in res.deliveries)
        out.extend(res.deliveries)
    return out


def _worker_pids() -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"owin_cosim.network.ns3.worker" in cmd:
                pids.add(int(entry.name))
    return pids


def test_wifi_deliveries_follow_physics_and_never_pass_the_grant() -> None:
    """One device at a time (the release gate), so each transfer sees the channel alone:
    the farther device and the bigger payload take longer."""
    cfg = Ns3Config(scenario="wifi-ax-uplink", params={"channel_width_mhz": 20})
    order = ["near", "far", "big"]
    net = Ns3Uplink(cfg, _devices(("near", 5.0), ("far", 45.0), ("big", 5.0)), 3)
    with net:
        net.set_shares({"near": 1}, 0.0)
        net.submit(ChunkTx("near", 0, 60_000), 0.0)
        net.submit(ChunkTx("far", 0, 60_000), 0.0)
        net.submit(ChunkTx("big", 0, 240_000), 0.0)
        done: dict[str, Delivery] = {}
        t = 0.0
        while net.has_backlog():
            t += 0.0037  # grants that fall anywhere
            res = net.advance(t)
            assert res.time_s <= t + 1e-12
            for d in res.deliveries:
                assert d.last_byte_s <= t + 1e-12
                done[d.device] = d
                nxt = order[len(done)] if len(done) < len(order) else None
                if nxt is not None:
                    net.set_shares({nxt: 1}, res.time_s)
        assert net.events > 0
    took = {k: d.last_byte_s - d.first_byte_s for k, d in done.items()}
    assert took["far"] > took["near"]  # farther: lower rate
    assert took["big"] > 2 * took["near"]  # four times the bytes
    assert done["far"].first_byte_s >= done["near"].last_byte_s
    for d in done.values():
        assert 0 <= d.first_byte_s <= d.last_byte_s and d.lost_bytes == 0


def _lte_two(shares: dict[str, float], seed: int = 5) -> dict[str, float]:
    cfg = Ns3Config(scenario="lte-uplink", params={"ul_bandwidth_rbs": 25})
    with Ns3Uplink(cfg, _devices(("a", 30.0), ("b", 30.0)), seed) as net:
        net.set_shares(shares, 0.0)
        for name in ("a", "b"):
            net.submit(ChunkTx(name, 0, 150_000), 0.0)
        return {d.device: d.last_byte_s for d in _drain(net)}


def test_lte_larger_share_arrives_earlier_and_runs_are_deterministic() -> None:
    even = _lte_two({"a": 1.0, "b": 1.0})
    favour_b = _lte_two({"a": 1.0, "b": 4.0})
    assert favour_b["b"] < even["b"] - 0.005
    assert favour_b["a"] > favour_b["b"]
    assert _lte_two({"a": 1.0, "b": 1.0}) == even  # same seed, same delivery times


def test_zero_share_waits_for_the_others() -> None:
    """Transmission order acts inside ns-3: a device with share 0 starts only after the
    devices with a positive share are done."""
    cfg = Ns3Config(scenario="wifi-ax-uplink", params={"channel_width_mhz": 20})
    with Ns3Uplink(cfg, _devices(("first", 10.0), ("second", 10.0)), 1) as net:
        net.set_shares({"first": 1.0}, 0.0)
        net.submit(ChunkTx("first", 0, 50_000), 0.0)
        net.submit(ChunkTx("second", 0, 50_000), 0.0)
        done = {d.device: d for d in _drain(net)}
    assert done["second"].first_byte_s >= done["first"].last_byte_s


def _tiny_scenario(backend: dict[str, Any]) -> Scenario:
    return Scenario.model_validate(
        {
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
            "network": {"backend": "ns3", "ns3": backend},
            "model": {
                "encoders": {
                    "a": {"name": "mlp", "params": {"in_features": 256, "rows": 8}},
                    "b": {"name": "mlp", "params": {"in_features": 64, "rows": 4}},
                }
            },
            "accelerator": {"spec": str(SPECS / "mc4.yaml")},
        }
    )


@pytest.mark.parametrize("scenario", ["wifi-ax-uplink", "lte-uplink"])
def test_policies_run_unchanged_on_ns3(scenario: str) -> None:
    problem = assemble(_tiny_scenario({"scenario": scenario}), Path("tiny.yaml"))
    for name in ("rtfs", "pacs"):
        result = execute(problem, make_policy(name).plan(problem))
        assert result.network_backend == "ns3"
        check_schedule(problem, result, name)


def test_granting_until_the_next_delivery_changes_nothing() -> None:
    """ns-3 is grant invariant: event-by-event grants and delivery-to-delivery grants give
    the same run bit for bit; the latter with fewer round trips to the worker."""
    s = _tiny_scenario({"scenario": "lte-uplink"})
    problem = assemble(s, Path("tiny.yaml"))
    plan = make_policy("pacs").plan(problem)
    devices = [UplinkDevice(d.name, d.distance, dbm_to_w(d.tx_power_dBm)) for d in s.devices]
    runs = []
    for invariant in (False, True):
        net = Ns3Uplink(s.network.ns3, devices, s.seed)
        net.grant_invariant = invariant
        calls = 0
        advance = net.advance

        def counted(until_s: float, _advance: Any = advance) -> Any:
            nonlocal calls
            calls += 1
            return _advance(until_s)

        net.advance = counted  # type: ignore[method-assign]
        result = execute(problem, plan, network=net)
        runs.append((result, calls))
    (slow, slow_calls), (fast, fast_calls) = runs
    assert fast.chunks == slow.chunks and fast.layers == slow.layers
    assert fast.makespan_s == slow.makespan_s
    assert fast_calls < slow_calls


def test_killed_worker_is_detected_and_cleaned_up() -> None:
    before = _worker_pids()
    cfg = Ns3Config(scenario="wifi-ax-uplink", params={"channel_width_mhz": 20})
    net = Ns3Uplink(cfg, _devices(("a", 5.0)), 1)
    assert net._proc is not None
    pid, tmp = net._proc.pid, net._tmp
    os.kill(pid, signal.SIGKILL)
    t = time.monotonic()
    with pytest.raises(Ns3WorkerError, match=r"wifi-ax-uplink.*died"):
        net.submit(ChunkTx("a", 0, 1000), 0.0)
        net.advance(math.inf)
    assert time.monotonic() - t < 5.0
    assert tmp is not None and not tmp.exists()
    assert _worker_pids() <= before


def test_ns3_fatal_error_reports_stderr_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OWIN_COSIM_NS3_FAULT", "abort@0.002")
    cfg = Ns3Config(scenario="wifi-ax-uplink", params={"channel_width_mhz": 20})
    with pytest.raises(Ns3WorkerError) as info, Ns3Uplink(cfg, _devices(("a", 5.0)), 1) as net:
        net.submit(ChunkTx("a", 0, 200_000), 0.0)
        _drain(net)
    text = str(info.value)
    assert "died" in text and "fault injection" in text and "wifi-ax-uplink" in text


def test_stuck_worker_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OWIN_COSIM_NS3_FAULT", "hang")
    cfg = Ns3Config(
        scenario="wifi-ax-uplink", params={"channel_width_mhz": 20}, heartbeat_timeout_s=2.0
    )
    net = Ns3Uplink(cfg, _devices(("a", 5.0)), 1)
    pid = net._proc.pid if net._proc else -1
    net.submit(ChunkTx("a", 0, 1000), 0.0)
    t = time.monotonic()
    with pytest.raises(Ns3WorkerError, match="stopped answering"):
        net.advance(math.inf)
    assert time.monotonic() - t < 8.0
    assert (
        not Path(f"/proc/{pid}").exists() or b"zombie" in Path(f"/proc/{pid}/status").read_bytes()
    )


@contextlib.contextmanager
def _cpu_load() -> Iterator[None]:
    """A busy machine: two busy loops per core, for the duration of the block."""
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(2 * (os.cpu_count() or 1))
    ]
    try:
        time.sleep(1.0)  # every loop running
        yield
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()


def test_crashed_worker_is_reported_dead_within_2_s_on_a_busy_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A C++ crash ends the worker at once (no debugger stack dump first), so it is
    reported as dead, by its signal and with ns-3's message, long before any reply
    timeout."""
    monkeypatch.setenv("OWIN_COSIM_NS3_FAULT", "abort@0.002")
    cfg = Ns3Config(
        scenario="wifi-ax-uplink", params={"channel_width_mhz": 20}, heartbeat_timeout_s=60.0
    )
    net = Ns3Uplink(cfg, _devices(("a", 5.0)), 1)
    net.submit(ChunkTx("a", 0, 200_000), 0.0)
    with _cpu_load(), pytest.raises(Ns3WorkerError) as info:
        t = time.monotonic()
        _drain(net)
    took = time.monotonic() - t
    text = str(info.value)
    assert "died (killed by signal SIGABRT) during 'advance'" in text, text
    assert "fault injection" in text and "wifi-ax-uplink" in text
    assert took < 2.0, f"reported after {took:.2f} s"


def test_killed_worker_is_reported_dead_within_2_s_on_a_busy_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker killed in the middle of a request (here one that would never answer) is
    reported as dead, with its signal, whatever the reply timeout."""
    monkeypatch.setenv("OWIN_COSIM_NS3_FAULT", "hang")
    cfg = Ns3Config(
        scenario="wifi-ax-uplink", params={"channel_width_mhz": 20}, heartbeat_timeout_s=60.0
    )
    net = Ns3Uplink(cfg, _devices(("a", 5.0)), 1)
    assert net._proc is not None
    pid = net._proc.pid
    killed_at: list[float] = []

    def kill() -> None:
        killed_at.append(time.monotonic())
        os.kill(pid, signal.SIGKILL)

    net.submit(ChunkTx("a", 0, 1000), 0.0)
    timer = threading.Timer(0.5, kill)
    with _cpu_load(), pytest.raises(Ns3WorkerError) as info:
        timer.start()
        net.advance(math.inf)
    reported_at = time.monotonic()
    timer.join()
    assert "died (killed by signal SIGKILL) during 'advance'" in str(info.value)
    assert reported_at - killed_at[0] < 2.0, f"reported {reported_at - killed_at[0]:.2f} s after"


#: UDP over a congested LTE cell: packets paced at 20 Mbit/s into ns-3's default RLC
#: buffer (10 KiB) of a 15-RB uplink, which drops what does not fit.
_LOSSY_UDP = {"transport": "udp", "ul_bandwidth_rbs": 15, "rlc_buffer_bytes": 10 * 1024}


def _lossy_udp_run(seed: int) -> tuple[list[Delivery], list[dict[str, Any]]]:
    """Deliveries, and the worker's own delivery messages, of a run that loses packets."""
    cfg = Ns3Config(scenario="lte-uplink", params=_LOSSY_UDP)
    net = Ns3Uplink(cfg, _devices(("a", 30.0), ("b", 24.0)), seed)
    with net:
        raw: list[dict[str, Any]] = []
        call = net._call

        def spy(message: dict[str, Any], timeout_s: float) -> dict[str, Any]:
            answer = call(message, timeout_s)
            raw.extend(answer.get("deliveries", ()))
            return answer

        net._call = spy  # type: ignore[method-assign]
        net.set_shares({"a": 1.0, "b": 1.0}, 0.0)
        for c in range(3):
            net.submit(ChunkTx("a", c, 40_000), 0.0)
        net.submit(ChunkTx("b", 0, 60_000), 0.0)
        return _drain(net), raw


def test_udp_chunk_is_delivered_only_whole_and_its_losses_are_reported() -> None:
    """Over UDP, packets lost in the radio's buffer are sent again by the application:
    every chunk arrives, each with all its bytes, and the bytes sent again are reported
    with it; the same seed gives the same run."""
    done, raw = _lossy_udp_run(4)
    assert sorted((d.device, d.chunk, d.nbytes) for d in done) == [
        ("a", 0, 40_000),
        ("a", 1, 40_000),
        ("a", 2, 40_000),
        ("b", 0, 60_000),
    ]
    assert len(raw) == len(done)
    assert all(m["received_bytes"] == m["nbytes"] for m in raw)  # distinct bytes at the sink
    assert sum(d.lost_bytes for d in done) > 0  # this cell does lose packets
    for d in done:
        assert d.lost_bytes % 8 == 0 and 0 <= d.first_byte_s <= d.last_byte_s
    again, _ = _lossy_udp_run(4)
    assert again == done


def test_udp_on_an_idle_wifi_link_loses_nothing() -> None:
    """The ARP caches are filled after association (which flushes a station's cache), so
    a UDP burst is not cut to the 3 packets ARP holds while it resolves."""
    cfg = Ns3Config(scenario="wifi-ax-uplink", params={"channel_width_mhz": 20, "transport": "udp"})
    with Ns3Uplink(cfg, _devices(("a", 5.0)), 1) as net:
        net.submit(ChunkTx("a", 0, 50_000), 0.0)
        (d,) = _drain(net)
    assert (d.nbytes, d.lost_bytes) == (50_000, 0)
    assert d.last_byte_s < 1.1 * 50_000 * 8 / 20e6  # paced at 20 Mbit/s, no resend round


def test_udp_chunk_on_a_dead_link_fails_the_run_naming_it() -> None:
    """HE-MCS 11 does not reach 20 m: no report ever comes back, and after
    ``udp_max_requests`` unanswered requests the run fails, naming device and chunk."""
    params = {
        "channel_width_mhz": 20,
        "transport": "udp",
        "rate_control": "constant",
        "constant_mcs": 11,
        "udp_max_requests": 3,
    }
    cfg = Ns3Config(scenario="wifi-ax-uplink", params=params)
    with Ns3Uplink(cfg, _devices(("far", 20.0)), 1) as net:
        net.submit(ChunkTx("far", 0, 20_000), 0.0)
        with pytest.raises(Ns3WorkerError, match=r"UDP chunk 0 of device 'far' cannot be"):
            _drain(net)


def test_udp_losses_reach_summary_and_events_csv(tmp_path: Path) -> None:
    problem = assemble(
        _tiny_scenario({"scenario": "lte-uplink", "params": _LOSSY_UDP}), Path("tiny.yaml")
    )
    result = execute(problem, make_policy("rtfs").plan(problem))
    check_schedule(problem, result, "rtfs")
    lost = {c.device: 0 for c in result.chunks}
    for c in result.chunks:
        lost[c.device] += c.lost_bytes
    out = write_results(result, tmp_path / "res", plot=False)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["lost_bytes_by_device"] == lost
    assert summary["lost_bytes"] == sum(lost.values()) > 0
    rows = list(csv.DictReader((out / "events.csv").open()))
    tx = {(r["device"], int(r["chunk"])): int(r["lost_bytes"]) for r in rows if r["kind"] == "tx"}
    assert tx == {(c.device, c.chunk): c.lost_bytes for c in result.chunks}
    assert all(r["lost_bytes"] == "" for r in rows if r["kind"] == "layer")


def test_ctrl_c_leaves_no_worker(tmp_path: Path) -> None:
    out = tmp_path / "res"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "owin_cosim.cli",
            "run",
            str(REPO / "examples" / "quickstart-ns3.yaml"),
            "--policy",
            "rtfs",
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
        f"--parent-pid\x00{proc.pid}".encode() in _cmdline(p) for p in _worker_pids()
    ):
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()[-2000:]
    time.sleep(0.5)
    assert not any(f"--parent-pid\x00{proc.pid}".encode() in _cmdline(p) for p in _worker_pids())
    assert not out.exists()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_standalone_worker_over_tcp(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"tcp://127.0.0.1:{port}"
    monkeypatch.setenv("OWIN_COSIM_NS3_TOKEN", "the-run-token")  # both sides read it
    worker = subprocess.Popen(
        [sys.executable, "-m", "owin_cosim.cli", "ns3-worker", "--bind", endpoint],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        cfg = Ns3Config(
            scenario="wifi-ax-uplink", params={"channel_width_mhz": 20}, endpoint=endpoint
        )
        with Ns3Uplink(cfg, _devices(("a", 5.0)), 1) as net:
            net.submit(ChunkTx("a", 0, 20_000), 0.0)
            done = _drain(net)
        assert [d.device for d in done] == ["a"]
        assert worker.wait(timeout=20) == 0  # one session, then it exits
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
