"""DNN workloads as DAGs of layers with Timeloop-style problem dimensions.

Every layer, whatever its kind, is described by the seven dimensions of Timeloop's
CNN-layer problem (``R, S, P, Q, C, M, N`` plus strides and dilations), so that the same
cost model and the same Timeloop problem writer serve convolutions, matrix products,
depthwise convolutions, pooling and elementwise layers:

=============  =====================================================================
``conv``       weights ``M x C x R x S``; outputs ``N x M x P x Q``.
``matmul``     ``P`` rows (tokens) x ``C`` inputs -> ``M`` outputs, ``Q = R = S = 1``;
               ``N`` is the batch of independent products (e.g. attention heads).
               ``weights_from_activation`` marks products whose second operand is an
               activation (``Q K^T``, ``A V``) rather than stored weights.
``depthwise``  one ``R x S`` filter per channel: ``M`` is 1, outputs ``N x C x P x Q``.
``pool``       like ``depthwise`` without weights (one compare or add per window tap).
``eltwise``    ``R = S = 1``, ``M = 1``; ``operands`` inputs combined elementwise.
=============  =====================================================================

A model is a :class:`ModelGraph`: layers joined by tensor edges; *input layers* consume
the payload of one device (one modality). :meth:`ModelGraph.expand_chunks` splits the
*streamable* prefix of each encoder into per-chunk slices along ``P`` (rows, time frames
or points), so that computation can start on partial data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

import networkx as nx

__all__ = [
    "Layer",
    "ModelGraph",
    "OpKind",
    "conv2d",
    "depthwise2d",
    "eltwise",
    "matmul",
    "pool2d",
]


class OpKind(StrEnum):
    """The kinds of layer, all expressed with Timeloop's CNN-layer dimensions."""

    CONV = "conv"
    MATMUL = "matmul"
    DEPTHWISE = "depthwise"
    POOL = "pool"
    ELTWISE = "eltwise"


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer as a Timeloop CNN-layer problem.

    Examples
    --------
    >>> layer = conv2d("c1", C=3, M=64, P=112, Q=112, R=7, S=7, stride=2)
    >>> layer.macs
    118013952
    >>> layer.input_hw
    (229, 229)
    """

    name: str
    op: OpKind
    R: int = 1
    S: int = 1
    P: int = 1
    Q: int = 1
    C: int = 1
    M: int = 1
    N: int = 1
    Hstride: int = 1
    Wstride: int = 1
    Hdilation: int = 1
    Wdilation: int = 1
    operands: int = 1
    weights_from_activation: bool = False
    #: May be split along ``P`` into independent per-chunk slices (no halo modelled).
    streamable: bool = False
    #: Which part of the model it belongs to, e.g. ``encoder:camera``, ``fusion``, ``head``.
    group: str = ""

    def __post_init__(self) -> None:
        for dim in (
            "R",
            "S",
            "P",
            "Q",
            "C",
            "M",
            "N",
            "Hstride",
            "Wstride",
            "Hdilation",
            "Wdilation",
            "operands",
        ):
            value = getattr(self, dim)
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"layer {self.name!r}: {dim} must be an integer >= 1, got {value!r}"
                )

    # ---- sizes -------------------------------------------------------------------
    @property
    def macs(self) -> int:
        """Multiply-accumulates (or compare/add operations for pool and eltwise)."""
        base = self.R * self.S * self.P * self.Q * self.C * self.N
        if self.op in (OpKind.CONV, OpKind.MATMUL):
            return base * self.M
        if self.op is OpKind.ELTWISE:
            return base * max(self.operands - 1, 1)
        return base

    @property
    def input_hw(self) -> tuple[int, int]:
        """Height and width of the input feature map implied by ``P, Q, R, S``."""
        h = (self.P - 1) * self.Hstride + (self.R - 1) * self.Hdilation + 1
        w = (self.Q - 1) * self.Wstride + (self.S - 1) * self.Wdilation + 1
        return h, w

    @property
    def input_elems(self) -> int:
        """Elements of the activation inputs (``operands`` of them for eltwise layers).

        The second operand of an activation product (``Q K^T``) is counted in
        :attr:`weight_elems`.
        """
        h, w = self.input_hw
        return self.N * self.C * h * w * self.operands

    @property
    def weight_elems(self) -> int:
        """Elements of the stored weights (0 for pool and eltwise)."""
        if self.op in (OpKind.POOL, OpKind.ELTWISE):
            return 0
        if self.op is OpKind.DEPTHWISE:
            return self.C * self.R * self.S
        per = self.C * self.M * self.R * self.S
        return per * self.N if self.weights_from_activation else per

    @property
    def output_elems(self) -> int:
        """Elements of the output tensor."""
        channels = self.M if self.op in (OpKind.CONV, OpKind.MATMUL) else self.C
        return self.N * channels * self.P * self.Q

    def problem_instance(self) -> dict[str, int]:
        """The layer's dimensions as one mapping: what identifies its cost (cache keys).

        Channel-wise layers (depthwise, pool, eltwise) report ``M = 1``. This is an
        identity, not the problem handed to a cost backend: that one is
        :func:`owin_cosim.accel.problem.cnn_layer_instance` (channels folded into ``N``).
        """
        return {
            "C": self.C,
            "M": self.M if self.op in (OpKind.CONV, OpKind.MATMUL) else 1,
            "R": self.R,
            "S": self.S,
            "N": self.N,
            "P": self.P,
            "Q": self.Q,
            "Hstride": self.Hstride,
            "Wstride": self.Wstride,
            "Hdilation": self.Hdilation,
            "Wdilation": self.Wdilation,
        }

    def slice_rows(self, index: int, parts: int) -> Layer:
        """The ``index``-th of ``parts`` near-equal slices of this layer along ``P``."""
        rows = self.P // parts + (1 if index < self.P % parts else 0)
        return replace(self, name=f"{self.name}#{index}", P=rows)


# ---- constructors -------------------------------------------------------------------
def conv2d(
    name: str,
    *,
    C: int,
    M: int,
    P: int,
    Q: int,
    R: int = 3,
    S: int | None = None,
    stride: int = 1,
    N: int = 1,
    streamable: bool = False,
    group: str = "",
) -> Layer:
    """A 2-D convolution producing a ``P x Q`` map of ``M`` channels from ``C``."""
    return Layer(
        name,
        OpKind.CONV,
        R=R,
        S=R if S is None else S,
        P=P,
        Q=Q,
        C=C,
        M=M,
        N=N,
        Hstride=stride,
        Wstride=stride,
        streamable=streamable,
        group=group,
    )


def depthwise2d(
    name: str,
    *,
    C: int,
    P: int,
    Q: int,
    R: int = 3,
    stride: int = 1,
    streamable: bool = False,
    group: str = "",
) -> Layer:
    """A depthwise convolution: one ``R x R`` filter per channel."""
    return Layer(
        name,
        OpKind.DEPTHWISE,
        R=R,
        S=R,
        P=P,
        Q=Q,
        C=C,
        Hstride=stride,
        Wstride=stride,
        streamable=streamable,
        group=group,
    )


def matmul(
    name: str,
    *,
    rows: int,
    in_features: int,
    out_features: int,
    batch: int = 1,
    weights_from_activation: bool = False,
    streamable: bool = False,
    group: str = "",
) -> Layer:
    """A (batched) matrix product ``rows x in_features`` times ``in_features x out_features``.

    >>> matmul("fc", rows=1, in_features=512, out_features=1000).macs
    512000
    """
    return Layer(
        name,
        OpKind.MATMUL,
        P=rows,
        C=in_features,
        M=out_features,
        N=batch,
        weights_from_activation=weights_from_activation,
        streamable=streamable,
        group=group,
    )


def pool2d(
    name: str,
    *,
    C: int,
    P: int,
    Q: int,
    R: int,
    stride: int | None = None,
    streamable: bool = False,
    group: str = "",
) -> Layer:
    """Max or average pooling with an ``R x R`` window."""
    s = R if stride is None else stride
    return Layer(
        name,
        OpKind.POOL,
        R=R,
        S=R,
        P=P,
        Q=Q,
        C=C,
        Hstride=s,
        Wstride=s,
        streamable=streamable,
        group=group,
    )


def eltwise(
    name: str,
    *,
    C: int,
    P: int,
    Q: int = 1,
    operands: int = 2,
    N: int = 1,
    streamable: bool = False,
    group: str = "",
) -> Layer:
    """An elementwise layer (residual add, activation, normalisation) over ``C x P x Q``."""
    return Layer(
        name,
        OpKind.ELTWISE,
        P=P,
        Q=Q,
        C=C,
        N=N,
        operands=operands,
        streamable=streamable,
        group=group,
    )


# ---- graphs -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DataNeed:
    """An input layer's need for device data: all chunks, or one chunk index."""

    device: str
    chunk: int | None = None  # None: every chunk of the device


