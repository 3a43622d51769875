"""The ``ferlab`` command. Exit 0 on success, 2 on bad input with one line on stderr.

Python warnings (from ferlab's libraries) are not shown, so that they cannot add
lines to that one; ``python -W default -m ferlab.cli`` or ``PYTHONWARNINGS`` shows them.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import shlex
import sys
import warnings
from collections import Counter
from pathlib import Path

from ferlab import limits
from ferlab.errors import FerlabError
import contextlib

UI_HOST = "127.0.0.1"
QUIET_LOGGERS = {  # logger -> level below which a run without --verbose drops its lines
    "ray.tune": logging.WARNING,
    "ray._private.authentication.authentication_token_setup": logging.ERROR,
    "mlflow.store.db.utils": logging.WARNING,
    "alembic": logging.WARNING,
}


LESS = "ask for less: a smaller population, fewer seeds, a lower resolution"


def out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is XLA failing to allocate (a request within ferlab's caps that this
    machine's memory cannot hold): one line for it rather than a JAX traceback."""
    return type(error).__name__ == "JaxRuntimeError" and "RESOURCE_EXHAUSTED" in str(error)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit 2 (no usage dump)."""

    def error(self, message):
        raise FerlabError(f"{self.prog}: {message}")


def _size(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be an integer, got {text!r}") from None
    if not 1 <= n <= limits.MAX_SIDE:
        raise argparse.ArgumentTypeError(f"size must be between 1 and {limits.MAX_SIDE}, got {n}")
    return n


def _port(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be an integer, got {text!r}") from None
    if not 1 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 1 and 65535, got {n}")
    return n


def _require_suffix(path: str, suffix: str, flag: str) -> Path:
    p = Path(path)
    if p.suffix.lower() != suffix:
        raise FerlabError(f"{flag} must name a {suffix} file, got {path!r}")
    return p


def _recurrent(genome) -> str:
    """The links of ``genome`` that close a cycle, as ``innovation (source -> target)`` (empty: none)."""
    links = [genome.links[k] for k in genome.recurrent_links()]
    shown = ", ".join(f"{link.innovation} ({link.source} -> {link.target})" for link in links[:5])
    return shown + (f" and {len(links) - 5} more" if len(links) > 5 else "")


def _note_recurrent(genome, path: str) -> None:
    """Say on stderr which links a forward pass of ``genome`` reads as 0 (they close a cycle)."""
    if genome is not None and (shown := _recurrent(genome)):
        print(
            f"ferlab: note: {path}: links closing a cycle read 0, as in the FER paper's renderer: {shown}",
            file=sys.stderr,
        )


SRC_HELP = "Picbreeder .zip/.xml, genome .json, net .npz, or picbreeder:NAME (skull, butterfly, a CPPN-X file's stem)"
GENOME_SPEC_KEYS = ("target", "arch")
GENOME_SETTING_KEYS = ("source", "mask_from")


def _note_recurrent_specs(specs) -> None:
    """``_note_recurrent`` for each distinct genome file among a run's file specs (target, file arch,
    a regime's source or mask), once each: a study or run painting a cyclic genome says so, as
    ``render`` does. Called after the configs are checked, so every spec resolves."""
    from ferlab.search.targets import is_arch_string, resolve
    from ferlab.sources import GENOME_SUFFIXES, load_source

    for spec in dict.fromkeys(s for s in specs if isinstance(s, str) and not is_arch_string(s)):
        path = resolve(spec, "target")
        if path.suffix.lower() in GENOME_SUFFIXES:
            _note_recurrent(load_source(path), spec)


def _config_specs(config: dict) -> list:
    """The file specs of a run config dict that may name a genome."""
    settings = config.get("settings") if isinstance(config.get("settings"), dict) else {}
    return [config.get(k) for k in GENOME_SPEC_KEYS] + [settings.get(k) for k in GENOME_SETTING_KEYS]


# ------------------------------------------------------------------ commands
def cmd_render(args) -> int:
    from ferlab.files import write_png
    from ferlab.render import render
    from ferlab.sources import load_dense

    out = _require_suffix(args.out, ".png", "--out")
    net, genome = load_dense(args.src)
    _note_recurrent(genome, args.src)
    write_png(out, render(net, args.size).rgb)
    print(f"wrote {out} ({args.size}x{args.size}, {net.arch})")
    return 0


def cmd_layerize(args) -> int:
    from ferlab.files import write_net
    from ferlab.genome import Genome
    from ferlab.layerize import layerize
    from ferlab.sources import load_source

    out = _require_suffix(args.out, ".npz", "--out")
    src = load_source(args.src)
    if not isinstance(src, Genome):
        raise FerlabError(f"{args.src}: already a dense net; layerize takes a genome (.zip, .xml, .json)")
    _note_recurrent(src, args.src)
    net = layerize(src).net
    write_net(out, net)
    print(f"wrote {out} ({net.arch}, {net.arch.n_weights} weights)")
    return 0


def cmd_info(args) -> int:
    import numpy as np

    from ferlab.genome import Genome
    from ferlab.layerize import layerize
    from ferlab.sources import load_source

    src = load_source(args.src)
    if isinstance(src, Genome):
        kinds = Counter(n.kind for n in src.nodes)
        acts = Counter(n.activation for n in src.nodes if n.kind != "input")
        enabled = sum(link.enabled for link in src.links)
        net = layerize(src).net
        print(f"genome       {src.name or args.src}")
        print(
            f"nodes        {len(src.nodes)} ({kinds['input']} input, {kinds['hidden']} hidden, "
            f"{kinds['output']} output: {', '.join(src.outputs())})"
        )
        print(f"activations  {', '.join(f'{a}:{c}' for a, c in sorted(acts.items()))}")
        print(f"links        {len(src.links)} ({enabled} enabled)")
        if recurrent := _recurrent(src):
            print(f"recurrent    {recurrent}: each closes a cycle and reads 0 (the FER paper's renderer)")
        print(
            f"architecture {net.arch}  (layerized: {net.arch.n_weights} weights, "
            f"{int(sum(np.count_nonzero(np.asarray(k)) for k in net.kernels))} non-zero)"
        )
        labels = Counter(link.label for link in src.links if link.label)
        if labels:
            print(f"labels       {len(labels)} distinct over {sum(labels.values())} links")
            for label, count in sorted(labels.items(), key=lambda kv: (-kv[1], kv[0])):
                print(f"  {count:3d}  {label}")
    else:
        nz = int(sum(np.count_nonzero(np.asarray(k)) for k in src.kernels))
        print(f"net          {args.src}")
        print(f"architecture {src.arch}")
        print(f"layers       {src.arch.n_layers} hidden of width {src.arch.width}")
        print(f"weights      {src.arch.n_weights} ({nz} non-zero)")
    return 0


def cmd_run(args) -> int:
    from ferlab.search.runs import load_run_config, run

    config = load_run_config(args.config, args.set)
    settings = [getattr(config.settings, k, None) for k in GENOME_SETTING_KEYS]
    _note_recurrent_specs([getattr(config, k) for k in GENOME_SPEC_KEYS] + settings)
    out = Path(args.out) if args.out else Path("runs") / Path(args.config).stem
    if config.islands is not None:
        from ferlab.workers.islands import run_island_config

        result, history = run_island_config(config, out, address=args.address)
        final = [row for row in history if row["generation"] == config.n_generations - 1]
        last = min(final, key=lambda row: row.get("loss", 0.0))  # the best island's last generation
        length = f"{config.n_generations} generations on {config.islands.count} islands"
    elif args.address:
        raise FerlabError("--address is only for runs with an islands: section (other runs are local)")
    elif args.tracking_uri:
        from ferlab.tracking import resolve_store
        from ferlab.workers.logged import run_logged

        store = resolve_store(args.tracking_uri)
        result, history, run_id = run_logged(config, store, out, args.experiment or Path(args.config).stem)
        last = history[-1] if history else {}
        length = f"{len(history)} generations, MLflow run {run_id} at {store.uri}"
    else:
        result, history = run(config, out_dir=out)
        last = history[-1] if history else {}
        length = f"{len(history)} generations"
    summary = ", ".join(f"{k} {last[k]:.4g}" for k in ("loss", "best_fitness", "novelty", "archive_size") if k in last)
    print(
        f"wrote {out} ({config.regime}, {length}, {len(result.nets)} nets" + (f"; {summary}" if summary else "") + ")"
    )
    return 0


def cmd_analyze(args) -> int:
    from tqdm import tqdm

    from ferlab.metrics import MetricsConfig, analyze, behaviour
    from ferlab.sources import load_dense

    out = Path(args.out) if args.out else Path(f"{Path(args.src).stem}_analysis")
    if out.exists() and not out.is_dir():
        raise FerlabError(f"--out {str(out)!r} exists and is not a folder")
    config = MetricsConfig(size=args.size)
    net, genome = load_dense(args.src)
    _note_recurrent(genome, args.src)
    with tqdm(total=1, unit="picture", desc="analyze", leave=False) as bar:

        def progress(done: int, total: int, stage: str):
            bar.total, bar.n = total, done
            bar.set_description(stage)
            bar.refresh()

        result = analyze(net, genome, config, progress=progress)
    result.write(out)
    if result.dead:
        print(f"wrote {out}/metrics.json: status dead ({result.reason}), no scores")
        return 0
    print(
        f"wrote {out}/metrics.json and {len(result.figures)} figures "
        f"(fer_score {result.fer_score:.3f}{_labels_note(result.labels)})"
    )
    detail = result.info["image_detail"]
    if detail < behaviour.PLAIN:
        print(
            f"note: the picture shows almost no structure (image detail {detail:.4f}, under {behaviour.PLAIN:g}): "
            "with nothing to fracture, its fer_score is no sign of a unified factored representation"
        )
    return 0


def _labels_note(labels: dict | None) -> str:
    """The human-label AUROC and the feature it tells apart worst, for ``analyze``'s last line."""
    if not labels:
        return ""
    from ferlab.metrics.labels import weakest_first

    rated = weakest_first(labels["by_feature"])
    weakest = rated[0] if rated else None
    worst = (
        f"; weakest feature {weakest['feature']!r}, {weakest['links']} links, {weakest['auroc']:.2f}" if weakest else ""
    )
    return f", human-label AUROC {labels['auroc']:.3f}{worst}"


