"""Text encoders: a BERT-style transformer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from owin_cosim.workload.graph import ModelGraph, eltwise, matmul
from owin_cosim.workload.zoo.common import (
    EncoderOutput,
    Scope,
    attention_block,
    check_device,
    int_param,
    positive_int,
)

__all__ = ["text_transformer", "text_transformer_input_bytes"]


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
    device = check_device(where, device)
    s_len = positive_int(where, "seq_len", seq_len)
    n_blocks = positive_int(where, "layers", layers)
    d = positive_int(where, "d_model", d_model)
    h = positive_int(where, "heads", heads)
    f = positive_int(where, "ffn", ffn)
    if d % h:
        raise ValueError(f"{where}: d_model ({d}) must be a multiple of heads ({h})")
    s = Scope(graph, device, f"encoder:{device}")

    tip = s.add(
        eltwise(s.name("embed"), C=d, P=s_len, operands=2, streamable=True, group=s.group),
        inputs_from=device,
    )
    tip = s.add(eltwise(s.name("embed.ln"), C=d, P=s_len, operands=1, group=s.group), [tip])
    for b in range(n_blocks):
        tag = f"block{b}"
        out = attention_block(s, tag, rows=s_len, d=d, heads=h, after=[tip])
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


def text_transformer_input_bytes(params: Mapping[str, Any]) -> int:
    """Bytes of one input: ``seq_len`` int32 token ids.

    >>> text_transformer_input_bytes({"seq_len": 128})
    512
    """
    return int_param("text_transformer", params, "seq_len") * 4
