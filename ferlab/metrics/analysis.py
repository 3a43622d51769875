"""One call that measures a net and draws its pictures: what ``ferlab analyze`` writes.

``analyze`` computes everything first (metrics, human-label AUROC for a
labelled genome, figures) and returns an ``Analysis``; ``Analysis.write``
then puts ``metrics.json`` and the PNGs in a folder, each file atomically, so
an error never leaves half a result behind.
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
from ferlab.metrics.labels import label_auroc
from ferlab.metrics.suite import MetricsConfig, Progress, fer_metrics, fer_score

SWEEP_STEPS = (-1.0, -0.5, 0.0, 0.5, 1.0)
SWEEP_ROWS = 8


@dataclass(frozen=True)
class Analysis:
    """Metrics, their score, facts about the run, the label check and the figures (PNG bytes)."""

    metrics: dict[str, float]
    fer_score: float
    size: int
    info: dict
    labels: dict | None = None
    figures: dict[str, bytes] = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {"metrics": self.metrics, "fer_score": self.fer_score, "size": self.size, **self.info}
        if self.labels is not None:
            out["human_label_auroc"] = self.labels["auroc"]
            out["human_labels"] = self.labels
        out["figures"] = sorted(self.figures)
        return out

    def write(self, out_dir: str | Path) -> list[Path]:
        out_dir = Path(out_dir)
        paths = [write_bytes(out_dir / name, data) for name, data in sorted(self.figures.items())]
        paths.append(write_text(out_dir / "metrics.json", json.dumps(self.to_json(), indent=2) + "\n"))
        return paths


def analyze(net: DenseNet, genome: Genome | None = None, config: MetricsConfig = MetricsConfig(),
            draw: bool = True, progress: Progress | None = None) -> Analysis:
    """Measure ``net`` (the layerized ``genome`` if one is given) and draw the paper's figures."""
    metrics, info, sweep = fer_metrics(net, config, progress=progress, details=True)
    labels = None
    if genome is not None and any(link.label for link in genome.links):
        labels = label_auroc(genome, config.size)
    pictures = {}
    if draw:
        pictures = {"output.png": figures.output_image(net, 256),
                    "features.png": figures.feature_grid(net, config.size),
                    **_sweep_figures(net, sweep, config)}
    return Analysis(metrics, fer_score(metrics), config.size, info, labels, pictures)


def _sweep_figures(net: DenseNet, sweep: dict, cfg: MetricsConfig) -> dict[str, bytes]:
    """Single-weight (the largest-gain distinct effects) and random-direction sweep grids."""
    single, reps, gain = sweep["single"], sweep["representatives"], sweep["gain"]
    top = reps[np.argsort(-gain[reps])][:SWEEP_ROWS]
    idx = single.dirs[top]
    names = [_weight_name(net, int(i)) for i in idx]
    steps = np.tile(SWEEP_STEPS, (idx.size, 1))
    weight_frames = sweeps.frames(net, idx, steps, cfg.size, cfg.chunk)
    dirs = sweep["random"].dirs[:SWEEP_ROWS]
    random_frames = sweeps.frames(net, dirs, np.tile(SWEEP_STEPS, (len(dirs), 1)), cfg.size, cfg.chunk)
    return {"weight_sweeps.png": figures.sweep_grid(weight_frames, names, SWEEP_STEPS),
            "random_sweeps.png": figures.sweep_grid(random_frames, [f"random {k}" for k in range(len(dirs))],
                                                     SWEEP_STEPS)}


def _weight_name(net: DenseNet, index: int) -> str:
    for layer, (a, b) in enumerate(net.arch.kernel_shapes):
        if index < a * b:
            return f"layer_{layer}[{index // b},{index % b}]"
        index -= a * b
    raise IndexError(index)
