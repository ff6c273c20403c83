"""The fork server's rehearsal: every scenario run once, then ns-3 put back as it was.

A forked child that builds its scenario spends seconds in cppyy and cling on first use:
call wrappers for every C++ function Python calls, template instances (``CreateObject``,
``GetObject``), the scenarios' Python code paths. The fork server (:mod:`~owin_cosim.
network.ns3.forkserver`) pays that once: it runs a tiny run of each scenario through the
worker's own request handlers (configure, set_shares, submit, advance, usage,
shutdown), so that what cppyy generates is in every child it forks afterwards.

Then it undoes what the rehearsal changed in ns-3's global state (:func:`reset_ns3`), so
that a child starts from the state a fresh worker has right after its import:

- the simulator, its event list and clock, the node and channel lists
  (``Simulator::Destroy``);
- attribute defaults and global values (``Config::Reset``), object names
  (``Names::Clear``), the IPv4/IPv6 address generators;
- the random number generator's seed, run and automatic stream counter
  (``RngSeedManager::ResetNextStreamIndex``);
- the MAC address allocators (8, 16, 48 and 64 bit), the packet uid counter
  (``Packet::m_globalUid``) and Wi-Fi's PPDU uid counter (``PhyEntity::m_globalPpduUid``):
  both are private statics with no reset function, set back to 0 (their initial value)
  through their exported symbols;
- owin-cosim's own globals (the hub of deliveries, the LTE scheduler's weights).

What stays (by design, as in any ns-3 process that runs several simulations): the TypeId
registry, the Wi-Fi mode table, and the spectrum models that LTE and Wi-Fi cache by
their parameters (a cached model keeps the uid it got in the rehearsal; uids only key
maps of models, and every channel of our scenarios carries one model). Results of
forked children are checked byte for byte against fresh workers in
``tests/test_ns3_pool.py``, also for several different runs in a row from one pool.
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Sequence
from typing import Any

from owin_cosim.network.ns3.worker import Worker

__all__ = ["REHEARSALS", "rehearsal_request", "rehearse", "reset_ns3"]

#: Every scenario the fork server can rehearse (those of ``ns3_scenarios``).
REHEARSALS = ("lte-uplink", "wifi-ax-uplink")


def rehearsal_request(scenario: str) -> dict[str, Any]:
    """The ``configure`` request of ``scenario``'s rehearsal: one TCP, one UDP device.

    >>> rehearsal_request("lte-uplink")["params"]
    {'transports': {'r1': 'udp'}}
    """
    return {
        "op": "configure",
        "scenario": scenario,
        "params": {"transports": {"r1": "udp"}},
        "devices": [
            {"name": "r0", "distance_m": 5.0, "tx_power_dBm": 20.0},
            {"name": "r1", "distance_m": 10.0, "tx_power_dBm": 20.0},
        ],
        "seed": 1,
    }


#: Private static counters with no reset function: (C++ type, mangled symbol).
_COUNTERS = (
    (ctypes.c_uint32, "_ZN3ns36Packet11m_globalUidE"),
    (ctypes.c_uint64, "_ZN3ns39PhyEntity15m_globalPpduUidE"),
)


class _Rehearsal(Worker):
    """A worker with no coordinator: its replies are checked, not sent."""

    def __init__(self) -> None:
        super().__init__(None, "")  # type: ignore[arg-type]  # never sends
        self.replies: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        if message.get("op") != "heartbeat":
            self.replies.append(message)

    def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        self.handle(message)
        answer = self.replies.pop()
        if not answer.get("ok"):
            raise RuntimeError(
                f"the fork server's rehearsal of {message['op']!r} failed: {answer.get('error')}"
                f"\n{answer.get('traceback', '')}"
            )
        return answer


def _rehearse_one(configure: dict[str, Any]) -> None:
    worker = _Rehearsal()
    worker.ask(configure)
    names = [d["name"] for d in configure["devices"]]
    chunks = [{"device": n, "chunk": 0, "nbytes": 3000, "at_s": 0.0} for n in names]
    worker.ask({"op": "set_shares", "shares": {n: 1.0 for n in names}})
    worker.ask({"op": "submit", "chunks": chunks})
    delivered = 0
    while delivered < len(names):
        answer = worker.ask({"op": "advance", "until_s": None})
        delivered += len(answer["deliveries"])
    worker.ask({"op": "usage"})
    worker.ask({"op": "shutdown"})
    worker.session = None


def rehearse(ns: Any, owin: Any, scenarios: Sequence[str] = REHEARSALS) -> None:
    """Rehearse a tiny run of each of ``scenarios``, then :func:`reset_ns3`.

    Raises
    ------
    ValueError
        For a scenario owin-cosim does not have.
    RuntimeError
        If a rehearsal fails (the fork server then does not start).
    """
    for scenario in scenarios:
        if scenario not in REHEARSALS:
            raise ValueError(f"no rehearsal for ns-3 scenario {scenario!r}; one of {REHEARSALS}")
        _rehearse_one(rehearsal_request(scenario))
        reset_ns3(ns, owin)


def reset_ns3(ns: Any, owin: Any) -> None:
    """Put ns-3's (and owin-cosim's) global state back as it is after the import."""
    gc.collect()  # ns-3 objects held by Python proxies go before the simulator does
    ns.Simulator.Destroy()
    ns.Config.Reset()
    ns.Names.Clear()
    ns.Ipv4AddressGenerator.Reset()
    ns.Ipv6AddressGenerator.Reset()
    ns.RngSeedManager.ResetNextStreamIndex()
    ns.RngSeedManager.SetSeed(1)
    ns.RngSeedManager.SetRun(1)
    for mac in (ns.Mac8Address, ns.Mac16Address, ns.Mac48Address, ns.Mac64Address):
        mac.ResetAllocationIndex()
    process = ctypes.CDLL(None)
    for ctype, symbol in _COUNTERS:
        ctype.in_dll(process, symbol).value = 0
    hub = owin.TheHub()
    hub.Clear()
    hub.bytesReceived = 0
    hub.stopOnDelivery = True
    owin.ClearUlWeights()
