"""Sweeps: a base run config plus a grid or sampled space, run as one Ray Tune experiment.

A spec (YAML)::

    name: regimes-smoke            # MLflow experiment (one per sweep or study)
    base: {generations: 50, target: picbreeder:skull, ...}   # a run config
    variants:                                  # optional: partial configs merged into base
      - {regime: es, settings: {population_size: 64}}
      - {regime: sgd, settings: {steps: 5000, steps_per_generation: 100}}
    grid: {seed: [0, 1]}                       # every combination with every variant (dotted keys)
    sample: {settings.sigma: {loguniform: [0.01, 0.5]}}   # drawn num_samples times
    num_samples: 1
    metric: best_fitness                                  # optional; what ASHA and the table rank by
    mode: max
    asha: {grace_period: 5, reduction_factor: 2}          # optional early stopping (needs metric)
    resources: {cpus: 1, gpus: 0}                         # per trial
    max_failures: 2                                       # restarts from the last checkpoint
    population_every: 0                                   # whole population to MLflow every K gens

Each trial owns one run (``RunWorker``), reports every generation to Tune,
checkpoints through Tune (so a trial whose actor dies resumes where its last
checkpoint left it), and records itself as a child MLflow run.

``run_sweep`` runs a spec's space; ``run_trials`` runs a given list of runs
(``Trial``: a run config, its run name and tags, the final nets it keeps), as
studies do.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ferlab.config import ConfigError, apply_overrides, flatten, from_dict, load_yaml, set_path
from ferlab.search.targets import absolute_specs
from ferlab.tracking import (MIN_PICTURE, Store, TrialLog, check_store, close_children, driver_id, end_run,
                             safe_name, start_sweep)
from ferlab.workers.cluster import ray_session
from ferlab.workers.plan import RunPlan, check_run, fer_suite, keeping, plan_run, target_picture
from ferlab.workers.run import RunWorker

DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")
CHECKPOINT_FILE = "run.ckpt"


@dataclass(frozen=True)
class Asha:
    grace_period: int = 1
    reduction_factor: float = 2
    max_t: int | None = None


@dataclass(frozen=True)
class Resources:
    cpus: float = 1
    gpus: float = 0


@dataclass(frozen=True)
class SweepSpec:
    name: str
    base: dict[str, Any] = field(default_factory=dict)
    variants: list[dict[str, Any]] = field(default_factory=list)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    sample: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    num_samples: int = 1
    metric: str | None = None
    mode: Literal["max", "min"] = "max"
    asha: Asha | None = None
    resources: Resources = Resources()
    max_failures: int = 2
    population_every: int = 0

    def __post_init__(self):
        if not self.name.strip():
            raise ValueError("name must not be empty")
        if self.num_samples < 1 or self.max_failures < 0 or self.population_every < 0:
            raise ValueError("num_samples must be >= 1, max_failures and population_every >= 0")
        for key, values in self.grid.items():
            if not values:
                raise ValueError(f"grid.{key} has no values")
        for key, dist in self.sample.items():
            if len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
                raise ValueError(f"sample.{key}: expected one of {', '.join(DISTRIBUTIONS)}, got {dist}")
        if self.asha is not None and self.metric is None:
            raise ValueError("asha needs a metric to rank trials by")
        both = set(self.grid) & set(self.sample)
        if both:
            raise ValueError(f"{sorted(both)[0]!r} is both in grid and sample")


def load_sweep(path: str | Path, overrides=()) -> SweepSpec:
    """Read and validate a sweep spec, including every grid point's run config."""
    spec = from_dict(SweepSpec, apply_overrides(load_yaml(path), list(overrides)), str(path))
    first = {k: _first_value(d) for k, d in spec.sample.items()}
    for point in grid_points(spec):
        try:
            check_run(point_config(spec.base, {**point, **first}))
        except ConfigError as e:
            raise ConfigError(f"{path}: grid point {point}: {e}") from None
    return spec


def _first_value(dist: dict[str, list]):
    (kind, args), = dist.items()
    return args[0]


