"""Where owin-cosim keeps files of its own outside a results directory (one place).

>>> import os
>>> os.environ["OWIN_COSIM_CACHE"] = "/tmp/owin-cache-doctest"
>>> str(cache_dir())
'/tmp/owin-cache-doctest'
>>> del os.environ["OWIN_COSIM_CACHE"]
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """owin-cosim's cache: ``$OWIN_COSIM_CACHE``, else ``$XDG_CACHE_HOME/owin-cosim``."""
    explicit = os.environ.get("OWIN_COSIM_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "owin-cosim"
