"""Joining a Ray cluster: addresses parsed, an unreachable head refused in seconds with one line."""

import socket

import pytest

from ferlab.config import ConfigError
from ferlab.workers.cluster import CLIENT_PORT, RAY_PORT, check_reachable, head_endpoint


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_addresses_name_the_head_and_its_port():
    assert head_endpoint("10.0.0.5:6380") == ("10.0.0.5", 6380)
    assert head_endpoint("head") == ("head", RAY_PORT)
    assert head_endpoint("ray://head") == ("head", CLIENT_PORT)
    assert head_endpoint("ray://head:10002/") == ("head", 10002)
    assert head_endpoint("auto") is None
    for bad in ("head:port", "head:70000", ":6379"):
        with pytest.raises(ConfigError, match="--address"):
            head_endpoint(bad)


def test_unreachable_head_is_a_config_error_naming_it():
    port = closed_port()
    with pytest.raises(ConfigError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}: .*ray start --head"):
        check_reachable(f"127.0.0.1:{port}")
    check_reachable(None)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_reachable("127.0.0.1:%d" % server.getsockname()[1])  # a listening head passes
