"""Evolution strategies: any evosax 0.3 algorithm over a dense CPPN's flat weights.

Fitness is the MSE of the net's image to the target at the run's resolution
(evosax minimises, so lower is better); the whole population renders in one
vmapped call. ``ESConfig`` picks the algorithm by its evosax name and sets
what evosax exposes: constructor ``options`` (scalars only) and fields of its
``default_params``. ``std`` is the search scale (``std_init`` or a constant
``std_schedule``, whichever the algorithm has); ``optimizer`` and
``learning_rate`` build the optax optimizer of gradient-style ES.

``mask_from`` (a study's ``same_mask``) searches only the non-zero weights of
another net of the same architecture (a Picbreeder genome's dense net: its
topology), the others held at exactly 0, as SGD's ``mask_from`` does; the
algorithm then works in that many dimensions (CMA-ES's covariance stays small).

``fitness_resolution`` scores the population on a coarser pixel grid (the
target as ``load_target`` gives it at that size) than the run's, for a
fraction of the cost per generation; the run still reports and keeps what it
reports at its own resolution: ``loss`` (the best individual so far), the
ladder's rungs (the generation's best individual, re-rendered) and the result.

The helpers ``build_algorithm``, ``algorithm_init`` and ``centre`` let other
regimes (novelty search) drive evosax with their own fitness.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ferlab import limits
from ferlab.config import ConfigError
from ferlab.cppn import DenseNet, init_net
from ferlab.render import batch_rgb, render
from ferlab.search import ladder as ladders
from ferlab.search.api import Regime, Result, fused
from ferlab.search.targets import image_losses, load_arch, load_target, mse

# constructor arguments ferlab sets itself (or that YAML cannot express)
_RESERVED = ("self", "population_size", "solution", "fitness_shaping_fn", "metrics_fn", "optimizer", "std_schedule")


def evosax_algorithms() -> dict[str, type]:
    from evosax.algorithms import algorithms

    return algorithms


@dataclass(frozen=True)
class ESConfig:
    """An evosax algorithm by name, its population size, search scale and settings.

    The defaults suit Open_ES on the skull architecture (5,478 weights) at 32x32:
    small steps (std 0.02, Adam lr 0.005) because larger ones (std 0.1, lr 0.03)
    wreck the 12-layer net's image faster than 64 samples can estimate a descent
    direction (measured: best MSE 0.176 -> 0.059 in 200 generations, vs stuck at 0.128).
    """

    algorithm: str = "Open_ES"
    population_size: int = 64
    std: float = 0.02
    optimizer: str = "adam"
    learning_rate: float = 0.005
    options: dict[str, Any] = field(default_factory=dict)
    params: dict[str, float] = field(default_factory=dict)
    mask_from: str | None = None
    fitness_resolution: int | None = None

    def __post_init__(self):
        known = evosax_algorithms()
        if self.algorithm not in known:
            raise ValueError(f"unknown evosax algorithm {self.algorithm!r} (known: {', '.join(sorted(known))})")
        if self.population_size < 2:
            raise ValueError(f"population_size must be at least 2, got {self.population_size}")
        limits.POPULATION.check(self.population_size, "population_size", ValueError)
        if not self.std > 0 or not self.learning_rate > 0:
            raise ValueError("std and learning_rate must be positive")
        if self.fitness_resolution is not None and not 2 <= self.fitness_resolution <= limits.MAX_SIDE:
            raise ValueError(f"fitness_resolution must be in [2, {limits.MAX_SIDE}], got {self.fitness_resolution}")
        import optax

        if not callable(getattr(optax, self.optimizer, None)):
            raise ValueError(f"unknown optax optimizer {self.optimizer!r}")
        build_algorithm(self, 8)  # rejects unknown options/params and settings evosax refuses

    def check(self, run):
        if run.target is None:
            raise ConfigError("regime es needs a target")
        if self.fitness_resolution is not None and self.fitness_resolution > run.resolution:
            raise ConfigError(
                f"settings.fitness_resolution ({self.fitness_resolution}) "
                f"exceeds the run's resolution ({run.resolution})"
            )
        if self.mask_from is not None:
            from ferlab.search.sgd import mask_of

            mask_of(self.mask_from, load_arch(run.arch))


def build_algorithm(cfg: ESConfig, num_dims: int):
    """``(algorithm, params)``: the evosax algorithm over ``num_dims`` weights, configured."""
    import optax

    cls = evosax_algorithms()[cfg.algorithm]
    accepted = inspect.signature(cls.__init__).parameters
    settable = sorted(
        n for n, p in accepted.items() if n not in _RESERVED and isinstance(p.default, (bool, int, float, str))
    )
    for name, value in cfg.options.items():
        if name not in settable:
            raise ValueError(
                f"options: {name!r} is not a setting of {cfg.algorithm} (settable: {', '.join(settable) or 'none'})"
            )
        if not isinstance(value, (bool, int, float, str)):
            raise ValueError(f"options.{name}: expected a scalar, got {type(value).__name__}")
    kwargs = dict(cfg.options)
    if "optimizer" in accepted:
        kwargs["optimizer"] = getattr(optax, cfg.optimizer)(cfg.learning_rate)
    if "std_schedule" in accepted:
        kwargs["std_schedule"] = optax.constant_schedule(cfg.std)
    try:
        algo = cls(population_size=cfg.population_size, solution=jnp.zeros(num_dims), **kwargs)
        params = algo.default_params
    except (AssertionError, ValueError, TypeError) as e:
        raise ValueError(f"{cfg.algorithm} refuses these settings ({e or 'assertion failed'})") from None
    names = {f.name for f in dataclasses.fields(params)}
    unknown = sorted(set(cfg.params) - names)
    if unknown:
        raise ValueError(
            f"params: {unknown[0]!r} is not a parameter of {cfg.algorithm} "
            f"(known: {', '.join(sorted(names)) or 'none'})"
        )
    values = {"std_init": cfg.std} if "std_init" in names else {}
    values.update(cfg.params)
    params = params.replace(**{k: jnp.asarray(v, jnp.result_type(getattr(params, k))) for k, v in values.items()})
    return algo, params


def is_population_based(algo) -> bool:
    from evosax.algorithms.population_based.base import PopulationBasedAlgorithm

    return isinstance(algo, PopulationBasedAlgorithm)


def algorithm_init(
    algo, params, key: jax.Array, mean: jax.Array, std: float, fitness: Callable[[jax.Array], jax.Array]
):
    """evosax state centred on ``mean``; population-based algorithms start from
    ``mean`` plus ``std`` noise, evaluated with ``fitness((P, D)) -> (P,)``.

    Every leaf comes out strongly typed, as ``ESSearch``'s step leaves them too. evosax types
    some weakly (Open_ES: ``best_fitness`` and ``best_solution`` from init, ``std`` from tell), so
    a jitted step would see new input types on its second call and compile again: about 1.4 s on
    this CPU, paid by every ES run and, inside the steady window, by every island of
    ``bench/islands.py``."""
    if not is_population_based(algo):
        return _strong(algo.init(key, mean, params))
    k_pop, k_init = jax.random.split(key)
    population = mean + std * jax.random.normal(k_pop, (algo.population_size, mean.shape[-1]))
    population = population.at[0].set(mean)
    return _strong(algo.init(k_init, population, fitness(population), params))


def _strong(tree):
    return jax.tree.map(lambda a: jnp.asarray(a, dtype=a.dtype), tree)


def initial_evaluations(algo) -> int:
    """Nets ``algorithm_init`` scores before the first generation: the population-based algorithms'
    starting population (counted, as MAP-Elites counts its first batch, so regimes share an x-axis)."""
    return algo.population_size if is_population_based(algo) else 0


def centre(algo, state) -> jax.Array:
    """The flat weights an algorithm's state stands for: its mean, or its best so far."""
    return state.best_solution if is_population_based(algo) else state.mean


