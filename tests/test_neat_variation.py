"""NEAT variation on tensor genomes: crossover and distance by innovation number,
the generation-wide innovation table, and mutations that never make a cycle."""

from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferlab.genome import Link
from ferlab.search.neat import NEATConfig
from ferlab.search.neat_genome import Genomes, minimal, take, to_genome
from ferlab.search.neat_variation import crossover, distance, distance_matrix, mutate, number, sorted_genes

N_NODES, N_LINKS = 12, 16
jit_mutate = jax.jit(mutate, static_argnames=("cfg",))  # compiled once: far quicker than op by op


def genome(links, acts=None) -> Genomes:
    """A tensor genome (ink output at slot 4, hidden nodes keyed 100 + slot) from
    ``(innovation, source slot, target slot, weight)`` rows."""
    n_used = 1 + max(max(s, d) for _, s, d, _ in links)
    keys = [k if k < 5 else 100 + k for k in range(n_used)] + [-1] * (N_NODES - n_used)
    pad = N_LINKS - len(links)
    innov, src, dst, w = (list(c) for c in zip(*links))
    return Genomes(
        node_key=jnp.asarray(keys, jnp.int32),
        node_act=jnp.asarray(acts or [0] * N_NODES, jnp.int32),
        link_innov=jnp.asarray(innov + [-1] * pad, jnp.int32),
        link_src=jnp.asarray(src + [0] * pad, jnp.int32),
        link_dst=jnp.asarray(dst + [0] * pad, jnp.int32),
        link_w=jnp.asarray(w + [0.0] * pad, jnp.float32),
        link_on=jnp.asarray([True] * len(links) + [False] * pad),
    )


# Fitter parent A: innovations 0 1 2 4 6; other parent B: 0 1 3 5 7 8.
# Matching 0 1; disjoint A: 2 4 6, B: 3 5; excess (beyond A's highest, 6): B's 7 8.
A = genome([(0, 0, 4, 1.0), (1, 1, 4, 2.0), (2, 2, 5, 3.0), (4, 5, 4, 4.0), (6, 3, 5, 5.0)])
B = genome([(0, 0, 4, -1.0), (1, 1, 4, -2.0), (3, 0, 6, -3.0), (5, 6, 4, -4.0), (7, 2, 4, -5.0), (8, 3, 4, -6.0)])


def test_crossover_keeps_the_fitter_parents_genes_and_mixes_matching_ones():
    children = jax.vmap(crossover, (None, None, 0))(A, B, jax.random.split(jax.random.PRNGKey(0), 64))
    innov = np.asarray(children.link_innov)
    assert (innov == np.asarray(A.link_innov)).all()  # disjoint and excess genes: the fitter parent's
    w = np.asarray(children.link_w)
    for k, (mine, theirs) in enumerate([(1.0, -1.0), (2.0, -2.0)]):  # matching genes 0 and 1
        assert set(np.unique(w[:, k])) == {mine, theirs}
    np.testing.assert_array_equal(w[:, 2:5], np.broadcast_to([3.0, 4.0, 5.0], (64, 3)))
    assert not np.isin(innov, [3, 5, 7, 8]).any()  # none of B's disjoint or excess genes


def test_crossover_takes_matching_node_activations_from_either_parent():
    a = A.replace(node_act=A.node_act.at[4].set(1))
    b = B.replace(node_act=B.node_act.at[4].set(2).at[6].set(3))
    children = jax.vmap(crossover, (None, None, 0))(a, b, jax.random.split(jax.random.PRNGKey(1), 64))
    acts = np.asarray(children.node_act)
    assert set(acts[:, 4]) == {1, 2}  # the output node matches
    assert set(acts[:, 5]) == {0}  # slot 5 is node 105 in A, absent from B


def test_distance_counts_excess_disjoint_and_weight_difference():
    n = 6  # genes in the larger genome
    assert float(distance(A, B, 1.0, 0.0, 0.0)) == pytest.approx(2 / n)
    assert float(distance(A, B, 0.0, 1.0, 0.0)) == pytest.approx(5 / n)
    assert float(distance(A, B, 0.0, 0.0, 1.0)) == pytest.approx((2.0 + 4.0) / 2)
    assert float(distance(A, A, 1.0, 1.0, 1.0)) == 0.0
    assert float(distance(A, B, 1.0, 1.0, 0.4)) == pytest.approx(float(distance(B, A, 1.0, 1.0, 0.4)))


