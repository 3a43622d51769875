"""NEAT variation on tensor genomes: mutation with a generation-wide innovation table,
crossover and the compatibility distance, all aligned by innovation number.

Structural mutations are proposed by every offspring at once, then numbered
together: proposals are sorted by their key (the innovation of the split link
for add-node, the (source key, target key) pair for add-link) and the distinct
keys get consecutive numbers from the global counters, so the same mutation in
one generation gets the same node key and innovation numbers in every genome.

Crossover and distance align genes by sorting innovations and
``searchsorted``-ing into them: memory grows as population x links (x species
for the distance matrix), never as links x links.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ferlab.activations import CPPN_ACTIVATIONS
from ferlab.search.neat_config import NEATConfig
from ferlab.search.neat_genome import N_INPUTS, Genomes, select

_BIG = jnp.iinfo(jnp.int32).max


def _pick(key: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A uniformly random True index of ``mask`` (flattened), and whether there was one."""
    flat = mask.reshape(-1)
    return jnp.argmax(jnp.where(flat, jax.random.uniform(key, flat.shape), -1.0)), jnp.any(flat)


def _first_free(keys: jax.Array, k: int = 1) -> jax.Array:
    """Indices of the first ``k`` free (-1) slots (garbage where there are fewer)."""
    return jnp.argsort(keys >= 0, stable=True)[:k]


def match(a_keys: jax.Array, b_keys: jax.Array) -> tuple[jax.Array, jax.Array]:
    """For each slot of ``a``: whether ``b`` has the same (valid) key, and its slot in ``b``."""
    order = jnp.argsort(jnp.where(b_keys >= 0, b_keys, _BIG))
    sorted_b = jnp.where(b_keys >= 0, b_keys, _BIG)[order]
    pos = jnp.clip(jnp.searchsorted(sorted_b, a_keys), 0, b_keys.shape[0] - 1)
    slot = order[pos]
    return (a_keys >= 0) & (b_keys[slot] == a_keys), slot


def crossover(fit: Genomes, other: Genomes, key: jax.Array) -> Genomes:
    """NEAT crossover: the child has the fitter parent's genes (so its disjoint and
    excess genes); a matching gene (same innovation) takes weight and enabled flag
    from either parent at random, and a matching node its activation."""
    k_link, k_node = jax.random.split(key)
    same, slot = match(fit.link_innov, other.link_innov)
    from_other = same & jax.random.bernoulli(k_link, 0.5, same.shape)
    node_same, node_slot = match(fit.node_key, other.node_key)
    node_other = node_same & jax.random.bernoulli(k_node, 0.5, node_same.shape)
    return fit.replace(
        link_w=jnp.where(from_other, other.link_w[slot], fit.link_w),
        link_on=jnp.where(from_other, other.link_on[slot], fit.link_on),
        node_act=jnp.where(node_other, other.node_act[node_slot], fit.node_act),
    )


def sorted_genes(g: Genomes) -> tuple[jax.Array, jax.Array]:
    """``(innovations, weights)`` sorted by innovation, free slots last (as int32 max)."""
    innov = jnp.where(g.link_innov >= 0, g.link_innov, _BIG)
    order = jnp.argsort(innov)
    return innov[order], g.link_w[order]


def distance_matrix(
    a: tuple[jax.Array, jax.Array], b: tuple[jax.Array, jax.Array], c1: float, c2: float, c3: float
) -> jax.Array:
    """``distance`` of every genome of ``a`` (P genomes) to every genome of ``b`` (S),
    both given as ``sorted_genes`` with a leading axis: ``(P, S)``.

    ``b``'s innovations are pooled into one sorted table and each genome's genes
    located in it once (one ``searchsorted`` per gene, not per pair); a pair then
    matches genes with one gather per gene from ``b``'s rows spread over that table.
    """
    (ai, aw), (bi, bw) = a, b
    s, m = bi.shape[0], bi.size
    table = jnp.sort(bi.reshape(-1))

    def locate(x):
        pos = jnp.clip(jnp.searchsorted(table, x), 0, m - 1)
        return jnp.where((x != _BIG) & (table[pos] == x), pos, m)  # m: not in the table

    rows = jnp.arange(s)[:, None]
    b_pos = locate(bi)
    b_has = jnp.zeros((s, m + 1), bool).at[rows, b_pos].set(True).at[:, m].set(False)
    b_w = jnp.zeros((s, m + 1), bw.dtype).at[rows, b_pos].set(bw)
    a_pos = locate(ai)
    same = jnp.moveaxis(b_has[:, a_pos], 0, 1)  # (P, S, L)
    wdiff = jnp.sum(jnp.where(same, jnp.abs(aw[:, None] - jnp.moveaxis(b_w[:, a_pos], 0, 1)), 0.0), -1)
    va, vb = ai != _BIG, bi != _BIG
    n_a, n_b, n_same = jnp.sum(va, -1)[:, None], jnp.sum(vb, -1)[None, :], jnp.sum(same, -1)
    cutoff = jnp.minimum(jnp.max(jnp.where(va, ai, -1), -1)[:, None], jnp.max(jnp.where(vb, bi, -1), -1)[None, :])
    excess = (
        jnp.sum(va[:, None] & (ai[:, None] > cutoff[..., None]), -1)  # never matching
        + jnp.sum(vb[None] & (bi[None] > cutoff[..., None]), -1)
    )
    disjoint = n_a + n_b - 2 * n_same - excess
    return (c1 * excess + c2 * disjoint) / jnp.maximum(jnp.maximum(n_a, n_b), 1) + c3 * wdiff / jnp.maximum(n_same, 1)


