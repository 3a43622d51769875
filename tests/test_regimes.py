"""Every registered regime keeps the contract of ``ferlab.search.api``: a new regime's declaration is its test.

Each regime's ``smallest`` run goes through ``runs.run`` twice into fresh folders, once straight
through and once interrupted after one generation and resumed from its checkpoint; both must end
with the same networks, images and statistics.
"""

from __future__ import annotations

import ast
from pathlib import Path

import jax
import numpy as np
import pytest

from ferlab.search.api import Migrating, Regime, Result, advance
from ferlab.search.registry import regime, regime_names
from ferlab.search.runs import load_run_config, make_search, population_size, run

REPO = Path(__file__).resolve().parents[1]


def test_the_registry_finds_every_declared_regime():
    declared = {
        p.stem
        for p in (REPO / "ferlab" / "search").glob("*.py")
        if any(
            isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "REGIME" for t in node.targets)
            for node in ast.parse(p.read_text()).body
        )
    }
    assert {"sgd", "es", "novelty", "neat", "given"} <= declared
    assert set(regime_names()) == declared
    for name in declared:
        assert isinstance(regime(name), Regime) and regime(name).name == name


@pytest.mark.parametrize("name", regime_names())
def test_a_regime_that_swaps_migrants_is_migrating(picbreeder_dir, name):
    """Islands migrate only between ``api.Migrating`` searches: a search with ``emigrant`` and
    ``immigrate`` but not the whole protocol (ES lacked ``join_islands``) ran islands that never
    migrated, silently."""
    search = make_search(_config(name))
    swaps = hasattr(search, "emigrant") or hasattr(search, "immigrate")
    assert isinstance(search, Migrating) == swaps


def _config(name: str):
    return load_run_config({"regime": name, **regime(name).smallest})


# neat_sgd's case (31 s, its trainable painter compiled afresh) is slow; test_neat_sgd covers its painter
SLOW_RESUME = {"neat_sgd"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_RESUME else n for n in regime_names()]
)
def test_smallest_run_resumes_to_the_uninterrupted_result(picbreeder_dir, tmp_path, name):
    config = _config(name)
    declaration = regime(name)
    if declaration.population is not None:
        assert population_size(config) >= 1
    whole, history = run(config, tmp_path / "whole", progress=False)
    n = config.n_generations
    run(config, tmp_path / "part", progress=False, stop_after=1)
    seen: list[int] = []
    resumed, resumed_history = run(config, tmp_path / "part", progress=False, callback=lambda g, s: seen.append(g))
    assert seen == list(range(1, n))

    assert isinstance(whole, Result) and whole.nets and whole.nets.keys() == whole.images.keys()
    assert resumed.nets.keys() == whole.nets.keys()
    for key in whole.nets:
        np.testing.assert_array_equal(resumed.nets[key].flat(), whole.nets[key].flat())
        np.testing.assert_array_equal(resumed.images[key], whole.images[key])
        assert whole.images[key].shape == (config.resolution, config.resolution, 3)
    assert len(history) == len(resumed_history) == n
    for a, b in zip(history, resumed_history, strict=True):
        assert {k: v for k, v in a.items() if k != "wall_time"} == {k: v for k, v in b.items() if k != "wall_time"}
    evaluations = [h["evaluations"] for h in history]
    assert evaluations == sorted(evaluations)
    if name != "given":
        assert evaluations[-1] > evaluations[0] > 0
    if config.target is not None and name != "given":
        assert all(np.isfinite(h["loss"]) and h["loss"] >= 0 for h in history)
    if declaration.archive_prefix is not None and declaration.archive_capacity(config.settings):
        assert any(key.startswith(declaration.archive_prefix) for key in whole.nets)


def _types(state) -> list:
    """(path, shape, dtype, weak type) of every leaf: what a jitted call's cache is keyed on."""
    avals = jax.tree_util.tree_flatten_with_path(jax.tree.map(jax.typeof, state))[0]
    return [(jax.tree_util.keystr(p), a.shape, a.dtype, a.weak_type) for p, a in avals]


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_RESUME else n for n in regime_names()]
)
def test_a_generation_keeps_the_state_types_so_a_step_compiles_once(picbreeder_dir, name):
    """Shapes, dtypes and weak types of every state leaf are the same after a generation as after
    init: else a jitted step sees new input types on its second call and compiles again (evosax's
    Open_ES left ``best_fitness`` weakly typed after init and ``std`` after tell: 1.4 s a run)."""
    search = make_search(_config(name))
    state = search.init(jax.random.PRNGKey(0))
    after, _ = advance(search, state, 1)
    assert _types(after) == _types(state)
