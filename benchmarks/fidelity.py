"""Fidelity of the accelerator model against the real Timeloop reference runs.

Run: ``.venv/bin/python benchmarks/fidelity.py``. It rewrites the ``fidelity`` section
of ``benchmarks/RESULTS.md``:

- *given a mapping*: the loop-nest model (:mod:`owin_cosim.accel.loopnest.nest`) on each case's
  ``timeloop-mapper.map.yaml`` against ``timeloop-model`` on the same mapping (targets:
  cycles within 5 %, energy within 10 % on every layer);
- *searching a mapping*: the mapper (:mod:`owin_cosim.accel.loopnest.mapper`) against
  ``timeloop-mapper``'s result for the same architecture and layer (targets: median
  cycles error <= 15 %, median energy error <= 25 %);
- speed: model evaluations per second with and without the mapping search, next to
  Timeloop's mapper wall time per layer from the reference summaries (the baseline).
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path

from results_file import write_section

from owin_cosim.accel.loopnest.cases import load_case
from owin_cosim.accel.loopnest.nest import evaluate

#: The real Timeloop runs shipped with the tests (``tests/data/timeloop_reference/README.md``).
REF = Path(__file__).resolve().parents[1] / "tests" / "data" / "timeloop_reference"
BEGIN, END = "<!-- fidelity:begin -->", "<!-- fidelity:end -->"


def cases() -> list[Path]:
    found = sorted(REF.glob("v3/cases/*")) + sorted(REF.glob("v4/cases/*"))
    if not found:
        raise SystemExit(f"no reference cases under {REF}")
    return found


def label(case: Path) -> str:
    return f"{case.parent.parent.name}/{case.name}"


def given_mapping(lines: list[str]) -> list[float]:
    lines += [
        "### Given a mapping: loop-nest model vs `timeloop-model` (same mapping, same ERT)",
        "",
        "| case | Timeloop cycles | ours | cycles error | Timeloop energy pJ | ours "
        "| energy error | eval ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    per_eval: list[float] = []
    worst_c = worst_e = 0.0
    for case in cases():
        levels, compute, problem, mapping, ref = load_case(case)
        t = time.perf_counter()
        for _ in range(20):
            ours = evaluate(levels, compute, problem, mapping)
        per_eval.append((time.perf_counter() - t) / 20)
        ec = (ours.cycles - ref.cycles) / ref.cycles
        ee = (ours.energy_pJ - ref.energy_pJ) / ref.energy_pJ
        worst_c, worst_e = max(worst_c, abs(ec)), max(worst_e, abs(ee))
        lines.append(
            f"| {label(case)} | {ref.cycles} | {ours.cycles} | {ec * 100:+.2f} % | "
            f"{ref.energy_pJ:.4g} | {ours.energy_pJ:.4g} | {ee * 100:+.2f} % | "
            f"{per_eval[-1] * 1e3:.2f} |"
        )
    lines += [
        "",
        f"Worst |error| over {len(per_eval)} layers: cycles {worst_c * 100:.2f} %, "
        f"energy {worst_e * 100:.2f} % (targets 5 % and 10 %). Eval time: one evaluation, "
        "files already read (mean of 20).",
        "",
    ]
    return per_eval


def searched(lines: list[str]) -> float | None:
    try:
        from owin_cosim.accel.loopnest.mapper import search_case
    except ImportError:
        lines += [
            "### Searching a mapping",
            "",
            "Not measured: `owin_cosim/accel/loopnest/mapper.py` is not in this version.",
            "",
        ]
        return None
    lines += [
        "### Searching a mapping: our mapper vs `timeloop-mapper`'s best",
        "",
        "Each case is searched for the objective its `timeloop-mapper` run optimised "
        "(v3: delay, then energy; v4: energy-delay product), seed 0, at most 3,000 "
        "evaluations. `EDP ratio` = our cycles x energy / Timeloop's (< 1: our mapping is "
        "better by the product).",
        "",
        "| case | objective | Timeloop cycles | ours | error | Timeloop energy pJ | ours | "
        "error | EDP ratio | evaluations | our wall s | Timeloop mapper wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    ec_all, ee_all, rates = [], [], []
    better = 0
    for case in cases():
        t = time.perf_counter()
        res, row = search_case(case, seed=0)
        wall = time.perf_counter() - t
        rates.append(res.evaluations / wall)
        ec = (res.result.cycles - row["cycles"]) / row["cycles"]
        ee = (res.result.energy_pJ - row["energy_pJ"]) / row["energy_pJ"]
        ec_all.append(abs(ec))
        ee_all.append(abs(ee))
        edp = (res.result.cycles * res.result.energy_pJ) / (row["cycles"] * row["energy_pJ"])
        better += edp < 1
        objective = ", ".join(row["search_metrics"])
        lines.append(
            f"| {label(case)} | {objective} | {row['cycles']} | {res.result.cycles} | "
            f"{ec * 100:+.1f} % | {row['energy_pJ']:.4g} | {res.result.energy_pJ:.4g} "
            f"| {ee * 100:+.1f} % | {edp:.3f} | {res.evaluations} | {wall:.1f} | "
            f"{row.get('mapper_wall_s', float('nan'))} |"
        )
    lines += [
        "",
        f"Median |error|: cycles {statistics.median(ec_all) * 100:.1f} %, energy "
        f"{statistics.median(ee_all) * 100:.1f} % (targets 15 % and 25 %). Our mapping "
        f"has a lower energy-delay product than Timeloop's on {better} of "
        f"{len(ec_all)} cases.",
        "",
        "Why the v4 rows differ: the v4 reference runs stopped after "
        "`victory_condition: 100` suboptimal mappings in a row (their logs: 9-38 "
        "improvements, 1.6-27 s), so Timeloop's answer there is an early-stopped search, "
        "not the best mapping of its space. Our mappings stay inside the same map space "
        "(the factorization counts per dimension equal those `timeloop-mapper.log` "
        "prints, container constraints included) and mostly reach a lower EDP; e.g. on "
        "the Simba-like design Timeloop's runs never combine the `M`x`C` unrolling of the "
        "PE container with the `M`/`C` split of the distributed buffers and end at 25 % "
        "utilization, ours reaches 100 %. A larger error there means Timeloop's mapper "
        "stopped short, not that the model disagrees: on the same mapping the two agree "
        "(table above).",
        "",
    ]
    return statistics.median(rates)


def main() -> None:
    lines = [
        "## Accelerator fidelity (issue 4)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, Python "
        f"{platform.python_version()}, by `benchmarks/fidelity.py`, against "
        "`tests/data/timeloop_reference` (Timeloop v3.0.3 + Accelergy 0.3 and Timeloop "
        "master + Accelergy 0.4).",
        "",
    ]
    per_eval = given_mapping(lines)
    search_rate = searched(lines)
    mapper_walls = []
    for case in cases():
        row = json.loads((case / "summary.json").read_text())["row"]
        if row.get("mapper_wall_s") is not None:
            mapper_walls.append(float(row["mapper_wall_s"]))
    lines += [
        "### Speed",
        "",
        "| what | figure |",
        "|---|---|",
        f"| loop-nest evaluations per second, given mapping (median over the cases) | "
        f"{1 / statistics.median(per_eval):,.0f} |",
    ]
    if search_rate is not None:
        lines.append(f"| evaluations per second inside the mapping search | {search_rate:,.0f} |")
    lines += [
        f"| Timeloop mapper wall time per layer (reference summaries; baseline), median |"
        f" {statistics.median(mapper_walls):.1f} s (range {min(mapper_walls):.1f}-"
        f"{max(mapper_walls):.1f} s) |",
        "",
    ]
    print(write_section(BEGIN, END, lines))


if __name__ == "__main__":
    main()
