"""Model files: a DNN written as a YAML list of layers with Timeloop dimensions.

.. code-block:: yaml

    name: tiny
    layers:
      - name: cam/conv1
        op: conv                  # conv | matmul | depthwise | pool | eltwise
        dims: {R: 3, S: 3, P: 32, Q: 32, C: 3, M: 16, Hstride: 1, Wstride: 1}
        device: cam               # an input layer: reads this device's payload
        streamable: true          # may start on partial data (per-chunk row slices)
      - name: head/fc
        op: matmul
        dims: {P: 1, C: 16, M: 10}
        inputs: [cam/conv1]       # predecessor layers

Missing dimensions default to 1. A layer without ``group`` gets ``encoder:DEVICE`` when
all its data comes from one device, else ``fusion``.

A file ending in ``.onnx`` is an ONNX model instead (:func:`load_onnx_model`; the layers
come from :mod:`owin_cosim.workload.onnx_import`): its graph inputs are named after the
devices, and each device's payload defaults to the size of its graph input.
:func:`read_onnx_file` reads one with the bounds of the other input files (a regular
file, at most :data:`MAX_ONNX_BYTES`, never blocking; external tensor data is not read).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from owin_cosim.errors import ConfigError
from owin_cosim.scenario.schema import load_yaml, validation_to_config_error
from owin_cosim.workload.graph import DataNeed, Layer, ModelGraph, OpKind

if TYPE_CHECKING:
    from owin_cosim.workload.onnx_import import OnnxNet

__all__ = [
    "MAX_ONNX_BYTES",
    "LayerEntry",
    "ModelFile",
    "check_inputs_are_devices",
    "load_model_file",
    "load_onnx_model",
    "read_onnx_file",
]

#: Largest ONNX file read (weights included: ResNet-50 in float32 is about 100 MB).
MAX_ONNX_BYTES = 1024**3


class _Dims(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    R: int = Field(1, ge=1)
    S: int = Field(1, ge=1)
    P: int = Field(1, ge=1)
    Q: int = Field(1, ge=1)
    C: int = Field(1, ge=1)
    M: int = Field(1, ge=1)
    N: int = Field(1, ge=1)
    Hstride: int = Field(1, ge=1)
    Wstride: int = Field(1, ge=1)
    Hdilation: int = Field(1, ge=1)
    Wdilation: int = Field(1, ge=1)


class LayerEntry(BaseModel):
    """One layer of a model file."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1)
    op: Literal["conv", "matmul", "depthwise", "pool", "eltwise"]
    dims: _Dims = Field(default_factory=_Dims)
    inputs: list[str] = Field(default_factory=list)
    device: str | None = None
    streamable: bool = False
    operands: int = Field(1, ge=1)
    weights_from_activation: bool = False
    group: str = ""


