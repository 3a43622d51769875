"""Island model: ES and NEAT migration rules, the shared novelty archive, and small runs on local Ray."""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import ray
import yaml
from PIL import Image

from ferlab.cli import main
from ferlab.config import ConfigError
from ferlab.cppn import init_net, load_net
from ferlab.files import write_png
from ferlab.render import render
from ferlab.search.neat import NEAT, NEATConfig, evaluate
from ferlab.search.neat_genome import N_INPUTS
from ferlab.search.archive import archive_add, archive_entries, archive_init, novelty_scores, with_entries
from ferlab.search.archive import ARCHIVE_PREFIX
from ferlab.search.runs import IslandsConfig, config_yaml, island_config, load_run_config, shared_archive
from ferlab.search.targets import mse
from ferlab.workers.plan import check_run
from ferlab.workers.islands import NoveltyArchive, island_search, run_islands
from helpers import ARCH


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray (two CPUs, small object store) for this module's island runs."""
    ray.init(num_cpus=2, object_store_memory=100 * 1024**2, include_dashboard=False, logging_level="ERROR")
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def es_config(tmp_path_factory):
    folder = tmp_path_factory.mktemp("islands")
    target = write_png(folder / "target.png", render(init_net(ARCH, jax.random.PRNGKey(4)), 12).rgb)

    def config(algorithm="Open_ES", population=8):
        return {
            "regime": "es",
            "generations": 4,
            "resolution": 12,
            "target": str(target),
            "arch": str(ARCH),
            "settings": {"algorithm": algorithm, "population_size": population},
        }

    return config


@pytest.mark.parametrize("algorithm", ["Open_ES", "SimpleGA", "PSO"])
def test_es_islands_take_better_migrants_only(es_config, algorithm):
    search = island_search(es_config(algorithm))
    state, _ = search.step(search.init(jax.random.PRNGKey(0)))
    weights, fitness = search.emigrant(state)
    assert weights.shape == (ARCH.n_weights,)
    worse = search.immigrate(state, weights + 1.0, fitness + 1.0)
    np.testing.assert_array_equal(np.asarray(worse.algo.best_solution), np.asarray(weights))
    migrant = jnp.full_like(weights, 0.5)
    better = search.immigrate(state, migrant, fitness - 1.0)
    np.testing.assert_array_equal(np.asarray(better.algo.best_solution), np.asarray(migrant))
    assert float(better.algo.best_fitness) == pytest.approx(float(fitness) - 1.0)
    if algorithm == "Open_ES":
        np.testing.assert_array_equal(np.asarray(better.algo.mean), np.asarray(migrant))
        np.testing.assert_array_equal(np.asarray(worse.algo.mean), np.asarray(state.algo.mean))
    else:
        rows = np.asarray(better.algo.population)
        assert any(np.array_equal(r, np.asarray(migrant)) for r in rows)
        assert not any(np.array_equal(r, np.asarray(migrant)) for r in np.asarray(state.algo.population))
        # a migrant worse than every member leaves the population as it was
        worst = search.immigrate(state, migrant, jnp.max(state.algo.fitness) + 1.0)
        np.testing.assert_array_equal(np.asarray(worst.algo.population), np.asarray(state.algo.population))
        np.testing.assert_array_equal(np.asarray(worst.algo.fitness), np.asarray(state.algo.fitness))
    if algorithm == "PSO":  # the personal bests, which steer the swarm, take the better migrant in
        bests = np.asarray(better.algo.population_best)
        assert any(np.array_equal(r, np.asarray(migrant)) for r in bests)
        assert float(np.min(better.algo.fitness_best)) == pytest.approx(float(fitness) - 1.0)


def test_novelty_archive_merges_without_duplicates_up_to_capacity():
    archive = NoveltyArchive(capacity=4)
    a = {"descriptors": np.arange(6, dtype=np.float32).reshape(3, 2), "payload": {"w": np.arange(3)}}
    assert archive.merge(a) == 3
    more = {
        "descriptors": np.array([[0.0, 1.0], [9.0, 9.0], [7.0, 7.0]], np.float32),
        "payload": {"w": np.array([0, 10, 11])},
    }
    assert archive.merge(more) == 4
    out = archive.union()
    assert out["descriptors"].tolist() == [[2.0, 3.0], [4.0, 5.0], [9.0, 9.0], [7.0, 7.0]]
    assert out["payload"]["w"].tolist() == [1, 2, 10, 11]  # payload rows travel with their descriptors


