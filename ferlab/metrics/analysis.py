"""One call that measures a net and draws its pictures: what ``ferlab analyze`` writes.

``analyze`` (``analyze_many`` for a run's nets, measured together) computes
everything first (metrics, human-label AUROC for a labelled genome and its
``labels.png``, figures)
and returns an ``Analysis``; ``Analysis.write``
then puts ``metrics.json`` and the PNGs in a folder, each file atomically, so
an error never leaves half a result behind.

A dead net (no weight moves its picture, ``suite.DeadNet``) is a result too:
``status: dead`` with the reason, no metrics and no score, and only the
pictures that need no sweep (output and feature maps).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ferlab import figures
from ferlab.cppn import DenseNet
from ferlab.files import write_bytes, write_text
from ferlab.genome import Genome
from ferlab.metrics import sweeps
from ferlab.metrics.labels import label_report
from ferlab.metrics.suite import (
    SCORED,
    DeadNet,
    Measurement,
    MetricsConfig,
    Progress,
    full_float32,
    measure_many,
    one_blas_thread,
)
from ferlab.render import render

SWEEP_STEPS = (-1.0, -0.5, 0.0, 0.5, 1.0)
SWEEP_ROWS = 8


@dataclass(frozen=True)
class Analysis:
    """Metrics, their score, facts about the run, the label check and the figures (PNG bytes).

    ``status`` is "scored", or "dead" with ``reason`` (then no metrics and ``fer_score`` None)."""

    metrics: dict[str, float]
    fer_score: float | None
    size: int
    info: dict
    labels: dict | None = None
    figures: dict[str, bytes] = field(default_factory=dict)
    status: str = "scored"
    reason: str | None = None

    @property
    def dead(self) -> bool:
        return self.status == "dead"

    def to_json(self) -> dict:
        if self.dead:
            out = {"status": "dead", "reason": self.reason, "metrics": {}, "size": self.size, **self.info}
        else:
            out = {
                "status": self.status,
                "metrics": self.metrics,
                "fer_score": self.fer_score,
                "fer_score_of": list(SCORED[self.info["form"]]),  # the distinct metrics it averages
                "size": self.size,
                **self.info,
            }
        if self.labels is not None:  # NaN (too few labelled links) is written as null
            labels = {k: None if isinstance(v, float) and np.isnan(v) else v for k, v in self.labels.items()}
            out["human_label_auroc"] = labels["auroc"]
            out["human_labels"] = labels
        out["figures"] = sorted(self.figures)
        return out

    def write(self, out_dir: str | Path) -> list[Path]:
        out_dir = Path(out_dir)
        paths = [write_bytes(out_dir / name, data) for name, data in sorted(self.figures.items())]
        paths.append(write_text(out_dir / "metrics.json", json.dumps(self.to_json(), indent=2) + "\n"))
        return paths


# Progress units (pictures, roughly) of the stages after the metrics.
LABEL_WORK = 500
FIGURE_WORK = 100


def analyze(
    net: DenseNet,
    genome: Genome | None = None,
    config: MetricsConfig | None = None,
    draw: bool = True,
    progress: Progress | None = None,
) -> Analysis:
    """Measure ``net`` (the layerized ``genome`` if one is given) and draw the paper's figures."""
    return analyze_many([net], [genome], config, draw, progress)[0]


def _genome_facts(genome: Genome | None) -> dict:
    """What metrics.json says of the genome behind a net: the innovations of its links that close a
    cycle and read 0 (``Genome.recurrent_links``), where it has any."""
    recurrent = genome.recurrent_links() if genome is not None else ()
    return {"recurrent_links": [genome.links[k].innovation for k in recurrent]} if recurrent else {}


