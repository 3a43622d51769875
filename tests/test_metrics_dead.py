"""A dead net (no weight moves its picture) is a result: ``status: dead``, its reason, no scores;
``ferlab analyze`` exits 0 and a trial's other nets are still scored."""

import json
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ferlab.cli import main
from ferlab.cppn import DenseNet, init_net
from ferlab.files import write_net
from ferlab.metrics import DeadNet, MetricsConfig, analyze, measure_many, suite, sweeps
from ferlab.search.api import Result
from ferlab.search.sgd import SGDConfig, SGDSearch
from ferlab.tracking import TrialLog, default_store, start_sweep
from ferlab.workers.plan import fer_suite

ARCH = "3;cache:2,gaussian:2,sin:2"
SMALL = MetricsConfig(size=16, max_weights=32, directions=8)


def _all_zero() -> DenseNet:
    return jax.tree.map(jnp.zeros_like, init_net(ARCH, jax.random.PRNGKey(0)))


def _cut_output() -> DenseNet:
    """Hidden weights live, output layer zero: weights exist but none moves the picture."""
    net = init_net(ARCH, jax.random.PRNGKey(0))
    return DenseNet(net.arch, (*net.kernels[:-1], jnp.zeros_like(net.kernels[-1])))


def _diverged() -> DenseNet:
    """One NaN weight, as an SGD seed whose training diverged: its picture is NaN everywhere."""
    net = init_net(ARCH, jax.random.PRNGKey(0))
    return DenseNet(net.arch, (net.kernels[0].at[0, 0].set(jnp.nan), *net.kernels[1:]))


def _one_colour() -> DenseNet:
    """No x, y or d weight: every map is constant, yet its bias weights move the (flat) picture."""
    net = init_net(ARCH, jax.random.PRNGKey(0))
    return DenseNet(net.arch, (net.kernels[0].at[:3].set(0.0), *net.kernels[1:]))


@pytest.mark.parametrize(
    "make, reason",
    [
        (_all_zero, "no non-zero weights"),
        (_cut_output, "no weight moves the picture"),
        (_diverged, "weights are not finite"),
        (_one_colour, "every feature map is constant"),
    ],
)
def test_dead_net_analysis_has_status_reason_and_no_scores(make, reason):
    result = analyze(make(), config=SMALL, draw=False)
    assert result.dead and reason in result.reason
    data = result.to_json()
    assert data["status"] == "dead" and reason in data["reason"]
    assert data["metrics"] == {} and "fer_score" not in data


def test_live_net_analysis_says_scored():
    data = analyze(init_net(ARCH, jax.random.PRNGKey(1)), config=SMALL, draw=False).to_json()
    assert data["status"] == "scored" and 0.0 <= data["fer_score"] <= 1.0


def test_measure_still_raises_on_a_dead_net():
    from ferlab.metrics import measure

    with pytest.raises(DeadNet, match="no weight moves the picture"):
        measure(_cut_output(), SMALL)


def test_analyze_command_exits_0_on_a_dead_net(tmp_path, capsys):
    src = write_net(tmp_path / "dead.npz", _cut_output())
    out = tmp_path / "out"
    assert main(["analyze", str(src), "--size", "16", "--out", str(out)]) == 0
    data = json.loads((out / "metrics.json").read_text())
    assert data["status"] == "dead" and data["metrics"] == {} and "fer_score" not in data
    assert (out / "output.png").read_bytes()[:4] == b"\x89PNG"
    assert "status dead" in capsys.readouterr().out


