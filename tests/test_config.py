"""The typed YAML config loader and the run driver's checkpoint resume."""

from dataclasses import dataclass, field
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ferlab.config import (
    ConfigError,
    apply_overrides,
    flatten,
    from_dict,
    load_yaml,
    parse_yaml,
    set_path,
)
from ferlab.search.api import Result, run_search


@dataclass(frozen=True)
class Inner:
    k: int = 15
    lr: float = 3e-3


@dataclass(frozen=True)
class Outer:
    regime: Literal["sgd", "es"]
    inner: Inner = field(default_factory=Inner)
    seeds: tuple[int, ...] = (0,)
    target: str | None = None


def test_yaml_with_overrides_builds_nested_frozen_config(tmp_path):
    (tmp_path / "c.yaml").write_text("regime: es\ninner: {k: 3}\nseeds: [1, 2]\n")
    data = apply_overrides(load_yaml(tmp_path / "c.yaml"), ["inner.lr=0.1", "target=skull.png"])
    cfg = from_dict(Outer, data)
    assert cfg == Outer("es", Inner(3, 0.1), (1, 2), "skull.png")
    assert flatten(cfg) == {"regime": "es", "inner.k": 3, "inner.lr": 0.1, "seeds": [1, 2], "target": "skull.png"}


@pytest.mark.parametrize(
    "data,message",
    [
        ({"regime": "ga"}, "config.regime: 'ga' (str) is not one of 'sgd', 'es'"),
        ({"regime": "sgd", "inner": {"kk": 1}}, "config.inner: unknown key 'kk' (known: k, lr)"),
        ({"regime": "sgd", "inner": {"k": "3"}}, "config.inner.k: expected an integer, got '3' (str)"),
        ({"regime": "sgd", "inner": {"k": True}}, "config.inner.k: expected an integer"),
        ({"regime": "sgd", "seeds": 3}, "config.seeds: expected a list, got int"),
        ({}, "config: missing required key 'regime'"),
    ],
)
def test_bad_config_is_one_clear_line(data, message):
    with pytest.raises(ConfigError) as err:
        from_dict(Outer, data)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_yaml_and_bad_overrides(tmp_path):
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_yaml(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides({}, ["novalue"])


def test_set_path_creates_sections_and_refuses_to_descend_into_a_value():
    data = {"settings": {"es": {"std": 0.1}}, "seed": 3, "empty": None}
    assert set_path(data, "settings.es.population_size", 8) is data
    assert set_path(data, "settings.novelty.k", 5)["settings"] == {
        "es": {"std": 0.1, "population_size": 8},
        "novelty": {"k": 5},
    }
    assert set_path(data, "empty.x", 1)["empty"] == {"x": 1}
    with pytest.raises(ConfigError, match=r"'seed.x': 'seed' is not a section \(it holds 3 \(int\)\)"):
        set_path(data, "seed.x", 1)
    with pytest.raises(ConfigError, match=r"'settings.es.std.k': 'settings.es.std' is not a section"):
        set_path(data, "settings.es.std.k", 1)
    for bad in ("", "a..b", ".a", "a."):
        with pytest.raises(ConfigError, match="expected a dotted key"):
            set_path(data, bad, 1)
    assert data["seed"] == 3 and data["settings"]["es"]["std"] == 0.1


def test_overrides_go_through_set_path_and_read_exponents_as_floats():
    base = {"settings": {"lr": 0.1}, "seed": 0}
    out = apply_overrides(base, ["settings.lr=1e-5", "settings.mom=1E5", "seed=-2e-3", "name=1e-5x"])
    assert out == {"settings": {"lr": 1e-5, "mom": 1e5}, "seed": -2e-3, "name": "1e-5x"}
    assert base == {"settings": {"lr": 0.1}, "seed": 0}  # a copy: the input is left alone
    assert all(isinstance(v, float) for v in (out["settings"]["lr"], out["settings"]["mom"], out["seed"]))
    with pytest.raises(ConfigError, match=r"--set 'seed.x=1': 'seed.x': 'seed' is not a section"):
        apply_overrides(base, ["seed.x=1"])


@pytest.mark.parametrize(
    "text,value",
    [
        ("1e-5", 1e-5),
        ("1E5", 1e5),
        ("-2e-3", -2e-3),
        ("+3e2", 300.0),
        ("1.5e-3", 1.5e-3),
        ("1.0e5", 1e5),
        (".5e1", 5.0),
        ("1_000e-3", 1.0),
        ("1e", "1e"),
        ("e5", "e5"),
        ("'1e-5'", "1e-5"),
        ("12", 12),
        ("0.5", 0.5),
        ("true", True),
        ("2001-01-01e5", "2001-01-01e5"),
    ],
)
def test_yaml_numbers_with_exponents_are_floats(tmp_path, text, value):
    assert parse_yaml(f"v: {text}") == {"v": value}
    assert type(parse_yaml(f"v: {text}")["v"]) is type(value)
    (tmp_path / "c.yaml").write_text(f"inner: {{lr: {text}}}\nregime: es\n")
    if isinstance(value, float):
        assert from_dict(Outer, load_yaml(tmp_path / "c.yaml")).inner.lr == value


@pytest.mark.parametrize("text", [".inf", "-.inf", ".nan", "1e400"])
def test_non_finite_config_numbers_are_refused(text):
    with pytest.raises(ConfigError, match=r"config.inner.lr: expected a finite number"):
        from_dict(Outer, parse_yaml(f"regime: es\ninner: {{lr: {text}}}"))


class RandomWalk:
    """A minimal regime: a random walk whose every step depends on the key in its state."""

    def init(self, key):
        return {"key": key, "x": jnp.zeros(3)}

    def step(self, state):
        key, sub = jax.random.split(state["key"])
        x = state["x"] + jax.random.normal(sub, (3,))
        return {"key": key, "x": x}, {"best_fitness": x.sum()}

    def result(self, state):
        return Result({}, {})


def test_interrupted_run_resumes_to_the_same_end(tmp_path):
    key = jax.random.PRNGKey(7)
    whole = run_search(RandomWalk(), key, 12)
    ck = tmp_path / "ck.msgpack"
    seen = []
    first = run_search(RandomWalk(), key, 12, checkpoint=ck, stop_after=5, callback=lambda g, s: seen.append(g))
    assert len(first.history) == 5
    resumed = run_search(RandomWalk(), key, 12, checkpoint=ck, callback=lambda g, s: seen.append(g))
    assert resumed.resumed_from == 5
    assert seen == list(range(12))
    np.testing.assert_array_equal(np.asarray(resumed.state["x"]), np.asarray(whole.state["x"]))
    assert [h["best_fitness"] for h in resumed.history] == [h["best_fitness"] for h in whole.history]
