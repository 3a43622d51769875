"""The hidden feature maps of a net, as the paper draws them, turned into numbers.

Every metric here runs on the *distinct* maps: constant units (unused slots,
dead units) are dropped and maps equal up to scale and sign (cache copies that
carry a value to a later layer, split chains) are merged, so a layerized
Picbreeder net is judged by its real nodes and not by its padding.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ferlab.metrics.symmetry import mixedness

EPS = 1e-12


def distinct_maps(features: jnp.ndarray, const_tol: float, dup_cos: float) -> np.ndarray:
    """(U, S, S) distinct non-constant maps from (L, S, S, W) features.

    A map is constant if its standard deviation is below ``const_tol``; a map is a
    duplicate of an earlier one if |cos| of the two (uncentred) maps exceeds ``dup_cos``.
    """
    maps = jnp.moveaxis(features, -1, 1).reshape(-1, *features.shape[1:3])
    keep = np.asarray(jnp.std(maps, axis=(1, 2)) > const_tol)
    maps = maps[keep]
    flat = maps.reshape(maps.shape[0], -1)
    unit = flat / (jnp.linalg.norm(flat, axis=1, keepdims=True) + EPS)
    cos = np.abs(np.asarray(unit @ unit.T))
    dup = np.any(np.tril(cos > dup_cos, k=-1), axis=1)
    return np.asarray(maps)[~dup]


def internal_asymmetry(maps: jnp.ndarray, axis: str) -> float:
    """Mean over distinct maps of 2 min(|s|^2, |a|^2) / |f|^2 (see ``symmetry.mixedness``).

    0 when every feature map is mirror-symmetric or mirror-antisymmetric (the
    paper's Picbreeder skull), toward 1 when maps mix both (its SGD imposter).
    """
    return float(jnp.mean(mixedness(maps, axis, spatial=-2)))


def rank_redundancy(maps: jnp.ndarray) -> float:
    """1 - erank / U over the U distinct maps (centred, unit norm).

    erank = exp(H(p)), p_i = sigma_i / sum sigma_j over the singular values of
    the U x pixels matrix (Roy & Vetterli's effective rank). Each unit of a
    factored net adds its own direction (erank close to U, score near 0); a
    fractured net spreads a few directions over many correlated units (score toward 1).
    """
    flat = maps.reshape(maps.shape[0], -1)
    flat = flat - jnp.mean(flat, axis=1, keepdims=True)
    flat = flat / (jnp.linalg.norm(flat, axis=1, keepdims=True) + EPS)
    sv = jnp.linalg.svd(flat, compute_uv=False)
    p = sv / (jnp.sum(sv) + EPS)
    erank = jnp.exp(-jnp.sum(jnp.where(p > 0, p * jnp.log(p + EPS), 0.0)))
    return float(1.0 - erank / maps.shape[0])


def roughness(maps: jnp.ndarray, scale: float) -> float:
    """Mean over distinct maps of k / (k + scale), k = the map's mean level-set curvature.

    k = sum |div(grad f / |grad f|)| |grad f| / sum |grad f| in image units (the
    image spans [-1, 1]), i.e. the total curvature of the map's contour lines per
    unit of contour (coarea formula). Stripes have k = 0 and rings of radius r
    k = 1/r, so Picbreeder's bands and circles score low; the wiggly contours of
    SGD features score high. ``scale`` is the curvature that scores 1/2.
    Independent of resolution (derivatives in image units).
    """
    h = 2.0 / (maps.shape[-1] - 1)
    fy, fx = jnp.gradient(maps, h, axis=(1, 2))
    fyy, fyx = jnp.gradient(fy, h, axis=(1, 2))
    fxx = jnp.gradient(fx, h, axis=2)
    g2 = fx * fx + fy * fy
    g = jnp.sqrt(g2)
    # |div(grad f/|grad f|)| |grad f| = |fxx fy^2 - 2 fx fy fxy + fyy fx^2| / |grad f|^2
    bend = jnp.abs(fxx * fy * fy - 2 * fx * fy * fyx + fyy * fx * fx) / (g2 + EPS)
    flat = g <= 1e-3 * jnp.max(g, axis=(1, 2), keepdims=True)
    kappa = jnp.sum(jnp.where(flat, 0.0, bend), axis=(1, 2)) / (jnp.sum(g, axis=(1, 2)) + EPS)
    return float(jnp.mean(kappa / (kappa + scale)))
