"""Studies: spec loading, run keys, and a tiny two-phase study end to end on a local Ray and SQLite MLflow.

The end-to-end tests drive the toy regime of ``helpers`` (a random
search over a tiny net) so that they exercise the study machinery alone.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ferlab.config import ConfigError, load_yaml
from ferlab.report import ReportSpec
from ferlab.study import run_study
from ferlab.study.spec import Phase, Study, Target, expand, load_study, static_targets
from ferlab.tracking import KEY_TAG, LABEL_TAG, WORKER_TAG
from ferlab.workers.plan import check_run, plan_for, relabel_arch, select_names

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ specs
def test_every_shipped_study_loads_with_each_profile(picbreeder_dir):
    """Every run of every shipped study is a valid run config; a phase that paints what an earlier one
    finds is checked on a stand-in image (a Picbreeder net), as it will get a net at run time."""
    from ferlab.study.spec import Target

    names = sorted(p.stem for p in (REPO / "studies").glob("*.yaml"))
    assert {"fer_paper", "objective_vs_open_ended", "picbreeder_genomes", "novelty_weight"} <= set(names)
    stand_in = Target("picbreeder:skull", "skull")
    for name in names:
        declared = list(load_yaml(REPO / "studies" / f"{name}.yaml").get("profiles") or {})
        assert {"quick", "full"} <= set(declared), name
        for profile in (None, *declared):
            study = load_study(REPO / "studies" / f"{name}.yaml", profile)
            assert study.phases and study.analysis.metrics[0] == "fer_score"
            for phase in study.phases:
                found = [stand_in] if phase.sources else []
                for entry in expand(phase, static_targets(study, phase) + found):
                    check_run(entry.config)


def test_the_novelty_weight_study_sweeps_the_weight_on_one_budget(picbreeder_dir):
    """Its NSR-ES phases differ in the novelty weight alone (0 to 1, each label naming its own), so
    the report's rungs compare weights, not budgets; each paints the same images on their own arch."""
    for profile in ("quick", "full"):
        study = load_study(REPO / "studies" / "novelty_weight.yaml", profile)
        nsr = [p for p in study.phases if p.base.get("regime") == "novelty"]
        weights = [p.base["settings"]["novelty_weight"] for p in nsr]
        assert weights == [0.0, 0.25, 0.5, 0.75, 1.0]
        assert [p.group for p in nsr] == [f"nsr_w{w:.2f}" for w in weights]

        def without_weight(phase):
            base = copy.deepcopy(phase.base)
            del base["settings"]["novelty_weight"]
            return base, phase.seeds, phase.sample, phase.targets, phase.same_arch, phase.nets

        assert all(without_weight(p) == without_weight(nsr[0]) for p in nsr)
        assert all(p.same_arch and p.targets == ["phase:neat_novelty"] for p in nsr)
        labels = {p.group for p in study.phases}
        assert all({c.a, c.b} <= labels for c in study.analysis.comparisons)


def test_the_picbreeder_genomes_study_pairs_each_shared_net_once(picbreeder_dir):
    """Every shared genome file a target but the two CPPN-X copies of the paper's skull and butterfly
    (tests/test_validate.py checks that they are the same nets): 8 images, none counted twice."""
    study = load_study(REPO / "studies" / "picbreeder_genomes.yaml", "quick")
    shared = {"skull", "butterfly", *(p.stem for p in (picbreeder_dir / "genomes" / "cppnx").glob("*.xml"))}
    targets = [t.removeprefix("picbreeder:") for t in study.targets]
    assert len(targets) == len(set(targets)) == 8 and set(targets) == shared - {"576_Skull", "4376_ButterflyColor"}


def test_quick_profile_scales_down(picbreeder_dir):
    path = REPO / "studies" / "objective_vs_open_ended.yaml"
    quick, full = load_study(path, "quick"), load_study(path, "full")
    assert all(q.base.get("resolution", 64) <= f.base.get("resolution", 64) for q, f in zip(quick.phases, full.phases))
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
    vmapped = expand(
        Phase("q", {"regime": "sgd"}, seeds=3, seed_key="settings.seeds", same_arch=True, targets=["study"]),
        [Target("t.npz", "t")],
    )
    assert len(vmapped) == 1 and vmapped[0].config["settings"]["seeds"] == 3
    assert vmapped[0].config["arch"] == "t.npz" and vmapped[0].image == "t"