def test_archive_entries_round_trip_oldest_first_and_score_alike():
    """A wrapped-around archive exported and loaded into an empty one scores novelty the same."""
    archive = archive_init(4, 3, jnp.zeros(2), 0.1)
    for step in range(3):  # 6 additions into 4 slots: the two oldest are overwritten
        desc = jnp.full((2, 3), float(step)) + jnp.arange(2)[:, None] * 0.5
        archive = archive_add(archive, desc, jnp.stack([desc[:, 0], desc[:, 1]], 1), jnp.ones(2, bool))
    entries = archive_entries(archive)
    assert entries["descriptors"][:, 0].tolist() == [1.0, 1.5, 2.0, 2.5]
    assert entries["payload"][:, 0].tolist() == [1.0, 1.5, 2.0, 2.5]
    loaded = with_entries(archive_init(4, 3, jnp.zeros(2), 0.3), entries)
    assert int(loaded.size) == 4 and float(loaded.threshold) == pytest.approx(0.3)
    probe = jax.random.uniform(jax.random.PRNGKey(0), (5, 3)) * 3
    np.testing.assert_allclose(novelty_scores(probe, loaded, 2), novelty_scores(probe, archive, 2), rtol=1e-6)
    assert archive_entries(loaded)["descriptors"].tolist() == entries["descriptors"].tolist()


SMALL_NEAT = dict(
    population_size=16,
    max_nodes=12,
    max_links=24,
    max_species=4,
    target_species=2,
    add_node_rate=0.5,
    add_link_rate=0.5,
    outputs="ink",
)


def genes(pop) -> set[tuple[int, int, int]]:
    """Every (innovation, source key, target key) in a population."""
    a = jax.tree.map(np.asarray, pop)
    valid = a.link_innov >= 0
    src = np.take_along_axis(a.node_key, a.link_src, 1)
    dst = np.take_along_axis(a.node_key, a.link_dst, 1)
    return set(zip(a.link_innov[valid].tolist(), src[valid].tolist(), dst[valid].tolist()))


@pytest.mark.slow  # 9 s; the novelty and map_elites island tests stay in the default run
def test_neat_islands_number_genes_apart_and_immigrants_replace_the_worst():
    target = jax.random.uniform(jax.random.PRNGKey(3), (8, 8, 3))
    search = NEAT(NEATConfig(**SMALL_NEAT), 8, target)
    islands = [search.join_islands(search.init(jax.random.PRNGKey(i)), i, 2) for i in range(2)]
    for _ in range(4):
        islands = [search.step(s)[0] for s in islands]
    first = 4  # the minimal genome's links (ink: 4 inputs x 1 output) are shared by all
    new = [{g for g in genes(s.pop) if g[0] >= first} for s in islands]
    assert new[0] and new[1]
    assert not {g[0] for g in new[0]} & {g[0] for g in new[1]}  # no number issued on both islands
    keys = [set(np.asarray(s.pop.node_key).ravel().tolist()) - set(range(-1, N_INPUTS + 1)) for s in islands]
    assert keys[0] and keys[1] and not keys[0] & keys[1]

    payload, fitness = search.emigrant(islands[0])
    assert float(fitness) == pytest.approx(-float(islands[0].champion_fitness))
    before = evaluate(islands[1].pop, islands[1].archive, search.target, search.cfg, 8)[0]
    moved = search.immigrate(islands[1], jax.tree.map(np.asarray, payload), fitness)
    worst = int(jnp.argmin(before))
    np.testing.assert_array_equal(np.asarray(moved.pop.link_innov[worst]), np.asarray(payload.link_innov))
    others = np.arange(16) != worst
    np.testing.assert_array_equal(np.asarray(moved.pop.link_w[others]), np.asarray(islands[1].pop.link_w[others]))
    state = moved
    for _ in range(3):
        state = search.step(state)[0]
    mixed = genes(state.pop)
    assert any(first <= g[0] < 2**29 for g in mixed)  # the immigrant's own genes live on in island 1
    by_number = {}
    for innov, src, dst in mixed | genes(islands[0].pop):
        by_number.setdefault(innov, set()).add((src, dst))
    assert all(len(pairs) == 1 for pairs in by_number.values())  # one number, one gene, across islands


def novelty_configs():
    novelty = {"capacity": 40, "descriptor_size": 4, "k": 3, "threshold": 0.01}
    return {
        "novelty": {
            "regime": "novelty",
            "generations": 4,
            "resolution": 8,
            "arch": str(ARCH),
            "settings": {"es": {"algorithm": "SimpleGA", "population_size": 6}, "novelty": novelty},
        },
        "neat": {
            "regime": "neat",
            "generations": 4,
            "resolution": 8,
            "settings": {**SMALL_NEAT, "fitness": "novelty", "archive_export": 40, "novelty": novelty},
        },
    }


