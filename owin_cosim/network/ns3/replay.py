"""A recorded traffic pattern run in ns-3 alone: the coordinator-overhead baseline."""

from __future__ import annotations

import time
from typing import Any

from owin_cosim.network.ns3.session import die_at_once_on_crash, warm_up

__all__ = ["replay"]


def replay(spec: dict[str, Any]) -> dict[str, Any]:
    """Run a recorded traffic pattern in ns-3 alone: no coordinator, no sockets.

    ``spec``: the ``configure`` fields plus ``releases`` and ``shares_log`` as returned
    by ``usage``. The baseline of the coordinator-overhead benchmark: the same packets
    through the same scenario, timed from the first release to the last delivery.
    """
    from ns3_scenarios import SCENARIOS
    from ns3_scenarios.common import Ns3Device
    from owin_cosim.network.ns3.environment import import_ns3

    module = SCENARIOS[spec["scenario"]]
    params = module.Params.model_validate(spec.get("params") or {})
    devices = [
        Ns3Device(i, d["name"], float(d["distance_m"]), float(d["tx_power_dBm"]))
        for i, d in enumerate(spec["devices"])
    ]
    ns, _, owin = import_ns3()
    die_at_once_on_crash()
    seed = int(spec.get("seed", 1))
    ns.RngSeedManager.SetSeed(seed % (2**31 - 2) + 1)
    ns.RngSeedManager.SetRun(1)
    built = module.build(ns, owin, params, devices, seed)
    warm_up(ns, owin, built)
    t0 = float(ns.Simulator.Now().GetSeconds())
    hub = owin.TheHub()
    hub.Clear()
    for r in spec["releases"]:
        built.sinks[r["device"]].Expect(r["chunk"], r["nbytes"], r["t"])
        owin.ReleaseAt(built.senders[r["device"]], t0 + r["t"], r["chunk"], r["nbytes"])
    changes = sorted(spec.get("shares_log", []), key=lambda c: c["t"])
    expected = len(spec["releases"])
    start_events = int(ns.Simulator.GetEventCount())
    wall = time.perf_counter()
    delivered = 0
    while delivered < expected:
        while changes and changes[0]["t"] <= float(ns.Simulator.Now().GetSeconds()) - t0 + 1e-12:
            if built.apply_shares is not None:
                built.apply_shares(dict(enumerate(changes.pop(0)["weights"])))
            else:
                changes.pop(0)
        if changes:
            ev = owin.ScheduleStopAt(t0 + changes[0]["t"])
            ns.Simulator.Run()
            owin.CancelEvent(ev)
        else:
            ns.Simulator.Run()
        delivered += int(hub.done.size())
        hub.Clear()
    wall = time.perf_counter() - wall
    return {
        "wall_s": wall,
        "events": int(ns.Simulator.GetEventCount()) - start_events,
        "sim_time_s": float(ns.Simulator.Now().GetSeconds()) - t0,
    }
