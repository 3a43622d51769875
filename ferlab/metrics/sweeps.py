"""Weight sweeps, batched: move one weight (or one random direction) and watch the picture change.

A sweep of weight i by step t renders the net with w_i -> w_i + t; a direction
sweep renders w -> w + t v for a unit-norm v. Pictures render in chunks of
one fixed size, each a batch of moved nets painted by one ``render`` call, so
one compiled function serves a whole net. The change maps d(t) = rgb(t) - rgb(0)
are what the metrics read.

Step sizes. Picbreeder weights are O(1) and sparse, SGD weights O(0.1) and
dense, so a fixed step means different things to different nets. The
*calibrated* step t_i = min(tau / g_i, max_step) moves the picture by the same
RMS amount tau for every weight of every net, where g_i = RMS(d rgb / d w_i) is
the first-order gain (a forward finite difference). The paper's fixed +-1 is kept too.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ferlab.cppn import DenseNet
from ferlab.render import padded, render_from, render_padded


@partial(jax.jit, static_argnames=("size",))
def _sweep_pictures(
    nets: DenseNet,
    maps: jax.Array,
    owner: jax.Array,
    dirs: jax.Array,
    index: jax.Array,
    kernel: jax.Array,
    steps: jax.Array,
    size: int,
) -> jax.Array:
    """Pictures (B, S, S, 3) of net ``owner[b]`` of the stack ``nets`` moved by ``steps[b]``: where
    ``index[b] >= 0``, its flat weight ``index[b]`` moves (``dirs[b]`` unread) and it is painted from
    that weight's kernel ``kernel[b]`` on over the nets' ``maps``; elsewhere it moves to
    w + steps[b] * dirs[b], painted from the inputs (``kernel[b]`` = 0). One compiled call per
    architecture serves single weights, random directions and pruning alike (each costs about half
    a second of compiling, per architecture, in every fresh process)."""
    flat = nets.flat()[owner]
    rows, one_hot = jnp.arange(owner.size), index >= 0
    moved = jnp.where(one_hot[:, None], flat, flat + steps[:, None] * dirs)
    at = jnp.maximum(index, 0)
    moved = moved.at[rows, at].set(jnp.where(one_hot, moved[rows, at] + steps, moved[rows, at]))
    return render_from(nets.with_flat(moved), kernel, maps, owner, size).rgb


def kernel_of(arch, index) -> np.ndarray:
    """The kernel (layer) each flat weight index belongs to."""
    return (np.searchsorted(arch.kernel_offsets, np.asarray(index), side="right") - 1).astype(np.int32)


def as_directions(dirs, n_weights: int) -> np.ndarray:
    """Directions (B, n_weights): flat weight indices (B,) become one-hot rows."""
    dirs = np.asarray(dirs)
    if dirs.ndim == 2:
        return dirs.astype(np.float32)
    out = np.zeros((dirs.size, n_weights), np.float32)
    out[np.arange(dirs.size), dirs] = 1.0
    return out


def pictures(
    net: DenseNet,
    dirs,
    steps,
    size: int,
    chunk: int,
    progress: Callable[[int], None] | None = None,
    owner=None,
    maps: jax.Array | None = None,
    reduce: Callable | None = None,
    errors_from: np.ndarray | None = None,
):
    """Pictures (B, K, S, S, 3) of each direction moved by each of its steps (B, K).

    ``dirs`` holds flat weight indices (B,) or vectors (B, n_weights). ``net`` is one net, or a
    stack of nets of one architecture (a leading batch axis) with ``owner[b]`` the net that
    direction b moves: the sweeps of several nets then share every call. Every call renders
    chunks of exactly ``chunk`` pictures (the last one padded), so one compiled function serves
    every sweep, pruning and figure of a net, and the stack is padded (``render.padded``), so a
    net alone and groups of any size share them. Every kind of sweep paints through one compiled
    call per architecture (``_sweep_pictures``): single-weight sweeps from the moved weight's layer
    on (``render.render_from``), reading the unmoved layers' maps, and directions from the inputs.
    The maps are the features of the stack's ``render.render_padded``, rendered here unless the
    caller passes them (rendered once, they serve every call on the stack).

    With ``reduce`` the pictures never leave the device, only what it makes of them:
    ``reduce(painted, rows)`` gets each call's pictures (chunk, S, S, 3), whole sweeps of K in turn
    (``chunk`` a multiple of K), and which directions they are (rows, (chunk / K,)), and returns a
    dict of arrays with a leading sweep axis; ``pictures`` returns them over all B sweeps, on the
    host, as a ``Reduced``. The calls, and so the pictures' bits, are the same either way.

    With ``errors_from``, pictures (N, S, S, 3) on the host, one per net of the stack, each picture's
    mean squared difference from its net's comes back (B, K) instead, taken on the host from each
    call's pictures as they arrive: the same bits as from the whole array (each row is reduced
    alone either way), without holding it (the gains' and the pruning's 120 MB for 8 seeds).
    """
    steps = np.asarray(steps, np.float32)
    b, k = steps.shape
    n = net.arch.n_weights
    if owner is None:
        net, owner = jax.tree.map(lambda a: a[None], net), np.zeros(b, np.int32)
    dirs = np.asarray(dirs)
    one_hot = dirs.ndim == 1
    maps = render_padded(net, size, features=True).features if maps is None else maps
    net = padded(net)
    flat_dirs = np.repeat(np.arange(b), k)
    flat_owner = np.asarray(owner, np.int32)[flat_dirs]
    flat_steps = steps.reshape(-1)
    if one_hot:
        index, kernel = dirs.astype(np.int32), kernel_of(net.arch, dirs)
        unread = jax.device_put(np.zeros((chunk, n), np.float32))  # once, not with every call
    else:
        index, kernel = np.full(b, -1, np.int32), np.zeros(b, np.int32)
    if reduce is not None and errors_from is not None:
        raise ValueError("pictures takes a reducer or errors_from, not both")
    if reduce is not None and chunk % k:
        raise ValueError(f"a reduced sweep's {k} steps must share a call: chunk {chunk} is not a multiple of {k}")
    net = jax.device_put(net)  # once, not with every call
    if reduce is not None:
        out = []
    elif errors_from is not None:
        out = np.zeros(b * k, np.float32)
    else:
        out = np.zeros((b * k, size, size, 3), np.float32)
    pending: collections.deque = collections.deque()

    def read():  # the oldest chunk in flight, into ``out``
        start, stop, result = pending.popleft()
        if errors_from is not None:
            diff = np.asarray(result)[: stop - start] - errors_from[flat_owner[start:stop]]
            out[start:stop] = np.mean(np.square(diff), axis=(1, 2, 3))
        elif reduce is None:
            out[start:stop] = np.asarray(result)[: stop - start]
        else:
            out.append({name: a[: (stop - start) // k] for name, a in jax.device_get(result).items()})
        if progress:
            progress(stop - start)

    for start in range(0, b * k, chunk):
        stop = min(start + chunk, b * k)
        at = np.resize(np.arange(start, stop), chunk)  # the last chunk repeats its rows
        rows = flat_dirs[at]
        moving = unread if one_hot else jax.device_put(as_directions(dirs[rows], n))  # both kinds one cache entry
        painted = _sweep_pictures(net, maps, flat_owner[at], moving, index[rows], kernel[rows], flat_steps[at], size)
        pending.append((start, stop, painted if reduce is None else reduce(painted, rows[::k])))
        if len(pending) > AHEAD:
            read()
    while pending:
        read()
    if reduce is not None:
        return Reduced(tuple(out), chunk // k)
    return out.reshape(b, k) if errors_from is not None else out.reshape(b, k, size, size, 3)


@dataclass(frozen=True)
class Reduced:
    """What a reducer kept of B sweeps (``pictures(..., reduce=...)``): each call's arrays, by name,
    as they came back, ``per`` sweeps a call. They are not joined: joining copied every map once
    more (125 MB for 8 seeds) where a reader takes each row once, so ``take`` gathers the rows asked for."""

    parts: tuple[dict[str, np.ndarray], ...]
    per: int

    def take(self, name: str, rows) -> np.ndarray:
        """Sweeps ``rows``' ``name``, in that order."""
        rows = np.asarray(rows, np.int64)
        call, at = np.divmod(rows, self.per)
        like = self.parts[0][name]
        out = np.empty((rows.size, *like.shape[1:]), like.dtype)
        for c in np.unique(call):
            these = call == c
            out[these] = self.parts[c][name][at[these]]
        return out


