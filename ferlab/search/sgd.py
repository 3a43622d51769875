"""The SGD baseline: the paper's "imposter" networks, trained to paint a target image.

The recipe of Kumar et al. (2025) is the default: Flax default (LeCun normal)
init, no biases, MSE in RGB to the target, the gradient divided by its global
L2 norm before each Adam step (lr 3e-3), 100,000 steps (at 256x256 in the
paper; the run's resolution sets it, 64x64 by default). Any number of seeds
train together: nets are one batched DenseNet, the step is vmapped, and a
generation is ``steps_per_generation`` steps under one ``lax.scan``. Every
step's loss is kept in the state (so in checkpoints) and written as
``losses.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from ferlab.config import ConfigError
from ferlab.cppn import DenseNet, init_nets
from ferlab.render import render
from ferlab.search.api import Result
from ferlab.search.targets import load_arch, load_target, mse


@dataclass(frozen=True)
class SGDConfig:
    """Optimizer steps (total and per generation), Adam learning rate, gradient
    normalisation and the number of seeds trained side by side."""

    steps: int = 100_000
    steps_per_generation: int = 100
    learning_rate: float = 3e-3
    normalize_gradient: bool = True
    seeds: int = 1

    def __post_init__(self):
        for name in ("steps", "steps_per_generation", "seeds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.steps % self.steps_per_generation:
            raise ValueError(f"steps ({self.steps}) must be a multiple of steps_per_generation "
                             f"({self.steps_per_generation})")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")

    @property
    def generations(self) -> int:
        return self.steps // self.steps_per_generation

    def check(self, run):
        if run.target is None:
            raise ConfigError("regime sgd needs a target")
        if run.generations is not None and run.generations != self.generations:
            raise ConfigError(f"regime sgd runs settings.steps / settings.steps_per_generation = "
                              f"{self.generations} generations; leave generations unset (got {run.generations})")


def seed_keys(key: jax.Array, seeds: int) -> jax.Array:
    """One key per seed; seed i's key does not depend on how many seeds run."""
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(seeds))


def optimizer(settings: SGDConfig) -> optax.GradientTransformation:
    return optax.adam(settings.learning_rate)


def train(nets: DenseNet, opt_state, target: jax.Array, settings: SGDConfig, n_steps: int):
    """``n_steps`` steps for a batch of nets (leading seed axis): ``(nets, opt_state, losses (n_steps, seeds))``.

    Each step's loss is measured before that step's update.
    """
    size = target.shape[0]
    opt = optimizer(settings)

    def loss(net: DenseNet) -> jax.Array:
        return mse(render(net, size).rgb, target)

    def step(carry, _):
        nets, opt_state = carry
        values, grads = jax.vmap(jax.value_and_grad(loss))(nets)
        if settings.normalize_gradient:
            norm = jnp.sqrt(sum(jnp.sum(g * g, axis=(-2, -1)) for g in jax.tree.leaves(grads)))
            grads = jax.tree.map(lambda g: g / jnp.maximum(norm, 1e-12)[:, None, None], grads)
        updates, opt_state = opt.update(grads, opt_state, nets)
        return (optax.apply_updates(nets, updates), opt_state), values

    (nets, opt_state), losses = jax.lax.scan(step, (nets, opt_state), None, length=n_steps)
    return nets, opt_state, losses


@struct.dataclass
class SGDState:
    nets: DenseNet
    opt_state: optax.OptState
    step: jax.Array
    losses: jax.Array  # (steps, seeds); NaN where not yet trained


class SGDSearch:
    """Seeds trained side by side by normalised-gradient Adam (``api.Search``)."""

    def __init__(self, settings: SGDConfig, arch, target):
        self.settings = settings
        self.arch = arch
        self.target = jnp.asarray(target)
        self.init = jax.jit(self._init)
        self.step = jax.jit(self._step)

    def _init(self, key):
        nets = init_nets(self.arch, seed_keys(key, self.settings.seeds))
        losses = jnp.full((self.settings.steps, self.settings.seeds), jnp.nan, jnp.float32)
        return SGDState(nets, optimizer(self.settings).init(nets), jnp.zeros((), jnp.int32), losses)

    def _step(self, state: SGDState):
        n = self.settings.steps_per_generation
        nets, opt_state, losses = train(state.nets, state.opt_state, self.target, self.settings, n)
        record = jax.lax.dynamic_update_slice(state.losses, losses, (state.step, 0))
        last = losses[-1]
        stats = {"loss": jnp.mean(last), "best_loss": jnp.min(last), "worst_loss": jnp.max(last)}
        return SGDState(nets, opt_state, state.step + n, record), stats

    def result(self, state: SGDState) -> Result:
        """``seed_i``: each seed's trained net."""
        images = np.asarray(render(state.nets, self.target.shape[0]).rgb)
        names = [f"seed_{i}" for i in range(self.settings.seeds)]
        nets = {name: jax.tree.map(lambda k, i=i: k[i], state.nets) for i, name in enumerate(names)}
        return Result(nets, {name: images[i] for i, name in enumerate(names)})

    def tables(self, state: SGDState) -> dict:
        """``losses``: every step's loss per seed."""
        done = int(state.step)
        losses = np.asarray(state.losses[:done])
        return {"losses": {"step": np.arange(done), **{f"seed_{i}": losses[:, i] for i in range(losses.shape[1])}}}


def make_sgd(run_config, settings: SGDConfig) -> SGDSearch:
    arch = load_arch(run_config.arch)
    return SGDSearch(settings, arch, load_target(run_config.target, run_config.resolution))
