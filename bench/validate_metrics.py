"""Validate the FER suite on the shared Picbreeder nets against SGD copies that ferlab trains.

For each of the 10 shared Picbreeder genomes (the paper's skull and butterfly,
the 8 CPPN-X genomes, two of which, 576_Skull and 4376_ButterflyColor, are the
skull and butterfly again with labels: 8 distinct nets) the script trains SGD copies on the genome's own dense
architecture with ferlab's SGD regime (the paper's recipe: normalised-gradient
Adam, lr 3e-3, plus the studies' 100-step warmup; 64x64; 3 seeds side by side;
the colour clips' gradient passed straight through, ``--plain-clips`` to train
without: a mostly white picture otherwise traps most seeds all white, where no
gradient is left, see ``ferlab.search.sgd``),
to the Picbreeder net's own picture for a fixed ``--max-steps`` (20,000), as the paper
trains its copies for a fixed 100,000 steps rather than stopping at a fit; every copy must
render within ``--mse`` (0.005) of the picture by then, and the table prints each copy's MSE.
A copy whose training diverges (on 409_Moonlight's 33 layers, mostly linear cache units, the
activations can grow about 2x a layer until the gradient overflows) is counted as lost, and up to
``--retries`` (2) batches of fresh seeds train one copy for each lost one; the table's ``copies``,
``dead`` and ``scored`` columns count every copy tried.
``--stop-at-mse`` stops instead as soon as every seed is within ``--mse`` (the protocol of
stops 21-31: copies just fitted, still smooth). The copies are the seeds' final
nets only (the regime's loss-rung snapshots, ``rung_*``, are not copies). The copies are cached under ``--cache``
(outside git) with the steps and MSEs reached, so a rerun only measures; a cache made with
another recipe (size, budget, seeds, clips) or from another file of the same name is retrained.

Then it prints, per genome: the image's asymmetry, the Picbreeder net's
fer_score, the copies' mean fer_score, the share of metrics that rank the
Picbreeder net below the copies' mean (over the metrics fer_score counts, ``SCORED``, that are
defined on both sides, with the count), the human-label AUROC where the genome has labels, and how
many copies were trained, dead and scored; and across genomes the Pearson r between the Picbreeder nets'
fer_score and their image asymmetry (and image complexity), again over the distinct nets where two
genomes are one net, and each label AUROC's 95% bootstrap interval over the links.

    PYTHONPATH=. python bench/validate_metrics.py [--train-only] [--only skull,butterfly]
    PYTHONPATH=. python bench/validate_metrics.py --genome my/123_Face.xml --only 123_Face   # genomes of your own
    PYTHONPATH=. python bench/validate_metrics.py --genome held_back/ --no-shared   # every genome in a folder

Genomes none of the suite's choices saw make the check that counts: the CPPN-X repository
(github.com/Evolving-AI-Lab/cppnx, MIT) keeps two beyond the shared data in
CanalizationPicbreederGenomes/, 2914_Firefly and the labelled 4041_Doplhin (their figures are in
``ferlab.metrics.suite.fer_score`` and ``ferlab.metrics.labels``); fetch them and pass
``--genome FILES --no-shared``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import jax
import numpy as np

from ferlab.cppn import load_net
from ferlab.errors import FerlabError, NetError
from ferlab.files import write_net, write_text
from ferlab.sources import GENOME_SUFFIXES, load_source

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "picbreeder"
CPPNX = (
    "1009_ButterflyGreyscale",
    "121_ShortSDCoif",
    "409_Moonlight",
    "4376_ButterflyColor",
    "542_GhostFaceSpooky",
    "576_Skull",
    "745_LetterG",
    "765_PlaneOnRunway",
)
SEED = "seed_"  # the SGD regime's name prefix for each seed's final net


def genomes(data: Path) -> dict[str, Path]:
    """The 10 shared Picbreeder genomes by short name."""
    out = {name: data / "genomes" / f"{name}.zip" for name in ("skull", "butterfly")}
    out.update({name: data / "genomes" / "cppnx" / f"{name}.xml" for name in CPPNX})
    return out


def own_genomes(paths: list[str], parser: argparse.ArgumentParser) -> list[Path]:
    """The ``--genome`` files: each path as given, a folder as every genome file in it (sorted)."""
    out = []
    for path in map(Path, paths):
        if not path.is_dir():
            out.append(path)
            continue
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in GENOME_SUFFIXES)
        if not found:
            parser.error(f"--genome {str(path)!r}: a folder with no genome file (.zip, .xml, .json)")
        out += found
    return out


def train_copies(
    name: str,
    source: Path,
    cache: Path,
    *,
    size: int,
    seeds: int,
    mse: float,
    max_steps: int,
    chunk: int,
    seed: int = 0,
    straight_through: bool = True,
    stop_at_mse: bool = False,
    retries: int = 0,
) -> dict:
    """Train (or read from ``cache``) ``seeds`` SGD copies of ``source``; returns their record.

    A copy whose training diverged (non-finite loss) is kept as lost, and up to ``retries`` more
    batches of fresh seeds (the run seed ``seed + b``) train one copy for each lost one, so that
    ``seeds`` copies can be scored: the record keeps every copy tried, lost ones included."""
    folder = cache / name
    record_path = folder / "record.json"
    recipe = dict(
        size=size, mse=mse, max_steps=max_steps, chunk=chunk, straight_through=straight_through, stop_at_mse=stop_at_mse
    )
    key = {  # what the copies depend on: a cache made otherwise (another genome of this name too) is retrained
        **{k: v for k, v in recipe.items() if k != "mse" or stop_at_mse},
        "seeds": seeds,
        "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
    }
    record = None
    if record_path.is_file():
        record = seeds_only(json.loads(record_path.read_text()))
        if record.get("key") != key:
            record = None
    if record is None:
        record = {"genome": name, "seed": seed, "straight_through": straight_through, "stop_at_mse": stop_at_mse}
        record["key"] = key
        record |= train_batch(source, folder, "", seeds, seed, **recipe)
        record["retries"] = 0
        write_text(record_path, json.dumps(record, indent=2) + "\n")
    while record.get("retries", 0) < retries and (lost := seeds - sum(map(math.isfinite, record["mse"]))) > 0:
        batch = record.get("retries", 0) + 1
        more = train_batch(source, folder, f"_retry{batch}", lost, record["seed"] + batch, **recipe)
        record |= {
            "seeds": record["seeds"] + more["seeds"],
            "mse": record["mse"] + more["mse"],
            "seconds": record["seconds"] + more["seconds"],
            "retries": batch,
        }
        write_text(record_path, json.dumps(record, indent=2) + "\n")
    return record


def train_batch(
    source: Path,
    folder: Path,
    suffix: str,
    seeds: int,
    seed: int,
    *,
    size: int,
    mse: float,
    max_steps: int,
    chunk: int,
    straight_through: bool,
    stop_at_mse: bool,
) -> dict:
    """One batch of ``seeds`` copies trained side by side from run seed ``seed``, written to
    ``folder`` as ``seed_<k><suffix>.npz``: their names, steps, final MSEs and seconds."""
    from ferlab.search.runs import load_run_config, make_search

    config = load_run_config(
        {
            "regime": "sgd",
            "seed": seed,
            "resolution": size,
            "target": str(source),
            "arch": str(source),
            "checkpoint_every": 0,
            "settings": {
                "steps": max_steps,
                "steps_per_generation": chunk,
                "learning_rate": 3e-3,
                "warmup_steps": 100,
                "seeds": seeds,
                "straight_through": straight_through,
            },
        }
    )
    search = make_search(config)
    state = search.init(jax.random.PRNGKey(config.seed))
    target = np.asarray(search.target)
    start, steps = time.perf_counter(), 0
    while steps < max_steps:
        state, _ = search.step(state)
        steps += chunk
        result = search.result(state)
        names = sorted(k for k in result.nets if k.startswith(SEED))
        losses = [float(np.mean(np.square(np.asarray(result.images[k]) - target))) for k in names]
        if stop_at_mse and max(losses) <= mse:  # the final nets' own pictures, not the step's pre-update loss
            break
    for k in names:
        write_net(folder / f"{k}{suffix}.npz", result.nets[k])
    return {"steps": steps, "mse": losses, "seconds": time.perf_counter() - start, "seeds": [k + suffix for k in names]}


def seeds_only(record: dict) -> dict:
    """The record restricted to the seeds' final nets (caches written before rung snapshots were left out)."""
    keep = [i for i, k in enumerate(record["seeds"]) if k.startswith(SEED)]
    return record | {"seeds": [record["seeds"][i] for i in keep], "mse": [record["mse"][i] for i in keep]}