@dataclass
class ModelGraph:
    """A DNN as a DAG of :class:`Layer` objects.

    Parameters
    ----------
    name : str
        Model name.

    Examples
    --------
    >>> g = ModelGraph("toy")
    >>> g.add_layer(matmul("enc", rows=4, in_features=8, out_features=8), inputs_from="dev")
    >>> g.add_layer(matmul("head", rows=1, in_features=8, out_features=2), after=["enc"])
    >>> g.total_macs
    272
    >>> [layer.name for layer in g.topological_layers()]
    ['enc', 'head']
    """

    name: str
    graph: nx.DiGraph = field(default_factory=nx.DiGraph)
    #: Input layers -> the device data they consume.
    data_needs: dict[str, DataNeed] = field(default_factory=dict)

    def add_layer(
        self, layer: Layer, *, after: Iterable[str] = (), inputs_from: str | None = None
    ) -> None:
        """Add ``layer`` fed by the layers named in ``after`` and/or device ``inputs_from``."""
        if layer.name in self.graph:
            raise ValueError(f"model {self.name!r}: duplicate layer name {layer.name!r}")
        self.graph.add_node(layer.name, layer=layer)
        for pred in after:
            if pred not in self.graph:
                raise ValueError(
                    f"model {self.name!r}: layer {layer.name!r} follows unknown layer {pred!r}"
                )
            self.graph.add_edge(pred, layer.name)
        if inputs_from is not None:
            self.data_needs[layer.name] = DataNeed(inputs_from)

    def layer(self, name: str) -> Layer:
        """The layer called ``name``."""
        layer: Layer = self.graph.nodes[name]["layer"]
        return layer

    def __len__(self) -> int:
        return int(self.graph.number_of_nodes())

    @property
    def total_macs(self) -> int:
        """Sum of the MACs of every layer."""
        return sum(self.layer(n).macs for n in self.graph.nodes)

    def macs_of_group(self, group: str) -> int:
        """Sum of the MACs of the layers whose ``group`` is ``group``."""
        return sum(layer.macs for layer in self.layers() if layer.group == group)

    def layers(self) -> list[Layer]:
        """Layers in insertion order."""
        return [self.layer(n) for n in self.graph.nodes]

    def find_cycle(self) -> list[str] | None:
        """A list of layer names forming a cycle, or None for a DAG."""
        try:
            edges = nx.find_cycle(self.graph)
        except nx.NetworkXNoCycle:
            return None
        return [u for u, _ in edges] + [edges[0][0]]

    def topological_layers(self) -> list[Layer]:
        """Layers in a deterministic topological order (ties by insertion order)."""
        order = {n: i for i, n in enumerate(self.graph.nodes)}
        names = nx.lexicographical_topological_sort(self.graph, key=order.__getitem__)
        return [self.layer(n) for n in names]

    def devices(self) -> list[str]:
        """Devices whose data the model consumes, in first-use order."""
        seen: dict[str, None] = {}
        for need in self.data_needs.values():
            seen.setdefault(need.device, None)
        return list(seen)

    def expand_chunks(self, chunks: Mapping[str, int]) -> ModelGraph:
        """Split each encoder's streamable prefix into one slice per payload chunk.

        A layer is sliced when it is ``streamable``, has at least as many rows ``P`` as
        the device has chunks, and every predecessor is a sliced layer of the same device
        (or it reads the device data). Slice ``i`` of a layer depends on slice ``i`` of its
        predecessors (or on chunk ``i``); a non-sliced successor depends on every slice.

        Examples
        --------
        >>> g = ModelGraph("m")
        >>> g.add_layer(conv2d("a", C=1, M=4, P=8, Q=8, streamable=True), inputs_from="d")
        >>> g.add_layer(conv2d("b", C=4, M=4, P=8, Q=8, streamable=True), after=["a"])
        >>> g.add_layer(matmul("h", rows=1, in_features=4, out_features=2), after=["b"])
        >>> x = g.expand_chunks({"d": 2})
        >>> sorted(x.graph.predecessors("h")), x.data_needs["a#1"].chunk
        (['b#0', 'b#1'], 1)
        >>> x.total_macs == g.total_macs
        True
        """
        parts_of: dict[str, int] = {}  # original layer -> number of slices
        device_of: dict[str, str] = {}
        for name in nx.topological_sort(self.graph):
            layer = self.layer(name)
            preds = list(self.graph.predecessors(name))
            need = self.data_needs.get(name)
            if need is not None and not preds:
                dev = need.device
            elif need is None and preds and all(p in parts_of for p in preds):
                devs = {device_of[p] for p in preds}
                if len(devs) != 1:
                    continue
                dev = devs.pop()
            else:
                continue
            parts = chunks.get(dev, 1)
            if parts > 1 and layer.streamable and parts <= layer.P:
                parts_of[name] = parts
                device_of[name] = dev

        out = ModelGraph(self.name)
        for name in self.graph.nodes:
            layer = self.layer(name)
            n_parts = parts_of.get(name)
            if n_parts is None:
                out.graph.add_node(name, layer=layer)
                if name in self.data_needs:
                    out.data_needs[name] = self.data_needs[name]
                continue
            for i in range(n_parts):
                piece = layer.slice_rows(i, n_parts)
                out.graph.add_node(piece.name, layer=piece)
                if name in self.data_needs:
                    out.data_needs[piece.name] = DataNeed(device_of[name], i)
        for u, v in self.graph.edges:
            pu, pv = parts_of.get(u), parts_of.get(v)
            if pu and pv:
                for i in range(pv):
                    out.graph.add_edge(f"{u}#{i}", f"{v}#{i}")
            elif pu:
                for i in range(pu):
                    out.graph.add_edge(f"{u}#{i}", v)
            else:
                out.graph.add_edge(u, v)
        return out


def ceil_div(a: int, b: int) -> int:
    """Integer ceiling of ``a / b``.

    >>> ceil_div(7, 2)
    4
    """
    return -(-a // b)


def prod(values: Iterable[int]) -> int:
    """Product of integers (1 for none)."""
    return math.prod(values)
