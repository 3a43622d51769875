"""The evaluation-only behaviour space: each axis measures what its name says, and cells are counted."""

import jax.numpy as jnp
import numpy as np

from ferlab.metrics import behaviour
from ferlab.render import grid


def _grey(values):
    v = jnp.asarray(values, jnp.float32)
    return jnp.stack([v, v, v], axis=-1)


def _images(size=32):
    g = np.asarray(grid(size))
    x, y, d = g[..., 0], g[..., 1], g[..., 2]
    return {
        "ring": _grey(0.5 + 0.5 * np.cos(3 * d)),  # mirrored about both axes, smooth
        "ramp": _grey(0.5 + 0.5 * x),  # antisymmetric about x, symmetric about y
        "tilted": _grey(0.5 + 0.5 * np.sin(2.0 * (x + 0.7 * y) + 0.3)),
        "stripes": _grey(0.5 + 0.5 * np.sign(np.sin(np.pi * 8 * (x + y) + 0.1))),
        "flat": _grey(np.full_like(x, 0.4)),
        "red_blue": jnp.asarray(np.where((x < 0)[..., None], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]), jnp.float32),
    }


def test_symmetry_is_one_for_mirrored_images_and_lower_for_skewed_ones():
    imgs = _images()
    s = {k: float(behaviour.symmetry(v[None])[0]) for k, v in imgs.items()}
    assert s["ring"] > 0.999 and s["ramp"] > 0.999 and s["flat"] == 1.0  # the ramp is mirrored about y
    assert s["tilted"] < 0.8
    noise = np.random.default_rng(0).uniform(size=(64, 64))
    assert abs(float(behaviour.symmetry(_grey(noise)[None])[0]) - 0.5) < 0.05


def test_complexity_separates_gradients_from_stripes_at_any_resolution():
    for size in (16, 32, 64):
        imgs = _images(size)
        c = {k: float(behaviour.complexity(v[None])[0]) for k, v in imgs.items()}
        assert c["ramp"] < -1.5 and c["ring"] < -1.0
        assert c["stripes"] > -0.3
        assert c["flat"] == -6.0  # no energy at all: the floor, in the first bin


def test_detail_is_the_amplitude_of_fine_structure_so_a_faint_picture_has_little():
    """``detail``: a checkerboard of +-a reads a (Parseval), a ramp and a flat picture about 0; a
    faint copy of the stripes has the stripes' complexity (a share) but a tenth of their detail."""
    size = 32
    imgs = _images(size)
    d = {k: float(behaviour.detail(v[None])[0]) for k, v in imgs.items()}
    checker = 0.5 + 0.1 * (2 * (np.indices((size, size)).sum(0) % 2) - 1)
    assert abs(float(behaviour.detail(_grey(checker)[None])[0]) - 0.1) < 1e-4
    assert d["flat"] == 0.0 and d["ramp"] < 0.01 and d["stripes"] > 0.3
    faint = 0.5 + 0.1 * (imgs["stripes"] - 0.5)
    assert (
        abs(float(behaviour.complexity(faint[None])[0]) - float(behaviour.complexity(imgs["stripes"][None])[0])) < 1e-3
    )
    assert abs(float(behaviour.detail(faint[None])[0]) - 0.1 * d["stripes"]) < 1e-3


def test_a_picture_too_faint_to_see_lands_in_the_first_complexity_bin():
    """A white picture with a faint dot, and stripes at a hundredth of their contrast: busy by their
    share of fine energy, plain to the eye (``detail`` under ``PLAIN``): the behaviour space puts
    them with the flat pictures (symmetric, first complexity bin). Stripes at a tenth of their
    contrast stay busy, and a smooth tilted wave keeps its asymmetry."""
    imgs = _images()
    dot = np.ones((32, 32))
    dot[16, 16] = 0.99
    faint = 0.5 + 0.01 * (imgs["stripes"] - 0.5)
    dim = 0.5 + 0.1 * (imgs["stripes"] - 0.5)
    batch = jnp.stack([_grey(dot), faint, dim, imgs["stripes"]])
    assert (np.asarray(behaviour.complexity(batch))[:2] > -1.0).all()  # by share alone: busy
    b = np.asarray(behaviour.bins(behaviour.measure(batch)))
    assert b[0, 1] == 0 and b[1, 1] == 0
    flat = np.asarray(behaviour.bins(behaviour.measure(imgs["flat"][None])))[0]
    assert (b[:2, :2] == flat[:2]).all()  # symmetric and plain, as a flat picture
    smooth = np.asarray(behaviour.measure(imgs["tilted"][None]))[0]  # no fine detail, visible contrast
    assert smooth[0] == float(behaviour.symmetry(imgs["tilted"][None])[0]) < 0.8
    assert b[2, 1] == b[3, 1] == behaviour.BINS - 1


def test_detail_sees_a_colour_edge_that_grey_levels_hide():
    """A red disc on a green ground of the same grey level (ITU-R 601): complexity, on grey levels,
    sees a flat picture; ``detail`` reads the disc's edge, as a grey disc of the same contrast."""
    g = np.asarray(grid(32))
    disc = (g[..., 2] < 0.8)[..., None]
    red, green = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.299 / 0.587, 0.0])  # both grey level 0.299
    coloured = jnp.asarray(np.where(disc, red, green), jnp.float32)
    assert float(behaviour.complexity(coloured[None])[0]) < -5
    grey = _grey(np.where(disc[..., 0], 0.5, 0.0))
    assert float(behaviour.detail(coloured[None])[0]) > 0.5 * float(behaviour.detail(grey[None])[0]) > 0.01


def test_colourfulness_is_zero_for_grey_and_high_for_saturated_halves():
    imgs = _images()
    assert float(behaviour.colourfulness(imgs["stripes"][None])[0]) < 1e-6
    red_blue = float(behaviour.colourfulness(imgs["red_blue"][None])[0])
    # rg = +-1/2 on each half... computed: sd(rg) = 0.5, sd(yb) = 0.75, means 0.5 and -0.25
    assert abs(red_blue - (np.sqrt(0.5**2 + 0.75**2) + 0.3 * np.sqrt(0.5**2 + 0.25**2))) < 1e-3


def test_cells_and_coverage_count_distinct_cells():
    imgs = _images()
    batch = jnp.stack(list(imgs.values()))
    ids = np.asarray(behaviour.cells(batch))
    assert ids.shape == (len(imgs),) and ids.min() >= 0 and ids.max() < behaviour.N_CELLS
    b = np.asarray(behaviour.bins(behaviour.measure(batch)))
    np.testing.assert_array_equal(ids, (b[:, 0] * 8 + b[:, 1]) * 8 + b[:, 2])
    assert behaviour.coverage(batch) == len(set(ids.tolist()))
    assert behaviour.coverage(jnp.concatenate([batch, batch])) == behaviour.coverage(batch)
    names = list(imgs)
    assert ids[names.index("red_blue")] != ids[names.index("ramp")]  # same shape, different colour
