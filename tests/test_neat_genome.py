"""Painting NEAT genomes: the activations and colours it uses are the shared ones."""

import jax
import jax.numpy as jnp
import numpy as np

from ferlab.render import colour
from ferlab.search.neat_genome import minimal, paint


def test_ink_painting_is_the_shared_colour_of_its_grey_level():
    pop = jax.vmap(lambda k: minimal(8, 8, True, k, init_std=3.0))(jax.random.split(jax.random.PRNGKey(0), 4))
    rgb, hsv = paint(pop, 16, True)
    assert float(jnp.std(rgb)) > 0.1 and not jnp.any(hsv[..., :2])
    np.testing.assert_array_equal(rgb, colour(hsv))
