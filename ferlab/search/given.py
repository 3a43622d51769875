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
from ferlab.search.api import Regime, Result
from ferlab.search.targets import load_source, source_path

NET_NAME = "given"


@dataclass(frozen=True)
class GivenConfig:
    """``source``: a genome or net spec (as a run's ``target``); unset means the run's target."""

    source: str | None = None
    generations = 1

    def check(self, run) -> None:
        if self.source is None and run.target is None:
            raise ConfigError("regime given needs settings.source or a target")
        source_path(*self.spec(run))

    def spec(self, run) -> tuple[str, str]:
        """``(spec, where)``: the source, else the run's target, and the field that named it."""
        return (self.source, "settings.source") if self.source is not None else (run.target, "target")


class GivenSearch:
    """``api.Search`` that returns one fixed net."""

    def __init__(self, net, genome, resolution: int):
        self.net, self.genome, self.resolution = net, genome, resolution

    def init(self, key):
        return jnp.zeros((), jnp.int32)

    def step(self, state):
        return state + 1, {"evaluations": jnp.zeros((), jnp.int32)}

    def result(self, state) -> Result:
        from ferlab.render import render

        image = np.asarray(render(self.net, self.resolution).rgb)
        genomes = {NET_NAME: self.genome} if self.genome is not None else {}
        return Result({NET_NAME: self.net}, {NET_NAME: image}, genomes)


def make_given(run_config, settings: GivenConfig) -> GivenSearch:
    """The search for a run config (anything with ``target`` and ``resolution``)."""
    settings.check(run_config)
    net, genome = load_source(*settings.spec(run_config))
    return GivenSearch(net, genome, run_config.resolution)


REGIME = Regime(
    name="given",
    config=GivenConfig,
    make=make_given,
    smallest={"target": "picbreeder:skull", "resolution": 8, "checkpoint_every": 1},
)
