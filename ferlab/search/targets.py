"""What a run aims at and what it searches over: target images and architectures.

A target spec is a ``.png`` (resized to the run's resolution), a genome or net
source (``.zip``, ``.xml``, ``.json``, ``.npz``: rendered at the run's
resolution), or a shortcut resolved against the shared Picbreeder data
(``$FERLAB_PICBREEDER_DATA``, else ``../shared/data/picbreeder`` beside the
repository): the paper's ``picbreeder:skull`` and ``picbreeder:butterfly``, or a
CPPN-X genome by its file's stem, ``picbreeder:576_Skull``. An architecture spec is an
architecture string (``"12;cache:15,gaussian:4,identity:2,sin:1"``), a source
file, or such a shortcut: the architecture of its dense (layerized) net.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ferlab import limits
from ferlab.config import ConfigError
from ferlab.cppn import Architecture, DenseNet
from ferlab.errors import FerlabError
from ferlab.files import not_a_file
from ferlab.sources import SOURCE_SUFFIXES, load_dense

REPO = Path(__file__).resolve().parents[2]
PICBREEDER_NAMES = ("skull", "butterfly")
TARGET_SUFFIXES = (".png", *SOURCE_SUFFIXES)


def picbreeder_dir() -> Path:
    """The shared Picbreeder data folder; ConfigError when it cannot be found."""
    env = os.environ.get("FERLAB_PICBREEDER_DATA")
    path = Path(env) if env else REPO.parent / "shared" / "data" / "picbreeder"
    if not path.is_dir():
        raise ConfigError(f"Picbreeder data not found at {path} (set FERLAB_PICBREEDER_DATA)")
    return path


def picbreeder_genome(name: str, where: str) -> Path:
    """The shared genome ``picbreeder:NAME`` names: the paper's ``skull`` or ``butterfly``, or a
    CPPN-X genome by its file's stem (``picbreeder:576_Skull``); ConfigError listing them otherwise."""
    genomes = picbreeder_dir() / "genomes"
    if name in PICBREEDER_NAMES:
        return genomes / f"{name}.zip"
    cppnx = sorted(p.stem for p in (genomes / "cppnx").glob("*.xml"))
    if name in cppnx:
        return genomes / "cppnx" / f"{name}.xml"
    known = ", ".join("picbreeder:" + n for n in (*PICBREEDER_NAMES, *cppnx))
    raise ConfigError(f"{where}: unknown shortcut {'picbreeder:' + name!r} (known: {known})")


def resolve(spec: str, where: str) -> Path:
    """The file a target/arch spec names (shortcuts resolved); ConfigError if missing."""
    if spec.startswith("picbreeder:"):
        path = picbreeder_genome(spec.partition(":")[2], where)
    else:
        path = Path(spec)
    if path.suffix.lower() not in TARGET_SUFFIXES:
        raise ConfigError(f"{where}: {spec!r} is not a .png or a genome/net file ({', '.join(TARGET_SUFFIXES)})")
    if why := not_a_file(path):
        raise ConfigError(f"{where}: {str(path)!r}: {why}")
    return path


def is_arch_string(spec: str) -> bool:
    return ";" in spec


def source_path(spec: str, where: str, png: str = "a .png has no weights; give a net or genome") -> Path:
    """The genome or net file a spec names; ConfigError (``where``: ``png``) for an image."""
    path = resolve(spec, where)
    if path.suffix.lower() == ".png":
        raise ConfigError(f"{where}: {png}")
    return path


def load_source(spec: str, where: str, png: str = "a .png has no weights; give a net or genome"):
    """``(dense net, genome or None)`` of a genome or net spec, load errors as ConfigError naming ``where``."""
    path = source_path(spec, where, png)
    try:
        return load_dense(path)
    except FerlabError as e:
        raise ConfigError(f"{where}: {e}") from None


