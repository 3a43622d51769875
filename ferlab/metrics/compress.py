"""Compressibility: how many weights magnitude pruning must keep to hold the picture.

Keep the k largest-magnitude weights, zero the rest, and find the smallest k
whose picture still has PSNR >= ``psnr_db`` against the full net's (and does so
for every larger k tried). The score is k / n_weights of the architecture, so
a sparse Picbreeder net scores its few real links and a dense SGD net most of
its kernels. All candidate k of a round render in batched chunks: a
geometric grid first, then a linear grid between the last failing and first
passing k.
"""

from __future__ import annotations

import numpy as np

from ferlab.cppn import DenseNet
from ferlab.metrics.sweeps import pictures
from ferlab.render import render


def _pruned_psnr(net: DenseNet, keeps: np.ndarray, size: int, chunk: int, base: np.ndarray) -> np.ndarray:
    """PSNR against ``base`` of the picture with only the ``keeps[j]`` largest-magnitude weights left."""
    flat = np.asarray(net.flat())
    rank = np.empty(flat.size, np.int64)
    rank[np.argsort(-np.abs(flat), kind="stable")] = np.arange(flat.size)
    dirs = np.where(rank[None, :] < keeps[:, None], 0.0, -flat[None, :]).astype(np.float32)
    rgb = pictures(net, dirs, np.ones((keeps.size, 1)), size, chunk)[:, 0]
    return -10.0 * np.log10(np.mean(np.square(rgb - base), axis=(1, 2, 3)) + 1e-12)


def keep_share(
    net: DenseNet, size: int, psnr_db: float, grid: int = 32, chunk: int = 64, base: np.ndarray | None = None
) -> float:
    """Smallest share of the architecture's weights that keeps PSNR >= psnr_db against ``base``, the
    net's own picture at ``size`` (rendered here unless the caller has it)."""
    base = np.asarray(render(net, size).rgb) if base is None else base
    nnz = int(np.count_nonzero(np.asarray(net.flat())))
    if nnz == 0:
        return 0.0
    lo, hi = 0, nnz  # invariant: k = hi passes (it is the full net); k = lo fails or is 0
    for linear in (False, True):
        if hi - lo <= 1:
            break
        ks = np.linspace(lo, hi, grid) if linear else np.geomspace(1, hi, grid)
        ks = np.unique(np.clip(np.round(ks), lo + 1, hi).astype(np.int64))
        ok = _pruned_psnr(net, ks, size, chunk, base) >= psnr_db
        failing = ks[~ok]
        passing = ks[ok & (ks > (failing.max() if failing.size else 0))]
        hi = int(passing.min()) if passing.size else hi
        lo = int(failing.max()) if failing.size and failing.max() < hi else lo
    return hi / net.arch.n_weights
