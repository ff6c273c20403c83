"""Faults around the ns-3 worker: stopped or killed workers, a killed coordinator,
hostile peers, and endpoints where no worker listens (real ns-3 workers, loopback only).

Every temporary directory these tests make lives in a pytest temp dir (a private
``TMPDIR`` for the processes they start), so they never touch anyone else's files.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from owin_cosim.errors import ConfigError
from owin_cosim.network.base import ChunkTx, UplinkDevice, dbm_to_w
from owin_cosim.network.ns3.access import make_run_dir, pid_alive, reap_stale_run_dirs
from owin_cosim.network.ns3.backend import Ns3Config, Ns3Uplink, Ns3WorkerError
from owin_cosim.network.ns3.environment import ns3_installed
from owin_cosim.network.ns3.protocol import decode, encode
from tests.conftest import REPO

if os.environ.get("OWIN_COSIM_SKIP_NS3") == "1":
    pytest.skip("OWIN_COSIM_SKIP_NS3=1", allow_module_level=True)
if not ns3_installed():
    pytest.fail("ns-3 is not installed (or set OWIN_COSIM_SKIP_NS3=1)", pytrace=False)

pytestmark = pytest.mark.ns3

PARAMS = {"channel_width_mhz": 20}
TOKEN = "token-of-this-test-run"


def _devices() -> list[UplinkDevice]:
    return [UplinkDevice("a", 5.0, dbm_to_w(20.0))]


def _config(**kw: object) -> Ns3Config:
    return Ns3Config(scenario="wifi-ax-uplink", params=PARAMS, **kw)


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run directories of this test's coordinators in a temp dir of its own."""
    base = tmp_path / "tmp"
    base.mkdir()
    monkeypatch.setenv("TMPDIR", str(base))
    monkeypatch.setattr("tempfile.tempdir", str(base))
    yield base


def _run_dirs(base: Path, pid: int | None = None) -> list[Path]:
    prefix = f"owin-ns3-{pid}-" if pid is not None else "owin-ns3-"
    return sorted(p for p in base.iterdir() if p.name.startswith(prefix))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gone(pid: int, within_s: float) -> bool:
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


