"""Studies: named phases of runs, run through the sweep machinery, then one report.

A study spec (YAML)::

    name: fer_paper                  # the MLflow experiment
    targets: [picbreeder:skull, picbreeder:butterfly]
    phases:
      - name: sgd                    # runs of one kind
        label: sgd                   # its group in the report (default: the name)
        role: reproducer             # optional second grouping (discoverer / reproducer)
        base: {regime: sgd, resolution: 64, settings: {steps: 2000}}   # a run config
        grid: {settings.learning_rate: [0.003]}     # every combination, dotted keys
        targets: [study]             # study = the study's targets; phase:NAME = images
                                     # an earlier phase found; or a target spec; unset: none
        sample: 4                    # at most this many images from earlier phases
        same_arch: true              # the run's arch is its target's (a net or genome)
        same_mask: true              # SGD trains only the target net's non-zero weights
        activation: relu             # every hidden unit of that arch becomes this
        seeds: 3                     # seeds 0..2: a grid over ``seed`` ...
        seed_key: settings.seeds     # ... or one run that trains them side by side
        nets: "archive_*"            # which final nets are scored (glob)
        keep: 8                      # at most this many of them, evenly spaced
    analysis: {metrics: [fer_score], group: label,
               comparisons: [{a: picbreeder, b: sgd}]}   # ferlab.report.Analysis
    profiles:
      quick: {set: {resolution: 32}, phases: {sgd: {base.settings.steps: 500}}}

Every run of a phase gets a run key: a hash of its resolved config (targets
taken from earlier phases stand in by their image id, not their file path)
and of what is scored. A run whose key has a FINISHED MLflow run in the
study's experiment is reused, so running a study again (after an
interruption, or with one more phase) computes only what is missing.

The report's rows are networks: one per scored final net of every run of
the study (this profile), with the run's tags and its FER metrics
(``fer.<net>.<metric>`` run metrics) pulled from MLflow.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ferlab.config import ConfigError, apply_overrides, from_dict, load_yaml, to_dict
from ferlab.report import Analysis, Report, write_report
from ferlab.tracking import FER_PREFIX, KIND_TAG, PARENT_TAG

STUDY_TAG = "ferlab.study"
KEY_TAG = "ferlab.run_key"
PHASE_TAG = "ferlab.phase"
LABEL_TAG = "ferlab.label"
ROLE_TAG = "ferlab.role"
IMAGE_TAG = "ferlab.image"
RUN_POINT = "run"
RUN_STATS = ("loss", "best_fitness", "archive_size")


@dataclass(frozen=True)
class Phase:
    """One kind of run, expanded over targets, seeds and a grid (see the module docstring)."""

    name: str
    base: dict[str, Any]
    label: str | None = None
    role: str | None = None
    grid: dict[str, list[Any]] = field(default_factory=dict)
    targets: list[str] | None = None
    sample: int | None = None
    same_arch: bool = False
    same_mask: bool = False
    activation: str | None = None
    seeds: int = 1
    seed_key: str = "seed"
    nets: str = "*"
    keep: int | None = None
    cpus: float = 1
    max_failures: int = 1

    def __post_init__(self):
        if not self.name.strip() or "/" in self.name:
            raise ValueError(f"phase name must be non-empty without '/', got {self.name!r}")
        if self.seeds < 1:
            raise ValueError(f"phase {self.name}: seeds must be at least 1, got {self.seeds}")
        if self.sample is not None and self.sample < 1:
            raise ValueError(f"phase {self.name}: sample must be at least 1, got {self.sample}")
        if self.keep is not None and self.keep < 1:
            raise ValueError(f"phase {self.name}: keep must be at least 1, got {self.keep}")
        for flag in ("same_arch", "same_mask"):
            if getattr(self, flag) and not self.targets:
                raise ValueError(f"phase {self.name}: {flag} needs targets")
        if self.activation is not None:
            from ferlab.activations import ACTIVATIONS

            if self.activation not in ACTIVATIONS:
                raise ValueError(f"phase {self.name}: unknown activation {self.activation!r}")
        for key in ("seed", self.seed_key, "target"):
            if key in self.grid:
                raise ValueError(f"phase {self.name}: {key!r} is set by the study (seeds, targets), not grid")

    @property
    def group(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class Profile:
    """``set``: dotted overrides of every phase's run config; ``phases``: dotted overrides of a phase's spec."""

    set: dict[str, Any] = field(default_factory=dict)
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Study:
    name: str
    phases: list[Phase]
    targets: list[str] = field(default_factory=list)
    analysis: Analysis = Analysis()
    profiles: dict[str, Profile] = field(default_factory=dict)
    seed: int = 0
    description: str = ""

    def __post_init__(self):
        names = [p.name for p in self.phases]
        if not names:
            raise ValueError("a study needs at least one phase")
        if len(set(names)) != len(names):
            raise ValueError(f"phase names must be unique, got {names}")
        for i, phase in enumerate(self.phases):
            for t in phase.targets or []:
                if t.startswith("phase:") and t[6:] not in names[:i]:
                    raise ValueError(f"phase {phase.name}: {t!r} names no earlier phase")
                if t == "study" and not self.targets:
                    raise ValueError(f"phase {phase.name}: targets 'study' but the study lists no targets")


def load_study(path: str | Path, profile: str | None = None) -> Study:
    """Read a study spec with ``profile`` applied; ConfigError on any problem."""
    data = load_yaml(path)
    if profile is not None:
        profiles = data.get("profiles") or {}
        if profile not in profiles:
            raise ConfigError(f"{path}: no profile {profile!r} (known: {', '.join(profiles) or 'none'})")
        data = apply_profile(data, from_dict(Profile, profiles[profile], f"profiles.{profile}"), str(path))
    return from_dict(Study, data, str(path))


def apply_profile(data: dict, profile: Profile, where: str) -> dict:
    known = {p.get("name") for p in data.get("phases") or [] if isinstance(p, dict)}
    unknown = sorted(set(profile.phases) - known)
    if unknown:
        raise ConfigError(f"{where}: profile names unknown phase {unknown[0]!r}")
    phases = []
    for p in data.get("phases") or []:
        if isinstance(p, dict):
            p = apply_overrides(p, [f"base.{k}={json.dumps(v)}" for k, v in profile.set.items()])
            p = apply_overrides(p, [f"{k}={json.dumps(v)}" for k, v in profile.phases.get(p.get("name"), {}).items()])
        phases.append(p)
    return {**data, "phases": phases}


# ------------------------------------------------------------------ expanding phases
@dataclass(frozen=True)
class Target:
    """A target of a run: the spec a run config takes and the image id the report pairs on."""

    spec: str
    image: str


@dataclass(frozen=True)
class RunEntry:
    """One run of a study: its run config, key, point name and tags."""

    phase: Phase
    config: dict
    key: str
    point: str
    image: str | None

    @property
    def tags(self) -> dict[str, str]:
        tags = {KEY_TAG: self.key, PHASE_TAG: self.phase.name, LABEL_TAG: self.phase.group}
        if self.phase.role:
            tags[ROLE_TAG] = self.phase.role
        if self.image is not None:
            tags[IMAGE_TAG] = self.image
        return tags


def run_key(config: dict, phase: Phase, target: Target | None) -> str:
    """A hash of what defines a run's results: the config (its target file named by its image id,
    wherever it stands) and what is scored."""
    def named(value):
        if isinstance(value, dict):
            return {k: named(v) for k, v in value.items()}
        return target.image if value == target.spec else value

    identity = config if target is None else named(config)
    text = json.dumps({"run": identity, "nets": phase.nets, "keep": phase.keep}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def expand(phase: Phase, targets: list[Target]) -> list[RunEntry]:
    """Every run of a phase: targets x grid x seeds."""
    import itertools

    grid = dict(phase.grid)
    if phase.seed_key == "seed":
        grid["seed"] = list(range(phase.seeds))
    else:
        grid[phase.seed_key] = [phase.seeds]
    keys = list(grid)
    out = []
    for target in targets or [None]:
        for combo in itertools.product(*(grid[k] for k in keys)):
            config = apply_overrides(phase.base, [f"{k}={json.dumps(v)}" for k, v in zip(keys, combo)])
            if target is not None:
                config["target"] = target.spec
                if phase.same_arch:
                    config["arch"] = target.spec
                if phase.same_mask:
                    config.setdefault("settings", {})["mask_from"] = target.spec
            if phase.activation is not None:
                config["arch"] = relabel_arch(config.get("arch"), phase.activation)
            image = target.image if target is not None else None
            key = run_key(config, phase, target)
            seed = config.get("seed", 0)
            where = _short(image) if image else "open"
            out.append(RunEntry(phase, config, key, f"{phase.name}/{where}/s{seed}/{key[:8]}", image))
    return out


def relabel_arch(spec: str | None, activation: str) -> str:
    """The architecture of ``spec`` (string or source) with every hidden unit set to ``activation``."""
    from ferlab.search.runs import DEFAULT_ARCH
    from ferlab.search.targets import load_arch

    arch = load_arch(spec or DEFAULT_ARCH, "arch")
    return f"{arch.n_layers};{activation}:{arch.width}"


def _short(image: str) -> str:
    return image.split(":")[-1].replace("/", "-")[-28:]


# ------------------------------------------------------------------ planning a trial
def plan_entry(data: dict, table: dict[str, RunEntry], build: Callable | None = None):
    """The sweep planner: the RunPlan of the study run named by ``data['run']``, tagged and scored as
    its phase says. ``build(config) -> (search, run config)`` defaults to the real regimes."""
    from ferlab.workers.bridge import plan_for

    entry = table[data[RUN_POINT]]
    plan = plan_for(*(build or build_search)(entry.config))
    return dataclasses.replace(plan, search=Selected(plan.search, entry.phase.nets, entry.phase.keep),
                               tags={**plan.tags, **entry.tags})


def build_search(config: dict):
    """``(search, validated run config)`` for a run config."""
    from ferlab.search.runs import load_run_config, make_search

    cfg = load_run_config(config)
    return make_search(cfg), cfg


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

    def result(self, state):
        from ferlab.search.api import Result

        result = self.search.result(state)
        names = select_names(list(result.nets), self.pattern, self.keep)
        return Result({n: result.nets[n] for n in names}, {n: result.images[n] for n in names},
                      {n: result.genomes[n] for n in names if n in result.genomes})


def select_names(names: list[str], pattern: str, keep: int | None) -> list[str]:
    chosen = sorted(fnmatch.filter(names, pattern))
    if keep is not None and len(chosen) > keep:
        chosen = [chosen[i] for i in np.linspace(0, len(chosen) - 1, keep).round().astype(int)]
    return chosen


# ------------------------------------------------------------------ MLflow
def finished_runs(store, experiment_id: str, study: str) -> dict[str, Any]:
    """``run key -> MLflow run`` of the study's FINISHED runs (the newest per key)."""
    from ferlab.tracking import client

    mc = client(store)
    out: dict[str, Any] = {}
    token = None
    while True:
        page = mc.search_runs([experiment_id], filter_string=f"tags.`{STUDY_TAG}` = '{study}' "
                              "and attributes.status = 'FINISHED'", max_results=1000, page_token=token,
                              order_by=["attributes.start_time ASC"])
        for run in page:
            key = run.data.tags.get(KEY_TAG)
            if key:
                out[key] = run
        token = page.token
        if not token:
            return out


