"""ES throughput, and the gain of fused generations (``run_search(..., fuse=K)``) over one compiled
call per generation, at populations 32 and 150 by default.

Per population: one ES generation (ask, render, MSE, tell) beside the bare batched render of the
same population, then ``--generations`` generations through ``run_search`` unfused (``fuse=1``)
and fused (``fuse=--fuse``), both warm, best of ``--repeats`` alternating runs.

    PYTHONPATH=. python bench/es.py [--algorithm Open_ES] [--populations 32 150] [--size 32] [--fuse 10]
"""

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_time

from ferlab.cppn import init_net
from ferlab.render import render
from ferlab.search.api import run_search
from ferlab.search.es import ESConfig, ESSearch
from ferlab.search.runs import DEFAULT_ARCH

ARCH = DEFAULT_ARCH  # the paper's skull architecture


def fused_gain(search, generations: int, fuse: int, repeats: int) -> tuple[float, float]:
    """Seconds per generation through run_search, unfused and fused (best of alternating runs)."""
    key = jax.random.PRNGKey(1)
    for k in (1, fuse):
        jax.block_until_ready(run_search(search, key, min(generations, fuse), fuse=k).state)  # compile
    best = {1: float("inf"), fuse: float("inf")}
    for _ in range(repeats):
        for k in (1, fuse):
            t = time.perf_counter()
            jax.block_until_ready(run_search(search, key, generations, fuse=k).state)
            best[k] = min(best[k], (time.perf_counter() - t) / generations)
    return best[1], best[fuse]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--algorithm", default="Open_ES")
    ap.add_argument("--populations", type=int, nargs="+", default=[32, 150])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--generations", type=int, default=50)
    ap.add_argument("--fuse", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    template = init_net(ARCH, jax.random.PRNGKey(0))
    target = jnp.zeros((a.size, a.size, 3))
    print(
        f"{a.algorithm}, {a.size}x{a.size}, {ARCH}, {jax.devices()[0].platform}; "
        f"run_search over {a.generations} generations, fuse=1 vs fuse={a.fuse}"
    )
    print(
        f"{'pop':>5}{'gen ms':>9}{'bare ms':>9}{'ES/bare':>8}{'unfused ms':>12}{'fused ms':>10}{'gain':>7}"
        f"{'fused Mind-px/s':>17}"
    )
    for pop in a.populations:
        search = ESSearch(ESConfig(algorithm=a.algorithm, population_size=pop), template, target)
        state = search.init(jax.random.PRNGKey(1))
        es = best_time(lambda s, search=search: search.step(s)[0], state, repeats=a.repeats)
        flat = jax.random.normal(jax.random.PRNGKey(2), (pop, template.arch.n_weights)) * 0.1
        bare = best_time(lambda f: render(template.with_flat(f), a.size).rgb, flat, repeats=a.repeats)
        unfused, fused = fused_gain(search, a.generations, a.fuse, a.repeats)
        work = pop * a.size * a.size
        print(
            f"{pop:>5}{es * 1e3:>9.2f}{bare * 1e3:>9.2f}{es / bare:>8.2f}{unfused * 1e3:>12.2f}"
            f"{fused * 1e3:>10.2f}{unfused / fused:>7.2f}{work / fused / 1e6:>17.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
