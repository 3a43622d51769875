"""Novelty search over dense CPPN weights: NS, NS-ES and NSR-ES, driven by evosax.

The archive and the behaviour descriptors it scores live in
``ferlab.search.archive`` and ``ferlab.search.descriptors``, shared with every
regime that rewards novelty (NEAT too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import jax
import jax.numpy as jnp
from flax import struct

from ferlab import limits
from ferlab.config import ConfigError
from ferlab.cppn import init_net, init_nets
from ferlab.render import batch_rgb, render
from ferlab.search import ladder as ladders
from ferlab.search.api import Regime, Result, fused
from ferlab.search.archive import (
    ARCHIVE_PREFIX,
    Archive,
    NoveltyConfig,
    archive_add,
    archive_entries,
    archive_init,
    archive_name,
    archive_update,
    centred_ranks,
    novelty_scores,
    with_entries,
)
from ferlab.search.descriptors import DESCRIPTORS
from ferlab.search.es import ESConfig, algorithm_init, build_algorithm, centre, initial_evaluations
from ferlab.search.targets import image_losses, load_arch, load_target, mse


@dataclass(frozen=True)
class NoveltySearchConfig:
    """Novelty search over dense CPPN weights, driven by an evosax algorithm.

    ``mode: ns`` maximises novelty; ``mode: nsr`` (needs a target) a weighted
    mean of the centred ranks of novelty and of the objective (-MSE to the
    target): ``novelty_weight`` w * rank(novelty) + (1 - w) * rank(-MSE), w =
    1/2 by default (NSR-ES). w runs from pure target matching (0) to pure
    novelty with the target only watched (1): the axis between objective and
    open-ended search, as NSRA-ES moves along it (``studies/novelty_weight.yaml``).
    It weighs the population's fitness only: with M > 1 parents (below) the
    parent that samples is still drawn by novelty, so w = 0 is pure target
    matching with one parent alone.
    With ``meta_population`` M > 1 this is NS-ES / NSR-ES (Conti et al. 2018):
    M parents, each its own ES distribution; every generation one parent,
    drawn with probability proportional to its novelty, samples a population
    and takes an ES step. With M = 1 and a GA (``es.algorithm: SimpleGA``) it
    is plain novelty search over weights. Every sampled individual is a
    candidate for the archive.
    """

    mode: Literal["ns", "nsr"] = "ns"
    novelty_weight: float | None = None  # nsr only: the weight of novelty's rank (default 1/2)
    meta_population: int = 1
    es: ESConfig = field(default_factory=ESConfig)
    novelty: NoveltyConfig = field(default_factory=NoveltyConfig)

    def __post_init__(self):
        w = self.novelty_weight
        if w is not None and not (isinstance(w, int | float) and 0 <= w <= 1):  # NaN fails too
            raise ValueError(f"novelty_weight must be a number in [0, 1], got {w!r}")
        if w is not None and self.mode != "nsr":
            raise ValueError("novelty_weight weighs novelty against the target: it needs mode nsr")
        if self.meta_population < 1:
            raise ValueError(f"meta_population must be at least 1, got {self.meta_population}")
        limits.POPULATION.check(
            self.meta_population * self.es.population_size, "meta_population x es.population_size", ValueError
        )

    def check(self, run):
        if self.mode == "nsr" and run.target is None:
            raise ConfigError("novelty mode nsr needs a target (the objective); use mode ns without one")


def describe(nets, config: NoveltyConfig) -> jax.Array:
    """Behaviour descriptors ``(P, D)`` of a batch of nets (leading axis P)."""
    return DESCRIPTORS[config.descriptor](render(nets, config.descriptor_size).rgb)


@struct.dataclass
class NoveltyState:
    algos: Any  # evosax states of the meta-population (leading axis M)
    archive: Archive
    key: jax.Array
    ladder: ladders.Ladder  # nsr: the generation's lowest-MSE individual at each rung reached


class NoveltySearch:
    """Novelty search, NS-ES and NSR-ES (``api.Search``)."""

    def __init__(
        self, settings: NoveltySearchConfig, template, resolution: int, target=None, rungs=ladders.DEFAULT_RUNGS
    ):
        self.settings = settings
        self.rungs = tuple(rungs)
        self.config = settings.novelty
        self.template = template
        self.resolution = resolution
        self.target = None if target is None else jnp.asarray(target)
        self.algo, self.params = build_algorithm(settings.es, template.arch.n_weights)
        self.init = jax.jit(self._init)
        self.step = jax.jit(self._step)
        self.steps = fused(self._step)

    def descriptors(self, flat: jax.Array) -> jax.Array:
        return describe(self.template.with_flat(flat), self.config)

    def mse(self, flat: jax.Array) -> jax.Array:
        return mse(render(self.template.with_flat(flat), self.resolution).rgb, self.target)

    def fitness(self, flat: jax.Array, archive: Archive):
        """``(evosax fitness to minimise, novelty, descriptors, mse or None)`` of a population."""
        desc = self.descriptors(flat)
        novelty = novelty_scores(desc, archive, self.config.k, self.config.population_neighbours)
        if self.settings.mode == "nsr":
            error = self.mse(flat)
            w = 0.5 if self.settings.novelty_weight is None else float(self.settings.novelty_weight)
            return -(w * centred_ranks(novelty) + (1 - w) * centred_ranks(-error)), novelty, desc, error
        error = None if self.target is None else self.mse(flat)
        return -novelty, novelty, desc, error

    def _init(self, key):
        m = self.settings.meta_population
        k_nets, k_algos, k_run = jax.random.split(key, 3)
        means = init_nets(self.template.arch, jax.random.split(k_nets, m)).flat()
        dim = jax.eval_shape(self.descriptors, means).shape[-1]
        archive = archive_init(self.config.capacity, dim, means[0], self.config.threshold)
        archive = archive_add(archive, self.descriptors(means), means, jnp.ones(m, bool))

        def start(k, mean):
            return algorithm_init(
                self.algo, self.params, k, mean, self.settings.es.std, lambda pop: self.fitness(pop, archive)[0]
            )

        return NoveltyState(
            jax.vmap(start)(jax.random.split(k_algos, m), means), archive, k_run, ladders.init(self.rungs, means[0])
        )

    def _step(self, state: NoveltyState):
        key, k_pick, k_ask, k_tell = jax.random.split(state.key, 4)
        parent_novelty = novelty_scores(self.descriptors(centre(self.algo, state.algos)), state.archive, self.config.k)
        pick = jax.random.categorical(k_pick, jnp.log(parent_novelty + 1e-9))
        parent = jax.tree.map(lambda x: x[pick], state.algos)
        population, parent = self.algo.ask(k_ask, parent, self.params)
        fitness, novelty, desc, error = self.fitness(population, state.archive)
        parent, _ = self.algo.tell(k_tell, population, fitness, parent, self.params)
        algos = jax.tree.map(lambda a, x: a.at[pick].set(x), state.algos, parent)
        archive = archive_update(state.archive, desc, population, novelty, self.config)
        stats = {
            "novelty": jnp.max(novelty),
            "mean_novelty": jnp.mean(novelty),
            "archive_size": archive.size,
            "threshold": archive.threshold,
            "parent": pick,
            "evaluations": jnp.sum(algos.generation_counter) * self.settings.es.population_size
            + self.settings.meta_population * initial_evaluations(self.algo),
        }
        ladder = state.ladder
        if error is not None:
            stats |= {"best_fitness": -jnp.min(error), "mean_fitness": -jnp.mean(error), "loss": jnp.min(error)}
            if self.settings.mode == "nsr":
                closest = jnp.argmin(error)
                ladder = ladders.update(
                    ladder,
                    error[closest],
                    population[closest],
                    jnp.sum(algos.generation_counter) - 1,
                    stats["evaluations"],
                )
        return NoveltyState(algos, archive, key, ladder), stats

    def archive_entries(self, state: NoveltyState) -> dict[str, Any]:
        """The archive's descriptors and flat weights, for an island run's shared archive."""
        return archive_entries(state.archive)

    def with_archive(self, state: NoveltyState, entries: dict[str, Any]) -> NoveltyState:
        return state.replace(archive=with_entries(state.archive, entries))

    def result(self, state: NoveltyState):
        """``archive_NNN``: the archive's networks; ``parent_i``: the meta-population's centres;
        ``rung_<value>`` (nsr): the loss ladder's snapshots."""
        oldest_first = archive_entries(state.archive)["payload"]  # the ring's slots wrap once it is full
        flats = {archive_name(i): jnp.asarray(w) for i, w in enumerate(oldest_first)}
        centres = centre(self.algo, state.algos)
        flats |= {f"parent_{i}": centres[i] for i in range(centres.shape[0])}
        flats |= {name: ladders.snapshot(state.ladder, i) for name, i in ladders.reached(state.ladder)}
        names = list(flats)
        nets = self.template.with_flat(jnp.stack([flats[n] for n in names]))
        rgb = batch_rgb(nets, self.resolution)
        images = {n: rgb[i] for i, n in enumerate(names)}
        return Result(
            {n: self.template.with_flat(flats[n]) for n in names}, images, losses=image_losses(images, self.target)
        )

    def tables(self, state: NoveltyState) -> dict:
        """``ladder`` (nsr): the rungs (``ferlab.search.ladder.table``)."""
        return {"ladder": ladders.table(state.ladder)} if self.settings.mode == "nsr" else {}


def make_novelty(run_config, settings: NoveltySearchConfig) -> NoveltySearch:
    template = init_net(load_arch(run_config.arch), jax.random.PRNGKey(0))
    target = None if run_config.target is None else load_target(run_config.target, run_config.resolution)
    return NoveltySearch(settings, template, run_config.resolution, target, run_config.ladder)


REGIME = Regime(
    name="novelty",
    config=NoveltySearchConfig,
    make=make_novelty,
    population=("es", "population_size"),
    archive_prefix=ARCHIVE_PREFIX,
    shared_archive=lambda s: s.novelty.capacity,
    smallest={
        "resolution": 8,
        "arch": "2;sin:3,gaussian:3",
        "generations": 3,
        "checkpoint_every": 1,
        "settings": {
            "meta_population": 2,
            "es": {"population_size": 8},
            "novelty": {"capacity": 16, "k": 3, "descriptor_size": 4},
        },
    },
)
