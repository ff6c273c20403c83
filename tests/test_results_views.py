"""The Gantt chart and the Chrome trace of a run, on records built by hand.

The run looks like an ns-3 one: nothing on the air before 12 ms, two of the camera's
chunks overlap (three at once around 3.5 ms), the text chunk arrives in one segment
(first and last byte at the same instant), and the cores run back-to-back layers whose
ends are awkward floats.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from matplotlib.patches import Rectangle

from owin_cosim.results.gantt import MIN_BAR_FRACTION, chunk_bar, gantt_figure, plot_gantt
from owin_cosim.results.records import ChunkRecord, LayerRecord, LowerBound, RunResult
from owin_cosim.results.trace import chrome_trace, lanes

T0 = 0.012  # the first byte of the run


def _layer(name: str, group: str, core: int, start: float, end: float) -> LayerRecord:
    return LayerRecord(name, group, core, start, start, end, 100, 1.0, 0.0, 0.5, 1000)


def _result() -> RunResult:
    chunks = [
        ChunkRecord("cam", "image", 0, 1000, 0.0, T0, T0 + 0.004),
        ChunkRecord("cam", "image", 1, 1000, 0.0, T0 + 0.003, T0 + 0.007),
        ChunkRecord("cam", "image", 2, 1000, 0.0, T0 + 0.0035, T0 + 0.005),
        ChunkRecord("cam", "image", 3, 1000, 0.0, T0 + 0.007, T0 + 0.009),
        ChunkRecord("txt", "text", 0, 512, 0.0, T0 + 0.001, T0 + 0.001),
        ChunkRecord("txt", "text", 1, 512, 0.0, T0 + 0.001, T0 + 0.001 + 1e-9),
    ]
    a, b = 0.1 + 0.2, 0.3 + 1e-7 / 3  # end of one layer = start of the next, inexactly
    layers = [
        _layer("txt/l0", "encoder:txt", 0, T0 + 0.001, a / 10),
        _layer("txt/l1", "encoder:txt", 0, a / 10, b / 10),
        # in microseconds, 13000.001 + 27000.0 > 40000.001 in floating point
        _layer("txt/l2", "encoder:txt", 1, 0.013000001, 0.040000001),
        _layer("cam/l0", "encoder:cam", 1, 0.040000001, 0.0405),
        _layer("fuse", "fusion", 0, 0.0405, 0.0406),
        _layer("head", "head", 0, 0.0406, 0.0408),
    ]
    devices = {
        "cam": {"modality": "image", "tx_power_W": 0.2},
        "txt": {"modality": "text", "tx_power_W": 0.05},
    }
    return RunResult(
        scenario="hand",
        policy="pacs",
        seed=0,
        network_backend="ns3",
        cost_backend="analytic",
        accelerator="mc2",
        num_cores=2,
        makespan_s=0.0408,
        lower_bound=LowerBound(0.025, 0.03, 0.028),
        devices=devices,
        chunks=chunks,
        layers=layers,
    )


# --- Gantt chart ---------------------------------------------------------------------


def test_gantt_time_axis_starts_at_zero() -> None:
    ax = gantt_figure(_result()).axes[0]
    left, right = ax.get_xlim()
    assert left == 0.0
    assert right >= 0.0408  # the makespan line is inside the plot


def test_gantt_draws_every_chunk_visibly() -> None:
    result = _result()
    fig = gantt_figure(result)
    fig.canvas.draw()
    ax = fig.axes[0]
    bars = {p.get_gid(): p for p in ax.patches if isinstance(p, Rectangle) and p.get_gid()}
    for ch in result.chunks:
        bar = bars[f"chunk:{ch.device}#{ch.chunk}"]
        assert bar.get_width() > 0, ch
        assert bar.get_x() <= ch.first_byte_s <= ch.last_byte_s <= bar.get_x() + bar.get_width()
        assert bar.get_window_extent().width >= 2, ch  # pixels: visible, not a hairline


def test_chunk_bar_widens_short_chunks_around_their_instant() -> None:
    zero = ChunkRecord("txt", "text", 0, 512, 0.0, 0.005, 0.005)
    left, width = chunk_bar(zero, 0.002)
    assert width == 0.002 and left == pytest.approx(0.004)
    assert chunk_bar(ChunkRecord("t", "t", 0, 1, 0.0, 0.0, 0.0), 0.002) == (0.0, 0.002)
    long = ChunkRecord("cam", "image", 0, 1000, 0.0, 0.001, 0.004)
    assert chunk_bar(long, 0.002) == (0.001, 0.003)
    assert MIN_BAR_FRACTION > 0


def test_gantt_legend_is_outside_the_data_area() -> None:
    fig = gantt_figure(_result())
    fig.canvas.draw()
    legends = fig.legends + [lg for a in fig.axes if (lg := a.get_legend()) is not None]
    assert len(legends) == 1
    labels = [t.get_text() for t in legends[0].get_texts()]
    assert labels[:2] == ["cam", "txt"] and "makespan" in labels
    legend_box = legends[0].get_window_extent()
    data_box = fig.axes[0].get_window_extent()
    assert not legend_box.overlaps(data_box), (legend_box, data_box)
    assert fig.bbox.contains(legend_box.x0, legend_box.y0)  # and still on the picture
    assert fig.bbox.contains(legend_box.x1, legend_box.y1)


def test_plot_gantt_writes_a_png(tmp_path: Path) -> None:
    path = tmp_path / "gantt.png"
    plot_gantt(_result(), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- Chrome trace --------------------------------------------------------------------


def _slices(trace: dict[str, Any]) -> dict[tuple[int, int], list[dict[str, Any]]]:
    by_track: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for e in trace["traceEvents"]:
        if e["ph"] == "X":
            by_track[e["pid"], e["tid"]].append(e)
    return by_track


def _nested_or_disjoint(spans: Sequence[tuple[float, float]]) -> bool:
    for i, (s1, e1) in enumerate(spans):
        for s2, e2 in spans[i + 1 :]:
            disjoint = e1 <= s2 or e2 <= s1
            nested = (s1 <= s2 and e2 <= e1) or (s2 <= s1 and e1 <= e2)
            if not (disjoint or nested):
                return False
    return True


def _ns(us: float) -> int:
    """Microseconds to nanoseconds as Perfetto's JSON importer does (``llround``)."""
    return math.floor(us * 1000 + 0.5)


