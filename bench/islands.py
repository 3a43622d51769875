"""Island model throughput: evaluations per second of 1, 2, 4... islands (each on its own Ray actor).

Each island evolves its own population of ``--population`` nets (weak scaling:
N islands do N times the work), migrating its best every ``--migrate-every``
generations. Evaluations/s counts generations after the first slice (which
includes JIT compilation). With one CPU per island, N islands need N cores to
run side by side; on fewer cores the extra islands queue or share.
``--regime``: ``es`` (Open_ES over a dense net's weights), ``neat`` (NEAT
matching the target, champions migrate) or ``novelty`` (weight-space novelty
search, SimpleGA; the islands share one archive).

    python bench/islands.py --regime neat --islands 1 2 4 --generations 30
"""

from __future__ import annotations

import argparse
import functools
import os
import time

import jax

from ferlab.search.runs import load_run_config, shared_archive
from ferlab.workers.islands import island_search, run_islands


def regime_config(args) -> dict:
    """One island's run config for ``--regime``."""
    base = {"regime": args.regime, "generations": args.generations, "resolution": args.resolution}
    if args.regime == "es":
        return {
            **base,
            "target": args.target,
            "arch": args.arch,
            "settings": {"algorithm": "Open_ES", "population_size": args.population},
        }
    if args.regime == "neat":
        species = max(1, args.population // 4)
        return {
            **base,
            "target": args.target,
            "settings": {
                "population_size": args.population,
                "outputs": "ink",
                "max_species": species,
                "target_species": max(1, species // 2),
            },
        }
    return {
        **base,
        "arch": args.arch,
        "settings": {"es": {"algorithm": "SimpleGA", "population_size": args.population}, "novelty": {"capacity": 200}},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--regime", choices=("es", "neat", "novelty"), default="es")
    ap.add_argument("--islands", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--population", type=int, default=64, help="nets per island")
    ap.add_argument("--generations", type=int, default=30)
    ap.add_argument("--migrate-every", type=int, default=5)
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--arch", default="3;sin:4,gaussian:4,sigmoid:4,identity:4")
    ap.add_argument("--target", default="picbreeder:skull")
    ap.add_argument("--cpus-per-island", type=float, default=1)
    args = ap.parse_args()

    import ray

    cores = os.cpu_count() or 1
    ray.init(
        num_cpus=max(cores, int(max(args.islands) * args.cpus_per_island)),
        object_store_memory=200 * 1024**2,
        include_dashboard=False,
        logging_level="ERROR",
        runtime_env={"env_vars": {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}},
    )
    data = regime_config(args)
    make = functools.partial(island_search, data)
    archive = shared_archive(load_run_config(data))
    print(
        f"{cores} cores; {args.regime}, {args.population} per island, {args.resolution}px, "
        f"{args.generations} generations, migrate every {args.migrate_every}"
    )
    shown = "archive_size" if args.regime == "novelty" else "loss"
    print(f"{'islands':>8} {'evals/s':>10} {'speed-up':>9} {shown:>12} {'migrations':>10} {'wall s':>8}")
    base = None
    for n in args.islands:
        t0 = time.perf_counter()
        out = run_islands(
            make,
            jax.random.PRNGKey(0),
            n,
            args.generations,
            args.population,
            migrate_every=args.migrate_every,
            cpus=args.cpus_per_island,
            archive_capacity=archive,
        )
        rate = out.steady_evaluations / out.steady_seconds
        base = base or rate
        final = [s[shown] for s in out.history[-1]]
        value = max(final) if args.regime == "novelty" else min(final)
        wall = time.perf_counter() - t0
        print(f"{n:>8} {rate:>10.0f} {rate / base:>8.2f}x {value:>12.4g} {out.migrations:>10} {wall:>8.1f}")
    ray.shutdown()


if __name__ == "__main__":
    main()
