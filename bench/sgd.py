"""SGD steps/s at the paper's skull settings (256x256, 12 layers of width 22): ferlab's ``train``
for 1 seed and for 8 seeds (on a CPU one after another, elsewhere vmapped), beside a paper-style
reference step (one net, a jitted step of Adam on the normalised gradient, called from a Python
loop, as the FER paper's ``train_sgd`` runs; its forward pass is the paper's pixels-major dense
layers, ferlab renders units-major), timed in turn round by round. Prints the ratios and the
achieved FLOP rate (a step is about 3x a forward pass: forward, and backward through activations
and kernels) beside the rate of a bare jitted matmul chain of the same shapes (forward only, no
activations), to show how close to this machine's limit for width-22 matmuls each form runs.

    PYTHONPATH=. python bench/sgd.py [--size 256] [--steps 10] [--seeds 8] [--quick]
"""

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import bare_chain, best_times

from ferlab.cppn import forward, init_nets
from ferlab.render import colour, grid
from ferlab.search.runs import DEFAULT_ARCH
from ferlab.search.sgd import SGDConfig, optimizer, seed_keys, train

ARCH = DEFAULT_ARCH  # the paper's skull architecture


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="64x64, 5 steps, 2 repeats")
    a = ap.parse_args()
    if a.quick:
        a.size, a.steps, a.repeats = 64, 5, 2
    target = jax.random.uniform(jax.random.PRNGKey(9), (a.size, a.size, 3))
    settings = SGDConfig(steps=a.steps, steps_per_generation=a.steps)
    fn = jax.jit(lambda n: train(n, optimizer(settings).init(n), target, settings, a.steps)[2])
    batches = {s: init_nets(ARCH, seed_keys(jax.random.PRNGKey(0), s)) for s in (1, a.seeds)}
    net = jax.tree.map(lambda k: k[0], batches[1])
    opt = optax.adam(3e-3)

    pixels = grid(a.size).reshape(-1, 4)

    def loss(n):
        """The paper's forward: pixels-major dense layers (as its Flax model), then the colour."""
        hsv = forward(n.arch, n.kernels, pixels, units_major=False)[0]
        return jnp.mean((colour(hsv).reshape(target.shape) - target) ** 2)

    @jax.jit
    def reference(n, s):
        g = jax.grad(loss)(n)
        g = jax.tree.map(lambda x: x / optax.global_norm(g), g)
        u, s = opt.update(g, s, n)
        return optax.apply_updates(n, u), s

    def loop(n, s):
        for _ in range(a.steps):
            n, s = reference(n, s)
        return n

    flat = grid(a.size).reshape(-1, 4)
    t_one, t_many, t_ref, t_bare = best_times(
        [
            (fn, (batches[1],)),
            (fn, (batches[a.seeds],)),
            (loop, (net, opt.init(net))),
            (bare_chain, (net.kernels, flat)),
        ],
        repeats=a.repeats,
    )
    fwd_flops = 2 * a.size * a.size * net.arch.n_weights  # multiply-adds of one forward pass, x2
    print(f"SGD at {a.size}x{a.size}, {ARCH}, {a.steps} steps per call, {jax.devices()[0].platform}")
    print(f"{'form':<44}{'steps/s':>9}{'seed-steps/s':>14}{'GFLOP/s':>9}")
    rows = [
        ("reference jitted step (1 net, python loop)", a.steps / t_ref, 1),
        ("ferlab train, 1 seed", a.steps / t_one, 1),
        (f"ferlab train, {a.seeds} seeds", a.steps / t_many, a.seeds),
    ]
    for label, rate, seeds in rows:
        print(f"{label:<44}{rate:>9.2f}{rate * seeds:>14.2f}{3 * fwd_flops * rate * seeds / 1e9:>9.2f}")
    print(f"{'bare matmul chain (forward only)':<44}{'':>9}{'':>14}{fwd_flops / t_bare / 1e9:>9.2f}")
    print(
        f"ratios: 1 seed / reference {t_ref / t_one:.2f}x; "
        f"{a.seeds} seeds / 1 seed (seed-steps/s) {a.seeds * t_one / t_many:.2f}x"
    )


if __name__ == "__main__":
    main()
