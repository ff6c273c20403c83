"""Seeded random multimodal DAGs, for benchmarks (the ``synthetic`` whole-model entry)."""

from __future__ import annotations

import math
import random

from owin_cosim.workload.graph import Layer, ModelGraph, conv2d, depthwise2d, matmul
from owin_cosim.workload.zoo.common import EncoderOutput, positive_int
from owin_cosim.workload.zoo.fusion import concat_fusion
from owin_cosim.workload.zoo.heads import classifier_head

__all__ = ["synthetic_dag"]

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
    k = positive_int(where, "modalities", modalities)
    total = positive_int(where, "layers", layers)
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
