"""Joining a Ray cluster: fail in seconds, with one clear line, when its head cannot be reached.

``ray.init(address=...)`` retries an unreachable head for minutes before it gives
up; ``check_reachable`` opens a TCP connection to the head first and turns a
refusal, an unknown host or a timeout into a ``ConfigError`` before anything
is started or written.
"""

from __future__ import annotations

import socket

from ferlab.config import ConfigError

RAY_PORT = 6379  # the GCS port `ray start --head` listens on by default
CLIENT_PORT = 10001  # the Ray Client server's default port (ray://)
HINT = "start it with `ray start --head` or `ray up infra/ray-cluster.yaml`, or leave --address out for a local Ray"


def head_endpoint(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a cluster address (``host:port``, ``host`` or ``ray://host[:port]``);
    None for the addresses Ray resolves itself (``auto``, ``local``)."""
    if address in ("auto", "local"):
        return None
    client = address.startswith("ray://")
    rest = address.removeprefix("ray://").rstrip("/")
    host, sep, port = rest.rpartition(":")
    if not sep:
        host, port = rest, ""
    if not host:
        raise ConfigError(f"--address {address!r}: expected host:port or ray://host:port")
    if not port:
        return host, CLIENT_PORT if client else RAY_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--address {address!r}: {port!r} is not a port number")
    return host, int(port)


def check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Raise ``ConfigError`` unless the Ray head at ``address`` accepts a TCP connection
    within ``timeout`` seconds (no address: a local Ray, nothing to check)."""
    endpoint = None if not address else head_endpoint(address)
    if endpoint is None:
        return
    try:
        with socket.create_connection(endpoint, timeout=timeout):
            pass
    except socket.gaierror:
        raise ConfigError(f"cannot reach the Ray cluster at {address}: unknown host {endpoint[0]!r}; {HINT}") from None
    except TimeoutError:
        raise ConfigError(f"cannot reach the Ray cluster at {address}: no answer within {timeout:g} s; "
                          f"{HINT}") from None
    except OSError as e:
        raise ConfigError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}; {HINT}") from None