def network_rows(entries: list[RunEntry], runs: dict[str, Any]) -> list[dict]:
    """One row per scored net of each entry's finished run: tags, run stats and FER metrics."""
    rows = []
    for entry in entries:
        run = runs.get(entry.key)
        if run is None:
            continue
        per_net: dict[str, dict[str, float]] = {}
        for name, value in run.data.metrics.items():
            if name.startswith(FER_PREFIX):
                net, _, metric = name[len(FER_PREFIX):].partition(".")
                per_net.setdefault(net, {})[metric] = value
        base = {"run_id": run.info.run_id, "run_key": entry.key, "phase": entry.phase.name,
                "label": entry.phase.group, "role": entry.phase.role or "", "regime": entry.config.get("regime"),
                "seed": entry.config.get("seed", 0), "target": entry.image or ""}
        base |= {k: run.data.metrics[k] for k in RUN_STATS if k in run.data.metrics}
        for net, metrics in sorted(per_net.items()):
            image = entry.image or discovered_id(entry, net)
            rows.append({**base, "net": net, "image": image, **metrics})
    return rows


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


def run_study(study: Study, store, out_dir: str | Path, *, address: str | None = None,
              storage: str | Path | None = None, resume: bool = False,
              planner: Callable | None = None, fer: Callable | None = None, verbose: int = 1,
              stop_after_phase: str | None = None, log: Callable[[str], None] = print) -> StudyOutcome:
    """Run every phase (reusing finished runs), then write the report and log it to the study's MLflow run.

    ``planner(data, table)`` and ``fer`` default to the real regimes and the FER
    suite (tests pass stand-ins); ``stop_after_phase`` ends after that phase
    with no report (an interruption). Every phase runs in one Ray session. Phase sweeps keep Tune's
    checkpoints under ``storage`` (default ``<out_dir>/tune``), one folder per phase; with ``resume``,
    a phase sweep whose driver died is restored from there (``run_sweep(resume=True)``).
    """
    from ferlab.tracking import check_store
    from ferlab.workers.bridge import check_run
    from ferlab.workers.cluster import ray_session

    check_store(store)
    if address and not store.is_server:
        raise ConfigError("a study on a cluster needs --tracking-uri http://<head>:<port>")
    check = check_run if planner is None else (lambda config: None)
    for phase in study.phases:
        if not any(t.startswith("phase:") for t in phase.targets or []):
            for entry in expand(phase, static_targets(study, phase)):
                check(entry.config)
    with ray_session(address):
        return _conduct(study, store, Path(out_dir).resolve(), check, address=address, storage=storage,
                        resume=resume, planner=planner, fer=fer, verbose=verbose,
                        stop_after_phase=stop_after_phase, log=log)


