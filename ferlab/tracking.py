"""The MLflow layout of ferlab, in one place: run names, tags, metric keys and artifact paths.

Everything that writes or reads MLflow goes through this module; studies and
sweeps never import ``mlflow``. The layout:

- one experiment per sweep or study, of MLflow's training kind (the UI opens on
  its runs table);
- a parent run per sweep (``ferlab.kind = sweep``) and per study (``study``;
  its phases' sweeps are its children, named by phase), and a child run per
  trial, named ``phase/image/s<seed>`` in studies;
- every run tagged with the code that made it (``ferlab.version``,
  ``ferlab.git_commit``) and the process that drives it (``ferlab.driver``,
  ``host:pid:start``), so a rerun can tell runs left RUNNING by a dead driver
  and mark them KILLED (``reap``) before it starts new ones; a trial's run also
  names the process that computed it (``ferlab.worker``, ``host:pid:start``: one
  process serves several trials of a sweep in turn);
- per-generation metrics with ``step = generation`` (exactly once each, even
  after a trial resumes from an older checkpoint), among them ``loss`` (the
  MSE of the run's best net to its target: lower is better, the one fit sign
  shared by every regime; a regime's own ``best_fitness`` keeps that regime's
  sign) and ``evaluations`` (nets evaluated so far: the common x-axis across
  regimes);
- at checkpoints, about ``PICTURES`` times a run, the picture of its leading net
  (lowest own loss, else its first net) as an MLflow image logged with
  ``key = progress`` and ``step = generation`` (the UI's image slider);
- at the end, per final net ``nets/<net>/{net.npz, image.png, genome.json,
  target.png, fer/}`` (images at least 128 px), its FER metrics as
  ``fer.<net>.<metric>``, and the run-level ``fer_score`` (median over the
  scored nets) with ``fer_score_min`` and ``fer_score_max``, so every run sorts
  by one key in the runs table; and the run's tables as ``tables/<name>.csv``
  (``history``, ``fit``: each net's own loss, ``ladder``: when each rung was reached).

The store is a tracking server (``http://host:port``, needed when workers run
on other nodes) or, by default, an embedded SQLite file with a local artifact
folder (``default_store``; a SQLite file given by URI keeps its artifacts beside
it too, ``resolve_store``), created under a file lock so that two processes
starting on a fresh folder at once do not race MLflow's table creation.
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import socket
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ferlab.errors import FerlabError

# ------------------------------------------------------------------ the layout
PARENT_TAG = "mlflow.parentRunId"
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}  # MLflow 3.x: open on the runs table
KIND_TAG = "ferlab.kind"  # sweep, study (the run that holds a sweep's or a study's runs)
TRIAL_TAG = "ferlab.trial_id"
DRIVER_TAG = "ferlab.driver"  # host:pid:start of the process that drives the run
WORKER_TAG = "ferlab.worker"  # host:pid:start of the process that computed a trial (Tune reuses one for several)
VERSION_TAG = "ferlab.version"
COMMIT_TAG = "ferlab.git_commit"
ERROR_TAG = "ferlab.error"
STOPPED_TAG = "ferlab.stopped"
STUDY_TAG = "ferlab.study"
KEY_TAG = "ferlab.run_key"
PHASE_TAG = "ferlab.phase"
LABEL_TAG = "ferlab.label"
ROLE_TAG = "ferlab.role"
IMAGE_TAG = "ferlab.image"
FER_PREFIX = "fer."  # metrics fer.<net>.<metric>
FER_SCORE = "fer_score"  # run level: median over the scored nets, with _min and _max
LOSS = "loss"  # MSE to the target: run level (its best net), and fer.<net>.loss (each net its own)
GENERATION_KEY = "generation"
EVALUATIONS_KEY = "evaluations"
RUN_STATS = ("loss", "best_fitness", "archive_size", EVALUATIONS_KEY)  # run-level stats a study reads
NETS = "nets"
TABLES = "tables"  # a run's CSV tables: history.csv, fit.csv, ladder.csv (rungs reached: generation, evaluations, time)
STUDY_SPEC = "study.yaml"
REPORT = "report"
MIN_PICTURE = 128  # images are logged at least this wide
PROGRESS = "progress"  # the key of the pictures logged at checkpoints
PICTURES = 10  # about this many progress pictures a run
_BATCH = 900  # MLflow accepts up to 1000 metrics per log_batch


class TrackingError(FerlabError):
    """The tracking store cannot be reached or used."""


# ------------------------------------------------------------------ names and tags
def net_path(net: str, file: str = "") -> str:
    """The artifact path of a final net's folder, or of ``file`` in it."""
    return f"{NETS}/{net}/{file}" if file else f"{NETS}/{net}"


