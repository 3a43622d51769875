"""The SGD baseline: the loss falls, and vmapped seeds equal single-seed runs."""

import jax
import numpy as np
import pytest

from ferlab.cppn import init_nets
from ferlab.search.runs import load_run_config, run
from ferlab.search.sgd import SGDConfig, optimizer, seed_keys, train
from ferlab.search.targets import load_target

SKULL_ARCH = "12;cache:15,gaussian:4,identity:2,sin:1"


def sgd_run(steps, resolution, out=None, **settings):
    config = load_run_config({"regime": "sgd", "resolution": resolution, "target": "picbreeder:skull",
                              "arch": "picbreeder:skull",
                              "settings": {"steps": steps, "steps_per_generation": steps // 4, **settings}})
    return run(config, out_dir=out, progress=False)


def test_loss_falls_tenfold_short(picbreeder_dir, tmp_path):
    sgd_run(600, 32, out=tmp_path)
    losses = np.loadtxt(tmp_path / "losses.csv", delimiter=",", skiprows=1)
    assert losses.shape == (600, 2)  # every step's loss kept: step, seed_0
    assert losses[-1, 1] < losses[0, 1] / 10


@pytest.mark.slow
def test_skull_64_reaches_mse_below_0_005_within_5000_steps(picbreeder_dir):
    _, history = sgd_run(5000, 64)
    assert min(h["loss"] for h in history) < 0.005


def test_vmapped_seeds_match_single_seed_runs(picbreeder_dir):
    settings = SGDConfig(steps=4, steps_per_generation=4)
    target = jax.numpy.asarray(load_target("picbreeder:skull", 16))
    nets = init_nets(SKULL_ARCH, seed_keys(jax.random.PRNGKey(3), 8))
    # 4 steps: Adam turns float noise on near-zero gradients into full-size steps, so longer
    # trajectories drift apart at ~1e-3 on some seeds; the first steps agree to float precision.
    step = jax.jit(lambda n: train(n, optimizer(settings).init(n), target, settings, 4))
    batched, _, losses = step(nets)
    flats = np.asarray(batched.flat())
    assert len({tuple(np.round(f, 6)) for f in flats}) == 8  # 8 different networks
    for i in range(8):
        one = jax.tree.map(lambda k: k[i:i + 1], nets)
        single, _, single_losses = step(one)
        np.testing.assert_allclose(single_losses[:, 0], losses[:, i], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(np.asarray(single.flat())[0], flats[i], rtol=1e-3, atol=1e-4)


def test_bad_settings_are_config_errors():
    from ferlab.config import ConfigError

    base = {"regime": "sgd", "target": "picbreeder:skull", "arch": SKULL_ARCH}
    with pytest.raises(ConfigError, match="multiple"):
        load_run_config({**base, "settings": {"steps": 10, "steps_per_generation": 3}})
    with pytest.raises(ConfigError, match="leave generations unset"):
        load_run_config({**base, "generations": 5, "settings": {"steps": 100}})
