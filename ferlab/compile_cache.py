"""JAX's persistent compilation cache, shared by the CLI and every Ray worker process.

Each Tune trial is a fresh process that would otherwise recompile the same
render, search and metric functions; with the cache on disk the second trial
of a shape loads them instead. ``FERLAB_JAX_CACHE`` moves it (``off`` disables it).
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DIR = Path.home() / ".cache" / "ferlab" / "jax"


def cache_env() -> dict[str, str]:
    """Environment variables that turn the cache on for a JAX process (empty when disabled)."""
    where = os.environ.get("FERLAB_JAX_CACHE", str(DEFAULT_DIR))
    if where.lower() == "off":
        return {}
    return {"JAX_COMPILATION_CACHE_DIR": where, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.2"}


def enable() -> None:
    """Turn the cache on for this process and the processes it starts (before JAX is imported)."""
    for key, value in cache_env().items():
        os.environ.setdefault(key, value)
