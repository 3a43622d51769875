"""An evaluation-only behaviour space: three image properties, each cut into 8 bins.

Open-ended searches are judged by how many of its cells the images they
evaluate reach at an equal number of evaluations (Lehman and Stanley; the QD
literature's coverage), so no search optimises these numbers directly: NEAT
novelty and NS-ES score distances between small grey images
(``ferlab.search.descriptors``), MAP-Elites keys its grid by its own
descriptors. For an RGB image in [0, 1] with grey level L = 0.299 R + 0.587 G +
0.114 B (ITU-R 601), the axes are:

- **symmetry** ``1 - min(a_x, a_y)``, where a_m = |L_c - M L_c|^2 / (2 |L_c|^2) is the
  antisymmetric share of the centred grey image L_c = L - mean(L) under mirror M
  (x -> -x or y -> -y; ``ferlab.metrics.symmetry``): 1 for an image mirrored
  about either axis (or flat), 0.5 for one with no mirror relation, 0 for an
  antisymmetric one. Bins: 8 equal ones over [0, 1].
- **complexity** log10 of the share of L_c's spectral energy at radial
  frequencies above ``CUTOFF`` = 4 cycles per image, the spectrum being |FFT|^2 of
  L_c mirrored into a 2S x 2S even image (a DCT: the borders make no seam, so a
  plain ramp is not counted as an edge): smooth gradients and single arcs sit
  near -3 and below, stripes, rings and textures near 0. The cutoff is in cycles
  per image, so the value hardly depends on the resolution. Bins: 8 equal ones
  over [-4, 0] (half a decade each; clipped at both ends, so a flat image lands
  in the first). Random CPPNs at 32x32 span about -3.7 to -0.1.
- **colourfulness** Hasler and Suesstrunk's (2003) M = sqrt(sd(rg)^2 + sd(yb)^2) +
  0.3 sqrt(mean(rg)^2 + mean(yb)^2) with rg = R - G and yb = (R + G)/2 - B, on the
  [0, 1] scale (their 0-255 figures / 255): 0 for grey images, about 0.43 for
  "extremely colourful" ones; saturated CPPN hue bands reach about 1. Bins: 8
  equal ones over [0, 1] (clipped).

Symmetry and complexity are shares, blind to amplitude: a white picture with
one faint dot would read as busy and as asymmetric as its dot. So a picture
whose fine detail is too faint to see (``detail`` below ``PLAIN``) reads -4 on
complexity, and one whose grey levels barely vary at all (RMS contrast below
``PLAIN``) reads 1 on symmetry, as a flat picture does: a search painting faint
noise does not fill cells with pictures that show nothing. A smooth ramp or a
soft blob has no fine detail but visible contrast, so it keeps its symmetry.

``measure(rgb (P, S, S, 3)) -> (P, 3)`` gives the three values, ``cells`` the cell
id ``((sym_bin * 8) + complexity_bin) * 8 + colour_bin`` in [0, 512), ``coverage``
the number of distinct cells a batch reaches. All jitted JAX over the batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ferlab.metrics.symmetry import antisymmetric_share

AXES = ("symmetry", "complexity", "colourfulness")
BINS = 8
LOW = np.array([0.0, -4.0, 0.0], np.float32)
HIGH = np.array([1.0, 0.0, 1.0], np.float32)
N_CELLS = BINS ** len(AXES)
CUTOFF = 4.0  # cycles per image
PLAIN = 0.01  # RMS amplitude: ``detail`` under which no edge or line shows (random CPPNs' pictures), nothing to
# fracture; grey contrast under which a picture reads as flat (``measure``)
_LUMA = jnp.array([0.299, 0.587, 0.114])
_EPS = 1e-12


def symmetry(rgb: jax.Array) -> jax.Array:
    """``1 - min(a_x, a_y)`` per image: the mirror symmetry of the centred grey image."""
    grey = rgb @ _LUMA
    centred = grey - jnp.mean(grey, axis=(-2, -1), keepdims=True)
    shares = [antisymmetric_share(centred, axis, spatial=-2) for axis in ("x", "y")]
    return 1.0 - jnp.minimum(*shares)


def _spectral_energy(image: jax.Array, cutoff: float) -> tuple[jax.Array, jax.Array, int]:
    """``(energy above cutoff, total energy, pixels)`` of the centred image's (..., S, S)
    mirror-extended spectrum, per image (``|FFT|^2`` sums over the 2S x 2S even image)."""
    centred = image - jnp.mean(image, axis=(-2, -1), keepdims=True)
    even = jnp.concatenate([centred, jnp.flip(centred, -1)], -1)
    even = jnp.concatenate([even, jnp.flip(even, -2)], -2)  # mirror-extended: no seam at the borders
    power = jnp.abs(jnp.fft.fft2(even)) ** 2
    size_y, size_x = even.shape[-2:]
    fy = jnp.fft.fftfreq(size_y) * size_y / 2  # cycles per original image
    fx = jnp.fft.fftfreq(size_x) * size_x / 2
    high = jnp.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) > cutoff
    return jnp.sum(jnp.where(high, power, 0.0), axis=(-2, -1)), jnp.sum(power, axis=(-2, -1)), size_y * size_x


def high_frequency_share(rgb: jax.Array, cutoff: float = CUTOFF) -> jax.Array:
    """Share of the centred grey image's spectral energy above ``cutoff`` cycles per image."""
    high, total, _ = _spectral_energy(rgb @ _LUMA, cutoff)
    return high / (total + _EPS)


