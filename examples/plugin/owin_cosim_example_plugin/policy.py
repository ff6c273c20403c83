"""``greedy``: smallest upload first, one device at a time, compute on arrival.

Registered in the entry-point group ``owin_cosim.policies``::

    [project.entry-points."owin_cosim.policies"]
    greedy = "owin_cosim_example_plugin.policy:SmallestUploadFirst"

and used as ``owin-cosim run s.yaml --policy greedy`` or ``policy: {name: greedy}`` in a
scenario (parameters under ``policy.params``, see :class:`GreedyParams`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from owin_cosim.policies.base import Policy
from owin_cosim.system.plan import Plan, RadioPhase
from owin_cosim.system.problem import Problem

__all__ = ["GreedyParams", "SmallestUploadFirst", "upload_order"]


class GreedyParams(BaseModel):
    """``policy.params`` of ``greedy``: every key with its type and default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: When layers may start: as soon as their own data is in (``on_arrival``), or only
    #: once every device has finished (``after_all_uploads``).
    release: Literal["on_arrival", "after_all_uploads"] = "on_arrival"


def upload_order(problem: Problem) -> list[int]:
    """Device indices by increasing upload time alone on the band at the mean rate.

    The upload time of device ``k`` is ``payload_bytes * 8 / mean_rate_bps[k]``; ties
    keep the scenario's device order, so the order is deterministic.

    Parameters
    ----------
    problem : Problem
        The compiled scenario.

    Returns
    -------
    list of int
        Indices into ``problem.devices``, first to transmit first.
    """
    upload_s = [
        d.payload_bytes * 8.0 / float(problem.mean_rate_bps[k])
        for k, d in enumerate(problem.devices)
    ]
    return sorted(range(len(upload_s)), key=lambda k: (upload_s[k], k))


class SmallestUploadFirst(Policy):
    """Smallest upload first: the devices transmit one after the other, alone.

    1. Radio: one phase per device, in :func:`upload_order`; each phase gives the whole
       band to its device (share 1, every other device 0) and lasts until that device
       has delivered all of its chunks. (A device with share 0 still sends when the
       device of the phase has nothing queued: backends are work-conserving.)
    2. Chunks are queued in the same order, each device's chunks in sequence.
    3. Compute: ``on_arrival`` by default (see :class:`GreedyParams`); ready layers go to
       the core giving the earliest finish time (``eft``).

    O(K log K) planning for K devices. Shortest-processing-time first minimises the
    mean upload end on one shared link; it ignores the encoders' work, which PACS
    weighs in.

    Examples
    --------
    >>> SmallestUploadFirst().params.release
    'on_arrival'
    >>> SmallestUploadFirst(GreedyParams(release="after_all_uploads")).params.release
    'after_all_uploads'
    """

    name = "greedy"
    Params = GreedyParams

    def plan(self, problem: Problem) -> Plan:
        """One phase per device, smallest upload first (see the class docstring)."""
        params = self.params
        assert isinstance(params, GreedyParams)
        devices = [problem.devices[k] for k in upload_order(problem)]
        phases = tuple(RadioPhase({d.name: 1.0}, (d.name,)) for d in devices)
        chunks = tuple((d.name, c) for d in devices for c in range(d.chunks))
        notes = {"upload_order": [d.name for d in devices]}
        return Plan(self.name, phases, chunks, params.release, notes=notes)
