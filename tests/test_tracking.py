"""MLflow tracking on the embedded SQLite store: child runs, exactly-once generations, artifacts."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ferlab.tracking import (
    PARENT_TAG,
    Store,
    TrackingError,
    WORKER_TAG,
    TrialLog,
    check_store,
    client,
    close_children,
    default_store,
    driver_id,
    start_sweep,
)
from helpers import toy_fer, toy_plan


@pytest.fixture
def store(tmp_path):
    return default_store(tmp_path / "mlruns")


def _gens(mc, run_id, key="generation"):
    return sorted(int(m.step) for m in mc.get_metric_history(run_id, key))


def test_default_store_is_sqlite_under_an_absolute_folder(tmp_path):
    s = default_store(tmp_path / "m")
    assert s.uri == f"sqlite:///{tmp_path / 'm' / 'mlflow.db'}" and not s.is_server
    assert s.artifact_root.startswith("file://") and not (tmp_path / "m").exists()  # nothing until first use
    client(s)
    assert (tmp_path / "m" / "mlflow.db").is_file()


def test_unreachable_server_is_one_clear_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TrackingError, match=rf"tracking server http://127.0.0.1:{port} is not reachable"):
        check_store(Store(f"http://127.0.0.1:{port}"), timeout=2)


@pytest.mark.parametrize(
    "uri, says",
    [
        ("foo://bar", "is not a store MLflow keeps runs in"),
        ("{tmp}/plain", "is not a store MLflow keeps runs in"),  # MLflow 3 refuses a file store
        ("sqlite:///", "names no file"),
        ("sqlite:///{tmp}/afile/mlflow.db", "is a file, not a folder"),
        ("sqlite:///{tmp}/afile/sub/mlflow.db", "cannot be made: {tmp}/afile is a file"),
    ],
)
def test_a_store_that_cannot_keep_runs_is_refused_before_anything_is_written(tmp_path, uri, says):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(TrackingError, match=re.escape(says.format(tmp=tmp_path))):
        check_store(Store(uri.format(tmp=tmp_path)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
    check_store(Store(f"sqlite:///{tmp_path}/new/mlflow.db"))  # a folder still to be made is fine
    assert not (tmp_path / "new").exists()


def test_trial_log_resumes_its_run_and_logs_each_generation_once(store):
    exp, parent = start_sweep(store, "unit", {"sweep.base.generations": 4})
    log = TrialLog(store, exp, parent, "trial_a", "a", {"regime": "toy", "seed": 1}, {"seed": 1, "arch.x": [1, 2]})
    for g in range(3):
        log.generation({"generation": g, "best_fitness": -1.0 / (g + 1)})
    log.flush()
    log.client.set_tag(log.run_id, WORKER_TAG, "elsewhere:1")  # as if another process had started it
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
    assert run.data.tags[WORKER_TAG] == driver_id()  # the process that resumed it
    other = TrialLog(store, exp, parent, "trial_b", "b", {}, {})
    assert other.run_id != log.run_id and other.logged == set()
    assert close_children(store, exp, parent) == 1  # trial_b never finished (e.g. stopped by ASHA)
    assert mc.get_run(other.run_id).info.status == "KILLED" and mc.get_run(log.run_id).info.status == "FINISHED"


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
    local = mc.download_artifacts(log.run_id, "nets/best/fer/metrics.json", str(tmp_path))
    metrics = json.loads(Path(local).read_text())
    assert metrics["fer_score"] == pytest.approx(scores["fer.best.fer_score"])
    assert "ValueError: bad thing" in Path(mc.download_artifacts(log.run_id, "error.txt", str(tmp_path))).read_text()


# ------------------------------------------------------------------ consistency after a crash or a race
def test_two_processes_creating_a_fresh_store_at_once_both_succeed(tmp_path):
    """MLflow creates the SQLite tables on first use; two processes doing it at once raced in alembic
    ("No such index", "duplicate column") before the store was created under a file lock."""
    import subprocess
    import sys

    code = (
        "import sys; from ferlab.tracking import default_store, experiment; "
        "experiment(default_store(sys.argv[1]), sys.argv[2])"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / "m"), name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    outcomes = [(p.wait(120), p.stderr.read()) for p in procs]
    for rc, err in outcomes:
        assert rc == 0, err[-2000:]
    from mlflow import MlflowClient

    names = {e.name for e in MlflowClient(default_store(tmp_path / "m").uri).search_experiments()}
    assert {"a", "b"} <= names


def dead_driver() -> str:
    """The driver id of a process that has exited (as a SIGKILLed study's would be)."""
    import subprocess
    import sys

    code = "from ferlab.tracking import driver_id; print(driver_id())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_rerun_marks_runs_of_a_dead_driver_killed_and_leaves_no_key_with_two_live_runs(store, tmp_path):
    """A killed ``ferlab run --tracking-uri`` left its run RUNNING; running the same config again first
    marks it KILLED (a live driver's run, or one on another host, is left alone)."""
    from ferlab.search.runs import load_run_config
    from ferlab.tracking import DRIVER_TAG, STOPPED_TAG, client, driver_id, experiment
    from ferlab.workers.logged import run_logged

    from ferlab.files import write_png

    target = write_png(tmp_path / "skull.png", np.full((8, 8, 3), 0.5))
    config = load_run_config(
        {
            "regime": "es",
            "generations": 2,
            "resolution": 8,
            "arch": "1;sin:2",
            "target": str(target),
            "settings": {"population_size": 4},
        }
    )
    exp = experiment(store, "crash")
    mc = client(store)
    dead = dead_driver()
    planted = {
        who: mc.create_run(exp, run_name="es/skull/s0", tags={DRIVER_TAG: who, "regime": "es"}).info.run_id
        for who in (dead, driver_id(), "elsewhere:1:1")
    }
    _, _, run_id = run_logged(config, store, tmp_path / "out", "crash", fer=None, progress=False)
    status = {who: mc.get_run(rid).info.status for who, rid in planted.items()}
    assert status == {dead: "KILLED", driver_id(): "RUNNING", "elsewhere:1:1": "RUNNING"}
    assert "died" in mc.get_run(planted[dead]).data.tags[STOPPED_TAG]
    new = mc.get_run(run_id)
    assert new.info.status == "FINISHED" and new.info.run_name == "es/skull/s0"
    assert new.data.tags[DRIVER_TAG] == driver_id()


# ------------------------------------------------------------------ what a run logs
def test_run_params_hold_what_the_run_uses(picbreeder_dir):
    """One ``generations`` (the number run), no None values, no novelty settings on a NEAT run whose
    fitness is the target alone; the population size gives the evaluations per generation."""
    from ferlab.search.runs import load_run_config
    from ferlab.workers.plan import evaluations_per_generation, run_params

    neat = load_run_config(
        {
            "regime": "neat",
            "generations": 3,
            "resolution": 8,
            "target": "picbreeder:skull",
            "settings": {"fitness": "target", "population_size": 64},
        }
    )
    params = run_params(neat)
    assert params["generations"] == 3 and "settings.generations" not in params
    assert not [k for k in params if k.startswith("settings.novelty")]
    assert None not in params.values() and "islands" not in params
    assert evaluations_per_generation(neat.settings) == 64
    novel = load_run_config(
        {
            "regime": "neat",
            "generations": 3,
            "resolution": 8,
            "target": "picbreeder:skull",
            "settings": {"fitness": "novelty", "population_size": 64},
        }
    )
    assert any(k.startswith("settings.novelty.") for k in run_params(novel))
    assert "settings.novelty_weight" not in run_params(novel)
    sgd = load_run_config(
        {
            "regime": "sgd",
            "target": "picbreeder:skull",
            "settings": {"steps": 20, "steps_per_generation": 5, "seeds": 3},
        }
    )
    assert evaluations_per_generation(sgd.settings) == 15


def test_final_logs_run_level_fer_score_large_images_and_the_target(store, tmp_path):
    """Run-level ``fer_score`` is the median over the nets (with min and max); pictures at >= 128 px and
    the target beside each net; the ``evaluations`` fallback is generation x population."""
    from ferlab.search.api import Result

    exp, parent = start_sweep(store, "final", {})
    plan = toy_plan({"seed": 1})
    state = plan.search.init(plan.key)
    one = plan.search.result(state)
    nets = {f"n{i}": one.nets["best"] for i in range(3)}
    result = Result(nets, {k: one.images["best"] for k in nets})
    scores = iter([0.2, 0.9, 0.4])

    def fer(items):
        return [{"fer_score": next(scores)} for _ in items]

    log = TrialLog(store, exp, parent, "t", "t", {}, {}, evaluations_per_generation=6)
    log.generation({"generation": 0, "loss": 0.5})
    log.generation({"generation": 1, "loss": 0.4, "evaluations": 99})
    target = np.zeros((128, 128, 3))
    log.final(result, fer, target)
    log.finish()
    run = log.client.get_run(log.run_id)
    assert (
        run.data.metrics["fer_score"],
        run.data.metrics["fer_score_min"],
        run.data.metrics["fer_score_max"],
    ) == pytest.approx((0.4, 0.2, 0.9))
    assert [m.value for m in log.client.get_metric_history(log.run_id, "evaluations")] == [6, 99]
    from PIL import Image

    for name in nets:
        image = log.client.download_artifacts(log.run_id, f"nets/{name}/image.png", str(tmp_path))
        assert Image.open(image).size == (128, 128) and one.images["best"].shape[0] < 128
        assert f"nets/{name}/target.png" in {a.path for a in log.client.list_artifacts(log.run_id, f"nets/{name}")}


def test_a_sqlite_store_given_by_uri_keeps_its_artifacts_beside_its_file(tmp_path, monkeypatch):
    """``--tracking-uri sqlite:///<folder>/runs.db``: artifacts in ``<folder>/artifacts``, as the embedded
    store's; MLflow's own default put them in ./mlruns under the folder the command ran in."""
    from ferlab.tracking import client, experiment, resolve_store

    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    store = resolve_store(f"sqlite:///{tmp_path}/runs/runs.db")
    mc = client(store)
    run_id = mc.create_run(experiment(store, "a study")).info.run_id
    (tmp_path / "table.csv").write_text("x\n1\n")
    mc.log_artifact(run_id, str(tmp_path / "table.csv"))
    assert list(tmp_path.joinpath("cwd").iterdir()) == []
    assert [p.parent.parent.name for p in (tmp_path / "runs" / "artifacts").rglob("table.csv")] == [run_id]


def test_a_logged_run_has_progress_pictures_and_its_tables(store, tmp_path):
    """``ferlab run --tracking-uri``: the leading net's picture at checkpoints, as MLflow images stepped by
    generation (128 px), about ``PICTURES`` of them, the last at the final generation."""
    from PIL import Image

    from ferlab.files import write_png
    from ferlab.search.runs import load_run_config
    from ferlab.tracking import MIN_PICTURE, client, progress_pictures
    from ferlab.workers.logged import run_logged

    target = write_png(tmp_path / "disc.png", np.full((8, 8, 3), 0.5))
    config = load_run_config(
        {
            "regime": "es",
            "generations": 25,
            "checkpoint_every": 2,
            "resolution": 8,
            "arch": "1;sin:2",
            "target": str(target),
            "settings": {"population_size": 4},
        }
    )
    _, _, run_id = run_logged(config, store, tmp_path / "out", "pictures", fer=None, progress=False)
    pictures = progress_pictures(store, run_id)
    # a tenth of 25 rounds up to 3 generations; checkpoints every 2 cross a multiple of 3 at 4, 6, 10...
    assert sorted(pictures) == [4, 6, 10, 12, 16, 18, 22, 24, 25]
    picture = Image.open(client(store).download_artifacts(run_id, pictures[25], str(tmp_path)))
    assert picture.size == (MIN_PICTURE, MIN_PICTURE)
    for table in ("history.csv", "fit.csv", "ladder.csv"):  # the run's tables beside it, as written locally
        logged = client(store).download_artifacts(run_id, f"tables/{table}", str(tmp_path / "tables"))
        assert Path(logged).read_text() == (tmp_path / "out" / table).read_text()


def test_a_logged_run_resumed_past_its_last_flush_logs_every_generation_once_under_its_new_driver(store, tmp_path):
    """A logged run killed after its final checkpoint (its last generations not yet sent) and run
    again computes no generation: MLflow still gets every one, once, and the FER values once; the
    resumed run carries its new driver, so another process's ``reap`` leaves it alone."""
    from ferlab.files import write_png
    from ferlab.search.runs import load_run_config, run
    from ferlab.tracking import DRIVER_TAG, ERROR_TAG, STOPPED_TAG, TRIAL_TAG, client, driver_id, experiment, reap
    from ferlab.workers.logged import run_logged

    target = write_png(tmp_path / "t.png", np.full((8, 8, 3), 0.5))
    raw = {
        "regime": "es",
        "generations": 5,
        "checkpoint_every": 2,
        "resolution": 8,
        "arch": "1;sin:2",
        "target": str(target),
        "settings": {"population_size": 4},
    }
    config = load_run_config(raw)
    run(config, out_dir=tmp_path / "out", progress=False)  # every generation in the checkpoint, none in MLflow
    fer = lambda items: [{"fer_score": 0.25} for _ in items]
    _, history, run_id = run_logged(config, store, tmp_path / "out", "resumed", fer=fer, progress=False)
    mc = client(store)
    assert _gens(mc, run_id) == [0, 1, 2, 3, 4] == [h["generation"] for h in history]
    assert [m.step for m in mc.get_metric_history(run_id, "loss")] == [0, 1, 2, 3, 4]
    # the same run as a dead driver left it, then resumed: reopened under this process, logged once
    trial = mc.get_run(run_id).data.tags[TRIAL_TAG]
    mc.set_tag(run_id, DRIVER_TAG, dead_driver())
    mc.set_tag(run_id, ERROR_TAG, "RuntimeError: a failed try")
    mc.update_run(run_id, status="RUNNING")
    assert reap(store, experiment(store, "resumed")) == 1
    assert STOPPED_TAG in mc.get_run(run_id).data.tags
    _, _, again = run_logged(config, store, tmp_path / "out", "resumed", fer=fer, progress=False)
    back = mc.get_run(again)
    assert again == run_id and back.data.tags[TRIAL_TAG] == trial and back.info.status == "FINISHED"
    assert back.data.tags[DRIVER_TAG] == driver_id() and not {STOPPED_TAG, ERROR_TAG} & set(back.data.tags)
    assert _gens(mc, run_id) == [0, 1, 2, 3, 4]
    assert len(mc.get_metric_history(run_id, "fer_score")) == 1


def test_a_flush_never_splits_a_generation_across_batches(store, monkeypatch):
    """Batches are not atomic together: a kill between two must not leave a generation half logged."""
    import ferlab.tracking as tracking
    from ferlab.tracking import TrialLog, experiment

    monkeypatch.setattr(tracking, "_BATCH", 10)
    log = TrialLog(store, experiment(store, "batches"), None, "t", "t", {}, {})
    sent = []
    real = log.client.log_batch
    monkeypatch.setattr(log.client, "log_batch", lambda run_id, metrics: (sent.append(metrics), real(run_id, metrics)))
    for g in range(5):
        log.generation({"generation": g, **{f"k{i}": float(i) for i in range(6)}})  # 7 metrics a generation
    log.flush()
    steps = [sorted({m.step for m in batch}) for batch in sent]
    assert steps == [[0], [1], [2], [3], [4]] and all(len(batch) == 7 for batch in sent)
    assert _gens(log.client, log.run_id) == [0, 1, 2, 3, 4]


def test_a_net_that_fits_nothing_reads_back_as_an_infinite_loss_and_fails_the_gate(store):
    """A diverged net (NaN or infinite MSE) is logged as fitting nothing: read back, its loss is +inf,
    so a reproducer group whose every net diverged is still a reproducer and passes no fit gate
    (without a loss it would read as a discoverer, which passes as it is)."""
    from ferlab.report import ReportSpec
    from ferlab.report.fit import gate_counts
    from ferlab.search.api import Result
    from ferlab.tracking import KEY_TAG, STUDY_TAG, finished_runs

    exp, parent = start_sweep(store, "diverged", {})
    plan = toy_plan({"seed": 1})
    one = plan.search.result(plan.search.init(plan.key))
    nets = {"seed_0": one.nets["best"], "seed_1": one.nets["best"]}
    result = Result(nets, {k: one.images["best"] for k in nets}, losses={"seed_0": np.nan, "seed_1": np.inf})
    log = TrialLog(store, exp, parent, "t", "t", {STUDY_TAG: "s", KEY_TAG: "k"}, {})
    log.final(result, lambda items: [{"fer_score": 0.3} for _ in items])
    log.finish()
    run = finished_runs(store, exp, "s")["k"]
    assert {net: m["loss"] for net, m in run.nets.items()} == {"seed_0": np.inf, "seed_1": np.inf}
    rows = [{"run_id": run.run_id, "regime": "sgd", "image": "a", "net": n, **m} for n, m in run.nets.items()]
    counts = gate_counts(pd.DataFrame(rows), ReportSpec(metrics=("fer_score", "loss"))).set_index("regime")
    assert counts.loc["sgd"].tolist() == [2, 2, 0, 0]  # attempted, scored, passed, lost
