"""Golden outputs of small canonical scenarios, checkable by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from owin_cosim.network.ofdm import dbm_to_w
from owin_cosim.policies import make_policy
from owin_cosim.scenario.assemble import assemble
from owin_cosim.scenario.schema import Scenario
from owin_cosim.sim.coordinator import execute
from tests.conftest import DATA, SPECS

#: Cycles of the golden MLP encoder + fusion + head on one mc1 core (analytic model).
PINNED_CYCLES = 21941


def _one_device(chunks: int, spec: Path, payload: int = 30000) -> dict[str, object]:
    return {
        "name": "golden",
        "seed": 3,
        "devices": [
            {
                "name": "cam",
                "modality": "vec",
                "distance_m": 20.0,
                "tx_power_dBm": 20.0,
                "payload": {"bytes": payload},
                "chunks": chunks,
            }
        ],
        "network": {
            "ofdm": {
                "num_rbs": 6,
                "fading": "none",
                "slot_s": 0.001,
                "pathloss": {"ref_loss_dB": 40.0, "exponent": 3.0},
            }
        },
        "model": {"encoders": {"cam": {"name": "mlp", "params": {"in_features": 128, "rows": 16}}}},
        "accelerator": {"spec": str(spec)},
    }


def _hand_upload_s(payload: int) -> float:
    """6 RBs of 180 kHz, 100 mW split evenly, 40 + 30 log10(20) dB loss, -174 + 7 dBm/Hz."""
    beta = 10 ** (-(40.0 + 30.0 * math.log10(20.0)) / 10)
    noise = dbm_to_w(-174 + 7) * 180e3
    rate = 6 * 180e3 * math.log2(1 + (0.1 / 6) * beta / noise)
    return math.ceil(payload * 8 / (rate * 0.001)) * 0.001


@pytest.mark.parametrize("policy", ["rtfs", "pacs"])
def test_one_device_one_core_is_upload_plus_compute(policy: str) -> None:
    s = Scenario.model_validate(_one_device(1, DATA / "mc1.yaml"))
    problem = assemble(s, DATA / "golden.yaml")
    result = execute(problem, make_policy(policy).plan(problem))
    upload = _hand_upload_s(30000)
    assert result.chunks[0].last_byte_s == pytest.approx(upload, abs=1e-12)
    compute = float(problem.dag.duration_s.sum())
    # One core, a chain of layers: no NoC, no idle time after the data is in.
    assert result.makespan_s == pytest.approx(upload + compute, rel=1e-12)
    # ... which the lower bound reaches exactly.
    assert result.lower_bound.value == pytest.approx(result.makespan_s, rel=1e-12)
    starts = [r.start_s for r in result.layers]
    assert starts == sorted(starts) and result.layers[0].start_s == pytest.approx(upload)


def test_one_device_one_core_pinned_numbers() -> None:
    """The numbers themselves, pinned (changes to the cost model must update them)."""
    s = Scenario.model_validate(_one_device(1, DATA / "mc1.yaml"))
    problem = assemble(s, DATA / "golden.yaml")
    result = execute(problem, make_policy("rtfs").plan(problem))
    assert _hand_upload_s(30000) == pytest.approx(0.015)  # 15 slots of 1 ms
    assert result.chunks[0].last_byte_s == pytest.approx(0.015)
    assert len(result.layers) == len(problem.dag) == 6
    # cam/fc0 by hand: 16 rows x 128 -> 256 is DRAM-bound on one mc1 core: weights
    # 128*256 + inputs 16*128 + outputs 16*256 words at 25.6 GB/s / 2 B = 12.8 words/cycle.
    assert problem.dag.cycles[0] == (128 * 256 + 16 * 128 + 16 * 256) / 12.8 == 3040
    assert int(problem.dag.cycles.sum()) == PINNED_CYCLES
    assert result.makespan_s == pytest.approx(0.015 + PINNED_CYCLES / 1e9)


def test_chunks_let_pacs_start_early_on_one_core() -> None:
    """With 4 chunks and streamable layers, PACS starts computing before the upload ends;
    RTFS never does."""
    s = Scenario.model_validate(_one_device(4, DATA / "mc1.yaml", payload=60000))
    problem = assemble(s, DATA / "golden.yaml")
    pacs = execute(problem, make_policy("pacs").plan(problem))
    rtfs = execute(problem, make_policy("rtfs").plan(problem))
    last = max(c.last_byte_s for c in pacs.chunks)
    assert min(r.start_s for r in pacs.layers) < last
    assert min(r.start_s for r in rtfs.layers) >= last
    assert pacs.makespan_s <= rtfs.makespan_s


def test_two_devices_sequential_vs_shared_uplink() -> None:
    """Two identical devices, no fading: PACS's sequential upload delivers the first
    device's data as if it were alone; RTFS's min-max shares end both uploads together.
    Sharing is worth more than half each: fewer RBs at higher power per RB."""
    data = _one_device(1, SPECS / "mc4.yaml")
    dev = dict(data["devices"][0])  # type: ignore[index]
    data["devices"] = [dict(dev, name="x"), dict(dev, name="y")]
    data["model"] = {
        "encoders": {
            n: {"name": "mlp", "params": {"in_features": 128, "rows": 16}} for n in ("x", "y")
        }
    }
    data["policy"] = {"name": "pacs", "params": {"candidates": ["johnson"]}}
    s = Scenario.model_validate(data)
    problem = assemble(s, SPECS / "golden.yaml")
    pacs = execute(problem, make_policy("pacs", {"candidates": ["johnson"]}).plan(problem))
    rtfs = execute(problem, make_policy("rtfs").plan(problem))
    first_pacs = min(c.last_byte_s for c in pacs.chunks)
    ends_rtfs = sorted(c.last_byte_s for c in rtfs.chunks)
    assert first_pacs == pytest.approx(_hand_upload_s(30000))
    assert ends_rtfs[0] == pytest.approx(ends_rtfs[-1], abs=0.0011)  # min-max: end together
    assert first_pacs < ends_rtfs[-1] < 2 * first_pacs
    assert max(c.last_byte_s for c in pacs.chunks) >= ends_rtfs[-1]
