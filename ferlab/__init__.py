"""ferlab: which search regime produces unified factored representations?

The data flow, one module per step: genome (``genome``, ``picbreeder``) ->
dense network (``layerize``, ``cppn``) -> image and feature maps (``render``)
-> search (``ferlab.search``) -> metrics -> tracking (``ferlab.workers``).

What a notebook needs is importable from here (README, "Python API")::

    config = ferlab.load_run_config({...})      # or a run config .yaml
    search = ferlab.make_search(config)         # init(key) / step(state) / result(state)
    result, history = ferlab.run(config)        # the same, driven to the end
    ferlab.analyze(net)                         # the FER suite; ferlab.render(net, size)

Names are imported on first use (JAX, Flax and evosax take seconds to import).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    # run configs and searches
    "RunConfig": "ferlab.search.runs",
    "load_run_config": "ferlab.search.runs",
    "make_search": "ferlab.search.runs",
    "run": "ferlab.search.runs",
    "run_search": "ferlab.search.api",
    "Result": "ferlab.search.api",
    # networks, genomes and files
    "Architecture": "ferlab.cppn",
    "DenseNet": "ferlab.cppn",
    "init_net": "ferlab.cppn",
    "load_net": "ferlab.cppn",
    "Genome": "ferlab.genome",
    "layerize": "ferlab.layerize",
    "load_source": "ferlab.sources",
    "load_dense": "ferlab.sources",
    "write_net": "ferlab.files",
    "write_png": "ferlab.files",
    # images and metrics
    "render": "ferlab.render",
    "render_genome": "ferlab.render",
    "analyze": "ferlab.metrics",
    "MetricsConfig": "ferlab.metrics",
}

__all__ = [
    "Architecture",
    "DenseNet",
    "Genome",
    "MetricsConfig",
    "Result",
    "RunConfig",
    "__version__",
    "analyze",
    "init_net",
    "layerize",
    "load_dense",
    "load_genome",
    "load_net",
    "load_run_config",
    "load_source",
    "make_search",
    "render",
    "render_genome",
    "run",
    "run_search",
    "write_net",
    "write_png",
]

if TYPE_CHECKING:
    from ferlab.cppn import Architecture, DenseNet, init_net, load_net
    from ferlab.files import write_net, write_png
    from ferlab.genome import Genome
    from ferlab.layerize import layerize
    from ferlab.metrics import MetricsConfig, analyze
    from ferlab.render import render, render_genome
    from ferlab.search.api import Result, run_search
    from ferlab.search.runs import RunConfig, load_run_config, make_search, run
    from ferlab.sources import load_dense, load_source


def load_genome(path: str | Path) -> Genome:
    """The genome in a Picbreeder ``.zip``/``.xml`` or a genome ``.json`` (a net ``.npz`` has none)."""
    from ferlab.errors import FerlabError
    from ferlab.genome import Genome
    from ferlab.sources import load_source

    src = load_source(path)
    if not isinstance(src, Genome):
        raise FerlabError(f"{path}: a dense net, not a genome (load it with ferlab.load_net)")
    return src


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ferlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
