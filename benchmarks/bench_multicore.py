"""Multi-core benchmark: does adding cores pay off under the contention + split model?

Run: ``.venv/bin/python benchmarks/bench_multicore.py`` (about a minute). It rewrites the
``multicore`` section of ``benchmarks/RESULTS.md``.

Compute only, all data present at t = 0 (an uplink that delivers every chunk at once),
so the numbers are the accelerator's alone:

1. ResNet-18 (+ the zoo's concat fusion and classifier head, one chunk) on 1, 2, 4, 8
   and 16 copies of ``mc4``'s 16x16 core sharing one 25.6 GB/s DRAM: PACS makespan,
   speed-up over the 1-core chip, and the lower bound (with and without splits);
2. the ``mc4``/``mc8``/``mc16`` family (equal total compute: 1024 PEs and 1 MiB of
   buffer in more, smaller cores) against a 1-core chip of the same total compute;
3. the same family with the quickstart's four modalities.

Every figure is a simulated time (deterministic: one run each); the wall time of the
whole benchmark is printed for reference only. ``--before CHECKOUT`` also runs (1) with
the code of another checkout (e.g. ``git worktree add /tmp/old 34a3b97``, the last
commit before the multi-core model: static DRAM partition, one core per layer), in a
subprocess, for a before/after table measured in the same run.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from results_file import write_section

from owin_cosim.network.base import AdvanceResult, ChunkTx, Delivery, NetworkBackend, RadioUse
from owin_cosim.policies import make_policy
from owin_cosim.scenario.assemble import assemble
from owin_cosim.scenario.schema import Scenario
from owin_cosim.sim.coordinator import execute
from owin_cosim.system.problem import Problem

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SPECS = REPO / "accel_specs"
BEGIN, END = "<!-- multicore:begin -->", "<!-- multicore:end -->"
MESHES = {1: (1, 1), 2: (2, 1), 4: (2, 2), 8: (4, 2), 16: (4, 4)}


class InstantUplink(NetworkBackend):
    """Every chunk is in at t = 0: isolates the accelerator."""

    name = "instant"
    grant_invariant = True

    def __init__(self) -> None:
        self._pending: list[ChunkTx] = []

    @property
    def now_s(self) -> float:
        return 0.0

    def submit(self, chunk: ChunkTx, at_s: float) -> None:
        self._pending.append(chunk)

    def set_shares(self, shares: Mapping[str, float], at_s: float) -> None:
        return None

    def advance(self, until_s: float) -> AdvanceResult:
        out = tuple(Delivery(c.device, c.chunk, c.nbytes, 0.0, 0.0, 0.0) for c in self._pending)
        self._pending = []
        return AdvanceResult(0.0, out)

    def has_backlog(self) -> bool:
        return bool(self._pending)

    def radio_usage(self) -> list[RadioUse]:
        return []


def spec_with_cores(base: Path, cores: int, out: Path) -> Path:
    """``base`` with ``cores`` copies of its core on a near-square mesh."""
    doc = yaml.safe_load(base.read_text())
    doc["chip"]["cores"] = cores
    doc["chip"]["noc"]["mesh_x"], doc["chip"]["noc"]["mesh_y"] = MESHES[cores]
    doc["chip"]["name"] = f"{doc['chip']['name']}x{cores}"
    path = out / f"{doc['chip']['name']}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def one_big_core(out: Path) -> Path:
    """One core with all of mc4's compute and buffer: 32x32 PEs, 1 MiB global buffer."""
    doc = yaml.safe_load((SPECS / "mc4.yaml").read_text())
    doc["chip"].update(name="big1", cores=1)
    doc["chip"]["noc"].update(mesh_x=1, mesh_y=1)
    core = doc["architecture"]["subtree"][0]["subtree"][0]
    core["local"][0]["attributes"]["memory_depth"] *= 4
    pe = core["subtree"][0]
    pe["name"] = "PE[0..1023]"
    for comp in pe["local"]:
        comp["attributes"]["meshX"] = 32
    path = out / "big1.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def scenario(devices: Sequence[dict[str, Any]], spec: Path, max_split: int | None) -> Problem:
    data: dict[str, Any] = {
        "name": "multicore",
        "seed": 1,
        "devices": [dict(d, chunks=1) for d in devices],
        "accelerator": {"spec": str(spec), "cache": False, "max_split_cores": max_split},
    }
    problem = assemble(Scenario.model_validate(data), REPO / "bench.yaml")
    zero = [[0.0] * len(a) for a in problem.earliest_arrival_s]
    return replace(problem, earliest_arrival_s=zero, radio_bound_s=0.0)


def run(problem: Problem) -> tuple[float, float]:
    plan = make_policy("pacs").plan(problem)
    result = execute(problem, plan, InstantUplink())
    return result.makespan_s, result.lower_bound.value


CAMERA = [{"name": "camera", "modality": "image", "distance_m": 10}]


def quickstart_devices() -> list[dict[str, Any]]:
    doc = yaml.safe_load((REPO / "examples" / "quickstart.yaml").read_text())
    return [copy.deepcopy(d) for d in doc["devices"]]


