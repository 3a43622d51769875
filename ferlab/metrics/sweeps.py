"""Weight sweeps, batched: move one weight (or one random direction) and watch the picture change.

A sweep of weight i by step t renders the net with w_i -> w_i + t; a direction
sweep renders w -> w + t v for a unit-norm v. All sweeps of a chunk render in
one vmapped call. The change maps d(t) = rgb(t) - rgb(0) are what the metrics read.

Step sizes. Picbreeder weights are O(1) and sparse, SGD weights O(0.1) and
dense, so a fixed step means different things to different nets. The
*calibrated* step t_i = min(tau / g_i, max_step) moves the picture by the same
RMS amount tau for every weight of every net, where g_i = RMS(d rgb / d w_i) is
the first-order gain from a forward-mode JVP. The paper's fixed +-1 is kept too.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ferlab.cppn import DenseNet
from ferlab.render import render


def _rgb(net: DenseNet, flat: jax.Array, size: int) -> jax.Array:
    return render(net.with_flat(flat), size).rgb


@partial(jax.jit, static_argnames=("size",))
def _move(net: DenseNet, dirs: jax.Array, steps: jax.Array, size: int) -> jax.Array:
    """Frames (B, K, S, S, 3): net moved along dirs[b] (flat index or vector) by steps[b, k]."""
    flat = net.flat()

    def one(d, ts):
        base = flat.at[d].add(1.0) - flat if d.ndim == 0 else d
        return jax.vmap(lambda t: _rgb(net, flat + t * base, size))(ts)

    return jax.vmap(one)(dirs, steps)


@partial(jax.jit, static_argnames=("size",))
def _gain(net: DenseNet, dirs: jax.Array, size: int) -> jax.Array:
    """RMS of the first-order change of the picture per unit step along each direction."""
    flat = net.flat()

    def one(d):
        tangent = flat.at[d].add(1.0) - flat if d.ndim == 0 else d
        _, dy = jax.jvp(lambda f: _rgb(net, f, size), (flat,), (tangent,))
        return jnp.sqrt(jnp.mean(jnp.square(dy)))

    return jax.vmap(one)(dirs)


def _chunked(fn, dirs, *rest, chunk: int, progress: Callable[[int], None] | None):
    """Apply fn over leading-axis chunks of equal size (the last one padded), concatenated."""
    n = dirs.shape[0]
    out = []
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        pad = chunk - (stop - start)
        args = [jnp.concatenate([a[start:stop], jnp.repeat(a[start:start + 1], pad, axis=0)]) if pad else
                a[start:stop] for a in (dirs, *rest)]
        out.append(np.asarray(fn(*args))[:stop - start])
        if progress:
            progress(stop - start)
    return np.concatenate(out) if out else np.zeros((0,))


def gains(net: DenseNet, dirs, size: int, chunk: int, progress=None) -> np.ndarray:
    """g for each direction: flat weight indices (B,) or unit vectors (B, n_weights)."""
    return _chunked(lambda d: _gain(net, d, size), jnp.asarray(dirs), chunk=chunk, progress=progress)


def frames(net: DenseNet, dirs, steps, size: int, chunk: int, progress=None) -> np.ndarray:
    """Pictures (B, K, S, S, 3) of each direction moved by each of its steps (B, K)."""
    return _chunked(lambda d, s: _move(net, d, s, size), jnp.asarray(dirs), jnp.asarray(steps, jnp.float32),
                    chunk=chunk, progress=progress)


def random_directions(key: jax.Array, support: np.ndarray, n_weights: int, count: int) -> jax.Array:
    """``count`` unit-norm Gaussian directions over the weights in ``support`` (flat indices)."""
    g = jax.random.normal(key, (count, support.size))
    g = g / jnp.linalg.norm(g, axis=1, keepdims=True)
    return jnp.zeros((count, n_weights)).at[:, support].set(g)


def effect_groups(changes: np.ndarray, cos: float) -> np.ndarray:
    """Group index per sweep: sweeps whose change maps have cosine > ``cos`` share a group.

    Duplicated effects come from layerization (every hop of a cache chain moves
    the picture exactly as the genome link does) and from split chains; each
    group counts once. A sweep joins the group of the first earlier sweep it matches.
    """
    flat = changes.reshape(changes.shape[0], -1).astype(np.float64)
    unit = flat / (np.linalg.norm(flat, axis=1, keepdims=True) + 1e-12)
    same = (unit @ unit.T) > cos
    return np.argmax(same, axis=1)


def flat_index(arch, layer: int, row: int, col: int) -> int:
    """Position of kernel entry ``layer_{layer}[row, col]`` in ``DenseNet.flat()``."""
    shapes = arch.kernel_shapes
    if not (0 <= layer < len(shapes) and 0 <= row < shapes[layer][0] and 0 <= col < shapes[layer][1]):
        raise IndexError(f"no weight layer_{layer}[{row}, {col}] in architecture {arch}")
    return int(sum(a * b for a, b in shapes[:layer]) + row * shapes[layer][1] + col)
