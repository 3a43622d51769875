"""The report's statistics on synthetic frames whose answers are known."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ferlab.report import Comparison, ReportSpec, write_report
from ferlab.report.stats import bootstrap_ci, cliffs_delta, compare, summarize


def frame(images=6, seeds=4, shift=0.3, seed=0):
    """Group ``low`` (one net per image) and ``high`` (``seeds`` nets per image, ``shift`` higher)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(images):
        base = rng.uniform(0, 0.5)
        rows.append({"run_id": f"r{i}", "regime": "low", "image": f"img{i}", "fer_score": base, "other": rng.normal()})
        for _s in range(seeds):
            rows.append(
                {
                    "run_id": f"s{i}",
                    "regime": "high",
                    "image": f"img{i}",
                    "fer_score": base + shift + rng.normal(0, 0.02),
                    "other": rng.normal(),
                }
            )
    return pd.DataFrame(rows)


def test_bootstrap_interval_contains_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    small = rng.normal(1.0, 1.0, 10)
    big = rng.normal(1.0, 1.0, 1000)
    m, lo, hi = bootstrap_ci(small, seed=3)
    assert lo < m < hi and m == pytest.approx(small.mean())
    _, lo2, hi2 = bootstrap_ci(big, seed=3)
    assert hi2 - lo2 < (hi - lo) / 4
    assert lo2 < 1.0 < hi2


def test_bootstrap_is_a_function_of_its_seed():
    x = np.arange(20.0)
    assert bootstrap_ci(x, seed=5) == bootstrap_ci(x, seed=5)
    assert bootstrap_ci(x, seed=5) != bootstrap_ci(x, seed=6)
    assert np.isnan(bootstrap_ci([], seed=0)[0])
    assert bootstrap_ci([np.nan, 2.0], seed=0)[0] == 2.0


def test_cliffs_delta_extremes():
    assert cliffs_delta([0, 1], [2, 3]) == 1.0
    assert cliffs_delta([2, 3], [0, 1]) == -1.0
    assert cliffs_delta([1, 1], [1, 1]) == 0.0


def test_summary_per_group_recomputes_from_rows():
    df = frame()
    analysis = ReportSpec(metrics=("fer_score", "other"))
    table = summarize(df, analysis).set_index("regime")
    assert table.loc["high", "n"] == 24 and table.loc["low", "n"] == 6
    assert table.loc["low", "fer_score"] == pytest.approx(df[df.regime == "low"].fer_score.mean())
    for g in ("low", "high"):
        assert table.loc[g, "fer_score_low"] <= table.loc[g, "fer_score"] <= table.loc[g, "fer_score_high"]
    assert table.loc["low", "fer_score_high"] < table.loc["high", "fer_score_low"]


def test_paired_comparison_sees_a_shift_on_the_same_images():
    df = frame(images=8, shift=0.3)
    row = compare(df, Comparison("low", "high"), "fer_score", ReportSpec())
    assert row["pairs"] == 8 and row["test"] == "wilcoxon"
    assert row["diff"] == pytest.approx(0.3, abs=0.02)
    assert row["diff_low"] > 0.25 and row["delta"] == 1.0
    assert row["p"] < 0.01


def test_pairing_removes_between_image_spread():
    """Image effects swamp the shift across images; within images it is consistent."""
    df = frame(images=8, shift=0.05)
    paired = compare(df, Comparison("low", "high"), "fer_score", ReportSpec())
    unpaired = compare(df, Comparison("low", "high", pair_on=None), "fer_score", ReportSpec())
    assert paired["delta"] == 1.0 and paired["p"] < 0.01
    assert unpaired["test"] == "mannwhitneyu" and unpaired["delta"] < 0.6 and unpaired["p"] > paired["p"]


def test_no_shift_no_signal():
    df = frame(images=8, shift=0.0)
    row = compare(df, Comparison("low", "high"), "fer_score", ReportSpec())
    assert abs(row["diff"]) < 0.02 and row["diff_low"] < 0 < row["diff_high"]
    assert row["p"] > 0.05


def test_only_shared_images_are_paired():
    df = frame(images=4)
    df = df[~((df.regime == "low") & (df.image == "img0"))]
    row = compare(df, Comparison("low", "high"), "fer_score", ReportSpec())
    assert row["pairs"] == 3


def test_a_paired_rows_counts_and_means_stand_on_the_shared_images():
    """An image only one side painted moves neither its n nor its mean: b - a = mean b - mean a."""
    df = frame(images=4, shift=0.3)
    df.loc[(df.regime == "low") & (df.image == "img0"), "fer_score"] += 5.0  # far off, and unpaired below
    df = df[~((df.regime == "high") & (df.image == "img0"))]
    row = compare(df, Comparison("low", "high"), "fer_score", ReportSpec())
    shared = df[df.image != "img0"]
    assert row["n_a"] == (shared.regime == "low").sum() and row["n_b"] == (shared.regime == "high").sum()
    assert row["mean_a"] == pytest.approx(shared[shared.regime == "low"].groupby("image").fer_score.mean().mean())
    assert row["mean_b"] - row["mean_a"] == pytest.approx(row["diff"])


def test_write_report(tmp_path):
    df = frame(images=3, seeds=2)
    paths = []
    for i, _row in df.iterrows():
        p = tmp_path / "png" / f"{i}.png"
        p.parent.mkdir(exist_ok=True)
        Image.new("RGB", (8, 8), (i * 10 % 255, 0, 0)).save(p)
        paths.append(str(p))
    df["image_path"] = paths
    analysis = ReportSpec(comparisons=(Comparison("low", "high"),), gallery=2)
    report = write_report(df, analysis, tmp_path / "out", "Synthetic", notes=["a note", "another"])
    text = report.markdown.read_text()
    assert "a note\n\nanother\n\n" in text  # two paragraphs, not one
    assert "# Synthetic" in text and "a note" in text and "| regime | n | searches | fer_score |" in text
    # low paints each image in its own run; high's 2 nets of an image share one run: one search
    assert report.summary.set_index("regime")[["n", "searches"]].to_dict("index") == {
        "high": {"n": 6, "searches": 3},
        "low": {"n": 3, "searches": 3},
    }
    assert "Cells: mean [bootstrap interval] over them. `searches`: the independent searches" in text
    plain = write_report(df, ReportSpec(match_on=None), tmp_path / "plain", "Plain").markdown.read_text()
    assert plain.count("`searches`: the independent searches those nets come from") == 1
    assert "low vs high" in text and "![gallery](gallery.png)" in text
    for name in ("runs.csv", "summary.csv", "comparisons.csv", "fer_score.png", "gallery.png"):
        assert (tmp_path / "out" / name).is_file(), name
    back = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert len(back) == len(df) and np.allclose(back.fer_score, df.fer_score)
    mean = report.summary.set_index("regime").loc["low", "fer_score"]
    assert f"{mean:.3f} [" in text


