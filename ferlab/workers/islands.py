"""The island model: N Ray actors each evolve a share of the population, swapping their best.

For a population larger than one device holds, each island is its own run
(its own key, its share of the population in the regime's settings) on its
own actor; every ``migrate_every`` generations island ``i`` receives the best
of island ``i - 1`` (a ring). A regime takes part by being ``api.Migrating``
(``join_islands`` once after init, ``emigrant``, ``immigrate``; lower migrant
fitness is better). ``history.csv`` shows each migration on the receiving
island's row of the generation it followed: ``migrant_from`` (the sender) and
``migrant_fitness`` (the migrant's, lower is better, as the regime ranks it).
What the receiver does with it is its regime's ``immigrate``: ES takes it only
where it is better, NEAT puts it in its worst genome's place, MAP-Elites offers
it to its grid.

ES (``ESSearch``): distribution-based algorithms move their mean to a better
migrant, population-based ones replace their worst member. Payloads travel as
numpy pytrees (NEAT: one tensor genome; ES: flat weights).

Novelty runs share one ``NoveltyArchive`` actor. A Search that is
``api.ArchiveSharing`` exchanges
*descriptors plus payload* (``{"descriptors": (n, D), "payload": pytree (n,
...)}``, oldest first): at each migration every island's archive is merged into it in island order,
then every island replaces its own with the union (newest ``capacity``), so
all islands score novelty against the same archive and each island's result
holds the whole union archive (its networks, not just their descriptors).
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ferlab.search.api import ArchiveSharing, Migrating, Result, Search, Stats, advance
from ferlab.workers.run import actor_options


class Island:
    """Island ``index`` of ``count``: a Search, its state and its evaluation count (run inside a Ray actor)."""

    def __init__(
        self, make_search: Callable[[], Search], key: jax.Array, population: int, index: int = 0, count: int = 1
    ):
        self.search = make_search()
        self.state = self.search.init(key)
        # e.g. novelty over weights does not migrate: its islands are coupled through the shared archive only
        self.migrates = isinstance(self.search, Migrating)
        if self.migrates:
            self.state = self.search.join_islands(self.state, index, count)
        self.population = population
        self.evaluations = 0

    def step(self, n: int) -> list[Stats]:
        """``n`` generations (fused into compiled chunks where the regime has ``steps``)."""
        self.state, out = advance(self.search, self.state, n)
        self.evaluations += n * self.population
        return out

    def emigrant(self):
        if not self.migrates:
            return None
        payload, fitness = self.search.emigrant(self.state)
        return jax.tree.map(np.asarray, payload), float(fitness)

    def immigrate(self, migrant) -> bool:
        if not self.migrates or migrant is None:
            return False
        payload, fitness = migrant
        self.state = self.search.immigrate(self.state, jax.tree.map(jnp.asarray, payload), jnp.asarray(fitness))
        return True

    @property
    def shares_archive(self) -> bool:
        return isinstance(self.search, ArchiveSharing)

    def entries(self):
        """This island's archive entries (oldest first), or None when it shares no archive."""
        return self.search.archive_entries(self.state) if self.shares_archive else None

    def adopt(self, entries) -> int:
        """Score novelty against ``entries`` (the shared union) from now on."""
        if not self.shares_archive or entries is None:
            return 0
        self.state = self.search.with_archive(self.state, entries)
        return len(entries["descriptors"])

    def result(self):
        return self.search.result(self.state)

    def count(self) -> int:
        return self.evaluations


class NoveltyArchive:
    """The shared novelty archive of an island run: the newest ``capacity`` distinct entries
    (``{"descriptors": (n, D), "payload": pytree}``, oldest first; equal descriptors kept once)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.entries: dict | None = None

    def merge(self, entries: dict) -> int:
        both = (
            entries
            if self.entries is None
            else jax.tree.map(lambda a, b: np.concatenate([a, b]), self.entries, entries)
        )
        _, first = np.unique(np.asarray(both["descriptors"]).round(6), axis=0, return_index=True)
        keep = np.sort(first)[-self.capacity :]
        self.entries = jax.tree.map(lambda a: np.asarray(a)[keep], both)
        return len(keep)

    def union(self) -> dict | None:
        return self.entries


@dataclass
class IslandRun:
    results: list[Result]
    history: list[list[Stats]]  # per generation, each island's stats
    evaluations: int
    migrations: int
    steady_evaluations: int  # after the first slice (which includes compilation)
    steady_seconds: float
    archive_prefix: str | None = None  # names of the shared archive's nets, when the islands share one

    def rows(self) -> list[Stats]:
        """Every island's stats of every generation, one row each (for ``history.csv``)."""
        return [row for generation in self.history for row in generation]

    def merged(self) -> Result:
        """One Result: the island with the lowest final ``loss`` (else island 0) gives its nets under
        their own names, every other island its non-archive nets as ``island<i>_<name>``; with a
        shared archive, its entries come once (every island holds the same union)."""
        final = self.history[-1] if self.history else []
        losses = [s.get("loss", np.inf) for s in final]
        first = int(np.argmin(losses)) if losses and np.isfinite(min(losses)) else 0
        nets, images, genomes = {}, {}, {}
        for i in [first] + [k for k in range(len(self.results)) if k != first]:
            r = self.results[i]
            for name in r.nets:
                if i != first and self.archive_prefix and name.startswith(self.archive_prefix):
                    continue
                new = name if i == first else f"island{i}_{name}"
                nets[new], images[new] = r.nets[name], r.images[name]
                if name in r.genomes:
                    genomes[new] = r.genomes[name]
        return Result(nets, images, genomes)


