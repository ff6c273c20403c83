"""Point-cloud (lidar) encoders: PointNet."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from owin_cosim.workload.graph import ModelGraph, matmul
from owin_cosim.workload.zoo.common import (
    EncoderOutput,
    Scope,
    check_device,
    flag,
    int_param,
    positive_int,
)

__all__ = ["pointnet", "pointnet_input_bytes"]


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
    device = check_device(where, device)
    n = positive_int(where, "num_points", num_points)
    transforms = flag(where, "transforms", transforms)
    s = Scope(graph, device, f"encoder:{device}")

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


def pointnet_input_bytes(params: Mapping[str, Any]) -> int:
    """Bytes of one cloud: ``num_points`` x (x, y, z, intensity) float32 (the encoder
    uses x, y, z).

    >>> pointnet_input_bytes({"num_points": 1024, "transforms": True})
    16384
    """
    return int_param("pointnet", params, "num_points") * 4 * 4