def copies(cache: Path, name: str, record: dict):
    """The cached copies; a copy whose training diverged is None: its final MSE is not finite (what
    ``train_copies`` replaces; weights can still be finite when only the picture overflowed), or its
    weights are not."""
    out = []
    for k, mse in zip(record["seeds"], record["mse"]):
        try:
            out.append(load_net(cache / name / f"{k}.npz") if math.isfinite(mse) else None)
        except NetError:
            out.append(None)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--cache", default=str(REPO / "results" / "validate"))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--mse", type=float, default=0.005, help="the fit every copy must reach")
    parser.add_argument("--max-steps", type=int, default=20_000, help="the copies' training budget")
    parser.add_argument("--stop-at-mse", action="store_true", help="stop once every seed is within --mse")
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument(
        "--retries", type=int, default=2, help="batches of fresh seeds that replace copies whose training diverged"
    )
    parser.add_argument("--seed", type=int, default=0, help="first seed of the copies (for genomes not yet cached)")
    parser.add_argument("--only", default="", help="comma-separated genome names (default: all 10)")
    parser.add_argument(
        "--genome",
        action="extend",
        nargs="+",
        default=[],
        metavar="PATH",
        help="other genomes (.zip, .xml, .json) to validate on, each named by its file's stem; "
        "a folder stands for every genome file in it",
    )
    parser.add_argument("--no-shared", action="store_true", help="validate only the --genome genomes")
    parser.add_argument("--train-only", action="store_true")
    parser.add_argument(
        "--plain-clips", action="store_true", help="train without the straight-through colour clips (the paper)"
    )
    args = parser.parse_args()
    if min(args.size, args.seeds, args.chunk) < 1 or args.max_steps < args.chunk or args.max_steps % args.chunk:
        parser.error("--size, --seeds and --chunk must be at least 1, --max-steps a positive multiple of --chunk")
    if not 0 <= args.retries <= 10:
        parser.error(f"--retries must be 0 to 10, got {args.retries}")
    if not 0 < args.mse < float("inf"):
        parser.error(f"--mse must be positive and finite, got {args.mse}")
    cache = Path(args.cache)
    table = {} if args.no_shared else genomes(Path(args.data))
    if args.no_shared and not args.genome:
        parser.error("--no-shared needs --genome: there is nothing else to validate")
    for path in own_genomes(args.genome, parser):
        if path.stem in table or not path.is_file() or path.suffix.lower() not in GENOME_SUFFIXES:
            parser.error(f"--genome {str(path)!r}: not a genome file (.zip, .xml, .json), or its name is taken")
        try:
            load_source(path)  # read once here, so a broken file is one line before any training
        except FerlabError as e:
            parser.error(f"--genome: {e}")
        table[path.stem] = path
    names = [n for n in table if not args.only or n in args.only.split(",")]
    unknown = sorted(set(args.only.split(",")) - set(table)) if args.only else []
    if unknown:
        parser.error(f"--only: unknown genome(s) {', '.join(unknown)} (known: {', '.join(table)})")
    records = {}
    for name in names:
        records[name] = train_copies(
            name,
            table[name],
            cache,
            size=args.size,
            seeds=args.seeds,
            mse=args.mse,
            max_steps=args.max_steps,
            chunk=args.chunk,
            seed=args.seed,
            straight_through=not args.plain_clips,
            stop_at_mse=args.stop_at_mse,
            retries=args.retries,
        )
        r = records[name]
        print(
            f"{name:24s} steps {r['steps']:6d}  mse "
            + " ".join(f"{m:.4f}" for m in r["mse"])
            + f"  ({r['seconds']:.0f} s)",
            flush=True,
        )
    if args.train_only:
        return
    report(names, table, records, cache, args.size, args.mse)


