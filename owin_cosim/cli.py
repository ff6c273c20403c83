"""The ``owin-cosim`` command line.

``owin-cosim run SCENARIO.yaml [--policy NAME | --plan PLAN.json [--replan RULE]] [--out DIR]``
    One policy run, or one run of a plan file (policy ``plan``, re-planned at run time by
    ``RULE``: ``cli_plan.py``, ``docs/replanning.md``); writes a results directory.
``owin-cosim compare SCENARIO.yaml --policies rtfs,pacs [--out DIR]``
    Several policies on the same scenario and seed; prints a table, writes one results
    directory per policy and ``comparison.json``.
``owin-cosim sweep SWEEP.yaml --out DIR [--workers N | --scheduler URL] [--resume]``
    Every point x policy x seed of a sweep file, resumable; ``DIR/results.parquet``
    (``cli_sweep.py``, ``docs/sweep.md``).
``owin-cosim solve SCENARIO.yaml --time-limit S [--out DIR]``
    The exact CP-SAT reference on the OFDM uplink: ``DIR/solution.json`` and
    ``DIR/plan.json`` (``cli_solve.py``, ``docs/exact.md``).
``owin-cosim validate SCENARIO.yaml``
    Checks the scenario (schema, files, model, accelerator) and prints what it holds.

Bad inputs exit with code 2 and one clear message (``--debug`` shows the traceback).
"""

from __future__ import annotations

from owin_cosim import _interrupt  # isort: skip  (first: SIGINT while importing)

import json
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from owin_cosim import __version__
from owin_cosim.cli_plan import ReplanOpt, replan_rule, run_plan
from owin_cosim.errors import BackendUnavailableError, ConfigError, OwinError
from owin_cosim.policies import POLICIES
from owin_cosim.results.records import RunResult
from owin_cosim.scenario.schema import Scenario
from owin_cosim.system.plan import Plan
from owin_cosim.system.problem import Problem

__all__ = ["app", "main"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Co-simulation of wireless neural processing (uplink + accelerator).",
)
err = Console(stderr=True)
out = Console()

ScenarioArg = Annotated[Path, typer.Argument(help="Scenario YAML file.", show_default=False)]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Results directory.")]


def _say(line: str) -> None:
    """A line on stdout: plain text (paths and names are never read as markup)."""
    out.print(Text(line), highlight=False, soft_wrap=True)


def _error(prefix: str, exc: BaseException) -> None:
    """One error line: the prefix styled, the message as plain text (never markup)."""
    line = Text(prefix, style="bold red")
    line.append(f" {exc}")
    err.print(line, highlight=False, soft_wrap=True)


@contextmanager
def _guard(debug: bool) -> Iterator[None]:
    """Turn expected errors into one line on stderr and an exit code."""
    _interrupt.state["in_command"] += 1
    try:
        yield
    except (ConfigError, BackendUnavailableError) as exc:
        if debug:
            raise
        _error("error:", exc)
        raise typer.Exit(2) from None
    except OwinError as exc:
        if debug:
            raise
        _error("run failed:", exc)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("interrupted: nothing was written for the unfinished run")
        raise typer.Exit(130) from None
    finally:
        _interrupt.state["in_command"] -= 1


def _assemble(
    scenario_path: Path, check: Callable[[Scenario], object] | None = None
) -> tuple[Scenario, Problem]:
    """Read and assemble a scenario; ``check`` sees the scenario before the (slow)
    costing (e.g. whether its results directory may be written)."""
    from owin_cosim.scenario.assemble import assemble
    from owin_cosim.scenario.schema import load_scenario

    scenario = load_scenario(scenario_path)
    from owin_cosim.policies import make_policy

    # The scenario's policy (a plugin may be broken) is checked before anything is written.
    make_policy(scenario.policy.name, scenario.policy.params, scenario_path)
    if check is not None:
        check(scenario)
    with err.status(Text(f"assembling {scenario_path} ...")) as status:

        def costing(done: int, total: int) -> None:
            status.update(Text(f"assembling {scenario_path}: costing layer {done}/{total} ..."))

        return scenario, assemble(scenario, scenario_path, costing)