# ---- the worker stopped or killed -------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("stop@configure", r"stopped answering during 'configure'.*heartbeats"),
        ("kill@configure", r"died \(killed by signal SIGKILL\) during 'configure'"),
    ],
)
def test_worker_fault_while_configuring_is_detected_within_10_s(
    fault: str, expected: str, private_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OWIN_COSIM_NS3_FAULT", fault)
    t = time.monotonic()
    with pytest.raises(Ns3WorkerError, match=expected):
        Ns3Uplink(_config(), _devices(), 1)
    assert time.monotonic() - t < 10.0
    assert _run_dirs(private_tmp) == []


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("stop@advance", r"stopped answering"),
        ("kill@advance", r"died \(killed by signal SIGKILL\) during 'advance'"),
    ],
)
def test_worker_fault_while_advancing_is_detected_within_10_s(
    fault: str, expected: str, private_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OWIN_COSIM_NS3_FAULT", fault)
    net = Ns3Uplink(_config(), _devices(), 1)
    assert net._proc is not None
    pid = net._proc.pid
    net.submit(ChunkTx("a", 0, 20_000), 0.0)
    t = time.monotonic()
    with pytest.raises(Ns3WorkerError, match=expected):
        net.advance(math.inf)
    assert time.monotonic() - t < 10.0
    assert _gone(pid, 5.0)
    assert _run_dirs(private_tmp) == []


def test_slow_but_live_worker_is_not_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Configure 6 s slower than usual, with a 2 s heartbeat limit: the worker lives."""
    monkeypatch.setenv("OWIN_COSIM_NS3_FAULT", "slow@configure:6")
    with Ns3Uplink(_config(heartbeat_timeout_s=2.0), _devices(), 1) as net:
        net.submit(ChunkTx("a", 0, 20_000), 0.0)
        assert [d.device for d in net.advance(math.inf).deliveries] == ["a"]


def test_sigstop_from_outside_while_configuring(private_tmp: Path) -> None:
    """A real SIGSTOP while cppyy loads ns-3 (the GIL held for seconds)."""
    box: dict[str, object] = {}

    def start() -> None:
        try:
            Ns3Uplink(_config(), _devices(), 1).close()
        except Ns3WorkerError as exc:
            box["error"], box["at"] = exc, time.monotonic()

    thread = threading.Thread(target=start)
    thread.start()
    pid = _wait_for_worker(private_tmp)
    time.sleep(1.5)  # hello answered; configure under way
    os.kill(pid, signal.SIGSTOP)
    stopped = time.monotonic()
    thread.join(30)
    assert "stopped answering during 'configure'" in str(box.get("error"))
    assert float(box["at"]) - stopped < 10.0  # type: ignore[arg-type]
    assert _gone(pid, 5.0) and _run_dirs(private_tmp) == []


def _wait_for_worker(base: Path) -> int:
    end = time.monotonic() + 20
    while time.monotonic() < end:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    cmd = (entry / "cmdline").read_bytes()
                    if b"owin_cosim.network.ns3.worker" in cmd and str(base).encode() in cmd:
                        return int(entry.name)
        time.sleep(0.05)
    raise AssertionError("no worker started")


# ---- the coordinator killed -------------------------------------------------------
_COORDINATOR = textwrap.dedent(
    """
    import math, sys, time
    from owin_cosim.network.base import ChunkTx, UplinkDevice, dbm_to_w
    from owin_cosim.network.ns3.backend import Ns3Config, Ns3Uplink
    net = Ns3Uplink(Ns3Config(scenario="wifi-ax-uplink", params={"channel_width_mhz": 20}),
                    [UplinkDevice("a", 5.0, dbm_to_w(20.0))], 1)
    net.submit(ChunkTx("a", 0, 20_000), 0.0)
    net.advance(math.inf)
    print(net._proc.pid, net._tmp, flush=True)
    if sys.argv[1] == "hold":
        time.sleep(600)
    net.close()
    """
)


def _coordinator(base: Path, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TMPDIR": str(base), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", _COORDINATOR, mode],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=base,
    )


def test_killed_coordinator_leaves_no_worker_and_no_run_dir(private_tmp: Path) -> None:
    coord = _coordinator(private_tmp, "hold")
    try:
        assert coord.stdout is not None
        worker_pid, run_dir = coord.stdout.readline().split()
        assert Path(run_dir).is_dir() and Path(run_dir).parent == private_tmp
        coord.kill()
        coord.wait()
        assert _gone(int(worker_pid), 5.0), "the worker outlived its coordinator"
        assert _run_dirs(private_tmp, coord.pid) == []  # the surviving worker removed it
    finally:
        if coord.poll() is None:
            coord.kill()
            coord.wait()


def test_next_start_reaps_run_dirs_of_dead_coordinators(private_tmp: Path) -> None:
    """Both sides killed at once: nobody cleans up, so the next coordinator does."""
    coord = _coordinator(private_tmp, "hold")
    assert coord.stdout is not None
    worker_pid, _ = coord.stdout.readline().split()
    os.kill(int(worker_pid), signal.SIGKILL)
    coord.kill()
    coord.wait()
    assert len(_run_dirs(private_tmp, coord.pid)) == 1
    live = make_run_dir()  # ours, alive: never reaped
    nxt = _coordinator(private_tmp, "once")
    assert nxt.wait(timeout=120) == 0
    assert _run_dirs(private_tmp, coord.pid) == []
    assert live.is_dir() and pid_alive(os.getpid())


def test_reaping_spares_other_names_and_live_owners(private_tmp: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = private_tmp / f"owin-ns3-{dead.pid}-abc"
    stale.mkdir()
    mine = private_tmp / f"owin-ns3-{os.getpid()}-abc"
    mine.mkdir()
    other = private_tmp / "owin-ns3-notapid"
    other.mkdir()
    assert reap_stale_run_dirs(private_tmp) == [stale]
    assert not stale.exists() and mine.is_dir() and other.is_dir()


# ---- hostile peers of a standalone worker -----------------------------------------
@contextlib.contextmanager
def _standalone_worker(tmp: Path) -> Iterator[str]:
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    log = (tmp / "worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "owin_cosim.network.ns3.worker", "--bind", endpoint],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env={**os.environ, "OWIN_COSIM_NS3_TOKEN": TOKEN, "PYTHONPATH": str(REPO)},
        cwd=tmp,
    )
    try:
        yield endpoint
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.close()


def _dealer(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> zmq.Socket[bytes]:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    sock.connect(endpoint)
    return sock


def test_strangers_cannot_block_or_drive_a_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    with _standalone_worker(tmp_path) as endpoint:
        silent = _dealer(ctx, endpoint)  # connects first, says nothing
        rude = _dealer(ctx, endpoint)
        replies = []
        for frames in (
            [b"not json"],
            [b"[1]"],
            [encode({"op": "hello"}), b"second frame"],
            [encode({"op": "configure", "scenario": "wifi-ax-uplink"})],
            [encode({"op": "hello", "token": "wrong"})],
            [encode({"op": "shutdown"})],
        ):
            rude.send_multipart(frames)
            replies.append(decode(rude.recv()))
        assert [r["ok"] for r in replies] == [False] * 6
        assert "wrong or missing token" in replies[4]["error"]
        assert "hello first" in replies[5]["error"]
        with socket.create_connection(("127.0.0.1", int(endpoint.rsplit(":", 1)[1]))) as raw:
            raw.sendall(b"\xff" * 4096)  # not even ZeroMQ
        monkeypatch.setenv("OWIN_COSIM_NS3_TOKEN", TOKEN)
        with Ns3Uplink(_config(endpoint=endpoint), _devices(), 1) as net:
            rude.send(encode({"op": "hello", "token": TOKEN}))  # right token, too late
            net.submit(ChunkTx("a", 0, 20_000), 0.0)
            assert [d.device for d in net.advance(math.inf).deliveries] == ["a"]
            late = decode(rude.recv())
            assert not late["ok"] and "another coordinator" in late["error"]
        silent.close()
        rude.close()
    ctx.term()


def test_coordinator_with_a_wrong_token_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _standalone_worker(tmp_path) as endpoint:
        monkeypatch.setenv("OWIN_COSIM_NS3_TOKEN", "not-the-token")
        with pytest.raises(Ns3WorkerError, match="wrong or missing token"):
            Ns3Uplink(_config(endpoint=endpoint), _devices(), 1)
        monkeypatch.delenv("OWIN_COSIM_NS3_TOKEN")
        with pytest.raises(Ns3WorkerError, match="needs the run's token"):
            Ns3Uplink(_config(endpoint=endpoint), _devices(), 1)


def test_worker_rejects_absurd_inputs_up_front(tmp_path: Path) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    with _standalone_worker(tmp_path) as endpoint:
        sock = _dealer(ctx, endpoint)
        sock.setsockopt(zmq.RCVTIMEO, 60_000)

        def ask(**message: object) -> dict[str, object]:
            sock.send(encode(message))
            while (answer := decode(sock.recv()))["op"] == "heartbeat":
                pass
            return answer

        assert ask(op="hello", token=TOKEN)["ok"]
        for distance in (math.nan, -1.0, 1e308):
            device = {"name": "a", "distance_m": distance, "tx_power_dBm": 20.0}
            answer = ask(op="configure", scenario="wifi-ax-uplink", params=PARAMS, devices=[device])
            assert not answer["ok"] and "distance_m of device 'a'" in str(answer["error"])
        device = {"name": "a", "distance_m": 5.0, "tx_power_dBm": 20.0}
        assert ask(op="configure", scenario="wifi-ax-uplink", params=PARAMS, devices=[device])["ok"]
        for chunk in (
            {"device": "a", "chunk": 0, "nbytes": 1e15, "at_s": 0.0},
            {"device": "a", "chunk": 0, "nbytes": 10**15, "at_s": 0.0},
            {"device": "a", "chunk": 0, "nbytes": 100, "at_s": math.nan},
            {"device": "zz", "chunk": 0, "nbytes": 100, "at_s": 0.0},
        ):
            answer = ask(op="submit", chunks=[chunk])
            assert not answer["ok"], chunk
        assert ask(op="shutdown")["ok"]
        sock.close()
    ctx.term()


def test_coordinator_rejects_absurd_inputs_before_any_worker() -> None:
    with pytest.raises(ConfigError, match="distance_m"):
        Ns3Uplink(_config(), [UplinkDevice("a", math.nan, 0.1)], 1)
    with Ns3Uplink(_config(), _devices(), 1) as net, pytest.raises(ConfigError, match="nbytes"):
        net.submit(ChunkTx("a", 0, 10**15), 0.0)


# ---- endpoints where no worker listens --------------------------------------------
class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def _http_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def _garbage_server() -> Iterator[int]:
    """Accepts connections and answers each with garbage."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen()
    lsock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = lsock.accept()
                with conn:
                    conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + json.dumps([1]).encode() * 100)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(lsock.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        lsock.close()


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("nothing", r"nothing listens at tcp://127\.0\.0\.1:\d+ \(connection refused\)"),
        ("http", r"not an owin-cosim ns-3 worker: something accepts connections"),
        ("garbage", r"not an owin-cosim ns-3 worker"),
        ("zmq", r"not an owin-cosim ns-3 worker: a ZeroMQ peer there did not answer"),
        ("ipc", r"nothing listens at ipc://"),
    ],
)
def test_endpoint_without_a_worker_is_a_clear_error_within_10_s(
    kind: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OWIN_COSIM_NS3_TOKEN", TOKEN)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    with contextlib.ExitStack() as stack:
        if kind == "nothing":
            endpoint = f"tcp://127.0.0.1:{_free_port()}"
        elif kind == "http":
            endpoint = f"tcp://127.0.0.1:{stack.enter_context(_http_server())}"
        elif kind == "garbage":
            endpoint = f"tcp://127.0.0.1:{stack.enter_context(_garbage_server())}"
        elif kind == "zmq":
            mute = ctx.socket(zmq.ROUTER)
            mute.setsockopt(zmq.LINGER, 0)
            port = mute.bind_to_random_port("tcp://127.0.0.1")
            stack.callback(mute.close)
            endpoint = f"tcp://127.0.0.1:{port}"
        else:
            endpoint = f"ipc://{tmp_path}/nobody.sock"
        t = time.monotonic()
        with pytest.raises(Ns3WorkerError, match=expected):
            Ns3Uplink(_config(endpoint=endpoint), _devices(), 1)
        assert time.monotonic() - t < 10.0
    ctx.term()
