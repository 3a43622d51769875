"""What the detail floor means, in pictures: random CPPNs' pictures sorted into bands of
``image_detail`` (``ferlab.metrics.behaviour.detail``: the RMS amplitude, in red, green and
blue, of a picture's detail finer than 4 cycles per image), a row of evenly spaced examples per band, each
titled with its detail and its complexity (the log10 share the behaviour space bins). The
shipped studies' floor (``analysis.min_detail``, 0.01) and ``behaviour.PLAIN`` were read off
such a sheet: below 0.01 no edge or line shows. Where the shared data is, the Picbreeder
pictures' details are printed beside it (0.08-0.21).

    PYTHONPATH=. python bench/detail_sheet.py [--nets 60] [--size 64] [--out results/detail_sheet.png]

Measured (60 nets of each of 4 small architectures, 64x64, 15 s): of 240 pictures, 48 fall below
0.01, their complexity anywhere from -3.5 (soft blobs) to -0.1 (a blank white picture, whose
faint ripples are all the energy it has); the 8 CPPN-X Picbreeder pictures read 0.082-0.206.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import numpy as np

from ferlab.config import ConfigError
from ferlab.cppn import init_net
from ferlab.files import write_bytes
from ferlab.metrics import behaviour
from ferlab.render import render
from ferlab.search.targets import picbreeder_dir
from ferlab.sources import load_dense

ARCHS = (
    "1;gaussian:2,identity:2",
    "2;gaussian:3,sigmoid:3,identity:2",
    "3;sin:4,gaussian:4,sigmoid:4,identity:4",
    "4;sin:2,gaussian:4,tanh:2,identity:2",
)
BANDS = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 1.0)
PER_ROW = 8


def pictures(nets: int, size: int) -> list[tuple[float, float, np.ndarray]]:
    """``(detail, complexity, rgb)`` of ``nets`` random nets of each of ``ARCHS``."""
    out = []
    for arch in ARCHS:
        for seed in range(nets):
            rgb = render(init_net(arch, jax.random.PRNGKey(seed)), size).rgb[None]
            out.append((float(behaviour.detail(rgb)[0]), float(behaviour.complexity(rgb)[0]), np.asarray(rgb[0])))
    return out


def sheet(found: list[tuple[float, float, np.ndarray]]) -> bytes:
    """PNG: a row per band of detail, up to ``PER_ROW`` evenly spaced pictures each."""
    from ferlab.figures import figure_png, subplots

    rows = []
    for low, high in zip(BANDS[:-1], BANDS[1:]):
        band = sorted((p for p in found if low <= p[0] < high), key=lambda p: p[0])
        picks = [band[i] for i in np.linspace(0, len(band) - 1, min(PER_ROW, len(band))).astype(int)] if band else []
        rows.append((low, high, len(band), picks))
    fig, axes = subplots(len(rows), PER_ROW, 1.3 * PER_ROW, 1.45 * len(rows), dpi=70)
    for r, (low, high, count, picks) in enumerate(rows):
        for c in range(PER_ROW):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(picks):
                detail, complexity, rgb = picks[c]
                ax.imshow(rgb)
                ax.set_title(f"{detail:.3f} / {complexity:.1f}", fontsize=7)
            else:
                ax.axis("off")
        axes[r][0].set_ylabel(f"[{low:g}, {high:g})\n{count} nets", fontsize=7)
    fig.suptitle("random CPPNs by image detail (title: detail / complexity)", fontsize=9)
    return figure_png(fig, tight=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", type=int, default=60, help="random nets of each architecture")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("results/detail_sheet.png"))
    args = parser.parse_args()
    found = pictures(args.nets, args.size)
    details = np.array([p[0] for p in found])
    counts, _ = np.histogram(details, BANDS)
    print(f"{len(found)} random pictures at {args.size}x{args.size}, by image detail:")
    for low, high, count in zip(BANDS[:-1], BANDS[1:], counts):
        print(f"  [{low:g}, {high:g}): {count}")
    plain = [p for p in found if p[0] < behaviour.PLAIN]
    if plain:
        print(
            f"below the floor {behaviour.PLAIN:g}: {len(plain)}, their complexity "
            f"{min(p[1] for p in plain):.1f} to {max(p[1] for p in plain):.1f}"
        )
    try:
        data = picbreeder_dir()
    except ConfigError as e:  # the shared data is optional here
        print(f"no Picbreeder pictures beside them: {e}")
    else:
        shown = []
        for path in sorted((data / "genomes" / "cppnx").glob("*.xml")):
            rgb = render(load_dense(path)[0], args.size).rgb[None]
            shown.append(f"{path.stem} {float(behaviour.detail(rgb)[0]):.3f}")
        print("Picbreeder pictures' detail: " + ", ".join(shown))
    print(f"wrote {write_bytes(args.out, sheet(found))}")


if __name__ == "__main__":
    main()
