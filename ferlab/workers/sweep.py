"""Sweeps: a base run config plus a grid or sampled space, run as one Ray Tune experiment.

A spec (YAML)::

    name: regimes-smoke            # MLflow experiment (one per sweep or study)
    base: {generations: 50, target: picbreeder:skull, ...}   # a run config
    variants:                                  # optional: partial configs merged into base
      - {regime: es, settings: {population_size: 64}}
      - {regime: sgd, settings: {steps: 5000, steps_per_generation: 100}}
    grid: {seed: [0, 1]}                       # every combination with every variant (dotted keys)
    sample: {settings.sigma: {loguniform: [0.01, 0.5]}}   # drawn num_samples times: uniform, loguniform or
                                                          # randint [lower, upper) or choice [values, ...]
    num_samples: 1
    metric: best_fitness                                  # optional; what ASHA and the table rank by
    mode: max
    asha: {grace_period: 5, reduction_factor: 2}          # optional early stopping (needs metric)
    resources: {cpus: 1, gpus: 0}                         # per trial
    max_failures: 2                                       # restarts from the last checkpoint
    population_every: 0                                   # whole population to MLflow every K gens

Each trial owns one run (``RunWorker``), reports every generation to Tune,
checkpoints through Tune (so a trial whose actor dies resumes where its last
checkpoint left it), and records itself as a child MLflow run. Tune's storage is
a URI (``s3://``, ``gs://``) or a folder every node mounts; a sweep whose driver
died is restored from there (``run_sweep(resume=True)``, ``ferlab sweep --resume``).

``run_sweep`` runs a spec's space; ``run_trials`` runs a given list of runs
(``Trial``: a run config, its run name and tags, the final nets it keeps), as
studies do, under one parent run or several (``Group``: a study's phases that
share one Tune experiment, so that its trial processes serve them all).
"""

from __future__ import annotations

import itertools
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from ferlab import limits
from ferlab.config import ConfigError, apply_overrides, flatten, from_dict, load_yaml, set_path
from ferlab.search.targets import absolute_specs
from ferlab.tracking import (
    KIND_TAG,
    MIN_PICTURE,
    PARENT_TAG,
    TRIAL_TAG,
    Store,
    TrialLog,
    check_store,
    client,
    close_children,
    driver_id,
    end_run,
    reopen,
    safe_name,
    start_sweep,
)
from ferlab.workers.cluster import check_fits, join_uri, quiet_shutdown_exits, ray_session, tune_storage
from ferlab.workers.plan import RunPlan, check_run, fer_suite, keeping, plan_run, target_picture
from ferlab.workers.run import RunWorker

DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")
CHECKPOINT_FILE = "run.ckpt"
TUNE_TAG = "ferlab.tune_path"  # on a sweep's parent run: its Tune experiment, found again by --resume


@dataclass(frozen=True)
class Asha:
    """ASHA early stopping over generations: rungs from ``grace_period`` on, ``max_t`` the longest a
    trial runs (default: the longest run of the sweep's points)."""

    grace_period: int = 1
    reduction_factor: float = 2
    max_t: int | None = None

    def __post_init__(self):
        if self.grace_period < 1 or (self.max_t is not None and self.max_t < self.grace_period):
            raise ValueError(f"need 1 <= grace_period <= max_t, got {self.grace_period} and {self.max_t}")
        if not self.reduction_factor > 1:
            raise ValueError(f"reduction_factor must be above 1, got {self.reduction_factor}")


@dataclass(frozen=True)
class Resources:
    """What one trial holds: CPUs (positive) and GPUs (a fraction shares one; above 1, whole)."""

    cpus: float = 1
    gpus: float = 0

    def __post_init__(self):
        if not self.cpus > 0 or self.gpus < 0:
            raise ValueError(f"cpus must be positive and gpus at least 0, got {self.cpus} and {self.gpus}")
        if self.gpus > 1 and self.gpus != int(self.gpus):
            raise ValueError(f"gpus above 1 must be whole, got {self.gpus}")


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
            _check_distribution(key, *next(iter(dist.items())))
        if self.asha is not None and self.metric is None:
            raise ValueError("asha needs a metric to rank trials by")
        both = set(self.grid) & set(self.sample)
        if both:
            raise ValueError(f"{sorted(both)[0]!r} is both in grid and sample")
        points = math.prod(len(v) for v in self.grid.values()) * max(len(self.variants), 1)
        limits.TRIALS.check(points * self.num_samples, "grid points x variants x num_samples", ValueError)


