"""The ``given`` regime: a network as found elsewhere (a Picbreeder genome, a saved net), unchanged.

It searches nothing: one empty generation, and the result is the source's
dense net (layerized when it is a genome) rendered at the run's resolution. It
lets a study score the Picbreeder nets beside the nets other regimes found,
through the same runs, tracking and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from ferlab.config import ConfigError
from ferlab.errors import FerlabError
from ferlab.search.api import Result

NET_NAME = "given"


@dataclass(frozen=True)
class GivenConfig:
    """``source``: a genome or net spec (as a run's ``target``); unset means the run's target."""

    source: str | None = None
    generations = 1

    def check(self, run) -> None:
        if self.source is None and run.target is None:
            raise ConfigError("regime given needs settings.source or a target")
        if self.source is not None:
            from ferlab.search.targets import resolve

            resolve(self.source, "settings.source")


class GivenSearch:
    """``api.Search`` that returns one fixed net."""

    def __init__(self, net, genome, resolution: int):
        self.net, self.genome, self.resolution = net, genome, resolution

    def init(self, key):
        return jnp.zeros((), jnp.int32)

    def step(self, state):
        return state + 1, {}

    def result(self, state) -> Result:
        from ferlab.render import render

        image = np.asarray(render(self.net, self.resolution).rgb)
        genomes = {NET_NAME: self.genome} if self.genome is not None else {}
        return Result({NET_NAME: self.net}, {NET_NAME: image}, genomes)


def make_given(run_config, settings: GivenConfig) -> GivenSearch:
    """The search for a run config (anything with ``target`` and ``resolution``)."""
    from ferlab.search.targets import resolve
    from ferlab.sources import load_dense

    settings.check(run_config)
    spec = settings.source or run_config.target
    try:
        net, genome = load_dense(resolve(spec, "settings.source"))
    except ConfigError:
        raise
    except FerlabError as e:
        raise ConfigError(f"settings.source: {e}") from None
    return GivenSearch(net, genome, run_config.resolution)