def test_trace_tracks_hold_nested_or_disjoint_slices() -> None:
    tracks = _slices(chrome_trace(_result()))
    assert len(tracks) >= 4
    for key, events in tracks.items():
        as_floats = [(e["ts"], e["ts"] + e["dur"]) for e in events]
        as_ns = [(_ns(e["ts"]), _ns(e["ts"]) + _ns(e["dur"])) for e in events]
        assert _nested_or_disjoint(as_floats), (key, as_floats)
        assert _nested_or_disjoint(as_ns), (key, as_ns)


def test_trace_gives_overlapping_chunks_their_own_named_tracks() -> None:
    trace = chrome_trace(_result())
    tid = {e["name"]: e["tid"] for e in trace["traceEvents"] if e.get("cat") == "chunk"}
    # three cam chunks overlap around 3.5 ms after T0: three tracks; #3 reuses the first
    assert len({tid["cam#0"], tid["cam#1"], tid["cam#2"]}) == 3
    assert tid["cam#3"] == tid["cam#0"]
    assert tid["txt#0"] == tid["txt#1"]  # a zero-length slice then its neighbour: disjoint
    names = {
        (e["pid"], e["tid"]): e["args"]["name"]
        for e in trace["traceEvents"]
        if e["ph"] == "M" and e["name"] == "thread_name"
    }
    radio = sorted((t, n) for (p, t), n in names.items() if p == 1)
    assert radio == [
        (0, "cam (image)"),
        (1, "cam (image) #2"),
        (2, "cam (image) #3"),
        (3, "txt (text)"),
    ]
    assert set(_slices(trace)) <= set(names)  # every track with slices has a name


def test_trace_lanes_do_not_depend_on_record_order() -> None:
    result = _result()
    forward = chrome_trace(result)
    result.chunks.reverse()
    backward = chrome_trace(result)

    def tid_of(trace: dict[str, Any]) -> dict[str, int]:
        return {e["name"]: e["tid"] for e in trace["traceEvents"] if e.get("cat") == "chunk"}

    assert tid_of(forward) == tid_of(backward)


def test_lanes_greedy_by_start() -> None:
    assert lanes([]) == []
    assert lanes([(0, 1), (1, 2), (2, 2), (2, 3)]) == [0, 0, 0, 0]  # touching spans share
    assert lanes([(5, 9), (0, 4), (3, 7), (4, 8)]) == [2, 0, 1, 0]  # in order of start
    spans = [(0.0, 4.0), (3.0, 7.0), (3.5, 5.0), (7.0, 9.0), (5.0, 6.0)]
    assert lanes(spans) == [0, 1, 2, 0, 0]
    # as many lanes as the deepest overlap
    assert max(lanes(spans)) + 1 == 3
