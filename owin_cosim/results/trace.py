"""Chrome/Perfetto trace of a run: tracks per device (uplink) and a track per core.

Open ``trace.json`` in https://ui.perfetto.dev or ``chrome://tracing``. Times are in
microseconds (``ts``, ``dur``), complete events (``ph: "X"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from owin_cosim.results.records import ChunkRecord, LayerRecord, RadioRecord, RunResult

__all__ = ["chrome_trace", "lanes"]

_RADIO_PID, _CORES_PID = 1, 2


def lanes(spans: Sequence[tuple[float, float]]) -> list[int]:
    """Partition intervals into lanes whose intervals do not overlap.

    Greedy interval partitioning: in order of start (ties: the shorter, then the earlier
    in ``spans``, first), each interval takes the lowest lane free by its start. This
    uses as many lanes as the deepest overlap, and the same input always gives the same
    lanes.

    Parameters
    ----------
    spans : sequence of (start, end)
        Intervals with ``start <= end``; touching intervals (one's end is the next's
        start) share a lane.

    Returns
    -------
    list of int
        The lane of each interval, from 0.

    Examples
    --------
    >>> lanes([(0, 4), (3, 7), (4, 8), (7, 9)])
    [0, 1, 0, 1]
    """
    lane_of = [0] * len(spans)
    free_at: list[float] = []  # per lane: the end of its last interval
    for i in sorted(range(len(spans)), key=lambda i: (spans[i][0], spans[i][1], i)):
        start, end = spans[i]
        k = next((k for k, t in enumerate(free_at) if t <= start), len(free_at))
        if k == len(free_at):
            free_at.append(end)
        else:
            free_at[k] = end
        lane_of[i] = k
    return lane_of


def _chunk_no(pair: tuple[ChunkRecord, dict[str, Any]]) -> int:
    return pair[0].chunk


def _span_us(start_s: float, end_s: float) -> tuple[float, float]:
    """``ts`` and ``dur`` in microseconds for an interval in seconds.

    On whole nanoseconds, which is how Perfetto reads them back (``llround(ts * 1000)``),
    with ``dur`` a hair short if needed so that ``ts + dur`` in floating point never
    passes the end: a slice that ends where the next one starts must not overlap it.
    """
    ts_ns, end_ns = round(start_s * 1e9), round(end_s * 1e9)
    ts, end, dur = ts_ns / 1e3, end_ns / 1e3, (end_ns - ts_ns) / 1e3
    while ts + dur > end:
        dur = math.nextafter(dur, 0.0)
    return ts, dur


def chrome_trace(result: RunResult) -> dict[str, Any]:
    """The trace of ``result`` as a JSON-ready dict with ``traceEvents``.

    Parameters
    ----------
    result : RunResult
        The run to trace.

    Returns
    -------
    dict
        ``traceEvents`` (metadata, chunk and layer slices, RB counters),
        ``displayTimeUnit`` and ``metadata``. A device's chunks can overlap on the air;
        the format wants the slices of one track nested or disjoint, so overlapping
        chunks go on extra tracks of the device ("camera (image) #2", ...).

    See Also
    --------
    lanes : the track of each chunk within its device.
    """
    events = [_meta(_RADIO_PID, "uplink"), _meta(_CORES_PID, f"accelerator {result.accelerator}")]
    chunk_events = [_chunk_slice(ch) for ch in result.chunks]
    events += _device_tracks(result, chunk_events)
    events += [_meta(_CORES_PID, f"core {c}", c) for c in range(result.num_cores)]
    events += chunk_events
    for r in result.radio:
        events += _rb_counters(r)
    events += [_layer_slice(rec, c) for rec in result.layers for c in rec.cores or (rec.core,)]
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "metadata": {"scenario": result.scenario, "policy": result.policy},
    }


def _meta(pid: int, name: str, t: int | None = None) -> dict[str, Any]:
    """The name of a process (``t`` is None) or of its thread ``t``."""
    what = "process_name" if t is None else "thread_name"
    return {"ph": "M", "pid": pid, "tid": t or 0, "name": what, "args": {"name": name}}


def _chunk_slice(ch: ChunkRecord) -> dict[str, Any]:
    """A chunk on the air, from its first to its last byte (its track set later)."""
    ts, dur = _span_us(ch.first_byte_s, ch.last_byte_s)
    return {
        "ph": "X",
        "pid": _RADIO_PID,
        "cat": "chunk",
        "name": f"{ch.device}#{ch.chunk}",
        "ts": ts,
        "dur": dur,
        "args": {"bytes": ch.nbytes, "submit_s": ch.submit_s},
    }


def _device_tracks(result: RunResult, chunk_events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Put each chunk slice on a track of its device; the tracks' names.

    Sets ``tid`` of every slice of ``chunk_events`` (one per ``result.chunks``, in order):
    a device's chunks go on :func:`lanes` of their own, its tracks side by side in the
    scenario's order of devices.
    """
    names: list[dict[str, Any]] = []
    # by chunk number, so that the lanes do not depend on the order of the records
    numbered = sorted(zip(result.chunks, chunk_events, strict=True), key=_chunk_no)
    tid = 0
    for d in result.devices:  # a device's tracks side by side, in the scenario's order
        mine = [e for ch, e in numbered if ch.device == d]
        lane = lanes([(e["ts"], e["ts"] + e["dur"]) for e in mine])
        for e, k in zip(mine, lane, strict=True):
            e["tid"] = tid + k
        name = f"{d} ({result.devices[d]['modality']})"
        num_lanes = max(lane, default=0) + 1
        for k in range(num_lanes):
            names.append(_meta(_RADIO_PID, name if k == 0 else f"{name} #{k + 1}", tid + k))
        tid += num_lanes
    return names


def _rb_counters(r: RadioRecord) -> list[dict[str, Any]]:
    """A device's resource-block counter: its units from the start of a phase, 0 at its end."""
    return [
        {
            "ph": "C",
            "pid": _RADIO_PID,
            "name": f"RBs {r.device}",
            "ts": r.start_s * 1e6,
            "args": {"units": r.units},
        },
        {
            "ph": "C",
            "pid": _RADIO_PID,
            "name": f"RBs {r.device}",
            "ts": r.end_s * 1e6,
            "args": {"units": 0},
        },
    ]


def _layer_slice(rec: LayerRecord, core: int) -> dict[str, Any]:
    """A layer (chunk) on one of its cores (a split layer has a slice on each)."""
    ts, dur = _span_us(rec.start_s, rec.end_s)
    return {
        "ph": "X",
        "pid": _CORES_PID,
        "tid": core,
        "cat": rec.group,
        "name": rec.layer,
        "ts": ts,
        "dur": dur,
        "args": {
            "cycles": rec.cycles,
            "energy_pJ": rec.energy_pJ,
            "utilization": rec.utilization,
            "ready_s": rec.ready_s,
            "cores": list(rec.cores),
            "split": rec.split,
        },
    }
