"""One run logged to MLflow like a sweep trial, on this machine and without Ray (``ferlab run --tracking-uri``).

The run writes its output folder as ``ferlab run`` always does (and resumes
from it); its MLflow run gets the same name, tags, params, per-generation
metrics and final nets as a sweep trial's, and running it again into the same
folder continues the same MLflow run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ferlab.config import ConfigError
from ferlab.search.api import Result
from ferlab.tracking import MIN_PICTURE, Store, TrialLog, check_store, experiment, reap, short_image, trial_name
from ferlab.workers.plan import evaluations_per_generation, fer_suite, run_params, run_tags, target_picture


def run_logged(
    config, store: Store, out: Path, experiment_name: str, *, fer=fer_suite, progress: bool = True
) -> tuple[Result, list[dict], str]:
    """Run ``config`` (a validated run config) into ``out``, logged to experiment ``experiment_name``
    in ``store``; ``(result, history, MLflow run id)``. Runs of the experiment left RUNNING by a dead
    process are marked KILLED first."""
    from ferlab.search.runs import check_folder, config_yaml, run

    if config.islands is not None:
        raise ConfigError("--tracking-uri is for runs without islands: (log island runs through a sweep)")
    check_folder(Path(out), config_yaml(config))
    check_store(store)
    experiment_id = experiment(store, experiment_name)
    reap(store, experiment_id)
    trial_id = hashlib.sha256(f"{Path(out).resolve()}\n{config_yaml(config)}".encode()).hexdigest()[:20]
    image = (
        None
        if config.target is None
        else short_image(Path(config.target).stem if Path(config.target).suffix else config.target)
    )
    log = TrialLog(
        store,
        experiment_id,
        None,
        trial_id,
        trial_name(config.regime, image, config.seed),
        run_tags(config),
        run_params(config),
        evaluations_per_generation=evaluations_per_generation(config.settings),
    )
    every = max(config.checkpoint_every, 1)

    def record(generation: int, stats: dict) -> None:
        log.generation(stats)
        if (generation + 1) % every == 0:
            log.flush()

    def picture(generation: int, result) -> None:
        previous = (generation - 1) // every * every  # checkpoints fall on multiples of ``every``
        if log.progress_due(previous, generation, config.n_generations):
            log.progress(result(), generation)

    try:
        result, history = run(config, out_dir=out, callback=record, progress=progress, on_checkpoint=picture)
        for stats in history:  # every generation the run has that MLflow lacks: those after the last
            log.generation(stats)  # flush, if a kill came after the final checkpoint, or all of them
        log.flush()  # for a run that finished before it was first logged (a rerun computes none)
        tables = {path.name: path.read_text() for path in sorted(Path(out).glob("*.csv"))}
        log.final(result, fer, target_picture(config.target, MIN_PICTURE), tables)
    except BaseException as e:
        log.flush()
        log.fail(e)
        raise
    log.finish()
    return result, history, log.run_id
