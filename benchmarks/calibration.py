"""The analytic OFDM model against ns-3 ``lte-uplink`` for the same devices and allocation.

Run: ``.venv/bin/python benchmarks/calibration.py`` (about a minute). It rewrites the
table section of ``docs/calibration.md``.

Both sides: 25 RBs of 180 kHz, log-distance loss 38.5 dB at 1 m with exponent 3.0, 23 dBm
per UE, 7 dB receiver noise figure, no fading (ns-3's LTE has none unless a trace is
given). Two allocations: each device alone on the band (one after the other), and all
devices at once with equal shares. ns-3 carries TCP over the full LTE stack.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from owin_cosim.network.base import ChunkTx, NetworkBackend, UplinkDevice, dbm_to_w
from owin_cosim.network.ns3.backend import Ns3Uplink
from owin_cosim.network.ns3.config import Ns3Config
from owin_cosim.network.ofdm import OfdmConfig, OfdmUplink, PathLossConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "calibration.md"
BEGIN, END = "<!-- calibration:begin -->", "<!-- calibration:end -->"
DISTANCES = (10.0, 50.0, 150.0)
PAYLOAD = 200_000
POWER_DBM = 23.0


#: LTE's highest uplink MCS: 712 bits per RB per 1 ms TTI over 180 kHz.
LTE_CAP = 712e3 / 180e3


#: ns-3's AMC gap: -ln(5 BER) / 1.5 at BER 5e-5.
LTE_GAP_DB = 10 * math.log10(-math.log(5 * 5e-5) / 1.5)


def ofdm(efficiency: float = 1.0, cap: float | None = None, gap_db: float = 0.0) -> OfdmUplink:
    cfg = OfdmConfig(
        num_rbs=25,
        fading="none",
        noise_figure_dB=7.0,
        slot_s=0.001,
        rate_efficiency=efficiency,
        max_bits_per_s_per_hz=cap,
        snr_gap_dB=gap_db,
        pathloss=PathLossConfig(ref_loss_dB=38.5, exponent=3.0),
    )
    devs = [UplinkDevice(f"d{int(d)}", d, 10 ** ((POWER_DBM - 30) / 10)) for d in DISTANCES]
    return OfdmUplink(cfg, devs, 1)


def ns3() -> Ns3Uplink:
    cfg = Ns3Config(
        scenario="lte-uplink",
        params={
            "ul_bandwidth_rbs": 25,
            "exponent": 3.0,
            "reference_loss_db": 38.5,
            "enb_noise_figure_db": 7.0,
        },
    )
    return Ns3Uplink(
        cfg, [UplinkDevice(f"d{int(d)}", d, dbm_to_w(POWER_DBM)) for d in DISTANCES], 1
    )


def alone(make: type | object) -> dict[str, float]:
    """Each device alone on the band, one after the other: its own transfer time."""
    out = {}
    net: NetworkBackend = make()  # type: ignore[operator]
    with net:
        names = [f"d{int(d)}" for d in DISTANCES]
        net.set_shares({names[0]: 1.0}, 0.0)
        for n in names:
            net.submit(ChunkTx(n, 0, PAYLOAD), 0.0)
        i = 0
        while net.has_backlog():
            res = net.advance(math.inf)
            for d in res.deliveries:
                out[d.device] = d.last_byte_s - d.first_byte_s
                i += 1
                if i < len(names):
                    net.set_shares({names[i]: 1.0}, res.time_s)
    return out


def together(make: type | object) -> dict[str, float]:
    """All devices at once, equal shares: each device's completion time."""
    out = {}
    net: NetworkBackend = make()  # type: ignore[operator]
    with net:
        names = [f"d{int(d)}" for d in DISTANCES]
        net.set_shares({n: 1.0 for n in names}, 0.0)
        for n in names:
            net.submit(ChunkTx(n, 0, PAYLOAD), 0.0)
        while net.has_backlog():
            for d in net.advance(math.inf).deliveries:
                out[d.device] = d.last_byte_s
    return out


def main() -> None:
    t = time.perf_counter()
    rows = {"alone": (alone(ofdm), alone(ns3)), "together": (together(ofdm), together(ns3))}
    # The single efficiency factor that best matches ns-3 when alone (least squares on
    # the log of the time ratio, i.e. the geometric mean of the ratios).
    capped = alone(lambda: ofdm(1.0, LTE_CAP, LTE_GAP_DB))
    a_n = rows["alone"][1]
    ratios = [capped[k] / a_n[k] for k in capped]
    eff = min(1.0, math.exp(sum(math.log(r) for r in ratios) / len(ratios)))
    fitted = {
        "alone": alone(lambda: ofdm(eff, LTE_CAP, LTE_GAP_DB)),
        "together": together(lambda: ofdm(eff, LTE_CAP, LTE_GAP_DB)),
    }
    lines = [
        BEGIN,
        "",
        f"Measured {time.strftime('%Y-%m-%d')} by `benchmarks/calibration.py` "
        f"({time.perf_counter() - t:.0f} s). Payload {PAYLOAD // 1000} kB per device.",
        "",
        "| allocation | device (distance) | OFDM, Shannon ms | ns-3 lte-uplink ms | "
        f"ratio ns-3 / OFDM | OFDM calibrated (gap {LTE_GAP_DB:.1f} dB, cap {LTE_CAP:.2f} "
        f"bit/s/Hz, rate_efficiency {eff:.2f}) ms | ratio ns-3 / calibrated |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, (o, n) in rows.items():
        what = "transfer time, alone" if label == "alone" else "completion, equal shares"
        for d in DISTANCES:
            k = f"d{int(d)}"
            lines.append(
                f"| {what} | {k} ({d:g} m) | {o[k] * 1e3:.1f} | {n[k] * 1e3:.1f} | "
                f"{n[k] / o[k]:.2f} | {fitted[label][k] * 1e3:.1f} | "
                f"{n[k] / fitted[label][k]:.2f} |"
            )
    lines += ["", END]
    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    DOC.write_text(head + "\n".join(lines) + rest.split(END, 1)[1])
    print("\n".join(lines))


if __name__ == "__main__":
    main()
