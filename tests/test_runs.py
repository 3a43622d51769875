"""Run configs, the regime table, resuming from checkpoints and the `ferlab run` command."""

from pathlib import Path

import jax
import numpy as np
import pytest
import yaml

from ferlab.cli import main
from ferlab.config import ConfigError
from ferlab.search.api import run_search
from ferlab.search.registry import regime_names
from ferlab.search.runs import RunConfig, load_run_config, make_search, run

SMALL = "2;sin:3,gaussian:3"
EXAMPLES = Path(__file__).resolve().parents[1] / "studies" / "examples"


def es_config(**extra):
    return {
        "regime": "es",
        "resolution": 8,
        "target": "picbreeder:skull",
        "arch": SMALL,
        "generations": 6,
        "checkpoint_every": 2,
        "settings": {"population_size": 8},
        **extra,
    }


@pytest.mark.slow  # test_regimes resumes every regime through runs.run, test_fused checks where checkpoints fall
def test_interrupted_run_resumes_to_the_same_result(picbreeder_dir, tmp_path):
    config = load_run_config(es_config())
    search = make_search(config)  # one search object: its compiled step serves all three runs
    key = jax.random.PRNGKey(config.seed)
    whole = run_search(search, key, 6)
    checkpoint = tmp_path / "checkpoint.msgpack"
    part = run_search(search, key, 6, checkpoint=checkpoint, checkpoint_every=2, stop_after=4)
    assert checkpoint.is_file() and len(part.history) == 4
    seen = []
    resumed = run_search(search, key, 6, checkpoint=checkpoint, callback=lambda g, s: seen.append(g))
    assert seen == [4, 5] and resumed.resumed_from == 4
    assert [h["best_fitness"] for h in resumed.history] == [h["best_fitness"] for h in whole.history]
    for name, net in search.result(whole.state).nets.items():
        np.testing.assert_array_equal(search.result(resumed.state).nets[name].flat(), net.flat())
    assert not np.array_equal(part.state.algo.mean, whole.state.algo.mean)


def test_outputs_are_written(picbreeder_dir, tmp_path):
    assert (
        main(
            [
                "run",
                str(EXAMPLES / "es.yaml"),
                "--set",
                "generations=2",
                "--set",
                "resolution=8",
                "--set",
                f"arch={SMALL}",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert {"best.npz", "mean.npz"} <= {p.name for p in (tmp_path / "nets").iterdir()}
    assert (tmp_path / "images" / "best.png").is_file()
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert lines[0].startswith("generation,") and len(lines) == 3
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["generations"] == 2


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_examples_load(picbreeder_dir, path):
    if path.stem.startswith("sweep_"):  # sweep specs: every grid point's run config is checked too
        from ferlab.workers.sweep import load_sweep, grid_points

        assert len(grid_points(load_sweep(path))) >= 2
        return
    config = load_run_config(path)
    assert isinstance(config, RunConfig) and config.regime in regime_names()


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"regime": "evolve"}, "regime must be one of"),
        ({"regime": "es", "target": "picbreeder:skull", "populaton": 3}, "unknown key 'populaton'"),
        ({"regime": "es", "target": "picbreeder:skull", "resolution": "big"}, "config.resolution: expected an integer"),
        (
            {"regime": "es", "target": "picbreeder:skull", "settings": {"algorithm": "CMA"}},
            "unknown evosax algorithm 'CMA'",
        ),
        ({"regime": "es", "target": "missing.png"}, "'missing.png': no such file"),
        ({"regime": "es", "target": "picbreeder:cat"}, "unknown shortcut 'picbreeder:cat'"),
        ({"regime": "sgd", "target": "picbreeder:skull", "arch": "3;nope:2"}, "unknown activation 'nope'"),
        ({"regime": "novelty", "settings": {"mode": "nsr"}}, "nsr needs a target"),
        (
            {"regime": "novelty", "target": "picbreeder:skull", "settings": {"mode": "nsr", "novelty_weight": 2}},
            "novelty_weight must be a number in [0, 1], got 2",
        ),
        ({"regime": "novelty", "settings": {"novelty": {"k": 0}}}, "k must be at least 1"),
    ],
)
def test_bad_configs_fail_before_any_work(picbreeder_dir, tmp_path, capsys, settings, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(settings))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ferlab: error: ") and message in err and "\n" not in err
    assert not out.exists()