def by_slot(owners, pictures: list[np.ndarray]) -> np.ndarray:
    """``pictures[i]``, the picture of the stack's net ``owners[i]``, as one array indexed by the
    stack's slots (``pictures``' ``errors_from``; slots no owner names are zero)."""
    out = np.zeros((max(owners) + 1, *pictures[0].shape), np.float32)
    out[np.asarray(owners)] = pictures
    return out


# Chunks ``pictures`` keeps in flight: it reads a chunk once this many later ones are dispatched,
# so an accelerator paints while the host copies (reading each at once left it idle between them).
AHEAD = 2


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a uint64 hash with good avalanche."""
    x = x.astype(np.uint64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def weight_fingerprints(net: DenseNet) -> np.ndarray:
    """A uint64 per weight that names it by what it connects, not where it is stored.

    Every unit gets two names, found by colour refinement (Weisfeiler-Leman) over the layers:
    the value it computes, forward from the inputs (named by their index): its activation group
    and the multiset of (source name, summed weight from the sources of that name); and where
    that value goes, backward from the outputs (named by their index): its group and the set of
    its targets' names. A weight's fingerprint hashes its layer, its value and both names of both
    its units. Permuting a layer's units permutes the fingerprints with the weights, and two
    weights tie only where the wiring cannot tell them apart. (Names made of a unit's total
    |weight| in and out tied 405 of Moonlight's 691 live weights, its cache hops, so which of
    them were swept followed storage order.) Splitting a cache chain into twin units, each
    passing on half, keeps every other weight's fingerprint: twins share a forward name and
    their weights are summed, and a set of targets ignores how many twins reach a name.
    """
    kernels = [np.asarray(k, np.float32) for k in net.kernels]
    groups = _mix(np.repeat(np.arange(len(net.arch.groups), dtype=np.uint64), [c for _, c in net.arch.groups]))
    forward = [_mix(np.arange(kernels[0].shape[0], dtype=np.uint64) + np.uint64(_INPUT))]
    for k in kernels[:-1]:
        forward.append(_mix(_neighbours_hash(forward[-1], k, weighted=True) ^ groups))
    forward.append(_mix(np.arange(kernels[-1].shape[1], dtype=np.uint64) + np.uint64(_OUTPUT)))
    backward = [forward[-1]]  # from the outputs back through the hidden layers; reversed below
    for k in kernels[:0:-1]:
        backward.append(_mix(_neighbours_hash(backward[-1], k.T, weighted=False) ^ groups ^ np.uint64(_BACKWARD)))
    backward = [forward[0], *reversed(backward)]
    parts = []
    for layer, k in enumerate(kernels):
        fields = [_rounded_bits(np.full(k.shape, layer, np.float32)), _rounded_bits(k)]
        for names in (forward[layer], backward[layer]):
            fields.append(np.broadcast_to(names[:, None], k.shape).reshape(-1))
        for names in (forward[layer + 1], backward[layer + 1]):
            fields.append(np.broadcast_to(names[None, :], k.shape).reshape(-1))
        h = np.zeros(k.size, np.uint64)
        for f in fields:
            h = _mix(h ^ f)
        parts.append(h)
    return np.concatenate(parts)


_INPUT, _OUTPUT, _BACKWARD = 0x100000000, 0x200000000, 0x9E3779B97F4A7C15  # name spaces


def _rounded_bits(x: np.ndarray) -> np.ndarray:
    """Flat uint64 of x's float32 bits after rounding to 5 decimals (away from summation-order noise)."""
    return np.round(x.astype(np.float64).reshape(-1), 5).astype(np.float32).view(np.uint32).astype(np.uint64)


