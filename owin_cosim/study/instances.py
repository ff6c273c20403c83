"""Small generated instances: seeded scenarios small enough for an exact solver.

Each instance is a whole scenario (a dict, plus the chip spec it names) that
:func:`owin_cosim.api.build_problem` accepts once written to a directory, so every tool
(``run``, ``compare``, ``solve``, ``optimize``) can use it. From one seed it draws:

- 2-4 devices ``dev0..`` (the synthetic zoo's names), 10-60 m away at 14-23 dBm, each
  sending its payload in 1 or 2 chunks;
- the synthetic model (:func:`~owin_cosim.workload.zoo.synthetic.synthetic_dag`) with
  ``devices + 3`` to 18 layers, i.e. at most 30 after chunk expansion (up to three
  streamable layers per device are sliced per chunk);
- ``accel_specs/mc4.yaml`` cut to 2-4 cores, with a DRAM of :data:`DRAM_GBPS` (so high
  that DRAM contention never binds: the exact model relaxes it);
- an OFDM uplink of 2-8 RBs and :data:`SLOT_S` slots, fading ``none`` or ``rayleigh``.

The payloads are sized from the devices' mean full-band rates so that each device's
upload alone takes 2-6 slots; the accelerator's ``latency_scale`` then sets the
regime, the ratio of the compute work per core (at peak MAC rate; the analytic model's
layers reach a third of it or so) to the sum of the uploads: ``radio`` 0.03-0.1,
``balanced`` 0.2-0.4, ``compute`` 0.8-1.5. Makespans stay within a few hundred slots,
as the exact model's radio grid spans the whole horizon. The same seed, regime
and fading give the same instance, byte for byte.

Examples
--------
>>> inst = small_instance(3, "balanced", "none")
>>> inst.name, len(inst.scenario["devices"]) in (2, 3, 4)
('small-s3-balanced-none', True)
>>> small_instance(3, "balanced", "none") == inst
True
>>> [(i.regime, i.fading) for i in small_instances(3)]
[('radio', 'none'), ('compute', 'none'), ('balanced', 'none')]
"""

from __future__ import annotations

import copy
import functools
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from owin_cosim.network.base import UplinkDevice, dbm_to_w
from owin_cosim.network.ofdm.channel import OfdmChannel
from owin_cosim.network.ofdm.config import OfdmConfig
from owin_cosim.study.spec_fields import apply_spec_fields
from owin_cosim.workload.zoo.synthetic import synthetic_dag

__all__ = [
    "DRAM_GBPS",
    "FADINGS",
    "MAX_MODEL_LAYERS",
    "REGIMES",
    "SLOT_S",
    "SmallInstance",
    "small_instance",
    "small_instances",
]

Regime = Literal["radio", "compute", "balanced"]
Fading = Literal["none", "rayleigh"]

REGIMES: tuple[Regime, ...] = ("radio", "compute", "balanced")
FADINGS: tuple[Fading, ...] = ("none", "rayleigh")
#: Slot length of the instances' uplink (short: uploads take a handful of slots).
SLOT_S = 0.25e-3
#: DRAM bandwidth of the instances' chip: 40x mc4's, so it never binds.
DRAM_GBPS = 1024.0
#: Peak MACs per second of one mc4 core (16 x 16 PEs at 1 GHz), to size compute.
_CORE_MACS_PER_S = 256e9
#: Work per core over the sum of the uploads, per regime.
_RATIO: dict[str, tuple[float, float]] = {
    "radio": (0.03, 0.1),
    "balanced": (0.2, 0.4),
    "compute": (0.8, 1.5),
}
#: Most model layers (before chunk expansion): at most 30 after it.
MAX_MODEL_LAYERS = 18
_SPEC = Path(__file__).resolve().parents[2] / "accel_specs" / "mc4.yaml"


