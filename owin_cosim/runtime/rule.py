"""The re-planning rule: when to re-plan, how much to spend, how often.

Grammar of ``--replan RULE`` (no spaces needed; keys in any order, each at most once)::

    RULE     := "late" ( "," KEY "=" VALUE )*
    threshold = DURATION   lateness that triggers a re-plan (default 1ms)
    budget    = INT        candidate continuations simulated per re-plan, 1..256
                           (default 8; the current plan's continuation is extra)
    max       = INT        re-plans per run, 0..1000 (default 8)
    cooldown  = DURATION   least time between two re-plans (default 0)
    on        = chunks | layers | both   what is watched (default both)
    DURATION := NUMBER [ "s" | "ms" | "us" ]   (a bare number is in seconds)

A chunk delivered, or a layer ended, more than ``threshold`` later than the planned
timeline says triggers a re-plan (if ``max`` is not reached and ``cooldown`` has
passed since the last one).

>>> parse_rule("late")
ReplanRule(threshold_s=0.001, budget=8, max_replans=8, cooldown_s=0.0, on='both')
>>> parse_rule("late,threshold=2.5ms,budget=16,max=2,on=chunks").threshold_s
0.0025
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from owin_cosim.errors import ConfigError

__all__ = ["GRAMMAR", "ReplanRule", "parse_rule"]

#: What the flag expects, in error messages.
GRAMMAR = (
    "'late' or 'late,threshold=1ms,budget=8,max=8,cooldown=0,on=both' "
    "(threshold/cooldown in s, ms or us; budget 1..256; max 0..1000; "
    "on: chunks, layers or both)"
)

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
_WATCH = ("both", "chunks", "layers")


@dataclass(frozen=True)
class ReplanRule:
    """A parsed ``--replan`` rule (see the module docstring)."""

    threshold_s: float = 1e-3
    budget: int = 8
    max_replans: int = 8
    cooldown_s: float = 0.0
    on: Literal["both", "chunks", "layers"] = "both"

    def describe(self) -> dict[str, Any]:
        """JSON-ready, for ``summary.json``."""
        return asdict(self)


def _duration(text: str, key: str, flag: str) -> float:
    for unit in ("us", "ms", "s"):  # "ms" and "us" before "s"
        if text.endswith(unit):
            number, scale = text[: -len(unit)], _UNITS[unit]
            break
    else:
        number, scale = text, 1.0
    try:
        value = float(number) * scale
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0.0 or value > 1e6:
        raise ConfigError(
            None,
            flag,
            f"{key}={text!r} is not a duration >= 0 (e.g. 1ms, 0.002s); expected " + GRAMMAR,
        )
    return value


def _integer(text: str, key: str, low: int, high: int, flag: str) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise ConfigError(
            None, flag, f"{key}={text!r} is not an integer in {low}..{high}; expected " + GRAMMAR
        )
    return int(text)


def parse_rule(text: str, flag: str = "--replan") -> ReplanRule:
    """Parse a rule (see the module docstring).

    Raises
    ------
    ConfigError
        Naming ``flag`` and what was expected.
    """
    parts = [p.strip() for p in text.split(",")]
    if parts[0] != "late":
        raise ConfigError(None, flag, f"got {text!r}; expected " + GRAMMAR)
    values: dict[str, str] = {}
    for part in parts[1:]:
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or key not in ("threshold", "budget", "max", "cooldown", "on"):
            raise ConfigError(None, flag, f"{part!r} is not a known key=value; expected " + GRAMMAR)
        if key in values:
            raise ConfigError(None, flag, f"{key} given twice; expected " + GRAMMAR)
        values[key] = value
    on = values.get("on", "both")
    if on not in _WATCH:
        raise ConfigError(None, flag, f"on={on!r}; expected " + GRAMMAR)
    rule = ReplanRule(on=on)  # type: ignore[arg-type]  # checked against _WATCH above
    if "threshold" in values:
        rule = replace(rule, threshold_s=_duration(values["threshold"], "threshold", flag))
    if "cooldown" in values:
        rule = replace(rule, cooldown_s=_duration(values["cooldown"], "cooldown", flag))
    if "budget" in values:
        rule = replace(rule, budget=_integer(values["budget"], "budget", 1, 256, flag))
    if "max" in values:
        rule = replace(rule, max_replans=_integer(values["max"], "max", 0, 1000, flag))
    return rule
