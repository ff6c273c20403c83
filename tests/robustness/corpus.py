"""The corpus of hostile inputs: malformed scenarios, specs, model files and flags.

Every case is generated here (no hand-kept list of files): the families walk a small
valid scenario, the ``mc4`` accelerator spec and a small model file, and break them in
every place. A :class:`Case` is the files to write, the command line (``{scenario}``,
``{dir}`` replaced), and what the one error line must name (the file, and the key or a
prefix of it). ``tests/robustness/test_corpus.py`` runs every case; ``docs/robustness.md``
gives the counts.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from tests.conftest import SPECS, scenario_dict

__all__ = ["Case", "all_cases", "families"]

#: Placeholder a case's text uses for the spec file of the case.
SPEC_REF = "@SPEC@"


@dataclass(frozen=True)
class Case:
    """One hostile input and what its error must say.

    ``key`` is the key path the message must name: exactly, or (``prefix=True``) a key
    that is a prefix of it (for values under untyped mappings, which the component that
    reads them reports). ``names`` is the file (``scenario.yaml``, ``spec.yaml``,
    ``model.yaml``) or flag the message must name.
    """

    family: str
    name: str
    files: dict[str, bytes]
    key: str = ""
    prefix: bool = False
    names: str = "scenario.yaml"
    args: tuple[str, ...] = ("validate", "{scenario}")
    commands: tuple[str, ...] = ("validate", "run")
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.family}:{self.name}"


def _dump(data: Any) -> bytes:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()


def _base() -> dict[str, Any]:
    data = scenario_dict()
    data["accelerator"] = {"spec": "spec.yaml"}
    # accelerator last: a truncated file always loses (part of) its spec path.
    data = {k: v for k, v in data.items() if k != "accelerator"} | {
        "accelerator": data["accelerator"]
    }
    return data


def _spec() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((SPECS / "mc4.yaml").read_text())
    return data


def _model() -> dict[str, Any]:
    return {
        "name": "tiny",
        "layers": [
            {
                "name": "a/conv",
                "op": "conv",
                "dims": {"R": 3, "S": 3, "P": 8, "Q": 8, "C": 3, "M": 8},
                "device": "a",
                "streamable": True,
            },
            {"name": "b/fc", "op": "matmul", "dims": {"P": 1, "C": 64, "M": 8}, "device": "b"},
            {
                "name": "head",
                "op": "matmul",
                "dims": {"C": 16, "M": 4},
                "inputs": ["a/conv", "b/fc"],
            },
        ],
    }


def _with_model() -> dict[str, Any]:
    data = _base()
    data["model"] = {"file": "model.yaml"}
    return data


def _files(scenario: Any = None, spec: Any = None, model: Any = None) -> dict[str, bytes]:
    """The files of a case: the given ones (bytes as they are, anything else dumped)."""
    out: dict[str, bytes] = {}
    for name, value, default in (
        ("scenario.yaml", scenario, _base),
        ("spec.yaml", spec, _spec),
        ("model.yaml", model, _model),
    ):
        value = default() if value is None else value
        out[name] = value if isinstance(value, bytes) else _dump(value)
    return out


# ---- walking a document -----------------------------------------------------------------
Path_ = tuple[str | int, ...]


def _key(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _walk(data: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every (path, value) of a nested document, depth first."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield (*path, k), v
            yield from _walk(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield (*path, i), v
            yield from _walk(v, (*path, i))


def _set(data: Any, path: Path_, value: Any) -> Any:
    out = copy.deepcopy(data)
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


def _delete(data: Any, path: Path_) -> Any:
    out = copy.deepcopy(data)
    node = out
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return out


def _wrong_values(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, bool):
        return [("text", "maybe"), ("list", [1])]
    if isinstance(value, (int, float)):
        return [("text", "abc"), ("mapping", {"x": 1})]
    if isinstance(value, str):
        return [("list", [1, 2]), ("mapping", {"x": 1})]
    if isinstance(value, dict):
        return [("text", "text"), ("number", 5)]
    if isinstance(value, list):
        return [("text", "text"), ("mapping", {"a": 1})]
    return []


# ---- the families -------------------------------------------------------------------------
#: Keys of the base scenario that are required (by the schema, or, for the payload of a
#: model-file scenario and the encoder name, by assembly).
_REQUIRED = [
    ("devices",),
    ("accelerator",),
    ("accelerator", "spec"),
    ("devices", 0, "name"),
    ("devices", 0, "modality"),
    ("devices", 0, "distance_m"),
    ("devices", 1, "distance_m"),
    ("model", "encoders", "a", "name"),
]


def deleted_keys() -> Iterator[Case]:
    base = _base()
    for path in _REQUIRED:
        yield Case("deleted", _key(path), _files(_delete(base, path)), _key(path), prefix=True)
    model = _with_model()
    for path in [("devices", 0, "payload"), ("devices", 1, "payload")]:
        yield Case("deleted", f"model-file {_key(path)}", _files(_delete(model, path)), _key(path))
    for path in [("layers",), ("layers", 0, "name"), ("layers", 0, "op")]:
        yield Case(
            "deleted",
            f"model.yaml {_key(path)}",
            _files(model, model=_delete(_model(), path)),
            _key(path),
            names="model.yaml",
        )
    for path in [
        ("chip",),
        ("architecture",),
        ("energy_pJ",),
        ("chip", "clock_hz"),
        ("chip", "noc"),
    ]:
        yield Case(
            "deleted",
            f"spec.yaml {_key(path)}",
            _files(spec=_delete(_spec(), path)),
            _key(path),
            names="spec.yaml",
        )


def wrong_types() -> Iterator[Case]:
    base = _base()
    for path, value in _walk(base):
        for label, bad in _wrong_values(value):
            yield Case(
                "wrong-type",
                f"{_key(path)}={label}",
                _files(_set(base, path, bad)),
                _key(path),
                prefix=True,
            )


def wrong_types_spec_and_model() -> Iterator[Case]:
    model = _with_model()
    for path, value in _walk(_model()):
        for label, bad in _wrong_values(value)[:1]:
            yield Case(
                "wrong-type",
                f"model.yaml {_key(path)}={label}",
                _files(model, model=_set(_model(), path, bad)),
                _key(path),
                prefix=True,
                names="model.yaml",
            )
    for path, value in _walk(_spec()):
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            bad = "abc" if not isinstance(value, str) else [1]
            yield Case(
                "wrong-type",
                f"spec.yaml {_key(path)}",
                _files(spec=_set(_spec(), path, bad)),
                names="spec.yaml",
            )


def unknown_keys() -> Iterator[Case]:
    base = _base()
    yield Case("unknown-key", "top", _files({**base, "zz_unknown": 1}), "zz_unknown")
    for path, value in _walk(base):
        if isinstance(value, dict):
            bad = _set(base, path, {**value, "zz_unknown": 1})
            yield Case(
                "unknown-key",
                _key(path),
                _files(bad),
                _key((*path, "zz_unknown")),
                prefix=True,
                extra={"mention": "zz_unknown"},
            )
    for path, value in _walk(_model()):
        if isinstance(value, dict) and path[-1] != "dims":
            bad = _set(_model(), path, {**value, "zz_unknown": 1})
            yield Case(
                "unknown-key",
                f"model.yaml {_key(path)}",
                _files(_with_model(), model=bad),
                _key((*path, "zz_unknown")),
                names="model.yaml",
            )
    for path in [("chip",), ("chip", "noc"), ("chip", "dram")]:
        node = _spec()
        for part in path:
            node = node[part]
        bad = _set(_spec(), path, {**node, "zz_unknown": 1})
        yield Case(
            "unknown-key",
            f"spec.yaml {_key(path)}",
            _files(spec=bad),
            _key((*path, "zz_unknown")),
            names="spec.yaml",
        )


#: Every numeric key of the scenario schema a user may set, and a value of it that
#: keeps the rest valid (the corpus replaces it by non-finite and absurd numbers).
_NUMERIC = [
    "seed",
    "devices.0.distance_m",
    "devices.0.tx_power_dBm",
    "devices.0.chunks",
    "devices.0.payload.bytes",
    "network.ofdm.num_rbs",
    "network.ofdm.subcarriers_per_rb",
    "network.ofdm.subcarrier_spacing_hz",
    "network.ofdm.slot_s",
    "network.ofdm.noise_psd_dBm_per_Hz",
    "network.ofdm.noise_figure_dB",
    "network.ofdm.coherence_slots",
    "network.ofdm.coherence_rbs",
    "network.ofdm.rate_efficiency",
    "network.ofdm.max_bits_per_s_per_hz",
    "network.ofdm.snr_gap_dB",
    "network.ofdm.max_slots",
    "network.ofdm.pathloss.ref_distance_m",
    "network.ofdm.pathloss.ref_loss_dB",
    "network.ofdm.pathloss.exponent",
    "network.ofdm.pathloss.shadowing_std_dB",
    "network.ns3.heartbeat_timeout_s",
    "network.ns3.startup_timeout_s",
    "accelerator.latency_scale",
    "accelerator.estimator_timeout_s",
    "accelerator.mapper.evaluations",
    "accelerator.mapper.seed",
    "policy.params.soft_ratio",
]

_ABSURD = [("inf", float("inf")), ("-inf", float("-inf")), ("nan", float("nan")), ("1e308", 1e308)]


def _put(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node: Any = out
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in dotted.split(".")]
    for part in parts[:-1]:
        if isinstance(part, str) and part not in node:
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value
    return out


def _dotted_key(dotted: str) -> str:
    return _key(tuple(int(p) if p.isdigit() else p for p in dotted.split(".")))


def absurd_numbers() -> Iterator[Case]:
    base = _base()
    for dotted in _NUMERIC:
        for label, value in _ABSURD:
            bad = _put(base, dotted, value)
            yield Case("absurd-number", f"{dotted}={label}", _files(bad), _dotted_key(dotted))
    # negative extremes where a lower bound exists
    for dotted in ["devices.0.distance_m", "network.ofdm.num_rbs", "accelerator.latency_scale"]:
        yield Case(
            "absurd-number",
            f"{dotted}=-1e308",
            _files(_put(base, dotted, -1e308)),
            _dotted_key(dotted),
        )
    spec = _spec()
    for path, value in _walk(spec):
        if isinstance(value, float):
            for label, absurd in _ABSURD[::2]:
                yield Case(
                    "absurd-number",
                    f"spec.yaml {_key(path)}={label}",
                    _files(spec=_set(spec, path, absurd)),
                    _key(path),
                    names="spec.yaml",
                )
    for dim in ("P", "C"):
        huge = _set(_model(), ("layers", 1, "dims", dim), 1e308)
        yield Case(
            "absurd-number",
            f"model.yaml dims.{dim}=1e308",
            _files(_with_model(), model=huge),
            f"layers[1].dims.{dim}",
            names="model.yaml",
        )


def _bomb(levels: int, width: int) -> str:
    line = f"zz_anchors: [&b0 [{', '.join(['x'] * width)}]"
    for i in range(1, levels + 1):
        line += f", &b{i} [{', '.join([f'*b{i - 1}'] * width)}]"
    return line + "]\n"


def _text(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def deep_and_bombs() -> Iterator[Case]:
    base = _base()
    text = _text(base)
    for n in (1_000, 5_000, 50_000):
        for label, open_, close in (("list", "[", "]"), ("mapping", "{a: ", "}")):
            deep = open_ * n + ("1" if label == "mapping" else "") + close * n
            for key in ("devices", "network", "model"):
                bad = text.replace(f"\n{key}:", f"\n{key}: {deep}\nzz_{key}:", 1)
                yield Case("deep", f"{key} {label} {n}", _files(bad.encode()))
            if n == 50_000:
                yield Case(
                    "deep",
                    f"spec {label} {n}",
                    _files(spec=f"chip: {deep}\n".encode()),
                    names="spec.yaml",
                )
                yield Case(
                    "deep",
                    f"model file {label} {n}",
                    _files(_with_model(), model=f"layers: {deep}\n".encode()),
                    names="model.yaml",
                )
    # block-style nesting, 1,000 levels of indentation
    block = "".join(f"{'  ' * i}a:\n" for i in range(1000)) + "  " * 1000 + "b: 1\n"
    yield Case("deep", "block mapping 1000", _files(("zz: 1\n" + block).encode()))
    for key in ("name", "seed", "devices", "network", "model", "policy"):
        bad = _bomb(8, 9) + text.replace(f"\n{key}:", f"\n{key}: *b8\nzz_old_{key}:", 1)
        if key == "name":
            bad = _bomb(8, 9) + "name: *b8\n" + text.split("\n", 1)[1]
        yield Case("alias-bomb", f"9^9 at {key}", _files(bad.encode()))
    yield Case(
        "alias-bomb",
        "9^9 spec",
        _files(spec=(_bomb(8, 9) + "chip: *b8\n").encode()),
        names="spec.yaml",
    )
    yield Case(
        "alias-bomb",
        "9^9 model",
        _files(_with_model(), model=(_bomb(8, 9) + "layers: *b8\n").encode()),
        names="model.yaml",
    )
    # Below the node limit: loads, then the schema refuses it; the message stays short.
    for key, named in (("seed", "seed"), ("devices", "devices[0]"), ("policy", "policy")):
        bad = text.replace(f"\n{key}:", f"\n{key}: *b5\nzz_old_{key}:", 1)
        yield Case(
            "alias-bomb",
            f"6^6 at {key}",
            _files((_bomb(5, 6) + bad).encode()),
            named,
            extra={"short": True},
        )


def garbage() -> Iterator[Case]:
    text = _text(_base()).replace("name: tiny", "name: tiny\ndescription: café ß")
    yield Case("encoding", "utf-16", _files(text.encode("utf-16")))
    yield Case("encoding", "utf-16-be no bom", _files(text.encode("utf-16-be")))
    yield Case("encoding", "utf-32", _files(text.encode("utf-32")))
    yield Case("encoding", "latin-1", _files(text.encode("latin-1")))
    yield Case("encoding", "NUL in a value", _files(text.replace("tiny", "ti\0ny").encode()))
    yield Case("encoding", "empty file", _files(b""))
    yield Case("encoding", "only a comment", _files(b"# nothing\n"))
    yield Case("encoding", "a list", _files(b"- 1\n- 2\n"))
    yield Case("encoding", "a scalar", _files(b"42\n"))
    yield Case("encoding", "two documents", _files(text.encode() + b"---\n" + text.encode()))
    rng = random.Random(8)
    for i in range(16):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4096)))
        yield Case("garbage", f"random bytes {i}", _files(blob))
    for i in range(8):
        chars = "{}[]:,&*!|>'\"%@`-? \n\tab1"
        junk = "".join(rng.choice(chars) for _ in range(rng.randrange(1, 600)))
        yield Case("garbage", f"yaml punctuation {i}", _files(("x: 1\n" + junk).encode()))
    raw = _text(_base()).encode()
    for frac in (0.2, 0.4, 0.6, 0.8, 0.95):
        yield Case("garbage", f"truncated at {frac:.0%}", _files(raw[: int(len(raw) * frac)]))
    yield Case("encoding", "spec binary", _files(spec=bytes(range(256)) * 4), names="spec.yaml")
    yield Case(
        "encoding",
        "spec latin-1",
        _files(spec="chip: {name: é}\n".encode("latin-1")),
        names="spec.yaml",
    )
    yield Case(
        "encoding", "spec utf-16", _files(spec=_text(_spec()).encode("utf-16")), names="spec.yaml"
    )
    yield Case(
        "encoding",
        "model binary",
        _files(_with_model(), model=b"\x89PNG\r\n\x1a\n\0\0"),
        names="model.yaml",
    )
    yield Case("encoding", "spec empty", _files(spec=b""), names="spec.yaml")


def tags() -> Iterator[Case]:
    text = _text(_base())
    hostile = [
        "!!python/object/apply:os.system ['echo owned']",
        "!!python/object/new:os.system ['echo owned']",
        "!!python/name:os.system",
        "!!python/module:os",
        "!!python/tuple [1, 2]",
        "!foo bar",
        "!!binary 'AAAA' ",
    ]
    for i, tag in enumerate(hostile):
        for key in ("seed", "network"):
            bad = text.replace(f"\n{key}:", f"\n{key}: {tag}\nzz_old_{key}:", 1)
            yield Case("tag", f"{key} {i}", _files(bad.encode()), extra={"tag": tag})
    yield Case(
        "tag",
        "spec python",
        _files(spec=b"chip: !!python/object/apply:os.system ['x']\n"),
        names="spec.yaml",
    )
    yield Case(
        "tag",
        "model python",
        _files(_with_model(), model=b"layers: !!python/name:os.system\n"),
        names="model.yaml",
    )


def model_and_spec_semantics() -> Iterator[Case]:
    model = _with_model()
    bad_models: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
        ("cycle", lambda m: _set(m, ("layers", 0, "inputs"), ["head"]), "layers"),
        (
            "unknown input",
            lambda m: _set(m, ("layers", 2, "inputs"), ["nope"]),
            "layers[2].inputs[0]",
        ),
        ("duplicate name", lambda m: _set(m, ("layers", 1, "name"), "a/conv"), "layers[1].name"),
        ("no data", lambda m: _delete(m, ("layers", 1, "device")), "layers[1]"),
        ("zero dim", lambda m: _set(m, ("layers", 0, "dims", "P"), 0), "layers[0].dims.P"),
        ("bad op", lambda m: _set(m, ("layers", 0, "op"), "fft"), "layers[0].op"),
        ("empty layers", lambda m: _set(m, ("layers",), []), "layers"),
    ]
    for name, change, key in bad_models:
        yield Case(
            "model-file", name, _files(model, model=change(_model())), key, names="model.yaml"
        )
    yield Case(
        "model-file",
        "missing file",
        {"scenario.yaml": _dump(model), "spec.yaml": _dump(_spec())},
        "model.file",
    )
    yield Case(
        "model-file",
        "zoo_params without zoo",
        _files(_put(_base(), "model.zoo_params", {"layers": 50})),
        "model.zoo_params",
    )
    for label, value in (("1e6", 1_000_000), ("text", "many"), ("inf", float("inf")), ("0", 0)):
        bad = _put(_base(), "model", {"zoo": "synthetic", "zoo_params": {"layers": value}})
        yield Case("model-file", f"zoo layers {label}", _files(bad), "model.zoo_params")
    bad = _put(_base(), "model", {"zoo": "synthetic", "zoo_params": {"layers": 10, "colour": 1}})
    yield Case("model-file", "zoo unknown param", _files(bad), "model.zoo_params")
    spec = _spec()
    yield Case("spec", "missing file", {"scenario.yaml": _dump(_base())}, "accelerator.spec")
    yield Case(
        "spec",
        "zero cores",
        _files(spec=_set(spec, ("chip", "cores"), 0)),
        "chip.cores",
        names="spec.yaml",
    )
    yield Case("spec", "a list", _files(spec=b"- 1\n"), names="spec.yaml")
    yield Case("spec", "directory", _files(spec=b""), names="spec.yaml", extra={"spec_dir": True})


def policies_and_endpoints() -> Iterator[Case]:
    base = _base()
    cases: list[tuple[str, str, Any, str]] = [
        ("unknown policy", "policy.name", "nope", "policy.name"),
        ("empty policy", "policy.name", "", "policy.name"),
        ("policy number", "policy.name", 5, "policy.name"),
        ("pacs unknown param", "policy.params", {"colour": 1}, "policy.params.colour"),
        ("pacs soft_ratio 0.5", "policy.params", {"soft_ratio": 0.5}, "policy.params.soft_ratio"),
        ("pacs candidates empty", "policy.params", {"candidates": []}, "policy.params.candidates"),
        ("pacs candidates unknown", "policy.params", {"candidates": ["x"]}, "policy.params"),
        (
            "pacs candidates text",
            "policy.params",
            {"candidates": "johnson"},
            "policy.params.candidates",
        ),
        (
            "pacs candidates 50",
            "policy.params",
            {"candidates": ["spt"] * 50},
            "policy.params.candidates",
        ),
        ("pacs search text", "policy.params", {"search": "perhaps"}, "policy.params.search"),
        ("params a list", "policy.params", [1], "policy.params"),
        ("estimator no port", "accelerator.estimator", "tcp://host", "accelerator.estimator"),
        ("estimator port 0", "accelerator.estimator", "tcp://host:0", "accelerator.estimator"),
        (
            "estimator port 70000",
            "accelerator.estimator",
            "tcp://host:70000",
            "accelerator.estimator",
        ),
        ("estimator scheme", "accelerator.estimator", "http://host:80", "accelerator.estimator"),
        ("estimator garbage", "accelerator.estimator", "::::", "accelerator.estimator"),
        ("estimator markup", "accelerator.estimator", "[/bold]", "accelerator.estimator"),
        ("ns3 endpoint garbage", "network.ns3.endpoint", "foo", "network.ns3.endpoint"),
        (
            "ns3 endpoint port",
            "network.ns3.endpoint",
            "tcp://127.0.0.1:99999",
            "network.ns3.endpoint",
        ),
        ("ns3 endpoint empty", "network.ns3.endpoint", "", "network.ns3.endpoint"),
        ("network backend", "network.backend", "carrier-pigeon", "network.backend"),
        ("cost backend", "accelerator.cost_backend", "abacus", "accelerator.cost_backend"),
        ("modality markup", "devices.0.modality", "[/x]", "devices[0].modality"),
        ("encoder markup", "model.encoders.a.name", "[/bold]", "model"),
    ]
    for name, dotted, value, key in cases:
        bad = _put(base, dotted, value)
        if name == "modality markup":
            bad = _delete(bad, ("model", "encoders"))
            bad["devices"][1]["modality"] = "vec"
        yield Case("policy-endpoint", name, _files(bad), key, prefix=name.startswith("encoder"))


def encoder_params() -> Iterator[Case]:
    """Values under the untyped encoder, fusion and head parameters: the zoo checks them
    (the error names ``model``)."""
    base = _base()
    for dotted, value in [
        ("model.encoders.a.params.in_features", 1e308),
        ("model.encoders.a.params.in_features", float("inf")),
        ("model.encoders.a.params.in_features", float("nan")),
        ("model.encoders.a.params.in_features", -5),
        ("model.encoders.a.params.rows", "x"),
        ("model.encoders.a.params.colour", 1),
        ("model.head_params", {"classes": float("nan")}),
        ("model.fusion", "telepathy"),
        ("model.head", "oracle"),
    ]:
        yield Case(
            "encoder-params", f"{dotted}={value}", _files(_put(base, dotted, value)), "model"
        )


def flags() -> Iterator[Case]:
    ok = _files()
    bad_flags = [
        ("--policy nope", ("run", "{scenario}", "--policy", "nope"), "--policy"),
        ("--policy empty", ("run", "{scenario}", "--policy", ""), "--policy"),
        ("--policy markup", ("run", "{scenario}", "--policy", "[/bold]"), "--policy"),
        ("--policies nope", ("compare", "{scenario}", "--policies", "rtfs,nope"), "--policies"),
        ("--policies empty", ("compare", "{scenario}", "--policies", ""), "--policies"),
        ("--policies commas", ("compare", "{scenario}", "--policies", ",,,"), "--policies"),
        ("--policies markup", ("compare", "{scenario}", "--policies", "[/x]"), "--policies"),
        ("--plan missing", ("run", "{scenario}", "--plan", "{dir}/nope.json"), "nope.json"),
        ("--plan directory", ("run", "{scenario}", "--plan", "{dir}"), ""),
        ("scenario missing", ("validate", "{dir}/nope.yaml"), "nope.yaml"),
        ("scenario directory", ("validate", "{dir}"), ""),
        ("scenario markup name", ("validate", "{dir}/[bold]x[/].yaml"), "[bold]x[/].yaml"),
        ("scenario too long", ("validate", "{dir}/" + "x" * 300 + ".yaml"), "x" * 300),
        ("scenario symlink loop", ("validate", "{dir}/loop.yaml"), "loop.yaml"),
    ]
    for name, args, names in bad_flags:
        yield Case("flag", name, ok, names=names, args=args, commands=("as-given",))
    plans = {
        "deep": b"[" * 50_000 + b"]" * 50_000,
        "binary": bytes(range(256)),
        "utf-16": '{"version": 1}'.encode("utf-16"),
        "not json": b"{version: 1",
        "a list": b"[1, 2]",
        "empty": b"",
    }
    for name, blob in plans.items():
        yield Case(
            "flag",
            f"--plan {name}",
            {**ok, "plan.json": blob},
            names="plan.json",
            args=("run", "{scenario}", "--plan", "{dir}/plan.json", "--out", "{dir}/out"),
            commands=("as-given",),
        )


def families() -> dict[str, Callable[[], Iterator[Case]]]:
    """Every family of the corpus, by name."""
    return {
        "deleted": deleted_keys,
        "wrong-type": wrong_types,
        "wrong-type-files": wrong_types_spec_and_model,
        "unknown-key": unknown_keys,
        "absurd-number": absurd_numbers,
        "deep-and-bombs": deep_and_bombs,
        "garbage": garbage,
        "tags": tags,
        "files": model_and_spec_semantics,
        "policies": policies_and_endpoints,
        "encoder-params": encoder_params,
        "flags": flags,
    }


def all_cases() -> list[Case]:
    """The whole corpus, in a fixed order."""
    return [case for make in families().values() for case in make()]
