"""The novelty archive: a fixed-capacity store of behaviours that any regime can keep.

- ``novelty_scores``: the mean distance to the k nearest neighbours among the
  archive's valid entries and the rest of the population. Distances are root
  mean square differences per descriptor entry, so thresholds read in the
  descriptor's own units (grey levels in [0, 1] for ``luminance``);
- ``Archive``: descriptors and any payload pytree (flat weights, genomes...)
  with Lehman and Stanley's adaptive threshold: individuals more novel than
  the threshold are added; after ``patience`` generations without additions
  the threshold is multiplied by ``threshold_down``, and when more than
  ``add_many`` exceed it in one generation by ``threshold_up``. At most
  ``max_add`` (the most novel) are added per generation (0: no limit), so that
  one generation's near-identical samples do not crowd the archive. When full,
  the oldest entries are replaced;
- ``centred_ranks``: how a regime weighs novelty against an objective (NSR-ES,
  NEAT's ``mix``): by rank in the population, since their units are unrelated.

All of it is pure JAX over the population, jittable (``NoveltyConfig`` is
hashable and static). Archive networks are exported as ``archive_NNN``
(``ARCHIVE_PREFIX``), oldest first.

The module also holds MAP-Elites' grid archive (``GridArchive``, ``grid_*``):
one elite per cell of a binned descriptor box, exported as ``elite_NNN``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ferlab import limits
from ferlab.search.descriptors import check_descriptor

ARCHIVE_PREFIX = "archive_"


def centred_ranks(x: jax.Array) -> jax.Array:
    """Ranks of ``x`` scaled to [-0.5, 0.5] (highest value highest rank): how novelty and the
    objective are weighed against each other, their units being unrelated."""
    ranks = jnp.argsort(jnp.argsort(x))
    return ranks / jnp.maximum(x.shape[0] - 1, 1) - 0.5


def archive_name(index: int) -> str:
    """The net name of archive entry ``index`` (oldest first)."""
    return f"{ARCHIVE_PREFIX}{index:03d}"


@dataclass(frozen=True)
class NoveltyConfig:
    """Novelty measure and archive: k nearest neighbours, adaptive threshold, capacity.

    ``threshold`` is the starting threshold in descriptor units (RMS distance);
    ``patience`` generations without additions lower it by ``threshold_down``;
    more than ``add_many`` individuals above it in one generation raise it by
    ``threshold_up``; at most ``max_add`` of them (the most novel; 0: all) are
    added per generation. Descriptors are ``descriptor`` of the image rendered at
    ``descriptor_size`` x ``descriptor_size``.
    """

    k: int = 15
    threshold: float = 0.1
    threshold_down: float = 0.95
    threshold_up: float = 1.2
    patience: int = 5
    add_many: int = 4
    max_add: int = 0
    capacity: int = 500
    descriptor: str = "luminance"
    descriptor_size: int = 16
    population_neighbours: bool = True

    def __post_init__(self):
        check_descriptor(self.descriptor, self.descriptor_size)
        for name in ("k", "patience", "capacity"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("add_many", "max_add"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be at least 0, got {getattr(self, name)}")
        limits.POPULATION.check(self.capacity, "capacity", ValueError)
        if not self.threshold > 0:
            raise ValueError(f"threshold must be positive, got {self.threshold}")
        if not 0 < self.threshold_down <= 1:
            raise ValueError(f"threshold_down must be in (0, 1], got {self.threshold_down}")
        if not self.threshold_up >= 1:
            raise ValueError(f"threshold_up must be at least 1, got {self.threshold_up}")


@struct.dataclass
class Archive:
    """``descriptors (capacity, D)``, ``payload`` (pytree, leading capacity axis);
    the first ``size`` entries are valid; ``added`` counts all additions ever
    (the next write goes to ``added % capacity``); ``stale`` counts generations
    since the last addition."""

    descriptors: jax.Array
    payload: Any
    size: jax.Array
    added: jax.Array
    threshold: jax.Array
    stale: jax.Array

    @property
    def capacity(self) -> int:
        return self.descriptors.shape[0]


def archive_init(capacity: int, descriptor_dim: int, payload_example: Any, threshold: float) -> Archive:
    """An empty archive; ``payload_example`` is one entry's pytree (no capacity axis)."""
    payload = jax.tree.map(lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.result_type(x)), payload_example)
    return Archive(
        descriptors=jnp.zeros((capacity, descriptor_dim), jnp.float32),
        payload=payload,
        size=jnp.zeros((), jnp.int32),
        added=jnp.zeros((), jnp.int32),
        threshold=jnp.asarray(threshold, jnp.float32),
        stale=jnp.zeros((), jnp.int32),
    )