def _conduct(study: Study, store, out: Path, check: Callable[[dict], None], *, address, storage, resume,
             planner, fer, verbose: int, stop_after_phase: str | None, log: Callable[[str], None]) -> StudyOutcome:
    """``run_study`` once its inputs are checked and Ray is up: the study's MLflow run, its phases, its report."""
    from ferlab.tracking import client, end_run, experiment

    mc = client(store)
    experiment_id = experiment(store, study.name)
    study_run = mc.create_run(experiment_id, run_name=f"{study.name}-{time.strftime('%Y%m%d-%H%M%S')}",
                              tags={KIND_TAG: "study", STUDY_TAG: study.name})
    study_run_id = study_run.info.run_id
    mc.log_text(study_run_id, yaml.safe_dump(to_dict(study), sort_keys=False), "study.yaml")
    computed = reused = 0
    entries: list[RunEntry] = []
    ok = False
    try:
        for phase in study.phases:
            done = finished_runs(store, experiment_id, study.name)
            targets = phase_targets(study, phase, entries, done, store, out)
            phase_entries = expand(phase, targets)
            todo = [e for e in phase_entries if e.key not in done]
            log(f"phase {phase.name}: {len(phase_entries)} runs, {len(phase_entries) - len(todo)} reused, "
                f"{len(todo)} to run")
            reused += len(phase_entries) - len(todo)
            if todo:
                for entry in todo:
                    check(entry.config)
                failed = run_phase(study, phase, todo, store, out, address=address, storage=storage,
                                   resume=resume, planner=planner, fer=fer, verbose=verbose, parent=study_run_id)
                computed += len(todo) - failed
                if failed:
                    log(f"phase {phase.name}: {failed} runs failed (see their MLflow runs); the report omits them")
            entries += phase_entries
            if phase.name == stop_after_phase:
                ok = True
                return StudyOutcome(None, experiment_id, study_run_id, computed, reused)
        report = analyse(study, entries, store, experiment_id, out, computed, reused)
        mc.log_artifacts(study_run_id, str(report.folder), "report")
        ok = True
        return StudyOutcome(report, experiment_id, study_run_id, computed, reused)
    finally:
        end_run(store, study_run_id, failed=not ok)


