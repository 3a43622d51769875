"""Time the FER metric suite at 64x64: the Picbreeder and SGD skull nets and an apple-sized net.

The apple-sized net has the Picbreeder apple's shape (33 hidden layers of width
38, about 46k weights), randomly initialised. "cold" includes JAX compilation
(a fresh process, as `ferlab analyze` runs); "warm" repeats the call.

Then the time of 8 seeds of the skull architecture (8 randomly initialised nets,
as an SGD run's seeds) against one of them, warm, side by side: the ratio the
study pays to score a run's seeds (target: at most 3x). ``--chunk`` times it at
each number of pictures a call (``MetricsConfig.chunk``, 64 by default): a batch
size only, so the seeds' fer_scores printed beside each agree up to float
rounding. On a CPU, which the suite already keeps busy, a larger chunk does not
help: here 8 seeds took 5.8 s at 64 and 6.5 s at 512, and the ratio fell to
2.3x only because one seed, padding its calls to 512 pictures, took 2.8 s
against 0.7 (read the times, not the ratio alone). On an accelerator, where a
call of 64 small pictures leaves most of it idle, it is the setting to try
(``bench/device.sh`` times 64 and 512).

    PYTHONPATH=. python bench/analyze.py [--size 64] [--chunk 64 512] [--data ../shared/data/picbreeder]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import bare_chain_batch, bare_chain_batch_mapped, bare_chain_batch_units, best_time

from ferlab.cppn import init_net, load_net
from ferlab.errors import FerlabError
from ferlab.metrics import MetricsConfig, measure, measure_many
from ferlab.render import grid
from ferlab.search.runs import DEFAULT_ARCH

APPLE = "33;cache:28,gaussian:4,identity:2,sigmoid:2,sin:2"


def _time(net, config):
    start = time.perf_counter()
    measured = measure(net, config)
    return time.perf_counter() - start, measured


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2, help="timed rounds of the 1- and 8-seed calls")
    parser.add_argument("--seeds-only", action="store_true", help="only the 1-seed against 8-seed timing")
    parser.add_argument(
        "--profile", type=int, default=0, help="then profile one 8-seed call: its N costliest functions (host time)"
    )
    parser.add_argument(
        "--chunk",
        type=int,
        nargs="+",
        help="pictures a call (MetricsConfig.chunk), each timed in turn (default: its default)",
    )
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/picbreeder"))
    args = parser.parse_args()
    try:
        config = MetricsConfig(size=args.size)
        chunked = [dataclasses.replace(config, chunk=c) for c in args.chunk or [config.chunk]]
    except FerlabError as e:
        parser.error(str(e))
    nets = {}
    if not args.seeds_only:
        nets = {name: load_net(Path(args.data) / "nets" / f"{name}.npz") for name in ("picbreeder_skull", "sgd_skull")}
        nets["apple-sized random"] = init_net(APPLE, jax.random.PRNGKey(0))
    print(f"FER suite at {args.size}x{args.size}, {jax.device_count()} {jax.default_backend()} device(s)")
    print(f"{'net':20s} {'weights':>8s} {'cold s':>8s} {'warm s':>8s} {'fer_score':>9s}")
    for name, net in nets.items():
        cold, measured = _time(net, config)
        warm, _ = _time(net, config)
        print(f"{name:20s} {net.arch.n_weights:8d} {cold:8.1f} {warm:8.1f} {measured.fer_score:9.3f}")
    seeds = [init_net(DEFAULT_ARCH, jax.random.PRNGKey(k)) for k in range(8)]
    for each in chunked:
        timed = seed_ratio(seeds, each, args.repeats)
    if args.profile:
        _profile(timed[1], args.profile)


def seed_ratio(seeds, config, repeats):
    """Time the suite on 1 and on 8 seeds of one architecture, warm, side by side, and print the
    ratio with the FLOP figures that say what limits it; returns the two timed calls."""
    pictures, scores = {}, {}

    def count(n):
        def progress(done, total, stage):
            pictures[n] = total

        return progress

    def call(n):
        scores[n] = [m.fer_score for m in measure_many(seeds[:n], config, count(n))]

    timed = [(lambda n=n: call(n)) for n in (1, len(seeds))]
    for fn in timed:
        fn()  # compile once for each stack of nets
    best, host = [float("inf")] * len(timed), [float("inf")] * len(timed)
    for _ in range(repeats):
        for k, fn in enumerate(timed):
            start, cpu = time.perf_counter(), time.thread_time()
            fn()
            best[k] = min(best[k], time.perf_counter() - start)
            host[k] = min(host[k], time.thread_time() - cpu)
    one, eight = best
    print(
        f"skull architecture, warm, chunk {config.chunk} (pictures a call): 1 seed {one:.1f} s, 8 seeds "
        f"{eight:.1f} s, ratio {eight / one:.2f}x (target <= 3x); the 8 seeds' fer_scores "
        + " ".join(f"{v:.6f}" for v in scores[len(seeds)])
    )
    serial = _serial_host(seeds, config)
    print(
        f"host work (this thread's CPU time; XLA runs on threads of its own): 1 seed {host[0]:.2f} s, 8 seeds "
        f"{host[1]:.2f} s, {host[1] / host[0]:.1f}x: where the device's work is small, 8 seeds take at least "
        f"{host[1]:.2f} s however fast it is; with each net's own host work on this thread too (the suite "
        f"runs it on one thread a net) 8 seeds take {serial:.2f} s of it"
    )
    arch = seeds[0].arch
    flops = 2 * arch.n_weights * config.size**2  # one picture's matmuls
    chunk = jax.tree.map(lambda *k: jax.numpy.stack(k), *([seeds[0]] * config.chunk))
    flat = grid(config.size).reshape(-1, 4)
    bare = min(
        best_time(f, chunk.kernels, flat, repeats=5)
        for f in (bare_chain_batch, bare_chain_batch_units, bare_chain_batch_mapped)
    )
    print(
        f"pictures rendered (about): 1 seed {pictures[1]}, 8 seeds {pictures[len(seeds)]}; effective matmul rate "
        f"{pictures[1] * flops / one / 1e9:.1f} / {pictures[len(seeds)] * flops / eight / 1e9:.1f} GFLOP/s "
        f"against a bare chain of {config.chunk} nets' pictures at {config.chunk * flops / bare / 1e9:.1f} GFLOP/s "
        "(effective: every picture counted as a whole chain, although a single-weight sweep's picture skips "
        "the layers before its weight, so the suite can pass the bare chain; what is left is activations, "
        "colour and the metrics' own work)"
    )
    needed = pictures[len(seeds)] * flops / (3 * one) / 1e9
    rate_one, bare_rate = pictures[1] * flops / one / 1e9, config.chunk * flops / bare / 1e9
    print(
        f"8 seeds within 3x of one seed need an effective rate of {needed:.1f} GFLOP/s: "
        f"{needed / rate_one:.1f}x one seed's own and {needed / bare_rate:.1f}x the bare chain's, counted alike"
    )
    return timed


def _serial_host(seeds, config) -> float:
    """The calling thread's CPU time for the 8 seeds with the suite's per-net threads run in turn on it:
    all the host work an accelerator waits for, where the one-thread-a-net figure assumes free cores."""
    from ferlab.metrics import suite

    threaded = suite._each
    suite._each = lambda fn, items: [fn(x) for x in items]
    try:
        start = time.thread_time()
        measure_many(seeds, config)
        return time.thread_time() - start
    finally:
        suite._each = threaded


def _profile(fn, top):
    """cProfile of ``fn`` (an 8-seed call): where the host spends the call, functions by own time.
    Beside it the host's CPU seconds against the wall's: on an accelerator, near 1 means host-bound."""
    import cProfile
    import pstats

    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"\n8 seeds again, unprofiled: {wall:.2f} s wall, {cpu:.2f} s of this process's CPU time")
    profiler = cProfile.Profile()
    profiler.runcall(fn)
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(top)


if __name__ == "__main__":
    main()
