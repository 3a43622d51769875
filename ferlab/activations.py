"""CPPN activation functions, with Picbreeder's definitions.

Picbreeder's sigmoid and gaussian are rescaled to [-1, 1]:
sigmoid(z) = 2 / (1 + exp(-z)) - 1 and gaussian(z) = 2 exp(-z^2) - 1.
`cache` is the identity of the dense form: a unit that carries a value
unchanged to a later layer (it is named apart from `identity` so that the
architecture string tells carried values from computed ones).
"""

import jax
import jax.numpy as jnp


def identity(z):
    return z


def sigmoid(z):
    return 2.0 * jax.nn.sigmoid(z) - 1.0


def gaussian(z):
    return 2.0 * jnp.exp(-jnp.square(z)) - 1.0


ACTIVATIONS = {
    "cache": identity,
    "identity": identity,
    "sin": jnp.sin,
    "cos": jnp.cos,
    "sigmoid": sigmoid,
    "gaussian": gaussian,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
}

# The activations a genome node may have (cache exists only in dense nets).
GENOME_ACTIVATIONS = tuple(name for name in ACTIVATIONS if name != "cache")

# The set that Picbreeder and ferlab's NEAT draw new nodes from.
CPPN_ACTIVATIONS = ("identity", "sin", "cos", "sigmoid", "gaussian", "tanh")
