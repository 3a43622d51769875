"""How spread out novelty search's archive is, beside three references: random nets of the same
architecture, the most mutually distant of many random nets (greedy farthest-point pick), and a set
of as many nets trained jointly by gradient ascent on their mean pairwise distance (what the
architecture can paint at best, an upper reference no search is expected to reach).

Spread = mean pairwise RMS distance of the default descriptors (16x16 luminance), against the
spread of the whole pool of random nets (its expected value for any set size, without the noise of
a small sample); sparseness = mean distance to the nearest other member, what novelty search
rewards locally (it fills the space of images evenly rather than pushing the whole set to its
extremes), against as many random nets (it falls with the set's size).

``--sweep`` runs the 48 settings of ``SWEEP`` (algorithm, std, parents, population, additions per
generation) for ``--generations`` and prints each archive's spread against random nets.

    PYTHONPATH=. python bench/novelty_spread.py [--config studies/examples/novelty.yaml] [--generations 50]
    PYTHONPATH=. python bench/novelty_spread.py --sweep --generations 50
"""

import argparse
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ferlab.cppn import init_nets
from ferlab.search.api import run_search
from ferlab.search.archive import distances, mean_nearest_distance, mean_pairwise_distance
from ferlab.search.novelty import describe
from ferlab.search.runs import load_run_config, make_search


def farthest_points(desc: np.ndarray, n: int) -> np.ndarray:
    """Greedy max-min pick of ``n`` rows."""
    d = np.asarray(distances(jnp.asarray(desc), jnp.asarray(desc)))
    pick = [int(np.argmax(d.sum(1)))]
    for _ in range(n - 1):
        pick.append(int(np.argmax(d[:, pick].min(1))))
    return desc[pick]


def ascended(search, key, n: int, steps: int) -> np.ndarray:
    """Descriptors of ``n`` nets after ``steps`` of Adam on their mean pairwise distance."""
    nets = init_nets(search.template.arch, jax.random.split(key, n))

    def loss(nets):
        d = describe(nets, search.config)
        sq = jnp.mean((d[:, None] - d[None]) ** 2, -1) + jnp.eye(n) + 1e-6  # no sqrt'(0)
        return -jnp.sum(jnp.sqrt(sq) * (1 - jnp.eye(n))) / (n * (n - 1))

    opt = optax.adam(0.01)

    @jax.jit
    def step(carry, _):
        nets, state = carry
        grads = jax.grad(loss)(nets)
        updates, state = opt.update(grads, state, nets)
        return (optax.apply_updates(nets, updates), state), None

    (nets, _), _ = jax.lax.scan(step, (nets, opt.init(nets)), None, length=steps)
    return np.asarray(describe(nets, search.config))


SWEEP = {
    "es.algorithm": ["Open_ES", "SNES", "Sep_CMA_ES"],
    "es.std": [0.3, 0.6],
    "meta_population": [5, 10],
    "es.population_size": [32, 128],
    "novelty.max_add": [1, 3],
}


def sweep(args, pooled: np.ndarray):
    """Spread of the archive after ``generations`` for every point of ``SWEEP`` (none changes the
    architecture or the descriptor, so one pool of random nets serves them all)."""
    gens = args.generations[0]
    base = float(mean_pairwise_distance(jnp.asarray(pooled)))
    print(f"{'  '.join(SWEEP)}  archive  spread x random")
    for point in itertools.product(*SWEEP.values()):
        sets = [f"settings.{k}={v}" for k, v in zip(SWEEP, point)]
        config = load_run_config(args.config, [f"generations={gens}", f"resolution={args.resolution}", *sets])
        search = make_search(config)
        archive = run_search(search, jax.random.PRNGKey(config.seed), gens).state.archive
        n = int(archive.size)
        ratio = float(mean_pairwise_distance(archive.descriptors[:n])) / base
        print("  ".join(f"{v!s:>{len(k)}}" for k, v in zip(SWEEP, point)), f"{n:8d}  {ratio:6.2f}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="studies/examples/novelty.yaml")
    ap.add_argument("--generations", type=int, nargs="+", default=[50, 200])
    ap.add_argument("--resolution", type=int, default=16)
    ap.add_argument("--pool", type=int, default=2048, help="random nets to pick the farthest from")
    ap.add_argument("--ascent-steps", type=int, default=2000)
    ap.add_argument("--sweep", action="store_true", help="the archive's spread over the settings in SWEEP")
    args = ap.parse_args()

    search = make_search(load_run_config(args.config, [f"resolution={args.resolution}"]))
    pooled = np.asarray(
        describe(init_nets(search.template.arch, jax.random.split(jax.random.PRNGKey(2), args.pool)), search.config)
    )
    if args.sweep:
        return sweep(args, pooled)
    base = float(mean_pairwise_distance(jnp.asarray(pooled)))
    rows = []
    for gens in args.generations:
        config = load_run_config(args.config, [f"generations={gens}", f"resolution={args.resolution}"])
        search = make_search(config)
        archive = run_search(search, jax.random.PRNGKey(config.seed), gens).state.archive
        n = int(archive.size)
        random = describe(init_nets(search.template.arch, jax.random.split(jax.random.PRNGKey(1), n)), search.config)
        sets = {
            f"random nets (n={n})": random,
            f"novelty archive after {gens} generations": archive.descriptors[:n],
            f"farthest {n} of {args.pool} random nets": farthest_points(pooled, n),
            f"{n} nets by gradient ascent on spread": ascended(search, jax.random.PRNGKey(3), n, args.ascent_steps),
        }
        rows += [
            (
                name,
                float(mean_pairwise_distance(jnp.asarray(d))),
                base,
                float(mean_nearest_distance(jnp.asarray(d))),
                float(mean_nearest_distance(random)),
            )
            for name, d in sets.items()
        ]
    print(f"{'set':<44} {'spread':>7} {'x random':>9} {'sparseness':>11} {'x random':>9}")
    for name, value, base, sparse, sparse_base in rows:
        print(f"{name:<44} {value:7.3f} {value / base:9.2f} {sparse:11.3f} {sparse / sparse_base:9.2f}")


if __name__ == "__main__":
    main()
