"""The built-in model zoo: per-modality encoders, fusion blocks, heads and synthetic DAGs.

Every builder *adds* layers to a :class:`~owin_cosim.workload.graph.ModelGraph`, so several
encoders (one per device) coexist in one multimodal graph. Encoder layer names are
prefixed with the device name (``camera/conv1``) and carry ``group="encoder:<device>"``;
the layers that read the device payload are registered with ``inputs_from=<device>``.
Fusion layers carry ``group="fusion"`` and head layers ``group="head"``.

Operation counts are multiply-accumulates (MACs) of convolutions and matrix products,
plus one operation per window tap for pooling and per element (per extra operand) for
elementwise layers (see :attr:`~owin_cosim.workload.graph.Layer.macs`). Batch norm is assumed
folded into the convolutions and activations (ReLU, GELU, tanh) are not modelled as layers.
Reference counts at the default parameters (conv + matmul MACs / all layers):

====================  ======================  =====================================
``resnet18``          1,813,561,344 (+fc:      torchvision ResNet-18: 1.814 G MACs
                      1,814,073,344)           ("1.8 GFLOPs"); all layers 1,816,145,408
                                               (1,816,657,408 with the FC)
``audio_cnn``         863,895,552              VGGish on 96 x 64 log-mel: 0.864 G MACs;
                                               all layers 864,632,832
``pointnet``          447,360,256              PointNet with both T-Nets, 1,024 points,
                                               without the 40-class MLP (paper: 440 M
                                               FLOPs/sample); all layers 450,505,984
``text_transformer``  436,273,152              BERT-mini-like (4 x 256, 4 heads, FFN
                                               1024, 128 tokens); all layers 437,125,120
====================  ======================  =====================================

Examples
--------
>>> g = build_multimodal("av", {"camera": ("resnet18", {}), "mic": ("audio_cnn", {})})
>>> g.devices()
['camera', 'mic']
>>> sorted({layer.group for layer in g.layers()})
['encoder:camera', 'encoder:mic', 'fusion', 'head']
"""

from __future__ import annotations

import inspect
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from owin_cosim.workload.graph import (
    Layer,
    ModelGraph,
    OpKind,
    conv2d,
    depthwise2d,
    eltwise,
    matmul,
    pool2d,
)

__all__ = [
    "DEFAULT_ENCODER_BY_MODALITY",
    "ENCODERS",
    "FUSIONS",
    "HEADS",
    "EncoderBuilder",
    "EncoderOutput",
    "FusionBuilder",
    "HeadBuilder",
    "UnknownNameError",
    "attention_fusion",
    "audio_cnn",
    "build_multimodal",
    "classifier_head",
    "concat_fusion",
    "mlp_encoder",
    "payload_bytes_for",
    "pointnet",
    "resnet18",
    "synthetic_dag",
    "text_transformer",
]


@dataclass(frozen=True, slots=True)
class EncoderOutput:
    """What an encoder (or a fusion block) hands to the next stage.

    Attributes
    ----------
    last_layer : str
        Name of the encoder's single sink layer.
    features : int
        Size of the feature vector that layer produces.

    Examples
    --------
    >>> EncoderOutput("camera/avgpool", 512).features
    512
    """

    last_layer: str
    features: int


#: ``builder(graph, device, **params) -> EncoderOutput``
EncoderBuilder = Callable[..., EncoderOutput]
#: ``builder(graph, inputs, **params) -> EncoderOutput``
FusionBuilder = Callable[..., EncoderOutput]
#: ``builder(graph, fused, **params) -> name of the last layer``
HeadBuilder = Callable[..., str]