def _check_distribution(key: str, kind: str, args: list) -> None:
    """ValueError unless ``args`` suit ``kind``: [lower, upper] numbers with lower below upper (positive
    for loguniform, integers for randint, whose upper end is excluded), or choice's non-empty list."""
    where = f"sample.{key}.{kind}"
    if kind == "choice":
        if not args:
            raise ValueError(f"{where} has no values")
        return
    if len(args) != 2:
        raise ValueError(f"{where}: expected [lower, upper], got {len(args)} values")
    number = int if kind == "randint" else (int, float)
    if any(isinstance(a, bool) or not isinstance(a, number) for a in args):
        raise ValueError(f"{where}: expected two {'integers' if kind == 'randint' else 'numbers'}, got {args}")
    lower, upper = args
    if lower >= upper:
        raise ValueError(f"{where}: lower must be below upper, got {args}")
    if kind == "loguniform" and lower <= 0:
        raise ValueError(f"{where}: lower must be above 0, got {args}")


def sample_ends(dist: dict[str, list]) -> list:
    """The values a distribution can draw that bound the rest: a range's two ends (randint's upper end
    is excluded, so its largest draw) as the type drawn, or every choice."""
    ((kind, args),) = dist.items()
    if kind == "choice":
        return list(args)
    if kind == "randint":
        return [args[0], args[1] - 1]
    return [float(args[0]), float(args[1])]


def load_sweep(path: str | Path, overrides=()) -> SweepSpec:
    """Read and validate a sweep spec: every grid point's run config, with each sampled key at each of
    its ``sample_ends`` (the others at their first). ASHA's ``max_t``, when not given, becomes the
    longest of those runs (in generations, as trials report), so that it cuts no trial short."""
    spec = from_dict(SweepSpec, apply_overrides(load_yaml(path), list(overrides)), str(path))
    longest = 0
    for config, where in _checked_points(spec):
        try:
            run = check_run(config)
        except ConfigError as e:
            raise ConfigError(f"{path}: {where}: {e}") from None
        longest = max(longest, run.n_generations)
    if spec.asha is None or spec.asha.max_t is not None:
        return spec
    if spec.asha.grace_period > longest:
        raise ConfigError(f"{path}: asha.grace_period ({spec.asha.grace_period}) exceeds the longest run ({longest})")
    return replace(spec, asha=replace(spec.asha, max_t=longest))


def _checked_points(spec: SweepSpec):
    """``(run config, where)`` of every grid point with each sampled key at each of its ends (the
    others at their first): the configs ``load_sweep`` checks."""
    ends = {k: sample_ends(d) for k, d in spec.sample.items()}
    first = {k: values[0] for k, values in ends.items()}
    for point in grid_points(spec):
        drawn = [({}, f", sample {first}" if first else "")]
        drawn += [({key: value}, f", sample.{key} = {value!r}") for key, values in ends.items() for value in values[1:]]
        for extra, where in drawn:
            yield point_config(spec.base, {**point, **first, **extra}), f"grid point {point}{where}"


def sweep_configs(spec: SweepSpec) -> list[dict]:
    """The run configs a sweep's trials can take (grid points; sampled keys at their ends)."""
    return [config for config, _ in _checked_points(spec)]


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
        ((kind, args),) = dist.items()
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
    group: str = ""  # the parent run it logs under: a key of run_trials' groups