@pytest.mark.slow  # 21 s; test_novelty_islands_score_against_one_shared_archive covers the shared archive
def test_shared_archive_merges_in_island_order_so_runs_repeat(local_ray):
    """A small shared capacity trims the union, so the merge order decides what is kept and where:
    the same run twice keeps the same archive."""
    data = novelty_configs()["novelty"]
    runs = [
        run_islands(
            functools.partial(island_search, data),
            jax.random.PRNGKey(3),
            islands=2,
            generations=4,
            population=6,
            migrate_every=1,
            archive_capacity=8,
        )
        for _ in range(2)
    ]
    assert sum(name.startswith("archive_") for name in runs[0].results[0].nets) == 8  # full: trimmed
    for first, again in zip(runs[0].results, runs[1].results):
        assert first.images.keys() == again.images.keys()
        for name in first.images:
            np.testing.assert_array_equal(first.images[name], again.images[name])


@pytest.mark.slow  # 19 s; the default run merges archives in one process and runs ES islands on Ray
@pytest.mark.parametrize("regime", ["novelty", "neat"])
def test_novelty_islands_score_against_one_shared_archive(local_ray, regime):
    data = novelty_configs()[regime]
    population = 6 if regime == "novelty" else 16
    out = run_islands(
        functools.partial(island_search, data),
        jax.random.PRNGKey(2),
        islands=2,
        generations=4,
        population=population,
        migrate_every=2,
        archive_capacity=40,
        archive_prefix=ARCHIVE_PREFIX,
    )
    assert out.archive_prefix == ARCHIVE_PREFIX and out.evaluations == 2 * 4 * population
    if regime == "neat":
        assert out.migrations == 1  # NEAT champions move; weight-space novelty shares its archive only
    sizes = [[s["archive_size"] for s in out.history[g]] for g in (1, 2)]
    # after the exchange each island's archive holds both islands' entries, so novelty is scored against both
    assert all(size >= min(40, sum(sizes[0])) for size in sizes[1]) and sum(sizes[0]) > max(sizes[0])
    archives = [{n: r.images[n] for n in r.nets if n.startswith("archive_")} for r in out.results]
    assert archives[0] and archives[0].keys() == archives[1].keys()  # the final exchange: one union
    for name in archives[0]:
        np.testing.assert_array_equal(archives[0][name], archives[1][name])
    merged = out.merged()
    assert set(archives[0]) <= set(merged.nets)
    assert not any(n.startswith("island1_archive_") for n in merged.nets)
    own = [n for n in out.results[1].nets if not n.startswith("archive_")]
    assert own and all(f"island1_{n}" in merged.nets for n in own)


EXAMPLES = Path(__file__).resolve().parents[1] / "studies" / "examples"


def test_islands_section_splits_the_population_and_bad_sections_fail_at_the_edge(es_config, picbreeder_dir):
    example = load_run_config(EXAMPLES / "islands_neat.yaml")
    assert example.islands == IslandsConfig(count=2, migrate_every=10, cpus=1, gpus=0)
    assert island_config(example).settings.population_size == 80 and island_config(example).islands is None
    novelty = load_run_config({**novelty_configs()["novelty"], "islands": {"count": 3}})
    assert island_config(novelty).settings.es.population_size == 2 and shared_archive(novelty) == 40
    assert shared_archive(load_run_config({**es_config(), "islands": {"count": 2}})) == 0
    bad = [
        ({"count": 3}, "does not split evenly over 3 islands"),
        ({"count": 0}, "count and migrate_every must be at least 1"),
        ({"gpus": 1.5}, "gpus above 1 must be whole"),
        ({"count": 2, "speed": 1}, "unknown key 'speed'"),
    ]
    for section, message in bad:
        with pytest.raises(ConfigError, match=message):
            load_run_config({**es_config(), "islands": section})
    with pytest.raises(ConfigError, match="one island's share of settings.population_size .4.: min_species_size"):
        load_run_config(EXAMPLES / "islands_neat.yaml", ["islands.count=40"])
    with pytest.raises(ConfigError, match="regime 'sgd' has no population to split"):
        load_run_config({"regime": "sgd", "target": es_config()["target"], "islands": {}})
    with pytest.raises(ConfigError, match="not supported in sweep trials"):
        check_run({**es_config(), "islands": {"count": 2}})
    assert "islands" not in yaml.safe_load(config_yaml(load_run_config(es_config())))  # single runs' folders unchanged


