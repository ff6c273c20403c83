"""How far RTFS, PACS, the optimizer and the lower bound are from the exact optimum.

Run: ``.venv/bin/python benchmarks/bench_optimality.py [--count 20] [--time-limit 60]
[--budget 200] [--max-layers 18]`` (about ``count x (time limit + a few s)``). It
rewrites the ``optimality`` section of ``benchmarks/RESULTS.md``.

Instances: :func:`owin_cosim.study.instances.small_instances` (2-4 devices, up to 30
layers, 2-4 cores, 2-8 RBs; radio-bound, compute-bound and balanced, fading ``none`` and
``rayleigh`` in turn). On each: RTFS, PACS and policy ``owin`` (the optimizer, warm
started from PACS, ``--budget`` plans) run on the real channel; the exact reference
:func:`owin_cosim.exact.solve` (one CP-SAT worker, RTFS and PACS as horizon references)
within ``--time-limit``. The exact solver is *clairvoyant*: it knows the fading of every
slot of the real run, while the policies plan on the planning surrogate's realisation;
without fading the two agree.

Reference: the proven optimum where the solver says ``OPTIMAL``; elsewhere the best
makespan known (the solver's plan, RTFS, PACS or the optimizer; status ``NONE``: the
solver found no plan of its own within the limit and returned the best reference
plan), so the policies' ratios
are then lower estimates of their true ratios to the optimum, and the bound's an upper
estimate. "four parts" is the bound made of the original ``radio_s``,
``critical_path_s``, ``work_s`` and ``dram_s`` alone, to show what the new parts add.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from results_file import write_section

from owin_cosim.api import build_problem
from owin_cosim.exact import solve
from owin_cosim.policies import make_policy
from owin_cosim.sim.coordinator import execute
from owin_cosim.study.instances import MAX_MODEL_LAYERS, SmallInstance, small_instances
from owin_cosim.system.lower_bound import lower_bound

BEGIN, END = "<!-- optimality:begin -->", "<!-- optimality:end -->"
POLICIES = ("rtfs", "pacs", "owin")


@dataclass
class Row:
    name: str
    regime: str
    fading: str
    layers: int
    devices: int
    cores: int
    rbs: int
    status: str
    solve_s: float
    horizon_slots: int
    #: Policy -> makespan on the real run.
    makespan: dict[str, float]
    exact_s: float
    solver_bound_s: float
    bound_s: float
    four_parts_s: float

    @property
    def reference_s(self) -> float:
        if self.status == "OPTIMAL":
            return self.exact_s
        return min(self.exact_s, *self.makespan.values())

    @property
    def optimal(self) -> bool:
        """The reference is the optimum: the solver proved it, or a bound reaches it."""
        best_bound = max(self.bound_s, self.solver_bound_s)
        return self.status == "OPTIMAL" or best_bound >= self.reference_s * (1 - 1e-9)

    def ratio(self, policy: str) -> float:
        return self.makespan[policy] / self.reference_s


def _one(inst_dir: Path, inst: SmallInstance, time_limit: float, budget: int) -> Row:
    problem = build_problem(inst.write(inst_dir))
    plans = {
        "rtfs": make_policy("rtfs").plan(problem),
        "pacs": make_policy("pacs").plan(problem),
        "owin": make_policy("owin", {"budget": budget}).plan(problem),
    }
    makespan = {p: execute(problem, plan).makespan_s for p, plan in plans.items()}
    lb = lower_bound(problem)
    started = time.perf_counter()
    sol = solve(problem, time_limit, workers=1, references={k: plans[k] for k in ("rtfs", "pacs")})
    # a plan of CP-SAT's own, or (none found within the limit) the best reference's
    status = sol.status if sol.solver.get("status") in ("OPTIMAL", "FEASIBLE") else "NONE"
    exact, proven, slots = sol.makespan_s, sol.bound_s, sol.horizon_slots
    solve_s = time.perf_counter() - started
    lowest = min(exact, *makespan.values())
    if lb.value > lowest * (1 + 1e-9):  # a bound above a makespan is a bug
        raise AssertionError(f"{inst.name}: lower bound {lb.value} > makespan {lowest}")
    if proven > lowest * (1 + 1e-9):
        print(f"{inst.name}: the solver's bound {proven} exceeds a makespan {lowest}")
    return Row(
        inst.name,
        inst.regime,
        inst.fading,
        len(problem.dag),
        len(problem.devices),
        problem.num_cores,
        problem.radio_units,
        status,
        solve_s,
        slots,
        makespan,
        exact,
        proven,
        lb.value,
        max(lb.radio_s, lb.critical_path_s, lb.work_s, lb.dram_s),
    )


def _summary(rows: list[Row], label: str) -> list[str]:
    if not rows:
        return []
    ref = [r.reference_s for r in rows]
    cells = []
    for p in POLICIES:
        ratios = [r.ratio(p) for r in rows]
        cells.append(f"{statistics.mean(ratios):.3f} / {max(ratios):.3f}")
    bound = [r.bound_s / x for r, x in zip(rows, ref, strict=True)]
    four = [r.four_parts_s / x for r, x in zip(rows, ref, strict=True)]
    best_bound = [max(r.bound_s, r.solver_bound_s) / x for r, x in zip(rows, ref, strict=True)]
    optimal = sum(r.optimal for r in rows)
    return [
        f"| {label} | {len(rows)} ({optimal} optimal) | {' | '.join(cells)} | "
        f"{statistics.mean(bound):.3f} / {min(bound):.3f} | "
        f"{statistics.mean(four):.3f} / {min(four):.3f} | "
        f"{statistics.mean(best_bound):.3f} |"
    ]


def _lines(rows: list[Row], args: argparse.Namespace, loads: tuple[float, float]) -> list[str]:
    lines = [
        "## Optimality on small instances (`benchmarks/bench_optimality.py`)",
        "",
        f"{date.today()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; load average "
        f"{loads[0]:.1f} before, {loads[1]:.1f} after (a shared machine). "
        f"`small_instances({args.count}, seed={args.seed}, max_layers={args.max_layers})`; "
        f"CP-SAT 1 worker, {args.time_limit:g} s limit; optimizer `owin` budget "
        f"{args.budget}. With Rayleigh fading the exact solver is clairvoyant (it knows "
        "every slot's fading of the real run; the policies plan on another realisation).",
        "",
        "Ratios to the reference (the optimum where it is proven: by the solver, or by a "
        "bound equal to the best makespan known; else the best makespan known), mean / "
        "max for the policies, mean / min for the bounds; last column: the larger of ours "
        "and the solver's own proven bound.",
        "",
        "| instances | count | RTFS | PACS | optimizer | lower bound | four parts | "
        "with solver bound |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for fading in ("none", "rayleigh"):
        lines += _summary([r for r in rows if r.fading == fading], f"fading {fading}")
    for regime in ("radio", "compute", "balanced"):
        label = regime if regime == "balanced" else f"{regime}-bound"
        lines += _summary([r for r in rows if r.regime == regime], label)
    lines += _summary(rows, "all")
    never_worse = sum(r.makespan["owin"] <= r.makespan["pacs"] * (1 + 1e-12) for r in rows)
    flat = [r for r in rows if r.fading == "none"]
    opt_flat = [r for r in flat if r.optimal]
    mean_flat = statistics.mean(r.ratio("owin") for r in flat) if flat else float("nan")
    lines += [
        "",
        f"Optimizer never worse than PACS on the real run: {never_worse} of {len(rows)}. "
        f"Without fading: optimizer {100 * (mean_flat - 1):+.2f} % over the reference on "
        f"average (target within 1 % of the optimum; {len(opt_flat)} of {len(flat)} "
        "references proven optimal).",
        "",
        "| instance | layers | devices | cores | RBs | status | solve s | horizon slots | "
        "RTFS | PACS | optimizer | bound | four parts |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r.layers, r.name)):
        lines.append(
            f"| {r.name} | {r.layers} | {r.devices} | {r.cores} | {r.rbs} | {r.status} | "
            f"{r.solve_s:.1f} | {r.horizon_slots} | {r.ratio('rtfs'):.3f} | "
            f"{r.ratio('pacs'):.3f} | {r.ratio('owin'):.3f} | "
            f"{r.bound_s / r.reference_s:.3f} | {r.four_parts_s / r.reference_s:.3f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--max-layers", type=int, default=MAX_MODEL_LAYERS)
    parser.add_argument("--no-write", action="store_true", help="print, leave RESULTS.md")
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-optimality-") as tmp:
        os.environ.setdefault("OWIN_COSIM_COST_CACHE", str(Path(tmp) / "costs.sqlite"))
        for inst in small_instances(args.count, args.seed, args.max_layers):
            row = _one(Path(tmp), inst, args.time_limit, args.budget)
            rows.append(row)
            print(
                f"{row.name}: {row.status} {row.solve_s:.1f} s, ref "
                f"{row.reference_s * 1e3:.3f} ms, "
                + ", ".join(f"{p} {row.ratio(p):.3f}" for p in POLICIES)
                + f", bound {row.bound_s / row.reference_s:.3f}",
                flush=True,
            )
    lines = _lines(rows, args, (load_before[0], os.getloadavg()[0]))
    if args.no_write:
        print("\n".join(lines))
    else:
        print(write_section(BEGIN, END, lines))


if __name__ == "__main__":
    main()