def _run_policy(
    scenario_path: Path,
    scenario: Scenario,
    problem: Problem,
    policy_name: str | None,
    target: Path,
    plot: bool,
    flag: str = "--policy",
) -> dict[str, Any]:
    from owin_cosim.policies import make_policy

    name = policy_name or scenario.policy.name
    if name == scenario.policy.name:
        policy = make_policy(name, scenario.policy.params, scenario_path)
    else:  # named on the command line: an unknown name is the flag's fault
        policy = make_policy(name, {}, None, flag)
    status = f"{name}: planning and running {len(problem.dag)} layers ..."
    return _execute_and_write(problem, policy.plan, target, plot, status)


def _execute_and_write(
    problem: Problem,
    decide: Callable[[Problem], Plan],
    target: Path,
    plot: bool,
    status: str,
    carry_out: Callable[[Problem, Plan], RunResult] | None = None,
) -> dict[str, Any]:
    """Decide a plan, carry it out (by ``carry_out``, default ``execute``), write the
    results directory; the summary (+ wall time)."""
    from owin_cosim.results.writers import write_results
    from owin_cosim.sim.coordinator import execute

    with err.status(Text(status)):  # names and paths: never markup
        t0 = time.perf_counter()
        result = (carry_out or execute)(problem, decide(problem))
        wall = time.perf_counter() - t0
    write_results(result, target, plot=plot, key="--out")
    summary = result.summary()
    summary["wall_s"] = wall
    summary["out_dir"] = str(target)
    return summary


def _table(rows: list[dict[str, Any]]) -> Table:
    from owin_cosim.results.comparison import COLUMNS, table_rows

    table = Table(title="owin-cosim comparison")
    for col in COLUMNS:
        table.add_column(col, justify="left" if col == "policy" else "right", no_wrap=True)
    for cells in table_rows(rows):
        table.add_row(*(Text(c) for c in cells))  # names are data, never markup
    return table


def _policy_names(policies: str) -> list[str]:
    """``--policies``: registered names, each once."""
    names = [p.strip() for p in policies.split(",") if p.strip()]
    if not names:
        raise ConfigError(
            None, "--policies", f"expected a comma-separated list of: {', '.join(POLICIES)}"
        )
    for name in names:
        POLICIES.load(name, None, "--policies")  # a broken plugin fails before any write
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(
            None,
            "--policies",
            f"policy {', '.join(twice)} given more than once; expected each once",
        )
    return names