@dataclass(frozen=True)
class Group:
    """A parent run of some of a sweep's trials: its run name and tags (a study's phase)."""

    run_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def trial(
    config: dict,
    *,
    base: dict,
    trials: dict[str, Trial],
    store: Store,
    experiment_id: str,
    parent_id: str,
    planner: Callable[[dict], RunPlan],
    fer,
    population_every: int,
    origin: str,
    driver: str,
) -> None:
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
    log = TrialLog(
        store,
        experiment_id,
        parent_id,
        ctx.get_trial_id(),
        name,
        tags,
        plan.params,
        evaluations_per_generation=plan.evaluations_per_generation,
        driver=driver,
    )
    try:
        with tempfile.TemporaryDirectory() as work:
            path = Path(work) / CHECKPOINT_FILE
            restored = tune.get_checkpoint()
            if restored is not None:
                with restored.as_directory() as folder:
                    path.write_bytes((Path(folder) / CHECKPOINT_FILE).read_bytes())
            worker = RunWorker(plan, path)
            result = None  # the last slice's Result, when its progress picture built one
            while not worker.done:
                before, result = worker.generation, None
                stats = worker.advance(worker.next_slice(plan.checkpoint_every, population_every))
                for s in stats:
                    log.generation(s)
                log.flush()
                if log.progress_due(before, worker.generation, plan.generations):
                    result = worker.result()
                    log.progress(result, worker.generation)
                if population_every and worker.generation % population_every == 0:
                    log.population(worker.state, worker.generation)
                for s in stats[:-1]:
                    tune.report(s)
                with tempfile.TemporaryDirectory() as snap:
                    (Path(snap) / CHECKPOINT_FILE).write_bytes(path.read_bytes())
                    tune.report(stats[-1], checkpoint=tune.Checkpoint.from_directory(snap))
            result = result if result is not None else worker.result()  # built once at the end
            log.final(result, fer, target_picture(plan.target, MIN_PICTURE), worker.tables(result))
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
    parent_id: str  # the (first) parent run
    trials: int
    failed: int
    parents: dict[str, str] = field(default_factory=dict)  # each group's parent run
    failed_by_group: dict[str, int] = field(default_factory=dict)


def run_sweep(
    spec: SweepSpec,
    store: Store,
    *,
    address: str | None = None,
    storage: str | Path | None = None,
    resume: bool = False,
    planner=plan_run,
    fer=fer_suite,
    verbose: int = 1,
    tags: dict[str, str] | None = None,
    run_name: str | None = None,
    dashboard: bool = False,
) -> SweepOutcome:
    """Run every point of ``spec`` as a Tune trial in ``ray_session`` (the Ray already started, the
    cluster at ``address`` or a local one); ``tags`` and ``run_name`` go to the sweep's parent run.

    Tune keeps results and checkpoints under ``storage`` (a URI such as ``s3://bucket/path``, passed
    to Tune as it is, or a folder; default ``./tune``; on a cluster a URI or a folder every node
    mounts). With ``resume``, an interrupted sweep there is restored (``Tuner.restore``): finished
    trials are kept, the others go on from their last checkpoints, in the same MLflow runs.
    """
    if spec.asha is not None and spec.asha.max_t is None:
        raise ConfigError("asha.max_t: not set (load_sweep sets it to the longest run of the sweep)")
    _check_cluster_store(store, address)
    storage = tune_storage(storage, address)
    with ray_session(address, spec.resources.gpus, dashboard=dashboard):
        _check_trial_fits(spec.resources, address)
        groups = {"": Group(run_name, tags or {})}
        return _tune(spec, param_space(spec), {}, store, storage, resume, planner, fer, verbose, groups)


def run_trials(
    name: str,
    trials: list[Trial],
    store: Store,
    *,
    address: str | None = None,
    storage: str | Path | None = None,
    resume: bool = False,
    planner=plan_run,
    fer=fer_suite,
    verbose: int = 1,
    tags: dict[str, str] | None = None,
    run_name: str | None = None,
    resources: Resources = Resources(),
    max_failures: int = 2,
    groups: dict[str, Group] | None = None,
) -> SweepOutcome:
    """Run ``trials`` (unique names) as Tune trials of one sweep under experiment ``name``, as ``run_sweep``
    runs a spec's points; the sweep's parent run is named ``run_name`` and tagged with ``tags``. With
    ``groups``, each trial logs under the parent run of its ``group`` instead, one per group, all
    sharing the sweep's trial processes (Tune's ``reuse_actors``) and its Tune experiment."""
    by_name = {t.name: t for t in trials}
    if len(by_name) != len(trials):
        raise ConfigError(f"{name}: trial names must be unique")
    groups = groups or {"": Group(run_name, tags or {})}
    unknown = sorted({t.group for t in trials} - set(groups))
    if unknown:
        raise ConfigError(f"{name}: trials name groups that are not given: {unknown}")
    spec = SweepSpec(name=name, metric="generation", mode="max", resources=resources, max_failures=max_failures)
    _check_cluster_store(store, address)
    storage = tune_storage(storage, address)
    with ray_session(address, resources.gpus):
        from ray import tune

        _check_trial_fits(resources, address)
        space = {"run": tune.grid_search(list(by_name))}
        return _tune(spec, space, by_name, store, storage, resume, planner, fer, verbose, groups)


