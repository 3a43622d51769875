"""Painting NEAT genomes: the activations it uses are the shared ones."""

import jax.numpy as jnp
import numpy as np

from ferlab.activations import ACTIVATIONS, CPPN_ACTIVATIONS
from ferlab.search.neat_genome import PAINT_ACTIVATIONS


def test_painting_activations_match_the_shared_definitions():
    z = jnp.concatenate([jnp.linspace(-1000.0, 1000.0, 400_001), jnp.linspace(-4.0, 4.0, 10_001)])
    for name, fn in zip(CPPN_ACTIVATIONS, PAINT_ACTIVATIONS):
        np.testing.assert_allclose(fn(z), ACTIVATIONS[name](z), atol=3e-7, rtol=0, err_msg=name)
