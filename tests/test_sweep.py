"""Sweeps end to end on a real two-node Ray cluster and a real MLflow server on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time


import pytest
import ray
import ray.cloudpickle

import test_workers
from ferlab.tracking import PARENT_TAG, Store, server_command, wait_healthy
from ferlab.workers.sweep import SweepSpec, run_sweep
from test_workers import toy_fer, toy_plan

ray.cloudpickle.register_pickle_by_value(test_workers)  # Ray workers cannot import the tests folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """A real ``mlflow server`` (SQLite backend, proxied artifacts) on a free loopback port."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("mlflow_log") / "server.log", "w")
    proc = subprocess.Popen(server_command(tmp_path_factory.mktemp("mlflow"), port),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(uri, proc, timeout=90)
        yield Store(uri)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes on this machine, one CPU and a small object store each."""
    from ray.cluster_utils import Cluster

    small = {"num_cpus": 1, "object_store_memory": 150 * 1024**2, "include_dashboard": False}
    c = Cluster(initialize_head=True, head_node_args=dict(small))
    c.add_node(num_cpus=1, object_store_memory=150 * 1024**2)
    ray.init(address=c.address, logging_level="ERROR")
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


def children(mc, exp_id, parent_id):
    return mc.search_runs([exp_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}'")


def sweep(spec, store, tmp_path, cluster):
    return run_sweep(spec, store, address=cluster.address, storage=tmp_path / "tune",
                     planner=toy_plan, fer=toy_fer, verbose=0)


def test_sweep_two_regimes_two_seeds(cluster, tracking, tmp_path):
    from mlflow import MlflowClient

    spec = SweepSpec(name="smoke", base={"generations": 4, "checkpoint_every": 2, "target": "blob"},
                     grid={"regime": ["toy", "toy"], "seed": [0, 1]}, population_every=2)
    out = sweep(spec, tracking, tmp_path, cluster)
    assert (out.trials, out.failed) == (4, 0)
    mc = MlflowClient(tracking.uri)
    parents = mc.search_runs([out.experiment_id], filter_string="tags.`ferlab.kind` = 'sweep'")
    assert [p.info.run_id for p in parents] == [out.parent_id]
    assert parents[0].info.status == "FINISHED" and parents[0].data.params["sweep.name"] == "smoke"
    runs = children(mc, out.experiment_id, out.parent_id)
    assert len(runs) == 4
    assert sorted(r.data.tags["seed"] for r in runs) == ["0", "0", "1", "1"]
    for r in runs:
        assert r.info.status == "FINISHED"
        assert r.data.tags["regime"] == "toy" and r.data.tags["target"] == "blob"
        assert r.data.params["generations"] == "4" and r.data.params["regime"] == "toy"
        steps = [int(m.step) for m in mc.get_metric_history(r.info.run_id, "best_fitness")]
        assert sorted(steps) == [0, 1, 2, 3]
        assert "fer.best.fer_score" in r.data.metrics
        arts = {f.path for f in mc.list_artifacts(r.info.run_id, "nets/best")}
        assert {"nets/best/genome.json", "nets/best/net.npz", "nets/best/image.png"} <= arts
        pops = {f.path for f in mc.list_artifacts(r.info.run_id, "population")}
        assert pops == {"population/gen_000002.npz", "population/gen_000004.npz"}


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(cluster, tracking, tmp_path):
    from mlflow import MlflowClient

    spec = SweepSpec(name="failing", base={"generations": 4, "fail_at": 2},
                     grid={"regime": ["toy_fail", "toy"]}, max_failures=0)
    out = sweep(spec, tracking, tmp_path, cluster)
    assert (out.trials, out.failed) == (2, 1)
    runs = {r.data.tags["regime"]: r for r in children(MlflowClient(tracking.uri), out.experiment_id,
                                                        out.parent_id)}
    assert runs["toy"].info.status == "FINISHED"
    assert runs["toy_fail"].info.status == "FAILED"
    assert "RuntimeError: toy regime blew up on purpose" in runs["toy_fail"].data.tags["ferlab.error"]


def test_a_killed_trial_resumes_from_its_checkpoint(cluster, tracking, tmp_path):
    from mlflow import MlflowClient

    pid_file = tmp_path / "pid"
    spec = SweepSpec(name="killed", base={"generations": 8, "checkpoint_every": 2, "sleep": 0.4,
                                          "pid_file": str(pid_file), "regime": "toy"},
                     grid={"seed": [5]}, max_failures=2)
    mc = MlflowClient(tracking.uri)
    killed = []

    def killer():
        """Wait until generations 0-3 are recorded, then SIGKILL the trial's actor mid-slice."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            exp = mc.get_experiment_by_name("killed")
            runs = mc.search_runs([exp.experiment_id]) if exp else []
            runs = [r for r in runs if PARENT_TAG in r.data.tags]
            if runs and len(mc.get_metric_history(runs[0].info.run_id, "generation")) >= 4:
                time.sleep(0.6)
                pid = int(pid_file.read_text())
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.2)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    out = sweep(spec, tracking, tmp_path, cluster)
    thread.join(5)
    assert killed, "the trial finished before it could be killed"
    assert int(pid_file.read_text()) != killed[0]  # a new actor finished the run
    assert (out.trials, out.failed) == (1, 0)
    run, = children(mc, out.experiment_id, out.parent_id)
    assert run.info.status == "FINISHED"
    for key in ("generation", "best_fitness", "mean_fitness"):
        steps = [int(m.step) for m in mc.get_metric_history(run.info.run_id, key)]
        assert sorted(steps) == list(range(8)), key
    assert "fer.best.fer_score" in run.data.metrics

