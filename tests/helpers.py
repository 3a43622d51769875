"""Shared test helpers: the toy regime the Ray/MLflow tests drive (a random search over a tiny DenseNet),
and ``bench_module``, which loads a ``bench/`` script for its tests.

The toy stands in for ``ferlab.search`` regimes so that the scale-out tests
exercise the scale-out layer alone; ``toy_plan``/``toy_fer`` are the planner
and FER adapter that sweeps take as arguments. Ray workers cannot import the
tests folder, so this module registers itself to be pickled by value.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import ray.cloudpickle

from ferlab.cppn import Architecture, init_net, init_nets
from ferlab.files import write_png
from ferlab.genome import Genome, Link, Node
from ferlab.render import render
from ferlab.search.api import Result
from ferlab.workers.plan import RunPlan

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

BENCH = Path(__file__).resolve().parents[1] / "bench"


def bench_module(name: str):
    """``bench/<name>.py`` as the module ``name``, loaded once (its dataclasses look their module up in sys.modules)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


ARCH = Architecture.parse("2;sin:2,gaussian:2")
SIZE = 12


class ToySearch:
    """Random search around the best net; ``sleep``/``fail_at``/``pid_file`` script failures;
    ``offset`` shifts the reported best fitness (trials that clearly differ, for ASHA); with
    ``losses`` its Result carries the best net's own MSE to the target, as a reproducer's does."""

    def __init__(self, population=6, sleep=0.0, fail_at=-1, pid_file="", genome=True, offset=0.0, losses=False):
        self.population, self.sleep, self.fail_at = population, sleep, fail_at
        self.pid_file, self.genome, self.offset, self.losses = pid_file, genome, offset, losses
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
        if self.pid_file:  # replaced whole, so the killing thread never reads a half-written file
            part = Path(f"{self.pid_file}.{os.getpid()}.part")
            part.write_text(str(os.getpid()))
            os.replace(part, self.pid_file)
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
        losses = {"best": -float(state["fitness"])} if self.losses else {}
        return Result({"best": net}, {"best": np.asarray(render(net, SIZE).rgb)}, genomes, losses)


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
    outs = [Node(f"o{k}", "output", "identity", label) for k, label in enumerate(("hue", "saturation", "brightness"))]
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
    search = cls(
        population=data.get("population", 6),
        sleep=data.get("sleep", 0.0),
        fail_at=data.get("fail_at", 2),
        pid_file=data.get("pid_file", "") if regime == "toy" else "",
        offset=data.get("offset", 0.0),
    )
    return RunPlan(
        search,
        jax.random.PRNGKey(data.get("seed", 0)),
        data.get("generations", 4),
        data.get("checkpoint_every", 2),
        tags={"regime": regime, "target": data.get("target", "toy"), "seed": data.get("seed", 0)},
        params={k: v for k, v in data.items() if k != "pid_file"},
    )


def toy_fer(items) -> list[dict[str, float]]:
    """A stand-in FER suite: for each (net, genome, folder), writes metrics.json and a feature-map grid PNG."""
    return [_toy_fer_one(net, out_dir) for net, _, out_dir in items]


def toy_fer_with_detail(items) -> list[dict[str, float]]:
    """``toy_fer`` with each picture's ``image_detail`` (``ferlab.metrics.behaviour.detail``) beside it."""
    from ferlab.metrics import behaviour

    out = toy_fer(items)
    for (net, _, _), metrics in zip(items, out):
        metrics["image_detail"] = float(behaviour.detail(render(net, SIZE).rgb[None])[0])
    return out


def _toy_fer_one(net, out_dir: Path) -> dict[str, float]:
    image = np.asarray(render(net, SIZE).rgb)
    feats = np.asarray(render(net, SIZE, features=True).features)  # (L, W, S, S)
    grid = np.concatenate(list(np.concatenate(list(feats), axis=1)), axis=0)
    metrics = {"fer_score": float(np.std(feats)), "mean_brightness": float(np.mean(image))}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics))
    write_png(out_dir / "feature_maps.png", np.repeat(np.clip(grid, 0, 1)[..., None], 3, axis=-1))
    return metrics
