"""How much a net's size and sparsity alone move fer_score: random nets (nothing searched them),
scored by the FER suite. First dense nets of 2, 4 and 8 hidden layers and widths 4 to 32; then
nets of 4 and 8 layers of width 16 with only a share of their weights kept (``--keep``, each
kept weight scaled by 1/sqrt(share) so every unit's input keeps its variance). The report sets
each group's median weights beside its fer_score (``weights``), since regimes build nets of
very different sizes and sparsity (a NEAT genome of tens of links, a layerized Picbreeder net of
a few hundred among thousands of zeros, an SGD copy dense); this says how far those alone could
account for a difference between them.

    PYTHONPATH=. python bench/size_bias.py [--seeds 3] [--size 64] [--keep 1 0.3 0.1]

Measured (64x64, 3 seeds dense, 4 sparse; 48 s):
- Dense: the mean fer_score per architecture runs from 0.385 to 0.455: 0.385-0.410 from 44 to
  1,248 weights, 0.417-0.455 from 1,904 to 7,392; Pearson r with log10 weights +0.72 over the 12
  architectures (+0.71 at 32x32). Size alone shifts fer_score by about 0.05 over two decades.
- Sparse: keeping 30% of the weights lowers it from 0.405-0.419 to 0.346-0.352, keeping 10% to
  0.267-0.275 (one net in four dead).
So sparsity moves fer_score about as far as the gap between the paper's Picbreeder nets (about
0.33, a few hundred non-zero weights) and random dense nets (0.41). But these sparse random nets
paint nearly flat pictures (image detail at most 0.010, the Picbreeder pictures 0.08-0.21), so
whether the sparsity lowers their scores or the missing structure does, random nets cannot tell.
The SGD copies (about 0.63) lie far above random dense nets of their size. Read a sparse net's
low score beside its ``weights`` and its picture's detail.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from ferlab.cppn import DenseNet, init_net
from ferlab.metrics import DeadNet, MetricsConfig, measure

LAYERS = (2, 4, 8)
WIDTHS = (4, 8, 16, 32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--keep", type=float, nargs="+", default=[1.0, 0.3, 0.1], help="shares of weights kept")
    parser.add_argument("--sparse-seeds", type=int, default=4)
    args = parser.parse_args()
    config = MetricsConfig(size=args.size)
    start = time.perf_counter()
    print(f"random dense nets, {args.seeds} seeds each, FER suite at {args.size}x{args.size}")
    print(f"{'layers':>6s} {'width':>5s} {'weights':>7s} {'fer_score':>9s}  seeds (dead)")
    sizes, scores = [], []
    for layers in LAYERS:
        for width in WIDTHS:
            quarter = width // 4
            arch = f"{layers};sin:{quarter},gaussian:{quarter},sigmoid:{quarter},identity:{quarter}"
            found, dead, weights = [], 0, 0
            for seed in range(args.seeds):
                try:
                    measured = measure(init_net(arch, jax.random.PRNGKey(seed)), config)
                except DeadNet:
                    dead += 1
                    continue
                found.append(measured.fer_score)
                weights = measured.info["nonzero_weights"]
            if not found:
                print(f"{layers:6d} {width:5d} {'':>7s} {'all dead':>9s}  ({dead})")
                continue
            sizes.append(weights)
            scores.append(float(np.mean(found)))
            seeds = ", ".join(f"{v:.3f}" for v in found)
            print(f"{layers:6d} {width:5d} {weights:7d} {scores[-1]:9.3f}  {seeds}" + (f" ({dead})" if dead else ""))
    if len(scores) > 2:
        r = np.corrcoef(np.log10(sizes), scores)[0, 1]
        print(f"\nPearson r(fer_score, log10 weights) over {len(scores)} architectures: {r:+.2f}")
        print(f"fer_score from {min(scores):.3f} to {max(scores):.3f}")
    print(f"\nsparse nets, {args.sparse_seeds} seeds each, width 16, each kept weight scaled by 1/sqrt(share)")
    print(f"{'layers':>6s} {'kept':>5s} {'weights':>7s} {'fer_score':>9s} {'detail':>7s}  seeds (dead)")
    for layers in (4, 8):
        arch = f"{layers};sin:4,gaussian:4,sigmoid:4,identity:4"
        for keep in args.keep:
            found, details, counts, dead = [], [], [], 0
            for seed in range(args.sparse_seeds):
                try:
                    measured = measure(sparse(init_net(arch, jax.random.PRNGKey(seed)), keep, seed), config)
                except DeadNet:
                    dead += 1
                    continue
                found.append(measured.fer_score)
                details.append(measured.info["image_detail"])
                counts.append(measured.info["nonzero_weights"])
            if not found:
                print(f"{layers:6d} {keep:5.2f} {'':>7s} {'all dead':>9s}  ({dead})")
                continue
            seeds = ", ".join(f"{v:.3f}" for v in found)
            print(
                f"{layers:6d} {keep:5.2f} {np.mean(counts):7.0f} {np.mean(found):9.3f} {np.mean(details):7.3f}  {seeds}"
                + (f" ({dead})" if dead else "")
            )
    print(f"{time.perf_counter() - start:.0f} s")


def sparse(net: DenseNet, keep: float, seed: int) -> DenseNet:
    """``net`` with each weight kept with probability ``keep``, the kept ones scaled by 1/sqrt(keep)."""
    if keep >= 1.0:
        return net
    rng = np.random.default_rng(1000 + seed)
    kernels = [jnp.asarray(np.asarray(k) * (rng.random(k.shape) < keep) / np.sqrt(keep), k.dtype) for k in net.kernels]
    return DenseNet(net.arch, tuple(kernels))


if __name__ == "__main__":
    main()