def test_missing_metric_is_reported_not_crashing(tmp_path):
    df = frame(images=2, seeds=1)
    report = write_report(df, ReportSpec(metrics=("fer_score", "absent")), tmp_path, "x")
    assert "n/a" in report.markdown.read_text()


def test_comparisons_skip_a_metric_that_one_group_lacks():
    from ferlab.report.stats import comparisons

    df = frame(images=3, seeds=2)
    df.loc[df["regime"] == "low", "other"] = np.nan  # e.g. loss: only reproducers have one
    table = comparisons(df, ReportSpec(metrics=("fer_score", "other"), comparisons=(Comparison("low", "high"),)))
    assert list(table["metric"]) == ["fer_score"]


def fit_frame(images=5, per=12, seed=0):
    """``sgd`` fits closer (loss 0.01-0.05) than ``es`` (0.03-0.10); fer_score depends on loss alone."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(images):
        for regime, (lo, hi) in (("sgd", (0.01, 0.05)), ("es", (0.03, 0.10))):
            for loss in rng.uniform(lo, hi, per):
                rows.append(
                    {"regime": regime, "image": f"img{i}", "loss": loss, "fer_score": 5 * loss + rng.normal(0, 0.005)}
                )
    return pd.DataFrame(rows)


def test_matched_loss_removes_a_difference_that_is_only_fit():
    from ferlab.report.stats import matched, matched_comparisons

    df = fit_frame()
    analysis = ReportSpec(metrics=("fer_score", "loss"), comparisons=(Comparison("sgd", "es"),))
    plain = compare(df, Comparison("sgd", "es"), "fer_score", analysis)
    kept = matched(df, Comparison("sgd", "es"), "loss", analysis)
    for image, part in kept.groupby("image"):
        ranges = df[df["image"] == image].groupby("regime")["loss"].agg(["min", "max"])
        inside = df[(df["image"] == image) & df["loss"].between(ranges["min"].max(), ranges["max"].min())]
        assert sorted(part.index) == sorted(inside.index) and set(part["regime"]) == {"sgd", "es"}
    at_fit = matched_comparisons(df, analysis)
    assert list(at_fit["metric"]) == ["fer_score"]  # not the matched column itself
    assert plain["diff"] > 0.15 and abs(float(at_fit["diff"].iloc[0])) < plain["diff"] / 5


def files_section_matches_folder(text, folder):
    """The report's Files section names every CSV in its folder, and only those."""
    named = {line.split("`")[1] for line in text.split("## Files")[1].splitlines() if line.startswith("- `")}
    return named == {p.name for p in folder.glob("*.csv")}


def test_report_shows_matched_comparisons_and_fit_plot(tmp_path):
    analysis = ReportSpec(metrics=("fer_score", "loss"), comparisons=(Comparison("sgd", "es"),), gallery=0)
    text = write_report(fit_frame(), analysis, tmp_path, "Fit").markdown.read_text()
    assert "## Comparisons at matched loss" in text and "![fer_score against loss](fer_score_vs_loss.png)" in text
    assert (tmp_path / "fer_score_vs_loss.png").stat().st_size > 1000
    assert (tmp_path / "comparisons_matched.csv").is_file()
    none = write_report(
        fit_frame(),
        ReportSpec(comparisons=(Comparison("sgd", "es"),), match_on=None, gallery=0),
        tmp_path / "off",
        "Off",
    ).markdown.read_text()
    assert "matched" not in none.split("## Files")[0]
    apart = fit_frame()
    apart.loc[apart["regime"] == "es", "loss"] += 1.0  # fits never overlap
    text = write_report(apart, analysis, tmp_path / "apart", "Apart").markdown.read_text()
    assert "None: on no image do the loss ranges of sgd vs es overlap" in text
    assert "(see the plot of each metric against loss)" in text  # no ladder here to point to
    laddered = ReportSpec(group="label", metrics=("fer_score", "loss"), comparisons=(Comparison("sgd", "es"),))
    far = ladder_frame()
    far.loc[(far["label"] == "es") & (far["net"] == "best"), "loss"] += 1.0  # the final nets' fits never overlap
    rungs = write_report(far, laddered, tmp_path / "rungs", "Rungs").markdown.read_text()
    assert "## Comparisons at each shared rung" in rungs
    assert "overlap, so these final nets cannot tell fit and fracture apart (see the comparisons at each " in rungs
    assert not (tmp_path / "apart" / "comparisons_matched.csv").exists()
    assert "comparisons_matched.csv" not in text
    assert files_section_matches_folder(text, tmp_path / "apart")
    assert files_section_matches_folder(none, tmp_path / "off")


def ladder_frame():
    """Discoverer ``pb`` (no loss); reproducers ``sgd`` (passes the gate) and ``es`` (misses it, but one run's
    rung snapshot passes); one ``es`` run failed (no metrics); rung snapshots of both on two images."""
    rows = []
    for i, image in enumerate(("a", "b")):
        rows.append({"run_id": f"pb{i}", "label": "pb", "image": image, "net": "best", "fer_score": 0.2 + i / 10})
        for s in range(2):
            rows.append(
                {
                    "run_id": f"sgd{i}",
                    "label": "sgd",
                    "image": image,
                    "net": f"seed_{s}",
                    "loss": 0.004 + 0.01 * s,
                    "fer_score": 0.5 + s / 10 + i / 100,
                }
            )
        rows.append(
            {"run_id": f"es{i}", "label": "es", "image": image, "net": "best", "loss": 0.03, "fer_score": 0.3 + i / 100}
        )
        for rung, fer in ((0.05, 0.1), (0.02, 0.2), (0.01, 0.3)):
            rows.append(
                {
                    "run_id": f"sgd{i}",
                    "label": "sgd",
                    "image": image,
                    "net": f"rung_{rung:.3f}",
                    "loss": rung * 0.9,
                    "fer_score": fer + i / 10,
                }
            )
        for rung, fer in ((0.05, 0.15), (0.02, 0.4)):
            rows.append(
                {
                    "run_id": f"es{i}",
                    "label": "es",
                    "image": image,
                    "net": f"rung_{rung:.3f}",
                    "loss": rung * 0.95,
                    "fer_score": fer + i / 10,
                }
            )
    rows.append({"run_id": "es_gated", "label": "es", "image": "a", "net": "best", "loss": 0.012, "fer_score": 0.9})
    rows.append(
        {"run_id": "es_gated", "label": "es", "image": "a", "net": "rung_0.010", "loss": 0.009, "fer_score": 0.8}
    )
    rows.append(
        {"run_id": "es_failed", "label": "es", "image": "b", "net": "best", "loss": np.nan, "fer_score": np.nan}
    )
    return pd.DataFrame(rows)


