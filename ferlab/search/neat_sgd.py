"""Hybrid NEAT: NEAT whose genomes' weights are also trained by gradient (Adam) towards the target.

NEAT finds topologies slowly and weights worse: on the skull at 32x32 plain
NEAT plateaus at MSE 0.05-0.08 whoever implements it. Here every
``train_every`` generations each genome of the population is trained for
``train_steps`` Adam steps on its link weights, through a differentiable form
of NEAT's own painter (``paint_trainable``: the same topological order and the
same activations as ``neat_genome.paint``, with each node's inputs read as one
row of a dense weight matrix so that reverse-mode differentiation works (the
painter's per-link loops have traced lengths), and a hand-written gradient,
``node_values``). Genomes are trained one after another (``lax.map``,
``train_batch`` at a time vmapped), each with a fresh Adam state; weights stay
within +-``neat.weight_max`` and only enabled links train. ``train_resolution``
trains on a coarser pixel grid (the target as ``load_target`` gives it at that
size) than the run scores on: the weights fit the same function at fewer
samples, for a fraction of the cost (the dense form costs max_nodes^2 x pixels
per genome-step). ``train_pixels`` instead trains each Adam step on that many
pixels drawn at random (with replacement, fresh each step and genome) from the
training grid: the cost of a coarse grid, without losing the fine detail that a
coarse grid cannot see.

Adam's first steps move every weight by about the learning rate whatever the
gradient, and each genome's Adam state is fresh every generation, so a constant
rate sets a floor on how finely weights settle. ``final_learning_rate`` decays
the rate geometrically from ``learning_rate`` to it over ``decay_generations``
generations (then holds it).

``lamarckian: true`` (default): the trained weights replace the genome's, so
offspring inherit them. ``false`` (Baldwinian): the trained copies are only
scored (their fitness, the champion and the ladder's snapshots are theirs)
while the untrained genomes breed.

A generation is NEAT's step (``neat.neat_step``) on the trained population;
``evaluations`` counts both the paintings NEAT scores and every genome-step of
training (as SGD counts seed-steps). The result is NEAT's: the champion and
the loss ladder's ``rung_<value>`` snapshots, as genomes and layerized nets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import optax
from flax import struct

from ferlab import limits
from ferlab.config import ConfigError
from ferlab.cppn import dot
from ferlab.render import colour, grid
from ferlab.search import ladder as ladders
from ferlab.search.api import Regime, Result
from ferlab.search.neat import NEAT, STREAMS, NEATState, neat_step
from ferlab.search.neat import REGIME as NEAT_REGIME
from ferlab.search.neat_config import NEATConfig
from ferlab.activations import CPPN_FUNCTIONS
from ferlab.search.neat_genome import N_INPUTS, Genomes, output_labels, topological_order
from ferlab.search.targets import load_target


@dataclass(frozen=True)
class NeatSGDConfig:
    """NEAT's settings (``neat:``, fitness must be ``target``) and the gradient training of
    every genome: every ``train_every`` generations, ``train_steps`` Adam steps at
    ``learning_rate`` (decaying to ``final_learning_rate`` over ``decay_generations`` when set),
    ``train_batch`` genomes vmapped at a time; ``lamarckian`` or Baldwinian."""

    neat: NEATConfig = field(default_factory=NEATConfig)
    train_every: int = 1
    train_steps: int = 10
    learning_rate: float = 0.03
    final_learning_rate: float | None = None
    decay_generations: int = 1000
    train_batch: int = 1
    lamarckian: bool = True
    train_resolution: int | None = None
    train_pixels: int | None = None

    def __post_init__(self):
        for name in ("train_every", "train_steps", "train_batch", "decay_generations"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.learning_rate < 10:
            raise ValueError(f"learning_rate must be in (0, 10), got {self.learning_rate}")
        if self.final_learning_rate is not None and not 0 < self.final_learning_rate < 10:
            raise ValueError(f"final_learning_rate must be in (0, 10), got {self.final_learning_rate}")
        if self.neat.fitness != "target":
            raise ValueError(f"neat.fitness must be 'target' (the gradient needs a target), got {self.neat.fitness!r}")
        if self.train_resolution is not None and not 2 <= self.train_resolution <= limits.MAX_SIDE:
            raise ValueError(f"train_resolution must be in [2, {limits.MAX_SIDE}], got {self.train_resolution}")
        if self.train_pixels is not None and not 1 <= self.train_pixels <= 1 << 20:
            raise ValueError(f"train_pixels must be in [1, 2^20], got {self.train_pixels}")
        if self.neat.population_size % self.train_batch:
            raise ValueError(
                f"train_batch ({self.train_batch}) must divide neat.population_size ({self.neat.population_size})"
            )

    @property
    def generations(self) -> int:
        return self.neat.generations

    def rate(self, generation: jax.Array) -> jax.Array:
        """The learning rate at ``generation``: ``learning_rate``, decayed geometrically to
        ``final_learning_rate`` over ``decay_generations`` when that is set."""
        if self.final_learning_rate is None:
            return jnp.asarray(self.learning_rate, jnp.float32)
        done = jnp.minimum(generation / self.decay_generations, 1.0)
        return self.learning_rate * (self.final_learning_rate / self.learning_rate) ** done

    def check(self, run):
        if run.target is None:
            raise ConfigError("regime neat_sgd needs a target")
        if self.train_resolution is not None and self.train_resolution > run.resolution:
            raise ConfigError(
                f"settings.train_resolution ({self.train_resolution}) exceeds the run's resolution ({run.resolution})"
            )


def raw_outputs(g: Genomes, inputs: jax.Array, n_out: int) -> jax.Array:
    """Raw outputs ``(pixels, n_out)`` of one genome on grid inputs ``(pixels, 4)``, differentiably.

    Nodes are visited in ``neat_genome.paint``'s topological order for a fixed
    ``max_nodes`` steps (steps past the genome's node count change nothing);
    each node reads its row of the dense matrix of enabled-link weights.
    """
    order, count = topological_order(g)
    n = g.max_nodes
    weights = jnp.zeros((n, n), jnp.float32).at[g.link_dst, g.link_src].add(jnp.where(g.live_links(), g.link_w, 0.0))
    values = node_values(weights, inputs.T, order, count, g.node_act)
    return values[N_INPUTS : N_INPUTS + n_out].T


def _activate(act: jax.Array, z: jax.Array) -> jax.Array:
    return jax.lax.switch(act, CPPN_FUNCTIONS, z)


def _forward(weights, inputs, order, count, acts):
    """Every node's value and pre-activation ``(max_nodes, pixels)``, visiting nodes in ``order``."""
    n = weights.shape[0]
    values = jnp.zeros((n, inputs.shape[1]), jnp.float32).at[:N_INPUTS].set(inputs)

    def visit(carry, r):
        values, pre = carry
        slot = order[r]
        z = dot(weights[slot], values)
        live = r < count
        values = values.at[slot].set(jnp.where(live, _activate(acts[slot], z), values[slot]))
        pre = pre.at[slot].set(jnp.where(live, z, pre[slot]))
        return (values, pre), None

    (values, pre), _ = jax.lax.scan(visit, (values, jnp.zeros_like(values)), jnp.arange(n))
    return values, pre


@jax.custom_vjp
def node_values(weights, inputs, order, count, acts):
    """Every node's value ``(max_nodes, pixels)`` of the graph ``weights[dst, src]`` on ``inputs (4, pixels)``.

    The gradient is hand-written (reverse-mode backpropagation through the
    graph, in reverse topological order): autodiff of the visiting loop would
    keep the whole ``(max_nodes, pixels)`` value table once per node, and that
    memory traffic, not arithmetic, was most of hybrid NEAT's training time.
    Both passes read each node's row once: O(max_nodes^2 x pixels) work and
    O(max_nodes x pixels) memory.
    """
    return _forward(weights, inputs, order, count, acts)[0]


def _node_values_fwd(weights, inputs, order, count, acts):
    values, pre = _forward(weights, inputs, order, count, acts)
    return values, (weights, values, pre, order, count, acts)


def _node_values_bwd(residuals, cotangent):
    weights, values, pre, order, count, acts = residuals
    n = weights.shape[0]

    def back(carry, r):
        grad_values, grad_pre = carry  # d loss / d node value, d loss / d pre-activation
        slot = order[r]
        z = pre[slot]
        slope = jax.jvp(lambda x: _activate(acts[slot], x), (z,), (jnp.ones_like(z),))[1]
        d = jnp.where(r < count, slope * grad_values[slot], 0.0)
        grad_values = grad_values + weights[slot][:, None] * d[None, :]
        return (grad_values, grad_pre.at[slot].set(d)), None

    start = (cotangent, jnp.zeros_like(cotangent))
    (grad_values, grad_pre), _ = jax.lax.scan(back, start, jnp.arange(n)[::-1])
    # a node's row of weights reads only nodes visited before it, whose values are final by then
    return dot(grad_pre, values.T), grad_values[:N_INPUTS], None, None, None


node_values.defvjp(_node_values_fwd, _node_values_bwd)


def paint_trainable(g: Genomes, size: int, ink: bool) -> jax.Array:
    """RGB ``(size, size, 3)`` of one genome, as ``neat_genome.paint`` paints it, differentiable in its weights."""
    return paint_pixels(g, grid(size).reshape(-1, 4), ink).reshape(size, size, 3)


def paint_pixels(g: Genomes, inputs: jax.Array, ink: bool) -> jax.Array:
    """RGB ``(pixels, 3)`` of one genome at grid inputs ``(pixels, 4)``, as ``paint_trainable`` paints them."""
    raw = raw_outputs(g, inputs, len(output_labels(ink)))
    if ink:
        return jnp.broadcast_to(jnp.clip(jnp.abs(raw), 0.0, 1.0), (inputs.shape[0], 3))
    return colour(raw)


def train_genomes(
    pop: Genomes, target: jax.Array, settings: NeatSGDConfig, key: jax.Array | None = None, generation=0
) -> tuple[Genomes, jax.Array]:
    """``(trained population, each genome's loss after training)``: Adam on every genome's link weights
    at ``settings.rate(generation)`` (on random pixel minibatches drawn with ``key`` when
    ``settings.train_pixels`` is set)."""
    size, ink, limit = target.shape[0], settings.neat.ink, settings.neat.weight_max
    opt = optax.adam(settings.rate(jnp.asarray(generation, jnp.float32)))
    inputs, colours = grid(size).reshape(-1, 4), target.reshape(-1, 3)
    batch = settings.train_pixels
    key = jax.random.PRNGKey(0) if key is None else key

    def loss(w, g, pick):
        x, y = (inputs, colours) if pick is None else (inputs[pick], colours[pick])
        return jnp.mean((paint_pixels(g.replace(link_w=w), x, ink) - y) ** 2)

    def train_one(args):
        g, k = args

        def step(carry, k_step):
            w, opt_state = carry
            pick = None if batch is None else jax.random.randint(k_step, (batch,), 0, inputs.shape[0])
            grads = jax.grad(loss)(w, g, pick)
            updates, opt_state = opt.update(grads, opt_state, w)
            return (jnp.clip(optax.apply_updates(w, updates), -limit, limit), opt_state), None

        keys = jax.random.split(k, settings.train_steps)
        (w, _), _ = jax.lax.scan(step, (g.link_w, opt.init(g.link_w)), keys)
        return g.replace(link_w=w), loss(w, g, None)

    keys = jax.random.split(key, pop.link_w.shape[0])
    return jax.lax.map(train_one, (pop, keys), batch_size=settings.train_batch)


@struct.dataclass
class NeatSGDState:
    neat: NEATState
    trained: jax.Array  # genome-steps of training so far (evaluations beyond NEAT's paintings)


@partial(jax.jit, static_argnames=("settings", "resolution"))
def hybrid_step(
    state: NeatSGDState, target: jax.Array, train_target: jax.Array, settings: NeatSGDConfig, resolution: int
):
    """One generation: train the due genomes' weights towards ``train_target``, then NEAT's step
    scored on ``target``. The targets are arguments, not constants of the compiled call: a run of
    another image then loads it from the compile cache instead of compiling it again (about 15 s
    on 2 cores, every neat_sgd trial of a study)."""
    s, neat = settings, state.neat
    due = neat.generation % s.train_every == 0
    k_train = jax.random.fold_in(neat.key, STREAMS)  # apart from the keys neat_step splits from it
    trained = jax.lax.cond(
        due, lambda p: train_genomes(p, train_target, s, k_train, neat.generation)[0], lambda p: p, neat.pop
    )
    done = state.trained + jnp.where(due, s.neat.population_size * s.train_steps, 0)
    if s.lamarckian:
        new, stats = neat_step(neat.replace(pop=trained), target, s.neat, resolution)
    else:
        new, stats = neat_step(neat, target, s.neat, resolution, trained)
    evaluations = stats["evaluations"] + done
    ladder = new.ladder  # rungs reached this generation: count the training's evaluations too
    ladder = ladder.replace(
        evaluations=jnp.where(ladder.generation == neat.generation, evaluations, ladder.evaluations)
    )
    stats |= {"evaluations": evaluations, "trained": due}
    return NeatSGDState(new.replace(ladder=ladder), done), stats


class NeatSGD:
    """The hybrid regime (``api.Search``); NEAT's result, islands and ladder are reused as they are."""

    def __init__(
        self, settings: NeatSGDConfig, resolution: int, target, rungs=ladders.DEFAULT_RUNGS, train_target=None
    ):
        self.settings = settings
        self.neat = NEAT(settings.neat, resolution, target, rungs)
        self.train_target = self.neat.target if train_target is None else jnp.asarray(train_target, jnp.float32)

    def init(self, key: jax.Array) -> NeatSGDState:
        return NeatSGDState(self.neat.init(key), jnp.zeros((), jnp.float32))

    def step(self, state: NeatSGDState):
        return hybrid_step(state, self.neat.target, self.train_target, self.settings, self.neat.resolution)

    def result(self, state: NeatSGDState) -> Result:
        """NEAT's result: ``best`` (champion) and ``rung_<value>`` snapshots, with genomes and losses."""
        return self.neat.result(state.neat)

    def tables(self, state: NeatSGDState) -> dict:
        return self.neat.tables(state.neat)

    # Island model: NEAT's, on the inner state.
    def join_islands(self, state: NeatSGDState, index: int, count: int) -> NeatSGDState:
        return state.replace(neat=self.neat.join_islands(state.neat, index, count))

    def emigrant(self, state: NeatSGDState):
        return self.neat.emigrant(state.neat)

    def immigrate(self, state: NeatSGDState, genome, fitness) -> NeatSGDState:
        return state.replace(neat=self.neat.immigrate(state.neat, genome, fitness))


def make_neat_sgd(run_config, settings: NeatSGDConfig) -> NeatSGD:
    target = load_target(run_config.target, run_config.resolution)
    coarse = None
    if settings.train_resolution is not None and settings.train_resolution != run_config.resolution:
        coarse = load_target(run_config.target, settings.train_resolution)
    return NeatSGD(settings, run_config.resolution, target, run_config.ladder, coarse)


REGIME = Regime(
    name="neat_sgd",
    config=NeatSGDConfig,
    make=make_neat_sgd,
    population=("neat", "population_size"),
    smallest={  # plain NEAT's smallest run, its weights trained every other generation
        **NEAT_REGIME.smallest,
        "settings": {"train_steps": 2, "train_every": 2, "neat": NEAT_REGIME.smallest["settings"]},
    },
)
