"""The SGD baseline: the paper's "imposter" networks, trained to paint a target image.

The recipe of Kumar et al. (2025) is the default: Flax default (LeCun normal)
init, no biases, MSE in RGB to the target, the gradient divided by its global
L2 norm before each Adam step (lr 3e-3), 100,000 steps (at 256x256 in the
paper; the run's resolution sets it, 64x64 by default). Any number of seeds
train together: nets are one batched DenseNet and a generation is
``steps_per_generation`` steps under one ``lax.scan``. On a CPU each seed's
gradient is computed on its own, one seed after another (``one_by_one``): XLA's
batched matmuls and their gradients run slower there than single ones (one
seed 1.8x faster at 64x64 than as a batch of one, 8 seeds 1.5x; ``bench/sgd.py``),
and a seed then trains bit for bit as it would alone. On other platforms the
seeds are vmapped. Every step's loss is kept in the state (so in checkpoints)
and written as ``losses.csv``, and the loss ladder takes the best seed's net at
the first step it reaches a rung (a generation's end is often past several).

Training is chaotic at float precision: Adam's near-sign steps on tiny
gradient components turn a last-bit difference into different networks within
~10 steps. So the gradient's norm is one reduction over each seed's flat
gradient (per-kernel sums summed rounded differently for 1 and for 8 seeds).
Vmapped (off a CPU), from 32x32 XLA contracts a weight gradient's pixels in
another order for a batch than for one net, so gradients agree only to float32
rounding (~6e-7 of their norm) and the seeds then drift from their vmapped twins
exactly as far as a single run drifts when its init is nudged by one ulp
(``bench/seed_drift.py``).

``warmup_steps`` ramps the learning rate linearly from 0 (the paper has no
warmup, so the default is 0). Without it Adam's first steps move every weight
by the full learning rate at once; on deep, mostly-cache architectures (the
16-layer butterfly) most seeds then saturate to a white, grey-free image
within 3 steps, where the colour clips make the gradient exactly 0 for good.
100 warmup steps let all of them train; the studies use it.

``straight_through`` passes the loss gradient through the colour's clips
where it pulls a clipped output back towards [0, 1] (a one-sided
straight-through estimator: the picture and the loss are unchanged; outside
the range d colour / d output is taken as 1 when a descent step would move the
output back, 0 when it would move it further out). Without it a mostly white
target is a trap even with warmup: once |brightness| >= 1 at every pixel the
picture is all white, every gradient is exactly 0 and the seed never moves
again (on 765_PlaneOnRunway, 85% white, 5 of 6 seeds were all white within
600 steps). With it a saturated pixel that should be darker pulls its output
back, one that should be white has no error and no pull. The two-sided
estimator (gradient 1 both ways) let clipped outputs drift outward without
bound: on 542_GhostFaceSpooky 2 of 3 seeds blew up after 8,000-9,500 steps
(one to NaN), which the plain clips never do. The paper has no such
estimator, so the default is off.

``mask_from`` restricts training to the non-zero weights of another net of
the same architecture (e.g. a Picbreeder genome's dense net): masked weights
start at 0 and stay exactly 0, which separates "the weights" from "the search".

``prune_to`` trains sparse copies: gradual magnitude pruning (Zhu and Gupta
2017, "To prune, or not to prune"). Each seed trains dense until ``prune_start``
of its generations, then, at each generation's start until ``prune_end``, keeps
only its largest weights by magnitude, the share kept falling on a cubic from 1
to ``prune_to`` (of the weights it may train: all, or the mask's), and trains
on at that share. ``prune_score: lamp`` ranks the weights by LAMP (Lee et al.
2021) instead of plain magnitude, which never prunes a layer away, as plain
magnitude does at a few percent of the weights (``lamp_scores``). The kept set
is recomputed from the weights each generation (pruned weights are exactly 0),
so the state and checkpoints are as for a dense run. It is the control for a
net's sparsity at equal fit: SGD from a random start on a Picbreeder net's own
wiring (``mask_from``) stalls far from the image (MSE 0.035-0.045 on the
skull at 32x32 after 20,000 steps, also with each unit's init scaled to its own
fan-in), and random sparse nets paint nearly flat pictures
(``bench/size_bias.py``), while a dense copy pruned while it trains keeps the
picture. The ladder takes snapshots only once the pruning is done, so every
rung compares nets at the final sparsity.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from ferlab import limits
from ferlab.config import ConfigError
from ferlab.cppn import Architecture, DenseNet, init_nets
from ferlab.render import batch_rgb, colour, on_cpu, picture, render
from ferlab.search import ladder as ladders
from ferlab.search.api import Regime, Result, fused_loop
from ferlab.search.targets import image_losses, load_arch, load_source, load_target, mse


@dataclass(frozen=True)
class SGDConfig:
    """Optimizer steps (total and per generation), Adam learning rate and its
    linear warmup, gradient normalisation, the straight-through colour clips,
    the number of seeds trained side by side and an optional net/genome spec
    whose non-zero weights are the only ones trained; optionally the share of
    those weights each seed keeps by gradual magnitude pruning, the window
    (shares of the generations) over which it prunes, and the score it ranks
    the weights by (``PRUNE_SCORES``)."""

    steps: int = 100_000
    steps_per_generation: int = 100
    learning_rate: float = 3e-3
    warmup_steps: int = 0
    normalize_gradient: bool = True
    straight_through: bool = False
    seeds: int = 1
    mask_from: str | None = None
    prune_to: float | None = None
    prune_start: float = 0.2
    prune_end: float = 0.7
    prune_score: str = "magnitude"

    def __post_init__(self):
        for name in ("steps", "steps_per_generation", "seeds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.steps % self.steps_per_generation:
            raise ValueError(
                f"steps ({self.steps}) must be a multiple of steps_per_generation ({self.steps_per_generation})"
            )
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be at least 0, got {self.warmup_steps}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        limits.POPULATION.check(self.seeds, "seeds", ValueError)
        if self.prune_to is not None and not 0 < self.prune_to < 1:
            raise ValueError(f"prune_to is the share of weights kept, in (0, 1); got {self.prune_to}")
        if not 0 <= self.prune_start < self.prune_end <= 1:
            raise ValueError(
                f"prune_start and prune_end need 0 <= prune_start < prune_end <= 1; "
                f"got {self.prune_start} and {self.prune_end}"
            )
        if self.prune_score not in PRUNE_SCORES:
            raise ValueError(f"prune_score is one of {', '.join(PRUNE_SCORES)}; got {self.prune_score!r}")
        if self.prune_to is not None and self.prune_window[1] >= self.generations:
            raise ValueError(
                f"pruning ends at generation {self.prune_window[1]} of {self.generations}: the seeds would end "
                f"unpruned; lower prune_end or run more generations (steps / steps_per_generation)"
            )
        limits.LOSS_HISTORY.check(self.steps * self.seeds, "steps x seeds", ValueError)

    @property
    def generations(self) -> int:
        return self.steps // self.steps_per_generation

    @property
    def prune_window(self) -> tuple[int, int]:
        """The generations at whose start pruning begins and ends (the final share from then on)."""
        g = self.generations
        start = int(round(self.prune_start * g))
        return start, max(int(round(self.prune_end * g)), start + 1)

    def check(self, run):
        if run.target is None:
            raise ConfigError("regime sgd needs a target")
        if run.generations is not None and run.generations != self.generations:
            raise ConfigError(
                f"regime sgd runs settings.steps / settings.steps_per_generation = "
                f"{self.generations} generations; leave generations unset (got {run.generations})"
            )
        if self.mask_from is not None:
            mask_of(self.mask_from, load_arch(run.arch))


def mask_of(spec: str, arch) -> DenseNet:
    """1 where the dense net of ``spec`` (file or shortcut) has a non-zero weight, else 0."""
    where = "settings.mask_from"
    net = load_source(spec, where)[0]
    if net.arch != arch:
        raise ConfigError(f"{where}: {spec} has architecture {net.arch}, the run trains {arch}")
    return jax.tree.map(lambda k: (k != 0).astype(jnp.float32), net)


def seed_keys(key: jax.Array, seeds: int) -> jax.Array:
    """One key per seed; seed i's key does not depend on how many seeds run."""
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(seeds))


