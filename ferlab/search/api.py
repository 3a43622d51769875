"""The contract every search regime keeps, shaped like evosax.

A regime is one module in ``ferlab/search/`` that declares itself with a
module-level ``REGIME = Regime(...)`` (its name is the module's name): a frozen
settings dataclass, a factory ``make(run_config, settings) -> Search``, and
what the platform needs to know about it (where its population size sits, the
net-name prefix of its archive, the smallest run that exercises it).
``ferlab.search.registry`` finds every declaration; nothing else lists regimes,
so a new regime is one new file, and the registry-wide tests cover it.

A ``Search`` has three methods over an immutable state pytree:

- ``init(key) -> state``: the starting state, all randomness derived from ``key``
  (store raw ``jax.random.PRNGKey`` keys in the state so it can be checkpointed);
- ``step(state) -> (state, stats)``: one generation (for SGD: a fixed chunk of
  steps), jitted by the regime; ``stats`` maps names (``best_fitness``,
  ``mean_fitness``, ``novelty``, ``archive_size``...) to scalars. Every regime
  reports ``evaluations``: the cumulative count of net evaluations (images
  painted and scored, or SGD seed-steps), the common x-axis across regimes.
  Every regime with a target also reports ``loss``: an MSE to the target (lower
  is better), the one measure of fit that studies compare across regimes. Fitness
  has one sign everywhere: ``best_fitness``/``mean_fitness`` are higher-is-better
  (for target matching, -MSE);
- ``result(state) -> Result``: the final networks.

Optional capabilities are the Protocols below (``Fused``, ``Tabular``, ``Migrating``,
``ArchiveSharing``); islands and runs test for them with ``isinstance``.

A regime may also have ``steps(state, n, k) -> (state, stats)``: ``n <= k``
generations in one compiled call (``fused(step)`` builds it from ``step``), each stat
stacked along a leading axis of length ``k`` whose first ``n`` rows are the
generations'. ``run_search`` then runs up to ``k`` generations per call
instead of returning to Python every generation.

``run_search`` drives any regime for N generations, reporting each
generation's statistics to a callback and checkpointing so that a stopped run
resumes where it stopped and ends exactly as an uninterrupted one would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from ferlab.cppn import DenseNet
from ferlab.genome import Genome
from ferlab.search.checkpoint import load_checkpoint, save_checkpoint

State = Any
Stats = dict[str, float]


class Search(Protocol):
    """What every regime's factory returns."""

    def init(self, key: jax.Array) -> State: ...

    def step(self, state: State) -> tuple[State, dict[str, jax.Array]]: ...

    def result(self, state: State) -> Result: ...


@runtime_checkable
class Fused(Protocol):
    """A Search that runs ``n <= k`` generations in one compiled call (``fused(step)`` builds it):
    stats stacked along a leading axis of length ``k``, the first ``n`` rows filled."""

    def steps(self, state: State, n: int, k: int) -> tuple[State, dict[str, jax.Array]]: ...


@runtime_checkable
class Tabular(Protocol):
    """A Search with extra per-step records (SGD's per-step losses), written as ``<name>.csv``."""

    def tables(self, state: State) -> dict[str, dict[str, Any]]: ...


@runtime_checkable
class Migrating(Protocol):
    """A Search whose islands swap their best (``ferlab.workers.islands``).

    ``join_islands`` runs once after ``init`` (NEAT: its own block of innovation
    numbers); ``emigrant`` gives the best individual as any pytree with its
    fitness (lower is better); ``immigrate`` takes one in.
    """

    def join_islands(self, state: State, index: int, count: int) -> State: ...

    def emigrant(self, state: State) -> tuple[Any, jax.Array]: ...

    def immigrate(self, state: State, payload: Any, fitness: jax.Array) -> State: ...


@runtime_checkable
class ArchiveSharing(Protocol):
    """A Search whose islands score novelty against one shared archive: entries are
    ``{"descriptors": (n, D), "payload": pytree (n, ...)}``, oldest first."""

    def archive_entries(self, state: State) -> dict[str, Any]: ...

    def with_archive(self, state: State, entries: dict[str, Any]) -> State: ...


@dataclass(frozen=True)
class Regime:
    """A regime's declaration (``REGIME = Regime(...)`` in its module).

    - ``name``: what ``regime:`` says in a run config; the module's name;
    - ``config``: the frozen settings dataclass (``settings:``). It may define
      ``check(run_config)`` (cross-checks, raise ``ConfigError``) and a
      ``generations`` attribute (the natural run length when the run leaves it unset);
    - ``make(run_config, settings) -> Search``: the factory;
    - ``population``: the path in ``settings`` to the population size, for a
      regime that can be split over islands (``None``: it cannot);
    - ``archive_prefix``: names of archive nets in its ``Result`` start with this
      (``None``: it keeps no archive);
    - ``shared_archive(settings) -> int``: the capacity of the archive its
      islands share for these settings (0: none);
    - ``smallest``: the smallest run config (without ``regime``) that exercises
      it, run by the registry-wide tests.
    """

    name: str
    config: type
    make: Callable[[Any, Any], Search]
    population: tuple[str, ...] | None = None
    archive_prefix: str | None = None
    shared_archive: Callable[[Any], int] | None = None
    smallest: dict[str, Any] = field(default_factory=dict)

    def archive_capacity(self, settings: Any) -> int:
        return self.shared_archive(settings) if self.shared_archive is not None else 0


