"""A study's report: statistics over a table of scored networks, plots, Markdown and CSV.

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

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

CSV_NAME = "runs.csv"
REPORT_NAME = "report.md"
LOST = "(lost)"  # the ``net`` of a row that stands for a net a failed run was to train (no metrics)
COMPLEXITY = "image_complexity"  # a net's picture's complexity (ferlab.metrics.suite), beside each group's metrics
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
COMPLEXITY_NOTE = (
    "`image complexity`: the median over the same nets of log10 of the share of each picture's spectral "
    "energy above 4 cycles per image (`ferlab.metrics.behaviour`): smooth gradients and single arcs sit near "
    "-3 and below, the Picbreeder skull near -0.3. A simple picture has little to fracture, so a low "
    "fer_score there is not a unified factored representation: read groups side by side only where their "
    "complexity is alike, or in the comparisons, which pair nets painting the same image."
)
SEARCHES_NOTE = (
    "`searches`: the independent searches those nets come from: a run, or each seed of a run that trains "
    "its seeds side by side (SGD). An archive's nets share one search, so the intervals resample searches, "
    "not nets: they show the spread between searches, and a group whose nets come from one search has none "
    "(`[one search]`)."
)


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
    how many images per group the gallery shows, and the fit gate (the MSE at or below which a
    reproducer counts as reproducing its image, ``fit_sections``)."""

    metrics: tuple[str, ...] = ("fer_score",)
    group: str = "regime"
    comparisons: tuple[Comparison, ...] = ()
    resamples: int = 2000
    level: float = 0.95
    seed: int = 0
    gallery: int = 4
    match_on: str | None = "loss"
    fit_gate: float = 0.01

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


# ------------------------------------------------------------------ statistics
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
    mean loss); where the rows hold ``image_complexity``, its median over those nets
    (``image_complexity_median``), read beside the metrics: a simple picture has little to
    fracture. Its columns are there even with no rows."""
    rows = []
    first = analysis.metrics[0]
    clustered = SEARCH in df or RUN in df
    for name, part in df.groupby(analysis.group, sort=True):
        part = part[_finite(part, first)]
        row = {analysis.group: name, "n": len(part)}
        clusters = searches_of(part) if clustered else None
        if clustered:
            row["searches"] = int(pd.Series(clusters).nunique())
        for i, metric in enumerate(analysis.metrics):
            values = part[metric] if metric in part else np.full(len(part), np.nan)  # one per cluster label
            mean, low, high = bootstrap_ci(
                values, _seed(analysis.seed, name, i), analysis.resamples, analysis.level, clusters
            )
            row |= {metric: mean, f"{metric}_low": low, f"{metric}_high": high}
        if COMPLEXITY in df:
            row[f"{COMPLEXITY}_median"] = _median(part[COMPLEXITY])
        rows.append(row)
    columns = [analysis.group, "n", *(["searches"] if clustered else [])]
    columns += [f"{m}{end}" for m in analysis.metrics for end in ("", "_low", "_high")]
    return pd.DataFrame(rows, columns=columns + ([f"{COMPLEXITY}_median"] if COMPLEXITY in df else []))


def searches_of(frame: pd.DataFrame) -> np.ndarray:
    """The search of each row (``SEARCH``; else its run; a row that names neither is its own)."""
    column = SEARCH if SEARCH in frame else RUN
    named = frame[column].fillna("").astype(str).to_numpy()
    own = np.array([f"\0row {i}" for i in range(len(frame))], dtype=object)
    return np.where(named != "", named, own).astype(str)


def _runs(frame: pd.DataFrame) -> int:
    """How many distinct runs the rows of ``frame`` come from (a row without a run id names none)."""
    return int(frame[RUN].replace("", np.nan).nunique())


def _median(values) -> float:
    """The median of the finite ``values`` (NaN when there are none)."""
    x = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(float)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else np.nan


def _finite(df: pd.DataFrame, column: str) -> pd.Series:
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
        _seed(analysis.seed, f"{comparison.a}|{comparison.b}", metric),
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


def uncompared(table: pd.DataFrame, analysis: ReportSpec) -> str:
    """A sentence naming the study's comparisons that have no row in ``table`` (one side has no
    scored net there, or the two share no image), so that none drops out silently; empty if none."""
    done = set(zip(table["a"], table["b"])) if not table.empty else set()
    missing = [f"{c.a} vs {c.b}" for c in analysis.comparisons if (c.a, c.b) not in done]
    if not missing:
        return ""
    return f"Not compared here (one side has no scored net, or no image both painted): {', '.join(missing)}."


def _compared_lines(table: pd.DataFrame, analysis: ReportSpec) -> list[str]:
    """Markdown lines of a comparisons table (if it has rows), then its ``uncompared`` sentence (if any)."""
    note = uncompared(table, analysis)
    return ([markdown_table(format_comparisons(table)), ""] if not table.empty else []) + ([note, ""] if note else [])


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


def _seed(seed: int, *parts) -> int:
    """A bootstrap seed per cell that does not depend on which other cells exist."""
    import zlib

    return int(zlib.crc32(repr((seed, *map(str, parts))).encode()))


# ------------------------------------------------------------------ equal fit
RUNG_PREFIX = "rung_"  # ferlab.search.ladder's snapshot names: rung_0.010


def rungs_of(df: pd.DataFrame) -> pd.Series:
    """The rung each row's net stands for (NaN for final nets and rows without a ``net``)."""
    if "net" not in df:
        return pd.Series(np.nan, index=df.index)
    names = df["net"].astype(str)
    values = pd.to_numeric(names.str.slice(len(RUNG_PREFIX)), errors="coerce")
    return values.where(names.str.startswith(RUNG_PREFIX))


