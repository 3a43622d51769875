"""NEAT in JAX: a whole population of CPPN genomes evolving as tensors.

One generation (``NEAT.step``, jitted) paints every genome on the pixel grid
(``neat_genome.paint``), scores it (negative MSE to the target, novelty against
the shared archive of ``ferlab.search.archive``, or a mix of their ranks), speciates
by compatibility distance with a threshold that moves towards the target
number of species, shares fitness within species, drops stagnant species,
allocates offspring and breeds them by crossover (aligned by innovation
number) and mutation (``neat_variation``). Genomes start minimal, Picbreeder's
way: every input linked to every output.

``make_neat(run_config, settings)`` is the regime factory ``ferlab run`` calls;
``result`` gives the champion (and, for novelty, the archive) as genome,
layerized dense net and image. With a target, the loss ladder
(``ferlab.search.ladder``) keeps the generation's lowest-MSE genome at each
rung it reaches; those snapshots are nets ``rung_<value>`` too.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ferlab.config import ConfigError
from ferlab.layerize import layerize
from ferlab.search import ladder as ladders
from ferlab.search.api import Regime, Result, fused_loop
from ferlab.search.archive import (
    ARCHIVE_PREFIX,
    Archive,
    archive_entries,
    archive_init,
    archive_update,
    centred_ranks,
    novelty_scores,
    with_entries,
)
from ferlab.search.descriptors import DESCRIPTORS
from ferlab.search.neat_config import NEATConfig
from ferlab.search.neat_genome import (
    N_INPUTS,
    Genomes,
    minimal,
    output_labels,
    paint,
    select,
    take,
    to_genome,
)
from ferlab.search.neat_species import Species, allocate, parents, put, speciate
from ferlab.search.neat_variation import crossover, mutate
from ferlab.search.targets import image_losses
from ferlab.search.targets import mse as image_mse


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
    ladder: ladders.Ladder


@partial(jax.jit, static_argnames=("cfg", "rungs"))
def init_state(key: jax.Array, cfg: NEATConfig, rungs: tuple[float, ...] = ladders.DEFAULT_RUNGS) -> NEATState:
    """Generation 0: ``population_size`` minimal genomes, no species, an empty archive and ladder."""
    k_pop, k_run = jax.random.split(key)
    pop = jax.vmap(lambda k: minimal(cfg.max_nodes, cfg.max_links, cfg.ink, k, cfg.weight_init_std))(
        jax.random.split(k_pop, cfg.population_size)
    )
    n_out = len(output_labels(cfg.ink))  # minimal() numbers the io nodes and direct links first
    one = take(pop, 0)
    reps = jax.tree.map(lambda a: jnp.broadcast_to(a, (cfg.max_species,) + a.shape), one)
    species = Species(
        rep=reps,
        active=jnp.zeros(cfg.max_species, bool),
        best=jnp.full(cfg.max_species, -jnp.inf, jnp.float32),
        improved=jnp.zeros(cfg.max_species, jnp.int32),
    )
    size = cfg.novelty.descriptor_size
    dim = DESCRIPTORS[cfg.novelty.descriptor](jnp.zeros((1, size, size, 3))).shape[1]
    return NEATState(
        key=k_run,
        generation=jnp.zeros((), jnp.int32),
        pop=pop,
        next_node=jnp.asarray(N_INPUTS + n_out, jnp.int32),
        next_innov=jnp.asarray(N_INPUTS * n_out, jnp.int32),
        species=species,
        threshold=jnp.asarray(cfg.threshold_init, jnp.float32),
        champion=one,
        champion_fitness=jnp.asarray(-jnp.inf, jnp.float32),
        archive=archive_init(cfg.novelty.capacity, dim, one, cfg.novelty.threshold),
        ladder=ladders.init(rungs, one),
    )


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
        fitness = mix_fitness(mse, novelty, cfg.novelty_weight)
    return fitness, mse, novelty, archive


def mix_fitness(mse: jax.Array, novelty: jax.Array, novelty_weight: float) -> jax.Array:
    """``mix``: w * rank(novelty) + (1 - w) * rank(-MSE) over the population (``centred_ranks``, as
    NSR-ES weighs them). MSE spans hundredths and novelty the descriptor's units, so a weighted sum
    of the raw scores let novelty decide whatever the weight."""
    return novelty_weight * centred_ranks(novelty) + (1.0 - novelty_weight) * centred_ranks(-mse)


# The keys a generation splits from ``NEATState.key``. JAX's partitionable threefry (the default) makes
# ``split(k, n)[i]`` equal ``fold_in(k, i)`` for every n > i, so a stream of one's own folds in STREAMS
# or more (``neat_sgd``'s training), never an index below it.
STREAMS = 4


@partial(jax.jit, static_argnames=("cfg", "resolution"))
def neat_step(state: NEATState, target, cfg: NEATConfig, resolution: int, scored: Genomes | None = None):
    """One generation: evaluate, speciate, allocate offspring, breed.

    ``scored`` (default: the population) is what is painted and scored in the
    population's place, one genome per member: a Baldwinian hybrid passes its
    trained copies, which then also give the champion and the ladder's snapshots.
    """
    key, k_par, k_cross, k_mut = jax.random.split(state.key, STREAMS)
    scored = state.pop if scored is None else scored
    fitness, mse, novelty, archive = evaluate(scored, state.archive, target, cfg, resolution)
    best = jnp.argmax(fitness)
    better = fitness[best] > state.champion_fitness
    champion = jax.tree.map(lambda c, n: jnp.where(better, n, c), state.champion, take(scored, best))
    evaluations = (state.generation + 1) * cfg.population_size
    ladder = state.ladder
    if mse is not None:
        closest = jnp.argmin(mse)
        ladder = ladders.update(ladder, mse[closest], take(scored, closest), state.generation, evaluations)

    member, species, founded = speciate(state.pop, state.species, state.threshold, cfg)
    counts, size, species, best_member = allocate(fitness, member, species, founded, state.generation, cfg)
    species = species.replace(rep=select(species.active, take(state.pop, best_member), species.rep))
    n_species = jnp.sum(species.active)
    threshold = jnp.maximum(
        cfg.threshold_min, state.threshold + cfg.threshold_step * jnp.sign(n_species - cfg.target_species)
    )

    elite, fitter, other, cross = parents(k_par, fitness, member, size, counts, cfg)
    a, b = take(state.pop, fitter), take(state.pop, other)
    children = jax.vmap(crossover)(a, b, jax.random.split(k_cross, cfg.population_size))
    children = select(cross, children, a)
    pop, next_node, next_innov = mutate(children, k_mut, ~elite, state.next_node, state.next_innov, cfg)

    stats = {
        "best_fitness": fitness[best],
        "mean_fitness": jnp.mean(fitness),
        "species": n_species,
        "threshold": state.threshold,
        "mean_nodes": jnp.mean(state.pop.n_nodes()),
        "mean_links": jnp.mean(state.pop.n_enabled()),
        "evaluations": evaluations,
    }
    if mse is not None:
        stats |= {"mean_loss": jnp.mean(mse), "loss": jnp.min(mse)}
    if novelty is not None:
        stats |= {"novelty": jnp.mean(novelty), "archive_size": archive.size}
    new = NEATState(
        key=key,
        generation=state.generation + 1,
        pop=pop,
        next_node=next_node,
        next_innov=next_innov,
        species=species,
        threshold=threshold,
        champion=champion,
        champion_fitness=jnp.maximum(fitness[best], state.champion_fitness),
        archive=archive,
        ladder=ladder,
    )
    return new, stats


@partial(jax.jit, static_argnames=("cfg", "resolution", "k"))
def neat_steps(state: NEATState, target, n, cfg: NEATConfig, resolution: int, k: int):
    """``n <= k`` generations in one call (``api.fused_loop``)."""
    return fused_loop(lambda s: neat_step(s, target, cfg, resolution), state, n, k)


class NEAT:
    """The NEAT regime (``ferlab.search.api.Search``); runs with equal settings share compiled code."""

    def __init__(self, settings: NEATConfig, resolution: int, target=None, rungs=ladders.DEFAULT_RUNGS):
        if settings.needs_target and target is None:
            raise ConfigError(f"settings.fitness: {settings.fitness!r} needs a target image")
        self.cfg = settings
        self.resolution = resolution
        self.target = None if target is None else jnp.asarray(target, jnp.float32)
        self.rungs = tuple(float(r) for r in rungs)

    def init(self, key: jax.Array) -> NEATState:
        return init_state(key, self.cfg, self.rungs)

    def step(self, state: NEATState):
        return neat_step(state, self.target, self.cfg, self.resolution)

    def steps(self, state: NEATState, n: int, k: int):
        return neat_steps(state, self.target, n, self.cfg, self.resolution, k)

    def result(self, state: NEATState) -> Result:
        """The champion, in novelty modes the most recent ``archive_export`` archive entries, and
        with a target ``rung_<value>``: the generation's lowest-MSE genome at each rung reached.

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
                names[f"{ARCHIVE_PREFIX}{k:0{width}d}"] = take(payload, size - n + k)
        names |= {name: ladders.snapshot(state.ladder, i) for name, i in ladders.reached(state.ladder)}
        genomes = {name: to_genome(g, self.cfg.ink, name) for name, g in names.items()}
        rgb = np.asarray(
            paint(jax.tree.map(lambda *a: jnp.stack(a), *names.values()), self.resolution, self.cfg.ink)[0]
        )
        images = dict(zip(names, rgb))
        return Result(
            nets={name: layerize(g).net for name, g in genomes.items()},
            images=images,
            genomes=genomes,
            losses=image_losses(images, self.target),
        )

    def tables(self, state: NEATState) -> dict:
        """``ladder``: the rungs (``ferlab.search.ladder.table``), with a target."""
        return {"ladder": ladders.table(state.ladder)} if self.target is not None else {}

    # Island model (ferlab.workers.islands): lower migrant fitness is better there, NEAT's is higher.
    def join_islands(self, state: NEATState, index: int, count: int) -> NEATState:
        """Island ``index`` of ``count``: its node keys and innovations come from its own block
        (``ISLAND_NUMBERS // count`` numbers wide), so a number means one gene on every island."""
        block = ISLAND_NUMBERS // count
        return state.replace(next_node=state.next_node + index * block, next_innov=state.next_innov + index * block)

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
    return NEAT(settings, run_config.resolution, target, run_config.ladder)


ISLAND_NUMBERS = 2**30  # node keys and innovations shared out among islands (int32 with headroom)


@partial(jax.jit, static_argnames=("cfg", "resolution"))
def replace_worst(state: NEATState, genome: Genomes, target, cfg: NEATConfig, resolution: int) -> NEATState:
    """``state`` with its lowest-fitness genome (scored as ``neat_step`` would) replaced by ``genome``."""
    fitness = evaluate(state.pop, state.archive, target, cfg, resolution)[0]
    return state.replace(pop=put(state.pop, jnp.argmin(fitness), genome))


REGIME = Regime(
    name="neat",
    config=NEATConfig,
    make=make_neat,
    population=("population_size",),
    archive_prefix=ARCHIVE_PREFIX,
    shared_archive=lambda s: s.novelty.capacity if s.fitness != "target" else 0,
    smallest={
        "target": "picbreeder:skull",
        "resolution": 8,
        "generations": 3,
        "checkpoint_every": 1,
        "settings": {
            "population_size": 16,
            "max_nodes": 12,
            "max_links": 24,
            "max_species": 4,
            "target_species": 2,
            "add_node_rate": 0.5,
            "add_link_rate": 0.5,
        },
    },
)
