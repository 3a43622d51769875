"""The island model: N Ray actors each evolve a share of the population, swapping their best.

For a population larger than one device holds, each island is its own run
(its own key, its share of the population in the regime's settings) on its
own actor; every ``migrate_every`` generations island ``i`` receives the best
of island ``i - 1`` (a ring). A regime takes part in migration through two
optional methods on its Search::

    emigrant(state) -> (weights, fitness)        # its best individual
    immigrate(state, weights, fitness) -> state  # take one in (lower fitness is better)

evosax-based regimes (ES) get them from ``es_emigrant``/``es_immigrate``:
distribution-based algorithms move their mean to a better migrant,
population-based ones replace their worst member. Novelty runs share one
``NoveltyArchive`` actor: islands whose Search has ``archive_entries(state)``
and ``with_archive(state, entries)`` publish their new entries to it and read
the union back at each migration.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ferlab.search.api import Search, Stats
from ferlab.workers.run import actor_options


def es_emigrant(state):
    """The best individual of an ES state ``(weights, fitness)``."""
    return state.algo.best_solution, state.algo.best_fitness


def es_immigrate(state, weights, fitness):
    """Take a migrant into an ES state if it beats the island's best."""
    algo = state.algo
    better = fitness < algo.best_fitness
    changes = {"best_solution": jnp.where(better, weights, algo.best_solution),
               "best_fitness": jnp.minimum(fitness, algo.best_fitness)}
    if hasattr(algo, "mean"):
        changes["mean"] = jnp.where(better, weights, algo.mean)
    elif hasattr(algo, "population"):
        worst = jnp.argmax(algo.fitness)
        changes["population"] = algo.population.at[worst].set(weights)
        changes["fitness"] = algo.fitness.at[worst].set(fitness)
    return state.replace(algo=algo.replace(**changes))


def _migration(search):
    if hasattr(search, "emigrant") and hasattr(search, "immigrate"):
        return search.emigrant, search.immigrate
    if hasattr(search, "algo") and hasattr(search, "template"):  # ferlab.search.es.ESSearch
        return es_emigrant, es_immigrate
    return None


class Island:
    """One island: a Search, its state and its evaluation count (run inside a Ray actor)."""

    def __init__(self, make_search: Callable[[], Search], key: jax.Array, population: int):
        self.search = make_search()
        self.state = self.search.init(key)
        self.population = population
        self.evaluations = 0
        self.migration = _migration(self.search)

    def step(self, n: int) -> list[Stats]:
        out = []
        for _ in range(n):
            self.state, raw = self.search.step(self.state)
            out.append({k: float(v) for k, v in raw.items()})
        self.evaluations += n * self.population
        return out

    def emigrant(self):
        if self.migration is None:
            return None
        weights, fitness = self.migration[0](self.state)
        return np.asarray(weights), float(fitness)

    def immigrate(self, migrant) -> bool:
        if self.migration is None or migrant is None:
            return False
        self.state = self.migration[1](self.state, jnp.asarray(migrant[0]), jnp.asarray(migrant[1]))
        return True

    def exchange_archive(self, archive) -> int:
        """Publish this island's archive entries to the shared actor and take the union back."""
        import ray

        if not (hasattr(self.search, "archive_entries") and hasattr(self.search, "with_archive")):
            return 0
        entries = ray.get(archive.merge.remote(np.asarray(self.search.archive_entries(self.state))))
        self.state = self.search.with_archive(self.state, jnp.asarray(entries))
        return len(entries)

    def result(self):
        return self.search.result(self.state)

    def count(self) -> int:
        return self.evaluations


class NoveltyArchive:
    """The shared novelty archive of an island run: a capped set of behaviour descriptors."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.entries: np.ndarray | None = None

    def merge(self, entries: np.ndarray) -> np.ndarray:
        entries = np.asarray(entries)
        both = entries if self.entries is None else np.concatenate([self.entries, entries])
        _, first = np.unique(both.round(6), axis=0, return_index=True)
        self.entries = both[np.sort(first)][-self.capacity:]
        return self.entries


@dataclass
class IslandRun:
    results: list
    history: list[list[Stats]]  # per generation, each island's stats
    evaluations: int
    migrations: int
    steady_evaluations: int  # after the first slice (which includes compilation)
    steady_seconds: float


def island_search(data: dict) -> Search:
    """A Search from a ``ferlab.search.runs`` config (module-level, so actors can unpickle it)."""
    from ferlab.search.runs import load_run_config, make_search

    return make_search(load_run_config(data))


def run_islands(make_search: Callable[[], Search], key: jax.Array, islands: int, generations: int,
                population: int, migrate_every: int = 10, cpus: float = 1, gpus: float = 0,
                archive_capacity: int = 0) -> IslandRun:
    """Evolve ``islands`` populations (``population`` each) for ``generations``, migrating in a ring.

    ``make_search()`` builds one island's Search (its settings holding its share
    of the population); it runs inside each actor, so it must be picklable.
    """
    import ray

    Actor = ray.remote(Island).options(**actor_options(cpus, gpus))
    keys = jax.random.split(key, islands)
    actors = [Actor.remote(make_search, k, population) for k in keys]
    archive = ray.remote(NoveltyArchive).remote(archive_capacity) if archive_capacity else None
    history: list[list[Stats]] = [[] for _ in range(generations)]
    done = migrations = 0
    t0 = None
    while done < generations:
        if done and t0 is None:
            t0, first = time.perf_counter(), done
        n = min(migrate_every or generations, generations - done)
        for i, stats in enumerate(ray.get([a.step.remote(n) for a in actors])):
            for g, s in enumerate(stats):
                history[done + g].append({**s, "island": i, "generation": done + g})
        done += n
        if done < generations and islands > 1:
            migrants = ray.get([a.emigrant.remote() for a in actors])
            moved = ray.get([a.immigrate.remote(migrants[i - 1]) for i, a in enumerate(actors)])
            migrations += int(any(moved))
            if archive is not None:
                for a in actors:  # in turn, so every island sees the entries published before it
                    ray.get(a.exchange_archive.remote(archive))
    seconds = time.perf_counter() - t0 if t0 is not None else 0.0
    steady = (generations - first) * population * islands if t0 is not None else 0
    results = ray.get([a.result.remote() for a in actors])
    evaluations = sum(ray.get([a.count.remote() for a in actors]))
    for a in actors:
        ray.kill(a)
    if archive is not None:
        ray.kill(archive)
    return IslandRun(results, history, evaluations, migrations, steady, seconds)
