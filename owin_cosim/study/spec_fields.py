"""Chip-spec fields as sweep axes, without a spec file per point.

An axis ``accelerator.spec_fields.<path>`` changes one field of the scenario's
accelerator spec file (``accel_specs/README.md``): ``<path>`` is a dotted path inside
the spec with ``[i]`` list indices, or a list item by its ``name``
(``chip.noc.link_bandwidth_bytes_per_cycle``,
``architecture.subtree[0].subtree[0].local[0].attributes.memory_depth``). Every key
along the path must exist in the file except the last (an optional key may be added).
A few common changes have shortcuts (:data:`SHORTCUTS`), for homogeneous specs:

``cores: N``
    ``chip.cores`` and a near-square mesh (``mesh_x >= mesh_y``, ``mesh_x * mesh_y = N``).
``pe_array: "XxY"``
    the PE array: ``PE[0..X*Y-1]`` with ``meshX: X`` on its scratchpad and MAC unit.
``glb_kib: K``
    the global buffer's capacity in KiB (``memory_depth`` from its ``memory_width``).
``spad_words: W``
    the per-PE scratchpad's capacity in words.
``noc_link_bytes_per_cycle: B``, ``dram_GBps: G``
    ``chip.noc.link_bandwidth_bytes_per_cycle`` and ``chip.dram.bandwidth_GBps``.

The modified spec is checked with the spec schema
(:func:`owin_cosim.accel.spec.parse_chip_spec`) before anything runs.

Examples
--------
>>> near_square(16), near_square(8), near_square(7)
((4, 4), (4, 2), (7, 1))
>>> doc = {"chip": {"cores": 4, "noc": {"mesh_x": 2, "mesh_y": 2}}}
>>> apply_spec_fields(doc, {"cores": 8}, "s.yaml", "grid.")["chip"]
{'cores': 8, 'noc': {'mesh_x': 4, 'mesh_y': 2}}
>>> apply_spec_fields(doc, {"chip.noc.mesh_z": 1}, "s.yaml", "grid.")["chip"]["noc"]
{'mesh_x': 2, 'mesh_y': 2, 'mesh_z': 1}
>>> apply_spec_fields(doc, {"chip.nic.x": 1}, "s.yaml", "grid.")
Traceback (most recent call last):
...
owin_cosim.errors.ConfigError: s.yaml: grid.accelerator.spec_fields.chip.nic.x: no key 'nic' ...
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from owin_cosim.errors import ConfigError

__all__ = ["PREFIX", "SHORTCUTS", "apply_spec_fields", "near_square"]

#: The key-path prefix of a spec-field axis.
PREFIX = "accelerator.spec_fields."
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_PE_ARRAY = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def near_square(n: int) -> tuple[int, int]:
    """``(mesh_x, mesh_y)`` with ``mesh_x * mesh_y == n`` and ``mesh_x >= mesh_y`` closest."""
    y = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    return n // y, y


def _set(doc: Any, path: str, value: Any) -> None:
    """Set ``path`` inside ``doc``; every step but the last must exist."""
    parts = [int(i) if i else name for name, i in _PART.findall(path)]
    node = doc
    for n, part in enumerate(parts):
        last = n == len(parts) - 1
        if isinstance(node, list):
            if isinstance(part, str):  # a list item by its name
                named = [
                    i for i, x in enumerate(node) if isinstance(x, dict) and x.get("name") == part
                ]
                if not named:
                    raise ValueError(f"no item named {part!r} in this list")
                part = named[0]
            if not 0 <= part < len(node):
                raise ValueError(f"index {part} out of range (0..{len(node) - 1})")
        elif isinstance(node, dict):
            if isinstance(part, int):
                raise ValueError(f"[{part}]: expected a key, not an index")
            if part not in node and not last:
                raise ValueError(f"no key {part!r} here; expected one of: {', '.join(node)}")
        else:
            raise ValueError(f"{part!r}: expected a mapping or list along the path")
        if last:
            node[part] = value
        else:
            node = node[part]


def _tree(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The core node and the PE node of a homogeneous spec (system -> core -> PE)."""
    if "architecture" not in doc:
        raise ValueError(
            "this shortcut needs a homogeneous spec (architecture); for core_types give a "
            "dotted path such as core_types[0].architecture..."
        )
    try:
        core = doc["architecture"]["subtree"][0]["subtree"][0]
        return core, core["subtree"][0]
    except (KeyError, IndexError, TypeError):
        raise ValueError("expected architecture.subtree[0] (system) -> core -> PE") from None


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected an integer >= 1, got {value!r}")
    return value


