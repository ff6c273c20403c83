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


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A dask scheduler, two dask workers with ns-3 pools and a CURVE estimator, all on
    loopback; yields the scheduler's address, the estimator's, the key directory and
    the fork servers' pids. Stopped on every exit path, then the pools are checked gone."""
    from distributed import Client

    from owin_cosim.security import create_keys

    keys = create_keys(tmp_path / "keys")
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = Processes(logs)
    dask = shutil.which("dask", path=str(_BIN)) or "dask"
    address = f"tcp://127.0.0.1:{free_port()}"
    # Costs only from the estimator: a dask worker that costs itself would fill this.
    env = {
        **os.environ,
        "OWIN_COSIM_COST_CACHE": str(tmp_path / "workers-costs.sqlite"),
        "PYTHONPATH": str(REPO),  # client.run(_pool_server) unpickles tests.test_topology
    }
    servers: list[int] = []
    with ExitStack() as stack:
        stack.callback(procs.stop)
        estimator = stack.enter_context(
            estimator_process(tmp_path / "estimator-costs.sqlite", "--keys", str(keys))
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
            procs.start(f"worker-{i}", worker, env)
        try:
            with Client(address, timeout=60) as client:
                client.wait_for_workers(2, timeout=150)
                servers = [p for p in client.run(_pool_server).values() if p is not None]
        except Exception:
            pytest.fail(f"the dask cluster did not come up:\n{procs.tail()}", pytrace=False)
        yield {"scheduler": address, "estimator": estimator, "keys": keys, "servers": servers,
               "procs": procs}  # fmt: skip
    left = [pid for pid in servers if _alive(pid)]
    deadline = time.monotonic() + 15.0
    while left and time.monotonic() < deadline:  # they end when their owner's pipe closes
        time.sleep(0.2)
        left = [pid for pid in left if _alive(pid)]
    assert not left, f"ns-3 fork servers still running after the dask workers: {left}"


def _files(tmp_path: Path, estimator: str, keys: Path) -> Path:
    """A tiny ns-3 scenario (costs from the estimator) and a 4-run sweep over it."""
    from tests.test_ns3 import _tiny_scenario

    tiny = _tiny_scenario({"scenario": "lte-uplink"})
    scenario = tiny.model_dump(mode="json", exclude_unset=True)
    scenario["accelerator"].update(estimator=estimator, estimator_keys=str(keys))
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(scenario), "utf-8")
    sweep = {
        "scenario": "base.yaml",
        "policies": ["rtfs", "pacs"],
        "grid": {"devices.a.distance_m": [8, 30]},
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep), "utf-8")
    return tmp_path / "sweep.yaml"


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open(newline="") as f:
        return [{k: v for k, v in r.items() if k != "wall_s"} for r in csv.DictReader(f)]


def test_sweep_on_dask_workers_with_ns3_pools_and_an_estimator(
    tmp_path: Path, topology: dict[str, Any]
) -> None:
    assert len(topology["servers"]) == 2  # each dask worker owns a started pool
    sweep = _files(tmp_path, topology["estimator"], topology["keys"])
    owin = [str(_BIN / "owin-cosim"), "sweep", str(sweep)]
    env = {**os.environ, "OWIN_COSIM_COST_CACHE": str(tmp_path / "sweep-costs.sqlite")}
    t0 = time.monotonic()
    proc = topology["procs"].start(
        "sweep", [*owin, "--out", str(tmp_path / "dask"), "--scheduler", topology["scheduler"]],
        env,
    )  # fmt: skip
    rc = proc.wait(180)
    took = time.monotonic() - t0
    assert rc == 0, topology["procs"].tail()
    rows = _rows(tmp_path / "dask")
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}, rows
    assert len(os.listdir(tmp_path / "dask" / "runs")) == 4
    with sqlite3.connect(tmp_path / "estimator-costs.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM costs").fetchone()[0] > 0
    assert not (tmp_path / "workers-costs.sqlite").exists()  # nobody costed on their own
    # The same sweep on the local process pool (ns-3 from the sweep's own pool).
    local = topology["procs"].start(
        "local", [*owin, "--out", str(tmp_path / "local"), "--workers", "2"], env
    )
    assert local.wait(240) == 0, topology["procs"].tail()
    assert _rows(tmp_path / "dask") == _rows(tmp_path / "local")
    print(f"dask topology sweep: 4 runs in {took:.1f} s")
