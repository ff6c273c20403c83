"""Multimodal models with ONNX parts: ``model.encoders.DEVICE: {file: enc.onnx}``,
``model.fusion: {file: fusion.onnx}``, ``model.head: {file: head.onnx}``.

Any part may be an ONNX file and the others zoo parts. An encoder file has one graph
input (the device's data, whatever its name) and one graph output; a fusion file has
one graph input per device, named after it (that device's encoder output); a head file
has one graph input (the fused feature). Layers are named ``DEVICE/<node>``,
``fusion/<node>`` and ``head/<node>`` and grouped like the zoo's. A zoo fusion or head
after an ONNX part needs that part's output to come from one layer, as zoo encoders'
do (:class:`~owin_cosim.workload.zoo.EncoderOutput`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from owin_cosim.errors import ConfigError
from owin_cosim.scenario.model_file import check_inputs_are_devices, read_onnx_file
from owin_cosim.scenario.schema import EncoderRef, Scenario
from owin_cosim.workload.graph import ModelGraph
from owin_cosim.workload.zoo import ENCODERS, FUSIONS, HEADS, EncoderOutput, payload_bytes_for

if TYPE_CHECKING:  # `import onnx` takes about a second: only when an ONNX part is read
    from owin_cosim.workload.onnx_import import OnnxNet

__all__ = ["build_with_onnx_parts", "has_onnx_parts"]

_RESERVED = ("fusion", "head")


@dataclass(frozen=True)
class _Out:
    """What a part hands to the next: its last layers and the features they produce."""

    layers: tuple[str, ...]
    features: int


def has_onnx_parts(s: Scenario) -> bool:
    """Whether any encoder, the fusion or the head of ``s`` is an ONNX file."""
    refs = [s.model.encoder_of(d.name) for d in s.devices]
    refs += [s.model.part_of("fusion"), s.model.part_of("head")]
    return any(r is not None and r.file is not None for r in refs)


def _resolve(file: Path, name: str) -> Path:
    p = Path(name).expanduser()
    return p if p.is_absolute() else file.parent / p


def _onnx(s: Scenario, file: Path, key: str, ref: EncoderRef) -> tuple[OnnxNet, Path]:
    assert ref.file is not None
    path = _resolve(file, ref.file)
    if not path.is_file():
        raise ConfigError(file, key, f"ONNX file {str(path)!r} not found")
    return read_onnx_file(path, file, key, s.model.onnx_unsupported), path


def _one(net: OnnxNet, file: Path, key: str, path: Path, what: str) -> tuple[str, str]:
    """The single graph input and output of an encoder or head file."""
    if len(net.inputs) != 1 or len(net.outputs) != 1:
        raise ConfigError(
            file,
            key,
            f"{path}: {len(net.inputs)} graph inputs ({', '.join(net.inputs)}) and "
            f"{len(net.outputs)} outputs; expected one input ({what}) and one output",
        )
    return next(iter(net.inputs)), next(iter(net.outputs))


def _add(
    graph: ModelGraph, net: OnnxNet, file: Path, key: str, path: Path, **feeds: Any
) -> dict[str, tuple[str, ...]]:
    from owin_cosim.workload.onnx_import import OnnxImportError, add_onnx

    try:
        outputs = add_onnx(graph, net, **feeds)
    except (OnnxImportError, ValueError) as exc:
        raise ConfigError(file, key, f"{path}: {exc}") from None
    empty = [n for n, layers in outputs.items() if not layers]
    if empty:
        raise ConfigError(file, key, f"{path}: graph outputs {empty} pass no layer")
    return outputs


def _encoder(
    s: Scenario, file: Path, graph: ModelGraph, device: str, ref: EncoderRef
) -> tuple[_Out, int]:
    """Add one device's encoder; its output and natural payload bytes."""
    key = f"model.encoders.{device}"
    if ref.file is None:
        assert ref.name is not None
        try:
            nbytes = payload_bytes_for(ref.name, ref.params)  # checks name and params
            out = ENCODERS[ref.name](graph, device, **ref.params)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(file, key, str(exc.args[0] if exc.args else exc)) from None
        return _Out((out.last_layer,), out.features), nbytes
    net, path = _onnx(s, file, f"{key}.file", ref)
    source, sink = _one(net, file, f"{key}.file", path, f"the data of {device!r}")
    group = f"encoder:{device}"
    outs = _add(
        graph, net, file, f"{key}.file", path, prefix=device, group=group, devices={source: device}
    )
    return _Out(outs[sink], net.outputs[sink].elements), net.inputs[source].nbytes


