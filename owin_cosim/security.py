"""ZeroMQ CURVE keys and socket setup, shared by the estimator service and the ns-3 worker.

``owin-cosim keys DIR`` writes a key directory (:func:`create_keys`)::

    DIR/server.key  DIR/server.key_secret    the service's keypair
    DIR/client.key  DIR/client.key_secret    a client's keypair
    DIR/clients/client.key                   public keys the service accepts

A service started with ``--keys DIR`` encrypts its socket and accepts only clients whose
public key is in ``DIR/clients/`` (:func:`curve_server`); a coordinator with the same
directory (``accelerator.estimator_keys``, ``network.ns3.keys``) connects with the
client keypair and checks the server's key (:func:`curve_client`). Services bind to
loopback unless told otherwise; a bind beyond it without keys is refused unless
``--insecure`` says so (:func:`check_bind`).

Only pyzmq is needed (``zmq.auth``); nothing here imports ``accel`` or ``network``.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from owin_cosim.errors import ConfigError

if TYPE_CHECKING:
    import zmq
    from zmq.auth.thread import ThreadAuthenticator

__all__ = [
    "check_bind",
    "create_keys",
    "curve_client",
    "curve_server",
    "is_loopback",
    "read_secret",
    "same_token",
]

_LOCAL_TRANSPORTS = ("ipc", "inproc")


def create_keys(directory: Path) -> Path:
    """Write a server and a client keypair into ``directory`` (see the module doc).

    Refuses a directory that already holds keys (they may be in use). Secret files are
    readable by their owner only.
    """
    import zmq.auth

    directory = Path(directory)
    if (directory / "server.key_secret").exists() or (directory / "client.key_secret").exists():
        raise ConfigError(directory, "", "already holds keys; expected a new or empty directory")
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name in ("server", "client"):
            _, secret = zmq.auth.create_certificates(str(directory), name)
            os.chmod(secret, 0o600)
        (directory / "clients").mkdir(exist_ok=True)
        shutil.copyfile(directory / "client.key", directory / "clients" / "client.key")
    except OSError as exc:
        raise ConfigError(directory, "", f"cannot write keys: {exc.strerror or exc}") from None
    return directory


def _load(path: Path, secret: bool) -> tuple[bytes, bytes | None]:
    import zmq.auth

    if not path.is_file():
        raise ConfigError(path, "", "missing: expected a key directory of 'owin-cosim keys'")
    try:
        public, secret_key = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise ConfigError(path, "", f"not a CURVE key file: {exc}") from None
    if secret and secret_key is None:
        raise ConfigError(path, "", "holds no secret key")
    return public, secret_key


def curve_server(
    ctx: zmq.Context[zmq.Socket[bytes]], sock: zmq.Socket[bytes], keys: Path
) -> ThreadAuthenticator:
    """Make ``sock`` (not yet bound) a CURVE server accepting ``keys/clients/*.key``.

    Returns the running authenticator; stop it when the socket closes.
    """
    from zmq.auth.thread import ThreadAuthenticator

    keys = Path(keys)
    public, secret = _load(keys / "server.key_secret", secret=True)
    if not (keys / "clients").is_dir():
        raise ConfigError(keys / "clients", "", "missing: the public keys of allowed clients")
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve(domain="*", location=str(keys / "clients"))
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_server = True
    return auth


def curve_client(sock: zmq.Socket[bytes], keys: Path) -> None:
    """Make ``sock`` (not yet connected) a CURVE client of the server of ``keys``."""
    keys = Path(keys)
    public, secret = _load(keys / "client.key_secret", secret=True)
    server_public, _ = _load(keys / "server.key", secret=False)
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_serverkey = server_public


def is_loopback(endpoint: str) -> bool:
    """Whether ``endpoint`` is reachable from this machine only.

    >>> is_loopback("tcp://127.0.0.1:5556"), is_loopback("tcp://[::1]:1")
    (True, True)
    >>> is_loopback("tcp://0.0.0.0:5556"), is_loopback("tcp://*:5556")
    (False, False)
    >>> is_loopback("ipc:///tmp/x.sock")
    True
    """
    scheme, _, rest = endpoint.partition("://")
    if scheme in _LOCAL_TRANSPORTS:
        return True
    host = urlparse(f"tcp://{rest}").hostname if rest else None
    if host is None or host == "localhost":
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # an interface name or a host name: not known to be local
        return False


def check_bind(endpoint: str, keys: Path | None, insecure: bool, option: str = "--bind") -> None:
    """Refuse a bind beyond loopback without CURVE keys, unless ``insecure``.

    Raises
    ------
    ConfigError
        For such a bind (the message says how to allow it).
    """
    if keys is None and not insecure and not is_loopback(endpoint):
        raise ConfigError(
            None,
            option,
            f"{endpoint} is reachable from other machines: give --keys DIR "
            "(made by 'owin-cosim keys DIR') for CURVE encryption and authentication, "
            "or --insecure to serve it unauthenticated",
        )


def same_token(given: object, expected: str) -> bool:
    """Whether a client's token is the expected one (compared in constant time).

    >>> same_token("abc", "abc"), same_token("abd", "abc"), same_token(None, "abc")
    (True, False, False)
    """
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def read_secret(value: str | None, file: Path | None, option: str) -> str | None:
    """A secret token: the first line of ``file`` when given, else ``value`` (``None``
    when neither; an empty one counts as none).

    Raises
    ------
    ConfigError
        For a file that cannot be read or holds no token.
    """
    if file is None:
        return value or None
    try:
        text = Path(file).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, option, f"cannot read the token: {exc}") from None
    if not text:
        raise ConfigError(file, option, "is empty; expected the token")
    return text
