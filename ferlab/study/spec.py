"""A study's spec: YAML to frozen dataclasses, expanded into runs, each with its run key.

A study spec (YAML)::

    name: fer_paper                  # the MLflow experiment
    targets: [picbreeder:skull, picbreeder:butterfly]
    phases:
      - name: sgd                    # runs of one kind
        label: sgd                   # its group in the report (default: the name)
        role: reproducer             # optional second grouping (discoverer / reproducer)
        base: {regime: sgd, resolution: 64, settings: {steps: 2000}}   # a run config
        grid: {settings.learning_rate: [0.003]}     # every combination, dotted keys
        targets: [study]             # study = the study's targets; phase:NAME = images
                                     # an earlier phase found; or a target spec; unset: none
        sample: 4                    # at most this many images from earlier phases
        same_arch: true              # the run's arch is its target's (a net or genome)
        same_mask: true              # SGD trains only the target net's non-zero weights
        activation: relu             # every hidden unit of that arch becomes this
        seeds: 3                     # seeds 0..2: a grid over ``seed`` (1 to 10,000) ...
        seed_key: settings.seeds     # ... or one run that trains them side by side
        nets: "archive_*"            # which final nets are scored (glob)
        keep: 8                      # at most this many of them, evenly spaced
        cpus: 1                      # per trial (a positive number)
        max_failures: 1              # restarts of a trial whose worker dies (0: none)
    analysis: {metrics: [fer_score], group: label,
               comparisons: [{a: picbreeder, b: sgd}]}   # ferlab.report.ReportSpec
    profiles:
      quick: {set: {resolution: 32}, phases: {sgd: {base.settings.steps: 500}}}

Every run of a phase gets a run key: a hash of what defines its results, namely
its resolved config (targets taken from earlier phases stand in by their image
id, not their file path), what is scored (``nets``, ``keep``), the FER suite
that scores it (its size and drawing, every ``MetricsConfig`` setting) and the
code (ferlab's version and git commit). A run whose key has a FINISHED run in
the study's experiment is reused, so running a study again computes only what
is missing, and a changed suite or code rescores instead of mixing old and new
numbers in one report.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferlab.config import ConfigError, from_dict, load_yaml, set_path
from ferlab.report import ReportSpec
from ferlab.tracking import code_version, trial_name
from ferlab.workers.plan import relabel_arch, suite_settings

FER_DRAW = False  # a study's FER suite draws only the cheap feature-map grid
MAX_SEEDS = 10_000  # a phase's seeds: every one is a run (or a net trained side by side) checked up front


@dataclass(frozen=True)
class Phase:
    """One kind of run, expanded over targets, seeds and a grid (see the module docstring)."""

    name: str
    base: dict[str, Any]
    label: str | None = None
    role: str | None = None
    grid: dict[str, list[Any]] = field(default_factory=dict)
    targets: list[str] | None = None
    sample: int | None = None
    same_arch: bool = False
    same_mask: bool = False
    activation: str | None = None
    seeds: int = 1
    seed_key: str = "seed"
    nets: str = "*"
    keep: int | None = None
    cpus: float = 1
    max_failures: int = 1

    def __post_init__(self):
        if not self.name.strip() or "/" in self.name:
            raise ValueError(f"phase name must be non-empty without '/', got {self.name!r}")
        if not 1 <= self.seeds <= MAX_SEEDS:
            raise ValueError(f"phase {self.name}: seeds must be 1 to {MAX_SEEDS:,}, got {self.seeds}")
        if not (math.isfinite(self.cpus) and self.cpus > 0):
            raise ValueError(f"phase {self.name}: cpus must be a positive number, got {self.cpus}")
        if self.max_failures < 0:
            raise ValueError(f"phase {self.name}: max_failures must be at least 0, got {self.max_failures}")
        for key, values in self.grid.items():
            if not values:
                raise ValueError(f"phase {self.name}: grid.{key} has no values")
        if self.sample is not None and self.sample < 1:
            raise ValueError(f"phase {self.name}: sample must be at least 1, got {self.sample}")
        if self.keep is not None and self.keep < 1:
            raise ValueError(f"phase {self.name}: keep must be at least 1, got {self.keep}")
        for flag in ("same_arch", "same_mask"):
            if getattr(self, flag) and not self.targets:
                raise ValueError(f"phase {self.name}: {flag} needs targets")
        if self.activation is not None:
            from ferlab.activations import ACTIVATIONS

            if self.activation not in ACTIVATIONS:
                raise ValueError(f"phase {self.name}: unknown activation {self.activation!r}")
        for key in ("seed", self.seed_key, "target"):
            if key in self.grid:
                raise ValueError(f"phase {self.name}: {key!r} is set by the study (seeds, targets), not grid")

    @property
    def group(self) -> str:
        return self.label or self.name

    @property
    def sources(self) -> tuple[str, ...]:
        """The earlier phases whose found images this phase paints (its ``phase:NAME`` targets)."""
        return tuple(t[6:] for t in self.targets or [] if t.startswith("phase:"))


@dataclass(frozen=True)
class Profile:
    """``set``: dotted overrides of every phase's run config; ``phases``: dotted overrides of a phase's spec."""

    set: dict[str, Any] = field(default_factory=dict)
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True)
class Study:
    name: str
    phases: list[Phase]
    targets: list[str] = field(default_factory=list)
    analysis: ReportSpec = ReportSpec()
    profiles: dict[str, Profile] = field(default_factory=dict)
    seed: int = 0
    description: str = ""

    def __post_init__(self):
        if not _NAME.fullmatch(self.name):
            raise ValueError(
                f"name {self.name!r}: use 1-100 letters, digits, '_', '-' or '.' (it names the "
                "MLflow experiment and folders)"
            )
        names = [p.name for p in self.phases]
        if not names:
            raise ValueError("a study needs at least one phase")
        if len(set(names)) != len(names):
            raise ValueError(f"phase names must be unique, got {names}")
        for i, phase in enumerate(self.phases):
            for t in phase.targets or []:
                if t.startswith("phase:") and t[6:] not in names[:i]:
                    raise ValueError(f"phase {phase.name}: {t!r} names no earlier phase")
                if t == "study" and not self.targets:
                    raise ValueError(f"phase {phase.name}: targets 'study' but the study lists no targets")


def load_study(path: str | Path, profile: str | None = None) -> Study:
    """Read a study spec with ``profile`` applied; ConfigError on any problem."""
    data = load_yaml(path)
    if profile is not None:
        profiles = data.get("profiles")
        if profiles is None:
            profiles = {}
        if not isinstance(profiles, dict):
            raise ConfigError(f"{path}.profiles: expected a mapping of profile names, got {type(profiles).__name__}")
        if profile not in profiles:
            known = ", ".join(map(str, profiles)) or "none"
            raise ConfigError(f"{path}: no profile {profile!r} (known: {known})")
        data = apply_profile(data, from_dict(Profile, profiles[profile], f"profiles.{profile}"), str(path))
    return from_dict(Study, data, str(path))


def _show(value) -> str:
    """A value and its type, short: ``3 (int)``."""
    text = repr(value)
    return f"{text if len(text) <= 40 else text[:37] + '...'} ({type(value).__name__})"


def apply_profile(data: dict, profile: Profile, where: str) -> dict:
    """``data`` with the profile's ``set`` applied to every phase's base and its ``phases`` overrides to
    each named phase (values kept as YAML read them). ConfigError naming the field if ``phases`` is not
    a list of mappings, each named by a string."""
    raw = data.get("phases")
    if raw is None:
        raw = []  # the study itself reports it missing
    if not isinstance(raw, list):
        raise ConfigError(f"{where}.phases: expected a list, got {type(raw).__name__}")
    for i, p in enumerate(raw):
        if not isinstance(p, dict):
            got = "nothing" if p is None else type(p).__name__
            raise ConfigError(f"{where}.phases[{i}]: expected a mapping, got {got}")
        if "name" not in p:
            raise ConfigError(f"{where}.phases[{i}]: missing required key 'name'")
        if not isinstance(p["name"], str):
            raise ConfigError(f"{where}.phases[{i}].name: expected a string, got {_show(p['name'])}")
    unknown = sorted(set(profile.phases) - {p["name"] for p in raw})
    if unknown:
        raise ConfigError(f"{where}: profile names unknown phase {unknown[0]!r}")
    phases = []
    for p in raw:
        p = copy.deepcopy(p)
        overrides = {f"base.{k}": v for k, v in profile.set.items()} | profile.phases.get(p["name"], {})
        for key, value in overrides.items():
            try:
                p = set_path(p, key, copy.deepcopy(value))
            except ConfigError as e:
                raise ConfigError(f"{where}: phase {p['name']}: {e}") from None
        phases.append(p)
    return data if data.get("phases") is None else {**data, "phases": phases}


# ------------------------------------------------------------------ expanding phases
@dataclass(frozen=True)
class Target:
    """A target of a run: the spec a run config takes and the image id the report pairs on."""

    spec: str
    image: str


@dataclass(frozen=True)
class RunEntry:
    """One run of a study: its run config, key, MLflow run name, image id and FER suite size."""

    phase: Phase
    config: dict
    key: str
    name: str
    image: str | None
    fer_size: int


def run_key(config: dict, phase: Phase, target: Target | None, suite: dict, code: dict) -> str:
    """A hash of what defines a run's results: the config (its target file named by its image id,
    wherever it stands), what is scored, the FER ``suite``'s settings and the ``code`` version."""

    def named(value):
        if isinstance(value, dict):
            return {k: named(v) for k, v in value.items()}
        return target.image if value == target.spec else value

    identity = config if target is None else named(config)
    text = json.dumps(
        {"run": identity, "nets": phase.nets, "keep": phase.keep, "fer": suite, "code": code},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def expand(phase: Phase, targets: list[Target], code: dict | None = None) -> list[RunEntry]:
    """Every run of a phase: targets x grid x seeds. Its runs are scored by the FER suite at the
    phase's largest resolution; ``code`` defaults to the running code's version. A phase that
    names targets but got none (the earlier phases it copies found nothing it may draw) has no
    runs: it does not run once without a target."""
    if phase.targets and not targets:
        return []
    code = code_version() if code is None else code
    grid = dict(phase.grid)
    if phase.seed_key == "seed":
        grid["seed"] = list(range(phase.seeds))
    else:
        grid[phase.seed_key] = [phase.seeds]
    keys = list(grid)
    runs = []
    for target in targets or [None]:
        for combo in itertools.product(*(grid[k] for k in keys)):
            config = copy.deepcopy(phase.base)
            for key, value in zip(keys, combo):
                config = set_path(config, key, copy.deepcopy(value))
            if target is not None:
                config["target"] = target.spec
                if phase.same_arch:
                    config["arch"] = target.spec
                if phase.same_mask:
                    config.setdefault("settings", {})["mask_from"] = target.spec
            if phase.activation is not None:
                config["arch"] = relabel_arch(config.get("arch"), phase.activation)
            runs.append((target, config, dict(zip(phase.grid, combo))))
    size = fer_size(phase)
    suite = suite_settings(size, FER_DRAW)
    out = []
    for target, config, point in runs:
        image = target.image if target is not None else None
        name = trial_name(phase.name, image, config.get("seed", 0), point)
        out.append(RunEntry(phase, config, run_key(config, phase, target, suite, code), name, image, size))
    twice = {n for n, c in Counter(e.name for e in out).items() if c > 1}
    return [
        RunEntry(e.phase, e.config, e.key, f"{e.name}/{e.key[:6]}", e.image, e.fer_size) if e.name in twice else e
        for e in out
    ]


def static_targets(study: Study, phase: Phase) -> list[Target]:
    """A phase's targets known before anything runs: the study's and those it names itself."""
    out = []
    for t in phase.targets or []:
        if t == "study":
            out += [Target(s, s) for s in study.targets]
        elif not t.startswith("phase:"):
            out.append(Target(t, t))
    return out


def fer_size(phase: Phase) -> int:
    """The picture size the FER suite scores a phase's runs at: its largest resolution (base or grid).
    A bad resolution is the run check's to refuse, with its own message."""
    return max(_int(v, 64) for v in phase.grid.get("resolution", [phase.base.get("resolution", 64)]))


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
