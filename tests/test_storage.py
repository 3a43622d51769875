"""Where Tune keeps checkpoints: URIs passed through, clusters refused without shared storage, and a
sweep on two nodes against a local S3 server (moto) whose killed trial resumes from the bucket."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import ray
import ray.cloudpickle
import yaml
from helpers import toy_fer, toy_plan

from ferlab.cli import main
from ferlab.config import ConfigError
from ferlab.workers.cluster import join_uri, tune_storage

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

S3 = "s3://bucket/ferlab/tune?endpoint_override=http://127.0.0.1:9000&region=us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_uris_pass_through_untouched_and_folders_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for uri in (S3, "gs://bucket/sweeps", "s3://bucket", "file:///mnt/nfs/tune"):
        assert tune_storage(uri, None) == uri
        assert tune_storage(uri, "10.0.0.5:6379") == uri
    assert tune_storage(None, None) == str(tmp_path / "tune")
    assert tune_storage("runs/tune", None) == str(tmp_path / "runs" / "tune")
    assert tune_storage(tmp_path / "nfs", "auto") == str(tmp_path / "nfs")  # a folder every node mounts
    assert join_uri(S3, "my-sweep") == (
        "s3://bucket/ferlab/tune/my-sweep?endpoint_override=http://127.0.0.1:9000&region=us-east-1"
    )
    assert join_uri("/mnt/nfs/tune/", "a") == "/mnt/nfs/tune/a"


def test_a_cluster_needs_shared_storage():
    for storage in (None, "tune", "./tune"):
        with pytest.raises(ConfigError, match="needs --storage s3://"):
            tune_storage(storage, "10.0.0.5:6379")


def sweep_spec(tmp_path) -> Path:
    """A valid one-point ES sweep spec (its target a PNG beside it)."""
    from ferlab.files import write_png

    write_png(tmp_path / "target.png", np.full((8, 8, 3), 0.5, np.float32))
    path = tmp_path / "sweep.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "s",
                "base": {
                    "regime": "es",
                    "generations": 2,
                    "resolution": 8,
                    "target": str(tmp_path / "target.png"),
                    "settings": {"population_size": 4},
                },
            }
        )
    )
    return path


@pytest.mark.parametrize("command", ["sweep", "study"])
def test_cluster_without_shared_storage_is_one_line_before_anything(tmp_path, capsys, monkeypatch, command):
    """Refused before the spec is read, Ray is joined or a store is created (the address is unreachable
    too, so a check that came later would name the address instead)."""
    monkeypatch.chdir(tmp_path)
    spec = sweep_spec(tmp_path)
    args = [command, str(spec), "--address", f"127.0.0.1:{free_port()}", "--tracking-uri", "http://127.0.0.1:1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs --storage s3://" in err and "Traceback" not in err
    assert main(args + ["--storage", "tune"]) == 2
    assert "a folder on this machine only" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.yaml", "target.png"] and not ray.is_initialized()


def test_resume_with_nothing_to_resume_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", str(sweep_spec(tmp_path)), "--resume", "--storage", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume: no unfinished sweep 's'" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.yaml", "target.png"] and not ray.is_initialized()


# ------------------------------------------------------------------ S3 on two nodes
def recording_plan(data: dict):
    """``toy_plan``, noting where the trial's restored checkpoint lives (None on a fresh start)."""
    from ray import tune

    ckpt = tune.get_checkpoint()
    seen = {"filesystem": ckpt.filesystem.type_name, "path": ckpt.path} if ckpt is not None else None
    with open(data["record"], "a") as f:
        f.write(json.dumps(seen) + "\n")
    return toy_plan({k: v for k, v in data.items() if k != "record"})


@pytest.fixture
def s3(monkeypatch):
    """A moto S3 server on 127.0.0.1 with one bucket; credentials in the environment that the Ray
    nodes started afterwards inherit."""
    from moto.server import ThreadedMotoServer

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    import boto3

    bucket = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}")
    bucket.create_bucket(Bucket="ferlab-test")
    try:
        yield port, bucket
    finally:
        server.stop()