def grid_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every combination of the grid, crossed with the variants (as key ``variant``)."""
    grid = {**({"variant": spec.variants} if spec.variants else {}), **spec.grid}
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def point_config(base: dict, point: dict[str, Any]) -> dict:
    """``base`` with the point's ``variant`` merged in, then each dotted key of ``point`` set."""
    out = _merge(base, point.get("variant", {}))
    for key, value in point.items():
        if key != "variant":
            out = set_path(out, key, value)
    return out


def _merge(base: dict, extra: dict) -> dict:
    out = apply_overrides(base, [])
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def param_space(spec: SweepSpec) -> dict:
    from ray import tune

    space = {"variant": tune.grid_search(list(spec.variants))} if spec.variants else {}
    space.update({k: tune.grid_search(list(v)) for k, v in spec.grid.items()})
    for key, dist in spec.sample.items():
        (kind, args), = dist.items()
        space[key] = tune.choice(args) if kind == "choice" else getattr(tune, kind)(*args)
    return {"point": space}


# ------------------------------------------------------------------- trials
@dataclass(frozen=True)
class Trial:
    """One run of a list given to ``run_trials``: its run config, MLflow run name and tags, and
    which of its final nets are kept (a glob, at most ``keep``)."""

    name: str
    config: dict
    tags: dict[str, str] = field(default_factory=dict)
    nets: str = "*"
    keep: int | None = None


def trial(config: dict, *, base: dict, trials: dict[str, Trial], store: Store, experiment_id: str,
          parent_id: str, planner: Callable[[dict], RunPlan], fer, population_every: int, origin: str,
          driver: str) -> None:
    """One Tune trial: own a run, report each generation, checkpoint through Tune, log to MLflow.
    ``config`` holds a point of the sweep's space or the name of one of ``trials``. Relative file
    specs are read from ``origin``, the folder the sweep was started in (Tune runs each trial in its
    own folder)."""
    from ray import tune

    ctx = tune.get_context()
    if "run" in config:
        given = trials[config["run"]]
        plan = keeping(planner(absolute_specs(given.config, origin)), given.nets, given.keep)
        name, tags = given.name, {**plan.tags, **given.tags}
    else:
        point = config["point"]
        plan = planner(absolute_specs(point_config(base, point), origin))
        name, tags = _run_name(plan, point), plan.tags
    log = TrialLog(store, experiment_id, parent_id, ctx.get_trial_id(), name, tags, plan.params,
                   evaluations_per_generation=plan.evaluations_per_generation, driver=driver)
    try:
        with tempfile.TemporaryDirectory() as work:
            path = Path(work) / CHECKPOINT_FILE
            restored = tune.get_checkpoint()
            if restored is not None:
                with restored.as_directory() as folder:
                    path.write_bytes((Path(folder) / CHECKPOINT_FILE).read_bytes())
            worker = RunWorker(plan, path)
            while not worker.done:
                stats = worker.advance(worker.next_slice(plan.checkpoint_every, population_every))
                for s in stats:
                    log.generation(s)
                log.flush()
                if population_every and worker.generation % population_every == 0:
                    log.population(worker.state, worker.generation)
                for s in stats[:-1]:
                    tune.report(s)
                with tempfile.TemporaryDirectory() as snap:
                    (Path(snap) / CHECKPOINT_FILE).write_bytes(path.read_bytes())
                    tune.report(stats[-1], checkpoint=tune.Checkpoint.from_directory(snap))
            log.final(worker.result(), fer, target_picture(plan.target, MIN_PICTURE))
        log.finish()
    except Exception as e:
        log.flush()
        log.fail(e)
        raise


def _run_name(plan: RunPlan, point: dict) -> str:
    keys = [k for k in point if k != "variant"]
    return ",".join([str(plan.tags.get("regime", ""))] + [f"{k}={point[k]}" for k in keys])


@dataclass
class SweepOutcome:
    experiment_id: str
    parent_id: str
    trials: int
    failed: int


