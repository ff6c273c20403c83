"""The ns-3 worker pool: forked workers give a fresh worker's results bit for bit, and
nothing outlives the pool on any exit path (real ns-3; about a minute).

Processes are checked by the pids the tests started (other sessions run ns-3 workers
on the same machine). Set ``OWIN_COSIM_SKIP_NS3=1`` to skip on a machine without ns-3.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from owin_cosim.network.base import NetworkBackend
from owin_cosim.network.ns3.access import pid_alive
from owin_cosim.network.ns3.backend import Ns3Uplink
from owin_cosim.network.ns3.environment import ns3_installed
from owin_cosim.network.ns3.pool import POOL_ENV, WorkerPool, current_pool, worker_pool
from owin_cosim.policies import make_policy
from owin_cosim.results.writers import write_results
from owin_cosim.scenario.assemble import assemble
from owin_cosim.sim.coordinator import execute
from owin_cosim.system.problem import Problem
from tests.conftest import REPO
from tests.test_ns3 import _tiny_scenario

if os.environ.get("OWIN_COSIM_SKIP_NS3") == "1":
    pytest.skip("OWIN_COSIM_SKIP_NS3=1", allow_module_level=True)
if not ns3_installed():
    pytest.fail('ns-3 is not installed: pip install -e ".[test,ns3]"', pytrace=False)

pytestmark = pytest.mark.ns3

_SCENARIOS = ("lte-uplink", "wifi-ax-uplink")
#: Runs by name: the two scenarios as they are, and other parameters and seeds of each
#: (the pool's server rehearsed other runs of both before any of these).
_RUNS: dict[str, tuple[dict[str, Any], int]] = {
    "lte-uplink": ({"scenario": "lte-uplink"}, 2),
    "wifi-ax-uplink": ({"scenario": "wifi-ax-uplink"}, 2),
    "lte-50-pf": (
        {"scenario": "lte-uplink", "params": {"ul_bandwidth_rbs": 50, "scheduler": "pf"}},
        7,
    ),
    "wifi-40-udp": (
        {"scenario": "wifi-ax-uplink", "params": {"channel_width_mhz": 40, "transport": "udp"}},
        5,
    ),
}


def _problem(run: str) -> Problem:
    backend, seed = _RUNS[run]
    scenario = _tiny_scenario(backend).model_copy(update={"seed": seed})
    return assemble(scenario, Path("tiny.yaml"))


def _files(problem: Problem, out: Path, net: NetworkBackend | None = None) -> dict[str, bytes]:
    """summary.json and events.csv of an RTFS run on ``problem`` (a new network)."""
    result = execute(problem, make_policy("rtfs").plan(problem), network=net)
    done = write_results(result, out, plot=False)
    return {name: (done / name).read_bytes() for name in ("summary.json", "events.csv")}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    """Each run's results from a fresh worker process (no pool)."""
    assert current_pool() is None
    base = tmp_path_factory.mktemp("fresh")
    return {run: _files(_problem(run), base / run) for run in _RUNS}


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    with worker_pool() as p:
        yield p


def test_one_pool_serves_different_runs_in_a_row(
    fresh: dict[str, dict[str, bytes]], pool: WorkerPool, tmp_path: Path
) -> None:
    """Children forked on request, one run after another, alternating scenarios."""
    order = ["lte-50-pf", "wifi-ax-uplink", "lte-uplink", "wifi-40-udp", "lte-50-pf"]
    for i, run in enumerate(order):
        assert _files(_problem(run), tmp_path / f"{i}-{run}") == fresh[run], run


@pytest.mark.parametrize("scenario", _SCENARIOS)
def test_forked_worker_gives_a_fresh_workers_results_byte_for_byte(
    scenario: str, fresh: dict[str, dict[str, bytes]], pool: WorkerPool, tmp_path: Path
) -> None:
    problem = _problem(scenario)
    assert current_pool() is pool
    on_demand = _files(problem, tmp_path / "forked")  # forked when asked for
    assert on_demand == fresh[scenario]
    (prepared_pid,) = pool.prepare(problem.network)
    start = time.perf_counter()
    net = problem.make_network()  # the prepared child: already configuring
    took = time.perf_counter() - start
    assert isinstance(net, Ns3Uplink) and net._proc is not None
    assert net._proc.pid == prepared_pid
    assert took < 60.0  # a sanity bound only; the timings are in benchmarks/
    with net:
        assert _files(problem, tmp_path / "prepared", net) == fresh[scenario]


