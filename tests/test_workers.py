"""RunWorker and the toy regime the Ray/MLflow tests drive (a random search over a tiny DenseNet).

The toy stands in for ``ferlab.search.runs`` regimes so that these tests
exercise the scale-out layer alone; ``toy_plan``/``toy_fer`` are the planner
and FER adapter that sweeps take as arguments.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ferlab.cppn import Architecture, init_net, init_nets
from ferlab.files import write_png
from ferlab.genome import Genome, Link, Node
from ferlab.render import render
from ferlab.search.api import Result
from ferlab.workers.plan import RunPlan
from ferlab.workers.run import RunWorker, actor_options

ARCH = Architecture.parse("2;sin:2,gaussian:2")
SIZE = 12


class ToySearch:
    """Random search around the best net; ``sleep``/``fail_at``/``pid_file`` script failures;
    ``offset`` shifts the reported best fitness (trials that clearly differ, for ASHA)."""

    def __init__(self, population=6, sleep=0.0, fail_at=-1, pid_file="", genome=True, offset=0.0):
        self.population, self.sleep, self.fail_at = population, sleep, fail_at
        self.pid_file, self.genome, self.offset = pid_file, genome, offset
        self.template = init_net(ARCH, jax.random.PRNGKey(123))
        self.target = render(self.template, SIZE).rgb

    def init(self, key):
        flat = init_net(ARCH, key).flat()
        pop = init_nets(ARCH, jax.random.split(key, self.population)).flat()
        return {"key": key, "best": flat, "fitness": self._fitness(flat[None])[0], "population": pop}

    def _fitness(self, flats):
        imgs = render(self.template.with_flat(flats), SIZE).rgb
        return -jnp.mean((imgs - self.target) ** 2, axis=(1, 2, 3))

    def step(self, state):
        if self.pid_file:
            Path(self.pid_file).write_text(str(os.getpid()))
        if self.sleep:
            time.sleep(self.sleep)
        key, sub = jax.random.split(state["key"])
        pop = state["best"] + 0.3 * jax.random.normal(sub, (self.population, state["best"].shape[0]))
        fit = self._fitness(pop)
        i = jnp.argmax(fit)
        best = jnp.where(fit[i] > state["fitness"], pop[i], state["best"])
        new = {"key": key, "best": best, "fitness": jnp.maximum(fit[i], state["fitness"]), "population": pop}
        return new, {"best_fitness": new["fitness"] + self.offset, "mean_fitness": fit.mean()}

    def result(self, state):
        net = self.template.with_flat(state["best"])
        genomes = {"best": toy_genome(net)} if self.genome else {}
        return Result({"best": net}, {"best": np.asarray(render(net, SIZE).rgb)}, genomes)


class FailingSearch(ToySearch):
    """Raises on its ``fail_at``-th step."""

    def step(self, state):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls > self.fail_at:
            raise RuntimeError("toy regime blew up on purpose")
        return super().step(state)


def toy_genome(net) -> Genome:
    """A direct input->output genome weighted by the net's first weights (stands in for a NEAT champion)."""
    ins = [Node(f"i{k}", "input", "identity", label) for k, label in enumerate(("x", "y", "d", "bias"))]
    outs = [Node(f"o{k}", "output", "identity", label)
            for k, label in enumerate(("hue", "saturation", "brightness"))]
    w = np.asarray(net.flat()).ravel()
    links = [Link(n, a.id, b.id, float(w[n])) for n, (a, b) in enumerate((a, b) for a in ins for b in outs)]
    return Genome.build(ins + outs, links, "toy")


def toy_plan(data: dict) -> RunPlan:
    """Planner for sweeps over the toy regimes ``toy`` and ``toy_fail``."""
    regime = data.get("regime", "toy")
    if regime not in ("toy", "toy_fail"):
        from ferlab.config import ConfigError

        raise ConfigError(f"regime: unknown toy regime {regime!r}")
    cls = FailingSearch if regime == "toy_fail" else ToySearch
    search = cls(population=data.get("population", 6), sleep=data.get("sleep", 0.0),
                 fail_at=data.get("fail_at", 2), pid_file=data.get("pid_file", "") if regime == "toy" else "",
                 offset=data.get("offset", 0.0))
    return RunPlan(search, jax.random.PRNGKey(data.get("seed", 0)), data.get("generations", 4),
                   data.get("checkpoint_every", 2),
                   tags={"regime": regime, "target": data.get("target", "toy"), "seed": data.get("seed", 0)},
                   params={k: v for k, v in data.items() if k != "pid_file"})


def toy_fer(net, genome, out_dir: Path) -> dict[str, float]:
    """A stand-in FER suite: writes metrics.json and a feature-map grid PNG."""
    image = np.asarray(render(net, SIZE).rgb)
    feats = np.asarray(render(net, SIZE, features=True).features)  # (L, S, S, W)
    grid = np.concatenate(list(np.concatenate(list(feats.transpose(0, 3, 1, 2)), axis=1)), axis=0)
    metrics = {"fer_score": float(np.std(feats)), "mean_brightness": float(np.mean(image))}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics))
    write_png(out_dir / "feature_maps.png", np.repeat(np.clip(grid, 0, 1)[..., None], 3, axis=-1))
    return metrics


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
    np.testing.assert_array_equal(worker.result().nets["best"].flat(), plan.search.result(whole.state).nets["best"].flat())


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

    spec = {"name": "v", "base": {"resolution": 12, "target": "t.png", "settings": {"population_size": 4}},
            "variants": [{"regime": "es", "settings": {"std": 0.1}}, {"regime": "sgd", "settings": None}],
            "grid": {"seed": [0, 1]}}
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
