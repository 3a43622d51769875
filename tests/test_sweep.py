"""Sweeps end to end on a real two-node Ray cluster and a real MLflow server on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import jax
import pytest
import ray
import ray.cloudpickle
import yaml

from ferlab.cli import main
from ferlab.cppn import init_net
from ferlab.files import write_png
from ferlab.render import render
from ferlab.tracking import PARENT_TAG, Store, default_store, server_command, wait_healthy
from ferlab.workers.sweep import Asha, SweepSpec, run_sweep
from helpers import ARCH, toy_fer, toy_plan


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """A real ``mlflow server`` (SQLite backend, proxied artifacts) on a free loopback port."""
    port = free_port()
    with open(tmp_path_factory.mktemp("mlflow_log") / "server.log", "w") as log:
        proc = subprocess.Popen(
            server_command(tmp_path_factory.mktemp("mlflow"), port),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
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


@pytest.fixture
def local_ray():
    """One local Ray node with two CPUs and a small object store."""
    ray.init(num_cpus=2, object_store_memory=100 * 1024**2, include_dashboard=False, logging_level="ERROR")
    try:
        yield type("Local", (), {"address": None})()
    finally:
        ray.shutdown()


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
    return run_sweep(
        spec, store, address=cluster.address, storage=tmp_path / "tune", planner=toy_plan, fer=toy_fer, verbose=0
    )


ES = {"regime": "es", "generations": 2, "settings": {"population_size": 4}}
SGD = {"regime": "sgd", "settings": {"steps": 4, "steps_per_generation": 2}}
STAT = {"es": "best_fitness", "sgd": "loss"}


def spec_file(tmp_path, grid, variants=(ES,)) -> Path:
    """A sweep spec over real regimes at a tiny budget (2 generations), aiming at a rendered target."""
    target = write_png(tmp_path / "target.png", render(init_net(ARCH, jax.random.PRNGKey(9)), 12).rgb)
    spec = {
        "name": "real-smoke",
        "grid": grid,
        "variants": list(variants),
        "max_failures": 0,
        "population_every": 2,
        "base": {"resolution": 12, "target": str(target), "arch": str(ARCH), "checkpoint_every": 1},
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def check_sweep(mc, n_children, generations=2):
    """One parent, ``n_children`` finished children with params, per-generation metrics and artifacts."""
    exp = mc.get_experiment_by_name("real-smoke")
    (parent,) = mc.search_runs([exp.experiment_id], filter_string="tags.`ferlab.kind` = 'sweep'")
    assert parent.info.status == "FINISHED" and parent.data.params["sweep.base.resolution"] == "12"
    runs = children(mc, exp.experiment_id, parent.info.run_id)
    assert len(runs) == n_children
    for r in runs:
        assert r.info.status == "FINISHED", r.data.tags.get("ferlab.error")
        regime = r.data.tags["regime"]
        assert r.data.params["regime"] == regime and r.data.params["resolution"] == "12"
        assert r.data.params["seed"] == r.data.tags["seed"]
        for key in ("generation", STAT[regime]):
            assert sorted(int(m.step) for m in mc.get_metric_history(r.info.run_id, key)) == list(range(generations))
        names = {f.path.split("/")[1] for f in mc.list_artifacts(r.info.run_id, "nets")}
        assert names
        for name in names:  # every final net: .npz, PNG, FER suite files and metrics
            arts = {f.path for f in mc.list_artifacts(r.info.run_id, f"nets/{name}")}
            assert {f"nets/{name}/net.npz", f"nets/{name}/image.png"} <= arts
            fer = {f.path for f in mc.list_artifacts(r.info.run_id, f"nets/{name}/fer")}
            assert {f"nets/{name}/fer/metrics.json", f"nets/{name}/fer/features.png"} <= fer
            assert 0 <= r.data.metrics[f"fer.{name}.fer_score"] <= 1
        assert len(mc.list_artifacts(r.info.run_id, "population")) == generations // 2
    return runs


def test_sweep_command_on_local_ray_and_embedded_store(tmp_path, capsys, monkeypatch):
    """The default path: no address (a local Ray), no tracking URI (SQLite store in --store), and the
    target named relative to the folder the command runs in (Tune runs each trial in its own folder)."""
    from mlflow import MlflowClient

    spec = spec_file(tmp_path, {"seed": [3]})
    data = yaml.safe_load(spec.read_text())
    data["base"]["target"] = "target.png"
    spec.write_text(yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)
    rc = main(["sweep", str(spec), "--store", str(tmp_path / "mlruns"), "--storage", str(tmp_path / "tune")])
    assert rc == 0 and not ray.is_initialized()
    printed = capsys.readouterr()
    assert "1 trials, 0 failed" in printed.out
    assert "real-smoke: 100%" in printed.err and "1/1" in printed.err  # one progress bar
    assert "Trial status" not in printed.out + printed.err  # in place of Tune's tables (--verbose)
    (run,) = check_sweep(MlflowClient(default_store(tmp_path / "mlruns").uri), 1)
    assert run.data.tags["seed"] == "3"


def test_tracking_server_down_is_a_clear_error_before_any_compute(tmp_path, capsys):
    port = free_port()
    rc = main(
        [
            "sweep",
            str(spec_file(tmp_path, {"seed": [0]})),
            "--tracking-uri",
            f"http://127.0.0.1:{port}",
            "--storage",
            str(tmp_path / "tune"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith(f"ferlab: error: tracking server http://127.0.0.1:{port} is not reachable")
    assert not ray.is_initialized() and not (tmp_path / "tune").exists()


def kill_when_recorded(mc, experiment, pid_file, generations, killed):
    """Wait until ``generations`` generations are in MLflow, then SIGKILL the trial's actor mid-slice."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        exp = mc.get_experiment_by_name(experiment)
        runs = [
            r
            for r in (mc.search_runs([exp.experiment_id]) if exp else [])
            if PARENT_TAG in r.data.tags and r.data.tags["regime"] == "toy"
        ]
        if runs and len(mc.get_metric_history(runs[0].info.run_id, "generation")) >= generations:
            time.sleep(0.6)
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.2)


