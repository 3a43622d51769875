"""FER metrics: numbers for the paper's pictures (see ``suite`` for the list and formulas)."""

from ferlab.metrics.analysis import Analysis, analyze, analyze_many
from ferlab.metrics.labels import label_auroc
from ferlab.metrics.suite import (
    METRICS,
    SCORED,
    DeadNet,
    Measurement,
    MetricsConfig,
    fer_metrics,
    fer_score,
    measure,
    measure_many,
    weight_asymmetry,
)

__all__ = [
    "METRICS",
    "SCORED",
    "Analysis",
    "DeadNet",
    "Measurement",
    "MetricsConfig",
    "analyze",
    "analyze_many",
    "fer_metrics",
    "fer_score",
    "label_auroc",
    "measure",
    "measure_many",
    "weight_asymmetry",
]
