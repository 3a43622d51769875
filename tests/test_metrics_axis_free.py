"""The axis-free forms of the suite: they need no mirror axis, still separate Picbreeder from SGD,
are blind to how a net is laid out, and the blend between the forms follows the image's asymmetry."""

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
    fer_score,
    measure,
    regions,
    symmetry,
)
from ferlab.metrics.suite import axis_free_weight

FREE = dataclasses.replace(FAST, axis="none")
FREE_INVARIANT = dataclasses.replace(INVARIANT, axis="none")


@pytest.fixture(scope="module")
def free_metrics(picbreeder_dir):
    return {name: measure(_net(picbreeder_dir, name), FREE) for pair in PAIRS for name in pair}


def test_axis_free_forms_rank_picbreeder_below_sgd(free_metrics):
    """Skull and butterfly: fer_score lower and at least 80% of the metrics lower, with no axis used."""
    for ufr, fer in PAIRS:
        a, b = free_metrics[ufr], free_metrics[fer]
        assert a.info["axis_free_weight"] == 1.0
        assert a.metrics == pytest.approx({k: a.info["axis_free_metrics"].get(k, a.metrics[k]) for k in METRICS})
        lower = [name for name in METRICS if a.metrics[name] < b.metrics[name]]
        assert len(lower) >= 0.8 * len(METRICS), (ufr, sorted(set(METRICS) - set(lower)))
        assert fer_score(a.metrics) < fer_score(b.metrics)
        assert all(0.0 <= v <= 1.0 for v in a.metrics.values())


@pytest.fixture(scope="module")
def skull_free(picbreeder_dir):
    net = _net(picbreeder_dir, "picbreeder_skull")
    return net, fer_metrics(net, FREE_INVARIANT)


def test_axis_free_forms_ignore_unit_permutation(skull_free):
    net, reference = skull_free
    _assert_close(fer_metrics(_permute_units(net, jax.random.PRNGKey(5)), FREE_INVARIANT), reference)


def test_axis_free_forms_ignore_cache_chain_splitting(skull_free):
    net, reference = skull_free
    _assert_close(fer_metrics(_split_cache_chain(net), FREE_INVARIANT), reference)


def test_blend_weight_follows_image_asymmetry():
    cfg = MetricsConfig()
    assert axis_free_weight(0.05, cfg) == 0.0 and axis_free_weight(0.5, cfg) == 1.0
    assert axis_free_weight(0.2, cfg) == pytest.approx(0.5)
    assert axis_free_weight(0.5, MetricsConfig(axis="x")) == 0.0 and axis_free_weight(None, cfg) == 0.0
    assert axis_free_weight(0.0, MetricsConfig(axis="none")) == 1.0
    with pytest.raises(FerlabError, match="free_from"):
        MetricsConfig(free_from=0.4, free_full=0.3)


def test_best_mixedness_finds_any_square_symmetry():
    lin = jnp.linspace(-1, 1, 16)
    y, x = jnp.meshgrid(lin, lin, indexing="ij")
    # pure under the diagonal mirror only (x + y), the half turn only (x*y^2 + y*x^2 is odd), or mixed
    assert float(symmetry.best_mixedness(jnp.sin(x + y))) < 1e-6
    assert float(symmetry.mixedness(jnp.sin(x + y)[..., None], "x")) > 0.5
    assert float(symmetry.best_mixedness(x * y * y + 2 * y * x * x)) < 1e-6
    blob = jnp.exp(-((x - 0.5) ** 2 + (y - 0.3) ** 2) * 20)
    assert float(symmetry.best_mixedness(blob)) > 0.9


def test_fracture_and_spread_without_a_mirror():
    e = jnp.zeros((16, 16)).at[4:6, 2:4].set(1.0)
    pair = e.at[4:6, 12:14].set(1.0)
    assert float(regions.fracture(pair, None, 0.1)) == pytest.approx(0.5, abs=1e-6)
    assert float(regions.spread(pair, 4, None)) > float(regions.spread(pair, 4, "x"))
    assert np.isfinite(float(regions.spread(e, 4, None)))