def distance(a: Genomes, b: Genomes, c1: float, c2: float, c3: float) -> jax.Array:
    """Compatibility distance c1 E / N + c2 D / N + c3 W.

    E and D count excess genes (beyond the other genome's highest innovation)
    and disjoint genes, N is the larger genome's gene count, and W the mean
    absolute weight difference of matching genes.
    """
    one = lambda g: jax.tree.map(lambda x: x[None], sorted_genes(g))
    return distance_matrix(one(a), one(b), c1, c2, c3)[0, 0]


def mutate_attributes(g: Genomes, key: jax.Array, cfg: NEATConfig) -> Genomes:
    """Weight perturbation and replacement, enable/disable toggle, activation change."""
    k_u, k_p, k_r, k_t, k_tp, k_a, k_av = jax.random.split(key, 7)
    valid = g.link_innov >= 0
    u = jax.random.uniform(k_u, valid.shape)
    perturb = u < cfg.weight_perturb_rate
    replace = (u >= cfg.weight_perturb_rate) & (u < cfg.weight_perturb_rate + cfg.weight_replace_rate)
    w = g.link_w + jnp.where(perturb, cfg.weight_perturb_power * jax.random.normal(k_p, u.shape), 0.0)
    w = jnp.where(replace, cfg.weight_init_std * jax.random.normal(k_r, u.shape), w)
    w = jnp.where(valid, jnp.clip(w, -cfg.weight_max, cfg.weight_max), 0.0)
    toggle, any_link = _pick(k_tp, valid)
    flip = any_link & jax.random.bernoulli(k_t, cfg.toggle_link_rate)
    on = g.link_on.at[toggle].set(jnp.where(flip, ~g.link_on[toggle], g.link_on[toggle]))
    mutable = (g.node_key >= 0) & (jnp.arange(g.max_nodes) >= N_INPUTS)
    change = mutable & jax.random.bernoulli(k_a, cfg.activation_mutate_rate, mutable.shape)
    acts = jnp.where(change, jax.random.randint(k_av, mutable.shape, 0, len(CPPN_ACTIVATIONS)), g.node_act)
    return g.replace(link_w=w, link_on=on, node_act=acts)


def reachable(g: Genomes) -> jax.Array:
    """``(N, N)`` bool: a path of links (enabled or not) leads from node i to node j (or i == j)."""
    n = g.max_nodes
    valid = g.link_innov >= 0
    adj = jnp.eye(n).at[g.link_src, g.link_dst].max(valid.astype(jnp.float32))
    for _ in range(max(1, (n - 1).bit_length())):
        adj = jnp.minimum(adj @ adj, 1.0)
    return adj > 0


def propose_split(g: Genomes, key: jax.Array, rate: float) -> tuple[jax.Array, jax.Array]:
    """``(link slot, innovation key or -1)`` of an add-node mutation."""
    k_do, k_pick = jax.random.split(key)
    enabled = g.live_links()
    slot, any_link = _pick(k_pick, enabled)
    room = (jnp.sum(g.node_key < 0) >= 1) & (jnp.sum(g.link_innov < 0) >= 2)
    do = jax.random.bernoulli(k_do, rate) & any_link & room
    return slot, jnp.where(do, g.link_innov[slot], -1)


