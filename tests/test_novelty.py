"""Novelty archive (generic, shared with NEAT) and the novelty regime."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ferlab.cppn import init_nets
from ferlab.search.api import run_search
from ferlab.search.archive import (
    NoveltyConfig,
    archive_init,
    archive_update,
    mean_nearest_distance,
    mean_pairwise_distance,
    novelty_scores,
)
from ferlab.search.descriptors import DESCRIPTORS
from ferlab.search.novelty import describe
from ferlab.search.runs import load_run_config, make_search

SMALL = "3;sin:4,gaussian:4,sigmoid:4,identity:4"
EXAMPLES = Path(__file__).resolve().parents[1] / "studies" / "examples"


def test_novelty_is_mean_distance_to_k_nearest_in_archive_and_population():
    archive = archive_init(4, 1, jnp.zeros(2), threshold=0.5)
    archive = archive.replace(descriptors=jnp.array([[0.0], [10.0], [0.0], [0.0]]), size=jnp.array(2))
    pop = jnp.array([[1.0], [3.0]])
    scores = novelty_scores(pop, archive, k=2)
    # individual 0: neighbours 0 (archive, d=1) and 3 (population, d=2); the invalid zeros are ignored
    np.testing.assert_allclose(scores, [1.5, 2.5], rtol=1e-5)
    np.testing.assert_allclose(novelty_scores(pop, archive, k=2, population=False), [5.0, 5.0], rtol=1e-5)


def test_archive_adds_above_threshold_and_adapts_it():
    cfg = NoveltyConfig(threshold=1.0, threshold_up=2.0, threshold_down=0.5, patience=2, add_many=1, capacity=3)
    archive = archive_init(cfg.capacity, 1, jnp.zeros(()), cfg.threshold)
    desc = jnp.arange(4.0)[:, None]
    archive = archive_update(archive, desc, jnp.arange(4.0), jnp.array([0.5, 2.0, 3.0, 4.0]), cfg)
    assert int(archive.size) == 3 and int(archive.added) == 3
    np.testing.assert_allclose(archive.payload, [1.0, 2.0, 3.0])
    assert float(archive.threshold) == 2.0  # 3 added > add_many: raised
    for _ in range(2):  # nothing novel enough for `patience` generations: lowered
        archive = archive_update(archive, desc, jnp.arange(4.0), jnp.zeros(4), cfg)
    assert float(archive.threshold) == 1.0 and int(archive.stale) == 0
    archive = archive_update(archive, desc + 10, jnp.arange(4.0) + 10, jnp.array([5.0, 0, 0, 0]), cfg)
    np.testing.assert_allclose(archive.payload, [10.0, 2.0, 3.0])  # full: the oldest entry replaced


def test_max_add_keeps_only_the_most_novel():
    cfg = NoveltyConfig(threshold=1.0, add_many=1, threshold_up=2.0, max_add=2, capacity=5)
    archive = archive_init(cfg.capacity, 1, jnp.zeros(()), cfg.threshold)
    archive = archive_update(archive, jnp.arange(4.0)[:, None], jnp.arange(4.0), jnp.array([3.0, 2.0, 5.0, 0.5]), cfg)
    np.testing.assert_allclose(archive.payload[: int(archive.size)], [0.0, 2.0])  # the two most novel
    assert float(archive.threshold) == 2.0  # three were above it: raised although two were added


def test_descriptors_are_pluggable_and_config_rejects_unknown():
    nets = init_nets(SMALL, jax.random.split(jax.random.PRNGKey(0), 3))
    assert describe(nets, NoveltyConfig(descriptor_size=8)).shape == (3, 64)
    assert describe(nets, NoveltyConfig(descriptor="rgb", descriptor_size=4)).shape == (3, 48)
    assert "luminance" in DESCRIPTORS
    with pytest.raises(ValueError, match="unknown descriptor"):
        NoveltyConfig(descriptor="nope")


def diversity_ratios(generations: int, **settings):
    """The archive's spread against 1,024 random nets (its expected value at any set size) and its
    sparseness against as many random nets as it holds (sparseness falls with the set's size)."""
    config = load_run_config(
        {"regime": "novelty", "resolution": 16, "arch": SMALL, "generations": generations, "settings": settings}
    )
    search = make_search(config)
    outcome = run_search(search, jax.random.PRNGKey(0), generations)
    archive = outcome.state.archive
    n = int(archive.size)
    random = describe(init_nets(search.template.arch, jax.random.split(jax.random.PRNGKey(1), 1024)), search.config)
    ratio = mean_pairwise_distance(archive.descriptors[:n]) / mean_pairwise_distance(random)
    sparse = mean_nearest_distance(archive.descriptors[:n]) / mean_nearest_distance(random[:n])
    return outcome, float(ratio), float(sparse)


# studies/examples/novelty.yaml's settings: NS-ES with 5 parents, novelty against archive + population,
# at most one (the most novel) addition per generation.
NS_SETTINGS = {
    "meta_population": 5,
    "es": {"algorithm": "Open_ES", "population_size": 32, "std": 0.3, "learning_rate": 0.1},
    "novelty": {"threshold": 0.2, "max_add": 1},
}


def test_example_config_is_the_tested_one():
    settings = load_run_config(EXAMPLES / "novelty.yaml").settings
    assert settings == load_run_config({"regime": "novelty", "settings": NS_SETTINGS}).settings


def test_novelty_search_grows_an_archive_more_diverse_than_random_nets():
    # 50 generations without a target. Mean pairwise distance: measured 1.42x that of random nets (as
    # spread as the farthest 22 of 2,048 random nets); the goal of 1.5x is not reached, and 48
    # settings of algorithm, std, parents, population and additions stay within 1.31-1.43x
    # (bench/novelty_spread.py --sweep). Nearest-neighbour distance (what novelty rewards): 1.92x.
    outcome, ratio, sparse = diversity_ratios(50, **NS_SETTINGS)
    sizes = [h["archive_size"] for h in outcome.history]
    assert sizes[-1] > sizes[0] + 10
    assert ratio > 1.3
    assert sparse > 1.6


def test_ns_es_meta_population_and_nsr_with_target(picbreeder_dir):
    config = load_run_config(
        {
            "regime": "novelty",
            "resolution": 16,
            "arch": SMALL,
            "generations": 3,
            "target": "picbreeder:skull",
            "settings": {"mode": "nsr", "meta_population": 3, "es": {"population_size": 8}},
        }
    )
    search = make_search(config)
    outcome = run_search(search, jax.random.PRNGKey(0), 3)
    assert {"novelty", "archive_size", "best_fitness", "parent"} <= set(outcome.history[-1])
    assert all(h["loss"] == -h["best_fitness"] > 0 for h in outcome.history)  # the MSE of the best; fitness is -MSE
    result = search.result(outcome.state)
    assert {"parent_0", "parent_1", "parent_2"} <= set(result.nets)
    assert all(img.shape == (16, 16, 3) for img in result.images.values())


def test_sparseness_is_mean_nearest_neighbour_distance():
    points = jnp.array([[0.0], [1.0], [3.0]])
    assert float(mean_nearest_distance(points)) == pytest.approx(4 / 3)
    assert float(mean_pairwise_distance(points)) == pytest.approx(2.0)


@pytest.mark.parametrize("algorithm", ["SimpleGA", "Open_ES"])
def test_evaluations_count_the_starting_populations(algorithm):
    """Every parent of a population-based algorithm scores its P starting nets at init (M * P), then
    one parent's P nets a generation."""
    from ferlab.cppn import Architecture, init_net
    from ferlab.search.es import ESConfig
    from ferlab.search.novelty import NoveltySearch, NoveltySearchConfig

    settings = NoveltySearchConfig(meta_population=3, es=ESConfig(algorithm=algorithm, population_size=8))
    search = NoveltySearch(settings, init_net(Architecture.parse("2;sin:3,gaussian:3"), jax.random.PRNGKey(0)), 8)
    state = search.init(jax.random.PRNGKey(1))
    for _ in range(2):
        state, stats = search.step(state)
    assert int(stats["evaluations"]) == 2 * 8 + (3 * 8 if algorithm == "SimpleGA" else 0)


def test_a_wrapped_archive_exports_oldest_first():
    """Eight nets into five slots: archive_000 is the oldest one kept (the fourth added), whatever slot holds it."""
    from ferlab.cppn import Architecture, init_net
    from ferlab.search.archive import archive_add, archive_init
    from ferlab.search.es import ESConfig
    from ferlab.search.novelty import NoveltySearch, NoveltySearchConfig

    template = init_net(Architecture.parse("2;sin:3,gaussian:3"), jax.random.PRNGKey(0))
    settings = NoveltySearchConfig(
        es=ESConfig(algorithm="SimpleGA", population_size=4), novelty=NoveltyConfig(capacity=5)
    )
    search = NoveltySearch(settings, template, 8)
    n = template.arch.n_weights
    archive = archive_init(5, 2, jnp.zeros(n), 0.1)
    for first in (0, 4):  # nets numbered 0..7, each all its own number
        ids = jnp.arange(first, first + 4, dtype=jnp.float32)
        archive = archive_add(archive, jnp.stack([ids, ids], 1), ids[:, None] * jnp.ones(n), jnp.ones(4, bool))
    result = search.result(search.init(jax.random.PRNGKey(1)).replace(archive=archive))
    kept = [float(result.nets[f"archive_{i:03d}"].flat()[0]) for i in range(5)]
    assert kept == [3.0, 4.0, 5.0, 6.0, 7.0] and "archive_005" not in result.nets


def test_novelty_weight_runs_from_target_matching_to_pure_novelty(picbreeder_dir):
    """nsr's fitness is w * rank(novelty) + (1 - w) * rank(-MSE): w = 0 ranks by the MSE alone, 1 by
    novelty alone, and the default is NSR-ES's even mean (the same bits as before the weight)."""
    from ferlab.cppn import Architecture, init_net, init_nets
    from ferlab.search.es import ESConfig
    from ferlab.search.novelty import NoveltySearch, NoveltySearchConfig, centred_ranks
    from ferlab.search.targets import load_target

    template_key, pop_key = jax.random.split(jax.random.PRNGKey(0))
    arch = Architecture.parse("2;sin:3,gaussian:3")
    population = init_nets(arch, jax.random.split(pop_key, 16)).flat()
    target = load_target("picbreeder:skull", 16)

    def fitness(weight):
        settings = NoveltySearchConfig(mode="nsr", novelty_weight=weight, es=ESConfig(population_size=16))
        search = NoveltySearch(settings, init_net(arch, template_key), 16, target)
        archive = search.init(jax.random.PRNGKey(1)).archive
        return search.fitness(population, archive)

    even, novelty, _, error = fitness(None)
    assert jnp.array_equal(even, -(centred_ranks(novelty) + centred_ranks(-error)) / 2)
    assert jnp.array_equal(fitness(0.5)[0], even)
    assert jnp.array_equal(fitness(0.0)[0], -centred_ranks(-error))  # lowest MSE ranks best (evosax minimises)
    assert jnp.array_equal(fitness(1.0)[0], -centred_ranks(novelty))
    assert jnp.argmin(fitness(0.0)[0]) == jnp.argmin(error) and jnp.argmin(fitness(1.0)[0]) == jnp.argmax(novelty)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"mode": "nsr", "novelty_weight": 1.5}, "novelty_weight must be a number in \\[0, 1\\], got 1.5"),
        ({"mode": "nsr", "novelty_weight": -0.1}, "novelty_weight must be a number in \\[0, 1\\]"),
        ({"mode": "nsr", "novelty_weight": float("nan")}, "novelty_weight must be a number in \\[0, 1\\]"),
        ({"mode": "ns", "novelty_weight": 0.5}, "it needs mode nsr"),
    ],
)
def test_a_novelty_weight_out_of_range_or_without_a_target_mode_is_refused(settings, message):
    from ferlab.search.novelty import NoveltySearchConfig

    with pytest.raises(ValueError, match=message):
        NoveltySearchConfig(**settings)
