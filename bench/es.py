"""ES throughput: individuals x pixels per second for a population of 256 at 64x64 (ask, render,
MSE, tell), beside the bare batched render of the same population.

    PYTHONPATH=. python bench/es.py [--algorithm Open_ES] [--population 256] [--size 64]
"""

import argparse
import time

import jax
import jax.numpy as jnp

from ferlab.cppn import init_net
from ferlab.render import render
from ferlab.search.es import ESConfig, ESSearch
from ferlab.search.runs import DEFAULT_ARCH

ARCH = DEFAULT_ARCH  # the paper's skull architecture


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--algorithm", default="Open_ES")
    ap.add_argument("--population", type=int, default=256)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--generations", type=int, default=3)
    a = ap.parse_args()
    template = init_net(ARCH, jax.random.PRNGKey(0))
    target = jnp.zeros((a.size, a.size, 3))
    search = ESSearch(ESConfig(algorithm=a.algorithm, population_size=a.population), template, target)
    state = search.init(jax.random.PRNGKey(1))
    jax.block_until_ready(search.step(state))
    t = time.perf_counter()
    for _ in range(a.generations):
        state, stats = search.step(state)
    jax.block_until_ready(stats)
    es = (time.perf_counter() - t) / a.generations
    pop = template.with_flat(jax.random.normal(jax.random.PRNGKey(2), (a.population, template.arch.n_weights)) * 0.1)
    jax.block_until_ready(render(pop, a.size).rgb)
    t = time.perf_counter()
    for _ in range(a.generations):
        rgb = render(pop, a.size).rgb
    jax.block_until_ready(rgb)
    bare = (time.perf_counter() - t) / a.generations
    work = a.population * a.size * a.size
    print(f"{a.algorithm}, population {a.population}, {a.size}x{a.size}, {ARCH}, {jax.devices()[0].platform}")
    print(f"  ES generation:  {es * 1e3:8.1f} ms  {work / es / 1e6:8.2f} M individual-pixels/s")
    print(f"  bare render:    {bare * 1e3:8.1f} ms  {work / bare / 1e6:8.2f} M individual-pixels/s "
          f"(ES overhead {es / bare:.2f}x)")


if __name__ == "__main__":
    main()
