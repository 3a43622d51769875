"""Paint images: CPPNs evaluated on a pixel grid with Picbreeder's convention.

Pixel (row i, column j) of a res x res image has x = lin[j], y = lin[i] with
lin = linspace(-1, 1, res), d = 1.4 sqrt(x^2 + y^2) and bias = 1. The raw
outputs (hue, saturation, brightness) become colour as
hsv_to_rgb((hue + 1) mod 1, clip(saturation, 0, 1), clip(|brightness|, 0, 1)).

``render`` is the batched JAX path for dense nets (one net, or any number of
leading batch axes, in one compiled call); ``render_genome`` evaluates a NEAT
graph node by node, the reference that layerization must reproduce.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ferlab.activations import ACTIVATIONS
from ferlab.cppn import N_OUTPUTS, DenseNet, apply_groups, dot, hidden_layers, pixels_major
from ferlab.genome import HSV_LABELS, INPUT_LABELS, Genome, to_hsv


def grid(size: int) -> jax.Array:
    """The (size, size, 4) input grid: x, y, d, bias at every pixel."""
    lin = jnp.linspace(-1.0, 1.0, size)
    y, x = jnp.meshgrid(lin, lin, indexing="ij")
    d = 1.4 * jnp.sqrt(x * x + y * y)
    return jnp.stack([x, y, d, jnp.ones_like(x)], axis=-1)


def hsv_to_rgb(h, s, v):
    """HSV in [0, 1] to RGB in [0, 1] (the standard hexcone model)."""
    h6 = h * 6.0
    i = jnp.floor(h6)
    f = h6 - i
    i = i.astype(jnp.int32) % 6
    p, q, t = v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f))
    r = jnp.select([i == 0, i == 1, i == 2, i == 3, i == 4], [v, q, p, p, t], v)
    g = jnp.select([i == 0, i == 1, i == 2, i == 3, i == 4], [t, v, v, q, p], p)
    b = jnp.select([i == 0, i == 1, i == 2, i == 3, i == 4], [p, p, t, v, v], q)
    return jnp.stack([r, g, b], axis=-1)


def unit_clip(x: jax.Array) -> jax.Array:
    return jnp.clip(x, 0.0, 1.0)


def colour(hsv: jax.Array, clip=unit_clip) -> jax.Array:
    """Raw CPPN outputs (..., 3) to RGB with Picbreeder's convention; ``clip`` clips saturation and
    brightness to [0, 1] (training may pass one with another gradient, never other values)."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    return hsv_to_rgb(jnp.mod(h + 1.0, 1.0), clip(s), clip(jnp.abs(v)))


@struct.dataclass
class Image:
    """A rendered picture: ``rgb`` (..., S, S, 3) in [0, 1], raw ``hsv`` outputs,
    and, when asked for, ``features`` (..., L, width, S, S): every hidden unit's map."""

    rgb: jax.Array
    hsv: jax.Array
    features: jax.Array | None = None


@partial(jax.jit, static_argnames=("size", "features"))
def render(net: DenseNet, size: int, features: bool = False) -> Image:
    """Render a net, or a batch of nets (leading axes of its kernels), in one call.

    On a CPU the batch's nets, and a large image's pixel blocks, are painted one after another
    (``lax.map``) with activations written in place (``cppn.apply_groups``): 64 nets at 64x64
    paint about 3x faster than vmapped together, and one net at 256x256 about 2x. On other
    platforms they are vmapped, each layer's activations in one selecting pass. Both give the
    same pictures (to a dense net's last bits; ``padded`` says when exactly). Under ``jax.vmap``
    or ``jax.grad`` use ``picture``, which is written for transformations (the mapped loops are
    slow under them).
    """
    batch = net.batch_shape
    nets = jax.tree.map(lambda k: k.reshape(-1, *k.shape[len(batch) :]), net) if batch else net  # one batch axis

    def mapped(n: DenseNet) -> Image:
        one = partial(_render_one, size=size, features=features, in_place=True)
        return jax.lax.map(one, n) if batch else one(n)

    def vmapped(n: DenseNet) -> Image:
        one = partial(_render_one, size=size, features=features, in_place=False)
        return jax.vmap(one)(n) if batch else one(n)

    image = (mapped if on_cpu() else vmapped)(nets)
    return jax.tree.map(lambda a: a.reshape(*batch, *a.shape[1:]) if batch else a, image)


