"""What a report reads and how it is computed: the columns of its table of scored networks
(one row per net: its group, the image it paints, its metrics), and the report's settings
(``ReportSpec``: metrics, grouping, comparisons, bootstrap, the fit gate)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CSV_NAME = "runs.csv"  # the report's table of every network
REPORT_NAME = "report.md"
LOST = "(lost)"  # the ``net`` of a row that stands for a net a failed run was to train (no metrics)
DETAIL = "image_detail"  # the fine structure of a net's picture (ferlab.metrics.suite), beside each group's metrics
WEIGHTS = "nonzero_weights"  # a net's non-zero weights in its dense form (ferlab.metrics.suite), beside them too
# What each group's median of those columns is called in a report's tables, and its decimals.
CONTEXT = {DETAIL: ("image detail", 3), WEIGHTS: ("weights", 0)}
RUN = "run_id"  # the run a net comes from
# The independent search a net comes from: its run, or for a run that trains its seeds side by side
# (SGD) the seed's own; nets of one search (an archive's members) are one draw of it. A summary's
# ``searches`` counts them beside its ``n`` nets and its intervals resample them. A frame without the
# column takes each run as one search (the cautious reading), and without run ids each net.
SEARCH = "search"
# Where an image comes from: the search that found it, or for a given target the image itself. The
# images one search found are one draw of what that search finds, so a comparison over images
# resamples, and tests over, their sources (``compare``).
SOURCE = "image_source"


@dataclass(frozen=True)
class Comparison:
    """Group ``a`` (the reference) against group ``b`` within column ``by``, paired on ``pair_on``."""

    a: str
    b: str
    by: str | None = None
    pair_on: str | None = "image"


@dataclass(frozen=True)
class ReportSpec:
    """What the report computes: metrics, the grouping column, comparisons, bootstrap settings,
    how many images per group the gallery shows, the fit gate (the MSE at or below which a
    reproducer counts as reproducing its image, ``fit_sections``) and the detail floor (the
    ``image_detail`` below which an image has too little structure to compare, ``fit.too_simple``;
    a study's reproducers draw only images at or above it)."""

    metrics: tuple[str, ...] = ("fer_score",)
    group: str = "regime"
    comparisons: tuple[Comparison, ...] = ()
    resamples: int = 2000
    level: float = 0.95
    seed: int = 0
    gallery: int = 4
    match_on: str | None = "loss"
    fit_gate: float = 0.01
    min_detail: float | None = None  # images with less fine structure (``image_detail``) are left out at the gate

    def __post_init__(self):
        if not self.metrics:
            raise ValueError("analysis.metrics must name at least one metric")
        if self.resamples < 1:
            raise ValueError(f"analysis.resamples must be at least 1, got {self.resamples}")
        if not 0 < self.level < 1:
            raise ValueError(f"analysis.level must be in (0, 1), got {self.level}")
        if self.gallery < 0:
            raise ValueError(f"analysis.gallery must be at least 0, got {self.gallery}")
        if not (np.isfinite(self.fit_gate) and self.fit_gate > 0):
            raise ValueError(f"analysis.fit_gate must be a positive MSE, got {self.fit_gate}")
        floor = self.min_detail
        if floor is not None and not (np.isfinite(floor) and 0 < floor < 0.5):
            raise ValueError(f"analysis.min_detail must be an RMS colour amplitude in (0, 0.5), got {floor}")


RUNG_PREFIX = "rung_"  # ferlab.search.ladder's snapshot names: rung_0.010
