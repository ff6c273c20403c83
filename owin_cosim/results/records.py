"""What a run produces: per-chunk and per-layer records and the run summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ChunkRecord", "LayerRecord", "LowerBound", "RadioRecord", "RunResult"]


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """One chunk transmission, from submission to its last byte at the server."""

    device: str
    modality: str
    chunk: int
    nbytes: int
    submit_s: float
    first_byte_s: float
    last_byte_s: float
    #: Bytes that did not arrive and were sent again (ns-3 over UDP; see
    #: ``ns3_scenarios/README.md``); 0 where the transport recovers losses itself.
    lost_bytes: int = 0


@dataclass(frozen=True, slots=True)
class LayerRecord:
    """One layer execution on one core or, split, on a group of cores.

    ``core`` is the first core of ``cores``; ``cycles`` are the longest part's alone,
    ``energy_pJ`` the parts' sum; ``dram_bytes`` what the parts moved to and from DRAM.
    """

    layer: str
    group: str
    core: int
    ready_s: float
    start_s: float
    end_s: float
    cycles: int
    energy_pJ: float
    noc_energy_pJ: float
    utilization: float
    macs: int
    cores: tuple[int, ...] = ()
    core_type: str = ""
    #: ``-`` (one core) or the dimension it was split along (``M``, ``C``, ``P``).
    split: str = "-"
    dram_bytes: float = 0.0


@dataclass(frozen=True, slots=True)
class RadioRecord:
    """A device holding ``units`` radio resources over an interval."""

    device: str
    start_s: float
    end_s: float
    units: int


@dataclass(frozen=True, slots=True)
class LowerBound:
    """Lower bounds on the makespan; ``value`` is the largest of them.

    ``radio_s``: every bit up at an upper bound of the sum rate; ``critical_path_s``: the
    DAG's longest path after the earliest possible arrival of each chunk (in any chunk
    order); ``work_s``: the earliest arrival plus the total work spread evenly over the
    cores; ``dram_s``: the earliest arrival plus every layer's DRAM bytes through the
    chip's whole bandwidth; ``sum_rate_s``: every bit up at the OFDM uplink's per-slot
    sum rate with even power split (other backends: ``radio_s``, or a device's own last
    arrival if later); ``release_work_s``: the work that cannot start before a time,
    after it; ``radio_tail_s``: a set of devices' bits up, then the least that must still
    run after the last of them; ``tradeoff_s``: the critical path and the work for one
    choice of options, weighted (see :mod:`owin_cosim.system.lower_bound`).
    """

    radio_s: float
    critical_path_s: float
    work_s: float
    dram_s: float = 0.0
    sum_rate_s: float = 0.0
    release_work_s: float = 0.0
    radio_tail_s: float = 0.0
    tradeoff_s: float = 0.0

    @property
    def value(self) -> float:
        return max(
            self.radio_s,
            self.critical_path_s,
            self.work_s,
            self.dram_s,
            self.sum_rate_s,
            self.release_work_s,
            self.radio_tail_s,
            self.tradeoff_s,
        )


@dataclass
class RunResult:
    """Everything one policy run produced."""

    scenario: str
    policy: str
    seed: int
    network_backend: str
    cost_backend: str
    accelerator: str
    num_cores: int
    makespan_s: float
    lower_bound: LowerBound
    devices: dict[str, dict[str, Any]]
    chunks: list[ChunkRecord] = field(default_factory=list)
    layers: list[LayerRecord] = field(default_factory=list)
    radio: list[RadioRecord] = field(default_factory=list)
    plan: dict[str, Any] = field(default_factory=dict)
    #: Wall time of the event loop (network included, start-up and teardown excluded);
    #: not part of the summary, which must not depend on the machine.
    run_wall_s: float = 0.0
    #: The content of ``plan.json``: the plan as decided and where every layer ran
    #: (see :mod:`owin_cosim.system.plan_file`); not part of the summary.
    plan_file: dict[str, Any] = field(default_factory=dict)
    #: ``(time, share)``: the fraction of the DRAM bandwidth in use from that time on.
    dram_share: list[tuple[float, float]] = field(default_factory=list)
    #: Keys added to the summary by the runtime stage (re-planning: the planned
    #: makespan and every re-plan; :mod:`owin_cosim.runtime`); empty for plain runs.
    runtime: dict[str, Any] = field(default_factory=dict)

    def upload_finish_s(self) -> dict[str, float]:
        """Per device: when its last chunk arrived."""
        out: dict[str, float] = {}
        for c in self.chunks:
            out[c.device] = max(out.get(c.device, 0.0), c.last_byte_s)
        return out

    def lost_bytes_by_device(self) -> dict[str, int]:
        """Per device: bytes of its chunks that did not arrive and were sent again."""
        out = dict.fromkeys(self.devices, 0)
        for c in self.chunks:
            out[c.device] += c.lost_bytes
        return out

    def core_utilization(self) -> list[float]:
        """Per core: busy time over the makespan."""
        busy = [0.0] * self.num_cores
        for rec in self.layers:
            for core in rec.cores or (rec.core,):
                busy[core] += rec.end_s - rec.start_s
        span = self.makespan_s
        return [b / span if span > 0 else 0.0 for b in busy]

    def energy_J(self) -> dict[str, float]:
        """Energy split: radio (transmit power x airtime), accelerator compute, NoC."""
        radio = sum(
            self.devices[r.device]["tx_power_W"] * (r.end_s - r.start_s) for r in self.radio
        )
        accel = sum(rec.energy_pJ for rec in self.layers) * 1e-12
        noc = sum(rec.noc_energy_pJ for rec in self.layers) * 1e-12
        return {"radio": radio, "accelerator": accel, "noc": noc, "total": radio + accel + noc}

    def summary(self) -> dict[str, Any]:
        """The content of ``summary.json``."""
        finish = self.upload_finish_s()
        by_modality: dict[str, float] = {}
        for dev, t in finish.items():
            mod = self.devices[dev]["modality"]
            by_modality[mod] = max(by_modality.get(mod, 0.0), t)
        lb = self.lower_bound
        return {
            "scenario": self.scenario,
            "policy": self.policy,
            "seed": self.seed,
            "network_backend": self.network_backend,
            "cost_backend": self.cost_backend,
            "accelerator": self.accelerator,
            "num_cores": self.num_cores,
            "makespan_s": self.makespan_s,
            "lower_bound_s": lb.value,
            "lower_bound_parts_s": asdict(lb),
            "gap_to_lower_bound": self.makespan_s / lb.value - 1.0 if lb.value > 0 else None,
            "upload_finish_s": by_modality,
            "upload_finish_by_device_s": finish,
            "last_upload_s": max(finish.values(), default=0.0),
            "core_utilization": self.core_utilization(),
            "energy_J": self.energy_J(),
            "num_layers": len(self.layers),
            "num_chunks": len(self.chunks),
            "lost_bytes": sum(c.lost_bytes for c in self.chunks),
            "lost_bytes_by_device": self.lost_bytes_by_device(),
            "devices": self.devices,
            "plan": self.plan,
            **self.runtime,
        }