def _neighbours_hash(names: np.ndarray, kernel: np.ndarray, weighted: bool) -> np.ndarray:
    """Per column of ``kernel`` (rows: units named ``names``), an order-free hash of the names it
    is connected to: with ``weighted``, of the (name, summed weight) pairs, the weights from rows
    of one name summed first (in float64, then rounded); else of the set of names. Pair hashes
    are added mod 2**64, so in any order; a name whose weights sum to 0 is not connected."""
    unique, which = np.unique(names, return_inverse=True)
    sums = np.zeros((unique.size, kernel.shape[1]), np.float64)
    np.add.at(sums, which.reshape(-1), kernel.astype(np.float64) if weighted else np.abs(kernel))
    pairs = _mix(unique)[:, None]
    if weighted:
        pairs = _mix(pairs ^ _rounded_bits(sums).reshape(sums.shape))
    return np.where(sums != 0, pairs, np.uint64(0)).sum(axis=0, dtype=np.uint64)


def weight_subset(seed: int, fingerprints: np.ndarray, support: np.ndarray, count: int) -> np.ndarray:
    """``count`` of the ``support`` weights (all if fewer), chosen by hashed fingerprint (the net's
    ``weight_fingerprints``): the same weights, wherever a re-laid-out net stores them. Sorted flat indices."""
    if support.size <= count:
        return support
    with np.errstate(over="ignore"):
        order = np.argsort(_mix(fingerprints[support] ^ _mix(np.uint64(seed) + np.uint64(1))), kind="stable")
    return np.sort(support[order[:count]])


