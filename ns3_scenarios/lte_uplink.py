"""``lte-uplink``: one eNB at the edge server, one UE per device, uplink resource blocks
allocated every TTI by a scheduler that follows the coordinator's weights.

Topology: the eNB at the origin, UE ``k`` at ``(d_k, 0, 0)``, EPC (PGW) and a remote
host (the edge server's compute) behind a 100 Gbit/s, zero-delay point-to-point link.
Uplink bandwidth ``ul_bandwidth_rbs`` RBs of 180 kHz (FDD); log-distance path loss
(``exponent``, ``reference_loss_db`` at 1 m); UEs transmit at their device's
``tx_power_dBm`` (uplink power control off, so the power is the device's); ideal RRC.

Scheduler ``shares`` (default): owin-cosim's ``UlShareScheduler`` (C++, compiled at run
time): ns-3's round-robin scheduler decides which UEs (those with buffered data) get a
grant in a TTI; their resource blocks are then re-partitioned in proportion to the
coordinator's weights, as contiguous blocks, with each UE's MCS from its own last PUSCH
SINR and the transport block size from the AMC. UL HARQ is off in this scheduler.
``rr`` and ``pf`` use ns-3's own schedulers (weights then only gate transmission).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ns3_scenarios.common import (
    Built,
    CommonParams,
    Ns3Device,
    install_apps,
    place_nodes,
    wait_for,
)

__all__ = ["Params", "build", "peak_rate_bps"]

_SCHEDULERS = {
    "shares": "owin::UlShareScheduler",
    "rr": "ns3::RrFfMacScheduler",
    "pf": "ns3::PfFfMacScheduler",
}


class Params(CommonParams):
    """Parameters of ``lte-uplink`` (``network.ns3.params``)."""

    ul_bandwidth_rbs: Literal[6, 15, 25, 50, 75, 100] = 25
    scheduler: Literal["shares", "rr", "pf"] = "shares"
    exponent: float = Field(3.0, gt=0)
    #: Loss at 1 m; 38.5 dB is free space near 2 GHz (and the OFDM model's default).
    reference_loss_db: float = 38.5
    #: ns-3's PHY error model for data; off means every transport block decodes.
    data_error_model: bool = False
    enb_noise_figure_db: float = Field(7.0, ge=0)
    #: RLC UM transmit buffer per bearer (ns-3's default of 10 KiB drops TCP windows).
    rlc_buffer_bytes: int = Field(4 * 1024 * 1024, ge=10 * 1024)


def peak_rate_bps(params: Params) -> float:
    """An upper bound of the cell's uplink goodput: 6 bit/s/Hz on every RB (LTE's
    highest uplink MCS carries about 4)."""
    return params.ul_bandwidth_rbs * 180e3 * 6.0


def build(ns: Any, owin: Any, params: Params, devices: list[Ns3Device], seed: int) -> Built:
    """Build the cell and the EPC, attach every UE, open the connections."""
    ns.Config.SetDefault("ns3::LteUePhy::EnableUplinkPowerControl", ns.BooleanValue(False))
    ns.Config.SetDefault(
        "ns3::LteSpectrumPhy::DataErrorModelEnabled", ns.BooleanValue(params.data_error_model)
    )
    ns.Config.SetDefault("ns3::LteEnbPhy::NoiseFigure", ns.DoubleValue(params.enb_noise_figure_db))
    ns.Config.SetDefault("ns3::LteHelper::UseIdealRrc", ns.BooleanValue(True))
    # RLC UM drops what exceeds its buffer (10 KiB by default): a TCP window does, and a
    # short flow then waits for a retransmission timeout. Size it for whole chunks.
    ns.Config.SetDefault(
        "ns3::LteRlcUm::MaxTxBufferSize", ns.UintegerValue(params.rlc_buffer_bytes)
    )
    ns.Config.SetDefault("ns3::LteEnbRrc::SrsPeriodicity", ns.UintegerValue(80))
    ns.Config.SetDefault("ns3::TcpSocket::SegmentSize", ns.UintegerValue(params.segment_bytes))

    lte = ns.CreateObject[ns.LteHelper]()
    epc = ns.CreateObject[ns.PointToPointEpcHelper]()
    lte.SetEpcHelper(epc)
    lte.SetSchedulerType(_SCHEDULERS[params.scheduler])
    lte.SetPathlossModelType(ns.TypeId.LookupByName("ns3::LogDistancePropagationLossModel"))
    lte.SetPathlossModelAttribute("Exponent", ns.DoubleValue(params.exponent))
    lte.SetPathlossModelAttribute("ReferenceLoss", ns.DoubleValue(params.reference_loss_db))
    lte.SetEnbDeviceAttribute("UlBandwidth", ns.UintegerValue(params.ul_bandwidth_rbs))
    lte.SetEnbDeviceAttribute("DlBandwidth", ns.UintegerValue(params.ul_bandwidth_rbs))

    pgw = epc.GetPgwNode()
    remote = ns.NodeContainer()
    remote.Create(1)
    stack = ns.InternetStackHelper()
    stack.Install(remote)
    p2p = ns.PointToPointHelper()
    p2p.SetDeviceAttribute("DataRate", ns.DataRateValue(ns.DataRate("100Gb/s")))
    p2p.SetDeviceAttribute("Mtu", ns.UintegerValue(1500))
    p2p.SetChannelAttribute("Delay", ns.TimeValue(ns.Seconds(0.0)))
    internet = p2p.Install(pgw, remote.Get(0))
    addresses = ns.Ipv4AddressHelper()
    addresses.SetBase(ns.Ipv4Address("1.0.0.0"), ns.Ipv4Mask("255.0.0.0"))
    inet_if = addresses.Assign(internet)
    routing = ns.Ipv4StaticRoutingHelper()
    remote_routes = routing.GetStaticRouting(remote.Get(0).GetObject[ns.Ipv4]())
    remote_routes.AddNetworkRouteTo(ns.Ipv4Address("7.0.0.0"), ns.Ipv4Mask("255.0.0.0"), 1)

    enb = ns.NodeContainer()
    enb.Create(1)
    ues = ns.NodeContainer()
    ues.Create(len(devices))
    place_nodes(ns, enb, ues, devices)

    enb_devs = lte.InstallEnbDevice(enb)
    ue_devs = lte.InstallUeDevice(ues)
    stream = lte.AssignStreams(enb_devs, 100)
    lte.AssignStreams(ue_devs, stream + 100)
    stack.Install(ues)
    epc.AssignUeIpv4Address(ue_devs)
    for i in range(len(devices)):
        ue_routes = routing.GetStaticRouting(ues.Get(i).GetObject[ns.Ipv4]())
        ue_routes.SetDefaultRoute(epc.GetUeDefaultGatewayAddress(), 1)
    for dev in devices:
        ue_devs.Get(dev.index).GetObject[ns.LteUeNetDevice]().GetPhy().SetTxPower(dev.tx_power_dBm)
    lte.Attach(ue_devs, enb_devs.Get(0))

    def rrc(i: int) -> Any:
        return ue_devs.Get(i).GetObject[ns.LteUeNetDevice]().GetRrc()

    def attached() -> bool:
        return all(
            int(rrc(i).GetRnti()) != 0 and rrc(i).GetState() == ns.LteUeRrc.CONNECTED_NORMALLY
            for i in range(len(devices))
        )

    wait_for(ns, owin, attached, params.warmup_limit_s, "attach of every UE")
    senders, sinks = install_apps(
        ns, owin, remote.Get(0), inet_if.GetAddress(1), ues, devices, params
    )
    wait_for(
        ns,
        owin,
        lambda: all(bool(s.IsReady()) for s in senders),
        params.warmup_limit_s,
        "connection set-up of every UE",
    )

    def apply_shares(weights: dict[int, float]) -> None:
        for index, w in weights.items():
            owin.SetUlWeight(int(rrc(index).GetRnti()), float(w))

    owin.ClearUlWeights()
    return Built(
        senders,
        sinks,
        apply_shares if params.scheduler == "shares" else None,
        peak_rate_bps(params),
        {
            "scenario": "lte-uplink",
            "ul_bandwidth_rbs": params.ul_bandwidth_rbs,
            "scheduler": params.scheduler,
        },
        keep=[lte, epc, p2p, routing, remote, enb, ues, enb_devs, ue_devs, internet],
    )
