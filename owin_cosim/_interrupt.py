"""SIGINT at any moment of the command line: exit 130 with one line, never a traceback.

Imported first by :mod:`owin_cosim.cli`: run as the ``owin-cosim`` console script (or
``python -m owin_cosim.cli``), the handler is in place before the slow imports, so an
interrupt during start-up exits quietly. Inside a command (:data:`state` ``in_command`` > 0)
it raises :class:`KeyboardInterrupt` instead, so that the command cleans up what it
started (a half-written results directory, worker processes) before exiting 130.
Imported as a library (tests, ``from owin_cosim.cli import app``), it installs nothing.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

__all__ = ["install", "state"]

#: ``in_command``: how many commands (nested guards) are running; while one is, it
#: handles KeyboardInterrupt itself.
state = {"in_command": 0}


def _handler(signum: int, frame: FrameType | None) -> None:
    if state["in_command"]:
        raise KeyboardInterrupt
    try:
        sys.stderr.write("interrupted\n")
        sys.stderr.flush()
    finally:
        os._exit(130)  # nothing to clean up before a command starts


def install() -> None:
    """Make SIGINT exit 130 quietly (outside a command) from now on."""
    signal.signal(signal.SIGINT, _handler)


if os.path.basename(sys.argv[0]) in ("owin-cosim", "cli.py"):
    install()
