"""Build a ResNet-18 ONNX graph (batch 1, 3 x 224 x 224) for Stream, with the onnx helper API.

The topology is torchvision's ``resnet18`` as exported for inference: batch norms folded into
the convolutions (so no BatchNormalization nodes; the folded shifts, i.e. the convolution and
``Gemm`` biases, are left out: Stream's ZigZag cost model would need a fourth operand for them,
and owin-cosim's layers have none), a ``Relu`` after ``conv1``, after every
block's first convolution and after every residual ``Add``; ``MaxPool`` 3x3/2, the
``GlobalAveragePool`` and, with ``include_fc``, ``Flatten`` + the 1000-class ``Gemm``.
The layer shapes are those of owin-cosim's zoo ResNet-18 (``owin_cosim/workload/zoo/vision.py``,
``include_fc=False`` by default, as the zoo's default); :func:`conv_macs` counts the
convolution MACs so the two can be compared.

Tensors are FLOAT16 (16-bit words, as ``accel_specs/mc4.yaml``; Stream reads the element
type as the operand precision) and weights are zeros: Stream only needs shapes.

Runs with any Python that has ``onnx`` (Stream's venv has it)::

    /tmp/stream-venv/bin/python benchmarks/stream/build_resnet18_onnx.py out.onnx [--fc]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

__all__ = ["build_resnet18", "conv_macs", "main"]

DTYPE = TensorProto.FLOAT16


class _Builder:
    """Collects nodes and zero initializers; hands out unique tensor names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def weight(self, name: str, shape: list[int]) -> str:
        self.inits.append(numpy_helper.from_array(np.zeros(shape, dtype=np.float16), name))
        return name

    def conv(self, name: str, x: str, cin: int, cout: int, k: int, stride: int) -> str:
        w = self.weight(f"{name}.weight", [cout, cin, k, k])
        pad = k // 2
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, w],
                [f"{name}_out"],
                name=name,
                kernel_shape=[k, k],
                strides=[stride, stride],
                pads=[pad, pad, pad, pad],
            )
        )
        return f"{name}_out"

    def op(self, op_type: str, name: str, inputs: list[str], **attrs: object) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [f"{name}_out"], name=name, **attrs))
        return f"{name}_out"


def _basic_block(b: _Builder, base: str, x: str, cin: int, width: int, stride: int) -> str:
    h = b.op("Relu", f"{base}.relu1", [b.conv(f"{base}.conv1", x, cin, width, 3, stride)])
    h = b.conv(f"{base}.conv2", h, width, width, 3, 1)
    shortcut = x
    if stride != 1 or cin != width:
        shortcut = b.conv(f"{base}.downsample", x, cin, width, 1, stride)
    return b.op("Relu", f"{base}.relu2", [b.op("Add", f"{base}.add", [h, shortcut])])


def build_resnet18(include_fc: bool = False, hw: int = 224) -> onnx.ModelProto:
    """The shape-inferred, checked ResNet-18 model.

    >>> m = build_resnet18()
    >>> sum(n.op_type == "Conv" for n in m.graph.node), conv_macs(m)
    (20, 1813561344)
    """
    b = _Builder()
    x = b.op("Relu", "relu", [b.conv("conv1", "input", 3, 64, 7, 2)])
    x = b.op("MaxPool", "maxpool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    channels = 64
    for stage, width in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            x = _basic_block(b, f"layer{stage}.{block}", x, channels, width, stride)
            channels = width
    x = b.op("GlobalAveragePool", "avgpool", [x])
    out_shape: list[int] = [1, 512, 1, 1]
    if include_fc:
        x = b.op("Flatten", "flatten", [x], axis=1)
        fc_w = b.weight("fc.weight", [1000, 512])
        x = b.op("Gemm", "fc", [x, fc_w], transB=1)
        out_shape = [1, 1000]
    graph = helper.make_graph(
        b.nodes,
        "resnet18",
        [helper.make_tensor_value_info("input", DTYPE, [1, 3, hw, hw])],
        [helper.make_tensor_value_info(x, DTYPE, out_shape)],
        initializer=b.inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="owin-cosim"
    )
    model = shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    return model


def conv_macs(model: onnx.ModelProto) -> int:
    """MACs of the model's Conv and Gemm nodes (output elements x reduction size)."""
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*model.graph.value_info, *model.graph.output]
    }
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm"):
            w = inits[node.input[1]]
            total += math.prod(shapes[node.output[0]]) * math.prod(w[1:])
    return total


def main(argv: list[str] | None = None) -> None:
    """Write the model to the given path and print its node and MAC counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--fc", action="store_true", help="add Flatten + the 1000-class Gemm")
    args = parser.parse_args(argv)
    model = build_resnet18(include_fc=args.fc)
    onnx.save(model, args.output)
    print(f"{args.output}: {len(model.graph.node)} nodes, {conv_macs(model)} Conv/Gemm MACs")


if __name__ == "__main__":
    main()
