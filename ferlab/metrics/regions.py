"""Where a change happens: connected regions of a change map, and its spread over image parts.

Both work on an energy map e(p) >= 0 (the squared colour change at pixel p)
and treat a pixel and its mirror image as one place, so that a change to both
eyes of a face is one region and one part, as a person would see it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ferlab.metrics.symmetry import mirror

EPS = 1e-12


def components(mask: jnp.ndarray, axis: str | None) -> jnp.ndarray:
    """Label the 8-connected regions of an (S, S) boolean mask (mirror pairs joined).

    Every masked pixel ends with the smallest flat index in its region; other
    pixels get S*S. Min-label propagation plus pointer jumping, run to a fixed point.
    Diagonal neighbours count: a weight that moves a sharp edge changes a one-pixel
    curve, and a diagonal curve is 8-connected only, so with 4-connectivity its pixels
    would be separate regions and fracture would measure how sharp and slanted the
    picture's edges are rather than the net.
    """
    size = mask.shape[0]
    n = size * size
    big = jnp.int32(n)
    start = jnp.where(mask, jnp.arange(n, dtype=jnp.int32).reshape(size, size), big)

    def neighbour_min(lab):
        pad = jnp.pad(lab, 1, constant_values=n)
        best = lab
        for di in range(3):
            for dj in range(3):
                best = jnp.minimum(best, pad[di : di + size, dj : dj + size])
        if axis is not None:
            best = jnp.minimum(best, mirror(lab, axis, spatial=-2))
        best = jnp.where(mask, best, big)
        flat = jnp.append(best.reshape(-1), big)
        return flat[flat[best]]  # pointer jumping: a label is a pixel of the same region

    def step(state):
        lab, _ = state
        new = neighbour_min(lab)
        return new, jnp.any(new != lab)

    lab, _ = jax.lax.while_loop(lambda s: s[1], step, (start, jnp.bool_(True)))
    return lab


def fracture(energy: jnp.ndarray, axis: str | None, threshold: float) -> jnp.ndarray:
    """1 - (energy in the largest changed region) / (total energy), for one (S, S) map.

    Changed pixels are those with e(p) >= threshold * max(e). A change that is
    one blob (or one mirror pair of blobs) scores about 0; a change scattered
    into many pieces, or spread as a faint haze outside its main piece, scores near 1.
    """
    n = energy.size
    lab = components(energy >= threshold * jnp.max(energy), axis)
    per_region = jax.ops.segment_sum(energy.reshape(-1), lab.reshape(-1), num_segments=n + 1)[:n]
    return 1.0 - jnp.max(per_region) / (jnp.sum(energy) + EPS)


def part_energies(energy: jnp.ndarray, parts: int, axis: str | None) -> jnp.ndarray:
    """Energy in each cell of a parts x parts grid, mirror cells summed together."""
    size = energy.shape[0]
    cell = size // parts
    e = energy[: cell * parts, : cell * parts].reshape(parts, cell, parts, cell).sum(axis=(1, 3))
    if axis is None:
        return e.reshape(-1)
    e = e + mirror(e, axis, spatial=-2)
    half = (parts + 1) // 2
    return (e[:, :half] if axis == "x" else e[:half]).reshape(-1)


def spread(energy: jnp.ndarray, parts: int, axis: str | None) -> jnp.ndarray:
    """How evenly a change covers the image's parts, in [0, 1].

    With part energies E_k over K parts, the participation ratio
    PR = (sum E_k)^2 / sum E_k^2 counts the parts touched (1 .. K); spread =
    (PR - 1) / (K - 1): 0 for a change confined to one part, 1 for one spread evenly.
    """
    e = part_energies(energy, parts, axis)
    k = e.shape[0]
    pr = jnp.square(jnp.sum(e)) / (jnp.sum(jnp.square(e)) + EPS)
    return jnp.clip((pr - 1.0) / (k - 1.0), 0.0, 1.0)
