"""Timing helper for the benchmarks: compile once, then the best of several timed repeats."""

import time

import jax


def best_time(fn, *args, repeats: int = 5) -> float:
    """Seconds of the fastest of ``repeats`` calls, after one warm-up (compile) call."""
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best
