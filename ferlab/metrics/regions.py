"""Where a change happens: connected regions of a change map, and its spread over image parts.

Both work on an energy map e(p) >= 0 (the squared colour change at pixel p)
and treat a pixel and its mirror image as one place, so that a change to both
eyes of a face is one region and one part, as a person would see it.

On a CPU regions are labelled on the host (``components``: ``scipy.ndimage.label``, a single
pass in C) rather than in XLA: labelling is sequential by nature, and jitted min-label propagation
ran to the slowest map of a vmapped batch with two gathers a round: for 64 maps at 64x64, 0.1 s on
real change maps (about 40% of the suite's time) and up to 1 s on random masks, against a few
milliseconds here. A host callback inside the jitted code was tried and dropped: on one core it
deadlocks when another computation is in flight. So ``fracture`` is called outside jit, on maps
of any batch shape. On an accelerator the host's labelling is what the suite waited for (the
labelling, the sort it then used and the maps' round trip: 1.1 s of 8 skull seeds' 3.0 s on an
H200), and there the propagation (``components_on_device``, same labels) runs beside the sweeps'
other work.
"""

from __future__ import annotations

from functools import partial, reduce

import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ferlab.cppn import dot
from ferlab.metrics.symmetry import mirror

EPS = 1e-12
_PLANE = np.zeros((3, 3, 3), bool)
_PLANE[1] = True  # 8-connected within a map, never across the maps of a batch


def components(mask, axis: str | None) -> np.ndarray:
    """Label the 8-connected regions of boolean masks (..., S, S) (mirror pairs joined).

    Every masked pixel ends with the smallest flat index (within its map) in its region; other
    pixels get S*S. Diagonal neighbours count: a weight that moves a sharp edge changes a one-pixel
    curve, and a diagonal curve is 8-connected only, so with 4-connectivity its pixels
    would be separate regions and fracture would measure how sharp and slanted the
    picture's edges are rather than the net.
    """
    mask = np.asarray(mask, bool)
    size = mask.shape[-1]
    n = size * size
    maps = mask.reshape(-1, size, size)
    lab, count = ndimage.label(maps, structure=_PLANE)
    flat = lab.reshape(-1)
    where = np.flatnonzero(flat)
    first = np.full(count + 1, flat.size, np.int64)  # each region's first pixel in flat order: its least
    np.minimum.at(first, flat[where], where)
    if axis is not None and count:
        mirrored = mirror(lab, axis, spatial=-2)
        both = (lab > 0) & (mirrored > 0)
        pairs = coo_matrix((np.ones(int(both.sum()), bool), (lab[both], mirrored[both])), shape=(count + 1,) * 2)
        _, joined = connected_components(pairs, directed=False)
        least = np.full(joined.max() + 1, flat.size, np.int64)
        np.minimum.at(least, joined[1:], first[1:])
        first[1:] = least[joined[1:]]
    table = (first % n).astype(np.int32)
    table[0] = n  # label 0, the background, is exactly where the mask is False
    return table[lab].reshape(mask.shape)


@partial(jax.jit, static_argnames=("axis",))
def components_on_device(mask: jax.Array, axis: str | None) -> jax.Array:
    """``components`` in XLA, for masks (B, S, S): the same labels, by min-label propagation.

    Each masked pixel starts with its own flat index and takes, round by round, the least label
    among itself, its 8 neighbours and (with ``axis``) its mirror pixel when that is masked too, and
    then the label of the pixel its label names (pointer jumping: a label is always a pixel of the
    same region holding a label no larger, so long chains shorten fast). It stops when no label
    changes; then every pixel of a region holds the region's least index.
    """
    b, size, _ = mask.shape
    n = size * size
    index = jnp.arange(n, dtype=jnp.int32).reshape(1, size, size)
    joined = (mask & mirror(mask, axis, spatial=-2)) if axis is not None else None

    def round_(lab):
        padded = jnp.pad(lab, ((0, 0), (1, 1), (1, 1)), constant_values=n)
        near = [padded[:, 1 + di : 1 + di + size, 1 + dj : 1 + dj + size] for di in (-1, 0, 1) for dj in (-1, 0, 1)]
        least = reduce(jnp.minimum, near)
        if joined is not None:
            least = jnp.where(joined, jnp.minimum(least, mirror(lab, axis, spatial=-2)), least)
        least = jnp.where(mask, least, n)
        flat = least.reshape(b, n)
        jumped = jnp.take_along_axis(jnp.pad(flat, ((0, 0), (0, 1)), constant_values=n), flat, axis=1)
        return jnp.minimum(least, jumped.reshape(b, size, size))

    def step(carry):
        lab, _ = carry
        new = round_(lab)
        return new, jnp.any(new != lab)

    start = jnp.where(mask, index, n)
    labels, _ = jax.lax.while_loop(lambda c: c[1], step, (start, jnp.array(True)))
    return labels