def cmd_study(args) -> int:
    from ferlab.config import ConfigError
    from ferlab.study import load_study, run_study, summary_text
    from ferlab.study.run import check_study, study_configs
    from ferlab.tracking import resolve_store
    from ferlab.workers.cluster import tune_storage

    if args.storage is not None or args.address:
        tune_storage(args.storage, args.address)  # a cluster without shared storage: refused before any work
    study = load_study(args.spec, args.profile)
    try:
        check_study(study)  # every phase's runs, before any store, Ray or output folder exists
    except ConfigError as e:
        raise ConfigError(f"{args.spec}: {e}") from None
    _note_recurrent_specs(spec for config in study_configs(study) for spec in _config_specs(config))
    name = study.name + (f"-{args.profile}" if args.profile else "")
    out = Path(args.out) if args.out else Path("results") / name
    store = resolve_store(args.tracking_uri)
    _quiet(args.verbose)
    outcome = run_study(
        study, store, out, address=args.address, storage=args.storage, resume=args.resume, verbose=int(args.verbose)
    )
    print()
    print(summary_text(outcome.report, study.analysis))
    print()
    print(f"report: {outcome.report.markdown} ({outcome.computed} runs computed, {outcome.reused} reused)")
    print(f"MLflow UI: {_ui_hint(store, args.tracking_uri)}, experiment {study.name!r}")
    return 0


