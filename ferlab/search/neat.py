"""NEAT in JAX: a whole population of CPPN genomes evolving as tensors.

One generation (``NEAT.step``, jitted) paints every genome on the pixel grid
(``neat_genome.paint``), scores it (negative MSE to the target, novelty against
the shared archive of ``ferlab.search.novelty``, or a weighted mix), speciates
by compatibility distance with a threshold that moves towards the target
number of species, shares fitness within species, drops stagnant species,
allocates offspring and breeds them by crossover (aligned by innovation
number) and mutation (``neat_variation``). Genomes start minimal, Picbreeder's
way: every input linked to every output.

``make_neat(run_config, settings)`` is the regime factory ``ferlab run`` calls;
``result`` gives the champion (and, for novelty, the archive) as genome,
layerized dense net and image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ferlab.config import ConfigError
from ferlab.layerize import layerize
from ferlab.search.api import Result, fused_loop
from ferlab.search.neat_genome import N_INPUTS, Genomes, minimal, output_labels, paint, select, take, to_genome
from ferlab.search.neat_variation import crossover, distance_matrix, mutate, sorted_genes
from ferlab.search.novelty import (DESCRIPTORS, Archive, NoveltyConfig, archive_entries, archive_init,
                                   archive_update, novelty_scores, with_entries)
from ferlab.search.targets import mse as image_mse


@dataclass(frozen=True)
class NEATConfig:
    """NEAT settings (``settings:`` of a ``regime: neat`` run). Defaults follow
    NEAT (Stanley and Miikkulainen 2002) and neat-python, except gentler
    weight and activation mutation and fewer new links, which matched the skull
    better in ``bench/neat.py``. Weight mutation is the gentlest change: each
    weight of an offspring moves with probability 0.1 by N(0, 0.1) (neat-python:
    0.8 and 0.5). On the skull at 32x32 (population 150, 200 generations, 6
    seeds) that made the best MSE fall in every 20-generation window, where 0.8
    and 0.2 left 2 to 3 flat windows per run from generation 120 on, and lowered
    the median best MSE of seeds 0-2 from 0.070 to 0.065.

    Population and capacity: ``population_size`` genomes of at most
    ``max_nodes`` nodes (4 inputs and the outputs included) and ``max_links``
    links; structural mutations that do not fit are skipped. ``outputs``:
    ``hsv`` (hue, saturation, brightness) or ``ink`` (one grey level).

    Fitness (``fitness``): ``target`` = -MSE to the run's target image;
    ``novelty`` = novelty score against the archive (``novelty`` settings);
    ``mix`` = (1 - novelty_weight) * (-MSE) + novelty_weight * novelty.

    Mutation, per offspring: each link's weight is perturbed by
    N(0, weight_perturb_power) with probability ``weight_perturb_rate``, else
    replaced by N(0, weight_init_std) with ``weight_replace_rate``, then
    clipped to +-weight_max; one random link flips enabled with
    ``toggle_link_rate``; each hidden or output node gets a random activation
    with ``activation_mutate_rate``; add-node (split a random enabled link)
    with ``add_node_rate``; add-link (a new pair that makes no cycle) with
    ``add_link_rate``. ``crossover_rate``: share of non-elite offspring made by
    crossover of two parents (the others are mutated clones).

    Speciation: distance = compat_excess E/N + compat_disjoint D/N +
    compat_weight W (``neat_variation.distance``); a genome joins the nearest
    species whose representative is within the threshold, else founds one
    (at most ``max_species``). The threshold starts at ``threshold_init`` and
    moves by ``threshold_step`` each generation towards ``target_species``
    species (never below ``threshold_min``).

    Selection: fitness is normalised to [0, 1] over the population and shared
    explicitly (divided by species size); a species gets offspring in
    proportion to its summed shared fitness, at least ``min_species_size``. A
    species that has not improved its best fitness for ``stagnation``
    generations gets none, except the ``species_elitism`` best species. The
    ``elitism`` best genomes of each species are copied unchanged; parents are
    drawn from the best ``survival_threshold`` share of a species.
    """

    population_size: int = 150
    generations: int = 200
    max_nodes: int = 32
    max_links: int = 96
    outputs: Literal["hsv", "ink"] = "hsv"
    fitness: Literal["target", "novelty", "mix"] = "target"
    novelty_weight: float = 0.5
    novelty: NoveltyConfig = field(default_factory=NoveltyConfig)
    weight_init_std: float = 1.0
    weight_perturb_rate: float = 0.1
    weight_perturb_power: float = 0.1
    weight_replace_rate: float = 0.02
    weight_max: float = 8.0
    toggle_link_rate: float = 0.02
    activation_mutate_rate: float = 0.02
    add_node_rate: float = 0.2
    add_link_rate: float = 0.3
    crossover_rate: float = 0.75
    compat_excess: float = 1.0
    compat_disjoint: float = 1.0
    compat_weight: float = 0.5
    target_species: int = 10
    max_species: int = 32
    threshold_init: float = 1.0
    threshold_step: float = 0.05
    threshold_min: float = 0.1
    stagnation: int = 15
    species_elitism: int = 2
    elitism: int = 2
    survival_threshold: float = 0.2
    min_species_size: int = 2
    archive_export: int = 50

    def __post_init__(self):
        positive = ("population_size", "generations", "max_nodes", "max_links", "target_species",
                    "max_species", "stagnation", "min_species_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        rates = ("novelty_weight", "weight_perturb_rate", "weight_replace_rate", "toggle_link_rate",
                 "activation_mutate_rate", "add_node_rate", "add_link_rate", "crossover_rate")
        for name in rates:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.survival_threshold <= 1.0:
            raise ValueError(f"survival_threshold must be in (0, 1], got {self.survival_threshold}")
        if self.weight_perturb_rate + self.weight_replace_rate > 1.0:
            raise ValueError("weight_perturb_rate + weight_replace_rate must be at most 1")
        if self.target_species > self.max_species:
            raise ValueError(f"target_species ({self.target_species}) exceeds max_species ({self.max_species})")
        if self.min_species_size * self.max_species > self.population_size:
            raise ValueError(f"min_species_size x max_species ({self.min_species_size * self.max_species}) "
                             f"exceeds population_size ({self.population_size})")
        n_out = len(output_labels(self.ink))
        if self.max_nodes < N_INPUTS + n_out or self.max_links < N_INPUTS * n_out:
            raise ValueError(f"max_nodes must be at least {N_INPUTS + n_out} "
                             f"and max_links at least {N_INPUTS * n_out}")
        for name in ("species_elitism", "elitism", "archive_export"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be at least 0, got {getattr(self, name)}")

    @property
    def ink(self) -> bool:
        return self.outputs == "ink"

    @property
    def needs_target(self) -> bool:
        return self.fitness != "novelty"

    def check(self, run) -> None:
        """Cross-check against the run config: target and mix fitness need a target."""
        if self.needs_target and run.target is None:
            raise ConfigError(f"settings.fitness: {self.fitness!r} needs a target "
                              "(set target:, or use fitness: novelty)")


@struct.dataclass
class Species:
    """Species slots: representative genome, alive flag, best fitness so far and
    the generation it last improved."""

    rep: Genomes
    active: jax.Array
    best: jax.Array
    improved: jax.Array


@struct.dataclass
class NEATState:
    key: jax.Array
    generation: jax.Array
    pop: Genomes
    next_node: jax.Array
    next_innov: jax.Array
    species: Species
    threshold: jax.Array
    champion: Genomes
    champion_fitness: jax.Array
    archive: Archive


def _set(tree, index, value):
    return jax.tree.map(lambda a, v: a.at[index].set(v), tree, value)


def speciate(pop: Genomes, species: Species, threshold, cfg: NEATConfig):
    """``(species index per genome (P,), Species with founders added, founded (S,))``.

    A genome joins the nearest live species within ``threshold``; the first
    unassigned genome founds a species in a free slot and takes every
    unassigned genome within ``threshold`` of it, until all are placed or the
    slots run out (the rest join their nearest species).
    """
    dist = partial(distance_matrix, c1=cfg.compat_excess, c2=cfg.compat_disjoint, c3=cfg.compat_weight)
    genes = jax.vmap(sorted_genes)(pop)
    to_reps = lambda reps: dist(genes, jax.vmap(sorted_genes)(reps))  # noqa: E731
    d = jnp.where(species.active[None], to_reps(species.rep), jnp.inf)
    member = jnp.where(jnp.min(d, 1) < threshold, jnp.argmin(d, 1), -1)
    active = species.active & jnp.zeros_like(species.active).at[member].max(member >= 0, mode="drop")
    founded = jnp.zeros_like(active)

    def more(carry):
        member, active, _, _ = carry
        return jnp.any(member < 0) & jnp.any(~active)

    def found(carry):
        member, active, founded, reps = carry
        i, s = jnp.argmax(member < 0), jnp.argmax(~active)
        near = (member < 0) & (dist(genes, take(genes, jnp.array([i])))[:, 0] < threshold)
        member = jnp.where(near.at[i].set(True), s, member)
        return member, active.at[s].set(True), founded.at[s].set(True), _set(reps, s, take(pop, i))

    member, active, founded, reps = jax.lax.while_loop(
        more, found, (member, active, founded, species.rep))
    member = jax.lax.cond(jnp.any(member < 0), lambda: jnp.where(
        member < 0, jnp.argmin(jnp.where(active[None], to_reps(reps), jnp.inf), 1), member), lambda: member)
    return member, species.replace(rep=reps, active=active), founded


def allocate(fitness, member, species: Species, founded, generation, cfg: NEATConfig):
    """Offspring per species and the updated species records (best, improved, reps).

    Fitness is normalised to [0, 1] and shared (divided by species size); each
    surviving species gets ``min_species_size`` plus a share of the rest in
    proportion to its summed shared fitness (largest remainders round).
    """
    p, s = fitness.shape[0], species.active.shape[0]
    size = jax.ops.segment_sum(jnp.ones(p, jnp.int32), member, s)
    norm = (fitness - jnp.min(fitness)) / jnp.maximum(jnp.max(fitness) - jnp.min(fitness), 1e-12)
    share = jax.ops.segment_sum(norm / size[member], member, s)
    best_now = jax.ops.segment_max(fitness, member, s)
    active = species.active & (size > 0)
    old_best = jnp.where(founded, -jnp.inf, species.best)
    better = best_now > old_best
    improved = jnp.where(better | founded, generation, species.improved)
    best = jnp.where(active, jnp.maximum(best_now, old_best), -jnp.inf)
    place = jnp.argsort(jnp.argsort(-jnp.where(active, best, -jnp.inf)))
    protected = active & (place < cfg.species_elitism)
    alive = active & ((generation - improved < cfg.stagnation) | protected)
    alive = jnp.where(jnp.any(alive), alive, active & (place == 0))
    base = jnp.where(alive, cfg.min_species_size, 0)
    rest = p - jnp.sum(base)
    weight = jnp.where(alive, share + 1e-6, 0.0)
    raw = rest * weight / jnp.sum(weight)
    whole = jnp.floor(raw).astype(jnp.int32)
    left = rest - jnp.sum(whole)
    extra = jnp.zeros(s, jnp.int32).at[jnp.argsort(-(raw - whole))].set(
        (jnp.arange(s) < left).astype(jnp.int32))
    counts = base + whole + extra
    best_member = jnp.argmax((member[None] == jnp.arange(s)[:, None]) & (fitness[None] >= best_now[:, None]),
                             axis=1)
    return counts, size, Species(rep=species.rep, active=active, best=best, improved=improved), best_member


def parents(key, fitness, member, size, counts, cfg: NEATConfig):
    """``(elite, fitter, other, cross)`` per offspring slot.

    Offspring slots are laid out species by species; the first ``elitism``
    of a species copy its best genomes, the others draw two parents from the
    best ``survival_threshold`` share of the species.
    """
    p, s = fitness.shape[0], size.shape[0]
    ends = jnp.cumsum(counts)
    sp = jnp.clip(jnp.searchsorted(ends, jnp.arange(p), side="right"), 0, s - 1)
    rank = jnp.arange(p) - (ends - counts)[sp]
    ranked = jnp.lexsort((-fitness, member))
    first = (jnp.cumsum(size) - size)[sp]
    elite = rank < jnp.minimum(cfg.elitism, size[sp])
    n_surv = jnp.maximum(jnp.ceil(cfg.survival_threshold * size[sp]).astype(jnp.int32),
                         jnp.minimum(2, size[sp]))
    k1, k2, k3 = jax.random.split(key, 3)
    i1 = ranked[first + jax.random.randint(k1, (p,), 0, n_surv)]
    i2 = ranked[first + jax.random.randint(k2, (p,), 0, n_surv)]
    fitter = jnp.where(elite, ranked[first + rank], jnp.where(fitness[i1] >= fitness[i2], i1, i2))
    other = jnp.where(fitness[i1] >= fitness[i2], i2, i1)
    cross = ~elite & jax.random.bernoulli(k3, cfg.crossover_rate, (p,))
    return elite, fitter, other, cross


@partial(jax.jit, static_argnames=("cfg",))
def init_state(key: jax.Array, cfg: NEATConfig) -> NEATState:
    """Generation 0: ``population_size`` minimal genomes, no species, an empty archive."""
    k_pop, k_run = jax.random.split(key)
    pop = jax.vmap(lambda k: minimal(cfg.max_nodes, cfg.max_links, cfg.ink, k, cfg.weight_init_std))(
        jax.random.split(k_pop, cfg.population_size))
    n_out = len(output_labels(cfg.ink))  # minimal() numbers the io nodes and direct links first
    one = take(pop, 0)
    reps = jax.tree.map(lambda a: jnp.broadcast_to(a, (cfg.max_species,) + a.shape), one)
    species = Species(rep=reps, active=jnp.zeros(cfg.max_species, bool),
                      best=jnp.full(cfg.max_species, -jnp.inf, jnp.float32),
                      improved=jnp.zeros(cfg.max_species, jnp.int32))
    size = cfg.novelty.descriptor_size
    dim = DESCRIPTORS[cfg.novelty.descriptor](jnp.zeros((1, size, size, 3))).shape[1]
    return NEATState(
        key=k_run, generation=jnp.zeros((), jnp.int32), pop=pop,
        next_node=jnp.asarray(N_INPUTS + n_out, jnp.int32), next_innov=jnp.asarray(N_INPUTS * n_out, jnp.int32),
        species=species, threshold=jnp.asarray(cfg.threshold_init, jnp.float32),
        champion=one, champion_fitness=jnp.asarray(-jnp.inf, jnp.float32),
        archive=archive_init(cfg.novelty.capacity, dim, one, cfg.novelty.threshold))


def evaluate(pop: Genomes, archive: Archive, target, cfg: NEATConfig, resolution: int):
    """``(fitness, mse or None, novelty or None, archive)`` of a population."""
    mse = novelty = None
    if cfg.fitness != "novelty":
        rgb, _ = paint(pop, resolution, cfg.ink)
        mse = image_mse(rgb, target)
    if cfg.fitness != "target":
        small, _ = paint(pop, cfg.novelty.descriptor_size, cfg.ink)
        desc = DESCRIPTORS[cfg.novelty.descriptor](small)
        novelty = novelty_scores(desc, archive, cfg.novelty.k, cfg.novelty.population_neighbours)
        archive = archive_update(archive, desc, pop, novelty, cfg.novelty)
    if cfg.fitness == "target":
        fitness = -mse
    elif cfg.fitness == "novelty":
        fitness = novelty
    else:
        fitness = (1.0 - cfg.novelty_weight) * -mse + cfg.novelty_weight * novelty
    return fitness, mse, novelty, archive


@partial(jax.jit, static_argnames=("cfg", "resolution"))
def neat_step(state: NEATState, target, cfg: NEATConfig, resolution: int):
    """One generation: evaluate, speciate, allocate offspring, breed."""
    key, k_par, k_cross, k_mut = jax.random.split(state.key, 4)
    fitness, mse, novelty, archive = evaluate(state.pop, state.archive, target, cfg, resolution)
    best = jnp.argmax(fitness)
    better = fitness[best] > state.champion_fitness
    champion = jax.tree.map(lambda c, n: jnp.where(better, n, c), state.champion, take(state.pop, best))

    member, species, founded = speciate(state.pop, state.species, state.threshold, cfg)
    counts, size, species, best_member = allocate(fitness, member, species, founded, state.generation, cfg)
    species = species.replace(rep=select(species.active, take(state.pop, best_member), species.rep))
    n_species = jnp.sum(species.active)
    threshold = jnp.maximum(cfg.threshold_min, state.threshold + cfg.threshold_step * jnp.sign(
        n_species - cfg.target_species))

    elite, fitter, other, cross = parents(k_par, fitness, member, size, counts, cfg)
    a, b = take(state.pop, fitter), take(state.pop, other)
    children = jax.vmap(crossover)(a, b, jax.random.split(k_cross, cfg.population_size))
    children = select(cross, children, a)
    pop, next_node, next_innov = mutate(children, k_mut, ~elite, state.next_node, state.next_innov, cfg)

    stats = {"best_fitness": fitness[best], "mean_fitness": jnp.mean(fitness),
             "species": n_species, "threshold": state.threshold,
             "mean_nodes": jnp.mean(state.pop.n_nodes()), "mean_links": jnp.mean(state.pop.n_enabled())}
    if mse is not None:
        stats |= {"best_mse": jnp.min(mse), "mean_mse": jnp.mean(mse), "loss": jnp.min(mse)}
    if novelty is not None:
        stats |= {"novelty": jnp.mean(novelty), "archive_size": archive.size}
    new = NEATState(key=key, generation=state.generation + 1, pop=pop, next_node=next_node,
                    next_innov=next_innov, species=species, threshold=threshold, champion=champion,
                    champion_fitness=jnp.maximum(fitness[best], state.champion_fitness), archive=archive)
    return new, stats


@partial(jax.jit, static_argnames=("cfg", "resolution", "k"))
def neat_steps(state: NEATState, target, n, cfg: NEATConfig, resolution: int, k: int):
    """``n <= k`` generations in one call (``api.fused_loop``)."""
    return fused_loop(lambda s: neat_step(s, target, cfg, resolution), state, n, k)


class NEAT:
    """The NEAT regime (``ferlab.search.api.Search``); runs with equal settings share compiled code."""

    def __init__(self, settings: NEATConfig, resolution: int, target=None):
        if settings.needs_target and target is None:
            raise ConfigError(f"settings.fitness: {settings.fitness!r} needs a target image")
        self.cfg = settings
        self.resolution = resolution
        self.target = None if target is None else jnp.asarray(target, jnp.float32)

    def init(self, key: jax.Array) -> NEATState:
        return init_state(key, self.cfg)

    def step(self, state: NEATState):
        return neat_step(state, self.target, self.cfg, self.resolution)

    def steps(self, state: NEATState, n: int, k: int):
        return neat_steps(state, self.target, n, self.cfg, self.resolution, k)

    def result(self, state: NEATState) -> Result:
        """The champion and, in novelty modes, the most recent ``archive_export`` archive entries.

        Images are painted from the tensor genomes in one call (equal to the
        renders of their dense nets within 1e-4), not compiled net by net.
        """
        names = {"best": state.champion}
        if self.cfg.fitness != "target":
            payload = archive_entries(state.archive)["payload"]  # oldest first
            size = int(state.archive.size)
            n = min(size, self.cfg.archive_export)
            width = max(3, len(str(max(n - 1, 0))))
            for k in range(n):
                names[f"archive_{k:0{width}d}"] = take(payload, size - n + k)
        genomes = {name: to_genome(g, self.cfg.ink, name) for name, g in names.items()}
        rgb = np.asarray(paint(jax.tree.map(lambda *a: jnp.stack(a), *names.values()), self.resolution,
                               self.cfg.ink)[0])
        return Result(nets={name: layerize(g).net for name, g in genomes.items()},
                      images=dict(zip(names, rgb)), genomes=genomes)

    # Island model (ferlab.workers.islands): lower migrant fitness is better there, NEAT's is higher.
    def join_islands(self, state: NEATState, index: int, count: int) -> NEATState:
        """Island ``index`` of ``count``: its node keys and innovations come from its own block
        (``ISLAND_NUMBERS // count`` numbers wide), so a number means one gene on every island."""
        block = ISLAND_NUMBERS // count
        return state.replace(next_node=state.next_node + index * block,
                             next_innov=state.next_innov + index * block)

    def emigrant(self, state: NEATState):
        """The champion (a tensor genome) and its fitness, negated."""
        return state.champion, -state.champion_fitness

    def immigrate(self, state: NEATState, genome: Genomes, fitness) -> NEATState:
        """Put ``genome`` in place of the population's worst; the next step speciates it as any other."""
        return replace_worst(state, jax.tree.map(jnp.asarray, genome), self.target, self.cfg, self.resolution)

    def archive_entries(self, state: NEATState):
        """The archive's descriptors and genomes, for an island run's shared archive."""
        return archive_entries(state.archive)

    def with_archive(self, state: NEATState, entries) -> NEATState:
        return state.replace(archive=with_entries(state.archive, entries))


def make_neat(run_config, settings: NEATConfig) -> NEAT:
    """The NEAT regime for a run: its resolution and, unless pure novelty, its target image."""
    target = None
    if settings.needs_target:
        settings.check(run_config)
        from ferlab.search.targets import load_target

        target = load_target(run_config.target, run_config.resolution)
    return NEAT(settings, run_config.resolution, target)


ISLAND_NUMBERS = 2**30  # node keys and innovations shared out among islands (int32 with headroom)


@partial(jax.jit, static_argnames=("cfg", "resolution"))
def replace_worst(state: NEATState, genome: Genomes, target, cfg: NEATConfig, resolution: int) -> NEATState:
    """``state`` with its lowest-fitness genome (scored as ``neat_step`` would) replaced by ``genome``."""
    fitness = evaluate(state.pop, state.archive, target, cfg, resolution)[0]
    return state.replace(pop=_set(state.pop, jnp.argmin(fitness), genome))
