"""The ONNX ops :mod:`owin_cosim.workload.onnx_import` knows: one layer builder per op.

:data:`LAYER_OPS` maps an op type to the function that builds its
:class:`~owin_cosim.workload.graph.Layer` from the node's inferred shapes
(:class:`NodeShapes`); :data:`SHAPE_OPS` lists the ops that compute nothing (no layer,
the edges pass through). See :mod:`owin_cosim.workload.onnx_import` for the rules.

Examples
--------
>>> sorted(op for op in LAYER_OPS if op.endswith("Pool"))[:3]
['AveragePool', 'GlobalAveragePool', 'GlobalLpPool']
>>> "Reshape" in SHAPE_OPS, "Reshape" in LAYER_OPS
(True, False)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import onnx
from onnx import helper

from owin_cosim.workload.graph import Layer, OpKind

__all__ = ["LAYER_OPS", "SHAPE_OPS", "NodeShapes", "eltwise_layer"]

#: Ops that move or re-index data without computing: no layer, the edges pass through.
SHAPE_OPS = frozenset(
    {
        "Reshape",
        "Flatten",
        "Transpose",
        "Concat",
        "Squeeze",
        "Unsqueeze",
        "Identity",
        "Dropout",
        "Split",
        "Slice",
        "Gather",
        "GatherElements",
        "GatherND",
        "Expand",
        "Tile",
        "Pad",
        "Shape",
        "Size",
        "Constant",
        "ConstantOfShape",
        "Cast",
        "CastLike",
        "DepthToSpace",
        "SpaceToDepth",
        "Range",
    }
)


@dataclass(frozen=True)
class NodeShapes:
    """One node with the inferred shapes of its tensors."""

    node: onnx.NodeProto
    name: str
    shapes: Mapping[str, tuple[int, ...] | None]
    constant: set[str]

    def _tensor(self, tensor: str, what: str) -> tuple[int, ...]:
        shape = self.shapes.get(tensor)
        if shape is None:
            raise ValueError(
                f"node {self.name!r} ({self.node.op_type}): the shape of its {what} "
                f"{tensor!r} is unknown or symbolic after shape inference; expected static "
                "shapes (fix the graph inputs' dimensions)"
            )
        return shape

    def input(self, i: int) -> tuple[int, ...]:
        """The shape of input ``i``."""
        return self._tensor(self.node.input[i], f"input {i}")

    def output(self, i: int = 0) -> tuple[int, ...]:
        """The shape of output ``i``."""
        return self._tensor(self.node.output[i], f"output {i}")

    def is_constant(self, i: int) -> bool:
        """Whether input ``i`` is a constant (an initializer or folded)."""
        return self.node.input[i] in self.constant

    def live_inputs(self) -> int:
        """The inputs that are not constants."""
        return sum(1 for t in self.node.input if t and t not in self.constant)

    def ints(self, key: str, default: list[int]) -> list[int]:
        """An integer-list attribute (``default`` when absent)."""
        for attr in self.node.attribute:
            if attr.name == key:
                return [int(v) for v in helper.get_attribute_value(attr)]
        return default

    def int_attr(self, key: str, default: int) -> int:
        """An integer attribute (``default`` when absent)."""
        for attr in self.node.attribute:
            if attr.name == key:
                return int(helper.get_attribute_value(attr))
        return default

    def fail(self, why: str) -> ValueError:
        """An error about this node."""
        return ValueError(f"node {self.name!r} ({self.node.op_type}): {why}")


def _spatial(n: NodeShapes, x: tuple[int, ...]) -> int:
    """1 or 2 spatial dimensions (NCL or NCHW), else an error."""
    if len(x) not in (3, 4):
        raise n.fail(f"expected a 1-D or 2-D input (rank 3 or 4), got shape {list(x)}")
    return len(x) - 2


def _pair(values: list[int], spatial: int) -> tuple[int, int]:
    return (values[0], values[1]) if spatial == 2 else (values[0], 1)


def _conv(n: NodeShapes) -> Layer:
    x, w, y = n.input(0), n.input(1), n.output()
    spatial = _spatial(n, x)
    R, S = _pair(list(w[2:]), spatial)
    P, Q = _pair(list(y[2:]), spatial)
    sh, sw = _pair(n.ints("strides", [1, 1]), spatial)
    dh, dw = _pair(n.ints("dilations", [1, 1]), spatial)
    groups, channels, maps = n.int_attr("group", 1), x[1], y[1]
    if groups < 1 or channels % groups or maps % groups:
        raise n.fail(f"group {groups} does not divide {channels} inputs and {maps} outputs")
    base = Layer(
        n.name,
        OpKind.CONV,
        R=R,
        S=S,
        P=P,
        Q=Q,
        C=channels,
        M=maps,
        N=y[0],
        Hstride=sh,
        Wstride=sw,
        Hdilation=dh,
        Wdilation=dw,
    )
    if groups == 1:
        return base
    if groups == channels == maps:
        return replace(base, op=OpKind.DEPTHWISE, M=1)
    # G groups: G independent convolutions, each with its own weights, as one layer.
    return replace(
        base,
        C=channels // groups,
        M=maps // groups,
        N=y[0] * groups,
        weights_from_activation=True,
    )


def _product(n: NodeShapes, rows: int, k: int, cols: int, batch: int, stored: bool) -> Layer:
    return Layer(
        n.name,
        OpKind.MATMUL,
        P=rows * (batch if stored else 1),
        C=k,
        M=cols,
        N=1 if stored else batch,
        weights_from_activation=not stored,
    )


def _gemm(n: NodeShapes) -> Layer:
    a, b = n.input(0), n.input(1)
    if len(a) != 2 or len(b) != 2:
        raise n.fail(f"expected 2-D operands, got {list(a)} and {list(b)}")
    m, k = (a[1], a[0]) if n.int_attr("transA", 0) else a
    cols = b[0] if n.int_attr("transB", 0) else b[1]
    if n.is_constant(0) and not n.is_constant(1):  # Y^T = B^T A^T: A is the weight
        return _product(n, cols, k, m, 1, True)
    return _product(n, m, k, cols, 1, n.is_constant(1))


def _matmul(n: NodeShapes) -> Layer:
    a, b, y = n.input(0), n.input(1), n.output()
    m = a[-2] if len(a) > 1 else 1
    k = a[-1]
    cols = b[-1] if len(b) > 1 else 1
    batch = max(math.prod(y) // (m * cols), 1)
    if n.is_constant(1) and len(b) <= 2:  # a weight shared by the whole batch
        return _product(n, m, k, cols, batch, True)
    if n.is_constant(0) and len(a) <= 2:  # (A B)^T = B^T A^T: A is the weight
        return _product(n, cols, k, m, batch, True)
    return _product(n, m, k, cols, batch, False)


def _pool(n: NodeShapes) -> Layer:
    x, y = n.input(0), n.output()
    spatial = _spatial(n, x)
    R, S = _pair(n.ints("kernel_shape", []) or [1, 1], spatial)
    P, Q = _pair(list(y[2:]), spatial)
    sh, sw = _pair(n.ints("strides", [1, 1]), spatial)
    dh, dw = _pair(n.ints("dilations", [1, 1]), spatial)
    return Layer(
        n.name,
        OpKind.POOL,
        R=R,
        S=S,
        P=P,
        Q=Q,
        C=y[1],
        N=y[0],
        Hstride=sh,
        Wstride=sw,
        Hdilation=dh,
        Wdilation=dw,
    )


def _global_pool(n: NodeShapes) -> Layer:
    x = n.input(0)
    spatial = _spatial(n, x)
    R, S = _pair(list(x[2:]), spatial)
    return Layer(n.name, OpKind.POOL, R=R, S=S, C=x[1], N=x[0], Hstride=R, Wstride=S)


def _reduce(n: NodeShapes) -> Layer:
    inputs, outputs = math.prod(n.input(0)), math.prod(n.output())
    return Layer(n.name, OpKind.POOL, R=max(inputs // outputs, 1), C=outputs)


def eltwise_layer(n: NodeShapes) -> Layer:
    """An elementwise layer over the node's first output (dimensions by rank)."""
    y = n.output()
    if len(y) >= 4:
        N, C, P, Q = math.prod(y[:-3]), y[-3], y[-2], y[-1]
    elif len(y) == 3:
        N, P, C, Q = y[0], y[1], y[2], 1
    else:
        N, P, C, Q = 1, (y[0] if len(y) == 2 else 1), (y[-1] if y else 1), 1
    return Layer(n.name, OpKind.ELTWISE, C=C, P=P, Q=Q, N=N, operands=max(n.live_inputs(), 1))


