"""Studies: spec loading, run keys, and a tiny two-phase study end to end on a local Ray and SQLite MLflow.

The end-to-end tests drive the toy regime of ``test_workers`` (a random
search over a tiny net) so that they exercise the study machinery alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ferlab.config import ConfigError
from ferlab.study import run_study
from ferlab.study.spec import Phase, Study, Target, expand, load_study, relabel_arch, static_targets
from ferlab.tracking import KEY_TAG, LABEL_TAG
from ferlab.workers.plan import check_run, plan_for, select_names

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ specs
def test_both_studies_load_with_each_profile(picbreeder_dir):
    for name in ("fer_paper", "objective_vs_open_ended"):
        for profile in (None, "quick", "full"):
            study = load_study(REPO / "studies" / f"{name}.yaml", profile)
            assert study.phases and study.analysis.metrics[0] == "fer_score"
            for phase in study.phases:
                if not any(t.startswith("phase:") for t in phase.targets or []):
                    for entry in expand(phase, static_targets(study, phase)):
                        check_run(entry.config)


def test_quick_profile_scales_down(picbreeder_dir):
    path = REPO / "studies" / "objective_vs_open_ended.yaml"
    quick, full = load_study(path, "quick"), load_study(path, "full")
    assert all(q.base.get("resolution", 64) <= f.base.get("resolution", 64)
               for q, f in zip(quick.phases, full.phases))
    assert sum(q.seeds for q in quick.phases) < sum(f.seeds for f in full.phases)


def test_bad_specs_fail_with_one_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nphases: [{name: a, base: {regime: es}, targets: ['phase:b']}]\n")
    with pytest.raises(ConfigError, match="names no earlier phase"):
        load_study(path)
    path.write_text("name: s\nphases: [{name: a, base: {regime: es}, sedes: 2}]\n")
    with pytest.raises(ConfigError, match="unknown key 'sedes'"):
        load_study(path)
    path.write_text("name: s\nphases: [{name: a, base: {regime: es}}]\nprofiles: {quick: {}}\n")
    with pytest.raises(ConfigError, match="no profile 'full'"):
        load_study(path, "full")


def test_run_keys_follow_what_defines_a_run():
    phase = Phase("p", {"regime": "es", "resolution": 32}, seeds=2)
    a = expand(phase, [Target("/tmp/one/img.npz", "p0/abc/archive_001")])
    b = expand(phase, [Target("/elsewhere/img.npz", "p0/abc/archive_001")])
    assert [e.key for e in a] == [e.key for e in b], "a target file is keyed by its image, not its path"
    masked = Phase("m", {"regime": "sgd", "resolution": 32}, same_mask=True, targets=["study"])
    keys = [expand(masked, [Target(f"{where}/img.npz", "p0/abc/archive_001")])[0].key for where in ("/a", "/b")]
    assert keys[0] == keys[1], "so is the mask taken from it"
    assert len({e.key for e in a}) == 2 and [e.config["seed"] for e in a] == [0, 1]
    other = expand(Phase("p", {"regime": "es", "resolution": 64}, seeds=2), [Target("x.npz", "p0/abc/archive_001")])
    assert not {e.key for e in other} & {e.key for e in a}
    vmapped = expand(Phase("q", {"regime": "sgd"}, seeds=3, seed_key="settings.seeds", same_arch=True,
                           targets=["study"]), [Target("t.npz", "t")])
    assert len(vmapped) == 1 and vmapped[0].config["settings"]["seeds"] == 3
    assert vmapped[0].config["arch"] == "t.npz" and vmapped[0].image == "t"


def test_relabel_arch_keeps_shape():
    assert relabel_arch("12;cache:15,gaussian:4,identity:2,sin:1", "relu") == "12;relu:22"


def test_select_names_spreads_evenly():
    names = [f"archive_{i:03d}" for i in range(10)] + ["parent_0"]
    assert select_names(names, "archive_*", 3) == ["archive_000", "archive_004", "archive_009"]
    assert select_names(names, "*", None) == sorted(names)


# ------------------------------------------------------------------ a tiny study end to end
@dataclass(frozen=True)
class ToySettings:
    population_size: int = 4


@dataclass(frozen=True)
class ToyRun:
    regime: str
    seed: int
    n_generations: int
    target: str | None
    checkpoint_every: int = 2
    settings: ToySettings = ToySettings()


def toy_study_plan(config: dict):
    """The workers' RunPlan for a toy run (a random search over a tiny net, 4 nets a generation)."""
    from test_workers import ToySearch

    return plan_for(ToySearch(population=4), ToyRun(config["regime"], config.get("seed", 0),
                                                    config.get("generations", 3), config.get("target")))


