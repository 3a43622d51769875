"""A worker that owns one run: its state lives on the worker's device; it steps, checkpoints, reports.

``RunWorker`` is plain Python (a Tune trial runs one in its own actor);
``run_actor(resources)`` gives the same class as a Ray actor with CPUs and
(fractional) GPUs from the config, and JAX preallocation off when a GPU is shared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ferlab.search.api import Result, Stats, Tabular, run_search
from ferlab.search.checkpoint import load_checkpoint
from ferlab.search.runs import run_tables
from ferlab.workers.plan import RunPlan

NO_PREALLOCATE = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


class RunWorker:
    """Steps one run in slices, checkpointing to ``checkpoint`` at the end of every slice.

    A worker started on an existing checkpoint resumes from it; ``generation``
    is the number of generations done.
    """

    def __init__(self, plan: RunPlan, checkpoint: str | Path):
        self.plan = plan
        self.checkpoint = Path(checkpoint)
        self.state = None
        self.generation = 0
        self.history: list[Stats] = []
        if self.checkpoint.exists():
            template = plan.search.init(plan.key)
            self.state, self.generation, self.history = load_checkpoint(self.checkpoint, template)

    @property
    def done(self) -> bool:
        return self.generation >= self.plan.generations

    def advance(self, n: int) -> list[Stats]:
        """Run up to ``n`` more generations; the new generations' stats (checkpoint written)."""
        p = self.plan
        out = run_search(p.search, p.key, p.generations, checkpoint=self.checkpoint, stop_after=n)
        self.state, self.history = out.state, out.history
        new = out.history[out.resumed_from :]
        self.generation = out.resumed_from + len(new)
        return new

    def next_slice(self, *every: int) -> int:
        """Generations to the next multiple of any positive ``every`` (or to the end)."""
        stops = [self.plan.generations]
        stops += [(self.generation // k + 1) * k for k in every if k > 0]
        return min(stops) - self.generation

    def result(self) -> Result:
        return self.plan.search.result(self.state)

    def tables(self, result: Result) -> dict[str, str]:
        """The run's tables as CSV texts (``ferlab.search.runs.run_tables``)."""
        search = self.plan.search
        extra = search.tables(self.state) if isinstance(search, Tabular) else {}
        return run_tables(result, self.history, extra)


def actor_options(cpus: float = 1, gpus: float = 0) -> dict[str, Any]:
    """Ray ``.options`` for one worker; a shared GPU (``0 < gpus < 1``) turns JAX preallocation off."""
    options: dict[str, Any] = {"num_cpus": cpus, "num_gpus": gpus}
    if 0 < gpus < 1:
        options["runtime_env"] = {"env_vars": dict(NO_PREALLOCATE)}
    return options


def run_actor(cpus: float = 1, gpus: float = 0):
    """``RunWorker`` as a Ray actor class with these resources."""
    import ray

    return ray.remote(RunWorker).options(**actor_options(cpus, gpus))
