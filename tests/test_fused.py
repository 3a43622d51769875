"""Fused generations: ``run_search`` runs up to ``fuse`` generations per compiled call (``steps``)
and still reports, checkpoints, stops and resumes generation by generation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ferlab.search.api import Result, fused, run_search
from ferlab.search.runs import load_run_config, make_search

SMALL = "2;sin:3,gaussian:3"


class CountingWalk:
    """A random walk with ``steps``; counts how often Python calls ``step`` and ``steps``."""

    def __init__(self):
        self.calls = {"step": 0, "steps": 0}
        self._steps = fused(self._step)

    def init(self, key):
        return {"key": key, "x": jnp.zeros(3), "t": jnp.zeros((), jnp.int32)}

    @staticmethod
    def _step(state):
        key, sub = jax.random.split(state["key"])
        x = state["x"] + jax.random.normal(sub, (3,))
        return {"key": key, "x": x, "t": state["t"] + 1}, {"best_fitness": x.sum(), "t": state["t"]}

    def step(self, state):
        self.calls["step"] += 1
        return jax.jit(self._step)(state)

    def steps(self, state, n, k):
        self.calls["steps"] += 1
        return self._steps(state, n, k)

    def result(self, state):
        return Result({}, {})


def states_equal(a, b) -> bool:
    return all(
        np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


def without_wall_time(history):
    return [{k: v for k, v in h.items() if k != "wall_time"} for h in history]


def test_fused_chunks_report_every_generation_in_order_with_its_own_stats():
    walk, key = CountingWalk(), jax.random.PRNGKey(3)
    seen = []
    fused_run = run_search(walk, key, 23, fuse=10, callback=lambda g, s: seen.append((g, s["t"])))
    assert walk.calls == {"step": 0, "steps": 3}  # 10 + 10 + 3 generations
    assert seen == [(g, float(g)) for g in range(23)]
    plain = run_search(walk, key, 23, fuse=1)
    assert walk.calls["step"] == 23
    assert states_equal(fused_run.state, plain.state)
    assert without_wall_time(fused_run.history) == without_wall_time(plain.history)


def test_checkpoints_and_stops_fall_on_their_generations_and_resume_matches(tmp_path):
    walk, key = CountingWalk(), jax.random.PRNGKey(5)
    whole = run_search(walk, key, 17, fuse=4)
    ck = tmp_path / "ck.msgpack"
    part = run_search(walk, key, 17, fuse=4, checkpoint=ck, checkpoint_every=3, stop_after=7)
    assert len(part.history) == 7 and int(part.state["t"]) == 7
    seen = []
    resumed = run_search(walk, key, 17, fuse=4, checkpoint=ck, callback=lambda g, s: seen.append(g))
    assert resumed.resumed_from == 7 and seen == list(range(7, 17))
    assert states_equal(resumed.state, whole.state)
    assert without_wall_time(resumed.history) == without_wall_time(whole.history)


# es and neat (16 s and more each) are slow; sgd keeps the check of a real regime in the default run
@pytest.mark.parametrize("regime", [pytest.param(r, marks=pytest.mark.slow) for r in ("es", "neat")] + ["sgd"])
def test_regimes_fused_resume_bit_equal_to_unfused(picbreeder_dir, tmp_path, regime):
    config = {
        "es": {"regime": "es", "arch": SMALL, "generations": 9, "settings": {"population_size": 8}},
        "neat": {
            "regime": "neat",
            "generations": 9,
            "settings": {"population_size": 16, "max_species": 4, "target_species": 2, "outputs": "ink"},
        },
        "sgd": {"regime": "sgd", "arch": SMALL, "settings": {"steps": 90, "steps_per_generation": 10}},
    }[regime]
    search = make_search(load_run_config({"resolution": 8, "target": "picbreeder:skull", **config}))
    assert hasattr(search, "steps")
    key = jax.random.PRNGKey(0)
    plain = run_search(search, key, 9, fuse=1)
    ck = tmp_path / "ck.msgpack"
    run_search(search, key, 9, fuse=4, checkpoint=ck, stop_after=5)
    resumed = run_search(search, key, 9, fuse=4, checkpoint=ck)
    assert states_equal(resumed.state, plain.state)
    assert without_wall_time(resumed.history) == without_wall_time(plain.history)


def test_fuse_must_be_positive():
    with pytest.raises(ValueError, match="fuse"):
        run_search(CountingWalk(), jax.random.PRNGKey(0), 2, fuse=0)


def test_a_fused_loop_traces_its_generation_once():
    """The stats' shapes and the loop's body share one trace (SGD's generation takes ~1 s to trace)."""
    from ferlab.search.api import fused_loop

    traced = []

    def step(x):
        traced.append(x)
        return x + 1.0, {"x": x}

    state, stats = jax.jit(lambda x, n: fused_loop(step, x, n, 4))(jnp.float32(0), 3)
    assert len(traced) == 1
    assert float(state) == 3.0
    np.testing.assert_array_equal(stats["x"], [0.0, 1.0, 2.0, 0.0])
