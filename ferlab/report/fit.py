"""Equal fit: which nets count at the fit gate, and FER along the loss ladder.

A reproducer counts where it reproduces its image (its MSE at or below the
``fit_gate``); a run none of whose final nets does counts through its best
ladder snapshot within the gate (``at_fit``), and ``gate_counts`` says how
many nets each group attempted, scored, passed and lost. The ladder's
snapshots (``rung_<MSE>``) compare groups at each rung they both reach, each
snapshot at the rung its loss lies in (``rung_snapshots``).

With a ``min_detail`` floor, an image whose discoverer painted it with less
fine structure than the floor (``image_detail``, ``ferlab.metrics.behaviour``:
a flat or faint picture, a smooth ramp, a soft blob) has nothing to fracture:
its nets, the discoverer's and every copy's, are counted (``simple``) and left
out of the gate and the ladder, so that a low score there cannot read as a
unified factored representation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ferlab.report.spec import DETAIL, RUNG_PREFIX, Comparison, ReportSpec
from ferlab.report.stats import bootstrap_median, compare, finite, seed_for


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


def loss_column(analysis: ReportSpec) -> str:
    return analysis.match_on or "loss"


def _has_loss(df: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(df[column], errors="coerce").notna() if column in df else pd.Series(False, index=df.index)


def _discoverer_groups(df: pd.DataFrame, analysis: ReportSpec) -> set:
    """The groups none of whose nets in ``df`` has a loss: discoverers (reproducers have a loss to their image)."""
    column = loss_column(analysis)
    if column not in df:
        return set(df[analysis.group])
    return set(df[analysis.group]) - set(df.loc[_has_loss(df, column), analysis.group])


def too_simple(df: pd.DataFrame, analysis: ReportSpec) -> pd.Series:
    """Whether each row's image falls below ``analysis.min_detail``: the median
    ``image_detail`` of the discoverers' final nets painting that image. An image no discoverer
    painted (a target given only to reproducers) is not judged; without a floor nothing is."""
    if analysis.min_detail is None or DETAIL not in df or "image" not in df:
        return pd.Series(False, index=df.index)
    finals = split_rungs(df)[0]
    found = finals[finals[analysis.group].isin(_discoverer_groups(finals, analysis))]
    detail = pd.to_numeric(found[DETAIL], errors="coerce").groupby(found["image"]).median()
    return df["image"].map(detail).lt(analysis.min_detail).fillna(False).astype(bool)


def gate_counts(df: pd.DataFrame, analysis: ReportSpec) -> pd.DataFrame:
    """Per group, of its final nets: ``attempted`` (every row, a failed run's or a dead net's
    too), ``scored`` (a finite first metric), ``passed`` (scored, and at or below the fit gate
    when the group has a loss: discoverers have none and pass as they are), ``lost``
    (attempted but not scored); with a detail floor, ``simple`` (scored, but painting an image
    below it: not passed). Nothing disappears silently."""
    metric, column = analysis.metrics[0], loss_column(analysis)
    finals = split_rungs(df)[0]
    simple = too_simple(finals, analysis)
    names = ["attempted", "scored", *(["simple"] if analysis.min_detail is not None else []), "passed", "lost"]
    rows = []
    for name, part in finals.groupby(analysis.group, sort=True):
        scored = finite(part, metric)
        with_loss = _has_loss(part, column)
        loss = pd.to_numeric(part[column], errors="coerce") if column in part else None
        fit = (loss <= analysis.fit_gate) if with_loss.any() else pd.Series(True, index=part.index)
        counts = {
            "attempted": len(part),
            "scored": int(scored.sum()),
            "simple": int((scored & simple[part.index]).sum()),
            "passed": int((scored & fit & ~simple[part.index]).sum()),
            "lost": int(len(part) - scored.sum()),
        }
        rows.append({analysis.group: name, **{k: counts[k] for k in names}})
    return pd.DataFrame(rows, columns=[analysis.group, *names])


def at_fit(df: pd.DataFrame, analysis: ReportSpec) -> pd.DataFrame:
    """The nets that count at equal fit: every discoverer (a group without a loss), and each reproducer
    at the gate (a failed run or dead net, without a loss, does not count):
    its final nets at or below ``fit_gate``, or, for a run none of whose final nets passes (scored and
    within the gate), its best (lowest-loss) scored ladder snapshot at or below the gate. Nets of an
    image below the detail floor (``too_simple``) do not count."""
    column = loss_column(analysis)
    found = _discoverer_groups(split_rungs(df)[0], analysis)  # of every final net, before the floor
    finals, rungs = split_rungs(df[~too_simple(df, analysis)])
    if column not in df:
        return finals
    loss = pd.to_numeric(finals[column], errors="coerce")
    keep = [finals[finals[analysis.group].isin(found) | (loss <= analysis.fit_gate)]]
    passed = (loss <= analysis.fit_gate) & finite(finals, analysis.metrics[0])  # as ``gate_counts``'s
    passed_runs = set(finals.loc[passed, "run_id"]) if "run_id" in finals else set()
    if not rungs.empty and "run_id" in rungs:
        gated = rungs[pd.to_numeric(rungs[column], errors="coerce") <= analysis.fit_gate]
        gated = gated[~gated["run_id"].isin(passed_runs) & finite(gated, analysis.metrics[0])]
        keep.append(gated.sort_values(column, kind="stable").drop_duplicates("run_id").drop(columns="rung"))
    return pd.concat(keep)


def rung_snapshots(df: pd.DataFrame, analysis: ReportSpec) -> pd.DataFrame:
    """The ladder snapshots of images above the detail floor, with their ``rung`` and whether they
    ``overshot`` it: a snapshot is a run's best net the first time its loss reached the rung, so a
    run whose loss jumps past several rungs in one generation (or a pruned SGD run, whose ladder
    waits for the pruning to end) files one net, fitting far better, under each of them. Such a
    snapshot, whose loss is at or below the next finer rung of its run's own ladder (the rungs its
    run filed: a run whose loss reaches a rung files a net there), stands for that finer rung, not
    for its own: compared at its own rung it would meet nets of much worse fit. Runs of a study
    may climb different ladders; another run's rung says nothing of this one's."""
    rungs = split_rungs(df[~too_simple(df, analysis)])[1]
    run = rungs["run_id"] if "run_id" in rungs else pd.Series("", index=rungs.index)
    own = pd.DataFrame({"run": run.to_numpy(), "rung": rungs["rung"].to_numpy()})
    levels = own.drop_duplicates().sort_values(["run", "rung"], kind="stable")
    levels["finer"] = levels.groupby("run", dropna=False)["rung"].shift(fill_value=-np.inf)  # -inf: its finest
    finer = own.merge(levels, on=["run", "rung"], how="left")["finer"].to_numpy()
    column = loss_column(analysis)
    loss = pd.to_numeric(rungs[column], errors="coerce") if column in rungs else pd.Series(np.nan, index=rungs.index)
    return rungs.assign(overshot=loss <= finer)


def fer_by_rung(df: pd.DataFrame, metric: str, analysis: ReportSpec) -> pd.DataFrame:
    """Per group and rung of the ladder snapshots: ``n`` nets, ``images``, and the median of
    ``metric`` with its bootstrap band (``low``, ``high``), over the snapshots that stand for the
    rung; ``overshot``: those left out because they fit a finer rung (``rung_snapshots``);
    ``piece``: along the group's rungs, coarsest first, a number that changes where the set of
    images the median stands on changes (the plot cuts its curve there). Images below the detail
    floor are left out."""
    columns = [analysis.group, "rung", "n", "images", "median", "low", "high", "overshot", "piece"]
    rungs = rung_snapshots(df, analysis)
    if metric not in rungs or rungs.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for (name, rung), part in rungs.groupby([analysis.group, "rung"], sort=True):
        overshot = int(part["overshot"].sum())
        part = part[finite(part, metric) & ~part["overshot"]]  # n: what the median stands on
        median, low, high = bootstrap_median(
            part[metric], seed_for(analysis.seed, name, rung, metric), analysis.resamples, analysis.level
        )
        images = frozenset(part["image"]) if "image" in part else frozenset()
        rows.append(
            {
                analysis.group: name,
                "rung": rung,
                "n": len(part),
                "images": len(images) if "image" in part else np.nan,
                "median": median,
                "low": low,
                "high": high,
                "overshot": overshot,
                "set": images,
            }
        )
    curves = pd.DataFrame(rows).sort_values([analysis.group, "rung"], ascending=[True, False], kind="stable")
    changed = curves["set"].ne(curves["set"].shift()) | curves[analysis.group].ne(curves[analysis.group].shift())
    curves["piece"] = changed.groupby(curves[analysis.group]).cumsum().astype(int) - 1
    return curves.sort_values([analysis.group, "rung"], kind="stable")[columns].reset_index(drop=True)


def ladder_pairs(groups, analysis: ReportSpec) -> list[Comparison]:
    """The study's comparisons, by its group, whose two groups are both among ``groups`` (the groups
    with ladder snapshots)."""
    names = set(groups)
    return [c for c in analysis.comparisons if (c.by or analysis.group) == analysis.group and {c.a, c.b} <= names]


def rung_comparisons(df: pd.DataFrame, analysis: ReportSpec) -> pd.DataFrame:
    """The study's comparisons (those whose two groups both have ladder snapshots; all pairs of
    such groups when none is) at every rung both reach on the same images, on every metric other
    than the loss: ``compare`` on the snapshots that stand for that rung (not those that
    ``overshot`` it), with a ``rung`` column. Images below the detail floor are left out."""
    rungs = rung_snapshots(df, analysis)
    rungs = rungs[~rungs["overshot"]]
    if rungs.empty:
        return pd.DataFrame()
    names = sorted(rungs[analysis.group].unique(), key=str)
    pairs = ladder_pairs(names, analysis)
    if not pairs:
        pairs = [Comparison(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    rows = []
    for rung, part in rungs.groupby("rung", sort=True):
        for c in pairs:
            for m in analysis.metrics:
                if m == loss_column(analysis) or m not in part:
                    continue
                row = compare(part, c, m, analysis)
                if row["n_a"] and row["n_b"] and (row["pairs"] is None or row["pairs"] > 0):
                    rows.append({"rung": rung, **row})
    return pd.DataFrame(rows)