def _words(text: str) -> list[str]:
    return text.split()


_ELTWISE = _words(
    # arithmetic and comparisons
    "Add Sub Mul Div Pow Max Min Sum Mean Mod Where Equal Greater GreaterOrEqual Less "
    "LessOrEqual And Or Xor Not BitShift "
    # activations and unary functions
    "Relu LeakyRelu PRelu Elu Selu Celu Gelu Sigmoid HardSigmoid HardSwish Mish Softplus "
    "Softsign Tanh Sin Cos Tan Asin Acos Atan Sinh Cosh Asinh Acosh Atanh Exp Log Sqrt "
    "Reciprocal Neg Abs Sign Floor Ceil Round Erf Clip IsNaN IsInf ThresholdedRelu Shrink "
    "QuantizeLinear DequantizeLinear Softmax LogSoftmax Hardmax "
    # normalizations
    "BatchNormalization LayerNormalization InstanceNormalization GroupNormalization "
    "LpNormalization LRN MeanVarianceNormalization RMSNormalization"
)
_REDUCE = _words(
    "ReduceMean ReduceMax ReduceMin ReduceSum ReduceProd ReduceL1 ReduceL2 ReduceLogSum "
    "ReduceLogSumExp ReduceSumSquare ArgMax ArgMin"
)

#: Op type -> the builder of its layer.
LAYER_OPS: Mapping[str, Callable[[NodeShapes], Layer]] = {
    "Conv": _conv,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "LpPool": _pool,
    "GlobalAveragePool": _global_pool,
    "GlobalMaxPool": _global_pool,
    "GlobalLpPool": _global_pool,
    **dict.fromkeys(_REDUCE, _reduce),
    **dict.fromkeys(_ELTWISE, eltwise_layer),
}
