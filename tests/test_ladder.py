"""The loss ladder and each net's own fit: snapshots at rungs, their losses, resumption."""

import csv

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ferlab.config import ConfigError
from ferlab.render import render
from ferlab.search import ladder as ladders
from ferlab.search.runs import load_run_config, run
from ferlab.search.targets import load_target, mse

ARCH = "2;sin:3,gaussian:3"
RUNGS = [0.3, 0.2, 0.15, 0.12, 0.1, 0.09, 0.08, 0.07, 0.06, 0.05, 1e-6]


def test_update_takes_each_rung_once_jitted():
    ladder = ladders.init([0.5, 0.2, 0.1], jnp.zeros(2))
    step = jax.jit(ladders.update)
    ladder = step(ladder, 0.3, jnp.array([1.0, 1.0]), 0, 10)
    ladder = step(ladder, 0.15, jnp.array([2.0, 2.0]), 1, 20)
    ladder = step(ladder, 0.05, jnp.array([3.0, 3.0]), 2, 30)  # reaches 0.1 only: 0.5 and 0.2 are taken
    ladder = step(ladder, 0.01, jnp.array([4.0, 4.0]), 3, 40)  # nothing left
    np.testing.assert_array_equal(ladder.reached, [True, True, True])
    np.testing.assert_allclose(ladder.loss, [0.3, 0.15, 0.05])
    np.testing.assert_array_equal(ladder.payload[:, 0], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(ladder.generation, [0, 1, 2])
    np.testing.assert_array_equal(ladder.evaluations, [10, 20, 30])
    ladder = step(ladders.init([0.5, 0.2], jnp.zeros(1)), jnp.nan, jnp.ones(1), 0, 1)
    assert not ladder.reached.any()


def test_rung_names_and_validation():
    assert ladders.rung_name(0.01) == "rung_0.010" and ladders.rung_name(0.0005) == "rung_0.0005"
    assert ladders.rung_of("rung_0.010") == 0.01 and np.isnan(ladders.rung_of("best"))
    for bad in ([0.1, 0.2], [0.1, -0.01], [0.1, float("nan")], [0.1, 0.1]):
        with pytest.raises(ValueError):
            ladders.check_rungs(bad)
        with pytest.raises(ConfigError):
            load_run_config(
                {
                    "regime": "sgd",
                    "target": "picbreeder:skull",
                    "arch": ARCH,
                    "ladder": bad,
                    "settings": {"steps": 10, "steps_per_generation": 10},
                }
            )
    assert (
        ladders.wall_times([1, -1], [{"generation": 0, "wall_time": 1.0}, {"generation": 1, "wall_time": 2.5}])[0]
        == 3.5
    )


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def check_snapshots(result, table, rerender):
    """Reached rungs: non-increasing losses, each at or below its rung, equal to the net's own loss."""
    reached = [r for r in table if r["reached"] == "True"]
    assert reached, "no rung reached: the test's rungs are too low"
    losses = [float(r["loss"]) for r in reached]
    assert losses == sorted(losses, reverse=True)
    for row in reached:
        name = row["net"]
        assert float(row["loss"]) <= float(row["rung"])
        assert result.losses[name] == pytest.approx(float(row["loss"]), abs=1e-5)
        assert rerender(name) == pytest.approx(float(row["loss"]), abs=1e-5)
        assert float(row["wall_time"]) > 0 and float(row["evaluations"]) > 0
    unreached = [r["net"] for r in table if r["reached"] != "True"]
    assert not set(unreached) & set(result.nets)


def test_sgd_rungs_and_each_seed_its_own_loss(picbreeder_dir, tmp_path):
    config = load_run_config(
        {
            "regime": "sgd",
            "target": "picbreeder:skull",
            "resolution": 12,
            "arch": ARCH,
            "ladder": RUNGS,
            "settings": {"steps": 200, "steps_per_generation": 20, "seeds": 3},
        }
    )
    result, _ = run(config, tmp_path, progress=False)
    target = load_target("picbreeder:skull", 12)

    def rerender(name):
        return float(mse(render(result.nets[name], 12).rgb, target))

    check_snapshots(result, read_csv(tmp_path / "ladder.csv"), rerender)
    seeds = [f"seed_{i}" for i in range(3)]
    own = [result.losses[s] for s in seeds]
    assert len(set(own)) == 3  # not the seeds' mean
    for name in seeds:
        assert result.losses[name] == pytest.approx(rerender(name), abs=1e-6)
    fit = {r["net"]: float(r["loss"]) for r in read_csv(tmp_path / "fit.csv")}
    assert fit.keys() == result.nets.keys()


def test_es_masked_rungs(picbreeder_dir, tmp_path):
    from ferlab.cppn import init_net
    from ferlab.files import write_net

    mask_net = jax.tree.map(lambda k: k.at[0].set(0.0), init_net(ARCH, jax.random.PRNGKey(5)))  # first rows off
    mask_path = tmp_path / "mask.npz"
    write_net(mask_path, mask_net)
    config = load_run_config(
        {
            "regime": "es",
            "target": "picbreeder:skull",
            "resolution": 10,
            "arch": ARCH,
            "generations": 15,
            "ladder": RUNGS,
            "settings": {"population_size": 16, "std": 0.1, "learning_rate": 0.05, "mask_from": str(mask_path)},
        }
    )
    result, _ = run(config, tmp_path / "run", progress=False)
    target = load_target("picbreeder:skull", 10)
    check_snapshots(
        result, read_csv(tmp_path / "run" / "ladder.csv"), lambda n: float(mse(render(result.nets[n], 10).rgb, target))
    )
    zero = np.asarray(mask_net.flat()) == 0
    assert zero.any()
    for net in result.nets.values():
        assert np.all(np.asarray(net.flat())[zero] == 0)


@pytest.mark.slow  # 12 s; the sgd and es rung tests stay in the default run
def test_neat_rungs_and_resumed_run_keeps_them(picbreeder_dir, tmp_path):
    config = load_run_config(
        {
            "regime": "neat",
            "target": "picbreeder:skull",
            "resolution": 8,
            "generations": 6,
            "checkpoint_every": 1,
            "ladder": RUNGS,
            "settings": {
                "population_size": 16,
                "max_nodes": 12,
                "max_links": 24,
                "max_species": 4,
                "target_species": 2,
            },
        }
    )
    whole, _ = run(config, tmp_path / "whole", progress=False)
    target = load_target("picbreeder:skull", 8)
    table = read_csv(tmp_path / "whole" / "ladder.csv")
    # the snapshot's layerized dense net, rendered, paints its logged loss
    check_snapshots(whole, table, lambda n: float(mse(render(whole.nets[n], 8).rgb, target)))
    assert all(r["net"] in whole.genomes for r in table if r["reached"] == "True")

    run(config, tmp_path / "part", progress=False, stop_after=3)
    before = {r["net"]: r for r in read_csv(tmp_path / "part" / "ladder.csv") if r["reached"] == "True"}
    run(config, tmp_path / "part", progress=False)
    after = {r["net"]: r for r in read_csv(tmp_path / "part" / "ladder.csv") if r["reached"] == "True"}
    straight = {r["net"]: r for r in table if r["reached"] == "True"}
    assert before and before.keys() <= after.keys() == straight.keys()
    for name, row in after.items():
        assert (row["generation"], row["loss"]) == (straight[name]["generation"], straight[name]["loss"])
        if name in before:
            assert (row["generation"], row["loss"]) == (before[name]["generation"], before[name]["loss"])


def test_rungs_held_as_float32_keep_their_names():
    ladder = ladders.init(ladders.DEFAULT_RUNGS, jnp.zeros(1))
    assert [name for name, _ in ladders.reached(ladder.replace(reached=jnp.ones(8, bool)))] == [
        "rung_0.080",
        "rung_0.050",
        "rung_0.030",
        "rung_0.020",
        "rung_0.010",
        "rung_0.005",
        "rung_0.002",
        "rung_0.001",
    ]
    assert list(ladders.table(ladder)["rung"]) == list(ladders.DEFAULT_RUNGS)
