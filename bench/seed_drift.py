"""How far a vmapped seed drifts from the same seed trained alone, beside how far a single run drifts
when its init is nudged by one ulp: if the two are alike, the drift is the training's own chaos at
float32, not a batching bug. Skull architecture, normalised-gradient Adam, the skull target.

    PYTHONPATH=. python bench/seed_drift.py [--size 64] [--steps 100] [--seeds 8]
"""

import argparse

import jax
import numpy as np

from ferlab.cppn import init_nets
from ferlab.search.runs import DEFAULT_ARCH
from ferlab.search.sgd import SGDConfig, optimizer, seed_keys, train
from ferlab.search.targets import load_target

ARCH = DEFAULT_ARCH  # the paper's skull architecture


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=8)
    args = ap.parse_args()
    settings = SGDConfig(steps=args.steps, steps_per_generation=args.steps)
    target = jax.numpy.asarray(load_target("picbreeder:skull", args.size))
    nets = init_nets(ARCH, seed_keys(jax.random.PRNGKey(3), args.seeds))
    step = jax.jit(lambda n: train(n, optimizer(settings).init(n), target, settings, args.steps))
    batched = np.asarray(step(nets)[2])
    checkpoints = sorted({min(s, args.steps) - 1 for s in (10, args.steps // 2, args.steps)})
    print(f"relative loss difference at steps {[c + 1 for c in checkpoints]} ({args.size}x{args.size})")
    print(f"{'seed':>4}  {'vmapped vs alone':>36}  {'alone vs alone, init + 1 ulp':>36}")
    for i in range(args.seeds):
        one = jax.tree.map(lambda k: k[i : i + 1], nets)
        alone = np.asarray(step(one)[2])[:, 0]
        nudged = np.asarray(step(jax.tree.map(lambda k: np.nextafter(np.asarray(k), np.float32(np.inf)), one))[2])[:, 0]
        cells = [
            " ".join(f"{abs(x[c] - alone[c]) / alone[c]:.1e}" for c in checkpoints) for x in (batched[:, i], nudged)
        ]
        print(f"{i:>4}  {cells[0]:>36}  {cells[1]:>36}")


if __name__ == "__main__":
    main()
