"""``owin-cosim sweep SWEEP.yaml --out DIR [--workers N | --scheduler tcp://HOST:PORT]
[--resume] [--fail-fast]``: a study of many runs (``docs/sweep.md``).

Registered on :data:`owin_cosim.cli.app` (``cli.py`` imports this module); the work is
done by :func:`owin_cosim.study.sweep.run_sweep`. Exit codes: 0 when every run is done,
1 when a run failed (each recorded in its ``error.json``; with ``--fail-fast`` the sweep
stops at the first), 2 for a bad sweep file, axis or ``--out`` (before anything runs),
130 on SIGINT (finished runs are kept; the same command resumes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from owin_cosim.cli import DebugOpt, _guard, _say, app, err

__all__ = ["sweep"]


@app.command()
def sweep(
    sweep_file: Annotated[Path, typer.Argument(help="Sweep YAML file.", show_default=False)],
    out_dir: Annotated[Path, typer.Option("--out", help="The sweep directory.")],
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=1024, help="Local worker processes (default: CPU count)."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help='A dask.distributed scheduler tcp://HOST:PORT (pip install ".[dask]").'),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Require DIR to be a sweep directory already.")
    ] = False,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop at the first failed run (exit 1).")
    ] = False,
    plot: Annotated[bool, typer.Option(help="Draw gantt.png in every run directory.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Run every point x policy x seed of a sweep file (skipping runs already done) and
    write DIR/results.parquet and DIR/results.csv."""
    from owin_cosim.study.sweep import run_sweep

    def started(points: int, runs: int, skipped: int) -> None:
        _say(f"{sweep_file}: {points} points, {runs} runs; {skipped} done already")

    with _guard(debug):
        try:
            report = run_sweep(
                sweep_file,
                out_dir,
                workers=workers,
                scheduler=scheduler,
                resume=resume,
                fail_fast=fail_fast,
                plot=plot,
                on_start=started,
            )
        except KeyboardInterrupt:
            err.print(
                f"interrupted: the finished runs are kept in {out_dir}/runs; the same command "
                "resumes",
                markup=False,
                highlight=False,
            )
            raise typer.Exit(130) from None
        _say(
            f"{report.ran} ran, {report.failed} failed, {report.skipped} skipped -> "
            f"{report.out}/results.parquet, {report.out}/results.csv"
        )
        if report.first_error:
            _say(f"stopped at the first failure (--fail-fast): {report.first_error}")
        if report.failed:
            raise typer.Exit(1)
