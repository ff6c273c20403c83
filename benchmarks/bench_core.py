"""Core benchmarks: speed of the coordinator and policies, and policy quality.

Run: ``.venv/bin/python benchmarks/bench_core.py`` (a few minutes on 2 cores). It
rewrites the ``core`` section of ``benchmarks/RESULTS.md``. Every time is the median of
several repetitions; every speed figure is also given as a ratio against a baseline
measured in the same run on the same DAG: one networkx longest-path pass
(``nx.dag_longest_path_length``), i.e. "how many plain DAG traversals a run costs".
"""

from __future__ import annotations

import copy
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
import yaml
from results_file import write_section

from owin_cosim.policies import make_policy
from owin_cosim.results.writers import write_results
from owin_cosim.scenario.assemble import assemble
from owin_cosim.scenario.schema import Scenario, load_scenario
from owin_cosim.sim.coordinator import execute
from owin_cosim.system.problem import Problem

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BEGIN, END = "<!-- core:begin -->", "<!-- core:end -->"


def median_time(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def baseline_s(problem: Problem, reps: int = 5) -> float:
    g = problem.dag.to_networkx()
    for v, d in enumerate(problem.dag.duration_s):
        g.nodes[v]["w"] = float(d)
    for u, v in g.edges:
        g.edges[u, v]["w"] = float(problem.dag.duration_s[v])
    return median_time(lambda: nx.dag_longest_path_length(g, weight="w"), reps)


def policy_run(problem: Problem, name: str) -> Callable[[], object]:
    return lambda: execute(problem, make_policy(name).plan(problem))


def synthetic(layers: int, spec: Path, seed: int = 5) -> Problem:
    data = yaml.safe_load((HERE / "scenarios" / "synthetic200.yaml").read_text())
    data["model"]["zoo_params"]["layers"] = layers
    data["accelerator"]["spec"] = str(spec)
    data["seed"] = seed
    return assemble(Scenario.model_validate(data), HERE / "scenarios" / "synthetic.yaml")


def quickstart_wall(lines: list[str]) -> None:
    path = REPO / "examples" / "quickstart.yaml"
    tmp = REPO / "results" / "bench-quickstart"

    def inproc() -> None:
        s = load_scenario(path)
        problem = assemble(s, path)
        for pol in ("rtfs", "pacs"):
            write_results(execute(problem, make_policy(pol).plan(problem)), tmp / pol)

    inproc_s = median_time(inproc, 3)
    cli = [sys.executable, "-m", "owin_cosim.cli"]
    base_cmd = [sys.executable, "-c", "import owin_cosim.cli"]
    cli_s = median_time(
        lambda: subprocess.run(
            [*cli, "compare", str(path), "--out", str(tmp)], check=True, capture_output=True
        ),
        3,
    )
    start_s = median_time(lambda: subprocess.run(base_cmd, check=True, capture_output=True), 3)
    lines += [
        "### Quickstart comparison (`owin-cosim compare examples/quickstart.yaml`)",
        "",
        "| what | wall s (median of 3) | ratio |",
        "|---|---|---|",
        f"| in process: assemble + RTFS + PACS + write 2 result dirs (with PNGs) | "
        f"{inproc_s:.3f} | - |",
        f"| the CLI command, end to end | {cli_s:.3f} | "
        f"{cli_s / start_s:.2f}x the bare `import owin_cosim.cli` start-up ({start_s:.3f} s) |",
        "",
    ]


def speed_tables(lines: list[str]) -> None:
    spec16 = REPO / "accel_specs" / "mc16.yaml"
    spec64 = HERE / "specs" / "mc64.yaml"
    p200 = synthetic(200, spec16)
    base = baseline_s(p200)
    lines += [
        "### Synthetic 4-modality DAG, 200 layers, 16 cores (target: well under 0.1 s per run)",
        "",
        f"Layers after chunk expansion: {len(p200.dag)}. Baseline (one networkx longest-path "
        f"pass on the same DAG): {base * 1e3:.3f} ms.",
        "",
        "| policy | plan + execute, ms (median of 7) | ratio to baseline |",
        "|---|---|---|",
    ]
    for pol in ("rtfs", "pacs"):
        t = median_time(policy_run(p200, pol), 7)
        lines.append(f"| {pol} | {t * 1e3:.2f} | {t / base:.0f}x |")
    lines.append("")

    p5k = synthetic(5000, spec64)
    base5k = baseline_s(p5k)
    t_pacs = median_time(policy_run(p5k, "pacs"), 3)
    t_rtfs = median_time(policy_run(p5k, "rtfs"), 3)
    lines += [
        "### PACS on a synthetic 5,000-layer DAG, 64 cores (target: under 2 s)",
        "",
        f"Layers after chunk expansion: {len(p5k.dag)}; spec `benchmarks/specs/mc64.yaml`. "
        f"Baseline: {base5k * 1e3:.2f} ms.",
        "",
        "| policy | plan + execute, s (median of 3) | ratio to baseline |",
        "|---|---|---|",
        f"| pacs | {t_pacs:.3f} | {t_pacs / base5k:.0f}x |",
        f"| rtfs | {t_rtfs:.3f} | {t_rtfs / base5k:.0f}x |",
        "",
        "### Growth with layers and cores (plan + execute, median of 3)",
        "",
        "| layers | cores | rtfs ms | pacs ms | pacs us/layer | pacs / baseline |",
        "|---|---|---|---|---|---|",
    ]
    specs = {4: REPO / "accel_specs" / "mc4.yaml", 16: spec16, 64: spec64}
    for layers in (200, 1000, 5000):
        for cores, spec in specs.items():
            p = p5k if (layers, cores) == (5000, 64) else synthetic(layers, spec)
            b = baseline_s(p)
            tr = median_time(policy_run(p, "rtfs"), 3)
            tp = median_time(policy_run(p, "pacs"), 3)
            lines.append(
                f"| {len(p.dag)} | {cores} | {tr * 1e3:.1f} | {tp * 1e3:.1f} | "
                f"{tp / len(p.dag) * 1e6:.0f} | {tp / b:.0f}x |"
            )
    lines.append("")


def quality(lines: list[str]) -> None:
    lines += [
        "### PACS vs RTFS (makespan, ms) with the lower bound",
        "",
        "| scenario | RTFS | PACS | PACS gain | lower bound | PACS gap to bound "
        "| PACS radio plan |",
        "|---|---|---|---|---|---|---|",
    ]
    rows: list[tuple[str, Path, dict[str, Any]]] = [
        ("quickstart", REPO / "examples" / "quickstart.yaml", {}),
        ("low_heterogeneity", REPO / "examples" / "low_heterogeneity.yaml", {}),
    ]
    for alpha in (0.25, 0.5, 2.0, 4.0):
        rows.append(
            (
                f"quickstart, latency scale {alpha}",
                REPO / "examples" / "quickstart.yaml",
                {"accelerator": {"latency_scale": alpha}},
            )
        )
    for label, path, override in rows:
        data = yaml.safe_load(path.read_text())
        for key, value in override.items():
            data[key] = {**copy.deepcopy(data[key]), **value}
        problem = assemble(Scenario.model_validate(data), path)
        r = execute(problem, make_policy("rtfs").plan(problem))
        pplan = make_policy("pacs").plan(problem)
        p = execute(problem, pplan)
        lb = p.lower_bound.value
        lines.append(
            f"| {label} | {r.makespan_s * 1e3:.2f} | {p.makespan_s * 1e3:.2f} | "
            f"{(1 - p.makespan_s / r.makespan_s) * 100:.1f} % | {lb * 1e3:.2f} | "
            f"{(p.makespan_s / lb - 1) * 100:.1f} % | {pplan.notes['chosen_radio_plan']} |"
        )
    lines.append("")


def main() -> None:
    lines = [
        "## Core (issue 2): coordinator, RTFS, PACS on the analytic backends",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, "
        f"Python {platform.python_version()}, by `benchmarks/bench_core.py`.",
        "",
    ]
    quickstart_wall(lines)
    speed_tables(lines)
    quality(lines)
    section = write_section(BEGIN, END, lines)
    print(section)


if __name__ == "__main__":
    main()