@struct.dataclass
class ESState:
    algo: Any
    key: jax.Array
    ladder: ladders.Ladder  # the generation's best individual at each rung reached (full flat weights)


class ESSearch:
    """Target matching by an evosax algorithm (``api.Search``)."""

    def __init__(
        self,
        settings: ESConfig,
        template: DenseNet,
        target: jax.Array,
        mask: DenseNet | None = None,
        rungs=ladders.DEFAULT_RUNGS,
        fitness_target: jax.Array | None = None,
    ):
        self.settings = settings
        self.template = template
        self.target = jnp.asarray(target)
        self.resolution = int(self.target.shape[0])
        self.fitness_target = self.target if fitness_target is None else jnp.asarray(fitness_target)
        self.rungs = tuple(rungs)
        self.index = None if mask is None else jnp.asarray(np.flatnonzero(mask.host_flat()), jnp.int32)
        dims = template.arch.n_weights if self.index is None else int(self.index.shape[0])
        if dims < 1:
            raise ConfigError("settings.mask_from: the mask keeps no weight to search")
        self.algo, self.params = build_algorithm(settings, dims)
        self.init = jax.jit(self._init)
        self.step = jax.jit(self._step)
        self.steps = fused(self._step)

    def weights(self, x: jax.Array) -> jax.Array:
        """Full flat weights of searched vectors ``x (..., dims)``: masked weights are 0."""
        if self.index is None:
            return x
        return jnp.zeros(x.shape[:-1] + (self.template.arch.n_weights,), x.dtype).at[..., self.index].set(x)

    def mse(self, x: jax.Array) -> jax.Array:
        """MSE to the target of each row of ``x (P, dims)`` (searched weights), at the run's resolution."""
        return mse(render(self.template.with_flat(self.weights(x)), self.resolution).rgb, self.target)

    def fitness(self, x: jax.Array) -> jax.Array:
        """What the algorithm minimises: the MSE of each row of ``x (P, dims)`` at ``fitness_resolution``."""
        if self.fitness_target is self.target:
            return self.mse(x)
        size = int(self.fitness_target.shape[0])
        return mse(render(self.template.with_flat(self.weights(x)), size).rgb, self.fitness_target)

    def _init(self, key):
        k_net, k_algo, k_run = jax.random.split(key, 3)
        mean = init_net(self.template.arch, k_net).flat()
        if self.index is not None:
            mean = mean[self.index]
        algo = algorithm_init(self.algo, self.params, k_algo, mean, self.settings.std, self.fitness)
        return ESState(algo, k_run, ladders.init(self.rungs, self.weights(mean)))

    def _step(self, state: ESState):
        key, k_ask, k_tell = jax.random.split(state.key, 3)
        population, algo_state = self.algo.ask(k_ask, state.algo, self.params)
        fitness = self.fitness(population)
        algo_state, _ = self.algo.tell(k_tell, population, fitness, algo_state, self.params)
        algo_state = _strong(algo_state)  # tell returns some leaves weakly typed (Open_ES: std)
        evaluations = algo_state.generation_counter * self.settings.population_size + initial_evaluations(self.algo)
        best = jnp.argmin(fitness)
        coarse = self.fitness_target is not self.target
        best_loss = self.mse(population[best][None])[0] if coarse else fitness[best]
        stats = {
            "best_fitness": -jnp.min(fitness),
            "mean_fitness": -jnp.mean(fitness),
            "loss": self.mse(algo_state.best_solution[None])[0] if coarse else algo_state.best_fitness,
            "centre_loss": self.mse(centre(self.algo, algo_state)[None])[0],
            "evaluations": evaluations,
        }
        ladder = ladders.update(
            state.ladder, best_loss, self.weights(population[best]), algo_state.generation_counter - 1, evaluations
        )
        return ESState(algo_state, key, ladder), stats

    def result(self, state: ESState) -> Result:
        """``best`` (best individual ever seen), for distribution-based algorithms ``mean``, and
        ``rung_<value>``: the generation's best individual at each rung reached."""
        flats = {"best": self.weights(state.algo.best_solution)}
        if not is_population_based(self.algo):
            flats["mean"] = self.weights(state.algo.mean)
        flats |= {name: ladders.snapshot(state.ladder, i) for name, i in ladders.reached(state.ladder)}
        rgb = batch_rgb(self.template.with_flat(jnp.stack(list(flats.values()))), self.resolution)
        images = dict(zip(flats, rgb))
        return Result(
            {name: self.template.with_flat(f) for name, f in flats.items()},
            images,
            losses=image_losses(images, self.target),
        )

    def tables(self, state: ESState) -> dict:
        """``ladder``: the rungs (``ferlab.search.ladder.table``)."""
        return {"ladder": ladders.table(state.ladder)}

    # Island model (ferlab.workers.islands): the best individual migrates, as searched weights.
    def join_islands(self, state: ESState, index: int, count: int) -> ESState:
        """Nothing to set up: an island differs from the others by its key only."""
        return state

    def emigrant(self, state: ESState):
        """The best individual ``(weights, fitness)``."""
        return state.algo.best_solution, state.algo.best_fitness

    def immigrate(self, state: ESState, weights, fitness) -> ESState:
        """Take a migrant in where it is better: it becomes the best so far if it beats it, and the
        mean moves to it then; population-based algorithms put it in the worst member's place if it
        beats that member, and PSO in the worst personal best's too (the personal bests steer the
        swarm: a member's position moves on before it is scored)."""
        algo = state.algo
        better = fitness < algo.best_fitness
        changes = {
            "best_solution": jnp.where(better, weights, algo.best_solution),
            "best_fitness": jnp.minimum(fitness, algo.best_fitness),
        }
        if hasattr(algo, "mean"):
            changes["mean"] = jnp.where(better, weights, algo.mean)
        elif hasattr(algo, "population"):
            changes["population"], changes["fitness"] = _replace_worst(algo.population, algo.fitness, weights, fitness)
            if hasattr(algo, "population_best"):
                changes["population_best"], changes["fitness_best"] = _replace_worst(
                    algo.population_best, algo.fitness_best, weights, fitness
                )
        return state.replace(algo=algo.replace(**changes))