def apply_split(g: Genomes, slot, node_key, innov, act) -> Genomes:
    """Split link ``slot`` with a new node (``node_key``, activation ``act``): the link is
    disabled, source -> new gets weight 1 and innovation ``innov``, new -> target
    the old weight and ``innov + 1``. A no-op where ``node_key`` < 0."""
    do = node_key >= 0
    n = _first_free(g.node_key)[0]
    l1, l2 = _first_free(g.link_innov, 2)
    set_if = lambda arr, i, v: arr.at[i].set(jnp.where(do, v, arr[i]))
    nk = set_if(g.node_key, n, node_key)
    na = set_if(g.node_act, n, act)
    li = set_if(set_if(g.link_innov, l1, innov), l2, innov + 1)
    ls = set_if(set_if(g.link_src, l1, g.link_src[slot]), l2, n)
    ld = set_if(set_if(g.link_dst, l1, n), l2, g.link_dst[slot])
    lw = set_if(set_if(g.link_w, l1, 1.0), l2, g.link_w[slot])
    lo = set_if(set_if(set_if(g.link_on, slot, False), l1, True), l2, True)
    return Genomes(nk, na, li, ls, ld, lw, lo)


def propose_link(g: Genomes, key: jax.Array, rate: float) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(source slot, target slot, do)`` of an add-link mutation that makes no cycle:
    a new source -> target pair where the target is no input and does not reach the source."""
    k_do, k_pick = jax.random.split(key)
    n = g.max_nodes
    exists = g.node_key >= 0
    valid = g.link_innov >= 0
    linked = jnp.zeros((n, n), bool).at[g.link_src, g.link_dst].max(valid)
    ok = exists[:, None] & exists[None, :] & (jnp.arange(n) >= N_INPUTS)[None, :] & ~linked & ~reachable(g).T
    flat, any_pair = _pick(k_pick, ok)
    do = jax.random.bernoulli(k_do, rate) & any_pair & jnp.any(g.link_innov < 0)
    return flat // n, flat % n, do


def apply_link(g: Genomes, src, dst, innov, weight) -> Genomes:
    """Add link src -> dst with ``innov`` and ``weight``; a no-op where ``innov`` < 0."""
    do = innov >= 0
    k = _first_free(g.link_innov)[0]
    set_if = lambda arr, v: arr.at[k].set(jnp.where(do, v, arr[k]))
    return g.replace(
        link_innov=set_if(g.link_innov, innov),
        link_src=set_if(g.link_src, src),
        link_dst=set_if(g.link_dst, dst),
        link_w=set_if(g.link_w, weight),
        link_on=set_if(g.link_on, True),
    )


def number(keys: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Innovation table of one generation: ``(rank, count)`` where equal valid key rows
    (P, K) share a rank in 0..count-1 (ranks follow the keys' sorted order)."""
    cols = [jnp.where(valid, keys[:, c], _BIG) for c in range(keys.shape[1])]
    order = jnp.lexsort(cols[::-1])
    ks = jnp.stack(cols, 1)[order]
    new = jnp.concatenate([jnp.ones(1, bool), jnp.any(ks[1:] != ks[:-1], axis=1)]) & valid[order]
    rank_sorted = jnp.cumsum(new) - 1
    rank = jnp.zeros_like(rank_sorted).at[order].set(rank_sorted)
    return jnp.where(valid, rank, -1), jnp.sum(new)


def mutate(
    pop: Genomes, key: jax.Array, mutable: jax.Array, next_node: jax.Array, next_innov: jax.Array, cfg: NEATConfig
) -> tuple[Genomes, jax.Array, jax.Array]:
    """Mutate every genome where ``mutable``; returns the population and the new counters."""
    p = pop.link_innov.shape[0]
    k_attr, k_split, k_act, k_link, k_w = jax.random.split(key, 5)
    changed = jax.vmap(mutate_attributes, (0, 0, None))(pop, jax.random.split(k_attr, p), cfg)
    pop = select(mutable, changed, pop)

    slot, split_key = jax.vmap(propose_split, (0, 0, None))(pop, jax.random.split(k_split, p), cfg.add_node_rate)
    valid = (split_key >= 0) & mutable
    rank, n_split = number(split_key[:, None], valid)
    acts = jax.random.randint(k_act, (p,), 0, len(CPPN_ACTIVATIONS))
    pop = jax.vmap(apply_split)(pop, slot, jnp.where(valid, next_node + rank, -1), next_innov + 2 * rank, acts)
    next_node, next_innov = next_node + n_split, next_innov + 2 * n_split

    src, dst, do = jax.vmap(propose_link, (0, 0, None))(pop, jax.random.split(k_link, p), cfg.add_link_rate)
    valid = do & mutable
    pair = jnp.stack(
        [
            jnp.take_along_axis(pop.node_key, src[:, None], 1)[:, 0],
            jnp.take_along_axis(pop.node_key, dst[:, None], 1)[:, 0],
        ],
        axis=1,
    )
    rank, n_link = number(pair, valid)
    weights = cfg.weight_init_std * jax.random.normal(k_w, (p,))
    pop = jax.vmap(apply_link)(pop, src, dst, jnp.where(valid, next_innov + rank, -1), weights)
    return pop, next_node, next_innov + n_link
