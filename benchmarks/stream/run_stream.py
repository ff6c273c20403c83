"""Run Stream (KU Leuven's multi-core scheduler) on ResNet-18 on owin-cosim's ``mc4`` hardware.

Stream is an external reference for owin-cosim's multi-core chip model (issue 9). It needs
Python >= 3.12, so it lives in its own environment, outside the repository and never in the
package. Create that environment once::

    /root/.pyenv/versions/3.12.1/bin/python3.12 -m venv /tmp/stream-venv
    /tmp/stream-venv/bin/pip install stream-dse==2.1.1 six

(``six``: zigzag-dse 3.9.1, which stream-dse pulls in, imports it without declaring it.)
Then, from the repository root::

    /tmp/stream-venv/bin/python benchmarks/stream/run_stream.py --cores 4 1 --write-results

What it does, per chip (``hardware/mc4_quad_core.yaml``, ``hardware/mc4_single_core.yaml``):
builds the ResNet-18 ONNX graph (``build_resnet18_onnx.py``), and calls Stream's
``stream.api.evaluate_mapping`` without a mapping, so Stream's generic mapping generator
cuts the network into fused layer groups (layer stacks), splits each layer across the cores
(``inter_core_tiling``) and tiles it inside each core (``intra_core_tiling``, layer fusion);
ZigZag costs every (layer part, core) pair and Stream's MILP allocation (OR-Tools GSCIP) solves
each group's steady-state schedule. The makespan is the sum of the groups' latencies.

When a group's allocation is infeasible (Stream's generator and its MILP disagree on what
fits the 256 KiB buffer), the run is repeated with that group cut before each of its Conv
layers (a group with one Conv: into single layers); the cuts are recorded. Outputs
(Stream's own artifacts, ``run.log``, ``summary_<n>core.json``) go under ``--out``
(default ``/tmp/stream-runs``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import onnx
import yaml
from build_resnet18_onnx import build_resnet18, conv_macs

HERE = Path(__file__).resolve().parent
HARDWARE = {
    4: HERE / "hardware" / "mc4_quad_core.yaml",
    1: HERE / "hardware" / "mc4_single_core.yaml",
}
CLOCK_HZ = 1.0e9  # mc4's chip.clock_hz
PEAK_MACS_PER_CORE = 256  # 16 x 16 PEs
MAX_ATTEMPTS = 12  # one re-cut per failing group; ResNet-18 on 1 core needed 5
BEGIN, END = "<!-- stream:begin -->", "<!-- stream:end -->"
# Stream's loop dimensions by name: a Conv's (stream/parser/onnx/conv.py), and those of the
# other operators here (Relu, Add, MaxPool, GlobalAveragePool: D0..D3 = N, C, output Y, X).
CONV_DIMS = {"D0": "B", "D1": "OX", "D2": "OY", "D3": "FX", "D4": "FY", "D5": "C", "D6": "K"}
OTHER_DIMS = {"D0": "B", "D1": "C", "D2": "OY", "D3": "OX"}

__all__ = ["group_records", "layer_records", "main", "run_chip", "solve_with_cuts"]


class _GroupTracker(logging.Handler):
    """Remembers the fused group Stream's group iteration is solving (to name a failing one)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.group: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Running inner pipeline for group "):
            self.group = int(message.split()[5])


def _solve(hardware: Path, model: Path, out: Path, cuts: list[str] | None, limit: float) -> Any:
    from stream.api import SolveOptions, evaluate_mapping

    stage_options = {} if cuts is None else {"fusion_cut_points": cuts}
    options = SolveOptions(time_limit_s=limit, stage_options=stage_options)
    return evaluate_mapping(str(hardware), str(model), str(out), options=options)


def _group_layers(out: Path, index: int) -> list[str]:
    mapping = yaml.safe_load((out / f"group_{index}" / "mapping.yaml").read_text())
    return [str(layer["name"]) for layer in mapping["layers"]]


def _group_count(out: Path) -> int:
    return sum(1 for _ in out.glob("group_*/mapping.yaml"))