def _replace_worst(rows: jax.Array, fitness: jax.Array, row: jax.Array, value: jax.Array):
    """``(rows, fitness)`` with ``row`` in the worst (highest-fitness) row's place if ``value`` beats it."""
    worst = jnp.argmax(fitness)
    take = value < fitness[worst]
    return rows.at[worst].set(jnp.where(take, row, rows[worst])), fitness.at[worst].set(
        jnp.where(take, value, fitness[worst])
    )


def make_es(run_config, settings: ESConfig) -> ESSearch:
    arch = load_arch(run_config.arch)
    target = load_target(run_config.target, run_config.resolution)
    mask = None
    if settings.mask_from is not None:
        from ferlab.search.sgd import mask_of

        mask = mask_of(settings.mask_from, arch)
    coarse = None
    if settings.fitness_resolution is not None and settings.fitness_resolution != run_config.resolution:
        coarse = load_target(run_config.target, settings.fitness_resolution)
    return ESSearch(settings, init_net(arch, jax.random.PRNGKey(0)), target, mask, run_config.ladder, coarse)


REGIME = Regime(
    name="es",
    config=ESConfig,
    make=make_es,
    population=("population_size",),
    smallest={
        "target": "picbreeder:skull",
        "resolution": 8,
        "arch": "2;sin:3,gaussian:3",
        "generations": 3,
        "checkpoint_every": 1,
        "settings": {"population_size": 8},
    },
)