def short_image(image: str) -> str:
    """An image id short enough for a run name (``picbreeder:skull`` -> ``skull``)."""
    return image.split(":")[-1].replace("/", "-")[-28:]


def trial_name(phase: str, image: str | None, seed: int, extra: dict[str, Any] | None = None) -> str:
    """A study trial's run name: ``phase/image/s<seed>`` (``open`` for runs with no target), then
    ``key=value`` for each grid key of the phase."""
    name = f"{phase}/{short_image(image) if image else 'open'}/s{seed}"
    return name + "".join(f",{k}={v}" for k, v in (extra or {}).items())


def study_tags(study: str, key: str, phase: str, label: str, role: str | None, image: str | None) -> dict[str, str]:
    """The tags that place a run in its study: the study, run key, phase, label, role and image."""
    tags = {STUDY_TAG: study, KEY_TAG: key, PHASE_TAG: phase, LABEL_TAG: label}
    if role:
        tags[ROLE_TAG] = role
    if image is not None:
        tags[IMAGE_TAG] = image
    return tags


def phase_tags(study_run_id: str, phase: str) -> dict[str, str]:
    """The tags of a phase's sweep run: a child of the study's run, named by its phase."""
    return {PARENT_TAG: study_run_id, PHASE_TAG: phase}


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, dict, tuple)) else str(value)


def as_params(flat: dict[str, Any]) -> dict[str, str]:
    """Flattened config values as MLflow param strings (MLflow caps values at 6000 chars); None
    values (settings not in use) are left out."""
    return {k: _text(v)[:6000] for k, v in flat.items() if v is not None}


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, str]:
    """``{ferlab.version, ferlab.git_commit}`` of the running code (the commit only in a git
    checkout; ``+dirty`` when the checkout has uncommitted changes to tracked files)."""
    import subprocess

    from ferlab import __version__

    out = {VERSION_TAG: __version__}
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=False, timeout=10
        )
        if commit.returncode == 0 and commit.stdout.strip():
            dirty = subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                check=False,
                capture_output=True,
                text=True,
                timeout=10,
            )
            out[COMMIT_TAG] = commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return out


# ------------------------------------------------------------------ drivers and stale runs
def _start_ticks(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, Linux), '' where unknown or gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def driver_id() -> str:
    """This process as ``host:pid:start`` (the start time tells a reused pid apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_ticks(os.getpid())}"


def driver_alive(driver: str) -> bool:
    """Whether the process named by ``driver_id`` still runs; a driver on another host counts as alive
    (it cannot be checked from here)."""
    rest = driver.split(":")
    host, pid, start = ":".join(rest[:-2]), rest[-2], rest[-1]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    if Path("/proc").is_dir():
        now = _start_ticks(int(pid))
        return bool(now) and (not start or now == start)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap(store: Store, experiment_id: str) -> int:
    """Mark KILLED every run of the experiment left RUNNING by a driver that died (a killed study,
    sweep or run), so that a rerun never leaves a run key with two live runs; how many."""
    mc = client(store)
    left = _search(mc, experiment_id, f"tags.`{DRIVER_TAG}` != '' and attributes.status = 'RUNNING'")
    dead = [r for r in left if not driver_alive(r.data.tags[DRIVER_TAG])]
    for run in dead:
        mc.set_tag(run.info.run_id, STOPPED_TAG, f"its driver {run.data.tags[DRIVER_TAG]} died")
        mc.set_terminated(run.info.run_id, "KILLED")
    return len(dead)


def reopen(mc, run, driver: str | None = None, tags: dict[str, str] | None = None) -> None:
    """Set a run (an MLflow ``Run``) RUNNING again under ``driver`` (this process if None), with
    ``tags`` added: the dead driver's tag would let ``reap`` in any other process mark it KILLED
    while it runs, and its ``stopped`` note and a failed try's error no longer hold (a new failure
    sets its own)."""
    from mlflow.entities import RunTag

    mc.update_run(run.info.run_id, status="RUNNING")
    new = {**(tags or {}), DRIVER_TAG: driver or driver_id()}
    mc.log_batch(run.info.run_id, tags=[RunTag(k, v) for k, v in new.items()])
    for tag in (STOPPED_TAG, ERROR_TAG):
        if tag in run.data.tags:
            mc.delete_tag(run.info.run_id, tag)


def _search(mc, experiment_id: str, filter_string: str, order_by: list[str] | None = None) -> list:
    """Every run matching ``filter_string`` (all pages)."""
    out, token = [], None
    while True:
        page = mc.search_runs(
            [experiment_id], filter_string=filter_string, max_results=1000, page_token=token, order_by=order_by
        )
        out += list(page)
        token = page.token
        if not token:
            return out


# ------------------------------------------------------------------ stores
@dataclass(frozen=True)
class Store:
    """Where runs go: a tracking URI and, for the embedded store, its artifact folder."""

    uri: str
    artifact_root: str | None = None

    @property
    def is_server(self) -> bool:
        return self.uri.startswith(("http://", "https://"))

    @property
    def sqlite_file(self) -> str | None:
        """The file an ``sqlite:///PATH`` URI keeps its runs in (PATH as written), else None."""
        return self.uri.removeprefix("sqlite:///") if self.uri.startswith("sqlite:///") else None


