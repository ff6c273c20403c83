"""The analytic OFDM uplink: timing, shares, determinism, bounds."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from owin_cosim.network.base import ChunkTx, UplinkDevice
from owin_cosim.network.ofdm import OfdmChannel, OfdmConfig, OfdmUplink


def _devs() -> list[UplinkDevice]:
    return [UplinkDevice("near", 10.0, 0.2), UplinkDevice("far", 60.0, 0.2)]


def _run(
    cfg: OfdmConfig, shares: dict[str, float], sizes: dict[str, int], seed: int = 0
) -> dict[str, float]:
    net = OfdmUplink(cfg, _devs(), seed)
    for name, nbytes in sizes.items():
        net.submit(ChunkTx(name, 0, nbytes), 0.0)
    net.set_shares(shares, 0.0)
    done: dict[str, float] = {}
    while net.has_backlog():
        res = net.advance(math.inf)
        for d in res.deliveries:
            done[d.device] = d.last_byte_s
    return done


def test_deliveries_at_slot_ends_and_never_past_the_grant() -> None:
    cfg = OfdmConfig(num_rbs=8, slot_s=1e-3)
    net = OfdmUplink(cfg, _devs(), 1)
    net.submit(ChunkTx("near", 0, 50_000), 0.0)
    net.set_shares({"near": 1.0}, 0.0)
    t = 0.0
    while net.has_backlog():
        t += 0.00037  # grants that do not fall on slot boundaries
        res = net.advance(t)
        assert res.time_s <= t + 1e-12
        for d in res.deliveries:
            assert d.last_byte_s <= t + 1e-12
            assert d.last_byte_s / cfg.slot_s == pytest.approx(round(d.last_byte_s / cfg.slot_s))
            assert d.first_byte_s == 0.0


def test_bigger_payload_or_farther_device_arrives_later() -> None:
    cfg = OfdmConfig(num_rbs=10, fading="none")
    same = _run(cfg, {"near": 1, "far": 1}, {"near": 40_000, "far": 40_000})
    assert same["far"] > same["near"]
    big = _run(cfg, {"near": 1, "far": 1}, {"near": 80_000, "far": 10_000})
    small = _run(cfg, {"near": 1, "far": 1}, {"near": 20_000, "far": 10_000})
    assert big["near"] > small["near"]


def test_larger_share_arrives_earlier() -> None:
    cfg = OfdmConfig(num_rbs=20)
    even = _run(cfg, {"near": 1, "far": 1}, {"near": 60_000, "far": 60_000}, seed=4)
    favour = _run(cfg, {"near": 1, "far": 4}, {"near": 60_000, "far": 60_000}, seed=4)
    assert favour["far"] < even["far"]
    assert favour["near"] > even["near"]


def test_zero_share_device_still_sends_when_alone() -> None:
    """The scheduler is work-conserving: a zero share only yields to others."""
    cfg = OfdmConfig(num_rbs=10)
    done = _run(cfg, {"near": 1.0}, {"near": 1_000, "far": 30_000})
    assert done["near"] < done["far"] < math.inf


def test_same_seed_same_times_other_seed_differs() -> None:
    cfg = OfdmConfig(num_rbs=12)
    a = _run(cfg, {"near": 1, "far": 1}, {"near": 70_000, "far": 70_000}, seed=9)
    b = _run(cfg, {"near": 1, "far": 1}, {"near": 70_000, "far": 70_000}, seed=9)
    c = _run(cfg, {"near": 1, "far": 1}, {"near": 70_000, "far": 70_000}, seed=10)
    assert a == b and a != c


def test_channel_random_access_matches_sequential_draws() -> None:
    cfg = OfdmConfig(num_rbs=6, coherence_rbs=2)
    ch1, ch2 = OfdmChannel(cfg, _devs(), 5), OfdmChannel(cfg, _devs(), 5)
    seq = [ch1.gains(t).copy() for t in range(600)]
    for t in (599, 3, 300, 0):
        assert np.array_equal(ch2.gains(t), seq[t])
    g = seq[10]
    assert np.array_equal(g[:, 0], g[:, 1])  # coherence over 2 RBs
    assert np.all(g[0] > 0)


def test_rayleigh_mean_rate_close_to_monte_carlo() -> None:
    cfg = OfdmConfig(num_rbs=10)
    ch = OfdmChannel(cfg, _devs(), 0)
    k = 1
    mc = np.mean(
        [ch.rb_rate_bps(ch.power_w[k] / cfg.num_rbs, ch.gains(t)[k]).sum() for t in range(3000)]
    )
    assert ch.mean_rate_bps(k) == pytest.approx(mc, rel=0.02)


def test_waterfill_beats_even_split() -> None:
    ch = OfdmChannel(OfdmConfig(num_rbs=16), _devs(), 2)
    for t in range(20):
        even = ch.rb_rate_bps(ch.power_w[1] / 16, ch.gains(t)[1]).sum()
        assert ch.waterfill_rate(1, t) >= even * (1 - 1e-12)


def test_bounds_are_below_actual_arrivals() -> None:
    cfg = OfdmConfig(num_rbs=10)
    sizes = {"near": 50_000, "far": 20_000}
    done = _run(cfg, {"near": 1, "far": 1}, sizes, seed=3)
    arrival, radio = OfdmChannel(cfg, _devs(), 3).uplink_bounds([[50_000], [20_000]])
    assert arrival[0][0] <= done["near"] and arrival[1][0] <= done["far"]
    assert radio <= max(done.values())


def test_rb_capacity_never_exceeded() -> None:
    cfg = OfdmConfig(num_rbs=7, slot_s=1e-3)
    devs = [UplinkDevice(f"d{i}", 10.0 + 15 * i, 0.1) for i in range(4)]
    net = OfdmUplink(cfg, devs, 8)
    for i in range(4):
        net.submit(ChunkTx(f"d{i}", 0, 5_000 * (i + 1)), 0.0)
    net.set_shares({"d0": 1, "d1": 2, "d2": 3, "d3": 4}, 0.0)
    while net.has_backlog():
        net.advance(math.inf)
    usage = net.radio_usage()
    for u in usage:
        t = (u.start_s + u.end_s) / 2
        assert sum(v.units for v in usage if v.start_s <= t < v.end_s) <= cfg.num_rbs


def test_an_upload_past_max_slots_is_a_config_error_naming_the_key() -> None:
    from owin_cosim.errors import ConfigError

    cfg = OfdmConfig(num_rbs=10, max_slots=5)  # 2.5 ms: far too short for 5 MB
    with pytest.raises(ConfigError, match=r"network\.ofdm\.max_slots: the uplink reached"):
        _run(cfg, {"near": 1, "far": 1}, {"near": 5_000_000})
    with pytest.raises(ConfigError, match=r"network\.ofdm\.max_slots: even the best-case"):
        OfdmChannel(cfg, _devs(), 3).uplink_bounds([[5_000_000], [1]])


def test_max_slots_too_small_for_a_scenario_is_exit_2_naming_file_and_key(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from owin_cosim.cli import app
    from tests.conftest import scenario_dict, write_scenario

    data = scenario_dict()
    data["network"]["ofdm"]["max_slots"] = 3
    path = write_scenario(tmp_path / "s.yaml", data)
    res = CliRunner().invoke(app, ["validate", str(path)])
    assert res.exit_code == 2, res.output
    assert f"{path}: network.ofdm.max_slots" in " ".join(res.output.split())
    assert "Traceback" not in res.output
