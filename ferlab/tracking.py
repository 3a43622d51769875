"""MLflow records of sweeps: one experiment per sweep, a parent run, one child run per trial.

The store is a tracking server (``http://host:port``, needed when workers run on
other nodes) or, by default, an embedded SQLite file with a local artifact
folder (``default_store``). ``TrialLog`` is what a trial writes through: params
once, per-generation metrics in batches with ``step=generation`` (exactly once
per generation, even after a trial resumes from an older checkpoint), the whole
population every K generations as one compressed ``.npz``, and at the end every
final network (genome JSON when the run has one, net ``.npz``, image PNG, FER
suite files) with the FER metrics as run metrics.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ferlab.errors import FerlabError

PARENT_TAG = "mlflow.parentRunId"
KIND_TAG = "ferlab.kind"  # sweep, study (the run that holds a sweep's or a study's runs)
FER_PREFIX = "fer."  # metrics fer.<net>.<metric>
TRIAL_TAG = "ferlab.trial_id"
GENERATION_KEY = "generation"
_BATCH = 900  # MLflow accepts up to 1000 metrics per log_batch


class TrackingError(FerlabError):
    """The tracking store cannot be reached or used."""


@dataclass(frozen=True)
class Store:
    """Where runs go: a tracking URI and, for the embedded store, its artifact folder."""

    uri: str
    artifact_root: str | None = None

    @property
    def is_server(self) -> bool:
        return self.uri.startswith(("http://", "https://"))


def default_store(folder: str | Path = "mlruns") -> Store:
    """The embedded store: ``sqlite:///<abs folder>/mlflow.db`` plus ``<folder>/artifacts``."""
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return Store(f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri())


def resolve_store(uri: str | None, folder: str | Path = "mlruns") -> Store:
    """``uri`` as given (a server or any MLflow URI), or the embedded default."""
    return Store(uri) if uri else default_store(folder)


def check_store(store: Store, timeout: float = 5.0) -> None:
    """Fail fast, before any compute, when a tracking server does not answer."""
    if not store.is_server:
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


