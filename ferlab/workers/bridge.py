"""The two points where the scale-out layer calls the core: plan a run, score a final net.

``plan_run(data)`` turns one run config (a plain mapping, as YAML gives it)
into a ``RunPlan``: the Search, its key, its budget and what to record about
it. ``fer_suite(net, genome, out_dir)`` runs the FER suite on one final net,
writes its files (``metrics.json``, feature-map grid) under ``out_dir`` and
returns the metrics (``fer_score`` among them). Sweeps and workers take both as arguments, so a custom
regime or analysis plugs in without touching Ray or MLflow code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax

from ferlab.search.api import Search


@dataclass(frozen=True)
class RunPlan:
    """Everything a worker needs to own one run."""

    search: Search
    key: jax.Array
    generations: int
    checkpoint_every: int
    tags: dict[str, Any]
    params: dict[str, Any]


def plan_run(data: dict) -> RunPlan:
    """A RunPlan for a ``ferlab.search.runs`` config (ConfigError on a bad one)."""
    from ferlab.search.runs import load_run_config, make_search

    cfg = _single(load_run_config(data))
    return plan_for(make_search(cfg), cfg)


def plan_for(search: Search, cfg) -> RunPlan:
    """The RunPlan of ``search`` built for the validated run config ``cfg``: its key, budget, tags, params."""
    from ferlab.config import flatten

    return RunPlan(search, jax.random.PRNGKey(cfg.seed), cfg.n_generations, cfg.checkpoint_every,
                   tags={"regime": cfg.regime, "target": cfg.target or "", "seed": cfg.seed},
                   params=flatten(cfg))


def check_run(data: dict) -> None:
    """Validate a run config without building anything (ConfigError if bad)."""
    from ferlab.search.runs import load_run_config

    _single(load_run_config(data))


def _single(cfg):
    """A trial owns one run on one actor: island runs go through ``ferlab run`` instead."""
    from ferlab.config import ConfigError

    if cfg.islands is not None:
        raise ConfigError("islands: not supported in sweep trials (a trial is one actor); "
                          "run an island config with ferlab run")
    return cfg


def fer_suite(net, genome, out_dir: Path, *, size: int = 64, draw: bool = True) -> dict[str, float]:
    """FER metrics of one net (and its genome, for NEAT) at ``size`` pixels; writes ``metrics.json``
    and the figures to ``out_dir`` (with ``draw=False`` only the feature-map grid, which is cheap).

    A dead net (no weight moves its picture) is a result, not a failure: ``metrics.json`` says
    ``status: dead`` and why, and the only number returned is ``dead = 1`` (no scores), so the
    run's other nets are still scored and a report can count it."""
    from ferlab.figures import feature_grid
    from ferlab.files import write_bytes
    from ferlab.metrics import MetricsConfig, analyze

    analysis = analyze(net, genome, config=MetricsConfig(size=size), draw=draw)
    analysis.write(out_dir)
    if not draw:
        write_bytes(Path(out_dir) / "features.png", feature_grid(net, size))
    if analysis.dead:
        return {"dead": 1.0}
    return {**analysis.metrics, "fer_score": analysis.fer_score}