HEADER = (
    f"\n{'genome':24s} {'img_asym':>8s} {'axis':>6s} {'pb_fer':>7s} {'sgd_fer':>7s} {'lower':>6s} {'of':>5s} "
    f"{'auroc':>6s} {'copies':>6s} {'dead':>4s} {'scored':>6s} sgd_mse"
)


def table_row(row: dict) -> str:
    """One genome's line of the validation table: ``lower`` is the share of the metrics defined (finite)
    for the Picbreeder net and the copies' mean, ``of`` how many lower of how many defined; ``copies``
    the copies trained, ``dead`` those with no score (``status: dead``), ``scored`` the rest."""
    dead = row["dead_copies"]
    attempted = row.get("attempted", len(row["sgd_mse"]))
    return (
        f"{row['genome']:24s} {row['image_asymmetry']:8.3f} {row['axis']:>6s} {row['pb_fer']:7.3f} "
        f"{row['sgd_fer']:7.3f} {row['lower']:6.0%} {len(row['lower_metrics']):2d}/{row.get('defined', 11):<2d} "
        f"{row['auroc']:6.3f} {attempted:6d} {len(dead):4d} {attempted - len(dead):6d} "
        + " ".join(f"{m:.4f}" for m in row["sgd_mse"])
        + (f"  dead: {', '.join(str(i) for i in dead)}" if dead else "")
    )


