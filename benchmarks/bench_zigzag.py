"""ZigZag against the loop-nest and analytic models on ResNet-18's distinct convolutions.

For every distinct convolution shape of ResNet-18 (224 x 224, torchvision shapes) on one
core of ``accel_specs/mc4.yaml``: cycles and energy of the ``analytic`` model, of the
``loopnest`` model (its default 300-evaluation search) and of the ``zigzag`` backend
(ZigZag 3.9.1's LOMA search, the loop-nest model's best spatial template), ZigZag's
latency with and without the on/off-loading of data, each model's wall time, and the
Timeloop reference (``tests/data/timeloop_reference/summary.csv``) where one of the same
shape exists. "Ideal" cycles are a mapping's cycles with no stall: the layer's MACs over
the PEs its spatial unrolling uses (loop-nest: the chosen mapping's spatial factors;
ZigZag: ``ideal_temporal_cycle``).

Run: ``.venv/bin/python benchmarks/bench_zigzag.py`` (minutes: one ZigZag child process
per layer). Writes its section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import csv
import math
import os
import platform
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from results_file import write_section

from owin_cosim.accel.analytic import AnalyticCostModel
from owin_cosim.accel.loopnest.backend import LoopNestCostModel
from owin_cosim.accel.spec import ChipSpec, load_chip_spec
from owin_cosim.accel.zigzag.backend import ZigZagCostModel
from owin_cosim.accel.zigzag.translate import ZIGZAG_DIMS, spatial_unrolling
from owin_cosim.workload.graph import Layer, ModelGraph, OpKind
from owin_cosim.workload.zoo.vision import resnet18

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "accel_specs" / "mc4.yaml"
REFERENCE = ROOT / "tests" / "data" / "timeloop_reference" / "summary.csv"
_SHAPE = ("R", "S", "P", "Q", "C", "M", "N", "Wstride", "Hstride")
_TIMELOOP = {z: t for t, z in ZIGZAG_DIMS.items()}


def distinct_convs() -> list[Layer]:
    """ResNet-18's convolutions, one per distinct shape, in network order."""
    graph = ModelGraph("r18")
    resnet18(graph, "camera")
    seen: dict[Layer, Layer] = {}
    for layer in graph.layers():
        if layer.op is OpKind.CONV:
            seen.setdefault(replace(layer, name="", group="", streamable=False), layer)
    return list(seen.values())


def timeloop_reference(layer: Layer) -> list[dict[str, str]]:
    """Rows of the Timeloop reference with the same layer shape (any architecture)."""
    with open(REFERENCE, newline="") as f:
        rows = list(csv.DictReader(f))
    want = {k: str(getattr(layer, k)) for k in _SHAPE}
    return [r for r in rows if all(r[k] == v for k, v in want.items())]


def loopnest_spatial(model: LoopNestCostModel, layer: Layer) -> dict[str, int]:
    """The spatial factors (> 1) of the loop-nest model's chosen mapping."""
    out: dict[str, int] = {}
    for d in model.mapping(layer):
        if d.type == "spatial":
            for dim, k in d.factors.items():
                if k > 1:
                    out[dim] = out.get(dim, 1) * k
    return out


def measure(chip: ChipSpec, layer: Layer) -> dict[str, Any]:
    """Every model's numbers for one layer."""
    t = time.perf_counter()
    analytic = AnalyticCostModel(chip).layer_cost(layer)
    t_analytic = time.perf_counter() - t
    nest = LoopNestCostModel(chip)
    t = time.perf_counter()
    loop = nest.layer_cost(layer)
    t_loop = time.perf_counter() - t
    spatial = loopnest_spatial(nest, layer)
    zz_model = ZigZagCostModel(chip)
    t = time.perf_counter()
    zz = zz_model.layer_cost(layer)
    t_zz = time.perf_counter() - t
    s = zz_model.summary(layer)
    return {
        "layer": layer,
        "analytic": analytic,
        "loopnest": loop,
        "loopnest_spatial": spatial,
        "loopnest_ideal": math.ceil(layer.macs / math.prod(spatial.values() or [1])),
        "template": {_TIMELOOP[d]: k for d, k in spatial_unrolling(chip, layer).values() if k > 1},
        "zigzag": zz,
        "zz": s,
        "t_analytic": t_analytic,
        "t_loop": t_loop,
        "t_zz": t_zz,
        "reference": timeloop_reference(layer),
    }


def _spatial_str(factors: dict[str, int]) -> str:
    return " ".join(f"{d}{k}" for d, k in sorted(factors.items())) or "-"


