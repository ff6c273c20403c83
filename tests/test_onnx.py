"""ONNX models as layers: MAC counts per op kind, ResNet-18 against the zoo, scenarios
with ``model.file: net.onnx`` and ONNX encoders, and clear errors. Every model is built
here with ``onnx.helper`` (no downloads)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from owin_cosim.api import build_problem, load_scenario
from owin_cosim.cli import app
from owin_cosim.errors import ConfigError
from owin_cosim.workload.graph import ModelGraph, OpKind
from owin_cosim.workload.onnx_import import OnnxImportError, OnnxNet, add_onnx, read_onnx
from owin_cosim.workload.zoo import resnet18
from tests.conftest import SPECS, write_scenario

runner = CliRunner()
F = TensorProto.FLOAT


class Net:
    """Nodes and zero initializers of a test graph; tensors named after their node."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, shape: list[int]) -> str:
        self.inits.append(numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name))
        return name

    def op(self, op_type: str, name: str, inputs: list[str], **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name

    def conv(
        self, name: str, x: str, cin: int, cout: int, k: int, stride: int = 1, **kw: Any
    ) -> str:
        groups = kw.get("group", 1)
        w = self.const(f"{name}.w", [cout, cin // groups, k, k])
        pads = [k // 2] * 4
        return self.op("Conv", name, [x, w], strides=[stride] * 2, pads=pads, **kw)

    def shape(self, name: str, values: list[int]) -> str:
        self.inits.append(numpy_helper.from_array(np.array(values, dtype=np.int64), name))
        return name

    def model(self, inputs: dict[str, list[int]], outputs: list[str]) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            "test",
            [helper.make_tensor_value_info(n, F, s) for n, s in inputs.items()],
            [helper.make_tensor_value_info(o, F, None) for o in outputs],
            initializer=self.inits,
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _one_layer(net: Net, inputs: dict[str, list[int]], out: str) -> OnnxNet:
    return read_onnx(net.model(inputs, [out]))


def _layer(onnx_net: OnnxNet, name: str) -> Any:
    return next(layer for layer in onnx_net.layers if layer.name == name)


# ---- op kinds: MACs by hand ------------------------------------------------------------
def test_conv_depthwise_and_grouped_macs() -> None:
    n = Net()
    c = n.conv("c", "x", 3, 16, 3, stride=2)  # 32x32 -> 16x16
    d = n.conv("dw", c, 16, 16, 3, group=16)
    g = n.conv("g", d, 16, 32, 3, group=4)
    dil = n.op("Conv", "dil", [g, n.const("dil.w", [8, 32, 3, 3])], dilations=[2, 2])
    net = _one_layer(n, {"x": [1, 3, 32, 32]}, dil)
    conv, dw, grouped, dilated = net.layers
    assert (conv.op, conv.macs) == (OpKind.CONV, 16 * 16 * 16 * 3 * 9)
    assert (conv.R, conv.S, conv.P, conv.Q, conv.C, conv.M, conv.Hstride) == (
        3,
        3,
        16,
        16,
        3,
        16,
        2,
    )
    assert (dw.op, dw.macs, dw.C, dw.M) == (OpKind.DEPTHWISE, 16 * 16 * 16 * 9, 16, 1)
    # 4 groups of 4 -> 8 channels: one layer, 4 independent problems with their own weights
    assert (grouped.op, grouped.C, grouped.M, grouped.N) == (OpKind.CONV, 4, 8, 4)
    assert grouped.macs == 32 * 16 * 16 * (16 // 4) * 9
    assert grouped.weights_from_activation and grouped.weight_elems == 32 * 4 * 9
    assert grouped.output_elems == 32 * 16 * 16 and grouped.input_elems == 16 * 18 * 18
    # no padding, dilation 2: 16 - 2*2 = 12 rows
    assert (dilated.P, dilated.Hdilation, dilated.macs) == (12, 2, 8 * 12 * 12 * 32 * 9)
    assert net.preds["g"] == ("dw",) and net.reads["c"] == ("x",)


def test_conv1d() -> None:
    n = Net()
    y = n.op("Conv", "c", ["x", n.const("w", [8, 4, 5])], strides=[2])
    layer = _one_layer(n, {"x": [1, 4, 101]}, y).layers[0]
    assert (layer.R, layer.S, layer.P, layer.Q, layer.Hstride) == (5, 1, 49, 1, 2)
    assert layer.macs == 8 * 49 * 4 * 5


def test_gemm_and_matmul_macs() -> None:
    n = Net()
    fc = n.op("Gemm", "fc", ["x", n.const("fc.w", [64, 128])], transB=1)
    net = _one_layer(n, {"x": [4, 128]}, fc)
    layer = net.layers[0]
    assert (layer.op, layer.P, layer.C, layer.M, layer.macs) == (
        OpKind.MATMUL,
        4,
        128,
        64,
        4 * 128 * 64,
    )
    assert not layer.weights_from_activation and layer.weight_elems == 64 * 128

    n = Net()  # attention: Q K^T and A V are activation x activation, per head
    scores = n.op("MatMul", "scores", ["q", "kt"])
    soft = n.op("Softmax", "soft", [scores], axis=-1)
    av = n.op("MatMul", "av", [soft, "v"])
    net = _one_layer(n, {"q": [1, 4, 16, 8], "kt": [1, 4, 8, 16], "v": [1, 4, 16, 8]}, av)
    s, sm, a = net.layers
    assert (s.N, s.P, s.C, s.M, s.weights_from_activation) == (4, 16, 8, 16, True)
    assert s.macs == 4 * 16 * 8 * 16 and a.macs == 4 * 16 * 16 * 8
    assert (sm.op, sm.macs) == (OpKind.ELTWISE, 4 * 16 * 16)
    assert s.weight_elems == 4 * 8 * 16  # K^T of every head

    n = Net()  # a stored weight shared by the batch: rows = batch x tokens
    y = n.op("MatMul", "lin", ["x", n.const("w", [32, 8])])
    layer = _one_layer(n, {"x": [2, 16, 32]}, y).layers[0]
    assert (layer.P, layer.C, layer.M, layer.N, layer.macs) == (32, 32, 8, 1, 2 * 16 * 32 * 8)
    assert not layer.weights_from_activation

    n = Net()  # a stored *first* operand: transposed into place (rows from the activation)
    y = n.op("MatMul", "left", [n.const("w", [8, 32]), "x"])
    layer = _one_layer(n, {"x": [1, 32, 10]}, y).layers[0]
    assert (layer.P, layer.C, layer.M, layer.macs) == (10, 32, 8, 8 * 32 * 10)
    assert layer.weight_elems == 8 * 32


def test_pool_and_reduce_ops() -> None:
    n = Net()
    mp = n.op("MaxPool", "mp", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4)
    ap = n.op("AveragePool", "ap", [mp], kernel_shape=[2, 2], strides=[2, 2])
    gp = n.op("GlobalAveragePool", "gp", [ap])
    rm = n.op("ReduceMean", "rm", ["x"], axes=[2, 3], keepdims=0)
    net = read_onnx(n.model({"x": [1, 8, 16, 16]}, [gp, rm]))
    m, a, g, r = net.layers
    assert (m.op, m.P, m.R, m.Hstride, m.macs) == (OpKind.POOL, 8, 3, 2, 8 * 8 * 8 * 9)
    assert (a.P, a.macs) == (4, 8 * 4 * 4 * 4)
    assert (g.R, g.S, g.P, g.Q, g.macs) == (4, 4, 1, 1, 8 * 16)
    assert (r.op, r.macs) == (OpKind.POOL, 8 * 16 * 16)


def test_elementwise_and_normalization_ops() -> None:
    n = Net()
    add = n.op("Add", "add", ["x", "y"])
    relu = n.op("Relu", "relu", [add])
    sig = n.op("Sigmoid", "sig", [relu])
    scaled = n.op("Mul", "scale", [sig, n.const("s", [1, 8, 1, 1])])
    bn_args = [n.const(f"bn.{k}", [8]) for k in ("g", "b", "m", "v")]
    bn = n.op("BatchNormalization", "bn", [scaled, *bn_args])
    net = _one_layer(n, {"x": [1, 8, 4, 4], "y": [1, 8, 4, 4]}, bn)
    assert all(layer.op is OpKind.ELTWISE for layer in net.layers)
    assert [layer.macs for layer in net.layers] == [128] * 5
    assert [layer.operands for layer in net.layers] == [2, 1, 1, 1, 1]  # constants are no operands
    assert (net.layers[0].N, net.layers[0].C, net.layers[0].P, net.layers[0].Q) == (1, 8, 4, 4)

    n = Net()
    ln = n.op("LayerNormalization", "ln", ["t", n.const("g", [32]), n.const("b", [32])], axis=-1)
    layer = _one_layer(n, {"t": [1, 10, 32]}, ln).layers[0]
    assert (layer.op, layer.N, layer.P, layer.C, layer.macs) == (OpKind.ELTWISE, 1, 10, 32, 320)


def test_shape_ops_keep_edges_and_constants_fold() -> None:
    n = Net()
    a = n.conv("a", "x", 3, 4, 3)
    b = n.conv("b", "x", 3, 4, 3)
    cat = n.op("Concat", "cat", [a, b], axis=1)
    flat = n.op("Flatten", "flat", [cat], axis=1)
    folded = n.op("Add", "folded", [n.const("k1", [10]), n.const("k2", [10])])
    t = n.op("Transpose", "t", [n.const("w", [512, 10])], perm=[1, 0])  # constant: folded
    fc = n.op("Gemm", "fc", [flat, t], transB=1)
    out = n.op("Add", "bias", [fc, n.op("Reshape", "r", [folded, n.shape("shape", [1, 10])])])
    net = _one_layer(n, {"x": [1, 3, 8, 8]}, out)
    assert [layer.name for layer in net.layers] == ["a", "b", "fc", "bias"]
    assert net.preds["fc"] == ("a", "b") and net.preds["bias"] == ("fc",)
    assert _layer(net, "fc").macs == 512 * 10 and not _layer(net, "fc").weights_from_activation
    assert net.outputs["bias"].layers == ("bias",) and net.outputs["bias"].elements == 10


# ---- unsupported ops and bad models ----------------------------------------------------
def _unsupported_net() -> onnx.ModelProto:
    n = Net()
    a = n.op("Relu", "ok", ["x"])
    b = n.op("Resize", "up1", [a, "", n.const("scales", [4])])
    c = n.op("Resize", "up2", [b, "", "scales"])
    d = n.op("Einsum", "mix", [c], equation="nchw->nchw")
    n.nodes.append(helper.make_node("Fancy", [d], ["e"], name="custom", domain="com.example"))
    model = n.model({"x": [1, 2, 4, 4]}, ["e"])
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    return model


def test_unsupported_ops_are_listed_in_one_error() -> None:
    with pytest.raises(OnnxImportError) as info:
        read_onnx(_unsupported_net())
    msg = str(info.value)
    assert "3 unsupported ONNX op type(s)" in msg
    for op, node in (("Resize", "up1"), ("Einsum", "mix"), ("com.example::Fancy", "custom")):
        assert f"{op} (node {node!r})" in msg
    assert "up2" not in msg  # one node per op type
    assert "onnx_unsupported: eltwise" in msg


def test_unsupported_ops_priced_as_eltwise_with_the_flag() -> None:
    n = Net()
    a = n.op("Relu", "ok", ["x"])
    up = n.op("Resize", "up", [a, "", n.const("scales", [4])])
    n.inits[-1] = numpy_helper.from_array(np.array([1, 1, 2, 2], dtype=np.float32), "scales")
    net = read_onnx(n.model({"x": [1, 2, 4, 4]}, [up]), unsupported="eltwise")
    layer = _layer(net, "up")
    assert (layer.op, layer.macs, layer.P, layer.Q) == (OpKind.ELTWISE, 2 * 8 * 8, 8, 8)


def test_malformed_and_symbolic_models() -> None:
    with pytest.raises(OnnxImportError, match="not an ONNX model"):
        read_onnx(b"\x08\x07garbage that is no protobuf \xff\xff\xff")
    n = Net()
    y = n.op("Relu", "r", ["x"])
    graph = helper.make_graph(
        n.nodes, "g", [helper.make_tensor_value_info("x", F, ["batch", 8])],
        [helper.make_tensor_value_info(y, F, None)],
    )  # fmt: skip
    with pytest.raises(OnnxImportError, match=r"symbolic.*\[batch, 8\]"):
        read_onnx(helper.make_model(graph))


# ---- ResNet-18 against the zoo ---------------------------------------------------------
def resnet18_onnx() -> onnx.ModelProto:
    """torchvision's ResNet-18 as exported for inference (batch norms folded into the
    convolutions), batch 1, 3 x 224 x 224, with the 1000-class ``fc``."""
    n = Net()
    x = n.op("Relu", "relu", [n.conv("conv1", "input", 3, 64, 7, 2)])
    x = n.op("MaxPool", "maxpool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4)
    cin = 64
    for stage, width in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            base, stride = f"layer{stage}.{block}", 2 if stage > 1 and block == 0 else 1
            h = n.op("Relu", f"{base}.relu1", [n.conv(f"{base}.conv1", x, cin, width, 3, stride)])
            h = n.conv(f"{base}.conv2", h, width, width, 3)
            skip = (
                x
                if stride == 1 and cin == width
                else n.conv(f"{base}.downsample", x, cin, width, 1, stride)
            )
            x = n.op("Relu", f"{base}.relu2", [n.op("Add", f"{base}.add", [h, skip])])
            cin = width
    x = n.op("Flatten", "flatten", [n.op("GlobalAveragePool", "avgpool", [x])], axis=1)
    x = n.op("Gemm", "fc", [x, n.const("fc.w", [1000, 512]), n.const("fc.b", [1000])], transB=1)
    return n.model({"input": [1, 3, 224, 224]}, [x])


def test_resnet18_matches_the_zoo_layer_by_layer() -> None:
    zoo = ModelGraph("zoo")
    resnet18(zoo, "camera", include_fc=True)
    graph = ModelGraph("onnx")
    add_onnx(graph, read_onnx(resnet18_onnx()), prefix="camera", group="encoder:camera",
             devices={"input": "camera"})  # fmt: skip
    for layer in zoo.layers():  # every zoo layer, with the same dims, group and streaming
        assert graph.layer(layer.name) == layer, layer.name
    extra = [layer for layer in graph.layers() if layer.name not in zoo.graph]
    assert {layer.name.split(".")[-1].split("/")[-1] for layer in extra} == {
        "relu",
        "relu1",
        "relu2",
    }
    assert all(layer.op is OpKind.ELTWISE and layer.operands == 1 for layer in extra)
    reducing = (OpKind.CONV, OpKind.MATMUL)
    macs = sum(layer.macs for layer in graph.layers() if layer.op in reducing)
    assert macs == 1_814_073_344  # the zoo's ResNet-18 with fc (torchvision: 1.814 G)
    relu_ops = 64 * 112 * 112 + 2 * 2 * sum(
        w * (56 // 2**k) ** 2 for k, w in enumerate((64, 128, 256, 512))
    )
    assert graph.total_macs == zoo.total_macs + relu_ops
    assert graph.data_needs["camera/conv1"].device == "camera" and len(graph.data_needs) == 1
    assert sorted(graph.graph.predecessors("camera/layer2.0.add")) == [
        "camera/layer2.0.conv2",
        "camera/layer2.0.downsample",
    ]


# ---- scenarios -------------------------------------------------------------------------
def _two_device_net() -> onnx.ModelProto:
    """Whole model: ``cam`` (an image) and ``mic`` (a vector) fused by concatenation."""
    n = Net()
    c = n.op("Relu", "cam_relu", [n.conv("cam_conv", "cam", 3, 8, 3, 2)])
    c = n.op("Flatten", "cam_flat", [n.op("GlobalAveragePool", "cam_pool", [c])], axis=1)
    m = n.op("Gemm", "mic_fc", ["mic", n.const("mic.w", [16, 64])], transB=1)
    cat = n.op("Concat", "cat", [c, m], axis=1)
    y = n.op("Gemm", "head", [cat, n.const("head.w", [10, 24])], transB=1)
    return n.model({"cam": [1, 3, 32, 32], "mic": [1, 64]}, [y])


def _scenario(tmp_path: Path, model: dict[str, Any], **over: Any) -> Path:
    data: dict[str, Any] = {
        "name": "onnx",
        "seed": 1,
        "devices": [
            {"name": "cam", "modality": "image", "distance_m": 10, "chunks": 2},
            {"name": "mic", "modality": "vec", "distance_m": 20},
        ],
        "network": {"backend": "ofdm", "ofdm": {"num_rbs": 10, "fading": "none"}},
        "model": model,
        "accelerator": {"spec": str(SPECS / "mc4.yaml")},
        "policy": {"name": "pacs"},
        **over,
    }
    return write_scenario(tmp_path / "s.yaml", data)


def _run(path: Path, out: Path) -> dict[str, Any]:
    res = runner.invoke(app, ["run", str(path), "--out", str(out), "--no-plot"])
    assert res.exit_code == 0, res.output
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return summary


def test_whole_model_file_runs(tmp_path: Path) -> None:
    onnx.save(_two_device_net(), tmp_path / "net.onnx")
    path = _scenario(tmp_path, {"file": "net.onnx"})
    problem = build_problem(path)
    # payloads default to the graph inputs: float32 3 x 32 x 32 and 64
    assert [d.payload_bytes for d in problem.devices] == [3 * 32 * 32 * 4, 64 * 4]
    summary = _run(path, tmp_path / "out")
    assert summary["makespan_s"] > 0


def test_encoder_fusion_and_head_files_run(tmp_path: Path) -> None:
    n = Net()
    c = n.op("Relu", "relu", [n.conv("conv", "image", 3, 8, 3, 2)])
    out = n.op("Flatten", "flat", [n.op("GlobalAveragePool", "pool", [c])], axis=1)
    onnx.save(n.model({"image": [1, 3, 32, 32]}, [out]), tmp_path / "enc.onnx")
    mlp = {"name": "mlp", "params": {"in_features": 64, "rows": 1}}
    path = _scenario(tmp_path, {"encoders": {"cam": {"file": "enc.onnx"}, "mic": mlp}})
    graph = build_problem(path)
    assert graph.devices[0].payload_bytes == 3 * 32 * 32 * 4
    _run(path, tmp_path / "out1")

    f = Net()  # an ONNX fusion (inputs named after devices) and head
    cat = f.op("Concat", "cat", ["cam", "mic"], axis=1)
    f.op("Gemm", "fc", [cat, f.const("w", [32, 8 + 256])], transB=1)
    onnx.save(f.model({"cam": [1, 8], "mic": [1, 256]}, ["fc"]), tmp_path / "fusion.onnx")
    h = Net()
    h.op("Gemm", "out", ["z", h.const("w", [5, 32])], transB=1)
    onnx.save(h.model({"z": [1, 32]}, ["out"]), tmp_path / "head.onnx")
    model = {"encoders": {"cam": {"file": "enc.onnx"}, "mic": mlp},
             "fusion": {"file": "fusion.onnx"}, "head": {"file": "head.onnx"}}  # fmt: skip
    path = _scenario(tmp_path, model)
    _run(path, tmp_path / "out2")
    from owin_cosim.scenario.assemble import _build_model

    model_graph, _ = _build_model(load_scenario(path), path)
    assert sorted(model_graph.graph.predecessors("fusion/fc")) == ["cam/pool", "mic/fc1"]
    assert list(model_graph.graph.predecessors("head/out")) == ["fusion/fc"]
    assert (
        model_graph.layer("head/out").group == "head" and model_graph.layer("cam/conv").streamable
    )


def _validate(path: Path) -> tuple[int, str]:
    res = runner.invoke(app, ["validate", str(path)])
    return res.exit_code, res.output


def test_scenario_errors_name_the_file_and_every_problem(tmp_path: Path) -> None:
    onnx.save(_unsupported_net(), tmp_path / "net.onnx")
    code, out = _validate(_scenario(tmp_path, {"file": "net.onnx"}))
    assert code == 2 and "model.file" in out and "net.onnx" in out
    assert all(op in out for op in ("Resize", "Einsum", "com.example::Fancy"))

    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07this is not an onnx model \xff\xff")
    path = _scenario(tmp_path, {"file": "bad.onnx"})
    res = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "o"), "--no-plot"])
    assert res.exit_code == 2 and "bad.onnx" in res.output, res.output
    assert "not an ONNX model" in res.output and not (tmp_path / "o").exists()

    n = Net()
    n.op("Relu", "r", ["camera"])
    onnx.save(n.model({"camera": [1, 4]}, ["r"]), tmp_path / "wrong.onnx")
    code, out = _validate(_scenario(tmp_path, {"file": "wrong.onnx"}))
    assert code == 2 and "['camera']" in out and "cam, mic" in out, out


def test_onnx_input_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from owin_cosim.scenario import model_file

    onnx.save(_two_device_net(), tmp_path / "net.onnx")
    monkeypatch.setattr(model_file, "MAX_ONNX_BYTES", 100)
    with pytest.raises(ConfigError, match="expected at most 100"):
        model_file.read_onnx_file(tmp_path / "net.onnx", tmp_path / "s.yaml", "model.file")


def test_same_file_same_layers(tmp_path: Path) -> None:
    a, b = read_onnx(resnet18_onnx().SerializeToString()), read_onnx(resnet18_onnx())
    assert (
        a.layers == b.layers and a.preds == b.preds and len(a.layers) == 48
    )  # 20 conv, 17 relu, 8 add, 2 pool, fc


def test_onnx_is_imported_only_when_used() -> None:
    """``import onnx`` takes about a second: the command line pays it only for ONNX models."""
    import subprocess
    import sys

    code = "import owin_cosim.cli, sys; assert 'onnx' not in sys.modules"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
