"""The service commands of ``owin-cosim``: ``estimator`` (the cost-estimator service) and
``keys`` (CURVE keys for it and the ns-3 worker). Registered on :data:`owin_cosim.cli.app`
(``cli.py`` imports this module); see :mod:`owin_cosim.security`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from owin_cosim.accel.limits import DEFAULT_QUERY_DEADLINE_S, DEFAULT_WORKERS
from owin_cosim.cli import InsecureOpt, KeysOpt, _guard, _say, app

__all__ = ["estimator", "keys_command"]


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