def _ui_hint(store, given: str | None) -> str:
    """How to browse ``store``: its server; ``ferlab ui`` on the embedded store (``--store`` where the
    runs went to another folder's mlflow.db, which ``ferlab ui`` reads as its own); else MLflow's
    own server on the URI."""
    from ferlab.tracking import STORE_DB

    if store.is_server:
        return store.uri
    mlflow_ui = f"mlflow ui --backend-store-uri {store.uri}"
    if given is None:
        return f"ferlab ui   (or: {mlflow_ui})"
    db = Path(store.sqlite_file) if store.sqlite_file else None
    if db is not None and db.name == STORE_DB:
        return f"ferlab ui --store {shlex.quote(str(db.parent))}   (or: {mlflow_ui})"
    return mlflow_ui


def _quiet(verbose: bool) -> None:
    """Without --verbose, a progress bar per sweep stands in for Tune's output: Tune's classic
    reporter, silent at verbose 0 (the new one still prints a header per experiment), no INFO
    lines, no warning that short trials snapshot the experiment often (harmless on one machine),
    no notice that a new local Ray turned its default token authentication on, and no lines from
    MLflow creating or upgrading its SQLite tables."""
    if not verbose:
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
        for name, level in QUIET_LOGGERS.items():
            logging.getLogger(name).setLevel(level)


