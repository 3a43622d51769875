"""Timing helpers for the benchmarks: compile once, then the best of several timed repeats, and the
bare jitted matmul chain (no activations) that render and SGD figures are set beside. The chains
multiply in full float32 as ferlab's painters do (``cppn.dot``): a GPU's default TF32 would make a
faster limit for a coarser product."""

import time

import jax
import jax.numpy as jnp

from ferlab.cppn import dot
from ferlab.render import PIXEL_BLOCK

HIGHEST = jax.lax.Precision.HIGHEST


def best_time(fn, *args, repeats: int = 5) -> float:
    """Seconds of the fastest of ``repeats`` calls, after one warm-up (compile) call."""
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


def best_times(calls, repeats: int = 5) -> list[float]:
    """Best seconds of each ``(fn, args)`` in ``calls``, timed in turn round by round, so that a
    busy spell on a shared machine hits all of them alike (side-by-side ratios stay fair)."""
    for fn, args in calls:
        jax.block_until_ready(fn(*args))
    best = [float("inf")] * len(calls)
    for _ in range(repeats):
        for i, (fn, args) in enumerate(calls):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*args))
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


@jax.jit
def bare_chain(kernels, inputs):
    """The net's matmuls alone, pixels-major ((pixels, units) @ kernel): the limit a forward pass
    of these shapes can reach in that layout."""
    h = inputs
    for k in kernels:
        h = dot(h, k)
    return h


@jax.jit
def bare_chain_units(kernels, inputs):
    """The same matmuls units-major (kernel.T @ (units, pixels)), the layout ferlab renders in;
    benches set ferlab beside the faster of the two chains."""
    h = inputs.T
    for k in kernels:
        h = dot(k.T, h)
    return h.T


@jax.jit
def bare_chain_blocks(kernels, inputs):
    """The units-major chain on blocks of ``PIXEL_BLOCK`` pixels mapped with ``vmap`` (as ferlab's
    forward pass splits long images); on a CPU these batched matmuls can beat one long one."""
    n = inputs.shape[0]
    blocks = -(-n // PIXEL_BLOCK)
    x = jnp.pad(inputs, ((0, blocks * PIXEL_BLOCK - n), (0, 0))).reshape(blocks, PIXEL_BLOCK, -1)
    return jax.vmap(lambda b: bare_chain_units(kernels, b))(x).reshape(-1, kernels[-1].shape[-1])[:n]


@jax.jit
def bare_chain_batch(kernels, inputs):
    """A batch of nets' chains (kernels with a leading batch axis) on one grid, pixels-major."""
    h = jnp.broadcast_to(inputs, (kernels[0].shape[0], *inputs.shape))
    for k in kernels:
        h = jnp.einsum("bpi,bij->bpj", h, k, precision=HIGHEST)
    return h


@jax.jit
def bare_chain_batch_units(kernels, inputs):
    """The same, units-major."""
    h = jnp.broadcast_to(inputs.T, (kernels[0].shape[0], *inputs.T.shape))
    for k in kernels:
        h = jnp.einsum("bij,bip->bjp", k, h, precision=HIGHEST)
    return h


@jax.jit
def bare_chain_batch_mapped(kernels, inputs):
    """The batch's units-major chains one net after another (``lax.map``), as ferlab renders a batch
    on a CPU; the benches take the fastest of the batch chains as the limit."""
    return jax.lax.map(lambda k: bare_chain_units(k, inputs), kernels)
