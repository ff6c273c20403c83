"""The scenario reference lists every key of the schema."""

from __future__ import annotations

import typing

from pydantic import BaseModel

from owin_cosim.scenario.schema import Scenario
from tests.conftest import REPO


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        out.append(key)
        args = [field.annotation, *typing.get_args(field.annotation)]
        for a in list(args):
            args.extend(typing.get_args(a))
        subs = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if subs:
            is_list = typing.get_origin(field.annotation) is list
            out.extend(_keys(subs[0], key + ("[]." if is_list else ".")))
    return out


def test_every_scenario_key_is_documented() -> None:
    text = (REPO / "docs" / "scenario.md").read_text(encoding="utf-8")
    missing = [k for k in _keys(Scenario) if f"`{k}`" not in text]
    assert not missing, f"undocumented scenario keys: {missing}"