def test_gate_counts_every_net_none_silently_dropped():
    from ferlab.report.fit import gate_counts

    counts = gate_counts(ladder_frame(), ReportSpec(group="label", metrics=("fer_score", "loss"))).set_index("label")
    assert counts.loc["pb"].tolist() == [2, 2, 2, 0]  # attempted, scored, passed (no loss: passes), lost
    assert counts.loc["sgd"].tolist() == [4, 4, 2, 0]  # seed_1 (loss 0.014) is gated out, still counted
    assert counts.loc["es"].tolist() == [4, 3, 0, 1]  # the failed run is attempted and lost


def test_a_detail_floor_leaves_out_simple_images_and_counts_their_nets(tmp_path):
    """An image its discoverer painted with less detail than the floor (a flat picture, a ramp) has nothing to
    fracture: every net of it, the discoverer's and each copy's, leaves the gate and the ladder, and
    the new ``simple`` column counts those scored nets, so none disappears silently."""
    from ferlab.report.fit import at_fit, fer_by_rung, gate_counts, rung_comparisons, too_simple
    from ferlab.report.plots import gallery_items

    df = ladder_frame()
    df["image_detail"] = np.where(df["image"] == "a", 0.004, 0.1)  # image a: a flat picture
    df.loc[(df.label == "sgd") & (df.image == "b"), "image_detail"] = 0.001  # a copy's own picture: not judged
    plain = ReportSpec(group="label", metrics=("fer_score", "loss"), comparisons=(Comparison("sgd", "es"),))
    floored = dataclasses.replace(plain, min_detail=0.01)

    counts = gate_counts(df, floored).set_index("label")
    assert list(counts.columns) == ["attempted", "scored", "simple", "passed", "lost"]
    assert counts.loc["pb"].tolist() == [2, 2, 1, 1, 0]
    assert counts.loc["sgd"].tolist() == [4, 4, 2, 1, 0]  # b's seed_0 passes; seed_1 misses the fit gate
    assert counts.loc["es"].tolist() == [4, 3, 2, 0, 1]  # es_gated and es0 paint image a
    assert list(gate_counts(df, plain).columns) == ["label", "attempted", "scored", "passed", "lost"]

    kept = at_fit(df, floored)
    assert set(kept.image) == {"b"} and sorted(kept.label) == ["pb", "sgd"]  # es_gated's snapshot was on a
    assert set(at_fit(df, plain).image) == {"a", "b"}
    curves = fer_by_rung(df, "fer_score", floored)
    assert set(curves["images"]) == {1} and fer_by_rung(df, "fer_score", plain)["images"].max() == 2
    by_rung = rung_comparisons(df, floored)
    assert (by_rung["pairs"] == 1).all() and 0.01 not in set(by_rung.rung)  # only es_gated reached 0.01, on a

    shown = df.assign(image_path="picture.png")
    items = gallery_items(shown, "label", 4, "fer_score", 0.01, too_simple(shown, floored))
    titles = [title for picks in items.values() for title, _, _ in picks]
    assert len(titles) == 6 and all(title.endswith(", simple") == title.startswith("a\n") for title in titles)

    text = write_report(df, floored, tmp_path, "Floor").markdown.read_text()
    head = text.split("## Results at the fit gate")[1].split("\n##")[0]
    assert "| loss | image detail | attempted | scored | simple | passed | lost |" in head
    assert "image detail below 0.01" in head
    for bad in (float("nan"), 0.5, 0.0, -0.1):
        with pytest.raises(ValueError, match="min_detail"):
            ReportSpec(min_detail=bad)


def test_matched_cell_recomputed_by_hand(tmp_path):
    from ferlab.report.fit import at_fit, rung_comparisons

    df = ladder_frame()
    analysis = ReportSpec(group="label", metrics=("fer_score", "loss"), comparisons=(Comparison("sgd", "es"),))
    kept = at_fit(df, analysis)
    es = kept[kept.label == "es"]
    assert es.net.tolist() == ["rung_0.010"] and es.fer_score.tolist() == [0.8]  # its best gated snapshot
    sgd = kept[kept.label == "sgd"]
    assert sorted(sgd.net) == ["seed_0", "seed_0"]
    by_hand = np.mean([0.5, 0.51])
    summary = summarize(kept, analysis).set_index("label")
    assert summary.loc["sgd", "fer_score"] == pytest.approx(by_hand)
    assert summary.loc["pb", "n"] == 2  # discoverers are kept whole
    assert summary.loc["sgd", "searches"] == 2 and summary.loc["es", ["n", "searches"]].tolist() == [1, 1]

    table = rung_comparisons(df, analysis)
    assert sorted(set(table.rung)) == [0.01, 0.02, 0.05]
    assert table[table.rung == 0.01].iloc[0].pairs == 1  # only es_gated reached 0.01, on image a
    row = table[table.rung == 0.02].iloc[0]
    assert row.pairs == 2 and row["diff"] == pytest.approx(np.mean([0.4 - 0.2, 0.5 - 0.3]))

    report = write_report(df, analysis, tmp_path, "Ladder")
    text = report.markdown.read_text()
    head, tail = text.split("## Unmatched results by label")
    assert "## Results at the fit gate (MSE <= 0.01)" in head and "## Comparisons at each shared rung" in head
    cell = f"{by_hand:.3f} ["
    assert cell in head.split("## Results at the fit gate")[1].split("\n##")[0]
    assert "| label | n | searches | fer_score | loss | attempted | scored | passed | lost |" in tail
    assert "| es | 3 | 3 | " in tail  # the failed run's net is lost, not a run its nets come from
    assert files_section_matches_folder(text, tmp_path) and "`fer_score_by_rung.csv`" in tail
    failed = ladder_frame()
    failed = failed[failed.label != "es"]
    failed.loc[failed.label == "sgd", "loss"] = 0.5  # no sgd net within the gate, no snapshot either
    failed = failed[~failed.net.str.startswith("rung_")]
    headline = write_report(failed, analysis, tmp_path / "none", "None").markdown.read_text()
    headline = headline.split("## Results at the fit gate")[1].split("\n##")[0]
    assert "| sgd | 0 | 0 | none passed | none passed | 4 | 4 | 0 | 0 |" in headline and "nan" not in headline
    assert (tmp_path / "fer_score_vs_rung.png").stat().st_size > 1000
    curves = pd.read_csv(tmp_path / "fer_score_by_rung.csv")
    sgd02 = curves[(curves.label == "sgd") & (curves.rung == 0.02)].iloc[0]
    assert sgd02["median"] == pytest.approx(np.median([0.2, 0.3])) and sgd02["low"] <= sgd02["median"] <= sgd02["high"]
    assert len(pd.read_csv(tmp_path / "runs.csv")) == len(df)

    from ferlab.study.run import summary_text

    printed = summary_text(report, analysis)  # what ferlab study prints: the gate first, titled
    assert printed.index("At the fit gate (MSE <= 0.01):") < printed.index("Unmatched (every final net")
    assert cell in printed.split("Unmatched")[0] and "passed" in printed.split("Unmatched")[0]