def solve_with_cuts(
    hardware: Path, model: Path, out: Path, limit: float
) -> tuple[Any, list[str] | None, list[str]]:
    """Stream's estimate; on an infeasible group, cut that group into layers and solve again.

    Returns the estimate, the fusion cut points of the last attempt (None: Stream's own) and
    one line per failed attempt.
    """
    from stream.ir.infeasibility import InfeasibleAllocationError

    op_types = {n.name: n.op_type for n in onnx.load(model).graph.node}
    tracker = _GroupTracker()
    logging.getLogger("stream.stages.generation.fusion_group_iteration").addHandler(tracker)
    cuts: list[str] | None = None
    failures: list[str] = []
    for attempt in range(MAX_ATTEMPTS):
        attempt_out = out / f"attempt_{attempt}"
        tracker.group = None
        try:
            return _solve(hardware, model, attempt_out, cuts, limit), cuts, failures
        except InfeasibleAllocationError as error:
            if tracker.group is None:
                raise
            group = tracker.group
            layers = [_group_layers(attempt_out, i) for i in range(_group_count(attempt_out))]
            failures.append(f"attempt {attempt}: group {group} {layers[group]}: {error}")
            # Keep every group boundary of this attempt and cut the failing group.
            new = {names[-1] for names in layers[:-1]} | _recut(layers[group], op_types)
            order = [name for names in layers for name in names]
            cuts = [name for name in order if name in new]
    raise RuntimeError(f"no feasible allocation after {MAX_ATTEMPTS} attempts: {failures}")


def _recut(layers: list[str], op_types: dict[str, str]) -> set[str]:
    """Cut points splitting a fused group that does not fit: before each of its Conv layers
    (a Conv keeps its ReLU / add), or, for a group with one Conv, after every layer."""
    convs = [i for i, name in enumerate(layers) if op_types.get(name) == "Conv"]
    if len(convs) > 1:
        return {layers[i - 1] for i in convs[1:]}
    return set(layers[:-1])


def _tiling(entries: list[Any], op_type: str) -> str:
    """``inter_core_tiling`` as ``K/4`` (dimension / number of parts)."""
    names = CONV_DIMS if op_type == "Conv" else OTHER_DIMS
    parts = [f"{names.get(e['dim'], e['dim'])}/{e['split']}" for group in entries for e in group]
    return ",".join(parts) or "-"


