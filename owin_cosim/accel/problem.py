"""A layer as Timeloop's CNN-layer problem: the one conversion every Timeloop-style backend uses.

Timeloop's ``CNN-Layer`` problem shape has seven dimensions (``R S P Q C M N``) and three
dataspaces: ``Weights[C, M, R, S]``, ``Inputs[N, C, H, W]`` and ``Outputs[N, M, P, Q]``;
each operation multiplies a weight by an input and reduces over ``C``, ``R`` and ``S``
into an output. Convolutions and matrix products (``C`` in, ``M`` out, rows in ``N`` or
``P``) are that shape exactly.

**Channel-wise layers** (depthwise convolution, pooling, elementwise) have no reduction
over channels: output channel ``c`` reads input channel ``c`` only. The shape cannot say
so with ``C > 1``, and of the ways to write such a layer in it,

=========================  =========================================================
``C = channels, M = 1``    one output map summing all channels: ``Outputs`` are a
                           factor ``channels`` too small, and the mapper may unroll
                           ``C`` as a spatial reduction that the layer does not have
``M = channels, C = 1``    every channel reads the same input map: ``Inputs`` (the
                           largest tensor of these layers) a factor ``channels`` too
                           small, broadcast to all output channels
``N = N x channels,``      each channel is an independent image of the batch:
``C = M = 1``              ``Inputs``, ``Outputs`` and the operation count are exact
=========================  =========================================================

the last is the one used: its only error is in ``Weights``, which it counts as one
``R x S`` filter shared by the whole batch (a depthwise layer has ``R x S x channels``
weights, a small tensor next to its feature maps; pooling and elementwise layers have
none). An elementwise layer's second and further operands are not counted as reads
(``Layer.macs`` still counts their operations for the cost).

Both :class:`~owin_cosim.accel.loopnest.backend.LoopNestCostModel` and
:class:`~owin_cosim.accel.timeloop.backend.TimeloopCostModel` (through
:func:`~owin_cosim.accel.timeloop.formats.layer_to_problem`) price this instance, so the
two backends see the same problem for the same layer.
"""

from __future__ import annotations

from owin_cosim.workload.graph import Layer, OpKind

__all__ = ["cnn_layer_instance"]

#: Layers that are Timeloop's CNN-layer shape as they are (a reduction over ``C``).
_REDUCING = (OpKind.CONV, OpKind.MATMUL)


def cnn_layer_instance(layer: Layer) -> dict[str, int]:
    """The ``problem.instance`` of Timeloop's CNN-layer shape for ``layer``.

    Parameters
    ----------
    layer : Layer
        Any op kind; channel-wise ones (depthwise, pool, eltwise) have their channels
        folded into ``N`` with ``C = M = 1`` (see the module doc for why).

    Returns
    -------
    dict
        ``C, M, R, S, N, P, Q`` and the strides and dilations.

    Examples
    --------
    >>> from owin_cosim.workload.graph import conv2d, depthwise2d
    >>> p = cnn_layer_instance(depthwise2d("dw", C=32, P=14, Q=14, R=3))
    >>> p["C"], p["M"], p["N"], p["R"]
    (1, 1, 32, 3)
    >>> cnn_layer_instance(conv2d("c", C=3, M=8, P=4, Q=4))["C"]
    3
    """
    reducing = layer.op in _REDUCING
    return {
        "C": layer.C if reducing else 1,
        "M": layer.M if reducing else 1,
        "R": layer.R,
        "S": layer.S,
        "N": layer.N if reducing else layer.N * layer.C,
        "P": layer.P,
        "Q": layer.Q,
        "Hstride": layer.Hstride,
        "Wstride": layer.Wstride,
        "Hdilation": layer.Hdilation,
        "Wdilation": layer.Wdilation,
    }