def _single(out: _Out, file: Path, key: str, who: str) -> EncoderOutput:
    if len(out.layers) != 1:
        raise ConfigError(
            file,
            key,
            f"the output of {who} comes from {len(out.layers)} layers ({', '.join(out.layers)}); "
            "a zoo fusion or head reads one layer: expected an ONNX file here too, or a "
            "single last layer",
        )
    return EncoderOutput(out.layers[0], out.features)


def _zoo_part(
    file: Path, key: str, registry: Mapping[str, Callable[..., Any]], ref: EncoderRef
) -> Callable[..., Any]:
    name = ref.name or ""
    if name not in registry:
        raise ConfigError(
            file, key, f"unknown {key.split('.')[-1]} {name!r}; valid: {', '.join(registry)}"
        )
    return registry[name]


def _fusion(s: Scenario, file: Path, graph: ModelGraph, encoded: dict[str, _Out]) -> _Out:
    ref = s.model.part_of("fusion")
    if ref.file is None:
        fuse = _zoo_part(file, "model.fusion", FUSIONS, ref)
        inputs = [_single(o, file, "model.fusion", f"encoder {d!r}") for d, o in encoded.items()]
        try:
            out = fuse(graph, inputs, **ref.params)
        except (TypeError, ValueError) as exc:
            raise ConfigError(file, "model.fusion_params", str(exc)) from None
        return _Out((out.last_layer,), out.features)
    net, path = _onnx(s, file, "model.fusion.file", ref)
    check_inputs_are_devices(net, encoded, file, "model.fusion.file", path)
    unread = [d for d in encoded if d not in net.inputs]
    if unread or len(net.outputs) != 1:
        raise ConfigError(
            file,
            "model.fusion.file",
            f"{path}: graph inputs ({', '.join(net.inputs)}) and {len(net.outputs)} outputs; "
            f"expected one input per device ({', '.join(encoded)}) and one output",
        )
    after = {d: encoded[d].layers for d in net.inputs}
    outs = _add(
        graph, net, file, "model.fusion.file", path, prefix="fusion", group="fusion", after=after
    )
    sink = next(iter(net.outputs))
    return _Out(outs[sink], net.outputs[sink].elements)


def _head(s: Scenario, file: Path, graph: ModelGraph, fused: _Out) -> None:
    ref = s.model.part_of("head")
    if ref.file is None:
        make_head = _zoo_part(file, "model.head", HEADS, ref)
        try:
            make_head(graph, _single(fused, file, "model.head", "the fusion"), **ref.params)
        except (TypeError, ValueError) as exc:
            raise ConfigError(file, "model.head_params", str(exc)) from None
        return
    net, path = _onnx(s, file, "model.head.file", ref)
    source, _ = _one(net, file, "model.head.file", path, "the fused feature")
    _add(
        graph,
        net,
        file,
        "model.head.file",
        path,
        prefix="head",
        group="head",
        after={source: fused.layers},
    )


def build_with_onnx_parts(
    s: Scenario, file: Path, encoders: Mapping[str, EncoderRef]
) -> tuple[ModelGraph, dict[str, int]]:
    """The model of ``s`` whose parts are zoo names or ONNX files.

    Parameters
    ----------
    s : Scenario
        The scenario (``model.fusion``, ``model.head``, ``model.onnx_unsupported``).
    file : Path
        The scenario file (ONNX paths are relative to it; errors name it).
    encoders : mapping
        Device -> its encoder (defaults by modality already filled in), in device order.

    Returns
    -------
    ModelGraph, dict
        The graph, and each device's natural payload in bytes.
    """
    for device in encoders:
        if device in _RESERVED:
            raise ConfigError(
                file,
                f"model.encoders.{device}",
                f"the device names {', '.join(_RESERVED)} are reserved for the fusion and "
                "head layers; expected another name",
            )
    graph = ModelGraph(s.name)
    encoded: dict[str, _Out] = {}
    payloads: dict[str, int] = {}
    for device, ref in encoders.items():
        encoded[device], payloads[device] = _encoder(s, file, graph, device, ref)
    _head(s, file, graph, _fusion(s, file, graph, encoded))
    return graph, payloads