STORE_DB = "mlflow.db"  # the embedded store's SQLite file in its folder
STORE_ARTIFACTS = "artifacts"  # the folder beside a store's SQLite file that holds its runs' artifacts


def default_store(folder: str | Path = "mlruns") -> Store:
    """The embedded store: ``sqlite:///<abs folder>/mlflow.db`` plus ``<folder>/artifacts``; the folder is
    made on first use (``client``), so a command refused before any work leaves none behind."""
    folder = Path(folder).resolve()
    return Store(f"sqlite:///{folder / STORE_DB}", (folder / STORE_ARTIFACTS).as_uri())


def resolve_store(uri: str | None, folder: str | Path = "mlruns") -> Store:
    """``uri`` as given (a server or any MLflow URI), or the embedded default. A SQLite file keeps
    its experiments' artifacts beside it, in ``STORE_ARTIFACTS``, as the embedded store does: MLflow's own
    default for it is ./mlruns under whatever folder the command ran in."""
    if not uri:
        return default_store(folder)
    path = Store(uri).sqlite_file
    if path and path != ":memory:":
        return Store(uri, (Path(path).resolve().parent / STORE_ARTIFACTS).as_uri())
    return Store(uri)


# URI schemes MLflow 3 keeps runs in (a database's may name its driver: postgresql+psycopg2); it refuses
# a plain folder (its file store), and ``sqlite:///`` with no file is an in-memory store that loses every run
STORE_SCHEMES = ("http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks")


def check_store(store: Store, timeout: float = 5.0) -> None:
    """Fail fast, before any compute and writing nothing, when the store cannot keep runs: a tracking
    server that does not answer, a URI MLflow keeps no runs in, a SQLite file that cannot be made."""
    if not store.is_server:
        scheme = store.uri.partition(":")[0].partition("+")[0] if ":" in store.uri else ""
        if scheme not in STORE_SCHEMES:
            raise TrackingError(
                f"tracking URI {store.uri!r} is not a store MLflow keeps runs in "
                "(give http(s)://<host>:<port> for a server or sqlite:///<path>/mlflow.db)"
            )
        if scheme == "sqlite":
            path = store.sqlite_file or ""
            if not path or path == ":memory:":
                raise TrackingError(f"tracking URI {store.uri!r} names no file (an in-memory store loses every run)")
            from ferlab.files import check_writable_folder

            try:
                check_writable_folder(Path(path).parent, f"the folder of {store.uri}:")
            except FerlabError as e:
                raise TrackingError(str(e)) from None
        return
    url = store.uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            if reply.status != 200:
                raise TrackingError(f"tracking server {store.uri} is not healthy (HTTP {reply.status})")
    except urllib.error.HTTPError as e:
        raise TrackingError(f"tracking server {store.uri} is not healthy (HTTP {e.code})") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise TrackingError(f"tracking server {store.uri} is not reachable ({reason})") from None


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@functools.cache
def _created(uri: str) -> bool:
    """Create (or open) the SQLite store at ``uri`` once per process, under ``<db>.lock``: MLflow's
    first use creates the tables, and two processes doing it at once fail ("No such index")."""
    from mlflow import MlflowClient

    try:
        with _file_lock(Path(Store(uri).sqlite_file + ".lock")):
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except OSError as e:
        raise TrackingError(f"cannot make the store {uri} ({e.strerror or e})") from None
    return True