def fused_loop(step: Callable[[State], tuple[State, dict[str, jax.Array]]], state: State, n, k: int):
    """``n`` generations of ``step`` in a loop (to be jitted with ``k`` static): ``(state, stats)``,
    each stat stacked along a leading axis of length ``k`` whose first ``n`` rows are filled.

    ``n`` is traced, so every chunk length up to ``k`` runs the same executable
    and a generation computes the same bits however the run is cut into chunks.
    ``step`` is jitted here so that the stats' shapes and the loop's body share one trace (tracing
    SGD's generation on the butterfly takes about 1 s).
    """
    step = jax.jit(step)
    shapes = jax.eval_shape(step, state)[1]
    rows = jax.tree.map(lambda a: jnp.zeros((k, *a.shape), a.dtype), shapes)

    def body(i, carry):
        state, rows = carry
        state, stats = step(state)
        return state, jax.tree.map(lambda r, v: r.at[i].set(v), rows, stats)

    return jax.lax.fori_loop(0, n, body, (state, rows))


def fused(step: Callable[[State], tuple[State, dict[str, jax.Array]]]):
    """A regime's ``steps(state, n, k)`` from its ``step``: ``fused_loop`` jitted, ``k`` static."""
    return jax.jit(lambda state, n, k: fused_loop(step, state, n, k), static_argnums=2)


@dataclass(frozen=True)
class Result:
    """Named final networks of a run (``best``, ``mean``, ``seed_3``, ``archive_017``...).

    ``images[name]`` is the RGB render of ``nets[name]`` at the run's resolution;
    ``genomes[name]``, for NEAT, is the genome behind the net of that name.
    ``losses[name]`` is that net's own MSE to the run's target at the run's
    resolution, from its image (empty without a target). Regimes that match a
    target add their loss-ladder snapshots as nets ``rung_<value>``
    (``ferlab.search.ladder``).
    """

    nets: dict[str, DenseNet]
    images: dict[str, np.ndarray]
    genomes: dict[str, Genome] = field(default_factory=dict)
    losses: dict[str, float] = field(default_factory=dict)


FUSE = 10  # generations per compiled call for regimes with ``steps``


def advance(search: Search, state: State, n: int, fuse: int = FUSE) -> tuple[State, list[dict[str, float]]]:
    """``n`` generations of ``search`` from ``state``: up to ``fuse`` per compiled call where the
    regime has ``steps``, else one ``step`` per call; ``(state, each generation's stats)``."""
    rows: list[dict[str, float]] = []
    steps = search.steps if fuse > 1 and isinstance(search, Fused) else None
    while len(rows) < n:
        if steps is None:
            state, raw = search.step(state)
            rows.append({k: float(v) for k, v in jax.device_get(raw).items()})
            continue
        chunk = min(fuse, n - len(rows))
        state, raw = steps(state, chunk, fuse)
        raw = jax.device_get(raw)
        rows += [{k: float(v[i]) for k, v in raw.items()} for i in range(chunk)]
    return state, rows


@dataclass
class Outcome:
    state: State
    history: list[Stats]
    resumed_from: int = 0


def run_search(
    search: Search,
    key: jax.Array,
    generations: int,
    *,
    callback: Callable[[int, Stats], None] | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 0,
    stop_after: int | None = None,
    fuse: int = FUSE,
    on_checkpoint: Callable[[int, State], None] | None = None,
) -> Outcome:
    """Run ``generations`` generations, resuming from ``checkpoint`` if it exists.

    ``callback(generation, stats)`` sees every generation once (after a resume,
    only the new ones). ``stats`` gains ``generation`` and ``wall_time`` (s;
    in a fused chunk, the chunk's time shared equally). The checkpoint is
    written every ``checkpoint_every`` generations and at the end.
    ``stop_after`` ends early after that many generations of this call (to
    simulate an interruption in tests and for time-sliced workers).
    ``on_checkpoint(generation, state)`` is called after each checkpoint is written
    (``generation``: generations done), for pictures of a run's progress.

    Regimes with ``steps`` run up to ``fuse`` generations per compiled call;
    a chunk also ends at each checkpoint, at ``stop_after`` and at the end, so
    callbacks, checkpoints and stops fall on the same generations as unfused.
    """
    if fuse < 1:
        raise ValueError(f"fuse must be at least 1, got {fuse}")
    state = search.init(key)
    history: list[Stats] = []
    start = 0
    if checkpoint is not None and Path(checkpoint).exists():
        state, start, history = load_checkpoint(checkpoint, state)
    fused_steps = fuse > 1 and isinstance(search, Fused)
    end = generations if stop_after is None else min(generations, start + stop_after)
    gen = start
    while gen < end:
        stop = min(end, gen + fuse if fused_steps else gen + 1)
        if checkpoint is not None and checkpoint_every:
            stop = min(stop, (gen // checkpoint_every + 1) * checkpoint_every)
        t0 = time.perf_counter()
        state, rows = advance(search, state, stop - gen, fuse)
        wall = (time.perf_counter() - t0) / len(rows)
        for stats in rows:
            stats["generation"] = gen
            stats["wall_time"] = wall
            history.append(stats)
            if callback is not None:
                callback(gen, stats)
            gen += 1
        if checkpoint is not None and (gen == end or (checkpoint_every and gen % checkpoint_every == 0)):
            save_checkpoint(checkpoint, state, gen, history)
            if on_checkpoint is not None:
                on_checkpoint(gen, state)
    return Outcome(state, history, start)
