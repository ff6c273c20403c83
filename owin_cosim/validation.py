"""One translator from pydantic's validation errors to :class:`~owin_cosim.errors.ConfigError`.

Every typed input (scenarios, ns-3 scenario parameters, policy parameters, plans) is
checked by a pydantic model; this module turns the first error (and the rest, as
"also" lines) into one message naming the file and the key path.

>>> from pydantic import BaseModel, ConfigDict, ValidationError
>>> class M(BaseModel):
...     model_config = ConfigDict(extra="forbid")
...     seed: int = 0
>>> try:
...     M.model_validate({"sed": 1})
... except ValidationError as exc:
...     print(validation_to_config_error(exc, "s.yaml", M))
s.yaml: sed: unknown key; expected one of: seed
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from owin_cosim.errors import ConfigError
from owin_cosim.yaml_input import clip

__all__ = ["validation_to_config_error"]


def _loc_to_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str] | None:
    """The declared keys of the sub-model at ``loc`` (to name them in errors)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        info = current.model_fields.get(part)
        if info is None:
            return None
        current = _unwrap(info.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return None


def _unwrap(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        models = [
            a for a in typing.get_args(tp) if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        return models[0] if models else tp
    if origin in (list, tuple):
        return _unwrap(typing.get_args(tp)[0])
    if origin is dict:
        return _unwrap(typing.get_args(tp)[1])
    return tp


def validation_to_config_error(
    exc: ValidationError, file: str | Path | None, root: type[BaseModel], prefix: str = ""
) -> ConfigError:
    """Turn pydantic's errors into one :class:`ConfigError` (first error, then the rest)."""
    lines: list[tuple[str, str]] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        # Union members add their type name to the location: drop it.
        loc = tuple(p for p in loc if not (isinstance(p, str) and p in ("str", "EncoderRef")))
        key = ".".join(x for x in (prefix, _loc_to_path(loc)) if x)
        if err["type"] == "extra_forbidden":
            allowed = _fields_at(root, loc[:-1])
            msg = "unknown key" + (f"; expected one of: {', '.join(allowed)}" if allowed else "")
        elif err["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            if "input" in err and err["type"] not in ("value_error", "assertion_error"):
                msg += f" (got {clip(err['input'])})"
        lines.append((key, msg))
    key, msg = lines[0]
    if len(lines) > 1:
        msg += "".join(f"\n  also: {k}: {m}" for k, m in lines[1:])
    return ConfigError(file, key, msg)
