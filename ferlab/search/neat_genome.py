"""NEAT genomes as fixed-capacity arrays, painted as a whole population in one call.

A genome has ``max_nodes`` node slots and ``max_links`` link slots. Slots
``0..3`` hold the inputs x, y, d, bias and the next ones the outputs (hue,
saturation, brightness, or a single ink); hidden nodes fill the rest. A node
slot holds a node key (its historical marking: inputs and outputs are keyed by
their slot, a hidden node by the split that made it; -1 marks a free slot) and
an activation index into ``CPPN_ACTIVATIONS``. A link slot holds its innovation
number (-1 free), source and target *slots*, weight and enabled flag.

``Genomes`` is a flax struct pytree; a population is one ``Genomes`` whose
leaves carry a leading axis. ``paint`` evaluates a population on the pixel grid
in one jitted call: each genome's nodes are put in topological order (longest
path from the inputs, found by a fixed-point iteration) and visited in that
order, each node reading the weighted sum of its sources. Activations are
the shared ones (``ferlab.activations``).
``to_genome`` converts to the foundation's ``Genome``.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ferlab.activations import CPPN_ACTIVATIONS, CPPN_FUNCTIONS
from ferlab.genome import HSV_LABELS, INK_LABEL, INPUT_LABELS, Genome, Link, Node
from ferlab.render import colour, grid, on_cpu

N_INPUTS = len(INPUT_LABELS)
IDENTITY = CPPN_ACTIVATIONS.index("identity")


def output_labels(ink: bool) -> tuple[str, ...]:
    return (INK_LABEL,) if ink else HSV_LABELS


@struct.dataclass
class Genomes:
    """One genome, or a population when the leaves have leading axes."""

    node_key: jax.Array  # (..., N) int32, -1 = free slot
    node_act: jax.Array  # (..., N) int32 index into CPPN_ACTIVATIONS
    link_innov: jax.Array  # (..., L) int32, -1 = free slot
    link_src: jax.Array  # (..., L) int32 node slot
    link_dst: jax.Array  # (..., L) int32 node slot
    link_w: jax.Array  # (..., L) float32
    link_on: jax.Array  # (..., L) bool

    @property
    def max_nodes(self) -> int:
        return self.node_key.shape[-1]

    @property
    def max_links(self) -> int:
        return self.link_innov.shape[-1]

    def n_nodes(self) -> jax.Array:
        return jnp.sum(self.node_key >= 0, axis=-1)

    def n_links(self) -> jax.Array:
        return jnp.sum(self.link_innov >= 0, axis=-1)

    def n_enabled(self) -> jax.Array:
        return jnp.sum(self.live_links(), axis=-1)

    def live_links(self) -> jax.Array:
        """Link slots that hold an enabled link: the ones that carry signal."""
        return (self.link_innov >= 0) & self.link_on


def minimal(max_nodes: int, max_links: int, ink: bool, key: jax.Array, init_std: float = 1.0) -> Genomes:
    """Picbreeder's start: every input linked to every output, random weights, no hidden node.

    The initial links get innovations ``0 .. 4*n_out - 1`` in every genome, and
    each output a random activation from the set.
    """
    n_out = len(output_labels(ink))
    n_io = N_INPUTS + n_out
    if max_nodes < n_io or max_links < N_INPUTS * n_out:
        raise ValueError(f"max_nodes must be >= {n_io} and max_links >= {N_INPUTS * n_out}")
    k_w, k_a = jax.random.split(key)
    node_key = jnp.full(max_nodes, -1, jnp.int32).at[:n_io].set(jnp.arange(n_io))
    acts = jax.random.randint(k_a, (n_out,), 0, len(CPPN_ACTIVATIONS))
    node_act = jnp.full(max_nodes, IDENTITY, jnp.int32).at[N_INPUTS:n_io].set(acts)
    n_init = N_INPUTS * n_out
    src, dst = np.meshgrid(np.arange(N_INPUTS), np.arange(N_INPUTS, n_io), indexing="ij")
    pad = max_links - n_init
    link_innov = jnp.concatenate([jnp.arange(n_init), jnp.full(pad, -1)]).astype(jnp.int32)
    link_src = jnp.concatenate([jnp.asarray(src.ravel()), jnp.zeros(pad, int)]).astype(jnp.int32)
    link_dst = jnp.concatenate([jnp.asarray(dst.ravel()), jnp.zeros(pad, int)]).astype(jnp.int32)
    w = init_std * jax.random.normal(k_w, (n_init,))
    link_w = jnp.concatenate([w, jnp.zeros(pad)]).astype(jnp.float32)
    link_on = jnp.arange(max_links) < n_init
    return Genomes(node_key, node_act, link_innov, link_src, link_dst, link_w, link_on)


def depths(g: Genomes) -> jax.Array:
    """Longest-path depth of every node slot along enabled links (inputs 0)."""
    live = g.live_links()

    def relax(_, depth):
        cand = jnp.where(live, depth[g.link_src] + 1, 0)
        return jnp.zeros_like(depth).at[g.link_dst].max(cand)

    return jax.lax.fori_loop(0, g.max_nodes, relax, jnp.zeros(g.max_nodes, jnp.int32))


def topological_order(g: Genomes) -> tuple[jax.Array, jax.Array]:
    """``(order, count)``: the non-input node slots by depth, and how many there are."""
    is_node = (g.node_key >= 0) & (jnp.arange(g.max_nodes) >= N_INPUTS)
    rank = jnp.where(is_node, depths(g), g.max_nodes + 1)
    return jnp.argsort(rank, stable=True).astype(jnp.int32), jnp.sum(is_node)


@struct.dataclass
class Schedule:
    """One genome's evaluation plan. Row r of ``nodes`` is the r-th node in
    topological order: (slot, activation, first in-link, end of in-links), its
    in-links being ``src``/``w`` entries sorted by the position of their target
    in that order. One row read per node keeps the painting loop lean."""

    nodes: jax.Array
    count: jax.Array
    src: jax.Array
    w: jax.Array


def schedule(g: Genomes) -> Schedule:
    order, count = topological_order(g)
    rank = jnp.zeros(g.max_nodes, jnp.int32).at[order].set(jnp.arange(g.max_nodes, dtype=jnp.int32))
    live = g.live_links()
    key = jnp.where(live, rank[g.link_dst], g.max_nodes + 1)
    by_target = jnp.argsort(key, stable=True)
    starts = jnp.searchsorted(key[by_target], jnp.arange(g.max_nodes + 1)).astype(jnp.int32)
    nodes = jnp.stack([order, g.node_act[order], starts[:-1], starts[1:]], axis=1)
    return Schedule(nodes, count, g.link_src[by_target], g.link_w[by_target])


def _paint_one(s: Schedule, inputs: jax.Array, n_out: int) -> jax.Array:
    """Raw outputs (pixels, n_out) of one genome on flattened grid inputs (pixels, 4).

    Loops run for exactly this genome's nodes and links, and ``switch``
    computes one activation per node: no work on free slots.
    """
    values = jnp.zeros((s.nodes.shape[0], inputs.shape[0]), jnp.float32).at[:N_INPUTS].set(inputs.T)

    def visit(r, values):
        slot, act, first, end = s.nodes[r]

        def add(k, acc):
            return acc + s.w[k] * values[s.src[k]]

        z = jax.lax.fori_loop(first, end, add, jnp.zeros(inputs.shape[0]))
        return values.at[slot].set(jax.lax.switch(act, CPPN_FUNCTIONS, z))

    values = jax.lax.fori_loop(0, s.count, visit, values)
    return values[N_INPUTS : N_INPUTS + n_out].T


def _paint_side_by_side(s: Schedule, inputs: jax.Array, n_out: int) -> jax.Array:
    """Raw outputs (P, pixels, n_out) of a population's schedules, every genome's r-th node at once.

    Each node's in-links are summed in ``_paint_one``'s order through the same activation, so
    the outputs agree with it up to float rounding (XLA fuses the two differently; within 1e-5
    over populations of evolved genomes). The loops run to the population's longest
    schedule and largest in-degree, a genome past its own end left alone: wasted work on a CPU,
    but one step over (P, pixels) where ``_paint_one`` would take P * (nodes + links) small steps,
    each a kernel launch on an accelerator.
    """
    p = s.nodes.shape[0]
    rows = jnp.arange(p)
    values = jnp.zeros((p, s.nodes.shape[1], inputs.shape[0]), jnp.float32).at[:, :N_INPUTS].set(inputs.T)

    def visit(r, values):
        slot, act, first, end = (s.nodes[:, r, c] for c in range(4))
        live = r < s.count
        degree = jnp.where(live, end - first, 0)

        def add(j, acc):
            k = jnp.minimum(first + j, s.src.shape[1] - 1)
            return jnp.where((j < degree)[:, None], acc + s.w[rows, k][:, None] * values[rows, s.src[rows, k]], acc)

        z = jax.lax.fori_loop(0, jnp.max(degree), add, jnp.zeros((p, inputs.shape[0])))
        out = jax.vmap(lambda a, x: jax.lax.switch(a, CPPN_FUNCTIONS, x))(act, z)
        return values.at[rows, slot].set(jnp.where(live[:, None], out, values[rows, slot]))

    values = jax.lax.fori_loop(0, jnp.max(s.count), visit, values)
    return jnp.swapaxes(values[:, N_INPUTS : N_INPUTS + n_out], 1, 2)


@partial(jax.jit, static_argnames=("size", "ink", "side_by_side"))
def paint(pop: Genomes, size: int, ink: bool, side_by_side: bool | None = None) -> tuple[jax.Array, jax.Array]:
    """``(rgb (P, S, S, 3), hsv (P, S, S, 3))`` of a population, in one compiled call.

    Schedules are computed for the whole population at once (vmapped). On a CPU the painting
    then scans over genomes, each over all its pixels at once, doing work for its own nodes and
    links only; on an accelerator (or with ``side_by_side``) all genomes are painted side by
    side (``_paint_side_by_side``): the same pictures up to float rounding.
    Ink genomes get hue = saturation = 0, so their colour is the grey level
    clip(|ink|, 0, 1), which is taken directly.
    """
    n_out = len(output_labels(ink))
    inputs = grid(size).reshape(-1, 4)
    schedules = jax.vmap(schedule)(pop)
    if (not on_cpu()) if side_by_side is None else side_by_side:
        raw = _paint_side_by_side(schedules, inputs, n_out)
    else:
        raw = jax.lax.map(lambda s: _paint_one(s, inputs, n_out), schedules)
    raw = raw.reshape(raw.shape[0], size, size, n_out)
    if ink:
        hsv = jnp.concatenate([jnp.zeros(raw.shape[:-1] + (2,), raw.dtype), raw], axis=-1)
        return jnp.broadcast_to(jnp.clip(jnp.abs(raw), 0.0, 1.0), hsv.shape), hsv
    return colour(raw), raw


def take(pop: Genomes, index) -> Genomes:
    """Genome(s) ``index`` of a population."""
    return jax.tree.map(lambda a: a[index], pop)


def select(mask: jax.Array, a: Genomes, b: Genomes) -> Genomes:
    """Per genome, ``a`` where ``mask (P,)`` else ``b`` (two populations of P)."""
    return jax.tree.map(lambda x, y: jnp.where(mask.reshape((-1,) + (1,) * (x.ndim - 1)), x, y), a, b)


def to_genome(g: Genomes, ink: bool, name: str = "") -> Genome:
    """The foundation genome of one tensor genome (node ids are node keys as strings)."""
    a = jax.tree.map(np.asarray, g)
    labels = dict(enumerate(INPUT_LABELS + output_labels(ink)))
    nodes = []
    for slot in np.flatnonzero(a.node_key >= 0):
        kind = "input" if slot < N_INPUTS else "output" if slot in labels else "hidden"
        activation = "identity" if kind == "input" else CPPN_ACTIVATIONS[a.node_act[slot]]
        nodes.append(Node(str(a.node_key[slot]), kind, activation, labels.get(int(slot), "")))
    slots = np.flatnonzero(a.link_innov >= 0)
    links = [
        Link(
            int(a.link_innov[k]),
            str(a.node_key[a.link_src[k]]),
            str(a.node_key[a.link_dst[k]]),
            float(a.link_w[k]),
            bool(a.link_on[k]),
        )
        for k in slots[np.argsort(a.link_innov[slots], kind="stable")]
    ]
    return Genome.build(nodes, links, name=name, source=name or "NEAT genome")