def test_gallery_titles_give_a_reproducers_fit_beside_its_score(tmp_path):
    """A gallery picture of a net with a loss says its MSE (a grey failed copy shows as one); a
    discoverer's, without a loss, says its score alone."""
    from ferlab.report.plots import gallery_items

    df = pd.DataFrame(
        {
            "label": ["picbreeder", "sgd_masked", "map_elites"],
            "image": ["picbreeder:skull", "picbreeder:skull", "map_elites/febcc6d6a7/elite_049"],
            "fer_score": [0.382, 0.214, 0.207],
            "loss": [np.nan, 0.0912, np.nan],
            "image_path": [str(tmp_path / f"{k}.png") for k in "abc"],
        }
    )
    items = gallery_items(df, "label", 1, "fer_score")
    assert items["picbreeder"][0][0] == "picbreeder:skull\nfer_score 0.382"
    assert items["sgd_masked"][0][0] == "picbreeder:skull\nfer_score 0.214, MSE 0.0912"
    assert items["map_elites"][0][0] == "…/febcc6d6a7/elite_049\nfer_score 0.207"  # a long name's cut is marked
    gated = gallery_items(df, "label", 1, "fer_score", gate=0.01)  # the copy misses the fit gate
    assert gated["sgd_masked"][0][0] == "picbreeder:skull\nfer_score 0.214, MSE 0.0912 > gate"
    assert gated["picbreeder"][0][0] == items["picbreeder"][0][0]
    assert gallery_items(df, "label", 1, "fer_score", gate=0.1)["sgd_masked"] == items["sgd_masked"]
    from ferlab.report.plots import _title

    near = {"image": "x", "fer_score": 0.3, "loss": 0.0102}  # three figures: not "0.010 > gate" at gate 0.01
    assert _title(near, "fer_score", 0.01) == "x\nfer_score 0.300, MSE 0.0102 > gate"
    assert _title(near | {"loss": 0.000412}, "fer_score", 0.01) == "x\nfer_score 0.300, MSE 0.000412"
    from ferlab.report.plots import _short

    assert _short("ns_es/acb408ad6d/archive_048") == "…/acb408ad6d/archive_048"  # the run's hash stays whole
    assert _short("a" * 30) == "…" + "a" * 23 and _short("picbreeder:skull") == "picbreeder:skull"
    assert _short("picbreeder:121_ShortSDCoif") == "…:121_ShortSDCoif"  # the genome's name stays whole


def test_gallery_picks_line_up_the_images_groups_share():
    """Each group's picks are its lowest-scoring image per image; a later group shows the images an
    earlier one shows first, in that group's order, then its own (lowest first)."""
    from ferlab.report.plots import gallery_rows

    df = pd.DataFrame(
        {
            "label": ["a", "a", "a", "b", "b", "b", "b"],
            "image": ["x", "y", "z", "z", "x", "w", "x"],
            "fer_score": [0.1, 0.2, 0.3, 0.5, 0.6, 0.4, 0.7],
        }
    )
    rows = gallery_rows(df, "label", 3, "fer_score")
    assert rows[rows.label == "a"].image.tolist() == ["x", "y", "z"]
    assert rows[rows.label == "b"].image.tolist() == ["x", "z", "w"]  # x at 0.6, its lowest; w its own, last
    assert rows[rows.label == "b"].fer_score.tolist() == [0.6, 0.5, 0.4]
    assert gallery_rows(df, "label", 1, "fer_score").image.tolist() == ["x", "w"]  # the picks stay the lowest


def test_a_gallery_of_many_images_wraps_onto_rows_of_five(tmp_path):
    """Ten images a group (picbreeder_genomes.yaml's gallery) would be one row 2,800 pixels wide:
    a group's pictures wrap after five, so seven take two rows as wide as five take one."""
    import io

    from ferlab.report.plots import GALLERY_COLUMNS, gallery

    picture = tmp_path / "p.png"
    Image.new("RGB", (16, 16), (200, 10, 10)).save(picture)

    def size(n):
        with Image.open(io.BytesIO(gallery({"g": [(f"img{k}", picture, picture) for k in range(n)]}))) as im:
            return im.size

    (w5, h5), (w7, h7) = size(GALLERY_COLUMNS), size(7)
    assert GALLERY_COLUMNS == 5 and abs(w7 - w5) <= 0.02 * w5 and h7 > 1.8 * h5


# ------------------------------------------------------------------ what each number stands on
def test_a_groups_means_stand_on_its_scored_nets_only():
    """A dead net (no FER score) has a loss, but neither its group's n nor its mean loss counts it."""
    df = pd.DataFrame(
        [
            {"regime": "sgd", "image": "a", "fer_score": 0.5, "loss": 0.001},
            {"regime": "sgd", "image": "a", "fer_score": np.nan, "loss": 0.009},
        ]
    )
    row = summarize(df, ReportSpec(metrics=("fer_score", "loss"), resamples=50)).iloc[0]
    assert row["n"] == 1 and row["loss"] == pytest.approx(0.001)
    empty = summarize(df.iloc[:0], ReportSpec(metrics=("fer_score", "loss")))
    assert empty.empty and {"regime", "n", "fer_score", "loss_high"} <= set(empty.columns)


def test_a_rungs_n_counts_the_snapshots_its_median_stands_on():
    from ferlab.report.fit import fer_by_rung

    df = pd.DataFrame(
        [
            {"run_id": f"r{i}", "label": "sgd", "image": "a", "net": "rung_0.010", "loss": 0.009, "fer_score": f}
            for i, f in enumerate([0.4, np.nan, np.nan])
        ]
    )
    row = fer_by_rung(df, "fer_score", ReportSpec(group="label", resamples=50)).iloc[0]
    assert row["n"] == 1 and row["median"] == pytest.approx(0.4)