def test_grid_and_profile_numbers_reach_the_run_as_numbers(tmp_path):
    """A phase grid or profile value 1e-5 is the float 1e-05 in the run config (values were turned
    into JSON and read back as YAML, which made it the string '1e-05' and the run was refused)."""
    from ferlab.search.runs import load_run_config
    from ferlab.study.spec import Profile, apply_profile
    from ferlab.workers.sweep import point_config

    from ferlab.files import write_png

    png = str(write_png(tmp_path / "t.png", np.zeros((8, 8, 3))))
    phase = Phase("p", {"regime": "sgd", "resolution": 8, "target": png}, grid={"settings.learning_rate": [1e-5]})
    (entry,) = expand(phase, [])
    value = entry.config["settings"]["learning_rate"]
    assert type(value) is float and value == 1e-05
    assert load_run_config(entry.config).settings.learning_rate == 1e-05
    data = apply_profile(
        {"phases": [{"name": "p", "base": {"regime": "sgd"}}]},
        Profile(set={"settings.learning_rate": 1e-5}, phases={"p": {"seeds": 2}}),
        "x",
    )
    assert data["phases"][0]["base"]["settings"]["learning_rate"] == 1e-05 and data["phases"][0]["seeds"] == 2
    swept = point_config({"regime": "sgd", "target": png}, {"settings.learning_rate": 1e-5})
    assert load_run_config(swept).settings.learning_rate == 1e-05


def test_run_keys_change_with_the_fer_suite_and_the_code(monkeypatch):
    """A scored run's key holds the FER suite's settings (its size, every MetricsConfig field) and the
    code version, so a study run again after any of them changed rescores instead of reusing."""
    import dataclasses

    import ferlab.metrics
    from ferlab.tracking import COMMIT_TAG, VERSION_TAG, code_version

    phase = Phase("p", {"regime": "es", "resolution": 16}, targets=["study"])
    target = [Target("picbreeder:skull", "picbreeder:skull")]
    key = expand(phase, target)[0].key
    assert expand(phase, target)[0].key == key
    assert expand(Phase("p", {"regime": "es", "resolution": 16}, targets=["study"], nets="best"), target)[0].key != key
    assert expand(phase, target, code={**code_version(), VERSION_TAG: "9.9"})[0].key != key
    assert expand(phase, target, code={**code_version(), COMMIT_TAG: "abc"})[0].key != key
    assert expand(dataclasses.replace(phase, base={"regime": "es", "resolution": 24}), target)[0].fer_size == 24
    for field in dataclasses.fields(ferlab.metrics.MetricsConfig):
        if field.name == "size":
            continue
        default = field.default
        # +2 keeps every int field valid (chunk must stay even)
        changed = default + 2 if isinstance(default, int) else default / 2 if isinstance(default, float) else "x"
        suite = dataclasses.make_dataclass(
            "Changed",
            [(field.name, field.type, dataclasses.field(default=changed))],
            bases=(ferlab.metrics.MetricsConfig,),
            frozen=True,
        )
        with monkeypatch.context() as m:
            m.setattr(ferlab.metrics, "MetricsConfig", suite)
            assert expand(phase, target)[0].key != key, field.name


def test_network_rows_count_a_failed_run_and_take_each_nets_own_loss():
    from ferlab.report import LOST
    from ferlab.study.run import network_rows
    from ferlab.tracking import FinishedRun

    phase = Phase("sgd", {"regime": "sgd", "resolution": 16}, seeds=2)
    done, failed = expand(phase, [Target("t.npz", "skull")])
    runs = {done.key: FinishedRun("r1", {}, {"loss": 0.05}, {"seed_0": {"fer_score": 0.4, "loss": 0.002}})}
    assert [r["net"] for r in network_rows([done, failed], runs)] == ["seed_0"]  # as targets: finished only
    rows = network_rows([done, failed], runs, lost=True)
    assert [r["net"] for r in rows] == ["seed_0", LOST]
    assert rows[0]["loss"] == 0.002 and rows[0]["run_id"] == "r1"  # the net's own loss, not the run's 0.05
    assert rows[1]["run_id"] == "" and "fer_score" not in rows[1] and rows[1]["seed"] == failed.config["seed"]
    assert rows[0]["search"] == "r1" and rows[1]["search"] == ""  # one run a seed: the run is the search


