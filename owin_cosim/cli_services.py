"""The service commands of ``owin-cosim``: ``estimator`` (the cost-estimator service),
``ns3-worker`` (a standalone ns-3 worker) and ``keys`` (CURVE keys for both).
Registered on :data:`owin_cosim.cli.app` (``cli.py`` imports this module); see
:mod:`owin_cosim.security`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from owin_cosim.accel.limits import DEFAULT_QUERY_DEADLINE_S, DEFAULT_WORKERS
from owin_cosim.cli import InsecureOpt, KeysOpt, _guard, _say, app

__all__ = ["estimator", "keys_command", "ns3_worker"]


@app.command()
def estimator(
    bind: Annotated[str, typer.Option(help="Endpoint (beyond loopback: --keys).")] = (
        "tcp://127.0.0.1:5556"
    ),
    cache: Annotated[bool, typer.Option(help="Use the persistent cost cache.")] = True,
    keys: KeysOpt = None,
    insecure: InsecureOpt = False,
    token: Annotated[
        str | None,
        typer.Option(envvar="OWIN_COSIM_ESTIMATOR_TOKEN", help="The shutdown token (secret)."),
    ] = None,
    token_file: Annotated[Path | None, typer.Option(help="File holding the token.")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64)] = DEFAULT_WORKERS,
    deadline_s: Annotated[float, typer.Option(min=0.001, max=86400)] = DEFAULT_QUERY_DEADLINE_S,
) -> None:
    """Serve batched per-layer cost queries over pyzmq; only its owner may stop it
    (shutdown with the token, SIGTERM, Ctrl-C). Bounds: owin_cosim/accel/limits.py."""
    from owin_cosim.accel.service.server import serve
    from owin_cosim.security import check_bind, read_secret

    with _guard(False):
        check_bind(bind, keys, insecure)
        secret = read_secret(token, token_file, "--token-file")
        ready = f"owin-cosim estimator listening on {bind}" + (" (CURVE)" if keys else "")
        serve(bind, cache=cache, workers=workers, deadline_s=deadline_s, token=secret,
              keys=keys, ready=lambda: _say(ready))  # fmt: skip


@app.command("keys")
def keys_command(directory: Annotated[Path, typer.Argument(help="A new directory.")]) -> None:
    """Create CURVE keys (server and client keypairs) for the estimator and ns-3 worker."""
    from owin_cosim.security import create_keys

    with _guard(False):
        _say(f"wrote CURVE keys: serve and connect with --keys {create_keys(directory)}")


@app.command("ns3-worker")
def ns3_worker(
    bind: Annotated[str, typer.Option(help="Endpoint (beyond loopback: --keys).")] = (
        "tcp://127.0.0.1:5555"
    ),
    keys: KeysOpt = None,
    insecure: InsecureOpt = False,
    token_file: Annotated[
        Path | None,
        typer.Option(
            help="File with the token a coordinator must present (else "
            "$OWIN_COSIM_NS3_TOKEN_FILE or $OWIN_COSIM_NS3_TOKEN); required."
        ),
    ] = None,
) -> None:
    """Run one ns-3 worker on its own (for containers): serve one session, then exit;
    only a coordinator holding its token may drive it (docs/protocol.md)."""
    from owin_cosim.network.ns3.access import require_token
    from owin_cosim.network.ns3.environment import require_ns3
    from owin_cosim.network.ns3.worker import run_worker
    from owin_cosim.security import check_bind

    with _guard(False):
        check_bind(bind, keys, insecure)
        token = require_token(token_file)
        require_ns3()
        os.environ.setdefault("CPPYY_CRASH_QUIET", "1")
        _say(f"owin-cosim ns3-worker listening on {bind}" + (" (CURVE)" if keys else ""))
        run_worker(bind, token=token, keys=keys)
