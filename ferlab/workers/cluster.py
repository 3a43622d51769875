"""The Ray that runs, sweeps and studies work in, and joining a cluster fast or not at all.

``ray.init(address=...)`` retries an unreachable head for minutes before it gives
up; ``check_reachable`` opens a TCP connection to the head first and turns a
refusal, an unknown host or a timeout into a ``ConfigError`` before anything
is started or written. ``ray_session`` starts (or joins) Ray once for a whole
command, with the workers' environment, and shuts down only what it started.
"""

from __future__ import annotations

import socket
from contextlib import contextmanager

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


@contextmanager
def ray_session(address: str | None = None, gpus: float = 0, **init):
    """Work inside the Ray already started in this process, else the cluster at ``address`` (its
    head checked first), else a new local one; a Ray this starts is shut down on leaving.

    Workers get the JAX compile cache and, for shared GPUs (``0 < gpus < 1``), no memory
    preallocation; ``init`` adds ``ray.init`` arguments. A Ray that will not start or join is one
    ``ConfigError`` line.
    """
    import ray

    from ferlab.compile_cache import cache_env
    from ferlab.workers.run import NO_PREALLOCATE

    if ray.is_initialized():
        yield
        return
    check_reachable(address)
    env = {**cache_env(), **(NO_PREALLOCATE if 0 < gpus < 1 else {})}
    try:
        ray.init(address=address, runtime_env={"env_vars": env} if env else None, **init)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise ConfigError(f"cannot start or join Ray{f' at {address}' if address else ''}: {e}") from None
    try:
        yield
    finally:
        ray.shutdown()
