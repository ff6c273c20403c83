"""Fusion blocks: late fusion by concatenation, and cross-modal attention."""

from __future__ import annotations

from collections.abc import Sequence

from owin_cosim.workload.graph import ModelGraph, eltwise, matmul
from owin_cosim.workload.zoo.common import (
    EncoderOutput,
    Scope,
    attention_block,
    check_inputs,
    positive_int,
)

__all__ = ["attention_fusion", "concat_fusion"]


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
    >>> from owin_cosim.workload.zoo.vector import mlp_encoder
    >>> g = ModelGraph("f")
    >>> a = mlp_encoder(g, "a", in_features=4, hidden=(8,))
    >>> b = mlp_encoder(g, "b", in_features=4, hidden=(24,))
    >>> concat_fusion(g, [a, b], hidden=16)
    EncoderOutput(last_layer='fusion/fc', features=16)
    >>> g.layer("fusion/fc").C, sorted(g.graph.predecessors("fusion/fc"))
    (32, ['a/fc0', 'b/fc0'])
    """
    where = "concat fusion"
    items = check_inputs(where, graph, inputs)
    width = positive_int(where, "hidden", hidden)
    s = Scope(graph, prefix, "fusion")
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
    >>> from owin_cosim.workload.zoo.vector import mlp_encoder
    >>> g = ModelGraph("f")
    >>> ins = [mlp_encoder(g, d, in_features=4, hidden=(8,)) for d in ("a", "b", "c")]
    >>> attention_fusion(g, ins, d_model=16, heads=2)
    EncoderOutput(last_layer='fusion/pool', features=16)
    >>> g.layer("fusion/attn.scores").macs == 3 * 3 * 16
    True
    """
    where = "attention fusion"
    items = check_inputs(where, graph, inputs)
    d = positive_int(where, "d_model", d_model)
    h = positive_int(where, "heads", heads)
    if d % h:
        raise ValueError(f"{where}: d_model ({d}) must be a multiple of heads ({h})")
    s = Scope(graph, prefix, "fusion")
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
    out = attention_block(s, "attn", rows=k, d=d, heads=h, after=tokens)
    add = s.add(eltwise(s.name("add"), C=d, P=k, group=s.group), [out, *tokens])
    tip = s.global_pool("pool", C=d, window=k, after=[add])
    return EncoderOutput(tip, d)
