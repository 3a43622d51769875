"""Does open-ended search reach behaviours that random sampling does not, at equal evaluations?

Every image a method evaluates is painted at ``--size`` and placed in the
evaluation-only behaviour space of ``ferlab.metrics.behaviour`` (symmetry x
complexity x colourfulness, 8 bins each, 512 cells), which none of the searches
optimises. Methods, each given ``--evals`` evaluations:

- ``neat_novelty``: regime neat, fitness novelty (``--novelty-descriptor``, default tone), the
  settings of studies/examples/neat_novelty.yaml, population 150;
- ``ns_es``: regime novelty, NS-ES over architecture ``ARCH`` with the same descriptor:
  ``--ns-es-parents`` parents (default 20), each an Open_ES distribution sampling
  ``--ns-es-population`` (8) nets at ``--ns-es-std`` (0.1), Adam at ``--ns-es-lr`` (0.01);
- ``me_dense`` / ``me_neat``: regime map_elites over the same dense architecture /
  NEAT genomes (``tone`` descriptors, 6 bins each, interest quality);
- ``random_neat``: minimal genomes (NEAT's initial distribution) each mutated by
  NEAT's mutation as many times as neat_novelty had generations;
- ``random_dense``: freshly initialised weights of ``ARCH`` (as NS-ES starts from).

Printed per method and seed: cells covered, the median complexity (log10
high-frequency share) of all evaluated images and of the found set (one image
per covered cell), the covered cells in each bin of each axis (``by_axis``), NEAT
genome sizes (nodes of the final population, elites or samples); then a table of
medians over seeds with the ratio to the matching random baseline, the cells any
method of the run reached (per seed: an empirical ceiling for the ratios) and, for
the first seed, where they lie by axis, and a gallery PNG (one row per method, first seed): the most
distinct found images, a greedy farthest-point pick in the behaviour space.

    PYTHONPATH=. python bench/open_ended.py [--evals 20000] [--size 32] [--seeds 0 1 2] [--out results/open_ended]

Measured with faint pictures read as flat (``behaviour.measure``; 20,000 evaluations, 32x32, seeds
0-2, default settings, median cells; 8 minutes on 2 cores): neat_novelty 293 (1.55x random_neat
189), me_neat 307 (1.62x), ns_es 300 (1.36x random_dense 220), me_dense 285 (1.30x); all methods
together 365, 351 and 354 cells. Before that change, on seed 0: neat_novelty 301, me_neat 325,
random_neat 187, ns_es 285, me_dense 282, random_dense 221, all 361. The figures below predate it.

Measured (20,000 evaluations, 32x32, seeds 0-2, median cells; a loaded 2-core machine):
neat_novelty 200 with luminance descriptors (1.07x random_neat 187), 301 with tone (1.61x);
me_neat 309 (1.65x); me_dense 282 (1.34x random_dense 210). NS-ES: 5 parents, population 32,
std 0.3, lr 0.1 reached 119 cells (0.57x) with luminance and 129 with tone; its samples drift to
busy textures (median complexity -0.3 against random's -2.2), which collapse into the top
complexity bins. Smaller steps, more parents and more, smaller generations keep it in the
smooth half: 20 parents, population 8, std 0.1, lr 0.01, tone 285, 271, 278 (1.32x); the same
with population 32 259 (seed 0), population 4 280, 10 parents 301, 263, 251, 5 parents 286,
254, lr 0.03 246, std 0.05 275. Variants of NEAT novelty: elitism 0 and ``rgb`` descriptors 229
(1.22x); me_dense with iso_sigma 0.05 291 (1.39x). All six methods together reached 361 cells
on seed 0 (me_neat 325, neat_novelty 301): fewer than 2x random_neat's 187. Random NEAT's
walks (133 mutations at weight power 0.5) paint mostly busy textures (median complexity -0.27).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ferlab.cppn import init_net, init_nets
from ferlab.metrics import behaviour
from ferlab.render import render
from ferlab.search.archive import NoveltyConfig, novelty_scores
from ferlab.search.descriptors import DESCRIPTORS
from ferlab.search.es import ESConfig, centre
from ferlab.search.map_elites import MapElites, MapElitesConfig
from ferlab.search.neat import init_state, neat_step
from ferlab.search.neat_config import NEATConfig
from ferlab.search.neat_genome import minimal, paint
from ferlab.search.neat_variation import mutate
from ferlab.search.novelty import NoveltySearch, NoveltySearchConfig

ARCH = "3;sin:4,gaussian:4,sigmoid:4,identity:4"
BASELINE = {
    "neat_novelty": "random_neat",
    "me_neat": "random_neat",
    "ns_es": "random_dense",
    "me_dense": "random_dense",
}
METHODS = ("neat_novelty", "me_neat", "random_neat", "ns_es", "me_dense", "random_dense")
CHUNK = 1000


def neat_settings(
    population: int = 150, max_nodes: int = 32, max_links: int = 96, descriptor: str = "luminance"
) -> NEATConfig:
    """studies/examples/neat_novelty.yaml's settings (novelty fitness, stronger weight mutation)."""
    return NEATConfig(
        population_size=population,
        fitness="novelty",
        weight_perturb_rate=0.8,
        weight_perturb_power=0.5,
        max_nodes=max_nodes,
        max_links=max_links,
        max_species=min(32, population // 2),
        target_species=min(10, population // 2),
        novelty=NoveltyConfig(k=15, max_add=2, capacity=500, descriptor=descriptor),
    )


@dataclass
class Found:
    """What a method evaluated: covered cells, one image per cell (first seen), complexities."""

    covered: np.ndarray = field(default_factory=lambda: np.zeros(behaviour.N_CELLS, bool))
    images: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)
    complexity: list = field(default_factory=list)
    evaluations: int = 0
    nodes: np.ndarray | None = None

    def record(self, rgb) -> None:
        rgb = np.asarray(rgb)
        v = np.asarray(behaviour.measure(jnp.asarray(rgb)))
        c = np.asarray(behaviour.cells(jnp.asarray(rgb)))
        self.complexity.append(v[:, 1])
        self.evaluations += rgb.shape[0]
        for i in np.flatnonzero(~self.covered[c]):
            if c[i] not in self.images:
                self.images[int(c[i])], self.values[int(c[i])] = rgb[i], v[i]
        self.covered[c] = True

    def summary(self) -> dict:
        found = np.array([self.values[k][1] for k in sorted(self.values)])
        out = {
            "cells": int(self.covered.sum()),
            "evaluations": self.evaluations,
            "complexity_all": float(np.median(np.concatenate(self.complexity))),
            "complexity_found": float(np.median(found)),
        }
        out["by_axis"] = by_axis(self.covered)
        if self.nodes is not None:
            out |= {"nodes_mean": float(np.mean(self.nodes)), "nodes_max": int(np.max(self.nodes))}
        return out


def by_axis(covered: np.ndarray) -> dict[str, list[int]]:
    """Covered cells in each bin of each axis (of ``BINS ** 2`` = 64 per bin): where a method's
    cells lie, and which bins no method reaches (an empirical ceiling on the ratios)."""
    grid = covered.reshape((behaviour.BINS,) * len(behaviour.AXES))
    return {
        axis: grid.sum(axis=tuple(j for j in range(grid.ndim) if j != i)).astype(int).tolist()
        for i, axis in enumerate(behaviour.AXES)
    }


def neat_novelty(seed: int, evals: int, size: int, cfg: NEATConfig) -> Found:
    found = Found()
    state = init_state(jax.random.PRNGKey(seed), cfg)
    for _ in range(evals // cfg.population_size):
        found.record(paint(state.pop, size, cfg.ink)[0])
        state, _ = neat_step(state, None, cfg, size)
    found.nodes = np.asarray(state.pop.n_nodes())
    return found


def random_neat(seed: int, evals: int, size: int, mutations: int, cfg: NEATConfig) -> Found:
    """Minimal genomes, each mutated ``mutations`` times by NEAT's mutation (every genome mutable)."""
    found, nodes = Found(), []

    @jax.jit
    def walk(key):
        k_init, k_walk = jax.random.split(key)
        pop = jax.vmap(lambda k: minimal(cfg.max_nodes, cfg.max_links, cfg.ink, k, cfg.weight_init_std))(
            jax.random.split(k_init, CHUNK)
        )
        start = init_state(k_init, cfg)

        def body(carry, k):
            pop, nn, ni = carry
            return mutate(pop, k, jnp.ones(CHUNK, bool), nn, ni, cfg), None

        counters = (start.next_node, start.next_innov)
        (pop, _, _), _ = jax.lax.scan(body, (pop, *counters), jax.random.split(k_walk, mutations))
        return pop

    for i, key in enumerate(jax.random.split(jax.random.PRNGKey(seed), -(-evals // CHUNK))):
        pop = walk(key)
        n = min(CHUNK, evals - i * CHUNK)
        found.record(paint(pop, size, cfg.ink)[0][:n])
        nodes.append(np.asarray(pop.n_nodes())[:n])
    found.nodes = np.concatenate(nodes)
    return found


def random_dense(seed: int, evals: int, size: int) -> Found:
    found = Found()
    for i, key in enumerate(jax.random.split(jax.random.PRNGKey(seed), -(-evals // CHUNK))):
        n = min(CHUNK, evals - i * CHUNK)
        found.record(render(init_nets(ARCH, jax.random.split(key, CHUNK)), size).rgb[:n])
    return found


def ns_es_settings(
    parents: int = 20, population: int = 8, std: float = 0.1, learning_rate: float = 0.01, descriptor: str = "tone"
) -> NoveltySearchConfig:
    """NS-ES's settings: ``parents`` Open_ES distributions, novelty against archive + population,
    at most one addition per generation."""
    return NoveltySearchConfig(
        meta_population=parents,
        es=ESConfig(population_size=population, std=std, learning_rate=learning_rate),
        novelty=NoveltyConfig(threshold=0.2, max_add=1, descriptor=descriptor),
    )


def ns_es(seed: int, evals: int, size: int, settings: NoveltySearchConfig | None = None) -> Found:
    """NS-ES; each generation's sampled population is drawn again as ``NoveltySearch.step`` draws it."""
    settings = settings or ns_es_settings()
    search = NoveltySearch(settings, init_net(ARCH, jax.random.PRNGKey(0)), size)

    @jax.jit
    def population(state):
        _, k_pick, k_ask, _ = jax.random.split(state.key, 4)
        parent_novelty = novelty_scores(
            search.descriptors(centre(search.algo, state.algos)), state.archive, search.config.k
        )
        pick = jax.random.categorical(k_pick, jnp.log(parent_novelty + 1e-9))
        parent = jax.tree.map(lambda x: x[pick], state.algos)
        return search.algo.ask(k_ask, parent, search.params)[0], pick

    found = Found()
    state = search.init(jax.random.PRNGKey(seed))
    for _ in range(evals // settings.es.population_size):
        flat, pick = population(state)
        found.record(render(search.template.with_flat(flat), size).rgb)
        state, stats = search.step(state)
        assert int(stats["parent"]) == int(pick), "NS-ES's population was not drawn as its step draws it"
    return found


def map_elites(seed: int, evals: int, size: int, genome: str, cfg: NEATConfig | None = None, **settings) -> Found:
    kwargs = {"genome": genome, "batch_size": 64, **settings}
    if cfg is not None:
        kwargs["neat"] = cfg
    search = MapElites(MapElitesConfig(**kwargs), size, template=init_net(ARCH, jax.random.PRNGKey(0)))
    key = jax.random.PRNGKey(seed)
    found = Found()
    found.record(search.images(search.random_batch(jax.random.split(key)[0]), size))
    state = search.init(key)
    for _ in range(evals // search.settings.batch_size - 1):
        found.record(search.images(search.children(state), size))
        state, _ = search.step(state)
    if genome == "neat":
        found.nodes = np.asarray(state.archive.payload.n_nodes())[np.asarray(state.archive.filled)]
    return found


def run_method(
    method: str, seed: int, evals: int, size: int, cfg: NEATConfig, me_settings: dict, ns_settings: NoveltySearchConfig
) -> Found:
    if method == "neat_novelty":
        return neat_novelty(seed, evals, size, cfg)
    if method == "random_neat":
        return random_neat(seed, evals, size, evals // cfg.population_size, cfg)
    if method == "ns_es":
        return ns_es(seed, evals, size, ns_settings)
    if method == "random_dense":
        return random_dense(seed, evals, size)
    if method == "me_neat":
        return map_elites(seed, evals, size, "neat", cfg, **me_settings)
    if method == "me_dense":
        return map_elites(seed, evals, size, "dense", **me_settings)
    raise ValueError(method)


def most_distinct(found: Found, n: int) -> list[np.ndarray]:
    """Greedy farthest-point pick of ``n`` found images by their behaviour values (each axis over its bin range)."""
    keys = sorted(found.values)
    v = (np.array([found.values[k] for k in keys]) - behaviour.LOW) / (behaviour.HIGH - behaviour.LOW)
    pick = [int(np.argmax(np.linalg.norm(v - v.mean(0), axis=1)))]
    while len(pick) < min(n, len(keys)):
        d = np.min(np.linalg.norm(v[:, None] - v[pick][None], axis=-1), axis=1)
        pick.append(int(np.argmax(d)))
    return [found.images[keys[i]] for i in pick]


def gallery(rows: dict[str, list[np.ndarray]], size: int, n: int) -> np.ndarray:
    pad = 2
    out = np.ones((len(rows) * (size + pad) + pad, n * (size + pad) + pad, 3), np.float32)
    for r, images in enumerate(rows.values()):
        for c, img in enumerate(images):
            y, x = pad + r * (size + pad), pad + c * (size + pad)
            out[y : y + size, x : x + size] = img
    return out


def table(results: dict[str, list[dict]]) -> str:
    cells = {m: float(np.median([r["cells"] for r in rs])) for m, rs in results.items()}
    lines = [
        "| method | cells per seed | median cells | vs baseline | complexity (all / found) | NEAT nodes |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for m, rs in results.items():
        base = BASELINE.get(m)
        ratio = f"{cells[m] / cells[base]:.2f}x {base}" if base in cells else ""
        nodes = (
            f"{np.mean([r['nodes_mean'] for r in rs]):.1f} (max {max(r['nodes_max'] for r in rs)})"
            if "nodes_mean" in rs[0]
            else ""
        )
        lines.append(
            f"| {m} | {', '.join(str(r['cells']) for r in rs)} | {cells[m]:g} | {ratio} | "
            f"{np.median([r['complexity_all'] for r in rs]):.2f} / "
            f"{np.median([r['complexity_found'] for r in rs]):.2f} | {nodes} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evals", type=int, default=20000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--population", type=int, default=150, help="NEAT novelty's population")
    parser.add_argument(
        "--novelty-descriptor", default="tone", choices=sorted(DESCRIPTORS), help="NEAT novelty's and NS-ES's"
    )
    parser.add_argument("--ns-es-parents", type=int, default=20, help="NS-ES's meta-population")
    parser.add_argument("--ns-es-population", type=int, default=8, help="NS-ES's Open_ES population (even)")
    parser.add_argument("--ns-es-std", type=float, default=0.1)
    parser.add_argument("--ns-es-lr", type=float, default=0.01)
    parser.add_argument("--max-nodes", type=int, default=32, help="NEAT genomes' node cap (every NEAT method)")
    parser.add_argument("--max-links", type=int, default=96, help="NEAT genomes' link cap (every NEAT method)")
    parser.add_argument("--bins", type=int, default=6, help="MAP-Elites bins per descriptor entry")
    parser.add_argument("--descriptor", default="tone", choices=sorted(DESCRIPTORS), help="MAP-Elites descriptor")
    parser.add_argument("--iso-sigma", type=float, default=0.1)
    parser.add_argument("--line-sigma", type=float, default=0.2)
    parser.add_argument("--gallery", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path("results/open_ended"))
    args = parser.parse_args()
    try:
        cfg = neat_settings(args.population, args.max_nodes, args.max_links, args.novelty_descriptor)
        ns = ns_es_settings(
            args.ns_es_parents, args.ns_es_population, args.ns_es_std, args.ns_es_lr, args.novelty_descriptor
        )
    except ValueError as e:
        parser.error(str(e))
    me = {"bins": args.bins, "descriptor": args.descriptor, "iso_sigma": args.iso_sigma, "line_sigma": args.line_sigma}
    args.out.mkdir(parents=True, exist_ok=True)
    print(
        f"{args.evals} evaluations at {args.size}x{args.size}, seeds {args.seeds}; "
        f"NEAT population {args.population}, caps {args.max_nodes}/{args.max_links}; "
        f"novelty descriptor {args.novelty_descriptor}; NS-ES {ns.meta_population} parents, "
        f"population {ns.es.population_size}, std {ns.es.std}, lr {ns.es.learning_rate}; MAP-Elites {me}"
    )
    results: dict[str, list[dict]] = {}
    rows: dict[str, list[np.ndarray]] = {}
    union = {}
    for seed in args.seeds:
        union[seed] = np.zeros(behaviour.N_CELLS, bool)
        for method in args.methods:
            t0 = time.perf_counter()
            found = run_method(method, seed, args.evals, args.size, cfg, me, ns)
            union[seed] |= found.covered
            summary = found.summary() | {"seed": seed, "seconds": round(time.perf_counter() - t0, 1)}
            results.setdefault(method, []).append(summary)
            print(method, json.dumps(summary), flush=True)
            if seed == args.seeds[0]:
                rows[method] = most_distinct(found, args.gallery)
            (args.out / "results.json").write_text(json.dumps(results, indent=1))
    text = (
        table(results)
        + "\n\nCells any method reached: "
        + ", ".join(f"{int(u.sum())} (seed {s})" for s, u in union.items())
        + "\nThose cells by bin of each axis (of 64 a bin), first seed: "
        + "; ".join(f"{axis} {counts}" for axis, counts in by_axis(union[args.seeds[0]]).items())
    )
    print(text)
    (args.out / "table.md").write_text(text + "\n")
    from ferlab.files import write_png

    write_png(args.out / "gallery.png", gallery(rows, args.size, args.gallery))
    print(f"gallery: {args.out / 'gallery.png'} (rows: {', '.join(rows)})")


if __name__ == "__main__":
    main()
