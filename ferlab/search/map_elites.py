"""MAP-Elites (Mouret and Clune 2015): one elite per cell of a grid over behaviour descriptors.

Every generation a batch of children is made from elites drawn uniformly from
the filled cells, painted small, described (any ``ferlab.search.descriptors``
descriptor, binned by ``GridArchive`` in ``ferlab.search.archive``) and scored
for quality; a child takes its cell when the cell is empty or it is strictly
better than the elite there. Two genomes (``genome``):

- ``dense``: flat weights of a dense CPPN of the run's ``arch``, started from
  Flax's initialisation; the iso+line emitter (Vassiliades and Mouret 2018):
  child = x_i + iso_sigma N(0, I) + line_sigma N(0, 1) (x_j - x_i) for two
  random elites i, j (``line_sigma: 0`` gives plain Gaussian mutation);
- ``neat``: NEAT genomes as tensors (``neat_genome``), started minimal, varied by
  NEAT's own mutation (``neat_variation.mutate`` with the ``neat`` settings: its
  mutation rates and genome capacity; its population, speciation and fitness
  settings are unused), node keys and innovations numbered across generations.

Quality (``quality``): ``target`` = -MSE of the image at the run's resolution to
the run's target; ``interest`` (no target) = the entropy of the image's grey
levels in 16 bins over [0, 1], divided by log 16: a documented proxy for an
image worth keeping, 0 for a flat image, 1 for one that uses every tone equally
(so within a cell the elite with the richest tonal range wins).

QDax (which has this repertoire) is not used: ``pip install --dry-run qdax``
resolves qdax 0.5.0 beside the project's JAX 0.10.2 only by adding 27 packages
(brax, mujoco, mujoco-mjx, jumanji, tensorflow-probability, gymnasium,
huggingface_hub...), a physics simulator for a grid of elites; the repertoire
here is ``GridArchive`` (``ferlab.search.archive``), a few lines of jitted JAX.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ferlab import limits
from ferlab.config import ConfigError
from ferlab.cppn import DenseNet, init_net, init_nets
from ferlab.layerize import layerize
from ferlab.render import render
from ferlab.search.api import Regime, Result, fused
from ferlab.search.archive import ELITE_PREFIX, GridArchive, grid_cells, grid_init, grid_insert
from ferlab.search.descriptors import DESCRIPTORS, check_descriptor
from ferlab.search.neat import ISLAND_NUMBERS
from ferlab.search.neat_config import NEATConfig
from ferlab.search.neat_genome import N_INPUTS, minimal, output_labels, paint, take, to_genome
from ferlab.search.neat_variation import mutate
from ferlab.search.targets import image_losses, load_arch, load_target, mse

MAX_CELLS = 2**16
INTEREST_LEVELS = 16
_LUMA = jnp.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class MapElitesConfig:
    """MAP-Elites settings (``settings:`` of ``regime: map_elites``).

    ``batch_size`` children per generation (the first generation's are random
    genomes); a grid of ``bins`` per descriptor entry over [``low``, ``high``]
    (``descriptor`` of the image painted at ``descriptor_size``); ``quality``
    ``interest`` or ``target``; the dense emitter's ``iso_sigma`` and
    ``line_sigma``; ``neat``: NEAT's mutation settings and genome capacity for
    ``genome: neat``; ``export``: at most this many elites (evenly spaced in
    cell order) in the result, as ``elite_NNN``, beside ``best``.
    """

    genome: Literal["dense", "neat"] = "dense"
    batch_size: int = 64
    generations: int = 300
    descriptor: str = "tone"
    descriptor_size: int = 16
    bins: int = 6
    low: float = 0.0
    high: float = 1.0
    quality: Literal["interest", "target"] = "interest"
    iso_sigma: float = 0.1
    line_sigma: float = 0.2
    neat: NEATConfig = field(default_factory=NEATConfig)
    export: int = 50

    def __post_init__(self):
        check_descriptor(self.descriptor, self.descriptor_size)
        for name in ("batch_size", "generations", "bins"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.export < 0:
            raise ValueError(f"export must be at least 0, got {self.export}")
        limits.POPULATION.check(self.batch_size, "batch_size", ValueError)
        limits.GENERATIONS.check(self.generations, "generations", ValueError)
        if not self.high > self.low:
            raise ValueError(f"high must exceed low, got [{self.low}, {self.high}]")
        if self.iso_sigma < 0 or self.line_sigma < 0 or not self.iso_sigma + self.line_sigma > 0:
            raise ValueError("iso_sigma and line_sigma must be at least 0, and not both 0")
        if self.n_cells > MAX_CELLS:
            raise ValueError(f"bins ** descriptor entries = {self.n_cells} cells exceeds {MAX_CELLS}")

    @property
    def descriptor_dim(self) -> int:
        size = self.descriptor_size
        return int(
            jax.eval_shape(DESCRIPTORS[self.descriptor], jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)).shape[
                -1
            ]
        )

    @property
    def n_cells(self) -> int:
        return self.bins**self.descriptor_dim

    def check(self, run) -> None:
        if self.quality == "target" and run.target is None:
            raise ConfigError("settings.quality: 'target' needs a target (set target:, or use quality: interest)")


def interest(rgb: jax.Array) -> jax.Array:
    """Entropy of the grey levels of images ``(P, S, S, 3)`` in 16 bins, over log 16: in [0, 1]."""
    grey = rgb @ _LUMA
    levels = jnp.clip(jnp.floor(grey * INTEREST_LEVELS), 0, INTEREST_LEVELS - 1).astype(jnp.int32)
    hist = jnp.mean(jax.nn.one_hot(levels, INTEREST_LEVELS), axis=(1, 2))
    return -jnp.sum(jnp.where(hist > 0, hist * jnp.log(jnp.maximum(hist, 1e-12)), 0.0), -1) / np.log(INTEREST_LEVELS)


@struct.dataclass
class MapElitesState:
    key: jax.Array
    archive: GridArchive
    evaluations: jax.Array
    next_node: jax.Array  # NEAT's counters (unused for dense genomes)
    next_innov: jax.Array


class MapElites:
    """MAP-Elites over dense weights or NEAT genomes (``api.Search``, ``api.Migrating``)."""

    def __init__(self, settings: MapElitesConfig, resolution: int, target=None, template: DenseNet | None = None):
        if settings.quality == "target" and target is None:
            raise ConfigError("settings.quality: 'target' needs a target image")
        self.settings = settings
        self.resolution = resolution
        self.target = None if target is None else jnp.asarray(target, jnp.float32)
        self.template = template
        self.neat = settings.genome == "neat"
        self.init = jax.jit(self._init)
        self.step = jax.jit(self._step)
        self.steps = fused(self._step)
        self.children = jax.jit(lambda state: self._emit(state)[0])
        self._insert = jax.jit(self._insert_batch)

    # -- genomes -----------------------------------------------------------------------------
    def images(self, genomes, size: int) -> jax.Array:
        """RGB images ``(P, size, size, 3)`` of a batch of genomes."""
        if self.neat:
            return paint(genomes, size, self.settings.neat.ink)[0]
        return render(self.template.with_flat(genomes), size).rgb

    def random_batch(self, key: jax.Array):
        """``batch_size`` random genomes: minimal NEAT genomes or freshly initialised weights (generation 0)."""
        keys = jax.random.split(key, self.settings.batch_size)
        if self.neat:
            cfg = self.settings.neat
            return jax.vmap(lambda k: minimal(cfg.max_nodes, cfg.max_links, cfg.ink, k, cfg.weight_init_std))(keys)
        return init_nets(self.template.arch, keys).flat()

    def evaluate(self, genomes):
        """``(descriptors (P, D), quality (P,), mse (P,) or None)`` of a batch."""
        s = self.settings
        small = self.images(genomes, s.descriptor_size)
        desc = DESCRIPTORS[s.descriptor](small)
        if s.quality == "target":
            error = mse(self.images(genomes, self.resolution), self.target)
            return desc, -error, error
        return desc, interest(small), None

    def _insert_batch(self, archive: GridArchive, genomes):
        desc, quality, _ = self.evaluate(genomes)
        s = self.settings
        return grid_insert(archive, grid_cells(desc, s.bins, s.low, s.high), desc, quality, genomes)

    # -- the Search protocol -------------------------------------------------------------------
    def _init(self, key: jax.Array) -> MapElitesState:
        k_first, k_run = jax.random.split(key)
        first = self.random_batch(k_first)
        archive = grid_init(self.settings.n_cells, self.settings.descriptor_dim, take(first, 0))
        archive, _ = self._insert_batch(archive, first)
        n_io = N_INPUTS + len(output_labels(self.settings.neat.ink))  # minimal() numbers io nodes and links first
        return MapElitesState(
            key=k_run,
            archive=archive,
            evaluations=jnp.asarray(self.settings.batch_size, jnp.int32),
            next_node=jnp.asarray(n_io, jnp.int32),
            next_innov=jnp.asarray(N_INPUTS * (n_io - N_INPUTS), jnp.int32),
        )

    def _emit(self, state: MapElitesState):
        """``(children, next_node, next_innov, key)``: the batch a step evaluates, from random elites."""
        s = self.settings
        key, k_par, k_mut, k_line = jax.random.split(state.key, 4)
        logits = jnp.where(state.archive.filled, 0.0, -jnp.inf)
        picks = jax.random.categorical(k_par, logits, shape=(2, s.batch_size))
        parents = take(state.archive.payload, picks[0])
        if self.neat:
            children, next_node, next_innov = mutate(
                parents, k_mut, jnp.ones(s.batch_size, bool), state.next_node, state.next_innov, s.neat
            )
            return children, next_node, next_innov, key
        other = state.archive.payload[picks[1]]
        children = (
            parents
            + s.iso_sigma * jax.random.normal(k_mut, parents.shape)
            + s.line_sigma * jax.random.normal(k_line, (s.batch_size, 1)) * (other - parents)
        )
        return children, state.next_node, state.next_innov, key

    def _step(self, state: MapElitesState):
        children, next_node, next_innov, key = self._emit(state)
        desc, quality, error = self.evaluate(children)
        s = self.settings
        archive, became = grid_insert(state.archive, grid_cells(desc, s.bins, s.low, s.high), desc, quality, children)
        filled = archive.filled
        count = jnp.sum(filled)
        elite_fitness = jnp.where(filled, archive.fitness, 0.0)
        floor = -1.0 if s.quality == "target" else 0.0  # the lowest quality there is (MSE of [0, 1] images <= 1)
        evaluations = state.evaluations + s.batch_size
        stats = {
            "archive_size": count,
            "coverage": count / archive.n_cells,
            "added": jnp.sum(became),
            "best_fitness": jnp.max(jnp.where(filled, archive.fitness, -jnp.inf)),
            "mean_fitness": jnp.sum(elite_fitness) / jnp.maximum(count, 1),
            "batch_fitness": jnp.mean(quality),
            "qd_score": jnp.sum(jnp.where(filled, archive.fitness - floor, 0.0)),
            "evaluations": evaluations,
        }
        if error is not None:
            stats["loss"] = -stats["best_fitness"]
        if self.neat:
            stats["mean_nodes"] = jnp.sum(jnp.where(filled, archive.payload.n_nodes(), 0)) / jnp.maximum(count, 1)
        return MapElitesState(
            key=key, archive=archive, evaluations=evaluations, next_node=next_node, next_innov=next_innov
        ), stats

    def result(self, state: MapElitesState) -> Result:
        """``best`` (the highest-quality elite) and up to ``export`` elites, evenly spaced in cell order."""
        archive = state.archive
        cells = np.flatnonzero(np.asarray(archive.filled))
        n = min(self.settings.export, cells.size)
        chosen = cells[np.unique(np.linspace(0, cells.size - 1, n).round().astype(int))] if n else cells[:0]
        width = max(3, len(str(max(chosen.size - 1, 0))))
        rows = {"best": int(np.argmax(np.where(np.asarray(archive.filled), np.asarray(archive.fitness), -np.inf)))}
        rows |= {f"{ELITE_PREFIX}{k:0{width}d}": int(c) for k, c in enumerate(chosen)}
        genomes = take(archive.payload, jnp.asarray(list(rows.values())))
        rgb = np.asarray(self.images(genomes, self.resolution))
        images = dict(zip(rows, rgb))
        losses = image_losses(images, self.target)  # each elite's own fit (none for ``interest``)
        if self.neat:
            found = {name: to_genome(take(genomes, i), self.settings.neat.ink, name) for i, name in enumerate(rows)}
            nets = {name: layerize(g).net for name, g in found.items()}
            return Result(nets=nets, images=images, genomes=found, losses=losses)
        nets = {name: self.template.with_flat(genomes[i]) for i, name in enumerate(rows)}
        return Result(nets=nets, images=images, losses=losses)

    # -- islands (ferlab.workers.islands): lower migrant fitness is better there ----------------
    def join_islands(self, state: MapElitesState, index: int, count: int) -> MapElitesState:
        """NEAT genomes: island ``index`` numbers new nodes and links from its own block (as ``neat``)."""
        if not self.neat:
            return state
        block = ISLAND_NUMBERS // count
        return state.replace(next_node=state.next_node + index * block, next_innov=state.next_innov + index * block)

    def emigrant(self, state: MapElitesState):
        """The best elite and its quality, negated."""
        best = jnp.argmax(jnp.where(state.archive.filled, state.archive.fitness, -jnp.inf))
        return take(state.archive.payload, best), -state.archive.fitness[best]

    def immigrate(self, state: MapElitesState, payload, fitness) -> MapElitesState:
        """Offer the migrant to this island's grid (described and scored here, kept if it wins its cell)."""
        archive, _ = self._insert(state.archive, jax.tree.map(lambda x: jnp.asarray(x)[None], payload))
        return state.replace(archive=archive)


def make_map_elites(run_config, settings: MapElitesConfig) -> MapElites:
    """MAP-Elites for a run: its resolution, target (for ``quality: target``) and, for dense genomes, ``arch``."""
    target = None
    if settings.quality == "target":
        settings.check(run_config)
        target = load_target(run_config.target, run_config.resolution)
    template = None if settings.genome == "neat" else init_net(load_arch(run_config.arch), jax.random.PRNGKey(0))
    return MapElites(settings, run_config.resolution, target, template)


REGIME = Regime(
    name="map_elites",
    config=MapElitesConfig,
    make=make_map_elites,
    population=("batch_size",),
    archive_prefix=ELITE_PREFIX,
    smallest={
        "resolution": 8,
        "arch": "2;sin:3,gaussian:3",
        "generations": 3,
        "checkpoint_every": 1,
        "settings": {"batch_size": 8, "bins": 3, "descriptor_size": 4},
    },
)
