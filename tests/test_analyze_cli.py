"""``ferlab analyze``: metrics.json and figures for any source, one-line errors, nothing half-written."""

import json

import jax
import pytest

from ferlab.cli import main
from ferlab.cppn import init_net
from ferlab.files import write_net
from ferlab.metrics import METRICS

FIGURES = {"output.png", "features.png", "weight_sweeps.png", "random_sweeps.png"}


@pytest.fixture
def small_net(tmp_path):
    return write_net(tmp_path / "net.npz", init_net("3;cache:2,gaussian:2,sin:2", jax.random.PRNGKey(1)))


def test_analyze_writes_metrics_and_figures(small_net, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["analyze", str(small_net), "--size", "16", "--out", str(out)]) == 0
    result = json.loads((out / "metrics.json").read_text())
    assert set(result["metrics"]) == set(METRICS)
    assert all(0.0 <= v <= 1.0 for v in result["metrics"].values())
    # the distinct metrics: axis-free sweep_asymmetry is sweep_fracture, counted once
    assert result["form"] == "axis_free" and result["fer_score_of"] == [m for m in METRICS if m != "sweep_asymmetry"]
    assert result["metrics"]["sweep_asymmetry"] == result["metrics"]["sweep_fracture"]
    scored = [result["metrics"][m] for m in result["fer_score_of"]]
    assert result["fer_score"] == pytest.approx(sum(scored) / len(scored))
    assert result["size"] == 16 and "human_label_auroc" not in result
    assert set(result["figures"]) == FIGURES  # labels.png only for a labelled genome
    for name in FIGURES:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert "fer_score" in capsys.readouterr().out


def test_analyze_says_when_the_picture_shows_almost_no_structure(tmp_path, capsys):
    """A faint picture has nothing to fracture, so its (low) fer_score means little: ``analyze`` says so
    beside the score, with the picture's ``image_detail`` (metrics.json), and says nothing for a picture
    that shows its structure."""
    import jax.numpy as jnp

    from ferlab.cppn import DenseNet

    arch = init_net("1;sin:2", jax.random.PRNGKey(0)).arch
    hidden = jnp.zeros((4, 2)).at[0, 0].set(8.0).at[1, 1].set(5.0)  # sin(8x), sin(5y)
    stripes = jnp.zeros((2, 3)).at[0, 2].set(0.7).at[1, 2].set(0.3)  # brightness |0.7 sin 8x + 0.3 sin 5y|
    plaid = write_net(tmp_path / "plaid.npz", DenseNet(arch, (hidden, stripes)))
    faint = write_net(tmp_path / "faint.npz", DenseNet(arch, (hidden, stripes * 0.01)))  # a hundredth as bright
    for src, shows in ((plaid, True), (faint, False)):
        out = tmp_path / src.stem
        assert main(["analyze", str(src), "--size", "16", "--out", str(out)]) == 0
        said = capsys.readouterr().out
        detail = json.loads((out / "metrics.json").read_text())["image_detail"]
        assert (detail >= 0.01) == shows and ("shows almost no structure" in said) == (not shows), (detail, said)


def test_analyze_reports_human_label_auroc_for_a_labelled_genome(picbreeder_dir, tmp_path, capsys):
    out = tmp_path / "ghost"
    src = picbreeder_dir / "genomes" / "cppnx" / "542_GhostFaceSpooky.xml"
    assert main(["analyze", str(src), "--size", "16", "--out", str(out)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= result["human_label_auroc"] <= 1.0
    assert result["human_labels"]["features"] == 2
    features = result["human_labels"]["by_feature"]  # which features the measure tells apart, most links first
    assert len(features) == 2 and sum(f["links"] for f in features) == result["human_labels"]["links"]
    assert features[0]["links"] >= features[1]["links"] and all(0.0 <= f["auroc"] <= 1.0 for f in features)
    assert set(result["figures"]) == FIGURES | {"labels.png"} and (out / "labels.png").read_bytes()[:4] == b"\x89PNG"
    weakest = min(features, key=lambda f: f["auroc"])
    assert last.endswith(
        f"human-label AUROC {result['human_label_auroc']:.3f}; weakest feature {weakest['feature']!r}, "
        f"{weakest['links']} links, {weakest['auroc']:.2f})"
    )


@pytest.mark.slow
@pytest.mark.parametrize("genome", ["576_Skull", "4376_ButterflyColor"])
def test_analyze_human_label_auroc_on_the_shared_labelled_genomes(picbreeder_dir, tmp_path, genome):
    out = tmp_path / genome
    assert main(["analyze", str(picbreeder_dir / "genomes" / "cppnx" / f"{genome}.xml"), "--out", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["human_label_auroc"] >= 0.75


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.npz"], "missing.npz: no such file"),
        (["{folder}"], "is a folder, not a file"),
        (["/dev/null"], "/dev/null: not a regular file"),
        (["{net}", "--size", "4"], "size must be at least 8"),
        (["{net}", "--size", "x"], "size must be an integer"),
        (["{net}", "--out", "{file}"], "is not a folder"),
    ],
)
def test_analyze_errors_are_one_line_and_write_nothing(small_net, tmp_path, capsys, args, message):
    existing = tmp_path / "file.txt"
    existing.write_text("keep")
    (tmp_path / "nets.npz").mkdir()
    args = [a.format(net=small_net, file=existing, folder=tmp_path / "nets.npz") for a in args]
    out = ["--out", str(tmp_path / "out")] if "--out" not in args else []
    assert main(["analyze", *args, *out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ferlab: error:") and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists() and existing.read_text() == "keep"


def test_analyze_says_done_only_when_its_figures_are_drawn():
    """The suite's last stage was passed on as ``done`` with the figures still to draw (``done: 92%``,
    then ``figures``); it now reads ``scored``, and ``done`` comes once, at the end, at its total."""
    from ferlab.metrics.analysis import analyze_many
    from ferlab.metrics.suite import MetricsConfig

    seen = []
    net = init_net("3;cache:2,gaussian:2,sin:2", jax.random.PRNGKey(1))
    analyze_many([net], config=MetricsConfig(size=16), progress=lambda d, t, s: seen.append((d, t, s)))
    stages = [s for _, _, s in seen]
    assert stages.count("done") == 1 and stages[-1] == "done" and seen[-1][0] == seen[-1][1]
    assert stages.index("scored") < stages.index("figures") < stages.index("done")
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))
