"""MLflow tracking on the embedded SQLite store: child runs, exactly-once generations, artifacts."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from ferlab.tracking import (PARENT_TAG, Store, TrackingError, TrialLog, check_store, default_store,
                             start_sweep)
from test_workers import toy_fer, toy_plan


@pytest.fixture
def store(tmp_path):
    return default_store(tmp_path / "mlruns")


def _gens(mc, run_id, key="generation"):
    return sorted(int(m.step) for m in mc.get_metric_history(run_id, key))


def test_default_store_is_sqlite_under_an_absolute_folder(tmp_path):
    s = default_store(tmp_path / "m")
    assert s.uri == f"sqlite:///{tmp_path / 'm' / 'mlflow.db'}" and not s.is_server
    assert s.artifact_root.startswith("file://") and (tmp_path / "m").is_dir()


def test_unreachable_server_is_one_clear_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TrackingError, match=rf"tracking server http://127.0.0.1:{port} is not reachable"):
        check_store(Store(f"http://127.0.0.1:{port}"), timeout=2)


def test_trial_log_resumes_its_run_and_logs_each_generation_once(store):
    exp, parent = start_sweep(store, "unit", {"sweep.base.generations": 4})
    log = TrialLog(store, exp, parent, "trial_a", "a", {"regime": "toy", "seed": 1}, {"seed": 1, "arch.x": [1, 2]})
    for g in range(3):
        log.generation({"generation": g, "best_fitness": -1.0 / (g + 1)})
    log.flush()
    again = TrialLog(store, exp, parent, "trial_a", "a", {"regime": "toy", "seed": 1}, {"seed": 1})
    assert again.run_id == log.run_id and again.logged == {0, 1, 2}
    for g in range(1, 4):  # a resumed worker replays generations 1..2 before reaching 3
        again.generation({"generation": g, "best_fitness": -1.0 / (g + 1)})
    again.finish()
    mc = again.client
    assert _gens(mc, log.run_id) == [0, 1, 2, 3]
    assert _gens(mc, log.run_id, "best_fitness") == [0, 1, 2, 3]
    run = mc.get_run(log.run_id)
    assert run.info.status == "FINISHED" and run.data.tags[PARENT_TAG] == parent
    assert run.data.tags["regime"] == "toy" and run.data.params == {"seed": "1", "arch.x": "[1, 2]"}
    other = TrialLog(store, exp, parent, "trial_b", "b", {}, {})
    assert other.run_id != log.run_id and other.logged == set()


def test_final_networks_population_and_failure_are_recorded(store, tmp_path):
    exp, parent = start_sweep(store, "unit2", {})
    plan = toy_plan({"seed": 2})
    state = plan.search.init(plan.key)
    state, _ = plan.search.step(state)
    log = TrialLog(store, exp, parent, "t", "t", {}, {})
    log.population(state, 10)
    scores = log.final(plan.search.result(state), toy_fer)
    log.fail(ValueError("bad thing"))
    mc = log.client
    files = {f.path for f in mc.list_artifacts(log.run_id, "nets/best")}
    assert files >= {"nets/best/net.npz", "nets/best/image.png", "nets/best/genome.json", "nets/best/fer"}
    fer = {f.path for f in mc.list_artifacts(log.run_id, "nets/best/fer")}
    assert fer == {"nets/best/fer/metrics.json", "nets/best/fer/feature_maps.png"}
    run = mc.get_run(log.run_id)
    assert run.data.metrics["fer.best.fer_score"] == pytest.approx(scores["fer.best.fer_score"])
    assert run.info.status == "FAILED" and "bad thing" in run.data.tags["ferlab.error"]
    local = mc.download_artifacts(log.run_id, "population/gen_000010.npz", str(tmp_path))
    pop = np.load(local)
    np.testing.assert_array_equal(pop["population"], np.asarray(state["population"]))
    metrics = json.loads(open(mc.download_artifacts(log.run_id, "nets/best/fer/metrics.json", str(tmp_path))).read())
    assert metrics["fer_score"] == pytest.approx(scores["fer.best.fer_score"])
    assert "ValueError: bad thing" in open(mc.download_artifacts(log.run_id, "error.txt", str(tmp_path))).read()