def test_ferlab_run_with_islands_writes_the_merged_result(local_ray, es_config, tmp_path, capsys):
    path = tmp_path / "es_islands.yaml"
    path.write_text(yaml.safe_dump({**es_config(population=8), "islands": {"count": 2, "migrate_every": 2}}))
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "(es, 4 generations on 2 islands, 4 nets" in printed
    out = tmp_path / "out"
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted((int(r["generation"]), int(r["island"])) for r in rows) == [(g, i) for g in range(4) for i in (0, 1)]
    # one migration, after generation 1: each island's row names its sender and the migrant's fitness,
    # the sender's best so far (ES fitness is the loss; best_fitness in the history is its negation)
    moved = {int(r["island"]): r for r in rows if r["migrant_from"]}
    assert {(int(r["generation"]), i, int(r["migrant_from"])) for i, r in moved.items()} == {(1, 0, 1), (1, 1, 0)}
    for i, r in moved.items():
        sent = [-float(s["best_fitness"]) for s in rows if int(s["island"]) == 1 - i and int(s["generation"]) <= 1]
        assert float(r["migrant_fitness"]) == pytest.approx(min(sent), rel=1e-6)
    final = {int(r["island"]): float(r["loss"]) for r in rows if r["generation"] == "3"}
    other = max(final, key=final.get)  # the best island's nets keep their names, the other's are prefixed
    assert {p.name for p in (out / "nets").iterdir()} == {
        "best.npz",
        "mean.npz",
        f"island{other}_best.npz",
        f"island{other}_mean.npz",
    }
    target = np.asarray(Image.open(es_config()["target"]), np.float32) / 255
    loss = {
        name: float(mse(render(load_net(out / "nets" / f"{name}.npz"), 12).rgb, target))
        for name in ("best", f"island{other}_best")
    }
    assert loss["best"] == pytest.approx(min(final.values()), rel=1e-3) and loss["best"] <= loss[f"island{other}_best"]
    assert yaml.safe_load((out / "config.yaml").read_text())["islands"]["count"] == 2
    assert main(["run", str(path), "--out", str(tmp_path / "out2"), "--set", "islands=null", "--address", "x"]) == 2
    assert "--address is only for runs with an islands: section" in capsys.readouterr().err
    assert not (tmp_path / "out2").exists()


@pytest.mark.slow  # 20 s; the default run keeps ES islands on Ray and MAP-Elites' immigrant rule in one process
def test_map_elites_islands_on_ray_keep_each_islands_grid(local_ray, tmp_path):
    """``ferlab run`` of MAP-Elites on two islands: every elite of each island's final grid is a net
    of the merged result (the best island's under their names, the other's prefixed)."""
    config = {
        "regime": "map_elites",
        "generations": 4,
        "resolution": 12,
        "arch": "1;sin:2,gaussian:2",
        "settings": {"batch_size": 8, "bins": 3, "descriptor_size": 4},
        "islands": {"count": 2, "migrate_every": 2},
    }
    path = tmp_path / "me.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 0
    with open(tmp_path / "out" / "history.csv") as f:
        final = {int(r["island"]): int(float(r["archive_size"])) for r in csv.DictReader(f) if r["generation"] == "3"}
    names = {p.stem for p in (tmp_path / "out" / "nets").iterdir()}
    (other,) = {int(n[len("island")]) for n in names if n.startswith("island")}
    assert sum(n.startswith(f"island{other}_elite_") for n in names) == final[other]
    assert sum(n.startswith("elite_") for n in names) == final[1 - other]


@pytest.mark.slow
def test_two_islands_on_ray_migrate_and_count_evaluations(local_ray, es_config):
    out = run_islands(
        functools.partial(island_search, es_config()),
        jax.random.PRNGKey(1),
        islands=2,
        generations=4,
        population=8,
        migrate_every=2,
    )
    assert out.evaluations == 2 * 4 * 8 and out.migrations == 1
    assert [len(g) for g in out.history] == [2, 2, 2, 2]
    assert {s["island"] for s in out.history[0]} == {0, 1}
    first, second = out.history[1], out.history[2]
    # after migration each island's best so far is at least as good as its neighbour's was
    for i in (0, 1):
        assert second[i]["loss"] <= first[1 - i]["loss"] + 1e-7
    assert len(out.results) == 2 and all("best" in r.nets for r in out.results)
