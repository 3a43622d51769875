"""The loss ladder: a snapshot of a run's best net the first time its loss reaches each rung.

Regimes that match a target keep a ``Ladder`` in their state (so checkpoints
carry it and a resumed run keeps the rungs it reached). Each generation they
call ``update`` with the generation's best loss and that individual (any
pytree: a dense net, flat weights, a tensor genome); SGD calls it at every
step, since one of its generations (hundreds of steps) can pass several rungs,
and a snapshot taken past the next finer rung is not a net at its own rung's
fit (``ferlab.report.fit.rung_snapshots``). Every rung not yet reached
whose value the loss is at or below takes that snapshot, with the generation
(the history's index, for wall time) and the evaluations so far. The loss of a
snapshot is the loss of the net it holds, so snapshots have non-increasing
losses down the ladder, each at or below its rung.

Snapshots leave a run as nets named ``rung_<value>`` (``rung_name``), so that
studies compare regimes at equal fit: every rung one regime shares with
another is a pair of nets painting the same image equally well.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

DEFAULT_RUNGS = (0.08, 0.05, 0.03, 0.02, 0.01, 0.005, 0.002, 0.001)
RUNG_PREFIX = "rung_"


def check_rungs(rungs: Sequence[float]) -> tuple[float, ...]:
    """The rungs as a tuple; ValueError unless finite, positive and strictly decreasing."""
    values = tuple(float(r) for r in rungs)
    if not all(math.isfinite(r) and r > 0 for r in values):
        raise ValueError(f"ladder rungs must be finite and positive, got {list(values)}")
    if any(b >= a for a, b in zip(values, values[1:])):
        raise ValueError(f"ladder rungs must be strictly decreasing, got {list(values)}")
    return values


def rung_name(rung: float) -> str:
    """The net name of a rung's snapshot: ``rung_0.010`` (more digits when 3 decimals do not say it).

    Rungs held as float32 in a state name the same as the configured value."""
    rung = _decimal(rung)
    text = f"{rung:.3f}"
    return RUNG_PREFIX + (text if float(text) == rung else f"{rung:.6g}")


def _decimal(value: float) -> float:
    """A float32 rung as the decimal it was configured as (7 significant digits)."""
    return float(f"{float(value):.7g}")


def rung_of(name: str) -> float:
    """The rung a net name stands for (NaN when it is not a rung snapshot)."""
    if not name.startswith(RUNG_PREFIX):
        return math.nan
    try:
        return float(name[len(RUNG_PREFIX) :])
    except ValueError:
        return math.nan


@struct.dataclass
class Ladder:
    """Rungs ``(R,)`` and, per rung, whether it was reached, the snapshot's loss,
    its payload (leading axis R), the generation and the evaluations when reached."""

    rungs: jax.Array
    reached: jax.Array
    loss: jax.Array
    payload: Any
    generation: jax.Array
    evaluations: jax.Array


def init(rungs: Sequence[float], payload: Any) -> Ladder:
    """An empty ladder whose snapshots are shaped like ``payload`` (one individual)."""
    r = len(rungs)
    return Ladder(
        rungs=jnp.asarray(rungs, jnp.float32),
        reached=jnp.zeros(r, bool),
        loss=jnp.full(r, jnp.inf, jnp.float32),
        payload=jax.tree.map(lambda a: jnp.zeros((r,) + jnp.shape(a), jnp.result_type(a)), payload),
        generation=jnp.full(r, -1, jnp.int32),
        evaluations=jnp.zeros(r, jnp.float32),
    )


def update(ladder: Ladder, loss, payload: Any, generation, evaluations) -> Ladder:
    """Every rung not yet reached that ``loss`` is at or below takes ``payload`` (jittable)."""
    loss = jnp.asarray(loss, jnp.float32)
    new = ~ladder.reached & (loss <= ladder.rungs) & jnp.isfinite(loss)

    def put(old, value):
        return jnp.where(new.reshape((-1,) + (1,) * (old.ndim - 1)), jnp.asarray(value, old.dtype)[None], old)

    return Ladder(
        rungs=ladder.rungs,
        reached=ladder.reached | new,
        loss=jnp.where(new, loss, ladder.loss),
        payload=jax.tree.map(put, ladder.payload, payload),
        generation=jnp.where(new, jnp.asarray(generation, jnp.int32), ladder.generation),
        evaluations=jnp.where(new, jnp.asarray(evaluations, jnp.float32), ladder.evaluations),
    )


def reached(ladder: Ladder) -> list[tuple[str, int]]:
    """``(net name, rung index)`` of every reached rung, highest rung first."""
    hit = np.asarray(ladder.reached)
    return [(rung_name(float(r)), i) for i, r in enumerate(np.asarray(ladder.rungs)) if hit[i]]


def snapshot(ladder: Ladder, index: int) -> Any:
    """The payload kept at rung ``index``."""
    return jax.tree.map(lambda a: a[index], ladder.payload)


def table(ladder: Ladder) -> dict[str, np.ndarray]:
    """Per rung: its value, net name, whether reached, the snapshot's loss, generation and evaluations."""
    rungs = [_decimal(r) for r in np.asarray(ladder.rungs)]
    return {
        "rung": np.asarray(rungs),
        "net": np.array([rung_name(float(r)) for r in rungs], dtype=object),
        "reached": np.asarray(ladder.reached),
        "loss": np.asarray(ladder.loss, dtype=float),
        "generation": np.asarray(ladder.generation),
        "evaluations": np.asarray(ladder.evaluations, dtype=float),
    }


def wall_times(generations, history: list[dict]) -> np.ndarray:
    """Cumulative wall time (s) at the end of each generation in ``generations`` (NaN for -1 or unknown)."""
    cumulative = np.cumsum([float(h.get("wall_time", np.nan)) for h in history]) if history else np.zeros(0)
    index = {int(h.get("generation", i)): i for i, h in enumerate(history)}
    return np.array([cumulative[index[int(g)]] if int(g) in index else np.nan for g in generations], dtype=float)