def client(store: Store):
    """An MLflow client on ``store``; ferlab draws its own progress, so MLflow's per-artifact bars are off."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=store.uri)


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, dict, tuple)) else str(value)


def as_params(flat: dict[str, Any]) -> dict[str, str]:
    """Flattened config values as MLflow param strings (MLflow caps values at 6000 chars)."""
    return {k: _text(v)[:6000] for k, v in flat.items()}


def experiment(store: Store, name: str) -> str:
    """The id of experiment ``name``, created if new (one per sweep or study)."""
    mc = client(store)
    exp = mc.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    # the kind tag makes the MLflow UI open on its training-runs view
    return mc.create_experiment(name, artifact_location=_exp_folder(store, name),
                                tags={"mlflow.experimentKind": "custom_model_development"})


def start_sweep(store: Store, name: str, params: dict[str, Any], tags: dict[str, str] | None = None,
                run_name: str | None = None) -> tuple[str, str]:
    """Create (or reuse) the experiment ``name`` and open a parent run (``tags`` added, e.g. its own
    parent when a study holds it); ``(experiment_id, run_id)``."""
    mc = client(store)
    exp_id = experiment(store, name)
    parent = mc.create_run(exp_id, run_name=run_name or f"{name}-{time.strftime('%Y%m%d-%H%M%S')}",
                           tags={KIND_TAG: "sweep", **(tags or {})})
    log_params(mc, parent.info.run_id, params)
    return exp_id, parent.info.run_id


def log_params(mc, run_id: str, params: dict[str, Any]) -> None:
    """Params in batches of 100 (MLflow's limit per request)."""
    from mlflow.entities import Param

    items = [Param(k, v) for k, v in as_params(params).items()]
    for i in range(0, len(items), 100):
        mc.log_batch(run_id, params=items[i:i + 100])


def safe_name(name: str) -> str:
    """``name`` usable as a folder name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _exp_folder(store: Store, name: str) -> str | None:
    return f"{store.artifact_root}/{safe_name(name)}" if store.artifact_root else None


def end_run(store: Store, run_id: str, failed: bool = False) -> None:
    client(store).set_terminated(run_id, "FAILED" if failed else "FINISHED")


def close_children(store: Store, experiment_id: str, parent_id: str) -> int:
    """Mark children still RUNNING (stopped early by ASHA, or lost with their driver) as KILLED."""
    mc = client(store)
    left = mc.search_runs([experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}' "
                                                        "and attributes.status = 'RUNNING'")
    for run in left:
        mc.set_tag(run.info.run_id, "ferlab.stopped", "early stop or lost worker")
        mc.set_terminated(run.info.run_id, "KILLED")
    return len(left)


class TrialLog:
    """One trial's child run. Re-opening with the same ``trial_id`` resumes the same run."""

    def __init__(self, store: Store, experiment_id: str, parent_id: str, trial_id: str,
                 name: str, tags: dict[str, Any], params: dict[str, Any]):
        self.store, self.client = store, client(store)
        found = self.client.search_runs(
            [experiment_id], filter_string=f"tags.`{TRIAL_TAG}` = '{trial_id}' "
                                           f"and tags.`{PARENT_TAG}` = '{parent_id}'", max_results=1)
        if found:
            self.run_id = found[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            run = self.client.create_run(experiment_id, run_name=name, tags={
                PARENT_TAG: parent_id, TRIAL_TAG: trial_id, **{k: _text(v) for k, v in tags.items()}})
            self.run_id = run.info.run_id
            log_params(self.client, self.run_id, params)
        self.logged = {int(m.step) for m in self.client.get_metric_history(self.run_id, GENERATION_KEY)}
        self._pending: list[dict[str, float]] = []

    def generation(self, stats: dict[str, float]) -> None:
        """Queue one generation's stats (skipped if this run already has that generation)."""
        if int(stats[GENERATION_KEY]) not in self.logged:
            self._pending.append(stats)

    def flush(self) -> None:
        """Send the queued generations as batches (``step`` = generation)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, int(s[GENERATION_KEY]))
                   for s in self._pending for k, v in s.items() if np.isfinite(float(v))]
        for i in range(0, len(metrics), _BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + _BATCH])
        self.logged.update(int(s[GENERATION_KEY]) for s in self._pending)
        self._pending = []

    def population(self, state, generation: int) -> None:
        """The whole search state (every individual it keeps) as one compressed ``.npz``."""
        arrays = state_arrays(state)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        self._artifact_bytes(f"population/gen_{generation:06d}.npz", buf.getvalue())

    def final(self, result, fer: Callable[[Any, Any, Path], dict[str, float]] | None) -> dict:
        """Every final net: genome JSON (if any), .npz, PNG, FER suite files; FER metrics as run metrics."""
        from mlflow.entities import Metric

        from ferlab.files import write_net, write_png, write_text

        scores: dict[str, float] = {}
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for name, net in result.nets.items():
                folder = root / name
                write_net(folder / "net.npz", net)
                write_png(folder / "image.png", np.asarray(result.images[name]))
                if name in result.genomes:
                    write_text(folder / "genome.json", result.genomes[name].to_json())
                if fer is not None:
                    metrics = fer(net, result.genomes.get(name), folder / "fer")
                    scores.update({f"{FER_PREFIX}{name}.{k}": float(v) for k, v in metrics.items()
                                   if isinstance(v, (int, float)) and np.isfinite(float(v))})
            self.client.log_artifacts(self.run_id, str(root), "nets")
        now = int(time.time() * 1000)
        items = [Metric(k, v, now, 0) for k, v in scores.items()]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, metrics=items[i:i + _BATCH])
        return scores

    def fail(self, error: BaseException) -> None:
        """Record the error (tag and ``error.txt``) and mark the run failed."""
        import traceback

        text = "".join(traceback.format_exception(error))
        self.client.set_tag(self.run_id, "ferlab.error", f"{type(error).__name__}: {error}"[:5000])
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


def server_command(folder: str | Path, port: int, host: str = "127.0.0.1") -> list[str]:
    """``mlflow server`` on the embedded store in ``folder`` (SQLite + proxied artifacts)."""
    import sys

    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return [sys.executable, "-m", "mlflow", "server", "--host", host, "--port", str(port),
            "--workers", "1", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination", str(folder / "artifacts")]


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
