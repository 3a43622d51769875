"""Planning runs for workers: a run config becomes a RunPlan; a final net gets its FER suite.

``plan_run(data)`` turns one run config (a plain mapping, as YAML gives it)
into a ``RunPlan``: the Search, its key, its budget and what to record about
it. ``fer_suite([(net, genome, out_dir), ...])`` runs the FER suite on a run's final nets,
writes its files (``metrics.json``, feature-map grid) under ``out_dir`` and
returns the metrics (``fer_score`` among them). Sweeps and workers take both as arguments, so a custom
regime or analysis plugs in without touching Ray or MLflow code.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ferlab.search.api import Search


@dataclass(frozen=True)
class RunPlan:
    """Everything a worker needs to own one run (``target``: the run's target spec, for the picture
    logged beside its nets; ``evaluations_per_generation``: nets evaluated per generation, where known)."""

    search: Search
    key: jax.Array
    generations: int
    checkpoint_every: int
    tags: dict[str, Any]
    params: dict[str, Any]
    target: str | None = None
    evaluations_per_generation: int | None = None


def plan_run(data: dict) -> RunPlan:
    """A RunPlan for a ``ferlab.search.runs`` config (ConfigError on a bad one)."""
    from ferlab.search.runs import load_run_config, make_search

    cfg = _single(load_run_config(data))
    return plan_for(make_search(cfg), cfg)


def plan_for(search: Search, cfg) -> RunPlan:
    """The RunPlan of ``search`` built for the validated run config ``cfg``: its key, budget, tags, params."""
    return RunPlan(
        search,
        jax.random.PRNGKey(cfg.seed),
        cfg.n_generations,
        cfg.checkpoint_every,
        tags=run_tags(cfg),
        params=run_params(cfg),
        target=cfg.target,
        evaluations_per_generation=evaluations_per_generation(cfg.settings),
    )


def run_tags(cfg) -> dict[str, Any]:
    """What a run is at a glance: its regime, target and seed."""
    return {"regime": cfg.regime, "target": cfg.target or "", "seed": cfg.seed}


def run_params(cfg) -> dict[str, Any]:
    """A run config flattened for MLflow: the values the run uses (one ``generations``, the number it
    runs), none unset, and no settings its mode leaves unused (see ``unused_settings``)."""
    from ferlab.config import flatten

    flat = flatten(cfg)
    flat["generations"] = cfg.n_generations
    unused = ("settings.generations", "islands", *(f"settings.{s}" for s in unused_settings(cfg)))
    return {k: v for k, v in flat.items() if v is not None and not any(k == u or k.startswith(u + ".") for u in unused)}


def unused_settings(cfg) -> tuple[str, ...]:
    """Sections of ``cfg.settings`` that the run's mode does not read: the settings' own
    ``unused(run_config)`` where it defines one; otherwise, for a regime whose ``fitness`` mixes the
    target and novelty (NEAT), the novelty settings when it chases the target alone and the mixing
    weight unless it mixes."""
    hook = getattr(cfg.settings, "unused", None)
    if hook is not None:
        return tuple(hook(cfg))
    fitness = getattr(cfg.settings, "fitness", None)
    return {"target": ("novelty", "novelty_weight"), "novelty": ("novelty_weight",)}.get(fitness, ())


def evaluations_per_generation(settings) -> int | None:
    """Nets a regime evaluates per generation, read from its settings (the population size, the ES
    population of a novelty run, or SGD's steps per generation times its seeds); None where unknown.
    Regimes that report a cumulative ``evaluations`` stat themselves need none of this."""
    for owner in (settings, getattr(settings, "es", None)):
        size = getattr(owner, "population_size", None)
        if isinstance(size, int):
            return size
    steps = getattr(settings, "steps_per_generation", None)
    return steps * int(getattr(settings, "seeds", 1)) if isinstance(steps, int) else None


def check_run(data: dict):
    """Validate a run config without building anything: its ``RunConfig`` (ConfigError if bad)."""
    from ferlab.search.runs import load_run_config

    return _single(load_run_config(data))


def _single(cfg):
    """A trial owns one run on one actor: island runs go through ``ferlab run`` instead."""
    from ferlab.config import ConfigError

    if cfg.islands is not None:
        raise ConfigError(
            "islands: not supported in sweep trials (a trial is one actor); run an island config with ferlab run"
        )
    return cfg


def keeping(plan: RunPlan, pattern: str = "*", keep: int | None = None) -> RunPlan:
    """``plan`` whose result keeps only the nets matching ``pattern``, at most ``keep``, evenly spaced."""
    if pattern == "*" and keep is None:
        return plan
    return dataclasses.replace(plan, search=Selected(plan.search, pattern, keep))


@dataclass
class Selected:
    """A search whose result keeps only the nets matching ``pattern``, at most ``keep``, evenly spaced."""

    search: Any
    pattern: str = "*"
    keep: int | None = None

    def init(self, key):
        return self.search.init(key)

    def step(self, state):
        return self.search.step(state)

    def __getattr__(self, name: str):
        """Every other capability (fused ``steps``, ``tables``, migration) is the wrapped search's."""
        if name == "search":
            raise AttributeError(name)
        return getattr(self.search, name)

    def result(self, state):
        from ferlab.search.api import Result

        result = self.search.result(state)
        names = select_names(list(result.nets), self.pattern, self.keep)
        return Result(
            {n: result.nets[n] for n in names},
            {n: result.images[n] for n in names},
            {n: result.genomes[n] for n in names if n in result.genomes},
            {n: result.losses[n] for n in names if n in result.losses},
        )


def select_names(names: list[str], pattern: str, keep: int | None) -> list[str]:
    chosen = sorted(fnmatch.filter(names, pattern))
    if keep is not None and len(chosen) > keep:
        chosen = [chosen[i] for i in np.linspace(0, len(chosen) - 1, keep).round().astype(int)]
    return chosen


def relabel_arch(spec: str | None, activation: str) -> str:
    """The architecture of ``spec`` (string or source; the default one when None) with every hidden
    unit set to ``activation``."""
    from ferlab.search.runs import DEFAULT_ARCH
    from ferlab.search.targets import load_arch

    arch = load_arch(spec or DEFAULT_ARCH, "arch")
    return f"{arch.n_layers};{activation}:{arch.width}"


def target_picture(spec: str | None, size: int) -> np.ndarray | None:
    """The run's target at ``size`` pixels (None for a run without one)."""
    from ferlab.search.targets import load_target

    return None if spec is None else load_target(spec, size)


def suite_settings(size: int, draw: bool) -> dict[str, Any]:
    """What defines ``fer_suite(size=size, draw=draw)``'s numbers: its arguments and every
    ``MetricsConfig`` setting (part of a scored run's key, so a changed suite rescores)."""
    from ferlab.metrics import MetricsConfig

    return {"size": size, "draw": draw, "metrics": dataclasses.asdict(MetricsConfig(size=size))}


def fer_suite(items: list[tuple[Any, Any, Path]], *, size: int = 64, draw: bool = True) -> list[dict[str, float]]:
    """FER metrics of a run's final nets, ``items`` of (net, its genome for NEAT or None, folder), at
    ``size`` pixels, measured together (``analyze_many``: one set of shared picture calls per
    architecture); writes each net's ``metrics.json`` and figures to its folder (with
    ``draw=False`` only the feature-map grid, which is cheap). One dict per item.

    A dead net (no weight moves its picture) is a result, not a failure: ``metrics.json`` says
    ``status: dead`` and why, and the only number returned is ``dead = 1`` (no scores), so the
    run's other nets are still scored and a report can count it. A scored net's dict also holds its
    picture's ``image_complexity`` and ``image_detail`` and the net's ``nonzero_weights`` (not FER
    metrics; see ``ferlab.metrics.suite``)."""
    from ferlab.figures import feature_grid
    from ferlab.files import write_bytes
    from ferlab.metrics import MetricsConfig, analyze_many

    nets = [net for net, _, _ in items]
    analyses = analyze_many(nets, [genome for _, genome, _ in items], config=MetricsConfig(size=size), draw=draw)
    out = []
    for (net, _, folder), analysis in zip(items, analyses):
        analysis.write(folder)
        if not draw:
            write_bytes(Path(folder) / "features.png", feature_grid(net, size))
        if analysis.dead:
            out.append({"dead": 1.0})
        else:
            context = {k: analysis.info[k] for k in ("image_complexity", "image_detail", "nonzero_weights")}
            out.append({**analysis.metrics, "fer_score": analysis.fer_score, **context})
    return out