def test_a_snapshot_that_overshot_its_rung_counts_only_at_the_rung_its_loss_lies_in(tmp_path):
    """A pruned run's ladder waits for the pruning to end, then files one net of loss 0.0015 under
    every rung from 0.05 to 0.002; compared at 0.05 it would meet dense nets of 30x worse fit."""
    from ferlab.report.fit import fer_by_rung, rung_comparisons

    rows = []
    for image in ("a", "b"):
        for rung, loss, fer in ((0.05, 0.04, 0.5), (0.01, 0.008, 0.6), (0.002, 0.0018, 0.7)):
            rows.append({"label": "dense", "image": image, "net": f"rung_{rung:.3f}", "loss": loss, "fer_score": fer})
        for rung in (0.05, 0.01, 0.002):
            rows.append({"label": "pruned", "image": image, "net": f"rung_{rung:.3f}", "loss": 15e-4, "fer_score": 0.4})
    df = pd.DataFrame(rows).assign(run_id=lambda d: d.label + d.image)
    analysis = ReportSpec(group="label", metrics=("fer_score", "loss"), comparisons=(Comparison("pruned", "dense"),))
    table = rung_comparisons(df, analysis)
    assert table.rung.tolist() == [0.002]
    assert table.iloc[0]["diff"] == pytest.approx(0.3)  # against the dense nets of its own fit, not 0.1 at 0.05
    curves = fer_by_rung(df, "fer_score", analysis).set_index(["label", "rung"])
    assert curves.loc[("pruned", 0.05), "n"] == 0 and curves.loc[("pruned", 0.05), "overshot"] == 2
    assert curves.loc[("pruned", 0.002), "n"] == 2 and curves.loc[("pruned", 0.002), "overshot"] == 0
    assert (curves.loc["dense", "overshot"] == 0).all()
    apart = df[~((df.label == "dense") & (df.net == "rung_0.002"))]  # no rung both reach in band
    assert rung_comparisons(apart, analysis).empty
    text = write_report(apart, analysis, tmp_path, "Apart").markdown.read_text()
    assert "None: pruned vs dense have ladder snapshots, but on no image do both have one within" in text
    floored = dataclasses.replace(analysis, min_detail=0.01)
    found = pd.DataFrame(  # a discoverer's pictures, which set each image's detail: c is flat
        {"label": "pb", "image": ["a", "b", "c"], "net": "best", "fer_score": 0.3, "image_detail": [0.1, 0.1, 0.001]}
    )
    flat = pd.concat([apart.assign(image=np.where(apart.label == "pruned", "c", apart.image)), found])
    flat = flat.assign(run_id=flat.label + flat.image, image_path="picture.png")
    text = write_report(flat, floored, tmp_path / "flat", "Flat").markdown.read_text()
    assert "## Comparisons at each shared rung" not in text  # their snapshots are left out, as in every comparison


def test_a_snapshot_overshoots_only_the_rungs_of_its_own_runs_ladder():
    """Run "coarse" climbs a ladder without 0.02: its net of loss 0.015 is the first it filed within
    0.05, and stands there, although run "fine" of another phase has a rung at 0.02. A net that
    did overshoot its own run's finer rung is still left out."""
    from ferlab.report.fit import rung_snapshots

    rows = [
        {"run_id": run, "label": run, "image": "a", "net": f"rung_{rung:.3f}", "loss": loss, "fer_score": 0.5}
        for run, rung, loss in (
            ("coarse", 0.05, 0.015),
            ("coarse", 0.01, 0.008),
            ("fine", 0.05, 0.04),
            ("fine", 0.02, 0.008),
            ("fine", 0.01, 0.008),
        )
    ]
    snaps = rung_snapshots(pd.DataFrame(rows), ReportSpec(group="label")).set_index(["run_id", "rung"])
    assert not snaps.loc[("coarse", 0.05), "overshot"] and not snaps.loc[("coarse", 0.01), "overshot"]
    assert snaps.loc[("fine", 0.02), "overshot"] and not snaps.loc[("fine", 0.05), "overshot"]
    assert not snaps.loc[("fine", 0.01), "overshot"]


def test_a_curve_is_cut_where_its_set_of_images_changes_at_the_same_count():
    from ferlab.report.fit import fer_by_rung

    rows = [
        {"label": "g", "image": image, "net": f"rung_{rung:.3f}", "loss": loss, "fer_score": 0.5}
        for image, rung, loss in (("a", 0.05, 0.04), ("a", 0.02, 0.015), ("b", 0.01, 0.008), ("c", 0.05, 0.03))
    ]
    curves = fer_by_rung(pd.DataFrame(rows), "fer_score", ReportSpec(group="label", resamples=50))
    by_rung = curves.sort_values("rung", ascending=False)
    assert by_rung["images"].tolist() == [2, 1, 1]  # {a, c}, {a}, {b}
    assert by_rung["piece"].tolist() == [0, 1, 2]


def test_groups_that_share_no_image_show_no_means_side_by_side(tmp_path):
    from ferlab.report.stats import comparisons

    df = pd.DataFrame({"regime": ["sgd", "es"], "image": ["skull", "butterfly"], "fer_score": [0.2, 0.9]})
    analysis = ReportSpec(comparisons=(Comparison("sgd", "es"),), resamples=50, match_on=None)
    row = compare(df, analysis.comparisons[0], "fer_score", analysis)
    assert (row["n_a"], row["n_b"], row["pairs"]) == (0, 0, 0) and np.isnan(row["mean_a"]) and np.isnan(row["mean_b"])
    assert comparisons(df, analysis).empty
    text = write_report(df, analysis, tmp_path, "x").markdown.read_text()
    assert "Not compared here (one side has no scored net, or no image both painted): sgd vs es." in text


def test_the_header_counts_nets_and_runs_not_lost_placeholders(tmp_path):
    from ferlab.report import LOST

    df = pd.DataFrame(
        [
            {"run_key": "k1", "run_id": "r1", "regime": "sgd", "image": "a", "net": "seed_0", "fer_score": 0.5},
            {"run_key": "k2", "run_id": "", "regime": "sgd", "image": "a", "net": LOST},
            {"run_key": "k2", "run_id": "", "regime": "sgd", "image": "a", "net": LOST},
            {"run_key": "k3", "run_id": "", "regime": "sgd", "image": "b", "net": LOST},
        ]
    )
    text = write_report(df, ReportSpec(match_on=None), tmp_path, "x").markdown.read_text()
    assert "1 networks from 1 runs; 2 runs failed, their 3 networks counted as lost." in text


