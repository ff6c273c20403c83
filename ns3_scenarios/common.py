"""What every ns-3 scenario shares: devices, transports, applications, warm-up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Built",
    "CommonParams",
    "Ns3Device",
    "install_apps",
    "place_nodes",
    "run_until",
    "wait_for",
]


@dataclass(frozen=True)
class Ns3Device:
    """A device as the worker receives it from the coordinator."""

    index: int
    name: str
    distance_m: float
    tx_power_dBm: float


class CommonParams(BaseModel):
    """Parameters every scenario has (transport and run control)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    #: Transport of every device; ``transports`` overrides it per device name.
    transport: Literal["tcp", "udp"] = "tcp"
    transports: dict[str, Literal["tcp", "udp"]] = Field(default_factory=dict)
    #: TCP segment size and UDP payload per packet (bytes).
    segment_bytes: int = Field(1448, ge=64, le=8960)
    #: UDP sending rate per device (the application paces its packets).
    udp_rate_mbps: float = Field(20.0, gt=0)
    #: UDP (application-level retransmission): the device asks the server again for a
    #: chunk's report when none came this long after its last request.
    udp_report_timeout_s: float = Field(0.2, gt=0)
    #: UDP: the run fails when this many requests in a row for a chunk's report go
    #: unanswered (the device's link is down).
    udp_max_requests: int = Field(25, ge=1)
    #: Warm-up (association / attach, TCP handshakes) must end within this simulated time.
    warmup_limit_s: float = Field(10.0, gt=0)
    #: Simulated time after which an ``advance`` without any delivery is an error.
    max_sim_time_s: float = Field(600.0, gt=0)
    #: Simulated time per slice of ``advance`` (heartbeats and gating happen between).
    slice_s: float = Field(0.05, gt=0)


@dataclass
class Built:
    """A scenario built inside ns-3, ready to carry chunks."""

    senders: list[Any]
    sinks: list[Any]
    #: Set per-device radio weights inside ns-3 (None: the scenario has no such knob).
    apply_shares: Callable[[dict[int, float]], None] | None
    #: An upper bound of any device's goodput (bit/s), for lower bounds.
    peak_rate_bps: float
    describe: dict[str, Any] = field(default_factory=dict)
    #: Helpers and containers that must outlive the build (ns-3 objects owned by Python
    #: die with their last Python reference; the LTE/EPC helpers must not).
    keep: list[Any] = field(default_factory=list)


def run_until(ns: Any, owin: Any, t: float) -> None:
    """Run the simulator up to absolute time ``t`` (never past it)."""
    ev = owin.ScheduleStopAt(t)
    ns.Simulator.Run()
    owin.CancelEvent(ev)


def place_nodes(ns: Any, server: Any, nodes: Any, devices: list[Ns3Device]) -> None:
    """The server at the origin, device ``k`` at ``(distance_k, 0, 0)``, all fixed."""
    mobility = ns.MobilityHelper()
    pos = ns.ListPositionAllocator()
    pos.Add(ns.Vector(0.0, 0.0, 0.0))
    for dev in devices:
        pos.Add(ns.Vector(dev.distance_m, 0.0, 0.0))
    mobility.SetPositionAllocator(pos)
    mobility.SetMobilityModel("ns3::ConstantPositionMobilityModel")
    mobility.Install(server)
    mobility.Install(nodes)


def install_apps(
    ns: Any,
    owin: Any,
    server: Any,
    server_addr: Any,
    nodes: Any,
    devices: list[Ns3Device],
    params: CommonParams,
    base_port: int = 9000,
) -> tuple[list[Any], list[Any]]:
    """One sink per device on the server, one sender per device, both started now."""
    senders, sinks = [], []
    for dev in devices:
        tcp = params.transports.get(dev.name, params.transport) == "tcp"
        port = base_port + dev.index
        sink = owin.NewSink()
        sink.Configure(dev.index, port, tcp, params.segment_bytes)
        server.AddApplication(sink)
        sender = owin.NewSender()
        peer = ns.InetSocketAddress(server_addr, port).ConvertTo()
        sender.Configure(
            peer,
            tcp,
            params.segment_bytes,
            params.udp_rate_mbps * 1e6,
            params.udp_report_timeout_s,
            params.udp_max_requests,
            sink,
        )
        nodes.Get(dev.index).AddApplication(sender)
        senders.append(sender)
        sinks.append(sink)
    return senders, sinks


def wait_for(
    ns: Any, owin: Any, ready: Callable[[], bool], limit_s: float, what: str, step_s: float = 0.001
) -> None:
    """Advance in small steps until ``ready()``; fail clearly after ``limit_s``."""
    t = ns.Simulator.Now().GetSeconds()
    while not ready():
        if t > limit_s:
            raise RuntimeError(f"{what} did not complete within {limit_s} s of simulated time")
        t += step_s
        run_until(ns, owin, t)
