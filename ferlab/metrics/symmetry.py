"""Mirror symmetry of maps: which axis an image is mirrored about, and how far a map is from it.

A map f (rows, columns, ...) splits into a symmetric part s = (f + Mf)/2 and an
antisymmetric part a = (f - Mf)/2, where M mirrors the image: axis "x" flips
x -> -x (columns), axis "y" flips y -> -y (rows). The energies |s|^2 and
|a|^2 add up to |f|^2, so their shares are fractions in [0, 1].
"""

from __future__ import annotations

import jax.numpy as jnp

AXES = ("x", "y")
EPS = 1e-12


def mirror(maps: jnp.ndarray, axis: str, spatial: int = -3) -> jnp.ndarray:
    """Mirror maps whose rows sit at axis ``spatial`` (columns at ``spatial + 1``)."""
    return jnp.flip(maps, axis=spatial + 1 if axis == "x" else spatial)


def sym_energies(maps: jnp.ndarray, axis: str, spatial: int = -3) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(|s|^2, |a|^2) summed over the two spatial axes and everything after them."""
    m = mirror(maps, axis, spatial)
    reduce = tuple(range(maps.ndim + spatial, maps.ndim))
    return (jnp.sum(jnp.square(maps + m), axis=reduce) / 4, jnp.sum(jnp.square(maps - m), axis=reduce) / 4)


def antisymmetric_share(maps: jnp.ndarray, axis: str, spatial: int = -3) -> jnp.ndarray:
    """|a|^2 / |f|^2: 0 for a symmetric map, 1/2 for a one-sided one, 1 for an antisymmetric one."""
    s, a = sym_energies(maps, axis, spatial)
    return a / (s + a + EPS)


def mixedness(maps: jnp.ndarray, axis: str, spatial: int = -3) -> jnp.ndarray:
    """2 min(|s|^2, |a|^2) / |f|^2: 0 when purely symmetric or antisymmetric, 1 when an even mix."""
    s, a = sym_energies(maps, axis, spatial)
    return 2 * jnp.minimum(s, a) / (s + a + EPS)


def detect_axis(rgb: jnp.ndarray) -> tuple[str, float]:
    """The mirror axis of an (S, S, 3) image and its asymmetry there.

    The image is centred (its mean colour removed) so a flat background does
    not count as symmetry; the axis with the smaller antisymmetric share wins.
    """
    centred = rgb - jnp.mean(rgb, axis=(0, 1))
    shares = {axis: float(antisymmetric_share(centred, axis)) for axis in AXES}
    best = min(shares, key=shares.get)
    return best, shares[best]