def test_network_rows_name_the_search_that_found_each_image():
    """A comparison over images resamples their sources: the images one novelty run found share its
    search, for the discoverer's rows and for every reproducer's; a given target is its own."""
    from ferlab.study.run import discovered_id, network_rows
    from ferlab.tracking import FinishedRun

    archive = Phase("ns", {"regime": "neat", "resolution": 16}, nets="archive_*", keep=2)
    (novel,) = expand(archive, [])
    found = [discovered_id(novel, f"archive_{k}") for k in range(2)]
    copier = Phase("sgd", {"regime": "sgd", "resolution": 16}, targets=["study"])
    copies = expand(copier, [Target("skull.npz", "picbreeder:skull"), *(Target(f"{i}.npz", i) for i in found)])
    runs = {novel.key: FinishedRun("r0", {}, {}, {f"archive_{k}": {"fer_score": 0.2} for k in range(2)})}
    runs |= {e.key: FinishedRun(f"c{k}", {}, {}, {"seed_0": {"fer_score": 0.5}}) for k, e in enumerate(copies)}
    rows = network_rows([novel, *copies], runs)
    assert {(r["phase"], r["image"], r["image_source"]) for r in rows} == {
        ("ns", found[0], "r0"),
        ("ns", found[1], "r0"),
        ("sgd", "picbreeder:skull", "picbreeder:skull"),
        ("sgd", found[0], "r0"),
        ("sgd", found[1], "r0"),
    }


def test_network_rows_name_each_side_by_side_seed_its_own_search_and_an_archive_one():
    """The report's intervals resample searches: an SGD run's seeds trained side by side are each a
    search of their own; a novelty run's archive members all come from one."""
    from ferlab.study.run import network_rows
    from ferlab.tracking import FinishedRun

    sgd = Phase("sgd", {"regime": "sgd", "resolution": 16}, seeds=2, seed_key="settings.seeds")
    archive = Phase("ns", {"regime": "neat", "resolution": 16}, nets="archive_*", keep=2)
    (side,) = expand(sgd, [Target("t.npz", "skull")])
    (novel,) = expand(archive, [])
    runs = {
        side.key: FinishedRun("r1", {}, {}, {"seed_0": {"fer_score": 0.4}, "seed_1": {"fer_score": 0.5}}),
        novel.key: FinishedRun("r2", {}, {}, {"archive_0": {"fer_score": 0.2}, "archive_1": {"fer_score": 0.3}}),
    }
    rows = network_rows([side, novel], runs)
    assert [(r["net"], r["search"]) for r in rows] == [
        ("seed_0", "r1/seed_0"),
        ("seed_1", "r1/seed_1"),
        ("archive_0", "r2"),
        ("archive_1", "r2"),
    ]


def test_a_net_without_its_own_loss_does_not_take_its_runs():
    from ferlab.report.fit import gate_counts
    from ferlab.study.run import network_rows
    from ferlab.tracking import FinishedRun

    [entry] = expand(Phase("me", {"regime": "map_elites", "resolution": 16}), [Target("t.npz", "skull")])
    nets = {"best": {"fer_score": 0.3, "loss": 0.004}, "elite_000": {"fer_score": 0.1}}  # the elite logged no loss
    rows = network_rows([entry], {entry.key: FinishedRun("r1", {}, {"loss": 0.004}, nets)})
    assert [r.get("loss") for r in rows] == [0.004, None]
    counts = gate_counts(pd.DataFrame(rows), ReportSpec(group="label", metrics=("fer_score", "loss")))
    assert counts[["attempted", "scored", "passed"]].values.tolist() == [[2, 2, 1]]


