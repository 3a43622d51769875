"""The one run interface every search regime implements, shaped like evosax.

A regime is an object with three methods over an immutable state pytree:

- ``init(key) -> state``: the starting state, all randomness derived from ``key``
  (store raw ``jax.random.PRNGKey`` keys in the state so it can be checkpointed);
- ``step(state) -> (state, stats)``: one generation (for SGD: a fixed chunk of
  steps), jitted by the regime; ``stats`` maps names (``best_fitness``,
  ``mean_fitness``, ``novelty``, ``archive_size``...) to scalars. Every regime
  with a target also reports ``loss``: an MSE to the target (lower is better),
  the one measure of fit that studies compare across regimes whatever each
  regime's own fitness sign. It is per run, not per net: SGD's mean over its
  seeds, ES's best individual so far, NEAT's and NSR's best of the generation;
- ``result(state) -> Result``: the final networks.

``run_search`` drives any regime for N generations, reporting each
generation's statistics to a callback and checkpointing so that a stopped run
resumes where it stopped and ends exactly as an uninterrupted one would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import jax
import numpy as np

from ferlab.cppn import DenseNet
from ferlab.genome import Genome
from ferlab.search.checkpoint import load_checkpoint, save_checkpoint

State = Any
Stats = dict[str, float]


class Search(Protocol):
    def init(self, key: jax.Array) -> State: ...

    def step(self, state: State) -> tuple[State, dict[str, jax.Array]]: ...

    def result(self, state: State) -> "Result": ...


@dataclass(frozen=True)
class Result:
    """Named final networks of a run (``best``, ``mean``, ``seed_3``, ``archive_017``...).

    ``images[name]`` is the RGB render of ``nets[name]`` at the run's resolution;
    ``genomes[name]``, for NEAT, is the genome behind the net of that name.
    """

    nets: dict[str, DenseNet]
    images: dict[str, np.ndarray]
    genomes: dict[str, Genome] = field(default_factory=dict)


@dataclass
class Outcome:
    state: State
    history: list[Stats]
    resumed_from: int = 0


def run_search(search: Search, key: jax.Array, generations: int, *,
               callback: Callable[[int, Stats], None] | None = None,
               checkpoint: str | Path | None = None, checkpoint_every: int = 0,
               stop_after: int | None = None) -> Outcome:
    """Run ``generations`` generations, resuming from ``checkpoint`` if it exists.

    ``callback(generation, stats)`` sees every generation once (after a resume,
    only the new ones). ``stats`` gains ``generation`` and ``wall_time`` (s).
    The checkpoint is written every ``checkpoint_every`` generations and at the
    end. ``stop_after`` ends early after that many generations of this call (to
    simulate an interruption in tests and for time-sliced workers).
    """
    state = search.init(key)
    history: list[Stats] = []
    start = 0
    if checkpoint is not None and Path(checkpoint).exists():
        state, start, history = load_checkpoint(checkpoint, state)
    done_here = 0
    for gen in range(start, generations):
        t0 = time.perf_counter()
        state, raw = search.step(state)
        stats = {k: float(v) for k, v in raw.items()}
        stats["generation"] = gen
        stats["wall_time"] = time.perf_counter() - t0
        history.append(stats)
        if callback is not None:
            callback(gen, stats)
        done_here += 1
        last = gen + 1 == generations or (stop_after is not None and done_here >= stop_after)
        if checkpoint is not None and (last or (checkpoint_every and (gen + 1) % checkpoint_every == 0)):
            save_checkpoint(checkpoint, state, gen + 1, history)
        if last:
            break
    return Outcome(state, history, start)
