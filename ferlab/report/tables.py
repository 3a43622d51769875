"""The report's tables as text: cells ``mean [low, high]`` that say why there is no interval
(``[one value]``, ``[one search]``), counts beside them, and Markdown."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ferlab.report.spec import CONTEXT, ReportSpec


def uncompared(table: pd.DataFrame, analysis: ReportSpec) -> str:
    """A sentence naming the study's comparisons that have no row in ``table`` (one side has no
    scored net there, or the two share no image), so that none drops out silently; empty if none."""
    done = set(zip(table["a"], table["b"])) if not table.empty else set()
    missing = [f"{c.a} vs {c.b}" for c in analysis.comparisons if (c.a, c.b) not in done]
    if not missing:
        return ""
    return f"Not compared here (one side has no scored net, or no image both painted): {', '.join(missing)}."


def compared_lines(table: pd.DataFrame, analysis: ReportSpec) -> list[str]:
    """Markdown lines of a comparisons table (if it has rows), then its ``uncompared`` sentence (if any)."""
    note = uncompared(table, analysis)
    return ([markdown_table(format_comparisons(table)), ""] if not table.empty else []) + ([note, ""] if note else [])


def with_counts(summary: pd.DataFrame, counts: pd.DataFrame, group: str) -> pd.DataFrame:
    """A summary table with the group's attempted / scored / (simple /) passed / lost counts as its last columns."""
    names = [c for c in counts.columns if c != group]
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


def format_summary(summary: pd.DataFrame, analysis: ReportSpec, digits: int = 3) -> pd.DataFrame:
    """The summary as text cells ``mean [low, high]``."""
    out = summary[[analysis.group, "n", *(["searches"] if "searches" in summary else [])]].copy()
    for m in analysis.metrics:
        out[m] = [
            _interval(r[m], r[f"{m}_low"], r[f"{m}_high"], digits, one_search=r["n"] > 1 and r.get("searches") == 1)
            for _, r in summary.iterrows()
        ]
    for column, (name, places) in CONTEXT.items():
        if f"{column}_median" in summary:
            out[name] = [_num(v, places) for v in summary[f"{column}_median"]]
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
