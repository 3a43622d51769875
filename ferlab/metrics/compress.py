"""Compressibility: how many weights magnitude pruning must keep to hold the picture.

Keep the k largest-magnitude weights, zero the rest, and find the smallest k
whose picture still has PSNR >= ``psnr_db`` against the full net's (and does so
for every larger k tried). The score is k / n_weights of the architecture, so
a sparse Picbreeder net scores its few real links and a dense SGD net most of
its kernels. All candidate k of a round render in batched chunks: a
geometric grid first (and k = 0: a nearly black picture is kept with no weight
at all, which scores 0), then a linear grid between the last failing and first
passing k.
"""

from __future__ import annotations

import numpy as np

from ferlab.cppn import DenseNet, stack_nets
from ferlab.metrics.sweeps import by_slot, pictures
from ferlab.render import render, render_padded


def _magnitude_rank(weights: np.ndarray) -> np.ndarray:
    """Each weight's place in its row (N, n_weights) by decreasing magnitude: 0 is the largest."""
    rank = np.empty(weights.shape, np.int32)
    order = np.argsort(-np.abs(weights), axis=1, kind="stable")
    np.put_along_axis(rank, order, np.arange(weights.shape[1], dtype=np.int32)[None], 1)
    return rank


def _pruned_psnr(
    nets: DenseNet,
    weights: np.ndarray,
    rank: np.ndarray,
    owners: np.ndarray,
    keeps: np.ndarray,
    size: int,
    chunk: int,
    bases: np.ndarray,
    maps=None,
) -> np.ndarray:
    """PSNR against ``bases[owners[j]]`` of net ``owners[j]`` of the stack ``nets`` (its flat
    ``weights`` and their ``_magnitude_rank``) with only its ``keeps[j]`` largest-magnitude weights
    left (``bases`` and ``maps``: the stack's, as ``sweeps.pictures`` takes them)."""
    dirs = np.where(rank[owners] < keeps[:, None], np.float32(0.0), -weights[owners])
    mse = pictures(nets, dirs, np.ones((keeps.size, 1)), size, chunk, owner=owners, maps=maps, errors_from=bases)
    return -10.0 * np.log10(mse[:, 0] + 1e-12)


def keep_share(
    net: DenseNet, size: int, psnr_db: float, grid: int = 32, chunk: int = 64, base: np.ndarray | None = None
) -> float:
    """Smallest share of the architecture's weights that keeps PSNR >= psnr_db against ``base``, the
    net's own picture at ``size`` (rendered here unless the caller has it)."""
    base = np.asarray(render(net, size).rgb) if base is None else base
    return keep_shares(stack_nets([net]), [0], [base], size, psnr_db, grid, chunk)[0]


def keep_shares(
    nets: DenseNet,
    owners: list[int],
    bases: list[np.ndarray],
    size: int,
    psnr_db: float,
    grid: int = 32,
    chunk: int = 64,
    maps=None,
) -> list[float]:
    """``keep_share`` of nets ``owners`` of the stack ``nets`` (one architecture) against their
    pictures ``bases``: each round's candidates of every net render in shared calls, so a run's
    seeds cost two calls, not two a net (``maps``: the stack's, as ``sweeps.pictures`` takes them).
    Each net gets the share it gets alone."""
    maps = render_padded(nets, size, features=True).features if maps is None else maps  # once, for both rounds
    weights = nets.host_flat()
    rank = _magnitude_rank(weights)  # once, for every candidate of both rounds
    stacked = by_slot(owners, bases)
    nnz = np.count_nonzero(weights[owners], axis=1)
    lo, hi = np.full(len(bases), -1, np.int64), nnz.astype(np.int64)  # k = hi passes (the full net); k = lo fails
    for linear in (False, True):
        open_ = [i for i in range(len(bases)) if hi[i] - lo[i] > 1]
        if not open_:
            break
        ks = []
        for i in open_:
            k = np.linspace(lo[i], hi[i], grid) if linear else np.append(0, np.geomspace(1, hi[i], grid))
            ks.append(np.unique(np.clip(np.round(k), lo[i] + 1, hi[i]).astype(np.int64)))
        counts = [k.size for k in ks]
        stack_rows = np.asarray(owners, np.int32)[np.repeat(open_, counts)]
        psnr = _pruned_psnr(nets, weights, rank, stack_rows, np.concatenate(ks), size, chunk, stacked, maps)
        bounds = np.cumsum([0] + counts)
        for j, i in enumerate(open_):
            ok = psnr[bounds[j] : bounds[j + 1]] >= psnr_db
            failing = ks[j][~ok]
            passing = ks[j][ok & (ks[j] > (failing.max() if failing.size else -1))]
            hi[i] = int(passing.min()) if passing.size else hi[i]
            lo[i] = int(failing.max()) if failing.size and failing.max() < hi[i] else lo[i]
    return [float(h / nets.arch.n_weights) if n else 0.0 for h, n in zip(hi, nnz)]
