"""docker/compose.yaml's sweep topology as plain processes on loopback.

``owin-cosim sweep --scheduler`` -> a ``dask scheduler`` -> two ``dask worker``
processes, each with its own ns-3 worker pool (``--preload owin_cosim.study.dask_ns3``,
as in compose) -> ns-3 runs as forked children of the pools, and per-layer costs from an
``owin-cosim estimator`` over tcp with CURVE keys (as in compose). Every process the test
starts is started in its own session, and stopped and reaped by its process group (its
own pid) on every exit path.
"""

from __future__ import annotations

import csv
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import pytest
import yaml

from owin_cosim.network.ns3.environment import ns3_installed
from tests.conftest import REPO, estimator_process, free_port

if os.environ.get("OWIN_COSIM_SKIP_NS3") == "1":
    pytest.skip("OWIN_COSIM_SKIP_NS3=1", allow_module_level=True)
if not ns3_installed():
    pytest.fail('ns-3 is not installed: pip install -e ".[test,ns3]"', pytrace=False)

pytestmark = pytest.mark.ns3

_BIN = Path(sys.executable).parent


class Processes:
    """Processes this test started, each the leader of its own process group."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.logs,
                start_new_session=True,
            )  # fmt: skip
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        """SIGTERM each group (a dask worker then closes its pool), SIGKILL what is left
        after 30 s; every leader reaped."""
        for proc in reversed(self.procs):
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 30.0
        for proc in reversed(self.procs):
            with suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            _signal_group(proc, signal.SIGKILL)  # stragglers of the group, if any
            proc.wait()

    def tail(self) -> str:
        return "\n".join(
            f"--- {p.name} ---\n{p.read_text(errors='replace')[-1500:]}"
            for p in sorted(self.logs.glob("*.log"))
        )


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # its own group: start_new_session made pgid == pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _pool_server() -> int | None:
    """The pid of this dask worker's ns-3 fork server (run on the worker)."""
    from owin_cosim.network.ns3.pool import WorkerPool, current_pool

    pool = current_pool()
    return pool.proc.pid if isinstance(pool, WorkerPool) else None


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A dask scheduler, two dask workers with ns-3 pools, a CURVE estimator and two
    standalone ns-3 workers (CURVE and a token, as compose's ``ns3-worker``), all on
    loopback. Stopped on every exit path; then the pools are checked gone."""
    from distributed import Client

    from owin_cosim.security import create_keys

    tmp = tmp_path_factory.mktemp("topology")
    keys = create_keys(tmp / "keys")
    token = tmp / "ns3.token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    (logs := tmp / "logs").mkdir()
    procs = Processes(logs)
    dask = shutil.which("dask", path=str(_BIN)) or "dask"
    address = f"tcp://127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        # Costs only from the estimator: a dask worker that costs itself would fill this.
        "OWIN_COSIM_COST_CACHE": str(tmp / "workers-costs.sqlite"),
        "OWIN_COSIM_NS3_TOKEN_FILE": str(token),  # drives the standalone ns-3 workers
        "PYTHONPATH": str(REPO),  # client.run(_pool_server) unpickles tests.test_topology
    }
    servers: list[int] = []
    with ExitStack() as stack:
        stack.callback(procs.stop)
        estimator = stack.enter_context(
            estimator_process(tmp / "estimator-costs.sqlite", "--keys", str(keys))
        )
        port = address.rsplit(":", 1)[1]
        procs.start(
            "scheduler",
            [dask, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
            env,
        )
        worker = [dask, "worker", address, "--nthreads", "1", "--host", "127.0.0.1",
                  "--no-dashboard", "--preload", "owin_cosim.study.dask_ns3"]  # fmt: skip
        for i in range(2):
            procs.start(f"dask-worker-{i}", worker, env)
        ns3 = {}
        for i in range(2):
            bind = f"tcp://127.0.0.1:{free_port()}"
            owin = [str(_BIN / "owin-cosim"), "ns3-worker", "--bind", bind]
            argv = [*owin, "--keys", str(keys), "--token-file", str(token)]
            ns3[bind] = procs.start(f"ns3-worker-{i}", argv, env)
        try:
            with Client(address, timeout=60) as client:
                client.wait_for_workers(2, timeout=150)
                servers = [p for p in client.run(_pool_server).values() if p is not None]
        except Exception:
            pytest.fail(f"the dask cluster did not come up:\n{procs.tail()}", pytrace=False)
        yield {"scheduler": address, "estimator": estimator, "keys": keys, "servers": servers,
               "procs": procs, "ns3": ns3, "dir": tmp}  # fmt: skip
    left = [pid for pid in servers if _alive(pid)]
    deadline = time.monotonic() + 15.0
    while left and time.monotonic() < deadline:  # they end when their owner's pipe closes
        time.sleep(0.2)
        left = [pid for pid in left if _alive(pid)]
    assert not left, f"ns-3 fork servers still running after the dask workers: {left}"


def _files(tmp_path: Path, topology: dict[str, Any], sweep: dict[str, Any], **ns3: Any) -> Path:
    """A tiny ns-3 scenario (costs from the estimator; ``ns3``: more ``network.ns3``
    keys) and a sweep over it; returns the sweep file."""
    from tests.test_ns3 import _tiny_scenario

    tiny = _tiny_scenario({"scenario": "lte-uplink", **ns3})
    scenario = tiny.model_dump(mode="json", exclude_unset=True)
    keys = str(topology["keys"])
    scenario["accelerator"].update(estimator=topology["estimator"], estimator_keys=keys)
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(scenario), "utf-8")
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({"scenario": "base.yaml", **sweep}))
    return tmp_path / "sweep.yaml"


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open(newline="") as f:
        return [{k: v for k, v in r.items() if k != "wall_s"} for r in csv.DictReader(f)]


def _sweep(topology: dict[str, Any], sweep: Path, out: Path, *how: str) -> float:
    """``owin-cosim sweep`` as a process of the topology; its wall time."""
    env = {**os.environ, "OWIN_COSIM_COST_CACHE": str(out.parent / "sweep-costs.sqlite")}
    argv = [str(_BIN / "owin-cosim"), "sweep", str(sweep), "--out", str(out), *how]
    t0 = time.monotonic()
    proc = topology["procs"].start(out.name, argv, env)
    assert proc.wait(180) == 0, topology["procs"].tail()
    return time.monotonic() - t0


_RESULTS = ("makespan_s", "lower_bound_s", "last_upload_s", "energy_J_total")


def test_sweep_on_dask_workers_with_ns3_pools_and_an_estimator(
    tmp_path: Path, topology: dict[str, Any]
) -> None:
    """The compose layout: ns-3 from each dask worker's pool, costs from the estimator."""
    assert len(topology["servers"]) == 2  # each dask worker owns a started pool
    grid = {"devices.a.distance_m": [8, 30]}
    sweep = _files(tmp_path, topology, {"policies": ["rtfs", "pacs"], "grid": grid})
    took = _sweep(topology, sweep, tmp_path / "dask", "--scheduler", topology["scheduler"])
    rows = _rows(tmp_path / "dask")
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}, rows
    assert len(os.listdir(tmp_path / "dask" / "runs")) == 4
    with sqlite3.connect(topology["dir"] / "estimator-costs.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM costs").fetchone()[0] > 0
    assert not (topology["dir"] / "workers-costs.sqlite").exists()  # nobody costed alone
    print(f"dask topology sweep: 4 runs in {took:.1f} s")

    # A worker per run: each run's network.ns3.endpoint names its own standalone worker
    # (CURVE + token, as compose's ns3-worker), which serves that one session and exits.
    workers: dict[str, subprocess.Popen[bytes]] = topology["ns3"]
    endpoints = sorted(workers)
    zipped = {"network.ns3.endpoint": endpoints, "devices.a.distance_m": [8, 30]}
    sweep = _files(
        tmp_path / "tcp-files", topology, {"policies": ["pacs"], "zip": zipped},
        keys=str(topology["keys"]), connect_timeout_s=120.0,  # a worker may still start
    )  # fmt: skip
    _sweep(topology, sweep, tmp_path / "tcp", "--scheduler", topology["scheduler"])
    tcp = _rows(tmp_path / "tcp")
    assert [r["network.ns3.endpoint"] for r in tcp] == endpoints
    assert {r["status"] for r in tcp} == {"ok"}, tcp
    for proc in workers.values():  # each served its run's session, then exited
        assert proc.wait(30) == 0, topology["procs"].tail()
    # A standalone worker and a pool's forked child simulate the same run.
    pooled = {r["devices.a.distance_m"]: r for r in rows if r["policy"] == "pacs"}
    for r in tcp:
        same = pooled[r["devices.a.distance_m"]]
        assert [r[k] for k in _RESULTS] == [same[k] for k in _RESULTS]
