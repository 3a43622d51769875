"""One run of any search regime: config in, networks, images and history out.

A run config (YAML) names a ``regime`` and its ``settings``::

    regime: es
    seed: 0
    generations: 200
    resolution: 32
    target: picbreeder:skull
    arch: "3;sin:4,gaussian:4,sigmoid:4,identity:4"
    settings: {algorithm: CMA_ES, population_size: 32}

Regimes are the declarations ``ferlab.search.registry`` finds (one
``REGIME = Regime(...)`` per regime module, see ``ferlab.search.api.Regime``):
``load_run_config`` reads ``settings`` into the regime's settings class, calls
its ``check(run_config)`` so that bad configs fail before any work, and takes
its ``generations`` attribute as the run length when the run leaves it unset
(otherwise ``DEFAULT_GENERATIONS``).

An optional ``islands:`` section (``IslandsConfig``) splits the run over Ray
actors (``ferlab.workers.islands``); ``ferlab run`` then runs it on a local
Ray or the cluster at ``--address``.

A search that is ``api.Tabular`` has extra per-step records (SGD's per-step
losses), written as ``<name>.csv``.

Paths (``target``, ``arch`` files) are relative to the working directory.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
import yaml

from ferlab import limits
from ferlab.config import ConfigError, apply_overrides, from_dict, load_yaml, to_dict
from ferlab.search.api import Regime, Result, Search, Tabular, run_search
from ferlab.search.ladder import DEFAULT_RUNGS, check_rungs, wall_times
from ferlab.search.registry import regime, regime_names
from ferlab.search.targets import load_arch, resolve

DEFAULT_ARCH = "12;cache:15,gaussian:4,identity:2,sin:1"  # the paper's skull architecture
DEFAULT_GENERATIONS = 100
CHECKPOINT_NAME = "checkpoint.msgpack"
CONFIG_NAME = "config.yaml"


@dataclass(frozen=True)
class IslandsConfig:
    """``islands:`` of a run config: evolve the run as ``count`` islands (Ray actors with
    ``cpus`` CPUs and ``gpus`` GPUs each; a fractional GPU is shared, with JAX
    preallocation off) that migrate their best every ``migrate_every`` generations.

    The regime's population size is the *total*: it is split evenly, each island
    evolving ``population_size / count`` (which must divide). Regimes that keep an
    archive share one (of the capacity their declaration's ``shared_archive`` gives). Island
    runs do not checkpoint: rerun one to redo it.
    """

    count: int = 2
    migrate_every: int = 10
    cpus: float = 1
    gpus: float = 0

    def __post_init__(self):
        if self.count < 1 or self.migrate_every < 1:
            raise ValueError(f"count and migrate_every must be at least 1, got {self.count} and {self.migrate_every}")
        if not self.cpus > 0 or self.gpus < 0:
            raise ValueError(f"cpus must be positive and gpus at least 0, got {self.cpus} and {self.gpus}")
        if self.gpus > 1 and self.gpus != int(self.gpus):
            raise ValueError(f"gpus above 1 must be whole, got {self.gpus}")


@dataclass(frozen=True)
class RunConfig:
    """A run: regime, seed, length, image resolution, target and architecture specs
    (see ``ferlab.search.targets``), checkpoint period (generations; 0 = only at
    the end), the regime's ``settings`` dataclass and the loss ladder's rungs
    (``ferlab.search.ladder``: MSE values, finite, positive, decreasing; a
    regime matching the target snapshots its best net at each)."""

    regime: str
    seed: int = 0
    generations: int | None = None
    resolution: int = 64
    target: str | None = None
    arch: str = DEFAULT_ARCH
    checkpoint_every: int = 10
    settings: Any = None
    islands: IslandsConfig | None = None
    ladder: tuple[float, ...] = DEFAULT_RUNGS

    def __post_init__(self):
        check_rungs(self.ladder)
        if self.regime not in regime_names():
            raise ValueError(f"unknown regime {self.regime!r} (known: {', '.join(regime_names())})")
        if self.generations is not None and self.generations < 1:
            raise ValueError(f"generations must be at least 1, got {self.generations}")
        if not 1 <= self.resolution <= limits.MAX_SIDE:
            raise ValueError(f"resolution must be between 1 and {limits.MAX_SIDE}, got {self.resolution}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be at least 0, got {self.checkpoint_every}")
        limits.GENERATIONS.check(self.n_generations, "generations", ValueError)

    @property
    def n_generations(self) -> int:
        if self.generations is not None:
            return self.generations
        return int(getattr(self.settings, "generations", DEFAULT_GENERATIONS))


def load_run_config(path_or_dict: str | Path | dict, overrides=()) -> RunConfig:
    """Read, override (``key=value`` strings) and validate a run config; ConfigError on any problem."""
    if isinstance(path_or_dict, dict):
        return _validated(apply_overrides(path_or_dict, list(overrides)))
    data = apply_overrides(load_yaml(path_or_dict), list(overrides))
    try:
        return _validated(data)
    except ConfigError as e:
        raise ConfigError(f"{path_or_dict}: {e}") from None


def _validated(data: dict) -> RunConfig:
    name = data.get("regime")
    if not isinstance(name, str) or name not in regime_names():
        raise ConfigError(f"regime must be one of {', '.join(regime_names())}, got {name!r}")
    settings = from_dict(regime(name).config, data.get("settings"), "settings")
    config = dataclasses.replace(from_dict(RunConfig, {**data, "settings": None}, "config"), settings=settings)
    load_arch(config.arch, "arch")
    if config.target is not None:
        resolve(config.target, "target")
    check = getattr(settings, "check", None)
    if check is not None:
        check(config)
    if config.islands is not None:
        island_config(config)
    return config


def declaration(config: RunConfig) -> Regime:
    """The declaration of a run's regime."""
    return regime(config.regime)


def population_size(config: RunConfig) -> int:
    """The population size in a run's settings (regimes that declare ``population`` only)."""
    node = config.settings
    for part in declaration(config).population:
        node = getattr(node, part)
    return node


def island_config(config: RunConfig) -> RunConfig:
    """The run one island of ``config`` evolves: its share of the population, no ``islands``."""
    path = declaration(config).population
    if path is None:
        splittable = [n for n in regime_names() if regime(n).population is not None]
        raise ConfigError(
            f"islands: regime {config.regime!r} has no population to split (islands work for {', '.join(splittable)})"
        )
    total, count, where = population_size(config), config.islands.count, "settings." + ".".join(path)
    if total % count:
        raise ConfigError(f"islands: {where} {total} does not split evenly over {count} islands")

    def share(settings, path):
        value = share(getattr(settings, path[0]), path[1:]) if len(path) > 1 else total // count
        return dataclasses.replace(settings, **{path[0]: value})

    try:
        settings = share(config.settings, path)
    except ValueError as e:
        raise ConfigError(f"islands: one island's share of {where} ({total // count}): {e}") from None
    return dataclasses.replace(config, settings=settings, islands=None)


def shared_archive(config: RunConfig) -> int:
    """The capacity of the archive a run's islands share (0: they share none)."""
    return declaration(config).archive_capacity(config.settings)


def make_search(config: RunConfig) -> Search:
    return declaration(config).make(config, config.settings)


def config_yaml(config: RunConfig) -> str:
    data = to_dict(config)
    if data["islands"] is None:
        del data["islands"]
    return yaml.safe_dump(data, sort_keys=False)


Executor = Callable[[RunConfig, Callable[[int, dict], None]], tuple[Result, list[dict]]]


def run(
    config: RunConfig,
    out_dir: str | Path | None = None,
    callback: Callable[[int, dict], None] | None = None,
    progress: bool = True,
    checkpoint: str | Path | None = None,
    stop_after: int | None = None,
    execute: Executor | None = None,
    on_checkpoint: Callable[[int, Callable[[], Result]], None] | None = None,
) -> tuple[Result, list[dict]]:
    """Run ``config`` (resuming from its checkpoint if there is one) and write its outputs.

    With ``out_dir`` the checkpoint defaults to ``out_dir/checkpoint.msgpack`` so
    that running the same config into the same folder again resumes it; a
    folder holding a different run's config is refused. ``stop_after`` stops
    after that many generations of this call (an interruption).

    ``execute(config, report) -> (result, history)`` runs the generations
    elsewhere (an island run on Ray actors, ``ferlab.workers.islands``), calling
    ``report(generation, stats)`` as they finish; the folder, the config and the
    outputs are handled here either way. Without it the run is local, through
    ``run_search``; a config with ``islands`` needs an executor.

    ``on_checkpoint(generation, result)`` is called after each checkpoint of a
    local run; ``result()`` builds the run's Result then (rendering its nets), so
    a caller that wants no picture at that checkpoint pays nothing.
    """
    if config.islands is not None and execute is None:
        raise ConfigError(
            "islands: an island run needs Ray; run it with ferlab run (ferlab.workers.islands.run_island_config)"
        )
    out = Path(out_dir) if out_dir is not None else None
    text = config_yaml(config)
    if out is not None:
        check_folder(out, text)
        checkpoint = checkpoint if checkpoint is not None else out / CHECKPOINT_NAME
    search = make_search(config) if execute is None else None
    from ferlab.files import claim_folder

    # held until the outputs are written: a second run into ``out`` meanwhile is refused
    with claim_folder(out, CONFIG_NAME, text) if out is not None else contextlib.nullcontext():
        n = config.n_generations
        from tqdm import tqdm

        desc = config.regime if config.islands is None else f"{config.regime} x{config.islands.count}"
        tables: dict = {}
        built: dict = {}

        def result_of(state) -> Result:
            """``search.result(state)``, built once per state (the last checkpoint's is the final one)."""
            if built.get("state") is not state:
                built.update(state=state, result=search.result(state))
            return built["result"]

        with tqdm(total=n, disable=not progress, desc=desc, unit="gen", leave=False) as bar:

            def report(generation: int, stats: dict) -> None:
                bar.n = generation + 1
                bar.set_postfix({k: f"{v:.4g}" for k, v in stats.items() if k in _SHOWN}, refresh=False)
                bar.refresh()
                if callback is not None:
                    callback(generation, stats)

            if search is None:
                result, history = execute(config, report)
            else:
                outcome = run_search(
                    search,
                    jax.random.PRNGKey(config.seed),
                    n,
                    callback=report,
                    checkpoint=checkpoint,
                    checkpoint_every=config.checkpoint_every,
                    stop_after=stop_after,
                    on_checkpoint=None
                    if on_checkpoint is None
                    else lambda gen, state: on_checkpoint(gen, lambda: result_of(state)),
                )
                result, history = result_of(outcome.state), outcome.history
                tables = search.tables(outcome.state) if isinstance(search, Tabular) else {}
        if out is not None:
            write_outputs(result, history, out, tables)
    return result, history


_SHOWN = ("loss", "best_fitness", "novelty", "archive_size")


def check_folder(out: Path, text: str) -> None:
    """Refuse an output folder that is a file or holds a different run's config (``text``: this
    run's), writing nothing; ``run`` then claims the folder (``ferlab.files.claim_folder``)."""
    from ferlab.files import check_claim

    check_claim(out, CONFIG_NAME, text)


def write_outputs(result: Result, history: list[dict], out_dir: str | Path, tables: dict | None = None) -> Path:
    """Write ``nets/<name>.npz``, ``images/<name>.png``, ``genomes/<name>.json`` and the run's
    tables (``run_tables``) as CSV files."""
    from ferlab.files import write_net, write_png, write_text

    out = Path(out_dir)
    for name, net in result.nets.items():
        write_net(out / "nets" / f"{name}.npz", net)
    for name, rgb in result.images.items():
        write_png(out / "images" / f"{name}.png", rgb)
    for name, genome in result.genomes.items():
        write_text(out / "genomes" / f"{name}.json", genome.to_json())
    for name, text in run_tables(result, history, tables).items():
        write_text(out / name, text)
    return out


def run_tables(result: Result, history: list[dict], tables: dict | None = None) -> dict[str, str]:
    """A run's tables as CSV texts by file name: ``history.csv``, ``fit.csv`` (each net's own loss,
    when the run has a target) and each of a Tabular regime's ``tables`` as ``<name>.csv``; the
    ``ladder`` table gains ``wall_time``, the cumulative seconds of the history at the end of the
    generation each rung was reached in."""
    columns: dict[str, list] = {}
    for i, row in enumerate(history):
        for key, value in row.items():
            columns.setdefault(key, [None] * len(history))[i] = value
    order = ["generation"] + sorted(k for k in columns if k != "generation")
    texts = {"history.csv": table_text({k: columns[k] for k in order if k in columns})}
    if result.losses:
        texts["fit.csv"] = table_text({"net": list(result.losses), "loss": list(result.losses.values())})
    for name, table in (tables or {}).items():
        if name == "ladder":
            table = {**table, "wall_time": wall_times(table["generation"], history)}
        texts[f"{name}.csv"] = table_text(table)
    return texts


def table_text(columns: dict[str, Any]) -> str:
    """Equal-length columns as CSV text."""
    names = list(columns)
    rows = zip(*(np.asarray(columns[k], dtype=object).tolist() for k in names)) if names else []
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    writer.writerows(rows)
    return buf.getvalue()