def client(store: Store):
    """An MLflow client on ``store``; ferlab draws its own progress, so MLflow's per-artifact bars are off."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow import MlflowClient

    if store.sqlite_file is not None:
        _created(store.uri)
    return MlflowClient(tracking_uri=store.uri)


def experiment(store: Store, name: str) -> str:
    """The id of experiment ``name``, created if new (one per sweep or study), of the training kind."""
    mc = client(store)
    exp = mc.get_experiment_by_name(name)
    if exp is None:
        return mc.create_experiment(name, artifact_location=_exp_folder(store, name), tags=EXPERIMENT_KIND)
    for key, value in EXPERIMENT_KIND.items():
        if exp.tags.get(key) != value:
            mc.set_experiment_tag(exp.experiment_id, key, value)
    return exp.experiment_id


def safe_name(name: str) -> str:
    """``name`` usable as a folder name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _exp_folder(store: Store, name: str) -> str | None:
    return f"{store.artifact_root}/{safe_name(name)}" if store.artifact_root else None


def own_tags(driver: str | None = None) -> dict[str, str]:
    """The tags every ferlab run carries: its code version and its driver."""
    return {**code_version(), DRIVER_TAG: driver or driver_id()}


def start_sweep(
    store: Store, name: str, params: dict[str, Any], tags: dict[str, str] | None = None, run_name: str | None = None
) -> tuple[str, str]:
    """Create (or reuse) the experiment ``name``, mark its runs left by dead drivers KILLED, and open a
    parent run (``tags`` added, e.g. its own parent when a study holds it); ``(experiment_id, run_id)``."""
    mc = client(store)
    exp_id = experiment(store, name)
    reap(store, exp_id)
    parent = mc.create_run(
        exp_id,
        run_name=run_name or f"{name}-{time.strftime('%Y%m%d-%H%M%S')}",
        tags={KIND_TAG: "sweep", **own_tags(), **(tags or {})},
    )
    log_params(mc, parent.info.run_id, params)
    return exp_id, parent.info.run_id


def start_study(store: Store, name: str, spec_yaml: str) -> tuple[str, str]:
    """Create (or reuse) the study's experiment, mark its runs left by dead drivers KILLED, open the
    study's run and log its spec; ``(experiment_id, run_id)``."""
    mc = client(store)
    exp_id = experiment(store, name)
    reap(store, exp_id)
    run = mc.create_run(
        exp_id,
        run_name=f"{name}-{time.strftime('%Y%m%d-%H%M%S')}",
        tags={KIND_TAG: "study", STUDY_TAG: name, **own_tags()},
    )
    mc.log_text(run.info.run_id, spec_yaml, STUDY_SPEC)
    return exp_id, run.info.run_id


def log_report(store: Store, run_id: str, folder: str | Path) -> None:
    """A study's report folder as the study run's ``report/`` artifacts."""
    client(store).log_artifacts(run_id, str(folder), REPORT)


def log_params(mc, run_id: str, params: dict[str, Any]) -> None:
    """Params in batches of 100 (MLflow's limit per request)."""
    from mlflow.entities import Param

    items = [Param(k, v) for k, v in as_params(params).items()]
    for i in range(0, len(items), 100):
        mc.log_batch(run_id, params=items[i : i + 100])


def end_run(store: Store, run_id: str, failed: bool = False) -> None:
    client(store).set_terminated(run_id, "FAILED" if failed else "FINISHED")


def close_children(store: Store, experiment_id: str, parent_id: str) -> int:
    """Mark children still RUNNING (stopped early by ASHA, or lost with their driver) as KILLED."""
    mc = client(store)
    left = mc.search_runs(
        [experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}' and attributes.status = 'RUNNING'"
    )
    for run in left:
        mc.set_tag(run.info.run_id, STOPPED_TAG, "early stop or lost worker")
        mc.set_terminated(run.info.run_id, "KILLED")
    return len(left)