def cmd_sweep(args) -> int:
    from ferlab.tracking import resolve_store
    from ferlab.workers.cluster import tune_storage
    from ferlab.workers.sweep import experiment_path, load_sweep, run_sweep, sweep_configs, unfinished

    storage = tune_storage(args.storage, args.address)  # before anything is read, started or written
    spec = load_sweep(args.spec, args.set)
    _note_recurrent_specs(s for config in sweep_configs(spec) for s in _config_specs(config))
    if args.resume and not unfinished(path := experiment_path(spec, storage)):
        raise FerlabError(
            f"--resume: no unfinished sweep {spec.name!r} in {path} "
            "(leave --resume out to start it, or name its --storage)"
        )
    _quiet(args.verbose)
    out = run_sweep(
        spec,
        store := resolve_store(args.tracking_uri, args.store),
        address=args.address,
        storage=storage,
        resume=args.resume,
        dashboard=args.dashboard,
        verbose=int(args.verbose),
    )
    print(
        f"sweep {spec.name}: {out.trials} trials, {out.failed} failed; "
        f"MLflow experiment {out.experiment_id}, parent run {out.parent_id} at {store.uri}"
    )
    return 1 if out.failed else 0


def cmd_ui(args) -> int:
    """The MLflow server on the embedded store, on 127.0.0.1 only. The links are printed once it
    answers; SIGINT, SIGTERM and SIGHUP are passed on to it (and its workers), so stopping this
    command stops the server."""
    import signal
    import subprocess

    from ferlab.config import ConfigError
    from ferlab.files import check_writable_folder
    from ferlab.tracking import STORE_DB, TrackingError, server_command, wait_healthy

    _check_port_free(UI_HOST, args.port)
    folder = Path(args.store).resolve()
    check_writable_folder(folder, "--store")
    if not (folder / STORE_DB).is_file():  # a mistyped folder would be served as an empty store
        raise ConfigError(
            f"--store {str(folder)!r} holds no MLflow store (no {STORE_DB}); "
            "ferlab study, run and sweep write one (default ./mlruns)"
        )
    url = f"http://{UI_HOST}:{args.port}"
    command = server_command(folder, args.port, UI_HOST)
    log_path = folder / "ui.log"
    stopping: list[int] = []
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def forward(signum, frame):
        stopping.append(signum)
        _signal_group(proc.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        try:
            wait_healthy(url, proc, timeout=180)
        except TrackingError as e:
            if stopping:
                proc.wait()
                return 128 + stopping[0]
            raise TrackingError(f"{e}; its log: {log_path}") from None
        print(f"MLflow UI for {folder} (log: {log_path}); Ctrl-C stops it", flush=True)
        for line in _ui_links(url):
            print(line, flush=True)
        code = proc.wait()
        return 128 + stopping[0] if stopping else code
    finally:
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        _signal_group(proc.pid, signal.SIGKILL)  # workers left behind by the server, if any
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _check_port_free(host: str, port: int) -> None:
    """One line instead of a server that cannot start: ``port`` must be free on ``host``."""
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free to servers
        try:
            probe.bind((host, port))
        except OSError as e:
            raise FerlabError(
                f"--port {port}: cannot listen on {host}:{port} ({e.strerror or e}); "
                "another server has it, pick another --port"
            ) from None


def _signal_group(pid: int, sig) -> None:
    import os

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


# MLflow 3.x's UI opens an experiment in its GenAI view (traces, evaluations) unless told otherwise;
# ferlab's runs are model training runs, so its links ask for that view.
UI_VIEW = "?workflowType=machine_learning"


def _ui_links(url: str) -> list[str]:
    """Direct links to each experiment's runs table, in the UI's model-training view (the
    experiments list when there is none)."""
    from mlflow.exceptions import MlflowException

    from ferlab.tracking import Store, client

    try:
        experiments = client(Store(url)).search_experiments()
    except (MlflowException, OSError):  # the UI still works without its links
        experiments = []
    named = [e for e in experiments if e.name != "Default" or len(experiments) == 1]
    if not named:
        return [f"  experiments: {url}/#/experiments{UI_VIEW}"]
    return [f"  {e.name}: {url}/#/experiments/{e.experiment_id}/runs{UI_VIEW}" for e in named]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ferlab", description="Experiments on how CPPNs represent what they paint.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("render", help="render a genome or net to a PNG")
    p.add_argument("src", help=SRC_HELP)
    p.add_argument("--size", type=_size, default=256, help="image side in pixels (default 256)")
    p.add_argument("--out", required=True, help="output .png")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("layerize", help="convert a genome to the paper's dense .npz form")
    p.add_argument("src", help="Picbreeder .zip/.xml, genome .json, or picbreeder:NAME")
    p.add_argument("--out", required=True, help="output .npz")
    p.set_defaults(func=cmd_layerize)

    p = sub.add_parser("analyze", help="FER metrics and the paper's figures for a genome or net")
    p.add_argument("src", help=SRC_HELP)
    p.add_argument("--size", type=_size, default=64, help="picture side for the metrics (default 64)")
    p.add_argument("--out", help="output folder (default: <src name>_analysis)")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("info", help="describe a genome or net")
    p.add_argument("src", help=SRC_HELP)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("run", help="run one search (SGD, ES, novelty, NEAT) from a YAML config")
    p.add_argument("config", help="run config .yaml (see studies/examples/)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set settings.population_size=64 (repeatable)",
    )
    p.add_argument("--out", help="output folder (default runs/<config name>); rerunning into it resumes")
    p.add_argument("--address", help="Ray cluster for a run with islands: (default: a local Ray)")
    p.add_argument(
        "--tracking-uri",
        help="also log the run to MLflow, as a sweep trial is (a server URI, or sqlite:///PATH/mlflow.db)",
    )
    p.add_argument("--experiment", help="MLflow experiment for --tracking-uri (default: the config's name)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("study", help="run a study (phases of sweeps) and write its report")
    p.add_argument("spec", help="study spec .yaml (see studies/)")
    p.add_argument("--profile", help="a scale the spec declares: quick (a laptop), full (a cluster), ...")
    p.add_argument("--address", help="Ray cluster address (default: a local Ray)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: SQLite store in ./mlruns)")
    p.add_argument("--out", help="output folder (default results/<study>-<profile>)")
    p.add_argument(
        "--storage",
        help="Tune checkpoints: s3://bucket/path, gs://bucket/path or a folder every "
        "node mounts (needed with --address; default <out>/tune)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="restore the wave of phases whose driver died from its checkpoints in --storage",
    )
    p.add_argument("--verbose", action="store_true", help="Ray Tune's trial tables instead of a progress bar")
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("sweep", help="run a sweep of searches as Ray Tune trials, recorded in MLflow")
    p.add_argument("spec", help="sweep spec .yaml (base run config + grid/sample space)")
    p.add_argument("--address", help="Ray cluster to join (default: start a local Ray)")
    p.add_argument(
        "--tracking-uri",
        help="MLflow tracking server, e.g. http://127.0.0.1:5000 (default: the SQLite store in --store)",
    )
    p.add_argument("--store", default="mlruns", help="embedded MLflow store folder (default mlruns)")
    p.add_argument(
        "--storage",
        help="Tune results and checkpoints: s3://bucket/path, gs://bucket/path or a "
        "folder every node mounts (needed with --address; default ./tune)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="restore the sweep in --storage whose driver died: finished trials are kept, "
        "the others go on from their last checkpoints",
    )
    p.add_argument("--dashboard", action="store_true", help="start the local Ray's dashboard (127.0.0.1)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec key")
    p.add_argument("--verbose", action="store_true", help="Ray Tune's trial tables instead of a progress bar")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("ui", help="serve the MLflow UI on the embedded store (127.0.0.1 only)")
    p.add_argument("--store", default="mlruns", help="embedded MLflow store folder (default mlruns)")
    p.add_argument("--port", type=_port, default=5000, help="port on 127.0.0.1 (default 5000)")
    p.set_defaults(func=cmd_ui)
    return parser


def _stdout_open() -> bool:
    """Whether stdout still has a reader: a pipe whose reader has closed polls as an error."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return not any(events & select.POLLERR for _, events in poll.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll here, or no real stdout
        return True


def main(argv: list[str] | None = None) -> int:
    from ferlab.compile_cache import enable

    enable()
    with warnings.catch_warnings():
        if not sys.warnoptions:
            warnings.simplefilter("ignore")
        try:
            args = build_parser().parse_args(argv)
            if getattr(args, "src", "").startswith("picbreeder:"):  # the shortcut run configs take
                from ferlab.search.targets import resolve

                args.src = str(resolve(args.src, "SRC"))
            return args.func(args)
        except FerlabError as e:
            print(f"ferlab: error: {e}", file=sys.stderr)
            return 2
        except BrokenPipeError:  # `ferlab info X | head`: the reader of stdout has what it wanted
            if _stdout_open():
                raise  # another pipe or socket broke: an error to show
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
            return 141
        except Exception as e:
            if not out_of_memory(e):
                raise
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"ferlab: error: out of memory ({first}); {LESS}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("ferlab: interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
