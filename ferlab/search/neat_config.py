"""NEAT's settings: population, fitness, speciation and mutation (``settings:`` of ``regime: neat``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ferlab import limits
from ferlab.config import ConfigError
from ferlab.search.archive import NoveltyConfig
from ferlab.search.neat_genome import N_INPUTS, output_labels


@dataclass(frozen=True)
class NEATConfig:
    """NEAT settings (``settings:`` of a ``regime: neat`` run). Defaults follow
    NEAT (Stanley and Miikkulainen 2002) and neat-python, except gentler
    weight and activation mutation and fewer new links, which matched the skull
    better in ``bench/neat.py``. Weight mutation is the gentlest change: each
    weight of an offspring moves with probability 0.1 by N(0, 0.1) (neat-python:
    0.8 and 0.5). On the skull at 32x32 (population 150, 200 generations, 6
    seeds) that made the best MSE fall in every 20-generation window, where 0.8
    and 0.2 left 2 to 3 flat windows per run from generation 120 on, and lowered
    the median best MSE of seeds 0-2 from 0.070 to 0.065.

    Population and capacity: ``population_size`` genomes of at most
    ``max_nodes`` nodes (4 inputs and the outputs included) and ``max_links``
    links; structural mutations that do not fit are skipped. ``outputs``:
    ``hsv`` (hue, saturation, brightness) or ``ink`` (one grey level).

    Fitness (``fitness``): ``target`` = -MSE to the run's target image;
    ``novelty`` = novelty score against the archive (``novelty`` settings);
    ``mix`` = (1 - novelty_weight) * rank(-MSE) + novelty_weight * rank(novelty),
    ranks in the population (``neat.mix_fitness``).

    Mutation, per offspring: each link's weight is perturbed by
    N(0, weight_perturb_power) with probability ``weight_perturb_rate``, else
    replaced by N(0, weight_init_std) with ``weight_replace_rate``, then
    clipped to +-weight_max; one random link flips enabled with
    ``toggle_link_rate``; each hidden or output node gets a random activation
    with ``activation_mutate_rate``; add-node (split a random enabled link)
    with ``add_node_rate``; add-link (a new pair that makes no cycle) with
    ``add_link_rate``. ``crossover_rate``: share of non-elite offspring made by
    crossover of two parents (the others are mutated clones).

    Speciation: distance = compat_excess E/N + compat_disjoint D/N +
    compat_weight W (``neat_variation.distance``); a genome joins the nearest
    species whose representative is within the threshold, else founds one
    (at most ``max_species``). The threshold starts at ``threshold_init`` and
    moves by ``threshold_step`` each generation towards ``target_species``
    species (never below ``threshold_min``).

    Selection: fitness is normalised to [0, 1] over the population and shared
    explicitly (divided by species size); a species gets offspring in
    proportion to its summed shared fitness, at least ``min_species_size``. A
    species that has not improved its best fitness for ``stagnation``
    generations gets none, except the ``species_elitism`` best species. The
    ``elitism`` best genomes of each species are copied unchanged; parents are
    drawn from the best ``survival_threshold`` share of a species.
    """

    population_size: int = 150
    generations: int = 200
    max_nodes: int = 32
    max_links: int = 96
    outputs: Literal["hsv", "ink"] = "hsv"
    fitness: Literal["target", "novelty", "mix"] = "target"
    novelty_weight: float = 0.5
    novelty: NoveltyConfig = field(default_factory=NoveltyConfig)
    weight_init_std: float = 1.0
    weight_perturb_rate: float = 0.1
    weight_perturb_power: float = 0.1
    weight_replace_rate: float = 0.02
    weight_max: float = 8.0
    toggle_link_rate: float = 0.02
    activation_mutate_rate: float = 0.02
    add_node_rate: float = 0.2
    add_link_rate: float = 0.3
    crossover_rate: float = 0.75
    compat_excess: float = 1.0
    compat_disjoint: float = 1.0
    compat_weight: float = 0.5
    target_species: int = 10
    max_species: int = 32
    threshold_init: float = 1.0
    threshold_step: float = 0.05
    threshold_min: float = 0.1
    stagnation: int = 15
    species_elitism: int = 2
    elitism: int = 2
    survival_threshold: float = 0.2
    min_species_size: int = 2
    archive_export: int = 50

    def __post_init__(self):
        positive = (
            "population_size",
            "generations",
            "max_nodes",
            "max_links",
            "target_species",
            "max_species",
            "stagnation",
            "min_species_size",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        limits.POPULATION.check(self.population_size, "population_size", ValueError)
        limits.GENERATIONS.check(self.generations, "generations", ValueError)
        limits.GENOME_NODES.check(self.max_nodes, "max_nodes", ValueError)
        limits.GENOME_LINKS.check(self.max_links, "max_links", ValueError)
        rates = (
            "novelty_weight",
            "weight_perturb_rate",
            "weight_replace_rate",
            "toggle_link_rate",
            "activation_mutate_rate",
            "add_node_rate",
            "add_link_rate",
            "crossover_rate",
        )
        for name in rates:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.survival_threshold <= 1.0:
            raise ValueError(f"survival_threshold must be in (0, 1], got {self.survival_threshold}")
        if self.weight_perturb_rate + self.weight_replace_rate > 1.0:
            raise ValueError("weight_perturb_rate + weight_replace_rate must be at most 1")
        if self.target_species > self.max_species:
            raise ValueError(f"target_species ({self.target_species}) exceeds max_species ({self.max_species})")
        if self.min_species_size * self.max_species > self.population_size:
            raise ValueError(
                f"min_species_size x max_species ({self.min_species_size * self.max_species}) "
                f"exceeds population_size ({self.population_size})"
            )
        n_out = len(output_labels(self.ink))
        if self.max_nodes < N_INPUTS + n_out or self.max_links < N_INPUTS * n_out:
            raise ValueError(f"max_nodes must be at least {N_INPUTS + n_out} and max_links at least {N_INPUTS * n_out}")
        for name in ("species_elitism", "elitism", "archive_export"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be at least 0, got {getattr(self, name)}")

    @property
    def ink(self) -> bool:
        return self.outputs == "ink"

    @property
    def needs_target(self) -> bool:
        return self.fitness != "novelty"

    def check(self, run) -> None:
        """Cross-check against the run config: target and mix fitness need a target."""
        if self.needs_target and run.target is None:
            raise ConfigError(
                f"settings.fitness: {self.fitness!r} needs a target (set target:, or use fitness: novelty)"
            )
