"""ONNX models as layers with Timeloop dimensions, through ONNX shape inference.

:func:`read_onnx` turns an ONNX ``ModelProto`` (or its serialized bytes) into an
:class:`OnnxNet`: one :class:`~owin_cosim.workload.graph.Layer` per computing node, the
edges between them, which layers read which graph inputs, and what each graph output
comes from. :func:`add_onnx` adds such a net to a
:class:`~owin_cosim.workload.graph.ModelGraph`, each graph input fed by a device's
data or by layers already in the graph (an encoder's output feeding a fusion block).
Reading files is the scenario's job (:mod:`owin_cosim.scenario.model_file`).

How nodes become layers (every shape is the inferred one; dimensions must be static):

=====================================  ================================================
``Conv`` (1-D, 2-D)                    ``conv``: ``R, S`` the kernel, ``P, Q, M, N`` the
                                       output, strides and dilations; ``group == C ==
                                       M``: ``depthwise``; other groups ``G``: **one**
                                       ``conv`` layer with ``C/G`` inputs, ``M/G``
                                       outputs and ``N x G`` independent problems
                                       (``weights_from_activation``: each group has its
                                       own weights), so MACs, inputs, outputs and weights
                                       are all exact (weights ``x N`` with a batch)
``Gemm``, ``MatMul``                   ``matmul``; a constant (stored) second operand is
                                       a weight shared by the batch (rows ``P`` =
                                       batch x rows); an activation x activation product
                                       (``Q K^T``, ``A V``) is ``N`` = batch independent
                                       products with ``weights_from_activation``; a
                                       constant *first* operand is transposed into place
``MaxPool``, ``AveragePool``,          ``pool`` with the kernel window; global pools
``LpPool``, ``Global*Pool``            take the whole map (``R x S = H x W``)
``Reduce*``                            ``pool`` over the reduced elements
elementwise, activations,              ``eltwise`` over the output; ``operands`` = the
normalizations, ``Softmax``            non-constant inputs (constants such as a bias or
                                       the scale of a normalization are not operands)
shape-only ops (:data:`SHAPE_OPS`)     no layer; the edges pass through them
=====================================  ================================================

Output tensors map to dimensions by rank: ``N, C, P, Q`` for 4-D (NCHW), ``N, P, C``
for 3-D (batch, tokens, features), ``P, C`` for 2-D. Convolution and ``Gemm`` biases
are not modelled (as the zoo folds batch norm into its convolutions). A node whose
inputs are all constants is folded (no layer). Any other op is unsupported: all of them
are reported in one error, or priced as ``eltwise`` over their output with
``unsupported="eltwise"``.

A layer is ``streamable`` (row-sliceable per payload chunk) when it is a spatial layer
(``conv``, ``depthwise``, a windowed ``pool``, 4-D ``eltwise``) fed only by streamable
layers or one graph input, with at least a quarter of that input's rows: the zoo's
ResNet-18 rule (stem and ``layer1`` of a 224-row image).

Examples
--------
>>> from onnx import TensorProto, helper
>>> x = helper.make_tensor_value_info("camera", TensorProto.FLOAT, [1, 3, 32, 32])
>>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
>>> w = helper.make_tensor("w", TensorProto.FLOAT, [8, 3, 3, 3], [0.0] * 216)
>>> nodes = [helper.make_node("Conv", ["camera", "w"], ["c"], name="conv", pads=[1] * 4),
...          helper.make_node("Relu", ["c"], ["y"], name="relu")]
>>> net = read_onnx(helper.make_model(helper.make_graph(nodes, "g", [x], [y], [w])))
>>> [(layer.name, str(layer.op), layer.macs) for layer in net.layers]
[('conv', 'conv', 221184), ('relu', 'eltwise', 8192)]
>>> net.preds["relu"], net.reads["conv"], net.outputs["y"].layers
(('conv',), ('camera',), ('relu',))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import onnx
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from onnx import helper, shape_inference

from owin_cosim.workload.graph import DataNeed, Layer, ModelGraph, OpKind
from owin_cosim.workload.onnx_ops import LAYER_OPS, SHAPE_OPS, NodeShapes, eltwise_layer

__all__ = [
    "SHAPE_OPS",
    "OnnxImportError",
    "OnnxInput",
    "OnnxNet",
    "OnnxOutput",
    "add_onnx",
    "read_onnx",
]

#: What to do with an op that has no layer kind: list it in an error, or price it as
#: elementwise over its output.
Unsupported = Literal["error", "eltwise"]
#: Ops whose outputs are known once shapes are static (no data flows through them).
_SHAPE_ONLY_CONSTANT = frozenset({"Shape", "Size", "Constant", "ConstantOfShape"})
#: Shape-only ops that keep a feature map row for row (streaming passes through them).
_ROW_PRESERVING = frozenset({"Identity", "Dropout", "Cast", "CastLike"})
#: Fewest output rows, as a fraction of the device input's rows, of a streamable layer.
_STREAM_FRACTION = 4


class OnnxImportError(ValueError):
    """An ONNX model owin-cosim cannot turn into layers (the message says why)."""


@dataclass(frozen=True, slots=True)
class OnnxInput:
    """A graph input: its static shape and the bytes of one element."""

    shape: tuple[int, ...]
    element_bytes: int

    @property
    def nbytes(self) -> int:
        """Bytes of the whole tensor."""
        return math.prod(self.shape) * self.element_bytes


@dataclass(frozen=True, slots=True)
class OnnxOutput:
    """A graph output: the layers and graph inputs it comes from, and its elements."""

    layers: tuple[str, ...]
    inputs: tuple[str, ...]
    elements: int


@dataclass(frozen=True)
class OnnxNet:
    """The layers of one ONNX graph, before they join a :class:`ModelGraph`."""

    name: str
    #: One layer per computing node, in node order (names: node names, made unique).
    layers: tuple[Layer, ...]
    #: Layer -> the layers it reads (through shape-only ops).
    preds: Mapping[str, tuple[str, ...]]
    #: Layer -> the graph inputs it reads directly (through shape-only ops).
    reads: Mapping[str, tuple[str, ...]]
    #: Graph inputs (initializers excluded), in graph order.
    inputs: Mapping[str, OnnxInput]
    #: Graph outputs, in graph order.
    outputs: Mapping[str, OnnxOutput]
    #: Streamable layer -> the graph input whose rows it follows.
    stream_from: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Walk:
    """What the walk over the nodes knows about every tensor."""

    shapes: dict[str, tuple[int, ...] | None]
    constant: set[str]
    #: Tensor -> (layers, graph inputs) it comes from.
    sources: dict[str, tuple[frozenset[str], frozenset[str]]] = field(default_factory=dict)
    #: Tensor -> the graph input whose rows it follows (row-streamable feature maps).
    rows_of: dict[str, str] = field(default_factory=dict)
    layers: list[Layer] = field(default_factory=list)
    preds: dict[str, tuple[str, ...]] = field(default_factory=dict)
    reads: dict[str, tuple[str, ...]] = field(default_factory=dict)
    stream_from: dict[str, str] = field(default_factory=dict)


def _static(dims: Sequence[onnx.TensorShapeProto.Dimension]) -> tuple[int, ...] | None:
    out = []
    for d in dims:
        if not d.HasField("dim_value") or d.dim_value < 1:
            return None
        out.append(int(d.dim_value))
    return tuple(out)


def _shape_of(value: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    t = value.type.tensor_type
    return _static(t.shape.dim) if t.HasField("shape") else None


def _element_bytes(elem_type: int) -> int:
    try:
        return max(int(helper.tensor_dtype_to_np_dtype(elem_type).itemsize), 1)
    except (KeyError, TypeError, ValueError):  # strings, undefined: count one byte
        return 1


def _parse(model: onnx.ModelProto | bytes) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    try:
        return onnx.load_model_from_string(bytes(model))
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise OnnxImportError(f"not an ONNX model (protobuf: {exc})") from None


def _infer(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return shape_inference.infer_shapes(model, check_type=False, data_prop=True)
    except (shape_inference.InferenceError, onnx.checker.ValidationError, RuntimeError) as exc:
        raise OnnxImportError(f"ONNX shape inference failed: {str(exc)[:500]}") from None


def _unsupported(graph: onnx.GraphProto) -> dict[str, str]:
    """Op type -> the name of its first node, for every op without a layer kind."""
    found: dict[str, str] = {}
    for i, node in enumerate(graph.node):
        op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
        if op not in LAYER_OPS and op not in SHAPE_OPS:
            found.setdefault(op, node.name or f"#{i}")
    return found


def _unique_name(node: onnx.NodeProto, index: int, taken: set[str]) -> str:
    name = node.name or f"{node.op_type}_{index}"
    if name in taken:
        name = f"{name}_{index}"
    taken.add(name)
    return name


def read_onnx(model: onnx.ModelProto | bytes, *, unsupported: Unsupported = "error") -> OnnxNet:
    """The layers of an ONNX model (shapes inferred with ``onnx.shape_inference``).

    Parameters
    ----------
    model : onnx.ModelProto or bytes
        The model, or its serialized bytes (external tensor data is never read: only
        shapes matter).
    unsupported : {"error", "eltwise"}
        Ops without a layer kind: one :class:`OnnxImportError` listing every such op
        type (with a node of each), or price each as ``eltwise`` over its output.

    Returns
    -------
    OnnxNet

    Raises
    ------
    OnnxImportError
        Not an ONNX model, failed shape inference, unsupported ops, symbolic or unknown
        shapes, nodes out of topological order, no graph input or output.
    """
    parsed = _infer(_parse(model))
    g = parsed.graph
    missing = _unsupported(g)
    if missing and unsupported == "error":
        listed = ", ".join(f"{op} (node {name!r})" for op, name in sorted(missing.items()))
        raise OnnxImportError(
            f"{len(missing)} unsupported ONNX op type(s): {listed}; expected convolutions, "
            "Gemm/MatMul, pooling, elementwise, normalization or shape-only ops (or "
            "model.onnx_unsupported: eltwise to price these as elementwise)"
        )
    inits = {t.name: tuple(int(d) for d in t.dims) for t in g.initializer}
    walk = _Walk(shapes={}, constant=set(inits))
    walk.shapes.update({k: v if all(d >= 1 for d in v) else None for k, v in inits.items()})
    for value in [*g.value_info, *g.output]:
        walk.shapes.setdefault(value.name, _shape_of(value))
    inputs = _graph_inputs(g, set(inits), walk)
    if not inputs:
        raise OnnxImportError("the graph has no inputs (besides initializers)")
    taken: set[str] = set()
    for i, node in enumerate(g.node):
        _visit(walk, node, _unique_name(node, i, taken))
    outputs = _graph_outputs(g, walk)
    return OnnxNet(
        g.name or "onnx",
        tuple(walk.layers),
        walk.preds,
        walk.reads,
        inputs,
        outputs,
        walk.stream_from,
    )


def _graph_inputs(g: onnx.GraphProto, inits: set[str], walk: _Walk) -> dict[str, OnnxInput]:
    inputs: dict[str, OnnxInput] = {}
    for value in g.input:
        if value.name in inits:  # an initializer listed as an input (old IR): a constant
            continue
        shape = _shape_of(value)
        if shape is None:
            raise OnnxImportError(
                f"graph input {value.name!r} has a symbolic or unknown shape "
                f"({_dims_text(value)}); expected static dimensions (fix them, e.g. with "
                "onnx.tools.update_model_dims)"
            )
        inputs[value.name] = OnnxInput(shape, _element_bytes(value.type.tensor_type.elem_type))
        walk.shapes[value.name] = shape
        walk.sources[value.name] = (frozenset(), frozenset({value.name}))
        if len(shape) == 4:
            walk.rows_of[value.name] = value.name
    return inputs


def _dims_text(value: onnx.ValueInfoProto) -> str:
    dims = value.type.tensor_type.shape.dim
    return "[" + ", ".join(d.dim_param or str(d.dim_value or "?") for d in dims) + "]"


def _graph_outputs(g: onnx.GraphProto, walk: _Walk) -> dict[str, OnnxOutput]:
    outputs: dict[str, OnnxOutput] = {}
    for value in g.output:
        if value.name not in walk.sources:
            raise OnnxImportError(
                f"graph output {value.name!r} is a constant or produced by no node; "
                "expected an output computed from the graph inputs"
            )
        layers, ins = walk.sources[value.name]
        shape = walk.shapes.get(value.name)
        elements = math.prod(shape) if shape else 1
        outputs[value.name] = OnnxOutput(tuple(sorted(layers)), tuple(sorted(ins)), elements)
    if not outputs:
        raise OnnxImportError("the graph has no outputs")
    return outputs


def _visit(walk: _Walk, node: onnx.NodeProto, name: str) -> None:
    """Add what ``node`` means to ``walk``: a constant, an edge pass-through or a layer."""
    ins = [t for t in node.input if t]
    for t in ins:
        if t not in walk.constant and t not in walk.sources:
            raise OnnxImportError(
                f"node {name!r} ({node.op_type}) reads tensor {t!r} that no graph input, "
                "initializer or earlier node provides; expected nodes in topological order"
            )
    outs = [t for t in node.output if t]
    if node.op_type in _SHAPE_ONLY_CONSTANT or all(t in walk.constant for t in ins):
        walk.constant.update(outs)  # folded: known without running the model
        return
    live = [t for t in ins if t not in walk.constant]
    layers = frozenset().union(*(walk.sources[t][0] for t in live))
    graph_ins = frozenset().union(*(walk.sources[t][1] for t in live))
    if node.op_type in SHAPE_OPS and node.domain in ("", "ai.onnx"):
        for t in outs:
            walk.sources[t] = (layers, graph_ins)
            if node.op_type in _ROW_PRESERVING and live[0] in walk.rows_of:
                walk.rows_of[t] = walk.rows_of[live[0]]
        return
    shapes = NodeShapes(node, name, walk.shapes, walk.constant)
    build = LAYER_OPS.get(node.op_type if node.domain in ("", "ai.onnx") else "")
    try:
        layer = build(shapes) if build is not None else eltwise_layer(shapes)
    except ValueError as exc:  # unknown shapes, bad attributes, dimensions < 1
        raise OnnxImportError(str(exc)) from None
    walk.preds[name] = tuple(sorted(layers))
    if graph_ins:
        walk.reads[name] = tuple(sorted(graph_ins))
    origin = _stream_origin(walk, layer, live)
    if origin is not None:
        walk.stream_from[name] = origin
        walk.rows_of.update({t: origin for t in outs})
    walk.layers.append(layer)
    for t in outs:
        walk.sources[t] = (frozenset({name}), frozenset())


def _stream_origin(walk: _Walk, layer: Layer, live: list[str]) -> str | None:
    """The graph input whose rows ``layer`` follows, if it may be sliced per chunk."""
    spatial = layer.op in (OpKind.CONV, OpKind.DEPTHWISE, OpKind.POOL, OpKind.ELTWISE)
    origins = {walk.rows_of.get(t) for t in live}
    if not spatial or len(origins) != 1 or None in origins or layer.Q == 1:
        return None
    origin = origins.pop()
    assert origin is not None
    rows = walk.shapes[origin]
    assert rows is not None
    return origin if rows[2] <= layer.P * _STREAM_FRACTION else None


def add_onnx(
    graph: ModelGraph,
    net: OnnxNet,
    *,
    prefix: str = "",
    group: str = "",
    devices: Mapping[str, str] | None = None,
    after: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, tuple[str, ...]]:
    """Add the layers of ``net`` to ``graph``; return each graph output's layers.

    Parameters
    ----------
    graph : ModelGraph
        The graph to add to.
    net : OnnxNet
        From :func:`read_onnx`.
    prefix : str
        Layer names become ``<prefix>/<node name>`` (none: the node names).
    group : str
        The layers' group (``encoder:DEVICE``, ``fusion``, ``head``; empty: none).
    devices : mapping
        Graph input -> the device whose data feeds it.
    after : mapping
        Graph input -> the layers of ``graph`` that feed it.

    Raises
    ------
    OnnxImportError
        A graph input fed by neither or both, or a layer reading two devices directly.
    """
    devices, after = dict(devices or {}), dict(after or {})
    unfed = [n for n in net.inputs if (n in devices) == (n in after)]
    if unfed:
        raise OnnxImportError(f"graph inputs {unfed} need exactly one feed (a device or layers)")
    full: Callable[[str], str] = (lambda n: f"{prefix}/{n}") if prefix else (lambda n: n)
    for layer in net.layers:
        reads = net.reads.get(layer.name, ())
        read_devices = sorted({devices[r] for r in reads if r in devices})
        if len(read_devices) > 1:
            raise OnnxImportError(
                f"layer {layer.name!r} reads the data of several devices directly "
                f"({', '.join(read_devices)}); expected one device per input layer"
            )
        stream = devices.get(net.stream_from.get(layer.name, "")) is not None
        new = replace(layer, name=full(layer.name), group=group or layer.group, streamable=stream)
        preds = [full(p) for p in net.preds[layer.name]]
        preds += [p for r in reads for p in after.get(r, ())]
        graph.add_layer(new, after=dict.fromkeys(preds))
        if read_devices:
            graph.data_needs[new.name] = DataNeed(read_devices[0])
    return {
        name: tuple(full(n) for n in out.layers)
        + tuple(p for r in out.inputs for p in after.get(r, ()))
        for name, out in net.outputs.items()
    }