def optimizer(settings: SGDConfig) -> optax.GradientTransformation:
    rate = settings.learning_rate
    if settings.warmup_steps:
        rate = optax.linear_schedule(0.0, rate, settings.warmup_steps)
    return optax.adam(rate)


def train(
    nets: DenseNet, opt_state, target: jax.Array, settings: SGDConfig, n_steps: int, mask: DenseNet | None = None
):
    """``n_steps`` steps for a batch of nets (leading seed axis): ``(nets, opt_state, losses (n_steps, seeds))``.

    Each step's loss is measured before that step's update. With ``mask`` (0/1
    kernels, no seed axis) gradients and updates are zero where it is 0.
    """
    step = sgd_step(target, settings, mask)

    def body(carry, _):
        nets, opt_state, values = step(*carry)
        return (nets, opt_state), values

    (nets, opt_state), losses = jax.lax.scan(body, (nets, opt_state), None, length=n_steps)
    return nets, opt_state, losses


def sgd_step(target: jax.Array, settings: SGDConfig, mask: DenseNet | None = None):
    """One step for a batch of nets: ``(nets, opt_state) -> (nets, opt_state, losses (seeds,))``, each
    loss that of the net given (before its update); see ``train``."""
    size = target.shape[0]
    opt = optimizer(settings)

    def loss(net: DenseNet) -> jax.Array:
        image = picture(net, size)
        return mse(straight_through_colour(image.hsv) if settings.straight_through else image.rgb, target)

    def step(nets, opt_state):
        each = jax.value_and_grad(loss)
        values, grads = one_by_one(each, nets) if on_cpu() else jax.vmap(each)(nets)
        grads = masked(grads, mask)
        if settings.normalize_gradient:
            norm = jnp.linalg.norm(grads.flat(), axis=-1)  # one reduction per seed: see the module doc
            grads = jax.tree.map(lambda g: g / jnp.maximum(norm, 1e-12)[:, None, None], grads)
        updates, opt_state = opt.update(grads, opt_state, nets)
        return optax.apply_updates(nets, masked(updates, mask)), opt_state, values

    return step