def net_digest(net, genome=None) -> str:
    """SHA-256 of what a net is, whatever order its file lists it in: a genome's nodes and enabled
    links sorted by their markings (two files of one genome layerize with their units in another
    order), else a dense net's architecture and kernels."""
    if genome is not None:
        nodes = sorted((n.id, n.kind, n.activation, n.label) for n in genome.nodes)
        links = sorted((link.source, link.target, repr(link.weight)) for link in genome.links if link.enabled)
        return hashlib.sha256(repr((nodes, links)).encode()).hexdigest()
    digest = hashlib.sha256(str(net.arch).encode())
    for kernel in net.kernels:
        digest.update(np.ascontiguousarray(np.asarray(kernel, np.float32)).tobytes())
    return digest.hexdigest()


def same_nets(rows: list[dict]) -> dict[str, str]:
    """``{genome: the earlier genome with the same net}``: the shared data holds the paper's skull and
    butterfly twice (``576_Skull`` and ``4376_ButterflyColor`` are their CPPN-X copies, with labels),
    and a correlation across images should count each net once."""
    first, out = {}, {}
    for x in rows:
        digest = x.get("net_sha256")
        if digest in first:
            out[x["genome"]] = first[digest]
        elif digest is not None:
            first[digest] = x["genome"]
    return out


