"""ES target matching with evosax algorithms chosen by name."""

import pytest

from ferlab.config import ConfigError
from ferlab.search.runs import load_run_config, run

SMALL = "3;sin:4,gaussian:4,sigmoid:4,identity:4"


def es_run(algorithm, generations, **settings):
    config = load_run_config({"regime": "es", "resolution": 32, "target": "picbreeder:skull", "arch": SMALL,
                              "generations": generations,
                              "settings": {"algorithm": algorithm, "population_size": 32, **settings}})
    return run(config, progress=False)


@pytest.mark.parametrize("algorithm", ["Open_ES", "CMA_ES"])
def test_es_lowers_mse_short(picbreeder_dir, algorithm):
    result, history = es_run(algorithm, 15)
    assert history[-1]["best_so_far"] < 0.9 * history[0]["centre_fitness"]
    assert {"best", "mean"} <= set(result.nets) and result.images["best"].shape == (32, 32, 3)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["Open_ES", "CMA_ES"])
def test_es_halves_mse_within_200_generations(picbreeder_dir, algorithm):
    _, history = es_run(algorithm, 200)
    assert history[-1]["best_so_far"] <= 0.5 * history[0]["centre_fitness"]


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