def layer_records(mapping: dict[str, Any], op_types: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each layer of a group's ``mapping.yaml``: its op, cores and inter-core split."""
    return {
        str(layer["name"]): {
            "op": op_types.get(str(layer["name"]), "?"),
            "cores": [c for slot in layer["core_allocation"] for c in slot],
            "split": _tiling(layer["inter_core_tiling"], op_types.get(str(layer["name"]), "")),
        }
        for layer in mapping["layers"]
    }


def group_records(estimate: Any, out: Path, op_types: dict[str, str]) -> list[dict[str, Any]]:
    """One record per fused group: layers, cores, splits, tiles, cycles, energy, MACs, wall time."""
    ctx = estimate.context
    allocations, walls = ctx.get("group_allocations"), ctx.get("group_wall_times")
    records = []
    for index, cycles in enumerate(estimate.group_cycles):
        mapping = yaml.safe_load((out / f"group_{index}" / "mapping.yaml").read_text())
        performance = allocations[index]["performance"] or {}
        records.append(
            {
                "group": index,
                "cycles": cycles,
                "energy_pj": performance.get("energy", {}).get("total_pj"),
                "macs": performance.get("aggregate", {}).get("total_mac_ops"),
                "wall_s": walls[index],
                "layers": layer_records(mapping, op_types),
                "intra_core_tiling": [
                    f"{t['dim']}={t['tile']}"
                    for g in mapping["fused_groups"]
                    for t in g["intra_core_tiling"]
                ],
            }
        )
    return records


def run_chip(cores: int, model: Path, out: Path, limit: float) -> dict[str, Any]:
    """Run Stream for the ``cores``-core chip; the summary (also written as JSON)."""
    chip_out = out / f"{cores}core"
    start = time.perf_counter()
    estimate, cuts, failures = solve_with_cuts(HARDWARE[cores], model, chip_out, limit)
    wall = time.perf_counter() - start
    final = chip_out / f"attempt_{len(failures)}"
    op_types = {n.name: n.op_type for n in onnx.load(model).graph.node}
    groups = group_records(estimate, final, op_types)
    energies = [g["energy_pj"] for g in groups]
    summary = {
        "cores": cores,
        "hardware": str(HARDWARE[cores].relative_to(HERE)),
        "cycles": estimate.cycles,
        "ms": estimate.cycles / CLOCK_HZ * 1e3,
        "energy_mJ": None if None in energies else sum(energies) * 1e-9,
        "macs_stream": sum(g["macs"] or 0 for g in groups),
        "groups": groups,
        "fusion_cut_points": cuts,
        "infeasible_attempts": failures,
        "wall_s": wall,
        "wall_s_final_attempt": sum(g["wall_s"] for g in groups),
        "artifacts": str(final),
    }
    (out / f"summary_{cores}core.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def result_lines(summaries: dict[int, dict[str, Any]], model_macs: int) -> list[str]:
    """The RESULTS.md section."""
    import stream

    lines = [
        "## Stream (issue 9): ResNet-18 on mc4's hardware, as an external reference",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} by `benchmarks/stream/run_stream.py` with "
        f"stream-dse {stream.__version__} (Python {sys.version.split()[0]}, its own venv), "
        "`stream.api.evaluate_mapping` with Stream's generic mapping generator (layer fusion "
        "groups, inter-core splits, intra-core tiling; ZigZag per-core costs; OR-Tools GSCIP "
        f"allocation). Workload: ResNet-18 ONNX, 224x224, batch 1, {model_macs:,} Conv MACs "
        "(as owin-cosim's zoo `resnet18`). Hardware and deviations: `benchmarks/stream/README.md`.",
        "",
        "| chip | makespan cycles | ms at 1 GHz | MAC utilization | energy mJ | fused groups "
        "| wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    for cores, s in sorted(summaries.items(), reverse=True):
        energy = "-" if s["energy_mJ"] is None else f"{s['energy_mJ']:.3f}"
        utilization = model_macs / (PEAK_MACS_PER_CORE * cores * s["cycles"])
        lines.append(
            f"| {cores} x 16x16 core{'s' if cores > 1 else ''} (`{s['hardware']}`) | "
            f"{s['cycles']:,.0f} | {s['ms']:.3f} | {utilization:.1%} | {energy} | "
            f"{len(s['groups'])} | "
            f"{s['wall_s']:.0f} |"
        )
    if 1 in summaries and 4 in summaries:
        speedup = summaries[1]["cycles"] / summaries[4]["cycles"]
        lines += [
            "",
            f"Stream's 4-core speed-up over 1 core: {speedup:.2f}x (the 1-core schedule is "
            "less fused where Stream's own fused groups did not fit and were re-cut).",
        ]
    for cores, s in sorted(summaries.items(), reverse=True):
        lines += ["", f"Allocation Stream found on {cores} core(s) (split: dimension/parts):", ""]
        lines += [_group_line(g) for g in s["groups"]]
        if s["infeasible_attempts"]:
            lines.append(
                f"- {len(s['infeasible_attempts'])} infeasible attempt(s) before this one, each "
                "failing group re-cut before its convolutions (see the summary JSON)"
            )
    return lines


def _group_line(group: dict[str, Any]) -> str:
    layers = group["layers"]
    if all(info["split"] == "-" for info in layers.values()):
        cores = sorted({c for info in layers.values() for c in info["cores"]})
        text = f"{', '.join(layers)} on {cores}"
    else:
        text = ", ".join(f"{name} {info['cores']} {info['split']}" for name, info in layers.items())
    return f"- group {group['group']}: {group['cycles']:,.0f} cycles; {text}"


def main(argv: list[str] | None = None) -> None:
    """Build the model, run the chosen chips, print (and optionally record) the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, nargs="+", choices=sorted(HARDWARE), default=[4, 1])
    parser.add_argument("--out", type=Path, default=Path("/tmp/stream-runs"))
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per group solve")
    parser.add_argument("--write-results", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument(
        "--report", action="store_true", help="only re-read the summaries already under --out"
    )
    args = parser.parse_args(argv)
    if args.report:
        summaries = {
            c: json.loads((args.out / f"summary_{c}core.json").read_text()) for c in args.cores
        }
        _refresh_layers(summaries, args.out / "resnet18.onnx")
        _report(summaries, args.write_results)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    # Stream and ZigZag log every mapping step; keep it in a file, not on the terminal.
    logging.basicConfig(
        filename=args.out / "run.log", level=logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    model_path = args.out / "resnet18.onnx"
    model = build_resnet18()
    onnx.save(model, model_path)
    summaries: dict[int, dict[str, Any]] = {}
    for cores in args.cores:
        summaries[cores] = s = run_chip(cores, model_path, args.out, args.time_limit)
        print(
            f"{cores} core(s): {s['cycles']:,.0f} cycles = {s['ms']:.3f} ms, "
            f"{s['energy_mJ']} mJ, {len(s['groups'])} groups, wall {s['wall_s']:.0f} s"
        )
    _report(summaries, args.write_results)


def _refresh_layers(summaries: dict[int, dict[str, Any]], model: Path) -> None:
    """Re-read each group's layers from the run's artifacts (its ``mapping.yaml`` files)."""
    op_types = {n.name: n.op_type for n in onnx.load(model).graph.node}
    for s in summaries.values():
        for group in s["groups"]:
            path = Path(s["artifacts"]) / f"group_{group['group']}" / "mapping.yaml"
            group["layers"] = layer_records(yaml.safe_load(path.read_text()), op_types)


def _report(summaries: dict[int, dict[str, Any]], write: bool) -> None:
    lines = result_lines(summaries, conv_macs(build_resnet18()))
    print("\n".join(lines))
    if write:
        sys.path.insert(0, str(HERE.parent))
        from results_file import write_section

        write_section(BEGIN, END, lines)


if __name__ == "__main__":
    main()