def split_rungs(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(final nets, ladder snapshots)``; the snapshots gain a ``rung`` column."""
    rung = rungs_of(df)
    return df[rung.isna()], df[rung.notna()].assign(rung=rung[rung.notna()])


def _loss_column(analysis: ReportSpec) -> str:
    return analysis.match_on or "loss"


def _has_loss(df: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(df[column], errors="coerce").notna() if column in df else pd.Series(False, index=df.index)


def gate_counts(df: pd.DataFrame, analysis: ReportSpec) -> pd.DataFrame:
    """Per group, of its final nets: ``attempted`` (every row, a failed run's or a dead net's
    too), ``scored`` (a finite first metric), ``passed`` (scored, and at or below the fit gate
    when the group has a loss: discoverers have none and pass as they are), ``lost``
    (attempted but not scored). Nothing disappears silently."""
    metric, column = analysis.metrics[0], _loss_column(analysis)
    finals = split_rungs(df)[0]
    rows = []
    for name, part in finals.groupby(analysis.group, sort=True):
        scored = _finite(part, metric)
        with_loss = _has_loss(part, column)
        loss = pd.to_numeric(part[column], errors="coerce") if column in part else None
        fit = (loss <= analysis.fit_gate) if with_loss.any() else pd.Series(True, index=part.index)
        rows.append(
            {
                analysis.group: name,
                "attempted": len(part),
                "scored": int(scored.sum()),
                "passed": int((scored & fit).sum()),
                "lost": int(len(part) - scored.sum()),
            }
        )
    return pd.DataFrame(rows, columns=[analysis.group, "attempted", "scored", "passed", "lost"])


def at_fit(df: pd.DataFrame, analysis: ReportSpec) -> pd.DataFrame:
    """The nets that count at equal fit: every discoverer (a group without a loss), and each reproducer
    at the gate (a failed run or dead net, without a loss, does not count):
    its final nets at or below ``fit_gate``, or, for a run none of whose final nets passes (scored and
    within the gate), its best (lowest-loss) scored ladder snapshot at or below the gate."""
    column = _loss_column(analysis)
    finals, rungs = split_rungs(df)
    if column not in df:
        return finals
    loss = pd.to_numeric(finals[column], errors="coerce")
    fitted = set(finals.loc[loss.notna(), analysis.group])  # groups with a loss are reproducers
    keep = [finals[~finals[analysis.group].isin(fitted) | (loss <= analysis.fit_gate)]]
    passed = (loss <= analysis.fit_gate) & _finite(finals, analysis.metrics[0])  # as ``gate_counts``'s
    passed_runs = set(finals.loc[passed, "run_id"]) if "run_id" in finals else set()
    if not rungs.empty and "run_id" in rungs:
        gated = rungs[pd.to_numeric(rungs[column], errors="coerce") <= analysis.fit_gate]
        gated = gated[~gated["run_id"].isin(passed_runs) & _finite(gated, analysis.metrics[0])]
        keep.append(gated.sort_values(column, kind="stable").drop_duplicates("run_id").drop(columns="rung"))
    return pd.concat(keep)


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


def fer_by_rung(df: pd.DataFrame, metric: str, analysis: ReportSpec) -> pd.DataFrame:
    """Per group and rung of the ladder snapshots: ``n`` nets, ``images``, and the median of
    ``metric`` with its bootstrap band (``low``, ``high``)."""
    rungs = split_rungs(df)[1]
    rows = []
    if metric in rungs:
        for (name, rung), part in rungs.groupby([analysis.group, "rung"], sort=True):
            part = part[_finite(part, metric)]  # n: what the median stands on (a dead snapshot has no score)
            median, low, high = bootstrap_median(
                part[metric], _seed(analysis.seed, name, rung, metric), analysis.resamples, analysis.level
            )
            rows.append(
                {
                    analysis.group: name,
                    "rung": rung,
                    "n": len(part),
                    "images": part["image"].nunique() if "image" in part else np.nan,
                    "median": median,
                    "low": low,
                    "high": high,
                }
            )
    return pd.DataFrame(rows, columns=[analysis.group, "rung", "n", "images", "median", "low", "high"])


def rung_comparisons(df: pd.DataFrame, analysis: ReportSpec) -> pd.DataFrame:
    """The study's comparisons (those whose two groups both have ladder snapshots; all pairs of
    such groups when none is) at every rung both reach on the same images, on every metric other
    than the loss: ``compare`` on the snapshots of that rung, with a ``rung`` column."""
    rungs = split_rungs(df)[1]
    if rungs.empty:
        return pd.DataFrame()
    names = sorted(rungs[analysis.group].unique(), key=str)
    pairs = [
        c for c in analysis.comparisons if (c.by or analysis.group) == analysis.group and c.a in names and c.b in names
    ]
    if not pairs:
        pairs = [Comparison(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    rows = []
    for rung, part in rungs.groupby("rung", sort=True):
        for c in pairs:
            for m in analysis.metrics:
                if m == _loss_column(analysis) or m not in part:
                    continue
                row = compare(part, c, m, analysis)
                if row["n_a"] and row["n_b"] and (row["pairs"] is None or row["pairs"] > 0):
                    rows.append({"rung": rung, **row})
    return pd.DataFrame(rows)


def rung_plot(curves: pd.DataFrame, metric: str, group: str, colours: dict | None = None) -> bytes:
    """PNG: per group the median ``metric`` at each rung with its bootstrap band, against the
    rung's loss (log, decreasing to the right: better fit to the right)."""
    from ferlab.figures import figure_png, subplots

    colours = colours or palette(curves[group])
    fig, ((ax,),) = subplots(1, 1, 4.8, 3.4, dpi=DPI)
    for name in sorted(curves[group].unique(), key=str):
        part = curves[curves[group] == name].sort_values("rung", ascending=False)
        ax.plot(part["rung"], part["median"], marker="o", ms=3, label=str(name), color=colours[name])
        ax.fill_between(part["rung"], part["low"], part["high"], alpha=0.2, color=colours[name])
    ax.set_xscale("log")
    rungs = sorted(curves["rung"].unique())
    ax.set_xticks(rungs, [f"{r:g}" for r in rungs], rotation=45, fontsize=7)
    ax.minorticks_off()
    ax.invert_xaxis()
    ax.set_xlabel("loss rung (MSE, log; better fit to the right)")
    ax.set_ylabel(f"{metric} (median)")
    ax.set_title(f"{metric} against fit")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure_png(fig, tight=True)