def test_a_failed_run_loses_every_net_it_was_to_score():
    from ferlab.report import LOST
    from ferlab.study.run import network_rows

    phase = Phase("sgd", {"regime": "sgd", "resolution": 16}, seeds=3, seed_key="settings.seeds")
    [entry] = expand(phase, [Target("t.npz", "skull")])
    rows = network_rows([entry], {}, lost=True)
    assert [(r["net"], r["seed"]) for r in rows] == [(LOST, 0), (LOST, 1), (LOST, 2)]
    archive = Phase("ns", {"regime": "novelty", "resolution": 16}, seeds=2, keep=4)  # 4 archive nets a run
    rows = network_rows(expand(archive, []), {}, lost=True)
    assert [(r["net"], r["seed"]) for r in rows] == [(LOST, 0)] * 4 + [(LOST, 1)] * 4


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
    from helpers import ToySearch

    return plan_for(
        ToySearch(population=4, losses=config.get("losses", False)),
        ToyRun(config["regime"], config.get("seed", 0), config.get("generations", 3), config.get("target")),
    )


def tiny_study(seeds: int = 2, extra_seed: bool = False) -> Study:
    phases = [
        Phase("open", {"regime": "toy", "generations": 3}, label="finder", role="discoverer", seeds=seeds),
        Phase(
            "repro",
            {"regime": "toy", "generations": 2},
            label="copier",
            role="reproducer",
            targets=["phase:open"],
            seeds=seeds + extra_seed,
        ),
    ]
    from ferlab.report import Comparison, ReportSpec

    return Study(
        "tiny",
        phases,
        analysis=ReportSpec(
            metrics=("fer_score", "mean_brightness"),
            group="label",
            resamples=200,
            gallery=1,
            comparisons=(Comparison("discoverer", "reproducer", by="role"),),
        ),
    )


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _run(study, store, out, **kw):
    from helpers import toy_fer

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

    # Tune reuses a trial's process for the next: 4 runs on 2 CPUs take at most 2 processes
    workers = {r.data.tags[WORKER_TAG] for r in runs}
    assert 1 <= len(workers) <= 2, workers

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
    check_children(store, after)


def test_phases_that_need_nothing_from_each_other_share_a_wave():
    from ferlab.study.run import waves

    def phase(name, targets=None, **kw):
        return Phase(name, {"regime": "toy", "resolution": kw.pop("resolution", 32)}, targets=targets, **kw)

    study = Study(
        "w",
        [
            phase("a"),
            phase("b"),
            phase("c", ["phase:a"]),
            phase("d", ["phase:b"]),
            phase("e", ["phase:c"]),
            phase("f", cpus=2),
            phase("g", cpus=2, resolution=64),
        ],
        analysis=ReportSpec(),
    )
    assert [[p.name for p in w] for w in waves(study)] == [["a", "b"], ["c", "d"], ["e"], ["f"], ["g"]]
    # a wave ends at the phase a study stops after; what follows may then paint that phase's finds
    cut = [["a"], ["b", "c"], ["d", "e"], ["f"], ["g"]]
    assert [[p.name for p in w] for w in waves(study, stop_after_phase="a")] == cut


@pytest.mark.slow  # 20 s on Ray; test_phases_that_need_nothing_from_each_other_share_a_wave checks the waves
def test_a_wave_of_independent_phases_shares_its_processes(tmp_path, local_ray):
    """Two discoverer phases and a reproducer of one: the first two run as one sweep, so their four
    runs take at most two processes (two phases run one after the other would take four), and every
    run still sits under its own phase's run."""
    import dataclasses

    from ferlab.tracking import PHASE_TAG, client, default_store

    base = tiny_study(seeds=2)
    twin = dataclasses.replace(base.phases[0], name="open2", label="finder2")
    study = dataclasses.replace(base, phases=[base.phases[0], twin, base.phases[1]])
    store = default_store(tmp_path / "mlruns")
    done = _run(study, store, tmp_path / "out")
    assert done.computed == 2 + 2 + 4 and done.reused == 0
    mc = client(store)
    sweeps = {
        r.info.run_id: r.info.run_name for r in mc.search_runs([done.experiment_id], "tags.`ferlab.kind` = 'sweep'")
    }
    assert sorted(sweeps.values()) == ["open", "open2", "repro"]
    runs = mc.search_runs([done.experiment_id], f"tags.`{KEY_TAG}` != ''")
    assert len(runs) == 8
    for run in runs:
        assert sweeps[run.data.tags["mlflow.parentRunId"]] == run.data.tags[PHASE_TAG]
    first_wave = {r.data.tags[WORKER_TAG] for r in runs if r.data.tags[PHASE_TAG] in ("open", "open2")}
    assert 1 <= len(first_wave) <= 2, first_wave
    check_children(store, runs)


