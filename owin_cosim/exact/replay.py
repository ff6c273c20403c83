"""What the exact reference checks when the coordinator replays the solver's plan.

The replay is the plan's real makespan: every chunk must arrive at the end of the slot
the solver believed (else the model and the uplink disagree: a bug), and a replay
slower than the model is explained only by DRAM contention, which the model relaxes
(each layer at its time alone).
"""

from __future__ import annotations

from owin_cosim.errors import ScheduleError
from owin_cosim.results.records import RunResult
from owin_cosim.system.problem import Problem

__all__ = ["check_deliveries", "dram_slowed"]


def check_deliveries(problem: Problem, result: RunResult, believed: list[list[int]]) -> None:
    """Raise :class:`ScheduleError` unless every chunk arrived in the slot the solver
    believed (``believed[k][c]``: the slot at whose end chunk ``c`` of device ``k``)."""
    slot_s = problem.network.config.slot_s
    for c in result.chunks:
        k = problem.device_index(c.device)
        slot = round(c.last_byte_s / slot_s) - 1
        if slot != believed[k][c.chunk]:
            raise ScheduleError(
                f"exact reference: {c.device}#{c.chunk} arrived at the end of slot {slot} "
                f"in the replay, the solver believed slot {believed[k][c.chunk]} (a bug)"
            )


def dram_slowed(problem: Problem, result: RunResult) -> bool:
    """Whether some layer took longer than its option's time alone in the replay."""
    index = {name: v for v, name in enumerate(problem.dag.names)}
    for rec in result.layers:
        v = index[rec.layer]
        option = next(
            o
            for o in problem.dag.layer_options[v]
            if o.group == len(rec.cores) and o.core_type == problem.core_type_of(rec.cores[0])
        )
        if rec.end_s - rec.start_s > option.alone_s * (1 + 1e-9) + 1e-15:
            return True
    return False