def changed(energy: jnp.ndarray, threshold: float) -> jnp.ndarray:
    """The changed pixels of maps (..., S, S): e(p) >= threshold * max(e) of its map."""
    return energy >= threshold * jnp.max(energy, axis=(-2, -1), keepdims=True)


def fracture(energy, axis: str | None, threshold: float) -> jnp.ndarray:
    """1 - (energy in the largest changed region) / (total energy), per (S, S) map of (..., S, S).

    Changed pixels are those with e(p) >= threshold * max(e). A change that is
    one blob (or one mirror pair of blobs) scores about 0; a change scattered
    into many pieces, or spread as a faint haze outside its main piece, scores near 1.
    """
    energy = jnp.asarray(energy)
    return largest_share(energy, jnp.asarray(components(changed(energy, threshold), axis)))


@jax.jit
def largest_share(energy: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
    """1 - (energy of the largest labelled region) / (total energy), per map of (..., S, S), in [0, 1]
    (one region covering the picture, summed in another order than the total, came out at -6e-7)."""
    n = energy.shape[-1] * energy.shape[-2]
    flat_e, flat_l = energy.reshape(-1, n), labels.reshape(-1, n)
    per_region = jax.vmap(partial(jax.ops.segment_sum, num_segments=n + 1))(flat_e, flat_l)[:, :n]
    out = 1.0 - jnp.max(per_region, axis=1) / (jnp.sum(flat_e, axis=1) + EPS)
    return jnp.clip(out, 0.0, 1.0).reshape(energy.shape[:-2])


def part_energies(energy: jnp.ndarray, parts: int, axis: str | None) -> jnp.ndarray:
    """Energy in each cell of a parts x parts grid over the whole picture, mirror cells summed together.

    Cells are ``size / parts`` pixels wide; where that is not a whole number a pixel on a cell's edge
    is shared between the two cells by area (``cell_weights``), so the grid covers every pixel and
    stays mirror-symmetric (cutting the picture to ``parts`` whole cells left out its right and
    bottom margins: 56% of a 12-pixel picture)."""
    size = energy.shape[0]
    if size % parts == 0:
        cell = size // parts
        e = energy.reshape(parts, cell, parts, cell).sum(axis=(1, 3))
    else:
        weights = jnp.asarray(cell_weights(size, parts))
        e = dot(dot(weights, energy), weights.T)
    if axis is None:
        return e.reshape(-1)
    e = e + mirror(e, axis, spatial=-2)
    half = (parts + 1) // 2
    return (e[:, :half] if axis == "x" else e[:half]).reshape(-1)


def cell_weights(size: int, parts: int) -> np.ndarray:
    """``(parts, size)``: the share of pixel j (spanning [j, j + 1)) in cell k (spanning
    [k size / parts, (k + 1) size / parts)); each pixel's shares sum to 1."""
    edges = np.arange(parts + 1) * (size / parts)
    left = np.arange(size)
    overlap = np.minimum(edges[1:, None], left[None] + 1) - np.maximum(edges[:-1, None], left[None])
    return np.clip(overlap, 0.0, None).astype(np.float32)


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