@app.command()
def run(
    scenario: ScenarioArg,
    policy: Annotated[
        str | None, typer.Option(help="Policy name (default: the scenario's).")
    ] = None,
    out_dir: OutOpt = None,
    plot: Annotated[bool, typer.Option(help="Draw gantt.png.")] = True,
    plan: Annotated[
        Path | None,
        typer.Option(
            "--plan",
            help="Carry out this plan file (e.g. a results directory's plan.json) instead "
            "of planning; the run's policy is 'plan'.",
        ),
    ] = None,
    replan: ReplanOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run one policy (or a plan file) on a scenario and write its results directory."""
    with _guard(debug):
        if plan is not None and policy is not None:
            raise ConfigError(None, "--plan", "give either --plan or --policy, not both")
        rule = replan_rule(replan, plan)  # before the (slow) assembly or any write
        if policy is not None:
            POLICIES.load(policy, None, "--policy")  # before the (slow) assembly or any write
        targets: list[Path] = []

        def claim(sc: Scenario) -> None:  # may --out be written? (before any work)
            from owin_cosim.results.safety import prepare_target
            from owin_cosim.system.plan_file import REPLAY_POLICY

            last = REPLAY_POLICY if plan is not None else policy or sc.policy.name
            targets.append(prepare_target(out_dir or Path("results") / sc.name / last, "--out"))

        sc, problem = _assemble(scenario, claim)
        name = policy or sc.policy.name
        if plan is not None:
            s = run_plan(plan, problem, targets[0], plot, rule)
        else:
            s = _run_policy(scenario, sc, problem, name, targets[0], plot)
        _say(
            f"{s['policy']}: makespan {s['makespan_s'] * 1e3:.3f} ms "
            f"(lower bound {s['lower_bound_s'] * 1e3:.3f} ms, "
            f"gap {s['gap_to_lower_bound'] * 100:.1f} %) -> {s['out_dir']}"
        )


@app.command()
def compare(
    scenario: ScenarioArg,
    policies: Annotated[str, typer.Option(help="Comma-separated policy names.")] = "rtfs,pacs",
    out_dir: OutOpt = None,
    plot: Annotated[bool, typer.Option(help="Draw gantt.png per policy.")] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print comparison.json's content instead of a table.")
    ] = False,
    debug: DebugOpt = False,
) -> None:
    """Run several policies on the same scenario and seed; print and save a comparison."""
    from owin_cosim.results.comparison import comparison_doc, plain_table
    from owin_cosim.results.safety import prepare_target
    from owin_cosim.results.writers import atomic_directory, write_json

    with _guard(debug):
        names = _policy_names(policies)
        sc, problem = _assemble(
            scenario, lambda sc: prepare_target(out_dir or Path("results") / sc.name, "--out")
        )
        base = out_dir or Path("results") / sc.name
        rows: list[dict[str, Any]] = []
        from owin_cosim.network.ns3.pool import pool_for_runs

        # On ns-3: one pool, a worker per policy prepared at once (same scenario and seed).
        with atomic_directory(base, "--out") as tmp, pool_for_runs(problem.network, len(names)):
            for name in names:
                rows.append(_run_policy(scenario, sc, problem, name, tmp / name, plot))
            for r in rows:
                r["out_dir"] = str(base / r["policy"])
            doc = comparison_doc(sc.name, sc.seed, rows)
            write_json(tmp / "comparison.json", doc)
        if as_json:
            print(json.dumps(doc, indent=2))
            return
        if out.is_terminal:
            out.print(_table(rows))
        else:  # piped or redirected: plain text, never a cut value
            print(plain_table(rows))
        first = rows[0]
        for r in rows[1:]:
            change = 1.0 - r["makespan_s"] / first["makespan_s"]
            word = "lower" if change >= 0 else "higher"
            _say(f"{r['policy']} vs {first['policy']}: makespan {abs(change) * 100:.1f} % {word}")
        _say(f"results: {base}/{{{','.join(names)}}}/, {base}/comparison.json")


@app.command()
def validate(scenario: ScenarioArg, debug: DebugOpt = False) -> None:
    """Check a scenario and print what it holds (exit code 2 on any error)."""
    from owin_cosim.system.lower_bound import lower_bound

    with _guard(debug):
        sc, problem = _assemble(scenario)
        lb = lower_bound(problem)
        _say(
            f"{sc.name}: {len(problem.devices)} devices, "
            f"{len(problem.dag)} layers after chunking, {problem.num_cores} cores "
            f"({problem.accelerator}), network {problem.network_backend}, "
            f"policy {sc.policy.name}, seed {sc.seed}"
        )
        for d in problem.devices:
            _say(
                f"  {d.name:<12} {d.modality:<8} {d.payload_bytes:>10} B in {d.chunks} "
                f"chunk(s), {d.distance_m:g} m, mean full-band rate "
                f"{problem.mean_rate_bps[problem.device_index(d.name)] / 1e6:.1f} Mbit/s"
            )
        total = float(problem.dag.duration_s.sum())
        _say(
            f"  total compute {total * 1e3:.3f} ms on one core; lower bound "
            f"{lb.value * 1e3:.3f} ms (radio {lb.radio_s * 1e3:.3f}, critical path "
            f"{lb.critical_path_s * 1e3:.3f}, work {lb.work_s * 1e3:.3f})"
        )
        out.print("valid")


KeysOpt = Annotated[
    Path | None, typer.Option(help="CURVE key directory (made by 'owin-cosim keys DIR').")
]
InsecureOpt = Annotated[bool, typer.Option(help="Allow a bind beyond loopback without --keys.")]


@app.command()
def estimate(
    arch: Annotated[Path, typer.Option(help="Timeloop architecture, or a multi-core spec.")],
    problem: Annotated[Path, typer.Option(help="Timeloop problem (CNN-layer) YAML.")],
    mapping: Annotated[Path | None, typer.Option(help="Evaluate exactly this mapping.")] = None,
    ert: Annotated[
        Path | None, typer.Option(help="Accelergy ERT (default: beside the arch).")
    ] = None,
    backend: Annotated[
        str, typer.Option(help="analytic, loopnest, timeloop or zigzag (a spec's core).")
    ] = "analytic",
    evaluations: Annotated[
        int, typer.Option(help="Mapping search budget (loop-nest evaluations).", min=1)
    ] = 3000,
    seed: Annotated[int, typer.Option(help="Seed of the mapping search.", min=0)] = 0,
    write_mapping: Annotated[
        Path | None,
        typer.Option(help="Write the searched mapping as a Timeloop map.yaml here."),
    ] = None,
    core_type: Annotated[
        str | None,
        typer.Option(help="Core type of a heterogeneous spec (default: its first)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Cycles, energy and utilization of one layer on one core."""
    import json as _json

    from owin_cosim.accel.estimate import estimate_layer

    with _guard(debug):
        if backend not in ("analytic", "loopnest", "timeloop", "zigzag"):
            raise ConfigError(
                None,
                "--backend",
                f"unknown backend {backend!r}; expected analytic, loopnest, timeloop or zigzag",
            )
        with err.status(Text(f"estimating {problem} ...")) as status:

            def searching(done: int, total: int) -> None:
                status.update(f"searching mappings: {done}/{total} evaluations ...")

            result = estimate_layer(
                arch,
                problem,
                mapping=mapping,
                ert=ert,
                backend=backend,
                evaluations=evaluations,
                seed=seed,
                write_mapping_to=write_mapping,
                progress=searching,
                core_type=core_type,
            )
        if as_json:
            print(_json.dumps(result, indent=2, sort_keys=True))
            return
        on = f", core type {result['core_type']}" if "core_type" in result else ""
        _say(
            f"{result['mode']} ({result['backend']}{on}): cycles {result['cycles']}, "
            f"energy {result['energy_pJ']:.6g} pJ, utilization {result['utilization']:.3f}"
        )
        for name, lvl in result["levels"].items():
            _say(
                f"  {name:<24} reads {lvl['reads']:>12} writes {lvl['writes']:>12} "
                f"fills {lvl['fills']:>12} energy {lvl['energy_pJ']:.4g} pJ"
            )


cache_app = typer.Typer(help="The persistent per-layer cost cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("info")
def cache_info() -> None:
    """Where the cache is, how many entries (per backend), its size."""
    from owin_cosim.accel.cache import default_cache_path, open_existing

    with _guard(False):
        if (cache := open_existing()) is None:
            _say(f"{default_cache_path()}: no cost cache yet (0 entries)")
            return
        info = cache.info()
        cache.close()
        _say(f"{info['path']}: {info['entries']} entries, {info['bytes'] / 1024:.0f} KiB")
        for backend, n in sorted(info["by_backend"].items()):
            _say(f"  {backend}: {n}")
        for moved in info["moved_aside"]:
            _say(f"  (a damaged file was moved aside to {moved})")


@cache_app.command("clear")
def cache_clear() -> None:
    """Remove every entry."""
    from owin_cosim.accel.cache import default_cache_path, open_existing

    with _guard(False):
        if (cache := open_existing()) is None:
            _say(f"{default_cache_path()}: no cost cache, nothing to remove")
            return
        _say(f"removed {cache.clear()} entries from {cache.path}")
        cache.close()


@app.command()
def plugins(
    check: Annotated[
        bool, typer.Option("--check", help="Import every entry and report what fails.")
    ] = False,
) -> None:
    """List the registered policies, cost backends and network backends (and who provides
    them); with --check, load each one (exit 2 if any fails)."""
    from owin_cosim.accel.registry import COST_BACKENDS
    from owin_cosim.errors import PluginError
    from owin_cosim.network.registry import NETWORK_BACKENDS

    failed = 0
    for registry in (POLICIES, COST_BACKENDS, NETWORK_BACKENDS):
        _say(f"{registry.kind} ({registry.group}):")
        for e in registry.entries():
            status = ""
            if check:
                try:
                    registry.load(e.name)
                    status = "  ok"
                except PluginError as exc:
                    failed += 1
                    status = f"  FAILED: {exc.message}"
            _say(f"  {e.name:<14} {e.provider:<28} {e.target}{status}")
    if failed:
        raise typer.Exit(2)


def _print_version(value: bool) -> None:
    if value:
        print(f"owin-cosim {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    """Co-simulation of wireless neural processing (uplink + accelerator)."""


# The service commands (estimator, keys), sweep and plot are defined beside, on the same app.
from owin_cosim import cli_optimize, cli_plot, cli_services, cli_solve, cli_sweep  # noqa: E402, F401


def main() -> None:
    """Entry point of the ``owin-cosim`` console script (SIGINT at any moment: exit 130)."""
    _interrupt.install()
    try:
        app(prog_name="owin-cosim")
    finally:
        # The command is over (its exit status decided): a SIGINT while the interpreter
        # shuts down, when Python has put back the default handler, must not change it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":  # run the imported module's app: it has every command
    from owin_cosim.cli import main as _main

    _main()
