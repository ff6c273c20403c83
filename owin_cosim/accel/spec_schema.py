"""The schema of an accelerator spec file: strict pydantic models (no unknown keys) and the
translation of their validation errors into one :class:`~owin_cosim.errors.ConfigError`
with the dotted key path.

The models keep their leading underscore: pydantic quotes the class name in some error
messages ("expected a valid dictionary or instance of _NocBlock"), which users see.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from owin_cosim.errors import ConfigError
from owin_cosim.yaml_input import clip

__all__ = [
    "BUFFER_CLASSES",
    "COMPUTE_CLASSES",
    "DRAM_CLASSES",
    "PE_RANGE",
    "to_config_error",
    "validate_attributes",
]

#: Component classes accepted for the off-chip memory (``system`` level).
DRAM_CLASSES = frozenset({"DRAM"})
#: Component classes accepted for the global buffer and the per-PE scratchpad.
BUFFER_CLASSES = frozenset({"SRAM", "smartbuffer_SRAM", "regfile", "smartbuffer_RF"})
#: Component classes accepted for the PE's compute unit.
COMPUTE_CLASSES = frozenset({"intmac", "fpmac"})
#: An instance range ``NAME[lo..hi]`` such as ``PE[0..255]``.
PE_RANGE = re.compile(r"^(?P<base>[A-Za-z_][\w-]*)\[(?P<lo>\d+)\.\.(?P<hi>\d+)\]$")


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


class _NocBlock(_Strict):
    topology: Literal["mesh2d"] = "mesh2d"
    mesh_x: int = Field(ge=1)
    mesh_y: int = Field(ge=1)
    link_bandwidth_bytes_per_cycle: float = Field(gt=0)
    hop_latency_cycles: float = Field(ge=0)
    energy_pJ_per_byte_hop: float = Field(ge=0)


class _DramBlock(_Strict):
    bandwidth_GBps: float = Field(gt=0)
    energy_pJ_per_byte: float | None = Field(default=None, ge=0)


class _ChipBlock(_Strict):
    name: str = Field(min_length=1)
    cores: int = Field(ge=1)
    clock_hz: float = Field(gt=0)
    word_bits: Literal[8, 16]
    noc: _NocBlock
    dram: _DramBlock


class _NodeAttributes(_Strict):
    technology: str | None = None


class _Component(_Strict):
    name: str = Field(min_length=1)
    class_: str = Field(alias="class", min_length=1)
    attributes: dict[str, Any] = Field(default_factory=dict)


class _Node(_Strict):
    name: str = Field(min_length=1)
    attributes: _NodeAttributes = Field(default_factory=_NodeAttributes)
    local: list[_Component] = Field(default_factory=list)
    subtree: list[_Node] = Field(default_factory=list)


class _Architecture(_Strict):
    version: float | str
    subtree: list[_Node]


class _EnergyEntry(_Strict):
    read: float | None = Field(default=None, ge=0)
    write: float | None = Field(default=None, ge=0)
    mac: float | None = Field(default=None, ge=0)


class _SpecFile(_Strict):
    """A homogeneous spec: every core is a copy of ``architecture``."""

    description: str = ""
    chip: _ChipBlock
    architecture: _Architecture
    energy_pJ: dict[str, _EnergyEntry]


class _CoreTypeBlock(_Strict):
    """One core type of a heterogeneous spec (``name`` and ``runs`` are checked in
    :mod:`owin_cosim.accel.spec`, for messages that name the allowed values)."""

    name: str
    count: int = Field(ge=1)
    runs: list[str] | None = None
    architecture: _Architecture
    energy_pJ: dict[str, _EnergyEntry]


class _HeteroSpecFile(_Strict):
    """A heterogeneous spec: ``core_types`` instead of ``architecture``."""

    description: str = ""
    chip: _ChipBlock
    core_types: list[_CoreTypeBlock]


class _DramAttrs(_Strict):
    type: str = "DRAM"
    technology: str | None = None
    width: int = Field(gt=0)
    word_bits: int = Field(alias="word-bits", gt=0)
    block_size: int | None = Field(default=None, alias="block-size", gt=0)


class _BufferAttrs(_Strict):
    technology: str | None = None
    memory_depth: int = Field(gt=0)
    memory_width: int = Field(gt=0)
    word_bits: int = Field(alias="word-bits", gt=0)
    block_size: int | None = Field(default=None, alias="block-size", gt=0)
    read_bandwidth: float | None = Field(default=None, gt=0)
    write_bandwidth: float | None = Field(default=None, gt=0)
    n_banks: int = Field(default=1, gt=0)
    n_rdwr_ports: int | None = Field(default=None, gt=0)
    meshX: int | None = Field(default=None, gt=0)


class _MacAttrs(_Strict):
    technology: str | None = None
    datawidth: int = Field(gt=0)
    meshX: int | None = Field(default=None, gt=0)


# ---- error reporting -----------------------------------------------------------------
_UNION_MEMBERS = ("float", "str", "int")


def _join(prefix: str, loc: tuple[int | str, ...]) -> str:
    out = prefix
    for part in loc:
        if part in _UNION_MEMBERS:  # pydantic names the member of a union: not a key
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


def to_config_error(err: ValidationError, path: Path | None, prefix: str = "") -> ConfigError:
    """The first error of a pydantic ValidationError as a ConfigError with its key path."""
    errors = err.errors()
    first = errors[0]
    key = _join(prefix, tuple(first["loc"]))
    kind = first["type"]
    value = first.get("input")
    if kind == "missing":
        message = "missing required key"
    elif kind == "extra_forbidden":
        message = "unknown key"
    else:
        text = str(first["msg"]).removeprefix("Input should be ")
        if text.startswith(("greater", "less")):
            text = "a value " + text
        message = f"expected {text}, got {clip(value)}"
        if isinstance(value, str):
            try:
                float(value)
            except ValueError:
                pass
            else:
                message += (
                    " (a quoted or unsigned-exponent number such as 1.0e9 is text "
                    "in YAML: write 1.0e+9)"
                )
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more error(s))"
    return ConfigError(path, key, message)


def validate_attributes(
    model: type[_Strict], attrs: Mapping[str, Any], path: Path | None, key: str
) -> Any:
    """``attrs`` (a component's ``attributes``) validated by ``model``, or a ConfigError
    under ``<key>.attributes``."""
    try:
        return model.model_validate(dict(attrs))
    except ValidationError as e:
        raise to_config_error(e, path, f"{key}.attributes") from None
