"""Loop-nest evaluations per second, scalar vs batched, and the quickstart's costing time.

Run: ``.venv/bin/python benchmarks/bench_loopnest_batch.py [--baseline TREE] [--runs N]``.
It rewrites the ``loopnest-batch`` section of ``benchmarks/RESULTS.md``.

1. Evaluations per second, in the same process: the same valid candidate mappings of a
   few quickstart shapes on ``mc4`` scored one at a time (``nest.evaluate`` of the
   Timeloop mapping, as the scalar search does) and in one batch (``evaluate_batch``),
   after checking that both give the same cycles and energy.
2. Costing the quickstart with ``cost_backend: loopnest`` at the default budget, cache
   off (``assemble``'s wall time), median of ``--runs`` runs, each in a fresh process;
   with ``--baseline TREE`` (a ``git worktree`` of an older commit) the same runs with
   that tree first on ``PYTHONPATH``, interleaved with the current ones, and a check
   that both give the same per-layer cycles and energy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from results_file import write_section

from owin_cosim.accel.loopnest.backend import core_levels
from owin_cosim.accel.loopnest.batch import arrays_from_keys, evaluate_batch
from owin_cosim.accel.loopnest.constraints import Constraints
from owin_cosim.accel.loopnest.mapspace import build_space, state_key, to_mapping, valid
from owin_cosim.accel.loopnest.moves import sample
from owin_cosim.accel.loopnest.nest import evaluate
from owin_cosim.accel.spec import load_chip_spec

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BEGIN, END = "<!-- loopnest-batch:begin -->", "<!-- loopnest-batch:end -->"
SHAPES = [
    dict(R=3, S=3, P=56, Q=56, C=64, M=64, N=1),
    dict(R=7, S=7, P=112, Q=112, C=3, M=64, N=1, Wstride=2, Hstride=2),
    dict(R=1, S=1, P=14, Q=14, C=256, M=512, N=1, Wstride=2, Hstride=2),
    dict(R=1, S=1, P=1, Q=128, C=256, M=1024, N=1),
]
# Run in a child process: costs the quickstart, prints seconds and the per-layer costs.
CHILD = """
import json, sys, time, yaml
from pathlib import Path
from owin_cosim.scenario.assemble import assemble
from owin_cosim.scenario.schema import Scenario
qs = Path(sys.argv[1])
data = yaml.safe_load(qs.read_text())
data["accelerator"] = {**data["accelerator"], "cost_backend": "loopnest", "cache": False}
s = Scenario.model_validate(data)
t0 = time.perf_counter()
p = assemble(s, qs)
secs = time.perf_counter() - t0
costs = [p.dag.cycles.tolist(), p.dag.energy_pJ.tolist()]
print(json.dumps({"secs": secs, "costs": costs}))
"""


def evals_per_second(n_per_shape: int = 300) -> tuple[float, float, int]:
    """Scalar and batched evaluations per second on the same candidates; their number."""
    levels, mac, mesh = core_levels(load_chip_spec(REPO / "accel_specs" / "mc4.yaml"))
    t_scalar = t_batch = 0.0
    total = 0
    for prob in SHAPES:
        prob = {"Wstride": 1, "Hstride": 1, "Wdilation": 1, "Hdilation": 1, **prob}
        space = build_space(levels, mac, prob, Constraints(), mesh)
        rng = random.Random(0)
        states = [sample(space, prob, rng) for _ in range(n_per_shape)]
        states = [st for st in states if valid(space, st, prob)]
        keys = [state_key(space, st) for st in states]
        t0 = time.perf_counter()
        ref = [evaluate(levels, mac, prob, to_mapping(space, st)) for st in states]
        t1 = time.perf_counter()
        cycles, energy = evaluate_batch(levels, mac, prob, *arrays_from_keys(keys, len(levels)))
        t2 = time.perf_counter()
        got = list(zip(cycles.tolist(), energy.tolist(), strict=True))
        if got != [(r.cycles, r.energy_pJ) for r in ref]:
            raise SystemExit("batched and scalar evaluations differ")
        t_scalar += t1 - t0
        t_batch += t2 - t1
        total += len(states)
    return total / t_scalar, total / t_batch, total


def quickstart(tree: Path | None) -> tuple[float, list[list[float]]]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(REPO / "examples" / "quickstart.yaml")],
        env=env,
        cwd="/",
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    row = json.loads(out.strip().splitlines()[-1])
    return float(row["secs"]), row["costs"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, help="a worktree of the commit to compare with")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    scalar, batched, n = evals_per_second()
    print(f"evaluations/s: scalar {scalar:.0f}, batched {batched:.0f} ({n} candidates)")
    new: list[float] = []
    old: list[float] = []
    same = True
    for _ in range(args.runs):
        secs, costs = quickstart(None)
        new.append(secs)
        if args.baseline is not None:
            b_secs, b_costs = quickstart(args.baseline)
            old.append(b_secs)
            same = same and b_costs == costs
        print(f"quickstart costing: new {new[-1]:.2f} s, baseline {old[-1:]}", flush=True)
    lines = [
        "## Loop-nest costing in batches (issue 10 part 3)",
        "",
        f"Measured {date.today().isoformat()} on {platform.machine()} ({os.cpu_count()} "
        f"cores, shared with other jobs), Python {sys.version.split()[0]}, by "
        "`benchmarks/bench_loopnest_batch.py`.",
        "",
        f"- Evaluations per second on the same {n} valid candidate mappings of four "
        f"quickstart shapes on `mc4`, same run: scalar `nest.evaluate` {scalar:.0f}/s, "
        f"batched `evaluate_batch` {batched:.0f}/s ({batched / scalar:.1f}x); equal "
        "cycles and energy, bit for bit.",
        f"- Costing the quickstart (`cost_backend: loopnest`, default budget, cache off), "
        f"median of {args.runs} runs: {statistics.median(new):.2f} s.",
    ]
    if old:
        med_old, med_new = statistics.median(old), statistics.median(new)
        lines.append(
            f"- Baseline (`--baseline`, the scalar code before this change, runs "
            f"interleaved): {med_old:.2f} s; speed-up {med_old / med_new:.1f}x; same "
            f"per-layer cycles and energy: {same}."
        )
    print("\n".join(lines))
    write_section(BEGIN, END, lines)


if __name__ == "__main__":
    main()
