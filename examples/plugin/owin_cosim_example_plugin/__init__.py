"""An example owin-cosim plugin: one entry of each registry.

============ ================================ =========================================
group        name                             object
============ ================================ =========================================
policies     ``greedy``                       :class:`.policy.SmallestUploadFirst`
cost         ``roofline``                     :class:`.roofline.RooflineBackend`
network      ``fixed-rate``                   :class:`.fixed_rate.FixedRateBackendType`
============ ================================ =========================================

The entry points are declared in this package's ``pyproject.toml``; owin-cosim imports a
module of this package only when a scenario or a flag names its entry. This file
therefore imports nothing (see ``docs/plugins.md``).
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
