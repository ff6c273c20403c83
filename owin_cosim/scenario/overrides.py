"""Copies of a scenario with some values changed, by dotted key path (what-if studies).

A key path names a scenario key as the documentation and error messages do:
``accelerator.latency_scale``, ``network.ofdm.num_rbs``, ``devices[0].distance_m`` or,
by device name, ``devices.camera.distance_m``. The copy is validated like a file.

>>> s = Scenario.model_validate({
...     "name": "one",
...     "devices": [{"name": "cam", "modality": "image", "distance_m": 10}],
...     "accelerator": {"spec": "mc4.yaml"},
... })
>>> override(s, {"devices.cam.distance_m": 25, "network.ofdm.num_rbs": 10}).devices[0].distance_m
25.0
>>> override(s, {"network.ofdm.rbs": 10})
Traceback (most recent call last):
...
owin_cosim.errors.ConfigError: one.yaml: network.ofdm.rbs: unknown key; ...
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from owin_cosim.errors import ConfigError
from owin_cosim.scenario.schema import Scenario
from owin_cosim.validation import validation_to_config_error

__all__ = ["override"]

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _parts(path: str) -> list[str | int]:
    return [int(index) if index else name for name, index in _PART.findall(path)]


def _set(doc: Any, parts: list[str | int], value: Any, path: str, file: str) -> None:
    node = doc
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if isinstance(part, str):  # a device (or other named item) by its name
                named = [x for x in node if isinstance(x, dict) and x.get("name") == part]
                if not named:
                    raise ConfigError(file, path, f"no item named {part!r} in this list")
                part = node.index(named[0])
            if not 0 <= part < len(node):
                raise ConfigError(file, path, f"index {part} out of range (0..{len(node) - 1})")
        elif isinstance(node, dict):
            if isinstance(part, int):
                raise ConfigError(file, path, f"[{part}]: expected a key, not an index")
        else:
            raise ConfigError(file, path, "expected a mapping or list along the path")
        if last:
            node[part] = value
        else:
            if isinstance(node, dict) and node.get(part) is None:
                node[part] = {}
            node = node[part]


def override(scenario: Scenario, values: Mapping[str, Any]) -> Scenario:
    """A validated copy of ``scenario`` with ``values`` (key path -> value) set.

    Raises
    ------
    ConfigError
        For a path that names no key, or a value the schema refuses.
    """
    file = str(scenario.source_file)
    doc = scenario.model_dump(mode="python", exclude_unset=False)
    for path, value in values.items():
        _set(doc, _parts(path), value, path, file)
    try:
        copy = Scenario.model_validate(doc)
    except ValidationError as exc:
        raise validation_to_config_error(exc, file, Scenario) from None
    return copy.with_source(scenario.source_file)
