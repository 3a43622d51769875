"""ES target matching with evosax algorithms chosen by name."""

import jax
import pytest

from ferlab.config import ConfigError
from ferlab.search.api import run_search
from ferlab.search.es import centre
from ferlab.search.runs import DEFAULT_ARCH, load_run_config, make_search

SMALL = "3;sin:4,gaussian:4,sigmoid:4,identity:4"
# What each algorithm searches in these tests: Open_ES the paper's skull architecture (5,478 weights)
# with ESConfig's defaults; CMA_ES, whose full covariance is heavy on 5k weights, a 120-weight net.
SETUPS = {"Open_ES": (DEFAULT_ARCH, {}), "CMA_ES": ("2;sin:4,gaussian:4", {"population_size": 32, "std": 0.1})}


def es_run(algorithm, generations):
    """``(MSE of the starting mean, MSE of the mean after, best MSE seen, result)`` at 32x32 on the skull."""
    arch, settings = SETUPS[algorithm]
    config = load_run_config(
        {
            "regime": "es",
            "resolution": 32,
            "target": "picbreeder:skull",
            "arch": arch,
            "generations": generations,
            "settings": {"algorithm": algorithm, **settings},
        }
    )
    search = make_search(config)
    outcome = run_search(search, jax.random.PRNGKey(config.seed), generations)
    start = float(search.mse(centre(search.algo, search.init(jax.random.PRNGKey(config.seed)).algo)[None])[0])
    state = outcome.state.algo
    assert [h["loss"] for h in outcome.history][-1] == pytest.approx(float(state.best_fitness))  # the shared fit
    return (
        start,
        float(search.mse(centre(search.algo, state)[None])[0]),
        float(state.best_fitness),
        search.result(outcome.state),
    )


@pytest.mark.parametrize(
    "algorithm, generations", [("Open_ES", 15), pytest.param("CMA_ES", 20, marks=pytest.mark.slow)]
)
def test_es_lowers_mse_short(picbreeder_dir, algorithm, generations):
    start, mean_after, best, result = es_run(algorithm, generations)
    assert mean_after < 0.75 * start  # the distribution moved, not just a lucky sample (seeds 0-2: 0.46-0.62)
    assert best < 0.75 * start
    assert {"best", "mean"} <= set(result.nets) and result.images["best"].shape == (32, 32, 3)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["Open_ES", "CMA_ES"])
def test_es_halves_mse_within_200_generations(picbreeder_dir, algorithm):
    start, mean_after, best, _ = es_run(algorithm, 200)
    assert best <= 0.5 * start and mean_after <= 0.5 * start


def test_es_settings_are_validated(picbreeder_dir):
    base = {"regime": "es", "target": "picbreeder:skull", "arch": SMALL}
    with pytest.raises(ConfigError, match="unknown evosax algorithm 'Nope_ES'"):
        load_run_config({**base, "settings": {"algorithm": "Nope_ES"}})
    with pytest.raises(ConfigError, match="not a setting of Open_ES"):
        load_run_config({**base, "settings": {"options": {"bogus": 1}}})
    with pytest.raises(ConfigError, match="not a parameter of PGPE"):
        load_run_config({**base, "settings": {"algorithm": "PGPE", "params": {"bogus": 1.0}}})
    with pytest.raises(ConfigError, match="needs a target"):
        load_run_config({"regime": "es", "arch": SMALL})
    config = load_run_config({**base, "settings": {"algorithm": "PGPE", "params": {"std_lr": 0.2}}})
    assert config.settings.params == {"std_lr": 0.2}


def test_fitness_resolution_scores_coarse_and_reports_at_the_runs_resolution(picbreeder_dir):
    """A coarse fitness grid is a declared setting: the loss, the ladder and the result stay at the run's resolution."""
    base = {"regime": "es", "target": "picbreeder:skull", "arch": SMALL, "resolution": 16, "generations": 12}
    settings = {"algorithm": "Open_ES", "population_size": 16, "std": 0.05, "learning_rate": 0.02}
    with pytest.raises(ConfigError, match="fitness_resolution"):
        load_run_config({**base, "settings": {**settings, "fitness_resolution": 32}})
    config = load_run_config({**base, "ladder": [0.3, 0.2, 0.1], "settings": {**settings, "fitness_resolution": 8}})
    search = make_search(config)
    assert search.fitness_target.shape == (8, 8, 3) and search.target.shape == (16, 16, 3)
    outcome = run_search(search, jax.random.PRNGKey(0), 12)
    best = outcome.state.algo.best_solution
    full, coarse = float(search.mse(best[None])[0]), float(search.fitness(best[None])[0])
    assert full != pytest.approx(coarse, abs=1e-6)  # the two grids do differ
    assert outcome.history[-1]["loss"] == pytest.approx(full, abs=1e-6)
    result = search.result(outcome.state)
    assert result.losses["best"] == pytest.approx(full, abs=1e-5)
    rungs = {n: v for n, v in result.losses.items() if n.startswith("rung_")}
    assert rungs  # reached at least the first rung
    table = search.tables(outcome.state)["ladder"]
    logged = dict(zip(table["net"], table["loss"]))
    for name, loss in rungs.items():
        assert loss == pytest.approx(logged[name], abs=1e-5)  # re-rendered at 16x16, as logged


@pytest.mark.parametrize("algorithm", ["SimpleGA", "Open_ES"])
def test_evaluations_count_every_net_the_algorithm_scores(algorithm):
    """A population-based algorithm scores its starting population too: counted, as MAP-Elites does."""
    import numpy as np

    from ferlab.cppn import Architecture, init_net
    from ferlab.search.es import ESConfig, ESSearch

    scored = []

    class Counting(ESSearch):
        def fitness(self, x):
            scored.append(x.shape[0])  # unjitted below: once per call
            return super().fitness(x)

    search = Counting(
        ESConfig(algorithm=algorithm, population_size=8),
        init_net(Architecture.parse("2;sin:3,gaussian:3"), jax.random.PRNGKey(0)),
        np.full((8, 8, 3), 0.5, np.float32),
    )
    state = search._init(jax.random.PRNGKey(1))
    for _ in range(2):
        state, stats = search._step(state)
    assert int(stats["evaluations"]) == sum(scored) == (24 if algorithm == "SimpleGA" else 16)