def detail(rgb: jax.Array, cutoff: float = CUTOFF) -> jax.Array:
    """RMS amplitude of the picture's detail finer than ``cutoff`` cycles per image, over its red,
    green and blue (Parseval: each channel's energy above the cutoff over the pixels, the channels
    averaged): how much visible structure a picture has, not only how fine it is, colour edges
    included (a grey picture reads its grey level's). ``complexity`` is a share of a grey image,
    so a white picture with one faint dot reads as complex, and a green disc on yellow, alike in
    grey, as smooth; here the first reads about 0.001 and the second as its edge. A smooth ramp
    reads 0, a grey checkerboard of +-a about a, the Picbreeder pictures 0.08-0.21."""
    high, _, pixels = _spectral_energy(jnp.moveaxis(rgb, -1, -3), cutoff)
    return jnp.sqrt(jnp.mean(high, axis=-1)) / pixels


def complexity(rgb: jax.Array) -> jax.Array:
    """log10 of ``high_frequency_share`` (floored at 1e-6)."""
    return jnp.log10(jnp.maximum(high_frequency_share(rgb), 1e-6))


def colourfulness(rgb: jax.Array) -> jax.Array:
    """Hasler and Suesstrunk's colourfulness M on the [0, 1] scale."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg, yb = r - g, 0.5 * (r + g) - b
    axes = (-2, -1)
    spread = jnp.sqrt(jnp.var(rg, axis=axes) + jnp.var(yb, axis=axes))
    return spread + 0.3 * jnp.sqrt(jnp.mean(rg, axis=axes) ** 2 + jnp.mean(yb, axis=axes) ** 2)


@jax.jit
def measure(rgb: jax.Array) -> jax.Array:
    """``(P, 3)``: symmetry, complexity and colourfulness of images ``(P, S, S, 3)``; faint pictures
    read as flat ones (symmetry 1 below ``PLAIN`` RMS contrast, complexity ``LOW`` below ``PLAIN``
    ``detail``)."""
    contrast = jnp.std(rgb @ _LUMA, axis=(-2, -1))
    sym = jnp.where(contrast < PLAIN, 1.0, symmetry(rgb))
    busy = jnp.where(detail(rgb) < PLAIN, LOW[1], complexity(rgb))
    return jnp.stack([sym, busy, colourfulness(rgb)], axis=-1)


def bins(values: jax.Array) -> jax.Array:
    """``(P, 3)`` bin indices in [0, 8) of ``measure``'s values (clipped at the ends)."""
    scaled = (values - LOW) / (HIGH - LOW) * BINS
    return jnp.clip(jnp.floor(scaled), 0, BINS - 1).astype(jnp.int32)


@jax.jit
def cells(rgb: jax.Array) -> jax.Array:
    """``(P,)`` cell ids in [0, 512) of images ``(P, S, S, 3)``."""
    b = bins(measure(rgb))
    return (b[:, 0] * BINS + b[:, 1]) * BINS + b[:, 2]


def occupied(cell_ids: jax.Array) -> jax.Array:
    """``(512,)`` bool: which cells any of ``cell_ids`` falls in (OR these across batches)."""
    return jnp.zeros(N_CELLS, bool).at[cell_ids].set(True)


def coverage(rgb: jax.Array) -> int:
    """How many distinct cells images ``(P, S, S, 3)`` reach."""
    return int(jnp.sum(occupied(cells(rgb))))