def failing_and_killed(store, tmp_path, ray_cluster, name):
    """A sweep with a trial that raises and a trial whose actor is killed; both checked in MLflow."""
    from mlflow import MlflowClient

    pid_file = tmp_path / "pid"
    spec = SweepSpec(
        name=name,
        base={
            "generations": 6,
            "checkpoint_every": 2,
            "sleep": 0.4,
            "fail_at": 2,
            "pid_file": str(pid_file),
            "seed": 5,
        },
        grid={"regime": ["toy", "toy_fail"]},
        max_failures=1,
    )
    mc = MlflowClient(store.uri)
    killed = []
    thread = threading.Thread(target=kill_when_recorded, args=(mc, name, pid_file, 2, killed), daemon=True)
    thread.start()
    out = sweep(spec, store, tmp_path, ray_cluster)
    thread.join(5)
    assert killed, "the trial finished before it could be killed"
    assert int(pid_file.read_text()) != killed[0]  # a new actor finished the run
    assert (out.trials, out.failed) == (2, 1)
    runs = {r.data.tags["regime"]: r for r in children(mc, out.experiment_id, out.parent_id)}
    assert runs["toy_fail"].info.status == "FAILED"
    assert "RuntimeError: toy regime blew up on purpose" in runs["toy_fail"].data.tags["ferlab.error"]
    run = runs["toy"]
    assert run.info.status == "FINISHED"
    for key in ("generation", "best_fitness", "mean_fitness"):
        steps = [int(m.step) for m in mc.get_metric_history(run.info.run_id, key)]
        assert sorted(steps) == list(range(6)), key
    assert "fer.best.fer_score" in run.data.metrics


@pytest.mark.slow  # 16 s of Ray Tune scheduling; the default run keeps the sweep command's own test
def test_asha_stops_the_worse_trials_early_and_lets_the_best_finish(local_ray, tmp_path):
    """Three toy trials whose best fitness differs by a whole unit, two at a time: ASHA (rungs at
    1, 2, 4 of 6 generations) cuts the third short at its first rung; the best runs its whole budget."""
    from mlflow import MlflowClient

    store = default_store(tmp_path / "mlruns")
    spec = SweepSpec(
        name="asha",
        base={"generations": 6, "checkpoint_every": 1, "population": 2},
        grid={"offset": [0.0, -1.0, -2.0]},
        metric="best_fitness",
        mode="max",
        asha=Asha(grace_period=1, reduction_factor=2, max_t=6),  # load_sweep sets it from a YAML spec
        max_failures=0,
    )
    out = sweep(spec, store, tmp_path, local_ray)
    assert (out.trials, out.failed) == (3, 0)
    mc = MlflowClient(store.uri)
    logged = {
        float(r.data.params["offset"]): len(mc.get_metric_history(r.info.run_id, "generation"))
        for r in children(mc, out.experiment_id, out.parent_id)
    }
    assert sorted(logged) == [-2.0, -1.0, 0.0]
    assert logged[0.0] == 6  # the best trial is never below a rung's cutoff
    assert logged[-2.0] < 6 and all(n >= 1 for n in logged.values())


