"""The paper's pictures as PNG files (matplotlib's Agg canvas, no pyplot, no display needed).

- ``feature_grid``: every unit's map, one row per layer, inputs at the bottom
  and outputs on top, diverging colormap on [-1, 1].
- ``sweep_grid``: a sweep per row, the weight (or direction) moved by
  -1, -0.5, 0, +0.5, +1 along the columns.
- ``output_image``: the net's picture.

Each function returns PNG bytes; write them with ``ferlab.files.write_bytes``.
"""

from __future__ import annotations

import io

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ferlab.cppn import DenseNet
from ferlab.files import png_bytes
from ferlab.render import grid, render

CMAP = "RdBu_r"


def subplots(rows: int, cols: int, width: float, height: float, dpi: int = 100):
    """A figure on its own Agg canvas (no pyplot, so the caller's matplotlib backend is left alone)
    and its ``(rows, cols)`` axes."""
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=False)


def figure_png(fig: Figure, tight: bool = False) -> bytes:
    """The figure as PNG bytes at its own dpi (``tight``: cropped to what is drawn)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight" if tight else None)
    return buf.getvalue()


def output_image(net: DenseNet, size: int = 256) -> bytes:
    """The net's picture at ``size`` x ``size`` pixels."""
    return png_bytes(render(net, size).rgb)


def mosaic(rows: list[list[np.ndarray]], width: float, height: float):
    """Cells ``(S, S, C)`` laid out row by row with a thin white gap, drawn by a single ``imshow``
    on a ``width`` x ``height`` inch figure with no ticks or frame: ``(fig, ax, centre)``, where
    ``centre(i)`` is the middle of the i-th row or column, for labels. One image instead of an
    axes per cell: an axes each cost seconds per net in a study's trials."""
    size, channels = rows[0][0].shape[0], rows[0][0].shape[-1]
    gap = max(1, size // 16)
    step = size + gap
    image = np.ones((len(rows) * step - gap, max(len(cells) for cells in rows) * step - gap, channels))
    for r, cells in enumerate(rows):
        for c, values in enumerate(cells):
            image[r * step : r * step + size, c * step : c * step + size] = values
    fig, axes = subplots(1, 1, width, height)
    ax = axes[0, 0]
    ax.imshow(image, interpolation="nearest", aspect="auto")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    return fig, ax, lambda i: i * step + size / 2


def feature_grid(net: DenseNet, size: int = 64, cell: float = 0.45) -> bytes:
    """Every unit's map: inputs (x, y, d, bias) at the bottom, each hidden layer, outputs on top,
    tiled into one ``mosaic``."""
    image = render(net, size, features=True)
    feats = np.asarray(image.features)  # (L, W, S, S)
    inputs = np.asarray(grid(size))
    rows = [[inputs[..., k] for k in range(inputs.shape[-1])]]
    rows += [list(layer) for layer in feats]
    hsv = np.asarray(image.hsv)
    rows.append([hsv[..., k] for k in range(3)])
    rows.reverse()  # outputs on top
    cmap = matplotlib.colormaps[CMAP]
    ncols = max(len(maps) for maps in rows)
    fig, ax, centre = mosaic(
        [[cmap((np.clip(values, -1, 1) + 1) / 2) for values in maps] for maps in rows],
        cell * ncols + 0.8,
        cell * len(rows),
    )
    levels = len(rows) - 1
    labels = ["out"] + [f"L{levels - r}" for r in range(1, levels)] + ["in"]
    ax.set_yticks([centre(r) for r in range(len(rows))], labels, fontsize=6)
    fig.subplots_adjust(left=0.04, right=0.995, top=0.995, bottom=0.005)
    return figure_png(fig)


def sweep_grid(frames: np.ndarray, names: list[str], steps=(-1.0, -0.5, 0.0, 0.5, 1.0), cell: float = 1.0) -> bytes:
    """Rows of sweep frames ``(n, len(steps), S, S, 3)``, titled by ``names`` and step, tiled into
    one ``mosaic``."""
    frames = np.clip(np.asarray(frames, np.float32), 0, 1)
    n, k = frames.shape[:2]
    width, height = cell * k + 1.6, cell * n + 0.3
    fig, ax, centre = mosaic([list(row) for row in frames], width, height)
    ax.set_yticks([centre(r) for r in range(n)], names, fontsize=6)
    ax.set_xticks([centre(c) for c in range(k)], [f"{t:+g}" for t in steps[:k]], fontsize=7)
    ax.xaxis.tick_top()
    fig.subplots_adjust(left=1.5 / width, right=0.995, top=1 - 0.3 / height, bottom=0.005)
    return figure_png(fig)
