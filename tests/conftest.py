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
