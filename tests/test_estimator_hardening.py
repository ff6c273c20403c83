"""The estimator service against hostile and careless peers: malformed frames, strangers
asking it to stop, huge queries, slow queries, CURVE, binds beyond loopback."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
import zmq
from typer.testing import CliRunner

from owin_cosim.accel.limits import MAX_LAYERS_PER_BATCH, MAX_MAPPER_EVALUATIONS
from owin_cosim.accel.service import server as server_mod
from owin_cosim.accel.service.client import EstimatorError, RemoteCostModel
from owin_cosim.accel.service.protocol import PROTOCOL_VERSION, layer_to_dict
from owin_cosim.cli import app
from owin_cosim.errors import ConfigError
from owin_cosim.security import check_bind, create_keys
from owin_cosim.workload.graph import Layer, conv2d
from tests.conftest import SPECS, estimator_process, free_port

SPEC = yaml.safe_load((SPECS / "mc4.yaml").read_text())
LAYER = conv2d("a", C=3, M=8, P=8, Q=8)
TOKEN = "owner-secret"


class _InProcess:
    """:func:`serve` in a thread on a free loopback port (joined at the end)."""

    def __init__(self, **kwargs: Any) -> None:
        self.endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.keys: Path | None = kwargs.get("keys")
        kwargs.setdefault("cache", False)
        kwargs.setdefault("token", TOKEN)
        self.thread = threading.Thread(
            target=server_mod.serve, args=(self.endpoint,), kwargs=kwargs, daemon=True
        )
        self.thread.start()

    def client(self, **kwargs: Any) -> RemoteCostModel:
        kwargs.setdefault("keys", self.keys)
        kwargs.setdefault("timeout_s", 20)
        return RemoteCostModel(self.endpoint, SPEC, **kwargs)

    def stop(self) -> None:
        if self.thread.is_alive():
            c = self.client(timeout_s=10)
            try:
                c.shutdown_service(TOKEN)
            finally:
                c.close()
        self.thread.join(timeout=20)
        assert not self.thread.is_alive()


@pytest.fixture
def start() -> Iterator[Callable[..., _InProcess]]:
    started: list[_InProcess] = []

    def make(**kwargs: Any) -> _InProcess:
        started.append(_InProcess(**kwargs))
        return started[-1]

    yield make
    for s in started:
        s.stop()


def _raw(endpoint: str, kind: int = zmq.REQ) -> tuple[zmq.Context[Any], zmq.Socket[Any]]:
    ctx: zmq.Context[Any] = zmq.Context()
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return ctx, sock


def _ask_raw(endpoint: str, frames: list[bytes]) -> dict[str, Any]:
    """Send ``frames`` on a fresh REQ socket; the answer (a REQ must get one)."""
    ctx, sock = _raw(endpoint)
    try:
        sock.send_multipart(frames)
        assert sock.poll(10_000), f"no answer to {frames!r:.80}"
        answer: dict[str, Any] = json.loads(sock.recv())
        return answer
    finally:
        sock.close(0)
        ctx.term()


def _assert_alive(service: _InProcess) -> None:
    c = service.client()
    try:
        assert c.layer_cost(LAYER).cycles > 0
    finally:
        c.close()


def _estimate(**over: Any) -> dict[str, Any]:
    msg = {"v": PROTOCOL_VERSION, "op": "estimate", "backend": "analytic", "spec": SPEC}
    msg.update({"options": {}, "layers": [layer_to_dict(LAYER)]})
    msg.update(over)
    return msg


@pytest.mark.parametrize(
    "frame", [b"[1]", b'"x"', b"42", b"null", b"not json", b"\xff\xfe\x00", b"", b"[" * 100_000]
)
def test_a_frame_that_is_not_a_request_object_gets_an_error(
    start: Callable[..., _InProcess], frame: bytes
) -> None:
    service = start()
    answer = _ask_raw(service.endpoint, [frame])
    assert answer["ok"] is False and "JSON object" in answer["error"]
    _assert_alive(service)


def test_multipart_and_envelope_less_messages(start: Callable[..., _InProcess]) -> None:
    service = start()
    answer = _ask_raw(service.endpoint, [b'{"v": 1, "op": "hello"}', b"x", b"y"])
    assert answer["ok"] is False and "one frame, got 3" in answer["error"]
    for kind in (zmq.DEALER, zmq.PUSH):  # no REQ envelope; PUSH cannot even read answers
        ctx, sock = _raw(service.endpoint, kind)
        sock.send_multipart([b"[1]", b"2", b"3"])
        sock.send(b'{"v": 1, "op": "shutdown"}')
        time.sleep(0.2)
        sock.close(0)
        ctx.term()
    _assert_alive(service)


def test_a_frame_over_the_size_limit_drops_the_peer_not_the_service(
    start: Callable[..., _InProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_mod, "MAX_MESSAGE_BYTES", 1 << 20)
    service = start()
    ctx, sock = _raw(service.endpoint)
    sock.send(b"x" * (2 << 20))
    assert not sock.poll(1000)  # the connection was dropped, no answer
    sock.close(0)
    ctx.term()
    _assert_alive(service)


def test_random_bytes_and_random_multipart(start: Callable[..., _InProcess]) -> None:
    service = start()
    rng = random.Random(8)
    ctx, sock = _raw(service.endpoint, zmq.DEALER)
    for _ in range(300):
        frames = [rng.randbytes(rng.randrange(0, 200)) for _ in range(rng.randrange(1, 5))]
        sock.send_multipart(frames)
    time.sleep(0.5)
    sock.close(0)
    ctx.term()
    _assert_alive(service)


_LAYER_OK = layer_to_dict(LAYER)
_WRONG: list[Any] = [None, "x", -1, 0, 1.5, True, [], {}, 10**30, float("nan")]
_CASES: list[dict[str, Any]] = [
    *({"v": w} for w in _WRONG),
    *({"op": w} for w in _WRONG),
    *({"spec": w} for w in _WRONG if not isinstance(w, dict)),
    *({"backend": w} for w in _WRONG if w is not None),
    *({"options": w} for w in _WRONG if w not in (None, 0, [], {})),
    *({"options": {"latency_scale": w}} for w in _WRONG if w != 1.5),
    *({"options": {"mapper_evaluations": w}} for w in _WRONG),
    *({"options": {"mapper_seed": w}} for w in _WRONG if w not in (0,)),
    *({"options": {"timeloop_arch": w}} for w in _WRONG if w != {}),
    *({"layers": w} for w in _WRONG if w != []),
    *({"layers": [w]} for w in _WRONG),
    *(
        {"layers": [{**_LAYER_OK, k: w}]}
        for k in ("name", "op", "C", "P", "group")
        for w in _WRONG
        if not (k in ("name", "group") and isinstance(w, str))
    ),
    *({"layers": [{**_LAYER_OK, "streamable": w}]} for w in _WRONG if not isinstance(w, bool)),
    {"spec": {"chip": "not a chip"}},
    {"backend": "no-such-backend"},
]


def test_wrong_types_for_every_field_are_error_answers(start: Callable[..., _InProcess]) -> None:
    service = start()
    ctx, sock = _raw(service.endpoint)
    try:
        for case in _CASES:
            sock.send(json.dumps(_estimate(**case)).encode())
            assert sock.poll(10_000), case
            answer = json.loads(sock.recv())
            assert answer["ok"] is False, case
    finally:
        sock.close(0)
        ctx.term()
    _assert_alive(service)


def test_shutdown_needs_the_owners_token(start: Callable[..., _InProcess]) -> None:
    service = start()
    for token in (None, "", "guess", TOKEN + "x", 42):
        msg: dict[str, Any] = {"v": 1, "op": "shutdown"}
        if token is not None:
            msg["token"] = token
        answer = _ask_raw(service.endpoint, [json.dumps(msg).encode()])
        assert answer["ok"] is False
        assert "refused" in answer["error"] or "token" in answer["error"]
    _assert_alive(service)
    service.stop()  # the right token stops it


def test_without_a_token_no_shutdown_request_is_obeyed(start: Callable[..., _InProcess]) -> None:
    service = start(token=None, max_requests=4)  # ends the test service after 4 answers
    c = service.client()
    with pytest.raises(EstimatorError, match="started without a token"):
        c.shutdown_service("anything")  # answers 1 and 2: hello, the refusal
    c.close()
    _assert_alive(service)  # answers 3 and 4
    service.thread.join(timeout=10)
    assert not service.thread.is_alive()


def test_queries_over_the_caps_are_refused(start: Callable[..., _InProcess]) -> None:
    service = start()
    for over, expected in (
        ({"backend": "loopnest", "options": {"mapper_evaluations": 1e8}}, "integer"),
        ({"backend": "loopnest", "options": {"mapper_evaluations": 10**8}}, "1000000"),
        ({"layers": [_LAYER_OK] * (MAX_LAYERS_PER_BATCH + 1)}, "MAX_LAYERS_PER_BATCH"),
        ({"layers": [{**_LAYER_OK, "C": 2**40}]}, "2147483647"),
    ):
        answer = _ask_raw(service.endpoint, [json.dumps(_estimate(**over)).encode()])
        assert answer["ok"] is False and expected in answer["error"], answer
    assert MAX_MAPPER_EVALUATIONS == 1_000_000


def test_the_client_splits_a_long_list_into_batches(start: Callable[..., _InProcess]) -> None:
    service = start()
    c = service.client()
    layers = [LAYER] * (MAX_LAYERS_PER_BATCH + 5)
    assert len(c.layer_costs(layers)) == len(layers)
    c.close()


class _Slow:
    """Wraps a cost model: layers named ``slow*`` take half a second each."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def layer_cost(self, layer: Layer) -> Any:
        if layer.name.startswith("slow"):
            time.sleep(0.5)
        return self.inner.layer_cost(layer)


