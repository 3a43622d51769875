"""Rendering throughput: pixels per second of ferlab's render, beside a bare matmul chain.

The bare chain multiplies the same kernel shapes with no activations, colour
or feature maps: the limit of this machine for these shapes. It is timed in
three layouts, pixels-major, units-major and units-major in blocks of pixels
(the one ferlab renders in), and the fastest one is the limit; a batch's chain
also one net after another (``lax.map``, as ferlab renders batches on a CPU). The ratio says
how close rendering gets to it; the gap left is the activations themselves
(exp for gaussian units, the sin polynomial), which the bare chain does not
compute. With feature maps, a second bare chain also writes every layer's
output (the same bytes as the maps): writing them out is a cost of its own (on
a CPU, fresh outputs over ~32 MB are page-faulted in on every call), so that
ratio says what rendering adds beyond the writing.
Each case's calls are timed in turn, round by round (``--repeats``).

    PYTHONPATH=. python bench/render.py [--size 256] [--batch 64] [--batch-size 64] [--quick]
"""

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import (
    bare_chain,
    bare_chain_batch,
    bare_chain_batch_mapped,
    bare_chain_batch_units,
    bare_chain_blocks,
    bare_chain_units,
    best_times,
)

from ferlab.cppn import Architecture, apply_groups, dot, init_nets
from ferlab.render import grid, render
from ferlab.search.runs import DEFAULT_ARCH


@jax.jit
def bare_chain_maps(kernels, inputs):
    """The bare chain, also returning every hidden layer's output (as the feature maps)."""
    h, maps = inputs, []
    for k in kernels[:-1]:
        h = dot(h, k)
        maps.append(h)
    return dot(h, kernels[-1]), jnp.stack(maps)


@jax.jit
def bare_chain_units_maps(kernels, inputs):
    """The same, units-major (each unit's map a contiguous row, ferlab's layout for feature maps)."""
    h, maps = inputs.T, []
    for k in kernels[:-1]:
        h = dot(k.T, h)
        maps.append(h)
    return dot(kernels[-1].T, h), jnp.stack(maps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default=DEFAULT_ARCH)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64, help="image side for the batch case")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="64x64, 16 nets at 32x32, 5 repeats")
    args = parser.parse_args()
    if args.quick:
        args.size, args.batch, args.batch_size, args.repeats = 64, 16, 32, 5
    arch = Architecture.parse(args.arch)
    nets = init_nets(arch, jax.random.split(jax.random.PRNGKey(0), args.batch))
    one = jax.tree.map(lambda k: k[0], nets)
    print(f"device: {jax.devices()[0].device_kind}  arch: {arch}  ({arch.n_weights} weights)")
    print(f"{'case':<34}{'ferlab px/s':>14}{'bare px/s':>14}{'ratio':>8}")
    flat, flat_b = grid(args.size).reshape(-1, 4), grid(args.batch_size).reshape(-1, 4)
    pixels, pixels_b = args.size**2, args.batch * args.batch_size**2
    pre = jax.random.normal(jax.random.PRNGKey(1), (arch.width, pixels))  # one layer's, units-major
    activations = jax.jit(lambda z: apply_groups(arch, z, axis=0))
    t = best_times(
        [
            (lambda n: render(n, args.size).rgb, (one,)),
            (bare_chain, (one.kernels, flat)),
            (bare_chain_units, (one.kernels, flat)),
            (bare_chain_blocks, (one.kernels, flat)),
            (lambda n: render(n, args.size, features=True), (one,)),
            (bare_chain_maps, (one.kernels, flat)),
            (bare_chain_units_maps, (one.kernels, flat)),
            (lambda n: render(n, args.batch_size).rgb, (nets,)),
            (bare_chain_batch, (nets.kernels, flat_b)),
            (bare_chain_batch_units, (nets.kernels, flat_b)),
            (bare_chain_batch_mapped, (nets.kernels, flat_b)),
            (activations, (pre,)),
        ],
        repeats=args.repeats,
    )
    print(
        "bare chain, pixels-major / units-major / units-major in blocks: "
        f"1 net {t[1] * 1e3:.1f} / {t[2] * 1e3:.1f} / {t[3] * 1e3:.1f} ms, "
        f"batch {t[8] * 1e3:.1f} / {t[9] * 1e3:.1f} / mapped {t[10] * 1e3:.1f} ms; writing maps, pixels-major / "
        f"units-major {t[5] * 1e3:.1f} / {t[6] * 1e3:.1f} ms (the fastest of each is the limit below)"
    )
    one_bare, maps_bare, batch_bare = min(t[1:4]), min(t[5:7]), min(t[8:11])
    rows = [
        (f"1 net, {args.size}x{args.size}", pixels, t[0], one_bare),
        (f"1 net + feature maps, {args.size}^2", pixels, t[4], one_bare),
        ("  ... vs bare chain writing maps", pixels, t[4], maps_bare),
        (f"{args.batch} nets, {args.batch_size}x{args.batch_size}", pixels_b, t[7], batch_bare),
    ]
    for label, px, mine, bare in rows:
        print(f"{label:<34}{px / mine:>14.3e}{px / bare:>14.3e}{bare / mine:>8.2f}")
    acts = t[11] * arch.n_layers
    print(
        f"the activations alone (one layer's, times {arch.n_layers} layers, one net at {args.size}^2): "
        f"{acts * 1e3:.1f} ms; bare chain + activations {(one_bare + acts) * 1e3:.1f} ms against "
        f"ferlab's {t[0] * 1e3:.1f} ms ({(one_bare + acts) / t[0]:.2f}x)"
    )


if __name__ == "__main__":
    main()