class UnknownNameError(KeyError):
    """An unknown zoo name; ``str()`` gives the plain message (no ``KeyError`` quoting).

    Examples
    --------
    >>> str(UnknownNameError("unknown encoder 'x'; valid: a, b"))
    "unknown encoder 'x'; valid: a, b"
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# ---- validation helpers ---------------------------------------------------------------
def _positive_int(where: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{where}: {name} must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{where}: {name} must be >= 1, got {value}")
    return value


def _flag(where: str, name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{where}: {name} must be true or false, got {value!r}")
    return value


def _check_device(where: str, device: object) -> str:
    if not isinstance(device, str) or not device or "/" in device:
        raise ValueError(
            f"{where}: device name must be a non-empty string without '/', got {device!r}"
        )
    return device


def _ceil_half(n: int) -> int:
    return -(-n // 2)


class _Scope:
    """Adds layers named ``<prefix>/<local>`` with one group to a graph."""

    def __init__(self, graph: ModelGraph, prefix: str, group: str) -> None:
        self.graph = graph
        self.prefix = prefix
        self.group = group

    def name(self, local: str) -> str:
        return f"{self.prefix}/{local}"

    def add(self, layer: Layer, after: Sequence[str] = (), inputs_from: str | None = None) -> str:
        self.graph.add_layer(layer, after=after, inputs_from=inputs_from)
        return layer.name

    def global_pool(self, local: str, *, C: int, window: int, after: Sequence[str]) -> str:
        """A pool over ``window`` rows (points, tokens) down to one row of ``C`` features."""
        layer = Layer(self.name(local), OpKind.POOL, R=window, S=1, P=1, Q=1, C=C, group=self.group)
        return self.add(layer, after)


# ---- encoders -------------------------------------------------------------------------
def resnet18(
    graph: ModelGraph,
    device: str,
    *,
    input_hw: int = 224,
    in_channels: int = 3,
    include_fc: bool = False,
) -> EncoderOutput:
    """Add a ResNet-18 image encoder (He et al., 2016; torchvision layer shapes).

    Layers: ``conv1`` (7x7/2), ``maxpool`` (3x3/2), four stages ``layerK`` of two basic
    blocks (``layerK.B.conv1``, ``layerK.B.conv2``, a 1x1/2 ``layerK.0.downsample`` on
    the shortcut of stages 2-4, and the residual ``layerK.B.add`` as an elementwise
    layer), the global ``avgpool`` and, with ``include_fc``, the 1000-class ``fc``.
    Every stride-2 stage halves the map with ceiling rounding, as padded convolutions
    do. The stem and all of ``layer1`` (convolutions and residual adds) are
    ``streamable`` (row-sliceable); deeper layers are not.

    Parameters
    ----------
    graph : ModelGraph
        Graph to add the layers to.
    device : str
        Device whose image the encoder reads; prefixes every layer name.
    input_hw : int
        Height and width of the (square) input image.
    in_channels : int
        Input channels (3 for RGB).
    include_fc : bool
        Add the final 1000-class fully connected layer.

    Returns
    -------
    EncoderOutput
        ``avgpool`` with 512 features, or ``fc`` with 1000.

    Examples
    --------
    >>> g = ModelGraph("r18")
    >>> resnet18(g, "camera", include_fc=True)
    EncoderOutput(last_layer='camera/fc', features=1000)
    >>> sum(l.macs for l in g.layers() if l.op in (OpKind.CONV, OpKind.MATMUL))
    1814073344
    >>> len(g), g.total_macs
    (31, 1816657408)
    """
    where = "resnet18"
    device = _check_device(where, device)
    hw = _positive_int(where, "input_hw", input_hw)
    cin = _positive_int(where, "in_channels", in_channels)
    include_fc = _flag(where, "include_fc", include_fc)
    s = _Scope(graph, device, f"encoder:{device}")

    hw = _ceil_half(hw)
    tip = s.add(
        conv2d(
            s.name("conv1"), C=cin, M=64, P=hw, Q=hw, R=7, stride=2, streamable=True, group=s.group
        ),
        inputs_from=device,
    )
    hw = _ceil_half(hw)
    tip = s.add(
        pool2d(s.name("maxpool"), C=64, P=hw, Q=hw, R=3, stride=2, streamable=True, group=s.group),
        [tip],
    )
    channels = 64
    for stage, width in enumerate((64, 128, 256, 512), start=1):
        stream = stage == 1
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            if stride == 2:
                hw = _ceil_half(hw)
            base = f"layer{stage}.{block}"
            c1 = s.add(
                conv2d(
                    s.name(f"{base}.conv1"),
                    C=channels,
                    M=width,
                    P=hw,
                    Q=hw,
                    R=3,
                    stride=stride,
                    streamable=stream,
                    group=s.group,
                ),
                [tip],
            )
            c2 = s.add(
                conv2d(
                    s.name(f"{base}.conv2"),
                    C=width,
                    M=width,
                    P=hw,
                    Q=hw,
                    R=3,
                    streamable=stream,
                    group=s.group,
                ),
                [c1],
            )
            shortcut = tip
            if stride != 1 or channels != width:
                shortcut = s.add(
                    conv2d(
                        s.name(f"{base}.downsample"),
                        C=channels,
                        M=width,
                        P=hw,
                        Q=hw,
                        R=1,
                        stride=stride,
                        streamable=stream,
                        group=s.group,
                    ),
                    [tip],
                )
            tip = s.add(
                eltwise(
                    s.name(f"{base}.add"),
                    C=width,
                    P=hw,
                    Q=hw,
                    operands=2,
                    streamable=stream,
                    group=s.group,
                ),
                [c2, shortcut],
            )
            channels = width
    tip = s.add(pool2d(s.name("avgpool"), C=512, P=1, Q=1, R=hw, group=s.group), [tip])
    if not include_fc:
        return EncoderOutput(tip, 512)
    tip = s.add(
        matmul(s.name("fc"), rows=1, in_features=512, out_features=1000, group=s.group), [tip]
    )
    return EncoderOutput(tip, 1000)


def audio_cnn(
    graph: ModelGraph, device: str, *, mel_bins: int = 64, frames: int = 96
) -> EncoderOutput:
    """Add a VGGish audio encoder (Hershey et al., 2017) on a log-mel spectrogram.

    The input is one channel of ``frames`` x ``mel_bins`` (VGGish: 96 frames of 10 ms by
    64 mel bands); ``P`` is the time axis, so row slicing means time frames. Layers, as in
    the published ``vggish_slim`` model (3x3 "same" convolutions, 2x2/2 "same" max
    pools): ``conv1`` 64, ``pool1``, ``conv2`` 128, ``pool2``, ``conv3_1``/``conv3_2``
    256, ``pool3``, ``conv4_1``/``conv4_2`` 512, ``pool4``, then ``fc1_1`` (flattened
    512 x 6 x 4 = 12288 -> 4096), ``fc1_2`` 4096 and the 128-d embedding ``fc2``.
    All convolution and pooling layers are ``streamable``; the FCs are not.

    MACs at 96 x 64: convolutions 796,262,400 + FCs 67,633,152 = 863,895,552
    (0.864 G); the four pools add 737,280 compare operations.

    Parameters
    ----------
    graph : ModelGraph
        Graph to add the layers to.
    device : str
        Device whose spectrogram the encoder reads; prefixes every layer name.
    mel_bins : int
        Mel bands (width, ``Q``).
    frames : int
        Time frames (height, ``P``).

    Returns
    -------
    EncoderOutput
        ``fc2`` with 128 features.

    Examples
    --------
    >>> g = ModelGraph("vggish")
    >>> audio_cnn(g, "mic")
    EncoderOutput(last_layer='mic/fc2', features=128)
    >>> g.total_macs
    864632832
    >>> g.layer("mic/fc1_1").C
    12288
    """
    where = "audio_cnn"
    device = _check_device(where, device)
    q = _positive_int(where, "mel_bins", mel_bins)
    p = _positive_int(where, "frames", frames)
    s = _Scope(graph, device, f"encoder:{device}")

    channels = 1
    tip: str | None = None
    stages: tuple[tuple[str, tuple[int, ...]], ...] = (
        ("1", (64,)),
        ("2", (128,)),
        ("3", (256, 256)),
        ("4", (512, 512)),
    )
    for stage, widths in stages:
        for i, width in enumerate(widths, start=1):
            local = f"conv{stage}" if len(widths) == 1 else f"conv{stage}_{i}"
            layer = conv2d(
                s.name(local), C=channels, M=width, P=p, Q=q, R=3, streamable=True, group=s.group
            )
            tip = s.add(layer, inputs_from=device) if tip is None else s.add(layer, [tip])
            channels = width
        assert tip is not None
        p, q = _ceil_half(p), _ceil_half(q)
        tip = s.add(
            pool2d(
                s.name(f"pool{stage}"), C=channels, P=p, Q=q, R=2, streamable=True, group=s.group
            ),
            [tip],
        )
    assert tip is not None
    features = channels * p * q
    for local, out in (("fc1_1", 4096), ("fc1_2", 4096), ("fc2", 128)):
        tip = s.add(
            matmul(s.name(local), rows=1, in_features=features, out_features=out, group=s.group),
            [tip],
        )
        features = out
    return EncoderOutput(tip, features)


def pointnet(
    graph: ModelGraph, device: str, *, num_points: int = 1024, transforms: bool = True
) -> EncoderOutput:
    """Add a PointNet lidar encoder (Qi et al., 2017), up to the global feature.

    Per-point shared MLPs are matrix products with one row per point (``P`` =
    ``num_points``): ``mlp1`` 3->64, ``mlp2`` 64->64, ``mlp3`` 64->64, ``mlp4`` 64->128,
    ``mlp5`` 128->1024, then ``maxpool``: a max over all points, written as a pool
    layer with an ``R = num_points`` by ``S = 1`` window. With ``transforms`` the
    published T-Nets are included: ``tnet1`` (shared MLP 3->64->128->1024, max pool, FC
    1024->512->256->9) whose 3x3 output multiplies the raw points (``tnet1.apply``, an
    activation-by-activation product), and ``tnet2`` (same, from 64 features, FC ->4096)
    applied to the ``mlp2`` features (``tnet2.apply``) before ``mlp3``. The
    classification MLP (1024->512->256->40) is not part of the encoder.

    Per-point layers are ``streamable`` (points can be processed as they arrive); the max
    pools are not. With transforms, only ``tnet1``'s MLP can actually start on partial
    data, as everything else waits for the input transform, which needs every point.

    MACs at 1,024 points: without T-Nets 151,191,552 (paper's "vanilla" PointNet: 148 M
    FLOPs with the classifier); with T-Nets 447,360,256 (paper: 440 M), plus 3,145,728
    compares in the three max pools. The default, 1,024 points, is the paper's ModelNet40
    setup.

    Parameters
    ----------
    graph : ModelGraph
        Graph to add the layers to.
    device : str
        Device whose point cloud the encoder reads; prefixes every layer name.
    num_points : int
        Points per cloud.
    transforms : bool
        Include the input and feature T-Nets.

    Returns
    -------
    EncoderOutput
        ``maxpool`` with 1024 features.

    Examples
    --------
    >>> g = ModelGraph("pn")
    >>> pointnet(g, "lidar", transforms=False)
    EncoderOutput(last_layer='lidar/maxpool', features=1024)
    >>> g.total_macs, g.layer("lidar/maxpool").input_hw
    (152240128, (1024, 1))
    """
    where = "pointnet"
    device = _check_device(where, device)
    n = _positive_int(where, "num_points", num_points)
    transforms = _flag(where, "transforms", transforms)
    s = _Scope(graph, device, f"encoder:{device}")

    def per_point(
        local: str, cin: int, cout: int, after: Sequence[str], inputs: str | None = None
    ) -> str:
        return s.add(
            matmul(
                s.name(local),
                rows=n,
                in_features=cin,
                out_features=cout,
                streamable=True,
                group=s.group,
            ),
            after,
            inputs,
        )

    def tnet(tag: str, k: int, source: str | None) -> str:
        """T-Net predicting a k x k transform; reads ``source`` or the device data."""
        after = [source] if source else []
        tip = per_point(f"{tag}.mlp1", k, 64, after, None if source else device)
        tip = per_point(f"{tag}.mlp2", 64, 128, [tip])
        tip = per_point(f"{tag}.mlp3", 128, 1024, [tip])
        tip = s.global_pool(f"{tag}.maxpool", C=1024, window=n, after=[tip])
        features = 1024
        for i, out in enumerate((512, 256, k * k), start=1):
            tip = s.add(
                matmul(
                    s.name(f"{tag}.fc{i}"),
                    rows=1,
                    in_features=features,
                    out_features=out,
                    group=s.group,
                ),
                [tip],
            )
            features = out
        return tip

    def apply(tag: str, k: int, transform: str, source: str | None) -> str:
        """Multiply the per-point features (``source`` or the device data) by a k x k."""
        layer = matmul(
            s.name(f"{tag}.apply"),
            rows=n,
            in_features=k,
            out_features=k,
            weights_from_activation=True,
            streamable=True,
            group=s.group,
        )
        after = [transform, source] if source else [transform]
        return s.add(layer, after, None if source else device)

    if transforms:
        tip = apply("tnet1", 3, tnet("tnet1", 3, None), None)
        tip = per_point("mlp1", 3, 64, [tip])
    else:
        tip = per_point("mlp1", 3, 64, [], device)
    tip = per_point("mlp2", 64, 64, [tip])
    if transforms:
        tip = apply("tnet2", 64, tnet("tnet2", 64, tip), tip)
    tip = per_point("mlp3", 64, 64, [tip])
    tip = per_point("mlp4", 64, 128, [tip])
    tip = per_point("mlp5", 128, 1024, [tip])
    tip = s.global_pool("maxpool", C=1024, window=n, after=[tip])
    return EncoderOutput(tip, 1024)


def _attention_block(
    s: _Scope, tag: str, *, rows: int, d: int, heads: int, after: Sequence[str]
) -> str:
    """Multi-head self-attention over ``rows`` tokens of width ``d``; returns ``out``."""
    dh = d // heads
    q, k, v = (
        s.add(
            matmul(s.name(f"{tag}.{x}"), rows=rows, in_features=d, out_features=d, group=s.group),
            after,
        )
        for x in "qkv"
    )
    scores = s.add(
        matmul(
            s.name(f"{tag}.scores"),
            rows=rows,
            in_features=dh,
            out_features=rows,
            batch=heads,
            weights_from_activation=True,
            group=s.group,
        ),
        [q, k],
    )
    soft = s.add(
        eltwise(s.name(f"{tag}.softmax"), C=rows, P=rows, N=heads, operands=1, group=s.group),
        [scores],
    )
    av = s.add(
        matmul(
            s.name(f"{tag}.av"),
            rows=rows,
            in_features=rows,
            out_features=dh,
            batch=heads,
            weights_from_activation=True,
            group=s.group,
        ),
        [soft, v],
    )
    return s.add(
        matmul(s.name(f"{tag}.out"), rows=rows, in_features=d, out_features=d, group=s.group), [av]
    )


def text_transformer(
    graph: ModelGraph,
    device: str,
    *,
    seq_len: int = 128,
    layers: int = 4,
    d_model: int = 256,
    heads: int = 4,
    ffn: int = 1024,
) -> EncoderOutput:
    """Add a BERT-style transformer text encoder (defaults: BERT-mini, 128 tokens).

    ``embed`` sums the token and position embeddings (an elementwise layer: the table
    lookup itself is a gather without MACs, and the tables are not counted as weights),
    ``embed.ln`` normalises. Each block ``blockI`` has ``q``, ``k``, ``v`` projections,
    ``scores`` (Q K^T, batched over heads, activation by activation), ``softmax``, ``av``
    (A V), the ``out`` projection, ``add1`` and ``ln1``, the FFN ``ffn1``/``ffn2`` (GELU
    not modelled), ``add2`` and ``ln2``. ``pooler`` is BERT's dense layer on the CLS
    token. Only ``embed`` is ``streamable``.

    Matrix-product MACs: per block ``4 s d^2 + 2 s^2 d + 2 s d f`` plus ``d^2`` for the
    pooler; at the defaults 4 x 109,051,904 + 65,536 = 436,273,152, and the elementwise
    layers add 851,968.

    Parameters
    ----------
    graph : ModelGraph
        Graph to add the layers to.
    device : str
        Device whose token ids the encoder reads; prefixes every layer name.
    seq_len : int
        Tokens per input (``s``).
    layers : int
        Transformer blocks.
    d_model : int
        Hidden width (``d``); must be a multiple of ``heads``.
    heads : int
        Attention heads.
    ffn : int
        Feed-forward width (``f``).

    Returns
    -------
    EncoderOutput
        ``pooler`` with ``d_model`` features.

    Examples
    --------
    >>> g = ModelGraph("bert")
    >>> text_transformer(g, "chat", layers=1, seq_len=8, d_model=16, heads=2, ffn=32)
    EncoderOutput(last_layer='chat/pooler', features=16)
    >>> g.layer("chat/block0.scores").macs == 8 * 8 * 16
    True
    """
    where = "text_transformer"
    device = _check_device(where, device)
    s_len = _positive_int(where, "seq_len", seq_len)
    n_blocks = _positive_int(where, "layers", layers)
    d = _positive_int(where, "d_model", d_model)
    h = _positive_int(where, "heads", heads)
    f = _positive_int(where, "ffn", ffn)
    if d % h:
        raise ValueError(f"{where}: d_model ({d}) must be a multiple of heads ({h})")
    s = _Scope(graph, device, f"encoder:{device}")

    tip = s.add(
        eltwise(s.name("embed"), C=d, P=s_len, operands=2, streamable=True, group=s.group),
        inputs_from=device,
    )
    tip = s.add(eltwise(s.name("embed.ln"), C=d, P=s_len, operands=1, group=s.group), [tip])
    for b in range(n_blocks):
        tag = f"block{b}"
        out = _attention_block(s, tag, rows=s_len, d=d, heads=h, after=[tip])
        add1 = s.add(eltwise(s.name(f"{tag}.add1"), C=d, P=s_len, group=s.group), [out, tip])
        ln1 = s.add(eltwise(s.name(f"{tag}.ln1"), C=d, P=s_len, operands=1, group=s.group), [add1])
        f1 = s.add(
            matmul(s.name(f"{tag}.ffn1"), rows=s_len, in_features=d, out_features=f, group=s.group),
            [ln1],
        )
        f2 = s.add(
            matmul(s.name(f"{tag}.ffn2"), rows=s_len, in_features=f, out_features=d, group=s.group),
            [f1],
        )
        add2 = s.add(eltwise(s.name(f"{tag}.add2"), C=d, P=s_len, group=s.group), [f2, ln1])
        tip = s.add(eltwise(s.name(f"{tag}.ln2"), C=d, P=s_len, operands=1, group=s.group), [add2])
    tip = s.add(
        matmul(s.name("pooler"), rows=1, in_features=d, out_features=d, group=s.group), [tip]
    )
    return EncoderOutput(tip, d)


def mlp_encoder(
    graph: ModelGraph,
    device: str,
    *,
    in_features: int,
    hidden: Sequence[int] = (256, 128),
    rows: int = 1,
) -> EncoderOutput:
    """Add a small MLP encoder (``fc0``, ``fc1``, ...) over ``rows`` input vectors.

    Every layer is a ``streamable`` matrix product with ``rows`` rows; with more than one
    row, a final ``pool`` (not streamable) reduces the rows to one feature vector.

    Parameters
    ----------
    graph : ModelGraph
        Graph to add the layers to.
    device : str
        Device whose vectors the encoder reads; prefixes every layer name.
    in_features : int
        Width of each input vector.
    hidden : sequence of int
        Output widths of the layers (at least one).
    rows : int
        Input vectors (rows) per payload.

    Returns
    -------
    EncoderOutput
        The last layer with ``hidden[-1]`` features.

    Examples
    --------
    >>> g = ModelGraph("m")
    >>> mlp_encoder(g, "imu", in_features=6, hidden=(32, 16), rows=10)
    EncoderOutput(last_layer='imu/pool', features=16)
    >>> g.total_macs == 10 * (6 * 32 + 32 * 16) + 10 * 16
    True
    """
    where = "mlp"
    device = _check_device(where, device)
    width = _positive_int(where, "in_features", in_features)
    n_rows = _positive_int(where, "rows", rows)
    if isinstance(hidden, str | bytes) or not isinstance(hidden, Sequence) or not hidden:
        raise TypeError(f"{where}: hidden must be a non-empty list of integers, got {hidden!r}")
    widths = [_positive_int(where, f"hidden[{i}]", w) for i, w in enumerate(hidden)]
    s = _Scope(graph, device, f"encoder:{device}")

    tip: str | None = None
    for i, out in enumerate(widths):
        layer = matmul(
            s.name(f"fc{i}"),
            rows=n_rows,
            in_features=width,
            out_features=out,
            streamable=True,
            group=s.group,
        )
        tip = s.add(layer, inputs_from=device) if tip is None else s.add(layer, [tip])
        width = out
    assert tip is not None
    if n_rows > 1:
        tip = s.global_pool("pool", C=width, window=n_rows, after=[tip])
    return EncoderOutput(tip, width)


# ---- fusion and heads -----------------------------------------------------------------
def _check_inputs(
    where: str, graph: ModelGraph, inputs: Sequence[EncoderOutput]
) -> list[EncoderOutput]:
    items = list(inputs)
    if not items:
        raise ValueError(f"{where}: needs at least one encoder output")
    for item in items:
        if not isinstance(item, EncoderOutput):
            raise TypeError(f"{where}: inputs must be EncoderOutput objects, got {item!r}")
        if item.last_layer not in graph.graph:
            raise ValueError(f"{where}: unknown layer {item.last_layer!r}")
    return items


def concat_fusion(
    graph: ModelGraph, inputs: Sequence[EncoderOutput], *, hidden: int = 512, prefix: str = "fusion"
) -> EncoderOutput:
    """Late fusion: one matrix product over the concatenated encoder features.

    Parameters
    ----------
    graph : ModelGraph
        Graph holding the encoders.
    inputs : sequence of EncoderOutput
        The encoders to fuse; their last layers all precede the fusion layer.
    hidden : int
        Width of the fused feature.
    prefix : str
        Layer-name prefix (layers are ``<prefix>/fc``).

    Returns
    -------
    EncoderOutput
        ``<prefix>/fc`` with ``hidden`` features.

    Examples
    --------
    >>> g = ModelGraph("f")
    >>> a = mlp_encoder(g, "a", in_features=4, hidden=(8,))
    >>> b = mlp_encoder(g, "b", in_features=4, hidden=(24,))
    >>> concat_fusion(g, [a, b], hidden=16)
    EncoderOutput(last_layer='fusion/fc', features=16)
    >>> g.layer("fusion/fc").C, sorted(g.graph.predecessors("fusion/fc"))
    (32, ['a/fc0', 'b/fc0'])
    """
    where = "concat fusion"
    items = _check_inputs(where, graph, inputs)
    width = _positive_int(where, "hidden", hidden)
    s = _Scope(graph, prefix, "fusion")
    tip = s.add(
        matmul(
            s.name("fc"),
            rows=1,
            in_features=sum(i.features for i in items),
            out_features=width,
            group=s.group,
        ),
        [i.last_layer for i in items],
    )
    return EncoderOutput(tip, width)


def attention_fusion(
    graph: ModelGraph,
    inputs: Sequence[EncoderOutput],
    *,
    d_model: int = 256,
    heads: int = 4,
    prefix: str = "fusion",
) -> EncoderOutput:
    """Cross-modal attention fusion over one token per modality.

    Each input is projected to ``d_model`` (``proj.I``); the ``K`` projections form a
    sequence of ``K`` tokens that goes through one multi-head self-attention block
    (``attn.q/k/v``, ``attn.scores``, ``attn.softmax``, ``attn.av``, ``attn.out``), a
    residual ``add`` and a mean ``pool`` over the tokens.

    Parameters
    ----------
    graph : ModelGraph
        Graph holding the encoders.
    inputs : sequence of EncoderOutput
        The encoders to fuse.
    d_model : int
        Token width; must be a multiple of ``heads``.
    heads : int
        Attention heads.
    prefix : str
        Layer-name prefix.

    Returns
    -------
    EncoderOutput
        ``<prefix>/pool`` with ``d_model`` features.

    Examples
    --------
    >>> g = ModelGraph("f")
    >>> ins = [mlp_encoder(g, d, in_features=4, hidden=(8,)) for d in ("a", "b", "c")]
    >>> attention_fusion(g, ins, d_model=16, heads=2)
    EncoderOutput(last_layer='fusion/pool', features=16)
    >>> g.layer("fusion/attn.scores").macs == 3 * 3 * 16
    True
    """
    where = "attention fusion"
    items = _check_inputs(where, graph, inputs)
    d = _positive_int(where, "d_model", d_model)
    h = _positive_int(where, "heads", heads)
    if d % h:
        raise ValueError(f"{where}: d_model ({d}) must be a multiple of heads ({h})")
    s = _Scope(graph, prefix, "fusion")
    tokens = [
        s.add(
            matmul(
                s.name(f"proj.{i}"),
                rows=1,
                in_features=item.features,
                out_features=d,
                group=s.group,
            ),
            [item.last_layer],
        )
        for i, item in enumerate(items)
    ]
    k = len(tokens)
    out = _attention_block(s, "attn", rows=k, d=d, heads=h, after=tokens)
    add = s.add(eltwise(s.name("add"), C=d, P=k, group=s.group), [out, *tokens])
    tip = s.global_pool("pool", C=d, window=k, after=[add])
    return EncoderOutput(tip, d)


def classifier_head(
    graph: ModelGraph,
    fused: EncoderOutput,
    *,
    classes: int = 10,
    hidden: int = 256,
    prefix: str = "head",
) -> str:
    """Add a two-layer classifier (``fc1``: features -> hidden, ``fc2``: -> classes).

    Parameters
    ----------
    graph : ModelGraph
        Graph holding the fused feature.
    fused : EncoderOutput
        Output of the fusion block (or of a single encoder).
    classes : int
        Output classes.
    hidden : int
        Hidden width.
    prefix : str
        Layer-name prefix.

    Returns
    -------
    str
        Name of the last layer, ``<prefix>/fc2``.

    Examples
    --------
    >>> g = ModelGraph("h")
    >>> enc = mlp_encoder(g, "a", in_features=4, hidden=(8,))
    >>> classifier_head(g, enc, classes=3, hidden=5)
    'head/fc2'
    >>> g.macs_of_group("head")
    55
    """
    where = "classifier head"
    (fused,) = _check_inputs(where, graph, [fused])
    n_classes = _positive_int(where, "classes", classes)
    width = _positive_int(where, "hidden", hidden)
    s = _Scope(graph, prefix, "head")
    tip = s.add(
        matmul(
            s.name("fc1"), rows=1, in_features=fused.features, out_features=width, group=s.group
        ),
        [fused.last_layer],
    )
    return s.add(
        matmul(s.name("fc2"), rows=1, in_features=width, out_features=n_classes, group=s.group),
        [tip],
    )


# ---- registries -----------------------------------------------------------------------
#: Encoder zoo name -> builder.
ENCODERS: dict[str, EncoderBuilder] = {
    "resnet18": resnet18,
    "audio_cnn": audio_cnn,
    "pointnet": pointnet,
    "text_transformer": text_transformer,
    "mlp": mlp_encoder,
}
#: Fusion zoo name -> builder.
FUSIONS: dict[str, FusionBuilder] = {"concat": concat_fusion, "attention": attention_fusion}
#: Head zoo name -> builder.
HEADS: dict[str, HeadBuilder] = {"classifier": classifier_head}
#: Modality -> the encoder used for it by default.
DEFAULT_ENCODER_BY_MODALITY: dict[str, str] = {
    "image": "resnet18",
    "audio": "audio_cnn",
    "lidar": "pointnet",
    "text": "text_transformer",
}
_RESERVED_PREFIXES = ("fusion", "head")


def _lookup(
    kind: str, name: object, registry: Mapping[str, Callable[..., Any]], where: str = ""
) -> Callable[..., Any]:
    at = f" for {where}" if where else ""
    if not isinstance(name, str) or name not in registry:
        raise UnknownNameError(
            f"unknown {kind} {name!r}{at}; valid {kind}s: {', '.join(sorted(registry))}"
        )
    return registry[name]


def _params_of(
    kind: str, name: str, builder: Callable[..., Any], params: object, where: str = ""
) -> dict[str, Any]:
    """Check ``params`` against the builder's keyword-only parameters."""
    at = f" for {where}" if where else ""
    if not isinstance(params, Mapping):
        raise TypeError(f"{kind} {name!r}{at}: parameters must be a mapping, got {params!r}")
    accepted = {
        p.name: p
        for p in inspect.signature(builder).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    valid = ", ".join(sorted(accepted)) or "none"
    unknown = sorted(str(k) for k in params if k not in accepted)
    if unknown:
        raise TypeError(
            f"{kind} {name!r}{at}: unknown parameter(s) {', '.join(unknown)}; "
            f"valid parameters: {valid}"
        )
    missing = sorted(
        n for n, p in accepted.items() if p.default is inspect.Parameter.empty and n not in params
    )
    if missing:
        raise TypeError(f"{kind} {name!r}{at}: missing required parameter(s) {', '.join(missing)}")
    return dict(params)


def build_multimodal(
    name: str,
    encoders: Mapping[str, tuple[str, Mapping[str, Any]]],
    *,
    fusion: str = "concat",
    fusion_params: Mapping[str, Any] | None = None,
    head: str = "classifier",
    head_params: Mapping[str, Any] | None = None,
) -> ModelGraph:
    """Build a multimodal model: one encoder per device, a fusion block and a head.

    Parameters
    ----------
    name : str
        Model name.
    encoders : mapping
        Device name -> ``(encoder zoo name, encoder keyword parameters)``, in device
        order. Zoo names are the keys of :data:`ENCODERS`.
    fusion : str
        Key of :data:`FUSIONS`.
    fusion_params : mapping, optional
        Keyword parameters of the fusion builder.
    head : str
        Key of :data:`HEADS`.
    head_params : mapping, optional
        Keyword parameters of the head builder.

    Returns
    -------
    ModelGraph
        A DAG whose single sink is the head's last layer.

    Raises
    ------
    UnknownNameError
        (a ``KeyError``) for an unknown encoder, fusion or head name; the message lists
        the valid names.
    TypeError
        For unknown, missing or mistyped parameters; the message lists the valid ones.
    ValueError
        For out-of-range values, no encoders or a bad device name.

    Examples
    --------
    >>> g = build_multimodal("m", {"cam": ("mlp", {"in_features": 8}),
    ...                            "mic": ("mlp", {"in_features": 4, "hidden": [16]})},
    ...                      fusion="attention", fusion_params={"d_model": 32},
    ...                      head_params={"classes": 5})
    >>> [n for n in g.graph.nodes if g.graph.out_degree(n) == 0]
    ['head/fc2']
    >>> try:
    ...     build_multimodal("m", {"cam": ("resnet", {})})
    ... except KeyError as exc:
    ...     print(exc)
    unknown encoder 'resnet' for device 'cam'; valid encoders: audio_cnn, mlp, pointnet, resnet18, text_transformer
    """  # noqa: E501
    if not isinstance(encoders, Mapping) or not encoders:
        raise ValueError(
            f"model {name!r}: needs at least one encoder (device -> "
            f"(encoder, params)), got {encoders!r}"
        )
    graph = ModelGraph(name)
    outputs: list[EncoderOutput] = []
    for device, spec in encoders.items():
        where = f"device {device!r}"
        _check_device(where, device)
        if device in _RESERVED_PREFIXES:
            raise ValueError(
                f"{where}: the names {', '.join(_RESERVED_PREFIXES)} are "
                "reserved for the fusion and head layers"
            )
        if not isinstance(spec, tuple | list) or len(spec) != 2:
            raise TypeError(f"{where}: expected (encoder name, parameters), got {spec!r}")
        enc_name, enc_params = spec
        builder = _lookup("encoder", enc_name, ENCODERS, where)
        params = _params_of("encoder", enc_name, builder, enc_params, where)
        outputs.append(builder(graph, device, **params))
    fuse = _lookup("fusion", fusion, FUSIONS)
    fused = fuse(graph, outputs, **_params_of("fusion", fusion, fuse, fusion_params or {}))
    make_head = _lookup("head", head, HEADS)
    make_head(graph, fused, **_params_of("head", head, make_head, head_params or {}))
    return graph


def payload_bytes_for(encoder_name: str, params: Mapping[str, Any] | None = None) -> int:
    """Natural raw size in bytes of one input of an encoder.

    ========================  ================================================
    ``resnet18``              ``in_channels x input_hw^2`` uint8 pixels
                              (3 x 224 x 224 = 150,528)
    ``audio_cnn``             ``mel_bins x frames`` float16 log-mel values
                              (64 x 96 x 2 = 12,288)
    ``pointnet``              ``num_points`` x (x, y, z, intensity) float32
                              (1024 x 16 = 16,384; the encoder uses x, y, z)
    ``text_transformer``      ``seq_len`` int32 token ids (128 x 4 = 512)
    ``mlp``                   ``rows x in_features`` float32 values
    ========================  ================================================

    Parameters
    ----------
    encoder_name : str
        Key of :data:`ENCODERS`.
    params : mapping, optional
        The encoder's keyword parameters (defaults fill the rest).

    Returns
    -------
    int
        Bytes.

    Examples
    --------
    >>> payload_bytes_for("resnet18", {})
    150528
    >>> payload_bytes_for("audio_cnn", {"frames": 48})
    6144
    >>> payload_bytes_for("mlp", {"in_features": 8, "rows": 2})
    64
    """
    builder = _lookup("encoder", encoder_name, ENCODERS)
    given = _params_of("encoder", encoder_name, builder, params or {})
    values = {
        p.name: p.default
        for p in inspect.signature(builder).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    values.update(given)

    def num(key: str) -> int:
        return _positive_int(encoder_name, key, values[key])

    if encoder_name == "resnet18":
        return num("in_channels") * num("input_hw") ** 2
    if encoder_name == "audio_cnn":
        return num("mel_bins") * num("frames") * 2
    if encoder_name == "pointnet":
        return num("num_points") * 4 * 4
    if encoder_name == "text_transformer":
        return num("seq_len") * 4
    return num("rows") * num("in_features") * 4


# ---- synthetic DAGs -------------------------------------------------------------------
_CHANNELS = (8, 16, 32, 64, 128, 256, 512)
_WIDTHS = (64, 128, 256, 512, 1024, 2048)


def _synthetic_layer(
    rng: random.Random, name: str, group: str, target: float, conv_only: bool, streamable: bool
) -> tuple[Layer, int]:
    """A random layer of about ``target`` MACs and the width of its output."""
    kind = "conv" if conv_only else rng.choice(("conv", "conv", "matmul", "depthwise"))
    if kind == "conv":
        C, M = rng.choice(_CHANNELS), rng.choice(_CHANNELS)
        R = rng.choice((1, 3, 3, 5))
        hw = max(1, round(math.sqrt(target / (C * M * R * R))))
        return conv2d(name, C=C, M=M, P=hw, Q=hw, R=R, streamable=streamable, group=group), M
    if kind == "matmul":
        cin, cout = rng.choice(_WIDTHS), rng.choice(_WIDTHS)
        rows = max(1, round(target / (cin * cout)))
        return matmul(name, rows=rows, in_features=cin, out_features=cout, group=group), cout
    C = rng.choice(_CHANNELS[3:])
    hw = max(1, round(math.sqrt(target / (C * 9))))
    return depthwise2d(name, C=C, P=hw, Q=hw, R=3, group=group), C


def synthetic_dag(
    *,
    modalities: int,
    layers: int,
    seed: int,
    skip_prob: float = 0.15,
    branch_prob: float = 0.1,
    macs_range: tuple[float, float] = (1e5, 1e8),
    fusion_hidden: int = 512,
    classes: int = 10,
) -> ModelGraph:
    """A seeded random multimodal DAG with exactly ``layers`` layers, for benchmarks.

    ``layers - 3`` encoder layers are split as evenly as possible over ``modalities``
    encoder chains, on devices ``dev0`` ... ``dev<K-1>`` (groups ``encoder:devK``, layer
    names ``devK/L<i>``). Each chain grows from its input layer (``inputs_from=devK``) by
    single layers or, with probability ``branch_prob``, by a two-way branch and its join;
    with probability ``skip_prob`` a layer also reads one of the eight layers before it
    (a skip edge). Every chain has a single sink. The first up-to-three layers of a chain
    are streamable convolutions. Layer shapes are random convolutions, matrix products
    and depthwise convolutions sized for a MAC count drawn log-uniformly from
    ``macs_range``. A concatenation fusion (``fusion/fc``) joins all chains and a
    two-layer classifier head (``head/fc1``, ``head/fc2``) ends the model. The same
    arguments give the same graph (:class:`random.Random` seeded with ``seed``).

    Parameters
    ----------
    modalities : int
        Encoder chains (devices).
    layers : int
        Total layers; at least ``modalities + 3``.
    seed : int
        Random seed.
    skip_prob, branch_prob : float
        Probabilities of a skip edge and of a branch, in ``[0, 1]``.
    macs_range : tuple of float
        Lowest and highest target MACs per encoder layer.
    fusion_hidden, classes : int
        Width of the fusion layer and classes of the head.

    Returns
    -------
    ModelGraph
        The DAG, named ``synthetic-<modalities>x<layers>-s<seed>``.

    Examples
    --------
    >>> g = synthetic_dag(modalities=3, layers=40, seed=1)
    >>> len(g), g.devices(), g.find_cycle() is None
    (40, ['dev0', 'dev1', 'dev2'], True)
    >>> synthetic_dag(modalities=3, layers=40, seed=1).graph.edges == g.graph.edges
    True
    """
    where = "synthetic_dag"
    k = _positive_int(where, "modalities", modalities)
    total = _positive_int(where, "layers", layers)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"{where}: seed must be an integer, got {seed!r}")
    if total < k + 3:
        raise ValueError(f"{where}: layers must be >= modalities + 3 = {k + 3}, got {total}")
    for pname, prob in (("skip_prob", skip_prob), ("branch_prob", branch_prob)):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"{where}: {pname} must be in [0, 1], got {prob}")
    lo, hi = macs_range
    if not 1 <= lo <= hi:
        raise ValueError(f"{where}: macs_range must satisfy 1 <= low <= high, got {macs_range}")
    log_lo, log_hi = math.log10(lo), math.log10(hi)

    rng = random.Random(seed)
    graph = ModelGraph(f"synthetic-{k}x{total}-s{seed}")
    budget = total - 3
    outputs: list[EncoderOutput] = []
    for m in range(k):
        device = f"dev{m}"
        group = f"encoder:{device}"
        count = budget // k + (1 if m < budget % k else 0)
        names: list[str] = []
        width = 0

        def add(
            after: list[str],
            conv_only: bool = False,
            streamable: bool = False,
            device: str = device,
            group: str = group,
            names: list[str] = names,
        ) -> str:
            nonlocal width
            name = f"{device}/L{len(names)}"
            target = 10 ** rng.uniform(log_lo, log_hi)
            layer, width = _synthetic_layer(rng, name, group, target, conv_only, streamable)
            if names and rng.random() < skip_prob:
                extra = rng.choice(names[-8:])
                if extra not in after:
                    after = [*after, extra]
            graph.add_layer(layer, after=after, inputs_from=None if names else device)
            names.append(name)
            return name

        tip = add([], conv_only=True, streamable=True)
        prefix = True
        while len(names) < count:
            left = count - len(names)
            if left >= 3 and len(names) >= 1 and rng.random() < branch_prob:
                prefix = False
                a = add([tip])
                b = add([tip])
                tip = add([a, b])
                continue
            stream = prefix and len(names) < 3
            prefix = stream
            tip = add([tip], conv_only=stream, streamable=stream)
        outputs.append(EncoderOutput(tip, width))
    fused = concat_fusion(graph, outputs, hidden=fusion_hidden)
    classifier_head(graph, fused, classes=classes)
    return graph
