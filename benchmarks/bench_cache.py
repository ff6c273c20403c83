"""The cost cache's checksums: warm-cache ``assemble`` of the quickstart, before and after.

Run: ``.venv/bin/python benchmarks/bench_cache.py`` (about a minute). It rewrites the
``cache`` section of ``benchmarks/RESULTS.md``.

"Before" is ``owin_cosim/accel/cache.py`` as it was just before checksums came in (the
parent of the first commit that defines ``SCHEMA_VERSION``), "after" the working tree's;
everything else is the working tree's in both, copied to a temporary directory, so the
cache module is the only difference. Each variant fills its own cache once, then times
warm ``assemble`` runs in a fresh process; the variants alternate, and the figure is the
median of all warm runs of each.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from results_file import write_section

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
QUICKSTART = REPO / "examples" / "quickstart.yaml"
BEGIN, END = "<!-- cache:begin -->", "<!-- cache:end -->"
RUNS, ROUNDS = 5, 4  # warm runs per process, processes per variant

CHILD = """
import json, sys, time
import owin_cosim
from owin_cosim.scenario.assemble import assemble
from owin_cosim.scenario.schema import load_scenario
assert owin_cosim.__file__.startswith(sys.argv[1]), owin_cosim.__file__
s = load_scenario(sys.argv[2])
assemble(s, sys.argv[2])  # fills the cache (a no-op when already warm)
times, hits = [], 0
for _ in range(int(sys.argv[3])):
    t0 = time.perf_counter()
    p = assemble(s, sys.argv[2])
    times.append(time.perf_counter() - t0)
    hits = p.cost.hits
    assert p.cost.calls == 0
print(json.dumps({"times": times, "hits": hits}))
"""


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout


def before_revision() -> str:
    first = git("log", "--format=%H", "-S", "SCHEMA_VERSION", "--", "owin_cosim/accel/cache.py")
    return first.split()[-1] + "^"


def variant(root: Path, cache_source: str | None) -> Path:
    shutil.copytree(REPO / "owin_cosim", root / "owin_cosim")
    if cache_source is not None:
        (root / "owin_cosim" / "accel" / "cache.py").write_text(cache_source)
    return root


def warm_runs(root: Path, cache_file: Path) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(root), "OWIN_COSIM_COST_CACHE": str(cache_file)}
    args = [str(root), str(QUICKSTART), str(RUNS)]
    res = subprocess.run(
        [sys.executable, "-c", CHILD, *args], env=env, cwd=root, capture_output=True, text=True
    )
    if res.returncode:
        raise SystemExit(res.stderr)
    out: dict[str, object] = json.loads(res.stdout.splitlines()[-1])
    return out


def main() -> None:
    rev = before_revision()
    old = git("show", f"{rev}:owin_cosim/accel/cache.py")
    with tempfile.TemporaryDirectory() as tmp:
        roots = {
            "before": variant(Path(tmp) / "before", old),
            "after": variant(Path(tmp) / "after", None),
        }
        times: dict[str, list[float]] = {name: [] for name in roots}
        hits = 0
        for _ in range(ROUNDS):
            for name, root in roots.items():
                got = warm_runs(root, Path(tmp) / f"{name}.sqlite")
                times[name] += got["times"]  # type: ignore[arg-type]
                hits = int(got["hits"])  # type: ignore[call-overload]
    med = {name: statistics.median(t) for name, t in times.items()}
    ratio = med["after"] / med["before"]
    lines = [
        "## Cost cache checksums (issue 8): warm-cache `assemble` of the quickstart",
        "",
        f"Measured {date.today()} on {platform.machine()}, Python {platform.python_version()},"
        " by `benchmarks/bench_cache.py`.",
        f"Before: `owin_cosim/accel/cache.py` at `{git('rev-parse', '--short', rev).strip()}`"
        " (no checksums); after: with per-row SHA-256 verified on every read. "
        f"{hits} cache hits per assembly, 0 backend calls.",
        "",
        f"| variant | warm `assemble`, ms (median of {RUNS * ROUNDS}) | ratio |",
        "|---|---|---|",
        f"| before | {med['before'] * 1e3:.2f} | - |",
        f"| after | {med['after'] * 1e3:.2f} | {ratio:.3f}x before |",
        "",
        f"Load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        " (a shared machine: differences of a few per cent are within run-to-run noise).",
    ]
    print(write_section(BEGIN, END, lines))


if __name__ == "__main__":
    main()
