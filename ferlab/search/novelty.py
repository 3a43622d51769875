"""Novelty search: reward being different from what has been seen, not matching a target.

The generic part (used by every regime that searches for novelty, NEAT too):

- a behaviour descriptor per network: a function registered in ``DESCRIPTORS``
  mapping rendered images ``rgb (P, S, S, 3)`` to vectors ``(P, D)``; the
  default ``luminance`` is the image rendered small (16x16) in grey levels;
- ``novelty_scores``: the mean distance to the k nearest neighbours among the
  archive's valid entries and the rest of the population. Distances are root
  mean square differences per descriptor entry, so thresholds read in the
  descriptor's own units (grey levels in [0, 1] for ``luminance``);
- ``Archive``: a fixed-capacity store of descriptors and any payload pytree
  (flat weights, genomes...) with Lehman and Stanley's adaptive threshold:
  individuals more novel than the threshold are added; after ``patience``
  generations without additions the threshold is multiplied by
  ``threshold_down``, and when more than ``add_many`` exceed it in one
  generation by ``threshold_up``. At most ``max_add`` (the most novel) are
  added per generation (0: no limit), so that one generation's near-identical
  samples do not crowd the archive. When full, the oldest entries are replaced.

All of it is pure JAX over the population, jittable (``NoveltyConfig`` is
hashable and static).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ferlab.config import ConfigError
from ferlab.cppn import init_net, init_nets
from ferlab.render import render
from ferlab.search.api import Result
from ferlab.search.es import ESConfig, algorithm_init, build_algorithm, centre
from ferlab.search.targets import load_arch, load_target, mse

Descriptor = Callable[[jax.Array], jax.Array]
DESCRIPTORS: dict[str, Descriptor] = {}

_LUMA = jnp.array([0.299, 0.587, 0.114])


def register_descriptor(name: str):
    """Decorator: register ``fn(rgb (P, S, S, 3)) -> (P, D)`` under ``name``."""

    def register(fn: Descriptor) -> Descriptor:
        DESCRIPTORS[name] = fn
        return fn

    return register


@register_descriptor("luminance")
def luminance(rgb: jax.Array) -> jax.Array:
    """Grey level of every pixel (ITU-R 601 weights), flattened."""
    return (rgb @ _LUMA).reshape(rgb.shape[0], -1)


@register_descriptor("rgb")
def rgb_pixels(rgb: jax.Array) -> jax.Array:
    """Every pixel's colour, flattened."""
    return rgb.reshape(rgb.shape[0], -1)


@dataclass(frozen=True)
class NoveltyConfig:
    """Novelty measure and archive: k nearest neighbours, adaptive threshold, capacity.

    ``threshold`` is the starting threshold in descriptor units (RMS distance);
    ``patience`` generations without additions lower it by ``threshold_down``;
    more than ``add_many`` individuals above it in one generation raise it by
    ``threshold_up``; at most ``max_add`` of them (the most novel; 0: all) are
    added per generation. Descriptors are ``descriptor`` of the image rendered at
    ``descriptor_size`` x ``descriptor_size``.
    """

    k: int = 15
    threshold: float = 0.1
    threshold_down: float = 0.95
    threshold_up: float = 1.2
    patience: int = 5
    add_many: int = 4
    max_add: int = 0
    capacity: int = 500
    descriptor: str = "luminance"
    descriptor_size: int = 16
    population_neighbours: bool = True

    def __post_init__(self):
        if self.descriptor not in DESCRIPTORS:
            raise ValueError(f"unknown descriptor {self.descriptor!r} (known: {', '.join(DESCRIPTORS)})")
        for name in ("k", "patience", "capacity", "descriptor_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("add_many", "max_add"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be at least 0, got {getattr(self, name)}")
        if not self.threshold > 0:
            raise ValueError(f"threshold must be positive, got {self.threshold}")
        if not 0 < self.threshold_down <= 1:
            raise ValueError(f"threshold_down must be in (0, 1], got {self.threshold_down}")
        if not self.threshold_up >= 1:
            raise ValueError(f"threshold_up must be at least 1, got {self.threshold_up}")


@struct.dataclass
class Archive:
    """``descriptors (capacity, D)``, ``payload`` (pytree, leading capacity axis);
    the first ``size`` entries are valid; ``added`` counts all additions ever
    (the next write goes to ``added % capacity``); ``stale`` counts generations
    since the last addition."""

    descriptors: jax.Array
    payload: Any
    size: jax.Array
    added: jax.Array
    threshold: jax.Array
    stale: jax.Array

    @property
    def capacity(self) -> int:
        return self.descriptors.shape[0]


def archive_init(capacity: int, descriptor_dim: int, payload_example: Any, threshold: float) -> Archive:
    """An empty archive; ``payload_example`` is one entry's pytree (no capacity axis)."""
    payload = jax.tree.map(lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.result_type(x)), payload_example)
    return Archive(descriptors=jnp.zeros((capacity, descriptor_dim), jnp.float32), payload=payload,
                   size=jnp.zeros((), jnp.int32), added=jnp.zeros((), jnp.int32),
                   threshold=jnp.asarray(threshold, jnp.float32), stale=jnp.zeros((), jnp.int32))