def island_search(data: dict) -> Search:
    """A Search from a ``ferlab.search.runs`` config (module-level, so actors can unpickle it)."""
    from ferlab.search.runs import load_run_config, make_search

    return make_search(load_run_config(data))


def run_islands(
    make_search: Callable[[], Search],
    key: jax.Array,
    islands: int,
    generations: int,
    population: int,
    migrate_every: int = 10,
    cpus: float = 1,
    gpus: float = 0,
    archive_capacity: int = 0,
    archive_prefix: str | None = None,
    progress: Callable[[int, list[list[Stats]]], None] | None = None,
) -> IslandRun:
    """Evolve ``islands`` populations (``population`` each) for ``generations``, migrating in a ring.

    ``make_search()`` builds one island's Search (its settings holding its share
    of the population); it runs inside each actor, so it must be picklable.
    With ``archive_capacity`` > 0 the islands share one novelty archive of that
    size (exchanged at each migration and once more at the end).
    ``progress(done, history)`` is called after every slice.
    """
    import ray

    Actor = ray.remote(Island).options(**actor_options(cpus, gpus))
    keys = jax.random.split(key, islands)
    actors = [Actor.remote(make_search, k, population, i, islands) for i, k in enumerate(keys)]
    archive = ray.remote(NoveltyArchive).remote(archive_capacity) if archive_capacity else None
    history: list[list[Stats]] = [[] for _ in range(generations)]
    done = migrations = 0
    t0 = None
    try:
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
                for i, row in enumerate(history[done - 1]):  # one row per island, in island order
                    if moved[i]:
                        row.update(migrant_from=(i - 1) % islands, migrant_fitness=migrants[i - 1][1])
            if archive is not None and islands > 1:
                # merged in island order (one caller's calls run in order), so runs repeat
                for entries in ray.get([a.entries.remote() for a in actors]):
                    if entries is not None:
                        archive.merge.remote(entries)
                union = archive.union.remote()
                ray.get([a.adopt.remote(union) for a in actors])
            if progress is not None:
                progress(done, history)
        seconds = time.perf_counter() - t0 if t0 is not None else 0.0
        steady = (generations - first) * population * islands if t0 is not None else 0
        results = ray.get([a.result.remote() for a in actors])
        evaluations = sum(ray.get([a.count.remote() for a in actors]))
    finally:
        for a in actors + ([archive] if archive is not None else []):
            ray.kill(a)
    shared = archive is not None and islands > 1
    return IslandRun(
        results, history, evaluations, migrations, steady, seconds, archive_prefix=archive_prefix if shared else None
    )


def run_island_config(
    config, out_dir: str | Path | None = None, *, address: str | None = None, progress: bool = True
) -> tuple[Result, list[Stats]]:
    """Run a ``ferlab.search.runs`` config that has an ``islands`` section through ``runs.run``
    (the same folder, config and outputs as any run): the merged result (``IslandRun.merged``)
    and every island's history.

    Works in the Ray already started in this process, else joins the cluster at ``address``, else
    starts a local one (shut down at the end) with at least one CPU per island (``ray_session``).
    """
    from ferlab.search.runs import island_config, run
    from ferlab.workers.cluster import check_reachable

    island_config(config)  # a population that does not split fails before anything is written
    check_reachable(address)  # and so does a cluster that does not answer
    return run(config, out_dir, progress=progress, execute=functools.partial(_execute, address=address))


def _execute(config, report: Callable[[int, Stats], None], *, address: str | None) -> tuple[Result, list[Stats]]:
    """``runs.Executor`` for island runs: start or join Ray, check its resources, evolve the islands."""
    from ferlab.config import to_dict
    from ferlab.search.runs import declaration, island_config, population_size, shared_archive
    from ferlab.search.targets import absolute_specs
    from ferlab.workers.cluster import check_fits, ray_session

    isl, one = config.islands, island_config(config)
    local = {} if address else {"num_cpus": max(os.cpu_count() or 1, math.ceil(isl.count * isl.cpus))}
    with ray_session(address, isl.gpus, include_dashboard=False, logging_level="ERROR", **local):
        check_fits({"CPU": isl.cpus, "GPU": isl.gpus}, f"islands: {isl.count} islands", address, isl.count)
        make = functools.partial(island_search, absolute_specs(to_dict(one), os.getcwd()))
        reported = 0

        def progress(done: int, history: list[list[Stats]]) -> None:
            nonlocal reported
            for g in range(reported, done):
                losses = [s["loss"] for s in history[g] if "loss" in s]
                report(g, {"loss": min(losses)} if losses else {})
            reported = done

        outcome = run_islands(
            make,
            jax.random.PRNGKey(config.seed),
            isl.count,
            config.n_generations,
            population_size(one),
            migrate_every=isl.migrate_every,
            cpus=isl.cpus,
            gpus=isl.gpus,
            archive_capacity=shared_archive(config),
            archive_prefix=declaration(config).archive_prefix,
            progress=progress,
        )
    return outcome.merged(), outcome.rows()
