"""Rendering throughput: pixels per second of ferlab's render, beside a bare matmul chain.

The bare chain multiplies the same kernel shapes with no activations, colour
or feature maps: the limit of this machine for these shapes. The ratio says
how close rendering gets to it. Run: python bench/render.py [--size 256] [--batch 64]
"""

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_time  # noqa: E402

from ferlab.cppn import Architecture, init_nets  # noqa: E402
from ferlab.render import grid, render  # noqa: E402

SKULL = "12;cache:15,gaussian:4,identity:2,sin:1"


@jax.jit
def bare_chain(kernels, inputs):
    h = inputs
    for k in kernels:
        h = h @ k
    return h


@jax.jit
def bare_chain_batch(kernels, inputs):
    h = jnp.broadcast_to(inputs, (kernels[0].shape[0], *inputs.shape))
    for k in kernels:
        h = jnp.einsum("bpi,bij->bpj", h, k)
    return h


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default=SKULL)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64, help="image side for the batch case")
    args = parser.parse_args()
    arch = Architecture.parse(args.arch)
    nets = init_nets(arch, jax.random.split(jax.random.PRNGKey(0), args.batch))
    one = jax.tree.map(lambda k: k[0], nets)
    print(f"device: {jax.devices()[0].device_kind}  arch: {arch}  ({arch.n_weights} weights)")
    print(f"{'case':<34}{'ferlab px/s':>14}{'bare px/s':>14}{'ratio':>8}")
    cases = [(f"1 net, {args.size}x{args.size}", one, args.size, False),
             (f"1 net + feature maps, {args.size}^2", one, args.size, True),
             (f"{args.batch} nets, {args.batch_size}x{args.batch_size}", nets, args.batch_size, False)]
    for label, net, size, feats in cases:
        n_nets = net.batch_shape[0] if net.batch_shape else 1
        pixels = n_nets * size * size
        t = best_time(lambda n: render(n, size, features=feats).rgb, net)
        flat_inputs = grid(size).reshape(-1, 4)
        if net.batch_shape:
            t_bare = best_time(bare_chain_batch, net.kernels, flat_inputs)
        else:
            t_bare = best_time(bare_chain, net.kernels, flat_inputs)
        print(f"{label:<34}{pixels / t:>14.3e}{pixels / t_bare:>14.3e}{t_bare / t:>8.2f}")


if __name__ == "__main__":
    main()
