"""Heads: the layers after the fusion block (a classifier)."""

from __future__ import annotations

from owin_cosim.workload.graph import ModelGraph, matmul
from owin_cosim.workload.zoo.common import EncoderOutput, Scope, check_inputs, positive_int

__all__ = ["classifier_head"]


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
    >>> from owin_cosim.workload.zoo.vector import mlp_encoder
    >>> g = ModelGraph("h")
    >>> enc = mlp_encoder(g, "a", in_features=4, hidden=(8,))
    >>> classifier_head(g, enc, classes=3, hidden=5)
    'head/fc2'
    >>> g.macs_of_group("head")
    55
    """
    where = "classifier head"
    (fused,) = check_inputs(where, graph, [fused])
    n_classes = positive_int(where, "classes", classes)
    width = positive_int(where, "hidden", hidden)
    s = Scope(graph, prefix, "head")
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