@full_float32()
def analyze_many(
    nets: list[DenseNet],
    genomes: list[Genome | None] | None = None,
    config: MetricsConfig | None = None,
    draw: bool = True,
    progress: Progress | None = None,
) -> list[Analysis]:
    """``analyze`` of each net (a run's nets), the suite measuring them together (``measure_many``:
    shared picture calls per architecture); each net's Analysis is the one it gets alone. All of it
    in true float32 (``full_float32``), so the labels and figures compile once with the metrics."""
    config = config or MetricsConfig()
    genomes = genomes or [None] * len(nets)
    labelled = [g is not None and any(link.label for link in g.links) for g in genomes]
    extra = {"human labels": LABEL_WORK * sum(labelled), "figures": FIGURE_WORK * len(nets) if draw else 0}
    state = {"total": 1}

    def metrics_progress(done: int, total: int, stage: str):
        state["total"] = total
        if progress:  # the suite's end is not the analysis' end where labels or figures follow
            later = sum(extra.values())
            progress(done, total + later, "scored" if stage == "done" and later else stage)

    def report(stage: str):  # a stage after the metrics begins; earlier ones are done
        if progress:
            done_before = {"human labels": 0, "figures": extra["human labels"]}[stage]
            progress(state["total"] + done_before, state["total"] + sum(extra.values()), stage)

    measured = measure_many(nets, config, progress=metrics_progress)
    labels = [None] * len(nets)
    if any(labelled):
        report("human labels")
        with one_blas_thread():
            labels = [label_report(g, config.size) if ok else None for g, ok in zip(genomes, labelled)]
    if draw:
        report("figures")
    out = []
    for net, genome, m, label in zip(nets, genomes, measured, labels):
        facts = _genome_facts(genome)
        if isinstance(m, DeadNet):
            pictures = _plain_figures(net, config) if draw else {}
            out.append(Analysis({}, None, config.size, facts, None, pictures, status="dead", reason=str(m)))
            continue
        pictures = {**_plain_figures(net, config), **_sweep_figures(net, m, config)} if draw else {}
        if draw and label is not None and any(f["auroc"] is not None for f in label.summary["by_feature"]):
            picture = np.asarray(render(net, config.size).rgb)
            pictures["labels.png"] = figures.label_grid(
                label.visible, label.labels, label.summary["by_feature"], picture
            )
        summary = label.summary if label else None
        out.append(Analysis(m.metrics, m.fer_score, config.size, {**m.info, **facts}, summary, pictures))
    if progress:
        total = state["total"] + sum(extra.values())
        progress(total, total, "done")
    return out


def _plain_figures(net: DenseNet, cfg: MetricsConfig) -> dict[str, bytes]:
    """The pictures that need no sweep: the output and the hidden feature maps."""
    return {"output.png": figures.output_image(net, 256), "features.png": figures.feature_grid(net, cfg.size)}


def _sweep_figures(net: DenseNet, measured: Measurement, cfg: MetricsConfig) -> dict[str, bytes]:
    """Single-weight sweeps (distinct effects spread evenly over the range of gains) and
    random-direction sweeps."""
    single, reps = measured.single, measured.representatives
    by_gain = reps[np.argsort(-single.gain[reps])]
    top = by_gain[np.unique(np.linspace(0, by_gain.size - 1, min(SWEEP_ROWS, by_gain.size)).astype(int))]
    idx = single.dirs[top]
    names = [_weight_name(net, int(i)) for i in idx]
    weight_frames = sweeps.pictures(net, idx, np.tile(SWEEP_STEPS, (idx.size, 1)), cfg.size, cfg.chunk)
    dirs = measured.random.dirs[:SWEEP_ROWS]
    random_frames = sweeps.pictures(net, dirs, np.tile(SWEEP_STEPS, (len(dirs), 1)), cfg.size, cfg.chunk)
    return {
        "weight_sweeps.png": figures.sweep_grid(weight_frames, names, SWEEP_STEPS),
        "random_sweeps.png": figures.sweep_grid(random_frames, [f"random {k}" for k in range(len(dirs))], SWEEP_STEPS),
    }


def _weight_name(net: DenseNet, index: int) -> str:
    if not 0 <= index < net.arch.n_weights:
        raise IndexError(index)
    layer = int(sweeps.kernel_of(net.arch, index))
    row, col = divmod(index - net.arch.kernel_offsets[layer], net.arch.kernel_shapes[layer][1])
    return f"layer_{layer}[{row},{col}]"