def test_a_run_whose_best_snapshot_is_dead_counts_through_its_scored_one():
    from ferlab.report.fit import at_fit

    df = pd.DataFrame(
        [
            {"run_id": "r", "label": "sgd", "image": "a", "net": "seed_0", "loss": 0.02, "fer_score": 0.7},
            {"run_id": "r", "label": "sgd", "image": "a", "net": "rung_0.005", "loss": 0.004, "fer_score": np.nan},
            {"run_id": "r", "label": "sgd", "image": "a", "net": "rung_0.010", "loss": 0.009, "fer_score": 0.3},
            {"run_id": "q", "label": "sgd", "image": "a", "net": "seed_0", "loss": 0.001, "fer_score": np.nan},
            {"run_id": "q", "label": "sgd", "image": "a", "net": "rung_0.010", "loss": 0.008, "fer_score": 0.2},
        ]
    )
    kept = at_fit(df, ReportSpec(group="label", metrics=("fer_score", "loss")))
    # r: its dead rung_0.005 gives way to its scored rung_0.010; q: its final net passes the gate but is
    # dead, so it counts through its scored snapshot
    assert sorted(zip(kept["run_id"], kept["net"])) == [("q", "rung_0.010"), ("q", "seed_0"), ("r", "rung_0.010")]


def test_the_printed_summary_says_none_passed_when_nothing_does(tmp_path):
    from ferlab.study.run import summary_text

    df = pd.DataFrame([{"run_id": "r1", "regime": "sgd", "image": "a", "net": "seed_0", "fer_score": 0.5, "loss": 0.2}])
    analysis = ReportSpec(metrics=("fer_score", "loss"), resamples=50)
    text = summary_text(write_report(df, analysis, tmp_path, "t"), analysis)
    assert "none passed" in text and "0.500" in text  # the gate's table, then the unmatched one


def test_one_value_has_a_mean_and_no_interval(tmp_path):
    """Resampling one net gives [x, x], which reads as certainty; the cell says it stands on one value."""
    from ferlab.report.stats import bootstrap_median

    assert bootstrap_ci([0.3, np.nan], seed=0)[0] == 0.3 and np.isnan(bootstrap_ci([0.3], seed=0)[1:]).all()
    assert bootstrap_median([0.3], seed=0)[0] == 0.3 and np.isnan(bootstrap_median([0.3], seed=0)[2])
    df = pd.DataFrame({"regime": ["one", "two", "two"], "image": "a", "fer_score": [0.3, 0.2, 0.4]})
    text = write_report(df, ReportSpec(match_on=None, resamples=50), tmp_path, "x").markdown.read_text()
    assert "| one | 1 | 0.300 [one value] |" in text and "| two | 2 | 0.300 [0.200, 0.400] |" in text


def test_intervals_resample_searches_not_the_nets_of_one_search(tmp_path):
    """An archive's nets are one draw of their search: the interval resamples searches (the cluster
    bootstrap), so 8 nets of one run have a mean and no interval (``[one search]``), and nets that
    agree within their searches but not between them get the between-search spread, not a band
    narrowed by counting each search's nets as independent. Each net its own search: the plain
    bootstrap. A row's ``search`` overrides its run (an SGD run's side-by-side seeds)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0.5, 0.1, 4)
    values = np.repeat(centres, 10) + rng.normal(0, 0.001, 40)
    clusters = np.repeat(["a", "b", "c", "d"], 10)
    mean, low, high = bootstrap_ci(values, seed=1, clusters=clusters)
    _, naive_low, naive_high = bootstrap_ci(values, seed=1)
    _, means_low, means_high = bootstrap_ci(centres, seed=1)  # the 4 searches' means
    assert mean == pytest.approx(values.mean()) and low < mean < high
    assert high - low > 2.5 * (naive_high - naive_low)
    assert high - low == pytest.approx(means_high - means_low, rel=0.2)
    own = bootstrap_ci(values[:12], seed=1, clusters=[str(i) for i in range(12)])
    assert own == pytest.approx(bootstrap_ci(values[:12], seed=1), rel=1e-12)
    renamed = bootstrap_ci(values, seed=1, clusters=np.repeat(["z", "q", "m", "a"], 10))  # random run ids
    assert renamed == (mean, low, high)  # the draws follow the clusters' order, not their labels
    one = bootstrap_ci(values[:10], seed=1, clusters=clusters[:10])
    assert one[0] == pytest.approx(values[:10].mean()) and np.isnan(one[1:]).all()

    rows = [{"run_id": "me", "regime": "map_elites", "image": f"i{k}", "fer_score": 0.2 + k / 100} for k in range(8)]
    rows += [
        {
            "run_id": f"sgd{k // 2}",
            "search": f"sgd{k // 2}/seed_{k % 2}",
            "regime": "sgd",
            "image": "a",
            "fer_score": 0.5 + k / 100,
        }
        for k in range(4)
    ]
    df = pd.DataFrame(rows)
    df.loc[df.regime == "map_elites", "search"] = "me"
    report = write_report(df, ReportSpec(match_on=None, resamples=200), tmp_path, "x")
    summary = report.summary.set_index("regime")
    assert summary.loc["map_elites", ["n", "searches"]].tolist() == [8, 1]
    assert summary.loc["sgd", ["n", "searches"]].tolist() == [4, 4]
    text = report.markdown.read_text()
    assert "| map_elites | 8 | 1 | 0.235 [one search] |" in text
    assert "bootstrap interval of the mean, 200 resamples of the searches]" in text
    no_loss = summarize(df, ReportSpec(metrics=("fer_score", "loss"), match_on=None)).set_index("regime")
    assert no_loss["loss"].isna().all() and no_loss.loc["sgd", "searches"] == 4  # a metric no row has
    assert "| sgd | 4 | 4 | 0.515 [0.5" in text


def test_a_comparison_stands_on_the_searches_that_found_its_images(tmp_path):
    """Two of four images found by one search are one draw of it: the interval resamples the three
    sources (the cluster bootstrap), the Wilcoxon test runs over their mean differences, and the
    table says ``4 (3 searches)``. With every image its own source nothing changes."""
    from scipy.stats import wilcoxon

    rows = []
    for k, (image, source) in enumerate([("skull", "skull"), ("fly", "fly"), ("x0", "ns1"), ("x1", "ns1")]):
        rows.append({"run_id": f"d{k}", "regime": "disc", "image": image, "image_source": source, "fer_score": 0.3})
        for s in range(2):
            value = 0.5 + k / 10 + s / 100
            rows.append(
                {"run_id": f"r{k}{s}", "regime": "rep", "image": image, "image_source": source, "fer_score": value}
            )
    df = pd.DataFrame(rows)
    analysis = ReportSpec(comparisons=(Comparison("disc", "rep"),), match_on=None, resamples=500)
    row = compare(df, Comparison("disc", "rep"), "fer_score", analysis)
    diffs = np.array([0.205, 0.305, 0.405, 0.505])
    assert row["pairs"] == 4 and row["sources"] == 3 and row["diff"] == pytest.approx(diffs.mean())
    seed = compare(df.drop(columns="image_source"), Comparison("disc", "rep"), "fer_score", analysis)
    from ferlab.report.stats import seed_for

    draw = seed_for(0, "disc|rep", "fer_score")
    in_order = [0.305, 0.205, 0.405, 0.505]  # compare takes the images sorted: fly, skull, x0, x1
    by_hand = bootstrap_ci(in_order, draw, 500, clusters=["fly", "skull", "ns1", "ns1"])
    assert (row["diff"], row["diff_low"], row["diff_high"]) == pytest.approx(by_hand)
    assert (row["diff_low"], row["diff_high"]) != pytest.approx((seed["diff_low"], seed["diff_high"]))
    assert row["p"] == pytest.approx(wilcoxon([0.305, 0.455, 0.205]).pvalue)  # fly, ns1's mean, skull
    assert seed["p"] == pytest.approx(wilcoxon(diffs).pvalue) and seed["sources"] == 4
    text = write_report(df, analysis, tmp_path, "x").markdown.read_text()
    assert "| fer_score | disc vs rep | 4, 8 | 4 (3 searches) |" in text
    own = df.assign(image_source=df["image"])
    alone = compare(own, Comparison("disc", "rep"), "fer_score", analysis)
    assert {k: alone[k] for k in seed} == pytest.approx(seed) and alone["sources"] == 4


def test_a_comparison_whose_images_one_search_found_says_so_where_its_interval_would_be(tmp_path):
    """Two images, both found by one novelty run: one draw of that search, so no interval, and the cell
    says why (``[one search]``), as a summary's does, not ``[one value]``."""
    rows = []
    for k, image in enumerate(("x0", "x1")):
        rows.append({"run_id": "ns", "regime": "disc", "image": image, "image_source": "ns", "fer_score": 0.3})
        rows.append(
            {"run_id": f"r{k}", "regime": "rep", "image": image, "image_source": "ns", "fer_score": 0.5 + k / 10}
        )
    analysis = ReportSpec(comparisons=(Comparison("disc", "rep"),), match_on=None, resamples=200)
    text = write_report(pd.DataFrame(rows), analysis, tmp_path, "x").markdown.read_text()
    assert "| fer_score | disc vs rep | 2, 2 | 2 (1 search) | 0.300 | 0.550 | 0.250 [one search] |" in text
    one = pd.DataFrame(rows[:2])  # one image: one value
    assert "| 0.200 [one value] |" in write_report(one, analysis, tmp_path / "one", "x").markdown.read_text()