# ------------------------------------------------------------------ one trial's run
def picture(net, rgb) -> np.ndarray:
    """``rgb`` when it is at least ``MIN_PICTURE`` wide, else ``net`` rendered at that size."""
    rgb = np.asarray(rgb)
    if rgb.shape[0] >= MIN_PICTURE:
        return rgb
    from ferlab.render import render

    return np.asarray(render(net, MIN_PICTURE).rgb)


def lead_net(result) -> str:
    """The net that stands for a run in its progress pictures: the lowest own loss among its nets
    that are not ladder snapshots, else its first net."""
    from ferlab.search.ladder import RUNG_PREFIX

    names = [n for n in result.nets if not n.startswith(RUNG_PREFIX)] or list(result.nets)
    scored = [n for n in names if np.isfinite(getattr(result, "losses", {}).get(n, np.nan))]
    return min(scored, key=result.losses.__getitem__) if scored else names[0]


class TrialLog:
    """One trial's run (a child of ``parent_id``, or a run of its own). Re-opening with the same
    ``trial_id`` resumes the same run. ``evaluations_per_generation``, where given, fills the
    ``evaluations`` stat of regimes that do not report it."""

    def __init__(
        self,
        store: Store,
        experiment_id: str,
        parent_id: str | None,
        trial_id: str,
        name: str,
        tags: dict[str, Any],
        params: dict[str, Any],
        *,
        evaluations_per_generation: int | None = None,
        driver: str | None = None,
    ):
        self.store, self.client = store, client(store)
        self.per_generation = evaluations_per_generation
        where = f"tags.`{TRIAL_TAG}` = '{trial_id}'"
        if parent_id is not None:
            where += f" and tags.`{PARENT_TAG}` = '{parent_id}'"
        found = self.client.search_runs([experiment_id], filter_string=where, max_results=1)
        worker = driver_id()
        if found:
            self.run_id = found[0].info.run_id
            reopen(self.client, found[0], driver)
            self.client.set_tag(self.run_id, WORKER_TAG, worker)  # the process that resumed it
        else:
            run = self.client.create_run(
                experiment_id,
                run_name=name,
                tags={
                    **({PARENT_TAG: parent_id} if parent_id is not None else {}),
                    TRIAL_TAG: trial_id,
                    WORKER_TAG: worker,
                    **own_tags(driver),
                    **{k: _text(v) for k, v in tags.items()},
                },
            )
            self.run_id = run.info.run_id
            log_params(self.client, self.run_id, params)
        self.logged = {int(m.step) for m in self.client.get_metric_history(self.run_id, GENERATION_KEY)}
        self._pending: list[dict[str, float]] = []

    def generation(self, stats: dict[str, float]) -> None:
        """Queue one generation's stats (skipped if this run already has that generation)."""
        gen = int(stats[GENERATION_KEY])
        if gen in self.logged:
            return
        if EVALUATIONS_KEY not in stats and self.per_generation:
            stats = {**stats, EVALUATIONS_KEY: (gen + 1) * self.per_generation}
        self._pending.append(stats)

    def flush(self) -> None:
        """Send the queued generations as batches (``step`` = generation), each generation whole in
        one batch: a kill between two batches leaves no generation half logged, which the resumed
        run (it knows a generation by its ``generation`` metric) would log again in part."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch: list = []
        for s in self._pending:
            step = int(s[GENERATION_KEY])
            metrics = [Metric(k, float(v), now, step) for k, v in s.items() if np.isfinite(float(v))]
            if batch and len(batch) + len(metrics) > _BATCH:
                self.client.log_batch(self.run_id, metrics=batch)
                batch = []
            batch += metrics
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)
        self.logged.update(int(s[GENERATION_KEY]) for s in self._pending)
        self._pending = []

    def population(self, state, generation: int) -> None:
        """The whole search state (every individual it keeps) as one compressed ``.npz``."""
        arrays = state_arrays(state)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        self._artifact_bytes(f"population/gen_{generation:06d}.npz", buf.getvalue())

    def final(
        self,
        result,
        fer: Callable[[list[tuple[Any, Any, Path]]], list[dict[str, float]]] | None,
        target: np.ndarray | None = None,
        tables: dict[str, str] | None = None,
    ) -> dict:
        """Every final net: genome JSON (if any), .npz, PNG (>= 128 px), the ``target`` beside it, FER suite
        files; FER metrics as run metrics, and the run's ``fer_score`` (median, min, max over its nets);
        ``tables`` (CSV texts by file name: history, fit, ladder) under ``tables/``. ``fer`` scores all
        the nets in one call, given (net, genome or None, folder) per net."""
        from mlflow.entities import Metric

        from ferlab.files import write_net, write_png, write_text

        scores: dict[str, float] = {}
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for name, net in result.nets.items():
                folder = root / name
                write_net(folder / "net.npz", net)
                write_png(folder / "image.png", picture(net, result.images[name]))
                if target is not None:
                    write_png(folder / "target.png", target)
                if name in result.genomes:
                    write_text(folder / "genome.json", result.genomes[name].to_json())
            if fer is not None:
                names = list(result.nets)
                items = [(result.nets[n], result.genomes.get(n), root / n / "fer") for n in names]
                for name, metrics in zip(names, fer(items)):
                    scores.update(
                        {
                            f"{FER_PREFIX}{name}.{k}": float(v)
                            for k, v in metrics.items()
                            if isinstance(v, (int, float)) and np.isfinite(float(v))
                        }
                    )
            # each net's own fit, beside its FER; one that fits nothing (NaN or infinite MSE) logs +inf
            for name in result.nets:
                own = getattr(result, "losses", {}).get(name)
                if own is not None:
                    scores[f"{FER_PREFIX}{name}.{LOSS}"] = float(own) if np.isfinite(own) else math.inf
            self.client.log_artifacts(self.run_id, str(root), NETS)
        for name, text in (tables or {}).items():
            self._artifact_bytes(f"{TABLES}/{name}", text.encode())
        per_net = [v for k, v in scores.items() if k.endswith(f".{FER_SCORE}")]
        run_level = (
            {FER_SCORE: statistics.median(per_net), f"{FER_SCORE}_min": min(per_net), f"{FER_SCORE}_max": max(per_net)}
            if per_net
            else {}
        )
        now = int(time.time() * 1000)
        have = self.client.get_run(self.run_id).data.metrics  # a run finished again logs each value once
        items = [Metric(k, v, now, 0) for k, v in {**scores, **run_level}.items() if k not in have]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, metrics=items[i : i + _BATCH])
        return scores

    def progress_due(self, before: int, after: int, generations: int) -> bool:
        """Whether the checkpoint at ``after`` generations (the previous one at ``before``) gets a
        progress picture: one each time a run crosses a tenth of ``generations``, and at the end."""
        every = max(1, -(-generations // PICTURES))
        return after >= generations or after // every > before // every

    def progress(self, result, generation: int) -> None:
        """The picture of ``result``'s leading net at ``generation``, as a stepped MLflow image."""
        name = lead_net(result)
        rgb = picture(result.nets[name], result.images[name])
        image = (np.clip(np.asarray(rgb, dtype=np.float32), 0.0, 1.0) * 255).round().astype(np.uint8)
        self.client.log_image(self.run_id, image, key=PROGRESS, step=int(generation))

    def fail(self, error: BaseException) -> None:
        """Record the error (tag and ``error.txt``) and mark the run failed."""
        import traceback

        text = "".join(traceback.format_exception(error))
        self.client.set_tag(self.run_id, ERROR_TAG, f"{type(error).__name__}: {error}"[:5000])
        self._artifact_bytes("error.txt", text.encode())
        self.client.set_terminated(self.run_id, "FAILED")

    def finish(self) -> None:
        self.flush()
        self.client.set_terminated(self.run_id, "FINISHED")

    def _artifact_bytes(self, path: str, data: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / Path(path).name
            local.write_bytes(data)
            parent = str(Path(path).parent)
            self.client.log_artifact(self.run_id, str(local), None if parent == "." else parent)


def state_arrays(state) -> dict[str, np.ndarray]:
    """A state pytree as ``{"a.b.0": array}`` (Flax state-dict paths)."""
    from flax import serialization

    from ferlab.config import flatten

    flat = flatten(_plain(serialization.to_state_dict(state)))
    return {k or "state": np.asarray(v) for k, v in flat.items() if v is not None}


def _plain(tree):
    if isinstance(tree, dict):
        return {str(k): _plain(v) for k, v in tree.items()}
    return tree


# ------------------------------------------------------------------ reading finished runs back
@dataclass(frozen=True)
class FinishedRun:
    """A finished run as studies read it: its id, tags, run-level stats and per-net FER metrics."""

    run_id: str
    tags: dict[str, str]
    stats: dict[str, float]
    nets: dict[str, dict[str, float]] = field(default_factory=dict)


def finished_runs(store: Store, experiment_id: str, study: str) -> dict[str, FinishedRun]:
    """``run key -> FinishedRun`` of the study's FINISHED runs (the newest per key)."""
    mc = client(store)
    out: dict[str, FinishedRun] = {}
    for run in _search(
        mc,
        experiment_id,
        f"tags.`{STUDY_TAG}` = '{study}' and attributes.status = 'FINISHED'",
        ["attributes.start_time ASC"],
    ):
        key = run.data.tags.get(KEY_TAG)
        if key:
            out[key] = _finished(run)
    return out


def _finished(run) -> FinishedRun:
    nets: dict[str, dict[str, float]] = {}
    for name, value in run.data.metrics.items():
        if name.startswith(FER_PREFIX):
            net, _, metric = name[len(FER_PREFIX) :].rpartition(".")  # net names may hold dots (rung_0.010)
            stored_inf = value >= sys.float_info.max  # MLflow stores +inf as the largest float
            nets.setdefault(net, {})[metric] = math.inf if stored_inf else value
    stats = {k: run.data.metrics[k] for k in RUN_STATS if k in run.data.metrics}
    return FinishedRun(run.info.run_id, dict(run.data.tags), stats, dict(sorted(nets.items())))


def progress_pictures(store: Store, run_id: str) -> dict[int, str]:
    """A run's progress pictures: ``{generation: artifact path of the PNG}`` (MLflow names stepped
    images ``images/<key>+step+<step>+timestamp+...png``; older versions used ``%``)."""
    import re

    pattern = re.compile(rf"images/{PROGRESS}[+%]step[+%](\d+)[+%]timestamp[+%][^/]*\.png$")
    found = {}
    for art in client(store).list_artifacts(run_id, "images"):
        match = pattern.search(art.path)
        if match:
            found[int(match.group(1))] = art.path
    return found


def download_net(store: Store, run_id: str, net: str, dest: str | Path) -> Path:
    """A final net's ``net.npz`` copied to ``dest``."""
    from ferlab.files import write_bytes

    local = client(store).download_artifacts(run_id, net_path(net, "net.npz"))
    return write_bytes(dest, Path(local).read_bytes())


def fetch_pictures(store: Store, run_id: str, net: str, folder: Path) -> list[str | None]:
    """Download a net's image and its feature-map grid (if the FER suite wrote one); local paths."""
    from mlflow.exceptions import MlflowException

    mc = client(store)
    dest = folder / run_id / net
    dest.mkdir(parents=True, exist_ok=True)
    try:
        image = mc.download_artifacts(run_id, net_path(net, "image.png"), str(dest))
    except (OSError, MlflowException):
        return [None, None]
    features = None
    try:
        listing = mc.list_artifacts(run_id, net_path(net, "fer"))
        pngs = [a.path for a in listing if a.path.endswith(".png")]
        pngs.sort(key=lambda p: ("feature" not in Path(p).name, p))
        if pngs:
            features = mc.download_artifacts(run_id, pngs[0], str(dest))
    except (OSError, MlflowException):
        features = None
    return [image, features]


# ------------------------------------------------------------------ the UI's server
def server_command(folder: str | Path, port: int, host: str = "127.0.0.1") -> list[str]:
    """``mlflow server`` on the embedded store in ``folder`` (SQLite + proxied artifacts)."""
    import sys

    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{folder / STORE_DB}",
        "--artifacts-destination",
        str(folder / STORE_ARTIFACTS),
    ]


def wait_healthy(uri: str, process=None, timeout: float = 60.0) -> None:
    """Block until the server at ``uri`` answers, or raise TrackingError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            check_store(Store(uri), timeout=2)
            return
        except TrackingError:
            if process is not None and process.poll() is not None:
                raise TrackingError(f"tracking server at {uri} exited with code {process.returncode}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