def test_distance_matrix_of_populations_matches_the_pairwise_distance():
    stack = lambda *gs: jax.vmap(sorted_genes)(jax.tree.map(lambda *a: jnp.stack(a), *gs))
    d = np.asarray(
        jax.jit(distance_matrix, static_argnums=(2, 3, 4))(stack(A, B), stack(B, A, B), 1.0, 1.0, 0.5)
    )  # B twice: shared genes
    ab = (2 + 5) / 6 + 0.5 * (2.0 + 4.0) / 2
    np.testing.assert_allclose(d, [[ab, 0.0, ab], [0.0, ab, 0.0]], rtol=1e-6)
    assert float(distance(A, B, 1.0, 1.0, 0.5)) == pytest.approx(ab)


def test_innovation_table_numbers_equal_mutations_alike():
    keys = jnp.asarray([[7, 2], [3, 4], [7, 2], [0, 0], [3, 4], [7, 3]])
    valid = jnp.asarray([True, True, True, False, True, True])
    rank, count = number(keys, valid)
    assert int(count) == 3
    assert list(np.asarray(rank)) == [1, 0, 1, -1, 0, 2]


def test_same_split_in_one_generation_gets_the_same_node_and_innovations():
    one = minimal(N_NODES, N_LINKS, True, jax.random.PRNGKey(0))
    one = one.replace(link_on=one.link_on & (jnp.arange(N_LINKS) == 2))  # one enabled link to split
    pop = jax.tree.map(lambda a: jnp.stack([a] * 6), one)
    cfg = NEATConfig(add_node_rate=1.0, add_link_rate=0.0, toggle_link_rate=0.0)
    out, next_node, next_innov = jit_mutate(
        pop, jax.random.PRNGKey(3), jnp.ones(6, bool).at[5].set(False), jnp.int32(5), jnp.int32(4), cfg=cfg
    )
    assert (int(next_node), int(next_innov)) == (6, 6)
    for k in range(5):
        g = to_genome(take(out, k), ink=True)
        new = [link for link in g.links if link.innovation >= 4]
        assert [(l.innovation, l.source, l.target) for l in new] == [(4, "2", "5"), (5, "5", "4")]
    assert int(out.n_nodes()[5]) == 5  # the elite was not mutated


CYCLE_CFG = NEATConfig(add_node_rate=0.5, add_link_rate=0.9, toggle_link_rate=0.3, activation_mutate_rate=0.2)
_mutate = jax.jit(lambda pop, key, nn, ni: mutate(pop, key, jnp.ones(pop.link_innov.shape[0], bool), nn, ni, CYCLE_CFG))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1))
def test_mutations_never_make_a_cycle(seed):
    key = jax.random.PRNGKey(seed)
    pop = jax.vmap(lambda k: minimal(N_NODES, N_LINKS, True, k))(jax.random.split(key, 16))
    nn, ni = jnp.int32(5), jnp.int32(4)
    for k in jax.random.split(key, 25):
        pop, nn, ni = _mutate(pop, k, nn, ni)
    arrays = jax.tree.map(np.asarray, pop)  # links are never removed: a cycle or a repeat, once made, stays
    for g in (to_genome(take(arrays, i), ink=True) for i in range(16)):
        assert replace(g, links=tuple(replace(l, enabled=True) for l in g.links)).recurrent_links() == ()
        innov = [l.innovation for l in g.links]
        assert len(innov) == len(set(innov))
    assert int(pop.n_links().max()) > 4  # the mutations did grow the genomes
    assert int(pop.n_nodes().max()) > 5


def test_full_genome_skips_structural_mutations():
    pop = jax.vmap(lambda k: minimal(5, 4, True, k))(jax.random.split(jax.random.PRNGKey(0), 4))
    out, nn, ni = jit_mutate(
        pop,
        jax.random.PRNGKey(1),
        jnp.ones(4, bool),
        jnp.int32(5),
        jnp.int32(4),
        cfg=NEATConfig(add_node_rate=1.0, add_link_rate=1.0),
    )
    assert (int(nn), int(ni)) == (5, 4)
    assert (np.asarray(out.link_innov) == np.asarray(pop.link_innov)).all()


def test_to_genome_link_weights_round_trip():
    g = to_genome(
        take(jax.vmap(lambda k: minimal(N_NODES, N_LINKS, False, k))(jax.random.split(jax.random.PRNGKey(0), 2)), 1),
        ink=False,
    )
    assert [l.innovation for l in g.links] == list(range(12))
    assert all(isinstance(l, Link) and l.enabled for l in g.links)
    assert {n.label for n in g.nodes if n.kind == "output"} == {"hue", "saturation", "brightness"}
