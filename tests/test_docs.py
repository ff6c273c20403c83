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


#: Where a file the docs name by its bare name may live.
SEARCHED = ("owin_cosim", "ns3_scenarios", "benchmarks", "tests", "examples")

#: Plugin entry-point groups: dotted names that are not modules.
ENTRY_POINT_GROUPS = {
    "owin_cosim.policies",
    "owin_cosim.cost_backends",
    "owin_cosim.network_backends",
}


def test_every_module_the_docs_name_exists() -> None:
    """Docs name modules by path (``owin_cosim/sim/coordinator.py``), by dotted name or
    by their path inside the package (``sim/coordinator.py``); each must exist."""
    import importlib.util
    import re

    pkg = REPO / "owin_cosim"
    subpackages = {p.name for p in pkg.iterdir() if (p / "__init__.py").is_file()}
    missing = []
    readmes = [REPO / d / "README.md" for d in ("accel_specs", "ns3_scenarios", "docker")]
    for doc in [REPO / "README.md", *readmes, *sorted((REPO / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        for path in re.findall(r"\bowin_cosim/[\w/]+\.py\b", text):
            if not (REPO / path).is_file():
                missing.append(f"{doc.name}: {path}")
        for dotted in re.findall(r"\bowin_cosim(?:\.\w+)+", text):
            if dotted in ENTRY_POINT_GROUPS:
                continue
            parts = dotted.split(".")
            # the longest prefix that is a module; the rest may be attributes
            found = any(
                importlib.util.find_spec(".".join(parts[:n])) is not None
                for n in range(len(parts), 1, -1)
                if (pkg / "/".join(parts[1:n])).with_suffix(".py").is_file()
                or (pkg / "/".join(parts[1:n]) / "__init__.py").is_file()
            )
            if not found:
                missing.append(f"{doc.name}: {dotted}")
        for path in re.findall(r"`((?:\w+/)+\w+\.py)", text):
            top = path.split("/")[0]
            if top in subpackages and not (pkg / path).is_file():
                missing.append(f"{doc.name}: {path}")
        for name in re.findall(r"`(\w+\.py)`", text):  # a bare file name: it exists somewhere
            if not any(REPO.glob(f"{top}/**/{name}") for top in SEARCHED):
                missing.append(f"{doc.name}: {name}")
    assert not missing, f"docs name modules that do not exist: {sorted(set(missing))}"
