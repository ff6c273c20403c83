"""Audio encoders: the VGGish CNN on a log-mel spectrogram."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from owin_cosim.workload.graph import ModelGraph, conv2d, matmul, pool2d
from owin_cosim.workload.zoo.common import (
    EncoderOutput,
    Scope,
    ceil_half,
    check_device,
    int_param,
    positive_int,
)

__all__ = ["audio_cnn", "audio_cnn_input_bytes"]


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
    device = check_device(where, device)
    q = positive_int(where, "mel_bins", mel_bins)
    p = positive_int(where, "frames", frames)
    s = Scope(graph, device, f"encoder:{device}")

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
        p, q = ceil_half(p), ceil_half(q)
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


def audio_cnn_input_bytes(params: Mapping[str, Any]) -> int:
    """Bytes of one spectrogram: ``mel_bins x frames`` float16 log-mel values.

    >>> audio_cnn_input_bytes({"mel_bins": 64, "frames": 96})
    12288
    """
    where = "audio_cnn"
    return int_param(where, params, "mel_bins") * int_param(where, params, "frames") * 2
