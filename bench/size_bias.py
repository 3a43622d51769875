"""How much a net's size alone moves fer_score: random dense nets (nothing searched them) of
2, 4 and 8 hidden layers and widths 4 to 32, a few seeds each, scored by the FER suite. The
report sets each group's median weights beside its fer_score (``weights``), since regimes build
nets of very different sizes (a NEAT genome of tens of links, an SGD copy of thousands); this
says how far size alone could account for a difference between them.

    PYTHONPATH=. python bench/size_bias.py [--seeds 3] [--size 64]

Measured (3 seeds, 64x64, 35 s): the mean fer_score per architecture runs from 0.385 to 0.455:
0.385-0.410 from 44 to 1,248 weights, 0.417-0.455 from 1,904 to 7,392; Pearson r with log10
weights +0.72 over the 12 architectures (+0.71 at 32x32). So size alone shifts fer_score by
about 0.05 over two decades of weights: small beside the Picbreeder-SGD gap (about 0.3), but the
size of some regime differences. The quick main job's NEAT-target copies (34 weights, 0.25) lie
below every random dense net of any size here: the number of their weights does not explain their
low scores (whether their sparse wiring does, random dense nets cannot say).
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from ferlab.cppn import init_net
from ferlab.metrics import DeadNet, MetricsConfig, measure

LAYERS = (2, 4, 8)
WIDTHS = (4, 8, 16, 32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--size", type=int, default=64)
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
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
