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
from typing import Any, Protocol

import jax
import jax.numpy as jnp
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

    # optional: steps(state, n, k) -> (state, stats stacked (k, ...)); see fused_loop


def fused_loop(step: Callable[[State], tuple[State, dict[str, jax.Array]]], state: State, n, k: int):
    """``n`` generations of ``step`` in a loop (to be jitted with ``k`` static): ``(state, stats)``,
    each stat stacked along a leading axis of length ``k`` whose first ``n`` rows are filled.

    ``n`` is traced, so every chunk length up to ``k`` runs the same executable
    and a generation computes the same bits however the run is cut into chunks.
    """
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
    """

    nets: dict[str, DenseNet]
    images: dict[str, np.ndarray]
    genomes: dict[str, Genome] = field(default_factory=dict)


FUSE = 10  # generations per compiled call for regimes with ``steps``


@dataclass
class Outcome:
    state: State
    history: list[Stats]
    resumed_from: int = 0


def run_search(search: Search, key: jax.Array, generations: int, *,
               callback: Callable[[int, Stats], None] | None = None,
               checkpoint: str | Path | None = None, checkpoint_every: int = 0,
               stop_after: int | None = None, fuse: int = FUSE) -> Outcome:
    """Run ``generations`` generations, resuming from ``checkpoint`` if it exists.

    ``callback(generation, stats)`` sees every generation once (after a resume,
    only the new ones). ``stats`` gains ``generation`` and ``wall_time`` (s;
    in a fused chunk, the chunk's time shared equally). The checkpoint is
    written every ``checkpoint_every`` generations and at the end.
    ``stop_after`` ends early after that many generations of this call (to
    simulate an interruption in tests and for time-sliced workers).

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
    steps = getattr(search, "steps", None) if fuse > 1 else None
    end = generations if stop_after is None else min(generations, start + stop_after)
    gen = start
    while gen < end:
        stop = min(end, gen + fuse if steps is not None else gen + 1)
        if checkpoint is not None and checkpoint_every:
            stop = min(stop, (gen // checkpoint_every + 1) * checkpoint_every)
        t0 = time.perf_counter()
        if steps is None:
            state, raw = search.step(state)
            rows = [jax.device_get(raw)]
        else:
            state, raw = steps(state, stop - gen, fuse)
            raw = jax.device_get(raw)
            rows = [{k: v[i] for k, v in raw.items()} for i in range(stop - gen)]
        wall = (time.perf_counter() - t0) / len(rows)
        for row in rows:
            stats = {k: float(v) for k, v in row.items()}
            stats["generation"] = gen
            stats["wall_time"] = wall
            history.append(stats)
            if callback is not None:
                callback(gen, stats)
            gen += 1
        if checkpoint is not None and (gen == end or (checkpoint_every and gen % checkpoint_every == 0)):
            save_checkpoint(checkpoint, state, gen, history)
    return Outcome(state, history, start)
