"""Is a Picbreeder net's low fer_score its evolved weights or its wiring? Each shared Picbreeder
net (the paper's skull and butterfly and the 8 CPPN-X genomes, layerized) is scored as people
evolved it and with its weights shuffled within each layer (the non-zero positions kept, their
values permuted: the same wiring and weight distribution, no evolved weights), ``--shuffles``
times. A shuffled net paints another picture, so the two are not copies of one image; the
control says how much of the score the wiring alone gives. ``studies/fer_paper.yaml``'s
``sgd_masked`` phase asks the matching question at equal fit (SGD on the same wiring).

    PYTHONPATH=. python bench/wiring_control.py [--shuffles 3] [--size 64]

Measured (64x64, 3 shuffles, 42 s): over the 8 distinct nets, evolved 0.334 against shuffled
0.353 on average; the evolved net scores lower on 6 of the 8 (skull 0.346 against 0.371,
Moonlight 0.380 against 0.475) and higher on 2 (butterfly 0.344 against 0.284, LetterG 0.323
against 0.249). The shuffled nets paint structured pictures (image detail 0.04-0.18) and score
far below the main job's SGD copies of the skull and butterfly (about 0.63): fer_score reads the sparse
wiring first and the evolved weights only a little (about 0.02).
"""

from __future__ import annotations

import argparse
import time

import jax.numpy as jnp
import numpy as np

from ferlab.config import ConfigError
from ferlab.cppn import DenseNet, load_net
from ferlab.metrics import DeadNet, MetricsConfig, measure
from ferlab.search.targets import picbreeder_dir
from ferlab.sources import load_dense

SAME = {"576_Skull": "picbreeder_skull", "4376_ButterflyColor": "picbreeder_butterfly"}  # one net, two files


def shuffled(net: DenseNet, seed: int) -> DenseNet:
    """``net`` with each layer's non-zero weights permuted among their own positions."""
    rng = np.random.default_rng(seed)
    kernels = []
    for kernel in net.kernels:
        values = np.asarray(kernel).copy()
        where = np.nonzero(values)
        values[where] = rng.permutation(values[where])
        kernels.append(jnp.asarray(values))
    return DenseNet(net.arch, tuple(kernels))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shuffles", type=int, default=3)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    try:
        data = picbreeder_dir()
    except ConfigError as e:
        raise SystemExit(f"skipped: {e}") from None
    nets = {name: load_net(data / "nets" / f"{name}.npz") for name in ("picbreeder_skull", "picbreeder_butterfly")}
    for path in sorted((data / "genomes" / "cppnx").glob("*.xml")):
        if path.stem not in SAME:
            nets[path.stem] = load_dense(path)[0]
    config = MetricsConfig(size=args.size)
    start = time.perf_counter()
    print(f"FER suite at {args.size}x{args.size}; shuffled: each layer's non-zero weights permuted ({args.shuffles}x)")
    print(f"{'net':24s} {'weights':>7s} {'evolved':>7s} {'shuffled':>8s} {'detail':>13s}  shuffles (dead)")
    evolved, shuffles = [], []
    for name, net in nets.items():
        own = measure(net, config)
        scores, details, dead = [], [], 0
        for seed in range(args.shuffles):
            try:
                measured = measure(shuffled(net, seed), config)
            except DeadNet:
                dead += 1
                continue
            scores.append(measured.fer_score)
            details.append(measured.info["image_detail"])
        mean = float(np.mean(scores)) if scores else float("nan")
        evolved.append(own.fer_score)
        shuffles.append(mean)
        detail = f"{own.info['image_detail']:.3f}/{np.mean(details):.3f}" if details else "n/a"
        print(
            f"{name:24s} {own.info['nonzero_weights']:7d} {own.fer_score:7.3f} {mean:8.3f} {detail:>13s}  "
            + ", ".join(f"{v:.3f}" for v in scores)
            + (f" ({dead})" if dead else "")
        )
    pairs = [(e, s) for e, s in zip(evolved, shuffles) if np.isfinite(s)]
    lower = sum(e < s for e, s in pairs)
    print(
        f"\nover {len(pairs)} nets: evolved {np.mean([e for e, _ in pairs]):.3f}, shuffled "
        f"{np.mean([s for _, s in pairs]):.3f}; the evolved net lower on {lower} of {len(pairs)}"
    )
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