def _check_trial_fits(resources: Resources, address: str | None) -> None:
    check_fits({"CPU": resources.cpus, "GPU": resources.gpus}, "a trial", address)


def _check_cluster_store(store: Store, address: str | None) -> None:
    check_store(store)
    if address and not store.is_server:
        raise ConfigError(
            "a sweep on a cluster needs --tracking-uri http://<head>:<port> "
            "(workers on other nodes cannot write the local SQLite store)"
        )


def experiment_path(spec: SweepSpec, storage: str) -> str:
    """The Tune experiment of ``spec`` under ``storage`` (a URI's query stays at its end)."""
    return join_uri(storage, safe_name(spec.name))


def unfinished(path: str) -> bool:
    """Whether ``path`` holds a Tune experiment with a trial that did not finish (one to resume). A
    driver killed as it started leaves ``tuner.pkl`` without the experiment's state: no trial was
    recorded, so there is nothing to resume (Tune's ValueError before)."""
    from ray import tune

    if not tune.Tuner.can_restore(path):
        return False
    try:
        trials = tune.ExperimentAnalysis(path).trials
    except ValueError:
        return False
    return any(t.status != "TERMINATED" for t in trials)


def tune_trial(
    config: dict, *, store: Store, experiment_id: str, parents: dict[str, str], trials: dict[str, Trial], **kwargs
) -> None:
    """What Tune runs: ``trial`` under its group's parent run, unless this trial's MLflow run already
    FINISHED. That happens in a restored sweep: Tune's last snapshot of the experiment can lag behind
    a trial that ended just before the driver died, and Tune would run it once more."""
    import logging

    from ray import tune

    logging.getLogger("ray.train").setLevel(logging.WARNING)  # a line per checkpoint otherwise
    quiet_shutdown_exits()
    parent_id = parents[_group(config, trials)]
    mc = client(store)
    done = mc.search_runs(
        [experiment_id],
        max_results=1,
        filter_string=(
            f"tags.`{TRIAL_TAG}` = '{tune.get_context().get_trial_id()}' and tags.`{PARENT_TAG}` = '{parent_id}' "
            "and attributes.status = 'FINISHED'"
        ),
    )
    if not done:
        trial(config, store=store, experiment_id=experiment_id, parent_id=parent_id, trials=trials, **kwargs)


def _group(config: dict, trials: dict[str, Trial]) -> str:
    """The group of the trial that Tune's ``config`` names (a spec's points are all in group "")."""
    return trials[config["run"]].group if "run" in config else ""


def _reopen_parent(
    store: Store, spec: SweepSpec, path: str, run_name: str | None, tags: dict[str, str] | None = None
) -> tuple[str, str] | None:
    """The MLflow parent run named ``run_name`` (any name if None) of the sweep whose Tune experiment
    is ``path``, set RUNNING again under this process with ``tags`` (a resumed study's phase run
    becomes a child of the new study run, not of the killed one)."""
    mc = client(store)
    exp = mc.get_experiment_by_name(spec.name)
    if exp is None:
        return None
    for run in mc.search_runs(
        [exp.experiment_id], filter_string=f"tags.`{KIND_TAG}` = 'sweep'", order_by=["attributes.start_time DESC"]
    ):
        if run.data.tags.get(TUNE_TAG) == path and run_name in (None, run.info.run_name):
            reopen(mc, run, tags=tags)  # driven by this process now
            return exp.experiment_id, run.info.run_id
    return None