def static_targets(study: Study, phase: Phase) -> list[Target]:
    out = []
    for t in phase.targets or []:
        if t == "study":
            out += [Target(s, s) for s in study.targets]
        elif not t.startswith("phase:"):
            out.append(Target(t, t))
    return out


def phase_targets(study: Study, phase: Phase, earlier: list[RunEntry], runs: dict[str, Any], store,
                  out: Path) -> list[Target]:
    """A phase's targets: static ones, plus a sample of the images that named earlier phases found
    (in ``runs``, the study's finished runs)."""
    from ferlab.tracking import client

    targets = static_targets(study, phase)
    sources = [t[6:] for t in phase.targets or [] if t.startswith("phase:")]
    if not sources:
        return targets
    rows = network_rows([e for e in earlier if e.phase.name in sources], runs)
    rows.sort(key=lambda r: r["image"])
    if phase.sample is not None and len(rows) > phase.sample:
        rng = np.random.default_rng(study.seed)
        rows = [rows[i] for i in sorted(rng.choice(len(rows), phase.sample, replace=False))]
    mc = client(store)
    folder = out / "targets"
    for row in rows:
        path = folder / (row["image"].replace("/", "_") + ".npz")
        if not path.is_file():
            from ferlab.files import write_bytes

            local = mc.download_artifacts(row["run_id"], f"nets/{row['net']}/net.npz")
            write_bytes(path, Path(local).read_bytes())
        targets.append(Target(str(path), row["image"]))
    return targets


