"""The hidden feature maps of a net, as the paper draws them, turned into numbers.

Every metric here runs on the *distinct* maps: constant units (unused slots,
dead units) are dropped and maps equal up to scale and sign (cache copies that
carry a value to a later layer, split chains) are merged, so a layerized
Picbreeder net is judged by its real nodes and not by its padding.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ferlab.metrics.symmetry import best_mixedness, mixedness

EPS = 1e-12


def distinct_maps(features: jnp.ndarray, const_tol: float, dup_cos: float) -> np.ndarray:
    """(U, S, S) distinct non-constant maps from (L, W, S, S) features.

    A map is constant if its standard deviation is below ``const_tol``; a map is a
    duplicate of an earlier one if |cos| of the two (uncentred) maps exceeds ``dup_cos``.
    """
    feats = np.asarray(features)
    maps = feats.reshape(-1, *feats.shape[2:])
    maps = maps[maps.std(axis=(1, 2)) > const_tol]
    flat = maps.reshape(maps.shape[0], int(np.prod(maps.shape[1:])))  # -1 fails on zero maps (all constant)
    unit = flat / (np.linalg.norm(flat, axis=1, keepdims=True) + EPS)
    dup = np.any(np.tril(np.abs(unit @ unit.T) > dup_cos, k=-1), axis=1)
    return maps[~dup]


def _per_map(fn, maps, *args) -> jax.Array:
    """``fn(maps, *args)``'s value for each of the U maps, computed on the maps padded with zero maps
    to a power of two: nets have any number of distinct maps, and a compiled call per number cost a
    study trial 20 compiles of each metric (18 s); each map's value is the same bits either way."""
    maps = np.asarray(maps, np.float32)
    u = maps.shape[0]
    padded = np.zeros((1 << max(u - 1, 0).bit_length(), *maps.shape[1:]), np.float32)
    padded[:u] = maps
    return fn(jnp.asarray(padded), *args)[:u]


@partial(jax.jit, static_argnames=("axis",))
def _asymmetry(maps: jax.Array, axis: str) -> jax.Array:
    return mixedness(maps, axis, spatial=-2)


def internal_asymmetry(maps: jnp.ndarray, axis: str) -> float:
    """Mean over distinct maps of 2 min(|s|^2, |a|^2) / |f|^2 (see ``symmetry.mixedness``).

    0 when every feature map is mirror-symmetric or mirror-antisymmetric (the
    paper's Picbreeder skull), toward 1 when maps mix both (its SGD imposter).
    """
    return float(jnp.mean(_per_map(_asymmetry, maps, axis)))


_mixing = jax.jit(best_mixedness)


def internal_mixing(maps: jnp.ndarray) -> float:
    """Mean over distinct maps of their ``symmetry.best_mixedness``: the axis-free form of
    ``internal_asymmetry``.

    0 when every map is pure (symmetric or antisymmetric) under some symmetry of the square,
    as maps composed from x, y and d by simple functions are, whatever the picture; toward 1
    when maps mix under every symmetry (SGD's features).
    """
    return float(jnp.mean(_per_map(_mixing, maps)))


def rank_redundancy(maps: jnp.ndarray) -> float:
    """1 - erank / U over the U distinct maps (centred, unit norm).

    erank = exp(H(p)), p_i = sigma_i / sum sigma_j over the singular values of
    the U x pixels matrix (Roy & Vetterli's effective rank). Each unit of a
    factored net adds its own direction (erank close to U, score near 0); a
    fractured net spreads a few directions over many correlated units (score toward 1).
    """
    flat = np.array(maps, np.float64).reshape(maps.shape[0], -1)  # a copy, centred and scaled in place
    flat -= flat.mean(axis=1, keepdims=True)
    flat /= np.linalg.norm(flat, axis=1, keepdims=True) + EPS
    sv = np.sqrt(np.clip(np.linalg.eigvalsh(flat @ flat.T), 0.0, None))  # singular values via the Gram matrix
    p = sv / (sv.sum() + EPS)
    erank = np.exp(-np.sum(np.where(p > 0, p * np.log(p + EPS), 0.0)))
    return float(1.0 - erank / maps.shape[0])


@jax.jit
def _curvature(maps: jax.Array) -> jax.Array:
    h = 2.0 / (maps.shape[-1] - 1)
    fy, fx = jnp.gradient(maps, h, axis=(1, 2))
    fyy, fyx = jnp.gradient(fy, h, axis=(1, 2))
    fxx = jnp.gradient(fx, h, axis=2)
    g2 = fx * fx + fy * fy
    g = jnp.sqrt(g2)
    # |div(grad f/|grad f|)| |grad f| = |fxx fy^2 - 2 fx fy fxy + fyy fx^2| / |grad f|^2
    bend = jnp.abs(fxx * fy * fy - 2 * fx * fy * fyx + fyy * fx * fx) / (g2 + EPS)
    flat = g <= 1e-3 * jnp.max(g, axis=(1, 2), keepdims=True)
    return jnp.sum(jnp.where(flat, 0.0, bend), axis=(1, 2)) / (jnp.sum(g, axis=(1, 2)) + EPS)


def roughness(maps: jnp.ndarray, scale: float) -> float:
    """Mean over distinct maps of k / (k + scale), k = the map's mean level-set curvature.

    k = sum |div(grad f / |grad f|)| |grad f| / sum |grad f| in image units (the
    image spans [-1, 1]), i.e. the total curvature of the map's contour lines per
    unit of contour (coarea formula). Stripes have k = 0 and rings of radius r
    k = 1/r, so Picbreeder's bands and circles score low; the wiggly contours of
    SGD features score high. ``scale`` is the curvature that scores 1/2.
    Independent of resolution (derivatives in image units).
    """
    kappa = _per_map(_curvature, maps)
    return float(jnp.mean(kappa / (kappa + scale)))