def test_each_group_shows_the_median_detail_and_size_of_the_nets_its_cells_stand_on(tmp_path):
    """A picture with little structure has little to fracture, and nets of very different sizes differ
    in more than their search: beside each group's metrics the report gives the median ``image_detail``
    and ``nonzero_weights`` of the same nets (at the gate: those that pass it; unmatched: every scored
    final net), and says how to read them; a frame without the columns gets neither."""
    rows = [
        {
            "run_id": "p",
            "label": "pb",
            "image": "a",
            "net": "best",
            "fer_score": 0.3,
            "image_detail": 0.15,
            "nonzero_weights": 40,
        },
        *(
            {
                "run_id": f"s{k}",
                "label": "sgd",
                "image": "a",
                "net": "seed_0",
                "fer_score": 0.6,
                "loss": loss,
                "image_detail": d,
                "nonzero_weights": w,
            }
            for k, (loss, d, w) in enumerate(((0.001, 0.14, 1000), (0.002, 0.12, 1200), (0.5, 0.01, 3000)))
        ),
        {"run_id": "d", "label": "sgd", "image": "a", "net": "seed_1", "dead": 1.0, "loss": np.inf},
    ]
    analysis = ReportSpec(group="label", metrics=("fer_score", "loss"), resamples=50)
    report = write_report(pd.DataFrame(rows), analysis, tmp_path / "with", "t")
    text = report.markdown.read_text()
    gate, unmatched = text.split("## Unmatched results")
    assert "| image detail | weights |" in gate and "| 0.130 | 1100 |" in gate and "| 0.150 | 40 |" in gate
    assert "| 0.120 | 1200 |" in unmatched  # every scored final net; the dead one has no picture measured
    assert text.count("`image detail`: the median") == 1 and text.count("`weights`: the median") == 1
    bare = pd.DataFrame(rows).drop(columns=["image_detail", "nonzero_weights"])
    plain = write_report(bare, analysis, tmp_path / "without", "t").markdown.read_text()
    assert "image detail" not in plain and "| weights |" not in plain


def test_cliffs_delta_weighs_each_image_and_each_search_alike():
    """Cliff's delta stands on the units the difference and the test do: each image's delta, then the
    mean over images (over their sources where one search found several). Pooling pairs let an image
    of 4 x 4 nets outweigh one of 1 x 1 (15/17 where the images disagree), and a search that found
    three images outweigh one that found one."""
    rows = []
    for s in range(4):
        rows.append({"regime": "a", "image": "big", "fer_score": 0.2 + s / 100})
        rows.append({"regime": "b", "image": "big", "fer_score": 0.6 + s / 100})
    rows.append({"regime": "a", "image": "small", "fer_score": 0.6})
    rows.append({"regime": "b", "image": "small", "fer_score": 0.2})
    analysis = ReportSpec(match_on=None, resamples=200)
    row = compare(pd.DataFrame(rows), Comparison("a", "b"), "fer_score", analysis)
    assert row["pairs"] == 2 and row["delta"] == pytest.approx(0.0)
    found = []
    for image, source, sign in (("x0", "ns", 1), ("x1", "ns", 1), ("x2", "ns", 1), ("y", "y", -1)):
        found.append({"regime": "a", "image": image, "image_source": source, "fer_score": 0.4})
        found.append({"regime": "b", "image": image, "image_source": source, "fer_score": 0.4 + sign / 10})
    row = compare(pd.DataFrame(found), Comparison("a", "b"), "fer_score", analysis)
    assert row["sources"] == 2 and row["delta"] == pytest.approx(0.0)
    alone = compare(pd.DataFrame(found).drop(columns="image_source"), Comparison("a", "b"), "fer_score", analysis)
    assert alone["delta"] == pytest.approx(0.5)


