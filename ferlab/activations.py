"""CPPN activation functions, with Picbreeder's definitions.

Picbreeder's sigmoid and gaussian are rescaled to [-1, 1]:
sigmoid(z) = 2 / (1 + exp(-z)) - 1 and gaussian(z) = 2 exp(-z^2) - 1.
`cache` is the identity of the dense form: a unit that carries a value
unchanged to a later layer (it is named apart from `identity` so that the
architecture string tells carried values from computed ones).

sin and cos are computed by a vectorised polynomial (``_sin_shifted``), not
XLA's: on CPU, XLA's float32 sin and cos are not vectorised and run about ten
times slower than exp, so they dominated rendering, painting and training any
net with a sin unit (``bench/render.py``).
"""

import jax
import jax.numpy as jnp
import numpy as np

# pi in three parts for the range reduction: k * _PI[0] is exact for |k| < 2**16.
_PI = (np.float32(3.140625), np.float32(9.67502593994140625e-4), np.float32(np.pi - 3.140625 - 9.67502593994140625e-4))
# Taylor coefficients of sin(r)/r - 1 in r^2, highest first (1/11! ... -1/3!).
_SIN_COEFFS = (
    -2.50521083854417187751e-8,
    2.75573192239858906526e-6,
    -1.98412698412698412526e-4,
    8.33333333333333333333e-3,
    -1.66666666666666666667e-1,
)


def _sin_shifted(z: jax.Array, half_turns: float) -> jax.Array:
    """sin(z + half_turns * pi) for float32 z: reduce to r in [-pi/2, pi/2] with z + half_turns
    * pi = r + k pi, then a degree-11 Taylor polynomial, sign flipped for odd k.

    Within 3e-7 of float64 sin for |z| <= 1000 (``tests/test_rendering.py``).
    """
    k = jnp.round(z * np.float32(1 / np.pi) + np.float32(half_turns))
    r = z - k * _PI[0] - k * _PI[1] - k * _PI[2] + np.float32(half_turns * np.pi)
    r2 = r * r
    poly = np.float32(_SIN_COEFFS[0])
    for c in _SIN_COEFFS[1:]:
        poly = poly * r2 + np.float32(c)
    s = r + r * r2 * poly
    return jnp.where(jnp.mod(k, 2) == 0, s, -s)


@jax.custom_jvp
def sin(z):
    return _sin_shifted(z, 0.0)


@jax.custom_jvp
def cos(z):
    return _sin_shifted(z, 0.5)


# Derivatives by the same polynomials (differentiating through the range reduction would too,
# but would hand gradients a degree-10 polynomial and the rounding's zero derivative).
sin.defjvp(lambda primals, tangents: (sin(primals[0]), cos(primals[0]) * tangents[0]))
cos.defjvp(lambda primals, tangents: (cos(primals[0]), -sin(primals[0]) * tangents[0]))


def identity(z):
    return z


def sigmoid(z):
    return 2.0 * jax.nn.sigmoid(z) - 1.0


def gaussian(z):
    return 2.0 * jnp.exp(-jnp.square(z)) - 1.0


ACTIVATIONS = {
    "cache": identity,
    "identity": identity,
    "sin": sin,
    "cos": cos,
    "sigmoid": sigmoid,
    "gaussian": gaussian,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
}

# The activations a genome node may have (cache exists only in dense nets).
GENOME_ACTIVATIONS = tuple(name for name in ACTIVATIONS if name != "cache")

# The set that Picbreeder and ferlab's NEAT draw new nodes from.
CPPN_ACTIVATIONS = ("identity", "sin", "cos", "sigmoid", "gaussian", "tanh")
# Their functions in that order, as ``lax.switch`` branches indexed by a node's activation index.
CPPN_FUNCTIONS = tuple(ACTIVATIONS[name] for name in CPPN_ACTIVATIONS)