def test_a_slow_query_holds_no_one_back_and_ends_at_its_deadline(
    start: Callable[..., _InProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    from owin_cosim.accel.registry import make_cost_model

    monkeypatch.setattr(
        server_mod, "make_cost_model", lambda *a, **k: _Slow(make_cost_model(*a, **k))
    )
    service = start(workers=2, deadline_s=2.0)
    slow: dict[str, Any] = {}

    def ask_slow() -> None:
        c = service.client(timeout_s=30)
        t0 = time.monotonic()
        try:
            c.layer_costs([conv2d(f"slow{i}", C=3, M=8, P=8, Q=8) for i in range(40)])
        except EstimatorError as exc:
            slow["error"] = str(exc)
        slow["took"] = time.monotonic() - t0
        c.close()

    thread = threading.Thread(target=ask_slow)
    thread.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    for _ in range(5):  # other clients are answered while the slow query runs
        _assert_alive(service)
    assert time.monotonic() - t0 < 1.5
    thread.join(timeout=30)
    assert "longer than 2 s" in slow["error"]
    assert slow["took"] < 6  # 40 layers would take 20 s
    _assert_alive(service)


def test_answers_under_concurrency_equal_sequential_ones(start: Callable[..., _InProcess]) -> None:
    service = start(workers=4)
    layers = [conv2d(f"c{i}", C=3 + i, M=8, P=8, Q=8) for i in range(20)]
    c = service.client()
    expected = c.layer_costs(layers)
    c.close()
    results: list[Any] = []

    def ask() -> None:
        client = service.client()
        results.append(client.layer_costs(layers))
        client.close()

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [expected] * 8


def test_curve_round_trip_and_strangers_get_nothing(
    start: Callable[..., _InProcess], tmp_path: Path
) -> None:
    keys = create_keys(tmp_path / "keys")
    assert (keys / "server.key_secret").stat().st_mode & 0o077 == 0
    service = start(keys=keys)
    _assert_alive(service)
    other = create_keys(tmp_path / "other")
    for stranger in (None, other):
        c = service.client(keys=stranger, timeout_s=1, connect_timeout_s=1)
        with pytest.raises(EstimatorError, match="did not answer"):
            c.layer_cost(LAYER)
        c.close()
    with pytest.raises(ConfigError, match="already holds keys"):
        create_keys(keys)


def test_binds_beyond_loopback_need_keys_or_insecure(tmp_path: Path) -> None:
    for command in ("estimator", "ns3-worker"):
        res = CliRunner().invoke(app, [command, "--bind", "tcp://0.0.0.0:5599"])
        assert res.exit_code == 2, res.output
        assert "--keys" in res.output and "--insecure" in res.output
    check_bind("tcp://0.0.0.0:1", None, insecure=True)
    check_bind("tcp://0.0.0.0:1", tmp_path, insecure=False)
    check_bind("tcp://127.0.0.1:1", None, insecure=False)
    with pytest.raises(ConfigError):
        check_bind("tcp://*:1", None, insecure=False)


def test_keys_command_writes_a_usable_directory(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["keys", str(tmp_path / "k")])
    assert res.exit_code == 0, res.output
    assert {p.name for p in (tmp_path / "k").iterdir()} == {
        "server.key",
        "server.key_secret",
        "client.key",
        "client.key_secret",
        "clients",
    }
    res = CliRunner().invoke(app, ["keys", str(tmp_path / "k")])
    assert res.exit_code == 2 and "already holds keys" in res.output


def test_service_process_owner_token_and_sigterm(tmp_path: Path) -> None:
    """The token travels in the environment (never argv); SIGTERM stops it cleanly."""
    keys = create_keys(tmp_path / "keys")
    with estimator_process(tmp_path / "c.sqlite", "--keys", str(keys)) as endpoint:
        c = RemoteCostModel(endpoint, SPEC, keys=keys, timeout_s=20)
        assert c.layer_cost(LAYER).cycles > 0
        with pytest.raises(EstimatorError, match="refused"):
            c.shutdown_service("a stranger's guess")
        assert c.layer_cost(LAYER).cycles > 0
        c.close()
    import subprocess
    import sys

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "owin_cosim.cli",
            "estimator",
            "--bind",
            f"tcp://127.0.0.1:{port}",
            "--no-cache",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert b"listening" in proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()


def test_a_scenario_costs_through_a_curve_estimator(tmp_path: Path) -> None:
    from owin_cosim.scenario.assemble import assemble
    from owin_cosim.scenario.schema import Scenario
    from tests.conftest import scenario_dict

    create_keys(tmp_path / "keys")
    base = scenario_dict()
    local = assemble(Scenario.model_validate(base), tmp_path / "s.yaml")
    with estimator_process(tmp_path / "c.sqlite", "--keys", str(tmp_path / "keys")) as endpoint:
        acc = {**base["accelerator"], "estimator": endpoint, "estimator_timeout_s": 20}
        cfg = {**base, "accelerator": {**acc, "estimator_keys": "keys"}}  # beside the file
        remote = assemble(Scenario.model_validate(cfg), tmp_path / "s.yaml")
        assert list(remote.dag.duration_s) == list(local.dag.duration_s)


@pytest.mark.ns3
@pytest.mark.skipif(os.environ.get("OWIN_COSIM_SKIP_NS3") == "1", reason="OWIN_COSIM_SKIP_NS3=1")
def test_ns3_worker_over_curve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A standalone worker with --keys: a coordinator without the keys gets nothing, one
    with them runs its session."""
    import math
    import subprocess
    import sys

    from owin_cosim.errors import OwinError
    from owin_cosim.network.base import ChunkTx, UplinkDevice, dbm_to_w
    from owin_cosim.network.ns3.backend import Ns3Config, Ns3Uplink

    keys = create_keys(tmp_path / "keys")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    monkeypatch.setenv("OWIN_COSIM_NS3_TOKEN", "the-run-token")  # both sides read it
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "owin_cosim.cli",
            "ns3-worker",
            "--bind",
            endpoint,
            "--keys",
            str(keys),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    devices = [UplinkDevice("a", 5.0, dbm_to_w(20.0))]
    try:
        params = {"scenario": "wifi-ax-uplink", "params": {"channel_width_mhz": 20}}
        stranger = Ns3Config(**params, endpoint=endpoint, startup_timeout_s=3)
        with pytest.raises(OwinError):
            Ns3Uplink(stranger, devices, 1).close()
        cfg = Ns3Config(**params, endpoint=endpoint, keys=str(keys))
        with Ns3Uplink(cfg, devices, 1) as net:
            net.submit(ChunkTx("a", 0, 20_000), 0.0)
            done: list[Any] = []
            while net.has_backlog():
                done.extend(net.advance(math.inf).deliveries)
        assert [d.device for d in done] == ["a"]
        assert worker.wait(timeout=20) == 0  # one session, then it exits
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait()
        if worker.stderr is not None:
            worker.stderr.close()


def test_a_long_backend_call_is_stopped_at_the_deadline(start: Callable[..., _InProcess]) -> None:
    """One loop-nest layer with a budget of an hour's search: an error answer at the
    deadline, and the child process that ran it is gone."""
    import multiprocessing

    service = start(deadline_s=3.0)
    big = conv2d("big", C=64, M=128, P=56, Q=56, R=3, S=3)
    options = {"mapper_evaluations": MAX_MAPPER_EVALUATIONS, "mapper_seed": 0}
    c = service.client(backend="loopnest", options=options, timeout_s=30)
    t0 = time.monotonic()
    with pytest.raises(EstimatorError, match="longer than 3 s"):
        c.layer_cost(big)
    assert time.monotonic() - t0 < 8
    c.close()
    deadline = time.monotonic() + 10
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not multiprocessing.active_children()
    _assert_alive(service)
