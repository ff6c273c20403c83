"""owin-cosim: co-simulation of wireless neural processing.

Sensor nodes send multimodal data over a wireless uplink to an edge server, where one
multimodal DNN runs on a multi-core accelerator. owin-cosim couples a network backend
(analytic OFDM, ns-3), an accelerator cost model (analytic, Timeloop) and a coordinator
that applies orchestration policies (RTFS, PACS).
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
