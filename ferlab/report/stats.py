"""Statistics over a table of scored networks: per-group means and comparisons of groups.

The input is a pandas DataFrame with one row per scored network (a run may
score several: SGD seeds, an ES run's best, a novelty archive's members) and
columns for its group (``regime``, ``role``...), the image it paints
(``image``, the pairing key), any metrics (``fer_score``...) and optionally
``image_path`` / ``features_path`` PNG files for the gallery.

Statistics, all pure functions of the frame and an explicit bootstrap seed:

- per group and metric, the mean and a percentile bootstrap interval of the
  mean (``bootstrap_ci``) that resamples searches, not nets: the nets of one
  search (an archive's members) are one draw of it, so the interval is the
  spread between searches (``SEARCH``);
- a comparison of group ``a`` with group ``b`` on the same images
  (``compare``): per image the mean of each side (the row's ``n`` and means
  are over the images both groups painted), the mean paired difference
  ``b - a`` with its bootstrap interval over images (over their sources, where
  one search found several: ``SOURCE``), the effect size Cliff's
  delta taken within images (per image, ``P(b > a) - P(b < a)`` over every
  pair of an ``a`` network and a ``b`` network painting it, then the mean
  over images, or over their sources where one search found several: +1
  means every ``b`` network scored above every ``a`` network of its image), and the
  Wilcoxon signed-rank test over the per-image differences (each source's mean
  difference where one search found several images); without a pairing
  key, Cliff's delta over all rows and the Mann-Whitney U test;
- the same comparison at matched fit (``matched``): when both groups have a
  ``match_on`` column (``loss``, the MSE to the image), only the networks whose
  loss lies in the range both groups reach on that image are kept, so that a
  regime is not called less fractured merely because it paints its image less
  well. A scatter plot of each metric against the loss shows the same thing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ferlab.report.spec import CONTEXT, RUN, SEARCH, SOURCE, Comparison, ReportSpec


def bootstrap_ci(
    values, seed: int, resamples: int = 2000, level: float = 0.95, clusters=None
) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean and its percentile bootstrap interval (NaN when empty; one
    value has a mean but no interval: resampling it gives a zero-width band that looks certain).

    With ``clusters`` (a label per value) a resample draws whole clusters with replacement and
    takes the mean of their values (the cluster bootstrap): values of one cluster are one draw,
    so one cluster, however many values, has no interval either. The draws follow the order in
    which clusters first appear, whatever their labels. All ``resamples`` resamples are
    drawn at once from ``numpy.random.default_rng(seed)``; without clusters each value is its own.
    """
    x = np.asarray(values, dtype=float)
    finite = np.isfinite(x)
    x = x[finite]
    if clusters is not None:
        # clusters numbered in order of first appearance, not by label: run ids are random, and
        # sorting them would make the draws, so the interval, differ between reruns of one study
        which, _ = pd.factorize(np.asarray(clusters, dtype=str)[finite])
        if which.max(initial=-1) < 1:  # one cluster or none
            return (float(x.mean()) if x.size else np.nan, np.nan, np.nan)
        sums, sizes = np.bincount(which, weights=x), np.bincount(which).astype(float)
        rng = np.random.default_rng(seed)
        drawn = rng.integers(0, sums.size, size=(resamples, sums.size))
        means = sums[drawn].sum(axis=1) / sizes[drawn].sum(axis=1)
        tail = (1 - level) / 2 * 100
        low, high = np.percentile(means, [tail, 100 - tail])
        return float(x.mean()), float(low), float(high)
    if x.size < 2:
        return (float(x[0]) if x.size else np.nan, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(x.mean()), float(low), float(high)


def cliffs_delta(a, b) -> float:
    """``P(b > a) - P(b < a)`` over all pairs (NaN when a side is empty)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size == 0 or b.size == 0:
        return np.nan
    sign = np.sign(b[None, :] - a[:, None])
    return float(sign.mean())


def summarize(df: pd.DataFrame, analysis: ReportSpec) -> pd.DataFrame:
    """One row per group: ``n``, its scored nets (a finite first metric; lost and dead nets are counted
    by ``gate_counts``); where the rows name their search or run, ``searches``: how many independent
    searches those nets come from (``SEARCH``: an archive's nets share one search, so many nets of one
    run are not many independent draws); per metric, ``<m>``, ``<m>_low``, ``<m>_high`` over those
    same nets, the interval resampling their searches (a dead net's loss does not join its group's
    mean loss); for each ``CONTEXT`` column the rows hold (``image_detail``, ``nonzero_weights``), its
    median over those nets (``<column>_median``), read beside the metrics: a picture with little
    structure has little to fracture, and nets of very different sizes differ in more than their
    search. Its columns are there even with no rows."""
    rows = []
    first = analysis.metrics[0]
    clustered = SEARCH in df or RUN in df
    for name, part in df.groupby(analysis.group, sort=True):
        part = part[finite(part, first)]
        row = {analysis.group: name, "n": len(part)}
        clusters = searches_of(part) if clustered else None
        if clustered:
            row["searches"] = int(pd.Series(clusters).nunique())
        for i, metric in enumerate(analysis.metrics):
            values = part[metric] if metric in part else np.full(len(part), np.nan)  # one per cluster label
            mean, low, high = bootstrap_ci(
                values, seed_for(analysis.seed, name, i), analysis.resamples, analysis.level, clusters
            )
            row |= {metric: mean, f"{metric}_low": low, f"{metric}_high": high}
        context = [c for c in CONTEXT if c in df]
        row |= {f"{c}_median": _median(part[c]) for c in context}
        rows.append(row)
    columns = [analysis.group, "n", *(["searches"] if clustered else [])]
    columns += [f"{m}{end}" for m in analysis.metrics for end in ("", "_low", "_high")]
    return pd.DataFrame(rows, columns=columns + [f"{c}_median" for c in CONTEXT if c in df])


def searches_of(frame: pd.DataFrame) -> np.ndarray:
    """The search of each row (``SEARCH``; else its run; a row that names neither is its own)."""
    column = SEARCH if SEARCH in frame else RUN
    named = frame[column].fillna("").astype(str).to_numpy()
    own = np.array([f"\0row {i}" for i in range(len(frame))], dtype=object)
    return np.where(named != "", named, own).astype(str)


def run_count(frame: pd.DataFrame) -> int:
    """How many distinct runs the rows of ``frame`` come from (a row without a run id names none)."""
    return int(frame[RUN].replace("", np.nan).nunique())


def _median(values) -> float:
    """The median of the finite ``values`` (NaN when there are none)."""
    x = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(float)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else np.nan


def finite(df: pd.DataFrame, column: str) -> pd.Series:
    """Which rows hold a finite ``column`` (none where there is no such column)."""
    if column not in df:
        return pd.Series(False, index=df.index)
    return pd.Series(np.isfinite(pd.to_numeric(df[column], errors="coerce").to_numpy(float)), index=df.index)


def compare(df: pd.DataFrame, comparison: Comparison, metric: str, analysis: ReportSpec) -> dict:
    """Statistics of ``b`` against ``a`` on ``metric`` (see the module docstring)."""
    by = comparison.by or analysis.group
    rows = df[np.isfinite(df[metric].astype(float))] if metric in df else df.iloc[:0]
    a = rows[rows[by] == comparison.a]
    b = rows[rows[by] == comparison.b]
    out = {
        "metric": metric,
        "by": by,
        "a": comparison.a,
        "b": comparison.b,
        "n_a": len(a),
        "n_b": len(b),
        "mean_a": _mean(a, metric),
        "mean_b": _mean(b, metric),
    }
    key = comparison.pair_on
    if key is None:
        out |= {
            "pairs": None,
            "sources": None,
            "diff": out["mean_b"] - out["mean_a"],
            "diff_low": np.nan,
            "diff_high": np.nan,
            "delta": cliffs_delta(a[metric], b[metric]),
            "test": "mannwhitneyu",
            "p": _mannwhitney(a[metric], b[metric]),
        }
        return out
    images = sorted(set(a[key]) & set(b[key]), key=str)
    ga, gb = a.groupby(key)[metric], b.groupby(key)[metric]
    diffs = np.array([gb.get_group(i).mean() - ga.get_group(i).mean() for i in images])
    # n and means over the shared images only, as the difference is (b - a = mean b - mean a): none
    # when no image is shared, rather than two means of different images side by side
    out |= {
        "n_a": int(a[key].isin(images).sum()),
        "n_b": int(b[key].isin(images).sum()),
        "mean_a": float(np.mean([ga.get_group(i).mean() for i in images])) if images else np.nan,
        "mean_b": float(np.mean([gb.get_group(i).mean() for i in images])) if images else np.nan,
    }
    deltas = np.array([cliffs_delta(ga.get_group(i), gb.get_group(i)) for i in images])
    sources = _sources(pd.concat([a, b]), key, images)
    shared = sources is not None and len(set(sources)) < len(images)  # some search found several images
    mean, low, high = bootstrap_ci(
        diffs,
        seed_for(analysis.seed, f"{comparison.a}|{comparison.b}", metric),
        analysis.resamples,
        analysis.level,
        sources if shared else None,
    )
    units = pd.Series(diffs).groupby(sources, sort=True).mean().to_numpy() if shared else diffs
    # the effect size stands on the same units as the difference and the test: each image's delta,
    # averaged within its search where one search found several (pooling pairs let an image with
    # many nets, or a search with many images, outweigh the rest)
    delta_units = pd.Series(deltas).groupby(sources, sort=True).mean().to_numpy() if shared else deltas
    out |= {
        "pairs": len(images),
        "sources": len(units),
        "diff": mean,
        "diff_low": low,
        "diff_high": high,
        "delta": float(delta_units.mean()) if images else np.nan,
        "test": "wilcoxon",
        "p": _wilcoxon(units),
    }
    return out


def _sources(rows: pd.DataFrame, key: str, images: list) -> np.ndarray | None:
    """Each of ``images``' source (``SOURCE``: the search that found it, else the image), or None
    when the rows do not say."""
    if SOURCE not in rows or key != "image":
        return None
    named = rows.assign(_s=rows[SOURCE].fillna("").astype(str)).groupby(key)["_s"].first()
    return np.array([named[i] or f"\0image {i}" for i in images], dtype=str)


def comparisons(df: pd.DataFrame, analysis: ReportSpec) -> pd.DataFrame:
    """Every comparison on every metric that both of its groups have, one row each
    (``loss`` exists for reproducers only, so discoverer-versus-reproducer has no loss row)."""
    rows = [compare(df, c, m, analysis) for c in analysis.comparisons for m in analysis.metrics]
    return pd.DataFrame([r for r in rows if r["n_a"] and r["n_b"]], columns=list(rows[0]) if rows else None)


def matched(df: pd.DataFrame, comparison: Comparison, column: str, analysis: ReportSpec) -> pd.DataFrame:
    """The rows of both groups whose ``column`` lies in the range both groups reach, per image
    (``pair_on``; over all rows when unpaired). Rows without a value are dropped."""
    by = comparison.by or analysis.group
    rows = df[df[by].isin([comparison.a, comparison.b]) & np.isfinite(df[column].astype(float))]
    key = comparison.pair_on
    groups = rows.groupby(key) if key is not None else [(None, rows)]
    keep = []
    for _, part in groups:
        ranges = part.groupby(by)[column].agg(["min", "max"])
        if len(ranges) < 2:
            continue
        low, high = ranges["min"].max(), ranges["max"].min()
        keep.append(part[(part[column] >= low) & (part[column] <= high)])
    return pd.concat(keep) if keep else rows.iloc[:0]


def matched_comparisons(df: pd.DataFrame, analysis: ReportSpec) -> pd.DataFrame:
    """Every comparison on every metric (other than the matched column), at matched ``match_on``."""
    column = analysis.match_on
    if column is None or column not in df:
        return pd.DataFrame()
    rows = [
        compare(matched(df, c, column, analysis), c, m, analysis)
        for c in analysis.comparisons
        for m in analysis.metrics
        if m != column
    ]
    return pd.DataFrame([r for r in rows if r["n_a"] and r["n_b"]], columns=list(rows[0]) if rows else None)


def _mean(part: pd.DataFrame, metric: str) -> float:
    return float(part[metric].mean()) if len(part) else np.nan


def _wilcoxon(diffs: np.ndarray) -> float:
    from scipy.stats import wilcoxon

    if diffs.size < 2 or not np.any(diffs != 0):
        return np.nan
    return float(wilcoxon(diffs).pvalue)


def _mannwhitney(a, b) -> float:
    from scipy.stats import mannwhitneyu

    if len(a) == 0 or len(b) == 0:
        return np.nan
    return float(mannwhitneyu(b, a, alternative="two-sided").pvalue)


def seed_for(seed: int, *parts) -> int:
    """A bootstrap seed per cell that does not depend on which other cells exist."""
    import zlib

    return int(zlib.crc32(repr((seed, *map(str, parts))).encode()))


def bootstrap_median(values, seed: int, resamples: int = 2000, level: float = 0.95) -> tuple[float, float, float]:
    """``(median, low, high)``: the median and its percentile bootstrap interval (NaN when empty; one
    value has no interval, as in ``bootstrap_ci``)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return (float(x[0]) if x.size else np.nan, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    medians = np.median(x[rng.integers(0, x.size, size=(resamples, x.size))], axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(medians, [tail, 100 - tail])
    return float(np.median(x)), float(low), float(high)
