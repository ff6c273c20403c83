"""``wifi-ax-uplink``: one 802.11ax access point at the edge server, one station per
device at its distance, TCP or UDP per modality, optional uplink OFDMA.

Topology: the AP at the origin, station ``k`` at ``(d_k, 0, 0)``; one BSS on a 5 GHz
channel of ``channel_width_mhz``; log-distance path loss (``exponent``,
``reference_loss_db`` at 1 m); each station transmits at its device's
``tx_power_dBm``. PHY: ``yans`` (fast) or ``spectrum`` (needed for UL OFDMA). Rate
control: ``ideal`` (IdealWifiManager) or a constant HE MCS. With ``ul_ofdma``, the AP
runs ns-3's round-robin multi-user scheduler with UL OFDMA and BSRP enabled.

The coordinator's transmission order acts through the worker's release gate (a chunk is
handed to its station's socket only when the plan lets the device send); this scenario
has no per-device radio weights (contention decides the airtime).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from ns3_scenarios.common import (
    Built,
    CommonParams,
    Ns3Device,
    install_apps,
    place_nodes,
    wait_for,
)

__all__ = ["Params", "build", "peak_rate_bps"]

#: HE PHY rate with MCS 11, one spatial stream, 800 ns GI (Mbit/s), by channel width.
_PEAK_MBPS = {20: 143.4, 40: 286.8, 80: 600.5, 160: 1201.0}


class Params(CommonParams):
    """Parameters of ``wifi-ax-uplink`` (``network.ns3.params``)."""

    channel_width_mhz: Literal[20, 40, 80, 160] = 80
    phy: Literal["yans", "spectrum"] = "yans"
    ul_ofdma: bool = False
    rate_control: Literal["ideal", "constant"] = "ideal"
    #: HE MCS with ``rate_control: constant``.
    constant_mcs: int = Field(7, ge=0, le=11)
    exponent: float = Field(3.0, gt=0)
    #: Loss at 1 m; 46.67 dB is free space at 5.15 GHz.
    reference_loss_db: float = 46.67

    @model_validator(mode="after")
    def _ofdma_needs_spectrum(self) -> Params:
        if self.ul_ofdma and self.phy != "spectrum":
            raise ValueError("ul_ofdma needs phy: spectrum (ns-3's Yans PHY asserts with UL OFDMA)")
        return self


def peak_rate_bps(params: Params) -> float:
    """An upper bound of the channel's goodput: the HE PHY rate at MCS 11, 1 SS."""
    return _PEAK_MBPS[params.channel_width_mhz] * 1e6


def build(ns: Any, owin: Any, params: Params, devices: list[Ns3Device], seed: int) -> Built:
    """Build the BSS, associate every station, open the connections."""
    k = len(devices)
    ap = ns.NodeContainer()
    ap.Create(1)
    stas = ns.NodeContainer()
    stas.Create(k)

    channel_settings = ns.StringValue(f"{{0, {params.channel_width_mhz}, BAND_5GHZ, 0}}")
    if params.phy == "spectrum":
        channel = ns.CreateObject[ns.MultiModelSpectrumChannel]()
        loss = ns.CreateObject[ns.LogDistancePropagationLossModel]()
        loss.SetAttribute("Exponent", ns.DoubleValue(params.exponent))
        loss.SetAttribute("ReferenceLoss", ns.DoubleValue(params.reference_loss_db))
        channel.AddPropagationLossModel(loss)
        channel.SetPropagationDelayModel(ns.CreateObject[ns.ConstantSpeedPropagationDelayModel]())
        phy: Any = ns.SpectrumWifiPhyHelper()
        phy.SetChannel(channel)
    else:
        ych = ns.YansWifiChannelHelper()
        ych.SetPropagationDelay("ns3::ConstantSpeedPropagationDelayModel")
        ych.AddPropagationLoss(
            "ns3::LogDistancePropagationLossModel",
            "Exponent",
            ns.DoubleValue(params.exponent),
            "ReferenceLoss",
            ns.DoubleValue(params.reference_loss_db),
        )
        phy = ns.YansWifiPhyHelper()
        phy.SetChannel(ych.Create())
    phy.Set("ChannelSettings", channel_settings)

    wifi = ns.WifiHelper()
    wifi.SetStandard(ns.WIFI_STANDARD_80211ax)
    if params.rate_control == "ideal":
        wifi.SetRemoteStationManager("ns3::IdealWifiManager")
    else:
        mode = ns.StringValue(f"HeMcs{params.constant_mcs}")
        wifi.SetRemoteStationManager(
            "ns3::ConstantRateWifiManager", "DataMode", mode, "ControlMode", mode
        )
    mac = ns.WifiMacHelper()
    ssid = ns.Ssid("owin-cosim")
    sta_devs = ns.NetDeviceContainer()
    for dev in devices:
        phy.Set("TxPowerStart", ns.DoubleValue(dev.tx_power_dBm))
        phy.Set("TxPowerEnd", ns.DoubleValue(dev.tx_power_dBm))
        mac.SetType("ns3::StaWifiMac", "Ssid", ns.SsidValue(ssid))
        sta_devs.Add(wifi.Install(phy, mac, stas.Get(dev.index)))
    phy.Set("TxPowerStart", ns.DoubleValue(20.0))
    phy.Set("TxPowerEnd", ns.DoubleValue(20.0))
    mac.SetType("ns3::ApWifiMac", "Ssid", ns.SsidValue(ssid))
    if params.ul_ofdma:
        mac.SetMultiUserScheduler(
            "ns3::RrMultiUserScheduler",
            "EnableUlOfdma",
            ns.BooleanValue(True),
            "EnableBsrp",
            ns.BooleanValue(True),
        )
    ap_dev = wifi.Install(phy, mac, ap)

    stream = ns.WifiHelper.AssignStreams(ap_dev, 100)
    ns.WifiHelper.AssignStreams(sta_devs, stream + 100)

    place_nodes(ns, ap, stas, devices)

    stack = ns.InternetStackHelper()
    stack.Install(ap)
    stack.Install(stas)
    addresses = ns.Ipv4AddressHelper()
    addresses.SetBase(ns.Ipv4Address("10.1.0.0"), ns.Ipv4Mask("255.255.0.0"))
    ap_if = addresses.Assign(ap_dev)
    addresses.Assign(sta_devs)

    def associated() -> bool:
        return all(bool(sta_devs.Get(i).GetMac().IsAssociated()) for i in range(k))

    wait_for(ns, owin, associated, params.warmup_limit_s, "association of every station")
    # ARP queues only 3 packets while resolving (a UDP burst loses the rest): fill the
    # caches before any traffic. Only now: a station's association is a link change,
    # which flushes its cache.
    ns.NeighborCacheHelper().PopulateNeighborCache()
    senders, sinks = install_apps(ns, owin, ap.Get(0), ap_if.GetAddress(0), stas, devices, params)
    wait_for(
        ns,
        owin,
        lambda: all(bool(s.IsReady()) for s in senders),
        params.warmup_limit_s,
        "connection set-up of every station",
    )
    return Built(
        senders,
        sinks,
        None,
        peak_rate_bps(params),
        {
            "scenario": "wifi-ax-uplink",
            "channel_width_mhz": params.channel_width_mhz,
            "phy": params.phy,
            "ul_ofdma": params.ul_ofdma,
        },
        keep=[wifi, phy, mac, ap, stas, ap_dev, sta_devs],
    )
