"""The policy interface: a policy turns a :class:`~owin_cosim.system.problem.Problem` into a
:class:`~owin_cosim.system.plan.Plan`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from owin_cosim.system.plan import Plan
from owin_cosim.system.problem import Problem

__all__ = ["NoParams", "Policy", "minmax_shares", "upload_and_encoder_times"]


class NoParams(BaseModel):
    """For policies without parameters: any key is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Policy(ABC):
    """An orchestration policy.

    Subclasses set ``name``, a pydantic ``Params`` model (every parameter declared with
    type and default) and implement :meth:`plan`.
    """

    name: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(self, params: BaseModel | None = None) -> None:
        self.params = params if params is not None else self.Params()

    @abstractmethod
    def plan(self, problem: Problem) -> Plan:
        """Decide the radio phases, chunk order, compute release and dispatch rule."""

    def describe_params(self) -> dict[str, Any]:
        """The parameters, JSON-ready."""
        return self.params.model_dump()


def upload_and_encoder_times(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Per device: ``a_k``, its upload time alone on the band at the mean rate, and
    ``b_k``, the critical path of its encoder on one core.

    These are the two stages of the flow shop (radio, then compute) that Johnson's rule
    orders.
    """
    a = np.array(
        [d.payload_bytes * 8.0 / problem.mean_rate_bps[k] for k, d in enumerate(problem.devices)]
    )
    b = np.array(
        [
            problem.dag.subgraph_critical_path_s(problem.encoder_layers(k))
            for k in range(len(problem.devices))
        ]
    )
    return a, b


def minmax_shares(problem: Problem) -> dict[str, float]:
    """Shares that make every upload end together: ``share_k ∝ bits_k / rate_k``.

    Under a proportional split of the band, device ``k`` gets about ``share_k * rate_k``
    bit/s, so equal ``bits_k / (share_k * rate_k)`` minimises the latest upload end.
    """
    a, _ = upload_and_encoder_times(problem)
    total = float(a.sum())
    return {d.name: float(a[k] / total) for k, d in enumerate(problem.devices)}