def _tune(
    spec: SweepSpec,
    space: dict,
    trials: dict[str, Trial],
    store: Store,
    storage: str,
    resume: bool,
    planner,
    fer,
    verbose: int,
    groups: dict[str, Group],
) -> SweepOutcome:
    from ray import tune

    path = experiment_path(spec, storage)
    restore = resume and unfinished(path)
    parents: dict[str, str] = {}
    experiment_id = ""
    crashed = True
    try:
        for key, group in groups.items():
            reopened = _reopen_parent(store, spec, path, group.run_name, group.tags) if restore else None
            if reopened is not None:
                experiment_id, parents[key] = reopened
            else:  # a new sweep, or a restored one whose parent run is not in this store (its trials get new runs)
                count = sum(t.group == key for t in trials.values())
                params = flatten({"sweep": _spec_params(spec)}) if not trials else {"trials": count}
                tags = {**group.tags, TUNE_TAG: path}
                experiment_id, parents[key] = start_sweep(store, spec.name, params, tags, group.run_name)
        fn = tune.with_parameters(
            tune_trial,
            base=spec.base,
            trials=trials,
            store=store,
            experiment_id=experiment_id,
            parents=parents,
            planner=planner,
            fer=fer,
            population_every=spec.population_every,
            origin=os.getcwd(),
            driver=driver_id(),
        )
        fn = tune.with_resources(fn, {"cpu": spec.resources.cpus, "gpu": spec.resources.gpus})
        if restore:
            tuner = tune.Tuner.restore(path, fn, resume_unfinished=True, resume_errored=True)
        else:
            label = "+".join(g.run_name for g in groups.values() if g.run_name) or spec.name
            tuner = _new_tuner(spec, fn, space, trials, storage, verbose, label)
        grid = tuner.fit()
        failed = dict.fromkeys(groups, 0)
        for r in grid:
            if r.error is not None:
                failed[_group(r.config, trials)] += 1
        crashed = False
        first = parents[next(iter(groups))]
        return SweepOutcome(experiment_id, first, len(grid), sum(failed.values()), parents, failed)
    finally:
        for parent_id in parents.values():
            close_children(store, experiment_id, parent_id)
            end_run(store, parent_id, failed=crashed)


def _new_tuner(spec: SweepSpec, fn, space: dict, trials: dict[str, Trial], storage: str, verbose: int, label: str):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    scheduler = None
    if spec.asha is not None:
        scheduler = ASHAScheduler(
            time_attr="training_iteration",
            max_t=spec.asha.max_t,
            grace_period=spec.asha.grace_period,
            reduction_factor=spec.asha.reduction_factor,
        )
    return tune.Tuner(
        fn,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode if spec.metric else None,
            scheduler=scheduler,
            num_samples=spec.num_samples,
            reuse_actors=True,  # a trial process keeps its imports and compiled programs for the next
        ),
        run_config=tune.RunConfig(
            name=safe_name(spec.name),
            storage_path=storage,
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            progress_reporter=_reporter(spec, trials) if verbose else None,
            verbose=verbose,
            callbacks=None if verbose else [trial_bar(label)],
        ),
    )


def _reporter(spec: SweepSpec, trials: dict[str, Trial]):
    """Tune's trial table (``verbose``): a study's runs by name, a sweep's points by their keys."""
    from ray import tune

    if trials:
        columns = ["run"]
    else:
        names = (["variant"] if spec.variants else []) + list(spec.grid) + list(spec.sample)
        columns = [f"point/{k}" for k in names]
    return tune.CLIReporter(
        metric_columns=["generation"] + ([spec.metric] if spec.metric else []),
        parameter_columns=columns,
        max_report_frequency=10,
    )


def trial_bar(name: str):
    """A Tune callback that draws one progress bar of finished trials (failed ones counted on it),
    in place of Tune's status tables when a sweep runs with ``verbose=0``."""
    from ray import tune
    from tqdm import tqdm

    class TrialBar(tune.Callback):
        def setup(self, stop=None, num_samples=None, total_num_samples=None, **info):
            self.bar = tqdm(total=total_num_samples, unit="trial", desc=name, dynamic_ncols=True)
            self.failed = 0

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.bar.update()

        def on_trial_error(self, iteration, trials, trial, **info):
            self.failed += 1
            self.bar.set_postfix(failed=self.failed)
            self.bar.update()

        def on_experiment_end(self, trials, **info):
            self.bar.close()

    return TrialBar()


def _spec_params(spec: SweepSpec) -> dict:
    from ferlab.config import to_dict

    return to_dict(spec)