def stream_side_by_side(spans: Mapping[int, float]) -> list[str]:
    """owin-cosim's ResNet-18 next to Stream's on the same hardware, as measured by
    ``benchmarks/stream/run_stream.py`` (its section of RESULTS.md), if it was run."""
    text = (HERE / "RESULTS.md").read_text() if (HERE / "RESULTS.md").exists() else ""
    if "<!-- stream:begin -->" not in text:
        return []
    section = text.split("<!-- stream:begin -->", 1)[1].split("<!-- stream:end -->", 1)[0]
    found = {}
    for row in section.splitlines():
        m = re.match(r"\| (\d+) x 16x16 cores? .*?\| [\d,]+ \| ([\d.]+) \|", row)
        if m:
            found[int(m.group(1))] = float(m.group(2))
    if not found:
        return []
    lines = [
        "",
        "ResNet-18 on mc4's hardware, owin-cosim next to Stream (stream-dse 2.1.1, measured "
        "by `benchmarks/stream/run_stream.py`, section `stream`; Stream fuses layers and "
        "keeps data on chip inside a fused group, owin-cosim sends every layer's data "
        "through DRAM):",
        "",
        "| cores | owin-cosim PACS (ms) | Stream (ms) | owin-cosim / Stream |",
        "|---|---|---|---|",
    ]
    for n, ms in sorted(found.items()):
        ours = spans[n] * 1e3
        lines.append(f"| {n} | {ours:.3f} | {ms:.3f} | {ours / ms:.2f} |")
    return lines


_BEFORE = """
import sys, tempfile
from dataclasses import replace
from pathlib import Path
from owin_cosim.policies import make_policy
from owin_cosim.scenario.assemble import assemble
from owin_cosim.scenario.schema import Scenario
from owin_cosim.sim.coordinator import execute
from bench_multicore import InstantUplink, spec_with_cores
specs = Path(sys.argv[1]) / "accel_specs"
with tempfile.TemporaryDirectory() as tmp:
    for n in (1, 2, 4, 8, 16):
        p = spec_with_cores(specs / "mc4.yaml", n, Path(tmp))
        dev = {"name": "camera", "modality": "image", "distance_m": 10, "chunks": 1}
        data = {"name": "m", "seed": 1, "devices": [dev],
                "accelerator": {"spec": str(p), "cache": False}}
        prob = assemble(Scenario.model_validate(data), Path(sys.argv[1]) / "bench.yaml")
        prob = replace(prob, earliest_arrival_s=[[0.0]], radio_bound_s=0.0)
        r = execute(prob, make_policy("pacs").plan(prob), InstantUplink())
        print(n, repr(r.makespan_s), repr(r.lower_bound.value))
"""


def before(checkout: Path) -> dict[int, tuple[float, float]]:
    """ResNet-18 alone on 1-16 cores with the code of ``checkout`` (a subprocess)."""
    env = {**os.environ, "PYTHONPATH": f"{checkout}{os.pathsep}{HERE}"}
    out = subprocess.run(
        [sys.executable, "-c", _BEFORE, str(checkout)],
        env=env,
        cwd=checkout,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    rows = {}
    for line in out.splitlines():
        n, span, lb = line.split()
        rows[int(n)] = (float(span), float(lb))
    return rows


def commit(checkout: Path) -> str:
    """The short commit id of ``checkout``."""
    return subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def main() -> None:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="a checkout of an earlier commit")
    args = parser.parse_args()
    old = before(args.before) if args.before else {}
    lines = ["## Multi-core chip (`benchmarks/bench_multicore.py`)", ""]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        lines += [
            "ResNet-18 alone (data at t = 0, PACS), N copies of mc4's 16x16 core sharing one "
            "25.6 GB/s DRAM by contention:",
            "",
            "| cores | makespan (ms) | speed-up vs 1 core | lower bound (ms) | "
            "no splits: makespan (ms) | no splits: bound (ms) |"
            + (" before: makespan (ms) | before: bound (ms) |" if old else ""),
            "|---|---|---|---|---|---|" + ("---|---|" if old else ""),
        ]
        one = None
        spans: dict[int, float] = {}
        for n in (1, 2, 4, 8, 16):
            spec = spec_with_cores(SPECS / "mc4.yaml", n, out)
            span, lb = run(scenario(CAMERA, spec, None))
            span1, lb1 = run(scenario(CAMERA, spec, 1))
            one = one or span
            spans[n] = span
            row = (
                f"| {n} | {span * 1e3:.3f} | {one / span:.2f}x | {lb * 1e3:.3f} | "
                f"{span1 * 1e3:.3f} | {lb1 * 1e3:.3f} |"
            )
            if n in old:
                row += f" {old[n][0] * 1e3:.3f} | {old[n][1] * 1e3:.3f} |"
            lines.append(row)
        if old:
            lines += [
                "",
                f"Before: the code of commit {commit(args.before)} (static DRAM partition, "
                "one core per layer), run in the same benchmark.",
            ]
        for title, devices in (("ResNet-18 alone", CAMERA), ("quickstart", quickstart_devices())):
            lines += [
                "",
                f"{title}, equal total compute (1024 PEs, 1 MiB of buffer, 25.6 GB/s), "
                "data at t = 0, PACS:",
                "",
                "| chip | cores x PEs | makespan (ms) | vs 1 big core | lower bound (ms) |",
                "|---|---|---|---|---|",
            ]
            big, lb = run(scenario(devices, one_big_core(out), None))
            lines.append(f"| big1 | 1 x 32x32 | {big * 1e3:.3f} | 1.00x | {lb * 1e3:.3f} |")
            for name, shape in (("mc4", "4 x 16x16"), ("mc8", "8 x 16x8"), ("mc16", "16 x 8x8")):
                span, lb = run(scenario(devices, SPECS / f"{name}.yaml", None))
                lines.append(
                    f"| {name} | {shape} | {span * 1e3:.3f} | {big / span:.2f}x | {lb * 1e3:.3f} |"
                )
    lines += stream_side_by_side(spans)
    lines += ["", f"Benchmark wall time {time.perf_counter() - started:.1f} s."]
    print(write_section(BEGIN, END, lines))


if __name__ == "__main__":
    main()