def run_phase(study: Study, phase: Phase, todo: list[RunEntry], store, out: Path, *, address, planner, fer,
              verbose: int, parent: str, storage: str | Path | None = None, resume: bool = False) -> int:
    """Run the missing runs of one phase as one sweep; the number that failed."""
    import functools

    from ferlab.tracking import safe_name
    from ferlab.workers.bridge import fer_suite
    from ferlab.workers.cluster import join_uri
    from ferlab.workers.sweep import Resources, SweepSpec, run_sweep

    table = {e.point: e for e in todo}
    spec = SweepSpec(name=study.name, base={}, grid={RUN_POINT: [e.point for e in todo]},
                     metric="generation", mode="max", resources=Resources(cpus=phase.cpus),
                     max_failures=phase.max_failures)
    plan = functools.partial(planner or plan_entry, table=table)
    tagged = functools.partial(_with_study_tag, plan=plan, study=study.name)
    size = max(int(e.config.get("resolution", 64)) for e in todo)
    phase_storage = join_uri(str(storage if storage is not None else out / "tune"), safe_name(phase.name))
    outcome = run_sweep(spec, store, address=address, storage=phase_storage, resume=resume, planner=tagged,
                        fer=fer or functools.partial(fer_suite, size=size, draw=False),
                        verbose=verbose, tags={PARENT_TAG: parent, PHASE_TAG: phase.name},
                        run_name=f"{study.name}/{phase.name}")
    return outcome.failed


def _with_study_tag(data: dict, *, plan, study: str):
    p = plan(data)
    return dataclasses.replace(p, tags={**p.tags, STUDY_TAG: study})


def runs_frame(study: Study, entries: list[RunEntry], store, experiment_id: str):
    """The study's networks as a pandas DataFrame (one row per scored net), read from MLflow."""
    import pandas as pd

    rows = network_rows(entries, finished_runs(store, experiment_id, study.name))
    return pd.DataFrame(rows)


def analyse(study: Study, entries: list[RunEntry], store, experiment_id: str, out: Path,
            computed: int = 0, reused: int = 0) -> Report:
    """Pull the study's runs from MLflow, fetch gallery images, write the report into ``out/report``."""
    import pandas as pd

    from ferlab.report import gallery_rows

    frame = runs_frame(study, entries, store, experiment_id)
    if frame.empty:
        raise ConfigError(f"study {study.name}: no finished runs with FER metrics to report")
    frame = frame.assign(image_path=pd.Series([None] * len(frame), dtype=object),
                         features_path=pd.Series([None] * len(frame), dtype=object))
    picks = gallery_rows(frame, study.analysis.group, study.analysis.gallery, study.analysis.metrics[0])
    for i in picks.index:
        frame.loc[i, ["image_path", "features_path"]] = fetch_pictures(store, frame.loc[i], out / "pictures")
    n_runs = frame["run_id"].nunique()
    notes = [study.description.strip()] if study.description.strip() else []
    notes.append(f"Study `{study.name}`: {n_runs} runs ({computed} computed now, {reused} reused), "
                 f"MLflow experiment {experiment_id} at `{store.uri}`.")
    return write_report(frame, study.analysis, out / "report", f"Study: {study.name}", notes)


def fetch_pictures(store, row, folder: Path) -> list[str | None]:
    """Download a net's image and its feature-map grid (if the FER suite wrote one); local paths."""
    from ferlab.tracking import client

    mc = client(store)
    base = f"nets/{row['net']}"
    dest = folder / row["run_id"] / row["net"]
    dest.mkdir(parents=True, exist_ok=True)
    try:
        image = mc.download_artifacts(row["run_id"], f"{base}/image.png", str(dest))
    except Exception:
        return [None, None]
    features = None
    try:
        listing = mc.list_artifacts(row["run_id"], f"{base}/fer")
        pngs = [a.path for a in listing if a.path.endswith(".png")]
        pngs.sort(key=lambda p: ("feature" not in Path(p).name, p))
        if pngs:
            features = mc.download_artifacts(row["run_id"], pngs[0], str(dest))
    except Exception:
        features = None
    return [image, features]


def summary_text(report: Report, analysis: Analysis) -> str:
    """The results table as printed at the end of ``ferlab study``."""
    from ferlab.report import format_summary

    return format_summary(report.summary, analysis).to_string(index=False)

