"""Layerization: turn a NEAT graph into a dense layered CPPN, as the FER paper does.

Each live node (an ancestor of an output) sits at its longest-path depth from
the inputs (inputs at depth 0). A value needed more than one layer later is
carried there by ``cache`` units of weight 1; outputs are carried to the last
hidden layer and a final linear layer reads hue, saturation, brightness off
it. Within a layer units are grouped by type (cache, or the node's activation)
in alphabetical order, each group as wide as its widest layer, and a group's
units keep the order in which a depth-first walk from the outputs meets them.
Ink genomes first get zero hue and saturation outputs (``genome.to_hsv``).
A link that closes a cycle reads 0, as in the paper's renderer, and is left
out (``Genome.recurrent_links``).
The result reproduces the paper's architecture strings and shared ``.npz``s.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from ferlab.cppn import Architecture, DenseNet
from ferlab.genome import HSV_LABELS, INPUT_LABELS, Genome, to_hsv


@dataclass(frozen=True)
class Layerized:
    """A dense net plus where each genome link went.

    ``link_weights[k]`` is ``(layer, row, col)``: the kernel entry that holds
    ``genome.links[k]`` (None for a disabled, recurrent or dead link). ``units[node_id]``
    is ``(level, position)`` of the node's own (non-cache) unit; level 0 is the
    input layer, level L+1 the output layer.
    """

    net: DenseNet
    link_weights: tuple[tuple[int, int, int] | None, ...]
    units: dict[str, tuple[int, int]]


def layerize(genome: Genome) -> Layerized:
    """Layerize a validated genome into the paper's dense form."""
    hsv_genome = to_hsv(genome)
    inputs = [hsv_genome.inputs()[label] for label in INPUT_LABELS]
    outputs = [hsv_genome.outputs()[label] for label in HSV_LABELS]
    activation = {n.id: n.activation for n in hsv_genome.nodes}
    links = list(genome.forward_links()) + [(None, l) for l in hsv_genome.links[len(genome.links) :]]
    incoming: dict[str, list] = {n.id: [] for n in hsv_genome.nodes}
    for k, link in links:
        incoming[link.target].append((k, link))

    order = _live_order(inputs, outputs, incoming)
    live = set(order)
    depth: dict[str, int] = {}
    for node in order:  # post-order walk: sources come before targets
        sources = [l.source for _, l in incoming[node]]
        depth[node] = 0 if node in inputs else 1 + max((depth[s] for s in sources), default=0)
    last = max(depth.values())  # hidden levels 1..last, output level last+1

    targets: dict[str, list[int]] = {n: [] for n in order}
    for node in order:
        for _, link in incoming[node]:
            targets[link.source].append(depth[node])
    spans = {
        node: (depth[node], last + 1 if node in outputs else max(targets[node], default=depth[node] + 1))
        for node in order
    }
    # the architecture (and its size caps) first, from per-level counts, before any level list or kernel
    arch = Architecture(last, tuple(sorted(_group_widths(spans, activation, inputs, last).items())))
    levels: list[list[tuple[str, str]]] = [[] for _ in range(last + 1)]
    for node in order:
        start, end = spans[node]
        for level in range(start, end):
            novel = level == start and level > 0
            levels[level].append((node, activation[node] if novel else "cache"))
    levels[0] = [(node, "cache") for node in inputs]
    offsets = dict(zip((k for k, _ in arch.groups), np.cumsum([0] + [c for _, c in arch.groups])))

    positions = [_positions(units, offsets) for units in levels]
    positions[0] = {node: i for i, node in enumerate(inputs)}
    positions.append({node: i for i, node in enumerate(outputs)})
    kernels = [np.zeros(shape, np.float32) for shape in arch.kernel_shapes]
    link_weights: list[tuple[int, int, int] | None] = [None] * len(genome.links)
    units = {node: (0, i) for i, node in enumerate(inputs)}
    for level in range(1, last + 2):
        below, here = positions[level - 1], positions[level]
        kinds = dict(levels[level]) if level <= last else dict.fromkeys(outputs, "cache")
        for node, col in here.items():
            if kinds[node] == "cache":
                kernels[level - 1][below[node], col] = 1.0
                continue
            units[node] = (level, col)
            for k, link in incoming[node]:
                row = below[link.source]
                kernels[level - 1][row, col] += link.weight
                if k is not None:
                    link_weights[k] = (level - 1, row, col)
    net = DenseNet(arch, tuple(jnp.asarray(k) for k in kernels))
    return Layerized(net, tuple(link_weights), {n: u for n, u in units.items() if n in live})


def _group_widths(
    spans: dict[str, tuple[int, int]], activation: dict[str, str], inputs: list[str], last: int
) -> Counter:
    """Each unit kind's widest level, counted in time linear in nodes plus levels.

    A node spanning levels ``[start, end)`` is its own unit at ``start`` (if above the
    inputs) and a cache unit on the levels after; level 0 holds the inputs as cache.
    """
    cache_delta = np.zeros(last + 2, np.int64)
    novel: Counter = Counter()
    for node, (start, end) in spans.items():
        if start > 0:
            novel[(start, activation[node])] += 1
            start += 1
        if start < end:
            cache_delta[max(start, 1)] += 1
            cache_delta[end] -= 1
    cache = np.cumsum(cache_delta)[: last + 1]
    cache[0] = len(inputs)
    widths: Counter = Counter({"cache": int(cache.max())})
    for (_, kind), count in novel.items():
        widths[kind] = max(widths[kind], count)
    return widths


def _live_order(inputs, outputs, incoming) -> list[str]:
    """Inputs, then a depth-first post-order walk from the outputs along in-links."""
    order, seen = list(inputs), set(inputs)
    for out in outputs:
        stack = [(out, iter(incoming[out]))]
        on_stack = {out}
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                on_stack.discard(node)
                if node not in seen:
                    seen.add(node)
                    order.append(node)
            elif nxt[1].source not in seen and nxt[1].source not in on_stack:
                stack.append((nxt[1].source, iter(incoming[nxt[1].source])))
                on_stack.add(nxt[1].source)
    return order


def _positions(units: list[tuple[str, str]], offsets: dict[str, int]) -> dict[str, int]:
    seen: Counter = Counter()
    out = {}
    for node, kind in units:
        out[node] = int(offsets[kind]) + seen[kind]
        seen[kind] += 1
    return out
