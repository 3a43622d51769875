"""The Ray that runs, sweeps and studies work in, and joining a cluster fast or not at all.

``ray.init(address=...)`` retries an unreachable head for minutes before it gives
up; ``check_reachable`` opens a TCP connection to the head first and turns a
refusal, an unknown host or a timeout into a ``ConfigError`` before anything
is started or written. ``ray_session`` starts (or joins) Ray once for a whole
command, with the workers' environment, and shuts down only what it started; a Ray
it starts for itself listens on 127.0.0.1 only, with no dashboard unless asked.
``check_fits`` refuses work whose resources the local Ray cannot give (Ray would
leave it pending for ever). ``quiet_shutdown_exits`` keeps a worker that Ray stops
from printing a traceback for an exit Python ignores anyway. ``tune_storage``
decides where Tune keeps trial checkpoints: a URI (``s3://``, ``gs://``) passed
through untouched, or a local folder made absolute.
"""

from __future__ import annotations

import os
import socket
import sys
from contextlib import contextmanager
from pathlib import Path

from ferlab.config import ConfigError

RAY_PORT = 6379  # the GCS port `ray start --head` listens on by default
CLIENT_PORT = 10001  # the Ray Client server's default port (ray://)
LOOPBACK = "127.0.0.1"
# Ray's switch for "this node never joins a cluster": its node IP becomes loopback, so the GCS,
# raylet, workers and agents bind 127.0.0.1 instead of every interface. Read by Ray at import.
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
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
        raise ConfigError(
            f"cannot reach the Ray cluster at {address}: no answer within {timeout:g} s; {HINT}"
        ) from None
    except OSError as e:
        raise ConfigError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}; {HINT}") from None


def is_uri(storage: str | Path) -> bool:
    """Whether ``storage`` is a URI (``s3://``, ``gs://``, ``file://``...) rather than a folder name."""
    return isinstance(storage, str) and "://" in storage.split("?", 1)[0]


def tune_storage(storage: str | Path | None, address: str | None, default: str | Path = "tune") -> str:
    """Where Tune keeps results and checkpoints: a URI exactly as given, else an absolute local folder.

    On a cluster (``address``) trials on every node write checkpoints there, so it must be a URI or
    an absolute folder that every node mounts; a missing or relative one is a ``ConfigError``.
    """
    if storage is not None and is_uri(str(storage)):
        return str(storage)
    if address and (storage is None or not Path(storage).is_absolute()):
        given = f" (got {str(storage)!r}, a folder on this machine only)" if storage is not None else ""
        raise ConfigError(
            "a sweep on a cluster needs --storage s3://bucket/path, gs://bucket/path or an "
            f"absolute folder that every node mounts, for trial checkpoints{given}"
        )
    return str(Path(storage if storage is not None else default).resolve())


def join_uri(base: str, name: str) -> str:
    """``base/name`` for a folder or a URI, keeping a URI's ``?query`` (e.g. ``endpoint_override``) last."""
    path, sep, query = base.partition("?")
    return f"{path.rstrip('/')}/{name}{sep}{query}"


@contextmanager
def _loopback_only():
    """``ray.init`` of a local Ray with node IP 127.0.0.1, so every Ray process binds loopback.

    Ray resolves 127.0.0.1 to the machine's address unless its local-only switch is off; the
    switch is an environment variable (inherited by the processes Ray starts) that the already
    imported ``ray_constants`` read once, so both are set for the call and restored after.
    """
    from ray._private import ray_constants

    before_env, before = os.environ.get(LOCAL_ONLY_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[LOCAL_ONLY_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before
        if before_env is None:
            os.environ.pop(LOCAL_ONLY_ENV, None)
        else:
            os.environ[LOCAL_ONLY_ENV] = before_env


def quiet_shutdown_exits() -> None:
    """In a worker process: drop the ``SystemExit`` that Ray's SIGTERM handler raises when the
    signal lands inside a finaliser or weakref callback as Ray stops the worker. Python ignores an
    exception raised there (it cannot propagate) and only reports it, as an "Exception ignored"
    traceback that reads like a failure at the end of a successful sweep; nothing else changes.
    Any other unraisable exception still reaches the hook that was there. Idempotent."""
    previous = sys.unraisablehook
    if getattr(previous, "ferlab_quiet", False):
        return

    def hook(unraisable):
        if not isinstance(unraisable.exc_value, SystemExit):
            previous(unraisable)

    hook.ferlab_quiet = True
    sys.unraisablehook = hook


def check_fits(need: dict[str, float], what: str, address: str | None, count: int = 1) -> None:
    """Refuse (ConfigError) ``count`` pieces of work that each need ``need`` (Ray resource -> amount)
    on one node when the Ray this command started cannot hold them: Ray would leave them pending
    for ever. On a cluster (``address``), whose autoscaler may still add nodes, warn in one line."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    short = []
    for name, amount in need.items():
        largest = max((r.get(name, 0) for r in nodes), default=0)
        total = sum(r.get(name, 0) for r in nodes)
        if amount and largest < amount:
            short.append(f"{amount:g} {name} on one node (the largest has {largest:g})")
        elif amount and total < count * amount:
            short.append(f"{count * amount:g} {name} in all (the Ray has {total:g})")
    if not short:
        return
    text = f"{what} need{'s' if count == 1 else ''} {' and '.join(short)}"
    if address or os.environ.get("RAY_ADDRESS"):
        print(f"ferlab: warning: {text}; it waits until the cluster has them", file=sys.stderr)
        return
    raise ConfigError(text)


@contextmanager
def ray_session(address: str | None = None, gpus: float = 0, dashboard: bool = False, **init):
    """Work inside the Ray already started in this process, else the cluster at ``address`` (its
    head checked first), else a new local one on 127.0.0.1 only (its dashboard only when
    ``dashboard``, also on 127.0.0.1); a Ray this starts is shut down on leaving.

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
    runtime_env = {"env_vars": env} if env else None
    try:
        if address or os.environ.get("RAY_ADDRESS"):  # a cluster, or the one a Ray job runs in
            ray.init(address=address, runtime_env=runtime_env, **init)
        else:
            init = {"include_dashboard": dashboard, **init}
            if init["include_dashboard"]:
                init.setdefault("dashboard_host", LOOPBACK)
            with _loopback_only():  # "local": a Ray of its own, never one another job started on this host
                ray.init(address="local", runtime_env=runtime_env, _node_ip_address=LOOPBACK, **init)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise ConfigError(f"cannot start or join Ray{f' at {address}' if address else ''}: {e}") from None
    try:
        yield
    finally:
        ray.shutdown()
