"""SGD steps/s at the paper's skull settings (256x256, 12 layers of width 22): 1 seed, 8 vmapped
seeds, and a plain jitted train step of the same shapes (Adam, normalised gradient) as the limit.

    PYTHONPATH=. python bench/sgd.py [--size 256] [--steps 20]
"""

import argparse

import jax
import jax.numpy as jnp
import optax

from _timing import best_time
from ferlab.cppn import init_nets
from ferlab.render import render
from ferlab.search.runs import DEFAULT_ARCH
from ferlab.search.sgd import SGDConfig, optimizer, seed_keys, train

ARCH = DEFAULT_ARCH  # the paper's skull architecture


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    a = ap.parse_args()
    target = jax.random.uniform(jax.random.PRNGKey(9), (a.size, a.size, 3))
    settings = SGDConfig(steps=a.steps, steps_per_generation=a.steps)
    print(f"SGD at {a.size}x{a.size}, {ARCH}, {a.steps} steps per call, {jax.devices()[0].platform}")
    for seeds in (1, 8):
        nets = init_nets(ARCH, seed_keys(jax.random.PRNGKey(0), seeds))
        fn = jax.jit(lambda n: train(n, optimizer(settings).init(n), target, settings, a.steps)[2])
        dt = best_time(fn, nets, repeats=2)
        print(f"  ferlab.search.sgd.train, {seeds} seed(s): {a.steps / dt:8.1f} steps/s "
              f"({seeds * a.steps / dt:8.1f} seed-steps/s)")
    net = init_nets(ARCH, seed_keys(jax.random.PRNGKey(0), 1))
    net = jax.tree.map(lambda k: k[0], net)
    opt = optax.adam(3e-3)

    def loss(n):
        return jnp.mean((render(n, a.size).rgb - target) ** 2)

    @jax.jit
    def reference(n, s):
        g = jax.grad(loss)(n)
        g = jax.tree.map(lambda x: x / optax.global_norm(g), g)
        u, s = opt.update(g, s, n)
        return optax.apply_updates(n, u), s

    state = opt.init(net)

    def loop(n, s):
        for _ in range(a.steps):
            n, s = reference(n, s)
        return n

    dt = best_time(loop, net, state, repeats=2)
    print(f"  reference jitted step (1 net, python loop): {a.steps / dt:8.1f} steps/s")


if __name__ == "__main__":
    main()