def distances(a: jax.Array, b: jax.Array) -> jax.Array:
    """RMS distance between every row of ``a (P, D)`` and of ``b (Q, D)``: ``(P, Q)``."""
    sq = jnp.sum(a * a, -1)[:, None] + jnp.sum(b * b, -1)[None, :] - 2.0 * a @ b.T
    return jnp.sqrt(jnp.maximum(sq, 0.0) / a.shape[-1])


def novelty_scores(descriptors: jax.Array, archive: Archive, k: int, population: bool = True) -> jax.Array:
    """Mean distance of each of ``descriptors (P, D)`` to its ``k`` nearest neighbours
    among the archive's valid entries and (with ``population``) the other members
    of the population. With no neighbour at all the score is 0."""
    p, c = descriptors.shape[0], archive.capacity
    d = jnp.where(jnp.arange(c) < archive.size, distances(descriptors, archive.descriptors), jnp.inf)
    if population:
        d = jnp.concatenate([d, jnp.where(jnp.eye(p, dtype=bool), jnp.inf, distances(descriptors, descriptors))], 1)
    nearest = -jax.lax.top_k(-d, min(k, d.shape[1]))[0]
    found = jnp.isfinite(nearest)
    return jnp.sum(jnp.where(found, nearest, 0.0), axis=1) / jnp.maximum(jnp.sum(found, axis=1), 1)


def archive_add(archive: Archive, descriptors: jax.Array, payload: Any, add: jax.Array) -> Archive:
    """Write the rows flagged by ``add`` into the archive (oldest entries replaced when full)."""
    c = archive.capacity
    order = jnp.cumsum(add) - 1
    add = add & (order < c)
    n_add = jnp.sum(add).astype(jnp.int32)
    slot = jnp.where(add, (archive.added + order) % c, c)  # c: out of range, dropped
    return archive.replace(
        descriptors=archive.descriptors.at[slot].set(descriptors, mode="drop"),
        payload=jax.tree.map(lambda a, x: a.at[slot].set(x, mode="drop"), archive.payload, payload),
        size=jnp.minimum(archive.size + n_add, c),
        added=archive.added + n_add,
    )


def archive_update(archive: Archive, descriptors: jax.Array, payload: Any, scores: jax.Array,
                   config: NoveltyConfig) -> Archive:
    """Add the individuals whose novelty ``scores`` exceed the threshold (the
    ``max_add`` most novel of them), then adapt it.

    ``payload`` has a leading population axis matching ``descriptors``.
    """
    above = scores > archive.threshold
    add = above
    if config.max_add:
        rank = jnp.argsort(jnp.argsort(-scores))
        add = above & (rank < config.max_add)
    archive = archive_add(archive, descriptors, payload, add)
    stale = jnp.where(jnp.any(add), 0, archive.stale + 1)
    lower = stale >= config.patience
    threshold = archive.threshold * jnp.where(lower, config.threshold_down, 1.0)
    threshold = threshold * jnp.where(jnp.sum(above) > config.add_many, config.threshold_up, 1.0)
    return archive.replace(threshold=threshold, stale=jnp.where(lower, 0, stale))


def archive_entries(archive: Archive) -> dict[str, Any]:
    """The valid entries, oldest first: ``{"descriptors": (n, D), "payload": pytree (n, ...)}``
    as numpy arrays (what islands publish to their shared archive)."""
    n, c = int(archive.size), archive.capacity
    order = (int(archive.added) - n + np.arange(n)) % c
    return {"descriptors": np.asarray(archive.descriptors)[order],
            "payload": jax.tree.map(lambda a: np.asarray(a)[order], archive.payload)}


def with_entries(archive: Archive, entries: dict[str, Any]) -> Archive:
    """``archive`` holding exactly ``entries`` (oldest first; the newest ``capacity`` kept),
    with its threshold and staleness unchanged: novelty is then scored against them."""
    c = archive.capacity
    desc = np.asarray(entries["descriptors"])[-c:]
    n = desc.shape[0]

    def fill(a, x):
        return jnp.asarray(a).at[:n].set(jnp.asarray(np.asarray(x)[-c:], a.dtype))

    return archive.replace(descriptors=fill(archive.descriptors, desc),
                           payload=jax.tree.map(fill, archive.payload, entries["payload"]),
                           size=jnp.asarray(n, jnp.int32), added=jnp.asarray(n, jnp.int32))


def mean_pairwise_distance(descriptors: jax.Array, valid: jax.Array | None = None) -> jax.Array:
    """Mean distance over distinct pairs of (the ``valid`` rows of) ``descriptors``: diversity."""
    n = descriptors.shape[0]
    valid = jnp.ones(n, bool) if valid is None else valid
    pair = valid[:, None] & valid[None, :] & ~jnp.eye(n, dtype=bool)
    return jnp.sum(jnp.where(pair, distances(descriptors, descriptors), 0.0)) / jnp.maximum(jnp.sum(pair), 1)


