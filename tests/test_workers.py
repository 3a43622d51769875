"""RunWorker: slices, checkpoints, resumes; actor options (the toy regime lives in ``helpers``)."""

from __future__ import annotations


import numpy as np
import pytest

from ferlab.workers.run import RunWorker, actor_options
from helpers import toy_plan


# -------------------------------------------------------------------- tests
def test_worker_resumes_from_checkpoint_like_an_uninterrupted_run(tmp_path):
    plan = toy_plan({"generations": 5, "seed": 3})
    whole = RunWorker(plan, tmp_path / "a.ckpt")
    stats = whole.advance(5)
    assert [s["generation"] for s in stats] == [0, 1, 2, 3, 4] and whole.done

    first = RunWorker(plan, tmp_path / "b.ckpt")
    assert [s["generation"] for s in first.advance(first.next_slice(2))] == [0, 1]
    again = RunWorker(toy_plan({"generations": 5, "seed": 3}), tmp_path / "b.ckpt")
    assert again.generation == 2
    rest = again.advance(again.next_slice(2)) + again.advance(again.next_slice(2))
    assert [s["generation"] for s in rest] == [2, 3, 4] and again.done
    np.testing.assert_array_equal(np.asarray(again.state["best"]), np.asarray(whole.state["best"]))
    assert rest[-1]["best_fitness"] == stats[-1]["best_fitness"]


def test_next_slice_stops_at_every_boundary():
    worker = RunWorker(toy_plan({"generations": 7}), "/nonexistent/x.ckpt")
    assert worker.next_slice(3, 2) == 2
    worker.generation = 5
    assert worker.next_slice(3, 4) == 1
    assert worker.next_slice(0) == 2


def test_shared_gpu_turns_jax_preallocation_off():
    assert "runtime_env" not in actor_options(1, 0)
    assert "runtime_env" not in actor_options(1, 1)
    opts = actor_options(2, 0.25)
    assert opts["num_gpus"] == 0.25 and opts["num_cpus"] == 2
    assert opts["runtime_env"]["env_vars"]["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"


def test_worker_on_a_real_regime_matches_run_search(picbreeder_dir, tmp_path):
    """A worker stepping ES in uneven slices ends where ``run_search`` does in one go."""
    from ferlab.search.api import run_search
    from ferlab.search.registry import regime
    from ferlab.workers.plan import plan_run

    data = {"regime": "es", **regime("es").smallest, "generations": 5}
    plan = plan_run(data)
    worker = RunWorker(plan, tmp_path / "es.ckpt")
    stats = worker.advance(2)
    worker = RunWorker(plan_run(data), tmp_path / "es.ckpt")  # a new worker, as after a lost actor
    stats += worker.advance(worker.next_slice(2)) + worker.advance(5)
    whole = run_search(plan.search, plan.key, 5)
    assert [s["generation"] for s in stats] == [0, 1, 2, 3, 4] and worker.done
    assert [s["loss"] for s in stats] == [s["loss"] for s in whole.history]
    expected = plan.search.result(whole.state).nets["best"].flat()
    np.testing.assert_array_equal(worker.result().nets["best"].flat(), expected)


def test_a_failing_step_keeps_the_last_checkpoint(tmp_path):
    """A search that raises mid-slice leaves the checkpoint of the last finished slice, and a new
    worker resumes from there rather than from the start."""
    checkpoint = tmp_path / "f.ckpt"
    worker = RunWorker(toy_plan({"regime": "toy_fail", "fail_at": 3, "generations": 6}), checkpoint)
    assert [s["generation"] for s in worker.advance(2)] == [0, 1]
    with pytest.raises(RuntimeError, match="on purpose"):
        worker.advance(2)
    again = RunWorker(toy_plan({"generations": 6}), checkpoint)
    assert again.generation == 2
    assert [s["generation"] for s in again.advance(4)] == [2, 3, 4, 5] and again.done


def test_sweep_points_cross_variants_with_the_grid_and_validate_early(tmp_path):
    import yaml

    from ferlab.config import ConfigError
    from ferlab.workers.sweep import grid_points, load_sweep, point_config

    spec = {
        "name": "v",
        "base": {"resolution": 12, "target": "t.png", "settings": {"population_size": 4}},
        "variants": [{"regime": "es", "settings": {"std": 0.1}}, {"regime": "sgd", "settings": None}],
        "grid": {"seed": [0, 1]},
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match=r"s.yaml: grid point .*target"):
        load_sweep(path)  # t.png does not exist: refused before any Ray or MLflow work
    from ferlab.config import from_dict
    from ferlab.workers.sweep import SweepSpec

    points = grid_points(from_dict(SweepSpec, spec))
    assert len(points) == 4 and [p["seed"] for p in points] == [0, 1, 0, 1]
    es = point_config(spec["base"], points[1])
    assert es["seed"] == 1 and es["settings"] == {"population_size": 4, "std": 0.1} and es["regime"] == "es"
    assert point_config(spec["base"], {"settings.lr": 2})["settings"] == {"population_size": 4, "lr": 2}
    with pytest.raises(ConfigError, match="asha needs a metric"):
        from_dict(SweepSpec, {**spec, "asha": {"grace_period": 2}})
