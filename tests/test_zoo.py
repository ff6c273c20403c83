"""Tests of the model zoo: published MAC counts, graph structure, registries, errors."""

from __future__ import annotations

from dataclasses import astuple
from typing import Any

import networkx as nx
import pytest

from owin_cosim.workload.graph import ModelGraph, OpKind
from owin_cosim.workload.zoo import (
    DEFAULT_ENCODER_BY_MODALITY,
    ENCODER_RECORDS,
    ENCODERS,
    FUSIONS,
    HEADS,
    EncoderOutput,
    UnknownNameError,
    audio_cnn,
    build_multimodal,
    payload_bytes_for,
    pointnet,
    resnet18,
    synthetic_dag,
    text_transformer,
)

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "resnet18": {},
    "audio_cnn": {},
    "pointnet": {},
    "text_transformer": {},
    "mlp": {"in_features": 32, "hidden": (64, 16), "rows": 8},
}


def compute_macs(graph: ModelGraph) -> int:
    """MACs of the convolutions and matrix products only."""
    return sum(layer.macs for layer in graph.layers() if layer.op in (OpKind.CONV, OpKind.MATMUL))


def conv(hw: int, cin: int, cout: int, k: int) -> int:
    return hw * hw * cin * cout * k * k


def sinks(graph: ModelGraph) -> list[str]:
    return [n for n in graph.graph.nodes if graph.graph.out_degree(n) == 0]


