"""How well each reproducer regime fits a Picbreeder image: best MSE against evaluations and wall time.

Per regime (sgd, es dense and masked (Sep-CMA-ES; es_masked_cma: CMA-ES), es_small (Sep-CMA-ES on a
small dense net, scored at 32x32), neat, neat_sgd), target and seed, one run at the target net's
architecture (es_small: its own; neat and neat_sgd grow their own) for at most
``--minutes`` of wall time or ``--generations`` generations, whichever ends
first. Prints one row per run (generations, evaluations, seconds, best MSE and
the seconds to reach 0.02, 0.01 and 0.002) and a summary per regime and target
(median best and how many seeds reached each yardstick), and draws one PNG:
best MSE so far (log) against evaluations (log), one panel per target, one
colour per regime, one line per seed.

    python bench/fit.py --seeds 5 --minutes 20                    # the issue's yardstick (hours)
    python bench/fit.py --seeds 1 --minutes 1 --regimes sgd,neat  # a quick look
    python bench/fit.py --seeds 5 --minutes 4 --stop-at 0.02 --regimes neat_sgd,es_small
    python bench/fit.py --seeds 5 --regimes sgd,es_small --stop-at sgd=0.002,es_small=0.02 --jobs 2

Runs go ``--jobs N`` at a time (default 1), each in a worker process pinned to a
core of its own, so that a run's wall time is its core's alone (at most one job
per core).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import jax
import numpy as np

from ferlab.errors import FerlabError
from ferlab.search.runs import load_run_config, make_search

YARDSTICKS = (0.02, 0.01, 0.002)


def configs(target: str, resolution: int) -> dict[str, dict]:
    """The run config of each regime for ``target`` (``picbreeder:NAME``)."""
    neat = {"population_size": 150, "generations": 100000}
    return {
        "sgd": {
            "regime": "sgd",
            "arch": target,
            "settings": {"steps": 1_000_000, "steps_per_generation": 100, "warmup_steps": 100},
        },
        "es": {
            "regime": "es",
            "arch": target,
            "generations": 10_000_000,
            "settings": {"algorithm": "Open_ES", "population_size": 128, "std": 0.05, "learning_rate": 0.01},
        },
        "es_masked": {
            "regime": "es",
            "arch": target,
            "generations": 10_000_000,
            "settings": {"algorithm": "Sep_CMA_ES", "population_size": 64, "std": 0.3, "mask_from": target},
        },
        "es_masked_cma": {
            "regime": "es",
            "arch": target,
            "generations": 10_000_000,
            "settings": {"algorithm": "CMA_ES", "population_size": 32, "std": 0.3, "mask_from": target},
        },
        # a small dense net (516 weights; SGD takes it to 0.0066 on the skull in 60 s) scored at 32x32:
        # pilots on the skull, 90-240 s, 1 seed each, loaded machine: Sep-CMA-ES 0.0253 (90 s) and 0.0216
        # (240 s), Open_ES (population 256, std 0.03, lr 0.01) 0.0256 and 0.0233, CMA-ES 0.056 (90 s);
        # fitness at 16x16 stalls (Open_ES 0.037); on the target's own 5,478 weights Open_ES stays at 0.084
        "es_small": {
            "regime": "es",
            "arch": "4;sin:4,gaussian:4,identity:4",
            "generations": 10_000_000,
            "settings": {"algorithm": "Sep_CMA_ES", "population_size": 64, "std": 0.1, "fitness_resolution": 32},
        },
        "neat": {"regime": "neat", "settings": neat},
        # pilots on the skull, 120 s, 1 seed, loaded machine: population 32 (more generations) beat 64
        # (0.037 vs 0.041); random pixels of the full grid beat a 16x16 or 32x32 grid (0.041 vs 0.050-0.051).
        # 20 minutes, seed 0, one core each: caps 32/96 at lr 0.05 0.0315, 48/192 0.0261, 48/192 with the
        # rate decaying to 0.003 over 2,000 generations 0.0239 (seed 1: 0.0246); 64/256 was slower per minute.
        # With the hand-written gradient (2x the generations a minute): 48/384, decay over 4,000 generations,
        # 0.0199 at 409 s (seed 0); 64/384 (decay over 3,000) 0.0353 at 480 s
        "neat_sgd": {
            "regime": "neat_sgd",
            "settings": {
                "neat": {
                    **neat,
                    "population_size": 32,
                    "max_species": 8,
                    "target_species": 4,
                    "max_nodes": 48,
                    "max_links": 384,
                },
                "train_every": 1,
                "train_steps": 10,
                "learning_rate": 0.05,
                "final_learning_rate": 0.003,
                "decay_generations": 4000,
                "train_batch": 8,
                "train_pixels": 128,
            },
        },
    }


def fit_run(config: dict, seconds: float, generations: int, stop_at: float = 0.0) -> dict:
    """One run until ``seconds`` or ``generations``, or until its best MSE is at or below ``stop_at``:
    its curve (evaluations, wall time, best MSE so far)."""
    cfg = load_run_config(config)
    search = make_search(cfg)
    start = time.perf_counter()
    state = search.init(jax.random.PRNGKey(cfg.seed))
    evaluations, walls, best = [], [], []
    low = np.inf
    for _ in range(generations):
        state, stats = search.step(state)
        loss = float(stats.get("best_loss", stats["loss"]))
        low = min(low, loss)
        evaluations.append(float(stats["evaluations"]))
        walls.append(time.perf_counter() - start)
        best.append(low)
        if walls[-1] >= seconds or low <= stop_at:
            break
    return {"evaluations": np.array(evaluations), "wall": np.array(walls), "best": np.array(best)}


def stop_levels(text: str, regimes: list[str]) -> dict[str, float]:
    """``--stop-at``: one MSE for every regime (``0.02``) or ``REGIME=MSE`` pairs (others run on)."""
    pairs = {}
    try:
        if "=" not in text:
            levels = dict.fromkeys(regimes, float(text))
        else:
            pairs = dict(item.split("=", 1) for item in text.split(","))
            levels = {regime: float(pairs.pop(regime, 0.0)) for regime in regimes}
    except ValueError as e:
        raise ValueError(f"--stop-at: {text!r} is neither an MSE nor REGIME=MSE pairs ({e})") from None
    if pairs:
        raise ValueError(f"--stop-at names regimes not run: {', '.join(sorted(pairs))}")
    if not all(0 <= level < 1 for level in levels.values()):
        raise ValueError(f"--stop-at: each MSE must be in [0, 1), got {text!r}")
    return levels


def _spawn():
    return multiprocessing.get_context("spawn")


def _cores(jobs: int):
    """A queue of the first ``jobs`` cores this process may use, one for each worker to take."""
    cores = _spawn().Queue()
    for core in sorted(os.sched_getaffinity(0))[:jobs]:
        cores.put(core)
    return cores


def _pin(cores) -> None:
    """Pin this worker process to one core of the queue ``cores`` (a job per core)."""
    os.sched_setaffinity(0, {cores.get()})


def reached_at(curve: dict, level: float) -> float:
    """Seconds (including compilation) until the best MSE was at or below ``level`` (NaN: never)."""
    hit = np.flatnonzero(curve["best"] <= level)
    return float(curve["wall"][hit[0]]) if hit.size else np.nan


def plot(curves: dict, path: Path) -> None:
    from ferlab.figures import figure_png, subplots

    targets = sorted({t for _, t, _ in curves})
    regimes = sorted({r for r, _, _ in curves})
    colours = {r: f"C{i}" for i, r in enumerate(regimes)}
    fig, axes = subplots(1, len(targets), 4.8 * len(targets), 3.8, dpi=110)
    for ax, target in zip(axes.ravel(), targets):
        for (regime, t, seed), c in sorted(curves.items()):
            if t == target:
                ax.plot(
                    c["evaluations"],
                    c["best"],
                    color=colours[regime],
                    alpha=0.8,
                    lw=1.2,
                    label=regime if seed == 0 else None,
                )
        for level in YARDSTICKS:
            ax.axhline(level, color="grey", lw=0.6, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("evaluations (log)")
        ax.set_ylabel("best MSE so far (log)")
        ax.set_title(target)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    path.write_bytes(figure_png(fig, tight=True))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regimes", default="sgd,es,es_masked,es_small,neat,neat_sgd")
    parser.add_argument("--targets", default="skull,butterfly")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-time budget per run")
    parser.add_argument("--generations", type=int, default=10**7, help="generation cap per run")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument(
        "--stop-at", default="0", help="end a run once its best MSE is at or below this (or REGIME=MSE,...)"
    )
    parser.add_argument("--out", type=Path, default=Path("fit.png"))
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, each pinned to its own core")
    a = parser.parse_args(argv)
    if not 1 <= a.jobs <= len(os.sched_getaffinity(0)):
        parser.error(f"--jobs must be between 1 and this machine's {len(os.sched_getaffinity(0))} cores, got {a.jobs}")
    if a.seeds < 1 or a.minutes <= 0 or a.generations < 1:
        parser.error("--seeds, --minutes and --generations must be positive")
    regimes, targets = a.regimes.split(","), a.targets.split(",")
    unknown = sorted(set(regimes) - set(configs("picbreeder:skull", a.resolution)))
    if unknown:
        parser.error(f"--regimes: no bench config for {', '.join(unknown)}")
    try:
        stop = stop_levels(a.stop_at, regimes)
    except ValueError as e:
        parser.error(str(e))
    runs = {}
    for name in targets:
        target = f"picbreeder:{name}"
        table = configs(target, a.resolution)
        for regime in regimes:
            for seed in range(a.seeds):
                runs[regime, name, seed] = {**table[regime], "target": target, "resolution": a.resolution, "seed": seed}
    try:  # every run's config checked here, before any run starts
        for config in runs.values():
            load_run_config(config)
    except FerlabError as e:
        parser.error(str(e))
    curves = {}
    print(
        f"{'regime':10} {'target':10} {'seed':>4} {'gens':>7} {'evals':>11} {'s':>7} {'best':>8} "
        + " ".join(f"{'s@' + str(y):>8}" for y in YARDSTICKS),
        flush=True,
    )
    with ProcessPoolExecutor(a.jobs, mp_context=_spawn(), initializer=_pin, initargs=(_cores(a.jobs),)) as pool:
        futures = {key: pool.submit(fit_run, c, 60 * a.minutes, a.generations, stop[key[0]]) for key, c in runs.items()}
        for (regime, name, seed), future in futures.items():  # in the order submitted
            c = curves[regime, name, seed] = future.result()
            print(
                f"{regime:10} {name:10} {seed:4d} {len(c['best']):7d} {c['evaluations'][-1]:11.0f} "
                f"{c['wall'][-1]:7.1f} {c['best'][-1]:8.5f} "
                + " ".join(f"{reached_at(c, y):8.1f}" for y in YARDSTICKS),
                flush=True,
            )
    print("\nsummary: median best MSE, and seeds reaching each yardstick")
    for regime in regimes:
        for name in targets:
            bests = [c["best"][-1] for (r, t, _), c in curves.items() if (r, t) == (regime, name)]
            counts = " ".join(f"<={y}: {sum(b <= y for b in bests)}/{len(bests)}" for y in YARDSTICKS)
            print(f"{regime:10} {name:10} median {np.median(bests):.5f}  {counts}")
    plot(curves, a.out)
    print(f"curves: {a.out}")


if __name__ == "__main__":
    main()