def one_by_one(fn, batch):
    """``fn`` of each element of ``batch`` (leading axis), one after another, stacked.

    A ``lax.map`` of one element is inlined by XLA and then compiled with its surroundings, which
    rounds differently from the loop body of a longer map; the trip count is hidden from XLA
    (``optimization_barrier``), so the body compiles alike for every batch size and an element's
    result does not depend on how many share the call. ``fn`` is jitted so that the output's shapes
    and the loop's body share one trace (a deep net's loss and gradient take about 0.5 s to trace)."""
    fn = jax.jit(fn)
    n = jax.tree.leaves(batch)[0].shape[0]
    pick = lambda i: jax.tree.map(lambda a: a[i], batch)
    out = jax.tree.map(lambda s: jnp.zeros((n, *s.shape), s.dtype), jax.eval_shape(fn, pick(0)))

    def body(i, acc):
        return jax.tree.map(lambda a, v: a.at[i].set(v), acc, fn(pick(i)))

    return jax.lax.fori_loop(0, jax.lax.optimization_barrier(jnp.int32(n)), body, out)


def straight_through_colour(hsv: jax.Array) -> jax.Array:
    """``render.colour`` with one-sided straight-through clips (same values; see the module doc)."""
    return colour(hsv, clip=_clip_straight_through)


@jax.custom_vjp
def _clip_straight_through(x: jax.Array) -> jax.Array:
    """clip(x, 0, 1), whose gradient outside [0, 1] pulls x back towards [0, 1] and never further out."""
    return jnp.clip(x, 0.0, 1.0)


def _clip_forward(x):
    return jnp.clip(x, 0.0, 1.0), x


def _clip_backward(x, g):
    outward = ((x > 1.0) & (g < 0)) | ((x < 0.0) & (g > 0))  # a descent step would move x further out
    return (jnp.where(outward, 0.0, g),)


_clip_straight_through.defvjp(_clip_forward, _clip_backward)


def masked(nets: DenseNet, mask: DenseNet | None) -> DenseNet:
    return nets if mask is None else jax.tree.map(jnp.multiply, nets, mask)


def kept_share(settings: SGDConfig, generation) -> jax.Array:
    """The share of weights a pruned seed keeps in ``generation`` (Zhu and Gupta's cubic): 1 up to
    the window's start, ``prune_to`` from its end on."""
    start, end = settings.prune_window
    done = jnp.clip((jnp.asarray(generation, jnp.float32) - start) / (end - start), 0.0, 1.0)
    return settings.prune_to + (1.0 - settings.prune_to) * (1.0 - done) ** 3