def distances(a: jax.Array, b: jax.Array) -> jax.Array:
    """RMS distance between every row of ``a (P, D)`` and of ``b (Q, D)``: ``(P, Q)``."""
    sq = jnp.sum(a * a, -1)[:, None] + jnp.sum(b * b, -1)[None, :] - 2.0 * a @ b.T
    return jnp.sqrt(jnp.maximum(sq, 0.0) / a.shape[-1])


def novelty_scores(descriptors: jax.Array, archive: Archive, k: int, population: bool = True) -> jax.Array:
    """Mean distance of each of ``descriptors (P, D)`` to its ``k`` nearest neighbours
    among the archive's valid entries and (with ``population``) the other members
    of the population. With no neighbour at all the score is 0."""
    p, c = descriptors.shape[0], archive.capacity
    d = jnp.where(jnp.arange(c) < archive.size, distances(descriptors, archive.descriptors), jnp.inf)
    if population:
        d = jnp.concatenate([d, jnp.where(jnp.eye(p, dtype=bool), jnp.inf, distances(descriptors, descriptors))], 1)
    nearest = -jax.lax.top_k(-d, min(k, d.shape[1]))[0]
    found = jnp.isfinite(nearest)
    return jnp.sum(jnp.where(found, nearest, 0.0), axis=1) / jnp.maximum(jnp.sum(found, axis=1), 1)


def archive_add(archive: Archive, descriptors: jax.Array, payload: Any, add: jax.Array) -> Archive:
    """Write the rows flagged by ``add`` into the archive (oldest entries replaced when full)."""
    c = archive.capacity
    order = jnp.cumsum(add) - 1
    add = add & (order < c)
    n_add = jnp.sum(add).astype(jnp.int32)
    slot = jnp.where(add, (archive.added + order) % c, c)  # c: out of range, dropped
    return archive.replace(
        descriptors=archive.descriptors.at[slot].set(descriptors, mode="drop"),
        payload=jax.tree.map(lambda a, x: a.at[slot].set(x, mode="drop"), archive.payload, payload),
        size=jnp.minimum(archive.size + n_add, c),
        added=archive.added + n_add,
    )


def archive_update(
    archive: Archive, descriptors: jax.Array, payload: Any, scores: jax.Array, config: NoveltyConfig
) -> Archive:
    """Add the individuals whose novelty ``scores`` exceed the threshold (the
    ``max_add`` most novel of them), then adapt it.

    ``payload`` has a leading population axis matching ``descriptors``.
    """
    above = scores > archive.threshold
    add = above
    if config.max_add:
        rank = jnp.argsort(jnp.argsort(-scores))
        add = above & (rank < config.max_add)
    archive = archive_add(archive, descriptors, payload, add)
    stale = jnp.where(jnp.any(add), 0, archive.stale + 1)
    lower = stale >= config.patience
    threshold = archive.threshold * jnp.where(lower, config.threshold_down, 1.0)
    threshold = threshold * jnp.where(jnp.sum(above) > config.add_many, config.threshold_up, 1.0)
    return archive.replace(threshold=threshold, stale=jnp.where(lower, 0, stale))


def archive_entries(archive: Archive) -> dict[str, Any]:
    """The valid entries, oldest first: ``{"descriptors": (n, D), "payload": pytree (n, ...)}``
    as numpy arrays (what islands publish to their shared archive)."""
    n, c = int(archive.size), archive.capacity
    order = (int(archive.added) - n + np.arange(n)) % c
    return {
        "descriptors": np.asarray(archive.descriptors)[order],
        "payload": jax.tree.map(lambda a: np.asarray(a)[order], archive.payload),
    }


def with_entries(archive: Archive, entries: dict[str, Any]) -> Archive:
    """``archive`` holding exactly ``entries`` (oldest first; the newest ``capacity`` kept),
    with its threshold and staleness unchanged: novelty is then scored against them."""
    c = archive.capacity
    desc = np.asarray(entries["descriptors"])[-c:]
    n = desc.shape[0]

    def fill(a, x):
        return jnp.asarray(a).at[:n].set(jnp.asarray(np.asarray(x)[-c:], a.dtype))

    return archive.replace(
        descriptors=fill(archive.descriptors, desc),
        payload=jax.tree.map(fill, archive.payload, entries["payload"]),
        size=jnp.asarray(n, jnp.int32),
        added=jnp.asarray(n, jnp.int32),
    )


def mean_pairwise_distance(descriptors: jax.Array, valid: jax.Array | None = None) -> jax.Array:
    """Mean distance over distinct pairs of (the ``valid`` rows of) ``descriptors``: diversity."""
    n = descriptors.shape[0]
    valid = jnp.ones(n, bool) if valid is None else valid
    pair = valid[:, None] & valid[None, :] & ~jnp.eye(n, dtype=bool)
    return jnp.sum(jnp.where(pair, distances(descriptors, descriptors), 0.0)) / jnp.maximum(jnp.sum(pair), 1)


