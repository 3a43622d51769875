"""ferlab's NEAT against neat-python 2.x on the same task: match Picbreeder's skull.

Both start from minimal genomes (x, y, d, bias fully linked to one ink output),
draw activations from the same set with the same (Picbreeder) definitions and
score -MSE of the grey image clip(|ink|, 0, 1) to the skull. neat-python's
networks are evaluated with numpy over all pixels at once (its own evaluator
works pixel by pixel); its nodes keep their per-node bias, which ferlab's
genomes get through the bias input instead. neat-python's settings are
filled in from ferlab's defaults (``NEATConfig()``: mutation rates and powers,
no deletions, elitism, stagnation, survival); its speciation threshold stays
fixed at ferlab's starting one.

neat-python is not a ferlab dependency; install it with ferlab into a separate environment::

    python3 -m venv /tmp/benchenv
    /tmp/benchenv/bin/pip install -e . neat-python
    /tmp/benchenv/bin/python bench/neat.py --size 64 --generations 200 --pops 150 1000

Prints, per run, generations/s, genomes x pixels/s over the last 50 generations,
mean genome size, and the best MSE per generation; then the median final MSE
over seeds.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_times

from ferlab.search.api import FUSE, run_search
from ferlab.search.neat import NEAT, NEATConfig
from ferlab.search.targets import load_target

PICBREEDER = {
    "identity": lambda z: z,
    "sin": np.sin,
    "cos": np.cos,
    "sigmoid": lambda z: 2.0 / (1.0 + np.exp(-z)) - 1.0,
    "gaussian": lambda z: 2.0 * np.exp(-z * z) - 1.0,
    "tanh": np.tanh,
}


def ferlab_neat(target, size, pop):
    """ferlab's defaults; below population 64, fewer species slots (min_species_size x max_species <= pop)."""
    species = min(NEATConfig.max_species, pop // NEATConfig.min_species_size)
    return NEAT(
        NEATConfig(
            population_size=pop,
            outputs="ink",
            max_species=species,
            target_species=min(NEATConfig.target_species, species),
        ),
        size,
        target,
    )


def run_ferlab(target, size, pop, generations, seed, fuse=FUSE):
    """``run_search`` with ``fuse`` generations per compiled call; a generation's time is its chunk's share."""
    neat = ferlab_neat(target, size, pop)
    key = jax.random.PRNGKey(seed)
    jax.block_until_ready(run_search(neat, key, 1, fuse=fuse).state)  # compile outside the timing
    outcome = run_search(neat, key, generations, fuse=fuse)
    state = outcome.state
    best = [h["loss"] for h in outcome.history]
    times = [h["wall_time"] for h in outcome.history]
    size_nodes = float(np.mean(np.asarray(state.pop.n_nodes())))
    size_links = float(np.mean(np.asarray(state.pop.n_enabled())))
    return best, times, size_nodes, size_links


NEAT_PYTHON_CONFIG = """
[NEAT]
fitness_criterion = max
fitness_threshold = 1.0
no_fitness_termination = True
pop_size = {pop}
reset_on_extinction = False
seed = {seed}

[DefaultGenome]
num_inputs = 4
num_outputs = 1
num_hidden = 0
feed_forward = True
initial_connection = full_direct
activation_default = random
activation_options = identity sin cos sigmoid gaussian tanh
activation_mutate_rate = {activation_mutate_rate}
aggregation_default = sum
aggregation_options = sum
aggregation_mutate_rate = 0.0
bias_init_mean = 0.0
bias_init_stdev = {weight_init_std}
bias_max_value = {weight_max}
bias_min_value = -{weight_max}
bias_mutate_power = {weight_perturb_power}
bias_mutate_rate = {weight_perturb_rate}
bias_replace_rate = {weight_replace_rate}
response_init_mean = 1.0
response_init_stdev = 0.0
response_max_value = 1.0
response_min_value = 1.0
response_mutate_power = 0.0
response_mutate_rate = 0.0
response_replace_rate = 0.0
weight_init_mean = 0.0
weight_init_stdev = {weight_init_std}
weight_max_value = {weight_max}
weight_min_value = -{weight_max}
weight_mutate_power = {weight_perturb_power}
weight_mutate_rate = {weight_perturb_rate}
weight_replace_rate = {weight_replace_rate}
enabled_default = True
enabled_mutate_rate = {toggle_link_rate}
compatibility_disjoint_coefficient = {compat_disjoint}
compatibility_weight_coefficient = {compat_weight}
conn_add_prob = {add_link_rate}
conn_delete_prob = 0.0
node_add_prob = {add_node_rate}
node_delete_prob = 0.0

[DefaultSpeciesSet]
compatibility_threshold = {threshold_init}

[DefaultStagnation]
species_fitness_func = max
max_stagnation = {stagnation}
species_elitism = {species_elitism}

[DefaultReproduction]
elitism = {elitism}
survival_threshold = {survival_threshold}
min_species_size = {min_species_size}
"""


def import_neat_python():
    """neat-python's ``neat`` package (this script's own folder, where ``neat.py`` sits, hidden)."""
    here = Path(__file__).resolve().parent
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    try:
        return importlib.import_module("neat"), importlib.import_module("neat.graphs").feed_forward_layers
    finally:
        sys.path[:] = saved


def run_neat_python(target, size, pop, generations, seed):
    neat, feed_forward_layers = import_neat_python()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "neat.ini"
        path.write_text(NEAT_PYTHON_CONFIG.format(pop=pop, seed=seed, **asdict(NEATConfig())))
        config = neat.Config(
            neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet, neat.DefaultStagnation, str(path)
        )
    config.genome_config.add_activation("cos", lambda z: PICBREEDER["cos"](z))
    config.genome_config.add_activation("gaussian", lambda z: PICBREEDER["gaussian"](z))
    lin = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    y, x = np.meshgrid(lin, lin, indexing="ij")
    inputs = {
        -1: x.ravel(),
        -2: y.ravel(),
        -3: 1.4 * np.sqrt(x * x + y * y).ravel(),
        -4: np.ones(size * size, np.float32),
    }
    grey = target[..., 0].ravel()
    best = []

    def paint(genome):
        links = [k for k, c in genome.connections.items() if c.enabled]
        values = dict(inputs)
        incoming: dict[int, list] = {}
        for a, b in links:
            incoming.setdefault(b, []).append((a, genome.connections[(a, b)].weight))
        for layer in feed_forward_layers(list(inputs), [0], links)[0]:
            for n in layer:
                node = genome.nodes[n]
                z = node.bias + node.response * sum(
                    (w * values[a] for a, w in incoming.get(n, ())), np.zeros(size * size, np.float32)
                )
                values[n] = PICBREEDER[node.activation](z)
        ink = values.get(0, np.zeros(size * size, np.float32))
        return np.clip(np.abs(ink), 0.0, 1.0)

    def evaluate(genomes, _config):
        mse = []
        for _, genome in genomes:
            genome.fitness = -float(np.mean((paint(genome) - grey) ** 2))
            mse.append(-genome.fitness)
        best.append(min(mse))

    population = neat.Population(config)
    times = []
    for _ in range(generations):
        t0 = time.perf_counter()
        population.run(evaluate, 1)
        times.append(time.perf_counter() - t0)
    genomes = list(population.population.values())
    nodes = float(np.mean([len(g.nodes) + 4 for g in genomes]))  # + the 4 inputs, as ferlab counts them
    links = float(np.mean([sum(c.enabled for c in g.connections.values()) for g in genomes]))
    return best, times, nodes, links


def fused_gain(target, size, pops, generations, fuse, repeats=3):
    """Seconds per generation through ``run_search`` unfused (``fuse=1``) and fused, best of
    alternating runs of the same ``generations`` (bit-equal results, so the same work)."""
    print(f"\nfused generations: run_search over {generations} generations, fuse=1 vs fuse={fuse}")
    print(f"{'pop':>6}{'unfused ms':>12}{'fused ms':>10}{'gain':>7}")
    for pop in pops:
        neat, key = ferlab_neat(target, size, pop), jax.random.PRNGKey(0)
        best = {1: float("inf"), fuse: float("inf")}
        for k in best:
            jax.block_until_ready(run_search(neat, key, 1, fuse=k).state)
        for _ in range(repeats):
            for k in (1, fuse):
                t = time.perf_counter()
                jax.block_until_ready(run_search(neat, key, generations, fuse=k).state)
                best[k] = min(best[k], (time.perf_counter() - t) / generations)
        print(f"{pop:>6}{best[1] * 1e3:>12.2f}{best[fuse] * 1e3:>10.2f}{best[1] / best[fuse]:>7.2f}", flush=True)


def painter_profile(target, size, pops, generations, repeats=3):
    """After ``generations`` generations: painting the population alone and the whole generation,
    timed in turn, beside the dense-matmul limit for genomes of that size: one batched matmul of
    each genome's (n x max_nodes) weights, n its mean number of non-input nodes, by its node values
    over all pixels, and one activation pass (what painting would cost as a single dense layer).
    ``scan`` and ``side`` time each painter alone; ``paint`` is the one ``paint`` picks on this
    backend (genome by genome on a CPU, side by side elsewhere)."""
    from ferlab.render import on_cpu
    from ferlab.search.neat_genome import N_INPUTS, paint

    print(f"\npainter after {generations} generations (genome-pixels/s, M)")
    print(
        f"{'pop':>6}{'nodes':>7}{'links':>7}{'paint':>9}{'step':>9}{'paint share':>13}{'dense limit':>13}"
        f"{'paint/limit':>13}{'scan':>9}{'side':>9}"
    )
    for pop in pops:
        neat = ferlab_neat(target, size, pop)
        state = run_search(neat, jax.random.PRNGKey(0), generations).state
        n = int(np.ceil(float(np.mean(np.asarray(state.pop.n_nodes())))) - N_INPUTS)
        weights = jax.random.normal(jax.random.PRNGKey(1), (pop, n, state.pop.max_nodes))
        values = jax.random.normal(jax.random.PRNGKey(2), (pop, state.pop.max_nodes, size * size))
        limit = jax.jit(lambda w, v: jnp.tanh(jnp.einsum("pnm,pmx->pnx", w, v)))
        t_step, t_limit, t_scan, t_side = best_times(
            [
                (lambda s, neat=neat: neat.step(s)[1]["best_fitness"], (state,)),
                (limit, (weights, values)),
                (lambda p: paint(p, size, True, False)[0], (state.pop,)),
                (lambda p: paint(p, size, True, True)[0], (state.pop,)),
            ],
            repeats=repeats,
        )
        t_paint = t_scan if on_cpu() else t_side
        px = pop * size * size / 1e6
        print(
            f"{pop:>6}{np.mean(np.asarray(state.pop.n_nodes())):>7.1f}"
            f"{np.mean(np.asarray(state.pop.n_enabled())):>7.1f}{px / t_paint:>9.2f}{px / t_step:>9.2f}"
            f"{t_paint / t_step:>13.2f}{px / t_limit:>13.2f}{t_limit / t_paint:>13.2f}{px / t_scan:>9.2f}"
            f"{px / t_side:>9.2f}",
            flush=True,
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--generations", type=int, default=200)
    parser.add_argument("--pops", type=int, nargs="+", default=[150, 1000])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--neat-python-seeds", type=int, default=None, help="seeds for neat-python (default: --seeds)")
    parser.add_argument(
        "--neat-python-generations", type=int, default=None, help="generations for neat-python (default: --generations)"
    )
    parser.add_argument("--only", choices=("ferlab", "neat-python"), default=None, help="run one of the two")
    parser.add_argument("--fuse", type=int, default=FUSE, help="ferlab's generations per compiled call")
    parser.add_argument(
        "--fuse-pops",
        type=int,
        nargs="*",
        default=[32, 150],
        help="populations for the fused-generations gain (none: skip it)",
    )
    parser.add_argument("--fuse-generations", type=int, default=50)
    parser.add_argument(
        "--painter-pops",
        type=int,
        nargs="*",
        default=[],
        help="populations to profile the painter at (after --painter-generations)",
    )
    parser.add_argument("--painter-generations", type=int, default=30)
    args = parser.parse_args(argv)
    target = load_target("picbreeder:skull", args.size)
    pixels = args.size * args.size
    if args.fuse_pops and args.only != "neat-python":
        fused_gain(target, args.size, args.fuse_pops, args.fuse_generations, args.fuse)
    if args.painter_pops and args.only != "neat-python":
        painter_profile(target, args.size, args.painter_pops, args.painter_generations)
    print()
    print(f"skull {args.size}x{args.size}, {jax.devices()[0].platform}")
    print(f"{'run':<24}{'gens':>5}{'gen/s':>9}{'Mgenome-px/s':>14}{'nodes':>7}{'links':>7}{'best MSE':>10}")
    curves = {}
    finals: dict[tuple[str, int], list[float]] = {}
    for pop in args.pops:
        runners = [
            ("ferlab", run_ferlab, args.generations, args.seeds),
            (
                "neat-python",
                run_neat_python,
                args.neat_python_generations or args.generations,
                args.neat_python_seeds or args.seeds,
            ),
        ]
        runners = [r for r in runners if args.only in (None, r[0])]
        for name, runner, generations, seeds in runners:
            for seed in range(seeds):
                extra = {"fuse": args.fuse} if name == "ferlab" else {}
                best, times, nodes, links = runner(target, args.size, pop, generations, seed, **extra)
                last = times[-min(50, len(times)) :]
                label = f"{name} pop {pop} seed {seed}"
                curves[label] = best
                finals.setdefault((name, pop), []).append(best[-1])
                print(
                    f"{label:<24}{generations:>5}{len(times) / sum(times):>9.2f}"
                    f"{pop * pixels * len(last) / sum(last) / 1e6:>14.2f}{nodes:>7.1f}{links:>7.1f}"
                    f"{best[-1]:>10.4f}",
                    flush=True,
                )
    print("\nmedian best MSE at the end over seeds:")
    for (name, pop), values in finals.items():
        print(f"  {name:<12} pop {pop:<5} {statistics.median(values):.4f}  ({len(values)} seeds)")
    print("\nbest MSE per generation:")
    labels = list(curves)
    print("gen," + ",".join(labels))
    for g in range(max(len(c) for c in curves.values())):
        print(f"{g}," + ",".join(f"{curves[k][g]:.5f}" if g < len(curves[k]) else "" for k in labels))


if __name__ == "__main__":
    main()