def lamp_scores(nets: DenseNet) -> jax.Array:
    """Layer-adaptive magnitude scores (Lee et al. 2021, LAMP), flat per net: a weight's square over
    the sum of the squares of the weights of its kernel at least as large (ties: the later in the
    kernel counts as larger). Each kernel's largest weight scores 1, so ranking them globally never
    prunes a layer away, as plain magnitude does at a few percent of the weights: the kernel of the
    smallest weights (on deep CPPNs, the output kernel) goes first and the net paints one colour."""
    parts = []
    for kernel in nets.kernels:
        square = kernel.reshape(*nets.batch_shape, -1) ** 2
        order = jnp.argsort(square, axis=-1, stable=True)
        ascending = jnp.take_along_axis(square, order, axis=-1)
        above = jnp.flip(jnp.cumsum(jnp.flip(ascending, -1), -1), -1)
        score = ascending / jnp.maximum(above, jnp.finfo(jnp.float32).tiny)
        parts.append(jnp.take_along_axis(score, jnp.argsort(order, axis=-1), axis=-1))
    return jnp.concatenate(parts, axis=-1)


PRUNE_SCORES = {"magnitude": lambda nets: jnp.abs(nets.flat()), "lamp": lamp_scores}


def prune_mask(nets: DenseNet, allowed: DenseNet | None, share, score: str = "magnitude") -> DenseNet:
    """Per seed (leading axis), 1 on its highest-scoring weights (``PRUNE_SCORES``: plain magnitude
    or LAMP), ``round(share * m)`` of them (at least 1), where m counts the weights ``allowed`` (0/1,
    no seed axis; None: all); ties go to the earlier weight, and a weight not allowed is never kept."""
    size = PRUNE_SCORES[score](nets)
    if allowed is None:
        m = nets.arch.n_weights
    else:
        ok = allowed.flat() > 0
        size, m = jnp.where(ok, size, -1.0), jnp.sum(ok)
    k = jnp.maximum(jnp.round(share * m), 1).astype(jnp.int32)
    rank = jnp.argsort(jnp.argsort(-size, axis=-1, stable=True), axis=-1)
    return nets.with_flat((rank < k).astype(jnp.float32))


@struct.dataclass
class SGDState:
    nets: DenseNet
    opt_state: optax.OptState
    step: jax.Array
    losses: jax.Array  # (steps, seeds); NaN where not yet trained
    ladder: ladders.Ladder  # the best seed's net at each rung, the first step it reached it


class SGDSearch:
    """Seeds trained side by side by normalised-gradient Adam (``api.Search``).

    The compiled functions live at module level and take the target and the mask as arguments, so
    runs that differ only in those (other images on one architecture, other seeds, a masked run
    beside its plain one) share their compiled programs, in a process and in the on-disk cache: a
    study's trials each compiled their own training step (3 s) and init (2 s) before."""

    def __init__(self, settings: SGDConfig, arch, target, mask: DenseNet | None = None, rungs=ladders.DEFAULT_RUNGS):
        self.settings = settings
        self.rungs = tuple(rungs)
        self.arch = arch
        self.target = jnp.asarray(target)
        self.mask = mask

    def init(self, key) -> SGDState:
        nets = fresh_nets(self.arch, self.settings.seeds, key)
        return _start(nets, self.mask, self.settings, self.rungs)

    def step(self, state: SGDState):
        return _step(state, self.target, self.mask, self.settings)

    def steps(self, state: SGDState, n: int, k: int):
        return _steps(state, self.target, self.mask, n, k, self.settings)

    def result(self, state: SGDState) -> Result:
        """``seed_i``: each seed's trained net; ``rung_<value>``: the best seed's net at each rung reached."""
        names = [f"seed_{i}" for i in range(self.settings.seeds)]
        nets = {name: jax.tree.map(lambda k, i=i: k[i], state.nets) for i, name in enumerate(names)}
        nets |= {name: ladders.snapshot(state.ladder, i) for name, i in ladders.reached(state.ladder)}
        batch = jax.tree.map(lambda *k: jnp.stack(k), *nets.values())
        images = dict(zip(nets, batch_rgb(batch, self.target.shape[0])))
        return Result(nets, images, losses=image_losses(images, self.target))

    def tables(self, state: SGDState) -> dict:
        """``losses``: every step's loss per seed; ``ladder``: the rungs (``ferlab.search.ladder.table``)."""
        done = int(state.step)
        losses = np.asarray(state.losses[:done])
        return {
            "losses": {"step": np.arange(done), **{f"seed_{i}": losses[:, i] for i in range(losses.shape[1])}},
            "ladder": ladders.table(state.ladder),
        }


