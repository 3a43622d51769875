"""NEAT species: compatibility clustering, fitness sharing, stagnation and offspring allocation.

Species live in fixed slots (``NEATConfig.max_species``) so that a whole
generation stays one jitted computation: each slot holds a representative
genome, whether it is alive, its best fitness so far and when it last improved.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from flax import struct

from ferlab.search.neat_config import NEATConfig
from ferlab.search.neat_genome import Genomes, take
from ferlab.search.neat_variation import distance_matrix, sorted_genes


@struct.dataclass
class Species:
    """Species slots: representative genome, alive flag, best fitness so far and
    the generation it last improved."""

    rep: Genomes
    active: jax.Array
    best: jax.Array
    improved: jax.Array


def put(tree, index, value):
    """``tree`` with entry ``index`` of its leading axis replaced by ``value``."""
    return jax.tree.map(lambda a, v: a.at[index].set(v), tree, value)


def speciate(pop: Genomes, species: Species, threshold, cfg: NEATConfig):
    """``(species index per genome (P,), Species with founders added, founded (S,))``.

    A genome joins the nearest live species within ``threshold``; the first
    unassigned genome founds a species in a free slot and takes every
    unassigned genome within ``threshold`` of it, until all are placed or the
    slots run out (the rest join their nearest species).
    """
    dist = partial(distance_matrix, c1=cfg.compat_excess, c2=cfg.compat_disjoint, c3=cfg.compat_weight)
    genes = jax.vmap(sorted_genes)(pop)
    to_reps = lambda reps: dist(genes, jax.vmap(sorted_genes)(reps))
    d = jnp.where(species.active[None], to_reps(species.rep), jnp.inf)
    member = jnp.where(jnp.min(d, 1) < threshold, jnp.argmin(d, 1), -1)
    active = species.active & jnp.zeros_like(species.active).at[member].max(member >= 0, mode="drop")
    founded = jnp.zeros_like(active)

    def more(carry):
        member, active, _, _ = carry
        return jnp.any(member < 0) & jnp.any(~active)

    def found(carry):
        member, active, founded, reps = carry
        i, s = jnp.argmax(member < 0), jnp.argmax(~active)
        near = (member < 0) & (dist(genes, take(genes, jnp.array([i])))[:, 0] < threshold)
        member = jnp.where(near.at[i].set(True), s, member)
        return member, active.at[s].set(True), founded.at[s].set(True), put(reps, s, take(pop, i))

    member, active, founded, reps = jax.lax.while_loop(more, found, (member, active, founded, species.rep))
    member = jax.lax.cond(
        jnp.any(member < 0),
        lambda: jnp.where(member < 0, jnp.argmin(jnp.where(active[None], to_reps(reps), jnp.inf), 1), member),
        lambda: member,
    )
    return member, species.replace(rep=reps, active=active), founded


def allocate(fitness, member, species: Species, founded, generation, cfg: NEATConfig):
    """Offspring per species and the updated species records (best, improved, reps).

    Fitness is normalised to [0, 1] and shared (divided by species size); each
    surviving species gets ``min_species_size`` plus a share of the rest in
    proportion to its summed shared fitness (largest remainders round).
    """
    p, s = fitness.shape[0], species.active.shape[0]
    size = jax.ops.segment_sum(jnp.ones(p, jnp.int32), member, s)
    norm = (fitness - jnp.min(fitness)) / jnp.maximum(jnp.max(fitness) - jnp.min(fitness), 1e-12)
    share = jax.ops.segment_sum(norm / size[member], member, s)
    best_now = jax.ops.segment_max(fitness, member, s)
    active = species.active & (size > 0)
    old_best = jnp.where(founded, -jnp.inf, species.best)
    better = best_now > old_best
    improved = jnp.where(better | founded, generation, species.improved)
    best = jnp.where(active, jnp.maximum(best_now, old_best), -jnp.inf)
    place = jnp.argsort(jnp.argsort(-jnp.where(active, best, -jnp.inf)))
    protected = active & (place < cfg.species_elitism)
    alive = active & ((generation - improved < cfg.stagnation) | protected)
    alive = jnp.where(jnp.any(alive), alive, active & (place == 0))
    base = jnp.where(alive, cfg.min_species_size, 0)
    rest = p - jnp.sum(base)
    weight = jnp.where(alive, share + 1e-6, 0.0)
    raw = rest * weight / jnp.sum(weight)
    whole = jnp.floor(raw).astype(jnp.int32)
    left = rest - jnp.sum(whole)
    extra = jnp.zeros(s, jnp.int32).at[jnp.argsort(-(raw - whole))].set((jnp.arange(s) < left).astype(jnp.int32))
    counts = base + whole + extra
    best_member = jnp.argmax((member[None] == jnp.arange(s)[:, None]) & (fitness[None] >= best_now[:, None]), axis=1)
    return counts, size, Species(rep=species.rep, active=active, best=best, improved=improved), best_member


def parents(key, fitness, member, size, counts, cfg: NEATConfig):
    """``(elite, fitter, other, cross)`` per offspring slot.

    Offspring slots are laid out species by species; the first ``elitism``
    of a species copy its best genomes, the others draw two parents from the
    best ``survival_threshold`` share of the species.
    """
    p, s = fitness.shape[0], size.shape[0]
    ends = jnp.cumsum(counts)
    sp = jnp.clip(jnp.searchsorted(ends, jnp.arange(p), side="right"), 0, s - 1)
    rank = jnp.arange(p) - (ends - counts)[sp]
    ranked = jnp.lexsort((-fitness, member))
    first = (jnp.cumsum(size) - size)[sp]
    elite = rank < jnp.minimum(cfg.elitism, size[sp])
    n_surv = jnp.maximum(jnp.ceil(cfg.survival_threshold * size[sp]).astype(jnp.int32), jnp.minimum(2, size[sp]))
    k1, k2, k3 = jax.random.split(key, 3)
    i1 = ranked[first + jax.random.randint(k1, (p,), 0, n_surv)]
    i2 = ranked[first + jax.random.randint(k2, (p,), 0, n_surv)]
    fitter = jnp.where(elite, ranked[first + rank], jnp.where(fitness[i1] >= fitness[i2], i1, i2))
    other = jnp.where(fitness[i1] >= fitness[i2], i2, i1)
    cross = ~elite & jax.random.bernoulli(k3, cfg.crossover_rate, (p,))
    return elite, fitter, other, cross