# ---- published / closed-form MAC counts ------------------------------------------------
def test_resnet18_macs_match_torchvision() -> None:
    g = ModelGraph("r18")
    out = resnet18(g, "camera", include_fc=True)
    assert out == EncoderOutput("camera/fc", 1000)
    # Independent arithmetic: stem, layer1 (4 x 64->64 at 56), layers 2-4 (one stride-2
    # 3x3, three 3x3, one 1x1 downsample each), fc.
    expected = conv(112, 3, 64, 7) + 4 * conv(56, 64, 64, 3) + 512 * 1000
    for hw, c in ((28, 128), (14, 256), (7, 512)):
        expected += conv(hw, c // 2, c, 3) + 3 * conv(hw, c, c, 3) + conv(hw, c // 2, c, 1)
    assert expected == 1_814_073_344  # torchvision's conv + fc MAC count
    assert compute_macs(g) == expected
    assert abs(g.total_macs - 1.814e9) / 1.814e9 < 0.02
    assert g.total_macs == 1_816_657_408  # + maxpool, 8 residual adds, avgpool

    kinds = [layer.op for layer in g.layers()]
    assert kinds.count(OpKind.CONV) == 20
    assert kinds.count(OpKind.ELTWISE) == 8
    assert kinds.count(OpKind.POOL) == 2
    assert kinds.count(OpKind.MATMUL) == 1
    assert g.layer("camera/layer4.1.add").P == 7
    assert g.layer("camera/avgpool").R == 7


def test_resnet18_default_has_no_fc_and_streams_stem_and_layer1() -> None:
    g = ModelGraph("r18")
    assert resnet18(g, "cam") == EncoderOutput("cam/avgpool", 512)
    assert compute_macs(g) == 1_813_561_344
    streamable = {layer.name for layer in g.layers() if layer.streamable}
    assert streamable == {
        n for n in g.graph.nodes if n in ("cam/conv1", "cam/maxpool") or n.startswith("cam/layer1.")
    }
    x = g.expand_chunks({"cam": 4})
    assert "cam/layer1.1.add#3" in x.graph
    assert "cam/layer2.0.conv1" in x.graph
    assert x.total_macs == g.total_macs


def test_resnet18_other_resolution() -> None:
    g = ModelGraph("r18")
    resnet18(g, "cam", input_hw=112, in_channels=1)
    assert g.layer("cam/conv1").C == 1
    assert g.layer("cam/conv1").P == 56
    assert g.layer("cam/avgpool").R == 4  # 112 / 32 = 3.5, ceil-rounded


def test_vggish_macs() -> None:
    g = ModelGraph("vggish")
    assert audio_cnn(g, "mic") == EncoderOutput("mic/fc2", 128)
    # 96 frames x 64 mel bands, 3x3 "same" convs, 2x2 pools, flatten 512 x 6 x 4.
    convs = (
        conv(1, 1, 64, 3) * 96 * 64
        + 48 * 32 * 128 * 64 * 9
        + 24 * 16 * (256 * 128 + 256 * 256) * 9
        + 12 * 8 * (512 * 256 + 512 * 512) * 9
    )
    fcs = 512 * 6 * 4 * 4096 + 4096 * 4096 + 4096 * 128
    assert convs == 796_262_400
    assert fcs == 67_633_152
    assert compute_macs(g) == convs + fcs == 863_895_552  # published: ~0.86 G
    pools = 4 * (48 * 32 * 64 + 24 * 16 * 128 + 12 * 8 * 256 + 6 * 4 * 512)
    assert g.total_macs == convs + fcs + pools
    for layer in g.layers():
        assert layer.streamable == (layer.op is not OpKind.MATMUL), layer.name


def test_vggish_time_axis_is_p() -> None:
    g = ModelGraph("a")
    audio_cnn(g, "mic", frames=48, mel_bins=40)
    first = g.layer("mic/conv1")
    assert (first.P, first.Q) == (48, 40)
    assert g.layer("mic/fc1_1").C == 512 * 3 * 3  # 48 -> 3, 40 -> 20 -> 10 -> 5 -> 3
    x = g.expand_chunks({"mic": 3})
    assert {"mic/pool4#0", "mic/pool4#2"} <= set(x.graph.nodes)
    assert "mic/fc1_1" in x.graph


def test_pointnet_macs() -> None:
    n = 1024
    per_point_main = 3 * 64 + 64 * 64 + 64 * 64 + 64 * 128 + 128 * 1024
    g = ModelGraph("pn")
    assert pointnet(g, "lidar", transforms=False) == EncoderOutput("lidar/maxpool", 1024)
    assert compute_macs(g) == n * per_point_main == 151_191_552  # paper: 148 M (vanilla)
    assert g.total_macs == n * per_point_main + n * 1024
    for layer in g.layers():
        assert layer.streamable == (layer.op is OpKind.MATMUL), layer.name

    tnet = {
        k: n * (k * 64 + 64 * 128 + 128 * 1024) + 1024 * 512 + 512 * 256 + 256 * k * k
        for k in (3, 64)
    }
    apply = n * 3 * 3 + n * 64 * 64
    g = ModelGraph("pn")
    pointnet(g, "lidar")
    assert compute_macs(g) == n * per_point_main + tnet[3] + tnet[64] + apply
    assert compute_macs(g) == 447_360_256  # paper: 440 M FLOPs with T-Nets
    assert g.total_macs == 447_360_256 + 3 * n * 1024
    pool = g.layer("lidar/maxpool")
    assert (pool.R, pool.S, pool.P, pool.C, pool.streamable) == (n, 1, 1, 1024, False)
    assert g.layer("lidar/tnet2.apply").weights_from_activation


@pytest.mark.parametrize(
    ("s", "blocks", "d", "h", "f"), [(128, 4, 256, 4, 1024), (64, 2, 128, 2, 512)]
)
def test_transformer_macs_closed_form(s: int, blocks: int, d: int, h: int, f: int) -> None:
    g = ModelGraph("bert")
    out = text_transformer(g, "txt", seq_len=s, layers=blocks, d_model=d, heads=h, ffn=f)
    assert out == EncoderOutput("txt/pooler", d)
    per_block = 4 * s * d * d + 2 * s * s * d + 2 * s * d * f
    assert compute_macs(g) == blocks * per_block + d * d
    eltwise = 2 * s * d + blocks * (h * s * s + 4 * s * d)
    assert g.total_macs == blocks * per_block + d * d + eltwise
    assert [layer.name for layer in g.layers() if layer.streamable] == ["txt/embed"]
    scores = g.layer("txt/block0.scores")
    assert (scores.N, scores.weights_from_activation) == (h, True)


def test_transformer_default_macs() -> None:
    g = ModelGraph("bert")
    text_transformer(g, "txt")
    assert compute_macs(g) == 436_273_152
    assert g.total_macs == 437_125_120


# ---- structure -------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_encoder_structure(name: str) -> None:
    g = ModelGraph(name)
    out = ENCODERS[name](g, "dev", **DEFAULT_PARAMS[name])
    assert g.find_cycle() is None
    assert sinks(g) == [out.last_layer]
    sources = [n for n in g.graph.nodes if g.graph.in_degree(n) == 0]
    assert sources
    assert set(sources) <= set(g.data_needs)
    assert {need.device for need in g.data_needs.values()} == {"dev"}
    assert g.devices() == ["dev"]
    assert all(n.startswith("dev/") for n in g.graph.nodes)
    assert {layer.group for layer in g.layers()} == {"encoder:dev"}
    assert nx.ancestors(g.graph, out.last_layer) == set(g.graph.nodes) - {out.last_layer}
    assert out.features >= 1
    assert payload_bytes_for(name, DEFAULT_PARAMS[name]) > 0


def test_encoders_coexist_in_one_graph() -> None:
    g = ModelGraph("two")
    a, b = resnet18(g, "left"), resnet18(g, "right")
    assert sorted(sinks(g)) == sorted([a.last_layer, b.last_layer])
    assert g.devices() == ["left", "right"]


def test_registries() -> None:
    assert set(ENCODERS) == {"resnet18", "audio_cnn", "pointnet", "text_transformer", "mlp"}
    assert set(FUSIONS) == {"concat", "attention"}
    assert set(HEADS) == {"classifier"}
    assert DEFAULT_ENCODER_BY_MODALITY == {
        "image": "resnet18",
        "audio": "audio_cnn",
        "lidar": "pointnet",
        "text": "text_transformer",
    }
    assert set(DEFAULT_ENCODER_BY_MODALITY.values()) <= set(ENCODERS)


def test_one_encoder_registry() -> None:
    # ENCODERS and DEFAULT_ENCODER_BY_MODALITY are read-only views of ENCODER_RECORDS.
    assert list(ENCODERS) == list(ENCODER_RECORDS)
    for name, record in ENCODER_RECORDS.items():
        assert record.name == name and ENCODERS[name] is record.build
        if record.default_for is not None:
            assert DEFAULT_ENCODER_BY_MODALITY[record.default_for] == name
    assert len(DEFAULT_ENCODER_BY_MODALITY) == sum(
        r.default_for is not None for r in ENCODER_RECORDS.values()
    )
    for view in (ENCODER_RECORDS, ENCODERS, DEFAULT_ENCODER_BY_MODALITY, FUSIONS, HEADS):
        with pytest.raises(TypeError):
            view["x"] = None  # type: ignore[index]


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_build_multimodal_four_modalities(fusion: str) -> None:
    encoders = {
        "camera": ("resnet18", {}),
        "mic": ("audio_cnn", {"frames": 48}),
        "lidar": ("pointnet", {"num_points": 512}),
        "chat": ("text_transformer", {"seq_len": 32, "layers": 2}),
    }
    g = build_multimodal("mm", encoders, fusion=fusion, head_params={"classes": 7})
    assert g.find_cycle() is None
    assert sinks(g) == ["head/fc2"]
    assert nx.ancestors(g.graph, "head/fc2") == set(g.graph.nodes) - {"head/fc2"}
    assert g.devices() == list(encoders)
    assert g.layer("head/fc2").M == 7
    groups = {layer.group for layer in g.layers()}
    assert groups == {*(f"encoder:{d}" for d in encoders), "fusion", "head"}
    for name in g.graph.nodes:
        group = g.layer(name).group
        prefix = name.split("/")[0]
        assert group == (f"encoder:{prefix}" if prefix in encoders else prefix)
    fusion_layers = [layer.name for layer in g.layers() if layer.group == "fusion"]
    first = {p for n in fusion_layers for p in g.graph.predecessors(n)} - set(fusion_layers)
    assert first == {"camera/avgpool", "mic/fc2", "lidar/maxpool", "chat/pooler"}
    if fusion == "concat":
        assert g.layer("fusion/fc").C == 512 + 128 + 1024 + 256


def test_build_multimodal_single_encoder_and_params() -> None:
    g = build_multimodal(
        "one",
        {"imu": ("mlp", {"in_features": 6})},
        fusion_params={"hidden": 32},
        head_params={"hidden": 8, "classes": 2},
    )
    assert g.layer("fusion/fc").M == 32
    assert g.macs_of_group("head") == 32 * 8 + 8 * 2


# ---- errors ----------------------------------------------------------------------------
def test_unknown_encoder_lists_valid_names() -> None:
    with pytest.raises(KeyError) as info:
        build_multimodal("m", {"cam": ("resnet50", {})})
    message = str(info.value)
    assert isinstance(info.value, UnknownNameError)
    assert "resnet50" in message and "'cam'" in message
    for name in ENCODERS:
        assert name in message
    assert not message.startswith('"')  # no KeyError repr-quoting


@pytest.mark.parametrize(
    ("kwargs", "valid"),
    [({"fusion": "sum"}, "attention, concat"), ({"head": "regressor"}, "classifier")],
)
def test_unknown_fusion_or_head(kwargs: dict[str, Any], valid: str) -> None:
    with pytest.raises(KeyError, match=valid):
        build_multimodal("m", {"imu": ("mlp", {"in_features": 4})}, **kwargs)


def test_bad_parameters() -> None:
    with pytest.raises(TypeError, match=r"unknown parameter.*depth.*in_channels, include_fc"):
        build_multimodal("m", {"cam": ("resnet18", {"depth": 50})})
    with pytest.raises(TypeError, match=r"missing required parameter.*in_features"):
        build_multimodal("m", {"imu": ("mlp", {})})
    with pytest.raises(TypeError, match="input_hw must be an integer"):
        build_multimodal("m", {"cam": ("resnet18", {"input_hw": "224"})})
    with pytest.raises(ValueError, match="frames must be >= 1"):
        build_multimodal("m", {"mic": ("audio_cnn", {"frames": 0})})
    with pytest.raises(ValueError, match="multiple of heads"):
        build_multimodal("m", {"txt": ("text_transformer", {"d_model": 100, "heads": 3})})
    with pytest.raises(TypeError, match="valid parameters: d_model, heads, prefix"):
        build_multimodal(
            "m",
            {"imu": ("mlp", {"in_features": 4})},
            fusion="attention",
            fusion_params={"hidden": 3},
        )
    with pytest.raises(TypeError, match="expected \\(encoder name, parameters\\)"):
        build_multimodal("m", {"imu": "mlp"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="at least one encoder"):
        build_multimodal("m", {})
    with pytest.raises(ValueError, match="reserved"):
        build_multimodal("m", {"fusion": ("mlp", {"in_features": 4})})
    with pytest.raises(ValueError, match="without '/'"):
        build_multimodal("m", {"a/b": ("mlp", {"in_features": 4})})


# ---- payloads --------------------------------------------------------------------------
def test_payload_bytes() -> None:
    assert payload_bytes_for("resnet18", {}) == 3 * 224 * 224 == 150_528
    assert payload_bytes_for("resnet18", {"input_hw": 112, "in_channels": 1}) == 112 * 112
    assert payload_bytes_for("audio_cnn", {}) == 64 * 96 * 2
    assert payload_bytes_for("pointnet", {"num_points": 2048}) == 2048 * 16
    assert payload_bytes_for("text_transformer", {"seq_len": 64}) == 256
    assert payload_bytes_for("mlp", {"in_features": 10, "rows": 3}) == 120
    with pytest.raises(KeyError, match="pointnet"):
        payload_bytes_for("vit", {})
    with pytest.raises(TypeError, match="missing"):
        payload_bytes_for("mlp", {})


# ---- synthetic DAGs --------------------------------------------------------------------
def layer_tuples(g: ModelGraph) -> list[tuple[Any, ...]]:
    return [astuple(layer) for layer in g.layers()]


@pytest.mark.parametrize(("modalities", "layers"), [(4, 200), (6, 5000), (1, 4)])
def test_synthetic_dag_shape(modalities: int, layers: int) -> None:
    g = synthetic_dag(modalities=modalities, layers=layers, seed=7)
    assert len(g) == layers
    assert g.find_cycle() is None
    assert g.devices() == [f"dev{k}" for k in range(modalities)]
    assert sinks(g) == ["head/fc2"]
    assert nx.ancestors(g.graph, "head/fc2") == set(g.graph.nodes) - {"head/fc2"}
    for k in range(modalities):
        group = f"encoder:dev{k}"
        names = {layer.name for layer in g.layers() if layer.group == group}
        assert all(n.startswith(f"dev{k}/") for n in names)
        exits = [n for n in names if any(s not in names for s in g.graph.successors(n))]
        assert len(exits) == 1
        inputs = [n for n in names if g.graph.in_degree(n) == 0]
        assert len(inputs) == 1 and g.data_needs[inputs[0]].device == f"dev{k}"


def test_synthetic_dag_deterministic_and_varied() -> None:
    a = synthetic_dag(modalities=4, layers=200, seed=3)
    b = synthetic_dag(modalities=4, layers=200, seed=3)
    c = synthetic_dag(modalities=4, layers=200, seed=4)
    assert list(a.graph.edges) == list(b.graph.edges)
    assert layer_tuples(a) == layer_tuples(b)
    assert a.data_needs == b.data_needs
    assert list(a.graph.edges) != list(c.graph.edges)
    assert layer_tuples(a) != layer_tuples(c)
    # some branching and skip edges inside the encoders
    assert any(a.graph.in_degree(n) > 1 for n in a.graph.nodes if n.startswith("dev"))
    assert any(a.graph.out_degree(n) > 1 for n in a.graph.nodes if n.startswith("dev"))
    macs = [layer.macs for layer in a.layers() if layer.group.startswith("encoder:")]
    assert min(macs) < 1e6 and max(macs) > 1e7
    assert min(macs) > 1e4 and max(macs) < 1e9
    assert any(layer.streamable for layer in a.layers())


def test_synthetic_dag_errors() -> None:
    with pytest.raises(ValueError, match="modalities \\+ 3"):
        synthetic_dag(modalities=4, layers=6, seed=0)
    with pytest.raises(TypeError, match="seed"):
        synthetic_dag(modalities=1, layers=10, seed=1.5)  # type: ignore[arg-type]