def fresh_nets(arch: Architecture, seeds: int, key: jax.Array) -> DenseNet:
    """``seeds`` initial nets, seed i's from ``fold_in(key, i)``. The kernels depend only on their
    shapes, so they are drawn for the same depth and width with identity units and compiled once
    for every architecture of that shape (an all-ReLU copy too): drawing a deep net's kernels
    compiles for 2-3 s."""
    shaped = Architecture(arch.n_layers, (("identity", arch.width),))
    return DenseNet(arch, _draw(shaped, seeds, key).kernels)


@partial(jax.jit, static_argnums=(0, 1))
def _draw(arch: Architecture, seeds: int, key: jax.Array) -> DenseNet:
    return init_nets(arch, seed_keys(key, seeds))


@partial(jax.jit, static_argnums=(2, 3))
def _start(nets: DenseNet, mask: DenseNet | None, settings: SGDConfig, rungs: tuple) -> SGDState:
    nets = masked(nets, mask)
    losses = jnp.full((settings.steps, settings.seeds), jnp.nan, jnp.float32)
    ladder = ladders.init(rungs, jax.tree.map(lambda k: k[0], nets))
    return SGDState(nets, optimizer(settings).init(nets), jnp.zeros((), jnp.int32), losses, ladder)


def _generation(state: SGDState, target: jax.Array, mask: DenseNet | None, settings: SGDConfig):
    """One generation: ``steps_per_generation`` steps, the stats, the ladder updated at every step
    with the best seed's net before its update, and once more with the trained nets (pruned seeds:
    first cut to this generation's share, and the ladder only once the pruning is done)."""
    n, seeds = settings.steps_per_generation, settings.seeds
    generation = state.step // n
    nets, pruned = state.nets, True
    if settings.prune_to is not None:
        mask = prune_mask(nets, mask, kept_share(settings, generation), settings.prune_score)
        nets, pruned = masked(nets, mask), generation >= settings.prune_window[1]
    step = sgd_step(target, settings, mask)

    def watch(ladder, losses, nets, evaluations):
        best = jnp.argmin(losses)
        take = jax.tree.map(lambda k: k[best], nets)
        return ladders.update(ladder, jnp.where(pruned, losses[best], jnp.inf), take, generation, evaluations)

    def body(carry, i):
        nets, opt_state, ladder = carry
        new, opt_state, losses = step(nets, opt_state)
        ladder = watch(ladder, losses, nets, (state.step + i + 1) * seeds)
        return (new, opt_state, ladder), losses

    (nets, opt_state, ladder), losses = jax.lax.scan(body, (nets, state.opt_state, state.ladder), jnp.arange(n))
    record = jax.lax.dynamic_update_slice(state.losses, losses, (state.step, 0))
    last = losses[-1]
    evaluations = (state.step + n) * seeds
    stats = {
        "loss": jnp.mean(last),
        "best_loss": jnp.min(last),
        "worst_loss": jnp.max(last),
        "evaluations": evaluations,
    }
    now = mse(render(nets, target.shape[0]).rgb, target)  # the trained nets' own losses
    ladder = watch(ladder, now, nets, evaluations)
    return SGDState(nets, opt_state, state.step + n, record, ladder), stats


_step = jax.jit(_generation, static_argnums=3)


@partial(jax.jit, static_argnums=(4, 5))
def _steps(state: SGDState, target: jax.Array, mask: DenseNet | None, n, k: int, settings: SGDConfig):
    """``n <= k`` generations in one call (``api.fused_loop``)."""
    return fused_loop(lambda s: _generation(s, target, mask, settings), state, n, k)


def make_sgd(run_config, settings: SGDConfig) -> SGDSearch:
    arch = load_arch(run_config.arch)
    mask = None if settings.mask_from is None else mask_of(settings.mask_from, arch)
    return SGDSearch(settings, arch, load_target(run_config.target, run_config.resolution), mask, run_config.ladder)


REGIME = Regime(
    name="sgd",
    config=SGDConfig,
    make=make_sgd,
    smallest={
        "target": "picbreeder:skull",
        "resolution": 8,
        "arch": "2;sin:3,gaussian:3",
        "checkpoint_every": 1,
        "settings": {"steps": 30, "steps_per_generation": 10, "seeds": 2},
    },
)