def on_cpu() -> bool:
    """Whether compiled code runs on a CPU (the default backend), which takes the painters' loops.

    Chosen when a function is traced, not with ``lax.platform_dependent``, which traces every
    branch: SGD's training step was traced twice (2.4 s of its 5.5 s to compile, the butterfly)."""
    return jax.default_backend() == "cpu"


# Batches are padded to at least this many nets (then to a power of two) by ``padded``.
BATCH = 8


def padded(nets: DenseNet) -> DenseNet:
    """A batch (one leading axis) padded with copies of its first net to ``BATCH`` or the next power
    of two. ``render`` compiles per batch shape, and a run's batches vary in size (its seeds and
    ladder snapshots, a net alone and a group of nets in the suite); padded, they share one
    compiled call (about 0.5-1 s of compiling each). A net paints the same bits in every padded batch
    of one size (one compiled call); alone, or in a batch of another size, a dense net's colours
    can differ in their last bits (each shape compiles on its own)."""
    n = nets.batch_shape[0]
    full = max(BATCH, 1 << (n - 1).bit_length())
    return jax.tree.map(lambda a: np.concatenate([a, np.repeat(np.asarray(a)[:1], full - n, 0)]), nets)


def render_padded(nets: DenseNet, size: int, features: bool = False) -> Image:
    """``render`` of a batch of nets (one leading axis) as a ``padded`` batch: its nets first, then
    the padding. A run's final nets, the suite's groups, a net alone and its feature figure, whatever
    their number, share one compiled render."""
    return render(padded(nets), size, features=features)


def batch_rgb(nets: DenseNet, size: int) -> np.ndarray:
    """The RGB pictures ``(N, size, size, 3)`` of a batch of nets (one leading axis), painted as a
    ``padded`` batch (``render_padded``)."""
    return np.asarray(render_padded(nets, size).rgb)[: nets.batch_shape[0]]


def picture(net: DenseNet, size: int) -> Image:
    """One net's picture as a pure function to compose under ``jax.vmap`` and ``jax.grad`` (SGD's
    loss): all pixels in one block, activations concatenated, since a backward pass through pixel
    blocks or in-place updates is slower (``bench/sgd.py``)."""
    hsv = net(grid(size).reshape(size * size, -1))[0].reshape(size, size, -1)
    return Image(colour(hsv), hsv)


@partial(jax.jit, static_argnames=("size",))
def render_from(nets: DenseNet, start: jax.Array, maps: jax.Array, source: jax.Array, size: int) -> Image:
    """Pictures of a batch of nets (B,) whose kernels before ``start[b]`` are those of net
    ``source[b]`` of a stack whose feature maps are ``maps`` ((N, L, width, S, S), as ``render``
    gives them): each net is painted from kernel ``start[b]`` on, reading the maps of the layers
    before it. A weight sweep moves one kernel, so on a CPU this skips the layers it leaves
    alone, with the same bits as ``render`` (the suite's one-hot sweeps, ``bench/analyze.py``).
    Nets that start at kernel 0 (random directions, pruning) are painted with the layers unrolled:
    the loop that serves the later starts ran 30% slower over a whole net, and one call serving
    every start spares the suite a second compiled render for each architecture. On other
    platforms, or when the image is more than one pixel block, it is ``render``.
    """
    if size * size > PIXEL_BLOCK:
        return render(nets, size)
    arch, pixels = nets.arch, grid(size).reshape(size * size, -1).T
    flat_maps = maps.reshape(*maps.shape[:3], size * size)

    def one(args) -> Image:
        net, s, src = args
        kernels = net.kernels

        def whole():  # from the inputs: the layers unrolled, as ``render`` paints them
            *_, h = hidden_layers(arch, kernels, pixels, form="in_place")
            return h

        def rest():  # from kernel s >= 1: the map of layer s - 1, then a loop over the layers left
            h = jax.lax.dynamic_index_in_dim(flat_maps[src], jnp.maximum(s, 1) - 1, keepdims=False)
            if arch.n_layers == 1:
                return h
            hidden = jnp.stack(kernels[1:-1])
            layer = lambda i, h: apply_groups(arch, dot(hidden[i - 1].T, h), axis=0, form="in_place")
            return jax.lax.fori_loop(s, arch.n_layers, layer, h)

        h = jax.lax.cond(s == 0, whole, rest)
        hsv = pixels_major(dot(kernels[-1].T, h)).reshape(size, size, -1)
        return Image(colour(hsv), hsv)

    return jax.lax.map(one, (nets, start, source)) if on_cpu() else render(nets, size)


# Pixels per block when a net paints a large image without its feature maps (``_render_one``).
PIXEL_BLOCK = 8192


