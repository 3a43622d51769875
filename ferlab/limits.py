"""Size caps on what ferlab reads and what a config asks for, checked before anything of that size is allocated.

A small file must not be able to ask for gigabytes: a net's architecture string,
an ``.npz`` member's header, a genome's node list, a PNG header or a YAML alias
can each claim a size that is far from what the file holds. Nor may one line of
a config: a population, a run's length or a sweep's trial count is bounded too
(a population of 10^9 would otherwise fail deep in XLA with an out-of-memory
traceback, a sweep of 10^9 trials would fill the driver). Each such claim is
checked against a cap here first. Every cap has a default that real inputs stay
far below and an environment variable that sets it (a positive integer), e.g.
``FERLAB_MAX_WEIGHTS=100000000 ferlab render big.npz --out big.png``. A refusal
is one line naming the cap and the variable that raises it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ferlab.errors import LimitError


@dataclass(frozen=True)
class Cap:
    """A settable upper bound: ``env`` (environment variable) overrides ``default``, up to
    ``ceiling`` where the code past it cannot work at all (JAX indexes arrays in int32)."""

    env: str
    default: int
    what: str  # what is counted, e.g. "hidden layers"
    ceiling: int | None = None

    @property
    def value(self) -> int:
        """The cap now in force (read from the environment on each use: no global state)."""
        raw = os.environ.get(self.env)
        if raw is None or not raw.strip():
            return self.default
        try:
            value = int(raw.strip().replace("_", ""))
        except ValueError:
            value = 0
        if value < 1:
            raise LimitError(f"{self.env} must be a positive integer, got {raw!r}")
        if self.ceiling is not None and value > self.ceiling:
            raise LimitError(f"{self.env} must be at most {self.ceiling} (JAX indexes arrays in int32), got {raw!r}")
        return value

    def check(self, count: int, subject: str, error: type[Exception] = LimitError) -> int:
        """Return ``count``, or raise ``error`` if it is over the cap (``subject`` names the input)."""
        cap = self.value
        if count > cap:
            raise error(f"{subject}: {count} {self.what}, over the cap of {cap} (raise it with {self.env}=N)")
        return count


LAYERS = Cap("FERLAB_MAX_LAYERS", 1024, "hidden layers")
WIDTH = Cap("FERLAB_MAX_WIDTH", 4096, "units per hidden layer")
WEIGHTS = Cap("FERLAB_MAX_WEIGHTS", 1 << 24, "weights")
GENOME_NODES = Cap("FERLAB_MAX_GENOME_NODES", 100_000, "genome nodes")
GENOME_LINKS = Cap("FERLAB_MAX_GENOME_LINKS", 1_000_000, "genome links")
FILE_BYTES = Cap("FERLAB_MAX_FILE_BYTES", 16 << 20, "bytes of genome text (JSON or XML)")
IMAGE_PIXELS = Cap("FERLAB_MAX_IMAGE_PIXELS", 4096 * 4096, "pixels")
YAML_NODES = Cap("FERLAB_MAX_YAML_NODES", 100_000, "YAML values (aliases expanded)")
MAX_SIDE = 4096  # the largest picture side ferlab paints: resolution, --size, descriptor and suite sizes (fixed)
INT32 = (1 << 31) - 1
POPULATION = Cap("FERLAB_MAX_POPULATION", 1 << 20, "nets held side by side", INT32)
GENERATIONS = Cap("FERLAB_MAX_GENERATIONS", 10_000_000, "generations", INT32)
LOSS_HISTORY = Cap("FERLAB_MAX_LOSS_HISTORY", 1 << 28, "per-step losses kept (steps x seeds)", INT32)
TRIALS = Cap("FERLAB_MAX_TRIALS", 10_000, "trials")

ALL = (
    LAYERS,
    WIDTH,
    WEIGHTS,
    GENOME_NODES,
    GENOME_LINKS,
    FILE_BYTES,
    IMAGE_PIXELS,
    YAML_NODES,
    POPULATION,
    GENERATIONS,
    LOSS_HISTORY,
    TRIALS,
)
