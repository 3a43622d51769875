"""The suite's two forms: the axis-free one (the default, what fer_score reads) and the paper's
mirror form (``axis: x``): both separate Picbreeder from SGD and are blind to how a net is laid out;
the axis-free building blocks need no mirror."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_metrics import (
    FAST,
    INVARIANT,
    PAIRS,
    _assert_close,
    _net,
    _permute_units,
    _split_cache_chain,
)

from ferlab.errors import FerlabError
from ferlab.metrics import (
    METRICS,
    MetricsConfig,
    fer_metrics,
    measure,
    regions,
    symmetry,
)

MIRROR = dataclasses.replace(FAST, axis="x")
MIRROR_INVARIANT = dataclasses.replace(INVARIANT, axis="x")


@pytest.fixture(scope="module")
def mirror_metrics(picbreeder_dir):
    return {name: measure(_net(picbreeder_dir, name), MIRROR) for pair in PAIRS for name in pair}


def test_default_metrics_are_the_axis_free_forms(picbreeder_dir):
    m = measure(_net(picbreeder_dir, "picbreeder_skull"), FAST)
    assert m.info["form"] == "axis_free" and m.info["axis"] == "x"
    assert m.metrics == {k: m.info["axis_free_metrics"].get(k, m.metrics[k]) for k in METRICS}
    assert set(m.info["axis_metrics"]) == set(m.info["axis_free_metrics"])


def test_mirror_forms_rank_picbreeder_below_sgd(mirror_metrics):
    """Skull and butterfly about their mirror axis (the paper's forms): fer_score lower and at least
    80% of the metrics lower."""
    for ufr, fer in PAIRS:
        a, b = mirror_metrics[ufr], mirror_metrics[fer]
        assert a.info["form"] == "mirror"
        assert a.metrics == {k: a.info["axis_metrics"].get(k, a.metrics[k]) for k in METRICS}
        lower = [name for name in METRICS if a.metrics[name] < b.metrics[name]]
        assert len(lower) >= 0.8 * len(METRICS), (ufr, sorted(set(METRICS) - set(lower)))
        assert a.fer_score < b.fer_score
        assert all(0.0 <= v <= 1.0 for v in a.metrics.values())


@pytest.fixture(scope="module")
def skull_mirror(picbreeder_dir):
    net = _net(picbreeder_dir, "picbreeder_skull")
    return net, fer_metrics(net, MIRROR_INVARIANT)


def test_mirror_forms_ignore_unit_permutation(skull_mirror):
    net, reference = skull_mirror
    _assert_close(fer_metrics(_permute_units(net, jax.random.PRNGKey(5)), MIRROR_INVARIANT), reference)


def test_mirror_forms_ignore_cache_chain_splitting(skull_mirror):
    net, reference = skull_mirror
    _assert_close(fer_metrics(_split_cache_chain(net), MIRROR_INVARIANT), reference)


def test_axis_none_is_refused():
    with pytest.raises(FerlabError, match="axis"):
        MetricsConfig(axis="none")


def test_best_mixedness_finds_any_square_symmetry():
    lin = jnp.linspace(-1, 1, 16)
    y, x = jnp.meshgrid(lin, lin, indexing="ij")
    # pure under the diagonal mirror only (x + y), the half turn only (x*y^2 + y*x^2 is odd), or mixed
    assert float(symmetry.best_mixedness(jnp.sin(x + y))) < 1e-6
    assert float(symmetry.mixedness(jnp.sin(x + y)[..., None], "x")) > 0.5
    assert float(symmetry.best_mixedness(x * y * y + 2 * y * x * x)) < 1e-6
    blob = jnp.exp(-((x - 0.55) ** 2 + (y + 0.25) ** 2) * 60)  # far from its image under every op
    assert float(symmetry.best_mixedness(blob)) > 0.9


def test_fracture_and_spread_without_a_mirror():
    e = jnp.zeros((16, 16)).at[4:6, 2:4].set(1.0)
    pair = e.at[4:6, 12:14].set(1.0)
    assert float(regions.fracture(pair, None, 0.1)) == pytest.approx(0.5, abs=1e-6)
    assert float(regions.spread(pair, 4, None)) > float(regions.spread(pair, 4, "x"))
    assert np.isfinite(float(regions.spread(e, 4, None)))
