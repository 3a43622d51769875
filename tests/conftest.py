"""Shared fixtures: the Picbreeder reference data lives beside the repo, never inside it."""

import os
from pathlib import Path

import pytest

from ferlab.compile_cache import enable

# The tests compile the same programs many times over (fresh closures per run); JAX's persistent
# cache turns the repeats into loads.
enable()

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

# Ray worker processes run the toy regime of ``helpers`` and the planners that tests define, so they
# import from tests/ too (Ray passes the driver's environment to local workers).
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)

PICBREEDER = Path(os.environ.get("FERLAB_PICBREEDER_DATA", REPO.parent / "shared" / "data" / "picbreeder"))


@pytest.fixture(scope="session")
def picbreeder_dir() -> Path:
    """../shared/data/picbreeder, or skip: the tests that compare against the paper need it."""
    if not (PICBREEDER / "README.md").is_file():
        pytest.skip(
            f"Picbreeder reference data not found at {PICBREEDER} "
            "(set FERLAB_PICBREEDER_DATA or put shared/ beside the repo)"
        )
    return PICBREEDER


# The longest files go first (longest processing time first; pyproject turns off xdist's own
# reordering by test count): with a file per worker they start early, and the short files fill the
# end of the run instead of one worker finishing a long file alone. Longest under two workers:
# the Ray end-to-end files, then NEAT, hybrid NEAT, the regime contract, SGD and novelty.
FIRST = (
    "test_study.py",
    "test_sweep.py",
    "test_workers_islands.py",
    "test_neat.py",
    "test_neat_sgd.py",
    "test_regimes.py",
    "test_sgd.py",
    "test_novelty.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FIRST)))  # stable: each file keeps its order