def table(rows: list[dict[str, Any]]) -> list[str]:
    """The Markdown table of the per-layer numbers."""
    out = [
        "| layer | analytic cycles | loopnest cycles (ideal; spatial) | ZigZag cycles "
        "with / without on-off-loading (ideal; spatial) | ZigZag / loopnest cycles "
        "| energy µJ analytic / loopnest / ZigZag | ZigZag / loopnest energy "
        "| wall s loopnest / ZigZag (search) | Timeloop ref |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        layer, zz = r["layer"], r["zz"]
        name = layer.name.removeprefix("camera/")
        shape = f"{layer.R}x{layer.S}/{layer.Hstride} {layer.C}->{layer.M} {layer.P}x{layer.Q}"
        ref = "; ".join(f"{x['arch']}: {x['cycles']}" for x in r["reference"]) or "none"
        out.append(
            f"| {name} ({shape}) | {r['analytic'].cycles} "
            f"| {r['loopnest'].cycles} ({r['loopnest_ideal']}; "
            f"{_spatial_str(r['loopnest_spatial'])}) "
            f"| {r['zigzag'].cycles} / {math.ceil(zz['latency_no_loading'])} "
            f"({math.ceil(zz['ideal_temporal_cycles'])}; {zz['spatial_mapping']}) "
            f"| {r['zigzag'].cycles / r['loopnest'].cycles:.2f} "
            f"| {r['analytic'].energy_pJ / 1e6:.1f} / {r['loopnest'].energy_pJ / 1e6:.1f} / "
            f"{r['zigzag'].energy_pJ / 1e6:.1f} "
            f"| {r['zigzag'].energy_pJ / r['loopnest'].energy_pJ:.3f} "
            f"| {r['t_loop']:.1f} / {r['t_zz']:.1f} ({zz['search_s']:.1f}) | {ref} |"
        )
    return out


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """The checks of the issue's claims, as measured."""
    same = [r for r in rows if math.ceil(r["zz"]["ideal_temporal_cycles"]) == r["loopnest_ideal"]]
    unrolled = [r for r in rows if r["template"] == r["loopnest_spatial"]]
    equal = sum(
        math.ceil(r["zz"]["ideal_temporal_cycles"]) == r["loopnest_ideal"] for r in unrolled
    )
    ratios = [r["zigzag"].energy_pJ / r["loopnest"].energy_pJ for r in rows]
    within = sum(abs(x - 1) <= 0.15 for x in ratios)
    walls = [r["t_zz"] for r in rows]
    searches = [r["zz"]["search_s"] for r in rows]
    cyc = [r["zigzag"].cycles / r["loopnest"].cycles for r in rows]
    bound = Counter(r["zigzag"].bound_by for r in rows)
    return [
        f"- Ideal (stall-free) cycles of ZigZag's mapping equal the loop-nest mapping's in "
        f"{len(same)} of {len(rows)} layers (equal spatial parallelism); in {equal} of the "
        f"{len(unrolled)} layers where the loop-nest search chose exactly ZigZag's spatial "
        "unrolling (the template). Full cycles "
        f"ZigZag / loopnest {min(cyc):.2f}-{max(cyc):.2f}; ZigZag's bound_by: "
        + ", ".join(f"{k} {v}" for k, v in sorted(bound.items()))
        + ".",
        f"- Energy ZigZag / loopnest {min(ratios):.3f}-{max(ratios):.3f}; within 15 % in "
        f"{within} of {len(rows)} layers.",
        f"- ZigZag wall time per layer {min(walls):.1f}-{max(walls):.1f} s (child process "
        f"included; the search alone {min(searches):.1f}-{max(searches):.1f} s), "
        f"total {sum(walls):.0f} s; loop-nest total {sum(r['t_loop'] for r in rows):.0f} s.",
        "- Timeloop reference: the stored timeloop-model outputs are AlexNet layers on the "
        "Timeloop exercise architectures; none has a ResNet-18 shape, so that column says "
        "none (benchmarks/fidelity.py compares the loop-nest model with them).",
    ]


def main() -> None:
    chip = load_chip_spec(SPEC)
    rows = []
    for layer in distinct_convs():
        rows.append(measure(chip, layer))
        r = rows[-1]
        print(
            f"{layer.name}: analytic {r['analytic'].cycles} loopnest {r['loopnest'].cycles} "
            f"zigzag {r['zigzag'].cycles} ({r['t_zz']:.1f} s)",
            flush=True,
        )
    lines = [
        "## ZigZag vs the loop-nest and analytic models (ResNet-18 convolutions, one mc4 core)",
        "",
        "`benchmarks/bench_zigzag.py`: every distinct convolution shape of ResNet-18 "
        "(224 x 224) on one 16 x 16 core of `accel_specs/mc4.yaml`; loopnest with its "
        "default 300-evaluation search, ZigZag 3.9.1 (LOMA, lpf_limit 6, spatial template "
        "= the loop-nest model's best template; weights and partial sums in the PE "
        "scratchpad). Cycles at "
        f"1 GHz. Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; wall times on a shared, loaded machine.",
        "",
        *table(rows),
        "",
        *summary(rows),
    ]
    print(write_section("<!-- zigzag:begin -->", "<!-- zigzag:end -->", lines))


if __name__ == "__main__":
    main()