class ModelFile(BaseModel):
    """A whole model file."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = "model"
    layers: list[LayerEntry] = Field(min_length=1)


def load_model_file(path: str | Path) -> ModelGraph:
    """Read a model file into a :class:`ModelGraph`, checking names, edges and cycles."""
    try:
        spec = ModelFile.model_validate(load_yaml(path))
    except ValidationError as exc:
        raise validation_to_config_error(exc, path, ModelFile) from None
    names: dict[str, int] = {}
    for i, entry in enumerate(spec.layers):
        if entry.name in names:
            raise ConfigError(
                path,
                f"layers[{i}].name",
                f"duplicate layer name {entry.name!r} (first at layers[{names[entry.name]}])",
            )
        names[entry.name] = i
    graph = ModelGraph(spec.name)
    for i, entry in enumerate(spec.layers):
        if not entry.inputs and entry.device is None:
            raise ConfigError(
                path,
                f"layers[{i}]",
                f"layer {entry.name!r} has neither 'inputs' nor 'device': it would never get data",
            )
        for j, pred in enumerate(entry.inputs):
            if pred not in names:
                raise ConfigError(
                    path,
                    f"layers[{i}].inputs[{j}]",
                    f"unknown layer {pred!r}; expected a layer name of this file",
                )
        layer = Layer(
            entry.name,
            OpKind(entry.op),
            **entry.dims.model_dump(),
            operands=entry.operands,
            weights_from_activation=entry.weights_from_activation,
            streamable=entry.streamable,
            group=entry.group,
        )
        graph.graph.add_node(entry.name, layer=layer)
        if entry.device is not None:
            graph.data_needs[entry.name] = DataNeed(entry.device)
    for entry in spec.layers:
        for pred in entry.inputs:
            graph.graph.add_edge(pred, entry.name)
    cycle = graph.find_cycle()
    if cycle is not None:
        raise ConfigError(
            path,
            "layers",
            "the layers form a cycle: "
            + " -> ".join(cycle)
            + "; expected a directed acyclic graph",
        )
    _assign_groups(graph)
    return graph


def _assign_groups(graph: ModelGraph) -> None:
    """Give every layer without a group ``encoder:DEVICE`` or ``fusion``."""
    sources: dict[str, set[str]] = {}
    for name in nx.topological_sort(graph.graph):
        devs: set[str] = set()
        need = graph.data_needs.get(name)
        if need is not None:
            devs.add(need.device)
        for pred in graph.graph.predecessors(name):
            devs |= sources[pred]
        sources[name] = devs
        layer = graph.layer(name)
        if not layer.group:
            group = f"encoder:{next(iter(devs))}" if len(devs) == 1 else "fusion"
            graph.graph.nodes[name]["layer"] = replace(layer, group=group)


def _read_bytes(p: Path, limit: int) -> bytes:
    """The bytes of ``p``: a regular file of at most ``limit`` bytes, read without
    blocking (the rules of :func:`owin_cosim.yaml_input.read_text`)."""
    try:
        st = os.stat(p)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(p, "", "cannot read the ONNX model: not a regular file")
        if st.st_size > limit:
            raise ConfigError(
                p, "", f"the ONNX model has {st.st_size} bytes; expected at most {limit}"
            )
        # O_NONBLOCK: a file swapped for a FIFO after the stat above still cannot block.
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            raw = f.read(limit + 1)
    except FileNotFoundError:
        raise ConfigError(p, "", "ONNX model file not found") from None
    except OSError as exc:
        raise ConfigError(p, "", f"cannot read the ONNX model: {exc.strerror or exc}") from None
    if len(raw) > limit:
        raise ConfigError(p, "", f"the ONNX model grew past {limit} bytes while read")
    return raw


def read_onnx_file(path: Path, scenario: Path, key: str, unsupported: str = "error") -> OnnxNet:
    """The layers of the ONNX file ``path``, named in errors as ``scenario: key``.

    Raises
    ------
    ConfigError
        Not readable (naming ``path``), or not an ONNX model owin-cosim can import
        (naming ``scenario``, ``key`` and ``path``: e.g. every unsupported op type).
    """
    # Imported here: `import onnx` takes about a second, paid only by ONNX models.
    from owin_cosim.workload.onnx_import import OnnxImportError, read_onnx

    raw = _read_bytes(path, MAX_ONNX_BYTES)
    try:
        return read_onnx(raw, unsupported="eltwise" if unsupported == "eltwise" else "error")
    except OnnxImportError as exc:
        raise ConfigError(scenario, key, f"{path}: {exc}") from None


def check_inputs_are_devices(
    net: OnnxNet, devices: Iterable[str], scenario: Path, key: str, path: Path
) -> None:
    """Every graph input of ``net`` is named after a device (else a ConfigError)."""
    names = list(devices)
    unknown = [n for n in net.inputs if n not in names]
    if unknown:
        raise ConfigError(
            scenario,
            key,
            f"{path}: graph inputs {unknown} are not scenario devices; expected the graph "
            f"inputs ({', '.join(net.inputs)}) to be named after the devices "
            f"({', '.join(names)})",
        )


def load_onnx_model(
    path: Path, scenario: Path, devices: Iterable[str], unsupported: str = "error"
) -> tuple[ModelGraph, dict[str, int]]:
    """A whole model from ONNX: graph inputs named after devices (``model.file``).

    Returns the graph (groups ``encoder:DEVICE`` or ``fusion``, as a YAML model file's)
    and each device's natural payload in bytes (the size of its graph input).
    """
    from owin_cosim.workload.onnx_import import OnnxImportError, add_onnx

    net = read_onnx_file(path, scenario, "model.file", unsupported)
    check_inputs_are_devices(net, devices, scenario, "model.file", path)
    graph = ModelGraph(net.name)
    try:
        add_onnx(graph, net, devices={n: n for n in net.inputs})
    except (OnnxImportError, ValueError) as exc:
        raise ConfigError(scenario, "model.file", f"{path}: {exc}") from None
    _assign_groups(graph)
    return graph, {n: i.nbytes for n, i in net.inputs.items()}