def test_bad_override_and_changed_config_are_refused(picbreeder_dir, tmp_path, capsys):
    assert (
        main(["run", str(EXAMPLES / "es.yaml"), "--set", "settings.population_size=many", "--out", str(tmp_path / "o")])
        == 2
    )
    assert "settings.population_size: expected an integer" in capsys.readouterr().err
    config = load_run_config(es_config(generations=1))
    run(config, out_dir=tmp_path / "o", progress=False)
    with pytest.raises(ConfigError, match="holds a different run"):
        run(load_run_config(es_config(generations=2)), out_dir=tmp_path / "o", progress=False)


def test_given_regime_returns_the_source_net_and_refuses_an_image(picbreeder_dir, tmp_path):
    from ferlab.render import render
    from ferlab.search.targets import load_source

    search = make_search(load_run_config({"regime": "given", "resolution": 8, "target": "picbreeder:skull"}))
    result = search.result(run_search(search, jax.random.PRNGKey(0), 1).state)
    net, genome = load_source("picbreeder:skull", "target")
    np.testing.assert_array_equal(result.images["given"], np.asarray(render(net, 8).rgb))
    assert result.genomes["given"] is not None and genome is not None
    png = tmp_path / "image.png"
    png.write_bytes((picbreeder_dir / "renders" / "skull.png").read_bytes())
    for data, where in [({"target": str(png)}, "target"), ({"settings": {"source": str(png)}}, "settings.source")]:
        with pytest.raises(ConfigError, match=f"^{where}: a .png has no weights"):
            load_run_config({"regime": "given", "resolution": 8, **data})


def test_absolute_specs_anchor_only_files_named_in_the_folder(tmp_path):
    from ferlab.search.targets import absolute_specs

    (tmp_path / "t.png").write_bytes(b"")
    (tmp_path / "m.npz").write_bytes(b"")
    data = {
        "regime": "sgd",
        "target": "t.png",
        "arch": SMALL,
        "seed": 1,
        "settings": {"mask_from": "m.npz", "steps": 4},
    }
    out = absolute_specs(data, tmp_path)
    assert out["target"] == str(tmp_path / "t.png") and out["settings"]["mask_from"] == str(tmp_path / "m.npz")
    assert out["arch"] == SMALL and out["settings"]["steps"] == 4 and data["target"] == "t.png"
    assert absolute_specs({"target": "picbreeder:skull", "arch": "gone.npz"}, tmp_path) == {
        "target": "picbreeder:skull",
        "arch": "gone.npz",
    }


def test_a_png_target_is_resampled_onto_ferlabs_grid(tmp_path, picbreeder_dir):
    """render.grid puts its end points on the picture's edges, so point i of 86 lies on pixel 3i of 256:
    a ramp that is each pixel's own column comes back as exactly 3i inside (a BOX resize centres on
    cells and sampled a zoomed picture); the skull's paper render at 64 is close to the net's own 64."""
    from PIL import Image

    from ferlab.cppn import load_net
    from ferlab.render import render
    from ferlab.search.targets import load_image

    ramp = np.tile(np.arange(256, dtype=np.uint8), (256, 1))
    Image.fromarray(np.stack([ramp, ramp.T, ramp], -1)).save(tmp_path / "ramp.png")
    out = load_image(tmp_path / "ramp.png", 86) * 255
    inside = np.arange(1, 85)
    np.testing.assert_allclose(out[40, inside, 0], 3 * inside, atol=1e-3)  # x: columns
    np.testing.assert_allclose(out[inside, 40, 1], 3 * inside, atol=1e-3)  # y: rows
    same = load_image(tmp_path / "ramp.png", 256) * 255
    np.testing.assert_array_equal(same, np.stack([ramp, ramp.T, ramp], -1).astype(np.float32))
    skull = load_net(picbreeder_dir / "nets" / "picbreeder_skull.npz")
    target = load_image(picbreeder_dir / "renders" / "skull.png", 64)
    assert float(np.mean((target - np.asarray(render(skull, 64).rgb)) ** 2)) < 0.002  # BOX: 0.0053
