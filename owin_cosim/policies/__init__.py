"""Orchestration policies and their registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from owin_cosim.errors import ConfigError
from owin_cosim.policies.base import Policy
from owin_cosim.policies.pacs import Pacs
from owin_cosim.policies.rtfs import Rtfs

__all__ = ["POLICIES", "Pacs", "Policy", "Rtfs", "make_policy"]

#: Policy name -> class.
POLICIES: dict[str, type[Policy]] = {"rtfs": Rtfs, "pacs": Pacs}


def make_policy(
    name: str, params: dict[str, Any] | None = None, file: str | Path | None = None
) -> Policy:
    """Instantiate a registered policy, validating its parameters.

    >>> make_policy("pacs", {"soft_ratio": 2.0}).params.soft_ratio
    2.0
    """
    cls = POLICIES.get(name)
    if cls is None:
        raise ConfigError(
            file, "policy.name", f"unknown policy {name!r}; expected one of: {', '.join(POLICIES)}"
        )
    from owin_cosim.scenario.schema import validation_to_config_error

    try:
        return cls(cls.Params.model_validate(params or {}))
    except ValidationError as exc:
        raise validation_to_config_error(exc, file, cls.Params, "policy.params") from None