@dataclass(frozen=True)
class SmallInstance:
    """One generated instance: a scenario and the chip spec document it names."""

    name: str
    regime: Regime
    fading: Fading
    #: The scenario as a dict; ``accelerator.spec`` is ``<name>.spec.yaml`` (relative).
    scenario: dict[str, Any]
    #: The chip spec (mc4 with fewer cores and a wide DRAM), as a YAML document.
    spec: dict[str, Any]

    def write(self, directory: str | Path) -> Path:
        """Write the scenario and its spec into ``directory``; return the scenario file."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        (out / self.scenario["accelerator"]["spec"]).write_text(
            yaml.safe_dump(self.spec, sort_keys=False)
        )
        path = out / f"{self.name}.yaml"
        path.write_text(yaml.safe_dump(self.scenario, sort_keys=False))
        return path


@functools.cache
def _base_spec() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(_SPEC.read_text())
    return doc


def _spec(cores: int, name: str) -> dict[str, Any]:
    doc = apply_spec_fields(
        copy.deepcopy(_base_spec()),
        {"cores": cores, "dram_GBps": DRAM_GBPS},
        _SPEC,
        "instance.",
    )
    doc["chip"]["name"] = name
    return doc


def small_instance(
    seed: int, regime: Regime, fading: Fading, max_layers: int = MAX_MODEL_LAYERS
) -> SmallInstance:
    """The instance of ``seed`` in ``regime`` with ``fading`` (see the module docstring).

    Parameters
    ----------
    seed : int
        Draws every size and the scenario's seed (its channel realisation).
    regime : {"radio", "compute", "balanced"}
        The ratio of the compute work per core to the sum of the uploads.
    fading : {"none", "rayleigh"}
        The uplink's small-scale fading.
    max_layers : int
        Most layers of the model before chunk expansion (at most
        :data:`MAX_MODEL_LAYERS`; fewer for instances an exact solver proves faster).

    Raises
    ------
    ValueError
        An unknown regime or fading, or ``max_layers`` out of range.
    """
    if regime not in REGIMES or fading not in FADINGS:
        raise ValueError(
            f"regime must be one of {REGIMES} and fading one of {FADINGS}, "
            f"got {regime!r}, {fading!r}"
        )
    if not 7 <= max_layers <= MAX_MODEL_LAYERS:
        raise ValueError(f"max_layers must be in 7..{MAX_MODEL_LAYERS}, got {max_layers}")
    rng = random.Random(f"owin-small-{seed}-{regime}-{fading}")
    k = rng.randint(2, 4)
    cores, rbs = rng.randint(2, 4), rng.randint(2, 8)
    layers = rng.randint(k + 3, max(k + 3, max_layers))
    devices: list[dict[str, Any]] = [
        {
            "name": f"dev{i}",
            "modality": f"m{i}",
            "distance_m": round(rng.uniform(10.0, 60.0), 1),
            "tx_power_dBm": float(rng.randint(14, 23)),
            "chunks": rng.randint(1, 2),
        }
        for i in range(k)
    ]
    ofdm = {"num_rbs": rbs, "slot_s": SLOT_S, "fading": fading}
    channel = OfdmChannel(
        OfdmConfig.model_validate(ofdm),
        [UplinkDevice(d["name"], d["distance_m"], dbm_to_w(d["tx_power_dBm"])) for d in devices],
        seed,
    )
    upload_s = 0.0
    for i, d in enumerate(devices):
        slots = rng.randint(2, 6)
        nbytes = max(64, int(channel.mean_rate_bps(i) * slots * SLOT_S / 8.0))
        d["payload"] = {"bytes": nbytes}
        upload_s += nbytes * 8.0 / channel.mean_rate_bps(i)
    macs = synthetic_dag(modalities=k, layers=layers, seed=seed).total_macs
    work_s = macs / (_CORE_MACS_PER_S * cores)
    ratio = rng.uniform(*_RATIO[regime])
    # Round to 6 significant digits: the scenario file reads back the same number.
    scale = float(f"{ratio * upload_s / work_s:.6g}")
    name = f"small-s{seed}-{regime}-{fading}"
    scenario: dict[str, Any] = {
        "name": name,
        "description": f"generated: {k} devices, {cores} cores, {rbs} RBs, {regime}-bound",
        "seed": seed,
        "devices": devices,
        "network": {"backend": "ofdm", "ofdm": ofdm},
        "model": {"zoo": "synthetic", "zoo_params": {"layers": layers, "seed": seed}},
        "accelerator": {
            "spec": f"{name}.spec.yaml",
            "cost_backend": "analytic",
            "latency_scale": min(max(scale, 1e-6), 1e6),
        },
        "policy": {"name": "pacs"},
    }
    return SmallInstance(name, regime, fading, scenario, _spec(cores, f"mc{cores}-wide"))


def small_instances(
    count: int, seed: int = 0, max_layers: int = MAX_MODEL_LAYERS
) -> list[SmallInstance]:
    """``count`` instances cycling through the regimes, then the fadings.

    Instance ``i`` has seed ``seed + i``, regime ``REGIMES[i % 3]`` and fading
    ``FADINGS[(i // 3) % 2]``: every six in a row cover each pair once.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    return [
        small_instance(
            seed + i, REGIMES[i % len(REGIMES)], FADINGS[(i // len(REGIMES)) % 2], max_layers
        )
        for i in range(count)
    ]
