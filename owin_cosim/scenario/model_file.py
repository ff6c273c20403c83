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
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Literal

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from owin_cosim.errors import ConfigError
from owin_cosim.scenario.schema import load_yaml, validation_to_config_error
from owin_cosim.workload.graph import DataNeed, Layer, ModelGraph, OpKind

__all__ = ["LayerEntry", "ModelFile", "load_model_file"]


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
