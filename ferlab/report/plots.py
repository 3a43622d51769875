"""The report's pictures: a box of each group's nets, each metric against the loss, FER along the
loss ladder, and a gallery of each group's images with their feature maps. A group has one colour
in every plot (``palette``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DPI = 110


def curve_pieces(part: pd.DataFrame) -> list[pd.DataFrame]:
    """One group's curve (rows by rung, coarsest first) cut where the set of images its points stand
    on changes (``fer_by_rung``'s ``piece``): across a cut the median moves with which images
    remain, not with the fit. Rungs without a median (every snapshot dead or overshot) are left out."""
    part = part[part["median"].notna()]
    return [piece for _, piece in part.groupby("piece", sort=False)]


def rung_plot(curves: pd.DataFrame, metric: str, group: str, colours: dict | None = None) -> bytes:
    """PNG: per group the median ``metric`` at each rung with its bootstrap band, against the
    rung's loss (log, decreasing to the right: better fit to the right). A group's curve is cut
    where the images its points stand on change (``curve_pieces``), each piece labelled at its start
    with its number of images."""
    from ferlab.figures import figure_png, subplots

    colours = colours or palette(curves[group])
    fig, ((ax,),) = subplots(1, 1, 4.8, 3.4, dpi=DPI)
    for name in sorted(curves[group].unique(), key=str):
        part = curves[curves[group] == name].sort_values("rung", ascending=False)
        colour = colours[name]
        for i, piece in enumerate(curve_pieces(part)):
            ax.plot(piece["rung"], piece["median"], marker="o", ms=3, label=None if i else str(name), color=colour)
            ax.fill_between(piece["rung"], piece["low"], piece["high"], alpha=0.2, color=colour)
            first = piece.iloc[0]
            if np.isfinite(first["images"]):
                ax.annotate(
                    f"{int(first['images'])}",
                    (first["rung"], first["median"]),
                    xytext=(-3, 4),
                    textcoords="offset points",
                    fontsize=6,
                    color=colour,
                )
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


def palette(groups) -> dict:
    """A colour per group, the same in every plot of a report (matplotlib's cycle, groups sorted)."""
    return {name: f"C{i % 10}" for i, name in enumerate(sorted(pd.unique(pd.Series(groups)), key=str))}


def metric_plot(
    df: pd.DataFrame,
    metric: str,
    group: str,
    seed: int = 0,
    colours: dict | None = None,
    gate=None,
    simple: pd.Series | None = None,
) -> bytes:
    """PNG: a box per group with every network as a jittered point. With ``gate``, ``(column,
    limit)``, a net whose ``column`` lies above ``limit`` (a reproducer that misses the fit gate) is
    drawn hollow and the title says so: such a net paints its image too poorly to weigh its FER. A
    net whose image ``simple`` (aligned with ``df``) marks as below the detail floor is a cross."""
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
    missed_any = simple_any = False
    for i, (name, r) in enumerate(zip(names, rows), start=1):
        x, y = i + rng.uniform(-0.15, 0.15, len(r)), r[metric].astype(float).to_numpy()
        plain = simple[r.index].to_numpy(bool) if simple is not None else np.zeros(len(r), bool)
        missed = _misses(r, gate) & ~plain
        missed_any |= bool(missed.any())
        simple_any |= bool(plain.any())
        shown = ~missed & ~plain
        ax.scatter(x[shown], y[shown], s=12, alpha=0.7, zorder=3, color=colours[name])
        ax.scatter(x[missed], y[missed], s=14, zorder=3, facecolors="none", edgecolors=colours[name])
        ax.scatter(x[plain], y[plain], s=14, zorder=3, marker="x", color=colours[name])
    ax.set_ylabel(metric)
    marks = [f"hollow: {gate[0]} above the fit gate {gate[1]:g}"] if missed_any else []
    marks += ["x: image below the detail floor"] if simple_any else []
    ax.set_title("\n".join([f"{metric} by {group} (nets), every final net", *marks]), fontsize=10)
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
    df: pd.DataFrame,
    group: str,
    per_group: int,
    metric: str | None = None,
    gate: float | None = None,
    simple: pd.Series | None = None,
) -> dict:
    """The gallery's picks that have an ``image_path``, as ``{group: [(title, image, features)]}``;
    a net whose MSE lies above ``gate`` (the fit gate) says so in its title, and so does one whose
    image ``simple`` (aligned with ``df``) marks as below the detail floor."""
    if "image_path" not in df:
        return {}
    rows = gallery_rows(df[df["image_path"].notna()], group, per_group, metric)
    out: dict[str, list] = {}
    for index, r in rows.iterrows():
        features = r.get("features_path")
        title = _title(r, metric, gate) + (", simple" if simple is not None and simple.get(index, False) else "")
        out.setdefault(str(r[group]), []).append(
            (title, Path(r["image_path"]), Path(features) if isinstance(features, str) else None)
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