def mean_nearest_distance(descriptors: jax.Array) -> jax.Array:
    """Mean distance of each row of ``descriptors`` to its nearest other row: sparseness,
    what novelty rewards locally (an archive that covers the space evenly scores high)."""
    n = descriptors.shape[0]
    d = jnp.where(jnp.eye(n, dtype=bool), jnp.inf, distances(descriptors, descriptors))
    return jnp.mean(jnp.min(d, axis=1))


# ------------------------------------------------------------ the novelty regime
@dataclass(frozen=True)
class NoveltySearchConfig:
    """Novelty search over dense CPPN weights, driven by an evosax algorithm.

    ``mode: ns`` maximises novelty; ``mode: nsr`` (needs a target) the average
    of the centred ranks of novelty and of the objective (-MSE to the target).
    With ``meta_population`` M > 1 this is NS-ES / NSR-ES (Conti et al. 2018):
    M parents, each its own ES distribution; every generation one parent,
    drawn with probability proportional to its novelty, samples a population
    and takes an ES step. With M = 1 and a GA (``es.algorithm: SimpleGA``) it
    is plain novelty search over weights. Every sampled individual is a
    candidate for the archive.
    """

    mode: Literal["ns", "nsr"] = "ns"
    meta_population: int = 1
    es: ESConfig = field(default_factory=ESConfig)
    novelty: NoveltyConfig = field(default_factory=NoveltyConfig)

    def __post_init__(self):
        if self.meta_population < 1:
            raise ValueError(f"meta_population must be at least 1, got {self.meta_population}")

    def check(self, run):
        if self.mode == "nsr" and run.target is None:
            raise ConfigError("novelty mode nsr needs a target (the objective); use mode ns without one")


def describe(nets, config: NoveltyConfig) -> jax.Array:
    """Behaviour descriptors ``(P, D)`` of a batch of nets (leading axis P)."""
    return DESCRIPTORS[config.descriptor](render(nets, config.descriptor_size).rgb)


def centred_ranks(x: jax.Array) -> jax.Array:
    """Ranks of ``x`` scaled to [-0.5, 0.5] (highest value highest rank)."""
    ranks = jnp.argsort(jnp.argsort(x))
    return ranks / jnp.maximum(x.shape[0] - 1, 1) - 0.5


@struct.dataclass
class NoveltyState:
    algos: Any  # evosax states of the meta-population (leading axis M)
    archive: Archive
    key: jax.Array


class NoveltySearch:
    """Novelty search, NS-ES and NSR-ES (``api.Search``)."""

    def __init__(self, settings: NoveltySearchConfig, template, resolution: int, target=None):
        self.settings = settings
        self.config = settings.novelty
        self.template = template
        self.resolution = resolution
        self.target = None if target is None else jnp.asarray(target)
        self.algo, self.params = build_algorithm(settings.es, template.arch.n_weights)
        self.init = jax.jit(self._init)
        self.step = jax.jit(self._step)

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
            return -(centred_ranks(novelty) + centred_ranks(-error)) / 2, novelty, desc, error
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
            return algorithm_init(self.algo, self.params, k, mean, self.settings.es.std,
                                  lambda pop: self.fitness(pop, archive)[0])

        return NoveltyState(jax.vmap(start)(jax.random.split(k_algos, m), means), archive, k_run)

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
        stats = {"novelty": jnp.max(novelty), "mean_novelty": jnp.mean(novelty),
                 "archive_size": archive.size, "threshold": archive.threshold, "parent": pick}
        if error is not None:
            stats |= {"best_fitness": jnp.min(error), "mean_fitness": jnp.mean(error), "loss": jnp.min(error)}
        return NoveltyState(algos, archive, key), stats

    def archive_entries(self, state: NoveltyState) -> dict[str, Any]:
        """The archive's descriptors and flat weights, for an island run's shared archive."""
        return archive_entries(state.archive)

    def with_archive(self, state: NoveltyState, entries: dict[str, Any]) -> NoveltyState:
        return state.replace(archive=with_entries(state.archive, entries))

    def result(self, state: NoveltyState):
        """``archive_NNN``: the archive's networks; ``parent_i``: the meta-population's centres."""
        size = int(state.archive.size)
        flats = {f"archive_{i:03d}": state.archive.payload[i] for i in range(size)}
        centres = centre(self.algo, state.algos)
        flats |= {f"parent_{i}": centres[i] for i in range(centres.shape[0])}
        names = list(flats)
        nets = self.template.with_flat(jnp.stack([flats[n] for n in names]))
        images = np.asarray(render(nets, self.resolution).rgb)
        return Result({n: self.template.with_flat(flats[n]) for n in names},
                      {n: images[i] for i, n in enumerate(names)})


def make_novelty(run_config, settings: NoveltySearchConfig) -> NoveltySearch:
    template = init_net(load_arch(run_config.arch), jax.random.PRNGKey(0))
    target = None if run_config.target is None else load_target(run_config.target, run_config.resolution)
    return NoveltySearch(settings, template, run_config.resolution, target)