def _cores(doc: dict[str, Any], value: Any) -> None:
    n = _positive_int(value)
    doc["chip"]["cores"] = n
    doc["chip"]["noc"]["mesh_x"], doc["chip"]["noc"]["mesh_y"] = near_square(n)


def _pe_array(doc: dict[str, Any], value: Any) -> None:
    m = _PE_ARRAY.match(value) if isinstance(value, str) else None
    if m is None or int(m[1]) < 1 or int(m[2]) < 1:
        raise ValueError(f'expected "XxY" such as "16x16", got {value!r}')
    x, y = int(m[1]), int(m[2])
    _, pe = _tree(doc)
    base = str(pe["name"]).split("[", 1)[0]
    pe["name"] = f"{base}[0..{x * y - 1}]"
    for comp in pe.get("local", []):
        comp.setdefault("attributes", {})["meshX"] = x


def _words_to_depth(attrs: dict[str, Any], words: float, what: str) -> int:
    width, word_bits = attrs.get("memory_width"), attrs.get("word-bits")
    if not isinstance(width, int) or not isinstance(word_bits, int):
        raise ValueError(f"the {what} has no integer memory_width and word-bits")
    depth = words * word_bits / width
    if depth < 1 or depth != int(depth):
        raise ValueError(f"{words:g} words is not a whole number of {width}-bit rows")
    return int(depth)


def _glb_kib(doc: dict[str, Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"expected a size in KiB > 0, got {value!r}")
    core, _ = _tree(doc)
    attrs = core["local"][0]["attributes"]
    attrs["memory_depth"] = _words_to_depth(
        attrs, value * 1024 * 8 / attrs.get("word-bits", 16), "global buffer"
    )


def _spad_words(doc: dict[str, Any], value: Any) -> None:
    _, pe = _tree(doc)
    attrs = pe["local"][0]["attributes"]
    attrs["memory_depth"] = _words_to_depth(attrs, _positive_int(value), "PE scratchpad")


def _field(path: str) -> Callable[[dict[str, Any], Any], None]:
    return lambda doc, value: _set(doc, path, value)


#: Shortcut name -> how it changes a spec document (see the module docstring).
SHORTCUTS: dict[str, Callable[[dict[str, Any], Any], None]] = {
    "cores": _cores,
    "pe_array": _pe_array,
    "glb_kib": _glb_kib,
    "spad_words": _spad_words,
    "noc_link_bytes_per_cycle": _field("chip.noc.link_bandwidth_bytes_per_cycle"),
    "dram_GBps": _field("chip.dram.bandwidth_GBps"),
}


def apply_spec_fields(
    doc: Mapping[str, Any], fields: Mapping[str, Any], file: str | Path, where: str
) -> dict[str, Any]:
    """A copy of the spec document ``doc`` with ``fields`` (path or shortcut -> value) set.

    ``file`` and ``where`` (the sweep file and the axis's section, ``"grid."``) name
    the axis in errors.

    Raises
    ------
    ConfigError
        Naming the sweep file and ``<where>accelerator.spec_fields.<path>``.
    """
    out = copy.deepcopy(dict(doc))
    for path, value in fields.items():
        try:
            if path in SHORTCUTS:
                SHORTCUTS[path](out, value)
            else:
                _set(out, path, value)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            msg = str(exc) if isinstance(exc, ValueError) else f"no such field ({exc!r})"
            raise ConfigError(file, f"{where}{PREFIX}{path}", msg) from None
    return out