def _has_colour(png: bytes, rgb, tol: int = 12) -> bool:
    import io

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), int)
    return bool((np.abs(pixels - np.asarray(rgb)).max(axis=-1) <= tol).any())


def test_a_curve_against_fit_is_cut_where_its_images_change(tmp_path):
    """Fewer images reach the finer rungs, so a group's median there can move with which images remain:
    the curve is cut where the number of images changes, and the report says how to read the cuts."""
    from ferlab.report.fit import fer_by_rung
    from ferlab.report.plots import curve_pieces

    part = pd.DataFrame({"rung": [0.08, 0.05, 0.02, 0.01, 0.005], "images": [3, 3, 2, 2, 1], "median": 0.1})
    part["piece"] = [0, 0, 1, 1, 2]
    assert [p["rung"].tolist() for p in curve_pieces(part)] == [[0.08, 0.05], [0.02, 0.01], [0.005]]
    assert len(curve_pieces(part.assign(piece=0))) == 1
    assert [p["rung"].tolist() for p in curve_pieces(part.assign(median=[0.1, np.nan, 0.1, 0.1, 0.1]))] == [
        [0.08],
        [0.02, 0.01],
        [0.005],
    ]
    df = ladder_frame()
    curves = fer_by_rung(df, "fer_score", ReportSpec(group="label", metrics=("fer_score", "loss")))
    es = curves[curves.label == "es"].sort_values("rung", ascending=False)
    assert es["images"].tolist() == [2, 2, 1]  # only es_gated reached 0.01, on image a
    assert [p["rung"].tolist() for p in curve_pieces(es)] == [[0.05, 0.02], [0.01]]
    analysis = ReportSpec(group="label", metrics=("fer_score", "loss"), comparisons=(Comparison("sgd", "es"),))
    text = write_report(df, analysis, tmp_path, "Cuts").markdown.read_text()
    assert "a group's curve is cut where the images it stands on change" in text


def test_plots_give_each_group_one_colour_and_mark_the_fit_gate():
    """A group keeps its colour from plot to plot (the loss plot, holding only the groups with a
    loss, coloured them anew: its one group took the box plot's first colour), the loss plot draws
    the fit gate, and the box plot draws a net that misses the gate hollow."""
    from ferlab.report.plots import _misses, loss_plot, metric_plot, palette

    rows = [{"regime": g, "image": "i", "fer_score": 0.3 + k / 10, "loss": np.nan} for k, g in enumerate("abc")]
    rows += [{"regime": "d", "image": "i", "fer_score": 0.6, "loss": loss} for loss in (0.001, 0.05)]
    df = pd.DataFrame(rows)
    colours = palette(df["regime"])
    assert colours == {"a": "C0", "b": "C1", "c": "C2", "d": "C3"}
    assert palette(["d", "a", "d"]) == {"a": "C0", "d": "C1"}
    red, blue = (224, 93, 94), (87, 153, 199)  # matplotlib's C3 and C0 at the points' alpha 0.75 on white
    png = loss_plot(df, "fer_score", "regime", "loss", colours, gate=0.01)
    assert _has_colour(png, red) and not _has_colour(png, blue)
    assert _misses(df, ("loss", 0.01)).tolist() == [False, False, False, False, True]  # NaN: no loss, no miss
    assert not _misses(df, None).any() and not _misses(df.drop(columns="loss"), ("loss", 0.01)).any()
    assert metric_plot(df, "fer_score", "regime", 0, colours, ("loss", 0.01)) != metric_plot(
        df, "fer_score", "regime", 0, colours, None
    )


def test_the_box_plot_draws_a_net_of_an_image_below_the_detail_floor_as_a_cross(monkeypatch):
    """Beside the hollow fit-gate misses, a net whose image has too little structure to count is a
    cross, whatever its fit, and the title says what crosses mean."""
    import ferlab.figures
    from ferlab.report.plots import metric_plot

    drawn = []
    monkeypatch.setattr(ferlab.figures, "figure_png", lambda fig, tight=False: drawn.append(fig) or b"")
    df = pd.DataFrame(
        {
            "regime": ["a", "a", "b", "b", "b"],
            "fer_score": [0.2, 0.3, 0.4, 0.5, 0.6],
            "loss": [np.nan, np.nan, 0.001, 0.05, 0.05],
        }
    )
    simple = pd.Series([True, False, False, True, False])
    metric_plot(df, "fer_score", "regime", 0, None, ("loss", 0.01), simple)
    metric_plot(df, "fer_score", "regime", 0, None, ("loss", 0.01))
    (ax, *_), (plain, *_) = drawn[0].axes, drawn[1].axes
    marks = ["hollow: loss above the fit gate 0.01", "x: image below the detail floor"]
    assert ax.get_title().splitlines()[1:] == marks
    assert "detail floor" not in plain.get_title()
    # per group, three scatters: filled, hollow (missed the fit gate), crosses (below the floor)
    ys = [sorted(round(float(y), 2) for _, y in c.get_offsets()) for c in ax.collections]
    assert ys == [[0.3], [], [0.2], [0.4], [0.6], [0.5]]
    assert [len(c.get_offsets()) for c in plain.collections] == [2, 0, 0, 1, 2, 0]


def test_the_columns_of_a_comparison_are_explained_at_the_first_table(tmp_path):
    """A reader meets the comparisons at the fit gate first; what `b - a`, Cliff's delta and p mean
    stood only under the unmatched comparisons further down. It now stands once, at the first table."""
    analysis = ReportSpec(group="label", metrics=("fer_score", "loss"), comparisons=(Comparison("pb", "sgd"),))
    text = write_report(ladder_frame(), analysis, tmp_path / "gated", "t").markdown.read_text()
    note = "`b - a`: mean over images of the per-image difference of means"
    assert text.count(note) == 1
    gate, unmatched = text.index("### Comparisons at the fit gate"), text.index("## Unmatched comparisons")
    assert gate < text.index(note) < text.index("| metric | a vs b", gate) < unmatched
    assert "Columns as in the comparisons at the fit gate." in text[unmatched:]
    plain = ReportSpec(group="label", comparisons=(Comparison("pb", "sgd"),), match_on=None)
    text = write_report(ladder_frame(), plain, tmp_path / "plain", "t").markdown.read_text()
    assert text.count(note) == 1 and text.index("## Comparisons") < text.index(note)