def _mean_defined(values: list[float]) -> float:
    """Mean of the finite values (NaN when none is): a metric a copy cannot define is not a zero."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def report(names, table, records, cache, size, mse):
    """Measure the Picbreeder nets and their copies, print the validation table, save it as JSON."""
    from ferlab.metrics import (
        METRICS,
        SCORED,
        DeadNet,
        MetricsConfig,
        label_auroc,
        measure,
        measure_many,
    )
    from ferlab.sources import load_dense

    config = MetricsConfig(size=size)
    rows = []
    print(HEADER)
    for name in names:
        net, genome = load_dense(table[name])
        pb = measure(net, config)
        nets = copies(cache, name, records[name])
        live = iter(measure_many([n for n in nets if n is not None], config))
        measured = [next(live) if n is not None else DeadNet("training diverged: non-finite weights") for n in nets]
        dead = [i for i, m in enumerate(measured) if isinstance(m, DeadNet)]
        sgd = [m for m in measured if not isinstance(m, DeadNet)]
        if not sgd:
            print(f"{name:24s} every SGD copy is dead: nothing to compare", flush=True)
            continue
        mean = {k: _mean_defined([m.metrics[k] for m in sgd]) for k in METRICS}
        scored = SCORED[pb.info["form"]]  # each distinct metric once, as fer_score counts them
        defined = [k for k in scored if np.isfinite(pb.metrics[k]) and np.isfinite(mean[k])]
        lowered = [k for k in defined if pb.metrics[k] < mean[k]]
        lower = len(lowered) / len(defined) if defined else float("nan")
        labelled = genome is not None and any(link.label for link in genome.links)
        people = label_auroc(genome, size) if labelled else {}
        auroc = people.get("auroc", float("nan"))
        row = {
            "genome": name,
            "net_sha256": net_digest(net, genome),
            "image_asymmetry": pb.info["image_asymmetry"],
            "image_complexity": pb.info["image_complexity"],
            "axis": pb.info["axis"],
            "pb_fer": pb.fer_score,
            "sgd_fer": _mean_defined([m.fer_score for m in sgd]),
            "lower": lower,
            "defined": len(defined),
            "auroc": auroc,
            "auroc_interval": [people.get("auroc_low", float("nan")), people.get("auroc_high", float("nan"))],
            "auroc_by_feature": people.get("by_feature", []),
            "attempted": len(measured),
            "sgd_mse": records[name]["mse"],
            "dead_copies": dead,
            "pb_metrics": pb.metrics,
            "sgd_mean_metrics": mean,
            "lower_metrics": lowered,
        }
        rows.append(row)
        print(table_row(row), flush=True)
    saved = cache / "validation.json"  # rows of earlier runs (other genomes) are kept
    kept = [x for x in (json.loads(saved.read_text()) if saved.is_file() else []) if x["genome"] not in names]
    rows = sorted(kept + rows, key=lambda x: list(table).index(x["genome"]) if x["genome"] in table else len(table))
    write_text(saved, json.dumps(rows, indent=2) + "\n")
    if kept:
        print(f"\nevery genome in {saved} (earlier runs' rows kept):\n{HEADER}")
        print("\n".join(table_row(x) for x in rows))
    same = same_nets(rows)
    if same:
        print(
            "\nthe same net under two names (counted once in the second r below): "
            + "; ".join(f"{k} = {v}" for k, v in same.items())
        )
    for fact in ("image_asymmetry", "image_complexity"):  # what fer_score should not merely follow across images
        have = [x for x in rows if fact in x]
        for part, what in ((have, "genomes"), ([x for x in have if x["genome"] not in same], "distinct nets")):
            if len(part) > 2 and (what == "genomes" or same):
                r = np.corrcoef([x["pb_fer"] for x in part], [x[fact] for x in part])[0, 1]
                print(
                    f"\nPearson r(Picbreeder fer_score, {fact.replace('_', ' ')}) over {len(part)} {what} "
                    f"({', '.join(x['genome'] for x in part)}): {r:+.3f}"
                )
    print(
        "\nhuman-label AUROC, 95% bootstrap interval over the links: "
        + "; ".join(
            f"{x['genome']} {x['auroc']:.3f} [{x['auroc_interval'][0]:.3f}, {x['auroc_interval'][1]:.3f}]"
            for x in rows
            if np.isfinite(x["auroc"]) and "auroc_interval" in x
        )
    )
    print(feature_lines(rows))
    unfit = {x["genome"]: [m for m in x["sgd_mse"] if not m <= mse] for x in rows}  # NaN: diverged, not fit
    unfit = {k: v for k, v in unfit.items() if v}
    print(
        f"\ncopies whose picture is not within MSE {mse}: "
        + ("; ".join(f"{k} {', '.join(f'{m:.4f}' for m in v)}" for k, v in unfit.items()) or "none")
    )
    print("\n" + per_metric_table(rows, METRICS))


def feature_lines(rows: list[dict]) -> str:
    """Per labelled genome, each feature of several links (``ferlab.metrics.labels.by_feature``):
    links, mean similarity within / to other features, and its own AUROC, weakest first."""
    from ferlab.metrics.labels import weakest_first

    lines = []
    for x in rows:
        shown = weakest_first(x.get("auroc_by_feature", []))
        if shown:
            lines.append(
                f"{x['genome']}: "
                + "; ".join(
                    f"{f['feature']} {f['links']} links {f['within']:+.2f}/{f['between']:+.2f} {f['auroc']:.2f}"
                    for f in shown
                )
            )
    if not lines:
        return ""
    return "\nper feature of several links (links, similarity within / to others, AUROC), weakest first:\n" + "\n".join(
        lines
    )


def per_metric_table(rows: list[dict], metrics) -> str:
    """Each metric (a row, its full name) on each genome (a column, in the table's order): the
    Picbreeder net's value / the copies' mean."""
    lines = ["per metric, Picbreeder / SGD mean (genomes in the order above):"]
    lines.append(f"{'metric':22s} " + " ".join(f"{x['genome'][:9]:>9s}" for x in rows))
    for k in metrics:
        cells = (f"{x['pb_metrics'][k]:.2f}/{x['sgd_mean_metrics'][k]:.2f}" for x in rows)
        lines.append(f"{k:22s} " + " ".join(f"{c:>9s}" for c in cells))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
