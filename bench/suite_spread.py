"""How much the FER suite's own sampling moves its numbers: the weight subset (beyond
``max_weights``) and the random directions are drawn from ``MetricsConfig.seed``. Each net is
scored under ``--seeds`` suite seeds; the table gives each metric's mean and standard deviation
across them, beside the gap between the paper's Picbreeder and SGD nets that the suite exists to
show. A spread far below that gap means one suite seed suffices; a metric whose spread rivals the
gap is read in its group's mean, not one net at a time.

    PYTHONPATH=. python bench/suite_spread.py [--seeds 6] [--size 64] [--random 2]

The paper's nets are read from ../shared/data/picbreeder (skipped with a note when absent); the
random nets have the skull's architecture (more weights than ``max_weights``, so their subset is
drawn too).
"""

import argparse

import jax
import numpy as np

from ferlab.cppn import init_net, load_net
from ferlab.metrics.suite import METRICS, MetricsConfig, measure_many
from ferlab.search.runs import DEFAULT_ARCH
from ferlab.search.targets import picbreeder_dir


def nets(random: int) -> dict:
    """Name -> net: the paper's Picbreeder and SGD skull and butterfly (when the data is here), and
    ``random`` random skull-architecture nets."""
    out = {}
    try:
        folder = picbreeder_dir() / "nets"
    except Exception as e:  # the data is optional here
        print(f"(no Picbreeder data: {e}; random nets only)")
        folder = None
    if folder is not None:
        for image in ("skull", "butterfly"):
            for kind in ("picbreeder", "sgd"):
                out[f"{kind}_{image}"] = load_net(folder / f"{kind}_{image}.npz")
    for k in range(random):
        out[f"random_{k}"] = init_net(DEFAULT_ARCH, jax.random.PRNGKey(k))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=6, help="suite seeds per net (at least 2)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--random", type=int, default=2, help="random skull-architecture nets")
    args = ap.parse_args(argv)
    if args.seeds < 2:
        ap.error("--seeds must be at least 2 (a spread needs two draws)")
    named = nets(args.random)
    scores = {name: [] for name in named}
    for seed in range(args.seeds):
        for name, result in zip(named, measure_many(list(named.values()), MetricsConfig(size=args.size, seed=seed))):
            row = {m: float(result.metrics[m]) for m in METRICS}
            scores[name].append({**row, "fer_score": result.fer_score})
    columns = [*METRICS, "fer_score"]
    stats = {}
    for name, rows in scores.items():
        values = np.array([[r[c] for c in columns] for r in rows])
        stats[name] = (values.mean(axis=0), values.std(axis=0, ddof=1))
    gaps = {
        f"gap {image}": stats[f"sgd_{image}"][0] - stats[f"picbreeder_{image}"][0]
        for image in ("skull", "butterfly")
        if f"sgd_{image}" in stats
    }
    print(f"mean +- std over {args.seeds} suite seeds ({args.size}x{args.size}); gap: SGD mean - Picbreeder mean")
    print(f"{'metric':<24}" + "".join(f"{n:>22}" for n in stats) + "".join(f"{g:>16}" for g in gaps))
    for i, column in enumerate(columns):
        cells = "".join(f"{f'{m[i]:.3f} +- {s[i]:.3f}':>22}" for m, s in stats.values())
        print(f"{column:<24}{cells}" + "".join(f"{g[i]:>16.3f}" for g in gaps.values()))


if __name__ == "__main__":
    main()
