"""What the validation set needs to be fair: SGD copies that cannot get stuck all white, and a
fracture that sees a moved edge as one change whatever its slant."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ferlab.cppn import DenseNet, init_net
from ferlab.genome import Genome, Link, Node
from ferlab.metrics import regions
from ferlab.render import colour, render
from ferlab.search.sgd import SGDConfig, SGDSearch, straight_through_colour

ARCH = "1;cache:4"


def test_straight_through_colour_keeps_the_values_and_passes_the_gradient():
    hsv = jnp.array([[0.3, -0.5, 1.7], [-0.2, 1.4, -2.5], [0.9, 0.4, 0.6], [1.5, 0.0, -0.3]])
    np.testing.assert_array_equal(np.asarray(straight_through_colour(hsv)), np.asarray(colour(hsv)))
    dark = jnp.zeros((4, 3))
    plain = jax.grad(lambda h: jnp.sum(jnp.square(colour(h) - dark)))(hsv)
    through = jax.grad(lambda h: jnp.sum(jnp.square(straight_through_colour(h) - dark)))(hsv)
    assert float(plain[0, 2]) == 0.0 and float(plain[1, 2]) == 0.0  # |v| >= 1: the clip kills it
    assert float(through[0, 2]) > 0 and float(through[1, 2]) < 0  # pulled back towards |v| < 1
    np.testing.assert_allclose(np.asarray(through[2]), np.asarray(plain[2]), rtol=1e-6)  # unclipped: the same
    white = jnp.ones((4, 3))  # row 0 is coloured, so darker than white: the pull would be outward
    outward = jax.grad(lambda h: jnp.sum(jnp.square(straight_through_colour(h) - white)))(hsv)
    assert float(outward[0, 2]) == 0.0


def _all_white() -> DenseNet:
    """Brightness 1.1 and saturation -1 at every pixel: a white picture no plain gradient can move."""
    net = init_net(ARCH, jax.random.PRNGKey(0))
    first = jnp.eye(4)  # the hidden units carry x, y, d, bias
    last = jnp.zeros_like(net.kernels[-1]).at[3, 1].set(-1.0).at[3, 2].set(1.1)
    return DenseNet(net.arch, (first, *net.kernels[1:-1], last))


@pytest.mark.parametrize("straight_through", [False, True])
def test_a_saturated_white_seed_trains_only_with_straight_through(straight_through):
    target = np.ones((8, 8, 3), np.float32)
    target[2:5, 2:5] = 0.0
    search = SGDSearch(
        SGDConfig(steps=40, steps_per_generation=40, learning_rate=0.02, seeds=1, straight_through=straight_through),
        init_net(ARCH, jax.random.PRNGKey(0)).arch,
        target,
    )
    state = search.init(jax.random.PRNGKey(0))
    state = state.replace(nets=jax.tree.map(lambda k: k[None], _all_white()))
    start = float(np.mean(np.square(np.asarray(render(_all_white(), 8).rgb) - target)))
    state, _ = search.step(state)
    end = float(search.result(state).losses["seed_0"])
    if straight_through:
        assert end < 0.9 * start
    else:
        assert end == pytest.approx(start, abs=1e-7)


def test_a_moved_diagonal_edge_is_one_region():
    """A one-pixel diagonal curve (what moving a sharp slanted edge changes) is one region, so its
    fracture is 0, as for the same curve drawn straight."""
    diagonal = jnp.eye(16)
    straight = jnp.zeros((16, 16)).at[8].set(1.0)
    for energy in (diagonal, straight):
        assert float(regions.fracture(energy, None, 0.1)) == pytest.approx(0.0, abs=1e-6)
    two = diagonal + jnp.fliplr(jnp.eye(16)).at[6:10].set(0.0)  # the diagonal and two apart pieces
    assert float(regions.fracture(two, None, 0.1)) > 0.2


def test_validation_copies_train_their_whole_budget_unless_told_to_stop_at_the_fit(tmp_path):
    """bench/validate_metrics.py trains copies for a fixed budget, as the paper does; ``stop_at_mse`` stops
    at the fit instead, and a cache trained the other way is retrained, not reused."""
    from ferlab.files import write_net
    from helpers import bench_module

    vm = bench_module("validate_metrics")
    source = tmp_path / "source.npz"
    write_net(source, init_net(ARCH, jax.random.PRNGKey(3)))
    train = partial(vm.train_copies, "g", source, size=8, seeds=2, mse=1.0, max_steps=30, chunk=10)
    fixed = train(tmp_path / "fixed")
    assert fixed["steps"] == 30 and fixed["stop_at_mse"] is False and len(fixed["mse"]) == 2
    early = train(tmp_path / "early", stop_at_mse=True)
    assert early["steps"] == 10 and max(early["mse"]) <= 1.0  # within MSE 1 after the first chunk
    assert train(tmp_path / "early", stop_at_mse=True)["seconds"] == early["seconds"]  # read from the cache
    assert train(tmp_path / "early")["steps"] == 30  # the cache stopped at the fit: trained again


def test_validation_replaces_a_diverged_copy_with_a_fresh_seed_and_keeps_it_counted(tmp_path, monkeypatch):
    """A copy whose training diverged is kept (lost) and retrained from the next run seed, one copy
    per lost one and at most ``retries`` batches; a rerun reads the cache and trains nothing."""
    from helpers import bench_module

    vm = bench_module("validate_metrics")
    calls = []

    def batch(source, folder, suffix, seeds, seed, **recipe):
        assert type(seeds) is int and type(seed) is int  # what a run config accepts
        calls.append((suffix, seeds, seed))
        lost = {0: [0, 2], 1: [0]}.get(seed, [])  # seed 0 loses copies 0 and 2, seed 1 copy 0
        mse = [float("nan") if k in lost else 0.001 for k in range(seeds)]
        return {"steps": 30, "mse": mse, "seconds": 1.0, "seeds": [f"seed_{k}{suffix}" for k in range(seeds)]}

    monkeypatch.setattr(vm, "train_batch", batch)
    (tmp_path / "g.npz").write_bytes(b"the genome")
    train = partial(
        vm.train_copies, "g", tmp_path / "g.npz", tmp_path, size=8, seeds=3, mse=1.0, max_steps=30, chunk=10
    )
    record = train(retries=1)
    assert calls == [("", 3, 0), ("_retry1", 2, 1)]
    assert record["seeds"] == ["seed_0", "seed_1", "seed_2", "seed_0_retry1", "seed_1_retry1"]
    assert sum(np.isfinite(record["mse"])) == 2 and record["retries"] == 1  # still one short, retries spent
    record = train(retries=3)
    assert calls[2:] == [("_retry2", 1, 2)] and sum(np.isfinite(record["mse"])) == 3
    assert record["seeds"][-1] == "seed_0_retry2" and record["seconds"] == 3.0
    assert train(retries=3) == record and len(calls) == 3  # from the cache


def test_validation_retrains_a_cache_made_with_another_recipe_or_from_another_file(tmp_path, monkeypatch):
    """The copies cached under a genome's name are reused only for the same recipe (size, budget,
    seeds) and the same file: a rerun at another size, or another genome under that name, retrains."""
    from helpers import bench_module

    vm = bench_module("validate_metrics")
    calls = []

    def batch(source, folder, suffix, seeds, seed, **recipe):
        calls.append((source.read_bytes(), recipe["size"], seeds))
        return {"steps": 30, "mse": [0.001] * seeds, "seconds": 1.0, "seeds": [f"seed_{k}" for k in range(seeds)]}

    monkeypatch.setattr(vm, "train_batch", batch)
    source = tmp_path / "g.xml"
    source.write_bytes(b"one genome")
    train = partial(vm.train_copies, "g", source, tmp_path / "cache", mse=1.0, max_steps=30, chunk=10)
    train(size=8, seeds=2)
    train(size=8, seeds=2)
    assert calls == [(b"one genome", 8, 2)]  # the second read the cache
    train(size=16, seeds=2)
    train(size=16, seeds=3)
    source.write_bytes(b"another genome")
    train(size=16, seeds=3)
    assert calls[1:] == [(b"one genome", 16, 2), (b"one genome", 16, 3), (b"another genome", 16, 3)]


def test_a_copy_whose_picture_diverged_is_lost_even_with_finite_weights(tmp_path):
    """The report loses the copies ``train_copies`` replaces: a non-finite final MSE, whatever the
    weights (a deep linear chain can overflow the picture before the weights go non-finite)."""
    from ferlab.files import write_net
    from helpers import bench_module

    vm = bench_module("validate_metrics")
    for k in ("seed_0", "seed_1"):
        write_net(tmp_path / "g" / f"{k}.npz", init_net(ARCH, jax.random.PRNGKey(0)))
    got = vm.copies(tmp_path, "g", {"seeds": ["seed_0", "seed_1"], "mse": [0.001, float("nan")]})
    assert got[0] is not None and got[1] is None


def test_validation_takes_genomes_of_ones_own_by_path(tmp_path, monkeypatch, capsys):
    """``--genome PATH`` adds a genome (named by its file's stem) to the set the script validates on,
    so the suite can be checked on genomes it was not chosen on; a folder adds every genome file in it,
    and ``--no-shared`` validates those alone. A path that is not a genome file, an empty folder, a
    name given twice, or a file that does not parse is one line and exit 2 before anything is trained."""
    import sys

    from helpers import bench_module

    vm = bench_module("validate_metrics")
    trained = []

    def train(name, source, cache, **kw):
        trained.append((name, source))
        return {"steps": 30, "mse": [0.001], "seconds": 1.0, "seeds": ["seed_0"]}

    monkeypatch.setattr(vm, "train_copies", train)
    mine = tmp_path / "123_Face.json"
    nodes = [Node(f"i{k}", "input", "identity", label) for k, label in enumerate(("x", "y", "d", "bias"))]
    mine.write_text(Genome.build([*nodes, Node("o", "output", "sin", "ink")], [Link(1, "i0", "o", 2.0)]).to_json())
    monkeypatch.setattr(sys, "argv", ["v", "--genome", str(mine), "--only", "123_Face", "--train-only"])
    vm.main()
    assert trained == [("123_Face", mine)]
    held = tmp_path / "held_back"  # a folder: every genome file in it; --no-shared: those alone
    held.mkdir()
    for name in ("7_Eye.json", "3_Arc.json"):
        (held / name).write_text(mine.read_text())
    (held / "notes.txt").write_text("not a genome")
    monkeypatch.setattr(sys, "argv", ["v", "--genome", str(held), str(mine), "--no-shared", "--train-only"])
    vm.main()
    assert trained[1:] == [("3_Arc", held / "3_Arc.json"), ("7_Eye", held / "7_Eye.json"), ("123_Face", mine)]
    del trained[1:]
    broken = tmp_path / "broken.xml"
    broken.write_text("<data/>")
    (empty := tmp_path / "empty").mkdir()
    for bad, says in (
        ([tmp_path / "missing.xml"], "not a genome file"),
        ([empty], "a folder with no genome file"),
        ([broken], "no <genome>"),
        ([held, held / "3_Arc.json"], "its name is taken"),
        ([], "--no-shared needs --genome"),
    ):
        genome_args = ["--genome", *map(str, bad)] if bad else []
        monkeypatch.setattr(
            sys, "argv", ["v", *genome_args, "--no-shared", "--train-only", "--cache", str(tmp_path / "c")]
        )
        with pytest.raises(SystemExit) as exit_:
            vm.main()
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and says in err and "--" in err.splitlines()[-1]
    assert len(trained) == 1 and not (tmp_path / "c").exists()  # nothing trained or written for a bad genome


def test_the_validation_table_correlates_fer_score_with_the_pictures_asymmetry_and_complexity(tmp_path, capsys):
    """``report`` measures each Picbreeder net and its cached copies, keeps each net's image asymmetry
    and complexity in validation.json, and prints fer_score's Pearson r with both over the genomes."""
    import json

    from ferlab.files import write_net
    from helpers import bench_module

    vm = bench_module("validate_metrics")
    arch = "2;gaussian:2,sin:2"
    table, records = {}, {}
    for k, name in enumerate(("a", "b", "c")):
        table[name] = tmp_path / f"{name}.npz"
        write_net(table[name], init_net(arch, jax.random.PRNGKey(k)))
        write_net(tmp_path / "cache" / name / "seed_0.npz", init_net(arch, jax.random.PRNGKey(10 + k)))
        records[name] = {"seeds": ["seed_0"], "mse": [0.001]}
    vm.report(list(table), table, records, tmp_path / "cache", 16, 0.005)
    out = capsys.readouterr().out
    rows = json.loads((tmp_path / "cache" / "validation.json").read_text())
    fer = [x["pb_fer"] for x in rows]
    for fact in ("image_asymmetry", "image_complexity"):
        r = np.corrcoef(fer, [x[fact] for x in rows])[0, 1]
        assert f"Pearson r(Picbreeder fer_score, {fact.replace('_', ' ')}) over 3 genomes (a, b, c): {r:+.3f}" in out
    assert "distinct nets" not in out and "the same net" not in out

    twin = tmp_path / "d.npz"  # a's net under another name, as 576_Skull is the paper's skull
    twin.write_bytes(table["a"].read_bytes())
    write_net(tmp_path / "cache" / "d" / "seed_0.npz", init_net(arch, jax.random.PRNGKey(13)))
    table["d"], records["d"] = twin, {"seeds": ["seed_0"], "mse": [0.001]}
    vm.report(["d"], table, records, tmp_path / "cache", 16, 0.005)
    out = capsys.readouterr().out
    rows = json.loads((tmp_path / "cache" / "validation.json").read_text())
    assert [x["genome"] for x in rows] == ["a", "b", "c", "d"] and rows[0]["net_sha256"] == rows[3]["net_sha256"]
    assert "the same net under two names (counted once in the second r below): d = a" in out
    for fact in ("image_asymmetry", "image_complexity"):
        r = np.corrcoef(fer, [x[fact] for x in rows[:3]])[0, 1]
        assert f"{fact.replace('_', ' ')}) over 4 genomes (a, b, c, d):" in out
        assert f"{fact.replace('_', ' ')}) over 3 distinct nets (a, b, c): {r:+.3f}" in out


def test_two_files_of_one_genome_are_one_net(picbreeder_dir):
    """The shared data's 576_Skull and 4376_ButterflyColor are the paper's skull and butterfly (CPPN-X
    copies with labels), listed in another order: their digests agree, and differ from each other's
    and from a genome with one weight changed."""
    import dataclasses

    from ferlab.sources import load_source
    from helpers import bench_module

    vm = bench_module("validate_metrics")
    genomes = {name: load_source(path) for name, path in vm.genomes(picbreeder_dir).items()}
    digest = {name: vm.net_digest(None, g) for name, g in genomes.items()}
    assert digest["skull"] == digest["576_Skull"] and digest["butterfly"] == digest["4376_ButterflyColor"]
    assert len(set(digest.values())) == 8  # 10 files, 8 nets
    skull = genomes["skull"]
    moved = dataclasses.replace(skull, links=(dataclasses.replace(skull.links[0], weight=0.5), *skull.links[1:]))
    assert vm.net_digest(None, moved) != digest["skull"]


def test_the_validation_lists_each_labelled_genomes_features_weakest_first():
    from helpers import bench_module

    vm = bench_module("validate_metrics")
    rows = [
        {"genome": "plain"},  # no labels: no line
        {
            "genome": "face",
            "auroc_by_feature": [
                {"feature": "Mouth", "links": 5, "within": 0.6, "between": -0.1, "auroc": 0.91},
                {"feature": "Eye and body", "links": 4, "within": 0.05, "between": 0.02, "auroc": 0.55},
                {"feature": "Nose", "links": 1, "within": None, "between": 0.0, "auroc": None},
            ],
        },
    ]
    lines = vm.feature_lines(rows).strip().splitlines()
    assert lines[-1] == "face: Eye and body 4 links +0.05/+0.02 0.55; Mouth 5 links +0.60/-0.10 0.91"
    assert not any(line.startswith("plain") for line in lines) and "Nose" not in lines[-1]
    assert vm.feature_lines([{"genome": "plain"}]) == ""
