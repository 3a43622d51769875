"""The report itself: ``report.md``, its CSV tables and PNG plots, written into one folder
(``write_report``), the results at the fit gate first (``fit_sections``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ferlab.report.fit import (
    at_fit,
    fer_by_rung,
    gate_counts,
    ladder_pairs,
    loss_column,
    rung_comparisons,
    rung_snapshots,
    split_rungs,
    too_simple,
)
from ferlab.report.plots import gallery, gallery_items, loss_plot, metric_plot, palette, rung_plot
from ferlab.report.spec import CSV_NAME, DETAIL, LOST, REPORT_NAME, RUN, SEARCH, WEIGHTS, ReportSpec
from ferlab.report.stats import comparisons, matched_comparisons, run_count, summarize
from ferlab.report.tables import compared_lines, counted_table, format_comparisons, markdown_table, with_counts


DETAIL_NOTE = (
    "`image detail`: the median over the same nets of the RMS amplitude (red, green and blue) of each "
    "picture's detail finer than 4 cycles per image (`ferlab.metrics.behaviour.detail`): a flat or faint "
    "picture, a smooth ramp or a soft blob reads below 0.01, the Picbreeder pictures 0.08-0.21. A picture with little "
    "structure has little to fracture, so a low fer_score there is not a unified factored representation: "
    "read groups side by side only where their detail is alike, or in the comparisons, which pair nets "
    "painting the same image."
)
WEIGHTS_NOTE = (
    "`weights`: the median number of non-zero weights of the same nets, in their dense form. The suite sweeps "
    "a net's weights and maps its units, so groups of very different sizes (a NEAT genome of tens of links, a "
    "dense copy of thousands) differ in more than how they were found. Sparsity alone lowers fer_score far: at "
    "MSE under 0.01, SGD copies of the skull score 0.71 dense (5,478 weights), 0.59 pruned to a fifth of their "
    "weights as they train and 0.48 to a tenth (the one seed in four that got there), where the Picbreeder net "
    "scores 0.35 with 147 (`bench/pruned_control.py`); over the 8 Picbreeder images of "
    "`studies/picbreeder_genomes.yaml`, copies pruned to a fifth score 0.05-0.10 below dense copies of the same "
    "fit (within one rung's band, 2-4 images a rung, every pair alike). Weigh a comparison of groups of unlike "
    "`weights` with that in mind."
)
CONTEXT_NOTES = {DETAIL: DETAIL_NOTE, WEIGHTS: WEIGHTS_NOTE}  # what each context column beside the metrics means
COMPARISONS_NOTE = (  # beside the report's first comparisons table
    "`b - a`: mean over images of the per-image difference of means, with its bootstrap interval; "
    "Cliff's delta: P(b > a) - P(b < a) over the pairs painting each image, averaged over the images; p: "
    "Wilcoxon signed-rank over images (Mann-Whitney U when unpaired). Where one search found several of the "
    "images, `images` says from how many searches (`4 (3 searches)`): they are not independent, so the "
    "interval resamples those searches, and p and Cliff's delta stand on their mean differences and deltas. "
    "Few images give wide intervals and large p."
)
SEARCHES_NOTE = (
    "`searches`: the independent searches those nets come from: a run, or each seed of a run that trains "
    "its seeds side by side (SGD). An archive's nets share one search, so the intervals resample searches, "
    "not nets: they show the spread between searches, and a group whose nets come from one search has none "
    "(`[one search]`)."
)


def _context_notes(frame: pd.DataFrame) -> list[str]:
    """The notes, each followed by a blank line, on the context columns ``frame`` holds."""
    return [line for column, note in CONTEXT_NOTES.items() if column in frame for line in (note, "")]


def _simple_note(analysis: ReportSpec) -> str:
    """What the ``simple`` column counts, where the study sets a detail floor."""
    if analysis.min_detail is None:
        return ""
    return (
        f"`simple`: scored, but painting an image whose discoverer's picture has less structure than the floor "
        f"(image detail below {analysis.min_detail:g}: a flat or faint picture, a smooth ramp, a soft blob, with "
        "nothing to fracture), so not passed; such images are left out of every table at the gate and on the "
        "ladder; "
    )


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
        "metrics; " + _simple_note(analysis) + "`passed`: scored and within the gate (discoverers have no loss "
        "and pass); `lost`: attempted, not scored; `n`: the nets that count (a run whose final nets all miss "
        "the gate counts through its best snapshot within it, if any). Cells: mean [bootstrap interval] over "
        "them. " + SEARCHES_NOTE,
        "",
        markdown_table(headline),
        "",
        *_context_notes(df),
    ]
    at_gate = comparisons(gated, analysis)
    if analysis.comparisons:
        heading = f"### Comparisons at the fit gate (MSE <= {gate})"
        lines += [heading, "", COMPARISONS_NOTE, "", *compared_lines(at_gate, analysis)]
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
        if metric == loss_column(analysis):
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
                "loss reached the rung) with its bootstrap band. A snapshot whose loss already reaches the next "
                "finer rung (a run that jumped past rungs, or a pruned run, whose ladder waits for the pruning "
                "to end) counts at that finer rung only (`overshot` in the CSV). Fewer images reach the finer "
                "rungs: a group's curve is cut where the images it stands on change, and the number at the "
                "start of each piece is how many it stands on. Across a cut the median moves with which images "
                "remain, not with the fit; the comparisons at each shared rung pair the same images.",
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
            "Groups compared on their snapshots of the same rung on the same images, each snapshot's loss at or "
            "below the rung and above the next finer one: equal fit within the rung's band.",
            "",
            markdown_table(table),
            "",
        ]
    else:
        pairs = [f"{c.a} vs {c.b}" for c in ladder_pairs(rung_snapshots(df, analysis)[analysis.group], analysis)]
        if pairs:
            lines += [
                "## Comparisons at each shared rung",
                "",
                f"None: {', '.join(pairs)} have ladder snapshots, but on no image do both have one within the same "
                "rung's band (a snapshot whose loss already reaches the next finer rung counts there), so none "
                "compares them at equal fit.",
                "",
            ]
    return lines, files, tables


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
    "summary_at_fit.csv": "the results at the fit gate with their attempted/scored/passed/lost counts (and "
    "`simple`, with a detail floor), unrounded",
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
    runs = run_count(nets) if RUN in nets else len(nets)
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
    frame = df.reset_index(drop=True)  # a copy, one label per row: masks line up with it
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
        *(_context_notes(frame) if not fit_lines else []),  # else said at the gate
        *([SEARCHES_NOTE, ""] if (RUN in frame or SEARCH in frame) and not fit_lines else []),
    ]
    if analysis.comparisons:
        note = "Columns as in the comparisons at the fit gate." if fit_lines else COMPARISONS_NOTE
        lines += [f"## {compared}", "", note, "", *compared_lines(table, analysis)]
    fit_rows = table[table["metric"] == analysis.match_on] if not table.empty else table
    if at_fit.empty and not fit_rows.empty:
        pairs = ", ".join(f"{r.a} vs {r.b}" for r in fit_rows.itertuples())
        rungs = fit_tables.get("rung_comparisons")
        elsewhere = "the comparisons at each shared rung above, and " if rungs is not None and not rungs.empty else ""
        lines += [
            f"## Comparisons at matched {analysis.match_on}",
            "",
            f"None: on no image do the {analysis.match_on} ranges of {pairs} overlap, so these final nets "
            f"cannot tell fit and fracture apart (see {elsewhere}the plot of each metric against "
            f"{analysis.match_on}).",
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
    simple = too_simple(frame, analysis)
    for m in analysis.metrics:
        if frame[m].notna().any():
            gate = (analysis.match_on, analysis.fit_gate) if analysis.match_on else None
            plot = metric_plot(frame, m, analysis.group, analysis.seed, colours, gate, simple)
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
    items = gallery_items(frame, analysis.group, analysis.gallery, analysis.metrics[0], gate, simple)
    if items:
        path = write_bytes(folder / "gallery.png", gallery(items))
        files.append(path)
        lines += [
            "## Gallery",
            "",
            f"Per {analysis.group}, images with their feature maps "
            f"(lowest {analysis.metrics[0]} first, one per image; images an earlier {analysis.group} shows come "
            "first, in its order, so copies of one image line up)"
            + (f"; `> gate`: a copy whose MSE misses the fit gate ({gate:g})" if gate is not None else "")
            + ("; `simple`: an image below the detail floor, left out at the gate" if simple.any() else "")
            + ".",
            "",
            f"![gallery]({path.name})",
            "",
        ]
    lines += ["## Files", "", *[f"- `{p.name}`: {_table_note(p.name)}" for p in files if p.suffix == ".csv"], ""]
    files.append(write_text(folder / REPORT_NAME, "\n".join(lines)))
    return Report(folder, summary, table, files, fit_tables)
