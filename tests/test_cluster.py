"""Joining a Ray cluster: addresses parsed, an unreachable head refused in seconds with one line."""

import socket

import jax
import pytest
import ray
import yaml

from ferlab.cli import main
from ferlab.config import ConfigError
from ferlab.cppn import init_net
from ferlab.files import write_png
from ferlab.render import render
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
        check_reachable(f"127.0.0.1:{server.getsockname()[1]}")  # a listening head passes


def test_islands_run_on_an_unreachable_cluster_fails_before_writing(tmp_path, capsys):
    from helpers import ARCH

    target = write_png(tmp_path / "target.png", render(init_net(ARCH, jax.random.PRNGKey(4)), 12).rgb)
    path = tmp_path / "es_islands.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "regime": "es",
                "generations": 4,
                "resolution": 12,
                "target": str(target),
                "arch": str(ARCH),
                "settings": {"population_size": 8},
                "islands": {"count": 2},
            }
        )
    )
    port = closed_port()
    assert not ray.is_initialized()  # else the run would work in that Ray, whatever --address says
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--address", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() and not ray.is_initialized()


def test_a_local_ray_is_its_own_not_one_another_job_started(monkeypatch):
    """Without an address ``ray.init()`` joins the newest Ray that ``ray start`` left on the host (another
    study's, another venv's); ferlab's local Ray asks for a new one."""
    from ferlab.workers.cluster import ray_session

    asked = {}

    def init(address=None, **kwargs):
        asked["address"] = address
        raise RuntimeError("not started in this test")

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(ConfigError, match="cannot start or join Ray: not started"), ray_session():
        pass
    assert asked == {"address": "local"}


def test_local_ray_listens_on_loopback_only():
    """Every socket that the Ray ferlab starts for itself listens on (the driver, GCS, raylet, workers,
    agents) is on 127.0.0.1: what ``ss -ltnp`` lists for this process and its children."""
    import ipaddress
    import os

    import psutil
    from ray._private import ray_constants

    from ferlab.workers.cluster import LOCAL_ONLY_ENV, ray_session

    assert not ray.is_initialized()
    before = (os.environ.get(LOCAL_ONLY_ENV), ray_constants.ENABLE_RAY_CLUSTER)
    with ray_session(num_cpus=1):
        assert ray.get(ray.remote(lambda: ray.util.get_node_ip_address()).remote()) == "127.0.0.1"
        me = psutil.Process()
        ours = {me.pid, *(p.pid for p in me.children(recursive=True))}
        listening = [
            c.laddr for c in psutil.net_connections("inet") if c.status == psutil.CONN_LISTEN and c.pid in ours
        ]
    assert not ray.is_initialized()
    assert (os.environ.get(LOCAL_ONLY_ENV), ray_constants.ENABLE_RAY_CLUSTER) == before  # nothing left changed
    assert len(listening) >= 3  # at least the GCS, the raylet and a worker
    for addr in listening:
        ip = ipaddress.ip_address(addr.ip)
        ip = getattr(ip, "ipv4_mapped", None) or ip
        assert ip.is_loopback, f"{addr.ip}:{addr.port} is not loopback"


QUIET_PROBE = """
import sys, weakref
if sys.argv[1] == "quiet":
    from ferlab.workers.cluster import quiet_shutdown_exits
    quiet_shutdown_exits()
    quiet_shutdown_exits()
class A: pass
def stop(_): raise SystemExit(1)  # what Ray's SIGTERM handler raises, landing in a weakref callback
def fail(_): raise ValueError("a real error in a finaliser")
a, b = A(), A()
refs = weakref.ref(a, stop), weakref.ref(b, fail)
del a, b
print("still running")
"""


@pytest.mark.parametrize("mode", ["quiet", "plain"])
def test_a_stopped_worker_prints_no_traceback_for_the_exit_python_ignores(mode):
    """Ray stops a finished trial's worker with SIGTERM; its handler raises SystemExit, and where that
    lands in a weakref callback Python ignores it and prints an 'Exception ignored' traceback.
    ``quiet_shutdown_exits`` (which every Tune trial calls) drops that report only: the process runs
    on as before, and any other exception raised there is still reported."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", QUIET_PROBE, mode], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "still running\n"
    assert "ValueError: a real error in a finaliser" in done.stderr
    assert ("SystemExit" in done.stderr) == (mode == "plain")