def _render_one(net: DenseNet, size: int, features: bool, in_place: bool) -> Image:
    pixels = grid(size).reshape(size * size, -1)
    if features:  # units-major: each unit's map is written as a contiguous row
        blocked = in_place and pixels.shape[0] > PIXEL_BLOCK and not pixels.shape[0] % PIXEL_BLOCK
        hsv, feats = _paint_maps_blocks(net, pixels) if blocked else net(pixels, form=_form(in_place))
        feats = feats.reshape(*feats.shape[:2], size, size)
    else:
        hsv, feats = _paint_blocks(net, pixels, in_place), None
    hsv = hsv.reshape(size, size, -1)
    return Image(colour(hsv), hsv, feats)


def _form(in_place: bool) -> str:
    """``apply_groups``'s form for a painter: in place in the CPU loops, else one selecting pass
    (``render`` is forward only; ``picture`` keeps the concatenation for ``grad``)."""
    return "in_place" if in_place else "select"


def _paint_blocks(net: DenseNet, pixels: jax.Array, in_place: bool) -> jax.Array:
    """Raw outputs of one net on ``pixels[n, 4]``, units-major, in blocks of ``PIXEL_BLOCK`` pixels:
    on a CPU blocks run faster than one long matmul (``bench/render.py``). With ``in_place`` the
    blocks are painted one after another (``lax.map``), otherwise vmapped (as off a CPU and under
    ``vmap``, where a loop of in-place updates is slow)."""
    n = pixels.shape[0]
    blocks = -(-n // PIXEL_BLOCK)
    paint = lambda block: net(block, form=_form(in_place))[0]
    if blocks == 1:
        return paint(pixels)
    padded = jnp.pad(pixels, ((0, blocks * PIXEL_BLOCK - n), (0, 0))).reshape(blocks, PIXEL_BLOCK, -1)
    painted = jax.lax.map(paint, padded) if in_place else jax.vmap(paint)(padded)
    return painted.reshape(-1, N_OUTPUTS)[:n]


def _paint_maps_blocks(net: DenseNet, pixels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``net(pixels)`` with feature maps, in blocks of ``PIXEL_BLOCK`` pixels one after another (a
    multiple of it), each layer's block written in place into one (L, width, pixels) buffer: the
    blocks' matmuls are faster and no stacking or transposing copies the maps afterwards
    (``bench/render.py``). Same bits as one block."""
    arch, kernels, n = net.arch, net.kernels, pixels.shape[0]

    def block(b, carry):
        maps, out = carry
        start = b * PIXEL_BLOCK
        inputs = jax.lax.dynamic_slice_in_dim(pixels, start, PIXEL_BLOCK).T
        for layer, h in enumerate(hidden_layers(arch, kernels, inputs, form="in_place")):
            maps = jax.lax.dynamic_update_slice(maps, h[None], (layer, 0, start))
        return maps, jax.lax.dynamic_update_slice(out, dot(kernels[-1].T, h), (0, start))

    empty = (jnp.zeros((arch.n_layers, arch.width, n), pixels.dtype), jnp.zeros((N_OUTPUTS, n), pixels.dtype))
    maps, out = jax.lax.fori_loop(0, n // PIXEL_BLOCK, block, empty)
    return pixels_major(out), maps


def render_genome(genome: Genome, size: int) -> tuple[Image, dict[str, jax.Array]]:
    """Evaluate the graph directly; returns the image and every live node's map."""
    genome = to_hsv(genome)  # its added links (ink to hue and saturation) close no cycle
    inputs = genome.inputs()
    g = grid(size)
    values = {inputs[label]: g[..., k] for k, label in enumerate(INPUT_LABELS)}
    incoming: dict[str, list] = {n.id: [] for n in genome.nodes}
    for _, link in genome.forward_links():
        incoming[link.target].append(link)
    activation = {n.id: n.activation for n in genome.nodes}

    def value(node_id: str) -> jax.Array:
        stack = [node_id]
        while stack:  # iterative post-order: deep genomes must not hit the recursion limit
            top = stack[-1]
            pending = [l.source for l in incoming[top] if l.source not in values]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            if top not in values:
                z = sum((l.weight * values[l.source] for l in incoming[top]), jnp.zeros((size, size)))
                values[top] = ACTIVATIONS[activation[top]](z)
        return values[node_id]

    outputs = genome.outputs()
    hsv = jnp.stack([value(outputs[label]) for label in HSV_LABELS], axis=-1)
    return Image(colour(hsv), hsv), values
