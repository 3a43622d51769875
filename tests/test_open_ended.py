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


@pytest.mark.slow  # about 70 s: two seeds of the bench's own settings at half its evaluations
@pytest.mark.parametrize("seed", [0, 1])
def test_neat_novelty_covers_more_cells_than_random_neat_short(seed):
    """The bench's NEAT novelty against its random-NEAT baseline at about half the bench's 20,000
    evaluations (66 generations of 150), with the bench's defaults (32x32, caps 32/96, tone
    descriptor); the full budget gives 1.61x (seed 0)."""
    oe = bench_module("open_ended")
    evals, size, pop = 9_900, 32, 150
    cfg = oe.neat_settings(population=pop, descriptor="tone")
    novelty = oe.neat_novelty(seed, evals, size, cfg)
    random = oe.random_neat(seed, evals, size, evals // pop, cfg)
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
