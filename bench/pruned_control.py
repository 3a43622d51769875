"""Is a Picbreeder net's low fer_score its sparsity? SGD copies of one Picbreeder image on its
architecture, dense and pruned while they train to a share of their weights (``sgd``'s
``prune_to``, gradual magnitude pruning), each scored by the FER suite beside the Picbreeder net,
with every copy's MSE so that they are compared within the studies' fit gate (MSE 0.01).
``bench/wiring_control.py`` and ``bench/size_bias.py`` ask the question without fit (shuffled
and random nets); SGD on the Picbreeder net's own wiring does not reach the image (the
``sgd_masked`` phase of ``studies/fer_paper.yaml``), so pruning is how SGD reaches it sparse.

    PYTHONPATH=. python bench/pruned_control.py [--genome skull] [--keep 1 0.2 0.1 0.05]
        [--seeds 4] [--steps 20000] [--size 64] [--score magnitude|lamp]

Measured (skull, 64x64, 4 seeds; the Picbreeder net 0.346 with 147 weights; 868 s, then 1,161 s):

| copies | weights | MSE | passed (gate 0.01) | fer_score |
|---|---|---|---|---|
| dense, 20,000 steps | 5,478 | 0.0007-0.0009 | 4/4 | 0.710 |
| 20%, 20,000 steps | 1,096 | 0.0021-0.0045 | 4/4 | 0.586 (0.571-0.604) |
| 10%, 20,000 steps | 548 | 0.0112-0.0433 | 0/4 | 0.464-0.526 |
| 10%, 60,000 steps | 548 | 0.0097-0.0268 | 1/4 | 0.479 (all 0.479-0.526) |
| 5%, 20,000 steps | 274 | 0.047-0.062, one dead | 0/4 | 0.355-0.390 |
| 5%, 60,000 steps | 274 | all four dead (white) | 0/4 | none |
| 10% by LAMP, 20,000 steps | 548 | 0.0122-0.0172 | 0/4 | 0.473-0.519 |
| 5% by LAMP, 20,000 steps | 274 | 0.0398-0.0415 | 0/4 | 0.388-0.456 |

Plain magnitude pruning kills sparse seeds by pruning a layer away (at 2.7%, the Picbreeder net's
147 weights, the output kernel kept 0-1 weights in every seed at 32x32); ranked by LAMP
(``--score lamp``, 404 s for the two LAMP rows) no seed died and the fits are tighter, but none
reached the gate either, and the fer_scores at each share are about those of magnitude pruning.
Neither score looks at wiring: at 2.7% (32x32, 10,000 steps, 2 seeds) LAMP kept 148 weights of which
only 35 and 61 had a non-zero gradient, the rest lying off every input-output path. Ranking by
SynFlow's path flow (Tanaka et al. 2020; tried in a scratch script, not kept) left 141-144 of them
live and halved the MSE at 10,000 steps (0.036 against 0.073), but not at 40,000 (0.051-0.069), and
at 5% and 10% it fit no better than LAMP (0.036-0.061 and 0.012-0.019 at 20,000 steps). A decaying
learning rate after the pruning (cosine to 3e-5) changed nothing at 5% or 2.7%. Regrowth
(RigL, Evci et al. 2020; scratch, not kept: after LAMP pruning over 10-40% of the run, every
400 steps drop the live weights of least magnitude and grow as many pruned ones of largest
gradient, the share cosine-decaying from 0.3; 32x32, 2 seeds, MSE against pruning alone on the
same schedule) keeps most weights on a path and halves the error at 5% (0.027-0.029 against
0.047-0.053 at 20,000 steps), but reaches the gate at none of 2.7%, 5% and 10% (at 10%
0.012-0.013 against 0.015-0.016); at 2.7% it gives 0.038-0.060 at 10,000 steps and
0.040-0.048 at 30,000. At the Picbreeder net's size every wiring SGD was given (its own,
LAMP's, SynFlow's, RigL's) stalls near MSE 0.04, where the evolved weights paint the image.

Within the gate, a fifth of the weights lowers fer_score by 0.12 and a tenth by 0.23, about 0.23
per tenfold fewer weights; carried on to the Picbreeder net's 147 weights that line would reach
about 0.35, its own score. So on the skull, sparsity alone could account for the whole
Picbreeder-SGD gap. Two caveats: the dense copies fit better (MSE 0.0007-0.0009 against 0.0021-0.0045
at 20% and 0.0097 at 10%), so this is not equal fit (``studies/picbreeder_genomes.yaml``'s rung
comparisons give the fit-matched figure over 8 images, 0.05-0.10 at 20%); and the copies this
method can bring to the gate stop at 548 weights, so the line below them is an extrapolation, not a
measurement.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ferlab.config import ConfigError
from ferlab.metrics import DeadNet, MetricsConfig, measure, measure_many
from ferlab.search.runs import load_run_config, run
from ferlab.search.sgd import PRUNE_SCORES
from ferlab.search.targets import load_source


def copy_config(genome: str, keep: float, seeds: int, steps: int, size: int, score: str = "magnitude"):
    """The run config of SGD copies: the paper's recipe with warmup, pruned to ``keep`` (1: dense)
    by ``score`` (``sgd.PRUNE_SCORES``)."""
    settings = {"steps": steps, "steps_per_generation": 200, "warmup_steps": 100, "seeds": seeds}
    if keep < 1:
        settings.update(prune_to=keep, prune_score=score)
    spec = f"picbreeder:{genome}"
    return load_run_config({"regime": "sgd", "resolution": size, "target": spec, "arch": spec, "settings": settings})


def copies(config) -> tuple[list, list[float]]:
    """The seeds' final nets and their MSEs."""
    result, _ = run(config, progress=True)
    names = [f"seed_{i}" for i in range(config.settings.seeds)]
    return [result.nets[n] for n in names], [result.losses[n] for n in names]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genome", default="skull")
    parser.add_argument("--keep", type=float, nargs="+", default=[1.0, 0.2, 0.1, 0.05])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--gate", type=float, default=0.01)
    parser.add_argument("--score", default="magnitude", choices=list(PRUNE_SCORES), help="what pruning ranks by")
    args = parser.parse_args()
    if not all(0 < k <= 1 for k in args.keep):
        parser.error(f"--keep takes shares of the weights in (0, 1] (1: dense), got {args.keep}")
    try:  # every config read before any work, so a bad one stops the script before it trains
        net = load_source(f"picbreeder:{args.genome}", "--genome")[0]
        runs = {k: copy_config(args.genome, k, args.seeds, args.steps, args.size, args.score) for k in args.keep}
    except ConfigError as e:
        parser.error(str(e))
    config = MetricsConfig(size=args.size)
    start = time.perf_counter()
    own = measure(net, config)
    print(
        f"{args.genome} at {args.size}x{args.size}, SGD {args.steps} steps, {args.seeds} seeds, "
        f"pruned by {args.score}, gate MSE {args.gate}"
    )
    print(f"{'net':12s} {'weights':>7s} {'MSE':>17s} {'passed':>6s} {'fer_score (passed)':>19s}  each (MSE)")
    print(f"{'picbreeder':12s} {own.info['nonzero_weights']:7d} {'':>17s} {'':>6s} {own.fer_score:19.3f}")
    for keep, run_config in runs.items():
        t = time.perf_counter()
        nets, losses = copies(run_config)
        scored = measure_many(nets, config)
        weights = int(np.median([(np.asarray(n.flat()) != 0).sum() for n in nets]))
        passed = [m.fer_score for m, loss in zip(scored, losses) if loss <= args.gate and not isinstance(m, DeadNet)]
        each = ", ".join(
            ("dead" if isinstance(m, DeadNet) else f"{m.fer_score:.3f}") + f" ({loss:.4f})"
            for m, loss in zip(scored, losses)
        )
        mean = f"{np.mean(passed):.3f}" if passed else "none passed"
        label = "sgd" if keep >= 1 else f"sgd {keep:g}"
        print(
            f"{label:12s} {weights:7d} {min(losses):8.4f}-{max(losses):.4f} {len(passed):3d}/{len(nets):<2d} "
            f"{mean:>19s}  {each}  [{time.perf_counter() - t:.0f} s]",
            flush=True,
        )
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