def test_trial_with_a_dead_seed_among_live_seeds_scores_the_live_ones(tmp_path):
    """What a sweep trial does at its end (``TrialLog.final`` with the ``fer_suite`` adapter) on
    three SGD seeds, one of them dead: the run finishes, the live seeds have scores."""
    search = SGDSearch(
        SGDConfig(steps=4, steps_per_generation=2, seeds=3),
        init_net(ARCH, jax.random.PRNGKey(0)).arch,
        np.full((16, 16, 3), 0.5, np.float32),
    )
    state, _ = search.step(search.init(jax.random.PRNGKey(0)))
    result = search.result(state)
    nets = {**result.nets, "seed_1": _all_zero()}
    store = default_store(tmp_path / "mlruns")
    exp, parent = start_sweep(store, "dead-seed", {})
    log = TrialLog(store, exp, parent, "t", "sgd", {}, {})
    scores = log.final(Result(nets, result.images), partial(fer_suite, size=16, draw=False))
    log.finish()
    run = log.client.get_run(log.run_id)
    assert run.info.status == "FINISHED"
    for live in ("seed_0", "seed_2"):
        assert 0.0 <= run.data.metrics[f"fer.{live}.fer_score"] <= 1.0
    assert "fer.seed_1.fer_score" not in scores and scores["fer.seed_1.dead"] == 1.0
    assert scores["fer.seed_0.image_complexity"] <= 0.0 and "fer.seed_1.image_complexity" not in scores
    assert scores["fer.seed_0.image_detail"] >= 0.0 and "fer.seed_1.image_detail" not in scores
    assert scores["fer.seed_0.nonzero_weights"] >= 1 and "fer.seed_1.nonzero_weights" not in scores
    path = log.client.download_artifacts(log.run_id, "nets/seed_1/fer/metrics.json", str(tmp_path))
    assert json.loads(Path(path).read_text())["status"] == "dead"


def test_nets_measured_together_get_their_own_numbers_and_a_dead_one_its_reason(monkeypatch):
    """measure_many shares its picture calls across nets: each live net's metrics are those it gets
    alone, a dead net among them is a DeadNet in its place, and another architecture is its own group."""
    # groups of 2 nets: the first live net shares its calls with the dead one, the second is alone
    monkeypatch.setattr(suite, "BATCH_PIXELS", 2 * SMALL.size**2)
    live = [init_net(ARCH, jax.random.PRNGKey(k)) for k in (1, 2)]
    other = init_net("2;sin:3,identity:1", jax.random.PRNGKey(3))
    together = measure_many([live[0], _cut_output(), other, live[1], _one_colour()], SMALL)
    assert isinstance(together[1], DeadNet) and "no weight moves the picture" in str(together[1])
    assert isinstance(together[4], DeadNet) and "one colour" in str(together[4])  # it crashed the batch
    for net, result in zip([live[0], other, live[1]], [together[0], together[2], together[3]]):
        alone = measure_many([net], SMALL)[0]
        assert result.info == alone.info
        np.testing.assert_allclose(list(result.metrics.values()), list(alone.metrics.values()), atol=1e-6)
    assert together[0].metrics != together[3].metrics


def test_an_architecture_compiles_one_sweep_call():
    """Single weights, random directions and pruning paint through one compiled call: a new
    architecture (NEAT gives every net its own) costs one compile of it, not one per kind of sweep."""
    before = sweeps._sweep_pictures._cache_size()
    (result,) = measure_many([init_net("2;gaussian:2,sin:1,tanh:1", jax.random.PRNGKey(8))], SMALL)
    assert result.info["live_weights"] > 0 and result.info["random_directions"] > 0
    assert 0 < result.metrics["compressibility"] < 1
    assert sweeps._sweep_pictures._cache_size() == before + 1


def test_groups_of_any_size_share_one_compiled_sweep_call(monkeypatch):
    """Stacks of nets are padded to one size, so a run's groups (their sizes vary with its ladder)
    compile the sweeps' picture calls once; the padding changes no net's numbers."""
    monkeypatch.setattr(suite, "BATCH_PIXELS", 4 * SMALL.size**2)
    nets = [init_net(ARCH, jax.random.PRNGKey(k)) for k in (4, 5, 6)]
    two = measure_many(nets[:2], SMALL)
    compiled = sweeps._sweep_pictures._cache_size()
    three = measure_many(nets, SMALL)
    assert sweeps._sweep_pictures._cache_size() == compiled
    for a, b in zip(two, three):
        assert a.metrics == b.metrics
