"""MAP-Elites: the grid archive keeps the best per cell, and runs (dense and NEAT) resume exactly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ferlab.config import ConfigError
from ferlab.search.archive import ELITE_PREFIX, grid_cells, grid_init, grid_insert
from ferlab.search.runs import load_run_config, make_search, run


def test_grid_cells_bin_each_entry_row_major_and_clip():
    d = jnp.array([[0.0, 0.0], [0.99, 0.0], [0.0, 0.5], [2.0, -1.0], [jnp.nan, 0.99]])
    np.testing.assert_array_equal(np.asarray(grid_cells(d, 4, 0.0, 1.0)), [0, 12, 2, 12, 3])


def test_an_elite_is_never_replaced_by_a_worse_one():
    rng = np.random.default_rng(0)
    insert = jax.jit(grid_insert)
    archive = grid_init(5, 1, jnp.zeros(2))
    best = np.full(5, -np.inf)
    for _ in range(30):
        cells = rng.integers(0, 5, 7)
        fit = rng.normal(size=7).astype(np.float32)
        payload = np.stack([fit, cells.astype(np.float32)], 1)
        before = np.asarray(archive.fitness).copy()
        archive, became = insert(archive, jnp.asarray(cells), jnp.zeros((7, 1)), jnp.asarray(fit), jnp.asarray(payload))
        after = np.asarray(archive.fitness)
        for c in range(5):
            here = fit[cells == c]
            best[c] = max(best[c], here.max()) if here.size else best[c]
        np.testing.assert_array_equal(after, best.astype(np.float32))  # the best ever seen per cell
        assert np.all(after >= before)
        changed = after != before
        assert np.all(after[changed] > before[changed])
        stored = np.asarray(archive.payload)
        filled = np.asarray(archive.filled)
        np.testing.assert_array_equal(stored[filled, 0], after[filled])  # payload travels with its fitness
        np.testing.assert_array_equal(stored[filled, 1], np.flatnonzero(filled))
        assert int(np.sum(became)) == int(np.sum(changed | (filled & ~np.isfinite(before) & np.isfinite(after))))
    # equal fitness does not displace the elite
    archive2, became = grid_insert(archive, jnp.arange(5), jnp.zeros((5, 1)), archive.fitness, -jnp.ones((5, 2)))
    assert not np.any(np.asarray(became))
    np.testing.assert_array_equal(np.asarray(archive2.payload), np.asarray(archive.payload))


def _config(genome="dense", **extra):
    settings = {"batch_size": 8, "bins": 3, "descriptor_size": 4, "genome": genome, **extra}
    if genome == "neat":
        settings["neat"] = {
            "max_nodes": 10,
            "max_links": 20,
            "add_node_rate": 0.5,
            "add_link_rate": 0.5,
            "population_size": 8,
            "max_species": 4,
            "target_species": 2,
        }
    return load_run_config(
        {
            "regime": "map_elites",
            "resolution": 8,
            "arch": "2;sin:3,gaussian:3",
            "generations": 4,
            "checkpoint_every": 1,
            "settings": settings,
        }
    )


def test_quality_per_cell_only_rises_over_a_run_and_elites_are_exported():
    config = _config(export=5)
    search = make_search(config)
    state = search.init(jax.random.PRNGKey(1))
    for _ in range(4):
        new, stats = search.step(state)
        old_f, new_f = np.asarray(state.archive.fitness), np.asarray(new.archive.fitness)
        assert np.all(new_f >= old_f)
        assert np.all(np.asarray(new.archive.filled) >= np.asarray(state.archive.filled))
        assert int(stats["archive_size"]) == int(np.sum(new.archive.filled)) > 0
        state = new
    result = search.result(state)
    elites = [k for k in result.nets if k.startswith(ELITE_PREFIX)]
    assert "best" in result.nets and 1 <= len(elites) <= 5
    assert result.images["best"].shape == (8, 8, 3)


@pytest.mark.slow
def test_neat_map_elites_resumes_to_the_uninterrupted_result(tmp_path):
    config = _config("neat")
    whole, history = run(config, tmp_path / "whole", progress=False)
    run(config, tmp_path / "part", progress=False, stop_after=2)
    resumed, resumed_history = run(config, tmp_path / "part", progress=False)
    assert whole.genomes.keys() == resumed.genomes.keys() and any(k.startswith(ELITE_PREFIX) for k in whole.genomes)
    for key in whole.genomes:
        assert whole.genomes[key].to_json() == resumed.genomes[key].to_json()
        np.testing.assert_array_equal(whole.images[key], resumed.images[key])
    strip = [{k: v for k, v in h.items() if k != "wall_time"} for h in history]
    assert strip == [{k: v for k, v in h.items() if k != "wall_time"} for h in resumed_history]
    assert history[-1]["mean_nodes"] > 7  # NEAT's add-node mutation grew the elites past the minimal 7


def test_target_quality_needs_a_target_and_reports_the_loss(picbreeder_dir):
    with pytest.raises(ConfigError, match="needs a target"):
        _config(quality="target")
    config = load_run_config(
        {
            "regime": "map_elites",
            "resolution": 8,
            "arch": "2;sin:3,gaussian:3",
            "target": "picbreeder:skull",
            "generations": 2,
            "settings": {"batch_size": 8, "bins": 3, "descriptor_size": 4, "quality": "target"},
        }
    )
    search = make_search(config)
    state, stats = search.step(search.init(jax.random.PRNGKey(0)))
    assert 0 <= float(stats["loss"]) == pytest.approx(-float(stats["best_fitness"]))
    result = search.result(state)  # every exported elite carries its own fit, the best the run's
    assert set(result.losses) == set(result.nets) and len(result.nets) > 1
    assert result.losses["best"] == pytest.approx(float(stats["loss"]), rel=1e-5)
    assert min(result.losses.values()) == pytest.approx(result.losses["best"], rel=1e-5)


def test_an_immigrant_takes_its_cell_when_better():
    search = make_search(_config())
    state = search.init(jax.random.PRNGKey(2))
    payload, fitness = search.emigrant(state)
    assert float(fitness) == pytest.approx(
        -float(jnp.max(jnp.where(state.archive.filled, state.archive.fitness, -jnp.inf)))
    )
    other = search.init(jax.random.PRNGKey(3))
    merged = search.immigrate(other, payload, fitness)
    assert np.any(np.all(np.asarray(merged.archive.payload) == np.asarray(payload), axis=1))
    assert np.all(np.asarray(merged.archive.fitness) >= np.asarray(other.archive.fitness))