@pytest.mark.slow
def test_failing_trial_recorded_and_killed_trial_resumes_on_local_ray(local_ray, tmp_path):
    failing_and_killed(default_store(tmp_path / "mlruns"), tmp_path, local_ray, "local-failures")


@pytest.mark.slow
def test_failing_trial_recorded_and_killed_trial_resumes_on_two_nodes(cluster, tracking, tmp_path):
    failing_and_killed(tracking, tmp_path, cluster, "cluster-failures")


@pytest.mark.slow
def test_sweep_command_on_two_node_cluster_and_tracking_server(cluster, tracking, tmp_path):
    """``ferlab sweep`` joins a two-node cluster and logs through a real ``mlflow server``."""
    from mlflow import MlflowClient

    spec = spec_file(tmp_path, {"seed": [0, 1]}, variants=(ES, SGD))
    rc = main(
        [
            "sweep",
            str(spec),
            "--address",
            cluster.address,
            "--tracking-uri",
            tracking.uri,
            "--storage",
            str(tmp_path / "tune"),
        ]
    )
    assert rc == 0
    runs = check_sweep(MlflowClient(tracking.uri), 4)
    points = sorted((r.data.tags["regime"], r.data.tags["seed"]) for r in runs)
    assert points == [("es", "0"), ("es", "1"), ("sgd", "0"), ("sgd", "1")]


@pytest.mark.slow
def test_toy_sweep_two_nodes_reads_back_fer_metrics_and_genomes(cluster, tracking, tmp_path):
    from mlflow import MlflowClient

    spec = SweepSpec(
        name="smoke",
        base={"generations": 4, "checkpoint_every": 2, "target": "blob"},
        grid={"regime": ["toy", "toy"], "seed": [0, 1]},
        population_every=2,
    )
    out = sweep(spec, tracking, tmp_path, cluster)
    assert (out.trials, out.failed) == (4, 0)
    mc = MlflowClient(tracking.uri)
    runs = children(mc, out.experiment_id, out.parent_id)
    assert len(runs) == 4 and sorted(r.data.tags["seed"] for r in runs) == ["0", "0", "1", "1"]
    for r in runs:
        assert r.info.status == "FINISHED" and r.data.tags["target"] == "blob"
        assert "fer.best.fer_score" in r.data.metrics
        arts = {f.path for f in mc.list_artifacts(r.info.run_id, "nets/best")}
        assert {"nets/best/genome.json", "nets/best/net.npz", "nets/best/image.png", "nets/best/fer"} <= arts


def test_a_reopened_phase_run_follows_the_new_study_run_under_its_new_driver(tmp_path):
    """A killed study's phase run, reopened by the resumed study, becomes a child of the new study
    run (not of the killed one) and is driven by this process (another's reap leaves it alone)."""
    from ferlab.tracking import (
        DRIVER_TAG,
        PARENT_TAG,
        STOPPED_TAG,
        client,
        default_store,
        driver_id,
        phase_tags,
        reap,
        start_sweep,
    )
    from ferlab.workers.sweep import TUNE_TAG, SweepSpec, _reopen_parent

    store = default_store(tmp_path / "mlruns")
    spec = SweepSpec(name="study-x")
    exp, run_id = start_sweep(store, spec.name, {}, {**phase_tags("old-study", "sgd"), TUNE_TAG: "T"}, "sgd")
    mc = client(store)
    mc.set_tag(run_id, DRIVER_TAG, f"{socket.gethostname()}:999999999:1")  # a dead process on this host
    assert reap(store, exp) == 1 and mc.get_run(run_id).info.status == "KILLED"
    assert _reopen_parent(store, spec, "T", "sgd", phase_tags("new-study", "sgd")) == (exp, run_id)
    back = mc.get_run(run_id)
    assert back.info.status == "RUNNING" and back.data.tags[PARENT_TAG] == "new-study"
    assert back.data.tags[DRIVER_TAG] == driver_id() and STOPPED_TAG not in back.data.tags
    assert reap(store, exp) == 0
