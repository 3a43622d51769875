"""The paper's pictures as PNG files, with no display needed.

- ``feature_grid``: every unit's map, one row per layer, inputs at the bottom
  and outputs on top, diverging colormap on [-1, 1].
- ``sweep_grid``: a sweep per row, the weight (or direction) moved by
  -1, -0.5, 0, +0.5, +1 along the columns.
- ``output_image``: the net's picture.
- ``label_grid``: a labelled genome's features, a row each, and where each of
  their links visibly changes the picture while a person's sweep moves it.

Each function returns PNG bytes; write them with ``ferlab.files.write_bytes``.
The two grids are ``mosaic``s (numpy and PIL); ``subplots`` and ``figure_png``
give the report's plots matplotlib's Agg canvas (no pyplot).
"""

from __future__ import annotations

import io

import jax
import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from ferlab.cppn import DenseNet, stack_nets
from ferlab.files import png_bytes
from ferlab.render import grid, render, render_padded

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


# A mosaic's cells are drawn at least this many pixels wide (small pictures are enlarged).
MIN_CELL = 48
FONT_PX = 11


def mosaic(rows: list[list[np.ndarray]], row_labels: list[str], col_labels: list[str] = ()) -> bytes:
    """Cells ``(S, S, 3)`` in [0, 1] laid out row by row with a thin white gap, each row labelled on
    the left and each column on top (when ``col_labels``), as PNG bytes. The cells keep their own
    pixels (enlarged to at least ``MIN_CELL``), composed by numpy and labelled by PIL: through
    matplotlib's canvas a net's three mosaics took about 1 s, a fifth of a study trial's scoring."""
    size = rows[0][0].shape[0]
    zoom = -(-MIN_CELL // size)
    cell = size * zoom
    gap = max(1, cell // 16)
    step = cell + gap
    font = ImageFont.load_default(size=FONT_PX)
    left = 6 + int(max((font.getlength(label) for label in row_labels), default=0))
    top = FONT_PX + 6 if col_labels else 2
    ncols = max(len(cells) for cells in rows)
    canvas = np.full((top + len(rows) * step, left + ncols * step, 3), 255, np.uint8)
    for r, cells in enumerate(rows):
        pixels = np.clip(np.rint(np.asarray(cells, np.float32) * 255), 0, 255).astype(np.uint8)
        pixels = pixels.repeat(zoom, 1).repeat(zoom, 2) if zoom > 1 else pixels
        y = top + r * step
        for c, values in enumerate(pixels):
            canvas[y : y + cell, left + c * step : left + c * step + cell] = values[..., :3]
    image = PILImage.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    for r, label in enumerate(row_labels):
        draw.text((left - 4, top + r * step + cell / 2), label, fill=(0, 0, 0), font=font, anchor="rm")
    for c, label in enumerate(col_labels):
        draw.text((left + c * step + cell / 2, top - 3), label, fill=(0, 0, 0), font=font, anchor="md")
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def feature_grid(net: DenseNet, size: int = 64) -> bytes:
    """Every unit's map: inputs (x, y, d, bias) at the bottom, each hidden layer, outputs on top,
    tiled into one ``mosaic``. Painted as a padded batch of one (``render.render_padded``): the
    compiled call the suite has made for the net's architecture, not one of its own."""
    image = jax.tree.map(lambda a: a[0], render_padded(stack_nets([net]), size, features=True))
    inputs = np.moveaxis(np.asarray(grid(size)), -1, 0)  # (4, S, S)
    rows = [inputs, *np.asarray(image.features), np.moveaxis(np.asarray(image.hsv), -1, 0)]
    cmap = matplotlib.colormaps[CMAP]
    coloured = [cmap((np.clip(maps, -1, 1) + 1) / 2)[..., :3] for maps in reversed(rows)]  # outputs on top
    levels = len(rows) - 1
    labels = ["out"] + [f"L{levels - r}" for r in range(1, levels)] + ["in"]
    return mosaic(coloured, labels)


def sweep_grid(frames: np.ndarray, names: list[str], steps=(-1.0, -0.5, 0.0, 0.5, 1.0)) -> bytes:
    """Rows of sweep frames ``(n, len(steps), S, S, 3)``, titled by ``names`` and step, tiled into
    one ``mosaic``."""
    frames = np.clip(np.asarray(frames, np.float32), 0, 1)
    return mosaic(list(frames), names, [f"{t:+g}" for t in steps[: frames.shape[1]]])


# ``label_grid`` shows at most this many features (most links first) and links of each.
LABEL_ROWS, LABEL_COLS = 12, 10
LABEL_CMAP = "magma"


def label_grid(visible: np.ndarray, labels: tuple[str, ...], by_feature: list[dict], picture: np.ndarray) -> bytes:
    """The net's ``picture`` (S, S, 3) on top, then each feature of several links (``by_feature``'s
    order: most links first), a row titled by its name, link count and own AUROC, of its links'
    maps ``visible`` (n, H, W) in [0, 1]: the share of a person's sweep in which each pixel visibly
    changes (``ferlab.metrics.labels``; the picture is averaged down to H x W). A feature the
    measure tells apart has a row of alike maps, unlike the other rows."""
    h, w = visible.shape[1:]
    fh, fw = picture.shape[0] // h, picture.shape[1] // w  # 2: the maps are pooled 2x2, an odd last row dropped
    s = np.asarray(picture, np.float32)[: h * fh, : w * fw]
    rows = [[s.reshape(h, fh, w, fw, 3).mean(axis=(1, 3))]]
    names = ["picture (maps: bright = changed)"]
    cmap = matplotlib.colormaps[LABEL_CMAP]
    tags = np.asarray(labels)
    for f in [f for f in by_feature if f["auroc"] is not None][:LABEL_ROWS]:
        mine = np.flatnonzero(tags == f["feature"])
        shown = mine[:LABEL_COLS]
        rows.append(list(cmap(np.clip(visible[shown], 0, 1))[..., :3]))
        more = f", {shown.size} shown" if shown.size < mine.size else ""
        names.append(f"{f['feature'][:32]} ({mine.size} links{more}) AUROC {f['auroc']:.2f}")
    return mosaic(rows, names)