def keys(bucket) -> list[str]:
    pages = bucket.get_paginator("list_objects_v2").paginate(Bucket="ferlab-test")
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.mark.slow  # two Ray nodes, an S3 server and a killed actor: about a minute on 2 loaded cores
def test_sweep_on_two_nodes_checkpoints_to_s3_and_a_killed_trial_resumes_from_there(s3, tmp_path):
    from mlflow import MlflowClient
    from ray.cluster_utils import Cluster

    from ferlab.tracking import PARENT_TAG, default_store
    from ferlab.workers.sweep import SweepSpec, run_sweep

    port, bucket = s3
    storage = f"s3://ferlab-test/sweeps?endpoint_override=http://127.0.0.1:{port}&region=us-east-1"
    record, pid_file = tmp_path / "restored.jsonl", tmp_path / "pid"
    # the head runs the driver only; the trial runs on the second node
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "object_store_memory": 100 * 1024**2, "include_dashboard": False},
    )
    c.add_node(num_cpus=1, object_store_memory=100 * 1024**2)
    ray.init(address=c.address, logging_level="ERROR")
    killed = []

    def kill_after_first_checkpoint():
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not killed:
            if any("/checkpoint_" in k and k.endswith("run.ckpt") for k in keys(bucket)):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
                killed.append(True)
            time.sleep(0.2)

    try:
        spec = SweepSpec(
            name="s3-sweep",
            base={
                "regime": "toy",
                "generations": 8,
                "checkpoint_every": 2,
                "sleep": 0.5,
                "pid_file": str(pid_file),
                "record": str(record),
            },
            max_failures=1,
        )
        store = default_store(tmp_path / "mlruns")
        thread = threading.Thread(target=kill_after_first_checkpoint, daemon=True)
        thread.start()
        out = run_sweep(spec, store, storage=storage, planner=recording_plan, fer=toy_fer, verbose=0)
        thread.join(5)
        nodes = {n["NodeID"] for n in ray.nodes() if n["Resources"].get("CPU", 0) > 0}
    finally:
        ray.shutdown()
        c.shutdown()
    assert killed, "the trial finished before it could be killed"
    assert (out.trials, out.failed) == (1, 0) and len(nodes) == 1
    first, second = [json.loads(line) for line in record.read_text().splitlines()]
    assert first is None  # a fresh start, then a restart from the checkpoint in the bucket
    assert second["filesystem"] == "s3" and second["path"].startswith("ferlab-test/sweeps/s3-sweep/")
    stored = keys(bucket)
    assert any(k.startswith("sweeps/s3-sweep/") and k.endswith("/run.ckpt") for k in stored)
    assert any(k.endswith("experiment_state.json") or "experiment_state" in k for k in stored)
    assert not (tmp_path / "tune").exists()
    mc = MlflowClient(store.uri)
    (run,) = mc.search_runs([out.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{out.parent_id}'")
    assert run.info.status == "FINISHED"
    assert sorted(int(m.step) for m in mc.get_metric_history(run.info.run_id, "generation")) == list(range(8))


# ------------------------------------------------------------------ a dead driver resumed
DRIVER = textwrap.dedent("""
    import sys, ray, ray.cloudpickle
    sys.path.insert(0, {tests!r})
    import helpers
    from ferlab.tracking import default_store
    from ferlab.workers.sweep import SweepSpec, run_sweep

    def plan(data):
        with open({log!r}, "a") as f:
            f.write(f"{{data['seed']}}\\n")
        return helpers.toy_plan(data)

    spec = SweepSpec(name="resumable", base={{"regime": "toy", "generations": 4, "checkpoint_every": 1,
                                             "sleep": 0.3}}, grid={{"seed": [0, 1, 2]}}, max_failures=0)
    ray.init(num_cpus=1, include_dashboard=False, logging_level="ERROR")
    out = run_sweep(spec, default_store({store!r}), storage={storage!r}, resume={resume}, planner=plan,
                    fer=helpers.toy_fer, verbose=0)
    print("RESULT", out.trials, out.failed, out.parent_id)
""")


@pytest.mark.slow  # two Ray starts and nine toy trials one at a time: about a minute on 2 loaded cores
def test_sweep_driver_killed_mid_run_is_resumed_without_redoing_finished_trials(tmp_path):
    from mlflow import MlflowClient

    from ferlab.tracking import PARENT_TAG, default_store

    log, store, storage = tmp_path / "planned.txt", tmp_path / "mlruns", tmp_path / "tune"

    def driver(resume: bool):
        code = DRIVER.format(
            tests=str(Path(__file__).parent), log=str(log), store=str(store), storage=str(storage), resume=resume
        )
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        return subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )

    mc = MlflowClient(default_store(store).uri)

    def finished() -> set[str]:
        """Seeds of the trials whose MLflow run is FINISHED."""
        exp = mc.get_experiment_by_name("resumable")
        runs = mc.search_runs([exp.experiment_id]) if exp else []
        return {r.data.tags["seed"] for r in runs if PARENT_TAG in r.data.tags and r.info.status == "FINISHED"}

    first = driver(resume=False)
    deadline = time.monotonic() + 240
    while not finished() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.3)
    assert first.poll() is None, first.communicate()[0][-2000:]
    os.killpg(first.pid, signal.SIGKILL)  # the driver and the local Ray it started die together
    first.wait()
    done_before = finished()
    assert 1 <= len(done_before) < 3
    second = driver(resume=True)
    output = second.communicate(timeout=300)[0]
    assert second.returncode == 0, output[-2000:]
    trials, failed, parent = output.split("RESULT ")[1].split()
    assert (trials, failed) == ("3", "0")
    planned = log.read_text().split()
    assert sorted(set(planned)) == ["0", "1", "2"]
    assert all(planned.count(seed) == 1 for seed in done_before)  # finished trials were not run again
    exp = mc.get_experiment_by_name("resumable")
    sweeps = mc.search_runs([exp.experiment_id], filter_string="tags.`ferlab.kind` = 'sweep'")
    assert [r.info.run_id for r in sweeps] == [parent] and sweeps[0].info.status == "FINISHED"
    runs = mc.search_runs([exp.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent}'")
    assert sorted(r.data.tags["seed"] for r in runs) == ["0", "1", "2"]
    assert all(r.info.status == "FINISHED" for r in runs)
