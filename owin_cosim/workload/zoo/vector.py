"""Encoders of plain feature vectors (IMU samples, tabular data): a small MLP."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from owin_cosim.workload.graph import ModelGraph, matmul
from owin_cosim.workload.zoo.common import (
    EncoderOutput,
    Scope,
    check_device,
    int_param,
    positive_int,
)

__all__ = ["mlp_encoder", "mlp_input_bytes"]


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
    device = check_device(where, device)
    width = positive_int(where, "in_features", in_features)
    n_rows = positive_int(where, "rows", rows)
    if isinstance(hidden, str | bytes) or not isinstance(hidden, Sequence) or not hidden:
        raise TypeError(f"{where}: hidden must be a non-empty list of integers, got {hidden!r}")
    widths = [positive_int(where, f"hidden[{i}]", w) for i, w in enumerate(hidden)]
    s = Scope(graph, device, f"encoder:{device}")

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


def mlp_input_bytes(params: Mapping[str, Any]) -> int:
    """Bytes of one payload: ``rows x in_features`` float32 values.

    >>> mlp_input_bytes({"in_features": 8, "rows": 2, "hidden": (256, 128)})
    64
    """
    return int_param("mlp", params, "rows") * int_param("mlp", params, "in_features") * 4
