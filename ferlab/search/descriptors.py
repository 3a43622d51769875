"""Behaviour descriptors: what an image "is" to a search that rewards difference.

A descriptor maps a batch of rendered images ``rgb (P, S, S, 3)`` to vectors
``(P, D)``; ``DESCRIPTORS`` holds them by name. Novelty search and MAP-Elites
score distances or cells in these vectors; a new descriptor is one function
under ``@register_descriptor(name)``. The default ``luminance`` is the image
rendered small (16x16) in grey levels.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

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