def test_finds_below_the_detail_floor_are_copied_by_no_phase_and_said_once(tmp_path, local_ray):
    """With a detail floor above every find, neither reproducer phase copies one, and the study says so
    once for the finds both would have drawn from, not once a phase."""
    import dataclasses

    from helpers import toy_fer_with_detail

    from ferlab.tracking import default_store

    base = tiny_study(seeds=2)
    again = dataclasses.replace(base.phases[1], name="repro_again")
    study = dataclasses.replace(
        base,
        phases=[*base.phases, again],
        analysis=dataclasses.replace(base.analysis, min_detail=0.49),  # toy pictures have far less
    )
    said = []
    outcome = run_study(
        study,
        default_store(tmp_path / "mlruns"),
        tmp_path / "out",
        planner=toy_study_plan,
        fer=toy_fer_with_detail,
        verbose=0,
        log=said.append,
    )
    floor = [line for line in said if "less detail than the floor" in line]
    assert floor == ["2 of the 2 scored finds of open have less detail than the floor (0.49): no phase copies them"]
    assert outcome.computed == 2  # the two finder runs; no copies
    counts = outcome.report.fit["counts"].set_index("label")
    assert counts.loc["finder", ["scored", "simple", "passed"]].tolist() == [2, 2, 0]


@pytest.mark.slow  # 27 s: two study passes on Ray; the default run checks an unmatched cell against MLflow
def test_a_cell_at_the_fit_gate_is_recomputed_from_the_mlflow_client(tmp_path, local_ray):
    """The report's headline cell for the reproducers (n, mean fer_score at the fit gate, and the
    attempted / passed counts) equals what the MLflow client's own runs give: the runs whose net's
    logged loss is within the gate. The gate is put between the runs' losses, so one cell mixes
    passing and failing runs; changing it re-reports without recomputing any run."""
    import dataclasses

    from ferlab.tracking import client, default_store

    base = tiny_study(seeds=1)
    repro = dataclasses.replace(base.phases[1], base={**base.phases[1].base, "losses": True}, seeds=3)
    study = dataclasses.replace(base, phases=[base.phases[0], repro])
    store = default_store(tmp_path / "mlruns")
    first = _run(study, store, tmp_path / "out")
    mc = client(store)
    copies = [
        r.data.metrics
        for r in mc.search_runs([first.experiment_id], f"tags.`{KEY_TAG}` != ''")
        if r.data.tags[LABEL_TAG] == "copier"
    ]
    losses = sorted(m["fer.best.loss"] for m in copies)
    assert len(losses) == 3 and losses[0] < losses[1] < losses[2]
    gate = (losses[1] + losses[2]) / 2
    gated = dataclasses.replace(study, analysis=dataclasses.replace(study.analysis, fit_gate=gate))
    again = _run(gated, store, tmp_path / "out")
    assert again.computed == 0
    passing = [m["fer.best.fer_score"] for m in copies if m["fer.best.loss"] <= gate]
    cell = again.report.fit["at_fit"].set_index("label").loc["copier"]
    assert (cell["n"], cell["attempted"], cell["passed"]) == (2, 3, 2)
    assert cell["fer_score"] == pytest.approx(np.mean(passing), rel=1e-12)
    finder = again.report.fit["at_fit"].set_index("label").loc["finder"]
    assert (finder["n"], finder["passed"]) == (1, 1), "discoverers have no loss and count as they are"


