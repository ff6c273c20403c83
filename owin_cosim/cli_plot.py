"""``owin-cosim plot DIR``: the figures and the report of a sweep directory.

Registered on :data:`owin_cosim.cli.app` (``cli.py`` imports this module); the work is
:func:`owin_cosim.study.report.plot_directory`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from owin_cosim.cli import DebugOpt, _guard, _say, app

__all__ = ["plot"]


@app.command()
def plot(
    directory: Annotated[
        Path,
        typer.Argument(
            help="A sweep's output directory (owin-cosim sweep --out DIR).",
            metavar="DIR",
            show_default=False,
        ),
    ],
    debug: DebugOpt = False,
) -> None:
    """Draw a sweep's figures (DIR/figures/*.png, *.svg) and its report (DIR/report.html)
    from DIR/results.parquet and DIR/sweep.resolved.json; nothing else is written."""
    from owin_cosim.study.report import plot_directory

    with _guard(debug):
        written = plot_directory(directory)
        figures = sorted({p.stem for p in written[:-1]})
        _say(f"{len(figures)} figures (PNG and SVG) -> {directory / 'figures'}")
        _say(f"report -> {written[-1]}")
