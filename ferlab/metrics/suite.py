"""The FER metric suite: every number, its settings, and ``fer_score``.

All metrics are oriented so that higher means more fractured / entangled, and
all lie in [0, 1]. ``fer_score`` is the unweighted mean of the distinct ones
(``SCORED``: in the axis-free form ``sweep_asymmetry`` is ``sweep_fracture``, counted
once). The metrics (each formula is documented where it is computed):

- ``internal_asymmetry``: hidden maps' distance from mirror-(anti)symmetric
  (``features.internal_asymmetry``; constant units dropped, copies merged).
- ``feature_redundancy``: 1 - effective rank / units of the distinct maps
  (``features.rank_redundancy``).
- ``feature_roughness``: level-set curvature of the distinct maps
  (``features.roughness``).
- ``sweep_asymmetry`` / ``sweep_asymmetry_fixed``: antisymmetric share of the
  picture's change over single-weight sweeps at the calibrated step (every
  net's picture moves by the same RMS amount) and at the paper's fixed +-1
  (``symmetry.antisymmetric_share``, energies pooled over the two directions).
- ``random_asymmetry`` / ``random_asymmetry_fixed``: the same over random
  unit-norm directions in the space of the net's existing weights.
- ``sweep_fracture``: 1 - share of change energy in the largest changed region
  (``regions.fracture``), single-weight sweeps at the calibrated step.
- ``sweep_entanglement``: spread of that energy over mirror-merged image parts
  (``regions.spread``).
- ``knob_misalignment``: U(single) / U(random), clipped to [0, 1], where U is the
  mean of asymmetry and fracture at the calibrated step. Single weights of a
  factored net are knobs, far more structured than random mixtures of them
  (ratio well below 1); in a fractured net a weight is as unstructured as a
  random direction (ratio near 1). 0 where U(random) is float noise (no contrast).
- ``compressibility``: share of the architecture's weights that magnitude
  pruning must keep for 30 dB PSNR (``compress.keep_share``).

Pictures with no mirror axis. Eight of these metrics, in the paper's form, read
the picture's mirror axis (the five asymmetries; fracture and entanglement join
mirror pairs; knob_misalignment through them). On a picture with no axis they
measure the picture, not the net, and their numbers cannot be compared across
pictures. So the suite reports them in an axis-free form of the same property,
one formula for every picture:

- ``internal_asymmetry`` -> ``features.internal_mixing``: mean over distinct maps
  of min over the square's symmetries (two mirrors, two diagonal mirrors, the
  half turn) of 2 min(|s|^2, |a|^2) / |f|^2 (``symmetry.best_mixedness``). The
  inputs x, y, d are pure under all of them; features built from them by simple
  functions stay pure under some, whatever the picture.
- each change asymmetry -> the fracture of the same sweeps' changes with no
  mirror pairs joined (``regions.fracture`` with no axis): without an axis, "one
  mirror-coherent change" becomes "one connected change". For single weights at
  the calibrated step this is the axis-free ``sweep_fracture`` itself: both are
  reported, and ``fer_score`` counts that number once.
- ``sweep_fracture`` / ``sweep_entanglement`` -> fracture and spread with no
  mirror pairs joined; ``knob_misalignment`` -> the ratio of those forms.

``MetricsConfig.axis`` "auto" (the default) gives the axis-free forms; "x" or "y"
gives the paper's mirror forms about that axis. ``info`` always holds both
(``axis_free_metrics``, ``axis_metrics`` about the detected axis) and says which
``form`` the metrics are. The choice (axis-free for every picture, rather than
blending the two forms by the picture's asymmetry, and fracture as the change
form rather than the change's best mixedness) was made on the validation set of
``bench/validate_metrics.py`` only, see ``fer_score``. ``info`` also holds the
picture's ``image_complexity`` (``behaviour.complexity``: log10 of its spectral
energy share above 4 cycles per image; smooth gradients and single arcs sit near
-3 and below, the Picbreeder skull near -0.3) and ``image_detail``
(``behaviour.detail``: the RMS amplitude of that fine detail in colour; a
flat, faint or smoothly shaded picture near 0, the Picbreeder pictures
0.08-0.21): a picture with little structure has little to fracture, so reports
give its detail beside fer_score and can leave such images out.

Which weights are swept. Only weights that exist (non-zero): a layerized
Picbreeder net's zeros are absent links, not parameters. If there are more
than ``max_weights`` a random subset is swept (drawn, like the random
directions, from hashes of what each weight connects, so a permuted net gets
the same subset). Weights that cannot move the picture by tau/4 within
``max_step`` are inert and skipped; "cannot" is judged from the gain g, the
picture's RMS change per unit weight by a forward difference of 1e-3
(g max_step < tau/4). A weight whose colours are clipped there has g = 0 and is
inert, even where a step of 0.5 would unclip them. Weights with the same effect
(cosine > ``effect_cos`` of their calibrated change maps: the hops of a cache
chain, split chains) count once; a group is represented by its member with the
largest gain, whose +-1 moves the picture the most.

What the draw moves (``bench/suite_spread.py``, standard deviation over 6 suite
seeds, 64x64): ``fer_score`` by 0.001-0.005 on the paper's skull and butterfly
nets and on random nets, against 0.32-0.35 between the Picbreeder and SGD nets;
the sampled metrics by up to 0.026 on the paper's nets, ``knob_misalignment``
by 0.014-0.024 there (its Picbreeder-SGD gap is 0.078 on the skull) and 0.108 on
random nets, whose swept subset is drawn too. Read those in a group's mean.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
import contextlib
import dataclasses
from dataclasses import dataclass
from functools import partial
import os

import jax
import jax.numpy as jnp
import numpy as np
from threadpoolctl import threadpool_limits

from ferlab import limits
from ferlab.config import from_dict
from ferlab.cppn import DenseNet, stack_nets
from ferlab.errors import FerlabError
from ferlab.metrics import behaviour, compress, features, regions, sweeps
from ferlab.metrics.symmetry import AXES, detect_axis, sym_energies
from ferlab.render import Image, on_cpu, render, render_padded

METRICS = (
    "internal_asymmetry",
    "feature_redundancy",
    "feature_roughness",
    "sweep_asymmetry",
    "sweep_asymmetry_fixed",
    "random_asymmetry",
    "random_asymmetry_fixed",
    "sweep_fracture",
    "sweep_entanglement",
    "knob_misalignment",
    "compressibility",
)

Progress = Callable[[int, int, str], None]
MAX_SWEEPS = 1 << 16  # single-weight sweeps, random directions, sweeps a call: far above the defaults


class DeadNet(FerlabError):
    """A net with nothing to measure: a result of its own (``status: dead``), not a failure.

    A dead ReLU-like copy, a saturated or fully masked net, or one whose training diverged
    (non-finite weights): nothing can be swept, so there is nothing to score; or a net whose every
    feature map is constant, which paints one colour: no part of a picture to represent. Callers
    record the reason instead of scores.
    """


@dataclass(frozen=True)
class MetricsConfig:
    """Settings of the suite (defaults are the ones validated on the Picbreeder nets)."""

    size: int = 64  # picture side in pixels
    axis: str = "auto"  # "auto": axis-free forms; "x" (left-right) or "y" (top-bottom): mirror forms
    rms_step: float = 0.05  # tau: RMS colour change of a calibrated sweep step
    max_step: float = 3.0  # largest calibrated step (CPPN-X's bookend range)
    fixed_step: float = 1.0  # the paper's fixed sweep step
    max_weights: int = 160  # single-weight sweeps at most (a random subset beyond)
    directions: int = 32  # random-direction sweeps
    chunk: int = 64  # pictures rendered per batched call: speed and memory only, never a result
    const_tol: float = 1e-4  # a unit map with smaller std is constant
    dup_cos: float = 0.9999  # |cos| above which two unit maps are one
    effect_cos: float = 0.999  # cos above which two weights' effects are one
    fracture_threshold: float = 0.1  # changed pixel: energy >= this share of the peak
    parts: int = 8  # image parts: cells of a parts x parts grid
    curvature_scale: float = 4.0  # kappa_0 of feature_roughness (curvature of a radius-1/4 circle)
    psnr_db: float = 30.0  # pruning quality bar of compressibility
    keep_grid: int = 64  # candidate keeps in each of compressibility's two search rounds
    seed: int = 0  # weight subset and random directions

    def __post_init__(self):
        checks = [
            (self.size >= 8, "size must be at least 8"),
            (self.size <= limits.MAX_SIDE, f"size must be at most {limits.MAX_SIDE}"),
            (self.axis in ("auto",) + AXES, f"axis must be 'auto', 'x' or 'y', got {self.axis!r}"),
            (self.rms_step > 0 and self.max_step > 0 and self.fixed_step > 0, "steps must be positive"),
            (
                self.max_weights >= 1 and self.directions >= 2 and self.chunk >= 2 and self.chunk % 2 == 0,
                "max_weights must be >= 1, directions >= 2, chunk even (a sweep's +-step share a call)",
            ),
            (self.keep_grid >= 2, "keep_grid must be at least 2"),
            (
                max(self.max_weights, self.directions, self.chunk, self.keep_grid) <= MAX_SWEEPS,
                f"max_weights, directions, chunk and keep_grid must be at most {MAX_SWEEPS}",
            ),
            (0 < self.fracture_threshold < 1, "fracture_threshold must be in (0, 1)"),
            (2 <= self.parts <= self.size, "parts must be between 2 and size"),
            (0 < self.dup_cos <= 1 and 0 < self.effect_cos <= 1, "dup_cos and effect_cos must be in (0, 1]"),
            (self.curvature_scale > 0 and self.psnr_db > 0 and self.const_tol >= 0, "scales must be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise FerlabError(f"metrics config: {message}")

    @classmethod
    def from_dict(cls, data: dict | None) -> MetricsConfig:
        """Build from a mapping (e.g. a YAML section); unknown keys and wrong types are errors."""
        return from_dict(cls, data, "metrics")


SCORED = {
    "axis_free": tuple(name for name in METRICS if name != "sweep_asymmetry"),
    "mirror": METRICS,
}  # the metrics fer_score averages in each form: each distinct quantity once


def fer_score(metrics: dict[str, float], form: str) -> float:
    """The unweighted mean of the suite's distinct metrics in ``form`` (``info["form"]``;
    ``SCORED``), every one in [0, 1], higher = more FER.

    In the axis-free form ``sweep_asymmetry`` is the same number as ``sweep_fracture`` (the
    change's fracture of the same single-weight sweeps), so the mean leaves it out: counted
    twice, as it was before, one quantity weighed 2/11. On the validation set below (the same
    copies) counting it once moved each Picbreeder net's score by -0.001 to -0.022 and its copies'
    mean by 0 to -0.008; every Picbreeder net stayed below its copies' mean, 90-100% of the ten
    lower on each genome, and Pearson r with image asymmetry went from +0.147 to +0.124 over the 8
    distinct nets (a check of the change, made for its structure, not chosen on these figures).
    The mirror form's eleven are distinct.

    How the combination was chosen, on ``bench/validate_metrics.py``'s set only (the shared
    Picbreeder nets against 3 SGD copies each, 64x64; 8 of the 10 genomes had copies then).
    Candidates: the mirror forms blended into the axis-free ones by the picture's asymmetry
    (linear from 0.1 to 0.3, and narrower ramps) or the axis-free forms for every picture; as the
    change form, the change's fracture without mirror, its best mixedness over the square's
    symmetries, or that mixedness measured from the picture's own. Every candidate put each
    Picbreeder net below its copies' mean; they differed in how the Picbreeder nets' scores
    followed their picture's asymmetry. Blends gave Pearson r = +0.71 to +0.97 (the mirror
    forms score a mirrored picture's nets lower than any axis-free form scores anything, so the
    blend itself tracks asymmetry); the axis-free forms with the change's mixedness gave +0.70
    (LetterG's changes are one-sided, so "mixed" under every symmetry: 73% of metrics lower)
    or +0.23 measured from the picture; with the change's fracture +0.20, and 91-100% of the
    metrics lower on every genome. The unweighted mean was kept (no weights fitted).
    Remeasured on all 10 genomes with 8-connected change regions (``regions.components``) and
    copies trained with the one-sided straight-through colour clips (``SGDConfig.straight_through``;
    none of 30 dead): every Picbreeder net below its copies' mean, r = +0.11, 91-100% of the
    metrics lower on 9 genomes and 73% (8 of 11) on 765_PlaneOnRunway (4-connected regions, with
    the two-sided clips' copies: r = +0.07, 765 at 55%). With the copies trained a fixed 20,000
    steps instead of stopping at MSE 0.005, as the paper trains a fixed 100,000 (every live copy
    within MSE 0.0012): r = +0.12, 91-100% on every genome, 765 at 91% (10 of 11); one of
    409_Moonlight's copies diverged (a 33-layer dense net: its forward pass overflowed float32 at
    step 10,267) and is counted lost, so 409 stands on 2 copies. Nothing in the score changed.
    Out of sample, on two Picbreeder genomes none of this saw (2914_Firefly and 4041_Doplhin of the
    CPPN-X repository's CanalizationPicbreederGenomes, 3 copies each, all within MSE 0.0013): each
    below its copies' mean (0.421 against 0.712, 0.449 against 0.739), 9 and 10 of the ten metrics
    lower; with them r(fer_score, image asymmetry) = +0.180 over the 10 distinct nets.
    """
    if form not in SCORED:
        raise ValueError(f"form {form!r}: expected one of {sorted(SCORED)}")
    return float(np.mean([metrics[name] for name in SCORED[form]]))


CHANGE_STATS = ("share", "fracture", "spread", "fracture_free", "spread_free")


def _changes_from(painted: jax.Array, bases: jax.Array, owner: jax.Array, k: int) -> jax.Array:
    """A call's pictures (B K, S, S, 3) as changes (B, K, S, S, 3) from each sweep's net's picture."""
    size = painted.shape[1]
    return painted.reshape(-1, k, size, size, 3) - bases[owner][:, None]


@partial(jax.jit, static_argnames=("k", "threshold", "parts"))
def _sweep_changes(
    painted: jax.Array, bases: jax.Array, owner: jax.Array, which: jax.Array, k: int, threshold: float, parts: int
) -> dict[str, jax.Array]:
    """What the suite keeps of one call's pictures (B K, S, S, 3), B sweeps of K steps each: sweep b
    is net ``owner[b]``'s, changing from its picture ``bases[owner[b]]``, about the mirror axis
    ``AXES[which[b]]``. Per sweep: the antisymmetric share of the change pooled over steps, the
    spread with mirror pairs joined and without, and the energy map and its changed pixels, from
    which ``change_stats`` labels the regions of fracture of the sweeps it reads. Both axes are
    computed for every sweep, so one compiled call serves every mix of nets (each variant costs a
    worker process a compile below the persistent cache's threshold)."""
    changes = _changes_from(painted, bases, owner, k)
    energy = jnp.mean(jnp.sum(jnp.square(changes), axis=-1), axis=1)
    mask = regions.changed(energy, threshold)
    rows = jnp.arange(owner.size)

    def each_own(stat):  # stat(axis) for both axes; each sweep keeps its own axis's
        return jnp.stack([stat(axis) for axis in AXES])[which, rows]

    def share(axis):
        sym, anti = sym_energies(changes, axis)
        return jnp.sum(anti, axis=1) / (jnp.sum(sym + anti, axis=1) + 1e-12)

    return {
        "share": each_own(share),
        "spread": each_own(lambda axis: jax.vmap(lambda e: regions.spread(e, parts, axis))(energy)),
        "spread_free": jax.vmap(lambda e: regions.spread(e, parts, None))(energy),
        "energy": energy,
        "mask": mask,
    }


@partial(jax.jit, static_argnames=("k",))
def _effects(painted: jax.Array, bases: jax.Array, owner: jax.Array, k: int) -> jax.Array:
    """Each sweep's effect, as ``_sweep_changes`` takes its pictures: the change at its first step
    less the change at its second (``sweeps.effect_groups``)."""
    changes = _changes_from(painted, bases, owner, k)
    return changes[:, 0] - changes[:, 1]


@partial(jax.jit, static_argnames=("axis",))
def _fractures_on_device(energy: jax.Array, mask: jax.Array, axis: str) -> tuple[jax.Array, jax.Array]:
    """Fracture about ``axis`` and without a mirror of energy maps (B, S, S) with their changed
    pixels, the regions labelled in XLA (``regions.components_on_device``)."""
    return tuple(regions.largest_share(energy, regions.components_on_device(mask, a)) for a in (axis, None))


@dataclass(frozen=True)
class Changes:
    """What the suite keeps of one shared call over several nets' sweeps (``_sweep_changes``; the
    pictures never leave the device): per sweep, by name, what was computed beside its pictures,
    and its mirror axis (``axes``). The sweeps of the stack's net ``owners[j]`` are rows
    ``bounds[j]:bounds[j + 1]``."""

    owners: tuple[int, ...]
    bounds: np.ndarray
    axes: np.ndarray
    kept: sweeps.Reduced

    def rows(self, owner: int) -> np.ndarray:
        """The rows of the stack's net ``owner``."""
        j = self.owners.index(owner)
        return np.arange(self.bounds[j], self.bounds[j + 1])


def change_stats(changes: Changes, rows: np.ndarray, cfg: MetricsConfig) -> dict[str, np.ndarray]:
    """The ``CHANGE_STATS`` of the sweeps ``rows`` of ``changes``, by name: antisymmetric share of
    the change about the sweep's axis pooled over steps, fracture and spread with mirror pairs joined,
    and the axis-free forms (fracture and spread without a mirror). The regions of just these sweeps
    are labelled, in chunks of ``cfg.chunk`` (one compiled shape): on a CPU on the host, on an
    accelerator in XLA, every chunk dispatched before any is read (the same numbers: ``regions``
    says why the two)."""
    kept, chunk = changes.kept, cfg.chunk
    out = {name: kept.take(name, rows) for name in ("share", "spread", "spread_free")}
    parts = []
    axes = changes.axes[rows]
    for axis in np.unique(axes):
        at = np.flatnonzero(axes == axis)
        for start in range(0, at.size, chunk):
            these = at[start : start + chunk]
            pick = rows[np.resize(these, chunk)]  # the last chunk repeats its rows
            energy, mask = kept.take("energy", pick), kept.take("mask", pick)
            if on_cpu():
                fractures = [regions.largest_share(energy, regions.components(mask, a)) for a in (str(axis), None)]
            else:
                fractures = _fractures_on_device(energy, mask, str(axis))
            parts.append((these, fractures))
    out["fracture"], out["fracture_free"] = (np.zeros(rows.size, np.float32) for _ in range(2))
    for these, fractures in jax.device_get(parts):
        out["fracture"][these], out["fracture_free"][these] = (f[: these.size] for f in fractures)
    return {name: out[name] for name in CHANGE_STATS}


@dataclass(frozen=True)
class SweepSet:
    """Live sweeps: directions (flat indices or vectors), gains, calibrated steps and, from
    ``calibrated_sweeps``, the change of the picture at +-step, (B, 2, S, S, 3). The suite's and a
    Measurement's sweep sets have no changes (None): the suite reduces its pictures where they are
    painted (``Changes``), and a run's many nets measured together would otherwise all hold every
    picture (about 40 MB a net at 64x64)."""

    dirs: np.ndarray
    gain: np.ndarray
    step: np.ndarray
    changes: np.ndarray | None


class _Tracker:
    def __init__(self, progress: Progress | None, total: int):
        self.progress, self.total, self.done = progress, total, 0

    def stage(self, name: str) -> Callable[[int], None]:
        def update(n: int):
            self.done = min(self.done + n, self.total)
            if self.progress:
                self.progress(self.done, self.total, name)

        return update


def _live(
    nets: DenseNet, owners: list[int], dirs: list, bases: list, cfg: MetricsConfig, tick=None, maps=None
) -> list[SweepSet]:
    """Each of nets ``owners`` of the stack ``nets``' live sweeps among ``dirs[i]`` (net ``owners[i]``'s,
    its picture ``bases[i]``), without changes: gain g by a forward difference, rendered in shared calls
    (``maps``: the features of the stack's ``render_padded``, read by single-weight sweeps only), and
    step min(tau / g, max_step). Sweeps whose linear estimate g max_step is under tau / 4 are dropped as
    inert (a weight whose colours are clipped at its value has g = 0, whatever a larger step would do)."""
    h = 1e-3
    owner = np.repeat(owners, [len(d) for d in dirs])
    bounds = np.cumsum([0] + [len(d) for d in dirs])
    errors = sweeps.pictures(
        nets,
        np.concatenate(dirs),
        np.full((owner.size, 1), h),
        cfg.size,
        cfg.chunk,
        tick,
        owner,
        maps,
        errors_from=sweeps.by_slot(owners, bases),
    )
    kept = []
    for i, d in enumerate(dirs):
        gain = np.sqrt(errors[bounds[i] : bounds[i + 1], 0]) / h
        live = gain * cfg.max_step > cfg.rms_step / 4
        step = np.minimum(cfg.rms_step / np.maximum(gain[live], 1e-12), cfg.max_step).astype(np.float32)
        kept.append(SweepSet(d[live], gain[live], step, None))
    return kept


def _changes(
    nets: DenseNet,
    bases: jax.Array,
    owners: list[int],
    dirs: list,
    steps: list,
    axes: list[str],
    cfg: MetricsConfig,
    tick=None,
    maps=None,
    effect: bool = False,
) -> Changes:
    """Nets ``owners`` of the stack ``nets`` (``bases``: the stack's pictures) moved along ``dirs[i]``
    by ``steps[i]`` (B_i, 2), in shared calls, each call's pictures reduced where they are painted
    (``_sweep_changes``, about net ``owners[i]``'s mirror axis ``axes[i]``; ``maps`` as in ``_live``)."""
    counts = [len(d) for d in dirs]
    owner = np.repeat(np.asarray(owners, np.int32), counts)
    axis = np.repeat(np.asarray(axes), counts)
    which = np.array([AXES.index(a) for a in axis], np.int32)

    def reduce(painted, rows):
        out = _sweep_changes(painted, bases, owner[rows], which[rows], 2, cfg.fracture_threshold, cfg.parts)
        return {**out, "effect": _effects(painted, bases, owner[rows], 2)} if effect else out

    moves = np.concatenate(dirs), np.concatenate(steps)
    kept = sweeps.pictures(nets, *moves, cfg.size, cfg.chunk, tick, owner, maps, reduce)
    return Changes(tuple(owners), np.cumsum([0] + counts), axis, kept)


def calibrated_sweeps(net: DenseNet, dirs, base: np.ndarray, cfg: MetricsConfig, tick=None) -> SweepSet:
    """Gain g by a forward difference, step min(tau / g, max_step), pictures at +-step.

    Sweeps that cannot move the picture by tau / 4 within ``max_step`` are dropped as inert.
    """
    stack = stack_nets([net])
    (sweep,) = _live(stack, [0], [np.asarray(dirs)], [base], cfg, tick)
    steps = np.stack([sweep.step, -sweep.step], 1)
    moved = sweeps.pictures(stack, sweep.dirs, steps, cfg.size, cfg.chunk, tick, np.zeros(len(steps), np.int32))
    return dataclasses.replace(sweep, changes=moved - base)


def fixed_changes(net: DenseNet, dirs, base: np.ndarray, cfg: MetricsConfig, tick=None) -> np.ndarray:
    """Change of the picture at the paper's fixed +-step, (B, 2, S, S, 3)."""
    steps, owner = np.tile([cfg.fixed_step, -cfg.fixed_step], (len(dirs), 1)), np.zeros(len(dirs), np.int32)
    return sweeps.pictures(stack_nets([net]), np.asarray(dirs), steps, cfg.size, cfg.chunk, tick, owner) - base


def _stats_many(changes: Changes, rows: list[np.ndarray], cfg: MetricsConfig) -> list[dict]:
    """``change_stats`` of each net's sweeps ``rows[i]`` of ``changes``, the regions labelled together."""
    if not rows:
        return []
    bounds = np.cumsum([0] + [len(r) for r in rows])
    stats = change_stats(changes, np.concatenate(rows), cfg)
    return [{k: v[bounds[j] : bounds[j + 1]] for k, v in stats.items()} for j in range(len(rows))]


def _subset(sweep: SweepSet, rows: np.ndarray) -> SweepSet:
    """The sweeps ``rows`` of ``sweep``."""
    return SweepSet(sweep.dirs[rows], sweep.gain[rows], sweep.step[rows], None)


def _representatives(group: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Index of the largest-gain member of each effect group (the first of equal gains), by group."""
    order = np.lexsort((np.arange(group.size), -gain, group))  # by group, then gain down, then index
    return order[np.r_[True, group[order][1:] != group[order][:-1]]] if group.size else np.zeros(0, int)


@dataclass(frozen=True)
class Measurement:
    """The metrics of one net, facts about how they were measured, and the sweeps behind them
    (directions, gains and steps; their change pictures are not kept)."""

    metrics: dict[str, float]
    info: dict
    single: SweepSet
    representatives: np.ndarray  # indices into ``single`` of the distinct effects
    random: SweepSet

    @property
    def fer_score(self) -> float:
        """``fer_score`` of these metrics in their form."""
        return fer_score(self.metrics, self.info["form"])


@dataclass(frozen=True)
class _Setup:
    """One net's facts before its sweeps: weights, base picture, axis, distinct maps, what to sweep."""

    flat: np.ndarray
    support: np.ndarray
    chosen: np.ndarray
    base: np.ndarray
    axis: str
    base_asymmetry: float | None
    maps: np.ndarray
    random_dirs: np.ndarray


def fer_metrics(
    net: DenseNet, config: MetricsConfig = MetricsConfig(), progress: Progress | None = None
) -> dict[str, float]:
    """Every metric of the suite for one net, ``{name: value}``; see ``measure``."""
    return measure(net, config, progress).metrics


def measure(net: DenseNet, config: MetricsConfig = MetricsConfig(), progress: Progress | None = None) -> Measurement:
    """Run the suite on one net; raises ``DeadNet`` when there is nothing to measure.

    ``progress(done, total, stage)`` is called as work completes (units: pictures rendered).
    """
    (result,) = measure_many([net], config, progress)
    if isinstance(result, DeadNet):
        raise result
    return result


def measure_many(
    nets: list[DenseNet], config: MetricsConfig = MetricsConfig(), progress: Progress | None = None
) -> list[Measurement | DeadNet]:
    """The suite on each of ``nets`` (a run's seeds, a ladder's snapshots): a Measurement per net, or
    the DeadNet that says why it has none. Nets of one architecture are measured together, stage
    by stage: their sweeps' pictures render in shared batched calls (on an accelerator the calls
    of many nets cost little more than one net's; on a CPU it saves the padding of each net's
    last chunk and a call per chunk), in groups of at most ``BATCH_PIXELS`` pixels' worth of nets to
    bound memory. Each net's numbers are those it gets alone."""
    if any(net.batch_shape for net in nets):
        raise FerlabError("fer_metrics takes one net (this one has batch axes)")
    with one_blas_thread(), full_float32():
        return _measure_many(nets, config, progress)


@contextlib.contextmanager
def full_float32():
    """A context (or, called, a decorator) in which matrix products run in true float32 on every
    backend. JAX's default lets a GPU use TF32 (10 mantissa bits): the gains' forward difference at
    h = 1e-3 then drowns in rounding, and the skull net on an H200 kept 139 live weights where a
    CPU keeps 145 (fer_score 0.373 against 0.370). A CPU computes float32 either way, so its
    numbers do not change."""
    with jax.default_matmul_precision("float32"):
        yield


def one_blas_thread():
    """A context in which numpy's BLAS/LAPACK runs on one thread. In a process where XLA's threads
    are running, OpenBLAS's own threads make small calls hundreds of times slower: an eigvalsh of
    264 x 264 took 0.57 s instead of 2 ms (``features.rank_redundancy``, half a study trial's
    scoring time). The suite's numpy work is small matrices; JAX does the heavy work."""
    return threadpool_limits(limits=1, user_api="blas")


# Nets measured together hold their gains' pictures, their single weights' effects and every sweep's
# energy map at once (about 25 MB a net at 64x64; every picture, as the suite once held, was 40 MB):
# at most this many pixels' worth of nets per group (8 nets at 64x64, 2 at 128x128, 1 at 256x256).
BATCH_PIXELS = 8 * 64 * 64


def _measure_many(
    nets: list[DenseNet], config: MetricsConfig, progress: Progress | None
) -> list[Measurement | DeadNet]:
    cfg = config
    flats = [net.host_flat() for net in nets]
    prints = [sweeps.weight_fingerprints(net) for net in nets]  # once a net: its subset and its random directions
    subsets = [
        sweeps.weight_subset(cfg.seed, fp, np.flatnonzero(flat), cfg.max_weights) for fp, flat in zip(prints, flats)
    ]
    tracker = _Tracker(progress, sum(1 + 5 * c.size + 5 * cfg.directions + 2 * cfg.keep_grid for c in subsets))
    out: list = [None] * len(nets)
    by_arch: dict = {}
    for i, net in enumerate(nets):
        by_arch.setdefault(net.arch, []).append(i)
    batch = max(1, BATCH_PIXELS // cfg.size**2)
    for same_arch in by_arch.values():
        for start in range(0, len(same_arch), batch):
            group = same_arch[start : start + batch]
            members = ([seq[i] for i in group] for seq in (nets, flats, subsets, prints))
            for i, result in zip(group, _measure_group(*members, cfg, tracker)):
                out[i] = result
    tracker.stage("done")(tracker.total)
    return out


def _dead(flat: np.ndarray) -> DeadNet | None:
    """Why a net with flat weights ``flat`` has nothing to measure; None if it may have."""
    if not np.all(np.isfinite(flat)):  # e.g. an SGD seed whose training diverged; its picture is NaN
        return DeadNet("the net's weights are not finite (training diverged): nothing to measure")
    if not np.any(flat):
        return DeadNet("the net has no non-zero weights: nothing to measure")
    return None


def _setup(flat: np.ndarray, chosen: np.ndarray, prints: np.ndarray, image: Image, cfg: MetricsConfig) -> _Setup:
    """A live net's facts, from its flat weights, the weights to sweep, their fingerprints and
    ``image``: its picture and feature maps."""
    support = np.flatnonzero(flat)
    axis, base_asymmetry = detect_axis(image.rgb) if cfg.axis == "auto" else (cfg.axis, None)
    return _Setup(
        flat,
        support,
        chosen,
        np.asarray(image.rgb),
        axis,
        base_asymmetry,
        features.distinct_maps(image.features, cfg.const_tol, cfg.dup_cos),
        sweeps.random_directions(cfg.seed, prints, support, cfg.directions),
    )


def _measure_group(
    nets: list[DenseNet],
    flats: list[np.ndarray],
    subsets: list[np.ndarray],
    prints: list[np.ndarray],
    cfg: MetricsConfig,
    tracker: _Tracker,
) -> list[Measurement | DeadNet]:
    """``measure_many`` for nets of one architecture (``flats``: their flat weights, ``subsets``: the
    weights to sweep, ``prints``: the weights' fingerprints); each stage's pictures in shared calls."""
    results: list = [_dead(flat) for flat in flats]

    def alive() -> list[int]:
        return [i for i, r in enumerate(results) if not isinstance(r, DeadNet)]

    live = alive()
    stack = stack_nets([nets[i] for i in live]) if live else None
    slot = {i: k for k, i in enumerate(live)}  # a live net's row in the stack
    # Every live net's picture and maps in one call: the base of its sweeps and pruning, and the
    # maps its single-weight sweeps read.
    image = render_padded(stack, cfg.size, features=True) if live else None
    maps = image.features if live else None
    host = jax.device_get(image)  # each net's share sliced on the host: eager slices compile per shape
    setups = _each(
        lambda i: _setup(flats[i], subsets[i], prints[i], jax.tree.map(lambda a: a[slot[i]], host), cfg), live
    )
    for i, setup in zip(live, setups):
        results[i] = setup
        if setup.maps.shape[0] == 0:  # the maps metrics have no map to read, and the picture is flat
            results[i] = DeadNet("every feature map is constant: the net paints one colour, nothing to measure")
    live = alive()
    tracker.stage("features")(len(nets))

    def live_sweeps(dirs: dict, tick) -> dict[int, SweepSet]:
        if not dirs:
            return {}
        bases, owners = [results[i].base for i in dirs], [slot[i] for i in dirs]
        return dict(zip(dirs, _live(stack, owners, list(dirs.values()), bases, cfg, tick, maps)))

    def changes(sets: dict, fixed: bool, tick, effect: bool = False) -> Changes | None:
        if not sum(len(s.dirs) for s in sets.values()):
            return None
        steps = [
            np.tile([cfg.fixed_step, -cfg.fixed_step], (len(s.dirs), 1)) if fixed else np.stack([s.step, -s.step], 1)
            for s in sets.values()
        ]
        owners, axes, dirs = [slot[i] for i in sets], [results[i].axis for i in sets], [s.dirs for s in sets.values()]
        return _changes(stack, image.rgb, owners, dirs, steps, axes, cfg, tick, maps, effect)

    tick = tracker.stage("weight sweeps")
    single = live_sweeps({i: results[i].chosen.astype(np.int32) for i in live}, tick)
    single_changes = changes(single, False, tick, effect=True)
    for i in live:
        if single[i].dirs.size == 0:
            results[i] = DeadNet("no weight moves the picture: nothing to measure")
    live = alive()

    def representatives(i: int) -> np.ndarray:
        effect = single_changes.kept.take("effect", single_changes.rows(slot[i]))
        return _representatives(sweeps.effect_groups(effect, cfg.effect_cos), single[i].gain)

    reps = dict(zip(live, _each(representatives, live)))
    single_fixed = changes({i: _subset(single[i], reps[i]) for i in live}, True, tick)

    tick = tracker.stage("random directions")
    rand = live_sweeps({i: results[i].random_dirs for i in live}, tick)
    rand_changes = changes(rand, False, tick)
    for i in live:
        if rand[i].dirs.shape[0] == 0:
            results[i] = DeadNet("no random direction moves the picture: nothing to measure")
    live = alive()
    rand_fixed = changes({i: rand[i] for i in live}, True, tick)

    sets = {
        "single": _stats_many(single_changes, [single_changes.rows(slot[i])[reps[i]] for i in live], cfg),
        "single_fixed": _stats_many(single_fixed, [single_fixed.rows(slot[i]) for i in live], cfg),
        "random": _stats_many(rand_changes, [rand_changes.rows(slot[i]) for i in live], cfg),
        "random_fixed": _stats_many(rand_fixed, [rand_fixed.rows(slot[i]) for i in live], cfg),
    }
    tracker.stage("compressibility")(0)
    owners, bases = [slot[i] for i in live], [results[i].base for i in live]
    shares = (
        compress.keep_shares(stack, owners, bases, cfg.size, cfg.psnr_db, cfg.keep_grid, cfg.chunk, maps)
        if live
        else []
    )

    def assemble(k: int) -> Measurement:
        i = live[k]
        means = {name: {s: float(v.mean()) for s, v in stats[k].items()} for name, stats in sets.items()}
        return _assemble(results[i], means, single[i], reps[i], rand[i], shares[k], cfg)

    for i, measurement in zip(live, _each(assemble, range(len(live)))):
        results[i] = measurement
    return results


def _each(fn: Callable, items) -> list:
    """``[fn(x) for x in items]``, the nets' host work side by side on threads: their Gram matrices,
    hashes and map metrics are numpy, LAPACK and XLA calls that release the GIL. On an accelerator
    the suite waits for its host, and this work was more than half of its serial part (8 skull
    seeds, accelerator path on a CPU: 0.50 s on the calling thread, 0.22 s with the threads); each
    net's numbers are the same bits on any thread. (On a 2-core CPU, where XLA keeps the cores
    busy, the wall time does not change.)"""
    items = list(items)
    if len(items) < 2:
        return [fn(x) for x in items]

    def run(x):
        with full_float32():  # JAX's settings are per thread
            return fn(x)

    with ThreadPoolExecutor(min(len(items), os.cpu_count() or 1)) as pool:
        return list(pool.map(run, items))


def _assemble(
    setup: _Setup, means: dict, single: SweepSet, reps: np.ndarray, rand: SweepSet, share: float, cfg: MetricsConfig
) -> Measurement:
    """One net's metrics from its sweeps' mean change stats, its maps and its compressibility ``share``."""
    maps = setup.maps
    shared = {
        "feature_redundancy": features.rank_redundancy(maps),
        "feature_roughness": features.roughness(maps, cfg.curvature_scale),
        "compressibility": share,
    }

    axis_form = _forms(means, features.internal_asymmetry(maps, setup.axis), "share", "fracture", "spread")
    free_form = _forms(means, features.internal_mixing(maps), "fracture_free", "fracture_free", "spread_free")
    form = "axis_free" if cfg.axis == "auto" else "mirror"
    metrics = {name: shared.get(name, (free_form if form == "axis_free" else axis_form).get(name)) for name in METRICS}
    info = {
        "axis": setup.axis,
        "image_asymmetry": setup.base_asymmetry,
        "image_complexity": float(behaviour.complexity(setup.base[None])[0]),
        "image_detail": float(behaviour.detail(setup.base[None])[0]),
        "form": form,
        "axis_metrics": axis_form,
        "axis_free_metrics": free_form,
        "weights": int(setup.flat.size),
        "nonzero_weights": int(setup.support.size),
        "swept_weights": int(setup.chosen.size),
        "live_weights": int(single.dirs.size),
        "effect_groups": int(reps.size),
        "distinct_units": int(maps.shape[0]),
        "random_directions": int(rand.dirs.shape[0]),
    }
    return Measurement(metrics, info, single, reps, rand)


def _forms(means: dict, internal: float, change: str, fracture: str, spread: str) -> dict[str, float]:
    """The metrics that read a regularity, in one form: ``internal`` (the hidden maps' score), and
    from the sweeps' mean ``CHANGE_STATS``: ``change`` (each sweep set's regularity of its change),
    ``fracture`` and ``spread``; knob_misalignment compares single weights with random directions."""
    unstructured_single = (means["single"][change] + means["single"][fracture]) / 2
    unstructured_random = (means["random"][change] + means["random"][fracture]) / 2
    return {
        "internal_asymmetry": internal,
        "sweep_asymmetry": means["single"][change],
        "sweep_asymmetry_fixed": means["single_fixed"][change],
        "random_asymmetry": means["random"][change],
        "random_asymmetry_fixed": means["random_fixed"][change],
        "sweep_fracture": means["single"][fracture],
        "sweep_entanglement": means["single"][spread],
        "knob_misalignment": knob_misalignment(unstructured_single, unstructured_random),
    }


def knob_misalignment(single: float, random: float) -> float:
    """``single / random`` (the unstructuredness of single weights' changes over random directions'),
    clipped to [0, 1]; 0 where random directions change the picture in one clean piece too (random
    at float noise, below ``1e-6``): no contrast to read, and the ratio of two noises flipped between 0
    and 1 (a one-colour net gave 1, the most fractured value)."""
    if random <= 1e-6:
        return 0.0
    return float(np.clip(single / random, 0.0, 1.0))


@full_float32()
def weight_asymmetry(
    net: DenseNet, weights: list[tuple[int, int, int]], config: MetricsConfig = MetricsConfig(), axis: str | None = None
) -> np.ndarray:
    """Antisymmetric share of the change made by each ``(layer, row, col)`` weight.

    Energies pooled over the calibrated +-step and the fixed +-step sweeps: 0 for
    a mirror-symmetric change, 1/2 for a one-sided one, 1 for an antisymmetric one.
    """
    cfg = config
    base = np.asarray(render(net, cfg.size).rgb)
    axis = axis or (detect_axis(jnp.asarray(base))[0] if cfg.axis == "auto" else cfg.axis)
    idx = np.array([sweeps.flat_index(net.arch, *w) for w in weights], np.int32)
    swept = calibrated_sweeps(net, idx, base, cfg)
    if swept.dirs.size != idx.size:
        raise FerlabError("some of these weights do not move the picture")
    changes = np.concatenate([swept.changes, fixed_changes(net, idx, base, cfg)], axis=1)
    sym, anti = (np.asarray(a) for a in sym_energies(jnp.asarray(changes), axis))
    return anti.sum(1) / (sym + anti).sum(1)
