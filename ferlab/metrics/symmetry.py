"""Mirror symmetry of maps: which axis an image is mirrored about, and how far a map is from it.

A map f (rows, columns, ...) splits into a symmetric part s = (f + Mf)/2 and an
antisymmetric part a = (f - Mf)/2, where M mirrors the image: axis "x" flips
x -> -x (columns), axis "y" flips y -> -y (rows). The energies |s|^2 and
|a|^2 add up to |f|^2, so their shares are fractions in [0, 1].
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

AXES = ("x", "y")
EPS = 1e-12


def mirror(maps: jnp.ndarray, axis: str, spatial: int = -3) -> jnp.ndarray:
    """Mirror maps whose rows sit at axis ``spatial`` (columns at ``spatial + 1``); a numpy array
    stays on the host (a view), anything else is flipped by JAX."""
    flip = np.flip if isinstance(maps, np.ndarray) else jnp.flip
    return flip(maps, axis=spatial + 1 if axis == "x" else spatial)


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


# The square's symmetries that need no image axis: two mirrors, two diagonal mirrors, the half turn.
# The inputs x, y and d are each pure (symmetric or antisymmetric) under every one of them.
SQUARE_OPS = ("x", "y", "diagonal", "antidiagonal", "half_turn")


def square_op(maps: jnp.ndarray, op: str, spatial: int = -2) -> jnp.ndarray:
    """Apply one of ``SQUARE_OPS`` to square maps whose rows sit at axis ``spatial``."""
    rows, cols = maps.ndim + spatial, maps.ndim + spatial + 1
    if op in AXES:
        return mirror(maps, op, spatial)
    if op == "half_turn":
        return jnp.flip(maps, (rows, cols))
    swapped = jnp.swapaxes(maps, rows, cols)
    return swapped if op == "diagonal" else jnp.flip(swapped, (rows, cols))


def best_mixedness(maps: jnp.ndarray, spatial: int = -2) -> jnp.ndarray:
    """min over ``SQUARE_OPS`` of 2 min(|s|^2, |a|^2) / |f|^2: 0 when a map is purely symmetric or
    antisymmetric under *some* symmetry of the square, 1 when it mixes evenly under every one.

    Needs no image axis: it asks whether a map keeps a regularity that the inputs have, whatever
    the picture's own symmetry."""
    reduce = (maps.ndim + spatial, maps.ndim + spatial + 1)
    out = []
    for op in SQUARE_OPS:
        m = square_op(maps, op, spatial)
        s, a = jnp.sum(jnp.square(maps + m), axis=reduce), jnp.sum(jnp.square(maps - m), axis=reduce)
        out.append(2 * jnp.minimum(s, a) / (s + a + EPS))
    return jnp.min(jnp.stack(out), axis=0)
