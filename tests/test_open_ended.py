"""bench/open_ended.py's short version: NEAT novelty search against random NEAT genomes at equal evaluations."""

import numpy as np
import pytest

from helpers import bench_module


@pytest.mark.slow  # 10 s; the bench's own baseline, not the package
def test_random_neat_baseline_mutates_as_often_as_the_search_had_generations():
    oe = bench_module("open_ended")
    cfg = oe.neat_settings(population=8, max_nodes=12, max_links=24)
    found = oe.random_neat(0, 20, 8, mutations=6, cfg=cfg)
    assert found.evaluations == 20 and found.nodes.shape == (20,)
    assert found.nodes.max() > 7 and found.covered.sum() >= 2  # add-node mutations happened; several cells


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason=(
        "yardstick not met: these settings measured 0.74x (seed 0) and 0.62x (seed 1); 1,200 evaluations at "
        "population 48: 0.78x, 0.85x with elitism 0, 0.96x with elitism 0 and rgb descriptors; "
        "20,000 at 32x32: 1.08x (seed 0), 0.96x (seed 1)"
    ),
)
def test_neat_novelty_covers_more_cells_than_random_neat_short():
    oe = bench_module("open_ended")
    evals, size, pop = 480, 16, 24
    cfg = oe.neat_settings(population=pop, max_nodes=16, max_links=40)
    novelty = oe.neat_novelty(0, evals, size, cfg)
    random = oe.random_neat(0, evals, size, evals // pop, cfg)
    assert novelty.evaluations == random.evaluations == evals
    assert np.sum(novelty.covered) > 1.2 * np.sum(random.covered)


def test_cells_by_axis_count_each_bin_of_each_axis():
    oe = bench_module("open_ended")
    covered = np.zeros(512, bool)
    covered[[(7 * 8 + 0) * 8 + 3, (7 * 8 + 5) * 8 + 3, (2 * 8 + 5) * 8 + 0]] = True  # (symmetry, complexity, colour)
    counts = oe.by_axis(covered)
    assert counts["symmetry"] == [0, 0, 1, 0, 0, 0, 0, 2]
    assert counts["complexity"] == [1, 0, 0, 0, 0, 2, 0, 0]
    assert counts["colourfulness"] == [1, 0, 0, 2, 0, 0, 0, 0]