def with_counts(summary: pd.DataFrame, counts: pd.DataFrame, group: str) -> pd.DataFrame:
    """A summary table with the group's attempted / scored / passed / lost counts as its last columns."""
    names = ["attempted", "scored", "passed", "lost"]
    out = summary.astype({group: counts[group].dtype}).merge(counts, on=group, how="outer")
    for column in ("n", "searches"):
        if column in out:
            out[column] = out[column].fillna(0).astype(int)
    out[names] = out[names].fillna(0).astype(int)
    return out[[c for c in out.columns if c not in names] + names]


def counted_table(summary: pd.DataFrame, counts: pd.DataFrame, analysis: ReportSpec, empty: str) -> pd.DataFrame:
    """``summary`` as text cells with its groups' counts, a group whose ``n`` is 0 reading ``empty``
    in every metric's cell (``none passed`` at the fit gate) rather than ``n/a``."""
    table = with_counts(format_summary(summary, analysis), counts, analysis.group)
    table.loc[table["n"] == 0, list(analysis.metrics)] = empty
    return table


def fit_sections(df: pd.DataFrame, analysis: ReportSpec, folder: Path) -> tuple[list[str], list[Path], dict]:
    """The report at equal fit: ``(Markdown lines, files written, tables)``.

    The headline: results of the nets that count at the fit gate (``at_fit``) with per-group
    counts (``gate_counts``), and comparisons there; FER against the loss ladder (one curve per
    group) and comparisons of groups at each rung they share. ``write_report`` follows it with
    the unmatched results of every final net.
    """
    from ferlab.files import write_bytes, write_text

    counts = gate_counts(df, analysis)
    finals = split_rungs(df)[0]
    gated = at_fit(df, analysis)
    matched_summary = with_counts(summarize(gated, analysis), counts, analysis.group)
    unmatched_summary = with_counts(summarize(finals, analysis), counts, analysis.group)
    gate = f"{analysis.fit_gate:g}"
    headline = counted_table(matched_summary, counts, analysis, "none passed")
    lines = [
        f"## Results at the fit gate (MSE <= {gate})",
        "",
        f"The headline: discoverers, and reproducers only where they reproduce their image (MSE to it at or "
        f"below {gate}), each at its final nets that pass or else its best ladder snapshot that does. "
        "`attempted`: final nets the study asked for (failed runs and dead nets included); `scored`: with FER "
        "metrics; `passed`: scored and within the gate (discoverers have no loss and pass); `lost`: attempted, "
        "not scored; `n`: the nets that count (a run whose final nets all miss the gate counts through its "
        "best snapshot within it, if any). Cells: mean [bootstrap interval] over them. " + SEARCHES_NOTE,
        "",
        markdown_table(headline),
        "",
        *([COMPLEXITY_NOTE, ""] if COMPLEXITY in df else []),
    ]
    at_gate = comparisons(gated, analysis)
    if analysis.comparisons:
        lines += [f"### Comparisons at the fit gate (MSE <= {gate})", "", *_compared_lines(at_gate, analysis)]
    files = [
        write_text(folder / "summary_at_fit.csv", matched_summary.to_csv(index=False)),
        write_text(folder / "summary_unmatched.csv", unmatched_summary.to_csv(index=False)),
        write_text(folder / "comparisons_at_fit.csv", at_gate.to_csv(index=False)),
    ]
    by_rung = rung_comparisons(df, analysis)
    tables = {
        "counts": counts,
        "at_fit": matched_summary,
        "unmatched": unmatched_summary,
        "comparisons_at_fit": at_gate,
        "rung_comparisons": by_rung,
    }
    for metric in analysis.metrics:
        if metric == _loss_column(analysis):
            continue
        curves = fer_by_rung(df, metric, analysis)
        tables[f"{metric}_by_rung"] = curves
        if curves["median"].notna().any():
            files.append(write_text(folder / f"{metric}_by_rung.csv", curves.to_csv(index=False)))
            plot = rung_plot(curves, metric, analysis.group, palette(df[analysis.group]))
            path = write_bytes(folder / f"{metric}_vs_rung.png", plot)
            files.append(path)
            lines += [
                f"## {metric} against fit (loss ladder)",
                "",
                "Per group, the median over ladder snapshots at each rung (a run's best net the first time its "
                "loss reached the rung) with its bootstrap band.",
                "",
                f"![{metric} against fit]({path.name})",
                "",
            ]
    if not by_rung.empty:
        files.append(write_text(folder / "comparisons_by_rung.csv", by_rung.to_csv(index=False)))
        table = format_comparisons(by_rung)
        table.insert(0, "rung", [f"{r:g}" for r in by_rung["rung"]])
        lines += [
            "## Comparisons at each shared rung",
            "",
            "Groups compared on their snapshots of the same rung on the same images: equal fit by construction.",
            "",
            markdown_table(table),
            "",
        ]
    return lines, files, tables