def check_children(store, runs, targets=False):
    """What every study trial shows in the runs table: run-level fer_score (with min and max) and
    evaluations (and loss where it had a target), no None param, a name holding its image and seed,
    progress pictures up to its last generation, and the target image beside each of a reproducer's nets."""
    from ferlab.tracking import client, progress_pictures

    mc = client(store)
    for run in runs:
        metrics, tags = run.data.metrics, run.data.tags
        assert {"fer_score", "fer_score_min", "fer_score_max", "evaluations"} <= set(metrics), run.info.run_name
        assert metrics["fer_score_min"] <= metrics["fer_score"] <= metrics["fer_score_max"]
        assert "None" not in run.data.params.values() and run.data.params["generations"]
        image = tags.get("ferlab.image")
        phase, where, seed = run.info.run_name.split(",")[0].split("/")[:3]
        assert phase == tags["ferlab.phase"] and seed == f"s{run.data.params['seed']}"
        assert where == ("open" if image is None else image.split(":")[-1].replace("/", "-")[-28:])
        assert tags["ferlab.version"] and tags["ferlab.driver"]
        assert max(progress_pictures(store, run.info.run_id), default=None) == int(run.data.params["generations"])
        tables = {a.path for a in mc.list_artifacts(run.info.run_id, "tables")}
        assert "tables/history.csv" in tables
        if image is not None:
            nets = {a.path.split("/")[1] for a in mc.list_artifacts(run.info.run_id, "nets")}
            for net in nets:
                files = {a.path for a in mc.list_artifacts(run.info.run_id, f"nets/{net}")}
                assert f"nets/{net}/target.png" in files and f"nets/{net}/image.png" in files
            if targets:
                assert "loss" in metrics, run.info.run_name
                assert {"tables/fit.csv", "tables/ladder.csv"} <= tables, run.info.run_name


@pytest.mark.slow
def test_rerun_kills_a_dead_drivers_runs_and_rescores_after_a_suite_change(tmp_path, local_ray, monkeypatch):
    """A study whose driver died left its study run and a trial RUNNING: the rerun marks them KILLED
    and reuses the finished runs (every key ends with one FINISHED run and none RUNNING); after a
    MetricsConfig setting changed, a rerun rescores every run instead of reusing it."""
    import dataclasses

    import ferlab.metrics
    from ferlab.tracking import DRIVER_TAG, client, default_store
    from test_tracking import dead_driver

    store = default_store(tmp_path / "mlruns")
    first = _run(tiny_study(seeds=1), store, tmp_path / "out")
    mc = client(store)
    finished = mc.search_runs([first.experiment_id], f"tags.`{KEY_TAG}` != ''")
    dead = dead_driver()
    ghosts = [
        mc.create_run(first.experiment_id, run_name=r.info.run_name, tags={**r.data.tags, DRIVER_TAG: dead}).info.run_id
        for r in finished
    ]
    ghosts.append(
        mc.create_run(
            first.experiment_id, tags={"ferlab.kind": "study", "ferlab.study": "tiny", DRIVER_TAG: dead}
        ).info.run_id
    )
    again = _run(tiny_study(seeds=1), store, tmp_path / "out")
    assert (again.computed, again.reused) == (0, 2)
    assert {mc.get_run(g).info.status for g in ghosts} == {"KILLED"}
    runs = mc.search_runs([first.experiment_id], f"tags.`{KEY_TAG}` != ''")
    for key in {r.data.tags[KEY_TAG] for r in runs}:
        states = sorted(r.info.status for r in runs if r.data.tags[KEY_TAG] == key)
        assert states == ["FINISHED", "KILLED"], states
    assert not mc.search_runs([first.experiment_id], "attributes.status = 'RUNNING'")

    changed = dataclasses.make_dataclass(
        "Changed",
        [("rms_step", float, dataclasses.field(default=0.07))],
        bases=(ferlab.metrics.MetricsConfig,),
        frozen=True,
    )
    monkeypatch.setattr(ferlab.metrics, "MetricsConfig", changed)
    rescored = _run(tiny_study(seeds=1), store, tmp_path / "out")
    assert (rescored.computed, rescored.reused) == (2, 0)