def test_two_runs_at_once_from_one_pool_do_not_interfere(
    fresh: dict[str, dict[str, bytes]], pool: WorkerPool, tmp_path: Path
) -> None:
    problems = {s: _problem(s) for s in _SCENARIOS}
    for problem in problems.values():
        pool.prepare(problem.network)
    got: dict[str, dict[str, bytes]] = {}
    errors: list[BaseException] = []

    def run(scenario: str) -> None:
        try:
            got[scenario] = _files(problems[scenario], tmp_path / scenario)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in _SCENARIOS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and got == {s: fresh[s] for s in _SCENARIOS}


def test_a_leased_worker_refuses_a_configure_for_another_run(pool: WorkerPool) -> None:
    """A child builds the run it was forked for; another request gets a clear error."""
    import zmq

    from owin_cosim.network.ns3.pool import configure_request
    from owin_cosim.network.ns3.protocol import decode, encode

    ref = _problem("lte-uplink").network
    request = configure_request(ref.config, ref.devices, ref.seed)
    lease = pool.lease(request)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(lease.endpoint)

        def call(message: dict[str, Any]) -> dict[str, Any]:
            sock.send(encode(message))
            while sock.poll(60_000):
                answer = decode(sock.recv())
                if answer["op"] != "heartbeat":
                    return answer
            raise AssertionError(f"no answer to {message['op']!r}")

        assert call({"op": "hello", "token": lease.token})["ok"]
        answer = call({**request, "seed": ref.seed + 1})
        assert not answer["ok"] and "forked for another run" in answer["error"]
    finally:
        sock.close()
        ctx.term()
        lease.kill()
        assert lease.wait(10.0) == -signal.SIGKILL
        lease.close()


_OWNER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from owin_cosim.network.ns3.pool import worker_pool
    # A scenario no child can build: it fails at once and waits for its coordinator.
    request = {{"op": "configure", "scenario": "none", "params": {{}}, "devices": [], "seed": 1}}
    with worker_pool(rehearse=()) as pool:
        (prepared,) = pool.prepare(request)
        lease = pool.lease({{**request, "seed": 2}})
        print(json.dumps({{"server": pool.proc.pid, "children": [prepared, lease.pid],
                          "dir": str(pool.dir), "env": os.environ[{env!r}]}}), flush=True)
        if sys.argv[1] == "raise":
            raise RuntimeError("boom")
        if sys.argv[1] != "normal":
            time.sleep(300)
    """
)


def _gone(pids: list[int], timeout_s: float = 20.0) -> list[int]:
    """Those of ``pids`` still alive after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if pid_alive(p)]


def test_nothing_outlives_the_pool_on_any_exit_path(tmp_path: Path) -> None:
    """Normal exit, an exception, SIGINT, SIGTERM and SIGKILL of the pool's owner."""
    script = _OWNER.format(repo=str(REPO), env=POOL_ENV)
    modes = ("normal", "raise", "sigint", "sigterm", "sigkill")
    env = {k: v for k, v in os.environ.items() if k != POOL_ENV}
    owners = {
        m: subprocess.Popen(
            [sys.executable, "-c", script, m],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            env=env,
        )
        for m in modes
    }
    started: dict[str, dict[str, Any]] = {}
    try:
        for mode, proc in owners.items():
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line, proc.communicate(timeout=60)[1].decode()[-2000:]
            started[mode] = json.loads(line)
        for mode, sig in (("sigint", signal.SIGINT), ("sigterm", signal.SIGTERM)):
            owners[mode].send_signal(sig)
        owners["sigkill"].kill()
        codes = {m: p.wait(timeout=60) for m, p in owners.items()}
    finally:
        for proc in owners.values():
            if proc.poll() is None:
                proc.kill()
    assert codes["normal"] == 0 and codes["raise"] == 1
    assert codes["sigint"] != 0 and codes["sigkill"] == -signal.SIGKILL
    for mode, info in started.items():
        pids = [info["server"], *info["children"]]
        assert _gone(pids) == [], mode
        assert _gone_dir(Path(info["dir"])), mode


def _gone_dir(path: Path, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and path.exists():
        time.sleep(0.1)
    return not path.exists()
