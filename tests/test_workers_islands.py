"""Island model: ES migration rules, the shared novelty archive, and a small run on local Ray."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import ray

from ferlab.cppn import init_net
from ferlab.files import write_png
from ferlab.render import render
from ferlab.workers.islands import NoveltyArchive, es_emigrant, es_immigrate, island_search, run_islands
from test_workers import ARCH


@pytest.fixture(scope="module")
def es_config(tmp_path_factory):
    folder = tmp_path_factory.mktemp("islands")
    target = write_png(folder / "target.png", render(init_net(ARCH, jax.random.PRNGKey(4)), 12).rgb)

    def config(algorithm="Open_ES", population=8):
        return {"regime": "es", "generations": 4, "resolution": 12, "target": str(target), "arch": str(ARCH),
                "settings": {"algorithm": algorithm, "population_size": population}}
    return config


@pytest.mark.parametrize("algorithm", ["Open_ES", "SimpleGA"])
def test_es_islands_take_better_migrants_only(es_config, algorithm):
    search = island_search(es_config(algorithm))
    state, _ = search.step(search.init(jax.random.PRNGKey(0)))
    weights, fitness = es_emigrant(state)
    assert weights.shape == (ARCH.n_weights,)
    worse = es_immigrate(state, weights + 1.0, fitness + 1.0)
    np.testing.assert_array_equal(np.asarray(worse.algo.best_solution), np.asarray(weights))
    migrant = jnp.full_like(weights, 0.5)
    better = es_immigrate(state, migrant, fitness - 1.0)
    np.testing.assert_array_equal(np.asarray(better.algo.best_solution), np.asarray(migrant))
    assert float(better.algo.best_fitness) == pytest.approx(float(fitness) - 1.0)
    if algorithm == "Open_ES":
        np.testing.assert_array_equal(np.asarray(better.algo.mean), np.asarray(migrant))
        np.testing.assert_array_equal(np.asarray(worse.algo.mean), np.asarray(state.algo.mean))
    else:
        rows = np.asarray(better.algo.population)
        assert any(np.array_equal(r, np.asarray(migrant)) for r in rows)
        assert not any(np.array_equal(r, np.asarray(migrant)) for r in np.asarray(state.algo.population))


def test_novelty_archive_merges_without_duplicates_up_to_capacity():
    archive = NoveltyArchive(capacity=4)
    a = np.arange(6, dtype=np.float32).reshape(3, 2)
    assert archive.merge(a).tolist() == a.tolist()
    out = archive.merge(np.concatenate([a[:1], [[9.0, 9.0]], [[7.0, 7.0]]]))
    assert out.tolist() == [[2.0, 3.0], [4.0, 5.0], [9.0, 9.0], [7.0, 7.0]]


@pytest.mark.slow
def test_two_islands_on_ray_migrate_and_count_evaluations(es_config):
    ray.init(num_cpus=2, object_store_memory=100 * 1024**2, include_dashboard=False, logging_level="ERROR")
    try:
        out = run_islands(functools.partial(island_search, es_config()), jax.random.PRNGKey(1), islands=2,
                          generations=4, population=8, migrate_every=2)
    finally:
        ray.shutdown()
    assert out.evaluations == 2 * 4 * 8 and out.migrations == 1
    assert [len(g) for g in out.history] == [2, 2, 2, 2]
    assert {s["island"] for s in out.history[0]} == {0, 1}
    first, second = out.history[1], out.history[2]
    # after migration each island's best so far is at least as good as its neighbour's was
    for i in (0, 1):
        assert second[i]["best_so_far"] <= first[1 - i]["best_so_far"] + 1e-7
    assert len(out.results) == 2 and all("best" in r.nets for r in out.results)