def random_directions(seed: int, fingerprints: np.ndarray, support: np.ndarray, count: int) -> np.ndarray:
    """``count`` unit-norm Gaussian directions (count, n_weights) over the weights in ``support``.

    Each weight's component is drawn from a hash of (seed, direction, its
    fingerprint: the net's ``weight_fingerprints``), so a net whose units are permuted gets the
    same directions, permuted with it (common random numbers for fair comparisons).
    """
    fp = fingerprints[support]
    d = np.arange(count, dtype=np.uint64)[:, None]
    with np.errstate(over="ignore"):
        key = _mix(fp[None, :] ^ _mix(d + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)))
        u1 = ((_mix(key) >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
        u2 = ((_mix(key ^ np.uint64(0x632BE59BD9B4E019)) >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
    g = np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    out = np.zeros((count, fingerprints.size), np.float32)
    out[:, support] = g
    return out


def effect_groups(changes: np.ndarray, cos: float) -> np.ndarray:
    """Group index per sweep: sweeps whose change maps have cosine > ``cos`` share a group.

    Duplicated effects come from layerization (every hop of a cache chain moves
    the picture exactly as the genome link does) and from split chains; each
    group counts once. A sweep joins the group of the first earlier sweep it matches.
    """
    flat = changes.reshape(changes.shape[0], -1)
    unit = flat / (np.linalg.norm(flat, axis=1, keepdims=True) + 1e-12)
    same = (unit @ unit.T) > cos
    return np.argmax(same, axis=1)


def flat_index(arch, layer: int, row: int, col: int) -> int:
    """Position of kernel entry ``layer_{layer}[row, col]`` in ``DenseNet.flat()``."""
    shapes = arch.kernel_shapes
    if not (0 <= layer < len(shapes) and 0 <= row < shapes[layer][0] and 0 <= col < shapes[layer][1]):
        raise IndexError(f"no weight layer_{layer}[{row}, {col}] in architecture {arch}")
    return int(arch.kernel_offsets[layer] + row * shapes[layer][1] + col)
