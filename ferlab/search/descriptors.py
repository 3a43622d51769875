"""Behaviour descriptors: what an image "is" to a search that rewards difference.

A descriptor maps a batch of rendered images ``rgb (P, S, S, 3)`` to vectors
``(P, D)``; ``DESCRIPTORS`` holds them by name. Novelty search and MAP-Elites
score distances or cells in these vectors; a new descriptor is one function
under ``@register_descriptor(name)``. The default ``luminance`` is the image
rendered small (16x16) in grey levels. ``tone`` is a short summary with every
entry in [0, 1], for a MAP-Elites grid (``ferlab.search.map_elites``).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from ferlab import limits

Descriptor = Callable[[jax.Array], jax.Array]
DESCRIPTORS: dict[str, Descriptor] = {}

_LUMA = jnp.array([0.299, 0.587, 0.114])


def register_descriptor(name: str):
    """Decorator: register ``fn(rgb (P, S, S, 3)) -> (P, D)`` under ``name``."""

    def register(fn: Descriptor) -> Descriptor:
        DESCRIPTORS[name] = fn
        return fn

    return register


def check_descriptor(name: str, size: int) -> None:
    """ValueError unless ``name`` is a registered descriptor and ``size`` (the side of the image it
    reads) is 1 to ``limits.MAX_SIDE``: the settings novelty search and MAP-Elites share."""
    if name not in DESCRIPTORS:
        raise ValueError(f"unknown descriptor {name!r} (known: {', '.join(DESCRIPTORS)})")
    if size < 1:
        raise ValueError(f"descriptor_size must be at least 1, got {size}")
    if size > limits.MAX_SIDE:
        raise ValueError(f"descriptor_size must be at most {limits.MAX_SIDE}, got {size}")


@register_descriptor("luminance")
def luminance(rgb: jax.Array) -> jax.Array:
    """Grey level of every pixel (ITU-R 601 weights), flattened."""
    return (rgb @ _LUMA).reshape(rgb.shape[0], -1)


@register_descriptor("rgb")
def rgb_pixels(rgb: jax.Array) -> jax.Array:
    """Every pixel's colour, flattened."""
    return rgb.reshape(rgb.shape[0], -1)


TONE_EDGES = 8.0  # full-contrast crossings per image row or column at which ``tone``'s edge entry saturates


@register_descriptor("tone")
def tone(rgb: jax.Array) -> jax.Array:
    """Four numbers in [0, 1]: mean grey level, contrast (2 x its standard deviation),
    edge density (mean absolute difference of neighbouring grey levels times
    size / ``TONE_EDGES``, clipped) and chroma (mean of max(R, G, B) - min(R, G, B)).

    A grid over these keeps dark and light, flat and contrasted, smooth and busy,
    grey and colourful images apart, without naming symmetry or a spectrum (the
    evaluation space of ``ferlab.metrics.behaviour``).
    """
    grey = rgb @ _LUMA
    size = grey.shape[-1]
    steps = (
        jnp.mean(jnp.abs(jnp.diff(grey, axis=-1)), axis=(-2, -1))
        + jnp.mean(jnp.abs(jnp.diff(grey, axis=-2)), axis=(-2, -1))
    ) / 2
    chroma = jnp.mean(jnp.max(rgb, -1) - jnp.min(rgb, -1), axis=(-2, -1))
    parts = [jnp.mean(grey, axis=(-2, -1)), 2 * jnp.std(grey, axis=(-2, -1)), steps * (size - 1) / TONE_EDGES, chroma]
    return jnp.clip(jnp.stack(parts, axis=-1), 0.0, 1.0)
