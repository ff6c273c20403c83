"""Image encoders: ResNet-18."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from owin_cosim.workload.graph import ModelGraph, conv2d, eltwise, matmul, pool2d
from owin_cosim.workload.zoo.common import (
    EncoderOutput,
    Scope,
    ceil_half,
    check_device,
    flag,
    int_param,
    positive_int,
)

__all__ = ["resnet18", "resnet18_input_bytes"]


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
    >>> from owin_cosim.workload.graph import OpKind
    >>> g = ModelGraph("r18")
    >>> resnet18(g, "camera", include_fc=True)
    EncoderOutput(last_layer='camera/fc', features=1000)
    >>> sum(l.macs for l in g.layers() if l.op in (OpKind.CONV, OpKind.MATMUL))
    1814073344
    >>> len(g), g.total_macs
    (31, 1816657408)
    """
    where = "resnet18"
    device = check_device(where, device)
    hw = positive_int(where, "input_hw", input_hw)
    cin = positive_int(where, "in_channels", in_channels)
    include_fc = flag(where, "include_fc", include_fc)
    s = Scope(graph, device, f"encoder:{device}")

    hw = ceil_half(hw)
    tip = s.add(
        conv2d(
            s.name("conv1"), C=cin, M=64, P=hw, Q=hw, R=7, stride=2, streamable=True, group=s.group
        ),
        inputs_from=device,
    )
    hw = ceil_half(hw)
    tip = s.add(
        pool2d(s.name("maxpool"), C=64, P=hw, Q=hw, R=3, stride=2, streamable=True, group=s.group),
        [tip],
    )
    channels = 64
    for stage, width in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            if stride == 2:
                hw = ceil_half(hw)
            tip = _basic_block(
                s,
                f"layer{stage}.{block}",
                tip,
                cin=channels,
                width=width,
                hw=hw,
                stride=stride,
                stream=stage == 1,
            )
            channels = width
    tip = s.add(pool2d(s.name("avgpool"), C=512, P=1, Q=1, R=hw, group=s.group), [tip])
    if not include_fc:
        return EncoderOutput(tip, 512)
    tip = s.add(
        matmul(s.name("fc"), rows=1, in_features=512, out_features=1000, group=s.group), [tip]
    )
    return EncoderOutput(tip, 1000)


def _basic_block(
    s: Scope, base: str, tip: str, *, cin: int, width: int, hw: int, stride: int, stream: bool
) -> str:
    """One basic block (``conv1``, ``conv2``, the ``downsample`` shortcut if the shape
    changes, the residual ``add``) after ``tip``, at output size ``hw``; returns ``add``."""
    c1 = s.add(
        conv2d(
            s.name(f"{base}.conv1"),
            C=cin,
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
    if stride != 1 or cin != width:
        shortcut = s.add(
            conv2d(
                s.name(f"{base}.downsample"),
                C=cin,
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
    return s.add(
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


def resnet18_input_bytes(params: Mapping[str, Any]) -> int:
    """Bytes of one image: ``in_channels x input_hw^2`` uint8 pixels (all parameters given).

    >>> resnet18_input_bytes({"in_channels": 3, "input_hw": 224, "include_fc": False})
    150528
    """
    where = "resnet18"
    return int_param(where, params, "in_channels") * int_param(where, params, "input_hw") ** 2
