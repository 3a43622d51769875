"""Compressibility: how many weights magnitude pruning must keep to hold the picture.

Keep the k largest-magnitude weights, zero the rest, and find the smallest k
whose picture still has PSNR >= ``psnr_db`` against the full net's (and does so
for every larger k tried). The score is k / n_weights of the architecture, so
a sparse Picbreeder net scores its few real links and a dense SGD net most of
its kernels. All candidate k of a round render in one vmapped call: a
geometric grid first, then a linear grid between the last failing and first
passing k.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ferlab.cppn import DenseNet
from ferlab.render import render


@partial(jax.jit, static_argnames=("size",))
def _pruned_psnr(net: DenseNet, keeps: jax.Array, size: int) -> jax.Array:
    flat = net.flat()
    rank = jnp.argsort(jnp.argsort(-jnp.abs(flat)))
    base = render(net, size).rgb

    def one(k):
        rgb = render(net.with_flat(jnp.where(rank < k, flat, 0.0)), size).rgb
        return -10.0 * jnp.log10(jnp.mean(jnp.square(rgb - base)) + 1e-12)

    return jax.vmap(one)(keeps)


def keep_share(net: DenseNet, size: int, psnr_db: float, grid: int = 32) -> float:
    """Smallest share of the architecture's weights that keeps PSNR >= psnr_db."""
    nnz = int(np.count_nonzero(np.asarray(net.flat())))
    if nnz == 0:
        return 0.0
    lo, hi = 0, nnz  # invariant: k = hi passes (it is the full net); k = lo fails or is 0
    for linear in (False, True):
        if hi - lo <= 1:
            break
        ks = (np.linspace(lo, hi, grid) if linear else np.geomspace(1, hi, grid))
        ks = np.unique(np.clip(np.round(ks), lo + 1, hi).astype(np.int32))
        ok = np.asarray(_pruned_psnr(net, jnp.asarray(np.resize(ks, grid)), size))[:ks.size] >= psnr_db
        failing = ks[~ok]
        passing = ks[ok & (ks > (failing.max() if failing.size else 0))]
        hi = int(passing.min()) if passing.size else hi
        lo = int(failing.max()) if failing.size and failing.max() < hi else lo
    return hi / net.arch.n_weights
