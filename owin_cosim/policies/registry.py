"""The policy registry: built-in policies and those of plugins.

A third-party package adds a policy by declaring an entry point in the group
``owin_cosim.policies``, e.g. in its ``pyproject.toml``::

    [project.entry-points."owin_cosim.policies"]
    greedy = "mypkg:Greedy"

where ``Greedy`` is a :class:`~owin_cosim.policies.base.Policy` subclass. See
``docs/plugins.md``.

>>> POLICIES.names()[:2]
['rtfs', 'pacs']
>>> make_policy("pacs", {"soft_ratio": 2.0}).params.soft_ratio
2.0
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from owin_cosim.plugins import Registry
from owin_cosim.policies.base import Policy
from owin_cosim.validation import validation_to_config_error

__all__ = ["POLICIES", "make_policy"]


def _policy_class(obj: Any) -> type[Policy]:
    if not (isinstance(obj, type) and issubclass(obj, Policy)):
        raise TypeError(f"expected a subclass of owin_cosim.policies.Policy, got {obj!r}")
    if inspect.isabstract(obj):
        raise TypeError(f"{obj.__name__} does not implement {sorted(obj.__abstractmethods__)}")
    if not isinstance(getattr(obj, "name", None), str):
        raise TypeError(f"{obj.__name__} has no class attribute 'name' (a str)")
    return obj


#: Policy name -> class.
POLICIES: Registry[type[Policy]] = Registry(
    "policy",
    "owin_cosim.policies",
    {
        "rtfs": "owin_cosim.policies.rtfs:Rtfs",
        "pacs": "owin_cosim.policies.pacs:Pacs",
        "owin": "owin_cosim.policies.owin:Owin",
        "exact": "owin_cosim.policies.exact:Exact",
    },
    _policy_class,
)


def make_policy(
    name: str,
    params: dict[str, Any] | None = None,
    file: str | Path | None = None,
    key: str = "policy.name",
) -> Policy:
    """Instantiate a registered policy, validating its parameters.

    ``file`` and ``key`` say where the name was read (a scenario's ``policy.name``, or
    the flag ``--policy`` with ``file=None``) for the error message.
    """
    cls = POLICIES.load(name, file, key)
    try:
        return cls(cls.Params.model_validate(params or {}))
    except ValidationError as exc:
        raise validation_to_config_error(exc, file, cls.Params, "policy.params") from None