def absolute_specs(data: dict, root: str | Path) -> dict:
    """A run config dict whose file specs (``target``, a file ``arch``, ``settings.mask_from``,
    ``settings.source``) that name files in ``root`` are made absolute: Tune trials and island
    actors run in other folders than the command that named the files. Anything else is kept."""

    def absolute(spec, arch=False):
        if not isinstance(spec, str) or spec.startswith("picbreeder:") or (arch and is_arch_string(spec)):
            return spec
        path = Path(root) / spec
        return str(path.resolve()) if path.is_file() else spec

    out = dict(data)
    for key in ("target", "arch"):
        if key in out:
            out[key] = absolute(out[key], arch=key == "arch")
    if isinstance(out.get("settings"), dict):
        out["settings"] = {k: absolute(v) if k in ("mask_from", "source") else v for k, v in out["settings"].items()}
    return out


def load_arch(spec: str, where: str = "arch") -> Architecture:
    """The architecture a spec names (string, source file or shortcut)."""
    if not is_arch_string(spec):
        return load_source(spec, where, "a .png has no architecture; give an architecture string or a net/genome")[
            0
        ].arch
    try:
        return Architecture.parse(spec)
    except FerlabError as e:
        raise ConfigError(f"{where}: {e}") from None


def load_target(spec: str, size: int, where: str = "target") -> np.ndarray:
    """The target image ``(size, size, 3)`` in [0, 1]."""
    path = resolve(spec, where)
    if path.suffix.lower() == ".png":
        return load_image(path, size, where)
    from ferlab.render import render

    try:
        net: DenseNet = load_dense(path)[0]
    except FerlabError as e:
        raise ConfigError(f"{where}: {e}") from None
    return np.asarray(render(net, size).rgb, dtype=np.float32)


def load_image(path: Path, size: int, where: str = "target") -> np.ndarray:
    """An image file as ``(size, size, 3)`` floats in [0, 1], resampled onto ferlab's grid
    (``grid_weights``): a picture ferlab painted at any size comes back as its painting at ``size``.

    Its header's pixel count is checked against ``limits.IMAGE_PIXELS`` before any
    pixel is decoded (a PNG of a few KB can declare 30000 x 30000 pixels).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                limits.IMAGE_PIXELS.check(width * height, f"{where}: {path} ({width}x{height})", ConfigError)
                rgb = np.asarray(im.convert("RGB"))
                rows, cols = grid_weights(height, size), grid_weights(width, size)
                out = np.einsum("ih,hwc->iwc", rows, rgb, dtype=np.float32)
                return np.einsum("jw,iwc->ijc", cols, out) / np.float32(255.0)
    except Image.DecompressionBombError:
        raise ConfigError(
            f"{where}: {path}: over the cap of {limits.IMAGE_PIXELS.value} pixels "
            f"(and over Pillow's own decompression-bomb limit)"
        ) from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
        raise ConfigError(f"{where}: cannot read {path} as an image ({e})") from None


def grid_weights(source: int, size: int) -> np.ndarray:
    """``(size, source)`` weights that resample ``source`` pixels onto ``size`` points of ferlab's grid.

    ``render.grid`` puts its first and last points on the picture's edges (-1 and 1), so a picture
    painted with ``source`` pixels holds point i of ``size`` at its pixel i (source - 1) / (size - 1).
    Each point averages the pixels under a window ``source / size`` pixels wide centred there (an
    area average, as a BOX resize), clipped at the borders. A BOX resize centres its windows on
    cells instead: 64 points from 256 pixels then sample a picture zoomed by 1.2% (the skull's own
    painting against its paper render: MSE 0.0053, against 0.0012 on the grid). Same size: identity.
    """
    centres = np.arange(size) * ((source - 1) / (size - 1)) if size > 1 else np.zeros(1)
    half = source / size / 2
    left = np.arange(source) - 0.5
    overlap = np.minimum(centres[:, None] + half, left[None] + 1) - np.maximum(centres[:, None] - half, left[None])
    weights = np.clip(overlap, 0.0, None)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def mse(rgb, target):
    """Mean squared error over pixels and RGB channels (batch axes kept)."""
    import jax.numpy as jnp

    return jnp.mean((rgb - target) ** 2, axis=(-3, -2, -1))


def image_losses(images: dict, target) -> dict[str, float]:
    """Each image's MSE to ``target`` (empty without a target): every net's own fit, at the run's resolution."""
    if target is None or not images:
        return {}
    target = np.asarray(target, np.float32)
    return {name: float(np.mean((np.asarray(rgb, np.float32) - target) ** 2)) for name, rgb in images.items()}
