"""Novelty search: reward being different from what has been seen, not matching a target.

The generic part (used by every regime that searches for novelty, NEAT too):

- a behaviour descriptor per network: a function registered in ``DESCRIPTORS``
  mapping rendered images ``rgb (P, S, S, 3)`` to vectors ``(P, D)``; the
  default ``luminance`` is the image rendered small (16x16) in grey levels;
- ``novelty_scores``: the mean distance to the k nearest neighbours among the
  archive's valid entries and the rest of the population. Distances are root
  mean square differences per descriptor entry, so thresholds read in the
  descriptor's own units (grey levels in [0, 1] for ``luminance``);
- ``Archive``: a fixed-capacity store of descriptors and any payload pytree
  (flat weights, genomes...) with Lehman and Stanley's adaptive threshold:
  individuals more novel than the threshold are added; after ``patience``
  generations without additions the threshold is multiplied by
  ``threshold_down``, and when more than ``add_many`` are added in one
  generation by ``threshold_up``. When full, the oldest entries are replaced.

All of it is pure JAX over the population, jittable (``NoveltyConfig`` is
hashable and static).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

Descriptor = Callable[[jax.Array], jax.Array]
DESCRIPTORS: dict[str, Descriptor] = {}

_LUMA = jnp.array([0.299, 0.587, 0.114])


def register_descriptor(name: str):
    """Decorator: register ``fn(rgb (P, S, S, 3)) -> (P, D)`` under ``name``."""

    def register(fn: Descriptor) -> Descriptor:
        DESCRIPTORS[name] = fn
        return fn

    return register


@register_descriptor("luminance")
def luminance(rgb: jax.Array) -> jax.Array:
    """Grey level of every pixel (ITU-R 601 weights), flattened."""
    return (rgb @ _LUMA).reshape(rgb.shape[0], -1)


@register_descriptor("rgb")
def rgb_pixels(rgb: jax.Array) -> jax.Array:
    """Every pixel's colour, flattened."""
    return rgb.reshape(rgb.shape[0], -1)


@dataclass(frozen=True)
class NoveltyConfig:
    """Novelty measure and archive: k nearest neighbours, adaptive threshold, capacity.

    ``threshold`` is the starting threshold in descriptor units (RMS distance);
    ``patience`` generations without additions lower it by ``threshold_down``;
    more than ``add_many`` additions in one generation raise it by
    ``threshold_up``. Descriptors are ``descriptor`` of the image rendered at
    ``descriptor_size`` x ``descriptor_size``.
    """

    k: int = 15
    threshold: float = 0.1
    threshold_down: float = 0.95
    threshold_up: float = 1.2
    patience: int = 5
    add_many: int = 4
    capacity: int = 500
    descriptor: str = "luminance"
    descriptor_size: int = 16

    def __post_init__(self):
        if self.descriptor not in DESCRIPTORS:
            raise ValueError(f"unknown descriptor {self.descriptor!r} (known: {', '.join(DESCRIPTORS)})")
        for name in ("k", "patience", "capacity", "descriptor_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.add_many < 0:
            raise ValueError(f"add_many must be at least 0, got {self.add_many}")
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
    return Archive(descriptors=jnp.zeros((capacity, descriptor_dim), jnp.float32), payload=payload,
                   size=jnp.zeros((), jnp.int32), added=jnp.zeros((), jnp.int32),
                   threshold=jnp.asarray(threshold, jnp.float32), stale=jnp.zeros((), jnp.int32))


def distances(a: jax.Array, b: jax.Array) -> jax.Array:
    """RMS distance between every row of ``a (P, D)`` and of ``b (Q, D)``: ``(P, Q)``."""
    sq = jnp.sum(a * a, -1)[:, None] + jnp.sum(b * b, -1)[None, :] - 2.0 * a @ b.T
    return jnp.sqrt(jnp.maximum(sq, 0.0) / a.shape[-1])


def novelty_scores(descriptors: jax.Array, archive: Archive, k: int) -> jax.Array:
    """Mean distance of each of ``descriptors (P, D)`` to its ``k`` nearest neighbours
    among the archive's valid entries and the other members of the population."""
    p, c = descriptors.shape[0], archive.capacity
    to_archive = jnp.where(jnp.arange(c) < archive.size, distances(descriptors, archive.descriptors), jnp.inf)
    to_population = jnp.where(jnp.eye(p, dtype=bool), jnp.inf, distances(descriptors, descriptors))
    d = jnp.concatenate([to_archive, to_population], axis=1)
    nearest = -jax.lax.top_k(-d, min(k, c + p - 1))[0]
    found = jnp.isfinite(nearest)
    return jnp.sum(jnp.where(found, nearest, 0.0), axis=1) / jnp.maximum(jnp.sum(found, axis=1), 1)


def archive_update(archive: Archive, descriptors: jax.Array, payload: Any, scores: jax.Array,
                   config: NoveltyConfig) -> Archive:
    """Add the individuals whose novelty ``scores`` exceed the threshold, then adapt it.

    ``payload`` has a leading population axis matching ``descriptors``.
    """
    c = archive.capacity
    add = scores > archive.threshold
    order = jnp.cumsum(add) - 1
    add = add & (order < c)
    n_add = jnp.sum(add).astype(jnp.int32)
    slot = jnp.where(add, (archive.added + order) % c, c)  # c: out of range, dropped
    stale = jnp.where(n_add > 0, 0, archive.stale + 1)
    lower = stale >= config.patience
    threshold = archive.threshold * jnp.where(lower, config.threshold_down, 1.0)
    threshold = threshold * jnp.where(n_add > config.add_many, config.threshold_up, 1.0)
    return Archive(
        descriptors=archive.descriptors.at[slot].set(descriptors, mode="drop"),
        payload=jax.tree.map(lambda a, x: a.at[slot].set(x, mode="drop"), archive.payload, payload),
        size=jnp.minimum(archive.size + n_add, c),
        added=archive.added + n_add,
        threshold=threshold,
        stale=jnp.where(lower, 0, stale),
    )


def mean_pairwise_distance(descriptors: jax.Array, valid: jax.Array | None = None) -> jax.Array:
    """Mean distance over distinct pairs of (the ``valid`` rows of) ``descriptors``: diversity."""
    n = descriptors.shape[0]
    valid = jnp.ones(n, bool) if valid is None else valid
    pair = valid[:, None] & valid[None, :] & ~jnp.eye(n, dtype=bool)
    return jnp.sum(jnp.where(pair, distances(descriptors, descriptors), 0.0)) / jnp.maximum(jnp.sum(pair), 1)
