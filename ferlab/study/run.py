"""Running a study: its phases as sweeps of trials (reusing finished runs), then one report.

Every phase runs its missing runs (those whose run key has no FINISHED run in
the study's experiment) as trials under its own run, a child of the study's run,
planned by the workers' planner and scored by the FER suite. Consecutive phases
that need nothing from each other (``waves``) run as one sweep, so their trials
share processes and fill the cluster together instead of one phase at a time. Finished runs are
read back only through ``ferlab.tracking``. The report's rows are networks: one
per scored final net of every run of the study (this profile), with the run's
stats and its FER metrics.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ferlab.config import ConfigError, to_dict
from ferlab.report import DETAIL, LOST, SEARCH, SOURCE, Report, ReportSpec, write_report
from ferlab.study.spec import Phase, RunEntry, Study, Target, expand, fer_size, static_targets
from ferlab.tracking import FinishedRun


def network_rows(entries: list[RunEntry], runs: dict[str, FinishedRun], lost: bool = False) -> list[dict]:
    """One row per scored net of each entry's finished run: its place in the study, run stats and FER
    metrics. A row's ``loss`` is only ever its net's own: the run's (its best net's) is left out, so a
    net that logged no loss of its own (a MAP-Elites elite) has none and cannot pass a fit gate on its
    best sibling's; a diverged seed's is +inf. A row's ``search`` (``report.SEARCH``) is its run, or
    where the phase trains its seeds side by side in one run (``seed_key`` other than ``seed``) that
    run's net: each seed is a search of its own, an archive's nets one search. Its ``image_source``
    (``report.SOURCE``) is the search that found its image, where one of ``entries`` did, else the
    image itself (a given target): the images one search found are not independent. With ``lost``, an entry
    without a finished run (it failed) still gives a row, ``net`` ``(lost)`` and no metrics, for every
    net it was to score (``asked``), so reports count what was asked for."""
    rows, found = [], {}
    for entry in entries:
        place = {
            "run_key": entry.key,
            "phase": entry.phase.name,
            "label": entry.phase.group,
            "role": entry.phase.role or "",
            "regime": entry.config.get("regime"),
            "seed": entry.config.get("seed", 0),
            "target": entry.image or "",
        }
        run = runs.get(entry.key)
        if run is None:
            if lost:
                lost_row = {**place, "run_id": "", SEARCH: "", "net": LOST, "image": entry.image or ""}
                rows += [{**lost_row, "seed": s} for s in asked(entry)]
            continue
        base = {**place, "run_id": run.run_id, **{k: v for k, v in run.stats.items() if k != "loss"}}
        side_by_side = entry.phase.seed_key != "seed"
        for net, metrics in run.nets.items():
            image = entry.image or discovered_id(entry, net)
            search = f"{run.run_id}/{net}" if side_by_side else run.run_id
            rows.append({**base, SEARCH: search, "net": net, "image": image, **metrics})
            if entry.image is None:
                found[image] = search
    return [{**row, SOURCE: found.get(row["image"], row["image"])} for row in rows]


def asked(entry: RunEntry) -> list[int]:
    """The seed of each final net a run was asked to score: its seeds when it trains them side by
    side, else its own seed; ``keep`` of them where the phase keeps that many (a discoverer's archive)."""
    phase, seed = entry.phase, entry.config.get("seed", 0)
    if phase.seed_key != "seed":
        return list(range(min(phase.seeds, phase.keep or phase.seeds)))
    return [seed] * (phase.keep or 1)


def discovered_id(entry: RunEntry, net: str) -> str:
    """The image id of a net an open-ended run found."""
    return f"{entry.phase.name}/{entry.key[:10]}/{net}"


# ------------------------------------------------------------------ running a study
@dataclass
class StudyOutcome:
    report: Report
    experiment_id: str
    study_run_id: str
    computed: int
    reused: int


def run_study(
    study: Study,
    store,
    out_dir: str | Path,
    *,
    address: str | None = None,
    storage: str | Path | None = None,
    resume: bool = False,
    planner: Callable | None = None,
    fer: Callable | None = None,
    verbose: int = 1,
    stop_after_phase: str | None = None,
    log: Callable[[str], None] = print,
) -> StudyOutcome:
    """Run every phase (reusing finished runs), then write the report and log it to the study's MLflow run.

    ``planner(config) -> RunPlan`` and ``fer`` default to the workers' planner (the real regimes)
    and the FER suite (tests pass stand-ins); ``stop_after_phase`` ends after that phase with no
    report (an interruption). Every phase runs in one Ray session. Each wave's sweep keeps Tune's
    checkpoints under ``storage`` (default ``<out_dir>/tune``), one folder per wave named for its
    phases that have runs to do; with ``resume``, a wave whose driver died is restored from there
    (``run_sweep(resume=True)``) when the same phases still have runs to do. If one of them finished
    before the driver died, the rest run as a new sweep: their finished runs are reused as always,
    but their unfinished trials start again from generation 0, not from Tune's checkpoints.
    """
    from ferlab.files import check_writable_folder
    from ferlab.tracking import check_store
    from ferlab.workers.cluster import check_fits, ray_session
    from ferlab.workers.plan import check_run

    check_store(store)
    check_writable_folder(out_dir, "the study's output folder")
    if address and not store.is_server:
        raise ConfigError("a study on a cluster needs --tracking-uri http://<head>:<port>")
    check = check_run if planner is None else (lambda config: None)
    check_study(study, check)
    with ray_session(address):
        for phase in study.phases:  # before any phase runs: a later phase's trials would wait for ever
            check_fits({"CPU": phase.cpus}, f"phase {phase.name}: a trial", address)
        return _conduct(
            study,
            store,
            Path(out_dir).resolve(),
            check,
            address=address,
            storage=storage,
            resume=resume,
            planner=planner,
            fer=fer,
            verbose=verbose,
            stop_after_phase=stop_after_phase,
            log=log,
        )


def _static_entries(study: Study):
    """Every run of the phases whose targets are known before any runs."""
    for phase in study.phases:
        if not phase.sources:
            yield from expand(phase, static_targets(study, phase))


def study_configs(study: Study) -> list[dict]:
    """The run configs of the phases whose targets are known before any runs."""
    return [entry.config for entry in _static_entries(study)]


def check_study(study: Study, check: Callable[[dict], None] | None = None) -> None:
    """Validate every run of the phases whose targets are known before any runs (ConfigError naming
    the phase); phases on images found by earlier phases are checked when they start."""
    from ferlab.workers.plan import check_run

    check = check or check_run
    for entry in _static_entries(study):
        try:
            check(entry.config)
        except ConfigError as e:
            raise ConfigError(f"phase {entry.phase.name}: {e}") from None


def _conduct(
    study: Study,
    store,
    out: Path,
    check: Callable[[dict], None],
    *,
    address,
    storage,
    resume,
    planner,
    fer,
    verbose: int,
    stop_after_phase: str | None,
    log: Callable[[str], None],
) -> StudyOutcome:
    """``run_study`` once its inputs are checked and Ray is up: the study's MLflow run, its phases, its report."""
    from ferlab.tracking import end_run, finished_runs, log_report, start_study

    experiment_id, study_run_id = start_study(store, study.name, yaml.safe_dump(to_dict(study), sort_keys=False))
    computed = reused = 0
    entries: list[RunEntry] = []
    said: set[str] = set()

    def once(line: str):  # phases that copy the same finds would each say the same
        if line not in said:
            said.add(line)
            log(line)

    ok = False
    try:
        for wave in waves(study, stop_after_phase):
            done = finished_runs(store, experiment_id, study.name)
            work = []
            for phase in wave:
                targets = phase_targets(study, phase, entries, done, store, out, once)
                phase_entries = expand(phase, targets)
                todo = [e for e in phase_entries if e.key not in done]
                log(
                    f"phase {phase.name}: {len(phase_entries)} runs, {len(phase_entries) - len(todo)} reused, "
                    f"{len(todo)} to run"
                )
                reused += len(phase_entries) - len(todo)
                for entry in todo:
                    check(entry.config)
                if todo:
                    work.append((phase, todo))
                entries += phase_entries
            if work:
                failed = run_wave(
                    study,
                    work,
                    store,
                    out,
                    address=address,
                    planner=planner,
                    fer=fer,
                    verbose=verbose,
                    parent=study_run_id,
                    storage=storage,
                    resume=resume,
                )
                for phase, todo in work:
                    computed += len(todo) - failed[phase.name]
                    if failed[phase.name]:
                        log(
                            f"phase {phase.name}: {failed[phase.name]} runs failed (see their MLflow runs); "
                            "the report counts their nets as lost"
                        )
            if wave[-1].name == stop_after_phase:
                ok = True
                return StudyOutcome(None, experiment_id, study_run_id, computed, reused)
        report = report_study(study, entries, store, experiment_id, out, computed, reused)
        log_report(store, study_run_id, report.folder)
        ok = True
        return StudyOutcome(report, experiment_id, study_run_id, computed, reused)
    finally:
        end_run(store, study_run_id, failed=not ok)


def phase_targets(
    study: Study,
    phase: Phase,
    earlier: list[RunEntry],
    runs: dict[str, FinishedRun],
    store,
    out: Path,
    log: Callable[[str], None],
) -> list[Target]:
    """A phase's targets: static ones, plus a sample of the images that named earlier phases found
    (in ``runs``, the study's finished runs), their nets downloaded under ``out/targets``. Only scored
    nets are drawn: a dead one (no weight moves its picture, often a blank) has no score to compare
    with, and its reproducers would paint a blank whose low score is no sign of a clean representation.
    Nor, with the study's detail floor (``analysis.min_detail``), a find with less fine structure
    than the floor: the report leaves such images out at the gate, so copying them would only spend runs."""
    from ferlab.tracking import download_net

    targets = static_targets(study, phase)
    if not phase.sources:
        return targets
    scored, floor = study.analysis.metrics[0], study.analysis.min_detail
    rows = [
        r
        for r in network_rows([e for e in earlier if e.phase.name in phase.sources], runs)
        if np.isfinite(r.get(scored, np.nan))
    ]
    if floor is not None:
        kept = [r for r in rows if not r.get(DETAIL, np.nan) < floor]  # a find without a detail is not judged
        if len(kept) < len(rows):
            log(
                f"{len(rows) - len(kept)} of the {len(rows)} scored finds of {', '.join(phase.sources)} have less "
                f"detail than the floor ({floor:g}): no phase copies them"
            )
        rows = kept
    rows.sort(key=lambda r: r["image"])
    if phase.sample is not None and len(rows) > phase.sample:
        rng = np.random.default_rng(study.seed)
        rows = [rows[i] for i in sorted(rng.choice(len(rows), phase.sample, replace=False))]
    for row in rows:
        path = out / "targets" / (row["image"].replace("/", "_") + ".npz")
        if not path.is_file():
            download_net(store, row["run_id"], row["net"], path)
        targets.append(Target(str(path), row["image"]))
    return targets


def waves(study: Study, stop_after_phase: str | None = None) -> list[list[Phase]]:
    """The study's phases in order, cut into waves that each run as one sweep: a phase joins the
    wave before it unless it paints images a phase of that wave finds, or its trials differ in
    what one sweep fixes for all (CPUs per trial, restarts, the FER suite's picture size). A wave
    ends at ``stop_after_phase``."""
    out: list[list[Phase]] = []
    for phase in study.phases:
        wave = out[-1] if out else None
        joins = (
            wave is not None
            and wave[-1].name != stop_after_phase
            and not set(phase.sources) & {p.name for p in wave}
            and _sweep_fixed(phase) == _sweep_fixed(wave[0])
        )
        if joins:
            wave.append(phase)
        else:
            out.append([phase])
    return out


def _sweep_fixed(phase: Phase) -> tuple:
    """What one sweep fixes for all its trials: CPUs per trial, restarts, the FER suite's size."""
    return phase.cpus, phase.max_failures, fer_size(phase)


def run_wave(
    study: Study,
    work: list[tuple[Phase, list[RunEntry]]],
    store,
    out: Path,
    *,
    address,
    planner,
    fer,
    verbose: int,
    parent: str,
    storage: str | Path | None = None,
    resume: bool = False,
) -> dict[str, int]:
    """Run the missing runs of a wave's phases as one sweep of trials, each under its phase's run (a
    child of the study's run); the number that failed, by phase."""
    from ferlab.tracking import phase_tags, safe_name, study_tags
    from ferlab.workers.cluster import join_uri
    from ferlab.workers.plan import fer_suite, plan_run
    from ferlab.workers.sweep import Group, Resources, Trial, run_trials

    trials = [
        Trial(
            e.name,
            e.config,
            study_tags(study.name, e.key, phase.name, phase.group, phase.role, e.image),
            phase.nets,
            phase.keep,
            group=phase.name,
        )
        for phase, todo in work
        for e in todo
    ]
    first, todo = work[0]
    suite = fer or functools.partial(fer_suite, size=todo[0].fer_size, draw=False)
    name = "+".join(phase.name for phase, _ in work)
    wave_storage = join_uri(str(storage if storage is not None else out / "tune"), safe_name(name))
    outcome = run_trials(
        study.name,
        trials,
        store,
        address=address,
        storage=wave_storage,
        resume=resume,
        planner=planner or plan_run,
        fer=suite,
        verbose=verbose,
        resources=Resources(cpus=first.cpus),
        max_failures=first.max_failures,
        groups={phase.name: Group(phase.name, phase_tags(parent, phase.name)) for phase, _ in work},
    )
    return outcome.failed_by_group


def runs_frame(study: Study, entries: list[RunEntry], store, experiment_id: str):
    """The study's networks as a pandas DataFrame (one row per scored net), read from MLflow."""
    import pandas as pd

    from ferlab.tracking import finished_runs

    return pd.DataFrame(network_rows(entries, finished_runs(store, experiment_id, study.name), lost=True))


def report_study(
    study: Study, entries: list[RunEntry], store, experiment_id: str, out: Path, computed: int = 0, reused: int = 0
) -> Report:
    """Pull the study's runs from MLflow, fetch gallery images, write the report into ``out/report``."""
    import pandas as pd

    from ferlab.report.fit import split_rungs
    from ferlab.report.plots import gallery_rows
    from ferlab.tracking import fetch_pictures

    frame = runs_frame(study, entries, store, experiment_id)
    if frame.empty:
        raise ConfigError(f"study {study.name}: no finished runs with FER metrics to report")
    frame = frame.assign(
        image_path=pd.Series([None] * len(frame), dtype=object),
        features_path=pd.Series([None] * len(frame), dtype=object),
    )
    finals = split_rungs(frame)[0]  # the gallery shows final nets, not ladder snapshots
    picks = gallery_rows(finals, study.analysis.group, study.analysis.gallery, study.analysis.metrics[0])
    for i in picks.index:
        row = frame.loc[i]
        if not row["run_id"]:
            continue
        frame.loc[i, ["image_path", "features_path"]] = fetch_pictures(
            store, row["run_id"], row["net"], out / "pictures"
        )
    n_runs = frame.loc[frame["run_id"] != "", "run_id"].nunique()
    notes = [study.description.strip()] if study.description.strip() else []
    notes.append(
        f"Study `{study.name}`: {n_runs} runs ({computed} computed now, {reused} reused), "
        f"MLflow experiment {experiment_id} at `{store.uri}`."
    )
    return write_report(frame, study.analysis, out / "report", f"Study: {study.name}", notes)


def summary_text(report: Report, spec: ReportSpec) -> str:
    """What ``ferlab study`` prints at its end: the table and comparisons at the fit gate (the
    headline), then the unmatched table, each titled."""
    from ferlab.report.tables import counted_table, format_comparisons, format_summary, uncompared

    parts = []
    fit = report.fit
    if "at_fit" in fit:
        table = counted_table(fit["at_fit"], fit["counts"], spec, "none passed")
        parts += [f"At the fit gate (MSE <= {spec.fit_gate:g}):", table.to_string(index=False)]
        if len(fit.get("comparisons_at_fit", ())):
            compared = format_comparisons(fit["comparisons_at_fit"])
            parts += ["", "Comparisons at the fit gate:", compared.to_string(index=False)]
        note = uncompared(fit["comparisons_at_fit"], spec)
        parts += ["", note] if note else []
        parts.append("")
    unmatched = format_summary(report.summary, spec).to_string(index=False)
    parts += ["Unmatched (every final net, whatever its fit):", unmatched]
    return "\n".join(parts)
