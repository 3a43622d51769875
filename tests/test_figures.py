"""The paper's pictures: right layout, right colours, valid PNGs."""

import io

import jax
import numpy as np
from PIL import Image

from ferlab import figures
from ferlab.cppn import init_net
from ferlab.render import render


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_output_image_is_the_render():
    net = init_net("2;cache:1,sin:2", jax.random.PRNGKey(0))
    pixels = _decode(figures.output_image(net, 24)) / 255.0
    assert pixels.shape == (24, 24, 3)
    assert np.abs(pixels - np.asarray(render(net, 24).rgb)).max() <= 1 / 255 + 1e-6


def test_feature_grid_has_a_row_per_layer_and_a_column_per_unit():
    small = _decode(figures.feature_grid(init_net("2;cache:1,sin:2", jax.random.PRNGKey(0)), 16))
    deep = _decode(figures.feature_grid(init_net("6;cache:1,sin:2", jax.random.PRNGKey(0)), 16))
    wide = _decode(figures.feature_grid(init_net("2;cache:3,sin:5", jax.random.PRNGKey(0)), 16))
    assert deep.shape[0] > small.shape[0] * 1.5 and deep.shape[1] == small.shape[1]
    assert wide.shape[1] > small.shape[1] * 1.5 and wide.shape[0] == small.shape[0]


def test_feature_grid_uses_a_diverging_colormap():
    """The x input (bottom row, first column) runs from -1 (blue) on the left to +1 (red) on the right."""
    pixels = _decode(figures.feature_grid(init_net("1;sin:4", jax.random.PRNGKey(0)), 16)).astype(int)
    red, blue = pixels[..., 0] - pixels[..., 2], pixels[..., 2] - pixels[..., 0]
    assert red.max() > 100 and blue.max() > 100


def test_sweep_grid_layout():
    frames = np.random.default_rng(0).random((3, 5, 8, 8, 3))
    one = _decode(figures.sweep_grid(frames[:1], ["a"]))
    three = _decode(figures.sweep_grid(frames, ["a", "b", "c"]))
    assert three.shape[0] > 2 * one.shape[0] and three.shape[1] == one.shape[1]


def test_sweep_grid_puts_each_frame_in_its_row_and_column():
    """One red frame (row 2 of 3, column 4 of 5) among black ones lands in that cell of the grid."""
    frames = np.zeros((3, 5, 16, 16, 3))
    frames[1, 3, ..., 0] = 1.0
    pixels = _decode(figures.sweep_grid(frames, ["a", "b", "c"])).astype(int)
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    black = pixels.sum(-1) < 60
    rows, cols = np.nonzero(red)
    b_rows, b_cols = np.nonzero(black)
    assert red.sum() > 100
    height = b_rows.max() - b_rows.min()
    width = b_cols.max() - b_cols.min()
    assert 1 / 3 < (rows.mean() - b_rows.min()) / height < 2 / 3
    assert 3 / 5 < (cols.mean() - b_cols.min()) / width < 4 / 5


def test_label_grid_puts_the_picture_on_top_and_a_row_per_feature_of_several_links():
    """Links a a a b b c: rows picture, a (3 cells, never changed), b (2 cells, always changed); c, one
    link, has no row. Each cell is the colormap of its link's map; the picture is averaged 2x2."""
    import matplotlib

    from ferlab.metrics.labels import by_feature

    tags = ("a", "a", "a", "b", "b", "c")
    visible = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 0.5])[:, None, None] * np.ones((6, 8, 8))
    picture = np.zeros((16, 16, 3))
    picture[..., 0] = 1.0
    pixels = _decode(figures.label_grid(visible, tags, by_feature(np.eye(6), tags), picture)).astype(int)
    cell = 8 * -(-figures.MIN_CELL // 8)
    step = cell + max(1, cell // 16)
    assert pixels.shape[0] == 2 + 3 * step  # picture, a, b
    left = pixels.shape[1] - 3 * step  # three columns: a's links
    cmap = matplotlib.colormaps[figures.LABEL_CMAP]
    never, always = (np.rint(np.asarray(cmap(v)[:3]) * 255).astype(int) for v in (0.0, 1.0))

    def at(row, col):
        return pixels[2 + row * step + cell // 2, left + col * step + cell // 2]

    assert list(at(0, 0)) == [255, 0, 0] and list(at(0, 1)) == [255, 255, 255]
    assert all(np.abs(at(1, c) - never).max() <= 1 for c in range(3))
    assert all(np.abs(at(2, c) - always).max() <= 1 for c in range(2)) and list(at(2, 2)) == [255, 255, 255]