# ------------------------------------------------------------------ tables
def format_summary(summary: pd.DataFrame, analysis: ReportSpec, digits: int = 3) -> pd.DataFrame:
    """The summary as text cells ``mean [low, high]``."""
    out = summary[[analysis.group, "n", *(["searches"] if "searches" in summary else [])]].copy()
    for m in analysis.metrics:
        out[m] = [
            _interval(r[m], r[f"{m}_low"], r[f"{m}_high"], digits, one_search=r["n"] > 1 and r.get("searches") == 1)
            for _, r in summary.iterrows()
        ]
    if f"{COMPLEXITY}_median" in summary:
        out["image complexity"] = [_num(v, 2) for v in summary[f"{COMPLEXITY}_median"]]
    return out


def format_comparisons(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    if table.empty:
        return table
    return pd.DataFrame(
        {
            "metric": table["metric"],
            "a vs b": [f"{r.a} vs {r.b}" for r in table.itertuples()],
            "n (a, b)": [f"{r.n_a}, {r.n_b}" for r in table.itertuples()],
            "images": [_images(r) for r in table.itertuples()],
            "mean a": [_num(v, digits) for v in table["mean_a"]],
            "mean b": [_num(v, digits) for v in table["mean_b"]],
            "b - a": [_interval(r.diff, r.diff_low, r.diff_high, digits, _one_source(r)) for r in table.itertuples()],
            "Cliff's delta": [_num(v, 2) for v in table["delta"]],
            "test": table["test"],
            "p": [_num(v, 3) for v in table["p"]],
        }
    )


def _sources_of(row) -> int | None:
    """How many searches a paired comparison's images come from (None when unpaired or unsaid)."""
    sources = getattr(row, "sources", None)
    return None if sources is None or pd.isna(sources) else int(sources)


def _images(row) -> str:
    """A comparison's image count, and where one search found several of them, how many searches
    they come from (``4 (3 searches)``): the interval and the test stand on those."""
    if row.pairs is None or pd.isna(row.pairs):
        return "-"
    sources = _sources_of(row)
    if sources is None or sources >= int(row.pairs):
        return str(int(row.pairs))
    return f"{int(row.pairs)} ({sources} {'search' if sources == 1 else 'searches'})"


def _one_source(row) -> bool:
    """Whether a comparison's several images all come from one search (no interval: one draw)."""
    return _sources_of(row) == 1 and int(row.pairs) > 1


def markdown_table(table: pd.DataFrame) -> str:
    """A DataFrame as a GitHub Markdown table (no extra dependency)."""
    cols = [str(c) for c in table.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def _num(v, digits: int) -> str:
    return "n/a" if v is None or not np.isfinite(float(v)) else f"{float(v):.{digits}f}"


def _interval(mean, low, high, digits: int, one_search: bool = False) -> str:
    """``mean [low, high]``; with no interval, why: one value, or (``one_search``) nets of one search."""
    if not np.isfinite(float(mean)):
        return "n/a"
    if not np.isfinite(float(low)):  # a single value, or one search: no interval to give
        return f"{_num(mean, digits)} [{'one search' if one_search else 'one value'}]"
    return f"{_num(mean, digits)} [{_num(low, digits)}, {_num(high, digits)}]"


# ------------------------------------------------------------------ plots
DPI = 110


def palette(groups) -> dict:
    """A colour per group, the same in every plot of a report (matplotlib's cycle, groups sorted)."""
    return {name: f"C{i % 10}" for i, name in enumerate(sorted(pd.unique(pd.Series(groups)), key=str))}


def metric_plot(
    df: pd.DataFrame, metric: str, group: str, seed: int = 0, colours: dict | None = None, gate=None
) -> bytes:
    """PNG: a box per group with every network as a jittered point. With ``gate``, ``(column,
    limit)``, a net whose ``column`` lies above ``limit`` (a reproducer that misses the fit gate) is
    drawn hollow and the title says so: such a net paints its image too poorly to weigh its FER."""
    from ferlab.figures import figure_png, subplots

    colours = colours or palette(df[group])
    names = sorted(df[group].unique(), key=str)
    rows = [df[(df[group] == n) & np.isfinite(df[metric].astype(float))] for n in names]
    fig, ((ax,),) = subplots(1, 1, 1.3 + 1.1 * len(names), 3.2, dpi=DPI)
    boxes = [r[metric].astype(float) if len(r) else [np.nan] for r in rows]
    ax.boxplot(boxes, widths=0.5, showfliers=False, medianprops={"color": "black"})
    ticks = [f"{n} ({len(r)})" for n, r in zip(names, rows)]  # how many nets each box stands on
    ax.set_xticks(range(1, len(names) + 1), ticks, rotation=20, ha="right")
    rng = np.random.default_rng(seed)
    missed_any = False
    for i, (name, r) in enumerate(zip(names, rows), start=1):
        x, y = i + rng.uniform(-0.15, 0.15, len(r)), r[metric].astype(float).to_numpy()
        missed = _misses(r, gate)
        missed_any |= bool(missed.any())
        ax.scatter(x[~missed], y[~missed], s=12, alpha=0.7, zorder=3, color=colours[name])
        ax.scatter(x[missed], y[missed], s=14, zorder=3, facecolors="none", edgecolors=colours[name])
    ax.set_ylabel(metric)
    title = f"{metric} by {group} (nets), every final net"
    ax.set_title(title + (f"\nhollow: {gate[0]} above the fit gate {gate[1]:g}" if missed_any else ""), fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return figure_png(fig, tight=True)


def _misses(rows: pd.DataFrame, gate) -> np.ndarray:
    """Which ``rows`` hold a ``gate[0]`` above ``gate[1]`` (none without a gate or the column)."""
    if gate is None or gate[0] not in rows:
        return np.zeros(len(rows), bool)
    value = pd.to_numeric(rows[gate[0]], errors="coerce").to_numpy(float)
    return np.isfinite(value) & (value > gate[1])


def loss_plot(
    df: pd.DataFrame, metric: str, group: str, column: str, colours: dict | None = None, gate: float | None = None
) -> bytes:
    """PNG: ``metric`` against ``column`` (log scale), one colour per group: fit versus fracture;
    ``gate``, the fit gate, a dashed line (nets to its right miss it)."""
    from ferlab.figures import figure_png, subplots

    colours = colours or palette(df[group])
    rows = df[np.isfinite(df[column].astype(float)) & np.isfinite(df[metric].astype(float))]
    rows = rows[rows[column] > 0]
    fig, ((ax,),) = subplots(1, 1, 4.6, 3.4, dpi=DPI)
    for name in sorted(rows[group].unique(), key=str):
        part = rows[rows[group] == name]
        ax.scatter(part[column], part[metric], s=16, alpha=0.75, label=str(name), color=colours[name])
    if gate is not None:
        ax.axvline(gate, color="0.4", linestyle="--", linewidth=1, label=f"fit gate {gate:g}")
    ax.set_xscale("log")
    ax.set_xlabel(f"{column} (log)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} against {column}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure_png(fig, tight=True)


GALLERY_COLUMNS = 5  # pictures a gallery row holds; a group with more wraps onto further rows


def gallery(items: dict[str, list[tuple[str, Path | None, Path | None]]]) -> bytes:
    """PNG: each group's ``(title, image PNG, feature-map PNG)`` side by side, at most
    ``GALLERY_COLUMNS`` to a row (a group of more takes several rows), the group named on its first."""
    from PIL import Image

    from ferlab.figures import figure_png, subplots

    groups = [g for g, entries in items.items() if entries]
    cols = min(max((len(items[g]) for g in groups), default=1), GALLERY_COLUMNS)
    rows = [(g, items[g][i : i + cols], i == 0) for g in groups for i in range(0, len(items[g]), cols)]
    fig, axes = subplots(max(len(rows), 1), 2 * cols, 3.2 * cols, 1.9 * max(len(rows), 1), dpi=DPI)
    for ax in axes.ravel():
        ax.axis("off")
    for r, (g, entries, first) in enumerate(rows):
        for c, (title, image, features) in enumerate(entries):
            for k, path in enumerate((image, features)):
                ax = axes[r, 2 * c + k]
                if path is not None and Path(path).is_file():
                    with Image.open(path) as im:
                        ax.imshow(np.asarray(im.convert("RGB")))
                ax.set_title(title if k == 0 else "feature maps", fontsize=7)
        if first:
            axes[r, 0].text(
                -0.1, 0.5, str(g), transform=axes[r, 0].transAxes, rotation=90, ha="right", va="center", fontsize=9
            )
    return figure_png(fig, tight=True)


def gallery_rows(df: pd.DataFrame, group: str, per_group: int, metric: str | None = None) -> pd.DataFrame:
    """Up to ``per_group`` rows per group, one per image, the lowest ``metric`` first: the gallery's
    picks. Each group shows the images an earlier group shows in that group's order, then its own, so
    that where groups paint the same images (Picbreeder nets and their copies) they line up."""
    if per_group == 0 or df.empty:
        return df.iloc[:0]
    parts, seen = [], {}
    for _, part in df.groupby(group, sort=True):
        if metric in part:
            part = part.sort_values(metric, kind="stable")
        part = part.drop_duplicates("image") if "image" in part else part
        part = part.head(per_group)
        if "image" in part:
            first = part["image"].map(seen)  # where an earlier group showed the image (NaN: not shown)
            own = pd.Series(len(seen) + np.arange(len(part)), index=part.index)  # after every shared image
            part = part.iloc[np.argsort(first.fillna(own).to_numpy(), kind="stable")]
            for image in part["image"]:
                seen.setdefault(image, len(seen))
        parts.append(part)
    return pd.concat(parts)


def gallery_items(
    df: pd.DataFrame, group: str, per_group: int, metric: str | None = None, gate: float | None = None
) -> dict:
    """The gallery's picks that have an ``image_path``, as ``{group: [(title, image, features)]}``;
    a net whose MSE lies above ``gate`` (the fit gate) says so in its title."""
    if "image_path" not in df:
        return {}
    rows = gallery_rows(df[df["image_path"].notna()], group, per_group, metric)
    out: dict[str, list] = {}
    for _, r in rows.iterrows():
        features = r.get("features_path")
        out.setdefault(str(r[group]), []).append(
            (_title(r, metric, gate), Path(r["image_path"]), Path(features) if isinstance(features, str) else None)
        )
    return out


def _short(name: str, width: int = 24) -> str:
    """``name`` cut to ``width`` characters from its end, at a ``/`` where it can be (a run's hash
    stays whole), or after a shortcut's ``picbreeder:``, the cut marked with an ellipsis."""
    if len(name) <= width:
        return name
    scheme, colon, rest = name.rpartition(":")
    if colon and "/" not in scheme and len(rest) + 2 <= width:
        return "…:" + rest
    parts = name.split("/")
    while len(parts) > 1 and len("/".join(parts)) + 2 > width:
        parts.pop(0)
    tail = "/".join(parts)
    return "…/" + tail if len(tail) + 2 <= width else "…" + name[1 - width :]


def _title(row, metric: str | None, gate: float | None = None) -> str:
    """The image, then the metric and, for a net with a loss, its MSE (a picture's fit shows),
    marked ``> gate`` where it misses the fit gate."""
    label = _short(str(row.get("image", "")))
    parts = []
    if metric and metric in row and np.isfinite(float(row[metric])):
        parts.append(f"{metric} {float(row[metric]):.3f}")
    loss = pd.to_numeric(pd.Series([row.get("loss")]), errors="coerce").iloc[0]
    if np.isfinite(loss):
        parts.append(f"MSE {loss:.3g}" + (" > gate" if gate is not None and loss > gate else ""))
    return "\n".join([label, ", ".join(parts)]) if parts else label


# ------------------------------------------------------------------ the report
@dataclass
class Report:
    """What ``write_report`` produced: the folder, its files and the tables."""

    folder: Path
    summary: pd.DataFrame
    comparisons: pd.DataFrame
    files: list[Path] = field(default_factory=list)
    fit: dict[str, pd.DataFrame] = field(default_factory=dict)  # the tables at the fit gate (``fit_sections``)

    @property
    def markdown(self) -> Path:
        return self.folder / REPORT_NAME


_TABLE_NOTES = {
    CSV_NAME: "every network (final nets and ladder snapshots) with its run, group, image and metrics",
    "summary_at_fit.csv": "the results at the fit gate with their attempted/scored/passed/lost counts, unrounded",
    "summary_unmatched.csv": "every final net's results, whatever its fit, with the same counts, unrounded",
    "comparisons_at_fit.csv": "the comparisons at the fit gate, unrounded",
    "comparisons_by_rung.csv": "the comparisons at each shared rung, unrounded",
    "summary.csv": "the results by group of every final net, unrounded",
    "comparisons.csv": "the comparisons of every final net, unrounded",
    "comparisons_matched.csv": "the comparisons at matched fit, unrounded",
}


def _table_note(name: str) -> str:
    """What a CSV file of the report holds (the Files section lists those written, and only those)."""
    if name.endswith("_by_rung.csv") and name not in _TABLE_NOTES:
        return f"{name.removesuffix('_by_rung.csv')}'s median per group at each rung of the loss ladder, with its band"
    return _TABLE_NOTES[name]


def _tally(frame: pd.DataFrame) -> str:
    """How many final nets the tables stand on, from how many runs, and what failed runs lost."""
    lost = frame["net"].eq(LOST) if "net" in frame else pd.Series(False, index=frame.index)
    nets = frame[~lost]
    runs = _runs(nets) if RUN in nets else len(nets)
    text = f"{len(nets)} networks from {runs} runs"
    if lost.any():
        failed = frame.loc[lost, "run_key"].nunique() if "run_key" in frame else int(lost.sum())
        text += f"; {failed} runs failed, their {int(lost.sum())} networks counted as lost"
    return text


def write_report(
    df: pd.DataFrame, analysis: ReportSpec, folder: str | Path, title: str, notes: Sequence[str] = ()
) -> Report:
    """Write ``report.md``, ``runs.csv``, ``summary.csv``, ``comparisons.csv`` and PNGs into ``folder``."""
    from ferlab.files import write_bytes, write_text

    folder = Path(folder)
    missing = [m for m in analysis.metrics if m not in df]
    if analysis.group not in df:
        missing.insert(0, analysis.group)
    frame = df.copy()
    for m in missing:
        frame[m] = np.nan
    fit_lines, fit_files, fit_tables = fit_sections(frame, analysis, folder) if analysis.match_on else ([], [], {})
    counts = gate_counts(frame, analysis)
    colours = palette(frame[analysis.group])  # over snapshots too, as fit_sections' rung plot
    every, frame = frame, split_rungs(frame)[0]  # the tables below: final nets (snapshots are above)
    results, compared = (
        ("Unmatched results", "Unmatched comparisons") if analysis.match_on else ("Results", "Comparisons")
    )
    summary = summarize(frame, analysis)
    table = comparisons(frame, analysis)
    at_fit = matched_comparisons(frame, analysis)
    files = [
        write_text(folder / CSV_NAME, every.to_csv(index=False)),
        *fit_files,
        write_text(folder / "summary.csv", summary.to_csv(index=False)),
        write_text(folder / "comparisons.csv", table.to_csv(index=False)),
    ]
    if not at_fit.empty:
        files.append(write_text(folder / "comparisons_matched.csv", at_fit.to_csv(index=False)))
    lines = [f"# {title}", ""]
    for note in notes:  # each its own paragraph: Markdown joins consecutive lines into one
        lines += [str(note), ""]
    lines += [
        f"{_tally(frame)}. "
        f"Cells: mean [{analysis.level:.0%} bootstrap interval of the mean, {analysis.resamples} resamples"
        f"{' of the searches' if RUN in frame or SEARCH in frame else ''}]. "
        "Higher means more fractured/entangled.",
        "",
        *fit_lines,
        f"## {results} by {analysis.group} (every final net, whatever its fit)",
        "",
        markdown_table(counted_table(summary, counts, analysis, "none scored")),
        "",
        *([COMPLEXITY_NOTE, ""] if COMPLEXITY in frame and not fit_lines else []),  # else said at the gate
        *([SEARCHES_NOTE, ""] if (RUN in frame or SEARCH in frame) and not fit_lines else []),
    ]
    if analysis.comparisons:
        lines += [
            f"## {compared}",
            "",
            "`b - a`: mean over images of the per-image difference of means, with its bootstrap interval; "
            "Cliff's delta: P(b > a) - P(b < a) over the pairs painting each image, averaged over the images "
            "(over their searches, as below); p: Wilcoxon "
            "signed-rank over images (Mann-Whitney U when unpaired). Where one search found several of the "
            "images, `images` says from how many searches (`4 (3 searches)`): they are not independent, so the "
            "interval resamples those searches and p is over their mean differences. Few images give wide "
            "intervals and large p.",
            "",
        ]
        lines += _compared_lines(table, analysis)
    fit_rows = table[table["metric"] == analysis.match_on] if not table.empty else table
    if at_fit.empty and not fit_rows.empty:
        pairs = ", ".join(f"{r.a} vs {r.b}" for r in fit_rows.itertuples())
        lines += [
            f"## Comparisons at matched {analysis.match_on}",
            "",
            f"None: on no image do the {analysis.match_on} ranges of {pairs} overlap, so fit and "
            f"fracture cannot be told apart here (see the plot of each metric against {analysis.match_on}).",
            "",
        ]
    if not at_fit.empty:
        lines += [
            f"## Comparisons at matched {analysis.match_on}",
            "",
            f"The same, keeping per image only the networks whose {analysis.match_on} lies in the range both "
            f"groups reach, so that neither side wins by painting its image worse.",
            "",
            markdown_table(format_comparisons(at_fit)),
            "",
        ]
    lines += ["## Plots", ""]
    for m in analysis.metrics:
        if frame[m].notna().any():
            gate = (analysis.match_on, analysis.fit_gate) if analysis.match_on else None
            plot = metric_plot(frame, m, analysis.group, analysis.seed, colours, gate)
            path = write_bytes(folder / f"{m}.png", plot)
            files.append(path)
            lines += [f"![{m} by {analysis.group}]({path.name})", ""]
            column = analysis.match_on
            if column and column != m and column in frame and (frame[column].astype(float) > 0).any():
                plot = loss_plot(frame, m, analysis.group, column, colours, analysis.fit_gate)
                path = write_bytes(folder / f"{m}_vs_{column}.png", plot)
                files.append(path)
                lines += [f"![{m} against {column}]({path.name})", ""]
    gate = analysis.fit_gate if analysis.match_on else None
    items = gallery_items(frame, analysis.group, analysis.gallery, analysis.metrics[0], gate)
    if items:
        path = write_bytes(folder / "gallery.png", gallery(items))
        files.append(path)
        lines += [
            "## Gallery",
            "",
            f"Per {analysis.group}, images with their feature maps "
            f"(lowest {analysis.metrics[0]} first, one per image; images an earlier {analysis.group} shows come "
            "first, in its order, so copies of one image line up)"
            + (f"; `> gate`: a copy whose MSE misses the fit gate ({gate:g})." if gate is not None else "."),
            "",
            f"![gallery]({path.name})",
            "",
        ]
    lines += ["## Files", "", *[f"- `{p.name}`: {_table_note(p.name)}" for p in files if p.suffix == ".csv"], ""]
    files.append(write_text(folder / REPORT_NAME, "\n".join(lines)))
    return Report(folder, summary, table, files, fit_tables)