def tiny_study(seeds: int = 2, extra_seed: bool = False) -> Study:
    phases = [Phase("open", {"regime": "toy", "generations": 3}, label="finder", role="discoverer", seeds=seeds),
              Phase("repro", {"regime": "toy", "generations": 2}, label="copier", role="reproducer",
                    targets=["phase:open"], seeds=seeds + extra_seed)]
    from ferlab.report import Comparison, ReportSpec

    return Study("tiny", phases, analysis=ReportSpec(
        metrics=("fer_score", "mean_brightness"), group="label", resamples=200, gallery=1,
        comparisons=(Comparison("discoverer", "reproducer", by="role"),)))


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _run(study, store, out, **kw):
    from test_workers import toy_fer

    return run_study(study, store, out, planner=toy_study_plan, fer=toy_fer, verbose=0, log=lambda _: None, **kw)


@pytest.mark.slow
def test_tiny_study_report_matches_mlflow_and_rerun_reuses(tmp_path, local_ray):
    from ferlab.tracking import client, default_store

    store = default_store(tmp_path / "mlruns")
    first = _run(tiny_study(), store, tmp_path / "out")
    assert first.computed == 2 + 4 and first.reused == 0
    report = first.report
    text = report.markdown.read_text()
    assert "| finder |" in text and "discoverer vs reproducer" in text
    assert (report.folder / "gallery.png").is_file() and (report.folder / "runs.csv").is_file()

    # one cell recomputed from the MLflow client alone
    mc = client(store)
    runs = mc.search_runs([first.experiment_id], f"tags.`{LABEL_TAG}` = 'copier' and attributes.status = 'FINISHED'")
    values = [v for r in runs for k, v in r.data.metrics.items() if k.startswith("fer.") and k.endswith(".fer_score")]
    assert len(values) == 4
    cell = report.summary.set_index("label").loc["copier"]
    assert cell["n"] == 4 and cell["fer_score"] == pytest.approx(np.mean(values), rel=1e-12)
    assert f"{np.mean(values):.3f} [" in text

    # pairing: each reproducer painted an image one discoverer found
    paired = report.comparisons.iloc[0]
    assert paired["pairs"] == 2 and paired["n_a"] == 2 and paired["n_b"] == 4

    # the report is logged to the study's own run
    arts = [a.path for a in mc.list_artifacts(first.study_run_id, "report")]
    assert "report/report.md" in arts
    # each phase's sweep sits under the study's run, named for its phase
    sweeps = mc.search_runs([first.experiment_id], "tags.`ferlab.kind` = 'sweep'")
    assert sorted(r.info.run_name for r in sweeps) == sorted(p.name for p in tiny_study().phases)
    assert all(r.data.tags["mlflow.parentRunId"] == first.study_run_id for r in sweeps)

    again = _run(tiny_study(extra_seed=True), store, tmp_path / "out")
    assert again.reused == 6 and again.computed == 2, "only the new seed's runs are computed"
    keys = [r.data.tags[KEY_TAG] for r in mc.search_runs([first.experiment_id], f"tags.`{KEY_TAG}` != ''")]
    assert len(keys) == len(set(keys)) == 8, "no run was computed twice"


def test_interrupted_study_finishes_without_redoing_runs(tmp_path, local_ray):
    """One run per phase: stop after phase 1, run again, then check a report cell against MLflow."""
    from ferlab.tracking import client, default_store

    store = default_store(tmp_path / "mlruns")
    cut = _run(tiny_study(seeds=1), store, tmp_path / "out", stop_after_phase="open")
    assert cut.report is None and cut.computed == 1
    mc = client(store)
    before = {r.info.run_id for r in mc.search_runs([cut.experiment_id], f"tags.`{KEY_TAG}` != ''")}
    done = _run(tiny_study(seeds=1), store, tmp_path / "out")
    assert done.reused == 1 and done.computed == 1
    after = mc.search_runs([cut.experiment_id], f"tags.`{KEY_TAG}` != ''")
    assert before < {r.info.run_id for r in after} and len(after) == 2
    summary = done.report.summary.set_index("label")
    for run in after:
        label = run.data.tags[LABEL_TAG]
        value = run.data.metrics["fer.best.fer_score"]
        assert summary.loc[label, "n"] == 1 and summary.loc[label, "fer_score"] == pytest.approx(value, rel=1e-12)
