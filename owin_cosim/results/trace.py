"""Chrome/Perfetto trace of a run: a track per device (uplink) and per core.

Open ``trace.json`` in https://ui.perfetto.dev or ``chrome://tracing``. Times are in
microseconds (``ts``, ``dur``), complete events (``ph: "X"``).
"""

from __future__ import annotations

from typing import Any

from owin_cosim.results.records import RunResult

__all__ = ["chrome_trace"]

_RADIO_PID, _CORES_PID = 1, 2


def chrome_trace(result: RunResult) -> dict[str, Any]:
    """The trace as a JSON-ready dict with ``traceEvents``."""
    events: list[dict[str, Any]] = []
    devices = list(result.devices)
    tid = {d: i for i, d in enumerate(devices)}

    def meta(pid: int, name: str, t: int | None = None) -> None:
        what = "process_name" if t is None else "thread_name"
        events.append({"ph": "M", "pid": pid, "tid": t or 0, "name": what, "args": {"name": name}})

    meta(_RADIO_PID, "uplink")
    meta(_CORES_PID, f"accelerator {result.accelerator}")
    for d in devices:
        meta(_RADIO_PID, f"{d} ({result.devices[d]['modality']})", tid[d])
    for c in range(result.num_cores):
        meta(_CORES_PID, f"core {c}", c)
    for ch in result.chunks:
        events.append(
            {
                "ph": "X",
                "pid": _RADIO_PID,
                "tid": tid[ch.device],
                "cat": "chunk",
                "name": f"{ch.device}#{ch.chunk}",
                "ts": ch.first_byte_s * 1e6,
                "dur": (ch.last_byte_s - ch.first_byte_s) * 1e6,
                "args": {"bytes": ch.nbytes, "submit_s": ch.submit_s},
            }
        )
    for r in result.radio:
        events.append(
            {
                "ph": "C",
                "pid": _RADIO_PID,
                "name": f"RBs {r.device}",
                "ts": r.start_s * 1e6,
                "args": {"units": r.units},
            }
        )
        events.append(
            {
                "ph": "C",
                "pid": _RADIO_PID,
                "name": f"RBs {r.device}",
                "ts": r.end_s * 1e6,
                "args": {"units": 0},
            }
        )
    for rec in result.layers:
        events.append(
            {
                "ph": "X",
                "pid": _CORES_PID,
                "tid": rec.core,
                "cat": rec.group,
                "name": rec.layer,
                "ts": rec.start_s * 1e6,
                "dur": (rec.end_s - rec.start_s) * 1e6,
                "args": {
                    "cycles": rec.cycles,
                    "energy_pJ": rec.energy_pJ,
                    "utilization": rec.utilization,
                    "ready_s": rec.ready_s,
                },
            }
        )
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "metadata": {"scenario": result.scenario, "policy": result.policy},
    }