@pytest.mark.slow
def test_a_study_of_real_regimes_reads_at_a_glance(tmp_path, local_ray):
    """A tiny study of real regimes (novelty search finds images, ES copies one), read back through the
    MLflow client: every trial has fer_score, evaluations and (with a target) loss, no None param, its
    image and seed in its name, and the target beside a reproducer's nets."""
    from ferlab.tracking import PARENT_TAG, client, default_store

    small = {"resolution": 12, "arch": "1;sin:2,gaussian:2", "generations": 2, "checkpoint_every": 1}
    phases = [
        Phase(
            "open",
            {"regime": "novelty", **small, "settings": {"es": {"population_size": 4}, "novelty": {"capacity": 8}}},
            role="discoverer",
            nets="archive_*",
            keep=2,
        ),
        Phase(
            "es",
            {"regime": "es", **small, "settings": {"population_size": 4}},
            role="reproducer",
            targets=["phase:open"],
            sample=1,
        ),
    ]
    study = Study("real", phases, analysis=ReportSpec(group="role", resamples=50, gallery=0))
    store = default_store(tmp_path / "mlruns")
    outcome = run_study(study, store, tmp_path / "out", verbose=0, log=lambda _: None)
    assert outcome.computed == 2
    mc = client(store)
    trials = [
        r for r in mc.search_runs([outcome.experiment_id], f"tags.`{KEY_TAG}` != ''") if PARENT_TAG in r.data.tags
    ]
    assert len(trials) == 2
    check_children(store, trials, targets=True)


def test_study_code_reaches_mlflow_and_the_regimes_only_through_tracking_and_the_planner():
    import ast

    for path in (REPO / "ferlab" / "study").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert not name.startswith(("mlflow", "ferlab.search")), f"{path.name} imports {name}"


def test_a_phase_draws_its_targets_from_the_scored_nets_found_before(tmp_path):
    """A dead discoverer net (no FER score: a blank, often) is no target: its reproducers' low scores
    would read as clean representations of nothing."""
    from ferlab.study.run import discovered_id, phase_targets
    from ferlab.tracking import FinishedRun

    found = Phase("disc", {"regime": "novelty", "resolution": 16})
    copy = Phase("copy", {"regime": "sgd", "resolution": 16}, targets=["phase:disc"])
    study = Study(name="s", phases=[found, copy])
    [entry] = expand(found, [])
    nets = {"archive_000": {"fer_score": 0.3}, "archive_001": {"dead": 1.0}, "archive_002": {"fer_score": 0.2}}
    runs = {entry.key: FinishedRun("r1", {}, {}, nets)}
    for net in ("archive_000", "archive_002"):  # already downloaded: no store needed
        path = tmp_path / "targets" / (discovered_id(entry, net).replace("/", "_") + ".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    targets = phase_targets(study, copy, [entry], runs, None, tmp_path, print)
    assert [t.image for t in targets] == [discovered_id(entry, "archive_000"), discovered_id(entry, "archive_002")]


def test_a_phase_draws_no_target_below_the_detail_floor(tmp_path):
    """A flat picture or a smooth ramp has nothing to fracture: with the study's detail floor, its
    image is left out at the gate, so no reproducer is spent on it, and the log says how many were left."""
    from ferlab.study.run import discovered_id, phase_targets
    from ferlab.tracking import FinishedRun

    found = Phase("disc", {"regime": "novelty", "resolution": 16})
    copy = Phase("copy", {"regime": "sgd", "resolution": 16}, targets=["phase:disc"], sample=2)
    nets = {
        "archive_000": {"fer_score": 0.3, "image_detail": 0.002},  # flat
        "archive_001": {"fer_score": 0.4, "image_detail": 0.05},
        "archive_002": {"fer_score": 0.2, "image_detail": 0.006},  # a ramp
        "archive_003": {"fer_score": 0.5, "image_detail": 0.2},
    }
    [entry] = expand(found, [])
    runs = {entry.key: FinishedRun("r1", {}, {}, nets)}
    for net in nets:  # already downloaded: no store needed
        path = tmp_path / "targets" / (discovered_id(entry, net).replace("/", "_") + ".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    said = []
    floored = Study(name="s", phases=[found, copy], analysis=ReportSpec(min_detail=0.01))
    targets = phase_targets(floored, copy, [entry], runs, None, tmp_path, said.append)
    assert [t.image for t in targets] == [discovered_id(entry, "archive_001"), discovered_id(entry, "archive_003")]
    assert said == ["2 of the 4 scored finds of disc have less detail than the floor (0.01): no phase copies them"]
    said.clear()
    unfloored = Study(name="s", phases=[found, copy])
    drawn = [t.image for t in phase_targets(unfloored, copy, [entry], runs, None, tmp_path, said.append)]
    assert len(drawn) == 2 and not said
    assert {discovered_id(entry, "archive_000"), discovered_id(entry, "archive_002")} & set(drawn)