def mean_nearest_distance(descriptors: jax.Array) -> jax.Array:
    """Mean distance of each row of ``descriptors`` to its nearest other row: sparseness,
    what novelty rewards locally (an archive that covers the space evenly scores high)."""
    n = descriptors.shape[0]
    d = jnp.where(jnp.eye(n, dtype=bool), jnp.inf, distances(descriptors, descriptors))
    return jnp.mean(jnp.min(d, axis=1))


# --- MAP-Elites' grid archive ------------------------------------------------------------------
#
# A grid of cells over a descriptor box [low, high]^D, ``bins`` per dimension, each
# holding at most one elite: the best-quality individual that ever landed in it
# (Mouret and Clune 2015). An elite is replaced only by a strictly better one.

ELITE_PREFIX = "elite_"


@struct.dataclass
class GridArchive:
    """``fitness (C,)`` (-inf where empty), ``descriptors (C, D)``, ``payload`` (pytree,
    leading C axis) and ``filled (C,)`` over the C = bins^D cells of the grid."""

    fitness: jax.Array
    descriptors: jax.Array
    payload: Any
    filled: jax.Array

    @property
    def n_cells(self) -> int:
        return self.fitness.shape[0]


def grid_init(n_cells: int, descriptor_dim: int, payload_example: Any) -> GridArchive:
    """An empty grid of ``n_cells`` cells; ``payload_example`` is one entry's pytree."""
    payload = jax.tree.map(lambda x: jnp.zeros((n_cells, *jnp.shape(x)), jnp.result_type(x)), payload_example)
    return GridArchive(
        fitness=jnp.full(n_cells, -jnp.inf, jnp.float32),
        descriptors=jnp.zeros((n_cells, descriptor_dim), jnp.float32),
        payload=payload,
        filled=jnp.zeros(n_cells, bool),
    )


def grid_cells(descriptors: jax.Array, bins: int, low: float, high: float) -> jax.Array:
    """Cell ids ``(P,)`` of descriptors ``(P, D)``: each entry cut into ``bins`` equal bins
    over [low, high] (clipped at both ends; NaN counts as ``low``), row-major."""
    d = jnp.nan_to_num(descriptors, nan=low)
    index = jnp.clip(jnp.floor((d - low) / (high - low) * bins), 0, bins - 1).astype(jnp.int32)
    weights = bins ** jnp.arange(d.shape[-1] - 1, -1, -1, dtype=jnp.int32)
    return jnp.sum(index * weights, axis=-1)


def grid_insert(
    archive: GridArchive, cells: jax.Array, descriptors: jax.Array, fitness: jax.Array, payload: Any
) -> tuple[GridArchive, jax.Array]:
    """Insert a batch: in each cell the batch's best (the first on ties) replaces the elite
    if the cell is empty or it is strictly better. NaN fitness counts as -inf.
    Returns the archive and which of the batch's rows became elites ``(P,)``."""
    c, p = archive.n_cells, fitness.shape[0]
    fitness = jnp.where(jnp.isnan(fitness), -jnp.inf, fitness).astype(jnp.float32)
    best = jax.ops.segment_max(fitness, cells, num_segments=c)
    first = jax.ops.segment_min(jnp.where(fitness >= best[cells], jnp.arange(p), p), cells, num_segments=c)
    winner = first < p
    row = jnp.clip(first, 0, p - 1)
    take = winner & (~archive.filled | (best > archive.fitness))

    def put(old, new):
        mask = take.reshape((-1,) + (1,) * (old.ndim - 1))
        return jnp.where(mask, new[row], old)

    updated = archive.replace(
        fitness=put(archive.fitness, fitness),
        descriptors=put(archive.descriptors, descriptors),
        payload=jax.tree.map(put, archive.payload, payload),
        filled=archive.filled | take,
    )
    became = jnp.zeros(p, bool).at[jnp.where(take, row, p)].set(True, mode="drop")
    return updated, became


def grid_entries(archive: GridArchive) -> dict[str, Any]:
    """The filled cells in cell order: ``{"cells", "fitness", "descriptors", "payload"}`` as numpy."""
    cells = np.flatnonzero(np.asarray(archive.filled))
    return {
        "cells": cells,
        "fitness": np.asarray(archive.fitness)[cells],
        "descriptors": np.asarray(archive.descriptors)[cells],
        "payload": jax.tree.map(lambda a: np.asarray(a)[cells], archive.payload),
    }