def run_sweep(spec: SweepSpec, store: Store, *, address: str | None = None,
              storage: str | Path | None = None, planner=plan_run, fer=fer_suite,
              verbose: int = 1, tags: dict[str, str] | None = None, run_name: str | None = None) -> SweepOutcome:
    """Run every point of ``spec`` as a Tune trial in ``ray_session`` (the Ray already started, the
    cluster at ``address`` or a local one); ``tags`` and ``run_name`` go to the sweep's parent run."""
    _check_cluster_store(store, address)
    with ray_session(address, spec.resources.gpus):
        return _tune(spec, param_space(spec), {}, store, storage, planner, fer, verbose, tags, run_name)


def run_trials(name: str, trials: list[Trial], store: Store, *, address: str | None = None,
               storage: str | Path | None = None, planner=plan_run, fer=fer_suite, verbose: int = 1,
               tags: dict[str, str] | None = None, run_name: str | None = None, resources: Resources = Resources(),
               max_failures: int = 2) -> SweepOutcome:
    """Run ``trials`` (unique names) as Tune trials of one sweep under experiment ``name``, as ``run_sweep``
    runs a spec's points; the sweep's parent run is named ``run_name`` and tagged with ``tags``."""
    by_name = {t.name: t for t in trials}
    if len(by_name) != len(trials):
        raise ConfigError(f"{name}: trial names must be unique")
    spec = SweepSpec(name=name, metric="generation", mode="max", resources=resources, max_failures=max_failures)
    _check_cluster_store(store, address)
    with ray_session(address, resources.gpus):
        from ray import tune

        space = {"run": tune.grid_search(list(by_name))}
        return _tune(spec, space, by_name, store, storage, planner, fer, verbose, tags, run_name)


def _check_cluster_store(store: Store, address: str | None) -> None:
    check_store(store)
    if address and not store.is_server:
        raise ConfigError("a sweep on a cluster needs --tracking-uri http://<head>:<port> "
                          "(workers on other nodes cannot write the local SQLite store)")


def _tune(spec: SweepSpec, space: dict, trials: dict[str, Trial], store: Store, storage, planner, fer,
          verbose: int, tags, run_name) -> SweepOutcome:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    params = flatten({"sweep": _spec_params(spec)}) if not trials else {"trials": len(trials)}
    experiment_id, parent_id = start_sweep(store, spec.name, params, tags, run_name)
    crashed = True
    try:
        scheduler = None
        if spec.asha is not None:
            max_t = spec.asha.max_t or int(spec.base.get("generations") or 100)
            scheduler = ASHAScheduler(time_attr="training_iteration", max_t=max_t,
                                      grace_period=spec.asha.grace_period,
                                      reduction_factor=spec.asha.reduction_factor)
        fn = tune.with_parameters(trial, base=spec.base, trials=trials, store=store, experiment_id=experiment_id,
                                  parent_id=parent_id, planner=planner, fer=fer,
                                  population_every=spec.population_every, origin=os.getcwd(), driver=driver_id())
        fn = tune.with_resources(fn, {"cpu": spec.resources.cpus, "gpu": spec.resources.gpus})
        if trials:
            columns = ["run"]
        else:
            names = (["variant"] if spec.variants else []) + list(spec.grid) + list(spec.sample)
            columns = [f"point/{k}" for k in names]
        reporter = tune.CLIReporter(metric_columns=["generation"] + ([spec.metric] if spec.metric else []),
                                    parameter_columns=columns, max_report_frequency=10)
        tuner = tune.Tuner(
            fn, param_space=space,
            tune_config=tune.TuneConfig(metric=spec.metric, mode=spec.mode if spec.metric else None,
                                        scheduler=scheduler,
                                        num_samples=spec.num_samples),
            run_config=tune.RunConfig(
                name=safe_name(spec.name), storage_path=str(Path(storage or "tune").resolve()),
                failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                progress_reporter=reporter, verbose=verbose))
        grid = tuner.fit()
        errors = sum(1 for r in grid if r.error is not None)
        crashed = False
        return SweepOutcome(experiment_id, parent_id, len(grid), errors)
    finally:
        close_children(store, experiment_id, parent_id)
        end_run(store, parent_id, failed=crashed)


def _spec_params(spec: SweepSpec) -> dict:
    from ferlab.config import to_dict

    return to_dict(spec)
